//! `ferry deploy --target eks` and `ferry retire --target eks`: per model, the Deployment of the EKS service
//! serving the model's served set (eks::served), applied by server-side apply and watched until rolled out, each
//! version entering or leaving the set recorded. Every check (catalog, platform, templates, approvals, what the
//! cluster and the audit records show) runs before the lock is taken; a model whose served set cannot be worked
//! out stops alone, as drift stops a Lambda model.
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::deploy::{SyncVia, sync_destination, sync_one};
use super::{Inputs, print_json};
use crate::approval::ModelApprovals;
use crate::audit::{AuditLog, AuditRecord, Deployer, EksEvent, EksRecord, rfc3339};
use crate::aws::Clients;
use crate::catalog::Model;
use crate::cli::{DeployArgs, GlobalArgs, OutputFormat, RetireArgs};
use crate::eks::cluster::{Cluster, Object};
use crate::eks::served::{
    RENDERED_ANNOTATION, Recorded, SERVED_ANNOTATION, ServedSet, next_served_set, parse_annotation,
};
use crate::lock::Fence;
use crate::platform;
use crate::render::Templates;
use crate::render::eks::{self as render_eks, EksInputs, EksModel};
use crate::sync::SyncRequest;

/// Where the manifests go: the cluster, or files for a GitOps tool.
enum Destination<'a> {
    Cluster(Cluster),
    Files(&'a Path),
}

/// What one model's Deployment serves now, as the cluster (or the emitted files) and the audit records show it.
struct Look<'a> {
    model: &'a Model,
    approvals: ModelApprovals,
    live: Vec<String>,
    live_rendered: Option<String>,
    recorded: Recorded,
    /// Whether serves are recorded (not for `--emit-only`: the GitOps tool makes them live).
    records: bool,
    /// How the live Deployment differs from what was applied, when someone changed it by hand.
    hand_changed: Option<String>,
}

/// One model's next served set, rendered.
#[derive(Serialize)]
struct ModelChange {
    model: String,
    deployment: String,
    namespace: String,
    /// In version order.
    served: Vec<String>,
    added: Vec<String>,
    restored: Vec<String>,
    kept_unapproved: Vec<String>,
    /// Served, but without their serve record yet (written once the rollout is done).
    unrecorded: Vec<String>,
    rendered_sha256: String,
    /// The manifests differ from what the Deployment was last given.
    apply: bool,
    /// How the live Deployment was changed by hand (its manifests are applied again).
    hand_changed: Option<String>,
    /// Why the model cannot be deployed (nothing is changed for it).
    refused: Option<String>,
    #[serde(skip)]
    rendered: Option<EksModel>,
    #[serde(skip)]
    served_set: Option<ServedSet>,
}

impl ModelChange {
    fn has_changes(&self) -> bool {
        self.refused.is_none() && (self.apply || !self.unrecorded.is_empty())
    }
}

#[derive(Serialize)]
struct EksOutput<'a> {
    format: u32,
    target: &'static str,
    models: &'a [ModelChange],
    results: &'a [ModelResult],
    ok: bool,
}

#[derive(Serialize, Default)]
struct ModelResult {
    model: String,
    applied: bool,
    recorded: Vec<String>,
    error: Option<String>,
}

