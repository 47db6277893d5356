#!/usr/bin/env python3
"""Registers versions of the demo's custom models in a real MLflow registry, through MLflow's own client.

    python tools/registry_fixture.py register --model risk-score --versions 3 \
        --approve 1,2 --approver qa@example.org --ticket QA-812 --alias production=2
    python tools/registry_fixture.py approve --model risk-score --version 3 --ticket QA-813
    python tools/registry_fixture.py revoke --model risk-score --version 1

Needs MLFLOW_TRACKING_URI, MLFLOW_S3_ENDPOINT_URL and AWS credentials in the environment (`.ferry-local/env`).
Prints one JSON object per registered version: name, version, artifact_uri.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import mlflow
from mlflow import MlflowClient

# The demo models take pandas frames on purpose (no type hints); MLflow's advice about hints is noise here.
warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")

MODELS_FILE = Path(__file__).resolve().parent.parent / "examples" / "models" / "demo_models.py"
sys.path.insert(0, str(MODELS_FILE.parent))
import demo_models  # noqa: E402


# MLflow infers a model's requirements by loading it in a new interpreter: about 4 s of every version logged, and most
# of a test fixture's time. A demo model imports the same packages in every version, so what MLflow inferred for the
# first version it logs is passed on to the rest (`pip_requirements`: the same requirements.txt, written the same way).
# With FERRY_FIXTURE_REQUIREMENTS=DIR the first inference is kept there for later processes too: the integration
# tests give one folder per run of their binary, so each run still infers on its own Python and MLflow.
REQUIREMENTS_DIR_VAR = "FERRY_FIXTURE_REQUIREMENTS"


def _known_requirements(model: str) -> Path | None:
    folder = os.environ.get(REQUIREMENTS_DIR_VAR)
    return Path(folder) / f"{model}-py{sys.version_info.major}.{sys.version_info.minor}.txt" if folder else None


def _keep_requirements(kept: Path | None, model_uri: str) -> list[str]:
    inferred = Path(mlflow.pyfunc.get_model_dependencies(model_uri)).read_text()
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(inferred)
        partial.replace(kept)  # atomic: tests register at once
    return inferred.splitlines()


def register(model: str, count: int, registered_name: str | None = None) -> list[dict]:
    """Log and register `count` new versions; version k (1-based among those already there) gets its own weights."""
    name = registered_name or model
    client = MlflowClient()
    mlflow.set_experiment(f"ferry-demo-{name}")
    existing = len(client.search_model_versions(f"name='{name}'")) if _exists(client, name) else 0
    known = _known_requirements(model)
    requirements = known.read_text().splitlines() if known is not None and known.exists() else None
    out = []
    for k in range(existing + 1, existing + count + 1):
        with mlflow.start_run(run_name=f"{name}-v{k}"):
            info = mlflow.pyfunc.log_model(
                name="model", python_model=demo_models.build(model, k), code_paths=[str(MODELS_FILE)],
                input_example=demo_models.input_example(model), pip_requirements=requirements)
        if requirements is None:
            requirements = _keep_requirements(known, info.model_uri)
        mv = mlflow.register_model(info.model_uri, name)
        out.append({"name": name, "version": mv.version,
                    "artifact_uri": client.get_model_version_download_uri(name, mv.version)})
    return out


def _exists(client: MlflowClient, name: str) -> bool:
    try:
        client.get_registered_model(name)
        return True
    except mlflow.exceptions.MlflowException:
        return False


def approve(name: str, version: str, approver: str, ticket: str, digest: str | None = None) -> None:
    client = MlflowClient()
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    tags = {"ferry.approved": "true", "ferry.approved_by": approver, "ferry.approved_at": now, "ferry.ticket": ticket}
    if digest:
        tags["ferry.artifact_sha256"] = digest
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def revoke(name: str, version: str) -> None:
    MlflowClient().set_model_version_tag(name, version, "ferry.approved", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register")
    reg.add_argument("--model", required=True, choices=sorted(demo_models.BUILDERS))
    reg.add_argument("--name", help="registered model name (default: the demo model's name)")
    reg.add_argument("--versions", type=int, default=1)
    reg.add_argument("--approve", default="", help="comma-separated versions to approve")
    reg.add_argument("--approver", default="qa@example.org")
    reg.add_argument("--ticket", default="QA-100")
    reg.add_argument("--alias", action="append", default=[], help="ALIAS=VERSION, a registry alias to set")
    ap = sub.add_parser("approve")
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--approver", default="qa@example.org")
    ap.add_argument("--ticket", default="QA-100")
    ap.add_argument("--digest")
    rv = sub.add_parser("revoke")
    rv.add_argument("--name", required=True)
    rv.add_argument("--version", required=True)
    args = parser.parse_args(argv)

    if args.command == "register":
        name = args.name or args.model
        for row in register(args.model, args.versions, name):
            print(json.dumps(row))
        for v in filter(None, args.approve.split(",")):
            approve(name, v.strip(), args.approver, args.ticket)
        for pair in args.alias:
            alias, _, version = pair.partition("=")
            MlflowClient().set_registered_model_alias(name, alias, version)
    elif args.command == "approve":
        approve(args.name, args.version, args.approver, args.ticket, args.digest)
    else:
        revoke(args.name, args.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
