//! `ferry deploy`: plan, and when there is something to do: lock, then per function as a pipeline: sync its new
//! versions' artifacts (verified), then apply (functions concurrently, each as soon as its own artifacts are
//! verified; steps of one function in order), release the lock. A rerun after success makes no
//! mutating call: with nothing to do, not even the lock is taken.
use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use futures::StreamExt;
use futures::channel::oneshot;
use serde::Serialize;

use super::plan::{DesiredState, observe_and_plan, print_refusals};
use super::{Inputs, print_json};
use crate::apply::{ApplyContext, ApplyOptions, ModelOutcome, VerifiedArtifacts, apply_model};
use crate::audit::{AuditLog, Deployer};
use crate::aws::Clients;
use crate::cli::{DeployArgs, GlobalArgs, OutputFormat};
use crate::lock::Fence;
use crate::plan::{Action, Plan, to_text};
use crate::sync::{SyncOptions, SyncRequest, Syncer, invoke_sync_function};

/// Versions synced at once. Each one ends in fsyncs and a rename on EFS; overlapping them hides that latency.
const SYNC_VERSIONS_IN_FLIGHT: usize = 16;

#[derive(Serialize)]
struct DeployOutput<'a> {
    format: u32,
    plan: &'a Plan,
    results: &'a [ModelOutcome],
    sync: &'a [SyncRow],
    ok: bool,
}

#[derive(Serialize, Clone)]
struct SyncRow {
    model: String,
    version: String,
    digest: Option<String>,
    skipped: bool,
    error: Option<String>,
}

