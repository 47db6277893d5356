"""The pieces of the layer build that need no network (the pip download itself runs in `make package-runtime`)."""
from __future__ import annotations

import importlib
import sys
import zipfile
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(RUNTIME / "packaging"))
import build_layer  # noqa: E402


def test_handler_named_by_the_package_is_the_lambda_handler():
    module, _, name = build_layer.HANDLER.rpartition(".")
    handler = getattr(importlib.import_module(module), name)
    assert callable(handler)
    assert (build_layer.PACKAGE / "lambda_handler.py").is_file()


def test_requirements_are_skinny_mlflow_pinned_like_the_dev_lock():
    reqs = build_layer.pinned_requirements()
    lock = build_layer.lock_pins()
    assert reqs[0] == f"mlflow-skinny=={lock['mlflow']}" == f"mlflow-skinny=={lock['mlflow-skinny']}"
    assert {r.split("==")[0] for r in reqs} == {"mlflow-skinny", "numpy", "pandas"}
    assert not any(r.startswith("mlflow==") for r in reqs)


def test_constraints_follow_the_lock_except_the_layer_pins(tmp_path):
    text = build_layer.write_constraints(tmp_path / "c.txt").read_text().splitlines()
    assert f"numpy=={build_layer.LAYER_PINS['numpy']}" in text
    assert f"cloudpickle=={build_layer.lock_pins()['cloudpickle']}" in text


def test_pip_targets_lambda_python311_manylinux_wheels_only(tmp_path):
    cmd = build_layer.pip_command(tmp_path, ["numpy==1"], tmp_path / "c.txt")
    joined = " ".join(cmd)
    for flag in ("--target", "--platform manylinux2014_x86_64", "--python-version 3.11", "--only-binary=:all:",
                 "--implementation cp", "--no-compile", "--constraint"):
        assert flag in joined


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
