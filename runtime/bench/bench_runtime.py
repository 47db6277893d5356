#!/usr/bin/env python3
"""Benchmark of the inference runtime as Lambda runs it (`make bench-runtime`), in one run on this machine:

1. cold start through the local Lambda (tools/lambda_local): the shipped function zip and layer (dist/), a demo model
   version synced onto the EFS folder, one new published version per repetition so that each invoke starts a fresh
   execution environment. Per start: Lambda's Init Duration (process start to the runtime's first `/next`: the
   handler module imported, the model loaded), the CPU seconds of that init (on Lambda, CPU share is what memory
   size buys: 1769 MB is one vCPU), and the first prediction after init (the REPORT Duration of the first invoke);
2. warm: >= 500 invokes of one environment, REPORT Duration (the handler, as Lambda bills it) and the client's round
   trip, against the bare `model.predict` on a ready DataFrame in this process: the handler overhead is the
   difference of the p50s;
3. what a user would do instead, in the same run: a fresh interpreter that imports MLflow and calls
   `mlflow.pyfunc.load_model("models:/<name>/<version>")` from the registry with its artifacts in S3 (moto);
4. the floor: fresh interpreters with only the layer on their path, timed from process start: interpreter alone,
   + numpy, + numpy and pandas, + mlflow.pyfunc (which the model's own code imports), and the `-X importtime`
   profile of that import, by top-level package.

The stand-ins are started here and stopped by PID at the end, also on error. A table is printed; JSON goes to --out.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1]
REPO = RUNTIME.parent
for p in (RUNTIME, REPO / "tools", REPO / "examples" / "models"):
    sys.path.insert(0, str(p))

import demo_models  # noqa: E402
import standins  # noqa: E402

MODEL = "risk-score"
TARGETS = {"init_ms_max": 1000.0, "first_prediction_ms_max": 50.0, "handler_overhead_p50_ms_max": 1.0}
REPORT = re.compile(r"REPORT RequestId: \S+\tDuration: ([\d.]+) ms.*?(?:Init Duration: ([\d.]+) ms)?$", re.M)

OLD_WAY = r"""
import sys, time
import mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
t = time.perf_counter()
import demo_models
model.predict(demo_models.input_example("risk-score"))
print(time.perf_counter() - t)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def sync_like_ferry(name: str, version: str, dest: Path) -> str:
    """Copy the registered version's artifacts from S3 into <efs>/<model>/<version> and write the manifest, as
    `ferry sync` lays a version out. Returns the artifact digest."""
    import mlflow.artifacts
    from ferry_runtime import manifest

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".ferry-tmp-{version}-bench"
    mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(staging))
    digest = manifest.write_manifest(staging, MODEL, version)["digest"]
    staging.rename(dest)
    return digest


def report_of(log_b64: str) -> tuple[float, float | None]:
    """(Duration ms, Init Duration ms or None) from a REPORT line of an invoke's log tail."""
    found = REPORT.search(base64.b64decode(log_b64).decode())
    if not found:
        raise RuntimeError("no REPORT line in the invoke's log")
    return float(found.group(1)), float(found.group(2)) if found.group(2) else None


