variable "function_name" {
  description = "Name of the artifact-sync function, e.g. `ferry-prod-artifact-sync` (the value of `ferry_platform.sync_function`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must hold 1-64 letters, digits, hyphens or underscores."
  }
}

variable "description" {
  description = "Description of the function at creation. Ferry overwrites it on every published version (it carries the spec hash)."
  type        = string
  default     = "Ferry artifact sync: copies an approved model version from S3 to EFS and verifies it"

  validation {
    condition     = length(var.description) <= 256
    error_message = "description must be at most 256 characters (Lambda's limit)."
  }
}

variable "package" {
  description = "Deployment package of the sync function (the `ferry-sync-lambda` crate built with `cargo lambda build --release --output-format zip`): a local `filename` or `s3_bucket`/`s3_key`, with `source_code_hash` to redeploy on change."
  type = object({
    filename          = optional(string)
    s3_bucket         = optional(string)
    s3_key            = optional(string)
    s3_object_version = optional(string)
    source_code_hash  = optional(string)
    handler           = optional(string, "bootstrap")
    runtime           = optional(string, "provided.al2023")
  })

  validation {
    condition     = (var.package.filename != null) != (var.package.s3_bucket != null && var.package.s3_key != null)
    error_message = "package needs exactly one of filename or s3_bucket + s3_key."
  }

  validation {
    condition     = var.package.runtime == "provided.al2023" && var.package.handler == "bootstrap"
    error_message = "package.runtime must be provided.al2023 with handler bootstrap: the sync function is a Rust binary built by cargo lambda for Amazon Linux 2023, the OS of the model functions' python3.13."
  }
}

variable "architecture" {
  description = "Instruction set the `bootstrap` in `package` was built for: `x86_64` (what `cargo lambda build` builds by default) or `arm64` (`cargo lambda build --arm64`), the architectures of runtime/lambda-target.json. It needs no layer, so it may differ from the model functions'."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64 (the architectures of runtime/lambda-target.json), the one the bootstrap was built for."
  }
}

variable "memory_size" {
  description = "Memory in MB (also buys network and CPU for hashing large artifacts)."
  type        = number
  default     = 2048

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout in seconds of one sync (one model version)."
  type        = number
  default     = 900

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "ephemeral_storage_mb" {
  description = "Size of /tmp in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.ephemeral_storage_mb >= 512 && var.ephemeral_storage_mb <= 10240
    error_message = "ephemeral_storage_mb must be between 512 and 10240."
  }
}

variable "environment" {
  description = "Extra environment variables of the sync function (merged over the FERRY_* variables this module sets)."
  type        = map(string)
  default     = {}
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for the sync function (bounds parallel syncs against EFS and S3); null leaves it unreserved."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 0, false)
    error_message = "reserved_concurrent_executions must be null or at least 0."
  }
}

variable "vpc" {
  description = "Private subnets and security groups of the function (the network module's outputs)."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })

  validation {
    condition     = length(var.vpc.subnet_ids) >= 1 && length(var.vpc.security_group_ids) >= 1
    error_message = "vpc needs at least one subnet id and one security group id."
  }
}

variable "efs" {
  description = "The read-write sync access point to mount, its file system, the mount path (matching `^/mnt/[a-zA-Z0-9-_.]+$`), and the mount target ids the function must wait for."
  type = object({
    access_point_arn = string
    file_system_arn  = string
    mount_path       = optional(string, "/mnt/models")
    mount_target_ids = optional(list(string), [])
  })

  validation {
    condition     = can(regex("^/mnt/[a-zA-Z0-9-_.]+$", var.efs.mount_path))
    error_message = "efs.mount_path must match ^/mnt/[a-zA-Z0-9-_.]+$ (Lambda mounts file systems under /mnt)."
  }

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:elasticfilesystem:[a-z0-9-]+:[0-9]{12}:access-point/fsap-[0-9a-f]+$", var.efs.access_point_arn))
    error_message = "efs.access_point_arn must be an EFS access point ARN."
  }
}

variable "artifact_source" {
  description = "What the sync function may read: the artifact bucket's ARN, the key prefixes of model artifacts (MLflow's artifact root), and the KMS keys of the bucket's SSE-KMS encryption."
  type = object({
    bucket_arn   = string
    prefixes     = optional(list(string), ["mlflow/"])
    kms_key_arns = optional(list(string), [])
  })

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.artifact_source.bucket_arn))
    error_message = "artifact_source.bucket_arn must be an S3 bucket ARN (arn:aws:s3:::NAME)."
  }

  validation {
    condition     = length(var.artifact_source.prefixes) >= 1 && alltrue([for p in var.artifact_source.prefixes : endswith(p, "/") && !startswith(p, "/")])
    error_message = "artifact_source.prefixes must list key prefixes that end in / and do not start with /."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the function's environment variables and its log group."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the function's CloudWatch log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing mode."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "code_signing_config_arn" {
  description = "ARN of a Lambda code signing configuration to enforce on the function's code; null for none."
  type        = string
  default     = null
}

variable "role_permissions_boundary_arn" {
  description = "ARN of a permissions boundary for the execution role; null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
