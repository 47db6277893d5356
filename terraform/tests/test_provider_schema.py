"""Every module and example against the AWS provider's real schema, at the pinned release and at the constraint's
floor (issue #19, item 3), and a table of single-edit mutations of the real modules that the check must report.

The schemas come from the pinned `@cdktf/provider-aws` tarballs that `make terraform-provider-schema` fetches
(provider_package.py); provider_schema.py reads them, schema_check.py checks.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

import provider_package
import provider_schema
import schema_check
import tfparse

CURRENT, FLOOR = "6.25.0", "6.0.0"
DIRS = tfparse.module_dirs() + tfparse.example_dirs()


@functools.cache
def schema_of(provider: str) -> dict:
    return provider_schema.load(provider_package.verified(provider))


@pytest.fixture(scope="session", params=[CURRENT, FLOOR])
def schema(request) -> dict:
    return schema_of(request.param)


@pytest.fixture(scope="session")
def current() -> dict:
    return schema_of(CURRENT)


def test_every_module_and_example_matches_the_provider_schema(schema: dict):
    report = schema_check.check_all(schema, DIRS)
    assert not report.problems, f"AWS provider {schema['provider']['version']}:\n" + "\n".join(report.problems)
    # What was checked: a check that reads nothing passes nothing.
    assert report.counts["blocks"] >= 200 and report.counts["arguments"] >= 700 and report.counts["references"] >= 250, report.counts


def test_the_extract_holds_what_the_bindings_say(current: dict):
    assert current["provider"] == {"name": "registry.terraform.io/hashicorp/aws", "version": CURRENT}
    fn = current["resource"]["aws_lambda_function"]
    assert fn["arguments"]["function_name"]["required"] and fn["arguments"]["role"]["required"]
    assert not fn["arguments"]["memory_size"]["required"] and fn["arguments"]["memory_size"]["storage"] == "number"
    assert fn["blocks"]["vpc_config"]["max1"] and fn["blocks"]["vpc_config"]["nesting"] == "list"
    assert fn["blocks"]["timeouts"]["nesting"] == "struct"
    assert fn["blocks"]["vpc_config"]["block"]["arguments"]["subnet_ids"]["kind"] == "set"
    assert {"arn", "qualified_arn", "invoke_arn", "version"} <= set(fn["attrs"])
    assert current["resource"]["aws_security_group"]["blocks"]["ingress"]["as_attr"]  # attribute written as blocks
    assert not current["data"]["aws_iam_policy_document"]["blocks"]["statement"]["max1"]
    assert current["resource"]["aws_s3_bucket_versioning"]["blocks"]["versioning_configuration"]["required"]
    assert {"region", "name"} <= set(current["data"]["aws_region"]["attrs"])


def test_the_floor_is_an_older_schema(current: dict):
    floor = schema_of(FLOOR)
    assert floor["provider"]["version"] == FLOOR
    # Lambda's durable and tenancy configuration came after 6.0: the two extracts are really two releases.
    assert {"durable_config", "tenancy_config"} <= set(current["resource"]["aws_lambda_function"]["blocks"])
    assert not {"durable_config", "tenancy_config"} & set(floor["resource"]["aws_lambda_function"]["blocks"])


def test_a_tarball_that_does_not_match_its_pin_is_refused(tmp_path: Path):
    pin = provider_package.PACKAGES[CURRENT]
    (tmp_path / pin["file"]).write_bytes(b"not the package")
    with pytest.raises(ValueError, match="is not the pinned"):
        provider_package.verified(CURRENT, tmp_path)


# (file under terraform/, text found exactly once, its replacement, what the report must say)
MUTATIONS = [
    ("modules/model-function/main.tf", 'resource "aws_lambda_function" "this"', 'resource "aws_lambda_functions" "this"', "unknown resource type aws_lambda_functions"),
    ("modules/network/main.tf", 'data "aws_prefix_list" "s3"', 'data "aws_prefixlist" "s3"', "unknown data source type aws_prefixlist"),
    ("modules/model-function/main.tf", "  memory_size                    = var.memory_size", "  memory_mb = var.memory_size", "unknown argument or block memory_mb"),
    ("modules/model-function/main.tf", "    subnet_ids         = var.vpc.subnet_ids", "    subnets = var.vpc.subnet_ids", "vpc_config: unknown argument or block subnets"),
    ("modules/model-function/main.tf", "  tracing_config {", "  tracing {", "unknown argument or block tracing"),
    ("modules/artifact-sync/main.tf", "  ephemeral_storage {", "  ephemeral_storage = {", "ephemeral_storage is a block, written as an argument"),
    ("modules/artifact-store/main.tf", "  force_destroy       = var.force_destroy", "  force_destroy {\n  }", "force_destroy is an argument, written as a block"),
    ("modules/model-function/main.tf", "  role          = aws_iam_role.this.arn\n", "", "missing required argument role"),
    ("modules/artifact-store/main.tf", '  versioning_configuration {\n    status = "Enabled"\n  }\n', "", "missing required block versioning_configuration"),
    ("modules/artifact-sync/main.tf", "  tracing_config {\n    mode = var.tracing_mode\n  }\n", "  tracing_config {\n    mode = var.tracing_mode\n  }\n  tracing_config {\n    mode = var.tracing_mode\n  }\n", "2 tracing_config blocks; at most 1"),
    ("modules/model-function/main.tf", "  timeout                        = var.timeout", '  timeout = "thirty"', "timeout = \"thirty\": a number is expected"),
    ("modules/artifact-store/main.tf", "  block_public_acls       = true", '  block_public_acls = "yes"', "true or false is expected"),
    ("modules/artifact-sync/main.tf", "  architectures = [var.architecture]", '  architectures = "x86_64"', "a list of strings is expected"),
    ("modules/artifact-store/main.tf", "  bucket              = var.bucket_name", '  bucket = ["a", "b"]', "a string is expected"),
    ("modules/model-storage/main.tf", '  tags = merge(local.tags, { Name = "${var.name}-models" })', '  tags = ["a"]', "a map is expected"),
    ("modules/deploy-role/outputs.tf", "aws_iam_role.this.arn", "aws_iam_role.this.arnn", "aws_iam_role has no attribute arnn"),
    ("modules/deploy-role/outputs.tf", "aws_iam_role.this.arn", "aws_iam_role.this.arn.x", "aws_iam_role.arn is a string"),
    ("modules/model-function/outputs.tf", "aws_lambda_function.this.arn\n", "aws_lambda_function.this.vpc_config.subnet_ids\n", "is a list of objects: index it"),
    ("modules/model-function/outputs.tf", "aws_lambda_function.this.arn\n", "aws_lambda_function.this.vpc_config[0].subnet_ids[0]\n", "is a set: its elements cannot be indexed"),
    ("modules/network/main.tf", "  vpc_id             = var.create_vpc ? aws_vpc.this[0].id", "  vpc_id             = var.create_vpc ? aws_vpc.this.id", "aws_vpc.this has count: index it"),
    ("modules/deploy-role/outputs.tf", "aws_iam_role.this.arn", "aws_iam_role.this[0].arn", "has neither count nor for_each: it cannot be indexed"),
    ("modules/deploy-role/outputs.tf", "aws_iam_role.this.arn", "aws_iam_role.that.arn", 'no aws_iam_role "that" is declared'),
    ("modules/deploy-role/main.tf", "data.aws_iam_policy_document.deploy.json", "data.aws_iam_policy_document.deploy.jsn", "has no attribute jsn (did you mean `json`?)"),
    ("modules/deploy-role/main.tf", "data.aws_region.current.region", "data.aws_region.current.name", "deprecated since AWS provider 6.0"),
    ("modules/model-function/main.tf", "      description,\n", "      descriptions,\n", "lifecycle.ignore_changes: descriptions is not an argument or block"),
    ("modules/deploy-role/main.tf", "    precondition {", "    pre_condition {", "lifecycle: unknown argument or block pre_condition"),
    ("modules/artifact-store/main.tf", 'dynamic "rule" {', 'dynamic "rules" {', 'dynamic "rules": unknown block rules'),
    ("modules/artifact-store/main.tf", "      noncurrent_version_expiration {\n        noncurrent_days", "      noncurrent_version_expiry {\n        noncurrent_days", "dynamic rule: unknown argument or block noncurrent_version_expiry"),
    ("modules/model-function/main.tf", "    local_mount_path = var.efs.mount_path\n", "", "file_system_config: missing required argument local_mount_path"),
    ("modules/model-function/main.tf", "  kms_key_arn                    = var.kms_key_arn", "  qualified_arn = var.kms_key_arn", "unknown argument or block qualified_arn"),
    ("modules/network/main.tf", "  id = var.existing_vpc.vpc_id", "  vpc_id = var.existing_vpc.vpc_id", "data.aws_vpc.existing: unknown argument or block vpc_id"),
    ("modules/network/main.tf", "data.aws_vpc.existing[0].cidr_block", "data.aws_vpc.existing[0].cidr", "aws_vpc has no attribute cidr (did you mean `cidr_block`?)"),
    ("examples/minimal/main.tf", "  bucket_name = var.bucket_name", "  bucket = var.bucket_name", "argument bucket is not a variable of ../../modules/artifact-store"),
    ("examples/minimal/main.tf", "  vpc_id                    = module.network.vpc_id\n", "", "required variable vpc_id of ../../modules/model-storage is not passed"),
    ("examples/complete/main.tf", "  vpc_id                    = module.network.vpc_id", "  vpc_id                    = module.network.vpcid", "has no output vpcid (did you mean `vpc_id`?)"),
    ("examples/minimal/main.tf", "module.runtime_layer[*].layer_version_arn", "module.runtime_layer.layer_version_arn", "module.runtime_layer has count: index it (module.runtime_layer[...].layer_version_arn)"),
]


@pytest.mark.parametrize("file, old, new, expected", MUTATIONS, ids=[f"{m[0]}:{m[3][:40]}" for m in MUTATIONS])
def test_a_single_edit_of_a_real_module_is_reported(current: dict, file: str, old: str, new: str, expected: str):
    path = tfparse.TERRAFORM_DIR / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{file}: the mutation's text must occur once, found {text.count(old)}"
    report = schema_check.Checker(current).check(path.parent, overrides={path: text.replace(old, new)})
    assert any(expected in p and p.startswith(file + ": ") for p in report.problems), f"{file}: not reported: {expected}\ngot: {report.problems}"


def test_what_terraform_accepts_is_not_reported(current: dict, tmp_path: Path):
    """Meta-arguments, dynamic blocks, count/for_each instance keys, splats, attributes written as blocks or as
    lists, a single nested block read without an index and a whole counted resource are all valid Terraform."""
    (tmp_path / "main.tf").write_text(
        'variable "ports" {\n  type = list(number)\n}\n'
        'resource "aws_security_group" "blocks" {\n  count = 2\n  name = "sg-${count.index}"\n'
        '  ingress {\n    from_port   = 443\n    to_port     = 443\n    protocol    = "tcp"\n    cidr_blocks = ["10.0.0.0/8"]\n  }\n'
        '  ingress {\n    from_port   = 80\n    to_port     = 80\n    protocol    = "tcp"\n    cidr_blocks = ["10.0.0.0/8"]\n  }\n'
        '  lifecycle {\n    create_before_destroy = true\n    ignore_changes        = [tags["x"], ingress]\n  }\n}\n'
        'resource "aws_security_group" "list" {\n  for_each = toset(["a"])\n  name     = each.key\n  ingress  = []\n'
        '  dynamic "egress" {\n    for_each = var.ports\n    iterator = port\n    content {\n'
        '      from_port = port.value\n      to_port   = port.value\n      protocol  = "tcp"\n    }\n  }\n'
        '  depends_on = [aws_security_group.blocks]\n}\n'
        'output "ids" {\n  value = [aws_security_group.blocks[*].id, aws_security_group.list["a"].arn, values(aws_security_group.list)]\n}\n'
        'resource "aws_lambda_function" "f" {\n  function_name = "f"\n  role = "arn"\n  timeouts {\n    create = "5m"\n  }\n}\n'
        'output "create" {\n  value = [aws_lambda_function.f.timeouts.create, aws_lambda_function.f.vpc_config[0].vpc_id, one(aws_lambda_function.f.vpc_config[*].subnet_ids)]\n}\n'
    )
    report = schema_check.Checker(current).check(tmp_path)
    assert not report.problems, report.problems
    assert report.counts["references"] >= 6
