//! The deploy lock: one S3 object under the platform's lock prefix, so that two runs against one environment never
//! interleave. It is a lease, not a flag:
//!
//! - taken with `If-None-Match: *`; a 412 whose body carries this run's id is this run's own put whose answer was
//!   lost (the SDK retried it), so the run holds the lock;
//! - renewed while the run works (a heartbeat, `If-Match` on the ETag this run last wrote);
//! - checked before every mutating step ([`Fence::check`]): a run that could not renew for its lease, or whose lock
//!   was taken over or removed, stops before its next change;
//! - released with `If-Match` on its ETag, retried; when even that fails, the lease runs out by itself;
//! - taken over, once a dead run's lease has run out, by a conditional write on that lock's ETag (one contender
//!   wins), and the takeover is audited by the caller ([`Acquired::took_over`]).
//!
//! `ferry unlock --force` stays for a lock whose holder is alive but should not be.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::aws::describe_sdk_error;
use crate::platform::Platform;

/// How long a lock stays valid without a renewal. A killed run blocks others for at most this (plus [`CLOCK_SKEW`]).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Expiry is read from the holder's clock; a lease counts as run out only this long after it says so (half the lease
/// when that is shorter).
pub const CLOCK_SKEW: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_secs(2);
const RELEASE_ATTEMPTS: u32 = 4;

/// One run of a command: what a lock body, and the audit records the run writes, name it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// `20261126T081500.123Z-4411-9f3c2a1b`: when, which process, and 32 random bits (pids repeat across runners).
    pub fn new() -> RunId {
        let mut random = [0u8; 4];
        let read = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random));
        if read.is_err() {
            let seed = std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                Instant::now(),
            );
            random = (seed as u32).to_be_bytes();
        }
        RunId(format!(
            "{}-{}-{}",
            crate::audit::key_time(OffsetDateTime::now_utc()),
            std::process::id(),
            hex::encode(random)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub holder: String,
    pub host: String,
    pub pid: u32,
    pub run_id: String,
    pub command: String,
    pub started_at: String,
    /// Last renewal (absent in locks written before leases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
    /// The end of the lease: after it (and [`CLOCK_SKEW`]) another run may take the lock over.
    pub expires_at: String,
    /// The run whose expired lock this run took over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over_from: Option<String>,
}

impl LockRecord {
    fn expires(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(
            &self.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    }

    /// Whether the lease ran out (a lock whose expiry cannot be read never does: it needs `ferry unlock --force`).
    /// The allowance for clock skew is [`CLOCK_SKEW`], or half the lease when that is shorter.
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        let allowance = self
            .lease_seconds
            .map(|l| Duration::from_millis(l * 500).min(CLOCK_SKEW))
            .unwrap_or(CLOCK_SKEW);
        self.expires().is_some_and(|e| now > e + allowance)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "lock s3://{bucket}/{key} held by {} (pid {}, run {}) since {}; its lease runs to {} and a later run takes it over after that; rerun later, or `ferry unlock --force --reason \"...\"` if that run should not hold it",
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
    #[error("lock {key}: this run no longer holds it ({reason}); stopped before its next change")]
    Lost { key: String, reason: String },
    #[error(
        "stopped by {signal} before the next change; everything before it is done and the next run finishes the rest"
    )]
    Stopped { signal: &'static str },
}

#[derive(Debug, Clone, Copy)]
pub struct LockOptions {
    /// How long to wait for another live run's lock.
    pub wait: Duration,
    pub lease: Duration,
}

#[derive(Clone)]
pub struct DeployLock {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
}

/// The lock as this run last wrote it, and whether it still holds it.
struct Lease {
    etag: String,
    record: LockRecord,
    /// When the lease last started (acquired or renewed).
    renewed: Instant,
    lost: Option<String>,
    /// The signal that asked this run to stop (SIGTERM from a CI timeout, SIGINT from a terminal).
    stopped: Option<&'static str>,
}

/// Checked before every mutating step: `Err` once this run may no longer hold the lock.
#[derive(Clone)]
pub struct Fence {
    state: Option<Arc<Mutex<Lease>>>,
    lease: Duration,
    location: String,
}

impl Fence {
    /// A fence that never stops anything: for commands and tests that work without the lock.
    pub fn unlocked() -> Fence {
        Fence {
            state: None,
            lease: Duration::MAX,
            location: String::new(),
        }
    }

    pub fn check(&self) -> Result<(), LockError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        let lease = state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(signal) = lease.stopped {
            return Err(LockError::Stopped { signal });
        }
        let reason = lease.lost.clone().or_else(|| {
            // Others may take the lock over once the lease ran out; stop a margin before that.
            let unrenewed = lease.renewed.elapsed();
            (unrenewed + self.lease / 4 > self.lease).then(|| {
                format!(
                    "not renewed for {} s of a {} s lease",
                    unrenewed.as_secs(),
                    self.lease.as_secs()
                )
            })
        });
        match reason {
            None => Ok(()),
            Some(reason) => Err(LockError::Lost {
                key: self.location.clone(),
                reason,
            }),
        }
    }
}

