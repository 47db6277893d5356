output "file_system_id" {
  description = "Id of the model file system."
  value       = aws_efs_file_system.this.id
}

output "file_system_arn" {
  description = "ARN of the model file system (for the functions' elasticfilesystem:ClientMount permission)."
  value       = aws_efs_file_system.this.arn
}

output "inference_access_point_arn" {
  description = "ARN of the read-only access point the model functions mount."
  value       = aws_efs_access_point.inference.arn
}

output "inference_access_point_id" {
  description = "Id of the read-only access point the model functions mount."
  value       = aws_efs_access_point.inference.id
}

output "sync_access_point_arn" {
  description = "ARN of the read-write access point the artifact-sync function mounts."
  value       = aws_efs_access_point.sync.arn
}

output "sync_access_point_id" {
  description = "Id of the read-write access point the artifact-sync function mounts."
  value       = aws_efs_access_point.sync.id
}

output "mount_target_ids" {
  description = "Ids of the mount targets; functions must be created after them (pass to the function modules' `efs.mount_target_ids`)."
  value       = aws_efs_mount_target.this[*].id
}

output "security_group_id" {
  description = "Id of the security group of the mount targets."
  value       = aws_security_group.efs.id
}

output "root_directory" {
  description = "Directory of the file system that both access points expose as their root."
  value       = var.root_directory
}
