#!/usr/bin/env python3
"""Creates, in the local AWS stand-in (moto), what `terraform apply` creates in AWS for the agent to deploy into:
the model functions of a platform file (one per model, the runtime's handler, an execution role), the bucket, and
the encrypted file system with its two access points (their ids are written back into the platform file).

    python tools/local_platform.py --platform .ferry-local/platform.json

moto cannot run function code without Docker, so its Lambda backend is switched to simple mode, where an invoke
answers with its request payload; the demo runs the real handler locally instead (python -m ferry_runtime.invoke).
Idempotent: what exists is left as it is.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import urllib.request
import zipfile
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
ROLE = "ferry-local-model-function"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def function_zip() -> bytes:
    """The runtime package, as the model-function module deploys it (its dependencies come from the layer)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted((ROOT / "runtime" / "ferry_runtime").rglob("*.py")):
            z.write(path, path.relative_to(ROOT / "runtime"))
    return buf.getvalue()


def simple_lambda_mode(endpoint: str) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                 data=json.dumps({"lambda": {"use_docker": False}}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def create_model_storage(platform: dict) -> None:
    """An encrypted file system with the two access points the Terraform module makes (same root directory:
    read-write for the sync function, read-only use by the model functions); their ids go into `platform`."""
    efs = boto3.client("efs")
    token = f"ferry-{platform['environment']}"
    found = efs.describe_file_systems(CreationToken=token)["FileSystems"]
    fs_id = found[0]["FileSystemId"] if found else efs.create_file_system(
        CreationToken=token, Encrypted=True, PerformanceMode="generalPurpose")["FileSystemId"]
    existing = {ap.get("Name"): ap for ap in efs.describe_access_points(FileSystemId=fs_id)["AccessPoints"]}
    arns = {}
    for role in ("inference", "sync"):
        name = f"ferry-{platform['environment']}-{role}"
        ap = existing.get(name) or efs.create_access_point(
            ClientToken=name, FileSystemId=fs_id, Tags=[{"Key": "Name", "Value": name}],
            PosixUser={"Uid": 1000, "Gid": 1000},
            RootDirectory={"Path": "/ferry/models",
                           "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "0755"}})
        arns[role] = ap["AccessPointArn"]
    platform["efs"].update(file_system_id=fs_id, inference_access_point_arn=arns["inference"],
                           sync_access_point_arn=arns["sync"])


def create(platform: dict, endpoint: str) -> list[str]:
    simple_lambda_mode(endpoint)
    create_model_storage(platform)
    iam = boto3.client("iam")
    try:
        role_arn = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    s3 = boto3.client("s3")
    try:
        s3.head_bucket(Bucket=platform["artifact_bucket"])
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=platform["artifact_bucket"])
    lam = boto3.client("lambda")
    code = function_zip()
    created = []
    for model, name in sorted(platform["functions"].items()):
        try:
            lam.get_function(FunctionName=name)
            continue
        except lam.exceptions.ResourceNotFoundException:
            pass
        lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role_arn, Handler="ferry_runtime.lambda_handler.handler",
            Code={"ZipFile": code}, Description=f"Ferry model function for {model}", MemorySize=1024, Timeout=30,
            VpcConfig={"SubnetIds": platform["network"]["subnet_ids"],
                       "SecurityGroupIds": platform["network"]["security_group_ids"]},
            FileSystemConfigs=[{"Arn": platform["efs"]["inference_access_point_arn"],
                                "LocalMountPath": platform["efs"]["mount_path"]}],
            Publish=False)
        created.append(name)
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", type=Path, required=True)
    args = parser.parse_args(argv)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint or not endpoint.startswith("http://127.0.0.1"):
        print("error: AWS_ENDPOINT_URL must point at the local stand-in (source .ferry-local/env)", file=sys.stderr)
        return 1
    doc = json.loads(args.platform.read_text())
    platform = doc.get("ferry_platform", {}).get("value", doc)
    for name in create(platform, endpoint):
        print(f"created function {name}")
    # The file system and access point ids exist now: write them back, as `terraform output` would show them.
    args.platform.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
