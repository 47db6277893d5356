"""Resource policies in the local Lambda (tools/lambda_local/policies.py) are kept as Lambda keeps them: one per
qualifier. An alias's permissions are its own, apart from the function's and from every other alias's (moto files
them all under one policy), even an alias on the same version; GetPolicy with a Qualifier answers that policy only,
and RemovePermission with a Qualifier removes from it only. Each test names the Lambda fact it checks."""
from __future__ import annotations

import io
import json
import os
import urllib.request
import zipfile

import boto3
import pytest
from botocore.config import Config

import standins

NO_RETRIES = Config(retries={"total_max_attempts": 1})
TARGET_RUNTIME = json.loads((standins.Path(standins.__file__).resolve().parent.parent / "runtime"
                             / "lambda-target.json").read_text())["runtime"]
API_GATEWAY = "apigateway.amazonaws.com"


@pytest.fixture(scope="module")
def st(tmp_path_factory):
    """moto and the local Lambda in front of it (standins.py), without MLflow."""
    st = standins.up(tmp_path_factory.mktemp("policies"), with_mlflow=False, parent_pid=os.getpid())
    try:
        yield st
    finally:
        standins.stop_groups(st.pids)


@pytest.fixture
def lam(st):
    """A freshly reset moto with function `f`, its version 1, and aliases `a` and `b` both on version 1."""
    # The reset also restores the control plane's settings and forgets every policy the local Lambda keeps.
    urllib.request.urlopen(urllib.request.Request(f"{st.aws_url}/moto-api/reset", method="POST"), timeout=30).read()
    role = boto3.client("iam", **endpoint(st)).create_role(RoleName="p", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", config=NO_RETRIES, **endpoint(st))
    lam.create_function(FunctionName="f", Runtime=TARGET_RUNTIME, Role=role, Handler="app.handler",
                        Code={"ZipFile": zip_of("def handler(e, c):\n    return 1\n")})
    lam.get_waiter("function_updated_v2").wait(FunctionName="f", WaiterConfig={"Delay": 0.2})
    version = lam.publish_version(FunctionName="f")["Version"]
    for alias in ("a", "b"):
        lam.create_alias(FunctionName="f", Name=alias, FunctionVersion=version)
    return lam


def endpoint(st) -> dict:
    return dict(endpoint_url=st.aws_url, region_name=st.region, aws_access_key_id=standins.ACCESS_KEY,
                aws_secret_access_key=standins.SECRET_KEY)


def zip_of(code: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", code)
    return buf.getvalue()


def allow_route(lam, qualifier: str | None, sid: str = "ferry-route-api1", **extra) -> dict:
    """An API Gateway invoke permission as Ferry adds it, on `qualifier` (None: the function's own policy)."""
    args = dict(FunctionName="f", StatementId=sid, Action="lambda:InvokeFunction", Principal=API_GATEWAY,
                SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:api1/*/POST/models/m/{qualifier}/invocations",
                **extra)
    if qualifier is not None:
        args["Qualifier"] = qualifier
    return json.loads(lam.add_permission(**args)["Statement"])


def statements(lam, qualifier: str | None = None, function_name: str = "f") -> list[dict]:
    """The statements of the policy GetPolicy answers for `qualifier` (None: the function's own)."""
    args = {"FunctionName": function_name, **({"Qualifier": qualifier} if qualifier else {})}
    return json.loads(lam.get_policy(**args)["Policy"])["Statement"]


def test_each_alias_has_a_policy_of_its_own_apart_from_the_functions_and_other_aliases(lam):
    # Aliases a and b are on the same version: Lambda keeps their policies apart all the same.
    added = allow_route(lam, "a")
    allow_route(lam, "b")
    allow_route(lam, None, sid="whole-function")
    arn = lam.get_function(FunctionName="f")["Configuration"]["FunctionArn"].removesuffix(":$LATEST")
    assert added == {
        "Sid": "ferry-route-api1", "Effect": "Allow", "Principal": {"Service": API_GATEWAY},
        "Action": "lambda:InvokeFunction", "Resource": f"{arn}:a",
        "Condition": {"ArnLike": {"AWS:SourceArn":
                                  "arn:aws:execute-api:us-east-1:123456789012:api1/*/POST/models/m/a/invocations"}},
    }
    assert statements(lam, "a") == [added]
    assert [(s["Sid"], s["Resource"]) for s in statements(lam, "b")] == [("ferry-route-api1", f"{arn}:b")]
    assert [(s["Sid"], s["Resource"]) for s in statements(lam)] == [("whole-function", arn)]
    # The version both aliases are on has no policy of its own.
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName="f", Qualifier="1")


def test_a_statement_id_already_in_that_policy_is_a_resource_conflict(lam):
    allow_route(lam, "a")
    with pytest.raises(lam.exceptions.ResourceConflictException) as taken:
        allow_route(lam, "a")
    assert "ferry-route-api1" in str(taken.value)
    assert len(statements(lam, "a")) == 1


def test_remove_permission_with_a_qualifier_removes_from_that_policy_only(lam):
    allow_route(lam, "a")
    allow_route(lam, "b")
    allow_route(lam, None, sid="whole-function")
    lam.remove_permission(FunctionName="f", Qualifier="a", StatementId="ferry-route-api1")
    # a's last statement went with it, so a has no policy; b's and the function's are as they were.
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName="f", Qualifier="a")
    assert [s["Sid"] for s in statements(lam, "b")] == ["ferry-route-api1"]
    assert [s["Sid"] for s in statements(lam)] == ["whole-function"]
    # Removing again, or a statement id that is only in another policy, is not found.
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.remove_permission(FunctionName="f", Qualifier="a", StatementId="ferry-route-api1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as elsewhere:
        lam.remove_permission(FunctionName="f", Qualifier="b", StatementId="whole-function")
    assert "whole-function is not found" in str(elsewhere.value)
    assert [s["Sid"] for s in statements(lam)] == ["whole-function"]


def test_a_qualifier_or_function_that_does_not_exist_is_resource_not_found(lam):
    for call in (lambda: allow_route(lam, "nope"),
                 lambda: allow_route(lam, "7"),
                 lambda: lam.get_policy(FunctionName="f", Qualifier="nope"),
                 lambda: lam.get_policy(FunctionName="g"),
                 lambda: lam.remove_permission(FunctionName="f", Qualifier="nope", StatementId="x")):
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            call()
    # A published version has a policy of its own too, and the qualifier may come in the function name.
    allow_route(lam, "1", sid="version-one")
    assert [s["Sid"] for s in statements(lam, function_name="f:1")] == ["version-one"]


def test_a_stale_revision_id_is_a_precondition_failure(lam):
    allow_route(lam, "a")
    revision = lam.get_policy(FunctionName="f", Qualifier="a")["RevisionId"]
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        allow_route(lam, "a", sid="second", RevisionId="not-" + revision)
    allow_route(lam, "a", sid="second", RevisionId=revision)
    renewed = lam.get_policy(FunctionName="f", Qualifier="a")["RevisionId"]
    assert renewed != revision
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.remove_permission(FunctionName="f", Qualifier="a", StatementId="second", RevisionId=revision)
    lam.remove_permission(FunctionName="f", Qualifier="a", StatementId="second", RevisionId=renewed)


def test_a_policy_over_20_kb_is_refused_and_left_as_it_was(st, lam):
    # Each statement is about 350 bytes: the 20 KB quota is reached within 60 of them, added faster than the
    # account's 15 requests per second (unlimited until the next reset).
    control_plane = json.dumps({"rates": {"other": 0}}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{st.aws_url}/ferry-lambda/control-plane", data=control_plane,
                                                  method="POST"), timeout=10).read()
    with pytest.raises(lam.exceptions.PolicyLengthExceededException) as over:
        for i in range(100):
            allow_route(lam, "a", sid=f"route-{i}")
    assert "bigger than the limit (20480)" in str(over.value)
    kept = statements(lam, "a")
    assert 40 < len(kept) < 100 and len(json.dumps(kept)) <= 20 * 1024
    # Another alias's policy has a quota of its own.
    allow_route(lam, "b")


def test_an_aliass_policy_goes_with_the_alias_and_a_functions_with_the_function(lam):
    allow_route(lam, "a")
    allow_route(lam, "b")
    lam.delete_alias(FunctionName="f", Name="a")
    lam.create_alias(FunctionName="f", Name="a", FunctionVersion="1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName="f", Qualifier="a")
    assert [s["Sid"] for s in statements(lam, "b")] == ["ferry-route-api1"]
    lam.delete_function(FunctionName="f")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName="f", Qualifier="b")
