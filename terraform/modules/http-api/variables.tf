variable "name" {
  description = "Name of the HTTP API, e.g. `ferry-prod`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,63}$", var.name))
    error_message = "name must start with a letter and hold 1-64 letters, digits or hyphens."
  }
}

variable "authorization" {
  description = "How callers authenticate: `AWS_IAM` (SigV4, callers need execute-api:Invoke) or `JWT` with the issuer and audiences of your identity provider (and optional scopes every route requires)."
  type = object({
    type = optional(string, "AWS_IAM")
    jwt = optional(object({
      issuer   = string
      audience = list(string)
      scopes   = optional(list(string), [])
    }))
  })
  default = {}

  validation {
    condition     = contains(["AWS_IAM", "JWT"], var.authorization.type)
    error_message = "authorization.type must be AWS_IAM or JWT (an inference endpoint is never public)."
  }

  validation {
    condition     = var.authorization.type != "JWT" || try(startswith(var.authorization.jwt.issuer, "https://") && length(var.authorization.jwt.audience) > 0, false)
    error_message = "authorization.jwt needs an https:// issuer and at least one audience when authorization.type is JWT."
  }
}

variable "routes" {
  description = "Routes Terraform owns, by any key: `POST /models/<model>/<qualifier>/invocations` to the alias `<qualifier>` (`v<N>` for a version alias, or a stage alias such as `production`) of the model's function. The alias must exist (Ferry creates it). Only for routes a team wants to own itself: `ferry deploy` gives every alias it creates or moves (each `v<N>` and each stage alias) its own route, integration and invoke permission when the platform names this API (`http_api_id`), and `ferry retire` removes them; a route listed here is left to Terraform (the agent neither repoints nor deletes it)."
  type = map(object({
    model         = string
    qualifier     = string
    function_name = string
    function_arn  = string
  }))
  default = {}

  validation {
    condition     = alltrue([for r in values(var.routes) : can(regex("^[a-z0-9][a-z0-9_-]*$", r.model)) && can(regex("^[a-zA-Z][a-zA-Z0-9_-]*$", r.qualifier))])
    error_message = "routes[*].model must be a catalog model key (lowercase letters, digits, - and _) and routes[*].qualifier an alias name (not a number and not $LATEST)."
  }

  validation {
    condition     = alltrue([for r in values(var.routes) : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[a-zA-Z0-9_-]+$", r.function_arn))])
    error_message = "routes[*].function_arn must be an unqualified Lambda function ARN."
  }
}

variable "throttling" {
  description = "Default route throttling of the stage."
  type = object({
    burst_limit = optional(number, 100)
    rate_limit  = optional(number, 50)
  })
  default = {}

  validation {
    condition     = var.throttling.burst_limit >= 0 && var.throttling.rate_limit >= 0
    error_message = "throttling limits must not be negative."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the access log group."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the access log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
