//! The deploy lock: one S3 object under the platform's lock prefix, created with `If-None-Match: *`, so that two
//! deploys of one environment never interleave. A lock is never taken over silently: a stale one is removed with
//! `ferry unlock --force --reason`, which is audited.
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::aws::describe_sdk_error;
use crate::platform::Platform;

/// How long a lock is valid for; a deploy that runs longer is still the holder, but others may call it stale.
pub const LOCK_TTL: Duration = Duration::from_secs(30 * 60);
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub holder: String,
    pub host: String,
    pub pid: u32,
    pub run_id: String,
    pub command: String,
    pub started_at: String,
    pub expires_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "lock s3://{bucket}/{key} held by {} (pid {}, run {}) since {}, expires {}; rerun later, or `ferry unlock --force --reason \"...\"` if that run is gone",
        .holder.holder, .holder.pid, .holder.run_id, .holder.started_at, .holder.expires_at
    )]
    Held {
        bucket: String,
        key: String,
        holder: Box<LockRecord>,
    },
    #[error("lock s3://{bucket}/{key}: {reason}")]
    S3 {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("lock s3://{bucket}/{key}: no lock is held")]
    NotHeld { bucket: String, key: String },
}

#[derive(Clone)]
pub struct DeployLock {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
}

/// A held lock; release it with [`HeldLock::release`].
pub struct HeldLock {
    lock: DeployLock,
    record: LockRecord,
}

impl DeployLock {
    pub fn new(s3: aws_sdk_s3::Client, platform: &Platform) -> DeployLock {
        DeployLock {
            s3,
            bucket: platform.artifact_bucket.clone(),
            key: format!("{}{}.lock", platform.lock_prefix, platform.environment),
        }
    }

    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn s3_error(&self, reason: String) -> LockError {
        LockError::S3 {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            reason,
        }
    }

    /// Takes the lock, waiting up to `timeout` while another run holds it.
    pub async fn acquire(
        &self,
        holder: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<HeldLock, LockError> {
        let now = OffsetDateTime::now_utc();
        let record = LockRecord {
            holder: holder.into(),
            host: crate::audit::hostname(),
            pid: std::process::id(),
            run_id: format!("{}-{}", crate::audit::key_time(now), std::process::id()),
            command: command.into(),
            started_at: crate::audit::rfc3339(now),
            expires_at: crate::audit::rfc3339(now + LOCK_TTL),
        };
        let body = serde_json::to_vec_pretty(&record).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let put = self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .if_none_match("*")
                .content_type("application/json")
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            match put {
                Ok(_) => {
                    return Ok(HeldLock {
                        lock: self.clone(),
                        record,
                    });
                }
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                    if tokio::time::Instant::now() >= deadline {
                        let holder = self.read().await?.ok_or_else(|| {
                            self.s3_error("lock vanished while reading it".into())
                        })?;
                        return Err(LockError::Held {
                            bucket: self.bucket.clone(),
                            key: self.key.clone(),
                            holder: Box::new(holder),
                        });
                    }
                    tracing::info!(lock = %self.location(), "lock held by another run; waiting");
                    tokio::time::sleep(POLL.min(deadline - tokio::time::Instant::now())).await;
                }
                Err(e) => return Err(self.s3_error(describe_sdk_error(&e))),
            }
        }
    }

    /// The current lock record, if any.
    pub async fn read(&self) -> Result<Option<LockRecord>, LockError> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
        {
            Ok(out) => {
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.s3_error(e.to_string()))?
                    .into_bytes();
                serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                    self.s3_error(format!("holds something that is not a Ferry lock: {e}"))
                })
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.s3_error(describe_sdk_error(&e))),
        }
    }

    /// Removes whatever lock is there (for `ferry unlock --force`); returns what it removed.
    pub async fn force_remove(&self) -> Result<LockRecord, LockError> {
        let record = self.read().await?.ok_or(LockError::NotHeld {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
        })?;
        self.delete().await?;
        Ok(record)
    }

    async fn delete(&self) -> Result<(), LockError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.s3_error(describe_sdk_error(&e)))
    }
}

impl HeldLock {
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    /// Releases the lock if it is still ours (someone may have forced it away meanwhile).
    pub async fn release(self) -> Result<(), LockError> {
        match self.lock.read().await? {
            Some(current) if current.run_id == self.record.run_id => self.lock.delete().await,
            Some(other) => {
                tracing::warn!(holder = %other.holder, "the lock was taken over by another run; leaving it");
                Ok(())
            }
            None => Ok(()),
        }
    }
}
