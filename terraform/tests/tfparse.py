"""Small helpers over python-hcl2 (8.x) for Ferry's Terraform checks.

python-hcl2 8 keeps HCL's surface syntax in its values: block labels and string literals come back with their
quotes (`"\"name\""`), and expressions come back as `${...}` text. The helpers below turn that into plain Python.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import hcl2

TERRAFORM_DIR = Path(__file__).resolve().parent.parent
MODULES_DIR = TERRAFORM_DIR / "modules"
EXAMPLES_DIR = TERRAFORM_DIR / "examples"

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES_DIR.iterdir() if p.is_dir())


def example_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES_DIR.iterdir() if p.is_dir())


def load(path: Path) -> dict:
    """The parsed file (a fresh copy: parsing is the slow part of every test, so each file is parsed once)."""
    path = Path(path).resolve()
    return copy.deepcopy(_parse(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=None)
def _parse(path: Path, _mtime: int) -> dict:
    with open(path, encoding="utf-8") as f:
        return hcl2.load(f)


def is_string_literal(value) -> bool:
    return isinstance(value, str) and len(value) >= 2 and value.startswith('"') and value.endswith('"')


def is_expression(value) -> bool:
    return isinstance(value, str) and not is_string_literal(value)


def unquote(value: str) -> str:
    """`"\"a \\\"b\\\"\""` -> `a "b"`; HCL's `$${` and `%%{` escapes become `${` and `%{`."""
    if not is_string_literal(value):
        return value
    body = value[1:-1]
    body = re.sub(r'\\(["\\nrt])', lambda m: _ESCAPES[m.group(1)], body)
    return body.replace("$${", "${").replace("%%{", "%{")


def expression(value) -> str:
    """The text of an expression: `${foo}` -> `foo`; a bare word such as `string` stays as it is."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return value


def plain(value):
    """A literal HCL value as plain Python: strings unquoted (keys too), python-hcl2's `__is_block__` and
    `__comments__` markers dropped."""
    if isinstance(value, dict):
        return {unquote(k): plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return unquote(value) if is_string_literal(value) else value
    return value


def blocks(doc: dict, kind: str) -> dict[str, dict]:
    """Labelled blocks of one kind (`variable`, `output`, `module`): {name: body}."""
    found: dict[str, dict] = {}
    for entry in doc.get(kind, []):
        for label, body in entry.items():
            found[unquote(label)] = body
    return found


def nested_blocks(doc: dict, kind: str) -> dict[str, dict]:
    """Doubly labelled blocks (`resource`, `data`): {"type.name": body}."""
    found: dict[str, dict] = {}
    for entry in doc.get(kind, []):
        for type_label, named in entry.items():
            for name, body in named.items():
                found[f"{unquote(type_label)}.{unquote(name)}"] = body
    return found


def variables(directory: Path) -> dict[str, dict]:
    return blocks(load(directory / "variables.tf"), "variable")


def outputs(directory: Path) -> dict[str, dict]:
    return blocks(load(directory / "outputs.tf"), "output")


def tf_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.tf"))


def all_blocks(directory: Path, kind: str, nested: bool = False) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in tf_files(directory):
        doc = load(path)
        found.update(nested_blocks(doc, kind) if nested else blocks(doc, kind))
    return found


def policy_statements(policy: dict) -> list[dict]:
    """The statements of an `aws_iam_policy_document`, static and `dynamic "statement"` contents alike."""
    statements = list(policy.get("statement", []))
    for dynamic in policy.get("dynamic", []):
        for label, body in dynamic.items():
            if unquote(label) == "statement":
                statements += body.get("content", [])
    return statements
