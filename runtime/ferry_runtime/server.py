"""The HTTP server of the EKS service: a small Starlette (ASGI) app served by uvicorn, with the loader and the
request handling of the Lambda handler. It serves exactly its served set (ferry_runtime.served_set): the deployed
versions its configuration lists, and refuses every other folder, even one that exists under the models mount.

    python -m ferry_runtime.server [--served-set FILE | --model-path DIR] [--verify-manifest] [--port 8080]

Routes:
  POST /models/<model>/v<N>/invocations   a version of the served set; any other is 404 NOT_SERVED
  POST /invocations                       the one version of a served set of one (as `mlflow models serve` does)
  GET  /ping                              200 once every version of the served set is loaded (readiness probe);
                                          503 naming each version not loaded yet and why
  GET  /health                            JSON: the served set and the state of each version (liveness probe)
  GET  /version                           runtime and MLflow versions
Settings (flags win over the environment): the served set from exactly one of FERRY_SERVED_SET (JSON),
FERRY_SERVED_SET_FILE or FERRY_MODEL_PATH (+ FERRY_MODEL_NAME, FERRY_MODEL_VERSION, FERRY_ARTIFACT_DIGEST);
FERRY_VERIFY_MANIFEST (applies to every version). The served set is loaded at start, in the background.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import __version__, logs, served_set, service
from .config import ConfigError, parse_bool
from .loader import ModelLoadError, is_loaded, load, loaded_models
from .served_set import ServedVersion

MAX_BODY_BYTES = 20 * 1024 * 1024
RETRY_FIRST_S = 0.25   # a served version that failed to load is tried again, waiting twice as long each time ...
RETRY_MAX_S = 5.0      # ... up to this (an EFS mount that is late, a sync that is still renaming into place)


@dataclass(frozen=True)
class ServerConfig:
    served: tuple[ServedVersion, ...]
    verify_manifest: bool = False

    @classmethod
    def from_env(cls, env=None) -> "ServerConfig":
        env = os.environ if env is None else env
        return cls(served=served_set.from_env(env),
                   verify_manifest=parse_bool("FERRY_VERIFY_MANIFEST", env.get("FERRY_VERIFY_MANIFEST")))


class Readiness:
    """Loads every version of the served set in a background thread, once, trying failed ones again with a backoff,
    and says whether all are loaded (what /ping answers) and why not."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.failures: dict[ServedVersion, str] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._load_all, name="ferry-served-set", daemon=True).start()

    def pending(self) -> list[ServedVersion]:
        return [v for v in self.config.served if not is_loaded(v.path)]

    def reasons(self) -> list[str]:
        with self._lock:
            failures = dict(self.failures)
        return [f"{v.label}: {failures.get(v, 'loading')}" for v in self.pending()]

    def _load_all(self) -> None:
        wait = RETRY_FIRST_S
        while True:
            for v in self.pending():
                try:
                    load(v.path, v.model, v.version, self.config.verify_manifest, v.artifact_digest)
                except ModelLoadError as err:
                    with self._lock:
                        changed = self.failures.get(v) != str(err)
                        self.failures[v] = str(err)
                    if changed:  # one line per reason, not one per retry
                        logs.error("model_unavailable", model=v.model, version=v.version, error=str(err))
            if not self.pending():
                logs.info("served_set_loaded", versions=[v.label for v in self.config.served])
                return
            time.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_S)