def lambda_cold_and_warm(st, function: str, env: dict[str, str], reps: int, iterations: int,
                         between=lambda: None) -> dict:
    """`between` runs after each cold start: the other ways' samples interleave with these, so that drift of a shared
    machine hits every way alike."""
    import boto3

    lam = boto3.client("lambda")
    payload = json.dumps(demo_models.SAMPLE_INPUTS[MODEL]).encode()
    expected = demo_models.build(MODEL, 1).predict(None, demo_models.input_example(MODEL))
    cold = []
    for rep in range(reps):
        # A new published version is a new configuration: its first invoke starts a fresh environment.
        lam.update_function_configuration(FunctionName=function,
                                          Environment={"Variables": {**env, "FERRY_BENCH_REP": str(rep)}})
        version = lam.publish_version(FunctionName=function)["Version"]
        t = time.perf_counter()
        answer = lam.invoke(FunctionName=function, Qualifier=version, Payload=payload, LogType="Tail")
        wall = (time.perf_counter() - t) * 1000
        body = json.loads(answer["Payload"].read())
        if answer.get("FunctionError") or body.get("predictions") != expected:
            raise RuntimeError(f"cold invoke of {function}:{version} answered {body}: "
                               f"{base64.b64decode(answer['LogResult']).decode()[-2000:]}")
        duration, init = report_of(answer["LogResult"])
        with urllib.request.urlopen(f"{st.aws_url}/ferry-lambda/environments", timeout=10) as r:
            envs = [e for e in json.loads(r.read()) if e["version"] == version]
        cold.append({"init_ms": init, "first_prediction_ms": duration, "invoke_wall_ms": wall,
                     "init_cpu_s": envs[0]["init_cpu_s"] if envs else None})
        print(f"  cold start {rep + 1}/{reps}: init {init:.0f} ms ({cold[-1]['init_cpu_s']} s CPU), first prediction "
              f"{duration:.1f} ms", flush=True)
        between()
    durations, round_trips = [], []
    for i in range(iterations + 50):
        t = time.perf_counter()
        answer = lam.invoke(FunctionName=function, Qualifier=version, Payload=payload, LogType="Tail")
        rt = (time.perf_counter() - t) * 1000
        answer["Payload"].read()
        if i >= 50:  # the first 50 warm the client's connection and the environment's caches
            durations.append(report_of(answer["LogResult"])[0])
            round_trips.append(rt)
    return {"cold": cold, "warm": {"report_duration_ms": summary(durations), "client_round_trip_ms": summary(round_trips)}}


def summary(values: list[float]) -> dict:
    return {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99), "mean": statistics.fmean(values),
            "n": len(values)}


def plumbing_floor(function_like: str, iterations: int) -> dict:
    """REPORT Duration of a function that only returns its event, on the same runtime and executor: what the Runtime
    API round trip and the runtime interface client cost before any handler code runs."""
    import io

    import boto3

    import local_platform

    lam = boto3.client("lambda")
    conf = lam.get_function_configuration(FunctionName=function_like)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("echo.py", "def handler(event, context):\n    return event\n")
    name = f"{function_like}-echo"
    version = lam.create_function(FunctionName=name, Runtime=conf["Runtime"], Role=conf["Role"], Handler="echo.handler",
                                  Code={"ZipFile": buf.getvalue()}, Architectures=[local_platform.ARCHITECTURE],
                                  Publish=True)["Version"]
    payload = json.dumps(demo_models.SAMPLE_INPUTS[MODEL]).encode()
    durations = []
    for i in range(iterations + 50):
        answer = lam.invoke(FunctionName=name, Qualifier=version, Payload=payload, LogType="Tail")
        answer["Payload"].read()
        if i >= 50:
            durations.append(report_of(answer["LogResult"])[0])
    return summary(durations)


def bare_predict(folder: Path, iterations: int) -> dict:
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(folder))
    frame = demo_models.input_example(MODEL)
    for _ in range(200):
        model.predict(frame)
    samples = []
    for _ in range(iterations):
        t = time.perf_counter_ns()
        model.predict(frame)
        samples.append((time.perf_counter_ns() - t) / 1e6)
    return summary(samples)


def old_way(uri: str, reps: int, env: dict) -> dict:
    child_env = dict(env, PYTHONPATH=str(REPO / "examples" / "models"))
    rows = []
    for _ in range(reps):
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", OLD_WAY, uri], env=child_env, capture_output=True, text=True,
                              timeout=300)
        wall = (time.perf_counter() - t) * 1000
        if done.returncode != 0:
            raise RuntimeError(f"load_model({uri}) failed:\n{done.stderr[-3000:]}")
        first = float(done.stdout.strip().splitlines()[-1]) * 1000
        rows.append({"process_to_loaded_and_predicted_ms": wall, "first_prediction_ms": first})
    return {"samples": rows, "median_ms": statistics.median(r["process_to_loaded_and_predicted_ms"] for r in rows)}


