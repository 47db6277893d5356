//! The command line: every command and option, documented where `--help` shows it.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (for `plan --detailed-exitcode`: no changes)
  1  error: bad input, an unreachable service, a failed or refused deploy step (each one is named)
  2  `plan --detailed-exitcode` only: the plan has changes

AWS settings come from the standard chain (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...);
the MLflow registry from MLFLOW_TRACKING_URI.";

#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = "Deploy approved ML model versions to AWS Lambda, each frozen behind its own alias.",
    long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The catalog of models (ferry.toml)
    #[arg(
        long,
        global = true,
        env = "FERRY_CATALOG",
        default_value = "ferry.toml",
        value_name = "PATH"
    )]
    pub catalog: PathBuf,
    /// The platform: `terraform output -json` of a Ferry stack, or its `ferry_platform` object
    #[arg(
        long,
        global = true,
        env = "FERRY_PLATFORM",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub platform: Option<PathBuf>,
    /// What to print on stdout
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More log lines on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log line format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Lambda control-plane requests per second this run may send, all its concurrent work together
    ///
    /// Lambda allows an account 15 per second in each Region, shared with every other user of it, and does not
    /// raise that; the default leaves a third for them. GetFunction and GetPolicy have quotas of their own (100 and
    /// 15 per second), and so have API Gateway's route requests (10 per second): this run takes the same share of
    /// each. Invocations are not counted.
    #[arg(long, global = true, env = "FERRY_API_RATE", value_name = "PER_SECOND",
        default_value_t = crate::api_budget::DEFAULT_API_RATE, value_parser = api_rate)]
    pub api_rate: f64,
}

impl GlobalArgs {
    /// The run's budget of Lambda control-plane requests, one for all its clients.
    pub fn api_budget(&self) -> crate::api_budget::ApiBudget {
        crate::api_budget::ApiBudget::new(self.api_rate)
    }
}

