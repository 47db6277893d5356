variable "region" {
  description = "AWS region of the cluster and of the Ferry platform."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as eu-west-1."
  }
}

variable "environment" {
  description = "The Ferry environment (`prod`, `staging`, ...) whose platform the service serves; it prefixes the resource names as in the Ferry stack."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.environment))
    error_message = "environment must start with a lowercase letter and hold 1-16 lowercase letters, digits or hyphens."
  }
}

variable "cluster" {
  description = "The existing EKS cluster: name, IAM OIDC provider ARN and issuer (without https://), and its nodes' security groups (allowed NFS to the model file system). `aws eks describe-cluster --name NAME --query cluster.identity.oidc.issuer` gives the issuer."
  type = object({
    name                    = string
    oidc_provider_arn       = string
    oidc_issuer             = string
    node_security_group_ids = optional(list(string), [])
  })
}

variable "efs" {
  description = "The Ferry stack's model file system (modules/model-storage outputs): file system id and ARN, read-only inference access point id and ARN, mount targets' security group id."
  type = object({
    file_system_id             = string
    file_system_arn            = string
    inference_access_point_id  = string
    inference_access_point_arn = string
    security_group_id          = string
  })
}

variable "namespace" {
  description = "The Kubernetes namespace of the inference service (created)."
  type        = string
  default     = "ferry"
}

variable "image" {
  description = "The Ferry runtime image pinned by digest, `<registry>/<repository>@sha256:<64 hex>`."
  type        = string
}

variable "efs_csi_driver" {
  description = "Install the aws-efs-csi-driver add-on with Ferry's IRSA role (`install_addon`, default true; false when the cluster already runs the driver) and its version (`addon_version`, null: the cluster's default)."
  type = object({
    install_addon = optional(bool, true)
    addon_version = optional(string)
  })
  default = {}
}

variable "ingress" {
  description = "Who may call the inference pods on port 8080: namespaces by label and CIDR blocks; everything else is denied."
  type = object({
    namespace_labels = optional(list(map(string)), [])
    cidr_blocks      = optional(list(string), [])
  })
  default = {}
}

variable "tags" {
  description = "Tags added to every AWS resource (at most 48: the provider's default tags add ferry:environment and the module ferry:module, and AWS takes 50 per resource)."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(var.tags) <= 48
    error_message = "tags may hold at most 48 tags: with ferry:environment and ferry:module that is AWS's limit of 50 per resource."
  }
}
