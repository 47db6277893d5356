output "ferry_platform" {
  description = "The platform as the Ferry agent reads it (`ferry --platform`); schema in docs/contracts.md, section 1."
  value = {
    schema_version  = 1
    environment     = var.environment
    region          = module.artifact_store.region
    artifact_bucket = module.artifact_store.bucket_id
    audit_prefix    = module.artifact_store.audit_prefix
    lock_prefix     = module.artifact_store.lock_prefix
    efs = {
      file_system_id             = module.model_storage.file_system_id
      inference_access_point_arn = module.model_storage.inference_access_point_arn
      sync_access_point_arn      = module.model_storage.sync_access_point_arn
      mount_path                 = local.mount_path
    }
    network = {
      subnet_ids         = module.network.private_subnet_ids
      security_group_ids = [module.network.function_security_group_id]
    }
    functions     = { for k, f in module.model_function : k => f.function_name }
    sync_function = module.artifact_sync.function_name
    # What the model functions run, so that the agent can check each model version against it: the Lambda
    # runtime, the architecture, and every distribution in the layer published from dist/, name => version
    # (empty when model_runtime.layers names existing layers, whose contents Terraform does not know).
    runtime = {
      python         = local.runtime
      architecture   = local.architecture
      layer_packages = try(module.runtime_layer[0].packages, {})
    }
    http_api_id            = null
    http_api_authorization = null
  }
}