/// A taken lock: release it with [`HeldLock::release`]. Renewed in the background until then.
pub struct HeldLock {
    lock: DeployLock,
    state: Arc<Mutex<Lease>>,
    lease: Duration,
    heartbeat: tokio::task::JoinHandle<()>,
    signals: tokio::task::JoinHandle<()>,
}

/// What [`DeployLock::acquire`] got: the lock, and the dead run's lock it took over, if it did (to be audited).
pub struct Acquired {
    pub held: HeldLock,
    pub took_over: Option<LockRecord>,
}

enum Put {
    Written(String),
    PreconditionFailed,
}

/// Who holds the lock after a conditional write: this run (with the record and ETag now there), another run, nobody.
enum Claim {
    Ours(LockRecord, String),
    Other(LockRecord, String),
    Gone,
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

    /// Takes the lock for run `run`, waiting up to `options.wait` while a live run holds it, and taking over the
    /// lock of a run whose lease ran out.
    pub async fn acquire(
        &self,
        run: &RunId,
        holder: &str,
        command: &str,
        options: LockOptions,
    ) -> Result<Acquired, LockError> {
        let started = OffsetDateTime::now_utc();
        let mut record = LockRecord {
            holder: holder.into(),
            host: crate::audit::hostname(),
            pid: std::process::id(),
            run_id: run.as_str().into(),
            command: command.into(),
            started_at: crate::audit::rfc3339(started),
            renewed_at: None,
            lease_seconds: Some(options.lease.as_secs()),
            expires_at: String::new(),
            took_over_from: None,
        };
        let deadline = tokio::time::Instant::now() + options.wait;
        loop {
            renew_times(&mut record, options.lease);
            let taken = match self.claim(&record, None).await? {
                Claim::Ours(mine, etag) => {
                    record = mine;
                    Some((etag, None))
                }
                // Released meanwhile: try again at once.
                Claim::Gone => continue,
                Claim::Other(current, etag) if current.expired_at(OffsetDateTime::now_utc()) => {
                    record.took_over_from = Some(current.run_id.clone());
                    renew_times(&mut record, options.lease);
                    match self.claim(&record, Some(&etag)).await? {
                        Claim::Ours(mine, etag) => {
                            record = mine;
                            Some((etag, Some(current)))
                        }
                        // Another run took it over first, or it was released: look again.
                        Claim::Other(..) | Claim::Gone => {
                            record.took_over_from = None;
                            None
                        }
                    }
                }
                Claim::Other(current, _) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(LockError::Held {
                            bucket: self.bucket.clone(),
                            key: self.key.clone(),
                            holder: Box::new(current),
                        });
                    }
                    tracing::info!(lock = %self.location(), holder = %current.run_id, "lock held by another run; waiting");
                    None
                }
            };
            if let Some((etag, took_over)) = taken {
                if let Some(dead) = &took_over {
                    tracing::warn!(lock = %self.location(), dead_run = %dead.run_id, "took over the lock of a run whose lease ran out at {}", dead.expires_at);
                }
                return Ok(Acquired {
                    held: self.hold(etag, record, options.lease),
                    took_over,
                });
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(POLL.min(left).max(Duration::from_millis(50))).await;
        }
    }

    fn hold(&self, etag: String, record: LockRecord, lease: Duration) -> HeldLock {
        let state = Arc::new(Mutex::new(Lease {
            etag,
            record,
            renewed: Instant::now(),
            lost: None,
            stopped: None,
        }));
        let heartbeat = tokio::spawn(heartbeat(self.clone(), state.clone(), lease));
        let signals = tokio::spawn(stop_on_signals(state.clone()));
        HeldLock {
            lock: self.clone(),
            state,
            lease,
            heartbeat,
            signals,
        }
    }

    /// Writes the lock: created when `if_match` is `None` (`If-None-Match: *`), else replaced if its ETag is that.
    async fn put(&self, record: &LockRecord, if_match: Option<&str>) -> Result<Put, LockError> {
        let body = serde_json::to_vec_pretty(record).unwrap_or_default();
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        put = match if_match {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(out) => Ok(Put::Written(out.e_tag().unwrap_or_default().to_string())),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                Ok(Put::PreconditionFailed)
            }
            // A conditional write racing another on the same key (S3 answers 409 ConditionalRequestConflict).
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 409) => {
                Ok(Put::PreconditionFailed)
            }
            Err(e) => Err(self.s3_error(describe_sdk_error(&e))),
        }
    }

    /// A conditional [`put`](Self::put) that tells, when its precondition fails, who holds the lock.
    async fn claim(&self, record: &LockRecord, if_match: Option<&str>) -> Result<Claim, LockError> {
        match self.put(record, if_match).await? {
            Put::Written(etag) => Ok(Claim::Ours(record.clone(), etag)),
            Put::PreconditionFailed => self.holder(&record.run_id).await,
        }
    }

    /// Who holds the lock after a conditional write of run `run_id` failed. It may be that run all the same: the
    /// answer to its own earlier write was lost and the SDK sent it again, or it renewed the lock meanwhile.
    async fn holder(&self, run_id: &str) -> Result<Claim, LockError> {
        Ok(match self.read().await? {
            Some((current, etag)) if current.run_id == run_id => {
                tracing::info!(lock = %self.location(), "the lock is still this run's (an answer to its write was lost, or its heartbeat renewed it meanwhile)");
                Claim::Ours(current, etag)
            }
            Some((current, etag)) => Claim::Other(current, etag),
            None => Claim::Gone,
        })
    }

    /// The current lock record and its ETag, if any.
    pub async fn read(&self) -> Result<Option<(LockRecord, String)>, LockError> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.s3_error(e.to_string()))?
                    .into_bytes();
                serde_json::from_slice(&bytes)
                    .map(|r| Some((r, etag)))
                    .map_err(|e| {
                        self.s3_error(format!("holds something that is not a Ferry lock: {e}"))
                    })
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.s3_error(describe_sdk_error(&e))),
        }
    }

    /// Removes whatever lock is there (for `ferry unlock --force`); returns what it removed.
    pub async fn force_remove(&self) -> Result<LockRecord, LockError> {
        let (record, etag) = self.read().await?.ok_or(LockError::NotHeld {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
        })?;
        // Conditional: a lock renewed or taken over since it was read is not removed unseen.
        match self.delete(&etag).await? {
            Deleted::Gone => Ok(record),
            Deleted::Changed => Err(self.s3_error(
                "the lock changed while removing it (its run renewed it, or another took it over); look again"
                    .into(),
            )),
        }
    }

    async fn delete(&self, etag: &str) -> Result<Deleted, LockError> {
        match self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(Deleted::Gone),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                Ok(Deleted::Gone)
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                Ok(Deleted::Changed)
            }
            Err(e) => Err(self.s3_error(describe_sdk_error(&e))),
        }
    }
}

