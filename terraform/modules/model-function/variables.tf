variable "function_name" {
  description = "Name of the Lambda function of one model, e.g. `ferry-prod-risk-score`. Ferry publishes one version per approved model version on it, each behind its own alias."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must hold 1-64 letters, digits, hyphens or underscores."
  }
}

variable "description" {
  description = "Description of the function at creation. Ferry overwrites it on every published version (it carries the spec hash)."
  type        = string
  default     = "Ferry model function (configuration published per version by Ferry)"

  validation {
    condition     = length(var.description) <= 256
    error_message = "description must be at most 256 characters (Lambda's limit)."
  }
}

variable "package" {
  description = "The initial deployment package: `type = \"Zip\"` with `filename` (`dist/ferry-runtime-function.zip` from `make package-runtime`) or `s3_bucket`/`s3_key`, a handler, the runtime `python3.13` and layers (the Ferry runtime layer for `architecture`, e.g. the runtime-layer module's `layer_version_arn`), or `type = \"Image\"` with `image_uri`. Ferry owns code and per-version configuration after creation (see `lifecycle.ignore_changes`)."
  type = object({
    type              = optional(string, "Zip")
    filename          = optional(string)
    s3_bucket         = optional(string)
    s3_key            = optional(string)
    s3_object_version = optional(string)
    handler           = optional(string, "ferry_runtime.lambda_handler.handler")
    runtime           = optional(string, "python3.13")
    layers            = optional(list(string), [])
    image_uri         = optional(string)
  })

  validation {
    condition     = contains(["Zip", "Image"], var.package.type)
    error_message = "package.type must be Zip or Image."
  }

  validation {
    condition = (
      var.package.type == "Image" ? var.package.image_uri != null :
      ((var.package.filename != null) != (var.package.s3_bucket != null && var.package.s3_key != null))
    )
    error_message = "package needs image_uri for type Image, and exactly one of filename or s3_bucket + s3_key for type Zip."
  }

  validation {
    condition     = contains(["python3.13"], var.package.runtime)
    error_message = "package.runtime must be python3.13, the one target of runtime/lambda-target.json: the Ferry runtime layer is built for that CPython only (its extension modules do not import on another), and a model pickled on another Python minor crashes on it."
  }

  validation {
    condition     = length(var.package.layers) <= 5
    error_message = "package.layers can hold at most 5 layer version ARNs (a Lambda limit)."
  }
}

variable "architecture" {
  description = "Instruction set of the function: `x86_64` or `arm64` (the architectures of runtime/lambda-target.json); the runtime layer in `package.layers` must be built for the same one."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64 (the architectures of runtime/lambda-target.json)."
  }
}

variable "memory_size" {
  description = "Initial memory in MB; Ferry sets it per version from the catalog."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Initial timeout in seconds; Ferry sets it per version from the catalog."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "environment" {
  description = "Initial environment variables of `$LATEST`; Ferry renders each version's own (FERRY_MODEL_NAME, FERRY_MODEL_PATH, ...) from its template, and Terraform ignores later changes."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^[a-zA-Z][a-zA-Z0-9_]+$", k))])
    error_message = "environment keys must be letters, digits and _ (a letter first, at least two characters)."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for this function (shared by all its versions); null leaves it unreserved."
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
  description = "The read-only inference access point to mount, its file system, the mount path (matching `^/mnt/[a-zA-Z0-9-_.]+$`), and the mount target ids the function must wait for."
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
