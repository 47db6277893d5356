"""The pieces of the layer build that need no network (the pip download itself runs in `make package-runtime`)."""
from __future__ import annotations

import importlib
import json
import sys
import zipfile
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(RUNTIME / "packaging"))
import build_layer  # noqa: E402


def test_handler_named_by_the_package_is_the_lambda_handler():
    module, _, name = build_layer.target()["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module), name)
    assert callable(handler)
    assert (build_layer.PACKAGE / "lambda_handler.py").is_file()


def test_requirements_are_skinny_mlflow_at_the_dev_locks_exact_versions():
    reqs = build_layer.pinned_requirements()
    lock = build_layer.lock_pins()
    assert reqs == [f"mlflow-skinny=={lock['mlflow-skinny']}", f"numpy=={lock['numpy']}", f"pandas=={lock['pandas']}"]
    assert lock["mlflow"] == lock["mlflow-skinny"]


def test_constraints_are_the_dev_lock(tmp_path):
    text = build_layer.write_constraints(tmp_path / "c.txt").read_text().splitlines()
    lock = build_layer.lock_pins()
    assert text == [f"{n}=={v}" for n, v in sorted(lock.items())]


def test_pip_is_given_every_manylinux_tag_the_targets_glibc_runs(tmp_path):
    target = build_layer.target()
    cmd = build_layer.pip_command(tmp_path, ["numpy==1"], target["runtime"], "arm64", "2.34", tmp_path / "c.txt")
    platforms = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_34_aarch64" and platforms[-1] == "manylinux2014_aarch64"
    assert len(platforms) == 34 - 17 + 1 + 1 and "manylinux_2_28_aarch64" in platforms
    joined = " ".join(cmd)
    for flag in ("--target", f"--python-version {target['runtime'].removeprefix('python')}", "--only-binary=:all:",
                 "--implementation cp", "--no-compile", "--constraint"):
        assert flag in joined


def test_the_target_names_a_python_runtime_and_architectures_lambda_has(tmp_path):
    target = build_layer.target()
    assert target["runtime"] == "python3.13" and set(target["architectures"]) == {"x86_64", "arm64"}
    bad = tmp_path / "t.json"
    bad.write_text('{"runtime": "python3.13", "architectures": ["sparc"], "glibc_max": "2.34"}')
    with pytest.raises(build_layer.PackagingError, match="architectures"):
        build_layer.target(bad)
    bad.write_text('{"runtime": "nodejs22.x", "architectures": ["x86_64"], "glibc_max": "2.34"}')
    with pytest.raises(build_layer.PackagingError, match="not a Lambda Python runtime"):
        build_layer.target(bad)


def elf(machine: int, glibc: bytes) -> bytes:
    head = bytearray(64)
    head[:4], head[4], head[5] = b"\x7fELF", 2, 1
    head[18:20] = machine.to_bytes(2, "little")
    return bytes(head) + b"\x00GLIBC_2.17\x00" + glibc + b"\x00GLIBC_PRIVATE\x00"


def test_binaries_for_another_machine_or_a_newer_glibc_fail_the_build(tmp_path):
    (tmp_path / "ok.so").write_bytes(elf(183, b"GLIBC_2.34"))
    (tmp_path / "script.py").write_text("print(1)")
    facts = build_layer.check_binaries(tmp_path, "arm64", "2.34")
    assert facts == {"elf_files": 1, "elf_machine": 183, "newest_glibc_symbol": "2.34"}
    (tmp_path / "x86.so").write_bytes(elf(62, b"GLIBC_2.28"))
    with pytest.raises(build_layer.PackagingError, match="not for arm64: x86.so"):
        build_layer.check_binaries(tmp_path, "arm64", "2.34")
    (tmp_path / "x86.so").unlink()
    (tmp_path / "new.so").write_bytes(elf(183, b"GLIBC_2.38"))
    with pytest.raises(build_layer.PackagingError, match="newer than 2.34: new.so"):
        build_layer.check_binaries(tmp_path, "arm64", "2.34")


def test_the_built_layers_hold_the_locks_versions_for_each_architecture_with_bytecode():
    """dist/ as `make package-runtime` (a prerequisite of make test) left it."""
    report = json.loads((build_layer.REPO / "dist" / build_layer.REPORT_NAME).read_text())
    lock = build_layer.lock_pins()
    assert report["runtime"] == build_layer.target()["runtime"]
    for name in ("mlflow-skinny", "numpy", "pandas", "cloudpickle"):
        assert report["packages"][name] == lock[name]
    for arch, layer in report["layers"].items():
        assert layer["elf_files"] > 0 and layer["elf_machine"] == build_layer.ELF_MACHINE[arch]
        assert layer["unzipped_bytes"] + report["function"]["unzipped_bytes"] <= build_layer.LAMBDA_UNZIPPED_LIMIT
        names = zipfile.ZipFile(build_layer.REPO / layer["path"]).namelist()
        minor = report["runtime"].removeprefix("python").replace(".", "")
        assert f"python/mlflow/pyfunc/__pycache__/__init__.cpython-{minor}.pyc" in names
        assert "python/ferry_runtime/lambda_handler.py" in names


def test_prune_strips_tests_caches_and_scripts_but_keeps_code(tmp_path):
    files = ["pandas/core/frame.py", "pandas/tests/test_x.py", "numpy/_core/tests/data/a.npy",
             "numpy/testing/__init__.py", "mlflow/__pycache__/x.cpython-311.pyc", "mlflow/pyfunc/__init__.py",
             "stray.pyc", "bin/mlflow", "pandas-2.3.2.dist-info/METADATA"]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"12345")
    removed = build_layer.prune(tmp_path)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["mlflow/pyfunc/__init__.py", "numpy/testing/__init__.py", "pandas-2.3.2.dist-info/METADATA",
                    "pandas/core/frame.py"]
    assert removed == 5 * 5


def test_runtime_copy_and_zip_lay_out_python_folder_deterministically(tmp_path):
    tree = tmp_path / "layer"
    build_layer.copy_runtime(tree / "python")
    first = build_layer.make_zip(tree, tmp_path / "a.zip")
    second = build_layer.make_zip(tree, tmp_path / "b.zip")
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert "python/ferry_runtime/lambda_handler.py" in names and "python/ferry_runtime/__init__.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert first == second and (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_size_above_lambda_limit_fails_the_build():
    build_layer.check_limit(250 * 1024 * 1024)
    with pytest.raises(build_layer.PackagingError, match="above Lambda's limit of 250.0 MB"):
        build_layer.check_limit(250 * 1024 * 1024 + 1)
