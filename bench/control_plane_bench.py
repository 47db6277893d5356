#!/usr/bin/env python3
"""`make bench-deploy`: `ferry deploy` against what a user would write instead, through the local Lambda's control
plane with AWS's limits (tools/lambda_local/control_plane.py): 15 control-plane requests per second for the account
(GetFunction 100, GetPolicy 15), a 20 ms round trip on every request, updates that stay InProgress for 1 s.

Scenario: MODELS models x VERSIONS approved versions each (default 20 x 10), approvals from a release manifest, tiny
artifacts, no smoke payload (invocations are the data plane: not limited, and the local Lambda would run a real
Python per version, which is this machine's CPU, not the control plane's). Contenders, each on functions of its own
and with an access key of its own (the stand-in tallies each caller apart):
  ferry    the whole `ferry deploy` process, start to exit, at its default budget (--api-rate 10): lock, observe,
           sync + verify to a temp EFS folder, update, wait, publish, wait until Active, pin the runtime, alias, audit
           record, unlock; then the same deploy at 2x and 4x the versions, and a no-op rerun;
  boto3    a serial script: update, wait (GetFunctionConfiguration until Successful), publish, pin the runtime
           (PutRuntimeManagementConfig), alias, per version;
  awscli   a shell loop of the AWS CLI doing the same five steps (`aws lambda wait function-updated-v2`); one CLI
           process per call is slow, so it runs CLI_SAMPLE versions and is scaled to the whole set (said so).

The lower bound of a deploy: its rate-limited requests / the budget it may use, or the busiest function's serial
chain (VERSIONS x (settle time + the round trips one version needs one after another)), whichever is larger.
Reported: wall times, ratios to the bound and to the other contenders, rate-limited requests per new version (the
stand-in's tally of the caller), requests throttled (429) and throttling errors shown to the user, the no-op rerun's
mutating and read requests per function (moto's recorder: every request that reaches AWS). Results:
bench/results/control-plane.json. `make bench-deploy-moto` keeps the older moto-only figures (bench/deploy_bench.py).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "bench"))
import local_platform  # noqa: E402
import standins  # noqa: E402
from deploy_bench import moto_api, platform_for, record, recorded, write_release  # noqa: E402

SHARED = "control plane"   # the stand-in's name of the quota every call but GetFunction and GetPolicy shares
# Round trips one new version needs one after another, besides the settle wait: update, the poll that sees it
# settled, publish, the read that sees it Active, pin, alias.
SERIAL_ROUND_TRIPS = 6
PER_FUNCTION = ("ListAliases", "ListVersionsByFunction")


def caller_env(key: str, endpoint: str) -> dict[str, str]:
    return dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=f"{key}-secret", AWS_ENDPOINT_URL=endpoint)


def control_plane(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/ferry-lambda/control-plane", timeout=30) as answer:
        return json.loads(answer.read())


def setup(workdir: Path, aws_url: str, moto_url: str, contenders: dict[str, int], models: int) -> dict[str, tuple[Path, Path]]:
    """For each contender (prefix -> versions per model): functions, artifacts, a release manifest, a catalog and a
    platform. The functions of all are created in one go (moto fails to read back a layer published from S3 a second
    time), through the local Lambda."""
    platforms = {prefix: platform_for(prefix, models, workdir) for prefix in contenders}
    together = dict(next(iter(platforms.values())),
                    functions={f"{prefix}-{m}": name for prefix, p in platforms.items() for m, name in p["functions"].items()})
    local_platform.create(together, aws_url)
    s3 = boto3.client("s3", endpoint_url=moto_url)
    out = {}
    for prefix, versions in contenders.items():
        platform = platforms[prefix]
        platform["efs"].update({k: together["efs"][k] for k in
                                ("file_system_id", "inference_access_point_arn", "sync_access_point_arn")})
        folder = workdir / prefix
        folder.mkdir()
        catalog = write_release(folder, s3, f"bench/{prefix}", models, versions)
        platform_file = folder / "platform.json"
        platform_file.write_text(json.dumps(platform))
        out[prefix] = (catalog, platform_file)
    return out


def run_ferry(ferry: Path, catalog: Path, platform: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run([str(ferry), "--catalog", str(catalog), "--platform", str(platform), "deploy",
                           "--output", "json"], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ferry deploy failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr


def runtime_arn(lam, fn: str, lv: str) -> str:
    return lam.get_function(FunctionName=fn, Qualifier=lv)["Configuration"]["RuntimeVersionConfig"]["RuntimeVersionArn"]


def run_boto3(prefix: str, models: int, versions: int, env: dict[str, str]) -> float:
    lam = boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    started = time.perf_counter()
    for i in range(models):
        fn = f"{prefix}-m{i:02d}"
        for v in range(1, versions + 1):
            lam.update_function_configuration(FunctionName=fn, MemorySize=1024, Timeout=30,
                                              Environment={"Variables": {"FERRY_MODEL_PATH": f"/mnt/models/m{i:02d}/{v}"}})
            while lam.get_function_configuration(FunctionName=fn).get("LastUpdateStatus") == "InProgress":
                time.sleep(0.25)
            lv = lam.publish_version(FunctionName=fn, Description=f"m{i:02d} v{v}")["Version"]
            lam.put_runtime_management_config(FunctionName=fn, Qualifier=lv, UpdateRuntimeOn="Manual",
                                              RuntimeVersionArn=runtime_arn(lam, fn, lv))
            lam.create_alias(FunctionName=fn, Name=f"v{v}", FunctionVersion=lv)
    return time.perf_counter() - started


def run_awscli(prefix: str, sample: int, versions: int, env: dict[str, str]) -> float:
    aws = str(Path(sys.executable).parent / "aws")
    script = ["set -e"]
    for k in range(sample):
        fn, v = f"{prefix}-m{k // versions:02d}", k % versions + 1
        script += [
            f"{aws} lambda update-function-configuration --function-name {fn} --memory-size 1024 --timeout 30 "
            f"--environment 'Variables={{FERRY_MODEL_PATH=/mnt/models/m/{v}}}' >/dev/null",
            f"{aws} lambda wait function-updated-v2 --function-name {fn}",
            f"lv=$({aws} lambda publish-version --function-name {fn} --description v{v} --query Version --output text)",
            f"arn=$({aws} lambda get-function --function-name {fn} --qualifier $lv "
            f"--query Configuration.RuntimeVersionConfig.RuntimeVersionArn --output text)",
            f"{aws} lambda put-runtime-management-config --function-name {fn} --qualifier $lv "
            f"--update-runtime-on Manual --runtime-version-arn $arn >/dev/null",
            f"{aws} lambda create-alias --function-name {fn} --name v{v} --function-version $lv >/dev/null",
        ]
    started = time.perf_counter()
    subprocess.run(["bash", "-c", "\n".join(script)], check=True, env=env)
    return time.perf_counter() - started


def shared_requests(stats: dict, key: str) -> dict:
    caller = stats["callers"].get(key, {"quotas": {}, "operations": {}})
    return {"quota": caller["quotas"].get(SHARED, {"admitted": 0, "throttled": 0, "busiest_second": 0}),
            "get_function": caller["quotas"].get("GetFunction", {"admitted": 0}).get("admitted", 0),
            "operations": caller["operations"]}


def bound(requests: int, rate: float, versions: int, settle_s: float, latency_ms: float) -> dict:
    by_rate = requests / rate
    by_chain = versions * (settle_s + SERIAL_ROUND_TRIPS * latency_ms / 1000)
    return {"by_rate_s": round(by_rate, 2), "by_chain_s": round(by_chain, 2), "s": round(max(by_rate, by_chain), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ferry", type=Path, default=ROOT / "target" / "release" / "ferry")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--scales", default="1,2,4", help="multiples of --versions ferry deploys (linearity)")
    parser.add_argument("--cli-sample", type=int, default=10)
    parser.add_argument("--api-rate", type=float, default=10.0, help="ferry's --api-rate (its default is 10)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--settle-s", type=float, default=1.0)
    parser.add_argument("--skip-boto3", action="store_true", help="leave the serial boto3 script out (it is slow)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "control-plane.json")
    args = parser.parse_args(argv)
    scales = [int(s) for s in args.scales.split(",")]
    settings = {"settle_s": args.settle_s, "latency_ms": args.latency_ms, "publish_pending_s": 0.0}
    result: dict = {"scenario": f"{args.models} models x {args.versions} versions through the local Lambda's control "
                                f"plane: AWS's quotas, {args.latency_ms:g} ms round trip, {args.settle_s:g} s settle",
                    "api_rate": args.api_rate, "ferry": {}}
    with tempfile.TemporaryDirectory(prefix="ferry-bench-cp-") as tmp:
        workdir = Path(tmp)
        st = standins.up(workdir / "standins", with_mlflow=False, parent_pid=os.getpid(), control_plane=settings)
        try:
            os.environ.update(st.env())
            # Setup goes through the account's quota too: let boto3 retry what it throttles.
            os.environ.update(AWS_RETRY_MODE="standard", AWS_MAX_ATTEMPTS="20")
            contenders = {f"bench-ferry-{scale}x": args.versions * scale for scale in scales}
            contenders.update({"bench-boto3": args.versions, "bench-awscli": args.versions})
            prepared = setup(workdir, st.aws_url, st.moto_url, contenders, args.models)
            for scale in scales:
                versions = args.versions * scale
                key = f"bench-ferry-{scale}x"
                catalog, platform = prepared[key]
                wall, output = run_ferry(args.ferry, catalog, platform,
                                         dict(caller_env(key, st.aws_url), FERRY_API_RATE=str(args.api_rate)))
                seen = shared_requests(control_plane(st.aws_url), key)
                n = args.models * versions
                b = bound(seen["quota"]["admitted"] + seen["quota"]["throttled"], args.api_rate, versions,
                          args.settle_s, args.latency_ms)
                result["ferry"][f"{scale}x"] = {
                    "new_versions": n, "wall_s": round(wall, 2), "bound": b, "ratio_to_bound": round(wall / b["s"], 3),
                    "rate_limited_requests": seen["quota"]["admitted"],
                    "rate_limited_per_new_version": round(seen["quota"]["admitted"] / n, 2),
                    # What each new version costs on top of the per-function listings (aliases and versions, to
                    # plan and again under the lock).
                    "rate_limited_per_new_version_besides_listings": round(
                        sum(c for op, c in seen["operations"].items() if op not in PER_FUNCTION and op != "GetFunction")
                        / n, 2),
                    "get_function_requests": seen["get_function"],
                    "throttled_429": seen["quota"]["throttled"], "busiest_second": seen["quota"]["busiest_second"],
                    "throttling_errors_shown": sum(output.count(s) for s in ("TooManyRequests", "Rate exceeded")),
                    "operations": seen["operations"],
                }
                if scale == scales[0]:
                    noop_key = "bench-ferry-noop"
                    record(st.moto_url)
                    t_noop, _ = run_ferry(args.ferry, catalog, platform, caller_env(noop_key, st.aws_url))
                    moto_api(st.moto_url, "recorder/stop-recording")
                    calls = recorded(st.moto_url)
                    mutating = [c for c in calls if c["method"] not in ("GET", "HEAD")]
                    lambda_reads = [c for c in calls if c["method"] == "GET" and c["path"].startswith("/2015-03-31/")]
                    result["noop_rerun"] = {"wall_s": round(t_noop, 2), "mutating_requests": len(mutating),
                                            "lambda_reads_per_function": round(len(lambda_reads) / args.models, 2)}
            first = result["ferry"][f"{scales[0]}x"]
            for scale in scales[1:]:
                run = result["ferry"][f"{scale}x"]
                run["wall_per_new_version_vs_first"] = round(
                    (run["wall_s"] / run["new_versions"]) / (first["wall_s"] / first["new_versions"]), 3)

            n = args.models * args.versions
            if not args.skip_boto3:
                t_boto3 = run_boto3("bench-boto3", args.models, args.versions, caller_env("bench-boto3", st.aws_url))
                result["boto3_serial_s"] = round(t_boto3, 2)
                result["ratio_ferry_to_boto3"] = round(first["wall_s"] / t_boto3, 3)
            t_sample = run_awscli("bench-awscli", args.cli_sample, args.versions, caller_env("bench-awscli", st.aws_url))
            result["awscli_loop_s_scaled"] = round(t_sample / args.cli_sample * n, 1)
            result["awscli_sample"] = {"versions": args.cli_sample, "seconds": round(t_sample, 2)}
            result["ratio_ferry_to_awscli"] = round(first["wall_s"] / result["awscli_loop_s_scaled"], 4)
            result["standin_settings"] = control_plane(st.aws_url)["settings"]
        finally:
            standins.stop_groups(st.pids)

    result["targets"] = {"ratio_to_bound": "<= 1.15", "rate_limited_per_new_version": "<= 4",
                         "throttling_errors_shown": 0, "noop_mutating_requests": 0,
                         "noop_lambda_reads_per_function": "<= 3", "wall_per_new_version_vs_first": "about 1 (linear)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nbench-deploy: {result['scenario']}; ferry --api-rate {args.api_rate:g}")
    for name, run in result["ferry"].items():
        print(f"  ferry {name:>3}: {run['new_versions']:4d} new versions in {run['wall_s']:7.2f} s; bound {run['bound']['s']:.2f} s "
              f"(rate {run['bound']['by_rate_s']:.2f}, chain {run['bound']['by_chain_s']:.2f}) -> {run['ratio_to_bound']}x "
              f"(target <= 1.15); {run['rate_limited_per_new_version']} rate-limited requests per new version, "
              f"{run['rate_limited_per_new_version_besides_listings']} besides the per-function listings (target <= 4); "
              f"{run['throttled_429']} answered 429, {run['throttling_errors_shown']} shown; busiest second "
              f"{run['busiest_second']}" + (f"; per new version {run['wall_per_new_version_vs_first']}x the first"
                                             if "wall_per_new_version_vs_first" in run else ""))
    noop = result["noop_rerun"]
    print(f"  no-op rerun: {noop['wall_s']:.2f} s, {noop['mutating_requests']} mutating requests, "
          f"{noop['lambda_reads_per_function']} Lambda reads per function (targets 0 and <= 3)")
    if "boto3_serial_s" in result:
        print(f"  boto3 serial script: {result['boto3_serial_s']:.2f} s (ferry / boto3 = {result['ratio_ferry_to_boto3']})")
    print(f"  AWS CLI loop: {result['awscli_loop_s_scaled']:.1f} s scaled from {args.cli_sample} versions "
          f"(ferry / awscli = {result['ratio_ferry_to_awscli']})\n  results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
