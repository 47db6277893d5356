output "enabled" {
  description = "Whether the module created anything (`create`)."
  value       = var.create
}

output "service_account_role_arn" {
  description = "ARN of the inference pods' IAM role (annotate the service account with it), or null when `create` is false."
  value       = try(aws_iam_role.inference[0].arn, null)
}
