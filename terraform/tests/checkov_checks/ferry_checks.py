"""Ferry's own checkov checks, loaded by run_checkov.py (`--external-checks-dir`), for resources that checkov's
bundled checks leave unchecked: CKV_AWS_186 (object encrypted with a customer managed key) covers only the
deprecated `aws_s3_bucket_object`, and nothing checks what a Lambda layer declares itself compatible with."""

from __future__ import annotations

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


def _value(conf: dict, key: str):
    value = conf.get(key)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


class S3ObjectEncryptedWithCMK(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure an S3 object is encrypted by KMS with a customer managed key (CKV_AWS_186 for aws_s3_object)",
            id="CKV_FERRY_1",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["aws_s3_object"],
        )

    def scan_resource_conf(self, conf: dict) -> CheckResult:
        sse = _value(conf, "server_side_encryption")
        kms_key = _value(conf, "kms_key_id")
        if sse in ("aws:kms", "aws:kms:dsse") and kms_key:
            return CheckResult.PASSED
        return CheckResult.FAILED


class LambdaLayerDeclaresItsRuntimeAndArchitecture(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure a Lambda layer version declares the runtimes and architectures it was built for",
            id="CKV_FERRY_2",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["aws_lambda_layer_version"],
        )

    def scan_resource_conf(self, conf: dict) -> CheckResult:
        runtimes = conf.get("compatible_runtimes")
        architectures = conf.get("compatible_architectures")
        if runtimes and runtimes != [[]] and architectures and architectures != [[]]:
            return CheckResult.PASSED
        return CheckResult.FAILED


s3_object_check = S3ObjectEncryptedWithCMK()
layer_check = LambdaLayerDeclaresItsRuntimeAndArchitecture()
