data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
  tags         = merge(var.tags, { "ferry:module" = "model-storage" })
}

resource "aws_efs_file_system" "this" {
  creation_token                  = var.name
  encrypted                       = true
  kms_key_id                      = var.kms_key_arn
  performance_mode                = var.performance_mode
  throughput_mode                 = var.throughput.mode
  provisioned_throughput_in_mibps = var.throughput.mode == "provisioned" ? var.throughput.provisioned_mib : null

  dynamic "lifecycle_policy" {
    for_each = var.transition_to_ia == null ? [] : [var.transition_to_ia]
    content {
      transition_to_ia = lifecycle_policy.value
    }
  }

  tags = merge(local.tags, { Name = "${var.name}-models" })
}

resource "aws_efs_backup_policy" "this" {
  file_system_id = aws_efs_file_system.this.id

  backup_policy {
    status = var.enable_backup_policy ? "ENABLED" : "DISABLED"
  }
}

# ---- network ------------------------------------------------------------------------------------------------
resource "aws_security_group" "efs" {
  name_prefix = "${var.name}-efs-"
  description = "Model file system mount targets: NFS from the Ferry functions only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-efs" })

  lifecycle {
    create_before_destroy = true
  }
}

# count, not for_each: the ids are usually unknown until the network module's apply.
resource "aws_vpc_security_group_ingress_rule" "nfs" {
  count = length(var.client_security_group_ids)

  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the Ferry functions"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = var.client_security_group_ids[count.index]
  tags                         = local.tags
}

resource "aws_efs_mount_target" "this" {
  count = length(var.subnet_ids)

  file_system_id  = aws_efs_file_system.this.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = [aws_security_group.efs.id]
}

# ---- access points --------------------------------------------------------------------------------------------
# Read-write, for the artifact-sync function: it creates the root directory on first use, owned by the writer.
resource "aws_efs_access_point" "sync" {
  file_system_id = aws_efs_file_system.this.id

  posix_user {
    uid = var.posix.writer_uid
    gid = var.posix.gid
  }

  root_directory {
    path = var.root_directory
    creation_info {
      owner_uid   = var.posix.writer_uid
      owner_gid   = var.posix.gid
      permissions = "0755"
    }
  }

  tags = merge(local.tags, { Name = "${var.name}-sync-rw" })
}

# Read-only, for inference: a different uid than the owner, against 0755 directories, and only
# elasticfilesystem:ClientMount (never ClientWrite) in the file system policy below.
resource "aws_efs_access_point" "inference" {
  file_system_id = aws_efs_file_system.this.id

  posix_user {
    uid = var.posix.reader_uid
    gid = var.posix.gid
  }

  root_directory {
    path = var.root_directory
    creation_info {
      owner_uid   = var.posix.writer_uid
      owner_gid   = var.posix.gid
      permissions = "0755"
    }
  }

  tags = merge(local.tags, { Name = "${var.name}-inference-ro" })
}

# ---- file system policy -----------------------------------------------------------------------------------------
# Principals of this account may mount only through an access point, only over TLS; writing is allowed
# only through the sync access point. Identity policies (model-function, artifact-sync) narrow it further.
data "aws_iam_policy_document" "efs" {
  statement {
    sid       = "ReadOnlyThroughInferenceAccessPoint"
    actions   = ["elasticfilesystem:ClientMount"]
    resources = [aws_efs_file_system.this.arn]
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.inference.arn]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["true"]
    }
  }

  statement {
    sid       = "ReadWriteThroughSyncAccessPoint"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.this.arn]
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.sync.arn]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["true"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["elasticfilesystem:*"]
    resources = [aws_efs_file_system.this.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_efs_file_system_policy" "this" {
  file_system_id = aws_efs_file_system.this.id
  policy         = data.aws_iam_policy_document.efs.json
}
