"""The Lambda entry point: `ferry_runtime.lambda_handler.handler`.

One function version serves one frozen model version, named by its environment (docs/contracts.md, section 3).
The model is loaded once per container: during the init phase when the module is imported on Lambda, otherwise on
the first invoke, and kept.

Events:
  - a direct invoke (`aws lambda invoke`, the agent's smoke test): the event is the scoring request itself; the
    answer is the response body, plus `"status"` on an error. Errors are answered, never raised, so that Lambda
    does not send a stack trace back to the caller;
  - an API Gateway HTTP API (payload format 2.0) or function URL event, and an API Gateway REST (1.0) event:
    POST runs the model, GET answers a health check; the answer has statusCode, content-type and a JSON body.
"""
from __future__ import annotations

import base64
import os
import time
import uuid
from typing import Any

from . import logs, service
from .config import ConfigError, Settings
from .loader import LoadedModel, ModelLoadError, load

JSON_HEADERS = {"content-type": "application/json"}


def current_settings() -> Settings:
    return Settings.from_env()


def get_model() -> LoadedModel:
    """The model of this function version, loaded on first use and kept (see loader)."""
    s = current_settings()
    return load(s.model_path, s.model_name, s.model_version, verify=s.verify_manifest,
                expected_digest=s.artifact_digest)


def handler(event: Any, context: Any = None) -> Any:
    started = time.perf_counter()
    request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    kind = event_kind(event)
    http = kind != "direct"
    extra = {}
    if http:
        extra["http_request_id"] = (event.get("requestContext") or {}).get("requestId")

    try:
        loaded = get_model()
    except (ConfigError, ModelLoadError) as err:
        error_id = service.new_error_id()
        logs.error("model_unavailable", request_id=request_id, error_id=error_id, error=str(err),
                   model=os.environ.get("FERRY_MODEL_NAME"), version=os.environ.get("FERRY_MODEL_VERSION"))
        resp = service.error_response(503 if http else 500, "MODEL_UNAVAILABLE",
                                      f"the model could not be loaded; error id {error_id}",
                                      os.environ.get("FERRY_MODEL_NAME"), os.environ.get("FERRY_MODEL_VERSION"),
                                      error_id=error_id)
        return _answer(resp, http)

    if not http:
        resp = service.invoke(loaded, event, request_id=request_id, source="direct", started=started)
        return _answer(resp, http)

    method, headers, body = http_parts(event, kind)
    if method == "GET":
        resp = service.Response(200, {"status": "ok", "model": loaded.name, "version": loaded.version,
                                      "digest": loaded.digest})
    elif method != "POST":
        resp = service.error_response(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed; POST a scoring request",
                                      loaded.name, loaded.version)
    elif not _is_json(headers.get("content-type")):
        resp = service.error_response(415, "UNSUPPORTED_MEDIA_TYPE",
                                      f"content-type {headers.get('content-type')!r} is not supported; "
                                      "send application/json", loaded.name, loaded.version)
    else:
        resp = service.invoke(loaded, body, request_id=request_id, source=kind, started=started, extra_log=extra)
        return _answer(resp, http)
    logs.info("invocation", model=loaded.name, version=loaded.version, request_id=request_id, source=kind,
              method=method, status=resp.status,
              latency_ms=round((time.perf_counter() - started) * 1000, 3), **extra)
    return _answer(resp, http)


def event_kind(event: Any) -> str:
    """`direct`, `apigw-v2` (HTTP API), `function-url`, or `apigw-v1` (REST API)."""
    if not isinstance(event, dict):
        return "direct"
    ctx = event.get("requestContext")
    if isinstance(ctx, dict):
        if event.get("version") == "2.0" and isinstance(ctx.get("http"), dict):
            domain = str(ctx.get("domainName", ""))
            return "function-url" if ".lambda-url." in domain else "apigw-v2"
        if "httpMethod" in event:
            return "apigw-v1"
    return "direct"


def http_parts(event: dict, kind: str) -> tuple[str, dict, bytes | str | None]:
    if kind == "apigw-v1":
        method = str(event.get("httpMethod", "")).upper()
    else:
        method = str(event["requestContext"]["http"].get("method", "")).upper()
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True)
        except (ValueError, TypeError):
            body = b"\xff"  # not JSON: answered as 400 by the request parser
    return method, headers, body


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # curl without -H, and most clients that post JSON, send none or this
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def _answer(resp: service.Response, http: bool) -> Any:
    text = resp.text()
    if http:
        return {"statusCode": resp.status, "headers": dict(JSON_HEADERS), "body": text, "isBase64Encoded": False}
    import json

    body = json.loads(text)  # plain JSON types only: Lambda's own serialiser knows no numpy
    if resp.status != 200:
        body["status"] = resp.status
    return body


def _preload_on_lambda() -> None:
    """On Lambda, load during the init phase (full CPU, before the first request is waiting). A failure of any kind
    is logged and the first invoke tries again and answers with an error id, instead of the init crashing in a loop
    (Lambda would answer every invoke with `Runtime.ImportModuleError` and no error id to look up)."""
    if not (os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("FERRY_MODEL_PATH")):
        return
    try:
        get_model()
    except Exception as err:  # noqa: BLE001 - whatever it is, the invoke answers it with an error id
        logs.error("model_unavailable", phase="init", error=f"{type(err).__name__}: {err}",
                   model=os.environ.get("FERRY_MODEL_NAME"), version=os.environ.get("FERRY_MODEL_VERSION"))


_preload_on_lambda()