class Floor:
    """Fresh interpreters seeing only the layer (as on Lambda, with -S -s), timed from process start to exit."""
    STEPS = {"interpreter": "pass", "numpy": "import numpy", "numpy_pandas": "import numpy, pandas",
             "mlflow_pyfunc": "import numpy, pandas, mlflow.pyfunc"}

    def __init__(self, layer_zip: Path, workdir: Path, python: str):
        opt = workdir / "opt"
        with zipfile.ZipFile(layer_zip) as zf:
            zf.extractall(opt)
        minor = ".".join(platform.python_version_tuple()[:2])
        self.python = python
        self.env = {"PYTHONPATH": f"{opt}/python/lib/python{minor}/site-packages:{opt}/python",
                    "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MLFLOW_DISABLE_TELEMETRY": "true"}
        self.samples: dict[str, list[float]] = {k: [] for k in self.STEPS}

    def sample(self) -> None:
        for key, code in self.STEPS.items():
            t = time.perf_counter()
            subprocess.run([self.python, "-S", "-s", "-c", code], env=self.env, check=True, capture_output=True)
            self.samples[key].append((time.perf_counter() - t) * 1000)

    def result(self) -> dict:
        out = {k: {"median_ms": statistics.median(v), "min_ms": min(v)} for k, v in self.samples.items()}
        prof = subprocess.run([self.python, "-S", "-s", "-X", "importtime", "-c", "import mlflow.pyfunc"],
                              env=self.env, capture_output=True, text=True, check=True).stderr
        by_package: dict[str, int] = {}
        modules = 0
        for line in prof.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
            if m:
                modules += 1
                top = m.group(2).split(".")[0]
                by_package[top] = by_package.get(top, 0) + int(m.group(1))
        out["import_profile"] = {"modules": modules,
                                 "self_ms_by_package": {k: round(v / 1000, 1) for k, v in
                                                        sorted(by_package.items(), key=lambda kv: -kv[1])[:12]}}
        return out


def run(reps: int, iterations: int, workdir: Path) -> dict:
    from registry_fixture import register

    import local_platform

    print("starting moto, the local Lambda and MLflow (tools/standins.py) ...", flush=True)
    st = standins.up(workdir / "standins", with_mlflow=True)
    try:
        env = dict(os.environ)
        env.update(st.env())
        os.environ.update(st.env())
        registered = register(MODEL, 1, registered_name="bench-risk-score")[0]
        name, version = registered["name"], str(registered["version"])
        platform_doc = json.loads((workdir / "standins" / "platform.json").read_text())
        efs = Path(platform_doc["efs"]["local_root"])
        digest = sync_like_ferry(name, version, efs / MODEL / version)
        local_platform.create(platform_doc, st.aws_url)
        function = platform_doc["functions"][MODEL]
        fn_env = {"FERRY_MODEL_PATH": f"{platform_doc['efs']['mount_path']}/{MODEL}/{version}",
                  "FERRY_MODEL_NAME": MODEL, "FERRY_MODEL_VERSION": version, "FERRY_VERIFY_MANIFEST": "true",
                  "FERRY_ARTIFACT_DIGEST": digest}
        print(f"registered {name} v{version}; synced to {efs / MODEL / version}; function {function}", flush=True)
        base_floor = Floor(local_platform.LAYER_ZIP, workdir, sys.executable)
        lam = lambda_cold_and_warm(st, function, fn_env, reps, iterations, between=base_floor.sample)
        echo = plumbing_floor(function, iterations)
        print(f"old way: load_model(models:/{name}/{version}), {reps} fresh processes ...", flush=True)
        old = old_way(f"models:/{name}/{version}", reps, env)
        bare = bare_predict(efs / MODEL / version, iterations)
    finally:
        standins.stop_groups(st.pids)
        print(f"stopped the stand-ins (pids {', '.join(map(str, st.pids))})", flush=True)
    base = base_floor.result()

    inits = [c["init_ms"] for c in lam["cold"]]
    firsts = [c["first_prediction_ms"] for c in lam["cold"]]
    cpus = [c["init_cpu_s"] for c in lam["cold"] if c["init_cpu_s"] is not None]
    init_med, first_med = statistics.median(inits), statistics.median(firsts)
    overhead = lam["warm"]["report_duration_ms"]["p50"] - bare["p50"]
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "model": {"name": MODEL, "registered_as": name, "version": version, "digest": digest},
        "repetitions": reps, "warm_iterations": iterations,
        "lambda": lam, "bare_predict_ms": bare, "echo_function_report_duration_ms": echo, "old_way_models_uri": old, "floor": base,
        "summary": {
            "init_ms_median": init_med, "init_ms_min": min(inits), "init_ms_max": max(inits),
            "init_cpu_s_median": statistics.median(cpus) if cpus else None,
            "first_prediction_ms_median": first_med,
            "warm_report_duration_p50_ms": lam["warm"]["report_duration_ms"]["p50"],
            "warm_report_duration_p99_ms": lam["warm"]["report_duration_ms"]["p99"],
            "handler_overhead_p50_ms": overhead,
            "runtime_api_floor_p50_ms": echo["p50"],
            "handler_overhead_above_runtime_api_floor_p50_ms": overhead - echo["p50"],
            "cold_start_vs_models_uri_ratio": old["median_ms"] / (init_med + first_med),
            "floor_ms": base["mlflow_pyfunc"]["median_ms"],
            "init_above_floor_ms": init_med - base["mlflow_pyfunc"]["median_ms"],
            "targets": TARGETS,
            "init_target_met": init_med <= TARGETS["init_ms_max"],
            "first_prediction_target_met": first_med <= TARGETS["first_prediction_ms_max"],
            "overhead_target_met": overhead <= TARGETS["handler_overhead_p50_ms_max"],
        },
    }


