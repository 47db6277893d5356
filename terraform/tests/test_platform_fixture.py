"""The `ferry_platform` fixture built from each example has the contract's shape (docs/contracts.md section 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import platform_fixture
import tfparse
from test_structure import contract_example, key_paths

SCRIPT = Path(platform_fixture.__file__)
EXAMPLES = {"minimal": tfparse.EXAMPLES_DIR / "minimal", "complete": tfparse.EXAMPLES_DIR / "complete"}


def fixture(example: Path) -> dict:
    """Run the script as the agent's test does, and parse what it prints."""
    proc = subprocess.run([sys.executable, str(SCRIPT), str(example)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def same_type(value, contract_value, path: str):
    if path in {"sync_function", "http_api_id"}:  # string or null
        assert value is None or isinstance(value, str), path
    elif path == "http_api_authorization":  # object or null
        assert value is None or isinstance(value, dict) and isinstance(value.get("type"), str), path
    elif isinstance(contract_value, bool) or isinstance(contract_value, int):
        assert type(value) is type(contract_value), path
    elif isinstance(contract_value, str):
        assert isinstance(value, str) and value, path
    elif isinstance(contract_value, list):
        assert isinstance(value, list) and value and all(isinstance(v, str) for v in value), path
    elif isinstance(contract_value, dict):
        assert isinstance(value, dict), path
        if path in platform_fixture.MAPS:
            assert value and all(isinstance(v, str) for v in value.values()), path
        else:
            for key, item in contract_value.items():
                same_type(value[key], item, f"{path}.{key}")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_fixture_has_the_contract_fields_and_types(name: str):
    value = fixture(EXAMPLES[name])
    contract = contract_example()
    assert key_paths(value) == key_paths(contract)
    for key, item in contract.items():
        same_type(value[key], item, key)
    assert value["schema_version"] == 1
    assert value["audit_prefix"].endswith("/") and value["lock_prefix"].endswith("/")
    assert value["efs"]["mount_path"].startswith("/mnt/")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_fixture_functions_are_the_models_of_the_tfvars_example(name: str):
    tfvars = tfparse.plain(tfparse.load(EXAMPLES[name] / "terraform.tfvars.example"))
    assert sorted(fixture(EXAMPLES[name])["functions"]) == sorted(tfvars["models"])


def test_minimal_has_no_http_api_and_complete_has_one():
    assert fixture(EXAMPLES["minimal"])["http_api_id"] is None
    assert isinstance(fixture(EXAMPLES["complete"])["http_api_id"], str)


def test_placeholders_look_like_the_values_they_stand_for():
    value = fixture(EXAMPLES["complete"])
    assert value["network"]["subnet_ids"] == ["subnet-placeholder-0"]
    assert value["network"]["security_group_ids"] == ["sg-placeholder-0"]
    assert value["efs"]["inference_access_point_arn"].startswith("arn:aws:elasticfilesystem:")


def test_fixture_keeps_literals_and_reads_model_keys_from_the_variable_default(tmp_path: Path):
    (tmp_path / "variables.tf").write_text(
        'variable "models" {\n  description = "the models"\n  type = map(object({}))\n'
        '  default = { "a-model" = {}, b = {} }\n}\n'
    )
    (tmp_path / "main.tf").write_text('module "fn" {\n  source   = "../x"\n  for_each = var.models\n}\n')
    (tmp_path / "outputs.tf").write_text(
        'output "ferry_platform" {\n  description = "x"\n  value = {\n    schema_version = 1\n'
        '    region = "eu-west-1"\n    network = { subnet_ids = ["subnet-1", module.n.id], security_group_ids = module.n.sgs }\n'
        '    functions = { for k, f in module.fn : k => f.function_name }\n    http_api_id = null\n  }\n}\n'
    )
    value = platform_fixture.build(tmp_path)
    assert value == {
        "schema_version": 1,
        "region": "eu-west-1",
        "network": {"subnet_ids": ["subnet-1", "subnet-placeholder-1"], "security_group_ids": ["sg-placeholder-0"]},
        "functions": {"a-model": "ferry-placeholder-a-model", "b": "ferry-placeholder-b"},
        "http_api_id": None,
    }


def test_fixture_refuses_a_field_outside_the_contract(tmp_path: Path):
    (tmp_path / "outputs.tf").write_text(
        'output "ferry_platform" {\n  description = "x"\n  value = {\n    surprise = module.x.y\n  }\n}\n'
    )
    with pytest.raises(platform_fixture.FixtureError, match="surprise"):
        platform_fixture.build(tmp_path)
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1 and "surprise" in proc.stderr
