"""`make demo`'s scenario, non-interactively: what it leaves in moto, on the EFS folder and in the audit prefix."""
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

import standins  # on sys.path through this folder's conftest.py

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_run(tmp_path, ferry_bin):
    workdir = tmp_path / "demo"
    summary = tmp_path / "summary.json"
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "tools" / "demo.py"), "--dir", str(workdir),
                               "--ferry", str(ferry_bin), "--summary", str(summary)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        state = json.loads((workdir / "standins.json").read_text())
        yield workdir, state, json.loads(summary.read_text()), proc.stdout
    finally:
        standins.down(workdir)


def client(service, state):
    return boto3.client(service, endpoint_url=state["aws_url"], region_name="us-east-1",
                        aws_access_key_id=standins.ACCESS_KEY, aws_secret_access_key=standins.SECRET_KEY)


def test_demo_deploys_each_approved_version_behind_its_own_alias(demo_run):
    workdir, state, predictions, stdout = demo_run
    lam = client("lambda", state)
    risk = {a["Name"]: a["FunctionVersion"] for a in lam.list_aliases(FunctionName="ferry-local-risk-score")["Aliases"]}
    readm = {a["Name"]: a["FunctionVersion"] for a in lam.list_aliases(FunctionName="ferry-local-readmission")["Aliases"]}
    assert sorted(risk) == ["production", "v1", "v2", "v3"]
    assert risk["production"] == risk["v1"], "the registry alias production points at v1"
    assert sorted(readm) == ["v1"], "readmission v2 was never approved"

    # Versions live side by side, answering differently, each from its own frozen EFS folder.
    assert predictions["risk-score"]["v1"] != predictions["risk-score"]["v2"]
    for version in ("1", "2", "3"):
        folder = workdir / "efs" / "risk-score" / version
        manifest = json.loads((folder / ".ferry-manifest.json").read_text())
        assert (folder / "MLmodel").is_file() and manifest["version"] == version
    assert not (workdir / "efs" / "readmission" / "2").exists()
    assert not list((workdir / "efs" / "risk-score").glob(".ferry-tmp-*"))

    # One audit record per created alias and per stage move; the second deploy added exactly one.
    keys = [o["Key"] for o in client("s3", state).list_objects_v2(Bucket=standins.BUCKET, Prefix="ferry/audit/")["Contents"]]
    assert len([k for k in keys if "-deploy-lv" in k]) == 4, keys
    assert len([k for k in keys if "/stages/production/" in k]) == 1, keys
    record = json.loads(client("s3", state).get_object(
        Bucket=standins.BUCKET, Key=next(k for k in keys if "/risk-score/v3/" in k))["Body"].read())
    assert record["approval"]["ticket"] == "QA-830" and record["lambda_version"] == risk["v3"]
    assert "+ v3" in stdout and "= v1 v2        unchanged" in stdout
