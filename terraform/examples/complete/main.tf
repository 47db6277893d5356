# Ferry in a new VPC, with two models, an HTTP API and Object Lock on the artifact bucket.
locals {
  name       = "ferry-${var.environment}"
  mount_path = "/mnt/models"

  # The one runtime target (runtime/lambda-target.json) every model function and its layer run on.
  runtime      = var.model_runtime.runtime
  architecture = var.model_runtime.architecture
  dist_dir     = startswith(var.runtime_dist_dir, "/") ? var.runtime_dist_dir : "${path.module}/${var.runtime_dist_dir}"
  function_zip = "${local.dist_dir}/ferry-runtime-function.zip" # written by `make package-runtime`
  zip_package  = var.model_runtime.type == "Zip"
  # The runtime layer is published from dist/ unless model_runtime.layers names existing layer versions.
  publish_layer = local.zip_package && var.model_runtime.layers == null
}

module "network" {
  source = "../../modules/network"

  name               = local.name
  create_vpc         = true
  vpc_cidr           = var.vpc_cidr
  azs                = var.azs
  vpc_endpoints      = var.vpc_endpoints
  enable_nat_gateway = var.enable_nat_gateway
  flow_logs = {
    kms_key_arn = module.artifact_store.kms_key_arn
  }
  tags = var.tags
}

module "artifact_store" {
  source = "../../modules/artifact-store"

  bucket_name = var.bucket_name
  object_lock = var.object_lock
  tags        = var.tags
}

module "model_storage" {
  source = "../../modules/model-storage"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.network.function_security_group_id]
  kms_key_arn               = module.artifact_store.kms_key_arn
  tags                      = var.tags
}

module "artifact_sync" {
  source = "../../modules/artifact-sync"

  function_name = "${local.name}-artifact-sync"
  package = {
    filename         = var.sync_package.filename
    s3_bucket        = var.sync_package.s3_bucket
    s3_key           = var.sync_package.s3_key
    source_code_hash = var.sync_package.source_code_hash
  }
  architecture = var.sync_package.architecture

  vpc = {
    subnet_ids         = module.network.private_subnet_ids
    security_group_ids = [module.network.function_security_group_id]
  }
  efs = {
    access_point_arn = module.model_storage.sync_access_point_arn
    file_system_arn  = module.model_storage.file_system_arn
    mount_path       = local.mount_path
    mount_target_ids = module.model_storage.mount_target_ids
  }
  artifact_source = {
    bucket_arn   = module.artifact_store.bucket_arn
    prefixes     = [module.artifact_store.artifact_prefix]
    kms_key_arns = [module.artifact_store.kms_key_arn]
  }
  kms_key_arn = module.artifact_store.kms_key_arn
  tags        = var.tags
}

# The Ferry runtime layer from `make package-runtime`'s dist/, uploaded to the artifact bucket (the zip is above
# Lambda's 50 MB direct upload) and published as a layer version for the functions' runtime and architecture.
module "runtime_layer" {
  source = "../../modules/runtime-layer"
  count  = local.publish_layer ? 1 : 0

  layer_name   = "${local.name}-runtime-${local.architecture}"
  runtime      = local.runtime
  architecture = local.architecture
  dist_dir     = local.dist_dir
  bucket       = module.artifact_store.bucket_id
  kms_key_arn  = module.artifact_store.kms_key_arn
  tags         = var.tags
}

module "model_function" {
  source   = "../../modules/model-function"
  for_each = var.models

  function_name = "${local.name}-${each.key}"
  package = {
    type      = var.model_runtime.type
    filename  = local.zip_package && var.model_runtime.s3_bucket == null ? coalesce(var.model_runtime.filename, local.function_zip) : null
    s3_bucket = var.model_runtime.s3_bucket
    s3_key    = var.model_runtime.s3_key
    handler   = var.model_runtime.handler
    runtime   = local.runtime
    layers    = local.publish_layer ? module.runtime_layer[*].layer_version_arn : coalesce(var.model_runtime.layers, [])
    image_uri = var.model_runtime.image_uri
  }
  architecture                   = local.architecture
  memory_size                    = each.value.memory_size
  timeout                        = each.value.timeout
  reserved_concurrent_executions = each.value.reserved_concurrent_executions

  vpc = {
    subnet_ids         = module.network.private_subnet_ids
    security_group_ids = [module.network.function_security_group_id]
  }
  efs = {
    access_point_arn = module.model_storage.inference_access_point_arn
    file_system_arn  = module.model_storage.file_system_arn
    mount_path       = local.mount_path
    mount_target_ids = module.model_storage.mount_target_ids
  }
  kms_key_arn = module.artifact_store.kms_key_arn
  tags        = var.tags
}

module "deploy_role" {
  source = "../../modules/deploy-role"

  name                 = "${local.name}-deploy"
  github               = var.github
  create_oidc_provider = var.create_oidc_provider
  oidc_provider_arn    = var.oidc_provider_arn

  model_function_arns = { for k, f in module.model_function : k => f.function_arn }
  sync_function_arn   = module.artifact_sync.function_arn
  artifact_store = {
    bucket_arn        = module.artifact_store.bucket_arn
    artifact_prefixes = [module.artifact_store.artifact_prefix]
    audit_prefix      = module.artifact_store.audit_prefix
    lock_prefix       = module.artifact_store.lock_prefix
    kms_key_arns      = [module.artifact_store.kms_key_arn]
  }
  model_storage = {
    file_system_arn   = module.model_storage.file_system_arn
    access_point_arns = [module.model_storage.inference_access_point_arn, module.model_storage.sync_access_point_arn]
  }
  function_kms_key_arn = module.artifact_store.kms_key_arn
  # The agent gives every alias its route on this API.
  http_api = { api_id = module.http_api.api_id }
  tags     = var.tags
}

module "http_api" {
  source = "../../modules/http-api"

  name = local.name
  authorization = {
    type = var.http_api.authorization
    jwt  = var.http_api.jwt
  }
  routes = {
    for k, r in var.http_api.routes : k => {
      model         = r.model
      qualifier     = r.qualifier
      function_name = module.model_function[r.model].function_name
      function_arn  = module.model_function[r.model].function_arn
    }
  }
  kms_key_arn = module.artifact_store.kms_key_arn
  tags        = var.tags
}

# Reserved for the EKS inference service of a later issue; creates nothing while `create` is false.
module "eks_service" {
  source = "../../modules/eks-service"

  create = false
  name   = local.name
  tags   = var.tags
}
