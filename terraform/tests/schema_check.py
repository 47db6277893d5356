"""Ferry's Terraform checked against the AWS provider's real schema (issue #19, item 3), without the provider.

`check(directory, schema)` parses a module or example with python-hcl2 and reports, one line per problem naming the
file, the block and the field: unknown resource and data source types, arguments and blocks; a block written as an
argument or the reverse; missing required arguments and blocks; more than one of a block that holds at most one;
literal values of the wrong type; references to undeclared resources, to attributes that do not exist, into a
string, into a set by index, to a counted resource without an index or to a single one with one; unknown
`lifecycle.ignore_changes` entries; module arguments without a variable and required variables not passed; unknown
module outputs; deprecated attributes. Meta-arguments, `dynamic` blocks, `count`/`for_each` instance keys and
attributes that HCL lets be written as blocks are understood. `provider` blocks and the built-in `terraform`
block are not checked.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import tfparse

# The package has no deprecation marks (provider_schema.py): these come from the AWS provider's 6.0 upgrade guide.
DEPRECATED = {
    ("data", "aws_region", "name"): "deprecated since AWS provider 6.0: use `region`",
}
# Built-in resources (the `terraform` provider), which the AWS package does not describe.
BUILTIN = {
    "terraform_data": {
        "arguments": {
            "input": {"kind": "simple", "storage": "any", "required": False},
            "triggers_replace": {"kind": "simple", "storage": "any", "required": False},
        },
        "blocks": {},
        "attrs": {"id": {"kind": "string"}, "input": {"kind": "any"}, "output": {"kind": "any"}, "triggers_replace": {"kind": "any"}},
    }
}
RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
LIFECYCLE = {"create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by", "precondition", "postcondition"}
MODULE_META = {"source", "version", "count", "for_each", "depends_on", "providers"}
# Roots of references that are not resources.
NOT_RESOURCES = {"var", "local", "module", "data", "each", "count", "self", "path", "terraform"}

_REFERENCE = re.compile(
    r"(?<![\w.\"])((?:data\.)?(?:aws_[a-z0-9_]+|terraform_data)|module)\.([a-zA-Z_][\w-]*)((?:\[[^\[\]]*\]|\.[a-zA-Z_][\w-]*|\.\d+)*)"
)
_STEP = re.compile(r"\[([^\[\]]*)\]|\.([a-zA-Z_][\w-]*|\d+)")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def add(self, other: Report) -> None:
        self.problems += other.problems
        self.counts += other.counts


def _in_this_schema(rtype: str) -> bool:
    """Whether a resource type is the AWS provider's (or Terraform's own) and so checkable here."""
    return rtype.startswith("aws_") or rtype in BUILTIN


def _rel(path: Path) -> str:
    """A file as the problem lines name it: relative to terraform/ when it is in it."""
    path = Path(path).resolve()
    return path.relative_to(tfparse.TERRAFORM_DIR).as_posix() if path.is_relative_to(tfparse.TERRAFORM_DIR) else str(path)


def _is_block(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def _keys(body: dict) -> list[str]:
    return [k for k in body if not k.startswith("__")]


def _suggest(name: str, options) -> str:
    options = list(options)
    close = sorted(o for o in options if o.startswith(name))[:1] or difflib.get_close_matches(name, options, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _expressions(value) -> list[str]:
    """The text of every `${...}` in a parsed value, string literals inside blanked (their own `${}` come too)."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if not k.startswith("__"):
                out += _expressions(k) + _expressions(v)
    elif isinstance(value, list):
        for v in value:
            out += _expressions(v)
    elif isinstance(value, str):
        i = 0
        while (i := value.find("${", i)) >= 0:
            if i > 0 and value[i - 1] == "$":
                i += 2
                continue
            depth, j = 0, i + 1
            while j < len(value):
                depth += {"{": 1, "}": -1}.get(value[j], 0)
                if depth == 0:
                    break
                j += 1
            out.append(_STRING.sub('""', value[i + 2 : j]))
            i += 2
    return out