pub async fn deploy(g: &GlobalArgs, args: &DeployArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let eks = render_eks::eks_platform(&inputs.platform, super::platform_path(g))?.clone();
    let approvals = inputs.approvals(&args.filter).await?;
    check_renders(g, &inputs, &approvals)?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    let destination = match args.out.as_deref().filter(|_| args.emit_only) {
        Some(dir) => Destination::Files(dir),
        None => Destination::Cluster(Cluster::connect(&eks.namespace).await?),
    };
    let scope = Scope {
        g,
        inputs: &inputs,
        eks: &eks,
        approvals: &approvals,
        clients: &clients,
        audit: &audit,
        destination: &destination,
    };
    let changes = scope.plan(None).await?;
    if g.output == OutputFormat::Text {
        print!("{}", plan_text(&changes, &destination));
    }
    if !changes.iter().any(ModelChange::has_changes) {
        let ok = changes.iter().all(|c| c.refused.is_none());
        if g.output == OutputFormat::Json {
            print_outcome(&changes, &[], ok)?;
        } else if ok {
            println!("No changes.");
        }
        return Ok(if ok { 0 } else { 1 });
    }
    let command = if args.emit_only {
        "ferry deploy --target eks --emit-only"
    } else {
        "ferry deploy --target eks"
    };
    let (deployer, held) = super::begin_change(
        &clients,
        &audit,
        &inputs.platform,
        command,
        args.lock.options(),
    )
    .await?;
    let fence = held.fence();
    let (changes, results) = super::with_lock(held, async {
        // Another run may have changed the served sets while this one waited for the lock: look again.
        let changes = scope.plan(None).await?;
        let via = sync_destination(g, args.efs_root.as_ref(), &inputs, &clients)?;
        let run = Run {
            scope: &scope,
            deployer: &deployer,
            fence: &fence,
            via: Some(&via),
        };
        let mut results = Vec::new();
        for change in changes.iter().filter(|c| c.has_changes()) {
            results.push(run.deploy_model(change, None).await);
        }
        anyhow::Ok((changes, results))
    })
    .await?;
    let ok =
        results.iter().all(|r| r.error.is_none()) && changes.iter().all(|c| c.refused.is_none());
    report(g, &changes, &results, ok)?;
    Ok(if ok { 0 } else { 1 })
}

pub async fn retire(g: &GlobalArgs, args: &RetireArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let eks = render_eks::eks_platform(&inputs.platform, super::platform_path(g))?.clone();
    let filter = crate::cli::ModelFilter {
        models: vec![args.model.clone()],
    };
    let approvals = inputs.approvals(&filter).await?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    let destination = Destination::Cluster(Cluster::connect(&eks.namespace).await?);
    let look = |changes: Vec<ModelChange>| -> Result<ModelChange> {
        let change = changes.into_iter().next().expect("one model selected");
        match &change.refused {
            Some(reason) => Err(anyhow!("{}: {reason}; nothing was changed", change.model)),
            None => Ok(change),
        }
    };
    let scope = Scope {
        g,
        inputs: &inputs,
        eks: &eks,
        approvals: &approvals,
        clients: &clients,
        audit: &audit,
        destination: &destination,
    };
    look(scope.plan(Some(&args.version)).await?)?;
    let (deployer, held) = super::begin_change(
        &clients,
        &audit,
        &inputs.platform,
        "ferry retire --target eks",
        args.lock.options(),
    )
    .await?;
    let fence = held.fence();
    let result = super::with_lock(held, async {
        let change = look(scope.plan(Some(&args.version)).await?)?;
        // A retire copies nothing, unless it serves again a recorded version someone removed by hand.
        let via = sync_destination(g, None, &inputs, &clients).ok();
        let run = Run {
            scope: &scope,
            deployer: &deployer,
            fence: &fence,
            via: via.as_ref(),
        };
        anyhow::Ok(run.deploy_model(&change, Some(args)).await)
    })
    .await?;
    match &result.error {
        Some(e) => bail!("{}: {e}", args.model),
        None => {
            println!(
                "v{} of {} left the EKS served set (audit recorded); the Deployment serves the rest.",
                args.version, args.model
            );
            Ok(0)
        }
    }
}

/// `ferry status --target eks`: per model, its Deployment's served set, rollout and image, beside the records.
pub async fn status(g: &GlobalArgs, filter: &crate::cli::ModelFilter) -> Result<u8> {
    let observed = observe_all(g, filter).await?;
    match g.output {
        OutputFormat::Json => print_json(&observed.iter().map(|(o, _)| o).collect::<Vec<_>>())?,
        OutputFormat::Text => {
            for (o, _) in &observed {
                println!("{}  (deployment {}/{})", o.model, o.namespace, o.deployment);
                if !o.exists {
                    println!("  nothing served on EKS");
                    continue;
                }
                println!("  serves v{}  rollout {}", o.served.join(" v"), o.rollout);
                println!("  image {}", o.image.as_deref().unwrap_or("(none)"));
                let unrecorded: Vec<&String> = o
                    .served
                    .iter()
                    .filter(|v| !o.recorded.contains(v))
                    .collect();
                if !unrecorded.is_empty() {
                    println!(
                        "  served without an eks-serve record: v{} (`ferry verify --target eks`)",
                        unrecorded
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(" v")
                    );
                }
            }
        }
    }
    Ok(0)
}

