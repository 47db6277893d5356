#!/usr/bin/env python3
"""Builds the Lambda artifacts of the runtime into dist/ for the one runtime target that
runtime/lambda-target.json names (`make package-runtime`):

    dist/ferry-runtime-function.zip          the function code: ferry_runtime alone (a few KB); handler
                                             `ferry_runtime.lambda_handler.handler`
    dist/ferry-runtime-layer-<arch>.zip      one Lambda layer per architecture (x86_64, arm64): python/ with
                                             mlflow-skinny, numpy, pandas and their dependencies, and ferry_runtime
    dist/ferry-runtime-layer.json            what was built: runtime, the exact package versions, per layer its
                                             files, sizes, SHA-256, ELF machine and newest glibc symbol

Dependencies come from PyPI through pip, at the dev lock's exact versions (requirements/dev.txt: the layer runs what
the tests and the models' training ran), as manylinux wheels no newer than the target's glibc (Amazon Linux 2023:
2.34). pip does not widen one `--platform` tag to older ones, so every tag from manylinux_2_<glibc> down to
manylinux_2_17 and manylinux2014 is passed. tests/ folders, caches and console scripts are stripped; the code is then
compiled to bytecode by the target's own CPython (unchecked-hash pycs: /opt is read-only on Lambda, so without them
every cold start compiles ~1,600 modules again). The build fails when function + layer exceed Lambda's 250 MB
unzipped limit, when an extension module is for another machine, or when it needs a newer glibc than the target.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1]
REPO = RUNTIME.parent
PACKAGE = RUNTIME / "ferry_runtime"
TARGET_FILE = RUNTIME / "lambda-target.json"
FIND_PYTHON = REPO / "tools" / "find-python"
REQUIREMENTS = ["mlflow-skinny", "numpy", "pandas"]
LOCK = REPO / "requirements" / "dev.txt"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024      # function + all layers, unzipped
LAMBDA_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # a zip above this is published from S3
FUNCTION_NAME = "ferry-runtime-function.zip"
LAYER_ZIP_PATTERN = "ferry-runtime-layer-{arch}.zip"
REPORT_NAME = "ferry-runtime-layer.json"
OLDEST_MANYLINUX = 17                          # manylinux_2_17 == manylinux2014
# Lambda's architecture names, and what wheels and ELF headers call them (e_machine: EM_X86_64, EM_AARCH64).
WHEEL_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
STRIP_DIRS = {"tests", "__pycache__"}
STRIP_SUFFIXES = (".pyc", ".pyo")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)               # fixed: the same inputs give the same zip
GLIBC_SYMBOL = re.compile(rb"GLIBC_2\.(\d+)(?:\.\d+)?\x00")


class PackagingError(Exception):
    pass


def target(path: Path = TARGET_FILE) -> dict:
    """The runtime target: {"runtime": "python3.13", "architectures": [...], "glibc_max": "2.34", ...}."""
    try:
        doc = json.loads(path.read_text())
        runtime, archs, glibc = doc["runtime"], doc["architectures"], doc["glibc_max"]
    except (OSError, ValueError, KeyError) as err:
        raise PackagingError(f"{path}: not a runtime target ({type(err).__name__}: {err})") from None
    if not re.fullmatch(r"python3\.\d+", runtime):
        raise PackagingError(f"{path}: runtime = {runtime!r} is not a Lambda Python runtime like python3.13")
    unknown = [a for a in archs if a not in WHEEL_ARCH]
    if not archs or unknown:
        raise PackagingError(f"{path}: architectures = {archs!r}; each must be one of {sorted(WHEEL_ARCH)}")
    if not re.fullmatch(r"2\.\d+", glibc):
        raise PackagingError(f"{path}: glibc_max = {glibc!r} is not a glibc version like 2.34")
    return doc


def python_minor(runtime: str) -> str:
    return runtime.removeprefix("python")


def find_python(runtime: str) -> str:
    done = subprocess.run([str(FIND_PYTHON), runtime], capture_output=True, text=True)
    if done.returncode != 0:
        raise PackagingError(done.stderr.strip() or f"no interpreter for {runtime}")
    return done.stdout.strip()


def manylinux_tags(arch: str, glibc_max: str) -> list[str]:
    """Every platform tag a wheel for this architecture may carry and still run on glibc `glibc_max`."""
    machine = WHEEL_ARCH[arch]
    newest = int(glibc_max.split(".")[1])
    return [f"manylinux_2_{n}_{machine}" for n in range(newest, OLDEST_MANYLINUX - 1, -1)] + [f"manylinux2014_{machine}"]


def lock_pins(lock: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[name.lower().replace("_", "-")] = version.split(";")[0].strip()
    return pins


def pinned_requirements(lock: Path = LOCK, names: list[str] = REQUIREMENTS) -> list[str]:
    """`name==version` for each requirement, exactly as the dev lock pins it."""
    pins = lock_pins(lock)
    missing = [n for n in names if n not in pins]
    if missing:
        raise PackagingError(f"{lock}: no pinned version of {', '.join(missing)}")
    return [f"{n}=={pins[n]}" for n in names]


def write_constraints(dest: Path, lock: Path = LOCK) -> Path:
    """The dev lock as pip constraints: every dependency the layer pulls in is at the lock's version."""
    dest.write_text("".join(f"{name}=={version}\n" for name, version in sorted(lock_pins(lock).items())))
    return dest


