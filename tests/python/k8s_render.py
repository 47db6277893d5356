"""Renders templates/k8s/*.yaml.hbs as `ferry render --target eks` is to render them, for the tests (a test aid: the
agent does not render them yet).

The engine is handlebars-rust itself, the crate the agent renders its Lambda template with, through PyPI's
dotprompt-handlebars (module `handlebarrz`, pinned in requirements/dev.in), configured as agent/src/render.rs
configures it: strict mode (a missing variable is an error naming it and the template line) and the helper `json`
(`{{{json x}}}` writes a value as JSON). The agent escapes every value with its JSON-string escape (`json_escape`),
which handlebarrz cannot take as an escape function; so this renders with no escaping and JSON-escapes every string
of the context beforehand, which writes the same bytes (the `json` helper undoes it to write the value itself).

    python tests/python/k8s_render.py [--context FILE] [--out DIR]   # default: the fixture, into the snapshots
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates" / "k8s"
CONTEXT = REPO / "tests" / "fixtures" / "k8s-render-context.json"
SNAPSHOTS = REPO / "tests" / "fixtures" / "k8s-rendered"
# The order `ferry deploy --target eks` is to apply them in; a template that renders only white space is skipped.
ORDER = ["service", "deployment", "hpa", "pdb"]

# handlebarrz logs every call at debug level through structlog; only its errors are worth a line.
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

import handlebarrz  # noqa: E402


class RenderError(Exception):
    pass


def json_escape(value):
    """Every string of `value` escaped as the agent's json_escape escapes it (the inside of a JSON string)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if isinstance(value, list):
        return [json_escape(v) for v in value]
    if isinstance(value, dict):
        return {json_escape(k): json_escape(v) for k, v in value.items()}
    return value


def json_unescape(value):
    if isinstance(value, str):
        return json.loads(f'"{value}"')
    if isinstance(value, list):
        return [json_unescape(v) for v in value]
    if isinstance(value, dict):
        return {json_unescape(k): json_unescape(v) for k, v in value.items()}
    return value


def _json_helper(params, hash_, ctx):
    if not params:
        raise RenderError("json: needs one parameter")
    return json.dumps(json_unescape(params[0]), ensure_ascii=False, separators=(",", ":"))


def engine() -> handlebarrz.Handlebars:
    hb = handlebarrz.Handlebars(escape_fn=handlebarrz.EscapeFunction.NO_ESCAPE)
    hb.strict_mode = True
    hb.register_helper("json", _json_helper)
    return hb


def template_path(name: str) -> Path:
    return TEMPLATES / f"{name}.yaml.hbs"


def render(name: str, context: dict, hb: handlebarrz.Handlebars | None = None) -> str:
    """One template rendered with `context`; RenderError names the template file, the line and the reason."""
    hb = hb or engine()
    path = template_path(name)
    label = str(path.relative_to(REPO))
    try:
        hb.register_template(label, path.read_text(encoding="utf-8"))
        return hb.render(label, json_escape(context))
    except ValueError as err:
        raise RenderError(f"{label}: {err}") from None


def render_all(context: dict) -> dict[str, str]:
    """Every template's output, in apply order, without the ones that rendered nothing."""
    hb = engine()
    out = {name: render(name, context, hb) for name in ORDER}
    return {name: text for name, text in out.items() if text.strip()}


def load_context(path: Path = CONTEXT) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--context", type=Path, default=CONTEXT)
    parser.add_argument("--out", type=Path, default=SNAPSHOTS)
    args = parser.parse_args(argv)
    try:
        rendered = render_all(load_context(args.context))
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("*.yaml"):
        stale.unlink()
    for name, text in rendered.items():
        (args.out / f"{name}.yaml").write_text(text, encoding="utf-8")
        print(f"wrote {args.out / f'{name}.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