def create_app(config: ServerConfig) -> Starlette:
    served = {(v.model, v.version): v for v in config.served}
    readiness = Readiness(config)

    def json_error(status: int, code: str, message: str, model=None, version=None, request_id=None) -> JSONResponse:
        body = service.error_response(status, code, message, model, version).body
        return JSONResponse(body, status_code=status, headers={"x-request-id": request_id} if request_id else None)

    async def answer(request: Request, v: ServedVersion) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        content_type = request.headers.get("content-type")
        if content_type and not _is_json(content_type):
            return json_error(415, "UNSUPPORTED_MEDIA_TYPE",
                              f"content-type {content_type!r} is not supported; send application/json",
                              v.model, v.version, request_id)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return json_error(413, "PAYLOAD_TOO_LARGE", f"request body over {MAX_BODY_BYTES} bytes",
                              v.model, v.version, request_id)
        try:
            loaded = await run_in_threadpool(load, v.path, v.model, v.version, config.verify_manifest,
                                             v.artifact_digest)
        except ModelLoadError as err:
            error_id = service.new_error_id()
            logs.error("model_unavailable", model=v.model, version=v.version, request_id=request_id,
                       error_id=error_id, error=str(err))
            body = service.error_response(503, "MODEL_UNAVAILABLE",
                                          f"the model could not be loaded; error id {error_id}", v.model, v.version,
                                          error_id=error_id).body
            return JSONResponse(body, status_code=503, headers={"x-request-id": request_id})
        raw = await request.body()
        resp = await run_in_threadpool(service.invoke, loaded, raw, request_id, "http", started)
        return Response(resp.text(), status_code=resp.status, media_type="application/json",
                        headers={"x-request-id": request_id})

    async def version_invocations(request: Request) -> Response:
        name = request.path_params["model"]
        version = request.path_params["version"]
        v = served.get((name, version))
        if v is None:
            # The same answer whether a folder of that name exists or not: the file system is not consulted.
            return json_error(404, "NOT_SERVED", f"{name} v{version} is not in this server's served set; it serves "
                              f"{describe(config.served)}", name, version)
        return await answer(request, v)

    async def single_invocations(request: Request) -> Response:
        if len(config.served) != 1:
            return json_error(404, "NOT_SERVED", f"this server serves {len(config.served)} versions; use "
                              "/models/<model>/v<N>/invocations")
        return await answer(request, config.served[0])

    async def ping(request: Request) -> Response:
        reasons = readiness.reasons()
        if reasons:
            return Response("not ready: " + "; ".join(reasons) + "\n", status_code=503, media_type="text/plain")
        return Response("\n", status_code=200, media_type="text/plain")

    async def health(request: Request) -> Response:
        pending = set(readiness.pending())
        return JSONResponse({
            "status": "ok",
            "ready": not pending,
            "runtime": __version__,
            "verify_manifest": config.verify_manifest,
            "served": [{"model": v.model, "version": v.version, "path": v.route,
                        "state": "loading" if v in pending else "loaded"} for v in config.served],
            "loaded": [m.describe() for m in loaded_models()],
        })

    async def version(request: Request) -> Response:
        import mlflow.version

        return JSONResponse({"ferry_runtime": __version__, "mlflow": mlflow.version.VERSION})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        readiness.start()
        yield

    routes = [
        Route("/models/{model}/v{version}/invocations", version_invocations, methods=["POST"]),
        Route("/invocations", single_invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
    async def no_route(request: Request, exc: Exception) -> Response:
        return json_error(404, "NOT_FOUND", f"no route {request.url.path}; a version is served at "
                          "/models/<model>/v<N>/invocations")

    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: no_route})


def describe(served: tuple[ServedVersion, ...]) -> str:
    """`risk-score v1, v2 and readmission v1`: the served set in its own order, grouped by model."""
    by_model: dict[str, list[str]] = {}
    for v in served:
        by_model.setdefault(v.model, []).append(f"v{v.version}")
    parts = [f"{model} {', '.join(versions)}" for model, versions in by_model.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def create_app_from_env() -> Starlette:
    """The app factory uvicorn calls in each worker (`--factory`)."""
    return create_app(ServerConfig.from_env())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferry_runtime.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--served-set", metavar="FILE", help="the served set as a JSON file (FERRY_SERVED_SET_FILE)")
    parser.add_argument("--model-path", help="serve this one version folder (FERRY_MODEL_PATH)")
    parser.add_argument("--verify-manifest", action="store_true", help="FERRY_VERIFY_MANIFEST=true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes; each loads its own models")
    args = parser.parse_args(argv)
    if args.served_set:
        os.environ["FERRY_SERVED_SET_FILE"] = str(Path(args.served_set).resolve())
    if args.model_path:
        os.environ["FERRY_MODEL_PATH"] = str(Path(args.model_path).resolve())
    if args.verify_manifest:
        os.environ["FERRY_VERIFY_MANIFEST"] = "true"
    try:
        config = ServerConfig.from_env()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    import uvicorn

    logs.info("server_start", host=args.host, port=args.port, workers=args.workers,
              served=[v.label for v in config.served], verify_manifest=config.verify_manifest)
    uvicorn.run("ferry_runtime.server:create_app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, access_log=False, log_level="warning", timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
