"""An answer the local Lambda gives itself (not moto's), and Lambda's JSON error shape: HTTP status, the
`X-Amzn-ErrorType` header naming the error, and a body `{"Type": "User", "message": ...}` (Lambda API reference,
Common Errors; the SDKs read the error's name from that header)."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def error_answer(status: int, kind: str, message: str, fields: dict | None = None,
                 headers: dict[str, str] | None = None) -> Answer:
    body = {"Type": "User", "message": message, **(fields or {})}
    return Answer(status, json.dumps(body).encode(),
                  {"Content-Type": "application/json", "X-Amzn-ErrorType": kind,
                   "X-Amzn-RequestId": str(uuid.uuid4()), **(headers or {})})


def json_answer(status: int, doc: object) -> Answer:
    return Answer(status, json.dumps(doc).encode(),
                  {"Content-Type": "application/json", "X-Amzn-RequestId": str(uuid.uuid4())})


def json_object(body: bytes) -> dict:
    """A request's or an answer's JSON object; {} for anything else (no body, not JSON, not an object)."""
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
