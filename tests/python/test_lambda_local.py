"""The local Lambda (tools/lambda_local) runs what Lambda runs, the way Lambda runs it: the version's own code zip and
layers as stored in moto, on the runtime's Python, through the real runtime interface client, with the version's
environment as published and the EFS folder read-only at the mount path; and it answers as Lambda answers."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest

import local_platform  # tools/, on sys.path through this folder's conftest.py
import standins

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "models"))
sys.path.insert(0, str(ROOT / "runtime"))
TARGET = json.loads((ROOT / "runtime" / "lambda-target.json").read_text())


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """moto and the local Lambda in front of it (no registry needed here); the platform file and its EFS folder."""
    workdir = tmp_path_factory.mktemp("lambda-local")
    st = standins.up(workdir, with_mlflow=False, parent_pid=os.getpid())
    saved = {k: os.environ.get(k) for k in st.env()}
    os.environ.update(st.env())
    try:
        yield st, workdir
    finally:
        standins.stop_groups(st.pids)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def lam():
    return boto3.client("lambda")


def zip_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def role_arn() -> str:
    iam = boto3.client("iam")
    try:
        return iam.get_role(RoleName=local_platform.ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=local_platform.ROLE,
                               AssumeRolePolicyDocument=json.dumps(local_platform.TRUST))["Role"]["Arn"]


def updated(name: str) -> None:
    """Waits until the update of `name` settled: as on Lambda, the local Lambda refuses a publish before that."""
    deadline = time.monotonic() + 30
    while lam().get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "InProgress":
        assert time.monotonic() < deadline, f"{name}: update still InProgress after 30 s"
        time.sleep(0.05)


def published(name: str, **kwargs) -> dict:
    """PublishVersion, then wait until the version is Active (as the SDKs' PublishedVersionActive waiter does): the
    local Lambda, as Lambda may, keeps a new version Pending for a while and refuses to invoke it meanwhile."""
    version = lam().publish_version(FunctionName=name, **kwargs)
    deadline = time.monotonic() + 30
    while lam().get_function_configuration(FunctionName=name, Qualifier=version["Version"])["State"] != "Active":
        assert time.monotonic() < deadline, f"{name}: version {version['Version']} not Active after 30 s"
        time.sleep(0.05)
    return version


def function(name: str, code: str, runtime: str = TARGET["runtime"], timeout: int = 3, env: dict | None = None,
             handler: str = "app.handler") -> str:
    """A function of one module `app.py` (no layer), published; returns its version."""
    created = lam().create_function(FunctionName=name, Runtime=runtime, Role=role_arn(), Handler=handler,
                                    Code={"ZipFile": zip_of({"app.py": code})}, Timeout=timeout,
                                    Environment={"Variables": env or {}}, Publish=True)
    return created["Version"]


def invoke(name: str, payload: object = None, qualifier: str | None = None) -> tuple[dict, object, str]:
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    answer = lam().invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), LogType="Tail", **kwargs)
    body = json.loads(answer["Payload"].read() or b"null")
    return answer, body, base64.b64decode(answer.get("LogResult", "")).decode()


def environments(st) -> list[dict]:
    with urllib.request.urlopen(f"{st.aws_url}/ferry-lambda/environments", timeout=10) as answer:
        return json.loads(answer.read())


PROBE = """
import json, os, sys
def handler(event, context):
    def writable(path):
        try:
            with open(os.path.join(path, "probe"), "w") as f:
                f.write("x")
            return True
        except OSError:
            return False
    return {"python": "%d.%d" % sys.version_info[:2], "path": sys.path, "cwd": os.getcwd(),
            "env": dict(os.environ), "pid": os.getpid(), "event": event,
            "task_writable": writable("/var/task"), "tmp_writable": writable("/tmp"),
            "root_writable": writable("/"), "home_writable": writable(os.path.expanduser("~")),
            "shm_writable": writable("/dev/shm"),
            "request_id": context.aws_request_id, "remaining_ms": context.get_remaining_time_in_millis()}
"""


def test_a_version_runs_its_own_code_on_its_runtime_python_isolated_as_on_lambda(aws):
    st, _ = aws
    version = function("probe", PROBE, env={"GREETING": "grüße ✓", "PYTHONPATH": "/elsewhere"})
    answer, body, logs = invoke("probe", {"a": "ünïcode"}, qualifier=version)
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer, body
    assert answer["ExecutedVersion"] == version
    assert body["python"] == TARGET["runtime"].removeprefix("python")
    assert body["event"] == {"a": "ünïcode"}
    assert body["cwd"] == "/var/task" and not body["task_writable"] and body["tmp_writable"]
    assert not body["root_writable"] and not body["home_writable"] and not body["shm_writable"], \
        "as on Lambda, only /tmp is writable"
    assert body["env"]["GREETING"] == "grüße ✓", "the version's environment as published"
    assert body["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == version
    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "probe"
    assert "AWS_ENDPOINT_URL" not in body["env"], "nothing of the caller's environment leaks in"
    py = body["python"]
    # Lambda's search path: the task root, the layers, the runtime, the standard library; no site-packages.
    assert list(dict.fromkeys(body["path"]))[:4] == ["/var/task", f"/opt/python/lib/python{py}/site-packages", "/opt/python", "/var/runtime"]
    assert not [p for p in body["path"] if "site-packages" in p and not p.startswith("/opt/")], body["path"]
    assert 0 < body["remaining_ms"] <= 3000
    assert f"START RequestId: {body['request_id']} Version: {version}" in logs
    assert "Init Duration:" in logs, "the first invoke of an environment reports its init"

    # Warm: the same environment answers the next invoke, without a new init.
    _, again, logs = invoke("probe", {}, qualifier=version)
    assert again["pid"] == body["pid"] and "Init Duration:" not in logs


def test_the_runtime_is_the_one_the_version_names(aws):
    other = "python3.12" if TARGET["runtime"] != "python3.12" else "python3.13"
    version = function("probe-other-python", PROBE, runtime=other)
    _, body, _ = invoke("probe-other-python", qualifier=version)
    assert body["python"] == other.removeprefix("python")


def test_an_alias_runs_the_version_it_points_at(aws):
    v1 = function("aliased", "def handler(e, c):\n    return 'one'\n")
    lam().update_function_code(FunctionName="aliased", ZipFile=zip_of({"app.py": "def handler(e, c):\n    return 'two'\n"}))
    updated("aliased")
    v2 = published("aliased")["Version"]
    lam().create_alias(FunctionName="aliased", Name="v1", FunctionVersion=v1)
    lam().create_alias(FunctionName="aliased", Name="live", FunctionVersion=v2)
    assert invoke("aliased", qualifier="v1")[1] == "one"
    answer, body, _ = invoke("aliased", qualifier="live")
    assert body == "two" and answer["ExecutedVersion"] == v2
    assert invoke("aliased")[1] == "two", "no qualifier runs $LATEST"


def test_publishing_an_unchanged_function_returns_the_version_published_before_as_lambda_does(aws):
    v1 = function("publish-twice", "def handler(e, c):\n    return 1\n")
    again = lam().publish_version(FunctionName="publish-twice", Description="")
    assert again["Version"] == v1, "nothing changed: no second version"
    lam().update_function_configuration(FunctionName="publish-twice", MemorySize=256)
    updated("publish-twice")
    v2 = lam().publish_version(FunctionName="publish-twice", Description="ferry:abc m/v2")["Version"]
    assert v2 != v1
    # A retried publish (its first answer lost) gets the same version back.
    assert lam().publish_version(FunctionName="publish-twice", Description="ferry:abc m/v2")["Version"] == v2
    numbers = [v["Version"] for v in lam().list_versions_by_function(FunctionName="publish-twice")["Versions"]]
    assert numbers == ["$LATEST", v1, v2]


def test_an_alias_that_exists_is_a_resource_conflict_as_on_lambda(aws):
    v1 = function("alias-twice", "def handler(e, c):\n    return 1\n")
    lam().create_alias(FunctionName="alias-twice", Name="v1", FunctionVersion=v1)
    with pytest.raises(lam().exceptions.ResourceConflictException):
        lam().create_alias(FunctionName="alias-twice", Name="v1", FunctionVersion=v1)


def test_concurrent_invokes_get_environments_of_their_own(aws):
    st, _ = aws
    version = function("slow", "import time\ndef handler(e, c):\n    time.sleep(1.0)\n    return __import__('os').getpid()\n")
    pids = []
    threads = [threading.Thread(target=lambda: pids.append(invoke("slow", qualifier=version)[1])) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pids)) == 3, pids
    assert len([e for e in environments(st) if e["function"] == "slow"]) == 3


FAILURES = [
    ("import no_such_module\ndef handler(e, c):\n    return 1\n", "app.handler", "Runtime.ImportModuleError",
     "No module named 'no_such_module'"),
    ("def handler(e, c):\n    return 1\n", "app.missing", "Runtime.HandlerNotFound", "missing"),
    ("def handler(e, c):\n    raise ValueError('bad input ✗')\n", "app.handler", "ValueError", "bad input ✗"),
    ("import os, signal\ndef handler(e, c):\n    os.kill(os.getpid(), signal.SIGSEGV)\n", "app.handler",
     "Runtime.ExitError", "Runtime exited with error: signal: segmentation fault"),
    ("import os\nos._exit(3)\n", "app.handler", "Runtime.ExitError", "Runtime exited with error: exit status 3"),
    ("import time\ndef handler(e, c):\n    time.sleep(30)\n", "app.handler", "Sandbox.Timedout",
     "Task timed out after 1.00 seconds"),
]


@pytest.mark.parametrize("case", range(len(FAILURES)))
def test_failures_are_answered_as_lambda_answers_them(aws, case):
    code, handler, error_type, message = FAILURES[case]
    name = f"fails-{case}"
    version = function(name, code, handler=handler, timeout=1)
    answer, body, _ = invoke(name, qualifier=version)
    assert answer["StatusCode"] == 200 and answer.get("FunctionError") == "Unhandled", body
    assert body["errorType"] == error_type and message in body["errorMessage"], body
    # A crash or a timeout ends the environment; the next invoke starts a fresh one and fails the same way.
    again = invoke(name, qualifier=version)[1]
    assert again["errorType"] == error_type


def test_the_file_system_shows_at_the_mount_path_read_only(aws, tmp_path):
    st, _ = aws
    arn = "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-probe"
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "MLmodel").write_text("frozen ✓")
    req = urllib.request.Request(f"{st.aws_url}/ferry-lambda/mounts", method="POST",
                                 data=json.dumps({"access_point_arn": arn, "local_root": str(tmp_path)}).encode())
    urllib.request.urlopen(req, timeout=10).read()
    code = ("def handler(e, c):\n    text = open('/mnt/probe/m/1/MLmodel', encoding='utf-8').read()\n"
            "    try:\n        open('/mnt/probe/m/1/new', 'w').close()\n        wrote = True\n"
            "    except OSError:\n        wrote = False\n    return {'text': text, 'wrote': wrote}\n")
    created = lam().create_function(FunctionName="efs-probe", Runtime=TARGET["runtime"], Role=role_arn(),
                                    Handler="app.handler", Code={"ZipFile": zip_of({"app.py": code})}, Publish=True,
                                    FileSystemConfigs=[{"Arn": arn, "LocalMountPath": "/mnt/probe"}])
    _, body, logs = invoke("efs-probe", qualifier=created["Version"])
    assert body == {"text": "frozen ✓", "wrote": False}, logs
    assert not (tmp_path / "m" / "1" / "new").exists()


def test_a_function_for_another_architecture_is_refused_not_run(aws):
    other = "arm64" if local_platform.ARCHITECTURE == "x86_64" else "x86_64"
    created = lam().create_function(FunctionName="other-arch", Runtime=TARGET["runtime"], Role=role_arn(),
                                    Handler="app.handler", Architectures=[other], Publish=True,
                                    Code={"ZipFile": zip_of({"app.py": "def handler(e, c):\n    return 1\n"})})
    with pytest.raises(lam().exceptions.ClientError) as refused:
        lam().invoke(FunctionName="other-arch", Qualifier=created["Version"], Payload=b"{}")
    assert f"built for {other}" in str(refused.value)


def test_a_payload_above_6_mb_is_refused_before_any_code_runs(aws):
    version = function("big", "def handler(e, c):\n    return len(e)\n")
    with pytest.raises(lam().exceptions.ClientError) as refused:
        lam().invoke(FunctionName="big", Qualifier=version, Payload=json.dumps("x" * (6 * 1024 * 1024)).encode())
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_moto_reset_stops_every_environment(aws):
    st, _ = aws
    version = function("to-reset", PROBE)
    pid = invoke("to-reset", qualifier=version)[1]["pid"]
    urllib.request.urlopen(urllib.request.Request(f"{st.aws_url}/moto-api/reset", method="POST"), timeout=30).read()
    assert environments(st) == []
    assert not Path(f"/proc/{pid}").exists(), "the environment's process is gone"
    boto3.client("s3").create_bucket(Bucket=standins.BUCKET)


@pytest.fixture(scope="module")
def runtime_function(aws):
    """The shipped runtime: dist/'s function zip and layer, made by tools/local_platform.py as Terraform makes it,
    serving a demo model version synced onto the EFS folder."""
    st, workdir = aws
    import demo_models
    from ferry_runtime import manifest

    platform = json.loads((workdir / "platform.json").read_text())
    folder = Path(platform["efs"]["local_root"]) / "risk-score" / "2"
    shutil.rmtree(folder, ignore_errors=True)
    demo_models.save("risk-score", 2, str(folder))
    manifest.write_manifest(folder, "risk-score", "2", source="s3://ferry-artifacts/risk-score/2")
    local_platform.create(platform, st.aws_url)
    name = platform["functions"]["risk-score"]
    mount = platform["efs"]["mount_path"]

    def publish(env: dict[str, str]) -> str:
        lam().update_function_configuration(FunctionName=name, Environment={"Variables": env})
        updated(name)
        return published(name)["Version"]

    return name, mount, folder, publish


def test_the_shipped_layer_serves_a_demo_model_from_the_read_only_efs_mount(runtime_function):
    import demo_models

    name, mount, folder, publish = runtime_function
    conf = lam().get_function_configuration(FunctionName=name)
    assert conf["Runtime"] == TARGET["runtime"] and conf["Handler"] == TARGET["handler"]
    assert [layer["Arn"].split(":")[6] for layer in conf["Layers"]] == [local_platform.LAYER_NAME]
    version = publish({"FERRY_MODEL_PATH": f"{mount}/risk-score/2", "FERRY_MODEL_NAME": "risk-score",
                       "FERRY_MODEL_VERSION": "2", "FERRY_VERIFY_MANIFEST": "true"})
    answer, body, logs = invoke(name, demo_models.SAMPLE_INPUTS["risk-score"], qualifier=version)
    expected = demo_models.build("risk-score", 2).predict(None, demo_models.input_example("risk-score"))
    assert "FunctionError" not in answer, logs
    assert body["predictions"] == expected and body["version"] == "2"
    assert '"model_loaded"' in logs and "Init Duration:" in logs
    assert not list(folder.rglob("__pycache__")), "no bytecode is ever written into a version folder"


def test_a_wrong_model_path_is_answered_with_an_error_id(runtime_function):
    name, mount, _, publish = runtime_function
    version = publish({"FERRY_MODEL_PATH": f"{mount}/risk-score/9", "FERRY_MODEL_NAME": "risk-score",
                       "FERRY_MODEL_VERSION": "9"})
    answer, body, logs = invoke(name, {"instances": [{"age": 1}]}, qualifier=version)
    assert body["error_code"] == "MODEL_UNAVAILABLE" and body["status"] == 500 and body["error_id"], body
    assert "no such version folder" in logs
