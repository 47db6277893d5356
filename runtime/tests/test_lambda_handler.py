"""The Lambda handler as a caller sees it: direct invokes and HTTP events, every request format of MLflow's scoring
protocol, the 400 and 500 answers, the log lines, loading once, and refusing a tampered folder."""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
from types import SimpleNamespace

import pandas as pd
import pytest

import demo_models
from conftest import child_env, expected_predictions, json_lines
from ferry_runtime import lambda_handler, loader
from ferry_runtime.lambda_handler import handler

RISK_ROWS = [[63, 148, 240, 31.5], [41, 118, 180, 23.0], [90, 260, 410, 80.0]]  # the last one is clipped
COLUMNS = demo_models.RISK_FEATURES
FRAME = pd.DataFrame(RISK_ROWS, columns=COLUMNS)
RECORDS = FRAME.to_dict(orient="records")


def context(request_id="req-123"):
    return SimpleNamespace(aws_request_id=request_id, function_name="ferry-test-risk-score")


@pytest.fixture
def serve(efs_root, monkeypatch):
    """Configure the function's environment as the rendered spec does, for one version folder."""
    def configure(model="risk-score", version=1, path=None, verify=False, digest=""):
        monkeypatch.setenv("FERRY_MODEL_NAME", model)
        monkeypatch.setenv("FERRY_MODEL_VERSION", str(version))
        monkeypatch.setenv("FERRY_MODEL_PATH", str(path or efs_root / model / str(version)))
        monkeypatch.setenv("FERRY_VERIFY_MANIFEST", "true" if verify else "false")
        monkeypatch.setenv("FERRY_ARTIFACT_DIGEST", digest)
        monkeypatch.setenv("FERRY_SPEC_HASH", "spec-abc")
    return configure


def http_v2_event(body, method="POST", content_type="application/json", b64=False, domain="abc.execute-api.us-east-1.amazonaws.com"):
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "version": "2.0", "routeKey": "POST /risk-score/v1", "rawPath": "/risk-score/v1", "rawQueryString": "",
        "headers": {"content-type": content_type, "host": domain} if content_type else {"host": domain},
        "requestContext": {"accountId": "123456789012", "apiId": domain.split(".")[0], "domainName": domain,
                           "requestId": "http-req-9", "http": {"method": method, "path": "/risk-score/v1",
                                                               "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1"},
                           "stage": "$default"},
        "body": base64.b64encode(text.encode()).decode() if b64 else text,
        "isBase64Encoded": b64,
    }


def function_url_event(body, **kw):
    return http_v2_event(body, domain="a1b2c3.lambda-url.us-east-1.on.aws", **kw)


PAYLOADS = {
    "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": RISK_ROWS}},
    "dataframe_split_with_index": {"dataframe_split": {"columns": COLUMNS, "data": RISK_ROWS, "index": [7, 8, 9]}},
    "dataframe_records": {"dataframe_records": RECORDS},
    "instances": {"instances": RECORDS},
    "inputs_columnar": {"inputs": {c: list(FRAME[c]) for c in COLUMNS}},
    "inputs_rows": {"inputs": RECORDS},
}


@pytest.mark.parametrize("fmt", sorted(PAYLOADS))
def test_direct_invoke_answers_every_request_format(serve, fmt):
    serve("risk-score", 1)
    answer = handler(PAYLOADS[fmt], context())
    assert answer == {"predictions": expected_predictions("risk-score", 1, FRAME), "model": "risk-score",
                      "version": "1"}


def test_direct_invoke_answer_is_plain_json(serve):
    serve("readmission", 1)
    answer = handler(demo_models.SAMPLE_INPUTS["readmission"], context())
    assert json.loads(json.dumps(answer)) == answer
    assert answer["predictions"] == expected_predictions("readmission", 1, demo_models.input_example("readmission"))
    assert answer["predictions"][0]["band"] in ("high", "low")


@pytest.mark.parametrize("make_event, source", [(http_v2_event, "apigw-v2"), (function_url_event, "function-url")])
@pytest.mark.parametrize("b64", [False, True])
def test_http_events_get_status_content_type_and_json_body(serve, capsys, make_event, source, b64):
    serve("risk-score", 2)
    answer = handler(make_event(PAYLOADS["dataframe_split"], b64=b64), context("req-http"))
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"] == "application/json"
    assert json.loads(answer["body"]) == {"predictions": expected_predictions("risk-score", 2, FRAME),
                                          "model": "risk-score", "version": "2"}
    line = [r for r in json_lines(capsys.readouterr().out) if r["event"] == "invocation"][-1]
    assert line["source"] == source and line["request_id"] == "req-http" and line["http_request_id"] == "http-req-9"


