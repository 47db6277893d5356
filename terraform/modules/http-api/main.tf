locals {
  jwt  = var.authorization.type == "JWT"
  tags = merge(var.tags, { "ferry:module" = "http-api" })
}

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  protocol_type = "HTTP"
  description   = "Ferry model inference: POST /models/{model}/{alias}/invocations"
  tags          = local.tags
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count = local.jwt ? 1 : 0

  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.authorization.jwt.issuer
    audience = var.authorization.jwt.audience
  }
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      ip                 = "$context.identity.sourceIp"
      caller             = "$context.identity.caller"
      user               = "$context.identity.user"
      jwtSubject         = "$context.authorizer.claims.sub"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
    })
  }

  default_route_settings {
    throttling_burst_limit   = var.throttling.burst_limit
    throttling_rate_limit    = var.throttling.rate_limit
    detailed_metrics_enabled = true
  }

  tags = local.tags
}

resource "aws_apigatewayv2_integration" "alias" {
  for_each = var.routes

  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = "${each.value.function_arn}:${each.value.qualifier}"
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_route" "alias" {
  for_each = var.routes

  api_id               = aws_apigatewayv2_api.this.id
  route_key            = "POST /models/${each.value.model}/${each.value.qualifier}/invocations"
  target               = "integrations/${aws_apigatewayv2_integration.alias[each.key].id}"
  authorization_type   = var.authorization.type
  authorizer_id        = local.jwt ? aws_apigatewayv2_authorizer.jwt[0].id : null
  authorization_scopes = local.jwt && length(try(var.authorization.jwt.scopes, [])) > 0 ? var.authorization.jwt.scopes : null
}

resource "aws_lambda_permission" "alias" {
  for_each = var.routes

  statement_id  = "ferry-http-api-${var.name}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function_name
  qualifier     = each.value.qualifier
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/POST/models/${each.value.model}/${each.value.qualifier}/invocations"
}
