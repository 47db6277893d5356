//! One module per command: each loads what it needs, calls the library, and prints for people or for scripts.
use anyhow::{Context, Result};

use crate::approval::{self, ModelApprovals};
use crate::audit::{AuditLog, AuditRecord, Deployer, rfc3339};
use crate::aws::Clients;
use crate::catalog::{Catalog, Model};
use crate::cli::{Cli, Command, GlobalArgs, ModelFilter};
use crate::lock::{Acquired, DeployLock, HeldLock, LockOptions, RunId};
use crate::observe::{ObservedFunction, observe};
use crate::platform::Platform;

mod audit_export;
mod deploy;
mod eks;
mod gc;
mod history;
mod manifest;
mod plan;
mod reactivate;
mod rebuild;
mod render;
mod retire;
mod status;
mod sync;
mod unlock;
mod verify;

/// Runs a command; the value is the process exit code.
pub async fn run(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Render(args) => render::run(g, args).await,
        Command::Plan(args) => plan::run(g, args).await,
        Command::Deploy(args) => deploy::run(g, args).await,
        Command::Sync(args) => sync::run(g, args).await,
        Command::Status(args) => status::run(g, args).await,
        Command::Verify(args) => verify::run(g, args).await,
        Command::History(args) => history::run(g, args).await,
        Command::Audit(crate::cli::AuditCommand::Export(args)) => audit_export::run(g, args).await,
        Command::Retire(args) => retire::run(g, args).await,
        Command::Gc(args) => gc::run(g, args).await,
        Command::Reactivate(args) => reactivate::run(g, args).await,
        Command::Unlock(args) => unlock::run(g, args).await,
        Command::Manifest(args) => manifest::run(g, args).await,
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "ferry", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// The inputs every command that reads approvals needs, loaded and checked before any AWS call.
pub struct Inputs {
    pub catalog: Catalog,
    pub platform: Platform,
}

impl Inputs {
    pub fn load(g: &GlobalArgs) -> Result<Inputs> {
        let catalog = Catalog::load(&g.catalog)?;
        let platform = Platform::load(g.platform.as_deref())?;
        Ok(Inputs { catalog, platform })
    }

    /// The selected models with what the approval source says about each, in catalog order.
    pub async fn approvals(&self, filter: &ModelFilter) -> Result<Vec<(&Model, ModelApprovals)>> {
        let models = self.catalog.select(&filter.models)?;
        let source = approval::Source::from_catalog(&self.catalog)?;
        let approvals = approval::read_all(&source, &models).await?;
        Ok(models.into_iter().zip(approvals).collect())
    }

    /// Catalog model `model`'s Lambda function as the platform names it, and what Lambda and the audit log show of
    /// it; `command` (`"status"`, `"gc"`, ...) opens the error.
    pub async fn observe_model(
        &self,
        clients: &Clients,
        audit: &AuditLog,
        model: &Model,
        command: &str,
    ) -> Result<(&str, ObservedFunction)> {
        let function = self
            .platform
            .function_name(&model.function)
            .map_err(anyhow::Error::msg)?;
        let observed = observe(&clients.lambda, audit, &model.key, function)
            .await
            .with_context(|| format!("{command} of {}", model.key))?;
        Ok((function, observed))
    }
}

/// The AWS clients of the platform's region (Lambda's within the `--api-rate` budget), and its audit log.
pub async fn connect(g: &GlobalArgs, platform: &Platform) -> (Clients, AuditLog) {
    let clients = Clients::from_env(Some(&platform.region), &g.api_budget()).await;
    let audit = AuditLog::new(clients.s3.clone(), platform);
    (clients, audit)
}

/// Runs a command's change under the lock `begin_change` took, and releases the lock after it whatever its outcome.
/// The change's own error wins over a failed release; a failed release after a finished change is a warning only,
/// since the lock's lease runs out by itself.
pub async fn with_lock<T>(held: HeldLock, change: impl Future<Output = Result<T>>) -> Result<T> {
    let result = change.await;
    let released = held.release().await;
    let value = result?;
    if let Err(e) = released {
        eprintln!("warning: {e}");
    }
    Ok(value)
}

/// The start of every change: who makes it (refused without an AWS identity), under the deploy lock.
pub async fn begin_change(
    clients: &Clients,
    audit: &AuditLog,
    platform: &Platform,
    command: &str,
    options: LockOptions,
) -> Result<(Deployer, HeldLock)> {
    let deployer = Deployer::identify(&clients.sts, RunId::new()).await?;
    let held = take_lock(clients, audit, platform, &deployer, command, options).await?;
    Ok((deployer, held))
}

/// Takes the deploy lock for `command` run by `deployer`; a takeover of a dead run's expired lock is audited
/// before anything else happens under it.
async fn take_lock(
    clients: &Clients,
    audit: &AuditLog,
    platform: &Platform,
    deployer: &Deployer,
    command: &str,
    options: LockOptions,
) -> Result<HeldLock> {
    let lock = DeployLock::new(clients.s3.clone(), platform);
    let run = deployer.run_id.clone().unwrap_or_default();
    let Acquired { held, took_over } = lock
        .acquire(&run, &deployer.name(), command, options)
        .await?;
    let Some(dead) = took_over else {
        return Ok(held);
    };
    let now = time::OffsetDateTime::now_utc();
    let key = audit.takeover_key(now);
    let record = AuditRecord {
        event: "lock-takeover",
        environment: platform.environment.clone(),
        reason: Some(format!(
            "took over the lock of run {} ({}, pid {} on {}, `{}` since {}): its lease ran out at {} without a renewal",
            dead.run_id,
            dead.holder,
            dead.pid,
            dead.host,
            dead.command,
            dead.started_at,
            dead.expires_at
        )),
        deployer: deployer.clone(),
        time: rfc3339(now),
        ..AuditRecord::default()
    };
    if let Err(e) = audit.write(&key, &record).await {
        let _ = held.release().await;
        return Err(anyhow::Error::new(e).context(format!(
            "took over the expired lock of run {}, but could not record that; released it again",
            dead.run_id
        )));
    }
    eprintln!(
        "note: took over the deploy lock of run {} ({}), whose lease ran out at {}; audit s3://{}/{key}",
        dead.run_id,
        dead.holder,
        dead.expires_at,
        audit.bucket()
    );
    Ok(held)
}

/// The platform file as errors name it.
pub(crate) fn platform_path(g: &GlobalArgs) -> &std::path::Path {
    g.platform
        .as_deref()
        .unwrap_or(std::path::Path::new("<platform>"))
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
