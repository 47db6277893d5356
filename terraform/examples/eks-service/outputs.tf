output "ferry_platform_eks" {
  description = "The EKS service for the agent: put it into the Ferry stack's `ferry_platform` output as `eks` (cluster, namespace, service_account, volume_claim, mount_path, image); `ferry render --target eks` passes it to templates/k8s/ as `platform.eks`."
  value       = module.eks_service.ferry_platform
}
