"""tools/kube_fake.py answers as a Kubernetes API server answers the calls Ferry makes (the shapes of
kube-apiserver's answers: Status objects with reason and code, resourceVersion and generation, a chunked watch
stream of one JSON event a line), so that `ferry deploy --target eks`'s tests meet a real server's behaviour."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t0ken"
DEPLOYMENTS = "/apis/apps/v1/namespaces/ferry/deployments"


@pytest.fixture
def fake(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "kube_fake.py"), "--port-file", str(port_file),
                             "--log", str(tmp_path / "log.jsonl"), "--token", TOKEN, "--unpullable", "sha256:dead"])
    try:
        for _ in range(300):
            if port_file.exists():
                break
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port_file.read_text()}"
    finally:
        proc.kill()
        proc.wait()


def call(fake, method, path, body=None, token=TOKEN, content_type="application/apply-patch+yaml", **params):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    return requests.request(method, fake + path, params=params, headers=headers,
                            data=json.dumps(body) if body is not None else None, timeout=10)


def deployment(image="registry.example.org/r@sha256:aa", replicas=2, name="ferry-m"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "ferry"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app.kubernetes.io/instance": name}},
                                  "spec": {"containers": [{"name": "server", "image": image}]}}}}


def test_errors_are_status_objects_with_the_servers_reasons(fake):
    missing = call(fake, "GET", f"{DEPLOYMENTS}/nope")
    assert missing.status_code == 404
    assert missing.json() | {"details": None} == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404,
        "message": 'deployments.apps "nope" not found', "details": None}
    assert call(fake, "GET", f"{DEPLOYMENTS}/nope", token="wrong").status_code == 401
    no_manager = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment())
    assert no_manager.status_code == 422 and "fieldManager: Required value" in no_manager.json()["message"]
    merge = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(), content_type="application/merge-patch+json",
                 fieldManager="ferry")
    assert merge.status_code == 415
    wrong_name = call(fake, "PATCH", f"{DEPLOYMENTS}/other", deployment(), fieldManager="ferry", force="true")
    assert wrong_name.status_code == 400


def test_apply_creates_then_bumps_generation_only_for_a_spec_change(fake):
    created = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(), fieldManager="ferry", force="true")
    assert created.status_code == 201
    meta = created.json()["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["managedFields"][0]["manager"] == "ferry"
    same = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(), fieldManager="ferry", force="true").json()
    assert same["metadata"]["generation"] == 1
    changed = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(replicas=3), fieldManager="ferry",
                   force="true").json()
    assert changed["metadata"]["generation"] == 2
    assert int(changed["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])


def test_a_watch_streams_the_rollout_to_its_end_one_event_a_line(fake):
    created = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(), fieldManager="ferry", force="true").json()
    with requests.get(fake + DEPLOYMENTS, params={"watch": "true", "fieldSelector": "metadata.name=ferry-m",
                                                  "resourceVersion": created["metadata"]["resourceVersion"],
                                                  "timeoutSeconds": "3"},
                      headers={"Authorization": f"Bearer {TOKEN}"}, stream=True, timeout=10) as r:
        assert r.headers["Transfer-Encoding"] == "chunked"
        events = [json.loads(line) for line in r.iter_lines() if line]
    assert {e["type"] for e in events} == {"MODIFIED"}
    last = events[-1]["object"]["status"]
    assert last["observedGeneration"] == 1 and last["updatedReplicas"] == last["availableReplicas"] == 2
    assert last["conditions"][0]["reason"] == "NewReplicaSetAvailable"


def test_an_unpullable_image_stalls_the_rollout_with_the_pods_reason(fake):
    call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(image="r@sha256:dead"), fieldManager="ferry", force="true")
    for _ in range(100):
        status = call(fake, "GET", f"{DEPLOYMENTS}/ferry-m").json().get("status", {})
        if status.get("conditions", [{}])[0].get("reason") == "ProgressDeadlineExceeded":
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"no ProgressDeadlineExceeded: {status}")
    pods = call(fake, "GET", "/api/v1/namespaces/ferry/pods", labelSelector="app.kubernetes.io/instance=ferry-m").json()
    assert pods["kind"] == "PodList"
    assert pods["items"][0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"


def test_a_dry_run_answers_the_would_be_object_and_stores_nothing(fake):
    created = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(), fieldManager="ferry", force="true").json()
    same = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(), fieldManager="ferry", force="true", dryRun="All")
    assert same.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    other = call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", deployment(replicas=5), fieldManager="ferry", force="true",
                 dryRun="All").json()
    # kube-apiserver's dry run answers with the live resourceVersion even when the object would change.
    assert other["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert other["spec"]["replicas"] == 5
    assert call(fake, "GET", f"{DEPLOYMENTS}/ferry-m").json()["spec"]["replicas"] == 2


def test_a_field_its_only_manager_drops_goes_back_to_its_default_unless_another_manager_keeps_it(fake):
    apply = lambda body, manager="ferry": call(fake, "PATCH", f"{DEPLOYMENTS}/ferry-m", body,  # noqa: E731
                                               fieldManager=manager, force="true").json()
    apply(deployment(replicas=3))
    unreplicated = deployment()
    del unreplicated["spec"]["replicas"]
    assert apply(unreplicated)["spec"]["replicas"] == 1, "Kubernetes' default when no manager applies it"
    apply(deployment(replicas=3))
    handoff = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ferry-m", "namespace": "ferry"},
               "spec": {"replicas": 3}}
    apply(handoff, manager="ferry-replicas-handoff")
    kept = apply(unreplicated)
    assert kept["spec"]["replicas"] == 3
    assert kept["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.org/r@sha256:aa"
