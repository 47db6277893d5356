"""Every name a module builds fits what AWS accepts, for every value its variables' validations allow (issue #19).

The longest value of an expression is worked out from the validations of the variables in it (the bound of their
regex, or the strings of a `contains([...], ...)`), the literal text around them, `substr` and one-character
`replace`; `local.*` are followed, `each.key` is bounded by the validation of the `for_each` map's keys. In the
examples, each name passed to a module must fit the module's own validation. The Kubernetes objects eks-service
creates are held to the API server's limits in the same way (`metadata.name`: an RFC 1123 label of at most 63
characters for a namespace, a subdomain of at most 253 for the others).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import tfparse

# (resource type, argument) -> the most characters AWS (or the provider's own validation) accepts.
LIMITS = {
    ("aws_iam_role", "name"): 64,
    ("aws_iam_role", "name_prefix"): 38,
    ("aws_iam_role", "description"): 1000,
    ("aws_iam_role_policy", "name"): 128,
    ("aws_lambda_function", "function_name"): 64,
    ("aws_lambda_function", "description"): 256,
    ("aws_lambda_layer_version", "layer_name"): 140,
    ("aws_cloudwatch_log_group", "name"): 512,
    ("aws_security_group", "name"): 255,
    ("aws_security_group", "name_prefix"): 100,
    ("aws_efs_file_system", "creation_token"): 64,
    ("aws_apigatewayv2_api", "name"): 128,
    ("aws_apigatewayv2_authorizer", "name"): 128,
    ("aws_kms_alias", "name"): 256,
    ("aws_s3_bucket", "bucket"): 63,
    ("aws_vpc_security_group_ingress_rule", "description"): 255,
    ("kubernetes_namespace_v1", "metadata.name"): 63,
    ("kubernetes_service_account_v1", "metadata.name"): 253,
    ("kubernetes_storage_class_v1", "metadata.name"): 253,
    ("kubernetes_persistent_volume_v1", "metadata.name"): 253,
    ("kubernetes_persistent_volume_claim_v1", "metadata.name"): 253,
    ("kubernetes_network_policy_v1", "metadata.name"): 253,
}
modules = tfparse.module_dirs()


def argument_of(body: dict, argument: str):
    """The value of `argument` in a resource's body, `block.argument` in its (first) nested block; None if absent."""
    *blocks, last = argument.split(".")
    for block in blocks:
        nested = body.get(block)
        if not (isinstance(nested, list) and nested and isinstance(nested[0], dict)):
            return None
        body = nested[0]
    return body.get(last)


class Unbounded(Exception):
    pass


# ---- the longest string a regex matches -------------------------------------------------------------------
def regex_max(pattern: str) -> float:
    pattern = pattern.removeprefix("^").removesuffix("$")
    length, _ = _alternation(pattern, 0)
    return length


def _alternation(p: str, i: int) -> tuple[float, int]:
    best, total = 0.0, 0.0
    while i < len(p) and p[i] != ")":
        if p[i] == "|":
            best, total, i = max(best, total), 0.0, i + 1
            continue
        atom, i = _atom(p, i)
        quantified, i = _quantifier(p, i)
        total += atom * quantified
    return max(best, total), i


def _atom(p: str, i: int) -> tuple[float, int]:
    if p[i] == "(":
        j = i + 1
        if p.startswith("?:", j):
            j += 2
        length, j = _alternation(p, j)
        return length, j + 1
    if p[i] == "[":
        j = i + 1
        while p[j] != "]" or j == i + 1:
            j += 2 if p[j] == "\\" else 1
        return 1, j + 1
    if p[i] == "\\":
        return 1, i + 2
    return 1, i + 1


def _quantifier(p: str, i: int) -> tuple[float, int]:
    if i < len(p) and p[i] in "*+":
        return math.inf, i + 1
    if i < len(p) and p[i] == "?":
        return 1, i + 1
    m = re.match(r"\{(\d+)(,(\d*))?\}", p[i:])
    if m:
        upper = m.group(3) if m.group(2) else m.group(1)
        return (int(upper) if upper else math.inf), i + m.end()
    return 1, i