class Checker:
    def __init__(self, schema: dict):
        self.schema = schema

    # ---- declarations --------------------------------------------------------------------------------------
    def check(self, directory: Path, overrides: dict[Path, str] | None = None) -> Report:
        overrides = {Path(p).resolve(): t for p, t in (overrides or {}).items()}
        docs = {}
        for path in tfparse.tf_files(directory):
            text = overrides.get(path.resolve())
            docs[path] = tfparse.hcl2.loads(text) if text is not None else tfparse.load(path)
        report = Report()
        self.dir = directory
        self.declared = {"resource": {}, "data": {}}
        self.modules, self.variables, self.locals = {}, {}, set()
        for path, doc in docs.items():
            for kind in ("resource", "data"):
                for name, body in tfparse.nested_blocks(doc, kind).items():
                    self.declared[kind][name] = (path, body)
            for name, body in tfparse.blocks(doc, "module").items():
                self.modules[name] = (path, body)
            self.variables.update(tfparse.blocks(doc, "variable"))
            for block in doc.get("locals", []):
                self.locals |= set(_keys(block))
        for kind in ("resource", "data"):
            for name, (path, body) in self.declared[kind].items():
                report.add(self._check_instance(kind, name, path, body))
        for name, (path, body) in self.modules.items():
            report.add(self._check_module_call(name, path, body))
        for path, doc in docs.items():
            report.add(self._check_references(path, doc))
        return report

    def _type_schema(self, kind: str, rtype: str) -> dict | None:
        if kind == "resource" and rtype in BUILTIN:
            return BUILTIN[rtype]
        return self.schema[kind].get(rtype)

    def _check_instance(self, kind: str, name: str, path: Path, body: dict) -> Report:
        report = Report()
        rtype = name.split(".")[0]
        where = f"{_rel(path)}: {'data.' if kind == 'data' else ''}{name}"
        schema = self._type_schema(kind, rtype)
        if schema is None and not _in_this_schema(rtype):
            # Another provider's (kubernetes_*, in eks-service): no schema of it can be had offline; counted.
            report.counts["other_provider_blocks"] += 1
            return report
        if schema is None:
            report.problems.append(f"{where}: unknown {'data source' if kind == 'data' else 'resource'} type {rtype}{_suggest(rtype, self.schema[kind])}")
            return report
        meta = RESOURCE_META if kind == "resource" else {"count", "for_each", "depends_on", "provider", "lifecycle"}
        self._check_block(body, schema, where, meta, report)
        for lifecycle in body.get("lifecycle", []) if _is_block(body.get("lifecycle")) else []:
            self._check_lifecycle(lifecycle, schema, where, report)
        for key in (("data", rtype, a) for a in _keys(body)) if kind == "data" else ():
            if key in DEPRECATED:
                report.problems.append(f"{where}: {key[2]}: {DEPRECATED[key]}")
        return report

    # ---- blocks and arguments ------------------------------------------------------------------------------
    def _check_block(self, body: dict, schema: dict, where: str, meta: set[str], report: Report) -> None:
        report.counts["blocks"] += 1
        arguments, blocks = schema["arguments"], schema["blocks"]
        present = Counter()
        for key in _keys(body):
            value = body[key]
            if key in meta:
                continue
            if key == "dynamic":
                for dynamic in value:
                    for label, dyn in dynamic.items():
                        self._check_dynamic(tfparse.unquote(label), dyn, blocks, where, report, present)
                continue
            report.counts["arguments"] += 1
            if key in arguments:
                if _is_block(value):
                    report.problems.append(f"{where}: {key} is an argument, written as a block (write `{key} = ...`)")
                else:
                    self._check_literal(value, arguments[key], f"{where}: {key}", report)
                present[key] += 1
            elif key in blocks:
                spec = blocks[key]
                if _is_block(value):
                    present[key] += len(value)
                    for i, nested in enumerate(value):
                        self._check_block(nested, spec["block"], f"{where}: {key}" + (f"[{i}]" if len(value) > 1 else ""), set(), report)
                elif spec["as_attr"]:
                    present[key] += 1  # an attribute HCL lets be written as blocks: `key = [...]` is right too
                else:
                    report.problems.append(f"{where}: {key} is a block, written as an argument (write `{key} {{ ... }}`)")
                    present[key] += 1
            else:
                report.problems.append(f"{where}: unknown argument or block {key}{_suggest(key, list(arguments) + list(blocks))}")
        for key, spec in blocks.items():
            if spec["max1"] and present[key] > 1:
                report.problems.append(f"{where}: {present[key]} {key} blocks; at most 1 is allowed")
        for key, spec in arguments.items():
            if spec["required"] and not present[key]:
                report.problems.append(f"{where}: missing required argument {key}")
        for key, spec in blocks.items():
            if spec["required"] and not present[key]:
                report.problems.append(f"{where}: missing required block {key}")

    def _check_dynamic(self, label: str, dyn: dict, blocks: dict, where: str, report: Report, present: Counter) -> None:
        report.counts["arguments"] += 1
        if label not in blocks:
            report.problems.append(f"{where}: dynamic \"{label}\": unknown block {label}{_suggest(label, blocks)}")
            return
        unknown = [k for k in _keys(dyn) if k not in {"for_each", "iterator", "labels", "content"}]
        if unknown or "for_each" not in dyn or "content" not in dyn:
            report.problems.append(f"{where}: dynamic \"{label}\" needs for_each and content only, has {sorted(_keys(dyn))}")
            return
        present[label] += 0 if not blocks[label]["required"] else 1  # zero or more instances: never over a maximum
        for content in dyn["content"]:
            self._check_block(content, blocks[label]["block"], f"{where}: dynamic {label}", set(), report)

    def _check_lifecycle(self, lifecycle: dict, schema: dict, where: str, report: Report) -> None:
        for key in _keys(lifecycle):
            if key not in LIFECYCLE:
                report.problems.append(f"{where}: lifecycle: unknown argument or block {key}{_suggest(key, LIFECYCLE)}")
        entries = lifecycle.get("ignore_changes", [])
        if isinstance(entries, str):
            if tfparse.expression(entries) == "all":
                return
            entries = [entries]
        settable = set(schema["arguments"]) | set(schema["blocks"])
        for entry in entries:
            report.counts["references"] += 1
            root = re.split(r"[.\[]", tfparse.expression(entry).strip(), maxsplit=1)[0]
            if root not in settable:
                report.problems.append(f"{where}: lifecycle.ignore_changes: {root} is not an argument or block of this type{_suggest(root, settable)}")

    def _check_literal(self, value, spec: dict, where: str, report: Report) -> None:
        storage, kind = spec["storage"], spec["kind"]
        if tfparse.is_expression(value) or value is None:
            return  # an expression: its type is known only to Terraform
        literal = tfparse.unquote(value) if isinstance(value, str) else value
        text = value if isinstance(value, str) else json.dumps(tfparse.plain(value))
        if kind == "simple" and storage == "number":
            if isinstance(value, bool) or isinstance(value, (list, dict)) or (isinstance(value, str) and not re.fullmatch(r"-?\d+(\.\d+)?", literal)):
                report.problems.append(f"{where} = {text}: a number is expected")
        elif kind == "simple" and storage == "boolean":
            if not isinstance(value, bool) and not (isinstance(value, str) and literal in ("true", "false")):
                report.problems.append(f"{where} = {text}: true or false is expected")
        elif kind == "simple" and storage == "string":
            if isinstance(value, (list, dict)):
                report.problems.append(f"{where} = {text}: a string is expected")
        elif kind in ("list", "set") and storage.endswith("List") and storage[:-4] in ("string", "number", "boolean"):
            if not isinstance(value, list):
                report.problems.append(f"{where} = {text}: a {kind} of {storage[:-4]}s is expected")
            else:
                for item in value:
                    if isinstance(item, (list, dict)):
                        report.problems.append(f"{where}: element {item}: a {storage[:-4]} is expected")
                    elif storage == "numberList" and isinstance(item, str) and not tfparse.is_expression(item) and not re.fullmatch(r"-?\d+(\.\d+)?", tfparse.unquote(item)):
                        report.problems.append(f"{where}: element {item}: a number is expected")
        elif kind == "map" and not isinstance(value, dict):
            report.problems.append(f"{where} = {text}: a map is expected")

    # ---- module calls --------------------------------------------------------------------------------------
    def _check_module_call(self, name: str, path: Path, body: dict) -> Report:
        report = Report()
        where = f"{_rel(path)}: module.{name}"
        source = tfparse.unquote(body.get("source", '""'))
        report.counts["blocks"] += 1
        if not source.startswith("./") and not source.startswith("../"):
            return report  # a registry or git module: its variables are not here
        target = (self.dir / source).resolve()
        if not (target / "variables.tf").is_file():
            report.problems.append(f"{where}: source {source} has no variables.tf")
            return report
        variables = tfparse.variables(target)
        given = {k for k in _keys(body) if k not in MODULE_META}
        report.counts["arguments"] += len(given)
        for arg in sorted(given - set(variables)):
            report.problems.append(f"{where}: argument {arg} is not a variable of {source}{_suggest(arg, variables)}")
        for variable, vbody in sorted(variables.items()):
            if "default" not in vbody and variable not in given:
                report.problems.append(f"{where}: required variable {variable} of {source} is not passed")
        return report

    # ---- references ----------------------------------------------------------------------------------------
    def _check_references(self, path: Path, doc: dict) -> Report:
        report = Report()
        for kind, blocks in (("resource", tfparse.nested_blocks(doc, "resource")), ("data", tfparse.nested_blocks(doc, "data"))):
            for name, body in blocks.items():
                prefix = f"{_rel(path)}: {'data.' if kind == 'data' else ''}{name}"
                body = {k: v for k, v in body.items() if k != "lifecycle"} | {
                    "lifecycle": [{k: v for k, v in lc.items() if k != "ignore_changes"} for lc in body.get("lifecycle", []) if isinstance(lc, dict)]
                }
                self._references_in(body, prefix, report)
        for kind in ("output", "module", "locals", "variable"):
            for entry in doc.get(kind, []):
                for name, body in entry.items():
                    label = "local" if kind == "locals" else kind
                    self._references_in(body, f"{_rel(path)}: {label}.{tfparse.unquote(name)}", report)
        return report

    def _references_in(self, value, where: str, report: Report) -> None:
        for expression in _expressions(value):
            for m in _REFERENCE.finditer(expression):
                root, name, steps = m.groups()
                report.counts["references"] += 1
                problem = self._reference(root, name, steps)
                if problem:
                    report.problems.append(f"{where}: {m.group(0)}: {problem}")

    def _reference(self, root: str, name: str, steps: str) -> str | None:
        steps_list = [(idx, attr) for idx, attr in _STEP.findall(steps)]
        if root == "module":
            if name not in self.modules:
                return f"no module {name} is declared here"
            _, body = self.modules[name]
            steps_list = _past_instance_key(f"module.{name}", body, steps_list)
            if isinstance(steps_list, str) or not steps_list:
                return steps_list or None
            output = steps_list[0][1]
            source = tfparse.unquote(body.get("source", '""'))
            target = (self.dir / source).resolve()
            if (target / "outputs.tf").is_file() and output and output not in tfparse.outputs(target):
                return f"{source} has no output {output}{_suggest(output, tfparse.outputs(target))}"
            return None
        kind = "data" if root.startswith("data.") else "resource"
        rtype = root.removeprefix("data.")
        schema = self._type_schema(kind, rtype)
        if schema is None and not _in_this_schema(rtype):
            return None
        if schema is None:
            return f"unknown {'data source' if kind == 'data' else 'resource'} type {rtype}{_suggest(rtype, self.schema[kind])}"
        declared = self.declared[kind].get(f"{rtype}.{name}")
        if declared is None:
            return f"no {root} \"{name}\" is declared in {self.dir.name}"
        steps_list = _past_instance_key(f"{root}.{name}", declared[1], steps_list)
        if isinstance(steps_list, str) or not steps_list:
            return steps_list or None
        attribute = steps_list[0][1]
        if (kind, rtype, attribute) in DEPRECATED:
            return DEPRECATED[(kind, rtype, attribute)]
        return self._walk(schema["attrs"], schema["blocks"], steps_list, f"{rtype}")

    def _walk(self, attrs: dict, blocks: dict, steps: list[tuple[str, str]], path: str) -> str | None:
        index, attribute = steps[0]
        if not attribute:
            return f"{path} is not a list or map: [{index}] cannot apply"
        if attribute not in attrs:
            return f"{path} has no attribute {attribute}{_suggest(attribute, attrs)}"
        entry = attrs[attribute]
        kind, rest = entry["kind"], steps[1:]
        here = f"{path}.{attribute}"
        if not rest or kind == "any":
            return None
        block = blocks.get(attribute, {})
        if block.get("nesting") in ("list", "set"):
            kind = f"object_{block['nesting']}"  # a block, even one of at most one, is a list or set to Terraform
        if kind in ("string", "number", "bool"):
            return f"{here} is a {kind}: nothing can follow it"
        if kind in ("list", "set"):
            if kind == "set" and rest[0][0] not in ("", "*"):
                return f"{here} is a set: its elements cannot be indexed (use one(), tolist() or a for expression)"
            return None if len(rest) == 1 else f"{here}[...] is a {kind} element: nothing can follow it"
        if kind == "map":
            return None
        nested_blocks = block.get("block", {}).get("blocks", {})
        if kind == "object":
            return self._walk(entry.get("attrs", {}), nested_blocks, rest, here)
        # object_list / object_set: an index, then attributes
        if rest[0][1]:
            return f"{here} is a list of objects: index it ({here}[0].{rest[0][1]})"
        if kind == "object_set" and rest[0][0] != "*":
            return f"{here} is a set: its elements cannot be indexed (use one(), tolist() or a for expression)"
        rest = rest[1:]
        return None if not rest else self._walk(entry.get("attrs", {}), nested_blocks, rest, f"{here}[...]")


