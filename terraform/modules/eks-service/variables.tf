variable "create" {
  description = "Create the EKS service. `false` creates nothing (a stack that reserves the module for later); `cluster`, `efs` and `image` are then not needed."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix of every AWS resource and of the cluster-wide Kubernetes objects (StorageClass, PersistentVolume), e.g. `ferry-prod`: at most 29 characters, so that the driver role's name prefix `<name>-efs-csi-` fits IAM's 38."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,28}$", var.name))
    error_message = "name must start with a lowercase letter and hold 1-29 lowercase letters, digits or hyphens (it names Kubernetes objects too, and the driver role's name prefix \"<name>-efs-csi-\" must fit IAM's 38)."
  }
}

variable "cluster" {
  description = "The existing EKS cluster the service is deployed into (no cluster is created): its name, its IAM OIDC provider (ARN and issuer URL without `https://`) for the EFS CSI driver's IRSA role, and the security groups of its nodes, which are allowed NFS to the model file system's mount targets."
  type = object({
    name                     = string
    oidc_provider_arn        = string
    oidc_issuer              = string
    node_security_group_ids  = optional(list(string), [])
    efs_csi_driver_namespace = optional(string, "kube-system")
  })
  default = null

  validation {
    condition     = var.cluster == null ? true : (can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster.name)))
    error_message = "cluster.name must be an EKS cluster name: 1-100 letters, digits, hyphens or underscores, starting with a letter or digit."
  }

  validation {
    condition     = var.cluster == null ? true : (can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.cluster.oidc_provider_arn)))
    error_message = "cluster.oidc_provider_arn must be an IAM OIDC provider ARN (arn:aws:iam::<account>:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<id>)."
  }

  validation {
    condition     = var.cluster == null ? true : (!startswith(var.cluster.oidc_issuer, "https://") && length(var.cluster.oidc_issuer) > 0 && endswith(var.cluster.oidc_provider_arn, "/${var.cluster.oidc_issuer}"))
    error_message = "cluster.oidc_issuer is the issuer URL without https:// (e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC), the same one oidc_provider_arn ends with."
  }

  validation {
    condition     = var.cluster == null ? true : (alltrue([for id in var.cluster.node_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))]))
    error_message = "cluster.node_security_group_ids must be security group ids (sg-...)."
  }

  validation {
    condition     = var.cluster == null ? true : (can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.cluster.efs_csi_driver_namespace)))
    error_message = "cluster.efs_csi_driver_namespace must be a Kubernetes namespace name (RFC 1123 label)."
  }
}

variable "efs" {
  description = "The model file system from modules/model-storage: its id and ARN, its read-only inference access point (id and ARN; the pods mount only this one) and the security group of its mount targets."
  type = object({
    file_system_id             = string
    file_system_arn            = string
    inference_access_point_id  = string
    inference_access_point_arn = string
    security_group_id          = string
  })
  default = null

  validation {
    condition     = var.efs == null ? true : (can(regex("^fs-[0-9a-f]{8,40}$", var.efs.file_system_id)) && can(regex("^fsap-[0-9a-f]{8,40}$", var.efs.inference_access_point_id)))
    error_message = "efs.file_system_id must be fs-... and efs.inference_access_point_id fsap-... (modules/model-storage outputs file_system_id and inference_access_point_id)."
  }

  validation {
    condition     = var.efs == null ? true : (endswith(var.efs.file_system_arn, ":file-system/${var.efs.file_system_id}") && endswith(var.efs.inference_access_point_arn, ":access-point/${var.efs.inference_access_point_id}"))
    error_message = "efs.file_system_arn and efs.inference_access_point_arn must be the ARNs of efs.file_system_id and efs.inference_access_point_id."
  }

  validation {
    condition     = var.efs == null ? true : (can(regex("^sg-[0-9a-f]{8,17}$", var.efs.security_group_id)))
    error_message = "efs.security_group_id must be the mount targets' security group id (modules/model-storage output security_group_id)."
  }
}

variable "namespace" {
  description = "The Kubernetes namespace of the inference service, created by this module with the `restricted` Pod Security Standard enforced."
  type        = string
  default     = "ferry"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace)) && !contains(["default", "kube-system", "kube-public", "kube-node-lease"], var.namespace)
    error_message = "namespace must be an RFC 1123 label (lowercase letters, digits, hyphens; at most 63) and not a namespace Kubernetes owns (default, kube-*)."
  }
}