def print_table(r: dict) -> None:
    s, f, w = r["summary"], r["floor"], r["lambda"]["warm"]
    ok = lambda met: "met" if met else "NOT met"  # noqa: E731
    print(f"\n{r['model']['registered_as']} v{r['model']['version']} through the local Lambda, {r['repetitions']} cold "
          f"starts, {r['warm_iterations']} warm invokes")
    print(f"  init (Init Duration)        median {s['init_ms_median']:7.0f} ms  (min {s['init_ms_min']:.0f}, max "
          f"{s['init_ms_max']:.0f}; {s['init_cpu_s_median']} s CPU)   target <= {TARGETS['init_ms_max']:.0f} ms: "
          f"{ok(s['init_target_met'])}")
    print(f"  first prediction after init median {s['first_prediction_ms_median']:7.1f} ms   target <= "
          f"{TARGETS['first_prediction_ms_max']:.0f} ms: {ok(s['first_prediction_target_met'])}")
    print(f"  warm handler (REPORT)       p50 {w['report_duration_ms']['p50']:.3f} ms, p99 "
          f"{w['report_duration_ms']['p99']:.3f} ms; client round trip p50 {w['client_round_trip_ms']['p50']:.2f} ms")
    print(f"  bare model.predict          p50 {r['bare_predict_ms']['p50']:.3f} ms -> handler overhead "
          f"{s['handler_overhead_p50_ms'] * 1000:.0f} us   target <= 1000 us: {ok(s['overhead_target_met'])}")
    print(f"  of which the Runtime API round trip (a function returning its event): p50 {s['runtime_api_floor_p50_ms']:.3f} ms; "
          f"Ferry's handler above it {s['handler_overhead_above_runtime_api_floor_p50_ms'] * 1000:.0f} us")
    print(f"  instead: load_model(models:/) in a fresh process: median {r['old_way_models_uri']['median_ms']:.0f} ms "
          f"-> cold start {s['cold_start_vs_models_uri_ratio']:.2f}x faster through Ferry")
    print("  floor (fresh interpreter, layer only, process start to exit): " + ", ".join(
        f"{k} {v['median_ms']:.0f} ms" for k, v in f.items() if k != "import_profile"))
    print(f"  init is {s['init_above_floor_ms']:.0f} ms above importing numpy + pandas + mlflow.pyfunc; the import "
          f"({f['import_profile']['modules']} modules) by package, self ms: " +
          ", ".join(f"{k} {v}" for k, v in f["import_profile"]["self_ms_by_package"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7, help="cold starts (and fresh processes per other way)")
    parser.add_argument("--iterations", type=int, default=500, help="warm invokes (at least 500 for the p99)")
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
