//! `ferry plan`: what `deploy` would do. Read-only: per function, three paginated reads (versions, aliases, audit),
//! and per version about to be created, what its artifacts say it was saved with (`MLmodel`, ...).
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use futures::StreamExt;

use super::{Inputs, print_json};
use crate::approval::ModelApprovals;
use crate::audit::AuditLog;
use crate::aws::Clients;
use crate::catalog::Endpoint;
use crate::catalog::Model;
use crate::cli::{GlobalArgs, ModelFilter, OutputFormat, PlanArgs, RecordArgs};
use crate::function_url::{ObservedUrl, observe_urls};
use crate::observe::{ObservedFunction, observe};
use crate::plan::{
    ModelPlan, Plan, PlanInput, RecordedAt, plan_model, to_text, versions_to_create,
};
use crate::python_env::{MLMODEL, PYTHON_ENV, REQUIREMENTS, SavedEnv, mlmodel_python_version};
use crate::rebuild::FromRecord;
use crate::render::{Templates, render_model};
use crate::routes::ObservedApi;
use crate::spec::FunctionSpec;
use crate::sync::SyncError;
use crate::sync::source::Source;

/// Versions whose artifacts are read at once.
const SAVED_ENV_READS_IN_FLIGHT: usize = 16;
/// The largest `MLmodel`, `python_env.yaml` or `requirements.txt` read (MLflow writes a few KB).
const SAVED_ENV_FILE_MAX: u64 = 1 << 20;

/// Everything the plan is made of, per model, in catalog order.
pub struct Desired<'a> {
    pub model: &'a Model,
    pub approvals: ModelApprovals,
    pub specs: Vec<FunctionSpec>,
    /// `--from-record`: the record the specs come from, and the stages it routes (the registry's are not used).
    pub from_record: Option<FromRecord>,
}

/// The desired state `plan` and `deploy` work from: rendered from the templates, or with `--from-record` the audit
/// log's at a time (which the plan then says).
pub struct DesiredState<'a> {
    pub models: Vec<Desired<'a>>,
    pub from_record: Option<RecordedAt>,
}

impl<'a> DesiredState<'a> {
    pub async fn load(
        inputs: &'a Inputs,
        g: &GlobalArgs,
        filter: &ModelFilter,
        record: &RecordArgs,
        audit: &AuditLog,
    ) -> Result<DesiredState<'a>> {
        if !record.from_record {
            let models = desired(inputs, g, filter).await?;
            return Ok(DesiredState {
                models,
                from_record: None,
            });
        }
        let (models, at) =
            super::rebuild::desired(inputs, filter, audit, record.at.as_deref()).await?;
        Ok(DesiredState {
            models,
            from_record: Some(at),
        })
    }
}

/// Reads approvals and renders every spec; all input errors surface here, before any AWS call.
pub async fn desired<'a>(
    inputs: &'a Inputs,
    g: &GlobalArgs,
    filter: &ModelFilter,
) -> Result<Vec<Desired<'a>>> {
    let mut templates = Templates::new();
    let platform_path = g.platform.clone().unwrap_or_default();
    let mut out = Vec::new();
    for (model, approvals) in inputs.approvals(filter).await? {
        let specs = render_model(
            &mut templates,
            model,
            &approvals,
            &inputs.platform,
            &platform_path,
        )?;
        out.push(Desired {
            model,
            approvals,
            specs,
            from_record: None,
        });
    }
    Ok(out)
}

/// Observes every model's function concurrently.
pub async fn observe_all(
    clients: &Clients,
    audit: &AuditLog,
    desired: &[Desired<'_>],
    inputs: &Inputs,
) -> Result<Vec<ObservedFunction>> {
    let calls = desired.iter().map(|d| async {
        let function = inputs
            .platform
            .function_name(&d.model.function)
            .map_err(anyhow::Error::msg)?;
        observe(&clients.lambda, audit, &d.model.key, function)
            .await
            .with_context(|| format!("observing {}", d.model.key))
    });
    futures::future::try_join_all(calls).await
}

/// Observes every model's function, reads what each version about to be created was saved with, and diffs the
/// desired specs against it all.
pub async fn observe_and_plan(
    clients: &Clients,
    audit: &AuditLog,
    state: &DesiredState<'_>,
    inputs: &Inputs,
    promote: bool,
) -> Result<(Vec<ObservedFunction>, Plan)> {
    let desired = &state.models;
    let observed = observe_all(clients, audit, desired, inputs).await?;
    let saved = read_saved_envs(clients, desired, &observed, inputs).await?;
    let api = match &inputs.platform.http_api_id {
        Some(id) => Some(
            crate::http_api::observe_api(&clients.apigw, id)
                .await
                .with_context(|| format!("observing HTTP API {id} (the platform's http_api_id)"))?,
        ),
        None => None,
    };
    let urls = observe_function_urls(clients, desired, &observed).await?;
    let endpoints = Endpoints {
        api: api.as_ref(),
        urls: &urls,
    };
    let mut plan = make_plan(desired, &observed, &saved, inputs, promote, &endpoints);
    plan.from_record = state.from_record.clone();
    Ok((observed, plan))
}

/// Where the models' aliases are reached over HTTP: the platform's HTTP API as observed, and, per model (catalog
/// order), the function's URL configs when the model is served through function URLs.
pub struct Endpoints<'a> {
    pub api: Option<&'a ObservedApi>,
    pub urls: &'a [Option<BTreeMap<String, ObservedUrl>>],
}

