output "function_name" {
  description = "Name of the model function (the value of this model's key in `ferry_platform.functions`)."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "Unqualified ARN of the model function; versions and aliases are `<arn>:<qualifier>`."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's execution role (to attach further policies)."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "Name of the function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "mount_path" {
  description = "Where the read-only inference access point is mounted."
  value       = var.efs.mount_path
}