/// A rate above 0 and at most Lambda's shared quota (more would only be refused by Lambda).
fn api_rate(text: &str) -> Result<f64, String> {
    let quota = crate::api_budget::SHARED_QUOTA;
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= quota => Ok(rate),
        Ok(_) => Err(format!(
            "must be above 0 and at most {quota} (Lambda's per-account quota)"
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render one validated FunctionSpec per approved model version, or the EKS service's manifests (no AWS call)
    ///
    /// --target lambda (the default): one FunctionSpec per approved version. --target eks: per model, the
    /// Kubernetes manifests of templates/k8s (Service, Deployment, optional HorizontalPodAutoscaler and
    /// PodDisruptionBudget) for the platform's `eks` service, the Deployment serving the model's approved versions.
    Render(RenderArgs),
    /// Show what `deploy` would do: new aliases, stage moves, drift, revoked approvals
    Plan(PlanArgs),
    /// Sync artifacts, publish each approved version and create its alias; never touches a deployed alias
    ///
    /// Takes the deploy lock only when there is something to do, so a rerun after success makes no mutating
    /// call. Models are deployed concurrently (--jobs); the steps of one function run in order: update $LATEST,
    /// wait until updated, publish (spec hash in the description), wait until the version is Active, pin its runtime
    /// version, smoke-invoke it, create the alias v<N>, write the audit record, move stage aliases. Drift in a model
    /// stops that model.
    ///
    /// --target eks: per model, sync the new versions' artifacts, then server-side apply the manifests of the
    /// Deployment serving every version served before and every approved one, wait for its rollout, and record
    /// each newly served version. With --emit-only the manifests are written to --out for a GitOps tool instead.
    Deploy(DeployArgs),
    /// Copy approved versions' artifacts from S3 to EFS, verified and atomic
    Sync(SyncArgs),
    /// Show what is live: aliases, versions, stage routing, per model (--target eks: the served sets)
    Status(StatusArgs),
    /// Check deployed aliases against their audit records and EFS folders against their manifests
    Verify(VerifyArgs),
    /// What happened and what was live when, from the audit records alone
    ///
    /// Without --at: every event in time order (deploy, stage move with weights, retire, gc, unlock, lock takeover).
    /// With --at TIME: per model, the version each stage alias served then and the version aliases live then, with
    /// who approved each, the ticket and the digests.
    History(HistoryArgs),
    /// Evidence for auditors, from the audit records alone
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Delete the alias of one deployed version (explicit and audited; refused while a stage points at it)
    ///
    /// The only way to change a deployed alias is to retire it and deploy again. While the approval source still
    /// approves the version, the next deploy creates the alias again (from the spec the catalog renders then):
    /// withdraw the approval first to take a version out of service for good.
    Retire(RetireArgs),
    /// List (and with --apply delete) published Lambda versions that no alias references
    Gc(GcArgs),
    /// Wake the versions Lambda made Inactive (idle for weeks), so that no caller's request meets the failure
    ///
    /// Each Inactive version behind an alias gets one invoke, which an Inactive version refuses before any code runs
    /// (ResourceNotReadyException) and which starts Lambda's restore; then it waits until the version is Active.
    /// Nothing else is changed: no configuration, alias or record, and no lock is taken.
    Reactivate(ReactivateArgs),
    /// Remove a stale deploy lock (recorded in the audit prefix)
    Unlock(UnlockArgs),
    /// Print the artifact manifest and digest of a model folder or S3 prefix (record it as ferry.artifact_sha256)
    Manifest(ManifestArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, Clone, Args, Default)]
pub struct ModelFilter {
    /// Only this model (catalog key); repeatable
    #[arg(long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// What to render for
    #[arg(long, value_enum, default_value_t = Target::Lambda)]
    pub target: Target,
    /// Write into DIR instead of printing: one JSON file per version (<model>/v<N>.json) for lambda; for eks one
    /// YAML file per manifest in apply order (<model>/01-service.yaml, 02-deployment.yaml, 03-hpa.yaml,
    /// 04-pdb.yaml), removing the model's earlier ones that no longer render
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Where the approved versions are to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A Lambda version and alias per approved version
    Lambda,
    /// The platform's EKS service: one Deployment per model serving all its approved versions
    Eks,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Complete canary stage moves (send 100% to the new version)
    #[arg(long, conflicts_with = "from_record")]
    pub promote: bool,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// Rebuild from the record: the desired state from the audit log instead of the templates and the registry's stages.
#[derive(Debug, Clone, Args, Default)]
pub struct RecordArgs {
    /// Desired state from the audit records (a rebuild, e.g. of a new region after a disaster): each version alias
    /// live at --at gets the spec its deploy record holds, exactly, and each stage alias the routing its last
    /// recorded move left (a canary replayed as it was). Versions whose approval the registry no longer gives as
    /// recorded are refused; an altered or spec-less record stops the run before any change
    #[arg(long)]
    pub from_record: bool,
    /// With --from-record: what was live at this time (RFC 3339, like 2026-11-26T08:15:00Z; default: now)
    #[arg(long, value_name = "TIME", requires = "from_record")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// How many functions to work on at once. The request rate is bounded by --api-rate, not by this: enough
    /// functions at once keep that budget busy while each waits for its updates to settle
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Local folder standing in for the EFS file system (default: the platform's local root, else the sync function)
    #[arg(long, value_name = "DIR")]
    pub efs_root: Option<PathBuf>,
    /// Complete canary stage moves (send 100% to the new version)
    #[arg(long, conflicts_with = "from_record")]
    pub promote: bool,
    #[command(flatten)]
    pub record: RecordArgs,
    /// Where to deploy: a Lambda alias per version, or the platform's EKS service
    #[arg(long, value_enum, default_value_t = Target::Lambda, conflicts_with_all = ["from_record", "promote"])]
    pub target: Target,
    /// With --target eks: write the manifests to --out (for Argo CD or Flux to apply) instead of applying them; the
    /// served set is the records' and the files' there, and the records say the manifests were emitted there
    #[arg(long, requires = "out")]
    pub emit_only: bool,
    /// With --emit-only: the folder of the manifests (<model>/01-service.yaml, ...), as `ferry render` writes it
    #[arg(long, value_name = "DIR", requires = "emit_only")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// Only this registry version
    #[arg(long, value_name = "N", requires = "models")]
    pub version: Option<String>,
    /// Local folder where the EFS file system is mounted (default: the platform's local root)
    #[arg(long, value_name = "DIR")]
    pub efs_root: Option<PathBuf>,
    /// Re-hash every file of versions already present, not only their manifests
    #[arg(long)]
    pub verify: bool,
    /// Objects and ranged parts in flight at once
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Size in MiB of the ranged parts a large object is fetched in; objects over twice this size are fetched in
    /// parts
    #[arg(long, value_name = "MIB", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub part_size: u16,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// lambda: the function's aliases; eks: each model's Deployment, its served set, rollout and records
    #[arg(long, value_enum, default_value_t = Target::Lambda)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// lambda: aliases against their records; eks: each Deployment's served set against the eks-serve records,
    /// the platform's image, the rollout, and (with --efs-root) the served versions' EFS folders
    #[arg(long, value_enum, default_value_t = Target::Lambda, conflicts_with_all = ["aliases", "record"])]
    pub target: Target,
    /// Only this alias's findings (`v3`, `production`); repeatable. The model storage is always checked
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
    /// Also re-hash the EFS folders of deployed versions (needs the EFS root)
    #[arg(long, value_name = "DIR")]
    pub efs_root: Option<PathBuf>,
    /// Do not check that each live version's approval is still in the registry as recorded (when the registry
    /// cannot be reached from where verify runs); every alias's line then says so
    #[arg(long)]
    pub no_registry: bool,
    /// Also write the results to the audit log, one record per model, as evidence that the check was run
    /// (`ferry audit export` shows them); needs the AWS identity and s3:PutObject on the audit prefix
    #[arg(long)]
    pub record: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// Only this stage alias's moves
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// What was live at this time (RFC 3339, like 2026-11-26T08:15:00Z)
    #[arg(long, value_name = "TIME", conflicts_with_all = ["since", "until"])]
    pub at: Option<String>,
    /// Events at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Events at or before this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export an evidence bundle: per model version, its approval, deploys, stage periods, retirement, endpoints
    /// and recorded verifications, with the bundle's SHA-256
    ///
    /// A version is in the bundle when it was live at some time in the window, with every record about it up to
    /// the window's end. The digest is the SHA-256 of the bundle's canonical JSON: the same records give the same
    /// digest in every format. With --out, FILE.sha256 gets the file's own SHA-256 (check it with `sha256sum -c`).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// The versions live at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// The records up to this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// json (the bundle and its digest), csv (a row per record) or html (a page for a person)
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write to FILE (and its SHA-256 to FILE.sha256) instead of printing
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
    Html,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The model (catalog key)
    #[arg(long)]
    pub model: String,
    /// The registry version whose alias v<N> is deleted
    #[arg(long, value_name = "N")]
    pub version: String,
    /// Why (kept in the audit record)
    #[arg(long)]
    pub reason: String,
    /// The change ticket that authorises it
    #[arg(long)]
    pub ticket: String,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Lambda: delete the version's alias; eks: take the version out of the model's EKS served set (rolled out)
    #[arg(long, value_enum, default_value_t = Target::Lambda)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct ReactivateArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// How long to wait for each version to be Active again, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub filter: ModelFilter,
    /// Delete the unreferenced versions (default: only list them)
    #[arg(long)]
    pub apply: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// The deploy lock of the commands that change something.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// How long to wait for another live run's lock, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// The lock's lease, in seconds: renewed while this run works; a run killed meanwhile blocks others this long
    /// (plus 10 s for clock skew), then its lock is taken over, audited
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lock_lease: u64,
}

impl LockArgs {
    pub fn options(&self) -> crate::lock::LockOptions {
        crate::lock::LockOptions {
            wait: std::time::Duration::from_secs(self.lock_timeout),
            lease: std::time::Duration::from_secs(self.lock_lease),
        }
    }
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Required: removing a lock another run may hold is never implicit
    #[arg(long, required = true)]
    pub force: bool,
    /// Why (kept in the audit record)
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// A model folder, or s3://bucket/prefix
    #[arg(value_name = "DIR|S3_URI")]
    pub location: String,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
