variable "create" {
  description = "Create the EKS inference service's AWS resources. Off by default: the service itself is the subject of a later issue."
  type        = bool
  default     = false
}

variable "name" {
  description = "Name prefix of every resource, e.g. `ferry-prod`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.name))
    error_message = "name must start with a letter and hold 1-32 letters, digits or hyphens."
  }
}

variable "cluster" {
  description = "The EKS cluster's IAM OIDC provider (ARN and issuer URL without `https://`), the namespace and the service account of the inference pods. Required when `create` is true."
  type = object({
    oidc_provider_arn = string
    oidc_issuer       = string
    namespace         = optional(string, "ferry")
    service_account   = optional(string, "ferry-inference")
  })
  default = null

  validation {
    condition     = var.cluster == null || try(!startswith(var.cluster.oidc_issuer, "https://"), false)
    error_message = "cluster.oidc_issuer is the issuer URL without https:// (e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC)."
  }
}

variable "efs" {
  description = "The model file system and its read-only inference access point, which the pods mount (EFS CSI driver, `iam` mount option)."
  type = object({
    file_system_arn  = string
    access_point_arn = string
  })
  default = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
