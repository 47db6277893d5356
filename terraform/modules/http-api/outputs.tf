output "api_id" {
  description = "Id of the HTTP API (the value of `ferry_platform.http_api_id`)."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Base URL of the API; a model alias answers at `<api_endpoint>/models/<model>/<alias>/invocations`."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "execution_arn" {
  description = "Execution ARN of the API (for `execute-api:Invoke` policies of AWS_IAM callers, and Lambda permissions)."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "authorizer_id" {
  description = "Id of the JWT authorizer, or null with AWS_IAM authorization (Ferry's routes use it too)."
  value       = try(aws_apigatewayv2_authorizer.jwt[0].id, null)
}

output "route_authorization" {
  description = "How the routes Ferry adds for its aliases are authorized, as this API's own routes are (the value of `ferry_platform.http_api_authorization`): `type`, and with JWT the `authorizer_id` and the `scopes` every route requires."
  value = {
    type          = var.authorization.type
    authorizer_id = try(aws_apigatewayv2_authorizer.jwt[0].id, null)
    scopes        = local.jwt ? try(var.authorization.jwt.scopes, []) : []
  }
}

output "route_keys" {
  description = "Route keys Terraform owns, by the key of `routes`."
  value       = { for k, r in aws_apigatewayv2_route.alias : k => r.route_key }
}

output "access_log_group_name" {
  description = "Name of the access log group of the `$default` stage."
  value       = aws_cloudwatch_log_group.access.name
}