def pip_command(target_dir: Path, requirements: list[str], runtime: str, arch: str, glibc_max: str,
                constraints: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--target", str(target_dir), "--implementation", "cp", "--python-version", python_minor(runtime),
           "--only-binary=:all:", "--upgrade"]
    for tag in manylinux_tags(arch, glibc_max):
        cmd += ["--platform", tag]
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


def installed_packages(site: Path) -> dict[str, str]:
    """name → version of every distribution pip installed into `site` (from its .dist-info folders)."""
    found = {}
    for info in site.glob("*.dist-info"):
        meta = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
        name = re.search(r"^Name: (.+)$", meta, re.M)
        version = re.search(r"^Version: (.+)$", meta, re.M)
        if name and version:
            found[name.group(1).strip().lower().replace("_", "-")] = version.group(1).strip()
    return dict(sorted(found.items()))


def elf_facts(path: Path) -> tuple[int, int] | None:
    """(e_machine, newest GLIBC_2.N minor it needs) of an ELF file, or None when it is not ELF."""
    with open(path, "rb") as f:
        head = f.read(20)
        if head[:4] != b"\x7fELF":
            return None
        order = "little" if head[5] == 1 else "big"
        machine = int.from_bytes(head[18:20], order)
        f.seek(0)
        needed = [int(m.group(1)) for m in GLIBC_SYMBOL.finditer(f.read())]
    return machine, max(needed, default=0)


def check_binaries(tree: Path, arch: str, glibc_max: str) -> dict:
    """Every ELF file must be for `arch` and need no glibc newer than `glibc_max`."""
    want_machine, limit = ELF_MACHINE[arch], int(glibc_max.split(".")[1])
    count, newest, wrong, too_new = 0, 0, [], []
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        facts = elf_facts(path)
        if facts is None:
            continue
        count += 1
        machine, glibc = facts
        newest = max(newest, glibc)
        rel = path.relative_to(tree).as_posix()
        if machine != want_machine:
            wrong.append(f"{rel} (e_machine {machine})")
        if glibc > limit:
            too_new.append(f"{rel} (GLIBC_2.{glibc})")
    if wrong:
        raise PackagingError(f"{len(wrong)} ELF file(s) are not for {arch}: {', '.join(wrong[:5])}")
    if too_new:
        raise PackagingError(f"{len(too_new)} ELF file(s) need a glibc newer than {glibc_max}: {', '.join(too_new[:5])}")
    return {"elf_files": count, "elf_machine": want_machine, "newest_glibc_symbol": f"2.{newest}" if count else None}


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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_limit(unzipped: int, limit: int = LAMBDA_UNZIPPED_LIMIT) -> None:
    if unzipped > limit:
        raise PackagingError(f"function + layer unzipped is {mb(unzipped)}, above Lambda's limit of {mb(limit)}")


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def precompile(tree: Path, python: str) -> None:
    """Write __pycache__/*.pyc with the target's own CPython. Unchecked-hash pycs stay valid whatever the files'
    dates after unzipping; /opt is read-only on Lambda, so pycs cannot be written there later."""
    done = subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                           str(tree)], capture_output=True, text=True)
    if done.returncode != 0:
        # a few vendored files in some wheels are Python 2 or templates; compileall reports them, the rest is written
        print(f"compileall: {len(done.stdout.splitlines())} line(s) of warnings (files it could not compile)")


