"""The AWS calls Ferry's Rust code makes, read from its sources, and the IAM action each one needs.

The agent talks to AWS only through the SDK's fluent clients (`clients.lambda.publish_version()...send()`), held in
variables or fields named after their service (`lambda`, `s3`, `sts`, `efs`; see agent/src/aws.rs). A call is
`<client>.<operation>(`, with the chain finished by one `.send()`. Every `.send()` outside a test module must
belong to a call found that way (or sit in a file named in NON_AWS_SENDERS), so that a client under another name
cannot hide a call from the IAM tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AGENT_SRC = REPO / "agent" / "src"
SYNC_LAMBDA_SRC = REPO / "sync-lambda" / "src"

# Client name in the code -> IAM service prefix.
SERVICES = {"lambda": "lambda", "s3": "s3", "sts": "sts", "efs": "elasticfilesystem"}
# Methods of a client that are not AWS operations.
NOT_OPERATIONS = {"clone", "config"}
# Operations whose IAM action is not the operation's name in CamelCase.
IAM_ACTION_OF = {
    ("lambda", "invoke"): "lambda:InvokeFunction",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "list_objects_v2"): "s3:ListBucket",
}
# Files whose `.send()` calls are not AWS calls, and why.
NON_AWS_SENDERS = {
    "agent/src/approval/mlflow.rs": "the MLflow registry's REST API through reqwest",
}
# What the artifact-sync function runs of the agent crate: its handler (sync::function) and the copier under it;
# sync/remote.rs is the CLI's side, which invokes the function.
SYNC_FUNCTION_SOURCES = ["agent/src/sync/function.rs", "agent/src/sync/mod.rs", "agent/src/sync/source.rs"]

_TOKEN = re.compile(
    r"""//[^\n]*|/\*.*?\*/|r(\#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?'(?:\\.|[^'\\])'""",
    re.S,
)
_CALL = re.compile(r"(?<![A-Za-z0-9_])(lambda|s3|sts|efs)\s*\.\s*([a-z][a-z0-9_]*)\s*\(")
_SEND = re.compile(r"\.\s*send\s*\(\s*\)")
_TEST_MODULE = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+[a-z_]+\s*\{")


@dataclass(frozen=True)
class Call:
    path: str  # relative to the repository
    line: int
    service: str  # IAM prefix
    operation: str  # the SDK's snake_case name

    @property
    def action(self) -> str:
        camel = "".join(part.capitalize() for part in self.operation.split("_"))
        return IAM_ACTION_OF.get((self.client, self.operation), f"{self.service}:{camel}")

    @property
    def client(self) -> str:
        return next(c for c, s in SERVICES.items() if s == self.service)


def code_only(text: str) -> str:
    """The source with comments, strings and `#[cfg(test)] mod ... { }` blocks blanked out (line numbers kept)."""
    text = _TOKEN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    while m := _TEST_MODULE.search(text):
        depth, end = 0, len(text)
        for i in range(m.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                end = i + 1
                break
        text = text[: m.start()] + re.sub(r"[^\n]", " ", text[m.start() : end]) + text[end:]
    return text


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def rust_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.rs"))


def scan(path: Path) -> tuple[list[Call], int]:
    """The AWS calls in one file, and its number of `.send()` calls."""
    code = code_only(path.read_text(encoding="utf-8"))
    rel = relative(path)
    calls = [
        Call(rel, code.count("\n", 0, m.start(2)) + 1, SERVICES[m.group(1)], m.group(2))
        for m in _CALL.finditer(code)
        if m.group(2) not in NOT_OPERATIONS
    ]
    return calls, len(_SEND.findall(code))


def calls_in(paths: list[Path]) -> list[Call]:
    """Every AWS call in the files; a file whose `.send()` count differs from its calls is an error."""
    found, unexplained = [], []
    for path in paths:
        calls, sends = scan(path)
        rel = relative(path)
        if sends != len(calls) and rel not in NON_AWS_SENDERS:
            unexplained.append(f"{rel}: {sends} .send() calls but {len(calls)} AWS client calls found")
        found += calls
    if unexplained:
        raise AssertionError(
            "a call through a client the scan does not know (name it lambda/s3/sts/efs, or list the file in "
            "NON_AWS_SENDERS): " + "; ".join(unexplained)
        )
    return found


def agent_calls() -> list[Call]:
    """What the `ferry` CLI calls (the whole agent crate: `ferry sync` may copy locally too)."""
    return calls_in(rust_files(AGENT_SRC))


def sync_function_calls() -> list[Call]:
    """What the artifact-sync function calls: its binary and the part of the agent crate it runs."""
    return calls_in(rust_files(SYNC_LAMBDA_SRC) + [REPO / p for p in SYNC_FUNCTION_SOURCES])


def actions(calls: list[Call]) -> dict[str, list[str]]:
    """IAM action -> the places that need it."""
    out: dict[str, list[str]] = {}
    for call in calls:
        out.setdefault(call.action, []).append(f"{call.path}:{call.line} {call.client}.{call.operation}()")
    return out


if __name__ == "__main__":
    for action, places in sorted(actions(agent_calls()).items()):
        print(f"{action:45} {', '.join(places)}")