/// `ferry verify --target eks`: every check of eks::check per model, and with --efs-root each served version's EFS
/// folder against its manifest and approved digest. Exit 1 on any failed check.
pub async fn verify(g: &GlobalArgs, args: &crate::cli::VerifyArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let eks = render_eks::eks_platform(&inputs.platform, super::platform_path(g))?.clone();
    let efs_root = args
        .efs_root
        .clone()
        .or_else(|| inputs.platform.efs.local_root.clone());
    let mut findings = Vec::new();
    for (o, recorded) in observe_all(g, &args.filter).await? {
        findings.extend(crate::eks::check::findings(
            &o,
            &recorded,
            &eks.image,
            &eks.mount_path,
        ));
        let Some(root) = &efs_root else { continue };
        for (version, approved) in &recorded.served {
            let alias = crate::plan::version_alias(version);
            let checked = super::verify::check_folder(&root.join(&o.model).join(version)).and_then(
                |digest| match &approved.approval.artifact_sha256 {
                    Some(a) if *a != digest => Err(format!(
                        "the EFS folder's manifest digest is {digest}, the approved one is {a}"
                    )),
                    _ => Ok(digest),
                },
            );
            findings.push(crate::eks::check::Finding {
                model: o.model.clone(),
                alias,
                ok: checked.is_ok(),
                detail: match checked {
                    Ok(digest) => format!("EFS folder verified (digest {}…)", &digest[..12]),
                    Err(e) => e,
                },
            });
        }
    }
    let ok = findings.iter().all(|f| f.ok);
    match g.output {
        OutputFormat::Json => {
            print_json(&serde_json::json!({"target": "eks", "findings": findings, "ok": ok}))?
        }
        OutputFormat::Text => {
            for f in &findings {
                println!(
                    "{} {:<14} {:<6} {}",
                    if f.ok { "ok  " } else { "FAIL" },
                    f.model,
                    f.alias,
                    f.detail
                );
            }
            println!(
                "{} check(s), {} problem(s).",
                findings.len(),
                findings.iter().filter(|f| !f.ok).count()
            );
        }
    }
    Ok(if ok { 0 } else { 1 })
}

/// Each selected model's Deployment as the cluster shows it, with what its audit records say.
async fn observe_all(
    g: &GlobalArgs,
    filter: &crate::cli::ModelFilter,
) -> Result<Vec<(crate::eks::check::Observed, Recorded)>> {
    let inputs = Inputs::load(g)?;
    let eks = render_eks::eks_platform(&inputs.platform, super::platform_path(g))?.clone();
    let models = inputs.catalog.select(&filter.models)?;
    let (_, audit) = super::connect(g, &inputs.platform).await;
    let cluster = Cluster::connect(&eks.namespace).await?;
    let mut out = Vec::new();
    for model in models {
        let name = model.eks_name().map_err(anyhow::Error::msg)?;
        let deployment = cluster.deployment(&name).await?;
        let recorded = audit
            .eks_served(&model.key)
            .await
            .with_context(|| format!("reading the EKS records of {}", model.key))?;
        let o = crate::eks::check::observed(
            &model.key,
            &name,
            &eks.namespace,
            deployment.as_ref(),
            &recorded,
        );
        out.push((o, recorded));
    }
    Ok(out)
}

/// Renders every selected model with its approved versions, so a template, catalog or platform error stops the run
/// before anything is read from the cluster or changed.
fn check_renders(
    g: &GlobalArgs,
    inputs: &Inputs,
    approvals: &[(&Model, ModelApprovals)],
) -> Result<()> {
    let eks_inputs = EksInputs {
        catalog: &inputs.catalog,
        platform: &inputs.platform,
        platform_path: super::platform_path(g),
    };
    let mut templates = Templates::new();
    for (model, approved) in approvals {
        render_eks::render_model(&mut templates, &eks_inputs, model, approved)?;
    }
    Ok(())
}

