//! Apply: walks one model's plan through Lambda, strictly one step after another for that function (a Lambda
//! version is a snapshot of `$LATEST`):
//!
//! update `$LATEST` → wait until the update finished → publish the version (spec hash in its description) →
//! smoke-invoke that version → create alias `v<N>` → write the audit record → move stage aliases.
//!
//! Every step is safe to repeat: a published version carrying the right hash is reused, an alias already right is
//! left alone, an audit record is never overwritten. A failure stops that model only, and names the step.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::operation::update_function_configuration::{
    UpdateFunctionConfigurationError, UpdateFunctionConfigurationOutput,
};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    AliasRoutingConfiguration, Environment, EphemeralStorage, FunctionConfiguration,
    LastUpdateStatus, LogType,
};
use serde::Serialize;

use crate::audit::{AuditLog, AuditRecord, Deployer, RouteEvent, RouteRecord, rfc3339};
use crate::aws::describe_sdk_error;
use crate::function_url::create_url;
use crate::http_api::{HttpApi, RouteTarget};
use crate::lock::Fence;
use crate::observe::{ObservedFunction, VersionState};
use crate::plan::{Action, ModelPlan, StageReplay, is_version_alias};
use crate::routes::FunctionArn;
use crate::runtime_management::{self, RuntimeManagement};
use crate::spec::{
    FunctionSpec, VersionConfig, configuration_differences, parse_version_description,
};
use crate::stage::StageDescription;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Between polls of an update in progress, and the first back-off after a conflict.
    pub poll_interval: Duration,
    /// How long an update may stay `InProgress`.
    pub update_timeout: Duration,
    /// Attempts of a call answered `ResourceConflictException` (another update in progress).
    pub conflict_attempts: u32,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            poll_interval: Duration::from_secs(1),
            update_timeout: Duration::from_secs(300),
            conflict_attempts: 8,
        }
    }
}

pub struct ApplyContext {
    pub lambda: aws_sdk_lambda::Client,
    pub audit: AuditLog,
    pub deployer: Deployer,
    pub environment: String,
    pub options: ApplyOptions,
    /// Checked before every change: a run that lost the deploy lock stops there.
    pub fence: Fence,
    /// The platform's HTTP API, where the plan's routes go; `None` when it has none.
    pub http_api: Option<HttpApi>,
}

impl ApplyContext {
    fn fenced(&self, function: &str, step: &'static str) -> Result<(), StepError> {
        self.fence
            .check()
            .map_err(|e| step_err(function, step, e.to_string()))
    }

    /// What every record of a change to an alias of `plan`'s model says: where, which alias at which Lambda version,
    /// who and when.
    fn alias_record(
        &self,
        plan: &ModelPlan,
        alias: &str,
        lambda_version: &str,
        now: time::OffsetDateTime,
    ) -> AuditRecord {
        AuditRecord {
            environment: self.environment.clone(),
            model: plan.model.clone(),
            function: plan.function.clone(),
            alias: alias.into(),
            lambda_version: lambda_version.into(),
            deployer: self.deployer.clone(),
            time: rfc3339(now),
            ..AuditRecord::default()
        }
    }

