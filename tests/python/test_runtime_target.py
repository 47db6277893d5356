"""One runtime target, stated once (runtime/lambda-target.json), followed by everything that builds or runs Python
for the functions: the development environment that trains the models, the layer build, the local platform.
(Terraform's defaults are held to it by terraform/tests/test_runtime_target.py.)"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import local_platform  # tools/, on sys.path through this folder's conftest.py

ROOT = Path(__file__).resolve().parents[2]
TARGET = json.loads((ROOT / "runtime" / "lambda-target.json").read_text())
sys.path.insert(0, str(ROOT / "runtime" / "packaging"))
import build_layer  # noqa: E402


def test_the_development_environment_runs_the_functions_python():
    # Models trained and registered here (the demo, the tests) are saved with this Python: it must be the runtime's.
    assert f"python{sys.version_info.major}.{sys.version_info.minor}" == TARGET["runtime"], sys.executable


def test_the_makefile_and_ci_take_the_runtime_from_the_target_file():
    make = subprocess.run(["make", "-s", "-C", str(ROOT), "-p", "-n", "help"], capture_output=True, text=True).stdout
    assert re.search(rf"^TARGET_RUNTIME := {re.escape(TARGET['runtime'])}$", make, re.M), "Makefile's TARGET_RUNTIME"
    assert "runtime/lambda-target.json" in (ROOT / ".ci" / "run").read_text()


def test_the_layer_build_and_the_local_platform_follow_the_target():
    assert build_layer.target() == TARGET
    assert local_platform.TARGET == TARGET
    assert local_platform.ARCHITECTURE in TARGET["architectures"]


def test_no_other_python_runtime_is_named_where_functions_are_built_or_run():
    allowed = {ROOT / "tests" / "python" / "test_lambda_local.py"}  # runs another runtime on purpose
    pattern = re.compile(r"python3\.(?!" + re.escape(TARGET["runtime"].removeprefix("python3.")) + r"\b)\d+")
    offenders = []
    for folder in ("tools", "runtime", "examples", "templates", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".toml", ".json", ".hbs", ".yml", ".yaml", ".mk", ""} \
                    and path not in allowed and "__pycache__" not in path.parts:
                text = path.read_text(errors="replace")
                offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert not offenders, offenders
