output "bucket_id" {
  description = "Name of the artifact bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the artifact bucket."
  value       = aws_s3_bucket.this.arn
}

output "region" {
  description = "Region of the artifact bucket."
  value       = local.region
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the bucket (created or given); the examples reuse it for EFS, function environments and log groups."
  value       = local.kms_key_arn

  precondition {
    condition     = local.kms_key_arn != null
    error_message = "artifact-store has no KMS key ARN to output: set create_kms_key = true or pass kms_key_arn."
  }
}

output "artifact_prefix" {
  description = "Key prefix of the MLflow artifacts, ending in `/`."
  value       = var.artifact_prefix
}

output "audit_prefix" {
  description = "Key prefix of Ferry's audit records, ending in `/`."
  value       = var.audit_prefix
}

output "lock_prefix" {
  description = "Key prefix of Ferry's deploy lock, ending in `/`."
  value       = var.lock_prefix
}

output "object_lock_enabled" {
  description = "Whether S3 Object Lock protects the bucket's object versions."
  value       = var.object_lock.enabled
}
