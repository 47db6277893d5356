"""Loads a model version from its local folder with `mlflow.pyfunc.load_model`, once per process per folder, and
keeps it. Loading reads only local files: no registry, no S3, no network.

Concurrent first requests for one folder wait for the one load in progress instead of loading again; a failed
load is not kept, so the next request tries again (and fails again, with the same clear reason, if the folder is
still wrong).

No bytecode is ever written: a version folder is frozen, and verified file by file against its manifest, so a
`code/__pycache__/` written while loading its code would make it fail verification (on Lambda the mount is read-only
anyway; on the EKS service and locally it is not)."""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import logs, manifest

TMP_PREFIX = ".ferry-tmp-"
sys.dont_write_bytecode = True  # for every import from here on, the model's own code among them
# Serving makes no network call: MLflow's usage telemetry (started when mlflow is imported) stays off unless the
# function's environment says otherwise. In a VPC without a route out it would only wait and fail.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


class ModelLoadError(Exception):
    """The version folder cannot be served: missing, a sync in progress, failing its manifest, or not loadable."""


@dataclass
class LoadedModel:
    name: str
    version: str
    path: str
    model: Any                      # mlflow.pyfunc.PyFuncModel
    input_schema: Any = None        # mlflow.types.Schema or None
    digest: str | None = None       # the verified artifact digest, when the manifest was checked
    load_ms: float = 0.0            # mlflow.pyfunc.load_model alone (no import, no manifest check)
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict:
        return {"model": self.name, "version": self.version, "path": self.path, "digest": self.digest,
                "load_ms": round(self.load_ms, 1)}


_cache: dict[str, LoadedModel] = {}
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def load(path: str | os.PathLike, name: str, version: str, verify: bool = False,
         expected_digest: str = "") -> LoadedModel:
    """The model in `path`, loaded on the first call for that folder and kept for the life of the process."""
    key = os.path.realpath(path)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        loaded = _load_uncached(Path(path), key, name, str(version), verify, expected_digest)
        _cache[key] = loaded
        return loaded


def loaded_models() -> list[LoadedModel]:
    return list(_cache.values())


def is_loaded(path: str | os.PathLike) -> bool:
    return os.path.realpath(path) in _cache


def _load_uncached(path: Path, key: str, name: str, version: str, verify: bool, expected_digest: str) -> LoadedModel:
    started = time.perf_counter()
    if path.name.startswith(TMP_PREFIX):
        raise ModelLoadError(f"{path}: a sync in progress (a {TMP_PREFIX}* folder) is never served")
    if not path.is_dir():
        raise ModelLoadError(f"{path}: no such version folder")
    if not (path / "MLmodel").is_file():
        raise ModelLoadError(f"{path}: no MLmodel file; not an MLflow model folder")
    digest = None
    if verify:
        try:
            digest = manifest.verify(path, expected_digest or None, model=name or None, version=version or None)["digest"]
        except manifest.ManifestError as err:
            raise ModelLoadError(f"refusing to load: {err}") from None
        except OSError as err:  # a file it may not read, an I/O error of the file system
            raise ModelLoadError(f"{path}: cannot read the version folder: {err}") from err
    verified_ms = (time.perf_counter() - started) * 1000

    t_import = time.perf_counter()
    try:
        import mlflow.pyfunc  # imported here so that importing ferry_runtime stays cheap
    except Exception as err:  # a layer built for another Python or machine fails here, not in the handler import
        raise ModelLoadError(f"cannot import mlflow.pyfunc ({type(err).__name__}: {err}): the runtime layer does "
                             f"not match this Python {sys.version.split()[0]}") from err

    import_ms = (time.perf_counter() - t_import) * 1000
    t_load = time.perf_counter()
    mismatches = environment_mismatches(path)
    try:
        # MLflow's own dependency check scans the metadata of every installed distribution (~0.7 s, most of a
        # cold load); environment_mismatches above checks the same pins directly and logs them as one line.
        model = mlflow.pyfunc.load_model(key, suppress_warnings=True)
    except Exception as err:  # MLflow raises many kinds; the reason is what matters to the operator
        raise ModelLoadError(f"{path}: mlflow.pyfunc.load_model failed: {type(err).__name__}: {err}") from err
    try:
        schema = model.metadata.get_input_schema()
    except Exception:
        schema = None
    load_ms = (time.perf_counter() - t_load) * 1000
    if mismatches:
        logs.log("WARNING", "model_environment_mismatch", model=name, version=version, path=str(path),
                 mismatches=mismatches)
    logs.info("model_loaded", model=name, version=version, path=str(path), digest=digest, verified=verify,
              verify_ms=round(verified_ms, 2), import_ms=round(import_ms, 2), load_ms=round(load_ms, 2),
              total_ms=round((time.perf_counter() - started) * 1000, 2), pid=os.getpid())
    return LoadedModel(name=name, version=version, path=str(path), model=model, input_schema=schema,
                       digest=digest, load_ms=load_ms)


def environment_mismatches(path: Path) -> list[str]:
    """Where this process differs from the environment the model was saved with: each `name==version` pin of its
    requirements.txt against the installed distribution, and the Python version of its MLmodel. Read-only, local,
    a few milliseconds; a difference is reported, not refused (the deploy's smoke test is the judge)."""
    import platform
    from importlib import metadata

    found = []
    try:
        lines = (path / "requirements.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        req = line.split("#", 1)[0].split(";", 1)[0].strip()
        name, sep, pinned = req.partition("==")
        name = name.split("[", 1)[0].strip()
        if not sep or not name:
            continue
        candidates = [name, "mlflow-skinny"] if name.lower() == "mlflow" else [name]
        installed = None
        for candidate in candidates:
            try:
                installed = metadata.version(candidate)
                break
            except metadata.PackageNotFoundError:
                continue
        if installed != pinned.strip():
            found.append(f"{name}=={pinned.strip()} (installed: {installed or 'none'})")
    try:
        import yaml

        conf = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8")) or {}
        saved_py = str(conf.get("flavors", {}).get("python_function", {}).get("python_version", ""))
    except Exception:
        saved_py = ""
    running = platform.python_version()
    if saved_py and saved_py.split(".")[:2] != running.split(".")[:2]:
        found.append(f"python {saved_py} (running: {running})")
    return found


def _reset_for_tests() -> None:
    with _guard:
        _cache.clear()
        _locks.clear()