pub async fn run(g: &GlobalArgs, args: &DeployArgs) -> Result<u8> {
    if args.target == crate::cli::Target::Eks {
        return super::eks::deploy(g, args).await;
    }
    if args.emit_only {
        anyhow::bail!("--emit-only is for --target eks (a GitOps tool applies the manifests)");
    }
    let inputs = Inputs::load(g)?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    let desired = DesiredState::load(&inputs, g, &args.filter, &args.record, &audit).await?;
    // Whether a run held the lock before or after this look: then the look may have caught that run's change half
    // made (an alias whose audit record it was about to write), which is not drift.
    let lock = crate::lock::DeployLock::new(clients.s3.clone(), &inputs.platform);
    let held_before = lock.read().await?.is_some();
    let (_, plan) = observe_and_plan(&clients, &audit, &desired, &inputs, args.promote).await?;
    if g.output == OutputFormat::Text {
        print!("{}", to_text(&plan));
    }
    print_refusals(&plan);
    // So drift seen then is looked at again under the lock before it is called drift.
    let another_run_changing = plan.is_blocked() && (held_before || lock.read().await?.is_some());
    if another_run_changing {
        eprintln!(
            "note: another run held the deploy lock meanwhile; what looks like drift above may be its change in progress: planning again under the lock"
        );
    }
    if !plan.has_changes() && !another_run_changing {
        if g.output == OutputFormat::Json {
            print_json(&DeployOutput {
                format: 1,
                plan: &plan,
                results: &[],
                sync: &[],
                ok: !plan.is_blocked(),
            })?;
        } else if !plan.is_blocked() {
            println!("No changes.");
        }
        return Ok(if plan.is_blocked() { 1 } else { 0 });
    }

    let (deployer, held) = super::begin_change(
        &clients,
        &audit,
        &inputs.platform,
        "ferry deploy",
        args.lock.options(),
    )
    .await?;
    // Another run may have deployed while this one waited: plan again under the lock.
    let run = LockedRun {
        deployer,
        fence: held.fence(),
    };
    let (plan, results, sync_rows) = super::with_lock(
        held,
        deploy_locked(g, args, &inputs, &desired, &clients, &audit, run),
    )
    .await?;

    let ok =
        results.iter().all(|r| r.error.is_none()) && sync_rows.iter().all(|s| s.error.is_none());
    match g.output {
        OutputFormat::Json => print_json(&DeployOutput {
            format: 1,
            plan: &plan,
            results: &results,
            sync: &sync_rows,
            ok,
        })?,
        OutputFormat::Text => print!("{}", summary_table(&results, &sync_rows)),
    }
    if !ok {
        for r in results.iter().filter(|r| r.error.is_some()) {
            eprintln!(
                "error: {}: {}",
                r.model,
                r.error.as_deref().unwrap_or_default()
            );
        }
        for s in sync_rows.iter().filter(|s| s.error.is_some()) {
            eprintln!(
                "error: {} v{}: {}",
                s.model,
                s.version,
                s.error.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(if ok { 0 } else { 1 })
}

/// The run holding the deploy lock: who it is, and the fence its changes pass.
struct LockedRun {
    deployer: Deployer,
    fence: Fence,
}

async fn deploy_locked(
    g: &GlobalArgs,
    args: &DeployArgs,
    inputs: &Inputs,
    desired: &DesiredState<'_>,
    clients: &Clients,
    audit: &AuditLog,
    LockedRun { deployer, fence }: LockedRun,
) -> Result<(Plan, Vec<ModelOutcome>, Vec<SyncRow>)> {
    let (observed, plan) = observe_and_plan(clients, audit, desired, inputs, args.promote).await?;
    if let Some(refused) = plan.refused() {
        return Err(anyhow!("{refused}"));
    }
    let requests = sync_requests(&plan);
    let via = if requests.is_empty() {
        None
    } else {
        Some(sync_destination(
            g,
            args.efs_root.as_ref(),
            inputs,
            clients,
        )?)
    };
    let ctx = ApplyContext {
        lambda: clients.lambda.clone(),
        audit: audit.clone(),
        deployer,
        environment: inputs.platform.environment.clone(),
        options: ApplyOptions::default(),
        fence,
        http_api: crate::http_api::HttpApi::of_platform(clients, &inputs.platform),
    };
    // A pipeline: a model's Lambda steps start as soon as its own versions are verified on EFS, while the others'
    // still sync, so the control-plane budget is not left idle behind the slowest copy. Models start their steps in
    // plan order (`buffered`), whichever sync ends first: at `--jobs 1` the steps run exactly in plan order.
    let (ready, synced): (Vec<_>, Vec<_>) = plan
        .models
        .iter()
        .map(|_| oneshot::channel::<ModelSync>())
        .unzip();
    let sync = sync_new_versions(clients, &plan, requests, via.as_ref(), &ctx.fence, ready);
    let apply = futures::stream::iter(plan.models.iter().zip(&observed).zip(synced))
        .map(|((model_plan, obs), synced)| {
            let ctx = &ctx;
            async move {
                // A version whose artifacts are not verified on EFS is never published.
                let failed = match synced.await {
                    Ok(model_sync) if model_sync.failed.is_none() => {
                        if g.output == OutputFormat::Text {
                            eprintln!("deploying {} ...", model_plan.model);
                        }
                        return apply_model(ctx, model_plan, obs, &model_sync.verified).await;
                    }
                    Ok(model_sync) => format!(
                        "sync of v{} failed; nothing was published",
                        model_sync.failed.unwrap_or_default()
                    ),
                    // The sender is dropped unsent only if the sync ended early, which it does not.
                    Err(oneshot::Canceled) => {
                        "the sync ended before this model's versions; nothing was published"
                            .to_string()
                    }
                };
                ModelOutcome {
                    error: Some(failed),
                    ..ModelOutcome::nothing_done(model_plan)
                }
            }
        })
        .buffered(args.jobs as usize)
        .collect::<Vec<_>>();
    let (sync_rows, results) = futures::join!(sync, apply);
    Ok((plan, results, sync_rows))
}

pub(super) enum SyncVia {
    Mounted(Syncer),
    Function(String),
}

/// What became of one model's new versions on EFS, once the last of them is done.
#[derive(Default)]
struct ModelSync {
    remaining: usize,
    verified: VerifiedArtifacts,
    /// The first version that could not be synced and verified.
    failed: Option<String>,
}

/// One request per version about to be created, in plan order (so the first models are ready first).
fn sync_requests(plan: &Plan) -> Vec<SyncRequest> {
    plan.models
        .iter()
        .filter(|m| !m.blocked)
        .flat_map(|m| m.actions.iter())
        .filter_map(|a| match a {
            Action::Create { spec, .. } => Some(SyncRequest {
                model: spec.model.clone(),
                version: spec.version.clone(),
                source: spec.artifact.source.clone(),
                expected_digest: spec.artifact.expected_digest.clone(),
                verify: false,
            }),
            _ => None,
        })
        .collect()
}

/// Where the file system is mounted here, copy directly; otherwise the in-VPC sync function does it.
pub(super) fn sync_destination(
    g: &GlobalArgs,
    efs_root: Option<&std::path::PathBuf>,
    inputs: &Inputs,
    clients: &Clients,
) -> Result<SyncVia> {
    let efs_root = efs_root
        .cloned()
        .or_else(|| inputs.platform.efs.local_root.clone());
    match (efs_root, inputs.platform.sync_function.clone()) {
        (Some(root), _) => {
            let options = SyncOptions {
                progress: g.output == OutputFormat::Text && !g.quiet,
                ..SyncOptions::default()
            };
            Ok(SyncVia::Mounted(Syncer::new(
                clients.s3.clone(),
                root,
                options,
            )))
        }
        (None, Some(function)) => Ok(SyncVia::Function(function)),
        (None, None) => Err(anyhow!(
            "nowhere to sync artifacts to: pass --efs-root DIR (a host that mounts the file system), or give the platform a sync_function"
        )),
    }
}

/// Copies and verifies the artifacts of every version about to be created, and tells each model (`ready`, one sender
/// per model in plan order) once its last version is done; a model with nothing to sync is ready at once. Returns a
/// row per version.
async fn sync_new_versions(
    clients: &Clients,
    plan: &Plan,
    requests: Vec<SyncRequest>,
    via: Option<&SyncVia>,
    fence: &Fence,
    ready: Vec<oneshot::Sender<ModelSync>>,
) -> Vec<SyncRow> {
    // Per model with something to sync: who waits for it, and what became of its versions so far.
    let mut waiting: BTreeMap<&str, (oneshot::Sender<ModelSync>, ModelSync)> = BTreeMap::new();
    for (m, sender) in plan.models.iter().zip(ready) {
        let remaining = requests.iter().filter(|r| r.model == m.model).count();
        if remaining == 0 {
            // The receiver lives as long as this call's caller: a send cannot fail.
            let _ = sender.send(ModelSync::default());
        } else {
            let model_sync = ModelSync {
                remaining,
                ..ModelSync::default()
            };
            waiting.insert(&m.model, (sender, model_sync));
        }
    }
    let mut outcomes = futures::stream::iter(requests)
        .map(|req| async move {
            // Writing to EFS is a change: only under the lock.
            let outcome = match fence.check() {
                Err(e) => Err(e.to_string()),
                Ok(()) => sync_one(clients, via, &req).await,
            };
            (req, outcome)
        })
        .buffer_unordered(SYNC_VERSIONS_IN_FLIGHT);
    let mut rows = Vec::new();
    while let Some((req, outcome)) = outcomes.next().await {
        let (_, model) = waiting
            .get_mut(req.model.as_str())
            .expect("every request's model is counted");
        match outcome {
            Ok(o) => {
                model.verified.insert(req.version.clone(), o.digest.clone());
                rows.push(SyncRow {
                    model: req.model.clone(),
                    version: req.version.clone(),
                    digest: Some(o.digest),
                    skipped: o.skipped,
                    error: None,
                });
            }
            Err(e) => {
                // The first in the rows' order, whatever finished first.
                if model.failed.as_ref().is_none_or(|f| req.version < *f) {
                    model.failed = Some(req.version.clone());
                }
                rows.push(SyncRow {
                    model: req.model.clone(),
                    version: req.version.clone(),
                    digest: None,
                    skipped: false,
                    error: Some(e),
                });
            }
        }
        model.remaining -= 1;
        if model.remaining == 0
            && let Some((sender, done)) = waiting.remove(req.model.as_str())
        {
            let _ = sender.send(done);
        }
    }
    rows.sort_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
    rows
}

/// Copies and verifies one version's artifacts on EFS, where `via` says.
pub(super) async fn sync_one(
    clients: &Clients,
    via: Option<&SyncVia>,
    req: &SyncRequest,
) -> Result<crate::sync::SyncOutcome, String> {
    match via {
        Some(SyncVia::Mounted(syncer)) => syncer.sync(req).await.map_err(|e| e.to_string()),
        Some(SyncVia::Function(f)) => invoke_sync_function(&clients.lambda, f, req)
            .await
            .map_err(|e| e.to_string()),
        None => Err("nowhere to sync artifacts to".to_string()),
    }
}

fn summary_table(results: &[ModelOutcome], sync: &[SyncRow]) -> String {
    let mut out = String::from("\nMODEL            RESULT   CREATED                 STAGES\n");
    for r in results {
        let created = r
            .created
            .iter()
            .map(|c| format!("{}→{}", c.alias, c.lambda_version))
            .collect::<Vec<_>>()
            .join(" ");
        let stages = r
            .stage_moves
            .iter()
            .map(|s| format!("{}→v{}", s.stage, s.to_version))
            .collect::<Vec<_>>()
            .join(" ");
        let status = if r.error.is_some() { "FAILED" } else { "ok" };
        out.push_str(&format!(
            "{:<16} {:<8} {:<23} {}\n",
            r.model,
            status,
            if created.is_empty() {
                "-".into()
            } else {
                created
            },
            if stages.is_empty() {
                "-".into()
            } else {
                stages
            }
        ));
    }
    for r in results.iter().filter(|r| !r.routes_created.is_empty()) {
        let aliases: Vec<&str> = r.routes_created.iter().map(|c| c.alias.as_str()).collect();
        out.push_str(&format!(
            "HTTP routes created for {}: {} (POST /models/{}/<alias>/invocations).\n",
            r.model,
            aliases.join(" "),
            r.model
        ));
    }
    for r in results {
        for (alias, url) in &r.function_urls_created {
            out.push_str(&format!(
                "Function URL created for {} {alias}: {url} (AWS_IAM).\n",
                r.model
            ));
        }
    }
    let synced = sync.iter().filter(|s| s.error.is_none()).count();
    let skipped = sync.iter().filter(|s| s.skipped).count();
    out.push_str(&format!(
        "Artifacts: {synced} version(s) verified on EFS ({skipped} already there).\n"
    ));
    out
}
