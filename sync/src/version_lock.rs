//! One sync of a version at a time, across processes and hosts: an exclusive lock (flock; on EFS an NFSv4 lock) on
//! `<model>/.ferry-sync-<version>.lock`. Without it, a second sync of a version would remove the first one's
//! temporary folder as the leftover of a killed run. A process that dies releases its lock (the kernel closes the
//! file; on NFS the server ends the client's lease), so a killed sync never leaves the version locked. The empty
//! lock file stays: removing it while another process waits on it would let two hold "the" lock.
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::SyncError;

const POLL: Duration = Duration::from_millis(200);

/// Held while it lives; dropping it releases the lock.
pub struct VersionLock {
    _file: File,
}

pub fn lock_path(model_dir: &Path, version: &str) -> PathBuf {
    model_dir.join(format!(".ferry-sync-{version}.lock"))
}

/// Waits up to `timeout` for the lock of `version`, creating the model folder and the lock file if need be.
pub async fn lock_version(
    model_dir: &Path,
    version: &str,
    timeout: Duration,
) -> Result<VersionLock, SyncError> {
    std::fs::create_dir_all(model_dir)
        .map_err(|e| SyncError::local(model_dir, format!("cannot create: {e}")))?;
    let path = lock_path(model_dir, version);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SyncError::local(&path, format!("cannot open the sync lock: {e}")))?;
    let deadline = Instant::now() + timeout;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(VersionLock { _file: file }),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                if !told {
                    tracing::info!(
                        "{}: another sync of version {version} is running; waiting for it (up to {timeout:?})",
                        path.display()
                    );
                    told = true;
                }
                tokio::time::sleep(POLL).await;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(SyncError::local(
                    &path,
                    format!(
                        "another sync of version {version} still holds this lock after {timeout:?}"
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(SyncError::local(&path, format!("cannot lock: {e}")));
            }
        }
    }
}
