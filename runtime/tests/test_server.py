"""The EKS service's HTTP server over real HTTP: uvicorn started on 127.0.0.1 and a free port in a subprocess of its
own (process group), a real client (httpx), and the server stopped by its PID at the end."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest

import demo_models
from ferry_runtime import manifest
from conftest import (REPO, child_env, expected_predictions, free_port, json_lines, stop_process_group,
                      wait_for_http)

FRAME = pd.DataFrame([[63, 148, 240, 31.5], [41, 118, 180, 23.0]], columns=demo_models.RISK_FEATURES)
SPLIT = {"dataframe_split": {"columns": list(FRAME.columns), "data": FRAME.values.tolist()}}


def served_set(root, *versions) -> str:
    """The FERRY_SERVED_SET document for (model, version) pairs under `root`."""
    return json.dumps({"schema_version": 1, "versions": [
        {"model": m, "version": str(v), "path": str(root / m / str(v))} for m, v in versions]})


def start_server(root, env: dict, args=(), wait_for="/health", command=None, port=None):
    """Starts the server (by default `python -m ferry_runtime.server ARGS --verify-manifest` on a free port) in a
    process group of its own; yields (client, log, proc)."""
    if command is None:
        port = free_port()
        command = [sys.executable, "-m", "ferry_runtime.server"]
        args = (*args, "--verify-manifest", "--host", "127.0.0.1", "--port", str(port))
    log = root.parent / f"server-{port}.log"
    out = open(log, "wb")
    proc = subprocess.Popen(
        [*command, *args],
        env=child_env(**env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}{wait_for}", proc, log)
        with httpx.Client(base_url=base, timeout=60) as client:
            yield client, log, proc
    finally:
        stop_process_group(proc)
        out.close()
    assert proc.poll() is not None


@pytest.fixture(scope="module")
def models(efs_root, tmp_path_factory):
    """A models root holding the served versions and folders that are not served: an intact risk-score v3 (a
    valid version with its own manifest), a tampered version 9, a version 8 whose manifest says version 2, and a
    sync in progress."""
    root = tmp_path_factory.mktemp("served") / "models"
    for model in ("risk-score", "readmission"):
        shutil.copytree(efs_root / model, root / model)
    for version in ("3", "9"):
        shutil.copytree(efs_root / "risk-score" / "2", root / "risk-score" / version)
        manifest.write_manifest(root / "risk-score" / version, "risk-score", version)
    (root / "risk-score" / "9" / "python_model.pkl").write_bytes(b"tampered")
    shutil.copytree(efs_root / "risk-score" / "2", root / "risk-score" / "8")  # its manifest says version 2
    shutil.copytree(efs_root / "risk-score" / "2", root / "risk-score" / ".ferry-tmp-3-x1y2")
    return root


@pytest.fixture(scope="module")
def server(models):
    """One server with --verify-manifest serving exactly risk-score v1, v2 and readmission v1, ready (/ping)."""
    env = {"FERRY_SERVED_SET": served_set(models, ("risk-score", 1), ("risk-score", 2), ("readmission", 1))}
    yield from start_server(models, env, wait_for="/ping")


@pytest.fixture(scope="module")
def unready_server(models):
    """A server whose served set holds the tampered v9 and the mislabelled v8 beside an intact v2."""
    env = {"FERRY_SERVED_SET": served_set(models, ("risk-score", 2), ("risk-score", 9), ("risk-score", 8))}
    yield from start_server(models, env)


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


def test_ping_health_and_version(server):
    client, log, _ = server
    assert client.get("/ping").status_code == 200
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["ready"] is True and health["verify_manifest"] is True
    assert [(s["model"], s["version"], s["state"]) for s in health["served"]] == [
        ("risk-score", "1", "loaded"), ("risk-score", "2", "loaded"), ("readmission", "1", "loaded")]
    assert "available" not in health  # the server says nothing of folders it does not serve
    assert client.get("/version").json()["mlflow"] == "3.17.2"


def test_the_served_set_is_loaded_at_start_once_and_kept_under_concurrent_requests(server):
    client, log, proc = server
    loaded = lambda: [(r["model"], r["version"]) for r in log_records(log) if r["event"] == "model_loaded"]
    assert sorted(loaded()) == [("readmission", "1"), ("risk-score", "1"), ("risk-score", "2")]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/models/risk-score/v1/invocations", json=SPLIT), range(32)))
    assert all(a.status_code == 200 for a in answers)
    assert len(loaded()) == 3
    assert any(m["model"] == "risk-score" and m["version"] == "1" and m["digest"]
               for m in client.get("/health").json()["loaded"])
    assert proc.poll() is None


def test_a_version_not_in_the_served_set_is_refused_even_when_its_folder_exists(server, models):
    client, log, _ = server
    assert (models / "risk-score" / "3" / "MLmodel").is_file()  # an intact version with its own manifest
    r = client.post("/models/risk-score/v3/invocations", json=SPLIT)
    assert r.status_code == 404 and r.json()["error_code"] == "NOT_SERVED"
    assert r.json()["message"] == ("risk-score v3 is not in this server's served set; it serves risk-score v1, v2 "
                                   "and readmission v1")
    assert not [x for x in log_records(log) if x["event"] == "model_loaded" and x["version"] == "3"]


def test_unknown_versions_and_a_sync_in_progress_get_the_same_404(server):
    client, _, _ = server
    for path in ("/models/risk-score/v7/invocations", "/models/nope/v1/invocations",
                 "/models/risk-score/v.ferry-tmp-3-x1y2/invocations", "/models/risk-score/v9/invocations"):
        r = client.post(path, json=SPLIT)
        assert r.status_code == 404 and r.json()["error_code"] == "NOT_SERVED", path
    r = client.post("/models/..%2F..%2Fetc/v1/invocations", json=SPLIT)
    assert r.status_code == 404 and r.json()["error_code"] == "NOT_FOUND"
    assert client.get("/models/risk-score/v1/invocations").status_code == 405


def test_invocations_without_a_version_is_refused_when_several_are_served(server):
    client, _, _ = server
    r = client.post("/invocations", json=SPLIT)
    assert r.status_code == 404 and "serves 3 versions" in r.json()["message"]
    assert "/models/<model>/v<N>/invocations" in r.json()["message"]


def test_a_served_version_that_fails_its_manifest_keeps_the_server_unready(unready_server):
    client, log, _ = unready_server
    wait_until(lambda: {x["version"] for x in log_records(log) if x["event"] == "model_unavailable"} >= {"8", "9"})
    ping = client.get("/ping")
    assert ping.status_code == 503
    assert "risk-score v9: refusing to load" in ping.text and "python_model.pkl has 8 bytes" in ping.text
    assert "risk-score v8: refusing to load" in ping.text and "names version '2', expected '8'" in ping.text
    r = client.post("/models/risk-score/v9/invocations", json=SPLIT)
    assert r.status_code == 503 and r.json()["error_code"] == "MODEL_UNAVAILABLE"
    assert "python_model.pkl" not in r.text
    assert client.post("/models/risk-score/v2/invocations", json=SPLIT).status_code == 200


def test_a_version_that_keeps_failing_is_logged_once_per_reason_not_per_retry(unready_server):
    client, log, _ = unready_server
    background = lambda: [x for x in log_records(log) if x["event"] == "model_unavailable" and x["version"] == "9"
                          and "request_id" not in x]
    wait_until(lambda: background())
    time.sleep(2.0)  # retries after 0.25, 0.5 and 1 s
    assert len(background()) == 1


def test_ping_is_ready_only_once_a_late_folder_appears_and_is_loaded(efs_root, tmp_path):
    root = tmp_path / "models"
    folder = root / "risk-score" / "4"
    servers = start_server(root, {}, args=("--model-path", str(folder)))
    client, log, _ = next(servers)
    try:
        ping = client.get("/ping")
        assert ping.status_code == 503 and f"risk-score v4: {folder}: no such version folder" in ping.text
        assert client.post("/invocations", json=SPLIT).status_code == 503
        shutil.copytree(efs_root / "risk-score" / "2", folder)
        manifest.write_manifest(folder, "risk-score", "4")
        wait_until(lambda: client.get("/ping").status_code == 200)
        r = client.post("/invocations", content=json.dumps(SPLIT),
                        headers={"content-type": "application/json; charset=utf-8", "x-request-id": "trace-42"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "trace-42"
        assert r.json() == {"predictions": expected_predictions("risk-score", 2, FRAME), "model": "risk-score",
                            "version": "4"}
    finally:
        servers.close()


def wait_until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


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


def test_every_request_is_one_json_log_line(server):
    client, log, _ = server
    client.post("/models/risk-score/v2/invocations", json=SPLIT, headers={"x-request-id": "line-check"})
    line = [x for x in log_records(log) if x.get("request_id") == "line-check"]
    assert len(line) == 1 and line[0]["event"] == "invocation" and line[0]["status"] == 200
    assert line[0]["model"] == "risk-score" and line[0]["version"] == "2" and line[0]["latency_ms"] > 0


def test_the_rendered_deployment_runs_this_server_serving_exactly_its_versions(efs_root, models, tmp_path):
    """The Deployment `ferry render --target eks` writes (the built agent on tests/fixtures/k8s-render, through
    tests/python/eks_render.py) with versions 1 and 2 approved: its container command, args and environment, run here
    as they are (only host and port moved to a free local one, and the served set's paths from the pods' mount,
    /mnt/models, to `models`), serve the rendered versions and refuse the folders beside them."""
    sys.path.insert(0, str(REPO / "tests" / "python"))
    import eks_render
    import yaml

    fixture = eks_render.Fixture(tmp_path / "fixture")
    # Versions 1 and 2, approved without a digest: these test models are not the fixture's artifacts.
    fixture.edit("releases.toml", '\nartifact_sha256 = "3f9a1c0e5b7d2a4c6e8f0a1b3c5d7e9f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"', "")
    fixture.edit("releases.toml", 'version = "4"', 'version = "4"\nrevoked = true')
    fixture.edit("releases.toml", 'production = "4"', 'production = "2"')
    manifest = yaml.safe_load(fixture.render()["02-deployment.yaml"])
    [server] = manifest["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in server["env"]}
    assert '"/mnt/models/risk-score/2"' in env["FERRY_SERVED_SET"]
    env["FERRY_SERVED_SET"] = env["FERRY_SERVED_SET"].replace('"/mnt/models/', json.dumps(f"{models}/")[:-1])
    assert server["command"][:1] == ["python"]
    port = free_port()
    servers = start_server(models, {**env, "HOME": str(tmp_path)}, wait_for="/ping",
                           args=(*server["command"][1:], *server["args"], "--host", "127.0.0.1", "--port", str(port)),
                           command=[sys.executable], port=port)
    client, _, _ = next(servers)
    try:
        assert [(s["model"], s["version"]) for s in client.get("/health").json()["served"]] == [
            ("risk-score", "1"), ("risk-score", "2")]
        assert client.post("/models/risk-score/v2/invocations", json=SPLIT).json()["predictions"] == \
            expected_predictions("risk-score", 2, FRAME)
        assert client.post("/models/risk-score/v3/invocations", json=SPLIT).status_code == 404
    finally:
        servers.close()
