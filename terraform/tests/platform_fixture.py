#!/usr/bin/env python3
"""Print a `ferry_platform` value built from an example's output expression, as JSON.

    python terraform/tests/platform_fixture.py terraform/examples/complete

No provider can run here, so the values Terraform would compute are unknown. This script parses the example's
`output "ferry_platform"` with python-hcl2 and keeps its shape: literals stay as written (`schema_version = 1`,
`http_api_id = null`), and each expression becomes a placeholder of the type docs/contracts.md section 1 gives
that field (`"subnet-placeholder-0"`, a list of one element, ...). The `functions` map gets the example's model
keys, read from terraform.tfvars.example (or the default) of the variable its module's `for_each` iterates.
`runtime` gets the target of runtime/lambda-target.json (its runtime and first architecture) and, as the layer's
packages, the dev lock's versions of the packages the layer build reports first (the layer is built from that lock).
A test of the agent feeds the result to its platform parser, so the Terraform output and the agent's parser
cannot drift apart.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tfparse  # noqa: E402

OUTPUT = "ferry_platform"
REPO = tfparse.TERRAFORM_DIR.parent
TARGET = json.loads((REPO / "runtime" / "lambda-target.json").read_text(encoding="utf-8"))
LAYER_PACKAGES = ["mlflow-skinny", "numpy", "pandas", "cloudpickle"]


def lock_versions(names: list[str], lock: Path = REPO / "requirements" / "dev.txt") -> dict[str, str]:
    """{name: version} of `names` as the dev lock pins them (`name==version` lines)."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[name.lower().replace("_", "-")] = version.split(";")[0].strip()
    return {n: pins[n] for n in names if n in pins}


# Placeholders by field path, of the type (and shape, where the agent validates it) the contract gives.
PLACEHOLDERS = {
    "schema_version": 1,
    "environment": "placeholder",
    "region": "xx-placeholder-1",
    "artifact_bucket": "placeholder-artifact-bucket",
    "audit_prefix": "placeholder/audit/",
    "lock_prefix": "placeholder/locks/",
    "efs.file_system_id": "fs-placeholder",
    "efs.inference_access_point_arn": "arn:aws:elasticfilesystem:xx-placeholder-1:000000000000:access-point/fsap-placeholder-inference",
    "efs.sync_access_point_arn": "arn:aws:elasticfilesystem:xx-placeholder-1:000000000000:access-point/fsap-placeholder-sync",
    "efs.mount_path": "/mnt/placeholder",
    "network.subnet_ids": "subnet-placeholder-{i}",
    "network.security_group_ids": "sg-placeholder-{i}",
    "functions": "ferry-placeholder-{key}",
    "sync_function": "ferry-placeholder-artifact-sync",
    "http_api_id": "placeholder-api-id",
    "http_api_authorization": {"type": "AWS_IAM", "authorizer_id": None, "scopes": []},
    "runtime.python": TARGET["runtime"],
    "runtime.architecture": TARGET["architectures"][0],
    "runtime.layer_packages": lock_versions(LAYER_PACKAGES),
}
LISTS = {"network.subnet_ids", "network.security_group_ids"}
MAPS = {"functions", "runtime.layer_packages"}


class FixtureError(Exception):
    pass


def platform_output(example: Path) -> dict:
    outputs = tfparse.outputs(example)
    if OUTPUT not in outputs:
        raise FixtureError(f"{example}/outputs.tf: no output {OUTPUT!r}")
    value = outputs[OUTPUT].get("value")
    if not isinstance(value, dict):
        raise FixtureError(f"{example}/outputs.tf: output {OUTPUT!r} must be an object literal")
    return value


def tfvars_example(example: Path) -> dict:
    path = example / "terraform.tfvars.example"
    return tfparse.plain(tfparse.load(path)) if path.exists() else {}


def model_keys(example: Path, expr: str) -> list[str]:
    """Keys of a `{ for k, f in module.NAME : k => ... }` map: the keys of the variable NAME's for_each iterates."""
    match = re.search(r"\bmodule\.([A-Za-z0-9_-]+)", expr)
    if not match:
        raise FixtureError(f"functions: cannot find the module in {expr!r}")
    modules = tfparse.all_blocks(example, "module")
    module = modules.get(match.group(1))
    if module is None or "for_each" not in module:
        raise FixtureError(f"functions: module {match.group(1)!r} has no for_each")
    for_each = tfparse.expression(module["for_each"])
    var = re.fullmatch(r"var\.([A-Za-z0-9_-]+)", for_each.strip())
    if not var:
        raise FixtureError(f"functions: for_each of module {match.group(1)!r} is not a variable: {for_each!r}")
    name = var.group(1)
    tfvars = tfvars_example(example)
    if name in tfvars:
        return list(tfvars[name])
    variable = tfparse.variables(example).get(name, {})
    if "default" in variable:
        return list(tfparse.plain(variable["default"]))
    raise FixtureError(f"functions: variable {name!r} has no value in terraform.tfvars.example and no default")


def placeholder(example: Path, path: str, value):
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if tfparse.is_string_literal(value):
        return tfparse.unquote(value)
    if path not in PLACEHOLDERS:
        raise FixtureError(f"{OUTPUT}.{path}: not a field of docs/contracts.md section 1")
    template = PLACEHOLDERS[path]
    if isinstance(template, dict):  # a map whose keys Terraform computes: the placeholder map, or the literal one
        return tfparse.plain(value) if isinstance(value, dict) else dict(template)
    if path in LISTS:
        if isinstance(value, list):
            return [placeholder_item(template, i, v) for i, v in enumerate(value)]
        return [template.format(i=0)]
    if path in MAPS:
        if isinstance(value, dict):
            return {
                tfparse.unquote(k): placeholder_item(template, tfparse.unquote(k), v)
                for k, v in value.items()
                if not k.startswith("__")
            }
        return {k: template.format(key=k) for k in model_keys(example, tfparse.expression(value))}
    if isinstance(value, (list, dict)):
        raise FixtureError(f"{OUTPUT}.{path}: expected a single value, found {value!r}")
    return template


def placeholder_item(template: str, index, value):
    if value is None:
        return None
    if tfparse.is_string_literal(value):
        return tfparse.unquote(value)
    return template.format(i=index, key=index)


def build(example: Path, value=None, prefix: str = "") -> dict:
    value = platform_output(example) if value is None else value
    result = {}
    for key, item in value.items():
        if key.startswith("__"):  # python-hcl2's __is_block__ / __comments__ markers
            continue
        key = tfparse.unquote(key)
        path = f"{prefix}{key}"
        if isinstance(item, dict) and path not in MAPS:
            result[key] = build(example, item, f"{path}.")
        else:
            result[key] = placeholder(example, path, item)
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: platform_fixture.py EXAMPLE_DIR", file=sys.stderr)
        return 2
    try:
        print(json.dumps(build(Path(argv[0])), indent=2))
    except (FixtureError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
