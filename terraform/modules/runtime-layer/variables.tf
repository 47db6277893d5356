variable "layer_name" {
  description = "Name of the Lambda layer, e.g. `ferry-prod-runtime-x86_64`; each apply with a new build publishes a new version of it."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,140}$", var.layer_name))
    error_message = "layer_name must hold 1-140 letters, digits, hyphens or underscores."
  }
}

variable "runtime" {
  description = "Lambda runtime the layer is built for and declares compatible: `python3.13`, the one target of runtime/lambda-target.json (the layer's extension modules import on that CPython only)."
  type        = string
  default     = "python3.13"

  validation {
    condition     = contains(["python3.13"], var.runtime)
    error_message = "runtime must be python3.13: `make package-runtime` builds the layer for that CPython only (runtime/lambda-target.json), and its extension modules do not import on another."
  }
}

variable "architecture" {
  description = "Instruction set of the layer: `x86_64` or `arm64`; `make package-runtime` writes one zip per architecture."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64 (the architectures of runtime/lambda-target.json)."
  }
}

variable "dist_dir" {
  description = "Folder holding what `make package-runtime` writes: `ferry-runtime-layer-<architecture>.zip` and the build report `ferry-runtime-layer.json`."
  type        = string

  validation {
    condition     = length(trimspace(var.dist_dir)) > 0 && !endswith(var.dist_dir, "/")
    error_message = "dist_dir must be a folder path without a trailing slash, e.g. ../../../dist."
  }
}

variable "bucket" {
  description = "Name of the S3 bucket the layer zip is uploaded to (the artifact bucket): a layer zip above 50 MB can only be published from S3."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be an S3 bucket name (3-63 lowercase letters, digits, dots or hyphens)."
  }
}

variable "key_prefix" {
  description = "Key prefix, ending in `/`, of the uploaded layer zips (`<prefix>ferry-runtime-layer-<architecture>.zip`; each build is a new version of that object, its SHA-256 in the object's metadata)."
  type        = string
  default     = "ferry/runtime-layers/"

  validation {
    condition     = endswith(var.key_prefix, "/") && !startswith(var.key_prefix, "/")
    error_message = "key_prefix must end in / and not start with /."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key the uploaded zip is encrypted with (the artifact bucket's key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "tags" {
  description = "Tags added to the uploaded object (layer versions take no tags)."
  type        = map(string)
  default     = {}
}
