output "ferry_platform" {
  description = "The EKS service as the agent reads it, to be put into a stack's `ferry_platform` as `eks`: cluster, namespace, service account, volume claim, mount path and image, what `ferry render --target eks` passes to templates/k8s/ as `platform.eks`; null when `create` is false."
  value = var.create ? {
    cluster         = var.cluster.name
    namespace       = kubernetes_namespace_v1.this[0].metadata[0].name
    service_account = kubernetes_service_account_v1.inference[0].metadata[0].name
    volume_claim    = kubernetes_persistent_volume_claim_v1.models[0].metadata[0].name
    mount_path      = var.mount_path
    image           = var.image
  } : null
}

output "efs_csi_driver_role_arn" {
  description = "ARN of the EFS CSI driver's IRSA role (read-only mounts of the model file system); give it to the driver's service accounts when `efs_csi_driver.install_addon` is false."
  value       = try(aws_iam_role.efs_csi[0].arn, null)
}

output "namespace" {
  description = "The inference service's namespace."
  value       = try(kubernetes_namespace_v1.this[0].metadata[0].name, null)
}

output "volume_claim" {
  description = "Name of the PersistentVolumeClaim, in `namespace`, bound to the read-only inference access point."
  value       = try(kubernetes_persistent_volume_claim_v1.models[0].metadata[0].name, null)
}

output "storage_class" {
  description = "Name of the StorageClass of the model volume (static provisioning only)."
  value       = try(kubernetes_storage_class_v1.models[0].metadata[0].name, null)
}

output "service_account" {
  description = "Name of the inference pods' service account (no AWS role, no API token)."
  value       = try(kubernetes_service_account_v1.inference[0].metadata[0].name, null)
}

output "deployer_role" {
  description = "Name of the Role, in `namespace`, with exactly the calls `ferry deploy --target eks` makes; bound to the group `deployer.group`."
  value       = try(kubernetes_role_v1.deployer[0].metadata[0].name, null)
}
