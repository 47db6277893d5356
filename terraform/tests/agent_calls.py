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
    """What the `ferry` CLI calls (the whole agent crate: `ferry sync` may copy locally too)."""
    return calls_in(rust_files(AGENT_SRC))


def _module_path(path: Path) -> list[str]:
    parts = list(path.relative_to(AGENT_SRC).with_suffix("").parts)
    return parts[:-1] if parts[-1] in ("mod", "lib") else parts


def _module_file(parts: list[str]) -> tuple[Path, list[str]] | None:
    """The file of the longest prefix of a module path that is a module of the agent crate, and the rest."""
    for n in range(len(parts), 0, -1):
        for candidate in (AGENT_SRC.joinpath(*parts[:n]).with_suffix(".rs"), AGENT_SRC.joinpath(*parts[:n], "mod.rs")):
            if candidate.is_file():
                return candidate, parts[n:]
    return None


_PATH = re.compile(r"\b(ferry|crate|super|self|[a-z_][a-z0-9_]*)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
_REEXPORT = re.compile(r"\bpub\s+use\s+([a-z_][a-z0-9_:]*)::\{?([A-Za-z0-9_, ]+)\}?\s*;")


def _paths(path: Path, code: str) -> list[list[str]]:
    """The module paths a file names, as paths from the crate root."""
    here = _module_path(path) if path.is_relative_to(AGENT_SRC) else []
    children = set(re.findall(r"\bmod\s+([a-z_0-9]+)\s*;", code))
    out = []
    for root, rest in _PATH.findall(code):
        names = rest.split("::")[1:]
        if root == "ferry" and not path.is_relative_to(AGENT_SRC) or root == "crate" and path.is_relative_to(AGENT_SRC):
            out.append(names)
        elif root == "super" and here:
            out.append(here[:-1] + names)
        elif root == "self" and here:
            out.append(here + names)
        elif root in children:
            out.append(here + [root] + names)
    return out


def reachable(entry: Path) -> list[Path]:
    """The files of the agent crate a binary's sources name, and those they name in turn: paths through `ferry::`
    and `crate::`, `super::`, `self::` and child modules (`source::Source`), and an item a module re-exports
    (`pub use remote::x`) only when it is named. A `mod` declaration or a re-export alone reaches nothing."""
    seen, todo = set(), [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        code = code_only(path.read_text(encoding="utf-8"))
        own = _REEXPORT.sub(" ", code)  # what this file uses itself, its re-exports aside
        for parts in _paths(path, own):
            found = _module_file(parts)
            if not found:
                continue
            target, rest = found
            todo.append(target)
            if rest:  # an item of that module: follow it when the module only re-exports it
                target_code = code_only(target.read_text(encoding="utf-8"))
                for m in _REEXPORT.finditer(target_code):
                    if rest[0] in {i.strip() for i in m.group(2).split(",")}:
                        if more := _module_file(_resolve(_module_path(target), m.group(1).split("::"))):
                            todo.append(more[0])
    return sorted(seen)


def _resolve(here: list[str], path: list[str]) -> list[str]:
    """A `use` path written in module `here`, from the crate root."""
    head, rest = path[0], path[1:]
    return {"crate": rest, "super": here[:-1] + rest, "self": here + rest}.get(head, here + path)


def sync_function_calls() -> list[Call]:
    """What the artifact-sync function calls: its binary and the parts of the agent crate it reaches."""
    return calls_in(reachable(SYNC_LAMBDA_SRC / "main.rs"))


def actions(calls: list[Call]) -> dict[str, list[str]]:
    """IAM action -> the places that need it."""
    out: dict[str, list[str]] = {}
    for call in calls:
        out.setdefault(call.action, []).append(f"{call.path}:{call.line} {call.client}.{call.operation}()")
    return out


if __name__ == "__main__":
    for action, places in sorted(actions(agent_calls()).items()):
        print(f"{action:45} {', '.join(places)}")