/// What one run works with: its inputs, the approvals read, and where things are.
struct Scope<'a> {
    g: &'a GlobalArgs,
    inputs: &'a Inputs,
    eks: &'a platform::Eks,
    approvals: &'a [(&'a Model, ModelApprovals)],
    clients: &'a Clients,
    audit: &'a AuditLog,
    destination: &'a Destination<'a>,
}

impl Scope<'_> {
    /// Each model's next served set, rendered: what the destination and the audit records show, and the approvals.
    async fn plan(&self, retiring: Option<&str>) -> Result<Vec<ModelChange>> {
        let eks_inputs = EksInputs {
            catalog: &self.inputs.catalog,
            platform: &self.inputs.platform,
            platform_path: super::platform_path(self.g),
        };
        let mut templates = Templates::new();
        let mut changes = Vec::new();
        for (model, approvals) in self.approvals {
            let look = look(model, approvals, self.destination, self.audit, &eks_inputs).await?;
            changes.push(change_of(&mut templates, &eks_inputs, &look, retiring)?);
        }
        Ok(changes)
    }
}

async fn look<'a>(
    model: &'a Model,
    approvals: &ModelApprovals,
    destination: &Destination<'_>,
    audit: &AuditLog,
    inputs: &EksInputs<'_>,
) -> Result<Look<'a>> {
    let name = model.eks_name().map_err(anyhow::Error::msg)?;
    let (live, live_rendered, hand_changed) = match destination {
        Destination::Cluster(cluster) => match cluster.deployment(&name).await? {
            Some(d) => {
                let eks = render_eks::eks_platform(inputs.platform, inputs.platform_path)?;
                let o = crate::eks::check::observed(
                    &model.key,
                    &name,
                    &eks.namespace,
                    Some(&d),
                    &Recorded::default(),
                );
                if !o.managed_by_ferry {
                    bail!(
                        "{}: deployment {}/{name} exists and is not managed by Ferry (no label app.kubernetes.io/managed-by=ferry); nothing was changed",
                        model.key,
                        eks.namespace
                    );
                }
                // A change by hand (`kubectl set image`, `kubectl edit`) keeps the digest annotation: look at what
                // the pods are given too, and apply again when it is not what was rendered.
                let pod_versions: Vec<String> =
                    o.pod_served_set.iter().map(|(v, _, _)| v.clone()).collect();
                let hand_changed = if o.image.as_deref() != Some(eks.image.as_str()) {
                    Some(format!(
                        "its image is {}",
                        o.image.as_deref().unwrap_or("(none)")
                    ))
                } else if pod_versions != o.served {
                    Some(format!("its pods are given v{}", pod_versions.join(" v")))
                } else {
                    None
                };
                let rendered = d
                    .metadata
                    .annotations
                    .unwrap_or_default()
                    .get(RENDERED_ANNOTATION)
                    .cloned();
                (o.served, rendered, hand_changed)
            }
            None => (Vec::new(), None, None),
        },
        Destination::Files(dir) => {
            let (served, rendered) = emitted(dir, &model.key)?;
            (served, rendered, None)
        }
    };
    let recorded = match destination {
        // What a GitOps tool serves is in the files: Ferry records no serve for them.
        Destination::Files(_) => Recorded::default(),
        Destination::Cluster(_) => audit
            .eks_served(&model.key)
            .await
            .with_context(|| format!("reading the EKS records of {}", model.key))?,
    };
    Ok(Look {
        model,
        approvals: approvals.clone(),
        live,
        live_rendered,
        recorded,
        records: matches!(destination, Destination::Cluster(_)),
        hand_changed,
    })
}

