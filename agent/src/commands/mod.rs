//! One module per command: each loads what it needs, calls the library, and prints for people or for scripts.
use anyhow::Result;

use crate::approval::{self, ModelApprovals};
use crate::audit::AuditLog;
use crate::aws::Clients;
use crate::catalog::{Catalog, Model};
use crate::cli::{Cli, Command, GlobalArgs, ModelFilter};
use crate::platform::Platform;

mod deploy;
mod gc;
mod manifest;
mod plan;
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
        Command::Retire(args) => retire::run(g, args).await,
        Command::Gc(args) => gc::run(g, args).await,
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
}

/// The AWS clients of the platform's region, and its audit log.
pub async fn connect(platform: &Platform) -> (Clients, AuditLog) {
    let clients = Clients::from_env(Some(&platform.region)).await;
    let audit = AuditLog::new(clients.s3.clone(), platform);
    (clients, audit)
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
