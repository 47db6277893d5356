//! The EFS side: a version is written into a temporary folder in its model folder, fsynced, and renamed into place
//! in one step; a version folder already there is checked, never modified.
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::SyncError;
use super::source::{RemoteObject, Source, local_path};
use crate::Sha256Hex;
use crate::manifest::{ArtifactManifest, MANIFEST_FILE, file_differences, scan_dir};

pub const TEMP_PREFIX: &str = ".ferry-tmp-";

/// `<model>/.ferry-tmp-<version>-<random>/`: removed on drop unless committed.
pub struct Staging {
    dir: PathBuf,
    model_dir: PathBuf,
    committed: bool,
}

impl Staging {
    pub fn create(model_dir: &Path, version: &str) -> Result<Staging, SyncError> {
        std::fs::create_dir_all(model_dir)
            .map_err(|e| SyncError::local(model_dir, format!("cannot create: {e}")))?;
        let dir = model_dir.join(format!("{TEMP_PREFIX}{version}-{}", random_suffix()));
        std::fs::create_dir(&dir)
            .map_err(|e| SyncError::local(&dir, format!("cannot create: {e}")))?;
        Ok(Staging {
            dir,
            model_dir: model_dir.to_owned(),
            committed: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_path(&self, rel: &str) -> PathBuf {
        local_path(&self.dir, rel)
    }

    /// Creates every folder the objects need.
    pub fn create_dirs(&self, objects: &[RemoteObject]) -> Result<(), SyncError> {
        for o in objects {
            if let Some((parent, _)) = o.path.rsplit_once('/') {
                let dir = local_path(&self.dir, parent);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| SyncError::local(&dir, format!("cannot create: {e}")))?;
            }
        }
        Ok(())
    }

    pub fn create_file(&self, path: &Path) -> Result<File, SyncError> {
        std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(path)
            .map_err(|e| SyncError::local(path, format!("cannot create: {e}")))
    }

    /// Writes the manifest, fsyncs it and every folder, and renames the folder to `final_dir` in one step.
    pub fn commit(
        mut self,
        manifest: &ArtifactManifest,
        final_dir: &Path,
    ) -> Result<(), SyncError> {
        let path = self.dir.join(MANIFEST_FILE);
        let text =
            serde_json::to_string_pretty(manifest).map_err(|e| SyncError::local(&path, e))? + "\n";
        {
            use std::io::Write;
            let mut f = self.create_file(&path)?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| SyncError::local(&path, format!("cannot write: {e}")))?;
        }
        fsync_tree(&self.dir)?;
        if final_dir.symlink_metadata().is_ok() {
            return Err(SyncError::local(
                final_dir,
                "appeared while this sync was running (another sync?); left alone",
            ));
        }
        std::fs::rename(&self.dir, final_dir).map_err(|e| {
            SyncError::local(
                final_dir,
                format!("cannot rename {} into place: {e}", self.dir.display()),
            )
        })?;
        self.committed = true;
        fsync_dir(&self.model_dir)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
        {
            tracing::warn!("{}: cannot remove: {e}", self.dir.display());
        }
    }
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    format!("{:016x}", h.finish())
}

fn fsync_dir(dir: &Path) -> Result<(), SyncError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| SyncError::local(dir, format!("cannot fsync: {e}")))
}

/// Fsyncs every folder under `dir`, deepest first, then `dir` (files are fsynced as they are finished).
fn fsync_tree(dir: &Path) -> Result<(), SyncError> {
    let listing =
        std::fs::read_dir(dir).map_err(|e| SyncError::local(dir, format!("cannot list: {e}")))?;
    for item in listing {
        let item = item.map_err(|e| SyncError::local(dir, format!("cannot list: {e}")))?;
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            fsync_tree(&item.path())?;
        }
    }
    fsync_dir(dir)
}

/// Removes `.ferry-tmp-<version>-*` folders left in the model folder by a sync that was killed.
pub fn remove_leftovers(model_dir: &Path, version: &str) -> Result<(), SyncError> {
    let listing = match std::fs::read_dir(model_dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SyncError::local(model_dir, format!("cannot list: {e}"))),
    };
    let mine = format!("{TEMP_PREFIX}{version}-");
    for item in listing {
        let item = item.map_err(|e| SyncError::local(model_dir, format!("cannot list: {e}")))?;
        if item
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&mine))
        {
            let path = item.path();
            tracing::info!(
                "{}: removing the leftover of an interrupted sync",
                path.display()
            );
            std::fs::remove_dir_all(&path)
                .map_err(|e| SyncError::local(&path, format!("cannot remove: {e}")))?;
        }
    }
    Ok(())
}

