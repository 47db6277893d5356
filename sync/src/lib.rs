//! `ferry-sync`: verified, atomic, resumable copy of a version's artifacts from S3 to EFS (docs/contracts.md,
//! sections 2 and 4). The crate the in-VPC sync function depends on alone; the `ferry` CLI uses it for `ferry sync`
//! on a machine that mounts the file system, and sends the same request to that function otherwise.
//!
//! One version is copied into `<root>/<model>/.ferry-tmp-<version>-<random>/`, every file hashed while it is
//! written, the manifest written beside the files, everything fsynced, and the folder renamed to
//! `<root>/<model>/<version>/` in one step, so a version folder is either absent or complete and verified.
//! A version folder that is already there is never modified: it is checked against S3's listing and skipped, or
//! the sync fails.
//!
//! - [`source`]: listing an S3 prefix (keys checked before anything is written) and streaming objects;
//! - `disk`: reserving a file's space before its bytes arrive, starting write-back early;
//! - [`writer`]: the temporary folder, fsync and rename, leftovers of killed runs, checks of a present version;
//! - [`function`]: the sync function's handler logic (the `ferry-sync-lambda` binary is a thin wrapper);
//! - [`manifest`]: a version folder's manifest and the artifact digest;
//! - [`s3`]: the S3 client, `s3://` URIs, SDK errors in one line;
//! - [`memory`]: how the process's allocator treats freed memory.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::manifest::{ArtifactManifest, ManifestEntry, check_relative_path};

mod disk;
pub mod function;
pub mod manifest;
pub mod memory;
mod ordered_hash;
mod progress;
pub mod s3;
pub mod sha256_hex;
pub mod source;
mod version_lock;
pub mod writer;

pub use progress::Progress;
pub use sha256_hex::Sha256Hex;
use source::{RemoteObject, Source, Transfer};
use writer::Staging;

/// What to copy: one approved version (docs/contracts.md, section 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub model: String,
    pub version: String,
    /// `s3://bucket/prefix` of the version's artifacts.
    pub source: String,
    /// The artifact digest the approval names (`ferry.artifact_sha256`); the sync is refused when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_digest: Option<Sha256Hex>,
    /// Re-hash the files of a version already present, not only check its manifest (`ferry sync --verify`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify: bool,
}

/// What a sync did (docs/contracts.md, section 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOutcome {
    pub model: String,
    pub version: String,
    /// The artifact digest of the version folder's manifest.
    pub digest: String,
    pub files: usize,
    pub bytes: u64,
    /// True when the version was already present and verified: nothing was downloaded.
    pub skipped: bool,
}

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Objects and ranged parts in flight at once.
    pub concurrency: usize,
    /// Re-hash the files of a version already present, not only check its manifest against S3's listing.
    pub verify: bool,
    /// Objects over twice this size are fetched as concurrent ranged parts of this size (rounded up to whole MiB).
    pub part_size: u64,
    /// Show a progress bar (bytes, files, rate); otherwise log lines only.
    pub progress: bool,
    /// How long to wait for another sync of the same version to finish.
    pub lock_timeout: Duration,
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions {
            concurrency: 16,
            verify: false,
            part_size: 8 << 20,
            progress: false,
            lock_timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// The one error type of this boundary: each names the object (s3 URI), the file, or the folder, and the reason.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync request: {0}")]
    Request(String),
    #[error("{uri}: {reason}")]
    Source { uri: String, reason: String },
    #[error("{object}: refused before anything was written: {reason}")]
    UnsafeKey { object: String, reason: String },
    #[error("{object} -> {}: {reason}", file.display())]
    Object {
        object: String,
        file: PathBuf,
        reason: String,
    },
    #[error("{}: {reason}", path.display())]
    Local { path: PathBuf, reason: String },
    #[error(
        "{model} version {version}: artifact digest is {actual} but the approval (ferry.artifact_sha256) says {expected}; nothing was put in place"
    )]
    DigestMismatch {
        model: String,
        version: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{}: already present and different from {source_uri}: {reason}; a synced version is frozen and is never overwritten",
        dir.display()
    )]
    Differs {
        dir: PathBuf,
        source_uri: String,
        reason: String,
    },
    #[error("sync function {function}: {reason}")]
    Remote { function: String, reason: String },
}

