"""The EKS service's HTTP server over real HTTP: uvicorn started on 127.0.0.1 and a free port in a subprocess of its
own (process group), a real client (httpx), and the server stopped by its PID at the end."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest

import demo_models
from ferry_runtime import manifest
from conftest import child_env, expected_predictions, free_port, json_lines, stop_process_group, wait_for_http

FRAME = pd.DataFrame([[63, 148, 240, 31.5], [41, 118, 180, 23.0]], columns=demo_models.RISK_FEATURES)
SPLIT = {"dataframe_split": {"columns": list(FRAME.columns), "data": FRAME.values.tolist()}}


@pytest.fixture(scope="module")
def server(efs_root, tmp_path_factory):
    """One server with --verify-manifest over a root holding intact versions, a tampered version 9 and a sync in
    progress, and a version 8 that is a copy of version 2; /invocations serves readmission v1."""
    root = tmp_path_factory.mktemp("served")
    for model in ("risk-score", "readmission"):
        shutil.copytree(efs_root / model, root / model)
    shutil.copytree(efs_root / "risk-score" / "2", root / "risk-score" / "9")
    manifest.write_manifest(root / "risk-score" / "9", "risk-score", "9")
    (root / "risk-score" / "9" / "python_model.pkl").write_bytes(b"tampered")
    shutil.copytree(efs_root / "risk-score" / "2", root / "risk-score" / "8")  # its manifest says version 2
    shutil.copytree(efs_root / "risk-score" / "2", root / "risk-score" / ".ferry-tmp-3-x1y2")
    port = free_port()
    log = root.parent / f"server-{port}.log"
    out = open(log, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferry_runtime.server", "--root", str(root), "--model-path",
         str(root / "readmission" / "1"), "--verify-manifest", "--host", "127.0.0.1", "--port", str(port)],
        env=child_env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", proc, log)
        with httpx.Client(base_url=base, timeout=60) as client:
            yield client, log, proc
    finally:
        stop_process_group(proc)
        out.close()
    assert proc.poll() is not None


def log_records(log):
    return json_lines(log.read_text(errors="replace"))


def test_each_version_answers_with_its_own_predictions(server):
    client, _, _ = server
    answers = {v: client.post(f"/models/risk-score/v{v}/invocations", json=SPLIT) for v in (1, 2)}
    for v, r in answers.items():
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == {"predictions": expected_predictions("risk-score", v, FRAME), "model": "risk-score",
                            "version": str(v)}
    assert answers[1].json()["predictions"] != answers[2].json()["predictions"]
    readmission = client.post("/models/readmission/v1/invocations", json=demo_models.SAMPLE_INPUTS["readmission"])
    assert readmission.json()["predictions"] == expected_predictions(
        "readmission", 1, demo_models.input_example("readmission"))


@pytest.mark.parametrize("payload", [
    {"dataframe_records": FRAME.to_dict(orient="records")},
    {"instances": FRAME.to_dict(orient="records")},
    {"inputs": {c: FRAME[c].tolist() for c in FRAME.columns}},
])
def test_every_request_format_over_http(server, payload):
    client, _, _ = server
    r = client.post("/models/risk-score/v2/invocations", json=payload)
    assert r.status_code == 200 and r.json()["predictions"] == expected_predictions("risk-score", 2, FRAME)


def test_single_model_invocations_like_mlflow_models_serve(server):
    client, _, _ = server
    r = client.post("/invocations", content=json.dumps(demo_models.SAMPLE_INPUTS["readmission"]),
                    headers={"content-type": "application/json; charset=utf-8", "x-request-id": "trace-42"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-42"
    assert r.json()["model"] == "readmission" and r.json()["version"] == "1"


def test_ping_health_and_version(server):
    client, _, _ = server
    assert client.get("/ping").status_code == 200
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["verify_manifest"] is True
    available = {(a["model"], a["version"]) for a in health["available"]}
    assert {("risk-score", "1"), ("risk-score", "2"), ("readmission", "1")} <= available
    assert not any(v.startswith(".ferry-tmp") for _, v in available)
    assert client.get("/version").json()["mlflow"] == "3.17.2"


def test_versions_load_lazily_once_and_stay_under_concurrent_requests(server):
    client, log, proc = server
    loaded = lambda: [r for r in log_records(log) if r["event"] == "model_loaded" and r["version"] == "1"
                      and r["model"] == "risk-score"]
    before = len(loaded())
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/models/risk-score/v1/invocations", json=SPLIT), range(32)))
    assert all(a.status_code == 200 for a in answers)
    assert len(loaded()) == 1 and before <= 1
    assert any(m["model"] == "risk-score" and m["version"] == "1" and m["digest"]
               for m in client.get("/health").json()["loaded"])
    assert proc.poll() is None


def test_malformed_request_gets_400(server):
    client, _, _ = server
    r = client.post("/models/risk-score/v1/invocations", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST" and "not valid JSON" in r.json()["message"]
    r = client.post("/models/risk-score/v1/invocations", json={"dataframe_split": {"columns": ["age"]}})
    assert r.status_code == 400
    r = client.post("/models/risk-score/v1/invocations", content=b"age\n1\n", headers={"content-type": "text/csv"})
    assert r.status_code == 415


def test_model_exception_gets_500_with_error_id_and_no_trace(server):
    client, log, _ = server
    r = client.post("/models/risk-score/v2/invocations", json={"dataframe_records": [{"age": 1}]})
    assert r.status_code == 500
    body = r.json()
    assert body["error_code"] == "INTERNAL_ERROR" and body["error_id"] in body["message"]
    assert "Traceback" not in r.text and "missing feature columns" not in r.text
    logged = [x for x in log_records(log) if x.get("error_id") == body["error_id"] and x["event"] == "model_error"]
    assert len(logged) == 1 and "missing feature columns" in logged[0]["traceback"]


def test_unknown_model_version_and_sync_in_progress_get_404(server):
    client, _, _ = server
    assert client.post("/models/risk-score/v7/invocations", json=SPLIT).status_code == 404
    assert client.post("/models/nope/v1/invocations", json=SPLIT).status_code == 404
    assert client.post("/models/risk-score/v.ferry-tmp-3-x1y2/invocations", json=SPLIT).status_code == 404
    assert client.post("/models/..%2F..%2Fetc/v1/invocations", json=SPLIT).status_code == 404
    assert client.get("/models/risk-score/v1/invocations").status_code == 405


def test_tampered_version_is_refused_and_the_others_keep_serving(server):
    client, log, _ = server
    r = client.post("/models/risk-score/v9/invocations", json=SPLIT)
    assert r.status_code == 503 and r.json()["error_code"] == "MODEL_UNAVAILABLE"
    assert "python_model.pkl" not in r.text
    reasons = [x["error"] for x in log_records(log) if x["event"] == "model_unavailable" and x["version"] == "9"]
    assert reasons and "python_model.pkl has 8 bytes" in reasons[-1]
    assert client.post("/models/risk-score/v2/invocations", json=SPLIT).status_code == 200


def test_every_request_is_one_json_log_line(server):
    client, log, _ = server
    client.post("/models/risk-score/v2/invocations", json=SPLIT, headers={"x-request-id": "line-check"})
    line = [x for x in log_records(log) if x.get("request_id") == "line-check"]
    assert len(line) == 1 and line[0]["event"] == "invocation" and line[0]["status"] == 200
    assert line[0]["model"] == "risk-score" and line[0]["version"] == "2" and line[0]["latency_ms"] > 0


def test_a_folder_whose_manifest_names_another_version_is_refused(server):
    client, log, _ = server
    assert client.post("/models/risk-score/v8/invocations", json=SPLIT).status_code == 503
    reasons = [x["error"] for x in log_records(log) if x["event"] == "model_unavailable" and x["version"] == "8"]
    assert reasons and "names version '2', expected '8'" in reasons[-1]
