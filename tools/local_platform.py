#!/usr/bin/env python3
"""Creates, in the local AWS stand-in, what `terraform apply` creates in AWS for the agent to deploy into: the
runtime layer (dist/ferry-runtime-layer-<arch>.zip, published from S3 as the Terraform examples publish it), the model
functions of a platform file (one per model: dist/ferry-runtime-function.zip, the runtime and handler of
runtime/lambda-target.json, the EFS mount, an execution role), the bucket, and the encrypted file system with its two
access points (their ids are written back into the platform file). It tells the local Lambda (tools/lambda_local)
which folder stands in for the inference access point: the platform's `efs.local_root`.

    python tools/local_platform.py --platform .ferry-local/platform.json [--layer ZIP] [--http-api]

`make package-runtime` builds dist/. Idempotent: what exists is left as it is.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.request
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standins  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET = standins.runtime_target()
DIST = ROOT / "dist"
FUNCTION_ZIP = DIST / "ferry-runtime-function.zip"
ARCHITECTURE = standins.host_architecture()
LAYER_ZIP = DIST / f"ferry-runtime-layer-{ARCHITECTURE}.zip"
LAYER_NAME = "ferry-runtime"
ROLE = "ferry-local-model-function"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def read_dist(path: Path) -> bytes:
    if not path.is_file():
        raise SystemExit(f"error: {path} is missing: run `make package-runtime` first")
    return path.read_bytes()


def publish_layer(bucket: str, layer_zip: Path) -> str:
    """The runtime layer from S3 (it is above Lambda's 50 MB direct upload); an existing version with the same code
    is reused. Returns the layer version ARN."""
    lam, s3 = boto3.client("lambda"), boto3.client("s3")
    data = read_dist(layer_zip)
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    for version in lam.list_layer_versions(LayerName=LAYER_NAME).get("LayerVersions", []):
        found = lam.get_layer_version_by_arn(Arn=version["LayerVersionArn"])
        if found["Content"]["CodeSha256"] == sha:
            return version["LayerVersionArn"]
    key = f"ferry/layers/{layer_zip.name.removesuffix('.zip')}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return lam.publish_layer_version(LayerName=LAYER_NAME, Content={"S3Bucket": bucket, "S3Key": key},
                                     CompatibleRuntimes=[TARGET["runtime"]],
                                     CompatibleArchitectures=[ARCHITECTURE])["LayerVersionArn"]


def register_mount(endpoint: str, platform: dict) -> None:
    """Tell the local Lambda which folder the functions' EFS access point shows at the mount path."""
    local_root = platform["efs"].get("local_root")
    if not local_root:
        return
    Path(local_root).mkdir(parents=True, exist_ok=True)
    req = urllib.request.Request(f"{endpoint}/ferry-lambda/mounts", method="POST",
                                 data=json.dumps({"access_point_arn": platform["efs"]["inference_access_point_arn"],
                                                  "local_root": str(Path(local_root).resolve())}).encode(),
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


def create_http_api(platform: dict) -> None:
    """The HTTP API of the http-api module (`ferry-<environment>`, protocol HTTP, no routes of its own): its id goes
    into `platform` as `http_api_id`. An API of that name is reused."""
    apigw = boto3.client("apigatewayv2")
    name = f"ferry-{platform['environment']}"
    found = [a for a in apigw.get_apis().get("Items", []) if a["Name"] == name]
    api = found[0] if found else apigw.create_api(
        Name=name, ProtocolType="HTTP", Description="Ferry model inference: POST /models/{model}/{alias}/invocations")
    platform["http_api_id"] = api["ApiId"]


def create(platform: dict, endpoint: str, layer_zip: Path = LAYER_ZIP, local_lambda: bool = True) -> list[str]:
    """`local_lambda=False` when `endpoint` is moto itself (bench-deploy: control-plane calls only, invokes answered
    by moto's echo), which has no local folder to register."""
    create_model_storage(platform)
    if local_lambda:
        register_mount(endpoint, platform)
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
    code = read_dist(FUNCTION_ZIP)
    layer_arn = publish_layer(platform["artifact_bucket"], layer_zip)
    created = []
    for model, name in sorted(platform["functions"].items()):
        try:
            lam.get_function(FunctionName=name)
            continue
        except lam.exceptions.ResourceNotFoundException:
            pass
        lam.create_function(
            FunctionName=name, Runtime=TARGET["runtime"], Role=role_arn, Handler=TARGET["handler"],
            Architectures=[ARCHITECTURE], Layers=[layer_arn],
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
    parser.add_argument("--layer", type=Path, default=LAYER_ZIP, help=f"the runtime layer zip (default {LAYER_ZIP})")
    parser.add_argument("--http-api", action="store_true",
                        help="create the stack's HTTP API too (as the http-api module does) and set http_api_id")
    args = parser.parse_args(argv)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint or not endpoint.startswith("http://127.0.0.1"):
        print("error: AWS_ENDPOINT_URL must point at the local stand-in (source .ferry-local/env)", file=sys.stderr)
        return 1
    doc = json.loads(args.platform.read_text())
    platform = doc.get("ferry_platform", {}).get("value", doc)
    for name in create(platform, endpoint, args.layer):
        print(f"created function {name}")
    if args.http_api:
        create_http_api(platform)
    # The file system and access point ids exist now: write them back, as `terraform output` would show them.
    args.platform.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
