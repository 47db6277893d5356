output "layer_version_arn" {
  description = "ARN of the published layer version (the value of a model function's `package.layers`)."
  value       = aws_lambda_layer_version.this.arn
}

output "runtime" {
  description = "Lambda runtime the layer is compatible with."
  value       = var.runtime
}

output "architecture" {
  description = "Instruction set the layer is compatible with."
  value       = var.architecture
}

output "packages" {
  description = "Every Python distribution in the layer, name to version, from the build report (`ferry_platform.runtime.layer_packages`)."
  value       = local.packages
}

output "s3_key" {
  description = "Key of the uploaded layer zip in the bucket."
  value       = aws_s3_object.layer.key
}

output "sha256" {
  description = "SHA-256 (hex) of the layer zip."
  value       = local.sha256
}
