data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.region
  account   = data.aws_caller_identity.current.account_id
  ec2_arn   = "arn:${local.partition}:ec2:${local.region}:${local.account}"
  tags      = merge(var.tags, { "ferry:module" = "model-function", "ferry:function" = var.function_name })
}

# AWS refuses a function whose file system has no mount target yet: this ties the function to them.
resource "terraform_data" "efs_mount_targets" {
  input = var.efs.mount_target_ids
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

# ---- execution role -------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }

  statement {
    sid       = "DescribeNetworkInterfaces"
    actions   = ["ec2:DescribeNetworkInterfaces"]
    resources = ["*"] # Describe* actions have no resource-level permissions
  }

  statement {
    sid = "ManageOwnNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = concat(
      ["${local.ec2_arn}:network-interface/*"],
      [for s in var.vpc.subnet_ids : "${local.ec2_arn}:subnet/${s}"],
      [for g in var.vpc.security_group_ids : "${local.ec2_arn}:security-group/${g}"],
    )
  }

  statement {
    sid       = "MountModelsReadOnly"
    actions   = ["elasticfilesystem:ClientMount"]
    resources = [var.efs.file_system_arn]
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [var.efs.access_point_arn]
    }
  }

  statement {
    sid       = "DecryptEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "this" {
  name_prefix          = substr("${var.function_name}-", 0, 38)
  description          = "Execution role of the Ferry model function ${var.function_name}"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.role_permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "this" {
  name   = "ferry-model-function"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---- function ---------------------------------------------------------------------------------------------------
resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:invoked synchronously (aliases, HTTP API); a dead-letter queue only applies to asynchronous invocations
  function_name = var.function_name
  description   = var.description
  role          = aws_iam_role.this.arn
  package_type  = var.package.type
  architectures = [var.architecture]
  publish       = false # Ferry publishes one version per approved model version

  filename          = var.package.type == "Zip" ? var.package.filename : null
  s3_bucket         = var.package.type == "Zip" ? var.package.s3_bucket : null
  s3_key            = var.package.type == "Zip" ? var.package.s3_key : null
  s3_object_version = var.package.type == "Zip" ? var.package.s3_object_version : null
  handler           = var.package.type == "Zip" ? var.package.handler : null
  runtime           = var.package.type == "Zip" ? var.package.runtime : null
  layers            = var.package.type == "Zip" ? var.package.layers : null
  image_uri         = var.package.type == "Image" ? var.package.image_uri : null

  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn
  code_signing_config_arn        = var.code_signing_config_arn

  environment {
    variables = var.environment
  }

  vpc_config {
    subnet_ids         = var.vpc.subnet_ids
    security_group_ids = var.vpc.security_group_ids
  }

  file_system_config {
    arn              = var.efs.access_point_arn
    local_mount_path = var.efs.mount_path
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = local.tags

  # Ferry updates these on $LATEST and publishes a version per approved model version; a later
  # `terraform apply` must not revert them (nor fight the agent over $LATEST).
  lifecycle {
    ignore_changes = [
      description,
      environment,
      memory_size,
      timeout,
      layers,
      handler,
      runtime,
      ephemeral_storage,
      image_config,
      filename,
      s3_bucket,
      s3_key,
      s3_object_version,
      source_code_hash,
      image_uri,
    ]
  }

  depends_on = [
    terraform_data.efs_mount_targets,
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.this,
  ]
}
