"""The HTTP server of the EKS service: a small Starlette (ASGI) app served by uvicorn, with the loader and the
request handling of the Lambda handler.

    python -m ferry_runtime.server --root /mnt/models [--model-path DIR] [--host 127.0.0.1] [--port 8080]

Routes:
  POST /models/<model>/v<N>/invocations   the version folder <root>/<model>/<N>/, loaded on its first request and
                                          kept; every version folder under the root is served side by side
  POST /invocations                       the single model of --model-path / FERRY_MODEL_PATH (as `mlflow models
                                          serve` does)
  GET  /ping                              200 once the single model (if any) is loaded: a readiness probe
  GET  /health                            JSON: status, loaded versions, versions on disk
  GET  /version                           runtime and MLflow versions
Settings (flags win over the environment): FERRY_MODELS_ROOT, FERRY_MODEL_PATH (+ FERRY_MODEL_NAME,
FERRY_MODEL_VERSION, FERRY_ARTIFACT_DIGEST), FERRY_VERIFY_MANIFEST (applies to every version).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import __version__, logs, service
from .config import ConfigError, Settings, parse_bool
from .loader import TMP_PREFIX, ModelLoadError, load, loaded_models

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VERSION_RE = re.compile(r"^[0-9]{1,9}$")
MAX_BODY_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    root: Path | None = None
    single: Settings | None = None
    verify_manifest: bool = False

    @classmethod
    def from_env(cls, env=None) -> "ServerConfig":
        env = os.environ if env is None else env
        root = env.get("FERRY_MODELS_ROOT", "").strip()
        single = Settings.from_env(env) if env.get("FERRY_MODEL_PATH", "").strip() else None
        verify = parse_bool("FERRY_VERIFY_MANIFEST", env.get("FERRY_VERIFY_MANIFEST"))
        if not root and single is None:
            raise ConfigError("set FERRY_MODELS_ROOT (serve every version under it) and/or FERRY_MODEL_PATH")
        return cls(root=Path(root) if root else None, single=single, verify_manifest=verify)


def create_app(config: ServerConfig) -> Starlette:
    def json_error(status: int, code: str, message: str, model=None, version=None, request_id=None) -> JSONResponse:
        body = service.error_response(status, code, message, model, version).body
        return JSONResponse(body, status_code=status, headers={"x-request-id": request_id} if request_id else None)

    async def answer(request: Request, path: Path, name: str, version: str, expected_digest: str = "") -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        content_type = request.headers.get("content-type")
        if content_type and not _is_json(content_type):
            return json_error(415, "UNSUPPORTED_MEDIA_TYPE",
                              f"content-type {content_type!r} is not supported; send application/json",
                              name, version, request_id)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return json_error(413, "PAYLOAD_TOO_LARGE", f"request body over {MAX_BODY_BYTES} bytes",
                              name, version, request_id)
        try:
            loaded = await run_in_threadpool(load, path, name, version, config.verify_manifest, expected_digest)
        except ModelLoadError as err:
            error_id = service.new_error_id()
            logs.error("model_unavailable", model=name, version=version, request_id=request_id, error_id=error_id,
                       error=str(err))
            body = service.error_response(503, "MODEL_UNAVAILABLE",
                                          f"the model could not be loaded; error id {error_id}", name, version,
                                          error_id=error_id).body
            return JSONResponse(body, status_code=503, headers={"x-request-id": request_id})
        raw = await request.body()
        resp = await run_in_threadpool(service.invoke, loaded, raw, request_id, "http", started)
        return Response(resp.text(), status_code=resp.status, media_type="application/json",
                        headers={"x-request-id": request_id})

    async def version_invocations(request: Request) -> Response:
        name = request.path_params["model"]
        version = request.path_params["version"]
        if config.root is None:
            return json_error(404, "NOT_FOUND", "this server has no models root (FERRY_MODELS_ROOT)", name, version)
        if not NAME_RE.match(name) or not VERSION_RE.match(version) or name.startswith(TMP_PREFIX):
            return json_error(404, "NOT_FOUND", "no such model version", name, version)
        path = config.root / name / version
        if not path.is_dir():
            return json_error(404, "NOT_FOUND", f"no version {version} of model {name!r} on this server",
                              name, version)
        return await answer(request, path, name, version)

    async def single_invocations(request: Request) -> Response:
        s = config.single
        if s is None:
            return json_error(404, "NOT_FOUND", "no single model configured here (FERRY_MODEL_PATH); "
                              "use /models/<model>/v<N>/invocations")
        return await answer(request, Path(s.model_path), s.model_name, s.model_version, s.artifact_digest)

    async def ping(request: Request) -> Response:
        s = config.single
        if s is not None:
            try:
                await run_in_threadpool(load, s.model_path, s.model_name, s.model_version, config.verify_manifest,
                                        s.artifact_digest)
            except ModelLoadError as err:
                logs.error("model_unavailable", model=s.model_name, version=s.model_version, error=str(err))
                return Response("model unavailable\n", status_code=503, media_type="text/plain")
        return Response("\n", status_code=200, media_type="text/plain")

    async def health(request: Request) -> Response:
        return JSONResponse({
            "status": "ok",
            "runtime": __version__,
            "verify_manifest": config.verify_manifest,
            "single": ({"model": config.single.model_name, "version": config.single.model_version}
                       if config.single else None),
            "loaded": [m.describe() for m in loaded_models()],
            "available": await run_in_threadpool(available_versions, config.root) if config.root else [],
        })

    async def version(request: Request) -> Response:
        import mlflow.version

        return JSONResponse({"ferry_runtime": __version__, "mlflow": mlflow.version.VERSION})

    routes = [
        Route("/models/{model}/v{version}/invocations", version_invocations, methods=["POST"]),
        Route("/invocations", single_invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def available_versions(root: Path) -> list[dict]:
    """Every complete version folder under the root (a `.ferry-tmp-*` sync in progress is not one)."""
    found = []
    try:
        models = sorted(p for p in root.iterdir() if p.is_dir() and NAME_RE.match(p.name))
    except OSError:
        return found
    for model_dir in models:
        for version_dir in sorted(model_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
            if version_dir.is_dir() and VERSION_RE.match(version_dir.name) and (version_dir / "MLmodel").is_file():
                found.append({"model": model_dir.name, "version": version_dir.name,
                              "path": f"/models/{model_dir.name}/v{version_dir.name}/invocations"})
    return found


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def create_app_from_env() -> Starlette:
    """The app factory uvicorn calls in each worker (`--factory`)."""
    return create_app(ServerConfig.from_env())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferry_runtime.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="serve every <root>/<model>/<N>/ folder (FERRY_MODELS_ROOT)")
    parser.add_argument("--model-path", help="the single model of /invocations (FERRY_MODEL_PATH)")
    parser.add_argument("--verify-manifest", action="store_true", help="FERRY_VERIFY_MANIFEST=true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes; each loads its own models")
    args = parser.parse_args(argv)
    if args.root:
        os.environ["FERRY_MODELS_ROOT"] = str(Path(args.root).resolve())
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
              root=str(config.root) if config.root else None,
              single=config.single.model_path if config.single else None, verify_manifest=config.verify_manifest)
    uvicorn.run("ferry_runtime.server:create_app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, access_log=False, log_level="warning", timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
