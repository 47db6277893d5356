"""Runtime versions and runtime management, per function version, as on Lambda (moto 5.2.5 has neither).

Lambda (developer guide, "Lambda runtime updates" and "Runtime management controls"; API reference,
GetRuntimeManagementConfig, PutRuntimeManagementConfig, RuntimeVersionConfig):
  - a managed runtime (`python3.x`) is published as runtime versions, each with an ARN
    `arn:aws:lambda:<region>::runtime:<id>` that differs between regions; a function version's configuration shows
    the one it runs as `RuntimeVersionConfig.RuntimeVersionArn`;
  - each version (`$LATEST` or a published number) has its own runtime management configuration, `UpdateRuntimeOn`:
    `Auto` (the default: Lambda moves it to each new runtime version), `FunctionUpdate` (on the function's next
    update) or `Manual` (the version keeps the `RuntimeVersionArn` given, "indefinitely");
  - `GetRuntimeManagementConfig` answers `UpdateRuntimeOn`, the qualified `FunctionArn`, and `RuntimeVersionArn`
    only in Manual mode; `PutRuntimeManagementConfig` needs the ARN in Manual mode; an unknown function or version is
    404 `ResourceNotFoundException`.
Not documented, and chosen here: a newly published version starts with `$LATEST`'s mode and runtime version (Ferry
sets the mode of every version it publishes, so it is correct either way); an ARN with another runtime's or region's
runtime version is `InvalidParameterValueException`.

`POST /ferry-lambda/runtime-release {"runtime": "<runtime identifier>"}` releases a new runtime version, as Lambda
does every few weeks: every version in Auto mode moves to it at once (Lambda's two-phase rollout takes days),
FunctionUpdate ones at their next update, Manual ones never.
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass

from .answers import Answer, error_answer, json_answer

Key = tuple[str, str]   # (region, function name)
MODES = ("Auto", "FunctionUpdate", "Manual")
ARN_PATTERN = re.compile(r"^arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\d{1}::runtime:.+$")


def runtime_version_arn(region: str, runtime: str, release: int) -> str:
    digest = hashlib.sha256(f"{region}/{runtime}/{release}".encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"


@dataclass
class VersionRuntime:
    runtime: str
    mode: str
    arn: str        # the runtime version it runs (in Manual mode, the pinned one)


class Runtimes:
    def __init__(self):
        self._releases: dict[str, int] = {}
        self._versions: dict[tuple[Key, str], VersionRuntime] = {}
        self._lock = threading.Lock()

    def _current(self, region: str, runtime: str) -> str:
        return runtime_version_arn(region, runtime, self._releases.get(runtime, 1))

    def _of(self, key: Key, qualifier: str, runtime: str) -> VersionRuntime:
        state = self._versions.get((key, qualifier))
        if state is None or state.runtime != runtime:   # a runtime changed by UpdateFunctionConfiguration
            state = VersionRuntime(runtime, "Auto", self._current(key[0], runtime))
            self._versions[(key, qualifier)] = state
        return state

    # ---- what the control plane tells it ----------------------------------------------------------------------
    def published(self, key: Key, version: str, runtime: str | None) -> None:
        if not runtime:
            return
        with self._lock:
            latest = self._of(key, "$LATEST", runtime)
            self._versions[(key, version)] = VersionRuntime(runtime, latest.mode, latest.arn)

    def updated(self, key: Key, runtime: str | None) -> None:
        """`$LATEST` was updated: Auto and FunctionUpdate take the current runtime version."""
        if not runtime:
            return
        with self._lock:
            latest = self._of(key, "$LATEST", runtime)
            if latest.mode != "Manual":
                latest.arn = self._current(key[0], runtime)

    def release(self, runtime: str) -> int:
        """A new runtime version of `runtime`: every version in Auto mode runs it now."""
        with self._lock:
            self._releases[runtime] = release = self._releases.get(runtime, 1) + 1
            for (key, _), state in self._versions.items():
                if state.runtime == runtime and state.mode == "Auto":
                    state.arn = runtime_version_arn(key[0], runtime, release)
            return release

    def forget_function(self, key: Key) -> None:
        with self._lock:
            self._versions = {k: v for k, v in self._versions.items() if k[0] != key}

    def reset(self) -> None:
        with self._lock:
            self._versions.clear()
            self._releases.clear()

    # ---- answers ----------------------------------------------------------------------------------------------
    def show_config(self, key: Key, config: dict) -> None:
        """A FunctionConfiguration with the runtime version its version runs (none for a container image)."""
        runtime = config.get("Runtime")
        if not runtime:
            return
        with self._lock:
            state = self._of(key, str(config.get("Version") or "$LATEST"), runtime)
            config["RuntimeVersionConfig"] = {"RuntimeVersionArn": state.arn}

    def get(self, key: Key, qualifier: str, function_arn: str, runtime: str) -> Answer:
        with self._lock:
            state = self._of(key, qualifier, runtime)
            return json_answer(200, self._config(state, function_arn))

    def put(self, key: Key, qualifier: str, function_arn: str, runtime: str, doc: dict) -> Answer:
        mode, arn = doc.get("UpdateRuntimeOn"), doc.get("RuntimeVersionArn")
        if mode not in MODES:
            return error_answer(400, "ValidationException",
                                f"1 validation error detected: Value '{mode}' at 'updateRuntimeOn' failed to satisfy "
                                f"constraint: Member must satisfy enum value set: [{', '.join(MODES)}]")
        if arn is not None and not ARN_PATTERN.match(str(arn)):
            return error_answer(400, "ValidationException",
                                f"1 validation error detected: Value '{arn}' at 'runtimeVersionArn' failed to satisfy "
                                f"constraint: Member must satisfy regular expression pattern: {ARN_PATTERN.pattern}")
        if mode == "Manual" and not arn:
            return error_answer(400, "InvalidParameterValueException",
                                "RuntimeVersionArn is required when UpdateRuntimeOn is Manual.")
        with self._lock:
            released = range(1, self._releases.get(runtime, 1) + 1)
            if arn and arn not in {runtime_version_arn(key[0], runtime, r) for r in released}:
                return error_answer(400, "InvalidParameterValueException",
                                    f"The runtime version {arn} is not a version of runtime {runtime} in {key[0]}.")
            state = self._of(key, qualifier, runtime)
            state.mode = mode
            if mode == "Manual":
                state.arn = arn
            elif mode == "Auto":
                state.arn = self._current(key[0], runtime)
            # Put answers as Get does: RuntimeVersionArn "if the runtime update mode is Manual, ... otherwise null".
            return json_answer(200, self._config(state, function_arn))

    @staticmethod
    def _config(state: VersionRuntime, function_arn: str) -> dict:
        doc = {"FunctionArn": function_arn, "UpdateRuntimeOn": state.mode}
        if state.mode == "Manual":
            doc["RuntimeVersionArn"] = state.arn
        return doc


def not_found(function_arn: str) -> Answer:
    return error_answer(404, "ResourceNotFoundException", f"Function not found: {function_arn}")
