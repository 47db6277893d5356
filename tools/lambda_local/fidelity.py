"""Where moto answers a Lambda control-plane call otherwise than Lambda does, the Lambda way.

- `PublishVersion` when neither code nor configuration changed since the last published version: Lambda publishes
  nothing and returns that version ("Lambda doesn't publish a version if the function's configuration and code
  haven't changed since the last version", Lambda API reference, PublishVersion); moto publishes a second one. Whether
  a different Description alone forces a new version is not documented; here it does (a retried publish, whose
  answer was lost, sends the same description and gets the same version).
- An alias that exists already: Lambda answers `ResourceConflictException`, moto `ConflictException`.
- Function URLs: Lambda keeps one config per qualifier (an alias or `$LATEST`) and lists them; moto keeps one per
  function whatever the qualifier and has no ListFunctionUrlConfigs. `FunctionUrls` answers them here instead.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse

PUBLISH_VERSION = re.compile(r"^/2015-03-31/functions/([^/]+)/versions$")

# What a published version snapshots of `$LATEST`, besides the description.
SNAPSHOT = ("CodeSha256", "Runtime", "Handler", "Role", "MemorySize", "Timeout", "Environment", "Layers",
            "EphemeralStorage", "Architectures", "FileSystemConfigs", "VpcConfig", "TracingConfig",
            "DeadLetterConfig", "KMSKeyArn", "ImageConfigResponse", "LoggingConfig", "PackageType")


def _snapshot(config: dict) -> dict:
    layers = [layer.get("Arn") for layer in config.get("Layers") or []]
    out = {k: config.get(k) for k in SNAPSHOT if k != "Layers"}
    out["Layers"] = layers
    return out


def unchanged_publish(upstream, function: str, body: bytes) -> bytes | None:
    """The last published version's configuration (as PublishVersion answers it) when publishing now would publish
    nothing new; None when a version is to be published (or the function's versions cannot be read: moto answers)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    status, listed = upstream.get(f"/2015-03-31/functions/{urllib.parse.quote(function, safe='')}/versions")
    if status != 200:
        return None
    versions = json.loads(listed).get("Versions", [])
    latest = next((v for v in versions if v.get("Version") == "$LATEST"), None)
    published = [v for v in versions if v.get("Version", "").isdigit()]
    if latest is None or not published:
        return None
    last = max(published, key=lambda v: int(v["Version"]))
    if request.get("CodeSha256") and request["CodeSha256"] != latest.get("CodeSha256"):
        return None  # PublishVersion's own precondition; moto checks it
    description = request.get("Description", latest.get("Description", ""))
    if _snapshot(latest) != _snapshot(last) or description != last.get("Description", ""):
        return None
    return json.dumps(last).encode()


def lambda_conflict(body: bytes, headers: list[tuple[str, str]]) -> tuple[bytes, list[tuple[str, str]]]:
    """moto's 409 `ConflictException` as Lambda's `ResourceConflictException`."""
    out = []
    for k, v in headers:
        if k.lower() == "x-amzn-errortype" and v.split(":")[0] == "ConflictException":
            v = "ResourceConflictException"
        out.append((k, v))
    try:
        doc = json.loads(body)
    except ValueError:
        return body, out
    if isinstance(doc, dict) and doc.get("__type", "").split("#")[-1] == "ConflictException":
        doc["__type"] = "ResourceConflictException"
        doc.setdefault("Type", "User")
        body = json.dumps(doc).encode()
    return body, out


FUNCTION_URL = re.compile(r"^/2021-10-31/functions/([^/]+)/url/?$")
FUNCTION_URLS = re.compile(r"^/2021-10-31/functions/([^/]+)/urls/?$")


class FunctionUrls:
    """Function URL configs as Lambda keeps them: one per qualifier (`$LATEST` or an alias, never a version number),
    listed by ListFunctionUrlConfigs. moto keeps one per function whatever the qualifier, and cannot list them."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.configs: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.configs.clear()

    def _function(self, name: str) -> dict | None:
        status, body = self.upstream.get(f"/2015-03-31/functions/{urllib.parse.quote(name, safe='')}")
        return json.loads(body)["Configuration"] if status == 200 else None

    def _alias(self, name: str, alias: str) -> bool:
        path = f"/2015-03-31/functions/{urllib.parse.quote(name, safe='')}/aliases/{urllib.parse.quote(alias)}"
        return 200 <= self.upstream.get(path)[0] < 300  # moto answers GetAlias with 201

    def handle(self, method: str, path: str, query: dict, body: bytes) -> tuple[int, dict] | None:
        """The answer to a function URL call, or None when it is not one."""
        if m := FUNCTION_URLS.match(path):
            name = urllib.parse.unquote(m.group(1)).split(":")[-1]
            if method != "GET":
                return None
            with self.lock:
                items = [c for (f, _), c in sorted(self.configs.items()) if f == name]
            return 200, {"FunctionUrlConfigs": items}
        m = FUNCTION_URL.match(path)
        if not m:
            return None
        name = urllib.parse.unquote(m.group(1)).split(":")[-1]
        qualifier = (query.get("Qualifier") or ["$LATEST"])[0]
        function = self._function(name)
        if function is None:
            return 404, _error("ResourceNotFoundException", f"Function not found: {name}")
        if qualifier.isdigit():
            return 400, _error("InvalidParameterValueException", "A function URL cannot use a version number")
        if qualifier != "$LATEST" and not self._alias(name, qualifier):
            return 404, _error("ResourceNotFoundException", f"Alias not found: {name}:{qualifier}")
        key = (name, qualifier)
        arn = function["FunctionArn"].removesuffix(":$LATEST") + ("" if qualifier == "$LATEST" else f":{qualifier}")
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())
        with self.lock:
            existing = self.configs.get(key)
            if method == "POST":
                if existing:
                    return 409, _error("ResourceConflictException", f"Function URL exists for {name}:{qualifier}")
                request = json.loads(body or b"{}")
                if request.get("AuthType") not in ("AWS_IAM", "NONE"):
                    return 400, _error("ValidationException", "AuthType must be AWS_IAM or NONE")
                url = f"https://{hashlib.sha256(arn.encode()).hexdigest()[:32]}.lambda-url.us-east-1.on.aws/"
                self.configs[key] = {"FunctionUrl": url, "FunctionArn": arn, "AuthType": request["AuthType"],
                                     "CreationTime": now, "LastModifiedTime": now,
                                     "InvokeMode": request.get("InvokeMode", "BUFFERED")}
                return 201, self.configs[key]
            if existing is None:
                return 404, _error("ResourceNotFoundException", f"No function URL for {name}:{qualifier}")
            if method == "GET":
                return 200, existing
            if method == "PUT":
                request = json.loads(body or b"{}")
                existing.update({k: v for k, v in request.items() if k in ("AuthType", "Cors", "InvokeMode")},
                                LastModifiedTime=now)
                return 200, existing
            if method == "DELETE":
                del self.configs[key]
                return 204, {}
        return None


def _error(code: str, message: str) -> dict:
    return {"__type": code, "Type": "User", "Message": message, "message": message}
