"""The control-plane stand-in (tools/lambda_local/control_plane.py and its modules) answers Lambda's control plane as
Lambda does, where moto answers at once, in full and without limits: the account's request quotas, updates that
settle, RevisionIds and their preconditions, pages at Lambda's sizes, round-trip latency. Each test names the AWS
fact it checks; the facts and their sources are in the modules' docstrings."""
from __future__ import annotations

import argparse
import io
import json
import os
import threading
import time
import urllib.request
import zipfile

import boto3
import pytest
from botocore.config import Config

import standins
from lambda_local import control_plane, pages, throttle

NO_RETRIES = Config(retries={"total_max_attempts": 1})
TARGET_RUNTIME = json.loads((standins.Path(standins.__file__).resolve().parent.parent / "runtime"
                             / "lambda-target.json").read_text())["runtime"]


@pytest.fixture(scope="module")
def st(tmp_path_factory):
    """moto and the local Lambda in front of it, with the control plane as tests meet it (standins.py)."""
    st = standins.up(tmp_path_factory.mktemp("control-plane"), with_mlflow=False, parent_pid=os.getpid())
    try:
        yield st
    finally:
        standins.stop_groups(st.pids)


@pytest.fixture
def aws(st):
    """A freshly reset moto (full token buckets, the front's own settings) and a function `f` with its role."""
    post(st, "/moto-api/reset", {})
    lam = client(st)
    iam = boto3.client("iam", **endpoint(st))
    role = iam.create_role(RoleName="cp", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(FunctionName="f", Runtime=TARGET_RUNTIME, Role=role, Handler="app.handler",
                        Code={"ZipFile": zip_of("def handler(e, c):\n    return 1\n")})
    return st, lam, role


def endpoint(st, url: str | None = None) -> dict:
    return dict(endpoint_url=url or st.aws_url, region_name=st.region, aws_access_key_id=standins.ACCESS_KEY,
                aws_secret_access_key=standins.SECRET_KEY)


def client(st, url: str | None = None, config: Config = NO_RETRIES):
    return boto3.client("lambda", config=config, **endpoint(st, url))


def zip_of(code: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", code)
    return buf.getvalue()


def post(st, path: str, doc: dict) -> dict:
    req = urllib.request.Request(f"{st.aws_url}{path}", data=json.dumps(doc).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


def described(st) -> dict:
    with urllib.request.urlopen(f"{st.aws_url}/ferry-lambda/control-plane", timeout=10) as answer:
        return json.loads(answer.read())


def code_of(err: Exception) -> str:
    return err.response["Error"]["Code"]


def settled(lam, name: str = "f") -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        conf = lam.get_function_configuration(FunctionName=name)
        if conf["LastUpdateStatus"] != "InProgress":
            return conf
        time.sleep(0.05)
    raise AssertionError(f"{name} still InProgress after 10 s")


# ---- settings ---------------------------------------------------------------------------------------------------
def test_the_defaults_are_aws_quotas_and_tests_settle_fast():
    rates = control_plane.Settings().rates
    assert (rates.get_function, rates.get_policy, rates.other) == (100, 15, 15)
    assert control_plane.Settings().latency_ms == 0
    assert standins.TEST_CONTROL_PLANE == {"settle_s": 0.2, "publish_pending_s": 0.2}


def test_flags_and_environment_set_the_control_plane(monkeypatch):
    monkeypatch.setenv("FERRY_LAMBDA_RATE_CONTROL", "5")
    parser = argparse.ArgumentParser()
    control_plane.add_arguments(parser)
    settings = control_plane.settings_from(parser.parse_args(["--settle-s", "3", "--latency-ms", "20"]))
    assert (settings.rates.other, settings.rates.get_function, settings.settle_s, settings.latency_ms) == (5, 100, 3, 20)
    monkeypatch.setenv("FERRY_LAMBDA_SETTLE_S", "2")
    monkeypatch.setenv("FERRY_LAMBDA_PUBLISH_PENDING_S", "0")
    assert standins.control_plane_flags(None) == [], "the environment wins over the tests' default"
    assert standins.control_plane_flags({"latency_ms": 20}) == ["--latency-ms=20"]
    with pytest.raises(ValueError, match="unknown control-plane settings"):
        standins.control_plane_flags({"settle": 1})


# ---- request quotas ---------------------------------------------------------------------------------------------
def test_quotas_are_per_operation_buckets_getfunction_100_getpolicy_15_the_rest_15_together():
    now = [0.0]
    t = throttle.Throttle(throttle.Rates(), clock=lambda: now[0])
    assert all(t.admit("us-east-1", "GetFunction") == 0 for _ in range(100))
    assert t.admit("us-east-1", "GetFunction") == pytest.approx(0.01), "the 101st in the same second waits 10 ms"
    others = ["UpdateFunctionConfiguration", "GetFunctionConfiguration", "PublishVersion", "CreateAlias",
              "ListVersionsByFunction"]
    assert all(t.admit("us-east-1", others[i % 5]) == 0 for i in range(15)), "GetFunction's budget is its own"
    assert t.admit("us-east-1", "ListAliases") == pytest.approx(1 / 15), "all the others share 15 per second"
    assert all(t.admit("us-east-1", "GetPolicy") == 0 for _ in range(15))
    assert t.admit("us-east-1", "GetPolicy") > 0
    assert t.admit("eu-west-1", "ListAliases") == 0, "per Region"
    now[0] = 1 / 15
    assert t.admit("us-east-1", "ListAliases") == 0, "one token back after 1/15 s"
    assert t.admit("us-east-1", "ListAliases") > 0
    assert t.stats()["throttled"] == {"GetFunction": 1, "ListAliases": 2, "GetPolicy": 1}


def test_callers_of_one_account_share_its_quota_and_are_tallied_apart_with_their_busiest_second():
    now = [0.0]
    t = throttle.Throttle(throttle.Rates(), clock=lambda: now[0])
    for _ in range(10):                      # ferry: 10 at once
        assert t.admit("us-east-1", "PublishVersion", "ferry-key") == 0
    for _ in range(5):                       # another user: 5 at once, the rest of the account's second
        assert t.admit("us-east-1", "ListAliases", "other-key") == 0
    assert t.admit("us-east-1", "ListAliases", "other-key") > 0, "15 per second for the account, not per caller"
    callers = t.stats()["callers"]
    assert callers["ferry-key"] == {"quotas": {throttle.OTHER: {"admitted": 10, "throttled": 0, "busiest_second": 10}},
                                    "operations": {"PublishVersion": 10}}
    assert callers["other-key"] == {"quotas": {throttle.OTHER: {"admitted": 5, "throttled": 1, "busiest_second": 5}},
                                    "operations": {"ListAliases": 5}}


def test_the_busiest_second_is_the_most_requests_in_any_one_second_window():
    assert throttle.busiest_second([]) == 0
    assert throttle.busiest_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert throttle.busiest_second([0.0, 1.0, 2.0]) == 1
    assert throttle.busiest_second([0.0, 0.1, 0.2, 5.0]) == 3

def test_over_the_quota_lambda_answers_429_too_many_requests_and_invokes_are_not_counted(aws):
    st, lam, _ = aws
    refused = []
    started = time.monotonic()
    for _ in range(25):
        try:
            lam.get_function_configuration(FunctionName="f")
        except lam.exceptions.TooManyRequestsException as err:
            refused.append(err)
    elapsed = time.monotonic() - started
    admitted = 25 - len(refused)
    assert refused, "25 requests at once are over 15 per second"
    assert 15 <= admitted <= 15 + 15 * elapsed + 1
    err = refused[0].response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Reason"] == "CallerRateLimitExceeded" and err["message"] == "Rate exceeded"
    assert int(err["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1
    # The data plane has no part in the control-plane budget: an invoke now is not refused.
    answer = lam.invoke(FunctionName="f", InvocationType="DryRun")
    assert answer["StatusCode"] == 204
    seen = described(st)
    assert seen["throttled"] == {"GetFunctionConfiguration": len(refused)}
    assert seen["answers"]["GetFunctionConfiguration"] == {"200": admitted, "429": len(refused)}
    assert seen["answers"]["Invoke"] == {"204": 1}
    # S3, IAM, ... are other services: never counted against Lambda's quotas.
    s3 = boto3.client("s3", config=NO_RETRIES, **endpoint(st))
    for _ in range(20):
        s3.list_buckets()


def test_getfunction_has_its_own_100_per_second(aws):
    st, lam, _ = aws
    outcomes = []

    def hammer():
        for _ in range(60):
            try:
                lam.get_function(FunctionName="f")
                outcomes.append(True)
            except lam.exceptions.TooManyRequestsException:
                outcomes.append(False)

    started = time.monotonic()
    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    admitted = outcomes.count(True)
    assert admitted >= 100 and admitted <= 100 + 100 * elapsed + 1, (admitted, elapsed)
    lam.list_aliases(FunctionName="f")   # the other requests' budget is untouched


# ---- updates that settle ----------------------------------------------------------------------------------------
def test_an_update_is_in_progress_for_a_while_and_meanwhile_updates_and_publishes_conflict(aws):
    st, lam, _ = aws
    settle_s = described(st)["settings"]["settle_s"]
    updated = lam.update_function_configuration(FunctionName="f", MemorySize=256)
    started = time.monotonic()
    assert updated["LastUpdateStatus"] == "InProgress" and updated["LastUpdateStatusReasonCode"] == "Creating"
    assert lam.get_function(FunctionName="f")["Configuration"]["LastUpdateStatus"] == "InProgress"
    assert lam.get_function_configuration(FunctionName="f")["LastUpdateStatus"] == "InProgress"
    for call in (lambda: lam.update_function_configuration(FunctionName="f", MemorySize=512),
                 lambda: lam.update_function_code(FunctionName="f", ZipFile=zip_of("def handler(e, c):\n    pass\n")),
                 lambda: lam.publish_version(FunctionName="f")):
        with pytest.raises(lam.exceptions.ResourceConflictException) as conflict:
            call()
        assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
        assert conflict.value.response["Error"]["Message"] == (
            "The operation cannot be performed at this time. An update is in progress for resource: "
            "arn:aws:lambda:us-east-1:123456789012:function:f")
    conf = settled(lam)
    assert time.monotonic() - started >= settle_s * 0.9
    assert conf["LastUpdateStatus"] == "Successful" and "LastUpdateStatusReason" not in conf
    assert conf["MemorySize"] == 256, "the refused update changed nothing"
    assert lam.publish_version(FunctionName="f")["Version"] == "1"
    # A code update settles the same way.
    assert lam.update_function_code(FunctionName="f", ZipFile=zip_of("def handler(e, c):\n    return 2\n"))[
        "LastUpdateStatus"] == "InProgress"


# ---- revisions --------------------------------------------------------------------------------------------------
def test_latest_revision_changes_on_every_update_its_settling_and_each_publish(aws):
    st, lam, _ = aws
    seen = [lam.get_function(FunctionName="f")["Configuration"]["RevisionId"]]
    assert seen[0]
    seen.append(lam.update_function_configuration(FunctionName="f", MemorySize=256)["RevisionId"])
    seen.append(settled(lam)["RevisionId"])
    published = lam.publish_version(FunctionName="f", RevisionId=seen[-1])
    seen.append(lam.get_function_configuration(FunctionName="f")["RevisionId"])
    assert len(set(seen)) == 4, "update, its settling and the publish each gave $LATEST a new revision"
    assert published["RevisionId"] not in seen
    assert lam.get_function_configuration(FunctionName="f", Qualifier="1")["RevisionId"] == published["RevisionId"]
    # Nothing changed: the publish answers version 1 again and leaves $LATEST's revision alone.
    assert lam.publish_version(FunctionName="f")["Version"] == "1"
    assert lam.get_function_configuration(FunctionName="f")["RevisionId"] == seen[-1]
    listed = lam.list_versions_by_function(FunctionName="f")["Versions"]
    assert [(v["Version"], v["RevisionId"]) for v in listed] == [("$LATEST", seen[-1]), ("1", published["RevisionId"])]


def test_a_stale_revision_is_a_precondition_failure_for_update_publish_and_alias_update(aws):
    st, lam, _ = aws
    stale = lam.get_function_configuration(FunctionName="f")["RevisionId"]
    current = lam.update_function_configuration(FunctionName="f", MemorySize=256, RevisionId=stale)["RevisionId"]
    current = settled(lam)["RevisionId"]
    for call in (lambda: lam.update_function_configuration(FunctionName="f", MemorySize=512, RevisionId=stale),
                 lambda: lam.update_function_code(FunctionName="f", ZipFile=zip_of("pass\n"), RevisionId=stale),
                 lambda: lam.publish_version(FunctionName="f", RevisionId=stale)):
        with pytest.raises(lam.exceptions.PreconditionFailedException) as failed:
            call()
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        assert "does not match the latest Revision Id" in failed.value.response["Error"]["Message"]
    assert lam.get_function_configuration(FunctionName="f")["MemorySize"] == 256, "nothing was changed"
    assert lam.list_versions_by_function(FunctionName="f")["Versions"][1:] == [], "nothing was published"
    # This client never retries, and the calls above (with settled()'s polls) can spend the account's 15/s: let the
    # bucket refill so that the alias half is not throttled (it failed so once in CI).
    time.sleep(1.1)
    version = lam.publish_version(FunctionName="f", RevisionId=current)["Version"]
    alias = lam.create_alias(FunctionName="f", Name="live", FunctionVersion=version)
    moved = lam.update_alias(FunctionName="f", Name="live", Description="moved", RevisionId=alias["RevisionId"])
    assert moved["RevisionId"] != alias["RevisionId"], "an alias's revision changes on every update"
    assert lam.get_alias(FunctionName="f", Name="live")["RevisionId"] == moved["RevisionId"]
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_alias(FunctionName="f", Name="live", Description="again", RevisionId=alias["RevisionId"])
    assert lam.get_alias(FunctionName="f", Name="live")["Description"] == "moved"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.update_function_configuration(FunctionName="nope", MemorySize=256, RevisionId=stale)


# ---- pages ------------------------------------------------------------------------------------------------------
def test_versions_and_aliases_come_in_pages_of_50_with_markers(aws):
    st, lam, _ = aws
    moto = client(st, st.moto_url)   # moto itself: 55 versions and 55 aliases without the stand-in's limits
    for n in range(1, 56):
        moto.update_function_configuration(FunctionName="f", Description=f"v{n}")
        assert moto.publish_version(FunctionName="f")["Version"] == str(n)
        moto.create_alias(FunctionName="f", Name=f"a{n:02d}", FunctionVersion="1")
    first = lam.list_versions_by_function(FunctionName="f")
    assert len(first["Versions"]) == 50 and first["Versions"][0]["Version"] == "$LATEST" and first["NextMarker"]
    assert len(lam.list_versions_by_function(FunctionName="f", MaxItems=10000)["Versions"]) == 50, \
        "at most 50 versions a page whatever MaxItems says"
    rest = lam.list_versions_by_function(FunctionName="f", Marker=first["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == [str(n) for n in range(50, 56)] and "NextMarker" not in rest
    walked = [v["Version"] for page in lam.get_paginator("list_versions_by_function").paginate(
        FunctionName="f", PaginationConfig={"PageSize": 20}) for v in page["Versions"]]
    assert walked == ["$LATEST", *map(str, range(1, 56))]
    aliases = lam.list_aliases(FunctionName="f")
    assert len(aliases["Aliases"]) == 50 and aliases["NextMarker"], "50 aliases a page by default"
    assert len(lam.list_aliases(FunctionName="f", MaxItems=55)["Aliases"]) == 55, "MaxItems up to 10000 is honoured"
    names = [a["Name"] for page in lam.get_paginator("list_aliases").paginate(FunctionName="f") for a in page["Aliases"]]
    assert names == [f"a{n:02d}" for n in range(1, 56)]
    with pytest.raises(lam.exceptions.ClientError) as refused:
        lam.list_aliases(FunctionName="f", MaxItems=10001)
    assert code_of(refused.value) == "ValidationException"
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.list_aliases(FunctionName="f", Marker="not-a-marker")


def test_a_page_is_cut_after_the_marker_item_even_when_items_change_between_pages():
    answer = {"Aliases": [{"Name": n} for n in ("c", "a", "b")]}
    page = pages.paginate("ListAliases", answer, {"MaxItems": ["2"]})
    assert [a["Name"] for a in page["Aliases"]] == ["a", "b"]
    answer["Aliases"].remove({"Name": "b"})
    answer["Aliases"].append({"Name": "d"})
    rest = pages.paginate("ListAliases", answer, {"Marker": [page["NextMarker"]]})
    assert [a["Name"] for a in rest["Aliases"]] == ["c", "d"] and "NextMarker" not in rest


# ---- latency and settings at run time ---------------------------------------------------------------------------
def test_round_trip_latency_is_added_to_every_aws_request_and_a_reset_restores_the_settings(aws):
    st, lam, _ = aws
    assert post(st, "/ferry-lambda/control-plane", {"latency_ms": 150})["latency_ms"] == 150
    started = time.monotonic()
    lam.list_aliases(FunctionName="f")
    boto3.client("s3", **endpoint(st)).list_buckets()
    assert time.monotonic() - started >= 0.3
    post(st, "/moto-api/reset", {})
    assert described(st)["settings"]["latency_ms"] == 0
    with pytest.raises(urllib.error.HTTPError) as refused:
        post(st, "/ferry-lambda/control-plane", {"settle": 1})
    assert refused.value.code == 400


# ---- runtime versions and runtime management --------------------------------------------------------------------
def runtime_version(config: dict) -> str:
    return config["RuntimeVersionConfig"]["RuntimeVersionArn"]


def release(st, runtime: str) -> None:
    post(st, "/ferry-lambda/runtime-release", {"runtime": runtime})


def test_every_version_shows_its_runtime_version_and_is_in_auto_mode_until_told_otherwise(aws):
    st, lam, _ = aws
    latest = lam.get_function_configuration(FunctionName="f")
    arn = runtime_version(latest)
    assert arn.startswith(f"arn:aws:lambda:{st.region}::runtime:"), arn
    published = lam.publish_version(FunctionName="f")
    assert runtime_version(published) == arn, "a version is published on the runtime version $LATEST runs"
    listed = {v["Version"]: v for v in lam.list_versions_by_function(FunctionName="f")["Versions"]}
    assert "RuntimeVersionConfig" not in listed[published["Version"]], "listings leave it out, as ListFunctions does"
    assert runtime_version(lam.get_function(FunctionName="f", Qualifier=published["Version"])["Configuration"]) == arn
    config = lam.get_runtime_management_config(FunctionName="f", Qualifier=published["Version"])
    assert config["UpdateRuntimeOn"] == "Auto"
    assert "RuntimeVersionArn" not in config, "the ARN is answered in Manual mode only"
    assert config["FunctionArn"].endswith(f":function:f:{published['Version']}")


def test_a_runtime_release_moves_auto_versions_and_a_version_pinned_manual_keeps_its_runtime_version(aws):
    st, lam, _ = aws
    pinned = lam.publish_version(FunctionName="f")["Version"]
    lam.update_function_configuration(FunctionName="f", MemorySize=256)
    settled(lam)
    auto = lam.publish_version(FunctionName="f")["Version"]
    before = runtime_version(lam.get_function_configuration(FunctionName="f", Qualifier=pinned))
    answer = lam.put_runtime_management_config(FunctionName="f", Qualifier=pinned, UpdateRuntimeOn="Manual",
                                               RuntimeVersionArn=before)
    assert (answer["UpdateRuntimeOn"], answer["RuntimeVersionArn"]) == ("Manual", before)
    release(st, TARGET_RUNTIME)
    after = {q: runtime_version(lam.get_function_configuration(FunctionName="f", Qualifier=q))
             for q in (pinned, auto, "$LATEST")}
    assert after[pinned] == before, "Manual: the version runs the pinned runtime version indefinitely"
    assert after[auto] != before and after["$LATEST"] == after[auto], "Auto: Lambda moved them to the new one"
    assert lam.get_runtime_management_config(FunctionName="f", Qualifier=pinned)["RuntimeVersionArn"] == before
    # Back to Auto: the version takes the current runtime version.
    lam.put_runtime_management_config(FunctionName="f", Qualifier=pinned, UpdateRuntimeOn="Auto")
    assert runtime_version(lam.get_function_configuration(FunctionName="f", Qualifier=pinned)) == after[auto]
    assert described(st)["answers"]["PutRuntimeManagementConfig"] == {"200": 2}, "control-plane calls, counted"


def test_runtime_management_refuses_what_lambda_refuses(aws):
    st, lam, _ = aws
    version = lam.publish_version(FunctionName="f")["Version"]
    arn = runtime_version(lam.get_function_configuration(FunctionName="f", Qualifier=version))
    cases = [
        (dict(Qualifier=version, UpdateRuntimeOn="Manual"), "InvalidParameterValueException"),
        (dict(Qualifier=version, UpdateRuntimeOn="Never"), "ValidationException"),
        (dict(Qualifier=version, UpdateRuntimeOn="Manual", RuntimeVersionArn="arn:aws:lambda:us-east-1:123456789012:function:f"),
         "ValidationException"),
        (dict(Qualifier=version, UpdateRuntimeOn="Manual", RuntimeVersionArn=arn.replace(st.region, "eu-west-1")),
         "InvalidParameterValueException"),
        (dict(Qualifier="99", UpdateRuntimeOn="Manual", RuntimeVersionArn=arn), "ResourceNotFoundException"),
    ]
    for call, code in cases:
        with pytest.raises(lam.exceptions.ClientError) as refused:
            lam.put_runtime_management_config(FunctionName="f", **call)
        assert code_of(refused.value) == code, call
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_runtime_management_config(FunctionName="nope")
    assert lam.get_runtime_management_config(FunctionName="f", Qualifier=version)["UpdateRuntimeOn"] == "Auto", \
        "a refused put changes nothing"


# ---- versions that go idle ----------------------------------------------------------------------------------------
def state_of(lam, version: str) -> tuple[str, str | None]:
    config = lam.get_function_configuration(FunctionName="f", Qualifier=version)
    return config["State"], config.get("StateReasonCode")


def until_active(lam, version: str) -> None:
    deadline = time.monotonic() + 10
    while state_of(lam, version)[0] != "Active":
        assert time.monotonic() < deadline, f"version {version} not Active after 10 s"
        time.sleep(0.05)


def test_a_new_version_is_pending_for_a_while_and_an_invoke_meanwhile_conflicts(aws):
    st, lam, _ = aws
    post(st, "/ferry-lambda/control-plane", {"publish_pending_s": 1.5})
    version = lam.publish_version(FunctionName="f")["Version"]
    assert state_of(lam, version) == ("Pending", "Creating")
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.invoke(FunctionName="f", Qualifier=version, Payload=b"{}")
    until_active(lam, version)
    assert lam.invoke(FunctionName="f", Qualifier=version, Payload=b"{}")["StatusCode"] == 200


def test_an_idle_version_goes_inactive_its_next_invoke_fails_and_it_is_active_again_after_the_restore(aws):
    st, lam, _ = aws
    post(st, "/ferry-lambda/control-plane", {"idle_s": 2, "restore_s": 1.5, "publish_pending_s": 0})
    version = lam.publish_version(FunctionName="f")["Version"]
    assert state_of(lam, version) == ("Active", None)
    time.sleep(2.1)
    inactive = lam.get_function(FunctionName="f", Qualifier=version)["Configuration"]
    assert (inactive["State"], inactive["StateReasonCode"]) == ("Inactive", "Idle")
    listed = {v["Version"]: v for v in lam.list_versions_by_function(FunctionName="f")["Versions"]}
    assert "StateReasonCode" not in listed[version], "listings leave the state's reason out"
    with pytest.raises(lam.exceptions.ResourceNotReadyException) as failed:
        lam.invoke(FunctionName="f", Qualifier=version, Payload=b"{}")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
    assert state_of(lam, version) == ("Pending", "Restoring")
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.invoke(FunctionName="f", Qualifier=version, Payload=b"{}")
    until_active(lam, version)
    assert lam.invoke(FunctionName="f", Qualifier=version, Payload=b"{}")["StatusCode"] == 200
    assert lam.get_function_configuration(FunctionName="f")["State"] == "Active", "$LATEST never goes idle here"


def test_versions_never_go_idle_by_default():
    assert control_plane.Settings().idle_s == 0
