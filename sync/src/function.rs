//! The sync function's handler logic, run by the `ferry-sync-lambda` binary inside the VPC with the EFS access
//! point mounted read-write. Configured by the environment the Terraform module sets: `FERRY_EFS_ROOT`,
//! `FERRY_ARTIFACT_BUCKET`, `FERRY_ALLOWED_SOURCE_PREFIXES` (comma-separated key prefixes in that bucket).
use std::path::PathBuf;

use super::source::Source;
use super::{SyncError, SyncOptions, SyncOutcome, SyncRequest, Syncer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub efs_root: PathBuf,
    pub bucket: String,
    /// Key prefixes a source must lie under, each ending in '/'.
    pub allowed_prefixes: Vec<String>,
}

impl FunctionConfig {
    pub fn from_env() -> Result<FunctionConfig, SyncError> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    SyncError::Request(format!("the function's environment lacks {name}"))
                })
        };
        FunctionConfig::new(
            PathBuf::from(var("FERRY_EFS_ROOT")?),
            var("FERRY_ARTIFACT_BUCKET")?,
            &var("FERRY_ALLOWED_SOURCE_PREFIXES")?,
        )
    }

    pub fn new(
        efs_root: PathBuf,
        bucket: String,
        prefixes: &str,
    ) -> Result<FunctionConfig, SyncError> {
        let allowed_prefixes: Vec<String> = prefixes
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| format!("{}/", p.trim_matches('/')))
            .collect();
        if allowed_prefixes.is_empty() {
            return Err(SyncError::Request(
                "FERRY_ALLOWED_SOURCE_PREFIXES names no prefix".into(),
            ));
        }
        Ok(FunctionConfig {
            efs_root,
            bucket,
            allowed_prefixes,
        })
    }

    /// Refuses a source outside the artifact bucket's allowed prefixes.
    pub fn check_source(&self, uri: &str) -> Result<(), SyncError> {
        let source = Source::parse(uri)?;
        let key_prefix = format!("{}/", source.prefix());
        if source.bucket() != self.bucket
            || !self
                .allowed_prefixes
                .iter()
                .any(|p| key_prefix.starts_with(p.as_str()))
        {
            return Err(SyncError::Source {
                uri: uri.to_string(),
                reason: format!(
                    "outside what this function may copy (s3://{}/ under {})",
                    self.bucket,
                    self.allowed_prefixes.join(", ")
                ),
            });
        }
        Ok(())
    }
}

/// Handles one request: checks the source, syncs into the mounted file system.
pub async fn handle(
    config: &FunctionConfig,
    s3: aws_sdk_s3::Client,
    req: &SyncRequest,
) -> Result<SyncOutcome, SyncError> {
    config.check_source(&req.source)?;
    let syncer = Syncer::new(s3, config.efs_root.clone(), SyncOptions::default());
    syncer.sync(req).await
}

/// The `errorType` of a function error: the variant's name.
pub fn error_type(err: &SyncError) -> &'static str {
    match err {
        SyncError::Request(_) => "InvalidRequest",
        SyncError::Source { .. } => "SourceError",
        SyncError::UnsafeKey { .. } => "UnsafeKey",
        SyncError::Object { .. } => "ObjectError",
        SyncError::Local { .. } => "FileSystemError",
        SyncError::DigestMismatch { .. } => "DigestMismatch",
        SyncError::Differs { .. } => "VersionDiffers",
        SyncError::Remote { .. } => "RemoteError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_outside_the_allowed_prefixes_are_refused() {
        let c = FunctionConfig::new("/mnt/models".into(), "art".into(), "mlflow/, models").unwrap();
        assert_eq!(c.allowed_prefixes, ["mlflow/", "models/"]);
        assert!(
            c.check_source("s3://art/mlflow/1/models/m-1/artifacts")
                .is_ok()
        );
        assert!(c.check_source("s3://art/models/x").is_ok());
        for bad in [
            "s3://other/mlflow/1",
            "s3://art/mlflowx/1",
            "s3://art/audit/x",
            "s3://art/mlflow/../audit",
            "s3://art",
        ] {
            assert!(c.check_source(bad).is_err(), "{bad} should be refused");
        }
        assert!(FunctionConfig::new("/m".into(), "art".into(), " , ").is_err());
    }
}
