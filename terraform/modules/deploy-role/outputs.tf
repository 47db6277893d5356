output "role_arn" {
  description = "ARN of the deploy role; CI passes it to aws-actions/configure-aws-credentials as `role-to-assume`."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the deploy role."
  value       = aws_iam_role.this.name
}

output "oidc_provider_arn" {
  description = "ARN of the GitHub Actions OIDC provider the role trusts (created or given)."
  value       = local.oidc_provider_arn
}

output "trusted_subjects" {
  description = "The `sub` claims allowed to assume the role."
  value       = local.subjects
}