def build_layer(work: Path, dist: Path, tgt: dict, arch: str, constraints: Path, compile_with: str | None) -> dict:
    layer_python = work / f"layer-{arch}" / "python"
    layer_python.mkdir(parents=True)
    requirements = pinned_requirements()
    tags = manylinux_tags(arch, tgt["glibc_max"])
    print(f"pip: {' '.join(requirements)} for {tgt['runtime']} {arch} ({tags[0]} .. {tags[-1]})", flush=True)
    done = subprocess.run(pip_command(layer_python, requirements, tgt["runtime"], arch, tgt["glibc_max"],
                                      constraints), text=True)
    if done.returncode != 0:
        raise PackagingError(f"pip install for {arch} failed with status {done.returncode}")
    stripped = prune(layer_python)
    binaries = check_binaries(layer_python, arch, tgt["glibc_max"])
    packages = installed_packages(layer_python)
    copy_runtime(layer_python)
    if compile_with:
        precompile(layer_python, compile_with)
    zip_path = dist / LAYER_ZIP_PATTERN.format(arch=arch)
    zipped = make_zip(layer_python.parent, zip_path)
    return {"path": str(zip_path.relative_to(REPO)) if zip_path.is_relative_to(REPO) else str(zip_path),
            "architecture": arch, "platform_tags": [tags[0], tags[-1]], "files": file_count(layer_python),
            "zipped_bytes": zipped, "unzipped_bytes": tree_size(layer_python.parent), "stripped_bytes": stripped,
            "sha256": sha256_file(zip_path), "publish_from_s3": zipped > LAMBDA_DIRECT_UPLOAD_LIMIT,
            "packages": packages, "largest_packages_unzipped_bytes": largest(layer_python), **binaries}


def build(dist: Path, architectures: list[str] | None = None, compile_bytecode: bool = True) -> dict:
    started = time.monotonic()
    tgt = target()
    archs = architectures or tgt["architectures"]
    unknown = [a for a in archs if a not in tgt["architectures"]]
    if unknown:
        raise PackagingError(f"architecture {', '.join(unknown)} is not in {TARGET_FILE.name} ({tgt['architectures']})")
    compile_with = find_python(tgt["runtime"]) if compile_bytecode else None
    work = dist / ".build-runtime"
    if work.exists():
        shutil.rmtree(work)
    function_tree = work / "function"
    function_tree.mkdir(parents=True)
    copy_runtime(function_tree)
    constraints = write_constraints(work / "constraints.txt")
    layers = {arch: build_layer(work, dist, tgt, arch, constraints, compile_with) for arch in archs}
    function_unzipped = tree_size(function_tree)
    for layer in layers.values():
        check_limit(layer["unzipped_bytes"] + function_unzipped)
    function_zip = make_zip(function_tree, dist / FUNCTION_NAME)
    first = layers[archs[0]]["packages"]
    report = {
        "runtime": tgt["runtime"],
        "architectures": archs,
        "handler": tgt["handler"],
        "requirements": pinned_requirements(),
        "bytecode": f"precompiled by {compile_with} (unchecked-hash)" if compile_with else "none (--no-compile)",
        "packages": first,
        "layers": layers,
        "function": {"path": str((dist / FUNCTION_NAME).relative_to(REPO)) if dist.is_relative_to(REPO)
                     else str(dist / FUNCTION_NAME), "files": file_count(function_tree),
                     "zipped_bytes": function_zip, "unzipped_bytes": function_unzipped,
                     "sha256": sha256_file(dist / FUNCTION_NAME)},
        "limit_unzipped_bytes": LAMBDA_UNZIPPED_LIMIT,
    }
    differing = [a for a in archs if layers[a]["packages"] != first]
    if differing:
        raise PackagingError(f"the layers for {', '.join(differing)} hold other package versions than {archs[0]}'s")
    shutil.rmtree(work)
    report["build_seconds"] = round(time.monotonic() - started, 1)
    (dist / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    return report


def largest(tree: Path, n: int = 6) -> dict[str, int]:
    sizes = {p.name: tree_size(p) if p.is_dir() else p.stat().st_size
             for p in tree.iterdir() if not p.name.endswith(".dist-info")}
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:n])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=REPO / "dist")
    parser.add_argument("--arch", action="append", choices=sorted(WHEEL_ARCH),
                        help="build only this architecture (repeatable; default: every one the target names)")
    parser.add_argument("--no-compile", action="store_true",
                        help="ship no bytecode (smaller layer; every cold start compiles the imports again)")
    args = parser.parse_args(argv)
    try:
        report = build(args.dist.resolve(), architectures=args.arch, compile_bytecode=not args.no_compile)
    except PackagingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    function = report["function"]
    for arch, layer in report["layers"].items():
        print(f"layer     {layer['path']}: {mb(layer['zipped_bytes'])} zipped, {mb(layer['unzipped_bytes'])} "
              f"unzipped ({layer['files']} files; {layer['elf_files']} ELF files for {arch}, newest glibc symbol "
              f"{layer['newest_glibc_symbol']}){'; above 50 MB: publish it from S3' if layer['publish_from_s3'] else ''}")
    print(f"function  {function['path']}: {function['zipped_bytes'] / 1024:.1f} KB zipped; handler {report['handler']}")
    print(f"runtime   {report['runtime']}; {report['bytecode']}; " +
          ", ".join(f"{n} {report['packages'][n]}" for n in ("mlflow-skinny", "numpy", "pandas", "cloudpickle")
                    if n in report["packages"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
