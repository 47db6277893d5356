"""Test set-up for the runtime: importable without an install step (runtime/ and examples/models/ on sys.path), and
real version folders of the demo's custom models, saved with MLflow and laid out as `ferry sync` lays them out
(<root>/<model>/<version>/ with its .ferry-manifest.json)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[1]
REPO = RUNTIME.parent
MODELS = REPO / "examples" / "models"
for p in (str(RUNTIME), str(MODELS)):
    if p not in sys.path:
        sys.path.insert(0, p)

import demo_models  # noqa: E402
from ferry_runtime import loader, logs, manifest  # noqa: E402

VERSIONS = [("risk-score", 1), ("risk-score", 2), ("readmission", 1)]


@pytest.fixture(scope="session")
def efs_root(tmp_path_factory) -> Path:
    """A models root with risk-score v1 and v2 and readmission v1, each with its manifest."""
    root = tmp_path_factory.mktemp("efs")
    for model, version in VERSIONS:
        folder = root / model / str(version)
        demo_models.save(model, version, str(folder))
        manifest.write_manifest(folder, model, str(version), source=f"s3://test-bucket/{model}/{version}")
    return root


@pytest.fixture
def version_copy(efs_root, tmp_path):
    """A private copy of a version folder (to tamper with), at <tmp>/efs/<model>/<version>."""
    def copy(model: str, version: int) -> Path:
        dest = tmp_path / "efs" / model / str(version)
        shutil.copytree(efs_root / model / str(version), dest)
        return dest
    return copy


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    """Each test starts as a fresh container would: nothing loaded, no FERRY_* settings, logs on stdout."""
    for key in list(os.environ):
        if key.startswith("FERRY_") or key == "AWS_LAMBDA_FUNCTION_NAME":
            monkeypatch.delenv(key)
    loader._reset_for_tests()
    logs.set_stream(None)
    yield
    loader._reset_for_tests()
    logs.set_stream(None)


def expected_predictions(model: str, version: int, frame) -> list:
    """What the model version answers, computed from the demo model's own class, not through the runtime."""
    return demo_models.build(model, version).predict(None, frame)


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(RUNTIME), str(MODELS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def stop_process_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {timeout_s} s:\n{log.read_text()}")