/// The URL configs of each model's function whose `endpoint` is `function_url` (one paginated read each).
async fn observe_function_urls(
    clients: &Clients,
    desired: &[Desired<'_>],
    observed: &[ObservedFunction],
) -> Result<Vec<Option<BTreeMap<String, ObservedUrl>>>> {
    let reads = desired.iter().zip(observed).map(|(d, o)| async move {
        match d.model.endpoint {
            Endpoint::FunctionUrl => observe_urls(&clients.lambda, &o.function_name)
                .await
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{}: {e}", o.function_name)),
            Endpoint::HttpApi => Ok(None),
        }
    });
    futures::future::try_join_all(reads).await
}

/// Per model, what each version the plan would create was saved with, by registry version. The layer's packages
/// are only compared where the platform names them, so `requirements.txt` is only read then.
pub async fn read_saved_envs(
    clients: &Clients,
    desired: &[Desired<'_>],
    observed: &[ObservedFunction],
    inputs: &Inputs,
) -> Result<Vec<BTreeMap<String, SavedEnv>>> {
    let with_requirements = inputs.platform.runtime.is_some();
    let reads: Vec<(usize, &FunctionSpec)> = desired
        .iter()
        .zip(observed)
        .enumerate()
        .flat_map(|(i, (d, o))| versions_to_create(&d.specs, o).map(move |s| (i, s)))
        .collect();
    let read: Vec<_> = futures::stream::iter(reads)
        .map(|(i, spec)| async move {
            let env = read_saved_env(&clients.s3, &spec.artifact.source, with_requirements)
                .await
                .with_context(|| {
                    format!(
                        "{} v{}: reading what the version was saved with",
                        spec.model, spec.version
                    )
                })?;
            anyhow::Ok((i, spec.version.clone(), env))
        })
        .buffer_unordered(SAVED_ENV_READS_IN_FLIGHT)
        .collect()
        .await;
    let mut out = vec![BTreeMap::new(); desired.len()];
    for r in read {
        let (i, version, env) = r?;
        out[i].insert(version, env);
    }
    Ok(out)
}

/// A version's `MLmodel`, its `python_env.yaml` when `MLmodel` names no Python, and its `requirements.txt`.
async fn read_saved_env(
    s3: &aws_sdk_s3::Client,
    source: &str,
    with_requirements: bool,
) -> Result<SavedEnv, SyncError> {
    let source = Source::parse(source)?;
    let read = |file| source.read_text(s3, file, SAVED_ENV_FILE_MAX);
    let mlmodel = read(MLMODEL).await?;
    let python_env = match mlmodel.as_deref().and_then(mlmodel_python_version) {
        Some(_) => None,
        None => read(PYTHON_ENV).await?,
    };
    let requirements = match with_requirements {
        true => read(REQUIREMENTS).await?,
        false => None,
    };
    Ok(SavedEnv::from_files(
        mlmodel.as_deref(),
        python_env.as_deref(),
        requirements.as_deref(),
    ))
}

pub fn make_plan(
    desired: &[Desired<'_>],
    observed: &[ObservedFunction],
    saved: &[BTreeMap<String, SavedEnv>],
    inputs: &Inputs,
    promote: bool,
    endpoints: &Endpoints<'_>,
) -> Plan {
    let api = endpoints.api;
    let (models, warnings): (Vec<ModelPlan>, Vec<_>) = desired
        .iter()
        .zip(observed)
        .zip(saved)
        .zip(endpoints.urls)
        .map(|(((d, o), saved), urls)| {
            plan_model(&PlanInput {
                model: &d.model.key,
                specs: &d.specs,
                approvals: &d.approvals,
                observed: o,
                canary_weight: d.model.canary_weight,
                provisioned_concurrency: &d.model.provisioned_concurrency,
                promote,
                platform_runtime: inputs.platform.runtime.as_ref(),
                saved,
                http_api: api.filter(|_| urls.is_none()),
                function_urls: urls.as_ref(),
                from_record: d.from_record.as_ref(),
            })
        })
        .unzip();
    let plan = Plan::new(models, warnings.into_iter().flatten().collect());
    match api {
        Some(api) => plan.limit_integrations(api),
        None => plan,
    }
}

/// `error:` lines on stderr for what the plan refuses, after the plan itself.
/// `error:` lines for what the plan refuses: each refused version, and each blocked model.
pub fn print_refusals(plan: &Plan) {
    for line in plan.refusals() {
        eprintln!("error: {line}");
    }
    for m in plan.models.iter().filter(|m| m.blocked) {
        eprintln!(
            "error: {}: {} blocks every change to this model; nothing of it is deployed until that is resolved (see the plan)",
            m.model,
            m.blocked_by()
        );
    }
}

pub async fn run(g: &GlobalArgs, args: &PlanArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    let desired = DesiredState::load(&inputs, g, &args.filter, &args.record, &audit).await?;
    let (_, plan) = observe_and_plan(&clients, &audit, &desired, &inputs, args.promote).await?;
    match g.output {
        OutputFormat::Json => print_json(&plan)?,
        OutputFormat::Text => print!("{}", to_text(&plan)),
    }
    print_refusals(&plan);
    Ok(if plan.is_blocked() {
        1
    } else if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}
