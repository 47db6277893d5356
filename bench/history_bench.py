#!/usr/bin/env python3
"""`make bench-history`: `ferry history` over many audit records against what a team would write instead, in one
run, on one moto server.

Scenario: MODELS models x EVENTS audit records each (default 20 x 500 = 10,000): deploy records of version aliases
and stage moves, as Ferry writes them (keys and bodies). Contenders, each timed whole (process start to exit):
  ferry-timeline   `ferry --output json history` (every record listed and read)
  ferry-at         `ferry --output json history --at T` (every key listed, only the records live at T read)
  boto3            a serial boto3 script: list the prefix, get every record, sort by time (what a team would write)
Reported: wall times, records per second, and moto's CPU time during each (moto serves one request at a time, so it
bounds any client: the physical bound here). Results: bench/results/history.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import standins  # noqa: E402

PREFIX = "ferry/audit/bench/"


def key_time(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def records(models: int, events: int, start: float):
    """(key, body) of each record: per model, deploys of v1.. and a stage move after every second deploy."""
    for m in range(models):
        model = f"model-{m:02d}"
        t = start
        version = 0
        for e in range(events):
            t += 60
            if e % 3 == 2:
                body = {"event": "stage-move", "environment": "bench", "model": model, "function": f"f-{model}",
                        "version": str(version), "alias": "production", "lambda_version": str(version),
                        "deployer": {"aws_identity": "arn:aws:iam::123456789012:role/ci", "host": "ci"},
                        "time": rfc3339(t)}
                yield f"{PREFIX}{model}/stages/production/{key_time(t)}-lv{version}.json", body
            else:
                version += 1
                body = {"event": "deploy", "environment": "bench", "model": model, "function": f"f-{model}",
                        "version": str(version), "alias": f"v{version}", "lambda_version": str(version),
                        "spec_hash": "a" * 64, "artifact_digest": "b" * 64,
                        "approval": {"approved_by": "maria.rodriguez-fernandez@clinical-research.example.org",
                                     "approved_at": rfc3339(t - 30), "ticket": f"CHG-{m}-{version}"},
                        "deployer": {"aws_identity": "arn:aws:iam::123456789012:role/ci", "host": "ci"},
                        "time": rfc3339(t)}
                yield f"{PREFIX}{model}/v{version}/{key_time(t)}-deploy-lv{version}.json", body


def moto_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def timed(what, moto_pid: int):
    cpu, wall = moto_cpu(moto_pid), time.monotonic()
    out = what()
    return time.monotonic() - wall, moto_cpu(moto_pid) - cpu, out


def boto3_history(s3, bucket: str) -> int:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        keys += [o["Key"] for o in page.get("Contents", [])]
    docs = [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]
    docs.sort(key=lambda d: d["time"])
    return len(docs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferry", required=True)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-history-") as tmp:
        work = Path(tmp)
        out = subprocess.run([sys.executable, str(ROOT / "tools/standins.py"), "up", "--json", "--no-mlflow",
                              "--dir", str(work)], check=True, capture_output=True, text=True).stdout
        st = json.loads(out)
        try:
            env = dict(os.environ, AWS_ENDPOINT_URL=st["moto_url"], AWS_REGION="us-east-1",
                       AWS_ACCESS_KEY_ID=standins.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=standins.SECRET_KEY)
            os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
            s3 = boto3.client("s3")
            bucket = standins.BUCKET
            start = time.time() - args.models * args.events * 60
            all_records = list(records(args.models, args.events, start))
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda kb: s3.put_object(Bucket=bucket, Key=kb[0], Body=json.dumps(kb[1]).encode()),
                              all_records))
            platform = json.loads((work / "platform.json").read_text())
            platform.update(environment="bench", audit_prefix="ferry/audit/", lock_prefix="ferry/locks/")
            platform_path = work / "bench-platform.json"
            platform_path.write_text(json.dumps(platform))
            moto_pid = st["pids"][0]

            def ferry(*extra):
                def run():
                    out = subprocess.run([args.ferry, "--platform", str(platform_path), "--output", "json", "history",
                                          *extra], env=env, check=True, capture_output=True).stdout
                    return json.loads(out)
                return run

            at = rfc3339(start + args.events * 30)
            results = {}
            for name, what in [("ferry-timeline", ferry()), ("ferry-at", ferry("--at", at)),
                               ("boto3", lambda: boto3_history(s3, bucket))]:
                wall, cpu, out = timed(what, moto_pid)
                n = len(out) if isinstance(out, list) else (len(out["live"]) if isinstance(out, dict) else out)
                results[name] = {"wall_s": round(wall, 2), "moto_cpu_s": round(cpu, 2), "items": n}
            total = len(all_records)
            print(f"{total} audit records, {args.models} models, on moto")
            print(f"{'contender':<16} {'wall':>8} {'moto CPU':>9} {'records/s':>10}  items")
            for name, r in results.items():
                print(f"{name:<16} {r['wall_s']:>7.2f}s {r['moto_cpu_s']:>8.2f}s {total / r['wall_s']:>10.0f}  {r['items']}")
            b = results["boto3"]["wall_s"]
            print(f"ferry-timeline is {b / results['ferry-timeline']['wall_s']:.1f}x the serial boto3 script; "
                  f"its wall time is {results['ferry-timeline']['wall_s'] / max(results['ferry-timeline']['moto_cpu_s'], 0.01):.2f}x "
                  f"moto's CPU for its requests (the bound on one moto)")
            out_dir = ROOT / "bench" / "results"
            out_dir.mkdir(exist_ok=True)
            (out_dir / "history.json").write_text(json.dumps({"records": total, "results": results}, indent=2))
        finally:
            subprocess.run([sys.executable, str(ROOT / "tools/standins.py"), "down", "--dir", str(work)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
