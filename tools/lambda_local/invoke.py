"""One `Invoke` (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): resolve the function and qualifier
through moto (an alias's routing weights included), find the version's code and layers in the code store, take a warm
environment of that exact configuration or start one, run the invocation, answer as Lambda answers.

Answers: 200 with the payload; for a function error (raised, init failure, crash, timeout) also 200 with
`X-Amz-Function-Error: Unhandled` and Lambda's error object; `X-Amz-Executed-Version`; with `X-Amz-Log-Type: Tail`,
the last 4 KB of the invocation's log in `X-Amz-Log-Result`. `Event` invocations answer 202 and run in the
background, `DryRun` 204. Requests and answers above 6 MB are refused as Lambda refuses them.
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable

from standins import host_architecture

from . import operations, sandbox
from .answers import Answer, error_answer
from .code_store import CodeNotFound, CodeStore
from .environment import LOG_TAIL_BYTES, Config, Environment
from .interpreters import Interpreters, RuntimeUnavailable

# Synchronous invocation payloads, request and response, are limited to 6 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
PAYLOAD_LIMIT = 6 * 1024 * 1024
MAX_ENVIRONMENTS = 16     # all functions together; the least recently used idle one is stopped beyond it
HOST_ARCHITECTURE = host_architecture()


MotoGet = Callable[[str], tuple[int, bytes]]


def split_function(name: str, qualifier: str | None) -> tuple[str, str | None]:
    """FunctionName may be a name, `name:qualifier`, or a full or partial ARN (with or without a qualifier)."""
    fn, qual = operations.split_function(name)
    return fn, qualifier or qual


class Invoker:
    def __init__(self, state: Path, moto_get: MotoGet, store: CodeStore):
        self.state = state
        self.moto_get = moto_get
        self.store = store
        self.interpreters = Interpreters(state)
        self.mounts: dict[str, Path] = {}            # access point ARN -> local folder
        self.file_systems: dict[str, list[dict]] = {}  # function name -> FileSystemConfigs as last sent
        self._pool: list[Environment] = []
        self._lock = threading.Lock()
        # A published version and a layer version never change: their configurations are read from moto once.
        # $LATEST and aliases can change, and are read on every invoke.
        self._versions: dict[tuple[str, str], dict] = {}
        self._layer_shas: dict[str, str] = {}
        # (region, function, version) -> Lambda's refusal of an invoke of that version now, or None (idle.py).
        self.gate: Callable[[str, str, str], Answer | None] = lambda region, function, version: None
        (state / "logs").mkdir(parents=True, exist_ok=True)

    # ---- state the proxy records ----------------------------------------------------------------------------
    def record_file_systems(self, function: str, configs: list[dict] | None) -> None:
        if configs is not None:
            self.file_systems[function] = configs

    def reset(self) -> None:
        """moto was reset: every function is gone, so is every environment."""
        with self._lock:
            pool, self._pool = self._pool, []
            self.file_systems.clear()
            self._versions.clear()
            self._layer_shas.clear()
        for env in pool:
            env.kill()

    def forget_function(self, name: str) -> None:
        """DeleteFunction passed through: a new function of that name starts again at version 1."""
        with self._lock:
            self._versions = {k: v for k, v in self._versions.items() if k[0] != name}

    def environments(self) -> list[dict]:
        with self._lock:
            return [e.describe() for e in self._pool]

    # ---- one invoke -----------------------------------------------------------------------------------------
    def invoke(self, raw_name: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> Answer:
        if len(body) > PAYLOAD_LIMIT:
            return error_answer(413, "RequestTooLargeException",
                                f"Request must be smaller than {PAYLOAD_LIMIT} bytes for the InvokeFunction operation")
        name, qualifier = split_function(raw_name, (query.get("Qualifier") or [None])[0])
        resolved = self._resolve(name, qualifier)
        if isinstance(resolved, Answer):
            return resolved
        cfg, conf = resolved
        if refused := self.gate(cfg.region, cfg.function_name, cfg.version):
            return refused
        kind = headers.get("x-amz-invocation-type", "RequestResponse")
        if kind == "DryRun":
            return Answer(204, b"", {"X-Amz-Executed-Version": cfg.version})
        wanted = (conf.get("Architectures") or ["x86_64"])[0]
        if wanted != HOST_ARCHITECTURE:
            return error_answer(500, "ServiceException",
                                f"local executor: {cfg.function_name} is built for {wanted}; this machine runs "
                                f"{HOST_ARCHITECTURE} functions only")
        try:
            layout, python = self._layout(cfg, conf)
        except (CodeNotFound, RuntimeUnavailable) as err:
            return error_answer(500, "ServiceException", f"local executor: {err}")
        except MountUnknown as err:
            return error_answer(403, "EFSMountFailureException", str(err))
        request_id = str(uuid.uuid4())
        if kind == "Event":
            threading.Thread(target=self._run, args=(cfg, layout, python, body, request_id), daemon=True).start()
            return Answer(202, b"", {"X-Amzn-RequestId": request_id})
        result = self._run(cfg, layout, python, body, request_id)
        payload, function_error = result.payload, result.function_error
        if len(payload) > PAYLOAD_LIMIT:
            payload = json.dumps({"errorType": "Function.ResponseSizeTooLarge",
                                  "errorMessage": f"Response payload size exceeded maximum allowed payload size "
                                                  f"({PAYLOAD_LIMIT} bytes)."}).encode()
            function_error = "Unhandled"
        out = {"Content-Type": "application/json", "X-Amz-Executed-Version": cfg.version,
               "X-Amzn-RequestId": request_id}
        if function_error:
            out["X-Amz-Function-Error"] = function_error
        if headers.get("x-amz-log-type") == "Tail":
            out["X-Amz-Log-Result"] = base64.b64encode(result.logs.encode()[-LOG_TAIL_BYTES:]).decode()
        return Answer(200, payload, out)

    def _resolve(self, name: str, qualifier: str | None) -> tuple[Config, dict] | Answer:
        """The configuration of the version the invoke runs: an alias picks one of its versions by weight."""
        base = f"/2015-03-31/functions/{urllib.parse.quote(name, safe='')}"
        version = qualifier or "$LATEST"
        if qualifier and qualifier != "$LATEST" and not qualifier.isdigit():
            status, body = self.moto_get(f"{base}/aliases/{urllib.parse.quote(qualifier, safe='')}")
            if status >= 300:  # moto answers GetAlias with 201
                return Answer(status, body, {"Content-Type": "application/json"})
            alias = json.loads(body)
            version = alias["FunctionVersion"]
            weights = ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})
            draw = random.random()
            for other, weight in weights.items():
                if draw < float(weight):
                    version = other
                    break
                draw -= float(weight)
        conf = self._versions.get((name, version))
        if conf is None:
            status, body = self.moto_get(f"{base}/configuration?Qualifier={urllib.parse.quote(version, safe='')}")
            if status >= 300:
                return Answer(status, body, {"Content-Type": "application/json"})
            conf = json.loads(body)
            if version.isdigit():
                self._versions[(name, version)] = conf
        region = conf["FunctionArn"].split(":")[3]
        cfg = Config(function_name=conf["FunctionName"], function_arn=conf["FunctionArn"],
                     version=conf.get("Version") or version, runtime=conf.get("Runtime") or "",
                     handler=conf.get("Handler") or "", memory_mb=int(conf.get("MemorySize") or 128),
                     timeout_s=int(conf.get("Timeout") or 3),
                     environment=dict((conf.get("Environment") or {}).get("Variables") or {}), region=region)
        return cfg, conf

    def _layout(self, cfg: Config, conf: dict) -> tuple[sandbox.Layout, str]:
        python = self.interpreters.python(cfg.runtime)
        layer_shas = [self._layer_sha(layer["Arn"]) for layer in conf.get("Layers") or []]
        configs = conf.get("FileSystemConfigs") or self.file_systems.get(cfg.function_name) or []
        efs_source, mount_path = None, ""
        if configs:
            arn, mount_path = configs[0]["Arn"], configs[0]["LocalMountPath"]
            if arn not in self.mounts:
                raise MountUnknown(f"local executor: no local folder stands in for access point {arn} "
                                   "(tools/local_platform.py registers the platform's efs.local_root)")
            efs_source = self.mounts[arn]
        env_tmp = self.state / "tmp" / uuid.uuid4().hex[:12]
        layout = sandbox.Layout(task_root=self.store.unpacked(conf["CodeSha256"]), opt=self.store.layers(layer_shas),
                                runtime_dir=self.interpreters.runtime_dir(cfg.runtime), tmp=env_tmp,
                                efs_source=efs_source, mount_path=mount_path)
        return layout, python

    def _layer_sha(self, arn: str) -> str:
        if arn in self._layer_shas:
            return self._layer_shas[arn]
        # arn:aws:lambda:region:account:layer:name:version
        parts = arn.split(":")
        status, body = self.moto_get(f"/2018-10-31/layers/{parts[6]}/versions/{parts[7]}")
        if status != 200:
            raise CodeNotFound(f"layer {arn}: {body[:200]!r}")
        sha = json.loads(body)["Content"]["CodeSha256"]
        if not self.store.has(sha):
            raise CodeNotFound(f"layer {arn} (CodeSha256 {sha}) was not published through this endpoint")
        self._layer_shas[arn] = sha
        return sha

    def _run(self, cfg: Config, layout: sandbox.Layout, python: str, body: bytes, request_id: str):
        env = self._take(cfg, layout, python)
        try:
            return env.invoke(body, request_id)
        finally:
            with self._lock:
                env.busy = False
                if not env.alive():
                    self._pool = [e for e in self._pool if e is not env]

    def _take(self, cfg: Config, layout: sandbox.Layout, python: str) -> Environment:
        """A warm idle environment of exactly this configuration, or a new one (init runs on its first invoke)."""
        key = _key(cfg, layout)
        with self._lock:
            for env in self._pool:
                if not env.busy and env.alive() and env.key == key:
                    env.busy = True
                    return env
            idle = sorted((e for e in self._pool if not e.busy), key=lambda e: e.last_used)
            evicted = idle[: max(0, len(self._pool) + 1 - MAX_ENVIRONMENTS)]
            self._pool = [e for e in self._pool if e not in evicted]
        for env in evicted:
            env.kill()
        env = Environment(cfg, layout, python, self.state / "logs" / f"{cfg.function_name}.log", key)
        env.busy = True
        with self._lock:
            self._pool.append(env)
        return env


def _key(cfg: Config, layout: sandbox.Layout) -> str:
    facts = [cfg, layout.task_root, layout.opt, layout.efs_source, layout.mount_path]
    return hashlib.sha256(repr(facts).encode()).hexdigest()


class MountUnknown(Exception):
    pass