# ---- the longest value of an expression ---------------------------------------------------------------------
def _split_args(text: str) -> list[str]:
    args, depth, start, quoted = [], 0, 0, False
    for i, c in enumerate(text):
        if c == '"' and text[i - 1] != "\\":
            quoted = not quoted
        elif not quoted and c in "([{":
            depth += 1
        elif not quoted and c in ")]}":
            depth -= 1
        elif not quoted and c == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    return args + [text[start:].strip()]


class Scope:
    """What an expression in one directory may name: its variables' bounds, its locals, one block's each.key."""

    def __init__(self, directory: Path, each_key: float | None = None):
        self.variables = tfparse.variables(directory)
        self.locals = {k: v for p in tfparse.tf_files(directory) for b in tfparse.load(p).get("locals", []) for k, v in b.items()}
        self.each_key = each_key

    def variable(self, path: str) -> float:
        """Bound of `var.NAME` or `var.NAME.ATTR` from the validations that test exactly it."""
        name = path.split(".")[1]
        bounds = []
        for validation in self.variables.get(name, {}).get("validation", []):
            condition = tfparse.expression(validation["condition"])
            ref = re.escape(path)
            for m in re.finditer(r'regex\("((?:\\.|[^"\\])*)",\s*' + ref + r"\)", condition):
                bounds.append(regex_max(m.group(1).replace("\\\\", "\\")))
            for m in re.finditer(r"length\(" + ref + r"\) <= (\d+)", condition):
                bounds.append(int(m.group(1)))
            for m in re.finditer(r"contains\(\[([^\]]*)\],\s*" + ref + r"\)", condition):
                bounds.append(max(len(s) for s in re.findall(r'"([^"]*)"', m.group(1))))
        if not bounds:
            raise Unbounded(f"{path} has no validation that bounds its length")
        return min(bounds)

    def keys_of(self, path: str) -> float:
        """Bound of the keys of the map `var.NAME`: `for k in keys(var.NAME) : can(regex("...", k))`."""
        name = path.split(".")[1]
        for validation in self.variables.get(name, {}).get("validation", []):
            condition = tfparse.expression(validation["condition"])
            m = re.search(r"for (\w+) in keys\(" + re.escape(path) + r'\) : can\(regex\("((?:\\.|[^"\\])*)", \1\)\)', condition)
            if m:
                return regex_max(m.group(2).replace("\\\\", "\\"))
        raise Unbounded(f"the keys of {path} have no validation that bounds their length")

    def longest(self, value) -> float:
        text = value.strip() if isinstance(value, str) else str(value)
        if text.startswith("${") and text.endswith("}") and _closing(text, 1) == len(text) - 1:
            return self.longest(text[2:-1])
        if text.startswith('"') and text.endswith('"'):
            return self._template(text[1:-1])
        if re.fullmatch(r"var\.[a-z_][a-z0-9_.]*", text):
            return self.variable(text)
        if re.fullmatch(r"local\.[a-z_][a-z0-9_]*", text):
            return self.longest(self.locals[text.split(".")[1]])
        if text == "each.key" and self.each_key is not None:
            return self.each_key
        m = re.fullmatch(r"(substr|replace)\((.*)\)", text, re.S)
        if m and m.group(1) == "substr":
            inner, offset, length = _split_args(m.group(2))
            return min(self.longest(inner), int(length)) if offset == "0" else self.longest(inner)
        if m and m.group(1) == "replace":
            inner, old, new = _split_args(m.group(2))
            if len(tfparse.unquote(new)) <= len(tfparse.unquote(old)):
                return self.longest(inner)
        raise Unbounded(f"cannot bound the length of `{text}`")

    def _template(self, body: str) -> float:
        total, i = 0.0, 0
        while i < len(body):
            if body.startswith("${", i):
                end = _closing(body, i + 1)
                total += self.longest(body[i + 2 : end])
                i = end + 1
            else:
                total += 1
                i += 2 if body[i] == "\\" else 1
        return total


