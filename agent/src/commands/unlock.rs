//! `ferry unlock --force --reason`: removes a stale deploy lock (its run is gone) and records who did it and why.
use anyhow::{Result, bail};

use crate::audit::{AuditRecord, Deployer, rfc3339};
use crate::cli::{GlobalArgs, UnlockArgs};
use crate::lock::{DeployLock, RunId};

pub async fn run(g: &GlobalArgs, args: &UnlockArgs) -> Result<u8> {
    if args.reason.trim().is_empty() {
        bail!("unlock needs a non-empty --reason: it goes into the audit record");
    }
    let platform = crate::platform::Platform::load(g.platform.as_deref())?;
    let (clients, audit) = super::connect(g, &platform).await;
    let lock = DeployLock::new(clients.s3.clone(), &platform);
    let deployer = Deployer::identify(&clients.sts, RunId::new()).await?;
    let removed = lock.force_remove().await?;
    let now = time::OffsetDateTime::now_utc();
    let key = audit.unlock_key(now);
    let record = AuditRecord {
        event: "unlock",
        environment: platform.environment.clone(),
        reason: Some(format!(
            "{} (removed lock of {}, run {}, since {})",
            args.reason, removed.holder, removed.run_id, removed.started_at
        )),
        deployer,
        time: rfc3339(now),
        ..AuditRecord::default()
    };
    audit.write(&key, &record).await?;
    println!(
        "removed lock {} held by {} since {}; audit s3://{}/{key}",
        lock.location(),
        removed.holder,
        removed.started_at,
        audit.bucket()
    );
    Ok(0)
}
