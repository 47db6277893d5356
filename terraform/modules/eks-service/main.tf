# Reserved for the EKS inference service (a later issue): for now only the IAM role of the inference
# pods' service account (IRSA), allowed to mount the model file system read-only. Nothing is created
# unless `create = true`.
locals {
  tags = merge(var.tags, { "ferry:module" = "eks-service" })
}

data "aws_iam_policy_document" "trust" {
  count = var.create ? 1 : 0

  lifecycle {
    precondition {
      condition     = var.cluster != null && var.efs != null
      error_message = "cluster and efs are required when create is true."
    }
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.cluster.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.cluster.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.cluster.namespace}:${var.cluster.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.cluster.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "inference" {
  count = var.create ? 1 : 0

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
}

resource "aws_iam_role" "inference" {
  count = var.create ? 1 : 0

  name_prefix        = "${var.name}-eks-inference-"
  description        = "Ferry EKS inference pods (service account ${try("${var.cluster.namespace}/${var.cluster.service_account}", "")})"
  assume_role_policy = data.aws_iam_policy_document.trust[0].json
  tags               = local.tags

}

resource "aws_iam_role_policy" "inference" {
  count = var.create ? 1 : 0

  name   = "ferry-eks-inference"
  role   = aws_iam_role.inference[0].id
  policy = data.aws_iam_policy_document.inference[0].json
}
