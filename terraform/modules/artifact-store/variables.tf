variable "bucket_name" {
  description = "Name of the S3 bucket for MLflow artifacts and Ferry's audit and lock prefixes."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) && !can(regex("\\.\\.", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete a bucket that still holds objects. Keep false outside throw-away stacks."
  type        = bool
  default     = false
}

variable "artifact_prefix" {
  description = "Key prefix, ending in `/`, under which MLflow stores model artifacts (the MLflow server's `--default-artifact-root`)."
  type        = string
  default     = "mlflow/"

  validation {
    condition     = can(regex("^[a-zA-Z0-9!_.*'()-][a-zA-Z0-9!_.*'()/-]*/$", var.artifact_prefix))
    error_message = "artifact_prefix must be a key prefix that ends in / and does not start with /."
  }
}

variable "audit_prefix" {
  description = "Key prefix, ending in `/`, of Ferry's audit records (one per deployed alias, never overwritten)."
  type        = string
  default     = "ferry/audit/"

  validation {
    condition     = can(regex("^[a-zA-Z0-9!_.*'()-][a-zA-Z0-9!_.*'()/-]*/$", var.audit_prefix))
    error_message = "audit_prefix must be a key prefix that ends in / and does not start with /."
  }
}

variable "lock_prefix" {
  description = "Key prefix, ending in `/`, of Ferry's deploy lock objects."
  type        = string
  default     = "ferry/locks/"

  validation {
    condition     = can(regex("^[a-zA-Z0-9!_.*'()-][a-zA-Z0-9!_.*'()/-]*/$", var.lock_prefix))
    error_message = "lock_prefix must be a key prefix that ends in / and does not start with /."
  }
}

variable "create_kms_key" {
  description = "Create a customer managed KMS key for the bucket (and, through the `kms_key_arn` output, for the stack's EFS, Lambda environment and log groups). When false, `kms_key_arn` is required."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "ARN of an existing KMS key for SSE-KMS (only when `create_kms_key` is false). Its policy must allow CloudWatch Logs if the stack's log groups use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "kms_key" {
  description = "Settings of the KMS key this module creates: deletion window, and whether CloudWatch Logs of this region and account may use it for log groups (the stack's Lambda, API and flow log groups)."
  type = object({
    deletion_window_in_days    = optional(number, 30)
    allow_cloudwatch_logs      = optional(bool, true)
    additional_admin_role_arns = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = var.kms_key.deletion_window_in_days >= 7 && var.kms_key.deletion_window_in_days <= 30
    error_message = "kms_key.deletion_window_in_days must be between 7 and 30."
  }
}

variable "enforce_conditional_audit_writes" {
  description = "Deny, in the bucket policy, any PutObject under the audit prefix without `If-None-Match: *`, so that no audit record is ever overwritten (Ferry always writes them that way)."
  type        = bool
  default     = true
}

variable "object_lock" {
  description = "S3 Object Lock, so that audit records cannot be deleted or overwritten even by an administrator. It can only be turned on when the bucket is created. In COMPLIANCE mode the default retention applies to every new object version in the bucket (audit records, lock objects and MLflow artifacts alike: deletes then only add delete markers)."
  type = object({
    enabled = optional(bool, false)
    mode    = optional(string, "COMPLIANCE")
    days    = optional(number, 2557)
  })
  default = {}

  validation {
    condition     = contains(["COMPLIANCE", "GOVERNANCE"], var.object_lock.mode)
    error_message = "object_lock.mode must be COMPLIANCE or GOVERNANCE."
  }

  validation {
    condition     = var.object_lock.days >= 1 && var.object_lock.days <= 36500
    error_message = "object_lock.days must be between 1 and 36500."
  }
}

variable "noncurrent_version_expiration" {
  description = "Lifecycle of non-current object versions. They expire after `days` under the listed prefixes only; the audit prefix, and any prefix left out (frozen model artifacts), keep every version. Incomplete multipart uploads are aborted after `abort_multipart_days` everywhere."
  type = object({
    days                 = optional(number, 90)
    prefixes             = optional(list(string), [])
    abort_multipart_days = optional(number, 7)
  })
  default = {}

  validation {
    condition     = var.noncurrent_version_expiration.days >= 1 && var.noncurrent_version_expiration.abort_multipart_days >= 1
    error_message = "noncurrent_version_expiration.days and abort_multipart_days must be at least 1."
  }

  validation {
    condition     = alltrue([for p in var.noncurrent_version_expiration.prefixes : endswith(p, "/") && !startswith(p, "/")])
    error_message = "noncurrent_version_expiration.prefixes must be key prefixes that end in / and do not start with /."
  }
}

variable "access_logging" {
  description = "Server access logging to another bucket. Null turns it off."
  type = object({
    target_bucket = string
    target_prefix = optional(string, "s3-access/")
  })
  default = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
