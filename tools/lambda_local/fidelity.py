"""Where moto answers a Lambda control-plane call otherwise than Lambda does, the Lambda way.

- `PublishVersion` when neither code nor configuration changed since the last published version: Lambda publishes
  nothing and returns that version ("Lambda doesn't publish a version if the function's configuration and code
  haven't changed since the last version", Lambda API reference, PublishVersion); moto publishes a second one. Whether
  a different Description alone forces a new version is not documented; here it does (a retried publish, whose
  answer was lost, sends the same description and gets the same version).
- An alias that exists already: Lambda answers `ResourceConflictException`, moto `ConflictException`.
"""
from __future__ import annotations

import json
import re
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
