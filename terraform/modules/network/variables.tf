variable "name" {
  description = "Name prefix of every resource, e.g. `ferry-prod`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,26}$", var.name))
    error_message = "name must start with a letter and hold 1-27 letters, digits or hyphens (the flow-log role's name prefix \"<name>-flow-logs-\" must fit IAM's 38)."
  }
}

variable "create_vpc" {
  description = "Create a new VPC with private subnets. When false, `existing_vpc` names the VPC and subnets to use."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR block of the new VPC (only when `create_vpc` is true)."
  type        = string
  default     = "10.80.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block such as 10.80.0.0/16."
  }
}

variable "azs" {
  description = "Availability zones of the private subnets, e.g. `[\"eu-west-1a\", \"eu-west-1b\"]`. Required (at least two) when `create_vpc` is true, so that the functions and EFS mount targets survive the loss of one zone; listed explicitly so that the set never changes under you."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.azs) == 0 || length(var.azs) >= 2
    error_message = "azs must name at least two availability zones (or be empty when create_vpc is false)."
  }
}

variable "private_subnet_cidrs" {
  description = "CIDR blocks of the private subnets, one per zone in `azs`. Empty derives /20 blocks from `vpc_cidr`."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.private_subnet_cidrs : can(cidrnetmask(c))])
    error_message = "every private_subnet_cidrs entry must be an IPv4 CIDR block."
  }
}

variable "existing_vpc" {
  description = "The VPC to use when `create_vpc` is false: its id, at least two private subnets in different zones, and the route tables of those subnets (for the S3 gateway endpoint)."
  type = object({
    vpc_id          = string
    subnet_ids      = list(string)
    route_table_ids = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.existing_vpc == null || try(length(var.existing_vpc.subnet_ids) >= 2, false)
    error_message = "existing_vpc.subnet_ids must list at least two private subnets."
  }

  validation {
    condition     = var.existing_vpc == null || can(regex("^vpc-[0-9a-f]+$", var.existing_vpc.vpc_id))
    error_message = "existing_vpc.vpc_id must be a VPC id such as vpc-0123456789abcdef0."
  }
}

variable "vpc_endpoints" {
  description = "VPC endpoints that let VPC-attached functions reach AWS without a NAT gateway: the S3 gateway endpoint and interface endpoints by service short name (e.g. `lambda`, `sts`, `logs`, `xray`, `kms`). Turn `s3` off or empty the list when the VPC already has them."
  type = object({
    s3        = optional(bool, true)
    interface = optional(list(string), ["lambda", "sts", "logs"])
  })
  default = {}

  validation {
    condition     = alltrue([for s in var.vpc_endpoints.interface : can(regex("^[a-z0-9.-]+$", s))])
    error_message = "vpc_endpoints.interface holds service short names such as lambda, sts or logs."
  }
}

variable "enable_nat_gateway" {
  description = "Create one NAT gateway (with a public subnet and an internet gateway) for functions that must reach the internet. Off by default: the VPC endpoints cover what Ferry needs."
  type        = bool
  default     = false
}

variable "public_subnet_cidr" {
  description = "CIDR block of the public subnet that holds the NAT gateway (only with `enable_nat_gateway`). Null derives one from `vpc_cidr`."
  type        = string
  default     = null

  validation {
    condition     = var.public_subnet_cidr == null || can(cidrnetmask(var.public_subnet_cidr))
    error_message = "public_subnet_cidr must be an IPv4 CIDR block."
  }
}

variable "flow_logs" {
  description = "VPC flow logs to a KMS-encrypted CloudWatch log group (only for a VPC this module creates). `kms_key_arn` is required when enabled."
  type = object({
    enabled           = optional(bool, true)
    retention_in_days = optional(number, 365)
    kms_key_arn       = optional(string)
    traffic_type      = optional(string, "ALL")
  })
  default = {}

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs.retention_in_days)
    error_message = "flow_logs.retention_in_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_logs.traffic_type)
    error_message = "flow_logs.traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
