//! `ferry deploy --target eks`, `ferry retire --target eks`, and `status`/`verify` of the EKS service: per model,
//! the Deployment serving the model's served set (eks::served), applied by server-side apply and watched until
//! rolled out; every apply recorded (`eks-rollout`), and each version entering or leaving the set (`eks-serve`,
//! `eks-retire`). Every check (catalog, platform, templates, approvals, where to sync, what the cluster and the
//! audit records show) runs before the lock is taken; a model whose served set cannot be worked out stops alone,
//! as drift stops a Lambda model.
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::deploy::{SyncVia, sync_destination, sync_one};
use super::{Inputs, print_json};
use crate::approval::{ApprovedVersion, ModelApprovals};
use crate::audit::{AuditLog, AuditRecord, Deployer, EksEvent, EksRecord, rfc3339};
use crate::aws::Clients;
use crate::catalog::Model;
use crate::cli::{DeployArgs, GlobalArgs, ModelFilter, OutputFormat, RetireArgs, VerifyArgs};
use crate::eks::check::{self, Finding, Observed};
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
    recorded: Recorded,
    /// Why the model cannot be deployed, found while looking.
    refused: Option<String>,
}

/// One model's next served set, rendered, and what applying it would change.
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
    /// What applying would change: each object that differs from what is rendered (a change by hand included), and
    /// each optional object still there though no longer rendered. Empty: nothing to apply.
    to_apply: Vec<String>,
    /// Why the model cannot be deployed (nothing is changed for it).
    refused: Option<String>,
    #[serde(skip)]
    rendered: Option<EksModel>,
    #[serde(skip)]
    served_set: Option<ServedSet>,
    /// The rendered objects in apply order, the Deployment last; and the optional ones not rendered.
    #[serde(skip)]
    objects: Vec<Object>,
    #[serde(skip)]
    absent: Vec<Object>,
    /// For a retire: the version leaving, with the approval it was served under.
    #[serde(skip)]
    retiring: Option<ApprovedVersion>,
}

impl ModelChange {
    /// A model's change before anything is worked out, or refused for `refused`.
    fn skeleton(model: &Model, namespace: &str, refused: Option<String>) -> ModelChange {
        ModelChange {
            model: model.key.clone(),
            deployment: model.eks_name().unwrap_or_else(|_| model.key.clone()),
            namespace: namespace.to_string(),
            served: Vec::new(),
            added: Vec::new(),
            restored: Vec::new(),
            kept_unapproved: Vec::new(),
            unrecorded: Vec::new(),
            rendered_sha256: String::new(),
            to_apply: Vec::new(),
            refused,
            rendered: None,
            served_set: None,
            objects: Vec::new(),
            absent: Vec::new(),
            retiring: None,
        }
    }

    fn has_changes(&self) -> bool {
        self.refused.is_none() && (!self.to_apply.is_empty() || !self.unrecorded.is_empty())
    }