/// The served set and the digest of the manifests an earlier `--emit-only` left in `dir` for `model`.
fn emitted(dir: &Path, model: &str) -> Result<(Vec<String>, Option<String>)> {
    let folder = dir.join(model);
    let deployment = render_eks::manifest_files()
        .map(|f| folder.join(f))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-deployment.yaml"))
        })
        .expect("a deployment template");
    if !deployment.exists() {
        return Ok((Vec::new(), None));
    }
    let text = std::fs::read_to_string(&deployment)
        .with_context(|| format!("{}: cannot read", deployment.display()))?;
    let object = Object::parse(&deployment.display().to_string(), &text)?;
    let annotation = |key: &str| {
        object.body["metadata"]["annotations"][key]
            .as_str()
            .map(str::to_string)
    };
    Ok((
        parse_annotation(annotation(SERVED_ANNOTATION).as_deref()),
        Some(digest_of_files(&folder)?),
    ))
}

/// The SHA-256 of a model's manifests as files: each file's name and text, in apply order.
fn digest_of_files(folder: &Path) -> Result<String> {
    let mut files = Vec::new();
    for file in render_eks::manifest_files() {
        let path = folder.join(&file);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            files.push((file, text));
        }
    }
    Ok(digest(files.iter().map(|(f, t)| (f.as_str(), t.as_str()))))
}

fn digest<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut hash = Sha256::new();
    for (file, text) in files {
        hash.update(format!("{file}\n{}\n{text}\n", text.len()));
    }
    hex::encode(hash.finalize())
}

fn change_of(
    templates: &mut Templates,
    inputs: &EksInputs,
    look: &Look,
    retiring: Option<&str>,
) -> Result<ModelChange> {
    let eks = render_eks::eks_platform(inputs.platform, inputs.platform_path)?;
    let name = look.model.eks_name().map_err(anyhow::Error::msg)?;
    let mut change = ModelChange {
        model: look.model.key.clone(),
        deployment: name,
        namespace: eks.namespace.clone(),
        served: look.live.clone(),
        added: Vec::new(),
        restored: Vec::new(),
        kept_unapproved: Vec::new(),
        unrecorded: Vec::new(),
        rendered_sha256: look.live_rendered.clone().unwrap_or_default(),
        apply: false,
        hand_changed: look.hand_changed.clone(),
        refused: None,
        rendered: None,
        served_set: None,
    };
    let served = match next_served_set(
        &look.live,
        &look.recorded,
        &look.approvals.approved,
        retiring,
    ) {
        Ok(s) => s,
        Err(e) => {
            change.refused = Some(e.to_string());
            return Ok(change);
        }
    };
    if served.versions.is_empty() {
        // Nothing approved or served: no Deployment (a served set is never empty).
        return Ok(change);
    }
    let approvals = ModelApprovals {
        approved: served.versions.clone(),
        ..ModelApprovals::default()
    };
    let rendered = render_eks::render_model(templates, inputs, look.model, &approvals)?;
    let rendered_sha256 = digest(
        rendered
            .manifests
            .iter()
            .map(|m| (m.file.as_str(), m.text.as_str())),
    );
    change.served = rendered.versions.clone();
    change.added = served.added.clone();
    change.restored = served.restored.clone();
    change.kept_unapproved = served.kept_unapproved.clone();
    change.unrecorded = served
        .versions
        .iter()
        .map(|a| a.version.clone())
        .filter(|v| look.records && !look.recorded.served.contains_key(v))
        .collect();
    change.apply = look.live_rendered.as_deref() != Some(rendered_sha256.as_str())
        || look.hand_changed.is_some();
    change.rendered_sha256 = rendered_sha256;
    change.rendered = Some(rendered);
    change.served_set = Some(served);
    Ok(change)
}

/// A run under the lock: who records, the lock's fence, where to sync.
struct Run<'a> {
    scope: &'a Scope<'a>,
    deployer: &'a Deployer,
    fence: &'a Fence,
    via: Option<&'a SyncVia>,
}