def test_rest_api_v1_event_is_served_too(serve):
    serve("risk-score", 1)
    event = {"resource": "/", "path": "/", "httpMethod": "POST", "headers": {"Content-Type": "application/json"},
             "requestContext": {"requestId": "r1", "stage": "prod"}, "body": json.dumps(PAYLOADS["instances"]),
             "isBase64Encoded": False}
    answer = handler(event, context())
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["predictions"] == expected_predictions("risk-score", 1, FRAME)


def test_http_get_is_a_health_check_and_other_methods_are_refused(serve):
    serve("risk-score", 1)
    health = handler(http_v2_event("", method="GET", content_type=None), context())
    assert health["statusCode"] == 200 and json.loads(health["body"])["status"] == "ok"
    put = handler(http_v2_event(PAYLOADS["instances"], method="PUT"), context())
    assert put["statusCode"] == 405


MALFORMED = {
    "not json": ("{dataframe_split:", "not valid JSON"),
    "empty body": ("", "empty request body"),
    "json array": ("[1, 2, 3]", "got a JSON array"),
    "no format": (json.dumps({"data": [[1, 2]]}), "unknown field(s) 'data'"),
    "two formats": (json.dumps({"instances": RECORDS, "inputs": RECORDS}), "exactly one of"),
    "split without data": (json.dumps({"dataframe_split": {"columns": COLUMNS}}), "'data' list"),
    "split of a number": (json.dumps({"dataframe_split": 3}), "'dataframe_split' could not be read"),
    "records not a list": (json.dumps({"dataframe_records": {"age": 3}}), "'dataframe_records' could not be read"),
    "ragged split": (json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}}), "could not be read"),
    "params not an object": (json.dumps({"instances": RECORDS, "params": [1]}), "'params' must be a JSON object"),
    "empty inputs": (json.dumps({"inputs": []}), "'inputs' is empty"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_gets_400_with_a_short_reason(serve, case):
    serve("risk-score", 1)
    body, reason = MALFORMED[case]
    answer = handler(http_v2_event(body), context())
    assert answer["statusCode"] == 400
    assert answer["headers"]["content-type"] == "application/json"
    payload = json.loads(answer["body"])
    assert payload["error_code"] == "BAD_REQUEST" and reason in payload["message"]
    assert len(payload["message"]) <= 300 and "Traceback" not in payload["message"]
    assert "predictions" not in payload


def test_malformed_direct_invoke_is_answered_not_raised(serve):
    serve("risk-score", 1)
    answer = handler({"dataframe_splitt": {}}, context())
    assert answer["status"] == 400 and answer["error_code"] == "BAD_REQUEST" and "predictions" not in answer


def test_wrong_content_type_gets_415(serve):
    serve("risk-score", 1)
    answer = handler(http_v2_event("age,bmi\n1,2\n", content_type="text/csv"), context())
    assert answer["statusCode"] == 415


def test_model_exception_gets_500_with_error_id_and_the_trace_only_in_the_log(serve, capsys):
    serve("risk-score", 1)
    # the model's own preprocessing raises on a frame without its feature columns
    answer = handler(http_v2_event({"dataframe_records": [{"age": 50}]}), context("req-boom"))
    assert answer["statusCode"] == 500
    body = json.loads(answer["body"])
    assert body["error_code"] == "INTERNAL_ERROR" and len(body["error_id"]) == 16
    assert body["error_id"] in body["message"]
    text = answer["body"]
    for leak in ("Traceback", "demo_models.py", "missing feature columns", "ValueError", "File \""):
        assert leak not in text
    lines = json_lines(capsys.readouterr().out)
    error = [r for r in lines if r["event"] == "model_error"][0]
    assert error["error_id"] == body["error_id"] and error["request_id"] == "req-boom"
    assert "Traceback" in error["traceback"] and "missing feature columns" in error["traceback"]
    assert error["model"] == "risk-score" and error["version"] == "1"


def test_direct_invoke_model_exception_is_answered_with_500(serve):
    serve("risk-score", 1)
    answer = handler({"instances": [{"age": "not a number", "systolic_bp": 1, "cholesterol": 1, "bmi": 1}]},
                     context())
    assert answer["status"] == 500 and answer["error_id"] and "Traceback" not in json.dumps(answer)


def test_each_request_logs_one_json_line_with_model_version_request_id_and_latency(serve, capsys):
    serve("risk-score", 2)
    handler(PAYLOADS["dataframe_split"], context("req-a"))
    handler(http_v2_event("nope"), context("req-b"))
    records = json_lines(capsys.readouterr().out)
    invocations = [r for r in records if r["event"] == "invocation"]
    assert [(r["request_id"], r["status"]) for r in invocations] == [("req-a", 200), ("req-b", 400)]
    for r in invocations:
        assert r["model"] == "risk-score" and r["version"] == "2" and r["latency_ms"] >= 0
        assert r["level"] == "INFO" and r["ts"].endswith("Z")
    assert invocations[0]["rows"] == 3 and invocations[0]["predict_ms"] > 0
    loaded = [r for r in records if r["event"] == "model_loaded"]
    assert len(loaded) == 1 and loaded[0]["load_ms"] > 0


def test_model_loads_once_per_process_even_under_concurrent_first_requests(serve, monkeypatch):
    import mlflow.pyfunc

    calls = []
    real = mlflow.pyfunc.load_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow.pyfunc, "load_model", counting)
    serve("risk-score", 1)
    answers = []
    barrier = threading.Barrier(8)

    def call():
        barrier.wait()
        for _ in range(5):
            answers.append(handler(PAYLOADS["instances"], context()))

    threads = [threading.Thread(target=call) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(answers) == 40 and all(a["predictions"] == expected_predictions("risk-score", 1, FRAME)
                                      for a in answers)
    assert len(calls) == 1


def test_a_fresh_process_loads_once_and_answers_many_invokes(efs_root):
    """In a separate interpreter, as a Lambda container: one model_loaded line, then one line per invoke."""
    script = (
        "import json; from ferry_runtime.lambda_handler import handler\n"
        "p = json.loads(%r)\n"
        "for i in range(5): assert 'predictions' in handler(p, None)\n" % json.dumps(PAYLOADS["dataframe_split"]))
    env = child_env(FERRY_MODEL_PATH=str(efs_root / "risk-score" / "2"), FERRY_MODEL_NAME="risk-score",
                    FERRY_MODEL_VERSION="2", AWS_LAMBDA_FUNCTION_NAME="ferry-test-risk-score")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = json_lines(done.stdout)
    assert [r["event"] for r in records] == ["model_loaded"] + ["invocation"] * 5


def test_two_versions_loaded_side_by_side_give_their_own_answers(efs_root):
    v1 = loader.load(efs_root / "risk-score" / "1", "risk-score", "1")
    v2 = loader.load(efs_root / "risk-score" / "2", "risk-score", "2")
    p1 = v1.model.predict(FRAME)
    p2 = v2.model.predict(FRAME)
    assert p1 == expected_predictions("risk-score", 1, FRAME)
    assert p2 == expected_predictions("risk-score", 2, FRAME)
    assert p1 != p2
    assert loader.load(efs_root / "risk-score" / "1", "risk-score", "1") is v1


def test_tampered_folder_is_refused_when_checking_is_on(serve, version_copy, capsys):
    folder = version_copy("risk-score", 1)
    with open(folder / "code" / "demo_models.py", "a") as f:
        f.write("\n# an unreviewed change\n")
    serve("risk-score", 1, path=folder, verify=True)
    answer = handler(http_v2_event(PAYLOADS["instances"]), context())
    assert answer["statusCode"] == 503
    body = json.loads(answer["body"])
    assert body["error_code"] == "MODEL_UNAVAILABLE" and "demo_models" not in answer["body"]
    error = [r for r in json_lines(capsys.readouterr().out) if r["event"] == "model_unavailable"][0]
    assert "refusing to load" in error["error"] and "code/demo_models.py has 4" in error["error"]
    assert error["error_id"] == body["error_id"]
    assert not loader.is_loaded(folder)


def test_the_same_tampered_folder_loads_when_checking_is_off(serve, version_copy):
    folder = version_copy("risk-score", 1)
    with open(folder / "code" / "demo_models.py", "a") as f:
        f.write("\n# an unreviewed change\n")
    serve("risk-score", 1, path=folder, verify=False)
    assert handler(PAYLOADS["instances"], context())["predictions"] == expected_predictions("risk-score", 1, FRAME)


def test_intact_folder_with_the_approved_digest_is_served_with_checking_on(serve, efs_root):
    folder = efs_root / "risk-score" / "2"
    digest = json.loads((folder / ".ferry-manifest.json").read_text())["digest"]
    serve("risk-score", 2, verify=True, digest=digest)
    assert handler(PAYLOADS["instances"], context())["predictions"] == expected_predictions("risk-score", 2, FRAME)


def test_folder_with_another_digest_than_approved_is_refused(serve, capsys):
    serve("risk-score", 2, verify=True, digest="0" * 64)
    answer = handler(PAYLOADS["instances"], context())
    assert answer["status"] == 500 and answer["error_code"] == "MODEL_UNAVAILABLE"
    assert "differs from the approved" in capsys.readouterr().out


def test_sync_in_progress_and_missing_folders_are_never_loaded(serve, efs_root, tmp_path, capsys):
    tmp = efs_root / "risk-score" / ".ferry-tmp-3-abcd"
    serve("risk-score", 3, path=tmp)
    assert handler(PAYLOADS["instances"], context())["error_code"] == "MODEL_UNAVAILABLE"
    serve("risk-score", 4, path=tmp_path / "absent")
    assert handler(PAYLOADS["instances"], context())["error_code"] == "MODEL_UNAVAILABLE"
    out = capsys.readouterr().out
    assert "sync in progress" in out and "no such version folder" in out


def test_missing_model_path_setting_is_a_clear_error(capsys):
    answer = handler(PAYLOADS["instances"], context())
    assert answer["error_code"] == "MODEL_UNAVAILABLE"
    assert "FERRY_MODEL_PATH is not set" in capsys.readouterr().out


def test_loading_opens_no_network_connection(serve, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"network access during load: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, *a))
    serve("risk-score", 1, verify=True)
    assert lambda_handler.get_model().version == "1"
    assert handler(PAYLOADS["instances"], context())["predictions"] == expected_predictions("risk-score", 1, FRAME)


def test_environment_differences_are_logged_as_one_warning_line(serve, version_copy, capsys):
    folder = version_copy("risk-score", 1)
    (folder / "requirements.txt").write_text("mlflow==3.17.2\nnumpy==0.0.1\nnot-installed-pkg==1.0\n")
    serve("risk-score", 1, path=folder)
    assert handler(PAYLOADS["instances"], context())["predictions"] == expected_predictions("risk-score", 1, FRAME)
    warning = [r for r in json_lines(capsys.readouterr().out) if r["event"] == "model_environment_mismatch"]
    assert len(warning) == 1 and warning[0]["level"] == "WARNING"
    assert warning[0]["mismatches"] == [f"numpy==0.0.1 (installed: {__import__('numpy').__version__})",
                                        "not-installed-pkg==1.0 (installed: none)"]


@pytest.fixture(scope="module")
def signed_folder(tmp_path_factory):
    """A version saved with an input example, so it has a signature (long, long, long, double), as the registry's
    versions have; requests are then typed by MLflow's schema rules."""
    import mlflow.pyfunc

    folder = tmp_path_factory.mktemp("signed") / "risk-score" / "5"
    mlflow.pyfunc.save_model(str(folder), python_model=demo_models.build("risk-score", 5),
                             code_paths=[demo_models.__file__], input_example=demo_models.input_example("risk-score"))
    return folder


def test_signature_model_accepts_json_numbers_of_either_kind_like_mlflow_serve(serve, signed_folder):
    serve("risk-score", 5, path=signed_folder)
    ints = handler({"dataframe_split": {"columns": COLUMNS, "data": [[63, 148, 240, 31.5]]}}, context())
    floats = handler({"dataframe_split": {"columns": COLUMNS, "data": [[63.0, 148.0, 240.0, 31.5]]}}, context())
    whole_bmi = handler({"dataframe_records": [{"age": 63, "systolic_bp": 148, "cholesterol": 240, "bmi": 31}]},
                        context())
    assert ints["predictions"] == floats["predictions"] == expected_predictions("risk-score", 5, FRAME.iloc[:1])
    assert whole_bmi["predictions"] == expected_predictions(
        "risk-score", 5, pd.DataFrame([[63, 148, 240, 31.0]], columns=COLUMNS))


def test_signature_model_rejects_input_of_the_wrong_type_with_400(serve, signed_folder):
    serve("risk-score", 5, path=signed_folder)
    answer = handler({"dataframe_records": [{"age": "old", "systolic_bp": 1, "cholesterol": 1, "bmi": 1.0}]},
                     context())
    assert answer["status"] == 400 and answer["error_code"] == "BAD_REQUEST" and "age" in answer["message"]
    missing = handler({"dataframe_records": [{"age": 50}]}, context())
    assert missing["status"] == 400 and "Traceback" not in missing["message"]
