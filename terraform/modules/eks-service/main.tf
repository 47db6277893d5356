# The EKS inference service's platform, in an existing cluster (no cluster is created): the EFS CSI driver's IAM
# role (IRSA) and add-on, NFS from the nodes to the model file system, and in Kubernetes a namespace, the model
# volume bound to the read-only inference access point, the pods' service account and their network policy, and the
# deployer's Role: exactly the calls `ferry deploy --target eks` makes (deployer-rules.json, which agent/tests/it/eks.rs
# checks against the calls it sees), bound to a Kubernetes group that an EKS access entry gives the deploy role.
# Nothing is created when `create` is false. The Deployments themselves are rendered per model by `ferry render --target eks` (templates/k8s/).
locals {
  count        = var.create ? 1 : 0
  tags         = merge(var.tags, { "ferry:module" = "eks-service" })
  storage_name = "${var.name}-models"
  labels = {
    "app.kubernetes.io/part-of"    = "ferry"
    "app.kubernetes.io/managed-by" = "terraform"
  }
  # The driver's two service accounts (controller and node DaemonSet), as the add-on and its Helm chart name them.
  efs_csi_service_accounts = var.cluster == null ? [] : [for sa in ["efs-csi-controller-sa", "efs-csi-node-sa"] :
  "system:serviceaccount:${var.cluster.efs_csi_driver_namespace}:${sa}"]
}

