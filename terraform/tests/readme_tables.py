#!/usr/bin/env python3
"""Write (or check) the inputs and outputs tables of each Terraform module's and example's README.md.

The tables live between `<!-- BEGIN_TF_TABLES -->` and `<!-- END_TF_TABLES -->` and are generated from
variables.tf and outputs.tf (terraform-docs does the same, but cannot be installed here).

    python terraform/tests/readme_tables.py            rewrite every README that is out of date
    python terraform/tests/readme_tables.py --check    list the READMEs that are out of date; exit 1 if any
    python terraform/tests/readme_tables.py DIR...     only these module or example folders
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tfparse  # noqa: E402

BEGIN = "<!-- BEGIN_TF_TABLES -->"
END = "<!-- END_TF_TABLES -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    text = _cell(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def render_value(value) -> str:
    """A literal default in HCL syntax, on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{json.dumps(k) if '-' in k else k} = {render_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render {value!r}")


def tables(directory: Path) -> str:
    lines = ["## Inputs", ""]
    variables = tfparse.variables(directory)
    if variables:
        lines += ["| Name | Description | Type | Default | Required |", "| --- | --- | --- | --- | :---: |"]
        for name, body in variables.items():
            description = tfparse.unquote(body.get("description", '""'))
            type_text = tfparse.expression(body.get("type", "any"))
            required = "default" not in body
            default = "n/a" if required else _code(render_value(tfparse.plain(body["default"])))
            lines.append(
                f"| `{name}` | {_cell(description)} | {_code(type_text)} | {default} | {'yes' if required else 'no'} |"
            )
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    outputs = tfparse.outputs(directory)
    if outputs:
        lines += ["| Name | Description |", "| --- | --- |"]
        for name, body in outputs.items():
            description = tfparse.unquote(body.get("description", '""'))
            lines.append(f"| `{name}` | {_cell(description)} |")
    else:
        lines.append("No outputs.")
    return "\n".join(lines)


def expected_readme(directory: Path) -> tuple[str, str]:
    """(current README text, README text with fresh tables). Raises ValueError without the markers."""
    readme = directory / "README.md"
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{readme}: missing {BEGIN} ... {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return text, f"{head}{BEGIN}\n{tables(directory)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date READMEs (exit 1 if any)")
    parser.add_argument("dirs", nargs="*", type=Path, help="module or example folders (default: all)")
    args = parser.parse_args(argv)
    dirs = args.dirs or tfparse.module_dirs() + tfparse.example_dirs()
    stale = []
    for directory in dirs:
        current, expected = expected_readme(directory)
        if current == expected:
            continue
        stale.append(directory)
        if not args.check:
            (directory / "README.md").write_text(expected, encoding="utf-8")
            print(f"updated {directory / 'README.md'}")
    if args.check and stale:
        for directory in stale:
            print(f"out of date: {directory / 'README.md'} (run python terraform/tests/readme_tables.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
