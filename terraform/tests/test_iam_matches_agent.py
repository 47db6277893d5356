"""The IAM roles grant exactly the AWS calls Ferry's code makes (issue #19, item 1).

The calls come from the Rust sources themselves (agent_calls.py); the grants from the modules' policy documents.
KMS permissions are not calls of the agent's: they follow from the encryption of what it calls, and are checked
on their own below. The eks-service module is not here: the agent calls nothing there (test_eks_service.py holds
its driver role to describing and mounting the model file system read-only).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import agent_calls
import tfparse

CALLED_SERVICES = set(agent_calls.SERVICES.values())


def allowed_actions(module: str, document: str) -> dict[str, list[str]]:
    """Allow statements' actions of the services the code calls -> the Sids granting them."""
    policy = tfparse.all_blocks(tfparse.MODULES_DIR / module, "data", nested=True)[f"aws_iam_policy_document.{document}"]
    out: dict[str, list[str]] = {}
    for statement in tfparse.policy_statements(policy):
        st = tfparse.plain(statement)
        if st.get("effect", "Allow") != "Allow":
            continue
        actions = st["actions"] if isinstance(st["actions"], list) else [st["actions"]]
        for action in actions:
            if action.split(":")[0] in CALLED_SERVICES:
                out.setdefault(action, []).append(st.get("sid", "?"))
    return out


def compare(role: str, granted: dict[str, list[str]], needed: dict[str, list[str]]) -> list[str]:
    missing = [f"{role} lacks {a}, which {', '.join(places)} needs" for a, places in sorted(needed.items()) if a not in granted]
    extra = [f"{role} grants {a} (statement {', '.join(sids)}), which no code calls" for a, sids in sorted(granted.items()) if a not in needed]
    return missing + extra


def test_the_scan_finds_the_agents_calls():
    needed = agent_calls.actions(agent_calls.agent_calls())
    # A few calls the flow of a deploy cannot do without: a scan that finds none of them is broken.
    assert {"lambda:PublishVersion", "lambda:CreateAlias", "s3:PutObject", "elasticfilesystem:DescribeFileSystems"} <= set(needed)
    assert any("apply.rs" in p for p in needed["lambda:PublishVersion"])


def test_deploy_role_grants_exactly_what_the_agent_calls():
    granted = allowed_actions("deploy-role", "deploy")
    needed = agent_calls.actions(agent_calls.agent_calls())
    problems = compare("deploy-role (aws_iam_policy_document.deploy)", granted, needed)
    assert not problems, "\n".join(problems)


def test_sync_function_role_grants_exactly_what_the_sync_function_calls():
    granted = allowed_actions("artifact-sync", "execution")
    # ClientMount/ClientWrite authorize the NFS mount of the access point, not API calls.
    granted = {a: s for a, s in granted.items() if not a.startswith("elasticfilesystem:Client")}
    needed = agent_calls.actions(agent_calls.sync_function_calls())
    problems = compare("artifact-sync (aws_iam_policy_document.execution)", granted, needed)
    assert not problems, "\n".join(problems)


def test_compare_reports_a_missing_and_an_extra_grant():
    problems = compare("r", {"s3:GetObject": ["Read"], "lambda:AddPermission": ["Api"]}, {"s3:GetObject": ["a.rs:1"], "s3:PutObject": ["b.rs:2"]})
    assert problems == ["r lacks s3:PutObject, which b.rs:2 needs", "r grants lambda:AddPermission (statement Api), which no code calls"]


def test_scan_reads_calls_through_fields_and_variables_and_skips_comments_strings_and_tests(tmp_path: Path):
    source = tmp_path / "x.rs"
    source.write_text(
        "fn f() {\n"
        "    let a = ctx\n        .lambda\n        .publish_version()\n        .send();\n"
        "    let b = s3.get_object().bucket(\"s3.put_object()\").send();\n"
        "    // efs.describe_file_systems().send()\n"
        "    let c = s3.clone();\n"
        "}\n"
        "#[cfg(test)]\nmod tests {\n    fn t() { lambda.delete_function().send(); }\n}\n"
    )
    calls, sends = agent_calls.scan(source)
    assert [(c.line, c.action) for c in calls] == [(4, "lambda:PublishVersion"), (6, "s3:GetObject")]
    assert sends == 2


def test_scan_refuses_a_call_through_a_client_it_cannot_name(tmp_path: Path):
    source = tmp_path / "y.rs"
    source.write_text("fn f(c: &aws_sdk_s3::Client) {\n    c.delete_bucket().bucket(\"b\").send();\n}\n")
    with pytest.raises(AssertionError, match=r"1 \.send\(\) calls but 0 AWS client calls"):
        agent_calls.calls_in([source])