impl Run<'_> {
    /// Syncs what the model's Deployment is to serve anew, applies (or writes) its manifests, waits for the rollout,
    /// and records each version served without a record; for a retire, records the retire first, so that a run
    /// stopped before its rollout is finished by the next one (eks::served).
    async fn deploy_model(&self, change: &ModelChange, retire: Option<&RetireArgs>) -> ModelResult {
        let mut result = ModelResult {
            model: change.model.clone(),
            ..ModelResult::default()
        };
        if let Err(e) = self.deploy_model_steps(change, retire, &mut result).await {
            result.error = Some(format!("{e:#}"));
        }
        result
    }

    async fn deploy_model_steps(
        &self,
        change: &ModelChange,
        retire: Option<&RetireArgs>,
        result: &mut ModelResult,
    ) -> Result<()> {
        let (Some(rendered), Some(served)) = (&change.rendered, &change.served_set) else {
            return Ok(());
        };
        if let Some(args) = retire {
            self.record(change, &args.version, EksEvent::Retire, Some(args))
                .await?;
        }
        let new: BTreeSet<&String> = served.added.iter().chain(&served.restored).collect();
        for version in served.versions.iter().filter(|a| new.contains(&a.version)) {
            self.fence.check()?;
            let request = SyncRequest {
                model: change.model.clone(),
                version: version.version.clone(),
                source: version.artifact_uri.clone(),
                expected_digest: version.approval.artifact_sha256.clone(),
                verify: false,
            };
            sync_one(self.scope.clients, self.via, &request)
                .await
                .map_err(|e| anyhow!("sync of v{}: {e}; nothing was applied", version.version))?;
        }
        if change.apply {
            match self.scope.destination {
                Destination::Files(dir) => {
                    self.fence.check()?;
                    super::render::write_manifests(dir, std::slice::from_ref(rendered))?;
                }
                Destination::Cluster(cluster) => self.apply(cluster, change, rendered).await?,
            }
            result.applied = true;
        }
        if let Destination::Files(_) = self.scope.destination {
            return Ok(());
        }
        for version in &change.unrecorded {
            self.record(change, version, EksEvent::Serve, None).await?;
            result.recorded.push(version.clone());
        }
        Ok(())
    }

    async fn apply(
        &self,
        cluster: &Cluster,
        change: &ModelChange,
        rendered: &EksModel,
    ) -> Result<()> {
        let mut objects = Vec::new();
        for m in &rendered.manifests {
            let mut object = Object::parse(&m.template, &m.text)?;
            object.annotate(RENDERED_ANNOTATION, &change.rendered_sha256);
            objects.push(object);
        }
        for object in &objects {
            self.fence.check()?;
            cluster.apply(object).await?;
        }
        // An optional object no longer rendered (the autoscaler after eks.autoscaling was taken out) goes.
        for (stem, api_version, kind) in [
            ("hpa", "autoscaling/v2", "HorizontalPodAutoscaler"),
            ("pdb", "policy/v1", "PodDisruptionBudget"),
        ] {
            if rendered
                .manifests
                .iter()
                .any(|m| m.template == render_eks::template_name(stem))
            {
                continue;
            }
            let absent = Object::parse(
                stem,
                &format!(
                    "apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {}\n",
                    change.deployment
                ),
            )?;
            self.fence.check()?;
            cluster.delete_if_present(&absent).await?;
        }
        let timeout = Duration::from_secs(
            u64::from(
                self.scope
                    .inputs
                    .catalog
                    .models
                    .get(&change.model)
                    .map_or(600, |m| m.eks.progress_deadline_s),
            ) + 60,
        );
        let show = self.scope.g.output == OutputFormat::Text && !self.scope.g.quiet;
        cluster
            .wait_for_rollout(&change.deployment, timeout, |why| {
                if show {
                    eprintln!("  {}/{}: {why}", change.namespace, change.deployment);
                }
            })
            .await?;
        Ok(())
    }

    async fn record(
        &self,
        change: &ModelChange,
        version: &str,
        event: EksEvent,
        retire: Option<&RetireArgs>,
    ) -> Result<()> {
        let approved = change
            .served_set
            .as_ref()
            .and_then(|s| s.versions.iter().find(|a| a.version == version));
        let now = time::OffsetDateTime::now_utc();
        let alias = crate::plan::version_alias(version);
        let key = self.scope.audit.eks_key(&change.model, &alias, event, now);
        let record = AuditRecord {
            event: match event {
                EksEvent::Serve => "eks-serve",
                EksEvent::Retire => "eks-retire",
            },
            environment: self.scope.inputs.platform.environment.clone(),
            model: change.model.clone(),
            function: format!("{}/{}", change.namespace, change.deployment),
            version: Some(version.to_string()),
            alias,
            artifact_digest: approved.and_then(|a| a.approval.artifact_sha256.clone()),
            approval: approved.map(|a| a.approval.clone()),
            reason: retire.map(|r| r.reason.clone()),
            ticket: retire.map(|r| r.ticket.clone()),
            eks: Some(EksRecord {
                cluster: self.scope.eks.cluster.clone(),
                namespace: change.namespace.clone(),
                deployment: change.deployment.clone(),
                image: self.scope.eks.image.clone(),
                artifact_uri: approved.map(|a| a.artifact_uri.clone()).unwrap_or_default(),
                served_versions: change.served.clone(),
                rendered_sha256: change.rendered_sha256.clone(),
            }),
            deployer: self.deployer.clone(),
            time: rfc3339(now),
            ..AuditRecord::default()
        };
        self.fence.check()?;
        self.scope.audit.write(&key, &record).await?;
        Ok(())
    }
}

