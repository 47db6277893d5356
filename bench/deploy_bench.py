#!/usr/bin/env python3
"""`make bench-deploy`: `ferry deploy` against what a user would write instead, in one run, on one moto server.

Scenario: MODELS models x VERSIONS approved versions each (default 20 x 10), approvals from a release manifest,
tiny artifacts in moto's S3. Three contenders, each on its own set of functions in the same moto:
  ferry   the whole `ferry deploy` process, start to exit (lock, observe, sync + verify to a temp EFS folder,
          update, wait, publish, alias, audit record, unlock);
  boto3   a serial script in one process: update-function-configuration, wait (get-function-configuration until
          LastUpdateStatus=Successful), publish-version, create-alias per version (the issue's comparison);
  boto3job  a serial boto3 script doing ferry's whole job per version: copy the artifacts to EFS (SHA-256, fsync,
          rename), update, wait, publish, smoke-invoke, alias, audit put (what a team would write instead);
  awscli  a shell loop of the AWS CLI doing the same four steps per version (`aws lambda wait function-updated-v2`).
          One CLI process per call is slow, so it runs on CLI_SAMPLE versions and the per-version time is scaled to
          the whole set (printed as such).
Then ferry, boto3 and boto3job again on functions of their own, through a relay that adds a round trip to each
request (--latency-ms, default 20 ms), as between a CI runner and the AWS API; on loopback moto answers at once, and
serves one request at a time (Python's GIL), so without it work on different functions cannot overlap.
Reported: wall times and ratios, moto's CPU time during each contender (moto serves one request at a time, so it
bounds any client), mutating calls per new version (moto's recorder, in a second identical deploy onto its own
functions so that the recorder's cost is not in the timed run), calls on a no-op rerun.
Results: bench/results/deploy.json.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import local_platform  # noqa: E402
from relay import Relay  # noqa: E402
import standins  # noqa: E402


def moto_api(url: str, path: str, method: str = "POST") -> bytes:
    req = urllib.request.Request(f"{url}/moto-api/{path}", method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as answer:
        return answer.read()


def recorded(url: str) -> list[dict]:
    """moto's recording: one JSON object per request (method, url, headers, body); `path` added here."""
    calls = [json.loads(line) for line in moto_api(url, "recorder/download-recording", "GET").decode().splitlines() if line]
    for c in calls:
        c["path"] = urllib.parse.urlparse(c["url"]).path
    return calls


def kind(call: dict) -> str:
    """A request's method and path with names and numbers taken out, e.g. `PUT /2015-03-31/functions/*/configuration`."""
    parts = call["path"].strip("/").split("/")
    if parts[0] == "2015-03-31":
        shape = ["2015-03-31", *("*" if i == 2 or (i == 4 and len(parts) > 4) else x for i, x in enumerate(parts) if i > 0)]
    else:
        shape = ["<s3>"] + (["<key>"] if len(parts) > 1 else [])
    query = urllib.parse.urlparse(call["url"]).query
    verb = "list" if "list-type" in query else ""
    return " ".join(x for x in (call["method"], "/" + "/".join(shape), verb) if x)


