"""Structural tests of Ferry's Terraform modules and examples (no provider can run here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import readme_tables
import tfparse

MODULES = [
    "network",
    "artifact-store",
    "model-storage",
    "model-function",
    "artifact-sync",
    "runtime-layer",
    "deploy-role",
    "http-api",
    "eks-service",
]
EXAMPLES = ["minimal", "complete", "eks-service"]
STACKS = ["minimal", "complete"]  # whole platforms, each with the one output ferry_platform; eks-service adds to one
REQUIRED_FILES = ["main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"]
CONTRACTS = tfparse.TERRAFORM_DIR.parent / "docs" / "contracts.md"

module_dirs = [tfparse.MODULES_DIR / m for m in MODULES]
example_dirs = [tfparse.EXAMPLES_DIR / e for e in EXAMPLES]
stack_dirs = [tfparse.EXAMPLES_DIR / e for e in STACKS]
all_dirs = module_dirs + example_dirs


def ids(dirs):
    return [f"{d.parent.name}/{d.name}" for d in dirs]


# ---- layout ---------------------------------------------------------------------------------------------------
def test_the_issue_modules_and_examples_exist_and_nothing_else():
    assert sorted(p.name for p in tfparse.module_dirs()) == sorted(MODULES)
    assert sorted(p.name for p in tfparse.example_dirs()) == sorted(EXAMPLES)


@pytest.mark.parametrize("directory", all_dirs, ids=ids(all_dirs))
def test_has_the_four_files_and_a_readme(directory: Path):
    missing = [f for f in REQUIRED_FILES if not (directory / f).is_file()]
    assert not missing, f"{directory} lacks {missing}"


@pytest.mark.parametrize("directory", all_dirs, ids=ids(all_dirs))
def test_versions_require_terraform_1_5_and_aws_6(directory: Path):
    # 6.0 is the floor: data.aws_region's `region` exists from 6.0 (`name` is deprecated there); the schema check
    # (tools/tfschema) holds every module to 6.0.0's and 6.25.0's schemas. 7.0 may break anything: the bound.
    terraform = tfparse.load(directory / "versions.tf")["terraform"][0]
    assert tfparse.unquote(terraform["required_version"]) == ">= 1.5"
    aws = terraform["required_providers"][0]["aws"]
    assert tfparse.unquote(aws["source"]) == "hashicorp/aws"
    assert tfparse.unquote(aws["version"]) == ">= 6.0, < 7.0"


@pytest.mark.parametrize("directory", all_dirs, ids=ids(all_dirs))
def test_every_provider_constraint_has_a_floor_and_the_next_major_as_its_bound(directory: Path):
    # A provider's major release may break anything: every provider (aws, kubernetes, ...) is held below its next
    # major, from a floor the code is written against.
    providers = tfparse.load(directory / "versions.tf")["terraform"][0]["required_providers"][0]
    problems = []
    for name, pin in ((k, v) for k, v in providers.items() if not k.startswith("__")):
        constraint = tfparse.unquote(pin.get("version", '""'))
        m = re.fullmatch(r">= (\d+)\.(\d+), < (\d+)\.0", constraint)
        if not m or int(m.group(3)) != int(m.group(1)) + 1:
            problems.append(f"{name}: {constraint!r} is not \">= MAJOR.MINOR, < MAJOR+1.0\"")
    assert not problems, f"{directory}/versions.tf: " + "; ".join(problems)


@pytest.mark.parametrize("directory", all_dirs, ids=ids(all_dirs))
def test_no_deprecated_region_name(directory: Path):
    for path in tfparse.tf_files(directory):
        uses = re.findall(r"data\.aws_region\.[a-z_]+\.name\b", path.read_text(encoding="utf-8"))
        assert not uses, f"{path}: {uses}: deprecated since AWS provider 6.0, use .region"


@pytest.mark.parametrize("directory", module_dirs, ids=ids(module_dirs))
def test_modules_configure_no_provider(directory: Path):
    for path in tfparse.tf_files(directory):
        assert "provider" not in tfparse.load(path), f"{path}: a module must not configure providers"


# ---- variables and outputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("directory", all_dirs, ids=ids(all_dirs))
def test_every_variable_is_typed_and_described(directory: Path):
    variables = tfparse.variables(directory)
    assert variables, f"{directory}: no variables"
    for name, body in variables.items():
        assert "type" in body, f"{directory.name}: variable {name} has no type"
        type_text = tfparse.expression(body["type"])
        assert not re.search(r"\bany\b", type_text), f"{directory.name}: variable {name} uses `any`; use object() with optional()"
        description = tfparse.unquote(body.get("description", '""'))
        assert len(description) >= 10, f"{directory.name}: variable {name} has no real description"
        for validation in body.get("validation", []):
            message = tfparse.unquote(validation.get("error_message", '""'))
            assert message.endswith("."), f"{directory.name}: variable {name}: error_message must be a sentence"


@pytest.mark.parametrize("directory", all_dirs, ids=ids(all_dirs))
def test_every_referenced_variable_local_and_module_is_declared(directory: Path):
    text = "\n".join(p.read_text(encoding="utf-8") for p in tfparse.tf_files(directory))
    variables = set(tfparse.variables(directory))
    locals_ = {k for p in tfparse.tf_files(directory) for block in tfparse.load(p).get("locals", []) for k in block}
    modules = set(tfparse.all_blocks(directory, "module"))
    for kind, declared in [("var", variables), ("local", locals_), ("module", modules)]:
        used = set(re.findall(rf"\b{kind}\.([A-Za-z0-9_]+)", text))
        assert used <= declared, f"{directory.name}: undeclared {kind}.{sorted(used - declared)}"


@pytest.mark.parametrize("directory", all_dirs, ids=ids(all_dirs))
def test_every_output_is_described(directory: Path):
    outputs = tfparse.outputs(directory)
    assert outputs, f"{directory}: no outputs"
    for name, body in outputs.items():
        description = tfparse.unquote(body.get("description", '""'))
        assert len(description) >= 10, f"{directory.name}: output {name} has no real description"


@pytest.mark.parametrize("directory", module_dirs, ids=ids(module_dirs))
def test_every_module_takes_tags(directory: Path):
    variables = tfparse.variables(directory)
    assert tfparse.expression(variables["tags"]["type"]) == "map(string)"


# ---- READMEs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("directory", all_dirs, ids=ids(all_dirs))
def test_readme_tables_match_variables_and_outputs(directory: Path):
    current, expected = readme_tables.expected_readme(directory)
    assert current == expected, f"{directory}/README.md is out of date: run python terraform/tests/readme_tables.py"


@pytest.mark.parametrize("directory", module_dirs, ids=ids(module_dirs))
def test_module_readme_has_a_usage_block_calling_the_module(directory: Path):
    text = (directory / "README.md").read_text(encoding="utf-8")
    assert "## Usage" in text
    assert re.search(r'```hcl\s+module "[a-z_]+" \{\s+source\s+= "\.\./\.\./modules/' + re.escape(directory.name) + '"', text)


def test_readme_tables_detects_a_stale_table(tmp_path: Path):
    for name in ["variables.tf", "outputs.tf"]:
        (tmp_path / name).write_text((tfparse.MODULES_DIR / "eks-service" / name).read_text())
    (tmp_path / "README.md").write_text(f"# x\n{readme_tables.BEGIN}\n## Inputs\nold\n{readme_tables.END}\ntail\n")
    assert readme_tables.main(["--check", str(tmp_path)]) == 1
    assert readme_tables.main([str(tmp_path)]) == 0
    assert readme_tables.main(["--check", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "| `cluster` |" in text and "| `ferry_platform` |" in text and text.endswith("tail\n")


# ---- examples -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("directory", example_dirs, ids=ids(example_dirs))
def test_examples_reference_modules_by_relative_path(directory: Path):
    modules = tfparse.all_blocks(directory, "module")
    assert modules
    for name, body in modules.items():
        source = tfparse.unquote(body["source"])
        assert source.startswith("../../modules/"), f"{directory.name}: module {name} source {source!r} is not relative"
        assert (directory / source).resolve().parent == tfparse.MODULES_DIR
        assert (directory / source / "main.tf").is_file(), f"{directory.name}: module {name}: {source} does not exist"


@pytest.mark.parametrize("directory", stack_dirs, ids=ids(stack_dirs))
def test_example_has_exactly_one_output_ferry_platform(directory: Path):
    assert list(tfparse.outputs(directory)) == ["ferry_platform"]


@pytest.mark.parametrize("directory", example_dirs, ids=ids(example_dirs))
def test_tfvars_example_sets_every_required_variable_and_only_declared_ones(directory: Path):
    tfvars = tfparse.plain(tfparse.load(directory / "terraform.tfvars.example"))
    variables = tfparse.variables(directory)
    required = {n for n, b in variables.items() if "default" not in b}
    assert required <= set(tfvars), f"{directory.name}: terraform.tfvars.example lacks {sorted(required - set(tfvars))}"
    assert set(tfvars) <= set(variables), f"{directory.name}: undeclared {sorted(set(tfvars) - set(variables))}"


@pytest.mark.parametrize("directory", example_dirs, ids=ids(example_dirs))
def test_example_passes_every_module_input_it_sets_to_a_declared_variable(directory: Path):
    for name, body in tfparse.all_blocks(directory, "module").items():
        declared = set(tfparse.variables(directory / tfparse.unquote(body["source"])))
        meta = {"source", "for_each", "count", "depends_on", "providers"}
        given = {k for k in body if k not in meta and not k.startswith("__")}
        assert given <= declared, f"{directory.name}: module {name} sets undeclared inputs {sorted(given - declared)}"
        for variable, vbody in tfparse.variables(directory / tfparse.unquote(body["source"])).items():
            if "default" not in vbody:
                assert variable in given, f"{directory.name}: module {name} misses required input {variable}"


def contract_example() -> dict:
    """The JSON example of docs/contracts.md section 1."""
    text = CONTRACTS.read_text(encoding="utf-8")
    section = text.split("## 1.", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "docs/contracts.md section 1 has no JSON example"
    return json.loads(block.group(1))


def key_paths(value: dict, prefix: str = "", opaque=("functions", "runtime.layer_packages", "http_api_authorization")) -> set[str]:
    paths = set()
    for key, item in value.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(item, dict) and path not in opaque:
            paths |= key_paths(item, f"{path}.")
    return paths


@pytest.mark.parametrize("directory", stack_dirs, ids=ids(stack_dirs))
def test_ferry_platform_has_exactly_the_fields_of_the_contract(directory: Path):
    value = tfparse.plain(tfparse.outputs(directory)["ferry_platform"]["value"])
    assert key_paths(value) == key_paths(contract_example())
    assert value["schema_version"] == contract_example()["schema_version"]


# ---- security --------------------------------------------------------------------------------------------------
def star_on_star(policy: dict) -> list[str]:
    """Sids (or indexes) of Allow statements that grant action "*" on resource "*"."""
    bad = []
    for i, statement in enumerate(tfparse.policy_statements(policy)):
        st = tfparse.plain(statement)
        if st.get("effect", "Allow") == "Deny":
            continue
        actions = st.get("actions", []) if isinstance(st.get("actions"), list) else [st.get("actions")]
        resources = st.get("resources", []) if isinstance(st.get("resources"), list) else [st.get("resources")]
        if ("*" in actions or "*:*" in actions or "not_actions" in st) and ("*" in resources or "not_resources" in st):
            bad.append(st.get("sid", str(i)))
    return bad


@pytest.mark.parametrize("directory", module_dirs, ids=ids(module_dirs))
def test_no_iam_statement_grants_every_action_on_every_resource(directory: Path):
    for path in tfparse.tf_files(directory):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r'"Action"\s*[:=]\s*"\*"', text), f"{path}: inline JSON policy with Action *"
        for name, policy in tfparse.nested_blocks(tfparse.load(path), "data").items():
            if name.startswith("aws_iam_policy_document."):
                assert not star_on_star(policy), f"{path}: {name} grants * on *: {star_on_star(policy)}"


def test_star_on_star_detector_finds_a_bad_statement():
    bad = tfparse.nested_blocks(
        tfparse.hcl2.loads(
            'data "aws_iam_policy_document" "x" {\n'
            '  statement {\n    sid = "Ok"\n    actions = ["s3:GetObject"]\n    resources = ["*"]\n  }\n'
            '  dynamic "statement" {\n    for_each = [1]\n    content {\n'
            '      sid = "Bad"\n      actions = ["*"]\n      resources = ["*"]\n    }\n  }\n}\n'
        ),
        "data",
    )["aws_iam_policy_document.x"]
    assert star_on_star(bad) == ["Bad"]


@pytest.mark.parametrize("directory", module_dirs, ids=ids(module_dirs))
def test_log_groups_have_retention_and_kms(directory: Path):
    for name, body in tfparse.all_blocks(directory, "resource", nested=True).items():
        if name.startswith("aws_cloudwatch_log_group."):
            assert "retention_in_days" in body and "kms_key_id" in body, f"{directory.name}: {name}"


@pytest.mark.parametrize("module", ["model-function", "artifact-sync"])
def test_functions_are_in_the_vpc_traced_and_wait_for_mount_targets(module: str):
    fn = tfparse.all_blocks(tfparse.MODULES_DIR / module, "resource", nested=True)["aws_lambda_function.this"]
    assert "vpc_config" in fn and "file_system_config" in fn and "tracing_config" in fn and "kms_key_arn" in fn
    assert "${terraform_data.efs_mount_targets}" in fn["depends_on"]
    default_mode = tfparse.unquote(tfparse.variables(tfparse.MODULES_DIR / module)["tracing_mode"]["default"])
    assert default_mode == "Active"


def test_model_function_ignores_what_ferry_publishes_per_version():
    fn = tfparse.all_blocks(tfparse.MODULES_DIR / "model-function", "resource", nested=True)["aws_lambda_function.this"]
    ignored = set(fn["lifecycle"][0]["ignore_changes"])
    assert {"environment", "memory_size", "timeout", "description", "layers"} <= ignored
    assert tfparse.plain(fn["publish"]) is False


def test_model_function_mounts_the_inference_access_point_read_only():
    policy = tfparse.all_blocks(tfparse.MODULES_DIR / "model-function", "data", nested=True)[
        "aws_iam_policy_document.execution"
    ]
    efs_actions = {
        a for st in tfparse.policy_statements(policy) for a in tfparse.plain(st)["actions"] if a.startswith("elasticfilesystem:")
    }
    assert efs_actions == {"elasticfilesystem:ClientMount"}


def test_model_storage_is_encrypted_backed_up_and_has_a_read_only_inference_access_point():
    resources = tfparse.all_blocks(tfparse.MODULES_DIR / "model-storage", "resource", nested=True)
    fs = tfparse.plain(resources["aws_efs_file_system.this"])
    assert fs["encrypted"] is True and fs["kms_key_id"] == "${var.kms_key_arn}"
    assert "aws_efs_backup_policy.this" in resources
    inference = tfparse.plain(resources["aws_efs_access_point.inference"])
    assert inference["posix_user"][0]["uid"] == "${var.posix.reader_uid}"
    assert inference["root_directory"][0]["creation_info"][0]["owner_uid"] == "${var.posix.writer_uid}"


def deploy_statements() -> dict[str, dict]:
    policy = tfparse.all_blocks(tfparse.MODULES_DIR / "deploy-role", "data", nested=True)[
        "aws_iam_policy_document.deploy"
    ]
    return {tfparse.plain(st)["sid"]: tfparse.plain(st) for st in tfparse.policy_statements(policy)}


def test_deploy_role_never_deletes_audit_records_and_writes_them():
    statements = deploy_statements()
    assert "s3:DeleteObject" not in statements["WriteAuditRecords"]["actions"]
    assert "s3:PutObject" in statements["WriteAuditRecords"]["actions"]
    assert statements["NeverDeleteAuditRecords"]["effect"] == "Deny"
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(statements["NeverDeleteAuditRecords"]["actions"])
    assert set(statements["DeployLock"]["actions"]) == {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
    assert statements["WhoAmI"]["actions"] == ["sts:GetCallerIdentity"]


def test_deploy_role_trusts_only_the_repository_subjects():
    trust = tfparse.all_blocks(tfparse.MODULES_DIR / "deploy-role", "data", nested=True)["aws_iam_policy_document.trust"]
    conditions = {tfparse.plain(c)["variable"]: tfparse.plain(c) for c in trust["statement"][0]["condition"]}
    assert conditions["token.actions.githubusercontent.com:aud"]["values"] == ["sts.amazonaws.com"]
    assert conditions["token.actions.githubusercontent.com:sub"]["test"] == "StringEquals"


def test_artifact_bucket_is_tls_only_and_not_public():
    resources = tfparse.all_blocks(tfparse.MODULES_DIR / "artifact-store", "resource", nested=True)
    block = tfparse.plain(resources["aws_s3_bucket_public_access_block.this"])
    assert all(block[k] is True for k in ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"])
    policy = tfparse.all_blocks(tfparse.MODULES_DIR / "artifact-store", "data", nested=True)["aws_iam_policy_document.bucket"]
    tls = [tfparse.plain(s) for s in tfparse.policy_statements(policy) if tfparse.plain(s).get("sid") == "DenyInsecureTransport"]
    assert tls and tls[0]["effect"] == "Deny" and tls[0]["condition"][0]["variable"] == "aws:SecureTransport"


@pytest.mark.parametrize("directory", example_dirs, ids=ids(example_dirs))
def test_examples_functions_reach_x_ray_when_they_trace(directory: Path):
    """A VPC-attached function with active tracing sends its segments from the VPC: it needs NAT or an X-Ray
    interface endpoint, or its traces are lost without an error."""
    variables = tfparse.variables(directory)
    if "network" not in tfparse.all_blocks(directory, "module"):
        pytest.skip(f"{directory.name} makes no VPC and no function (the eks-service example)")
    network = tfparse.all_blocks(directory, "module")["network"]
    interface_default = re.search(r'interface\s*=\s*optional\(list\(string\),\s*\[([^\]]*)\]\)', tfparse.expression(variables["vpc_endpoints"]["type"]))
    interface = re.findall(r'"([^"]+)"', interface_default.group(1)) if interface_default else []
    nat = "enable_nat_gateway" in network and tfparse.plain(variables.get("enable_nat_gateway", {}).get("default", False)) is True
    for call in ["model_function", "artifact_sync"]:
        module = tfparse.all_blocks(directory, "module")[call]
        mode = tfparse.unquote(module["tracing_mode"]) if "tracing_mode" in module else tfparse.unquote(
            tfparse.variables(directory / tfparse.unquote(module["source"]))["tracing_mode"]["default"]
        )
        if mode == "Active":
            assert nat or "xray" in interface, f"{directory.name}: module.{call} traces (tracing_mode Active) but vpc_endpoints' default {interface} has no xray and there is no NAT"
