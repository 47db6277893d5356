locals {
  # The names `make package-runtime` writes (runtime/packaging/build_layer.py: LAYER_ZIP_PATTERN, REPORT_NAME);
  # terraform/tests/test_runtime_target.py fails when they differ.
  layer_zip = "${var.dist_dir}/ferry-runtime-layer-${var.architecture}.zip"
  report    = "${var.dist_dir}/ferry-runtime-layer.json"

  # Guarded, so that a missing build fails the precondition below with its message rather than inside file().
  built         = fileexists(local.layer_zip) && fileexists(local.report)
  build         = local.built ? jsondecode(file(local.report)) : null
  sha256        = local.built ? filesha256(local.layer_zip) : ""
  base64sha256  = local.built ? filebase64sha256(local.layer_zip) : ""
  layer_report  = try(local.build.layers[var.architecture], null)
  packages      = try(local.layer_report.packages, local.build.packages, {})
  package_names = ["mlflow-skinny", "numpy", "pandas", "cloudpickle"]

  tags = merge(var.tags, { "ferry:module" = "runtime-layer" })
}

# The layer zips are above Lambda's 50 MB direct upload, so they are published from S3. One key per architecture
# in the versioned bucket: a new build (another SHA-256, `source_hash`) is a new object version, and the layer is
# published from exactly that version. An unchanged build changes nothing. A key per hash would make every
# rebuild replace the object, and the provider deletes every version of a replaced object in a versioned bucket,
# which Object Lock in COMPLIANCE mode (the complete example) refuses: the apply would fail.
resource "aws_s3_object" "layer" {
  bucket                 = var.bucket
  key                    = "${var.key_prefix}${basename(local.layer_zip)}"
  source                 = local.layer_zip
  source_hash            = local.sha256
  metadata               = { sha256 = local.sha256 }
  content_type           = "application/zip"
  checksum_algorithm     = "SHA256"
  server_side_encryption = "aws:kms"
  kms_key_id             = var.kms_key_arn
  bucket_key_enabled     = true
  tags                   = local.tags

  lifecycle {
    precondition {
      condition     = local.built
      error_message = "${local.layer_zip} or ${local.report} does not exist: run `make package-runtime` (it writes both) or point dist_dir at its output."
    }
    precondition {
      condition     = try(local.build.runtime, null) == var.runtime && local.layer_report != null
      error_message = "${local.report} describes a build for ${try(local.build.runtime, "?")} on ${join(", ", try(keys(local.build.layers), []))}, not ${var.runtime} on ${var.architecture}: rebuild with `make package-runtime`."
    }
    precondition {
      condition     = try(local.layer_report.sha256, null) == local.sha256
      error_message = "${local.layer_zip} is not the zip ${local.report} describes (its SHA-256 differs): rebuild with `make package-runtime`, which writes both together."
    }
  }
}

resource "aws_lambda_layer_version" "this" {
  layer_name  = var.layer_name
  description = substr("Ferry runtime for ${var.runtime} ${var.architecture}: ${join(", ", [for n in local.package_names : "${n} ${lookup(local.packages, n, "")}" if lookup(local.packages, n, "") != ""])}", 0, 256)

  s3_bucket         = aws_s3_object.layer.bucket
  s3_key            = aws_s3_object.layer.key
  s3_object_version = aws_s3_object.layer.version_id
  source_code_hash  = local.base64sha256

  compatible_runtimes      = [var.runtime]
  compatible_architectures = [var.architecture]

  # Published model versions keep naming the layer version they were frozen with: a new build adds a layer
  # version and never deletes the one before it.
  skip_destroy = true
}
