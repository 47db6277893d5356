"""Every environment variable Terraform sets on a function is read by the code that runs there (issue #19, item 1).

A variable nothing reads misleads whoever debugs a function (FERRY_MODEL_ROOT was set on every model function and
read by nothing: the agent renders each version's environment from templates/).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tfparse

REPO = tfparse.TERRAFORM_DIR.parent
# The code a function runs, and what renders the environment of each published version.
READERS = {
    "model-function": [REPO / "runtime", REPO / "templates", REPO / "agent" / "src"],
    "artifact-sync": [REPO / "sync-lambda" / "src", REPO / "sync" / "src"],
}
_NAME = re.compile(r"\b(FERRY_[A-Z0-9_]+)\b")


def set_by_terraform(module: str) -> dict[str, str]:
    """Names in the `environment` blocks of the module's functions -> the function."""
    out = {}
    for name, body in tfparse.all_blocks(tfparse.MODULES_DIR / module, "resource", nested=True).items():
        if name.startswith("aws_lambda_function."):
            for environment in body.get("environment", []):
                for variable in _NAME.findall(str(environment.get("variables", ""))):
                    out[variable] = name
    return out


def read_names(roots: list[Path]) -> set[str]:
    names = set()
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.suffix in {".py", ".rs", ".hbs", ".json"} and "tests" not in path.parts:
                names |= set(_NAME.findall(path.read_text(encoding="utf-8", errors="replace")))
    return names


@pytest.mark.parametrize("module", sorted(READERS))
def test_every_environment_variable_terraform_sets_is_read(module: str):
    read = read_names(READERS[module])
    unread = {v: fn for v, fn in set_by_terraform(module).items() if v not in read}
    assert not unread, f"modules/{module}: {unread} set in the environment but read by nothing under {[str(r.relative_to(REPO)) for r in READERS[module]]}"


def test_the_artifact_sync_function_gets_its_configuration():
    assert {"FERRY_EFS_ROOT", "FERRY_ARTIFACT_BUCKET", "FERRY_ALLOWED_SOURCE_PREFIXES"} <= set(set_by_terraform("artifact-sync"))