# ---- the EFS CSI driver's IAM role (IRSA) ---------------------------------------------------------------------
data "aws_iam_policy_document" "efs_csi_trust" {
  count = local.count

  lifecycle {
    precondition {
      condition     = var.cluster != null && var.efs != null && var.image != null
      error_message = "cluster, efs and image are required when create is true."
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
      values   = local.efs_csi_service_accounts
    }
    condition {
      test     = "StringEquals"
      variable = "${var.cluster.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# Static provisioning only (the PersistentVolume below names the access point), so the driver needs no
# CreateAccessPoint/DeleteAccessPoint (what the AWS managed AmazonEFSCSIDriverPolicy grants): it describes the model
# file system and mounts it read-only through the inference access point. Never ClientWrite, never ClientRootAccess.
data "aws_iam_policy_document" "efs_csi" {
  count = local.count

  statement {
    sid       = "DescribeModelFileSystem"
    actions   = ["elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeMountTargets", "elasticfilesystem:DescribeAccessPoints"]
    resources = [var.efs.file_system_arn, var.efs.inference_access_point_arn]
  }

  statement {
    sid       = "MountModelsReadOnly"
    actions   = ["elasticfilesystem:ClientMount"]
    resources = [var.efs.file_system_arn]
    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [var.efs.inference_access_point_arn]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["true"]
    }
  }
}

resource "aws_iam_role" "efs_csi" {
  count = local.count

  name_prefix        = "${var.name}-efs-csi-"
  description        = "EFS CSI driver of cluster ${var.cluster.name}: mounts the Ferry model file system read-only"
  assume_role_policy = data.aws_iam_policy_document.efs_csi_trust[0].json
  tags               = local.tags
}

resource "aws_iam_role_policy" "efs_csi" {
  count = local.count

  name   = "ferry-efs-csi-read-only"
  role   = aws_iam_role.efs_csi[0].id
  policy = data.aws_iam_policy_document.efs_csi[0].json
}

resource "aws_eks_addon" "efs_csi" {
  count = var.create && var.efs_csi_driver.install_addon ? 1 : 0

  cluster_name                = var.cluster.name
  addon_name                  = "aws-efs-csi-driver"
  addon_version               = var.efs_csi_driver.addon_version
  service_account_role_arn    = aws_iam_role.efs_csi[0].arn
  resolve_conflicts_on_create = "NONE"
  resolve_conflicts_on_update = "PRESERVE"
  tags                        = local.tags
}

# NFS from the cluster's nodes (where the CSI node plugin mounts) to the mount targets of modules/model-storage.
resource "aws_vpc_security_group_ingress_rule" "nfs_from_nodes" {
  count = var.create ? length(var.cluster.node_security_group_ids) : 0

  security_group_id            = var.efs.security_group_id
  description                  = "NFS from the nodes of EKS cluster ${var.cluster.name} (Ferry inference)"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = var.cluster.node_security_group_ids[count.index]
  tags                         = local.tags
}

# ---- Kubernetes ---------------------------------------------------------------------------------------------------
resource "kubernetes_namespace_v1" "this" {
  count = local.count

  metadata {
    name = var.namespace
    labels = merge(local.labels, {
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    })
  }
}

# No AWS role (no IRSA annotation) and no API token: the pods read the mounted volume and call nothing.
resource "kubernetes_service_account_v1" "inference" {
  count = local.count

  metadata {
    name      = var.service_account
    namespace = kubernetes_namespace_v1.this[0].metadata[0].name
    labels    = local.labels
  }
  automount_service_account_token = false
}

# A class of its own so that only the PersistentVolume below can bind the claim; nothing is provisioned
# dynamically (no provisioningMode parameter) and nothing is ever deleted on release.
resource "kubernetes_storage_class_v1" "models" {
  count = local.count

  metadata {
    name   = local.storage_name
    labels = local.labels
  }
  storage_provisioner    = "efs.csi.aws.com"
  reclaim_policy         = "Retain"
  volume_binding_mode    = "Immediate"
  allow_volume_expansion = false
}

resource "kubernetes_persistent_volume_v1" "models" {
  count = local.count

  metadata {
    name   = local.storage_name
    labels = local.labels
  }
  spec {
    capacity = {
      storage = "1Gi" # required by the API; EFS has no size
    }
    access_modes                     = ["ReadOnlyMany"]
    persistent_volume_reclaim_policy = "Retain"
    storage_class_name               = kubernetes_storage_class_v1.models[0].metadata[0].name
    # iam: mount with the driver's role (the file system policy allows only access-point mounts); tls: the file
    # system policy refuses anything else.
    mount_options = ["iam", "tls"]
    persistent_volume_source {
      csi {
        driver        = "efs.csi.aws.com"
        volume_handle = "${var.efs.file_system_id}::${var.efs.inference_access_point_id}"
        read_only     = true
      }
    }
    claim_ref {
      namespace = kubernetes_namespace_v1.this[0].metadata[0].name
      name      = local.storage_name
    }
  }
}

resource "kubernetes_persistent_volume_claim_v1" "models" {
  count = local.count

  metadata {
    name      = local.storage_name
    namespace = kubernetes_namespace_v1.this[0].metadata[0].name
    labels    = local.labels
  }
  spec {
    access_modes       = ["ReadOnlyMany"]
    storage_class_name = kubernetes_storage_class_v1.models[0].metadata[0].name
    volume_name        = kubernetes_persistent_volume_v1.models[0].metadata[0].name
    resources {
      requests = {
        storage = "1Gi"
      }
    }
  }
}

# Every pod of the namespace: ingress only on the server's port and only from the peers in var.ingress; no egress
# at all (the runtime makes no network call; the NFS mount is the node's, not the pod's). With no peer given, the
# pods take no traffic but the kubelet's probes.
resource "kubernetes_network_policy_v1" "inference" {
  count = local.count

  metadata {
    name      = "${var.name}-inference"
    namespace = kubernetes_namespace_v1.this[0].metadata[0].name
    labels    = local.labels
  }
  spec {
    pod_selector {}
    policy_types = ["Ingress", "Egress"]

    dynamic "ingress" {
      for_each = length(var.ingress.namespace_labels) + length(var.ingress.cidr_blocks) > 0 ? [1] : []
      content {
        ports {
          port     = "8080"
          protocol = "TCP"
        }
        dynamic "from" {
          for_each = var.ingress.namespace_labels
          content {
            namespace_selector {
              match_labels = from.value
            }
          }
        }
        dynamic "from" {
          for_each = var.ingress.cidr_blocks
          content {
            ip_block {
              cidr = from.value
            }
          }
        }
      }
    }
  }
}

# ---- the deployer: `ferry deploy --target eks` and `ferry retire --target eks` --------------------------------------
# Exactly what the agent calls in the namespace (agent/src/eks/cluster.rs): server-side apply (patch, also as a dry
# run; an apply that creates is authorized as create too) and get of what it renders, a watch of its Deployments,
# delete of an autoscaler or budget no longer rendered, and the list of pods when a rollout fails. No secrets, no
# other kinds, nothing cluster-wide.
resource "kubernetes_role_v1" "deployer" {
  count = local.count

  metadata {
    name      = "${var.name}-deployer"
    namespace = kubernetes_namespace_v1.this[0].metadata[0].name
    labels    = local.labels
  }

  dynamic "rule" {
    for_each = jsondecode(file("${path.module}/deployer-rules.json"))
    content {
      api_groups = rule.value.api_groups
      resources  = rule.value.resources
      verbs      = rule.value.verbs
    }
  }
}

resource "kubernetes_role_binding_v1" "deployer" {
  count = local.count

  metadata {
    name      = "${var.name}-deployer"
    namespace = kubernetes_namespace_v1.this[0].metadata[0].name
    labels    = local.labels
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.deployer[0].metadata[0].name
  }
  subject {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Group"
    name      = var.deployer.group
  }
}

# The deploy role (CI's) in the cluster, as a member of the deployer group only: no access policy, so what it may do
# is the Role above. Left out when the cluster's access is managed elsewhere (principal_arn null).
resource "aws_eks_access_entry" "deployer" {
  count = var.create && var.deployer.principal_arn != null ? 1 : 0

  cluster_name      = var.cluster.name
  principal_arn     = var.deployer.principal_arn
  kubernetes_groups = [var.deployer.group]
  type              = "STANDARD"
  tags              = local.tags
}