enum Deleted {
    Gone,
    Changed,
}

fn renew_times(record: &mut LockRecord, lease: Duration) {
    let now = OffsetDateTime::now_utc();
    record.renewed_at = Some(crate::audit::rfc3339(now));
    record.expires_at = crate::audit::rfc3339(now + lease);
}

/// A run asked to stop (a CI job's timeout sends SIGTERM) stops at its next change, through the fence, and releases
/// the lock on its way out, so that the next run need not wait out the lease.
async fn stop_on_signals(state: Arc<Mutex<Lease>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let signal = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    eprintln!("{signal}: stopping before the next change (again to stop at once)");
    state.lock().unwrap_or_else(|p| p.into_inner()).stopped = Some(signal);
    // A second signal stops at once, as it would without this handler (the lease then frees the lock).
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    std::process::exit(130);
}

/// Renews the lease every third of it until the lock is released or lost.
async fn heartbeat(lock: DeployLock, state: Arc<Mutex<Lease>>, lease: Duration) {
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let (mut record, etag) = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            if s.lost.is_some() {
                return;
            }
            (s.record.clone(), s.etag.clone())
        };
        renew_times(&mut record, lease);
        let began = Instant::now();
        let outcome = match lock.claim(&record, Some(&etag)).await {
            Ok(Claim::Ours(mine, etag)) => {
                record = mine;
                Ok(Some(etag))
            }
            Ok(Claim::Other(current, _)) => Err(format!("taken over by run {}", current.run_id)),
            Ok(Claim::Gone) => Err("removed (ferry unlock --force?)".to_string()),
            Err(e) => {
                tracing::warn!("renewing the deploy lock: {e}");
                Ok(None)
            }
        };
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(Some(etag)) => {
                s.etag = etag;
                s.record = record;
                s.renewed = began;
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::error!("the deploy lock was lost: {reason}");
                s.lost = Some(reason);
                return;
            }
        }
    }
}

