"""`python -m ferry_runtime.invoke`: the Lambda handler run in-process on a local version folder, as the demo uses it."""
from __future__ import annotations

import json
import subprocess
import sys

import demo_models
from conftest import child_env, expected_predictions, json_lines


def invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferry_runtime.invoke", *args], env=child_env(),
                          capture_output=True, text=True, timeout=120)


def test_invoke_prints_the_handler_answer(efs_root, tmp_path):
    payload = tmp_path / "smoke.json"
    payload.write_text(json.dumps(demo_models.SAMPLE_INPUTS["risk-score"]))
    done = invoke("--model-path", str(efs_root / "risk-score" / "2"), "--verify-manifest", "--payload", f"@{payload}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "predictions": expected_predictions("risk-score", 2, demo_models.input_example("risk-score")),
        "model": "risk-score", "version": "2"}
    assert any(r["event"] == "model_loaded" and r["verified"] for r in json_lines(done.stderr))


def test_invoke_reads_the_rendered_environment_from_an_env_file(efs_root, tmp_path):
    env_file = tmp_path / "function.env"
    env_file.write_text(f"# rendered\nexport FERRY_MODEL_NAME=readmission\nFERRY_MODEL_VERSION='1'\n"
                        f"FERRY_MODEL_PATH=\"{efs_root / 'readmission' / '1'}\"\nFERRY_VERIFY_MANIFEST=true\n")
    done = invoke("--env-file", str(env_file), "--payload", json.dumps(demo_models.SAMPLE_INPUTS["readmission"]))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["model"] == "readmission" and answer["version"] == "1"
    assert answer["predictions"] == expected_predictions("readmission", 1, demo_models.input_example("readmission"))


def test_invoke_of_an_http_event_prints_the_http_answer(efs_root):
    event = {"version": "2.0", "requestContext": {"domainName": "x.lambda-url.us-east-1.on.aws", "requestId": "r",
                                                  "http": {"method": "POST"}},
             "headers": {"content-type": "application/json"}, "body": "{\"rows\": []}", "isBase64Encoded": False}
    done = invoke("--model-path", str(efs_root / "risk-score" / "1"), "--payload", json.dumps(event))
    assert done.returncode == 1
    answer = json.loads(done.stdout)
    assert answer["statusCode"] == 400 and answer["headers"]["content-type"] == "application/json"


def test_invoke_error_answer_exits_1_and_usage_error_exits_2(efs_root):
    bad = invoke("--model-path", str(efs_root / "risk-score" / "1"), "--payload", "{\"rows\": []}")
    assert bad.returncode == 1 and json.loads(bad.stdout)["status"] == 400
    usage = invoke("--payload", "{}")
    assert usage.returncode == 2 and "--model-path" in usage.stderr
    not_json = invoke("--model-path", str(efs_root / "risk-score" / "1"), "--payload", "{oops")
    assert not_json.returncode == 2
