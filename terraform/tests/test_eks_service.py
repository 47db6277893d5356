"""Structural tests of modules/eks-service and examples/eks-service (no provider can run here): an existing cluster,
the model volume read-only on the inference access point, least privilege for the driver and the pods, a closed
network policy, and the `ferry_platform` fields the k8s templates are rendered with."""

from __future__ import annotations

import json
import re

import pytest
import regex

import tfparse

MODULE = tfparse.MODULES_DIR / "eks-service"
EXAMPLE = tfparse.EXAMPLES_DIR / "eks-service"
# The platform file `ferry render --target eks` is tested with (the agent refuses an eks object with a key missing or
# unknown, so its keys are the agent's).
RENDER_PLATFORM = tfparse.TERRAFORM_DIR.parent / "tests" / "fixtures" / "k8s-render" / "platform.json"


def resources() -> dict:
    return {k: tfparse.plain(v) for k, v in tfparse.all_blocks(MODULE, "resource", nested=True).items()}


def policy(name: str) -> dict:
    return tfparse.plain(tfparse.all_blocks(MODULE, "data", nested=True)[f"aws_iam_policy_document.{name}"])


def validation_regex(variable: str) -> re.Pattern:
    """The regex of a variable's validation, to try values against it (RE2 and Python agree on these)."""
    condition = tfparse.plain(tfparse.variables(MODULE)[variable]["validation"])[0]["condition"]
    pattern = re.search(r'regex\("(.*?)", var\.', condition).group(1)
    return re.compile(pattern.replace("\\\\", "\\"))


def test_every_input_but_the_create_switch_is_validated():
    variables = tfparse.variables(MODULE)
    unvalidated = [name for name, body in variables.items() if not body.get("validation") and name != "create"]
    assert not unvalidated, f"modules/eks-service: variables without a validation block: {unvalidated}"


def test_it_deploys_into_an_existing_cluster_and_creates_none():
    assert not [r for r in resources() if r.startswith(("aws_eks_cluster.", "aws_eks_node_group."))]
    cluster_type = tfparse.expression(tfparse.variables(MODULE)["cluster"]["type"])
    assert "name = string" in cluster_type and "oidc_provider_arn = string" in cluster_type


def test_the_volume_is_the_read_only_inference_access_point_bound_to_its_claim():
    r = resources()
    pv = r["kubernetes_persistent_volume_v1.models"]["spec"][0]
    csi = pv["persistent_volume_source"][0]["csi"][0]
    assert csi == {"driver": "efs.csi.aws.com", "read_only": True,
                   "volume_handle": "${var.efs.file_system_id}::${var.efs.inference_access_point_id}"}
    assert pv["access_modes"] == ["ReadOnlyMany"] and pv["persistent_volume_reclaim_policy"] == "Retain"
    assert pv["mount_options"] == ["iam", "tls"]  # what model-storage's file system policy requires
    pvc = r["kubernetes_persistent_volume_claim_v1.models"]
    assert pvc["spec"][0]["access_modes"] == ["ReadOnlyMany"]
    assert pvc["spec"][0]["volume_name"] == "${kubernetes_persistent_volume_v1.models[0].metadata[0].name}"
    assert pv["claim_ref"][0]["name"] == pvc["metadata"][0]["name"] == "${local.storage_name}"
    storage_class = r["kubernetes_storage_class_v1.models"]
    assert storage_class["reclaim_policy"] == "Retain" and "parameters" not in storage_class  # nothing provisioned


def test_the_efs_csi_driver_role_only_describes_and_mounts_read_only_through_the_access_point():
    statements = policy("efs_csi")["statement"]
    actions = {a for st in statements for a in st["actions"]}
    assert actions == {"elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeMountTargets",
                       "elasticfilesystem:DescribeAccessPoints", "elasticfilesystem:ClientMount"}
    mount = next(st for st in statements if st["actions"] == ["elasticfilesystem:ClientMount"])
    assert {c["variable"]: c["values"] for c in mount["condition"]} == {
        "elasticfilesystem:AccessPointArn": ["${var.efs.inference_access_point_arn}"],
        "aws:SecureTransport": ["true"]}
    assert all("*" not in st["resources"] for st in statements)