def record(url: str):
    moto_api(url, "recorder/reset-recording")
    moto_api(url, "recorder/start-recording")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (to tell the server's share of a contender's wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(moto_pid: int, run) -> tuple[float, float]:
    """(wall seconds of `run()`, moto's CPU seconds meanwhile)."""
    cpu = cpu_seconds(moto_pid)
    wall = run()
    return wall, cpu_seconds(moto_pid) - cpu


def platform_for(prefix: str, models: int, workdir: Path) -> dict:
    p = standins.local_platform(workdir, tuple(f"m{i:02d}" for i in range(models)))
    p["functions"] = {m: f"{prefix}-{m}" for m in p["functions"]}
    p["environment"] = prefix
    # Each contender syncs into its own EFS folder: a second deploy must not find the first one's artifacts.
    p["efs"]["local_root"] = str(workdir / "efs" / prefix)
    Path(p["efs"]["local_root"]).mkdir(parents=True, exist_ok=True)
    return p


def setup(workdir: Path, models: int, versions: int) -> tuple[Path, Path, Path, Path]:
    """Functions for each contender, artifacts in S3, a catalog and a release manifest for ferry."""
    s3 = boto3.client("s3")
    for contender in ("ferry", "ferrycount", "ferrylat", "boto3", "boto3job", "boto3lat", "boto3joblat", "awscli"):
        # Straight at moto (not the local Lambda): this bench measures control-plane work, and each smoke invoke
        # is moto's echo of the request.
        local_platform.create(platform_for(f"bench-{contender}", models, workdir), os.environ["AWS_ENDPOINT_URL"],
                              local_lambda=False)
    catalog = write_release(workdir, s3, "bench", models, versions)
    platforms = []
    for contender in ("ferry", "ferrycount", "ferrylat"):
        platform = workdir / f"platform-{contender}.json"
        platform.write_text(json.dumps(platform_for(f"bench-{contender}", models, workdir)))
        platforms.append(platform)
    return catalog, *platforms


def write_release(folder: Path, s3, prefix: str, models: int, versions: int) -> Path:
    """Tiny artifacts under `prefix/` in S3 for models m00.. x versions 1..; a release manifest approving them all and
    a catalog naming the models, in `folder`. Returns the catalog's path."""
    lines = []
    for i in range(models):
        model = f"m{i:02d}"
        lines.append(f"[models.{model}]\n")
        for v in range(1, versions + 1):
            key = f"{prefix}/{model}/{v}/artifacts"
            s3.put_object(Bucket=standins.BUCKET, Key=f"{key}/MLmodel", Body=f"model {model} v{v}\n".encode())
            s3.put_object(Bucket=standins.BUCKET, Key=f"{key}/python_model.pkl", Body=os.urandom(2048))
            lines.append(f'[[models.{model}.versions]]\nversion = "{v}"\napproved_by = "qa@example.org"\n'
                         f'approved_at = "2026-11-01T10:00:00Z"\nticket = "QA-{v}"\n'
                         f'artifact_uri = "s3://{standins.BUCKET}/{key}"\n')
    (folder / "releases.toml").write_text("\n".join(lines))
    catalog = folder / "ferry.toml"
    catalog.write_text('[registry]\nsource = "manifest"\npath = "releases.toml"\n'
                       + "".join(f"[models.m{i:02d}]\n" for i in range(models)))
    return catalog


def run_ferry(ferry: Path, catalog: Path, platform: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run([str(ferry), "--catalog", str(catalog), "--platform", str(platform), "-q", "deploy",
                           "--output", "json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ferry deploy failed:\n{proc.stderr[-3000:]}")
    return elapsed


def run_boto3(models: int, versions: int, prefix: str = "bench-boto3") -> float:
    lam = boto3.client("lambda")
    started = time.perf_counter()
    for i in range(models):
        fn = f"{prefix}-m{i:02d}"
        for v in range(1, versions + 1):
            lam.update_function_configuration(FunctionName=fn, MemorySize=1024, Timeout=30,
                                              Environment={"Variables": {"FERRY_MODEL_PATH": f"/mnt/models/m{i:02d}/{v}"}})
            while lam.get_function_configuration(FunctionName=fn).get("LastUpdateStatus") == "InProgress":
                time.sleep(0.5)
            out = lam.publish_version(FunctionName=fn, Description=f"m{i:02d} v{v}")
            lam.create_alias(FunctionName=fn, Name=f"v{v}", FunctionVersion=out["Version"])
    return time.perf_counter() - started


def run_boto3_whole_job(models: int, versions: int, efs_root: Path, prefix: str = "bench-boto3job") -> float:
    """The same job as `ferry deploy`, written as a serial boto3 script: per version, copy the artifacts to the EFS
    folder (SHA-256 of each file, fsync, rename into place), update, wait, publish, smoke-invoke, alias, and put an
    audit record that is never overwritten. What a team would write to replace Ferry, minus its checks."""
    lam, s3 = boto3.client("lambda"), boto3.client("s3")
    started = time.perf_counter()
    for i in range(models):
        model, fn = f"m{i:02d}", f"{prefix}-m{i:02d}"
        for v in range(1, versions + 1):
            artifacts = f"bench/{model}/{v}/artifacts/"
            staging, final = efs_root / model / f".tmp-{v}", efs_root / model / str(v)
            staging.mkdir(parents=True)
            digests = {}
            for obj in s3.list_objects_v2(Bucket=standins.BUCKET, Prefix=artifacts).get("Contents", []):
                body = s3.get_object(Bucket=standins.BUCKET, Key=obj["Key"])["Body"].read()
                rel = obj["Key"][len(artifacts):]
                with open(staging / rel, "wb") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
                digests[rel] = hashlib.sha256(body).hexdigest()
            staging.rename(final)
            lam.update_function_configuration(FunctionName=fn, MemorySize=1024, Timeout=30,
                                              Environment={"Variables": {"FERRY_MODEL_PATH": f"/mnt/models/{model}/{v}"}})
            while lam.get_function_configuration(FunctionName=fn).get("LastUpdateStatus") == "InProgress":
                time.sleep(0.5)
            lv = lam.publish_version(FunctionName=fn, Description=f"{model} v{v}")["Version"]
            answer = lam.invoke(FunctionName=fn, Qualifier=lv, Payload=b'{"inputs": [[1.0, 2.0]]}')
            if answer.get("FunctionError"):
                raise SystemExit(f"{fn}:{lv}: smoke invoke failed")
            lam.create_alias(FunctionName=fn, Name=f"v{v}", FunctionVersion=lv)
            s3.put_object(Bucket=standins.BUCKET, Key=f"bench/audit/{prefix}/{model}/v{v}.json", IfNoneMatch="*",
                          Body=json.dumps({"model": model, "version": v, "lambda_version": lv, "files": digests}))
    return time.perf_counter() - started


def run_awscli(sample: int, versions: int) -> float:
    aws = str(Path(sys.executable).parent / "aws")
    script = ["set -e"]
    for k in range(sample):
        fn, v = f"bench-awscli-m{k // versions:02d}", k % versions + 1
        script += [
            f"{aws} lambda update-function-configuration --function-name {fn} --memory-size 1024 --timeout 30 "
            f"--environment 'Variables={{FERRY_MODEL_PATH=/mnt/models/m/{v}}}' >/dev/null",
            f"{aws} lambda wait function-updated-v2 --function-name {fn}",
            f"lv=$({aws} lambda publish-version --function-name {fn} --description v{v} --query Version --output text)",
            f"{aws} lambda create-alias --function-name {fn} --name v{v} --function-version $lv >/dev/null",
        ]
    started = time.perf_counter()
    subprocess.run(["bash", "-c", "\n".join(script)], check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ferry", type=Path, default=ROOT / "target" / "release" / "ferry")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--cli-sample", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="round trip added to each request in the second scenario")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "deploy.json")
    args = parser.parse_args(argv)
    n = args.models * args.versions
    with tempfile.TemporaryDirectory(prefix="ferry-bench-deploy-") as tmp:
        workdir = Path(tmp)
        st = standins.up(workdir / "standins", with_mlflow=False, parent_pid=os.getpid())
        try:
            os.environ.update(st.env())
            # Control-plane work only: moto straight, not the local Lambda in front of it (moto echoes invokes).
            os.environ["AWS_ENDPOINT_URL"] = st.moto_url
            catalog, platform, count_platform, latency_platform = setup(workdir, args.models, args.versions)
            moto_pid = st.pids[0]

            # Timed runs with moto's recorder off (it costs the server time); calls are counted in a second,
            # identical deploy onto its own functions with the recorder on.
            t_ferry, cpu_ferry = timed(moto_pid, lambda: run_ferry(args.ferry, catalog, platform))
            t_boto3, cpu_boto3 = timed(moto_pid, lambda: run_boto3(args.models, args.versions))
            t_job, cpu_job = timed(moto_pid, lambda: run_boto3_whole_job(args.models, args.versions,
                                                                          workdir / "efs" / "boto3job"))

            # The same comparison with a round trip per request, as against the real API.
            relay = Relay(urllib.parse.urlparse(st.moto_url).port, args.latency_ms / 1000)
            os.environ["AWS_ENDPOINT_URL"] = relay.url
            try:
                t_ferry_lat = run_ferry(args.ferry, catalog, latency_platform)
                t_boto3_lat = run_boto3(args.models, args.versions, "bench-boto3lat")
                t_job_lat = run_boto3_whole_job(args.models, args.versions, workdir / "efs" / "boto3joblat",
                                                "bench-boto3joblat")
            finally:
                os.environ["AWS_ENDPOINT_URL"] = st.moto_url
                relay.close()

            record(st.moto_url)
            run_ferry(args.ferry, catalog, count_platform)
            moto_api(st.moto_url, "recorder/stop-recording")
            calls = recorded(st.moto_url)
            mutating = [c for c in calls if c["method"] not in ("GET", "HEAD")]
            lambda_mut = [c for c in mutating if c["path"].startswith("/2015-03-31/functions")]
            audit_puts = [c for c in mutating if "/ferry/audit/" in c["path"]]

            record(st.moto_url)
            t_noop = run_ferry(args.ferry, catalog, count_platform)
            moto_api(st.moto_url, "recorder/stop-recording")
            noop = recorded(st.moto_url)
            noop_mutating = [c for c in noop if c["method"] not in ("GET", "HEAD")]

            t_cli_sample = run_awscli(args.cli_sample, args.versions)
            t_cli = t_cli_sample / args.cli_sample * n
        finally:
            standins.stop_groups(st.pids)

    result = {
        "scenario": f"{args.models} models x {args.versions} versions = {n} new versions, one moto server",
        "ferry_deploy_s": round(t_ferry, 2),
        "boto3_serial_s": round(t_boto3, 2),
        "boto3_whole_job_s": round(t_job, 2),
        "ratio_vs_boto3_whole_job": round(t_ferry / t_job, 3),
        "with_latency": {
            "round_trip_ms": args.latency_ms,
            "ferry_deploy_s": round(t_ferry_lat, 2),
            "boto3_serial_s": round(t_boto3_lat, 2),
            "boto3_whole_job_s": round(t_job_lat, 2),
            "ratio_vs_boto3": round(t_ferry_lat / t_boto3_lat, 3),
            "ratio_vs_boto3_whole_job": round(t_ferry_lat / t_job_lat, 3),
        },
        "moto_cpu_s": {"ferry": round(cpu_ferry, 2), "boto3": round(cpu_boto3, 2), "boto3_whole_job": round(cpu_job, 2)},
        "requests_per_version": round(len(calls) / n, 2),
        "requests_by_kind": dict(sorted(collections.Counter(kind(c) for c in calls).items())),
        "awscli_loop_s_scaled": round(t_cli, 1),
        "awscli_sample": {"versions": args.cli_sample, "seconds": round(t_cli_sample, 2)},
        "ratio_vs_awscli": round(t_ferry / t_cli, 4),
        "ratio_vs_boto3": round(t_ferry / t_boto3, 3),
        "lambda_mutations_per_version": round(len(lambda_mut) / n, 3),
        "audit_puts_per_version": round(len(audit_puts) / n, 3),
        "other_mutations": len(mutating) - len(lambda_mut) - len(audit_puts),
        "noop_rerun_s": round(t_noop, 2),
        "noop_mutating_calls": len(noop_mutating),
        "noop_calls_per_function": round(len(noop) / args.models, 2),
        "targets": {"ratio_vs_awscli": "<= 0.01", "ratio_vs_boto3": "<= 0.5", "lambda_mutations_per_version": 3,
                    "audit_puts_per_version": 1, "noop_mutating_calls": 0, "noop_calls_per_function": "<= 3"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"""
bench-deploy: {result['scenario']}
  ferry deploy (whole process)     {t_ferry:8.2f} s
  boto3, serial, one process       {t_boto3:8.2f} s    ferry / boto3  = {result['ratio_vs_boto3']}   (target <= 0.5)
  boto3, serial, ferry's whole job  {t_job:8.2f} s    ferry / it     = {result['ratio_vs_boto3_whole_job']}   (sync, update, wait, publish, invoke, alias, audit)
  moto's CPU time meanwhile: ferry {cpu_ferry:.2f} s, boto3 {cpu_boto3:.2f} s, boto3 whole job {cpu_job:.2f} s; ferry's requests per version: {result['requests_per_version']} + 1 invoke (moto does not record invocations)
  with a {args.latency_ms:g} ms round trip per request (relay in front of moto):
    ferry {t_ferry_lat:.2f} s, boto3 serial {t_boto3_lat:.2f} s (ferry / it = {result['with_latency']['ratio_vs_boto3']}), boto3 whole job {t_job_lat:.2f} s (ferry / it = {result['with_latency']['ratio_vs_boto3_whole_job']})
  AWS CLI loop (scaled from {args.cli_sample:>3})   {t_cli:8.1f} s    ferry / awscli = {result['ratio_vs_awscli']}  (target <= 0.01)
  per new version: {result['lambda_mutations_per_version']} Lambda mutations, {result['audit_puts_per_version']} audit puts (targets 3 and 1); other mutations in the run: {result['other_mutations']} (lock put and delete, sts:GetCallerIdentity)
  no-op rerun: {t_noop:.2f} s, {len(noop_mutating)} mutating calls, {result['noop_calls_per_function']} calls per function (targets 0 and <= 3)
  results: {args.out}""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