variable "service_account" {
  description = "Name of the inference pods' service account. It has no AWS role and no Kubernetes API token: the pods only read the mounted model volume."
  type        = string
  default     = "ferry-inference"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.service_account))
    error_message = "service_account must be a Kubernetes object name (RFC 1123 subdomain)."
  }
}

variable "deployer" {
  description = "Who runs `ferry deploy --target eks`: the Kubernetes group bound to the deployer Role (exactly the calls the agent makes, in the namespace only), and optionally the IAM role (the deploy role of CI) given an EKS access entry in that group; null principal_arn when the cluster's access entries are managed elsewhere."
  type = object({
    group         = optional(string, "ferry-deployers")
    principal_arn = optional(string)
  })
  default = {}

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9._:-]{0,62}$", var.deployer.group)) && !startswith(var.deployer.group, "system:")
    error_message = "deployer.group must be 1-63 of letters, digits, . _ : - starting with a letter or digit, and not a system: group."
  }
  validation {
    condition     = var.deployer.principal_arn == null ? true : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\\w+=,.@/-]{1,512}$", var.deployer.principal_arn))
    error_message = "deployer.principal_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "image" {
  description = "The Ferry runtime's container image, pinned by digest (`<registry>/<repository>@sha256:<64 hex>`): every Deployment `ferry render --target eks` writes runs exactly this image."
  type        = string
  default     = null

  validation {
    condition     = var.image == null ? true : (can(regex("^[a-z0-9][a-z0-9._:/-]*[a-z0-9]@sha256:[0-9a-f]{64}$", var.image)))
    error_message = "image must be pinned by digest: <registry>/<repository>@sha256:<64 lowercase hex> (a tag alone can be moved)."
  }
}

variable "mount_path" {
  description = "Where the pods mount the model volume; the served set's paths are `<mount_path>/<model>/<version>` (the same layout as on Lambda)."
  type        = string
  default     = "/mnt/models"

  validation {
    condition     = can(regex("^/mnt/[A-Za-z0-9._-]+$", var.mount_path))
    error_message = "mount_path must be one folder under /mnt, e.g. /mnt/models."
  }
}

variable "efs_csi_driver" {
  description = "The EFS CSI driver: `install_addon` installs the `aws-efs-csi-driver` EKS add-on with this module's IRSA role (turn it off when the cluster already runs the driver, and give its service accounts this role: output `efs_csi_driver_role_arn`); `addon_version` pins the add-on (null: the default for the cluster version)."
  type = object({
    install_addon = optional(bool, true)
    addon_version = optional(string)
  })
  default = {}

  validation {
    condition     = var.efs_csi_driver.addon_version == null || (can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+-eksbuild\\.[0-9]+$", var.efs_csi_driver.addon_version)))
    error_message = "efs_csi_driver.addon_version must be an EKS add-on version such as v2.1.4-eksbuild.1, or null."
  }
}

variable "ingress" {
  description = "Who may call the inference pods on their port (8080), as NetworkPolicy peers: namespaces by their labels, and CIDR blocks (e.g. the VPC's, for an internal load balancer). Everything else is denied, and the pods may open no connection at all (egress denied: they make no network call)."
  type = object({
    namespace_labels = optional(list(map(string)), [])
    cidr_blocks      = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = alltrue([for c in var.ingress.cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "ingress.cidr_blocks must be IPv4 CIDR blocks other than 0.0.0.0/0."
  }

  validation {
    condition     = alltrue([for l in var.ingress.namespace_labels : length(l) > 0])
    error_message = "ingress.namespace_labels entries must each hold at least one label (an empty selector would allow every namespace)."
  }
}

variable "tags" {
  description = "Tags added to every AWS resource."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(var.tags) <= 49
    error_message = "tags may hold at most 49 tags: with the module's own ferry:module tag that is AWS's limit of 50 per resource."
  }

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags keys must hold 1-128 characters and not start with aws:, values at most 256 characters (AWS tag limits)."
  }

  validation {
    condition     = alltrue([for k, v in var.tags : can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]+$", k)) && can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]*$", v))])
    error_message = "tags keys and values may hold only letters, digits, spaces and _ . : / = + - @ (IAM's tag characters: the EFS CSI driver's role is tagged)."
  }
}