def test_the_driver_role_trusts_only_the_drivers_service_accounts():
    statement = policy("efs_csi_trust")["statement"][0]
    conditions = {c["variable"]: c["values"] for c in statement["condition"]}
    assert conditions == {"${var.cluster.oidc_issuer}:sub": "${local.efs_csi_service_accounts}",
                          "${var.cluster.oidc_issuer}:aud": ["sts.amazonaws.com"]}
    local = tfparse.plain(tfparse.load(MODULE / "main.tf")["locals"][0])["efs_csi_service_accounts"]
    assert '["efs-csi-controller-sa", "efs-csi-node-sa"]' in local


def test_the_pods_service_account_has_no_aws_role_and_no_api_token():
    sa = resources()["kubernetes_service_account_v1.inference"]
    assert sa["automount_service_account_token"] is False
    assert "annotations" not in sa["metadata"][0]  # no eks.amazonaws.com/role-arn: the pods call no AWS API
    # The one Role is the deployer's, bound to a group: nothing binds the pods' service account, nothing is cluster-wide.
    roles = [r for r in resources() if r.startswith(("kubernetes_role", "kubernetes_cluster_role"))]
    assert sorted(roles) == ["kubernetes_role_binding_v1.deployer", "kubernetes_role_v1.deployer"]
    subjects = resources()["kubernetes_role_binding_v1.deployer"]["subject"]
    assert [s["kind"] for s in subjects] == ["Group"] and subjects[0]["name"] == "${var.deployer.group}"


def test_the_deployer_role_grants_only_calls_the_agent_makes_in_the_namespace():
    role = resources()["kubernetes_role_v1.deployer"]
    assert role["metadata"][0]["namespace"] == "${kubernetes_namespace_v1.this[0].metadata[0].name}"
    assert 'jsondecode(file("${path.module}/deployer-rules.json"))' in str(role["dynamic"])
    rules = json.loads((MODULE / "deployer-rules.json").read_text())
    verbs = {verb for rule in rules for verb in rule["verbs"]}
    assert verbs <= {"get", "create", "patch", "delete", "watch", "list"}, "no update, no deletecollection, no *"
    resources_ = [r for rule in rules for r in rule["resources"]]
    assert "secrets" not in resources_ and "*" not in resources_ and len(resources_) == len(set(resources_))
    # agent/tests/it/eks.rs compares these rules with the calls the agent makes against the fake API server.
    entry = resources()["aws_eks_access_entry.deployer"]
    assert entry["kubernetes_groups"] == ["${var.deployer.group}"] and entry["type"] == "STANDARD"


def test_the_namespace_enforces_the_restricted_pod_security_standard():
    labels = resources()["kubernetes_namespace_v1.this"]["metadata"][0]["labels"]
    assert '"pod-security.kubernetes.io/enforce" = "restricted"' in labels


def test_the_network_policy_denies_all_egress_and_admits_only_the_servers_port():
    spec = resources()["kubernetes_network_policy_v1.inference"]["spec"][0]
    assert spec["policy_types"] == ["Ingress", "Egress"] and "egress" not in spec
    assert spec["pod_selector"] == [{}]  # every pod of the namespace
    ingress = spec["dynamic"][0]["ingress"]["content"][0]
    assert ingress["ports"] == [{"port": "8080", "protocol": "TCP"}]


@pytest.mark.parametrize("image, accepted", [
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ferry-runtime@sha256:" + "0" * 64, True),
    ("ghcr.io/acme/ferry-runtime:1.2@sha256:" + "ab" * 32, True),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ferry-runtime:latest", False),
    ("ferry-runtime@sha256:" + "0" * 63, False),
    ("ferry-runtime@sha256:" + "A" * 64, False),
])
def test_the_image_must_be_pinned_by_digest(image, accepted):
    assert bool(validation_regex("image").match(image)) is accepted


def test_the_example_outputs_the_modules_ferry_platform_only():
    outputs = tfparse.outputs(EXAMPLE)
    assert list(outputs) == ["ferry_platform_eks"]
    assert tfparse.plain(outputs["ferry_platform_eks"]["value"]) == "${module.eks_service.ferry_platform}"



