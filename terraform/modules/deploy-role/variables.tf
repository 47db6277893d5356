variable "name" {
  description = "Name of the IAM role CI assumes to run `ferry deploy`, e.g. `ferry-prod-deploy`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,64}$", var.name))
    error_message = "name must be a valid IAM role name (1-64 of letters, digits and +=,.@_-)."
  }
}

variable "github" {
  description = "Who may assume the role: the GitHub repository (`owner/name`) and the branches (`ref:refs/heads/<branch>`) and/or deployment environments (`environment:<name>`) of its workflows. Protect the environments with required reviewers: a job in an environment presents only the environment, not its branch."
  type = object({
    repository   = string
    branches     = optional(list(string), ["main"])
    environments = optional(list(string), [])
  })

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,39}/[A-Za-z0-9_.-]{1,100}$", var.github.repository))
    error_message = "github.repository must be owner/name (at most 39 and 100 characters, GitHub's limits), without wildcards."
  }

  validation {
    condition     = length(var.github.branches) + length(var.github.environments) >= 1
    error_message = "github needs at least one branch or environment."
  }

  validation {
    condition     = alltrue([for v in concat(var.github.branches, var.github.environments) : !can(regex("[*?]", v)) && length(v) > 0])
    error_message = "github.branches and github.environments must be exact names: wildcards would let other refs deploy."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub Actions OIDC identity provider. An account has at most one per URL: set false and pass `oidc_provider_arn` when it exists already."
  type        = bool
  default     = true
}

variable "oidc_provider_arn" {
  description = "ARN of the existing GitHub Actions OIDC provider (only when `create_oidc_provider` is false)."
  type        = string
  default     = null

  validation {
    condition     = var.oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com OIDC provider."
  }
}

variable "oidc_thumbprints" {
  description = "Certificate thumbprints of token.actions.githubusercontent.com for a created provider (AWS no longer checks them for GitHub, but older providers require the field)."
  type        = list(string)
  default     = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}

variable "model_function_arns" {
  description = "Unqualified ARNs of the model functions, by model key. The role may read, update, publish, alias, smoke-invoke them and delete their published versions, nothing else."
  type        = map(string)

  validation {
    condition     = length(var.model_function_arns) >= 1 && alltrue([for a in values(var.model_function_arns) : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[a-zA-Z0-9_-]+$", a))])
    error_message = "model_function_arns must map model keys to unqualified Lambda function ARNs."
  }
}

variable "sync_function_arn" {
  description = "ARN of the artifact-sync function the role may invoke; null when sync runs elsewhere."
  type        = string
  default     = null
}

variable "artifact_store" {
  description = "The artifact bucket and its prefixes: model artifacts (read), the lock prefix (put/get/delete), the audit prefix (put and read, never delete), and the KMS keys of its SSE-KMS encryption."
  type = object({
    bucket_arn        = string
    artifact_prefixes = optional(list(string), ["mlflow/"])
    audit_prefix      = optional(string, "ferry/audit/")
    lock_prefix       = optional(string, "ferry/locks/")
    kms_key_arns      = optional(list(string), [])
  })

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.artifact_store.bucket_arn))
    error_message = "artifact_store.bucket_arn must be an S3 bucket ARN (arn:aws:s3:::NAME)."
  }

  validation {
    condition = alltrue([
      for p in concat(var.artifact_store.artifact_prefixes, [var.artifact_store.audit_prefix, var.artifact_store.lock_prefix]) :
      endswith(p, "/") && !startswith(p, "/") && length(p) > 1
    ])
    error_message = "artifact_store prefixes must be non-empty key prefixes that end in / and do not start with /."
  }
}

variable "allow_audit_read" {
  description = "Let the role read audit records (the plan compares aliases with them to report drift). Writes stay put-only either way."
  type        = bool
  default     = true
}

variable "model_storage" {
  description = "The model file system and its access points (inference and sync), which `ferry verify` describes: the role may describe these, nothing else of EFS."
  type = object({
    file_system_arn   = string
    access_point_arns = list(string)
  })

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:elasticfilesystem:[a-z0-9-]+:[0-9]{12}:file-system/fs-[0-9a-f]+$", var.model_storage.file_system_arn))
    error_message = "model_storage.file_system_arn must be an EFS file system ARN (arn:aws:elasticfilesystem:REGION:ACCOUNT:file-system/fs-ID)."
  }

  validation {
    condition     = length(var.model_storage.access_point_arns) >= 1 && alltrue([for a in var.model_storage.access_point_arns : can(regex("^arn:aws[a-z-]*:elasticfilesystem:[a-z0-9-]+:[0-9]{12}:access-point/fsap-[0-9a-f]+$", a))])
    error_message = "model_storage.access_point_arns must be one or more EFS access point ARNs (arn:aws:elasticfilesystem:REGION:ACCOUNT:access-point/fsap-ID)."
  }
}

variable "function_kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the model functions' environment (their `kms_key_arn`): every deploy updates the environment, so the role may encrypt with it, create Lambda's grant on it and decrypt with it, through Lambda in this region only. Null when the functions use Lambda's AWS managed key."
  type        = string
  default     = null

  validation {
    condition     = var.function_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.function_kms_key_arn))
    error_message = "function_kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "http_api" {
  description = "The HTTP API (`ferry_platform.http_api_id`) on which `ferry deploy` gives every alias its route, integration and invoke permission (and `ferry retire` removes them): the role may list, create and delete that API's routes and integrations, and add, read and remove permissions on the model functions' aliases. Null when the stack has no HTTP API."
  type = object({
    api_id = string
  })
  default = null

  validation {
    condition     = var.http_api == null || can(regex("^[a-z0-9]{1,64}$", var.http_api.api_id))
    error_message = "http_api.api_id must be an API Gateway API id (lowercase letters and digits)."
  }
}

variable "function_urls" {
  description = "Let `ferry deploy` give aliases a Lambda function URL (`AWS_IAM` auth) for models the catalog serves with `endpoint = \"function_url\"`, and `ferry retire` remove it: the role may list the model functions' URLs and create and delete them on aliases only."
  type        = bool
  default     = false
}

variable "max_session_duration" {
  description = "Maximum session length in seconds of an assumed role session."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a permissions boundary for the role; null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
