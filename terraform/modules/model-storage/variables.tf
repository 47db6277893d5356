variable "name" {
  description = "Name prefix of every resource, e.g. `ferry-prod`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.name))
    error_message = "name must start with a letter and hold 1-32 letters, digits or hyphens."
  }
}

variable "vpc_id" {
  description = "Id of the VPC of the mount targets."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC id such as vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Private subnets; one mount target is created in each (one subnet per availability zone)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids must list at least one subnet (two or more for a zone-redundant platform)."
  }
}

variable "client_security_group_ids" {
  description = "Security groups allowed to reach the file system on NFS (TCP 2049): the Ferry functions' group."
  type        = list(string)

  validation {
    condition     = length(var.client_security_group_ids) >= 1
    error_message = "client_security_group_ids must list at least one security group."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the file system at rest."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "performance_mode" {
  description = "EFS performance mode."
  type        = string
  default     = "generalPurpose"

  validation {
    condition     = contains(["generalPurpose", "maxIO"], var.performance_mode)
    error_message = "performance_mode must be generalPurpose or maxIO."
  }
}

variable "throughput" {
  description = "EFS throughput mode (`elastic`, `bursting` or `provisioned`) and, for `provisioned`, the MiB/s."
  type = object({
    mode            = optional(string, "elastic")
    provisioned_mib = optional(number)
  })
  default = {}

  validation {
    condition     = contains(["elastic", "bursting", "provisioned"], var.throughput.mode)
    error_message = "throughput.mode must be elastic, bursting or provisioned."
  }

  validation {
    condition     = var.throughput.mode != "provisioned" || try(var.throughput.provisioned_mib >= 1, false)
    error_message = "throughput.provisioned_mib (at least 1) is required when throughput.mode is provisioned."
  }
}

variable "transition_to_ia" {
  description = "Move files not read for this long to Infrequent Access (e.g. `AFTER_30_DAYS`); null keeps everything in Standard. Old model versions stay readable, only slower on first read."
  type        = string
  default     = null

  validation {
    condition     = var.transition_to_ia == null || contains(["AFTER_1_DAY", "AFTER_7_DAYS", "AFTER_14_DAYS", "AFTER_30_DAYS", "AFTER_60_DAYS", "AFTER_90_DAYS", "AFTER_180_DAYS", "AFTER_270_DAYS", "AFTER_365_DAYS"], var.transition_to_ia)
    error_message = "transition_to_ia must be null or one of AFTER_1_DAY, AFTER_7_DAYS, AFTER_14_DAYS, AFTER_30_DAYS, AFTER_60_DAYS, AFTER_90_DAYS, AFTER_180_DAYS, AFTER_270_DAYS, AFTER_365_DAYS."
  }
}

variable "enable_backup_policy" {
  description = "Turn on AWS Backup's automatic daily backups of the file system."
  type        = bool
  default     = true
}

variable "root_directory" {
  description = "Directory of the file system under which model versions live (`<root>/<model>/<version>/`); both access points are rooted here."
  type        = string
  default     = "/models"

  validation {
    condition     = can(regex("^/[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*$", var.root_directory))
    error_message = "root_directory must be an absolute path such as /models, without a trailing slash."
  }
}

variable "posix" {
  description = "POSIX identities. The sync function writes as `writer_uid`/`gid` and owns the root directory (mode 0755); model functions read as `reader_uid`/`gid`, which cannot write there."
  type = object({
    writer_uid = optional(number, 1000)
    reader_uid = optional(number, 1001)
    gid        = optional(number, 1000)
  })
  default = {}

  validation {
    condition     = var.posix.writer_uid != var.posix.reader_uid && var.posix.writer_uid > 0 && var.posix.reader_uid > 0
    error_message = "posix.writer_uid and posix.reader_uid must differ and must not be root (0), or readers could write."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
