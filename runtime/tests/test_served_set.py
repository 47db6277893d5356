"""The served-set contract of the EKS server: the explicit list of deployed versions it serves, read from
FERRY_SERVED_SET (JSON), a file (FERRY_SERVED_SET_FILE / --served-set) or a single FERRY_MODEL_PATH, and refused at
start with the source, the field and the reason when it is malformed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import child_env
from ferry_runtime.config import ConfigError
from ferry_runtime.served_set import ServedVersion, from_env, parse

DIGEST = "a" * 64


def doc(*versions, **top):
    return json.dumps({"schema_version": 1, "versions": list(versions), **top})


def entry(model="risk-score", version="1", **extra):
    return {"model": model, "version": version, "path": f"/mnt/models/{model}/{version}", **extra}


def test_a_valid_served_set_is_read_in_order_with_its_digests():
    served = parse(doc(entry(version="2", artifact_digest=DIGEST), entry(version="1"), entry("readmission", "1")),
                   "FERRY_SERVED_SET")
    assert served == (
        ServedVersion("risk-score", "2", "/mnt/models/risk-score/2", DIGEST),
        ServedVersion("risk-score", "1", "/mnt/models/risk-score/1", ""),
        ServedVersion("readmission", "1", "/mnt/models/readmission/1", ""),
    )
    assert served[0].route == "/models/risk-score/v2/invocations"


@pytest.mark.parametrize("text, field, reason", [
    ("{not json", "FERRY_SERVED_SET", "is not JSON"),
    ("[]", "FERRY_SERVED_SET", "must be a JSON object"),
    (json.dumps({"versions": [entry()]}), "schema_version", "is missing"),
    (doc(entry(), schema_version=2), "schema_version = 2", "only schema_version 1"),
    (json.dumps({"schema_version": 1}), "versions", "is missing"),
    (doc(), "versions", "at least one version"),
    (json.dumps({"schema_version": 1, "versions": {"model": "x"}}), "versions", "must be a list"),
    (doc(entry(), root="/mnt/models"), "root", "unknown key"),
    (doc("risk-score/1"), "versions[0]", "must be an object"),
    (doc(entry(), entry(colour="blue")), "versions[1].colour", "unknown key"),
    (doc({"version": "1", "path": "/mnt/models/risk-score/1"}), "versions[0].model", "is missing"),
    (doc(entry(model="../etc")), "versions[0].model", "not a model name"),
    (doc(entry(model=".ferry-tmp-x")), "versions[0].model", "not a model name"),
    (doc(entry(version="v2")), "versions[0].version", "1-9 digits"),
    (doc(entry(version=2)), "versions[0].version", "must be a string"),
    (doc(entry(version="01")), "versions[0].version", "1-9 digits"),
    (doc(dict(entry(), path="models/risk-score/1")), "versions[0].path", "absolute"),
    (doc(dict(entry(), path="/mnt/models/../models/risk-score/1")), "versions[0].path", "normalised"),
    (doc(dict(entry(), path="/mnt/models/risk-score/1/")), "versions[0].path", "normalised"),
    (doc(dict(entry(), path="/mnt/models/readmission/1")), "versions[0].path", "must end in /risk-score/1"),
    (doc(dict(entry(version="2"), path="/mnt/models/risk-score/1")), "versions[0].path", "must end in /risk-score/2"),
    (doc(entry(artifact_digest="abc")), "versions[0].artifact_digest", "64 lowercase hex"),
    (doc(entry(), entry()), "versions[1]", "risk-score v1 is listed twice"),
])
def test_a_malformed_served_set_is_refused_naming_the_field_and_the_reason(text, field, reason):
    with pytest.raises(ConfigError) as err:
        parse(text, "FERRY_SERVED_SET")
    message = str(err.value)
    assert message.startswith("FERRY_SERVED_SET"), message
    assert field in message and reason in message, message


def test_a_served_set_file_is_read_and_its_errors_name_the_file(tmp_path):
    good = tmp_path / "served.json"
    good.write_text(doc(entry()))
    assert from_env({"FERRY_SERVED_SET_FILE": str(good)}) == (ServedVersion("risk-score", "1",
                                                                           "/mnt/models/risk-score/1", ""),)
    bad = tmp_path / "bad.json"
    bad.write_text(doc(entry(version="x")))
    with pytest.raises(ConfigError, match=rf"^{bad}: versions\[0\]\.version"):
        from_env({"FERRY_SERVED_SET_FILE": str(bad)})
    with pytest.raises(ConfigError, match=r"FERRY_SERVED_SET_FILE=.*missing.json: cannot read"):
        from_env({"FERRY_SERVED_SET_FILE": str(tmp_path / "missing.json")})


def test_a_single_model_path_is_a_served_set_of_one():
    served = from_env({"FERRY_MODEL_PATH": "/mnt/models/risk-score/3", "FERRY_ARTIFACT_DIGEST": DIGEST})
    assert served == (ServedVersion("risk-score", "3", "/mnt/models/risk-score/3", DIGEST),)


@pytest.mark.parametrize("env, reason", [
    ({}, "set FERRY_SERVED_SET"),
    ({"FERRY_SERVED_SET": doc(entry()), "FERRY_MODEL_PATH": "/mnt/models/risk-score/1"}, "more than one"),
    ({"FERRY_SERVED_SET": doc(entry()), "FERRY_SERVED_SET_FILE": "/x.json"}, "more than one"),
    ({"FERRY_MODELS_ROOT": "/mnt/models"}, "FERRY_MODELS_ROOT is no longer read"),
])
def test_the_served_set_comes_from_exactly_one_source(env, reason):
    with pytest.raises(ConfigError, match=reason):
        from_env(env)


def test_the_server_refuses_to_start_on_a_malformed_served_set_naming_the_field():
    bad = doc(entry(), dict(entry(version="2"), path="/mnt/models/risk-score/9"))
    proc = subprocess.run([sys.executable, "-m", "ferry_runtime.server", "--port", "1"],
                          env=child_env(FERRY_SERVED_SET=bad), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: FERRY_SERVED_SET: versions[1].path = '/mnt/models/risk-score/9' must end "
                                   "in /risk-score/2 (the EFS layout <mount>/<model>/<version>)")
    assert "Traceback" not in proc.stderr
