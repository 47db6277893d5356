"""A Lambda runtime name (`python3.13`) -> this machine's CPython of that minor (tools/find-python, the one rule the
Makefile and the layer build use too) and the runtime interface client installed for it.

On Lambda the runtime interface client lives in /var/runtime, outside the function's code and layers; here it is
installed once per Python minor from PyPI, at the version requirements/lambda-runtime.txt pins, into
<state>/runtimes/<runtime>/ and mounted at /var/runtime.
"""
from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIND_PYTHON = ROOT / "tools" / "find-python"
RIC_LOCK = ROOT / "requirements" / "lambda-runtime.txt"
PYTHON_RUNTIME = re.compile(r"python3\.\d+")


class RuntimeUnavailable(Exception):
    pass


class Interpreters:
    def __init__(self, state: Path):
        self.root = state / "runtimes"
        self._lock = threading.Lock()
        self._pythons: dict[str, str] = {}

    def python(self, runtime: str) -> str:
        if not PYTHON_RUNTIME.fullmatch(runtime or ""):
            raise RuntimeUnavailable(f"runtime {runtime!r} is not a Python runtime this executor can run")
        with self._lock:
            if runtime not in self._pythons:
                done = subprocess.run([str(FIND_PYTHON), runtime], capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeUnavailable(done.stderr.strip())
                self._pythons[runtime] = done.stdout.strip()
            return self._pythons[runtime]

    def runtime_dir(self, runtime: str) -> Path:
        """/var/runtime for this runtime: awslambdaric and its dependencies, installed on first use."""
        python = self.python(runtime)
        dest = self.root / runtime
        with self._lock:
            if (dest / ".installed").exists():
                return dest
            tmp = dest.with_name(f".tmp-{runtime}")
            subprocess.run(["rm", "-rf", str(tmp)], check=True)
            done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                   "--no-deps", "--only-binary=:all:", "--target", str(tmp), "-r", str(RIC_LOCK)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeUnavailable(f"installing the runtime interface client for {runtime} failed: "
                                         f"{done.stderr.strip()[-2000:]}")
            subprocess.run(["rm", "-rf", str(dest)], check=True)
            tmp.rename(dest)
            (dest / ".installed").write_text(RIC_LOCK.read_text())
            return dest
