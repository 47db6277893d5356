"""Run the Lambda handler in this process on one payload, against a local version folder, and print its answer.
The local AWS stand-in (moto) cannot run function code, so this is how the demo and a developer see a deployed
version answer.

    python -m ferry_runtime.invoke --model-path DIR [--env-file F] --payload JSON|@FILE

The payload is a direct-invoke request ({"dataframe_split": ...}) or a whole HTTP API / function URL event.
--env-file reads KEY=VALUE lines (`export` and quotes allowed), e.g. the function's rendered environment;
--model-path, --name and --version win over it. Log lines go to stderr, the answer (JSON) to stdout.
Exit status: 0 when the model answered (HTTP 2xx), 1 on an error answer, 2 on a usage error.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import uuid
from pathlib import Path


class LocalContext:
    """The parts of Lambda's context object the handler reads."""

    def __init__(self, function_name: str):
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 0

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE")
        parts = shlex.split(value) if value.strip() else [""]
        env[key.strip()] = parts[0] if len(parts) == 1 else value.strip()
    return env


def read_payload(text: str) -> object:
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferry_runtime.invoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", help="the version folder (sets FERRY_MODEL_PATH)")
    parser.add_argument("--env-file", type=Path, help="KEY=VALUE lines to set before invoking")
    parser.add_argument("--name", help="sets FERRY_MODEL_NAME (default: from the env file or the path)")
    parser.add_argument("--version", help="sets FERRY_MODEL_VERSION (default: from the env file or the path)")
    parser.add_argument("--verify-manifest", action="store_true", help="sets FERRY_VERIFY_MANIFEST=true")
    parser.add_argument("--payload", required=True, help="the event as JSON, or @FILE")
    args = parser.parse_args(argv)

    try:
        env = read_env_file(args.env_file) if args.env_file else {}
        payload = read_payload(args.payload)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.model_path:
        env["FERRY_MODEL_PATH"] = str(Path(args.model_path).resolve())
    if args.name:
        env["FERRY_MODEL_NAME"] = args.name
    if args.version:
        env["FERRY_MODEL_VERSION"] = args.version
    if args.verify_manifest:
        env["FERRY_VERIFY_MANIFEST"] = "true"
    if not env.get("FERRY_MODEL_PATH") and not os.environ.get("FERRY_MODEL_PATH"):
        print("error: give --model-path or FERRY_MODEL_PATH in --env-file", file=sys.stderr)
        return 2
    os.environ.update(env)

    from . import logs
    logs.set_stream(sys.stderr)
    from .lambda_handler import handler

    answer = handler(payload, LocalContext(os.environ.get("FERRY_MODEL_NAME", "local")))
    print(json.dumps(answer, indent=2))
    status = answer.get("statusCode", answer.get("status", 200)) if isinstance(answer, dict) else 200
    return 0 if 200 <= int(status) < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
