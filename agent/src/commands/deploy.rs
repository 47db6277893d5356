//! `ferry deploy`: plan, and when there is something to do: lock, sync artifacts (verified), apply per function
//! (functions concurrently, steps of one function in order), release the lock. A rerun after success makes no
//! mutating call: with nothing to do, not even the lock is taken.
use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use futures::StreamExt;
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
    let (verified, sync_rows) = sync_new_versions(g, args, inputs, clients, &plan, &fence).await?;
    let ctx = ApplyContext {
        lambda: clients.lambda.clone(),
        audit: audit.clone(),
        deployer,
        environment: inputs.platform.environment.clone(),
        options: ApplyOptions::default(),
        fence,
        http_api: crate::http_api::HttpApi::of_platform(clients, &inputs.platform),
    };
    let results: Vec<ModelOutcome> = futures::stream::iter(plan.models.iter().zip(&observed))
        .map(|(model_plan, obs)| {
            let ctx = &ctx;
            let verified = verified.get(&model_plan.model).cloned().unwrap_or_default();
            let failed_sync = sync_rows
                .iter()
                .find(|s| s.model == model_plan.model && s.error.is_some())
                .cloned();
            async move {
                // A version whose artifacts are not verified on EFS is never published.
                if let Some(s) = failed_sync {
                    return ModelOutcome {
                        model: model_plan.model.clone(),
                        function: model_plan.function.clone(),
                        created: vec![],
                        audits_repaired: vec![],
                        stage_moves: vec![],
                        routes_created: vec![],
                        function_urls_created: BTreeMap::new(),
                        error: Some(format!(
                            "sync of v{} failed; nothing was published",
                            s.version
                        )),
                    };
                }
                if g.output == OutputFormat::Text {
                    eprintln!("deploying {} ...", model_plan.model);
                }
                apply_model(ctx, model_plan, obs, &verified).await
            }
        })
        .buffered(args.jobs as usize)
        .collect()
        .await;
    Ok((plan, results, sync_rows))
}

enum SyncVia {
    Mounted(Syncer),
    Function(String),
}

/// Copies and verifies the artifacts of every version about to be created. Per model: version → digest.
async fn sync_new_versions(
    g: &GlobalArgs,
    args: &DeployArgs,
    inputs: &Inputs,
    clients: &Clients,
    plan: &Plan,
    fence: &Fence,
) -> Result<(BTreeMap<String, VerifiedArtifacts>, Vec<SyncRow>)> {
    let requests: Vec<SyncRequest> = plan
        .models
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
        .collect();
    let mut verified: BTreeMap<String, VerifiedArtifacts> = BTreeMap::new();
    let mut rows = Vec::new();
    if requests.is_empty() {
        return Ok((verified, rows));
    }
    let efs_root = args
        .efs_root
        .clone()
        .or_else(|| inputs.platform.efs.local_root.clone());
    // Where the file system is mounted here, copy directly; otherwise the in-VPC sync function does it.
    let via = match (efs_root, inputs.platform.sync_function.clone()) {
        (Some(root), _) => {
            let options = SyncOptions {
                progress: g.output == OutputFormat::Text && !g.quiet,
                ..SyncOptions::default()
            };
            SyncVia::Mounted(Syncer::new(clients.s3.clone(), root, options))
        }
        (None, Some(function)) => SyncVia::Function(function),
        (None, None) => {
            return Err(anyhow!(
                "nowhere to sync artifacts to: pass --efs-root DIR (a host that mounts the file system), or give the platform a sync_function"
            ));
        }
    };
    let outcomes: Vec<_> = futures::stream::iter(requests)
        .map(|req| {
            let via = &via;
            async move {
                // Writing to EFS is a change: only under the lock.
                let outcome = match fence.check() {
                    Err(e) => Err(e.to_string()),
                    Ok(()) => match via {
                        SyncVia::Mounted(syncer) => syncer.sync(&req).await,
                        SyncVia::Function(f) => {
                            invoke_sync_function(&clients.lambda, f, &req).await
                        }
                    }
                    .map_err(|e| e.to_string()),
                };
                (req, outcome)
            }
        })
        .buffer_unordered(SYNC_VERSIONS_IN_FLIGHT)
        .collect()
        .await;
    for (req, outcome) in outcomes {
        match outcome {
            Ok(o) => {
                verified
                    .entry(req.model.clone())
                    .or_default()
                    .insert(req.version.clone(), o.digest.clone());
                rows.push(SyncRow {
                    model: req.model,
                    version: req.version,
                    digest: Some(o.digest),
                    skipped: o.skipped,
                    error: None,
                });
            }
            Err(e) => rows.push(SyncRow {
                model: req.model,
                version: req.version,
                digest: None,
                skipped: false,
                error: Some(e),
            }),
        }
    }
    rows.sort_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
    Ok((verified, rows))
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
