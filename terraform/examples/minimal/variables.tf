variable "region" {
  description = "AWS region of the platform."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as eu-west-1."
  }
}

variable "environment" {
  description = "Name of the environment (`prod`, `staging`, ...); it prefixes every resource name and is recorded in Ferry's lock and audit records."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.environment))
    error_message = "environment must start with a lowercase letter and hold 1-16 lowercase letters, digits or hyphens."
  }
}

variable "bucket_name" {
  description = "Name of the new artifact bucket (MLflow's artifact root and Ferry's audit and lock prefixes)."
  type        = string
}

variable "existing_vpc" {
  description = "The VPC the functions join: its id, at least two private subnets in different zones, and their route tables (for the S3 gateway endpoint)."
  type = object({
    vpc_id          = string
    subnet_ids      = list(string)
    route_table_ids = optional(list(string), [])
  })
}

variable "vpc_endpoints" {
  description = "VPC endpoints to create in the existing VPC (turn off what it already has): the S3 gateway endpoint and interface endpoints by service short name. `xray` carries the functions' traces (tracing is Active): drop it only when the VPC has a NAT gateway or an X-Ray endpoint already."
  type = object({
    s3        = optional(bool, true)
    interface = optional(list(string), ["lambda", "sts", "logs", "xray"])
  })
  default = {}
}

variable "models" {
  description = "The models, by catalog model key (the keys of `[models]` in ferry.toml): one Lambda function `ferry-<environment>-<key>` each, with its initial memory and timeout (Ferry sets them per version)."
  type = map(object({
    memory_size                    = optional(number, 1024)
    timeout                        = optional(number, 30)
    reserved_concurrent_executions = optional(number)
  }))

  validation {
    condition     = length(var.models) >= 1 && alltrue([for k in keys(var.models) : can(regex("^[a-z0-9][a-z0-9_-]{0,39}$", k))])
    error_message = "models needs at least one key; keys are catalog model keys of 1-40 lowercase letters, digits, - or _."
  }
}

variable "model_runtime" {
  description = "The initial package of every model function. By default the Ferry runtime that `make package-runtime` wrote into `runtime_dist_dir`: the function code `ferry-runtime-function.zip` (or `filename`, or `s3_bucket`/`s3_key`) on `runtime` and `architecture`, with the runtime layer `ferry-runtime-layer-<architecture>.zip` published from the artifact bucket. `layers` set (even to `[]`) names existing layer version ARNs instead, and nothing is published. `type = \"Image\"` with `image_uri` runs a container image (`runtime` then states the Python it runs). `runtime` must be python3.13 and `architecture` x86_64 or arm64 (runtime/lambda-target.json)."
  type = object({
    type         = optional(string, "Zip")
    filename     = optional(string)
    s3_bucket    = optional(string)
    s3_key       = optional(string)
    handler      = optional(string, "ferry_runtime.lambda_handler.handler")
    runtime      = optional(string, "python3.13")
    architecture = optional(string, "x86_64")
    layers       = optional(list(string))
    image_uri    = optional(string)
  })
  default = {}

  validation {
    condition     = contains(["x86_64", "arm64"], var.model_runtime.architecture)
    error_message = "model_runtime.architecture must be x86_64 or arm64 (runtime/lambda-target.json)."
  }
}

variable "runtime_dist_dir" {
  description = "Folder holding what `make package-runtime` writes (`ferry-runtime-function.zip`, `ferry-runtime-layer-<architecture>.zip`, `ferry-runtime-layer.json`); a relative path is relative to this example's folder. The default is the repository's dist/. Unused when `model_runtime` names its own code and `layers`."
  type        = string
  default     = "../../../dist"

  validation {
    condition     = length(trimspace(var.runtime_dist_dir)) > 0 && !endswith(var.runtime_dist_dir, "/")
    error_message = "runtime_dist_dir must be a folder path without a trailing slash, e.g. ../../../dist."
  }
}

variable "sync_package" {
  description = "Package of the artifact-sync function (`make package-sync-function`, i.e. `cargo lambda build --release --output-format zip -p ferry-sync-lambda`): a local `filename` with its `source_code_hash`, or `s3_bucket`/`s3_key`, and the `architecture` it was built for (x86_64, or arm64 with `--arm64`)."
  type = object({
    filename         = optional(string)
    s3_bucket        = optional(string)
    s3_key           = optional(string)
    source_code_hash = optional(string)
    architecture     = optional(string, "x86_64")
  })

  validation {
    condition     = contains(["x86_64", "arm64"], var.sync_package.architecture)
    error_message = "sync_package.architecture must be x86_64 or arm64."
  }
}

variable "github" {
  description = "The GitHub repository whose workflows may assume the deploy role, with their branches and/or environments."
  type = object({
    repository   = string
    branches     = optional(list(string), ["main"])
    environments = optional(list(string), [])
  })
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub Actions OIDC provider; set false (and `oidc_provider_arn`) when the account has one."
  type        = bool
  default     = true
}

variable "oidc_provider_arn" {
  description = "ARN of the account's existing GitHub Actions OIDC provider (when `create_oidc_provider` is false)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
