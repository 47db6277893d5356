"""pytest fixtures shared by the Python tests: the local stand-ins (moto + MLflow), started by tools/standins.py on
free ports for the test session and stopped by PID afterwards, even when a test fails."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import standins  # noqa: E402


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """moto + MLflow for the session; yields the Standins (URLs, PIDs, `.env()`)."""
    st = standins.up(tmp_path_factory.mktemp("standins"), with_mlflow=True, parent_pid=os.getpid())
    try:
        yield st
    finally:
        standins.stop_groups(st.pids)


@pytest.fixture
def ferry_bin() -> Path:
    path = ROOT / "target" / "debug" / "ferry"
    if not path.exists():
        pytest.fail(f"{path} is missing: `cargo build -p ferry` first (make test does)")
    return path