    fn needs_sync(&self) -> bool {
        self.served_set
            .as_ref()
            .is_some_and(|s| !s.added.is_empty() || !s.restored.is_empty())
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
    let mut scope = Scope {
        g,
        inputs: &inputs,
        eks: &eks,
        approvals,
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
        report_refusals(&changes);
        return Ok(if ok { 0 } else { 1 });
    }
    // Nowhere to copy new versions to is a bad input: named before the lock.
    let sync_via = |changes: &[ModelChange]| -> Result<Option<SyncVia>> {
        match changes.iter().any(ModelChange::needs_sync) {
            true => Ok(Some(sync_destination(
                g,
                args.efs_root.as_ref(),
                &inputs,
                &clients,
            )?)),
            false => Ok(None),
        }
    };
    let via = sync_via(&changes)?;
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
        // Another run, or an approver, may have changed things while this one waited for the lock: read again.
        scope.read_approvals_again(&args.filter).await?;
        let changes = scope.plan(None).await?;
        let late = match via {
            None => sync_via(&changes)?,
            Some(_) => None,
        };
        let run = Run {
            scope: &scope,
            deployer: &deployer,
            fence: &fence,
            via: via.as_ref().or(late.as_ref()),
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
    let filter = ModelFilter {
        models: vec![args.model.clone()],
    };
    let approvals = inputs.approvals(&filter).await?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    let destination = Destination::Cluster(Cluster::connect(&eks.namespace).await?);
    let mut scope = Scope {
        g,
        inputs: &inputs,
        eks: &eks,
        approvals,
        clients: &clients,
        audit: &audit,
        destination: &destination,
    };
    let one = |changes: Vec<ModelChange>| -> Result<ModelChange> {
        let change = changes.into_iter().next().expect("one model selected");
        match &change.refused {
            Some(reason) => Err(anyhow!("{}: {reason}; nothing was changed", change.model)),
            None => Ok(change),
        }
    };
    let planned = one(scope.plan(Some(&args.version)).await?)?;
    // A retire copies nothing, unless it serves again a recorded version someone removed by hand.
    let via = match planned.needs_sync() {
        true => Some(sync_destination(g, None, &inputs, &clients)?),
        false => None,
    };
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
        scope.read_approvals_again(&filter).await?;
        let change = one(scope.plan(Some(&args.version)).await?)?;
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
pub async fn status(g: &GlobalArgs, filter: &ModelFilter) -> Result<u8> {
    let observed = observe_all(g, filter).await?;
    match g.output {
        OutputFormat::Json => print_json(&observed.iter().map(|(o, _)| o).collect::<Vec<_>>())?,
        OutputFormat::Text => print!("{}", status_text(&observed)),
    }
    Ok(0)
}

fn status_text(observed: &[(Observed, Recorded)]) -> String {
    let mut out = String::new();
    for (o, _) in observed {
        out.push_str(&format!(
            "{}  (deployment {}/{})\n",
            o.model, o.namespace, o.deployment
        ));
        if !o.exists {
            out.push_str("  nothing served on EKS\n");
            continue;
        }
        out.push_str(&format!(
            "  serves v{}  rollout {}\n",
            o.served.join(" v"),
            o.rollout
        ));
        out.push_str(&format!(
            "  image {}\n",
            o.image.as_deref().unwrap_or("(none)")
        ));
        let unrecorded: Vec<&str> = o
            .served
            .iter()
            .filter(|v| !o.recorded.contains(v))
            .map(String::as_str)
            .collect();
        if !unrecorded.is_empty() {
            out.push_str(&format!(
                "  served without an eks-serve record: v{} (`ferry verify --target eks`)\n",
                unrecorded.join(" v")
            ));
        }
    }
    out
}

/// `ferry verify --target eks`: every check of eks::check per model, and with --efs-root each served version's EFS
/// folder against its manifest and approved digest. Exit 1 on any failed check.
pub async fn verify(g: &GlobalArgs, args: &VerifyArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let eks = render_eks::eks_platform(&inputs.platform, super::platform_path(g))?.clone();
    let efs_root = args
        .efs_root
        .clone()
        .or_else(|| inputs.platform.efs.local_root.clone());
    let mut findings = Vec::new();
    for (o, recorded) in observe_all(g, &args.filter).await? {
        findings.extend(check::findings(&o, &recorded, &eks.image, &eks.mount_path));
        let Some(root) = &efs_root else { continue };
        for (version, approved) in &recorded.served {
            let folder = root.join(&o.model).join(version);
            let approved_digest = approved.approval.artifact_sha256.as_ref();
            let checked = super::verify::check_folder(&folder).and_then(|digest| {
                super::verify::check_digest_approved(digest, approved_digest, None)
            });
            findings.push(Finding {
                model: o.model.clone(),
                alias: crate::plan::version_alias(version),
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
                    "{}",
                    super::verify::finding_line(f.ok, &f.model, &f.alias, &f.detail)
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
async fn observe_all(g: &GlobalArgs, filter: &ModelFilter) -> Result<Vec<(Observed, Recorded)>> {
    let inputs = Inputs::load(g)?;
    let eks = render_eks::eks_platform(&inputs.platform, super::platform_path(g))?.clone();
    let models = inputs.catalog.select(&filter.models)?;
    let (_, audit) = super::connect(g, &inputs.platform).await;
    let cluster = Cluster::connect(&eks.namespace).await?;
    let mut out = Vec::new();
    for model in models {
        let name = model.eks_name().map_err(anyhow::Error::msg)?;
        let deployment = cluster.deployment(&name).await?;
        let recorded = recorded_of(&audit, model).await?;
        let o = check::observed(
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

async fn recorded_of(audit: &AuditLog, model: &Model) -> Result<Recorded> {
    audit
        .eks_served(&model.key)
        .await
        .with_context(|| format!("reading the EKS records of {}", model.key))
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
    /// Read again under the lock: an approval withdrawn while this run waited is not served and frozen in.
    approvals: Vec<(&'a Model, ModelApprovals)>,
    clients: &'a Clients,
    audit: &'a AuditLog,
    destination: &'a Destination<'a>,
}

impl Scope<'_> {
    /// Each model's next served set, rendered, and what applying it would change (only reads: a server-side dry
    /// run stores nothing).
    async fn plan(&self, retiring: Option<&str>) -> Result<Vec<ModelChange>> {
        let eks_inputs = EksInputs {
            catalog: &self.inputs.catalog,
            platform: &self.inputs.platform,
            platform_path: super::platform_path(self.g),
        };
        let mut templates = Templates::new();
        let mut changes = Vec::new();
        for (model, approvals) in &self.approvals {
            // One model's error (a refused dry run, an unreadable record) stops that model only.
            let change = match self
                .plan_model(&mut templates, &eks_inputs, model, approvals, retiring)
                .await
            {
                Ok(change) => change,
                Err(e) => ModelChange::skeleton(model, &self.eks.namespace, Some(format!("{e:#}"))),
            };
            changes.push(change);
        }
        Ok(changes)
    }

    async fn plan_model(
        &self,
        templates: &mut Templates,
        eks_inputs: &EksInputs<'_>,
        model: &Model,
        approvals: &ModelApprovals,
        retiring: Option<&str>,
    ) -> Result<ModelChange> {
        let look = self.look(model, approvals).await?;
        let mut change = change_of(templates, eks_inputs, &look, retiring)?;
        if change.refused.is_none() {
            change.to_apply = self.differences(&change).await?;
        }
        Ok(change)
    }

    /// The approvals read again, and every model rendered with them (under the lock, before anything changes).
    async fn read_approvals_again(&mut self, filter: &ModelFilter) -> Result<()> {
        self.approvals = self.inputs.approvals(filter).await?;
        check_renders(self.g, self.inputs, &self.approvals)
    }

    async fn look<'m>(&self, model: &'m Model, approvals: &ModelApprovals) -> Result<Look<'m>> {
        let name = model.eks_name().map_err(anyhow::Error::msg)?;
        let mut refused = None;
        let live = match self.destination {
            Destination::Cluster(cluster) => match cluster.deployment(&name).await? {
                Some(d) => {
                    let o = check::observed(
                        &model.key,
                        &name,
                        &self.eks.namespace,
                        Some(&d),
                        &Recorded::default(),
                    );
                    if !o.managed_by_ferry {
                        refused = Some(format!(
                            "deployment {}/{name} exists and is not managed by Ferry (no label app.kubernetes.io/managed-by=ferry)",
                            self.eks.namespace
                        ));
                    }
                    o.served
                }
                None => Vec::new(),
            },
            Destination::Files(dir) => emitted_served_set(dir, &model.key)?,
        };
        Ok(Look {
            model,
            approvals: approvals.clone(),
            live,
            recorded: recorded_of(self.audit, model).await?,
            refused,
        })
    }

    /// What applying the change would do, object by object.
    async fn differences(&self, change: &ModelChange) -> Result<Vec<String>> {
        let mut out = Vec::new();
        match self.destination {
            Destination::Cluster(cluster) => {
                for object in &change.objects {
                    if cluster.differs(object).await? {
                        out.push(format!(
                            "{} {}/{} differs from what is rendered",
                            object.kind, change.namespace, object.name
                        ));
                    }
                }
                for object in &change.absent {
                    if cluster.present(object).await? {
                        out.push(format!(
                            "{} {}/{} is no longer rendered: deleted",
                            object.kind, change.namespace, object.name
                        ));
                    }
                }
            }
            Destination::Files(dir) => {
                if change.rendered.is_some()
                    && digest_of_files(&dir.join(&change.model))? != change.rendered_sha256
                {
                    out.push(format!(
                        "{} differs from what is rendered",
                        dir.join(&change.model).display()
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// The served set of the Deployment manifest an earlier `--emit-only` left in `dir` for `model`.
fn emitted_served_set(dir: &Path, model: &str) -> Result<Vec<String>> {
    let Some(path) = render_eks::manifest_files()
        .map(|f| dir.join(model).join(f))
        .find(|p| p.to_string_lossy().ends_with("-deployment.yaml"))
        .filter(|p| p.exists())
    else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let object = Object::parse(&path.display().to_string(), &text)?;
    Ok(parse_annotation(
        object.body["metadata"]["annotations"][SERVED_ANNOTATION].as_str(),
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

/// The optional kinds, by template: applied when rendered, deleted when not.
const OPTIONAL: [(&str, &str, &str); 2] = [
    ("hpa", "autoscaling/v2", "HorizontalPodAutoscaler"),
    ("pdb", "policy/v1", "PodDisruptionBudget"),
];

fn change_of(
    templates: &mut Templates,
    inputs: &EksInputs,
    look: &Look,
    retiring: Option<&str>,
) -> Result<ModelChange> {
    let eks = render_eks::eks_platform(inputs.platform, inputs.platform_path)?;
    let mut change = ModelChange {
        served: look.live.clone(),
        retiring: retiring.and_then(|v| look.recorded.served.get(v).cloned()),
        ..ModelChange::skeleton(look.model, &eks.namespace, look.refused.clone())
    };
    if change.refused.is_some() {
        return Ok(change);
    }
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
    change.rendered_sha256 = digest(
        rendered
            .manifests
            .iter()
            .map(|m| (m.file.as_str(), m.text.as_str())),
    );
    // The Deployment last: everything it relies on (its Service, autoscaler, budget) is in place before its pods
    // change, and a run stopped before it leaves the Deployment as it was, for the next run to apply.
    let mut objects = Vec::new();
    for m in &rendered.manifests {
        let mut object = Object::parse(&m.template, &m.text)?;
        object.annotate(RENDERED_ANNOTATION, &change.rendered_sha256);
        objects.push(object);
    }
    objects.sort_by_key(|o| o.kind == "Deployment");
    change.objects = objects;
    for (stem, api_version, kind) in OPTIONAL {
        if !rendered
            .manifests
            .iter()
            .any(|m| m.template == render_eks::template_name(stem))
        {
            change.absent.push(Object::parse(
                stem,
                &format!(
                    "apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {}\n",
                    change.deployment
                ),
            )?);
        }
    }
    change.served = rendered.versions.clone();
    change.added = served.added.clone();
    change.restored = served.restored.clone();
    change.kept_unapproved = served.kept_unapproved.clone();
    change.unrecorded = served
        .versions
        .iter()
        .map(|a| a.version.clone())
        .filter(|v| !look.recorded.served.contains_key(v))
        .collect();
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
    /// Syncs what the model's Deployment is to serve anew, applies (or writes) its manifests and records that, waits
    /// for the rollout, and records each version served without a record. A retire is recorded first, so that a run
    /// stopped before its rollout is finished by the next one (eks::served); a version is recorded as served only
    /// once a rollout serving it is done, whichever run made it.
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
            let leaving = change.retiring.as_ref();
            self.record(change, &args.version, leaving, EksEvent::Retire, Some(args))
                .await?;
        }
        let new: BTreeSet<&String> = served.added.iter().chain(&served.restored).collect();
        for version in served.versions.iter().filter(|a| new.contains(&a.version)) {
            self.scope_fence()?;
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
        if !change.to_apply.is_empty() {
            // Recorded before the first change: a run stopped half way leaves the record of what it set out to
            // do, and the next run's dry runs see what is left to apply.
            self.record_rollout(change).await?;
            match self.scope.destination {
                Destination::Files(dir) => {
                    self.scope_fence()?;
                    super::render::write_manifests(dir, std::slice::from_ref(rendered))?;
                }
                Destination::Cluster(cluster) => self.apply(cluster, change).await?,
            }
            result.applied = true;
        }
        if let Destination::Cluster(cluster) = self.scope.destination {
            // Also when nothing was applied now: an earlier run's rollout may not have finished, or failed.
            let idle = Duration::from_secs(
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
                .wait_for_rollout(&change.deployment, idle, |why| {
                    if show {
                        eprintln!("  {}/{}: {why}", change.namespace, change.deployment);
                    }
                })
                .await?;
        }
        for version in &change.unrecorded {
            let approved = served.versions.iter().find(|a| &a.version == version);
            self.record(change, version, approved, EksEvent::Serve, None)
                .await?;
            result.recorded.push(version.clone());
        }
        Ok(())
    }

    fn scope_fence(&self) -> Result<()> {
        Ok(self.fence.check()?)
    }

    async fn apply(&self, cluster: &Cluster, change: &ModelChange) -> Result<()> {
        for object in &change.absent {
            if cluster.present(object).await? {
                self.scope_fence()?;
                cluster.delete(object).await?;
            }
        }
        for object in &change.objects {
            if object.kind == "Deployment" && object.body["spec"]["replicas"].is_null() {
                self.scope_fence()?;
                cluster.hand_off_replicas(object).await?;
            }
            self.scope_fence()?;
            cluster.apply(object).await?;
        }
        Ok(())
    }

    fn eks_record(&self, change: &ModelChange, approved: Option<&ApprovedVersion>) -> EksRecord {
        EksRecord {
            cluster: self.scope.eks.cluster.clone(),
            namespace: change.namespace.clone(),
            deployment: change.deployment.clone(),
            image: self.scope.eks.image.clone(),
            artifact_uri: approved.map(|a| a.artifact_uri.clone()).unwrap_or_default(),
            served_versions: change.served.clone(),
            rendered_sha256: change.rendered_sha256.clone(),
            emitted_to: match self.scope.destination {
                Destination::Files(dir) => Some(dir.display().to_string()),
                Destination::Cluster(_) => None,
            },
            changes: Vec::new(),
        }
    }

    async fn record_rollout(&self, change: &ModelChange) -> Result<()> {
        let now = time::OffsetDateTime::now_utc();
        let key = self.scope.audit.eks_rollout_key(&change.model, now);
        let record = AuditRecord {
            event: "eks-rollout",
            environment: self.scope.inputs.platform.environment.clone(),
            model: change.model.clone(),
            function: format!("{}/{}", change.namespace, change.deployment),
            eks: Some(EksRecord {
                changes: change.to_apply.clone(),
                ..self.eks_record(change, None)
            }),
            deployer: self.deployer.clone(),
            time: rfc3339(now),
            ..AuditRecord::default()
        };
        self.scope_fence()?;
        self.scope.audit.write(&key, &record).await?;
        Ok(())
    }

    async fn record(
        &self,
        change: &ModelChange,
        version: &str,
        approved: Option<&ApprovedVersion>,
        event: EksEvent,
        retire: Option<&RetireArgs>,
    ) -> Result<()> {
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
            artifact_digest: approved
                .and_then(|a| a.approval.artifact_sha256.as_ref().map(ToString::to_string)),
            approval: approved.map(|a| a.approval.clone()),
            reason: retire.map(|r| r.reason.clone()),
            ticket: retire.map(|r| r.ticket.clone()),
            eks: Some(self.eks_record(change, approved)),
            deployer: self.deployer.clone(),
            time: rfc3339(now),
            ..AuditRecord::default()
        };
        self.scope_fence()?;
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
        out.extend(list("to be recorded", &c.unrecorded));
        for what in &c.to_apply {
            out.push_str(&format!("  to apply: {what}\n"));
        }
        if !c.has_changes() {
            out.push_str("  up to date\n");
        }
    }
    out
}

fn report_refusals(changes: &[ModelChange]) {
    for c in changes {
        if let Some(reason) = &c.refused {
            eprintln!("error: {}: {reason}; nothing was changed for it", c.model);
        }
    }
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
                    if r.applied {
                        "applied"
                    } else {
                        "nothing applied"
                    },
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
    report_refusals(changes);
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
