data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.region

  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : var.oidc_provider_arn

  subjects = concat(
    [for b in var.github.branches : "repo:${var.github.repository}:ref:refs/heads/${b}"],
    [for e in var.github.environments : "repo:${var.github.repository}:environment:${e}"],
  )

  functions           = values(var.model_function_arns)
  qualified_functions = [for a in local.functions : "${a}:*"]

  bucket = var.artifact_store.bucket_arn
  audit  = "${local.bucket}/${var.artifact_store.audit_prefix}*"
  lock   = "${local.bucket}/${var.artifact_store.lock_prefix}*"

  tags = merge(var.tags, { "ferry:module" = "deploy-role" })
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url             = "https://token.actions.githubusercontent.com"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = var.oidc_thumbprints
  tags            = local.tags
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "GitHubActionsOfThisRepository"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = local.subjects
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "Assumed by CI (GitHub Actions ${var.github.repository}) to run ferry deploy"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags

  lifecycle {
    precondition {
      condition     = var.create_oidc_provider || var.oidc_provider_arn != null
      error_message = "oidc_provider_arn is required when create_oidc_provider is false."
    }
  }
}

# Exactly the calls the agent makes (terraform/tests/test_iam_matches_agent.py compares them with its sources).
data "aws_iam_policy_document" "deploy" {
  statement {
    sid       = "WhoAmI"
    actions   = ["sts:GetCallerIdentity"]
    resources = ["*"]
  }

  statement {
    sid = "ObserveModelFunctions"
    actions = [
      "lambda:GetFunction",
      "lambda:ListVersionsByFunction",
      "lambda:ListAliases",
      "lambda:GetAlias",
    ]
    resources = concat(local.functions, local.qualified_functions)
  }

  statement {
    sid       = "PublishModelVersions"
    actions   = ["lambda:UpdateFunctionConfiguration", "lambda:PublishVersion"]
    resources = local.functions
  }

  statement {
    sid       = "AliasModelVersions"
    actions   = ["lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"]
    resources = concat(local.functions, local.qualified_functions)
  }

  # Each published version is pinned to the runtime version it was published on before its alias exists; verify
  # reads the pin back. Every one of these calls names a version, so only qualified ARNs match.
  statement {
    sid = "ModelVersionRuntimes"
    actions = [
      "lambda:PutRuntimeManagementConfig",
      "lambda:GetRuntimeManagementConfig",
    ]
    resources = local.qualified_functions
  }

  statement {
    sid       = "SmokeInvokeModelVersions"
    actions   = ["lambda:InvokeFunction"]
    resources = concat(local.functions, local.qualified_functions)
  }

  statement {
    sid       = "ProvisionModelVersions"
    actions   = ["lambda:PutProvisionedConcurrencyConfig"]
    resources = local.qualified_functions
  }

  # Garbage collection of published versions: only qualified ARNs (<function>:<version>) match, so
  # the function itself can never be deleted with this role.
  statement {
    sid       = "DeletePublishedVersions"
    actions   = ["lambda:DeleteFunction"]
    resources = local.qualified_functions
  }

  dynamic "statement" {
    for_each = var.sync_function_arn != null ? [var.sync_function_arn] : []
    content {
      sid       = "InvokeArtifactSync"
      actions   = ["lambda:InvokeFunction"]
      resources = [statement.value, "${statement.value}:*"]
    }
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = [for p in var.artifact_store.artifact_prefixes : "${local.bucket}/${p}*"]
  }

  statement {
    sid       = "ListArtifactsAuditAndLock"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        for p in concat(var.artifact_store.artifact_prefixes, [var.artifact_store.audit_prefix, var.artifact_store.lock_prefix]) : "${p}*"
      ]
    }
  }

  statement {
    sid       = "DeployLock"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    resources = [local.lock]
  }

  statement {
    sid       = "WriteAuditRecords"
    actions   = var.allow_audit_read ? ["s3:PutObject", "s3:GetObject"] : ["s3:PutObject"]
    resources = [local.audit]
  }

  statement {
    sid    = "NeverDeleteAuditRecords"
    effect = "Deny"
    actions = [
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:PutObjectRetention",
      "s3:PutObjectLegalHold",
      "s3:BypassGovernanceRetention",
      "s3:PutLifecycleConfiguration",
      "s3:PutBucketPolicy",
      "s3:DeleteBucketPolicy",
    ]
    resources = [local.bucket, local.audit]
  }

  dynamic "statement" {
    for_each = length(var.artifact_store.kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "BucketEncryption"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = var.artifact_store.kms_key_arns
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }

  # Every deploy updates a model function's environment, which is encrypted with the stack's key: Lambda encrypts
  # the new variables with the caller's kms:Encrypt and kms:CreateGrant, and GetFunction returns them
  # decrypted with the caller's kms:Decrypt (Lambda developer guide, "Securing Lambda environment variables").
  dynamic "statement" {
    for_each = var.function_kms_key_arn != null ? [var.function_kms_key_arn] : []
    content {
      sid       = "FunctionEnvironmentEncryption"
      actions   = ["kms:Encrypt", "kms:CreateGrant", "kms:Decrypt"]
      resources = [var.function_kms_key_arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["lambda.${local.region}.amazonaws.com"]
      }
    }
  }

  # Routes per alias on the HTTP API (`ferry deploy` creates them, `ferry verify` reads them, `ferry retire` deletes
  # them): API Gateway authorizes its management API by method and path, so the role may list, create and delete the
  # routes and integrations of this one API, and nothing else of it (not the API, its stages or authorizers).
  dynamic "statement" {
    for_each = var.http_api != null ? [var.http_api] : []
    content {
      sid     = "ManageAliasRoutes"
      actions = ["apigateway:GET", "apigateway:POST", "apigateway:DELETE"]
      resources = [
        for p in ["routes", "routes/*", "integrations", "integrations/*"] :
        "arn:${local.partition}:apigateway:${local.region}::/apis/${statement.value.api_id}/${p}"
      ]
    }
  }

  # Each route's invoke permission sits on its alias (a qualified ARN): never on the function itself.
  dynamic "statement" {
    for_each = var.http_api != null ? [1] : []
    content {
      sid       = "AliasInvokePermissions"
      actions   = ["lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"]
      resources = local.qualified_functions
    }
  }

  # Function URLs per alias, for models the catalog serves with `endpoint = "function_url"`: the role lists a
  # function's URLs, and creates and deletes them on aliases only (qualified ARNs), never on the function itself.
  dynamic "statement" {
    for_each = var.function_urls ? [1] : []
    content {
      sid       = "ListFunctionUrls"
      actions   = ["lambda:ListFunctionUrlConfigs"]
      resources = local.functions
    }
  }

  dynamic "statement" {
    for_each = var.function_urls ? [1] : []
    content {
      sid       = "AliasFunctionUrls"
      actions   = ["lambda:CreateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig"]
      resources = local.qualified_functions
    }
  }

  # `ferry verify` checks the model file system and its two access points.
  statement {
    sid       = "VerifyModelStorage"
    actions   = ["elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeAccessPoints"]
    resources = concat([var.model_storage.file_system_arn], var.model_storage.access_point_arns)
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "ferry-deploy"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.deploy.json
}
