"""Preconditions that can fire (issue #19, item 1).

A precondition on a block that exists only when `count = C ? 1 : 0` is evaluated only when C is true: a condition
`C || ...` is then always true, and the check never runs (artifact-store's "kms_key_arn is required when
create_kms_key is false" sat on the key it guarded, which exists only when create_kms_key is true).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tfparse

dirs = tfparse.module_dirs() + tfparse.example_dirs()
_COUNT = re.compile(r"^\$\{(.+?) \? 1 : 0\}$")


def dead_preconditions(doc: dict) -> list[str]:
    dead = []
    for kind in ["resource", "data"]:
        for name, body in tfparse.nested_blocks(doc, kind).items():
            m = _COUNT.match(str(body.get("count", "")))
            if not m:
                continue
            exists_when = m.group(1).strip()
            for lifecycle in body.get("lifecycle", []):
                for precondition in lifecycle.get("precondition", []):
                    condition = tfparse.expression(precondition["condition"]).strip()
                    terms = [t.strip() for t in condition.split("||")]
                    if exists_when in terms:
                        dead.append(f"{name}: precondition `{condition}` is always true where count = {exists_when} ? 1 : 0 creates it")
    return dead


@pytest.mark.parametrize("directory", dirs, ids=[d.name for d in dirs])
def test_no_precondition_is_always_true_where_its_block_exists(directory: Path):
    dead = [d for p in tfparse.tf_files(directory) for d in dead_preconditions(tfparse.load(p))]
    assert not dead, f"{directory.name}: " + "; ".join(dead)


def test_dead_precondition_detector_finds_one():
    doc = tfparse.hcl2.loads(
        'resource "aws_kms_key" "this" {\n  count = var.create ? 1 : 0\n  lifecycle {\n    precondition {\n'
        '      condition     = var.create || var.arn != null\n      error_message = "x."\n    }\n  }\n}\n'
    )
    assert dead_preconditions(doc) == ["aws_kms_key.this: precondition `var.create || var.arn != null` is always true where count = var.create ? 1 : 0 creates it"]


def test_artifact_store_requires_a_key_arn_without_a_created_key_and_never_outputs_a_null_one():
    store = tfparse.MODULES_DIR / "artifact-store"
    guarded = [
        name
        for name, body in tfparse.all_blocks(store, "resource", nested=True).items()
        for lifecycle in body.get("lifecycle", [])
        for p in lifecycle.get("precondition", [])
        if tfparse.expression(p["condition"]) == "var.create_kms_key || var.kms_key_arn != null"
    ]
    assert guarded, "artifact-store: no precondition requires kms_key_arn when create_kms_key is false"
    resources = tfparse.all_blocks(store, "resource", nested=True)
    for name in guarded:
        assert "count" not in resources[name] and "for_each" not in resources[name], f"{name} does not always exist"
    output = tfparse.outputs(store)["kms_key_arn"]
    conditions = [tfparse.expression(p["condition"]) for p in output.get("precondition", [])]
    assert "local.kms_key_arn != null" in conditions, "artifact-store: output kms_key_arn may be null"