def _past_instance_key(label: str, body: dict, steps: list[tuple[str, str]]) -> list[tuple[str, str]] | str:
    """The steps after a resource's or module's instance key, or the problem with it: a block with count or
    for_each is indexed before its attributes are read (`[0]`, `[each.key]`, `[*]`); a single one is not."""
    meta = "count" if "count" in body else "for_each" if "for_each" in body else None
    if steps and steps[0][0] != "":  # an index or a splat
        if meta is None and steps[0][0] != "*":
            return f"{label} has neither count nor for_each: it cannot be indexed"
        return steps[1:]
    if meta and steps:
        return f"{label} has {meta}: index it ({label}[...].{steps[0][1]})"
    return steps


def check_all(schema: dict, directories: list[Path]) -> Report:
    report = Report()
    checker = Checker(schema)
    for directory in directories:
        report.add(checker.check(directory))
    return report


def main() -> int:
    """Check every module and example against each pinned provider release; print the problems and the figures."""
    import time

    import provider_package
    import provider_schema

    directories = tfparse.module_dirs() + tfparse.example_dirs()
    failed = False
    for provider in provider_package.PACKAGES:
        started = time.monotonic()
        schema = provider_schema.load(provider_package.verified(provider))
        report = check_all(schema, directories)
        for problem in report.problems:
            print(f"error: {problem}")
        c = report.counts
        print(
            f"schema check, AWS provider {provider} ({schema['package']}): {len(directories)} directories, "
            f"{c['blocks']} blocks, {c['arguments']} arguments, {c['references']} references checked, "
            f"{len(report.problems)} problems ({c['other_provider_blocks']} blocks of other providers not checked), "
            f"{time.monotonic() - started:.1f} s"
        )
        failed |= bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