def test_deploy_role_may_encrypt_function_environments_with_the_stacks_key_through_lambda_only():
    # Lambda's developer guide (configuration-envvars-encryption): a caller that sets environment variables
    # encrypted with a customer managed key needs kms:Encrypt and kms:CreateGrant on it, and kms:Decrypt to read
    # them back (GetFunction); kms:ViaService keeps the key usable through Lambda only.
    policy = tfparse.all_blocks(tfparse.MODULES_DIR / "deploy-role", "data", nested=True)["aws_iam_policy_document.deploy"]
    statements = {tfparse.plain(s).get("sid"): tfparse.plain(s) for s in tfparse.policy_statements(policy)}
    st = statements.get("FunctionEnvironmentEncryption")
    assert st, "deploy-role: no FunctionEnvironmentEncryption statement (kms for UpdateFunctionConfiguration)"
    assert set(st["actions"]) == {"kms:Encrypt", "kms:CreateGrant", "kms:Decrypt"}
    assert st["resources"] == ["${var.function_kms_key_arn}"]
    conditions = {c["variable"]: c for c in st["condition"]}
    assert conditions["kms:ViaService"]["test"] == "StringEquals"
    assert conditions["kms:ViaService"]["values"] == ["lambda.${local.region}.amazonaws.com"]
    # The model functions' environments are encrypted with the key the examples pass to the role.
    for example in tfparse.example_dirs():
        modules = tfparse.all_blocks(example, "module")
        if "model_function" not in modules:
            continue  # the eks-service example creates no Lambda function
        assert tfparse.expression(modules["deploy_role"]["function_kms_key_arn"]) == tfparse.expression(
            modules["model_function"]["kms_key_arn"]
        ), f"{example.name}: deploy_role.function_kms_key_arn is not the model functions' kms_key_arn"


def test_the_sync_function_links_the_copier_and_nothing_of_the_cli():
    """The sync function's grants are read from its binary and the copier crate: that holds only while neither
    depends on the agent crate or on the SDKs of the services the function's role does not grant."""
    cli_only = {"ferry", "aws-sdk-lambda", "aws-sdk-sts", "aws-sdk-efs", "aws-sdk-apigatewayv2", "clap", "reqwest"}
    for crate in ("sync", "sync-lambda"):
        manifest = tomllib.loads((agent_calls.REPO / crate / "Cargo.toml").read_text(encoding="utf-8"))
        linked = set(manifest.get("dependencies", {}))
        assert not linked & cli_only, f"{crate}/Cargo.toml depends on {sorted(linked & cli_only)}"
    sync_lambda = tomllib.loads((agent_calls.REPO / "sync-lambda" / "Cargo.toml").read_text(encoding="utf-8"))
    assert "ferry-sync" in sync_lambda["dependencies"]
    assert {"s3:GetObject", "s3:ListBucket"} <= set(agent_calls.actions(agent_calls.sync_function_calls()))
    # The remote sync (the CLI invoking the function) stays in the agent crate.
    assert "lambda:InvokeFunction" not in agent_calls.actions(agent_calls.sync_function_calls())
    assert "agent/src/sync/remote.rs" in {c.path for c in agent_calls.agent_calls()}


def test_deploy_role_manages_only_the_routes_and_integrations_of_its_http_api_and_permissions_on_aliases():
    # API Gateway authorizes its management API by method and path: the agent's route calls need GET, POST and
    # DELETE on /apis/<id>/routes and /apis/<id>/integrations (and their items), nothing of the API itself, its stages
    # or authorizers; the invoke permissions sit on aliases (qualified ARNs), never on a function.
    policy = tfparse.all_blocks(tfparse.MODULES_DIR / "deploy-role", "data", nested=True)["aws_iam_policy_document.deploy"]
    statements = {tfparse.plain(s).get("sid"): tfparse.plain(s) for s in tfparse.policy_statements(policy)}
    routes = statements.get("ManageAliasRoutes")
    assert routes, "deploy-role: no ManageAliasRoutes statement for the agent's routes"
    assert set(routes["actions"]) == {"apigateway:GET", "apigateway:POST", "apigateway:DELETE"}
    resources = tfparse.expression(routes["resources"]) if not isinstance(routes["resources"], list) else " ".join(
        routes["resources"]
    )
    for part in ('"routes"', '"routes/*"', '"integrations"', '"integrations/*"', "/apis/${statement.value.api_id}/"):
        assert part in resources, f"ManageAliasRoutes resources lack {part}: {resources}"
    assert "*" not in resources.replace('/*"', ""), f"ManageAliasRoutes is wider than the API's routes: {resources}"
    permissions = statements.get("AliasInvokePermissions")
    assert permissions and set(permissions["actions"]) == {"lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"}
    assert permissions["resources"] == "${local.qualified_functions}", permissions["resources"]