impl HeldLock {
    pub fn record(&self) -> LockRecord {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record
            .clone()
    }

    pub fn fence(&self) -> Fence {
        Fence {
            state: Some(self.state.clone()),
            lease: self.lease,
            location: self.lock.location(),
        }
    }

    /// Stops renewing and removes the lock if it is still this run's, retrying a failed call; when that still
    /// fails, the lock's lease runs out by itself (the error says when).
    pub async fn release(self) -> Result<(), LockError> {
        self.heartbeat.abort();
        self.signals.abort();
        let _ = self.heartbeat.await;
        let (mut etag, run_id, expires_at) = {
            let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (
                s.etag.clone(),
                s.record.run_id.clone(),
                s.record.expires_at.clone(),
            )
        };
        let mut last_error = None;
        for attempt in 0..RELEASE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            match self.lock.delete(&etag).await {
                Ok(Deleted::Gone) => return Ok(()),
                // Renewed by a put whose answer was lost, taken over, or replaced: look at what is there.
                Ok(Deleted::Changed) => match self.lock.holder(&run_id).await {
                    Ok(Claim::Ours(_, current_etag)) => etag = current_etag,
                    Ok(Claim::Other(current, _)) => {
                        tracing::warn!(holder = %current.run_id, "the lock was taken over by another run; leaving it");
                        return Ok(());
                    }
                    Ok(Claim::Gone) => return Ok(()),
                    Err(e) => last_error = Some(e),
                },
                Err(e) => last_error = Some(e),
            }
        }
        Err(self.lock.s3_error(format!(
            "could not release it ({}); its lease runs out at {expires_at}, after which the next run takes it over",
            last_error.map(|e| e.to_string()).unwrap_or_default()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: &str) -> LockRecord {
        LockRecord {
            holder: "ci@runner".into(),
            host: "runner".into(),
            pid: 1,
            run_id: "r1".into(),
            command: "ferry deploy".into(),
            started_at: "2026-11-26T09:00:00Z".into(),
            renewed_at: None,
            lease_seconds: Some(60),
            expires_at: expires_at.into(),
            took_over_from: None,
        }
    }

    #[test]
    fn a_lease_runs_out_only_after_its_expiry_and_the_clock_skew_allowance() {
        let r = record("2026-11-26T09:01:00Z");
        assert!(!r.expired_at(time::macros::datetime!(2026-11-26 09:01:05 UTC)));
        assert!(r.expired_at(time::macros::datetime!(2026-11-26 09:01:11 UTC)));
    }

    #[test]
    fn a_short_lease_allows_half_of_it_for_clock_skew() {
        let r = LockRecord {
            lease_seconds: Some(4),
            ..record("2026-11-26T09:01:00Z")
        };
        assert!(!r.expired_at(time::macros::datetime!(2026-11-26 09:01:01.9 UTC)));
        assert!(r.expired_at(time::macros::datetime!(2026-11-26 09:01:02.1 UTC)));
    }

    #[test]
    fn a_lock_whose_expiry_cannot_be_read_never_runs_out() {
        assert!(!record("soon").expired_at(time::macros::datetime!(2099-01-01 00:00:00 UTC)));
    }

    #[test]
    fn a_lock_written_before_leases_still_reads() {
        let old = r#"{"holder": "ci", "host": "h", "pid": 2, "run_id": "r", "command": "ferry deploy",
                      "started_at": "2026-11-26T09:12:03Z", "expires_at": "2026-11-26T09:42:03Z"}"#;
        let r: LockRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.lease_seconds, None);
        assert!(r.expired_at(time::macros::datetime!(2026-11-26 09:43:00 UTC)));
    }

    #[test]
    fn run_ids_differ_between_runs_of_one_process() {
        assert_ne!(RunId::new(), RunId::new());
    }
}