fn plan_text(changes: &[ModelChange], destination: &Destination) -> String {
    let mut out = String::new();
    for c in changes {
        let place = match destination {
            Destination::Cluster(cluster) => format!(
                "deployment {}/{} on {}",
                c.namespace, c.deployment, cluster.server
            ),
            Destination::Files(dir) => format!("{}", dir.join(&c.model).display()),
        };
        out.push_str(&format!("{}  ({place})\n", c.model));
        if let Some(reason) = &c.refused {
            out.push_str(&format!("  refused: {reason}\n"));
            continue;
        }
        if c.served.is_empty() {
            out.push_str("  no version approved or served: nothing to deploy\n");
            continue;
        }
        out.push_str(&format!("  serves v{}\n", c.served.join(" v")));
        let list = |label: &str, v: &[String]| {
            (!v.is_empty()).then(|| format!("  {label}: v{}\n", v.join(" v")))
        };
        out.extend(list("new", &c.added));
        out.extend(list(
            "served again (recorded, missing from the Deployment)",
            &c.restored,
        ));
        out.extend(list(
            "kept though no longer approved (frozen until `ferry retire`)",
            &c.kept_unapproved,
        ));
        if !matches!(destination, Destination::Files(_)) {
            out.extend(list("to be recorded", &c.unrecorded));
        }
        if let Some(how) = &c.hand_changed {
            out.push_str(&format!(
                "  changed by hand ({how}): its manifests are applied again\n"
            ));
        }
        if !c.has_changes() {
            out.push_str("  up to date\n");
        } else if c.apply {
            out.push_str("  manifests to apply\n");
        }
    }
    out
}

fn report(
    g: &GlobalArgs,
    changes: &[ModelChange],
    results: &[ModelResult],
    ok: bool,
) -> Result<()> {
    match g.output {
        OutputFormat::Json => print_outcome(changes, results, ok)?,
        OutputFormat::Text => {
            for r in results {
                let status = if r.error.is_some() { "FAILED" } else { "ok" };
                println!(
                    "{:<16} {:<8} {}{}",
                    r.model,
                    status,
                    if r.applied { "rolled out" } else { "unchanged" },
                    if r.recorded.is_empty() {
                        String::new()
                    } else {
                        format!(", recorded v{}", r.recorded.join(" v"))
                    }
                );
            }
        }
    }
    for r in results {
        if let Some(e) = &r.error {
            eprintln!("error: {}: {e}", r.model);
        }
    }
    for c in changes {
        if let Some(reason) = &c.refused {
            eprintln!("error: {}: {reason}; nothing was changed for it", c.model);
        }
    }
    Ok(())
}

fn print_outcome(changes: &[ModelChange], results: &[ModelResult], ok: bool) -> Result<()> {
    print_json(&EksOutput {
        format: 1,
        target: "eks",
        models: changes,
        results,
        ok,
    })
}
