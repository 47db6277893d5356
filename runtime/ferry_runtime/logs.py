"""Structured logs: one JSON object per line on stdout (CloudWatch Logs and kubectl logs keep a line together, and
Logs Insights parses its fields). A trace, where there is one, is a field of its line, never lines of its own."""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

_lock = threading.Lock()
_stream: TextIO | None = None


def set_stream(stream: TextIO | None) -> None:
    """Send log lines to `stream` (None: the current sys.stdout, looked up at each line)."""
    global _stream
    _stream = stream


def log(level: str, event: str, **fields: Any) -> None:
    record = {"ts": _timestamp(), "level": level, "event": event, "logger": "ferry_runtime"}
    record.update({k: v for k, v in fields.items() if v is not None})
    line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
    stream = _stream or sys.stdout
    with _lock:
        stream.write(line)
        stream.flush()


def info(event: str, **fields: Any) -> None:
    log("INFO", event, **fields)


def error(event: str, **fields: Any) -> None:
    log("ERROR", event, **fields)


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