def test_ferry_platform_eks_has_the_fields_the_k8s_templates_are_rendered_with():
    value = tfparse.plain(tfparse.outputs(MODULE)["ferry_platform"]["value"])
    keys = set(re.findall(r"[{,]\s*([a-z_]+)\s*=", value))
    platform = json.loads(RENDER_PLATFORM.read_text(encoding="utf-8"))
    assert keys == set(platform["eks"])


def test_the_example_pins_the_providers_as_the_module_does():
    def pins(directory):
        providers = tfparse.load(directory / "versions.tf")["terraform"][0]["required_providers"][0]
        return {k: tfparse.plain(v) for k, v in providers.items() if not k.startswith("__")}

    assert pins(EXAMPLE) == pins(MODULE)
    assert pins(MODULE)["kubernetes"] == {"source": "hashicorp/kubernetes", "version": ">= 2.23, < 3.0"}


# ---- tags: what AWS refuses on the tagged resources (the driver's IAM role, the add-on, the NFS rules) ----------
TAGS_PER_RESOURCE = 50  # AWS's most tags per resource (IAM, EKS and EC2 alike)


def tags_conditions(directory) -> list[str]:
    return [tfparse.expression(v["condition"]) for v in tfparse.variables(directory)["tags"].get("validation", [])]


def most_tags(directory) -> int:
    bounds = [int(m.group(1)) for c in tags_conditions(directory) for m in re.finditer(r"length\(var\.tags\) <= (\d+)", c)]
    assert bounds, f"{directory}: no validation bounds how many tags var.tags holds"
    return min(bounds)


def literal_keys_merged(text: str) -> set[str]:
    """The keys of the literal maps in `merge(var.tags, { "k" = ... })`."""
    return {k for m in re.finditer(r"merge\(var\.tags, \{([^}]*)\}\)", text) for k in re.findall(r'"([^"]+)"\s*=', m.group(1))}


def test_the_module_tags_its_resources_with_at_most_what_aws_accepts():
    added = literal_keys_merged(tfparse.plain(tfparse.load(MODULE / "main.tf")["locals"][0])["tags"])
    assert added == {"ferry:module"}
    assert most_tags(MODULE) + len(added) <= TAGS_PER_RESOURCE


def test_the_example_leaves_room_for_its_default_tags_and_the_modules():
    aws = tfparse.plain(tfparse.blocks(tfparse.load(EXAMPLE / "versions.tf"), "provider")["aws"])
    module_tags = tfparse.plain(tfparse.load(MODULE / "main.tf")["locals"][0])["tags"]
    added = literal_keys_merged(aws["default_tags"][0]["tags"]) | literal_keys_merged(module_tags)
    assert added == {"ferry:environment", "ferry:module"}
    assert most_tags(EXAMPLE) + len(added) <= TAGS_PER_RESOURCE


def tag_character_patterns() -> tuple[regex.Pattern, regex.Pattern]:
    """The regexes the module's validation holds tag keys and values to (RE2's \\p{..} classes: the `regex` module)."""
    for condition in tags_conditions(MODULE):
        m = re.search(r'can\(regex\("((?:\\.|[^"\\])*)", k\)\) && can\(regex\("((?:\\.|[^"\\])*)", v\)\)', condition)
        if m:
            return tuple(regex.compile(p.replace("\\\\", "\\")) for p in m.groups())
    raise AssertionError("modules/eks-service: no validation holds the tags' keys and values to IAM's characters")


@pytest.mark.parametrize("text, is_key, accepted", [
    ("cost-center", True, True), ("team:ml/platform", True, True), ("Zürich office", True, True), ("a=b+c@d_e.f", True, True),
    ("", True, False), ("", False, True), ("a,b", True, False), ("team#1", False, False), ("a;b", False, False),
    ("<x>", False, False), ("50%", False, False), ("'q'", True, False),
])
def test_tag_characters_iam_refuses_are_refused(text, is_key, accepted):
    # IAM's tag pattern is [\p{L}\p{Z}\p{N}_.:/=+\-@]* (keys: at least one); the driver's role is tagged.
    key, value = tag_character_patterns()
    assert bool((key if is_key else value).fullmatch(text)) is accepted
