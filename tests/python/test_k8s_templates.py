"""templates/k8s/ rendered by the agent itself: `ferry render --target eks` (target/debug/ferry) on the render fixture
(tests/fixtures/k8s-render: a catalog, a platform and a release manifest; tests/python/eks_render.py). The written
YAML is the snapshot, valid against Kubernetes' OpenAPI schemas (kubernetes-validate --strict), clean under checkov's
kubernetes framework, and its served set is what the runtime reads. (That a missing variable names the template, the
line and the variable, and that every context key is documented, is tested on the agent's side:
agent/src/render/eks.rs.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import eks_render

sys.path.insert(0, str(eks_render.REPO / "runtime"))
from ferry_runtime.served_set import ServedVersion, parse  # noqa: E402

REPO = eks_render.REPO
BIN = Path(sys.executable).parent
CHECKOV = Path(os.environ.get("FERRY_CHECKOV", REPO / ".venv-checkov" / "bin" / "checkov"))
# An older Kubernetes release still found on EKS clusters, and the newest kubernetes-validate bundles.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
V5 = """
[[models.risk-score.versions]]
version = "5"
approved_by = "qa@example.org"
approved_at = "2026-12-01T12:00:00Z"
ticket = "QA-850"
artifact_uri = "s3://acme-ml-artifacts-prod/mlflow/1/m-7a7a/artifacts"
"""


@pytest.fixture
def fixture(ferry_bin, tmp_path) -> eks_render.Fixture:
    return eks_render.Fixture(tmp_path / "fixture")


@pytest.fixture
def rendered(fixture) -> dict[str, str]:
    return fixture.render()


def approved_versions() -> list[dict]:
    releases = tomllib.loads((eks_render.FIXTURE / "releases.toml").read_text(encoding="utf-8"))
    return [v for v in releases["models"]["risk-score"]["versions"] if not v.get("revoked")]


def platform_eks() -> dict:
    return json.loads((eks_render.FIXTURE / "platform.json").read_text(encoding="utf-8"))["eks"]


def deployment(text: str) -> dict:
    return yaml.safe_load(text)


def container(manifest: dict) -> dict:
    [server] = manifest["spec"]["template"]["spec"]["containers"]
    return server


def env_of(manifest: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(manifest)["env"]}


def write(tmp_path: Path, rendered: dict[str, str]) -> list[Path]:
    """The manifests in a folder of their own, `<tmp_path>/manifests` (beside the fixture's copy)."""
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, text in rendered.items():
        path = folder / name
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
    snapshots = eks_render.snapshots()
    assert sorted(snapshots) == sorted(rendered) == ["01-service.yaml", "02-deployment.yaml", "03-hpa.yaml",
                                                      "04-pdb.yaml"]
    for name, text in rendered.items():
        assert text == snapshots[name], (f"tests/fixtures/k8s-rendered/risk-score/{name} is out of date: review the "
                                         "change and run the command in tests/fixtures/k8s-render/ferry.toml's header")


# ---- offline validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_rendered_manifests_are_valid_kubernetes_objects(rendered, tmp_path, version):
    proc = kubernetes_validate(write(tmp_path, rendered), version)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kubernetes_validate_strict_refuses_an_unknown_field(rendered, tmp_path):
    broken = dict(rendered)
    broken["02-deployment.yaml"] = rendered["02-deployment.yaml"].replace("      automountServiceAccountToken: false\n",
                                                                          "      automountServiceAccountTokens: false\n")
    assert broken != rendered
    proc = kubernetes_validate(write(tmp_path, broken), KUBERNETES_VERSIONS[-1])
    assert proc.returncode != 0 and "automountServiceAccountTokens" in proc.stdout + proc.stderr


def test_checkov_finds_nothing_and_every_skip_has_its_reason(rendered, tmp_path):
    write(tmp_path, rendered)
    report = checkov(tmp_path / "manifests")
    assert report["summary"]["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 50
    skipped = {c["check_id"]: c["check_result"]["suppress_comment"] for c in report["results"]["skipped_checks"]}
    assert set(skipped) == {"CKV2_K8S_6"} and "modules/eks-service" in skipped["CKV2_K8S_6"]


def test_checkov_fails_a_writable_root_file_system(rendered, tmp_path):
    weak = {"02-deployment.yaml": rendered["02-deployment.yaml"].replace("readOnlyRootFilesystem: true",
                                                                         "readOnlyRootFilesystem: false")}
    assert weak["02-deployment.yaml"] != rendered["02-deployment.yaml"]
    write(tmp_path, weak)
    assert "CKV_K8S_22" in {c["check_id"] for c in checkov(tmp_path / "manifests")["results"]["failed_checks"]}


# ---- the Deployment -------------------------------------------------------------------------------------------
def test_the_deployment_carries_exactly_the_approved_versions_as_the_runtimes_served_set(rendered):
    served = parse(env_of(deployment(rendered["02-deployment.yaml"]))["FERRY_SERVED_SET"], "deployment.yaml")
    assert served == tuple(ServedVersion("risk-score", v["version"], f"/mnt/models/risk-score/{v['version']}",
                                         v.get("artifact_sha256", "")) for v in approved_versions())
    assert [v.version for v in served] == ["1", "2", "4"]  # 3's approval was withdrawn
    manifest = deployment(rendered["02-deployment.yaml"])
    assert manifest["spec"]["template"]["metadata"]["annotations"]["ferry.dev/served-versions"] == "1,2,4"


def test_the_pod_runs_the_pinned_image_non_root_read_only_with_probes_and_resources(rendered):
    manifest = deployment(rendered["02-deployment.yaml"])
    pod = manifest["spec"]["template"]["spec"]
    server = container(manifest)
    assert server["image"] == platform_eks()["image"] and "@sha256:" in server["image"]
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


def test_a_new_approval_rolls_out_a_pod_template_serving_it_and_every_version_before(fixture, rendered):
    old = deployment(rendered["02-deployment.yaml"])
    fixture.append("releases.toml", V5)
    new = deployment(fixture.render()["02-deployment.yaml"])
    assert old["spec"]["template"] != new["spec"]["template"]  # a new ReplicaSet
    versions = lambda m: [v.version for v in parse(env_of(m)["FERRY_SERVED_SET"], "deployment.yaml")]
    assert versions(old) == ["1", "2", "4"] and versions(new) == ["1", "2", "4", "5"]


def test_hostile_values_arrive_verbatim(fixture):
    value = 'a "quoted" value: with # and \\ and\nnewline\tand {{braces}} and YAML\'s breaks \u0085\u2028 \x7f\ufeff zoë'
    # A TOML basic string takes JSON's escapes.
    toml_string = json.dumps(value).replace("\x7f", "\\u007f")  # TOML takes JSON's escapes, and no raw DEL
    fixture.edit("ferry.toml", 'environment = { LOG_LEVEL = "info" }', f"environment = {{ NOTE = {toml_string} }}")
    manifest = deployment(fixture.render()["02-deployment.yaml"])
    assert env_of(manifest)["NOTE"] == value


def test_replicas_belong_to_the_autoscaler_when_there_is_one_and_stale_files_go(fixture, rendered):
    assert "replicas" not in deployment(rendered["02-deployment.yaml"])["spec"]
    hpa = yaml.safe_load(rendered["03-hpa.yaml"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    fixture.edit("ferry.toml", "autoscaling = { min_replicas = 2, max_replicas = 6, target_cpu_percent = 70 }\n", "")
    fixture.edit("ferry.toml", "disruption_budget = { min_available = 1 }\n", "")
    out = fixture.render()  # into the same folder: the HPA and PDB files of before are removed
    assert sorted(out) == ["01-service.yaml", "02-deployment.yaml"]
    assert deployment(out["02-deployment.yaml"])["spec"]["replicas"] == 2


def test_a_bad_catalog_value_is_named_and_nothing_is_written(fixture):
    fixture.edit("ferry.toml", 'cpu = "500m"', 'cpu = "half a core"')
    proc = fixture.run("--out", "out")
    assert proc.returncode == 1
    assert proc.stderr.startswith('error: ferry.toml: models.risk-score.eks.cpu = "half a core" is not a Kubernetes '
                                  "quantity"), proc.stderr
    assert not (fixture.dir / "out").exists()
