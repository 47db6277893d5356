# Ferry's EKS service added to an existing Ferry platform (a stack of examples/minimal or examples/complete) in an
# existing EKS cluster: the same model file system, mounted read-only through its inference access point.
module "eks_service" {
  source = "../../modules/eks-service"

  name = "ferry-${var.environment}"
  cluster = {
    name                    = var.cluster.name
    oidc_provider_arn       = var.cluster.oidc_provider_arn
    oidc_issuer             = var.cluster.oidc_issuer
    node_security_group_ids = var.cluster.node_security_group_ids
  }
  efs            = var.efs
  namespace      = var.namespace
  image          = var.image
  efs_csi_driver = var.efs_csi_driver
  ingress        = var.ingress
  tags           = var.tags
}