def _closing(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return len(text)


# ---- the tests ----------------------------------------------------------------------------------------------
def name_problems(directory: Path) -> list[str]:
    scope = Scope(directory)
    problems = []
    for path in tfparse.tf_files(directory):
        for name, body in tfparse.nested_blocks(tfparse.load(path), "resource").items():
            for (rtype, argument), limit in LIMITS.items():
                value = argument_of(body, argument)
                if name.split(".")[0] != rtype or value is None:
                    continue
                try:
                    longest = scope.longest(value)
                except Unbounded as e:
                    problems.append(f"{path.name}: {name}.{argument}: {e}")
                    continue
                if longest > limit:
                    accepts = "Kubernetes accepts" if rtype.startswith("kubernetes_") else "AWS accepts"
                    problems.append(f"{path.name}: {name}.{argument} = {value} can be {longest:g} characters; {accepts} at most {limit}")
    return problems


def name_variables(directory: Path) -> set[str]:
    """The variables a module builds AWS (or Kubernetes) names from (those in the arguments of LIMITS)."""
    used = set()
    for name, body in tfparse.all_blocks(directory, "resource", nested=True).items():
        for (rtype, argument) in LIMITS:
            value = argument_of(body, argument)
            if name.split(".")[0] == rtype and value is not None:
                used |= set(re.findall(r"\bvar\.(\w+)", str(value)))
    return used


@pytest.mark.parametrize("directory", modules, ids=[d.name for d in modules])
def test_every_name_a_module_builds_fits_aws(directory: Path):
    problems = name_problems(directory)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("directory", tfparse.example_dirs(), ids=[d.name for d in tfparse.example_dirs()])
def test_every_name_an_example_passes_fits_the_modules_validation(directory: Path):
    problems = []
    for call, body in tfparse.all_blocks(directory, "module").items():
        module = (directory / tfparse.unquote(body["source"])).resolve()
        for_each = tfparse.expression(body.get("for_each", ""))
        each_key = Scope(directory).keys_of(for_each) if re.fullmatch(r"var\.\w+", for_each) else None
        scope, target = Scope(directory, each_key), Scope(module)
        for argument, value in body.items():
            if argument not in target.variables or argument not in name_variables(module):
                continue
            try:
                allowed = target.variable(f"var.{argument}")
            except Unbounded:
                allowed = math.inf
            if allowed == math.inf:
                continue  # not a name: nothing bounds it
            if re.fullmatch(r"\$\{var\.\w+\}", str(value)):
                continue  # passed through unchanged: the module's validation applies to the example's input itself
            try:
                longest = scope.longest(value)
            except Unbounded as e:
                problems.append(f"module.{call}.{argument}: {e}")
                continue
            if longest > allowed:
                problems.append(f"module.{call}.{argument} = {value} can be {longest:g} characters; modules/{module.name} accepts at most {allowed:g}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "pattern, longest",
    [("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", 32), ("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", 63), ("^(ab|c)d?$", 3), ("^a+$", math.inf)],
)
def test_regex_bounds(pattern: str, longest: float):
    assert regex_max(pattern) == longest


def test_a_name_prefix_too_long_for_iam_is_reported(tmp_path: Path):
    (tmp_path / "variables.tf").write_text(
        'variable "name" {\n  type = string\n  validation {\n    condition     = can(regex("^[a-z]{1,32}$", var.name))\n'
        '    error_message = "x."\n  }\n}\n'
    )
    (tmp_path / "main.tf").write_text('resource "aws_iam_role" "r" {\n  name_prefix = "${var.name}-flow-logs-"\n}\n')
    assert name_problems(tmp_path) == [
        'main.tf: aws_iam_role.r.name_prefix = "${var.name}-flow-logs-" can be 43 characters; AWS accepts at most 38'
    ]


def test_a_kubernetes_name_too_long_for_a_namespace_is_reported(tmp_path: Path):
    (tmp_path / "variables.tf").write_text(
        'variable "name" {\n  type = string\n  validation {\n    condition     = can(regex("^[a-z]{1,60}$", var.name))\n'
        '    error_message = "x."\n  }\n}\n'
    )
    (tmp_path / "main.tf").write_text('resource "kubernetes_namespace_v1" "n" {\n  metadata {\n    name = "${var.name}-ferry"\n  }\n}\n')
    assert name_problems(tmp_path) == [
        'main.tf: kubernetes_namespace_v1.n.metadata.name = "${var.name}-ferry" can be 66 characters; Kubernetes accepts at most 63'
    ]