    /// Writes an audit record of a change to `function` (through the fence, like the change itself).
    async fn record(
        &self,
        function: &str,
        key: &str,
        record: &AuditRecord,
    ) -> Result<(), StepError> {
        self.fenced(function, "audit record")?;
        self.audit
            .write(key, record)
            .await
            .map_err(|e| step_err(function, "audit record", e.to_string()))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedAlias {
    pub alias: String,
    pub version: String,
    pub lambda_version: String,
    pub spec_hash: String,
    pub audit_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageMoved {
    pub stage: String,
    pub to_version: String,
    pub lambda_version: String,
    pub canary_weight: Option<f64>,
    pub audit_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedRoute {
    pub alias: String,
    pub route_key: String,
    pub route_id: String,
    pub integration_id: String,
    pub audit_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelOutcome {
    pub model: String,
    pub function: String,
    pub created: Vec<CreatedAlias>,
    pub audits_repaired: Vec<String>,
    pub stage_moves: Vec<StageMoved>,
    /// HTTP routes created, with their audit records.
    pub routes_created: Vec<CreatedRoute>,
    /// Function URLs created: alias → URL.
    pub function_urls_created: BTreeMap<String, String>,
    /// The step that failed and why; everything before it is done and stays done.
    pub error: Option<String>,
}

impl ModelOutcome {
    /// A model's outcome before any of its steps: nothing created, moved or failed.
    pub fn nothing_done(plan: &ModelPlan) -> ModelOutcome {
        ModelOutcome {
            model: plan.model.clone(),
            function: plan.function.clone(),
            created: vec![],
            audits_repaired: vec![],
            stage_moves: vec![],
            routes_created: vec![],
            function_urls_created: BTreeMap::new(),
            error: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{function}: {step}: {reason}")]
pub struct StepError {
    pub function: String,
    pub step: &'static str,
    pub reason: String,
}

/// Artifact digests verified on EFS, per registry version, for the audit record.
pub type VerifiedArtifacts = BTreeMap<String, String>;

pub async fn apply_model(
    ctx: &ApplyContext,
    plan: &ModelPlan,
    observed: &ObservedFunction,
    verified: &VerifiedArtifacts,
) -> ModelOutcome {
    let mut outcome = ModelOutcome::nothing_done(plan);
    if plan.blocked {
        outcome.error = Some(format!(
            "{}: nothing was changed for this model (see the plan)",
            plan.blocked_by()
        ));
        return outcome;
    }
    if let Err(e) = apply_actions(ctx, plan, observed, verified, &mut outcome).await {
        outcome.error = Some(e.to_string());
    }
    outcome
}

async fn apply_actions(
    ctx: &ApplyContext,
    plan: &ModelPlan,
    observed: &ObservedFunction,
    verified: &VerifiedArtifacts,
    outcome: &mut ModelOutcome,
) -> Result<(), StepError> {
    // Lambda version behind each version alias, as the stage moves will need it.
    // The first update is conditional on the revision of `$LATEST` as listed; a publish renews it unseen, so an
    // update after one is not (see `publish`).
    let mut latest_revision = observed.latest_revision_id.clone();
    let mut alias_versions: BTreeMap<String, String> = observed
        .aliases
        .iter()
        .map(|(n, a)| (n.clone(), a.function_version.clone()))
        .collect();
    for action in &plan.actions {
        match action {
            Action::Create {
                spec,
                reuse_lambda_version,
                from_record,
                ..
            } => {
                let mut published = match reuse_lambda_version {
                    Some(lv) => Published {
                        lambda_version: lv.clone(),
                        code_sha256: observed.versions.get(lv).map(|v| v.code_sha256.clone()),
                        config: observed.versions.get(lv).map(|v| v.config.clone()),
                    },
                    None => publish(ctx, spec, &mut latest_revision).await?,
                };
                let lv = published.lambda_version.clone();
                let detail = wait_until_active(ctx, &spec.function_name, &lv).await?;
                if let Some(config) = published.config.as_mut()
                    && config.runtime_version_arn.is_none()
                {
                    // A listing (a reused version) names no runtime version; GetFunction does.
                    config.runtime_version_arn = detail.runtime_version_arn;
                }
                // Pinned before the alias exists: a live version's runtime is never changed by Ferry.
                let runtime = pin_runtime(ctx, spec, &published).await?;
                smoke_invoke(ctx, spec, &lv).await?;
                create_alias(ctx, spec, &lv).await?;
                let rebuilt = from_record.as_ref().map(|r| {
                    format!(
                        "rebuilt from the record: the spec of deploy record {}, replayed as recorded",
                        r.key
                    )
                });
                let artifact = verified.get(&spec.version);
                let audit_key =
                    write_deploy_record(ctx, spec, &published, runtime, artifact, rebuilt).await?;
                alias_versions.insert(spec.alias.clone(), lv.clone());
                outcome.created.push(CreatedAlias {
                    alias: spec.alias.clone(),
                    version: spec.version.clone(),
                    lambda_version: lv,
                    spec_hash: spec.spec_hash.clone(),
                    audit_key,
                });
            }
            Action::RecordAudit {
                spec,
                lambda_version,
                ..
            } => {
                let version = observed.versions.get(lambda_version);
                let mut published = Published {
                    lambda_version: lambda_version.clone(),
                    code_sha256: version.map(|v| v.code_sha256.clone()),
                    config: version.map(|v| v.config.clone()),
                };
                // The run that created the alias pinned the runtime first: record what Lambda says it is now.
                complete_runtime_version(ctx, &spec.function_name, &mut published).await?;
                let runtime =
                    runtime_management::read(&ctx.lambda, &spec.function_name, lambda_version)
                        .await
                        .map_err(|e| {
                            step_err(&spec.function_name, "GetRuntimeManagementConfig", e)
                        })?;
                let runtime = Some(runtime);
                let artifact = verified.get(&spec.version);
                write_deploy_record(ctx, spec, &published, runtime, artifact, None).await?;
                outcome.audits_repaired.push(spec.alias.clone());
            }
            Action::StageMove {
                stage,
                to_version,
                canary_weight,
                provisioned_concurrency,
                from_record,
                ..
            } => {
                let step = StageMoveStep {
                    stage,
                    to_version,
                    canary_weight: *canary_weight,
                    provisioned_concurrency: *provisioned_concurrency,
                    from_record: from_record.as_ref(),
                };
                let moved = move_stage(ctx, plan, observed, &alias_versions, &step).await?;
                outcome.stage_moves.push(moved);
            }
            Action::RecordUnapproved {
                alias,
                version,
                lambda_version,
                spec_hash,
            } => {
                let observed_version = observed.versions.get(lambda_version);
                let now = time::OffsetDateTime::now_utc();
                let key = ctx
                    .audit
                    .deploy_key(&plan.model, alias, lambda_version, now);
                let record = AuditRecord {
                    event: "deploy",
                    environment: ctx.environment.clone(),
                    model: plan.model.clone(),
                    function: plan.function.clone(),
                    version: Some(version.clone()),
                    alias: alias.clone(),
                    lambda_version: lambda_version.clone(),
                    code_sha256: observed_version.map(|v| v.code_sha256.clone()),
                    spec_hash: Some(spec_hash.clone()),
                    reason: Some(
                        "recorded after the fact: the run that created this alias stopped before its record, and the version's approval has been withdrawn since; the alias stays live until `ferry retire`"
                            .into(),
                    ),
                    deployer: ctx.deployer.clone(),
                    time: rfc3339(now),
                    ..AuditRecord::default()
                };
                ctx.record(&plan.function, &key, &record).await?;
                outcome.audits_repaired.push(alias.clone());
            }
            Action::RecordStageMove {
                stage,
                version,
                lambda_version,
                routing,
                moved_by_run,
            } => {
                let target = alias_versions
                    .get(&crate::plan::version_alias(version))
                    .cloned()
                    .unwrap_or_else(|| lambda_version.clone());
                let why = format!(
                    "recorded after the move: the alias showed this state without its record (moved by run {}; the record's write was interrupted)",
                    moved_by_run.as_deref().unwrap_or("unknown")
                );
                let state = StageState {
                    stage,
                    version,
                    lambda_version,
                    target: &target,
                    routing: routing.clone(),
                };
                write_stage_record(ctx, plan, &state, Some(why)).await?;
                outcome.audits_repaired.push(stage.clone());
            }
            Action::CreateFunctionUrl { alias } | Action::RecordFunctionUrl { alias, .. } => {
                let lv = alias_versions.get(alias).cloned().unwrap_or_default();
                apply_function_url(ctx, plan, &lv, action, outcome).await?;
            }
            Action::CreateRoute { alias, .. } | Action::RecordRoute { alias, .. } => {
                let lv = alias_versions
                    .get(alias.as_str())
                    .cloned()
                    .unwrap_or_default();
                apply_route(ctx, plan, observed, &lv, action, outcome).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A `CreateRoute` (permission, integration, route, record) or a `RecordRoute` (the record a stopped run did not
/// write) of an alias at Lambda version `lv`.
async fn apply_route(
    ctx: &ApplyContext,
    plan: &ModelPlan,
    observed: &ObservedFunction,
    lv: &str,
    action: &Action,
    outcome: &mut ModelOutcome,
) -> Result<(), StepError> {
    let (api, function) = route_context(ctx, plan, observed)?;
    let (alias, recorded, reuse) = match action {
        Action::CreateRoute {
            alias,
            reuse_integration,
            ..
        } => (alias, None, reuse_integration.as_deref()),
        Action::RecordRoute {
            alias,
            route_id,
            integration_id,
            ..
        } => (alias, Some((route_id, integration_id)), None),
        _ => return Ok(()),
    };
    let target = RouteTarget {
        function: &function,
        model: &plan.model,
        alias,
    };
    if let Some((route_id, integration_id)) = recorded {
        let record = api.record(&target, route_id, integration_id);
        let why = "recorded after the fact: the route serves the alias, but the run that created it stopped before its record";
        write_endpoint_record(
            ctx,
            plan,
            alias,
            lv,
            Endpoint::Route(record),
            Some(why.into()),
        )
        .await?;
        outcome.audits_repaired.push(format!("{alias} route"));
        return Ok(());
    }
    let route = api
        .create_route(&ctx.fence, &target, reuse)
        .await
        .map_err(|e| step_err(&plan.function, e.step, e.reason))?;
    let created = CreatedRoute {
        alias: alias.clone(),
        route_key: route.route_key.clone(),
        route_id: route.route_id.clone(),
        integration_id: route.integration_id.clone(),
        audit_key: String::new(),
    };
    let audit_key =
        write_endpoint_record(ctx, plan, alias, lv, Endpoint::Route(route), None).await?;
    outcome.routes_created.push(CreatedRoute {
        audit_key,
        ..created
    });
    Ok(())
}

/// A `CreateFunctionUrl` (the URL, then its record) or a `RecordFunctionUrl` (the record a stopped run did not write)
/// of an alias at Lambda version `lv`.
async fn apply_function_url(
    ctx: &ApplyContext,
    plan: &ModelPlan,
    lv: &str,
    action: &Action,
    outcome: &mut ModelOutcome,
) -> Result<(), StepError> {
    let (alias, url, repair) = match action {
        Action::CreateFunctionUrl { alias } => {
            let url = create_url(&ctx.lambda, &ctx.fence, &plan.function, alias)
                .await
                .map_err(|e| step_err(&plan.function, "function URL", e))?;
            (alias, url, None)
        }
        Action::RecordFunctionUrl { alias, url } => {
            let why = "recorded after the fact: the alias has its function URL with AWS_IAM auth, but the run that created it stopped before its record";
            (alias, url.clone(), Some(why.to_string()))
        }
        _ => return Ok(()),
    };
    let repaired = repair.is_some();
    write_endpoint_record(ctx, plan, alias, lv, Endpoint::Url(url.clone()), repair).await?;
    if repaired {
        outcome
            .audits_repaired
            .push(format!("{alias} function URL"));
    } else {
        outcome.function_urls_created.insert(alias.clone(), url);
    }
    Ok(())
}

/// The HTTP API and the function's ARN a route action needs.
fn route_context<'c>(
    ctx: &'c ApplyContext,
    plan: &ModelPlan,
    observed: &ObservedFunction,
) -> Result<(&'c HttpApi, FunctionArn), StepError> {
    let api = ctx.http_api.as_ref().ok_or_else(|| {
        step_err(
            &plan.function,
            "route",
            "the platform names no http_api_id".into(),
        )
    })?;
    let function = observed
        .function_arn
        .as_deref()
        .and_then(FunctionArn::parse)
        .ok_or_else(|| {
            step_err(
                &plan.function,
                "route",
                format!(
                    "the function's ARN {:?} is not one Ferry can read",
                    observed.function_arn
                ),
            )
        })?;
    Ok((api, function))
}

/// What an alias was given to be reached over HTTP: its route on the HTTP API, or its function URL.
enum Endpoint {
    Route(RouteRecord),
    Url(String),
}

/// The record of the endpoint created for `alias` (at Lambda version `lambda_version`, for a stage alias its main
/// one); `repair` says why it is written after the fact.
async fn write_endpoint_record(
    ctx: &ApplyContext,
    plan: &ModelPlan,
    alias: &str,
    lambda_version: &str,
    endpoint: Endpoint,
    repair: Option<String>,
) -> Result<String, StepError> {
    let now = time::OffsetDateTime::now_utc();
    let record = AuditRecord {
        version: is_version_alias(alias).map(str::to_string),
        reason: repair,
        ..ctx.alias_record(plan, alias, lambda_version, now)
    };
    let (key, record) = match endpoint {
        Endpoint::Route(route) => (
            ctx.audit
                .route_key(&plan.model, alias, RouteEvent::Create, now),
            AuditRecord {
                event: "route-create",
                route: Some(route),
                ..record
            },
        ),
        Endpoint::Url(url) => (
            ctx.audit
                .url_key(&plan.model, alias, RouteEvent::Create, now),
            AuditRecord {
                event: "function-url-create",
                function_url: Some(url),
                ..record
            },
        ),
    };
    ctx.record(&plan.function, &key, &record).await?;
    Ok(key)
}

fn step_err(function: &str, step: &'static str, reason: String) -> StepError {
    StepError {
        function: function.into(),
        step,
        reason,
    }
}

/// Retries a call while Lambda answers `ResourceConflictException` (an update is still in progress); the SDK's
/// retry policy does not cover that error.
async fn on_conflict_retry<T, E, F, Fut>(
    ctx: &ApplyContext,
    mut call: F,
) -> Result<T, aws_sdk_lambda::error::SdkError<E, aws_smithy_runtime_api::http::Response>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<
            Output = Result<
                T,
                aws_sdk_lambda::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
            >,
        >,
{
    let mut delay = ctx.options.poll_interval;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e)
                if e.code() == Some("ResourceConflictException")
                    && attempt < ctx.options.conflict_attempts =>
            {
                tracing::info!(
                    attempt,
                    "update in progress (ResourceConflictException); waiting {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(20));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A published Lambda version, and the code it snapshots.
struct Published {
    lambda_version: String,
    code_sha256: Option<String>,
    /// Its configuration as Lambda answered it, for the deploy record.
    config: Option<VersionConfig>,
}

/// update `$LATEST` → wait until updated → publish it as a new Lambda version carrying the spec hash.
async fn publish(
    ctx: &ApplyContext,
    spec: &FunctionSpec,
    latest_revision: &mut Option<String>,
) -> Result<Published, StepError> {
    let f = spec.function_name.as_str();
    ctx.fenced(f, "UpdateFunctionConfiguration")?;
    let updated = match update_latest(ctx, spec, latest_revision.clone()).await {
        // `$LATEST` changed since Ferry saw it (Lambda also renews the revision once an update settles): read
        // the current revision and update once more. Publishing below is conditional on the update's own revision.
        Err(e) if e.code() == Some("PreconditionFailedException") => {
            let current = latest_configuration(ctx, f).await?;
            update_latest(ctx, spec, current.revision_id().map(str::to_string)).await
        }
        other => other,
    }
    .map_err(|e| step_err(f, "UpdateFunctionConfiguration", describe_sdk_error(&e)))?;
    let (revision_id, code_sha256) = match updated.last_update_status() {
        Some(LastUpdateStatus::InProgress) => wait_until_updated(ctx, f).await?,
        Some(LastUpdateStatus::Failed) => {
            return Err(step_err(
                f,
                "UpdateFunctionConfiguration",
                failed_reason(updated.last_update_status_reason()),
            ));
        }
        _ => (
            updated.revision_id().map(str::to_string),
            updated.code_sha256().map(str::to_string),
        ),
    };
    ctx.fenced(f, "PublishVersion")?;
    let published = on_conflict_retry(ctx, || {
        ctx.lambda
            .publish_version()
            .function_name(f)
            .description(spec.version_description())
            .set_revision_id(revision_id.clone())
            .set_code_sha256(code_sha256.clone())
            .send()
    })
    .await;
    let published = match published {
        Ok(p) => p,
        // A publish whose answer was lost on the way and that the SDK sent again: the first attempt published the
        // version and so renewed `$LATEST`'s revision, and the retry's precondition fails on it. That version carries
        // this spec's hash: it is this publish's.
        Err(e) if e.code() == Some("PreconditionFailedException") => {
            *latest_revision = None;
            return version_of(ctx, spec)
                .await?
                .ok_or_else(|| step_err(f, "PublishVersion", describe_sdk_error(&e)));
        }
        Err(e) => return Err(step_err(f, "PublishVersion", describe_sdk_error(&e))),
    };
    // Publishing renews `$LATEST`'s revision too, and PublishVersion does not answer the new one (it answers the
    // version's): the revision this update settled at is stale now. The next update of this function goes without
    // a precondition instead of failing on a stale one and paying a read and a second update for it; the publish
    // after it is conditional on that update's own revision, which is what keeps a version Ferry's.
    *latest_revision = None;
    let lv = published.version().unwrap_or_default().to_string();
    // Lambda answers an unchanged $LATEST with the version published from it before: make sure it is this spec.
    match published.description().and_then(parse_version_description) {
        Some(p) if p.spec_hash == spec.spec_hash => Ok(Published {
            lambda_version: lv,
            code_sha256: published.code_sha256().map(str::to_string),
            config: Some(crate::version_config!(&published)),
        }),
        _ => Err(step_err(
            f,
            "PublishVersion",
            format!(
                "Lambda returned version {lv} with description {:?}, not this spec's {}; was $LATEST changed meanwhile?",
                published.description().unwrap_or_default(),
                spec.spec_hash
            ),
        )),
    }
}

/// The newest published version of `spec` (its hash in the description, and the configuration the spec sets: a
/// description can be copied by hand), if any (a paginated read).
async fn version_of(
    ctx: &ApplyContext,
    spec: &FunctionSpec,
) -> Result<Option<Published>, StepError> {
    let function = spec.function_name.as_str();
    let mut found: Option<(u64, Published)> = None;
    let mut pages = ctx
        .lambda
        .list_versions_by_function()
        .function_name(function)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| step_err(function, "ListVersionsByFunction", describe_sdk_error(&e)))?;
        for v in page.versions() {
            let config = crate::version_config!(v);
            let ours = v
                .description()
                .and_then(parse_version_description)
                .is_some_and(|p| p.spec_hash == spec.spec_hash)
                && configuration_differences(spec, &config).is_empty();
            let number = v.version().and_then(|n| n.parse::<u64>().ok());
            if let (true, Some(n)) = (ours, number)
                && found.as_ref().is_none_or(|(m, _)| n > *m)
            {
                let published = Published {
                    lambda_version: n.to_string(),
                    code_sha256: v.code_sha256().map(str::to_string),
                    config: Some(config),
                };
                found = Some((n, published));
            }
        }
    }
    Ok(found.map(|(_, p)| p))
}

/// `UpdateFunctionConfiguration` of `$LATEST` to the spec, conditional on `revision`.
async fn update_latest(
    ctx: &ApplyContext,
    spec: &FunctionSpec,
    revision: Option<String>,
) -> Result<
    UpdateFunctionConfigurationOutput,
    aws_sdk_lambda::error::SdkError<
        UpdateFunctionConfigurationError,
        aws_smithy_runtime_api::http::Response,
    >,
> {
    on_conflict_retry(ctx, || {
        let mut req = ctx
            .lambda
            .update_function_configuration()
            .function_name(&spec.function_name)
            .description(&spec.description)
            .memory_size(spec.memory_mb as i32)
            .timeout(spec.timeout_s as i32)
            .ephemeral_storage(
                EphemeralStorage::builder()
                    .size(spec.ephemeral_storage_mb as i32)
                    .build()
                    .expect("size is set"),
            )
            .environment(
                Environment::builder()
                    .set_variables(Some(spec.environment.clone().into_iter().collect()))
                    .build(),
            )
            .set_revision_id(revision.clone());
        // Layers are left as Terraform set them (the runtime layer) unless the spec names its own.
        if !spec.layers.is_empty() {
            req = req.set_layers(Some(spec.layers.clone()));
        }
        req.send()
    })
    .await
}

fn failed_reason(reason: Option<&str>) -> String {
    format!(
        "the update failed: {}",
        reason.unwrap_or("Lambda gave no reason")
    )
}

/// `$LATEST`'s configuration, read with GetFunction: the same configuration GetFunctionConfiguration answers, but
/// GetFunction has a quota of its own (100 per second) where GetFunctionConfiguration shares the 15 per second of
/// updates, publishes and aliases (Lambda developer guide, "Lambda quotas"): polling an update costs those nothing.
async fn latest_configuration(
    ctx: &ApplyContext,
    function: &str,
) -> Result<FunctionConfiguration, StepError> {
    ctx.lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .map_err(|e| step_err(function, "GetFunction", describe_sdk_error(&e)))?
        .configuration
        .ok_or_else(|| {
            step_err(
                function,
                "GetFunction",
                "Lambda answered no configuration".into(),
            )
        })
}

/// Polls until `LastUpdateStatus` is `Successful`; `Failed` is an error with Lambda's reason. Polls quickly at first
/// (an update often settles within a second) and then every `poll_interval`, as the SDK's `FunctionUpdatedV2` waiter
/// does.
pub async fn wait_until_updated(
    ctx: &ApplyContext,
    function: &str,
) -> Result<(Option<String>, Option<String>), StepError> {
    let deadline = tokio::time::Instant::now() + ctx.options.update_timeout;
    let mut delays = PollDelays::new(ctx);
    loop {
        tokio::time::sleep(delays.next()).await;
        let cfg = latest_configuration(ctx, function).await?;
        match cfg.last_update_status() {
            Some(LastUpdateStatus::InProgress) => {}
            Some(LastUpdateStatus::Failed) => {
                return Err(step_err(
                    function,
                    "wait until updated",
                    failed_reason(cfg.last_update_status_reason()),
                ));
            }
            _ => {
                return Ok((
                    cfg.revision_id().map(str::to_string),
                    cfg.code_sha256().map(str::to_string),
                ));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(step_err(
                function,
                "wait until updated",
                format!("still InProgress after {:?}", ctx.options.update_timeout),
            ));
        }
    }
}

/// The waits between the polls of something often done within a fraction of a second: 100 ms, doubling up to
/// `poll_interval`.
struct PollDelays {
    next: Duration,
    max: Duration,
}

impl PollDelays {
    fn new(ctx: &ApplyContext) -> PollDelays {
        let max = ctx.options.poll_interval;
        PollDelays {
            next: Duration::from_millis(100).min(max),
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(self.max);
        delay
    }
}

/// The error lines of a smoke invoke's log tail (base64, as Lambda returns it with `LogType::Tail`), as
/// `"\n  log: …"` lines for the failure message; empty when there are none or the tail is not readable.
fn smoke_log_errors(tail: Option<&str>) -> String {
    let Some(text) = tail
        .and_then(|t| aws_smithy_types::base64::decode(t).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
    else {
        return String::new();
    };
    text.lines()
        .filter(|l| l.contains("\"ERROR\"") || l.contains("Error") || l.contains("Traceback"))
        .take(5)
        .map(|l| format!("\n  log: {}", l.chars().take(400).collect::<String>()))
        .collect()
}

/// Invokes the new version with the model's smoke payload; a `FunctionError` or a bad status stops the model.
async fn smoke_invoke(ctx: &ApplyContext, spec: &FunctionSpec, lv: &str) -> Result<(), StepError> {
    let f = spec.function_name.as_str();
    let Some(payload) = &spec.smoke_payload else {
        tracing::info!(
            function = f,
            version = lv,
            "no smoke payload in the catalog; smoke test skipped"
        );
        return Ok(());
    };
    let answer = ctx
        .lambda
        .invoke()
        .function_name(f)
        .qualifier(lv)
        .payload(Blob::new(serde_json::to_vec(payload).unwrap_or_default()))
        // The last 4 KB of the run's log come back with the answer: the reason of a failure is in them.
        .log_type(LogType::Tail)
        .send()
        .await
        .map_err(|e| step_err(f, "smoke invoke", describe_sdk_error(&e)))?;
    let body = answer
        .payload()
        .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
        .unwrap_or_default();
    let log = smoke_log_errors(answer.log_result());
    crate::smoke::verdict(&crate::smoke::SmokeAnswer {
        function_error: answer.function_error(),
        status_code: answer.status_code(),
        body: &body,
    })
    .map_err(|why| {
        step_err(
            f,
            "smoke invoke",
            format!("version {lv} {why}; no alias created{log}"),
        )
    })
}

/// Pins a version about to go live to the runtime version it was published on (`Manual`), so that Lambda's runtime
/// updates never change what an approved version runs; Lambda's answer goes into the deploy record. A version with
/// no runtime version in its configuration (a container image) has nothing to pin.
async fn pin_runtime(
    ctx: &ApplyContext,
    spec: &FunctionSpec,
    published: &Published,
) -> Result<Option<RuntimeManagement>, StepError> {
    let f = spec.function_name.as_str();
    let lv = published.lambda_version.clone();
    let config = published.config.as_ref();
    let arn = config.and_then(|c| c.runtime_version_arn.clone());
    let Some(arn) = arn else {
        if config.is_some_and(|c| c.runtime.is_some()) {
            // A managed runtime whose version Lambda does not name: refuse rather than go live unpinned.
            return Err(step_err(
                f,
                "PutRuntimeManagementConfig",
                format!(
                    "Lambda names no runtime version for version {lv}, so its runtime cannot be pinned; no alias created (the next run tries again)"
                ),
            ));
        }
        tracing::info!(
            function = f,
            version = lv,
            "no managed runtime (a container image?); nothing to pin"
        );
        return Ok(None);
    };
    ctx.fenced(f, "PutRuntimeManagementConfig")?;
    let wanted = RuntimeManagement::pinned(&arn);
    let answered = runtime_management::put(&ctx.lambda, f, &lv, &wanted)
        .await
        .map_err(|e| step_err(f, "PutRuntimeManagementConfig", e))?;
    if answered != wanted {
        return Err(step_err(
            f,
            "PutRuntimeManagementConfig",
            format!("asked for {wanted}, Lambda answered {answered}; no alias created"),
        ));
    }
    Ok(Some(answered))
}

/// Waits until a published version is `Active`: Lambda may keep a new version `Pending` for a while (the SDKs'
/// `PublishedVersionActive` waiter; Lambda developer guide, "Lambda function states": "Lambda does not invoke a
/// function during pending state") and refuses to invoke it meanwhile. Polls GetFunction, which has its own quota
/// (100/s) apart from the 15/s the other control-plane calls share, quickly at first. Answers what GetFunction said.
async fn wait_until_active(
    ctx: &ApplyContext,
    function: &str,
    lv: &str,
) -> Result<crate::observe::VersionDetail, StepError> {
    const STEP: &str = "wait until the version is Active";
    let deadline = tokio::time::Instant::now() + ctx.options.update_timeout;
    let mut delays = PollDelays::new(ctx);
    loop {
        let detail = crate::observe::version_detail(&ctx.lambda, function, lv)
            .await
            .map_err(|e| step_err(function, "GetFunction", e))?;
        match detail.state {
            Some(VersionState::Pending) => {}
            Some(VersionState::Failed) => {
                return Err(step_err(
                    function,
                    STEP,
                    format!(
                        "Lambda version {lv} is Failed ({}); no alias created",
                        detail
                            .state_reason_code
                            .as_deref()
                            .unwrap_or("no reason given")
                    ),
                ));
            }
            _ => return Ok(detail),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(step_err(
                function,
                STEP,
                format!(
                    "Lambda version {lv} still Pending after {:?}",
                    ctx.options.update_timeout
                ),
            ));
        }
        tokio::time::sleep(delays.next()).await;
    }
}

/// The runtime version `published` runs, filled into its configuration when that came from a listing (listings
/// name none: Lambda API reference, ListFunctions), for the pin and the deploy record.
async fn complete_runtime_version(
    ctx: &ApplyContext,
    function: &str,
    published: &mut Published,
) -> Result<Option<String>, StepError> {
    let Some(config) = published.config.as_mut() else {
        return Ok(None);
    };
    if config.runtime_version_arn.is_none() {
        config.runtime_version_arn =
            crate::observe::version_detail(&ctx.lambda, function, &published.lambda_version)
                .await
                .map_err(|e| step_err(function, "GetFunction", e))?
                .runtime_version_arn;
    }
    Ok(config.runtime_version_arn.clone())
}

async fn create_alias(ctx: &ApplyContext, spec: &FunctionSpec, lv: &str) -> Result<(), StepError> {
    let f = spec.function_name.as_str();
    ctx.fenced(f, "CreateAlias")?;
    let created = ctx
        .lambda
        .create_alias()
        .function_name(f)
        .name(&spec.alias)
        .function_version(lv)
        .description(format!(
            "{} v{} spec {}",
            spec.model, spec.version, spec.spec_hash
        ))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        // Created by a run that stopped right after: fine if it points where this one would.
        Err(e) if e.code() == Some("ResourceConflictException") => {
            let existing = ctx
                .lambda
                .get_alias()
                .function_name(f)
                .name(&spec.alias)
                .send()
                .await
                .map_err(|e| step_err(f, "GetAlias", describe_sdk_error(&e)))?;
            if existing.function_version() == Some(lv) {
                Ok(())
            } else {
                Err(step_err(
                    f,
                    "CreateAlias",
                    format!(
                        "{} appeared meanwhile at Lambda version {:?}; left alone",
                        spec.alias,
                        existing.function_version()
                    ),
                ))
            }
        }
        Err(e) => Err(step_err(f, "CreateAlias", describe_sdk_error(&e))),
    }
}

async fn write_deploy_record(
    ctx: &ApplyContext,
    spec: &FunctionSpec,
    published: &Published,
    runtime_management: Option<RuntimeManagement>,
    artifact_digest: Option<&String>,
    reason: Option<String>,
) -> Result<String, StepError> {
    let now = time::OffsetDateTime::now_utc();
    let lv = published.lambda_version.as_str();
    let key = ctx.audit.deploy_key(&spec.model, &spec.alias, lv, now);
    let code_sha256 = published.code_sha256.clone();
    let record = AuditRecord {
        event: "deploy",
        environment: ctx.environment.clone(),
        model: spec.model.clone(),
        function: spec.function_name.clone(),
        version: Some(spec.version.clone()),
        alias: spec.alias.clone(),
        lambda_version: lv.into(),
        code_sha256,
        spec_hash: Some(spec.spec_hash.clone()),
        artifact_digest: artifact_digest.cloned().or(spec
            .artifact
            .expected_digest
            .as_ref()
            .map(ToString::to_string)),
        approval: Some(spec.approval.clone()),
        ticket: Some(spec.approval.ticket.clone()),
        spec: Some(Box::new(spec.clone())),
        configuration: published.config.clone(),
        runtime_management,
        reason,
        deployer: ctx.deployer.clone(),
        time: rfc3339(now),
        ..AuditRecord::default()
    };
    ctx.record(&spec.function_name, &key, &record).await?;
    Ok(key)
}

/// One stage alias to point at a version.
struct StageMoveStep<'a> {
    stage: &'a str,
    to_version: &'a str,
    canary_weight: Option<f64>,
    provisioned_concurrency: Option<u32>,
    /// A move replayed from its record (a rebuild): for a canary, the version that keeps the rest of the traffic.
    from_record: Option<&'a StageReplay>,
}

async fn move_stage(
    ctx: &ApplyContext,
    plan: &ModelPlan,
    observed: &ObservedFunction,
    alias_versions: &BTreeMap<String, String>,
    step: &StageMoveStep<'_>,
) -> Result<StageMoved, StepError> {
    let StageMoveStep {
        stage,
        to_version,
        canary_weight,
        provisioned_concurrency,
        from_record,
    } = *step;
    let f = plan.function.as_str();
    let target = alias_versions
        .get(&crate::plan::version_alias(to_version))
        .cloned()
        .ok_or_else(|| {
            step_err(
                f,
                "stage move",
                format!("v{to_version} has no Lambda version; it was not created"),
            )
        })?;
    let current = observed.aliases.get(stage);
    // A canary keeps the old version as the alias's main one and sends a share of traffic to the new one; a canary
    // replayed from its record names the old one.
    let replayed_main = from_record
        .and_then(|r| r.main_version.as_ref())
        .map(|v| {
            alias_versions
                .get(&crate::plan::version_alias(v))
                .cloned()
                .ok_or_else(|| {
                    step_err(
                        f,
                        "stage move",
                        format!("v{v} has no Lambda version; it was not created"),
                    )
                })
        })
        .transpose()?;
    let old_main = replayed_main.or_else(|| current.map(|c| c.function_version.clone()));
    let (main, routing) = match (canary_weight, old_main) {
        (Some(w), Some(old)) => {
            check_same_role(observed, f, &old, &target)?;
            (old, HashMap::from([(target.clone(), w)]))
        }
        _ => (target.clone(), HashMap::new()),
    };
    let routing_config = AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(routing.clone()))
        .build();
    let description = StageDescription {
        model: plan.model.clone(),
        stage: stage.into(),
        version: to_version.into(),
        run_id: ctx.deployer.run_id.as_ref().map(|r| r.to_string()),
    }
    .render();
    // The alias moves first, then its record: a crash in between leaves an alias whose description names this
    // move, which the next plan records (see `plan::audit_stage_aliases`).
    ctx.fenced(f, "stage move")?;
    if current.is_some() {
        on_conflict_retry(ctx, || {
            ctx.lambda
                .update_alias()
                .function_name(f)
                .name(stage)
                .function_version(&main)
                .description(&description)
                .routing_config(routing_config.clone())
                .send()
        })
        .await
        .map_err(|e| step_err(f, "UpdateAlias", describe_sdk_error(&e)))?;
    } else {
        let created = ctx
            .lambda
            .create_alias()
            .function_name(f)
            .name(stage)
            .function_version(&main)
            .description(&description)
            .set_routing_config((!routing.is_empty()).then(|| routing_config.clone()))
            .send()
            .await;
        match created {
            Ok(_) => {}
            // A retried CreateAlias whose first answer was lost: fine when the alias is the one this run wrote.
            Err(e) if e.code() == Some("ResourceConflictException") => {
                let existing = ctx
                    .lambda
                    .get_alias()
                    .function_name(f)
                    .name(stage)
                    .send()
                    .await
                    .map_err(|e| step_err(f, "GetAlias", describe_sdk_error(&e)))?;
                if existing.function_version() != Some(main.as_str())
                    || existing.description() != Some(description.as_str())
                {
                    return Err(step_err(
                        f,
                        "CreateAlias",
                        format!(
                            "stage alias {stage} appeared meanwhile at Lambda version {:?}; left alone",
                            existing.function_version()
                        ),
                    ));
                }
            }
            Err(e) => return Err(step_err(f, "CreateAlias", describe_sdk_error(&e))),
        }
    }
    let key = write_stage_record(
        ctx,
        plan,
        &StageState {
            stage,
            version: to_version,
            lambda_version: &main,
            target: &target,
            routing: routing.into_iter().collect(),
        },
        from_record.map(|r| {
            format!(
                "rebuilt from the record: replays the routing stage-move record {} left the stage with",
                r.record_key
            )
        }),
    )
    .await?;
    if let Some(count) = provisioned_concurrency {
        set_provisioned_concurrency(ctx, f, stage, count).await?;
    }
    Ok(StageMoved {
        stage: stage.into(),
        to_version: to_version.into(),
        lambda_version: target,
        canary_weight,
        audit_key: key,
    })
}

/// Where a stage alias was left: what its stage-move record says.
struct StageState<'a> {
    stage: &'a str,
    version: &'a str,
    /// The alias's main Lambda version.
    lambda_version: &'a str,
    /// The Lambda version of `v<version>` (the main one, or the canary's).
    target: &'a str,
    routing: BTreeMap<String, f64>,
}

/// The stage-move record of `state`; `reason` says why, for a record written after the fact or by a rebuild.
async fn write_stage_record(
    ctx: &ApplyContext,
    plan: &ModelPlan,
    state: &StageState<'_>,
    reason: Option<String>,
) -> Result<String, StepError> {
    let f = plan.function.as_str();
    let now = time::OffsetDateTime::now_utc();
    let key = ctx
        .audit
        .stage_key(&plan.model, state.stage, state.target, now);
    let record = AuditRecord {
        event: "stage-move",
        version: Some(state.version.into()),
        routing: (!state.routing.is_empty()).then(|| state.routing.clone()),
        reason,
        ..ctx.alias_record(plan, state.stage, state.lambda_version, now)
    };
    ctx.record(f, &key, &record).await?;
    Ok(key)
}

/// Provisioned concurrency on a stage alias (never on a version alias: they serve on demand).
async fn set_provisioned_concurrency(
    ctx: &ApplyContext,
    function: &str,
    stage: &str,
    count: u32,
) -> Result<(), StepError> {
    ctx.fenced(function, "PutProvisionedConcurrencyConfig")?;
    on_conflict_retry(ctx, || {
        ctx.lambda
            .put_provisioned_concurrency_config()
            .function_name(function)
            .qualifier(stage)
            .provisioned_concurrent_executions(count as i32)
            .send()
    })
    .await
    .map(|_| ())
    .map_err(|e| {
        step_err(
            function,
            "PutProvisionedConcurrencyConfig",
            describe_sdk_error(&e),
        )
    })
}

/// Lambda splits an alias's traffic only between versions with the same execution role.
fn check_same_role(
    observed: &ObservedFunction,
    f: &str,
    a: &str,
    b: &str,
) -> Result<(), StepError> {
    let role = |v: &str| observed.versions.get(v).and_then(|x| x.role.clone());
    match (role(a), role(b)) {
        (Some(x), Some(y)) if x != y => Err(step_err(
            f,
            "stage move",
            format!(
                "versions {a} and {b} have different execution roles ({x} vs {y}); Lambda cannot split traffic between them"
            ),
        )),
        _ => Ok(()),
    }
}
