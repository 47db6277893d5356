"""The AWS calls Ferry's Rust code makes, read from its sources, and the IAM action each one needs.

The agent talks to AWS only through the SDK's fluent clients (`clients.lambda.publish_version()...send()`), held in
variables or fields named after their service (`lambda`, `s3`, `sts`, `efs`, `apigw`; see agent/src/aws.rs). A call is
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
SYNC_SRC = REPO / "sync" / "src"
SYNC_LAMBDA_SRC = REPO / "sync-lambda" / "src"

# Client name in the code -> IAM service prefix.
SERVICES = {"lambda": "lambda", "s3": "s3", "sts": "sts", "efs": "elasticfilesystem", "apigw": "apigateway"}
# Methods of a client that are not AWS operations.
NOT_OPERATIONS = {"clone", "config"}
# Operations whose IAM action is not the operation's name in CamelCase.
IAM_ACTION_OF = {
    ("lambda", "invoke"): "lambda:InvokeFunction",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "list_objects_v2"): "s3:ListBucket",
}
# API Gateway authorizes by the HTTP method of its management API (`apigateway:GET` on `/apis/<id>/routes`, ...), not
# by operation: each API Gateway v2 operation the agent may call, with its method. An operation missing here fails
# the scan, so that a new call cannot reach the IAM test without its action.
APIGATEWAY_METHOD_OF = {
    "get_routes": "GET",
    "get_integrations": "GET",
    "create_integration": "POST",
    "create_route": "POST",
    "delete_route": "DELETE",
    "delete_integration": "DELETE",
}
IAM_ACTION_OF.update({("apigw", op): f"apigateway:{method}" for op, method in APIGATEWAY_METHOD_OF.items()})
# Files whose `.send()` calls are not AWS calls, and why.
NON_AWS_SENDERS = {
    "agent/src/approval/mlflow.rs": "the MLflow registry's REST API through reqwest",
}

_TOKEN = re.compile(
    r"""//[^\n]*|/\*.*?\*/|r(\#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?'(?:\\.|[^'\\])'""",
    re.S,
)
_CALL = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(SERVICES) + r")\s*\.\s*([a-z][a-z0-9_]*)\s*\(")
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
        if self.client == "apigw" and (self.client, self.operation) not in IAM_ACTION_OF:
            raise AssertionError(
                f"{self.path}:{self.line}: apigw.{self.operation}() has no HTTP method in APIGATEWAY_METHOD_OF"
            )
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
            "a call through a client the scan does not know (name it lambda/s3/sts/efs/apigw, or list the file in "
            "NON_AWS_SENDERS): " + "; ".join(unexplained)
        )
    return found


def agent_calls() -> list[Call]:
    """What the `ferry` CLI calls: the agent crate and the copier crate it links (`ferry sync` may copy locally)."""
    return calls_in(rust_files(AGENT_SRC, SYNC_SRC))


def sync_function_calls() -> list[Call]:
    """What the artifact-sync function calls: its binary and the one crate it links, the copier (`ferry-sync`, whose
    Cargo.toml has no Lambda, STS, EFS or API Gateway SDK: the compiler keeps the CLI's calls out of it)."""
    return calls_in(rust_files(SYNC_LAMBDA_SRC, SYNC_SRC))


def actions(calls: list[Call]) -> dict[str, list[str]]:
    """IAM action -> the places that need it."""
    out: dict[str, list[str]] = {}
    for call in calls:
        out.setdefault(call.action, []).append(f"{call.path}:{call.line} {call.client}.{call.operation}()")
    return out


if __name__ == "__main__":
    for action, places in sorted(actions(agent_calls()).items()):
        print(f"{action:45} {', '.join(places)}")
