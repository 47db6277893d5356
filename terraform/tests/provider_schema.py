"""The AWS provider's schema, read offline from the npm package `@cdktf/provider-aws` (generated from it).

No Terraform provider can be downloaded here, but CDKTF's bindings are generated from `terraform providers schema
-json` and `npm pack` fetches them as one tarball. From it, without installing or unpacking anything:

- the compiled JavaScript (`lib/<resource>/index.js`) gives each resource's and data source's Terraform type name
  (`tfResourceType`), every argument's and block's exact snake_case name (`synthesizeHclAttributes` and the
  `<struct>ToHclTerraform` mappers), whether it is a block (`isBlock`), its collection type (list, set, map,
  struct) and element type (`storageClassType`), whether a block holds at most one (mapped on its own rather than
  through `listMapperHcl`), whether a block is really an attribute that HCL lets be written as blocks
  (`listMapperHcl(..., false)`), and every readable attribute (the getters, nested lists and whether they wrap a
  set);
- the `.jsii` assembly gives, per config struct, which properties are optional (the rest are required).

The package carries no deprecation marks (its `.jsii` has none, nor its `.d.ts`): deprecated attributes are listed
in `schema_check.DEPRECATED` from the provider's upgrade guide instead.

`python provider_schema.py TARBALL OUT.json` writes the extract; `load(TARBALL)` reads it through a cache file
beside the tarball.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tarfile
from pathlib import Path

EXTRACT_FORMAT = 5  # bump when the extract's shape changes

_TOP_LEVEL = re.compile(r"\n(?=class |function )")  # the file's top-level classes and functions, in order
_CLASS = re.compile(r"class (\w+) extends cdktf\.(\w+) \{\n")
_MAPPER = re.compile(r"function (\w+)ToHclTerraform\(struct\) \{\n")
_TYPE_NAME = re.compile(r'\n(\w+)\.tfResourceType = "([a-z0-9_]+)";')
_ENTRY = re.compile(
    r"\n +([a-z0-9_]+): \{\n +value: ([^\n]*),\n +isBlock: (true|false),\n +type: \"(\w+)\",\n +storageClassType: \"(\w+)\",\n +\},?(?=\n)",
)
_GETTER = re.compile(r"\n    get (\w+)\(\) \{\n(?: +//[^\n]*\n)* +return ([^\n]*);\n +\}(?=\n)")
_NESTED = re.compile(r'this\._(\w+) = new (\w+?)(OutputReference|List|Map)\(this, "([a-z0-9_]+)"(?:, (true|false))?\);')
_ATTRIBUTE = re.compile(r"(cdktf\.Fn\.tolist\()?this\.get(\w*?)Attribute\('([a-z0-9_]+)'\)")
_INTERPOLATION = re.compile(r"this\.interpolationForAttribute\('([a-z0-9_]+)'\)")

_KIND_OF_GETTER = {
    "String": "string",
    "Number": "number",
    "Boolean": "bool",
    "List": "list",
    "NumberList": "list",
    "StringMap": "map",
    "NumberMap": "map",
    "BooleanMap": "map",
    "AnyMap": "map",
    "": "any",
}


def _struct_key(name: str) -> str:
    return name[0].upper() + name[1:]


def _entries(body: str) -> dict[str, dict]:
    """The `attrs` of a synthesizeHclAttributes / *ToHclTerraform body: snake name -> field."""
    fields = {}
    for m in _ENTRY.finditer(body):
        snake, value, is_block, kind, storage = m.groups()
        camel = re.search(r"(?:struct|this)\.(?:_)?(\w+)", value)
        mapper = re.search(r"(?<![.\w])(\w+)ToHclTerraform", value)
        listed = re.search(r"listMapperHcl\((\w+?)ToHclTerraform, (true|false)\)", value)
        field = {"camel": camel.group(1) if camel else None, "kind": kind, "storage": storage}
        if is_block == "true":
            field["block"] = _struct_key(mapper.group(1)) if mapper else None
            field["max1"] = listed is None
            field["as_attr"] = listed is not None and listed.group(2) == "false"
        fields[snake] = field
    return fields


def _readable(body: str) -> dict[str, dict]:
    """The getters of a class: snake name -> {kind, struct?}."""
    nested = {m.group(1): m.groups() for m in _NESTED.finditer(body)}
    attrs = {}
    for m in _GETTER.finditer(body):
        getter, expr = m.groups()
        if getter.endswith("Input") or getter in {"internalValue", "fqn"}:
            continue
        if a := _ATTRIBUTE.search(expr):
            tolist, kind, snake = a.groups()
            attrs[snake] = {"kind": "set" if tolist else _KIND_OF_GETTER.get(kind, "any")}
        elif a := _INTERPOLATION.search(expr):
            attrs[a.group(1)] = {"kind": "any"}
        elif (f := re.fullmatch(r"this\._(\w+)", expr.strip())) and f.group(1) in nested:
            _, struct, wrapper, snake, wraps_set = nested[f.group(1)]
            kind = {"OutputReference": "object", "Map": "object_map"}.get(wrapper) or (
                "object_set" if wraps_set == "true" else "object_list"
            )
            attrs[snake] = {"kind": kind, "struct": struct}
    return attrs


def extract_js(text: str) -> dict:
    """One lib/<name>/index.js: {types: {tf type: {class, data}}, structs: {key: {fields, attrs}}}."""
    types = {cls: name for cls, name in _TYPE_NAME.findall(text)}
    out = {"types": {}, "structs": {}}
    for chunk in _TOP_LEVEL.split(text):
        if m := _MAPPER.match(chunk):
            out["structs"].setdefault(_struct_key(m.group(1)), {})["fields"] = _entries(chunk[m.end() :])
            continue
        if not (m := _CLASS.match(chunk)):
            continue
        cls, base = m.groups()
        body = chunk[m.end() :]
        if base in ("TerraformResource", "TerraformDataSource") and cls in types:
            synth = body.split("synthesizeHclAttributes()", 1)
            out["types"][types[cls]] = {
                "class": cls,
                "data": base == "TerraformDataSource",
                "fields": _entries(synth[1]) if len(synth) > 1 else {},
                "attrs": _readable(body),
            }
        elif base == "ComplexObject" and cls.endswith("OutputReference"):
            out["structs"].setdefault(cls[: -len("OutputReference")], {})["attrs"] = _readable(body)
    return out


def _optional_flags(jsii: dict) -> dict[str, dict[str, bool]]:
    """Struct (interface) name -> camel property -> optional; resource configs are `<Class>Config`."""
    flags = {}
    for fqn, t in jsii["types"].items():
        if t.get("kind") == "interface" and t.get("datatype"):
            flags[fqn.rsplit(".", 1)[-1]] = {p["name"]: bool(p.get("optional")) for p in t.get("properties", [])}
    return flags


def _block(fields: dict, attrs: dict, optional: dict[str, bool], structs: dict, flags: dict, seen: tuple = ()) -> dict:
    """The schema of one block: arguments, nested blocks (recursively) and readable attributes."""
    arguments, blocks = {}, {}
    for snake, f in fields.items():
        required = f["camel"] is not None and optional.get(f["camel"], True) is False
        if "block" in f:
            key = f["block"]
            nested = structs.get(key, {})
            blocks[snake] = {
                "max1": f["max1"],
                "as_attr": f["as_attr"],
                "set": f["kind"] == "set",
                "nesting": f["kind"],  # list, set or struct (a single nested block, read without an index)
                "required": required,
                "block": _block(nested.get("fields", {}), nested.get("attrs", {}), flags.get(key, {}), structs, flags, seen + (key,))
                if key not in seen
                else {"arguments": {}, "blocks": {}, "attrs": {}},
            }
        else:
            arguments[snake] = {"kind": f["kind"], "storage": f["storage"], "required": required}
    readable = {}
    for snake, a in attrs.items():
        entry = {"kind": a["kind"]}
        if "struct" in a and a["struct"] not in seen:
            entry["attrs"] = _attrs_tree(a["struct"], structs, seen + (a["struct"],))
        readable[snake] = entry
    return {"arguments": arguments, "blocks": blocks, "attrs": readable}


def _attrs_tree(key: str, structs: dict, seen: tuple) -> dict:
    out = {}
    for snake, a in structs.get(key, {}).get("attrs", {}).items():
        entry = {"kind": a["kind"]}
        if "struct" in a and a["struct"] not in seen:
            entry["attrs"] = _attrs_tree(a["struct"], structs, seen + (a["struct"],))
        out[snake] = entry
    return out


def extract(tarball: Path) -> dict:
    """The schema of every resource and data source in the package."""
    jsii, package, per_file = None, None, []
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            if member.name == "package/.jsii":
                jsii = json.load(tar.extractfile(member))
            elif member.name == "package/package.json":
                package = json.load(tar.extractfile(member))
            elif re.fullmatch(r"package/lib/[a-z0-9-]+/index\.js", member.name):
                per_file.append(extract_js(tar.extractfile(member).read().decode("utf-8")))
    if jsii is None or package is None:
        raise ValueError(f"{tarball}: no package/.jsii or package/package.json: not a @cdktf/provider-aws tarball")
    flags = _optional_flags(jsii)
    schema = {
        "format": EXTRACT_FORMAT,
        "package": f"{package['name']}@{package['version']}",
        "provider": package["cdktf"]["provider"],
        "resource": {},
        "data": {},
    }
    for part in per_file:
        for name, t in part["types"].items():
            block = _block(t["fields"], t["attrs"], flags.get(f"{t['class']}Config", {}), part["structs"], flags)
            schema["data" if t["data"] else "resource"][name] = block
    return schema


def load(tarball: Path) -> dict:
    """The extract, from `<tarball>.schema.json` when it was made from this tarball in this format."""
    cache = tarball.with_name(tarball.name + ".schema.json")
    stamp = f"{tarball.stat().st_size}:{tarball.stat().st_mtime_ns}:{EXTRACT_FORMAT}"
    if cache.is_file():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("stamp") == stamp:
            return cached
    schema = extract(tarball) | {"stamp": stamp}
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")  # `make -j` may extract in two processes at once
    tmp.write_text(json.dumps(schema, separators=(",", ":")), encoding="utf-8")
    tmp.replace(cache)
    return schema


if __name__ == "__main__":
    result = extract(Path(sys.argv[1]))
    Path(sys.argv[2]).write_text(json.dumps(result, indent=1, sort_keys=True), encoding="utf-8")
    print(f"{result['package']} (AWS provider {result['provider']['version']}): {len(result['resource'])} resources, {len(result['data'])} data sources")
