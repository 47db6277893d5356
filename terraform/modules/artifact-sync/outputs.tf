output "function_name" {
  description = "Name of the artifact-sync function (the value of `ferry_platform.sync_function`)."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the artifact-sync function (the deploy role may invoke it)."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's execution role."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "Name of the function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "mount_path" {
  description = "Where the read-write sync access point is mounted."
  value       = var.efs.mount_path
}