/// Objects of a version that changed after it was synced (names and sizes being the same). Where the manifest
/// recorded the ETags it copied, they decide: any rewrite of an object's bytes changes its ETag, whatever the
/// clocks say. A manifest without them (written by an older Ferry) falls back to times: an object S3 says was
/// modified after the manifest was written (S3 times are whole seconds, so a rewrite within the sync's last
/// second can escape this).
fn rewritten_since_sync(
    source: &Source,
    objects: &[RemoteObject],
    manifest: &ArtifactManifest,
    manifest_path: &Path,
) -> Result<Vec<String>, SyncError> {
    let copied: BTreeMap<&str, &str> = manifest
        .files
        .iter()
        .filter_map(|f| Some((f.path.as_str(), f.etag.as_deref()?)))
        .collect();
    let synced_at = std::fs::metadata(manifest_path)
        .and_then(|m| m.modified())
        .map_err(|e| SyncError::local(manifest_path, e))?;
    let mut problems = Vec::new();
    for o in objects {
        let changed = match (copied.get(o.path.as_str()), o.e_tag.as_deref()) {
            (Some(then), Some(now)) => *then != now,
            _ => o.last_modified.is_some_and(|t| t > synced_at),
        };
        if changed {
            problems.push(format!(
                "{} was modified after this version was synced",
                source.object_uri(&o.key)
            ));
        }
    }
    Ok(problems)
}

/// Checks a version folder that is already there against S3's listing without downloading anything: its manifest
/// must be intact, list the same paths and sizes, name the expected digest, and no object may have changed after
/// the folder was written. With `verify`, every file is re-hashed against the manifest too.
pub fn check_present(
    dir: &Path,
    source: &Source,
    objects: &[RemoteObject],
    expected_digest: Option<&Sha256Hex>,
    verify: bool,
) -> Result<ArtifactManifest, SyncError> {
    let differs = |reason: String| SyncError::Differs {
        dir: dir.to_owned(),
        source_uri: source.uri().to_string(),
        reason,
    };
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        differs(format!(
            "its {MANIFEST_FILE} cannot be read ({e}): not a version folder Ferry wrote"
        ))
    })?;
    let manifest =
        ArtifactManifest::parse(&text).map_err(|r| differs(format!("its {MANIFEST_FILE} {r}")))?;

    let listed: BTreeMap<&str, &RemoteObject> =
        objects.iter().map(|o| (o.path.as_str(), o)).collect();
    let recorded: BTreeMap<&str, u64> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.size))
        .collect();
    let mut problems = Vec::new();
    for (path, o) in &listed {
        match recorded.get(path) {
            None => problems.push(format!(
                "{} is not in the folder",
                source.object_uri(&o.key)
            )),
            Some(&size) if size != o.size => problems.push(format!(
                "{} is {} bytes, the folder's copy {size}",
                source.object_uri(&o.key),
                o.size
            )),
            Some(_) => {}
        }
    }
    for path in recorded.keys() {
        if !listed.contains_key(path) {
            problems.push(format!("{path} is in the folder but no longer in S3"));
        }
    }
    if problems.is_empty() {
        problems = rewritten_since_sync(source, objects, &manifest, &manifest_path)?;
    }
    if !problems.is_empty() {
        let more = problems.len().saturating_sub(3);
        let mut reason = problems.into_iter().take(3).collect::<Vec<_>>().join("; ");
        if more > 0 {
            reason.push_str(&format!(" (and {more} more)"));
        }
        return Err(differs(reason));
    }
    if let Some(expected) = expected_digest
        && *expected != manifest.digest
    {
        return Err(differs(format!(
            "its digest is {} but the approval (ferry.artifact_sha256) says {expected}",
            manifest.digest
        )));
    }
    if verify {
        let files = scan_dir(dir).map_err(|r| differs(format!("cannot re-hash: {r}")))?;
        let differences = file_differences(&files, &manifest.files);
        if !differences.is_empty() {
            let bad: Vec<String> = differences.iter().map(ToString::to_string).collect();
            return Err(differs(format!(
                "its files do not match its manifest: {}",
                bad.join(", ")
            )));
        }
    }
    Ok(manifest)
}