impl SyncError {
    pub(crate) fn local(path: &Path, reason: impl std::fmt::Display) -> SyncError {
        SyncError::Local {
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Copies versions from S3 into one EFS root.
#[derive(Clone)]
pub struct Syncer {
    s3: aws_sdk_s3::Client,
    efs_root: PathBuf,
    options: SyncOptions,
}

impl Syncer {
    pub fn new(s3: aws_sdk_s3::Client, efs_root: PathBuf, options: SyncOptions) -> Syncer {
        Syncer {
            s3,
            efs_root,
            options,
        }
    }

    pub fn efs_root(&self) -> &Path {
        &self.efs_root
    }

    /// The folder of a version: `<root>/<model>/<version>`.
    pub fn version_dir(&self, model: &str, version: &str) -> PathBuf {
        self.efs_root.join(model).join(version)
    }

    /// Copies one version, or checks and skips it when it is already there.
    pub async fn sync(&self, req: &SyncRequest) -> Result<SyncOutcome, SyncError> {
        check_request(req)?;
        if !self.efs_root.is_dir() {
            return Err(SyncError::local(
                &self.efs_root,
                "the EFS root is not a folder (is the file system mounted?)",
            ));
        }
        let source = Source::parse(&req.source)?;
        let objects = source.list(&self.s3).await?;
        let model_dir = self.efs_root.join(&req.model);
        let final_dir = model_dir.join(&req.version);
        // Held until the version is in place (or refused): a concurrent sync of it waits, then finds it present.
        let _lock =
            version_lock::lock_version(&model_dir, &req.version, self.options.lock_timeout).await?;

        if final_dir.symlink_metadata().is_ok() {
            let manifest = writer::check_present(
                &final_dir,
                &source,
                &objects,
                req.expected_digest.as_ref(),
                self.options.verify || req.verify,
            )?;
            tracing::info!(
                "{} version {}: present and verified at {}, nothing downloaded",
                req.model,
                req.version,
                final_dir.display()
            );
            return Ok(SyncOutcome {
                model: req.model.clone(),
                version: req.version.clone(),
                digest: manifest.digest.clone(),
                files: manifest.files.len(),
                bytes: manifest.total_bytes(),
                skipped: true,
            });
        }

        let started = Instant::now();
        let total: u64 = objects.iter().map(|o| o.size).sum();
        tracing::info!(
            "{} version {}: copying {} object(s), {} bytes, from {}",
            req.model,
            req.version,
            objects.len(),
            total,
            source.uri()
        );
        writer::remove_leftovers(&model_dir, &req.version)?;
        let staging = Staging::create(&model_dir, &req.version)?;
        staging.create_dirs(&objects)?;
        let progress = Arc::new(Progress::new(
            self.options.progress,
            &format!("{} v{}", req.model, req.version),
            total,
            objects.len(),
        ));
        let transfer = Transfer::new(&self.s3, &source, &self.options, progress.clone());
        let entries = copy_all(&transfer, &staging, &objects, self.options.concurrency).await?;
        progress.finish();

        let manifest = ArtifactManifest::new(&req.model, &req.version, source.uri(), entries);
        if let Some(expected) = &req.expected_digest
            && *expected != manifest.digest
        {
            return Err(SyncError::DigestMismatch {
                model: req.model.clone(),
                version: req.version.clone(),
                expected: expected.to_string(),
                actual: manifest.digest,
            });
        }
        staging.commit(&manifest, &final_dir)?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            "{} version {}: {} file(s), {} bytes in {:.1} s ({:.1} MiB/s), digest {}",
            req.model,
            req.version,
            manifest.files.len(),
            total,
            secs,
            total as f64 / (1 << 20) as f64 / secs.max(1e-6),
            manifest.digest
        );
        Ok(SyncOutcome {
            model: req.model.clone(),
            version: req.version.clone(),
            digest: manifest.digest.clone(),
            files: manifest.files.len(),
            bytes: total,
            skipped: false,
        })
    }
}

async fn copy_all(
    transfer: &Transfer<'_>,
    staging: &Staging,
    objects: &[RemoteObject],
    concurrency: usize,
) -> Result<Vec<ManifestEntry>, SyncError> {
    let mut entries = Vec::with_capacity(objects.len());
    // Largest first: a big file's parts and its (sequential) hash start at once and overlap the small files,
    // instead of running alone at the end. The manifest is sorted by path whatever the order.
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(objects[i].size));
    let mut copies = futures::stream::iter(order)
        .map(|i| async move {
            let object = &objects[i];
            let path = staging.file_path(&object.path);
            let file = staging.create_file(&path)?;
            let sha256 = transfer.copy_to_file(object, file, &path).await?;
            Ok::<_, SyncError>(ManifestEntry {
                path: object.path.clone(),
                size: object.size,
                sha256,
                etag: object.e_tag.clone(),
            })
        })
        // Files in progress may outnumber requests in flight: a file being fsynced holds no request.
        .buffer_unordered(concurrency.max(1) * 2);
    while let Some(entry) = copies.next().await {
        entries.push(entry?);
    }
    Ok(entries)
}

/// Model and version are single folder names (the expected digest is typed: checked as it is read).
fn check_request(req: &SyncRequest) -> Result<(), SyncError> {
    for (field, value) in [("model", &req.model), ("version", &req.version)] {
        check_relative_path(value)
            .map_err(|r| SyncError::Request(format!("{field} {value:?} {r}")))?;
        if value.contains('/') || value.starts_with('.') {
            return Err(SyncError::Request(format!(
                "{field} {value:?} is not a single folder name (no '/', no leading '.')"
            )));
        }
    }
    Ok(())
}

/// The manifest of an S3 prefix, hashing each object as it streams by (nothing is written).
pub async fn remote_manifest(uri: &str) -> anyhow::Result<ArtifactManifest> {
    let s3 = crate::s3::client_from_env().await;
    let source = Source::parse(uri)?;
    let objects = source.list(&s3).await?;
    let options = SyncOptions::default();
    let progress = Arc::new(Progress::new(
        false,
        uri,
        objects.iter().map(|o| o.size).sum(),
        objects.len(),
    ));
    let transfer = Transfer::new(&s3, &source, &options, progress);
    let mut hashes = futures::stream::iter(&objects)
        .map(|object| async {
            let sha256 = transfer.hash_object(object).await?;
            Ok::<_, SyncError>(ManifestEntry {
                path: object.path.clone(),
                size: object.size,
                sha256,
                etag: None,
            })
        })
        .buffer_unordered(8);
    let mut entries = Vec::with_capacity(objects.len());
    while let Some(entry) = hashes.next().await {
        entries.push(entry?);
    }
    Ok(ArtifactManifest::new("", "", uri, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(model: &str, version: &str, digest: Option<Sha256Hex>) -> SyncRequest {
        SyncRequest {
            model: model.into(),
            version: version.into(),
            source: "s3://b/p".into(),
            expected_digest: digest,
            verify: false,
        }
    }

    #[test]
    fn requests_name_single_folders_and_a_well_formed_digest() {
        assert!(check_request(&req("risk-score", "3", None)).is_ok());
        let digest = Sha256Hex::of_bytes(b"weights");
        assert!(check_request(&req("risk-score", "3", Some(digest))).is_ok());
        for bad in [
            req("../x", "3", None),
            req("a/b", "3", None),
            req("m", "..", None),
            req("m", ".ferry-tmp-3", None),
            req("m", "", None),
        ] {
            assert!(check_request(&bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_request_whose_expected_digest_is_not_a_sha256_is_refused_as_it_is_read() {
        for bad in [
            "ABC",
            "",
            "A94A8FE5CCB19BA61C4C0873D391E987982FBBD3A94A8FE5CCB19BA61C4C0873",
        ] {
            let json = format!(
                r#"{{"model": "risk-score", "version": "3", "source": "s3://b/p", "expected_digest": "{bad}"}}"#
            );
            let err = serde_json::from_str::<SyncRequest>(&json).unwrap_err();
            assert!(
                err.to_string().contains(&format!(
                    "{bad:?} is not a SHA-256 of 64 lowercase hex digits"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn the_request_and_response_are_the_documented_json() {
        let r: SyncRequest = serde_json::from_str(
            r#"{"model": "risk-score", "version": "3", "source": "s3://bucket/prefix", "expected_digest": null}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            req("risk-score", "3", None).with_source("s3://bucket/prefix")
        );
        let mut verifying = req("risk-score", "3", None).with_source("s3://bucket/prefix");
        verifying.verify = true;
        assert_eq!(
            serde_json::to_value(&verifying).unwrap(),
            serde_json::json!({"model": "risk-score", "version": "3", "source": "s3://bucket/prefix", "verify": true})
        );
        let o = SyncOutcome {
            model: "risk-score".into(),
            version: "3".into(),
            digest: "5e88".into(),
            files: 5,
            bytes: 10240,
            skipped: false,
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"model": "risk-score", "version": "3", "digest": "5e88", "files": 5, "bytes": 10240, "skipped": false})
        );
    }

    impl SyncRequest {
        fn with_source(mut self, s: &str) -> SyncRequest {
            self.source = s.into();
            self
        }
    }
}
