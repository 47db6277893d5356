"""What a cold start must never do: write bytecode into a frozen version folder, or let an import failure escape the
handler module (Lambda would then answer every invoke with a bare Runtime.ImportModuleError and no error id)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import RUNTIME, child_env, json_lines

LOAD_AND_PREDICT = """
import json, sys
import pandas
from ferry_runtime import loader
loaded = loader.load(sys.argv[1], "risk-score", "1", verify=True)
frame = pandas.DataFrame([[63, 148, 240, 31.5]], columns=["age", "systolic_bp", "cholesterol", "bmi"])
print(json.dumps(list(loaded.model.predict(frame))))
"""


def test_loading_from_a_writable_folder_writes_no_bytecode_into_it(version_copy):
    folder = version_copy("risk-score", 1)
    # Only the runtime on the path: the model's code is imported from its own code/ folder; and nothing sets
    # PYTHONDONTWRITEBYTECODE, as on an EKS image.
    env = {k: v for k, v in child_env().items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(RUNTIME)}
    done = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(folder)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(json.loads(done.stdout.strip().splitlines()[-1])) == 1
    assert (folder / "code").is_dir(), "the demo model carries its code"
    assert not list(folder.rglob("__pycache__")), "bytecode was written into the version folder"
    assert not list(folder.rglob("*.pyc"))


BROKEN_MLFLOW = "raise ImportError(\"cannot import name 'ArgsKwargs' from 'pydantic_core._pydantic_core'\")\n"


def test_an_import_failure_during_init_is_answered_with_an_error_id(efs_root, tmp_path):
    # A layer built for another Python: importing mlflow fails, as pydantic_core's cp311 extension does on 3.13.
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "__init__.py").write_text(BROKEN_MLFLOW)
    script = ("import json\nfrom ferry_runtime import lambda_handler\n"
              "print(json.dumps(lambda_handler.handler({'instances': [{'age': 63}]}, None)))\n")
    env = child_env(AWS_LAMBDA_FUNCTION_NAME="ferry-test", FERRY_MODEL_PATH=str(efs_root / "risk-score" / "1"))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the handler module did not import: {done.stderr[-2000:]}"
    lines = json_lines(done.stdout)
    init = next(line for line in lines if line.get("event") == "model_unavailable")
    assert init["phase"] == "init" and "ArgsKwargs" in init["error"]
    answer = lines[-1]
    assert answer["error_code"] == "MODEL_UNAVAILABLE" and answer["status"] == 500 and answer["error_id"]
