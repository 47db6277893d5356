#!/usr/bin/env python3
"""Builds the Lambda artifacts of the runtime into dist/ and reports their sizes (`make package-runtime`).

    dist/ferry-runtime-layer.zip      a Lambda layer: python/ with mlflow-skinny, numpy, pandas, their dependencies
                                      (manylinux2014 x86_64 wheels for python3.11) and ferry_runtime
    dist/ferry-runtime-function.zip   the function code: ferry_runtime alone (a few KB); handler
                                      `ferry_runtime.lambda_handler.handler`
    dist/ferry-runtime-sizes.json     what was built: versions, file counts, zipped and unzipped bytes

Dependencies come from PyPI through pip (`pip install --target --platform manylinux2014_x86_64 --only-binary=:all:
--python-version 3.11`), pinned by requirements/dev.txt so the layer runs what the tests ran, except numpy and
pandas (LAYER_PINS: the newest with wheels for Lambda's Amazon Linux 2). tests/ folders,
__pycache__ and console scripts are stripped. The build fails when function + layer exceed Lambda's 250 MB unzipped
limit. Where this machine can run the result (Linux x86_64, CPython 3.11), a smoke test loads a demo model with
the layer alone on sys.path and answers a request through the handler.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1]
REPO = RUNTIME.parent
PACKAGE = RUNTIME / "ferry_runtime"
HANDLER = "ferry_runtime.lambda_handler.handler"
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.11"
REQUIREMENTS = ["mlflow-skinny", "numpy", "pandas"]
LOCK = REPO / "requirements" / "dev.txt"
# Lambda's python3.11 runtime runs on Amazon Linux 2 (glibc 2.26), so only manylinux2014 (glibc 2.17) wheels run
# there. The dev lock's numpy 2.4.6 and pandas 3.1.1 ship manylinux_2_27/2_28 wheels only; these are the newest
# releases with manylinux2014 wheels for CPython 3.11. Everything else is pinned by the dev lock.
LAYER_PINS = {"numpy": "2.2.6", "pandas": "2.3.2"}
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024      # function + all layers, unzipped
LAYER_NAME = "ferry-runtime-layer.zip"
FUNCTION_NAME = "ferry-runtime-function.zip"
STRIP_DIRS = {"tests", "__pycache__"}
STRIP_SUFFIXES = (".pyc", ".pyo")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)               # fixed: the same inputs give the same zip


class PackagingError(Exception):
    pass


def lock_pins(lock: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[name.lower().replace("_", "-")] = version.split(";")[0].strip()
    return pins


def pinned_requirements(lock: Path = LOCK, names: list[str] = REQUIREMENTS,
                        overrides: dict[str, str] = LAYER_PINS) -> list[str]:
    """`name==version` for each requirement: the layer's own pin where it has one, else the dev lock's."""
    pins = {**lock_pins(lock), **overrides}
    missing = [n for n in names if n not in pins]
    if missing:
        raise PackagingError(f"{lock}: no pinned version of {', '.join(missing)}")
    return [f"{n}=={pins[n]}" for n in names]


def write_constraints(dest: Path, lock: Path = LOCK, overrides: dict[str, str] = LAYER_PINS) -> Path:
    """The dev lock as pip constraints, with the layer's own pins in place of the lock's."""
    pins = {**lock_pins(lock), **overrides}
    dest.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    return dest


def pip_command(target: Path, requirements: list[str], constraints: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--target", str(target), "--platform", PLATFORM, "--implementation", "cp",
           "--python-version", PYTHON_VERSION, "--only-binary=:all:", "--upgrade"]
    if constraints is not None:
        cmd += ["--constraint", str(constraints)]
    return cmd + requirements


def copy_runtime(dest_python: Path) -> None:
    shutil.copytree(PACKAGE, dest_python / "ferry_runtime",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))


def prune(tree: Path) -> int:
    """Remove test suites, bytecode caches and console scripts; returns the bytes removed."""
    removed = 0
    for dirpath, dirnames, filenames in os.walk(tree, topdown=True):
        base = Path(dirpath)
        for name in list(dirnames):
            if name in STRIP_DIRS:
                removed += tree_size(base / name)
                shutil.rmtree(base / name)
                dirnames.remove(name)
        for name in filenames:
            if name.endswith(STRIP_SUFFIXES):
                removed += (base / name).stat().st_size
                (base / name).unlink()
    scripts = tree / "bin"
    if scripts.is_dir():
        removed += tree_size(scripts)
        shutil.rmtree(scripts)
    return removed


def tree_size(tree: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(tree):
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def file_count(tree: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(tree))


def make_zip(tree: Path, zip_path: Path) -> int:
    """Zip the contents of `tree` (sorted, fixed dates, modes kept); returns the zip's size."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=ZIP_DATE)
            mode = stat.S_IMODE(path.stat().st_mode)
            info.external_attr = ((mode | 0o444) & 0o755 | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as src:
                zf.writestr(info, src.read(), compresslevel=9)
    tmp.replace(zip_path)
    return zip_path.stat().st_size


def check_limit(unzipped: int, limit: int = LAMBDA_UNZIPPED_LIMIT) -> None:
    if unzipped > limit:
        raise PackagingError(f"function + layer unzipped is {mb(unzipped)}, above Lambda's limit of {mb(limit)}")


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def can_run_here() -> bool:
    import platform

    return (sys.platform == "linux" and platform.machine() == "x86_64"
            and f"{sys.version_info.major}.{sys.version_info.minor}" == PYTHON_VERSION)


def smoke_test(layer_python: Path, function_tree: Path) -> dict:
    """Save a demo model with this environment's MLflow, then, in an interpreter that sees only the function code and
    the layer (no site-packages), load it through the handler and answer a request."""
    sys.path.insert(0, str(REPO / "examples" / "models"))
    import demo_models

    with tempfile.TemporaryDirectory(prefix="ferry-layer-smoke-") as tmp:
        folder = Path(tmp) / "risk-score" / "1"
        demo_models.save("risk-score", 1, str(folder))
        expected = demo_models.build("risk-score", 1).predict(None, demo_models.input_example("risk-score"))
        code = (
            "import json, sys, time\n"
            f"sys.path[:0] = [{str(function_tree)!r}, {str(layer_python)!r}]\n"
            "t = time.perf_counter(); import mlflow.pyfunc, pandas, numpy; imp = time.perf_counter() - t\n"
            "from ferry_runtime.lambda_handler import handler\n"
            "answer = handler(json.loads(sys.argv[1]), None)\n"
            "import mlflow, ferry_runtime\n"
            "assert mlflow.__file__.startswith(" + repr(str(layer_python)) + "), mlflow.__file__\n"
            "assert ferry_runtime.__file__.startswith(" + repr(str(function_tree)) + "), ferry_runtime.__file__\n"
            "print(json.dumps({'answer': answer, 'import_s': imp}))\n")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "FERRY_MODEL_PATH": str(folder),
               "FERRY_MODEL_NAME": "risk-score", "FERRY_MODEL_VERSION": "1", "LANG": "C.UTF-8"}
        python = Path(sys.base_prefix) / "bin" / "python3"
        done = subprocess.run([str(python), "-S", "-E", "-c", code,
                               json.dumps(demo_models.SAMPLE_INPUTS["risk-score"])],
                              env=env, capture_output=True, text=True, timeout=300, cwd=tmp)
        if done.returncode != 0:
            raise PackagingError(f"smoke test of the layer failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if result["answer"].get("predictions") != expected:
            raise PackagingError(f"smoke test answered {result['answer']}, expected predictions {expected}")
        return {"passed": True, "import_mlflow_pandas_numpy_s": round(result["import_s"], 2)}


def precompile(tree: Path) -> None:
    """Write __pycache__/*.pyc for CPython 3.11 (this interpreter must be 3.11). Unchecked-hash pycs stay valid
    whatever the files' dates after unzipping; /opt is read-only on Lambda, so pycs cannot be written there later."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON_VERSION:
        raise PackagingError(f"--compile needs CPython {PYTHON_VERSION} to build with, not {sys.version.split()[0]}")
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                           "unchecked-hash", str(tree)], capture_output=True, text=True)
    if done.returncode != 0:
        # a few vendored files in some wheels are Python 2 or templates; compileall reports them but the rest is written
        print(f"compileall: {len(done.stdout.splitlines())} line(s) of warnings (files it could not compile)")


def build(dist: Path, smoke: bool = True, compile_bytecode: bool = False) -> dict:
    started = time.monotonic()
    work = dist / ".build-runtime"
    if work.exists():
        shutil.rmtree(work)
    layer_python = work / "layer" / "python"
    function_tree = work / "function"
    layer_python.mkdir(parents=True)
    function_tree.mkdir(parents=True)
    requirements = pinned_requirements()
    print(f"pip: {' '.join(requirements)} for {PLATFORM} / CPython {PYTHON_VERSION} (from PyPI)", flush=True)
    constraints = write_constraints(work / "constraints.txt")
    done = subprocess.run(pip_command(layer_python, requirements, constraints), text=True)
    if done.returncode != 0:
        raise PackagingError(f"pip install failed with status {done.returncode}")
    stripped = prune(layer_python)
    copy_runtime(layer_python)
    copy_runtime(function_tree)
    if compile_bytecode:
        precompile(layer_python)

    layer_unzipped = tree_size(work / "layer")
    function_unzipped = tree_size(function_tree)
    check_limit(layer_unzipped + function_unzipped)
    layer_zip = make_zip(work / "layer", dist / LAYER_NAME)
    function_zip = make_zip(function_tree, dist / FUNCTION_NAME)
    report = {
        "handler": HANDLER,
        "runtime": f"python{PYTHON_VERSION}",
        "architecture": "x86_64",
        "platform": PLATFORM,
        "requirements": requirements,
        "bytecode": "precompiled (unchecked-hash)" if compile_bytecode else "stripped",
        "installed": sorted(p.name.removesuffix(".dist-info") for p in layer_python.glob("*.dist-info")),
        "layer": {"path": str(dist / LAYER_NAME), "files": file_count(work / "layer"), "zipped_bytes": layer_zip,
                  "unzipped_bytes": layer_unzipped, "stripped_bytes": stripped},
        "function": {"path": str(dist / FUNCTION_NAME), "files": file_count(function_tree),
                     "zipped_bytes": function_zip, "unzipped_bytes": function_unzipped},
        "unzipped_total_bytes": layer_unzipped + function_unzipped,
        "limit_unzipped_bytes": LAMBDA_UNZIPPED_LIMIT,
        "largest_packages_unzipped_bytes": largest(layer_python),
    }
    if smoke and can_run_here():
        report["smoke_test"] = smoke_test(layer_python, function_tree)
    else:
        report["smoke_test"] = {"passed": None, "why": "skipped (needs Linux x86_64 and CPython 3.11)"}
    shutil.rmtree(work)
    report["build_seconds"] = round(time.monotonic() - started, 1)
    (dist / "ferry-runtime-sizes.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def largest(tree: Path, n: int = 8) -> dict[str, int]:
    sizes = {p.name: tree_size(p) if p.is_dir() else p.stat().st_size
             for p in tree.iterdir() if not p.name.endswith(".dist-info")}
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:n])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=REPO / "dist")
    parser.add_argument("--no-smoke", action="store_true", help="skip loading a model with the built layer")
    parser.add_argument("--compile", action="store_true",
                        help="ship precompiled bytecode (bigger layer, faster imports at cold start)")
    args = parser.parse_args(argv)
    try:
        report = build(args.dist.resolve(), smoke=not args.no_smoke, compile_bytecode=args.compile)
    except PackagingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    layer, function = report["layer"], report["function"]
    print(f"layer     {layer['path']}: {mb(layer['zipped_bytes'])} zipped, {mb(layer['unzipped_bytes'])} unzipped "
          f"({layer['files']} files; {mb(layer['stripped_bytes'])} of tests and caches stripped)")
    print(f"function  {function['path']}: {function['zipped_bytes'] / 1024:.1f} KB zipped, "
          f"{function['unzipped_bytes'] / 1024:.1f} KB unzipped; handler {report['handler']}")
    print(f"total     {mb(report['unzipped_total_bytes'])} unzipped of Lambda's {mb(report['limit_unzipped_bytes'])}")
    print("largest   " + ", ".join(f"{k} {mb(v)}" for k, v in report["largest_packages_unzipped_bytes"].items()))
    smoke = report["smoke_test"]
    print("smoke     " + (f"passed (layer-only interpreter answered a request; importing mlflow.pyfunc, pandas, "
                          f"numpy took {smoke['import_mlflow_pandas_numpy_s']} s)" if smoke["passed"] else smoke["why"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
