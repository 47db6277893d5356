#!/usr/bin/env python3
"""Benchmark of the inference runtime (`make bench-runtime`), in one run on this machine:

1. cold load: in a fresh interpreter each time (N repetitions per way, interleaved), the time of the load call
   measured inside that process, for
     - `ferry_runtime.loader.load(<efs>/<model>/<version>)`   the runtime's way: load_model on the local folder
                                                              with MLflow's slow dependency scan replaced,
     - the same with verify=True                              plus hashing the folder against its manifest,
     - `mlflow.pyfunc.load_model("<efs>/<model>/<version>")`  plain MLflow on the local folder, default arguments,
     - `mlflow.pyfunc.load_model("models:/<name>/<version>")` through the local MLflow server with S3 artifacts in
       moto (the old way);
   the import of mlflow.pyfunc, the same for all three, is measured and reported apart.
2. warm prediction: p50/p99 of the Lambda handler on a direct invoke and on an HTTP API event, against calling the
   loaded model's `predict` directly on a ready DataFrame; the handler overhead is the difference of the p50s.

The stand-ins (moto + MLflow) are started here and stopped by PID at the end, also on error. Results are printed as
a table and written as JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1]
REPO = RUNTIME.parent
for p in (RUNTIME, REPO / "tools", REPO / "examples" / "models"):
    sys.path.insert(0, str(p))

import demo_models  # noqa: E402
import standins  # noqa: E402

MODEL = "risk-score"
COLD_TARGET_RATIO = 10.0
OVERHEAD_TARGET_MS = 1.0

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import mlflow.pyfunc
t1 = time.perf_counter()
mode, uri = sys.argv[1], sys.argv[2]
if mode in ("ferry", "ferry_verified"):
    from ferry_runtime import loader, logs
    logs.set_stream(open("/dev/null", "w"))
    model = loader.load(uri, "risk-score", sys.argv[3], verify=mode == "ferry_verified").model
else:
    model = mlflow.pyfunc.load_model(uri)
t2 = time.perf_counter()
import demo_models
model.predict(demo_models.input_example("risk-score"))
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_predict_s": t3 - t2}))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def cold_loads(efs_folder: Path, registry_uri: str, version: str, reps: int, env: dict) -> dict:
    child_env = dict(env)
    child_env["PYTHONPATH"] = os.pathsep.join([str(RUNTIME), str(REPO / "examples" / "models")])
    ways = {"ferry_loader": ("ferry", str(efs_folder)), "ferry_loader_verified": ("ferry_verified", str(efs_folder)),
            "mlflow_local_folder": ("local", str(efs_folder)), "registry_models_uri": ("registry", registry_uri)}
    samples = {k: [] for k in ways}
    for rep in range(reps):
        for key, (mode, uri) in ways.items():
            done = subprocess.run([sys.executable, "-c", CHILD, mode, uri, version], env=child_env,
                                  capture_output=True, text=True, timeout=300, cwd=str(efs_folder.parent))
            if done.returncode != 0:
                raise RuntimeError(f"cold load ({key}) failed:\n{done.stderr[-3000:]}")
            samples[key].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  cold load repetition {rep + 1}/{reps} done", flush=True)
    out = {}
    for key, rows in samples.items():
        loads = [r["load_s"] * 1000 for r in rows]
        imports = [r["import_s"] * 1000 for r in rows]
        out[key] = {"load_ms_median": statistics.median(loads), "load_ms_min": min(loads), "load_ms_max": max(loads),
                    "import_ms_median": statistics.median(imports),
                    "first_predict_ms_median": statistics.median(r["first_predict_s"] * 1000 for r in rows),
                    "samples_load_ms": [round(v, 2) for v in loads]}
    return out


def warm_predictions(efs_folder: Path, version: str, iterations: int) -> dict:
    from ferry_runtime import lambda_handler, loader, logs

    sink = open(os.devnull, "w")
    logs.set_stream(sink)  # log lines are formatted and written as in production, to /dev/null
    os.environ.update({"FERRY_MODEL_PATH": str(efs_folder), "FERRY_MODEL_NAME": MODEL,
                       "FERRY_MODEL_VERSION": version, "FERRY_VERIFY_MANIFEST": "true"})
    model = lambda_handler.get_model().model
    payload = demo_models.SAMPLE_INPUTS[MODEL]
    frame = demo_models.input_example(MODEL)
    http_event = {"version": "2.0", "headers": {"content-type": "application/json"},
                  "requestContext": {"apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
                                     "requestId": "r", "http": {"method": "POST", "path": "/"}},
                  "body": json.dumps(payload), "isBase64Encoded": False}

    class Ctx:
        aws_request_id = "bench-request"

    expected = model.predict(frame)
    assert lambda_handler.handler(payload, Ctx())["predictions"] == list(expected)
    assert json.loads(lambda_handler.handler(http_event, Ctx())["body"])["predictions"] == list(expected)

    ways = {"direct_predict": lambda: model.predict(frame),
            "handler_direct_invoke": lambda: lambda_handler.handler(payload, Ctx()),
            "handler_http_event": lambda: lambda_handler.handler(http_event, Ctx())}
    for fn in ways.values():  # warm-up
        for _ in range(200):
            fn()
    samples = {k: [] for k in ways}
    clock = time.perf_counter_ns
    for _ in range(iterations):  # interleaved, so drift of the machine hits all ways alike
        for key, fn in ways.items():
            t = clock()
            fn()
            samples[key].append((clock() - t) / 1e6)
    sink.close()
    logs.set_stream(None)
    assert loader.is_loaded(efs_folder)
    return {k: {"p50_ms": percentile(v, 0.5), "p99_ms": percentile(v, 0.99), "mean_ms": statistics.fmean(v),
                "n": len(v)} for k, v in samples.items()}


def sync_like_ferry(name: str, version: str, dest: Path) -> str:
    """Copy the registered version's artifacts from S3 (moto) into <efs>/<model>/<version> and write the manifest,
    as `ferry sync` lays a version out. Returns the artifact digest."""
    import mlflow.artifacts
    from ferry_runtime import manifest

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".ferry-tmp-{version}-bench"
    mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(staging))
    digest = manifest.write_manifest(staging, MODEL, version)["digest"]
    staging.rename(dest)
    return digest


def run(reps: int, iterations: int, workdir: Path) -> dict:
    from registry_fixture import register

    print("starting moto and MLflow (tools/standins.py) ...", flush=True)
    st = standins.up(workdir / "standins", with_mlflow=True)
    try:
        env = dict(os.environ)
        env.update(st.env())
        os.environ.update(st.env())
        registered = register(MODEL, 1, registered_name="bench-risk-score")[0]
        name, version = registered["name"], str(registered["version"])
        efs_folder = workdir / "efs" / MODEL / version
        digest = sync_like_ferry(name, version, efs_folder)
        files = sorted(p.relative_to(efs_folder).as_posix() for p in efs_folder.rglob("*") if p.is_file())
        print(f"registered {name} v{version} ({registered['artifact_uri']}); synced to {efs_folder}", flush=True)
        cold = cold_loads(efs_folder, f"models:/{name}/{version}", version, reps, env)
        print(f"warm predictions: {iterations} iterations per way ...", flush=True)
        warm = warm_predictions(efs_folder, version, iterations)
    finally:
        standins.stop_groups(st.pids)
        print(f"stopped the stand-ins (pids {', '.join(map(str, st.pids))})", flush=True)

    local = cold["ferry_loader"]["load_ms_median"]
    remote = cold["registry_models_uri"]["load_ms_median"]
    imp = cold["ferry_loader"]["import_ms_median"]
    overhead = warm["handler_direct_invoke"]["p50_ms"] - warm["direct_predict"]["p50_ms"]
    overhead_http = warm["handler_http_event"]["p50_ms"] - warm["direct_predict"]["p50_ms"]
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "model": {"name": MODEL, "registered_as": name, "version": version, "artifact_uri": registered["artifact_uri"],
                  "digest": digest, "files": files},
        "repetitions": reps, "warm_iterations": iterations,
        "cold_load": cold,
        "warm": warm,
        "summary": {
            "cold_load_ratio": remote / local,
            "cold_load_ratio_verified": remote / cold["ferry_loader_verified"]["load_ms_median"],
            "cold_load_ratio_plain_mlflow_local": remote / cold["mlflow_local_folder"]["load_ms_median"],
            "cold_start_ratio_including_import": (remote + imp) / (local + imp),
            "handler_overhead_p50_ms": overhead,
            "handler_overhead_http_p50_ms": overhead_http,
            "targets": {"cold_load_ratio_min": COLD_TARGET_RATIO, "handler_overhead_p50_ms_max": OVERHEAD_TARGET_MS},
            "cold_load_target_met": remote / local >= COLD_TARGET_RATIO,
            "overhead_target_met": overhead <= OVERHEAD_TARGET_MS,
        },
    }


def print_table(r: dict) -> None:
    c, w, s = r["cold_load"], r["warm"], r["summary"]
    print(f"\ncold load of {r['model']['registered_as']} v{r['model']['version']}, fresh process each, "
          f"{r['repetitions']} repetitions (median; min-max)")
    print(f"  {'way':<44} {'load ms':>9} {'min-max':>15} {'import ms':>10} {'vs models:/':>12}")
    remote = c["registry_models_uri"]["load_ms_median"]
    rows = [("ferry loader  (EFS folder)", "ferry_loader"),
            ("ferry loader  + manifest verified", "ferry_loader_verified"),
            ("mlflow        load_model(<efs>/m/v), defaults", "mlflow_local_folder"),
            ("registry      load_model(models:/m/v)", "registry_models_uri")]
    for label, key in rows:
        x = c[key]
        print(f"  {label:<44} {x['load_ms_median']:>9.1f} {x['load_ms_min']:>7.1f}-{x['load_ms_max']:<7.1f} "
              f"{x['import_ms_median']:>10.0f} {remote / x['load_ms_median']:>11.1f}x")
    print(f"\nwarm prediction, {r['warm_iterations']} iterations each (2-row dataframe_split)")
    print(f"  {'way':<44} {'p50 ms':>9} {'p99 ms':>9} {'p50 overhead':>13}")
    base = w["direct_predict"]["p50_ms"]
    for label, key in [("model.predict(DataFrame) directly", "direct_predict"),
                       ("handler, direct invoke", "handler_direct_invoke"),
                       ("handler, HTTP API v2 event", "handler_http_event")]:
        x = w[key]
        print(f"  {label:<44} {x['p50_ms']:>9.3f} {x['p99_ms']:>9.3f} {x['p50_ms'] - base:>+12.3f}")
    print(f"\ncold load ratio {s['cold_load_ratio']:.1f}x (target >= {COLD_TARGET_RATIO:.0f}x: "
          f"{'met' if s['cold_load_target_met'] else 'NOT met'}); with the shared import of mlflow.pyfunc counted, "
          f"{s['cold_start_ratio_including_import']:.2f}x")
    print(f"handler overhead at p50 {s['handler_overhead_p50_ms'] * 1000:.0f} us (target <= "
          f"{OVERHEAD_TARGET_MS * 1000:.0f} us: {'met' if s['overhead_target_met'] else 'NOT met'}); "
          f"HTTP event {s['handler_overhead_http_p50_ms'] * 1000:.0f} us")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=10, help="fresh processes per cold-load way")
    parser.add_argument("--iterations", type=int, default=3000, help="warm predictions per way")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "runtime.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ferry-bench-runtime-") as tmp:
        result = run(args.reps, args.iterations, Path(tmp))
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
