//! Sync: verified, atomic, resumable copy of a version's artifacts from S3 to EFS.
use crate::manifest::ArtifactManifest;

/// The manifest of an S3 prefix, hashing each object as it streams by.
pub async fn remote_manifest(uri: &str) -> anyhow::Result<ArtifactManifest> {
    anyhow::bail!("{uri}: manifests of S3 prefixes arrive with `ferry sync`")
}
