"""templates/k8s/ rendered with the context `ferry render --target eks` is to pass (tests/fixtures/
k8s-render-context.json) by handlebars-rust in strict mode (tests/python/k8s_render.py): the rendered YAML is the
snapshot, valid against Kubernetes' OpenAPI schemas (kubernetes-validate --strict), clean under checkov's kubernetes
framework, and its served set is what the runtime reads."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import k8s_render

sys.path.insert(0, str(k8s_render.REPO / "runtime"))
from ferry_runtime.served_set import ServedVersion, parse  # noqa: E402

REPO = k8s_render.REPO
BIN = Path(sys.executable).parent
CHECKOV = Path(os.environ.get("FERRY_CHECKOV", REPO / ".venv-checkov" / "bin" / "checkov"))
# An older Kubernetes release still found on EKS clusters, and the newest kubernetes-validate bundles.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]


@pytest.fixture
def context() -> dict:
    return k8s_render.load_context()


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return k8s_render.render_all(k8s_render.load_context())


def deployment(text: str) -> dict:
    return yaml.safe_load(text)


def container(manifest: dict) -> dict:
    [server] = manifest["spec"]["template"]["spec"]["containers"]
    return server


def env_of(manifest: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(manifest)["env"]}


def write(tmp_path: Path, rendered: dict[str, str]) -> list[Path]:
    paths = []
    for name, text in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def kubernetes_validate(paths: list[Path], version: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", version, *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def checkov(directory: Path) -> dict:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make venv` creates .venv-checkov (or set FERRY_CHECKOV)")
    proc = subprocess.run([str(CHECKOV), "-d", str(directory), "--framework", "kubernetes", "--skip-download", "-o",
                           "json"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, CKV_SKIP_PACKAGE_UPDATE_CHECK="1", LOG_LEVEL="ERROR"))
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


# ---- snapshots ------------------------------------------------------------------------------------------------
def test_the_rendered_manifests_are_the_snapshots(rendered):
    snapshots = {p.stem: p.read_text(encoding="utf-8") for p in sorted(k8s_render.SNAPSHOTS.glob("*.yaml"))}
    assert sorted(snapshots) == sorted(rendered)
    for name, text in rendered.items():
        assert text == snapshots[name], (f"tests/fixtures/k8s-rendered/{name}.yaml is out of date: review the change "
                                         "and run `.venv/bin/python tests/python/k8s_render.py`")


# ---- offline validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_rendered_manifests_are_valid_kubernetes_objects(rendered, tmp_path, version):
    proc = kubernetes_validate(write(tmp_path, rendered), version)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kubernetes_validate_strict_refuses_an_unknown_field(rendered, tmp_path):
    broken = dict(rendered, deployment=rendered["deployment"].replace("      automountServiceAccountToken: false\n",
                                                                      "      automountServiceAccountTokens: false\n"))
    assert broken != rendered
    proc = kubernetes_validate(write(tmp_path, broken), KUBERNETES_VERSIONS[-1])
    assert proc.returncode != 0 and "automountServiceAccountTokens" in proc.stdout + proc.stderr


def test_checkov_finds_nothing_and_every_skip_has_its_reason(rendered, tmp_path):
    write(tmp_path, rendered)
    report = checkov(tmp_path)
    assert report["summary"]["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 50
    skipped = {c["check_id"]: c["check_result"]["suppress_comment"] for c in report["results"]["skipped_checks"]}
    assert set(skipped) == {"CKV2_K8S_6"} and "modules/eks-service" in skipped["CKV2_K8S_6"]


def test_checkov_fails_a_writable_root_file_system(rendered, tmp_path):
    weak = {"deployment": rendered["deployment"].replace("readOnlyRootFilesystem: true",
                                                         "readOnlyRootFilesystem: false")}
    assert weak["deployment"] != rendered["deployment"]
    write(tmp_path, weak)
    assert "CKV_K8S_22" in {c["check_id"] for c in checkov(tmp_path)["results"]["failed_checks"]}


# ---- the Deployment -------------------------------------------------------------------------------------------
def test_the_deployment_carries_exactly_the_deployed_versions_as_the_runtimes_served_set(rendered, context):
    served = parse(env_of(deployment(rendered["deployment"]))["FERRY_SERVED_SET"], "deployment.yaml")
    assert served == tuple(ServedVersion("risk-score", v["version"], v["model_path"], v["approval"]["artifact_sha256"]
                                         or "") for v in context["versions"])
    manifest = deployment(rendered["deployment"])
    assert manifest["spec"]["template"]["metadata"]["annotations"]["ferry.dev/served-versions"] == "1,2,4"


def test_the_pod_runs_the_pinned_image_non_root_read_only_with_probes_and_resources(rendered, context):
    manifest = deployment(rendered["deployment"])
    pod = manifest["spec"]["template"]["spec"]
    server = container(manifest)
    assert server["image"] == context["platform"]["eks"]["image"] and "@sha256:" in server["image"]
    assert server["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["resources"] == {"requests": {"cpu": "500m", "memory": "2048Mi"},
                                   "limits": {"cpu": "2", "memory": "2048Mi"}}
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert server["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
    assert pod["serviceAccountName"] == "ferry-inference" and pod["automountServiceAccountToken"] is False
    [models] = [m for m in server["volumeMounts"] if m["name"] == "models"]
    assert models == {"name": "models", "mountPath": "/mnt/models", "readOnly": True}
    [volume] = [v for v in pod["volumes"] if v["name"] == "models"]
    assert volume["persistentVolumeClaim"] == {"claimName": "ferry-prod-models", "readOnly": True}
    assert manifest["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0  # the old pods serve until ready


def test_a_new_approval_rolls_out_a_pod_template_serving_it_and_every_version_before(context):
    before = copy.deepcopy(context)
    before["versions"] = context["versions"][:2]
    old = deployment(k8s_render.render("deployment", before))
    new = deployment(k8s_render.render("deployment", context))
    assert old["spec"]["template"] != new["spec"]["template"]  # a new ReplicaSet
    versions = lambda m: [v.version for v in parse(env_of(m)["FERRY_SERVED_SET"], "deployment.yaml")]
    assert versions(old) == ["1", "2"] and versions(new) == ["1", "2", "4"]


def test_hostile_values_arrive_verbatim(context):
    value = 'a "quoted" value: with # and \\ and\nnewline\tand {{braces}}'
    context["model"]["environment"] = {"NOTE": value}
    manifest = deployment(k8s_render.render("deployment", context))
    assert env_of(manifest)["NOTE"] == value


def test_replicas_belong_to_the_autoscaler_when_there_is_one(context, rendered):
    assert "replicas" not in deployment(rendered["deployment"])["spec"]
    hpa = yaml.safe_load(rendered["hpa"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    context["eks"]["autoscaling"] = None
    context["eks"]["disruption_budget"] = None
    out = k8s_render.render_all(context)
    assert sorted(out) == ["deployment", "service"]
    assert deployment(out["deployment"])["spec"]["replicas"] == 2


def test_a_missing_variable_is_an_error_naming_the_template_line_and_variable(context):
    del context["platform"]["eks"]["volume_claim"]
    with pytest.raises(k8s_render.RenderError) as err:
        k8s_render.render("deployment", context)
    line = next(i for i, text in enumerate(k8s_render.template_path("deployment").read_text().splitlines(), 1)
                if "platform.eks.volume_claim" in text)
    message = str(err.value)
    assert message.startswith("templates/k8s/deployment.yaml.hbs: ")
    assert f"line {line}" in message and "platform.eks.volume_claim" in message


def test_every_context_key_is_documented_in_the_templates_readme(context):
    readme = (REPO / "templates" / "k8s" / "README.md").read_text(encoding="utf-8")
    keys = [f"eks.{k}" for k in context["eks"]] + [f"platform.eks.{k}" for k in context["platform"]["eks"]]
    keys += [f"versions[].{k}" for k in context["versions"][0]]
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert not missing, f"templates/k8s/README.md does not document {missing}"
