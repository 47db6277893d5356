//! What moto cannot show, with `aws-smithy-mocks`: updates still in progress, failed updates, conflicts,
//! precondition failures, paginated answers, throttling, and a smoke invoke that answers a `FunctionError`.
use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::operation::create_alias::CreateAliasOutput;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::operation::list_aliases::{ListAliasesError, ListAliasesOutput};
use aws_sdk_lambda::operation::list_versions_by_function::ListVersionsByFunctionOutput;
use aws_sdk_lambda::operation::publish_version::{PublishVersionError, PublishVersionOutput};
use aws_sdk_lambda::operation::put_runtime_management_config::PutRuntimeManagementConfigOutput;
use aws_sdk_lambda::operation::update_function_configuration::{
    UpdateFunctionConfigurationError, UpdateFunctionConfigurationOutput,
};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::error::{
    PreconditionFailedException, ResourceConflictException, TooManyRequestsException,
};
use aws_sdk_lambda::types::{
    AliasConfiguration, FunctionConfiguration, LastUpdateStatus, RuntimeVersionConfig,
    UpdateRuntimeOn,
};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use ferry::apply::{ApplyContext, ApplyOptions, ModelOutcome, apply_model};
use ferry::approval::Approval;
use ferry::audit::{AuditLog, Deployer};
use ferry::observe::{ObservedFunction, observe};
use ferry::plan::{Action, ModelPlan};
use ferry::platform::Platform;
use ferry::spec::{ArtifactRef, FunctionSpec};

const FUNCTION: &str = "ferry-prod-risk-score";

fn platform() -> Platform {
    let text = r#"{"schema_version": 1, "environment": "prod", "region": "eu-west-1", "artifact_bucket": "b",
        "audit_prefix": "ferry/audit/", "lock_prefix": "ferry/locks/",
        "efs": {"file_system_id": "fs-1", "inference_access_point_arn": "arn:ro", "sync_access_point_arn": "arn:rw",
                "mount_path": "/mnt/models"},
        "network": {"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]},
        "functions": {"risk-score": "ferry-prod-risk-score"}, "sync_function": null, "http_api_id": null}"#;
    Platform::parse(std::path::Path::new("platform.json"), text).unwrap()
}

fn spec() -> FunctionSpec {
    FunctionSpec {
        model: "risk-score".into(),
        registered_model: "risk-score".into(),
        version: "4".into(),
        function_name: FUNCTION.into(),
        alias: "v4".into(),
        description: "risk-score v4".into(),
        memory_mb: 1024,
        timeout_s: 30,
        ephemeral_storage_mb: 512,
        environment: BTreeMap::from([(
            "FERRY_MODEL_PATH".into(),
            "/mnt/models/risk-score/4".into(),
        )]),
        layers: vec![],
        efs_path: "/mnt/models/risk-score/4".into(),
        artifact: ArtifactRef {
            source: "s3://b/m4".into(),
            expected_digest: None,
        },
        approval: Approval {
            approved_by: "qa@example.org".into(),
            approved_at: "2026-11-01T10:00:00Z".into(),
            ticket: "QA-812".into(),
            artifact_sha256: None,
            meaning: None,
        },
        smoke_payload: Some(serde_json::json!({"inputs": [[1, 2, 3, 4]]})),
        spec_hash: String::new(),
    }
    .seal()
}

fn create_plan(spec: &FunctionSpec) -> ModelPlan {
    ModelPlan {
        model: "risk-score".into(),
        function: FUNCTION.into(),
        blocked: false,
        actions: vec![Action::Create {
            alias: spec.alias.clone(),
            version: spec.version.clone(),
            spec_hash: spec.spec_hash.clone(),
            reuse_lambda_version: None,
            from_record: None,
            spec: Box::new(spec.clone()),
        }],
    }
}

/// GetFunction of `$LATEST` (what Ferry polls an update with): its update status and revision.
fn config(status: LastUpdateStatus, revision: &str) -> GetFunctionOutput {
    GetFunctionOutput::builder()
        .configuration(
            FunctionConfiguration::builder()
                .last_update_status(status)
                .last_update_status_reason("EFS mount target not reachable")
                .revision_id(revision)
                .code_sha256("code-sha")
                .build(),
        )
        .build()
}

fn s3_rules() -> Vec<Rule> {
    vec![
        mock!(aws_sdk_s3::Client::put_object).then_output(|| PutObjectOutput::builder().build()),
        mock!(aws_sdk_s3::Client::list_objects_v2)
            .then_output(|| ListObjectsV2Output::builder().build()),
    ]
}

fn context(lambda: aws_sdk_lambda::Client) -> ApplyContext {
    let rules = s3_rules();
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &rules);
    ApplyContext {
        lambda,
        audit: AuditLog::new(s3, &platform()),
        deployer: Deployer::default(),
        environment: "prod".into(),
        options: ApplyOptions {
            poll_interval: Duration::from_millis(1),
            update_timeout: Duration::from_secs(5),
            conflict_attempts: 5,
        },
        fence: ferry::lock::Fence::unlocked(),
        http_api: None,
    }
}

async fn deploy(rules: &[&Rule]) -> ModelOutcome {
    deploy_onto(rules, &ObservedFunction::default()).await
}

async fn deploy_onto(rules: &[&Rule], observed: &ObservedFunction) -> ModelOutcome {
    // Every version is pinned to its runtime version before its alias exists; a test's own rules come first.
    let (runtime, pin) = (runtime_version_found(), pinned_as_asked());
    let lambda = mock_client!(
        aws_sdk_lambda,
        RuleMode::MatchAny,
        rules.iter().copied().chain([&runtime, &pin])
    );
    let spec = spec();
    apply_model(
        &context(lambda),
        &create_plan(&spec),
        observed,
        &BTreeMap::new(),
    )
    .await
}

fn publish_ok() -> Rule {
    let description = spec().version_description();
    mock!(aws_sdk_lambda::Client::publish_version).then_output(move || {
        PublishVersionOutput::builder()
            .version("7")
            .description(description.clone())
            .build()
    })
}

const RUNTIME_VERSION: &str =
    "arn:aws:lambda:eu-west-1::runtime:0cdcfbdefbc5e7d3343f73c2e2dd3cba17d61dea";

/// GetFunction of a version: the runtime version it runs (a publish answer or a listing may not name it).
fn runtime_version_found() -> Rule {
    mock!(aws_sdk_lambda::Client::get_function)
        .match_requests(|r| r.qualifier().is_some())
        .then_output(|| version_detail(None))
}

/// GetFunction of version 7: its runtime version, and its state when given.
fn version_detail(state: Option<aws_sdk_lambda::types::State>) -> GetFunctionOutput {
    GetFunctionOutput::builder()
        .configuration(
            FunctionConfiguration::builder()
                .version("7")
                .set_state(state)
                .runtime_version_config(
                    RuntimeVersionConfig::builder()
                        .runtime_version_arn(RUNTIME_VERSION)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// PutRuntimeManagementConfig answering what it was asked.
fn pinned_as_asked() -> Rule {
    mock!(aws_sdk_lambda::Client::put_runtime_management_config)
        .then_output(|| pin_answer(UpdateRuntimeOn::Manual, Some(RUNTIME_VERSION)))
}

fn pin_answer(mode: UpdateRuntimeOn, arn: Option<&str>) -> PutRuntimeManagementConfigOutput {
    PutRuntimeManagementConfigOutput::builder()
        .update_runtime_on(mode)
        .function_arn(format!(
            "arn:aws:lambda:eu-west-1:123456789012:function:{FUNCTION}:7"
        ))
        .set_runtime_version_arn(arn.map(str::to_string))
        .build()
        .unwrap()
}

fn invoke_ok() -> Rule {
    mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
        InvokeOutput::builder()
            .status_code(200)
            .payload(Blob::new(r#"{"predictions": [0.4]}"#))
            .build()
    })
}

fn alias_ok() -> Rule {
    mock!(aws_sdk_lambda::Client::create_alias).then_output(|| {
        CreateAliasOutput::builder()
            .name("v4")
            .function_version("7")
            .build()
    })
}

fn get_config_successful() -> Rule {
    mock!(aws_sdk_lambda::Client::get_function)
        .match_requests(|r| r.qualifier().is_none())
        .then_output(|| config(LastUpdateStatus::Successful, "r1"))
}

fn update_output(status: LastUpdateStatus) -> UpdateFunctionConfigurationOutput {
    UpdateFunctionConfigurationOutput::builder()
        .last_update_status(status)
        .revision_id("r2")
        .code_sha256("code-sha")
        .build()
}

#[tokio::test]
async fn an_update_in_progress_conflict_is_waited_out_then_the_version_is_published() {
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .sequence()
        .error(|| {
            UpdateFunctionConfigurationError::ResourceConflictException(
                ResourceConflictException::builder()
                    .message("update in progress")
                    .meta(
                        ErrorMetadata::builder()
                            .code("ResourceConflictException")
                            .message("update in progress")
                            .build(),
                    )
                    .build(),
            )
        })
        .times(2)
        .output(|| update_output(LastUpdateStatus::Successful))
        .build();
    let (get, publish, invoke, alias) = (
        get_config_successful(),
        publish_ok(),
        invoke_ok(),
        alias_ok(),
    );
    let outcome = deploy(&[&update, &get, &publish, &invoke, &alias]).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.created[0].lambda_version, "7");
    assert_eq!(update.num_calls(), 3, "two conflicts, then the update");
    assert_eq!(alias.num_calls(), 1);
}

#[tokio::test]
async fn publishing_waits_for_an_update_in_progress_and_uses_its_revision() {
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::InProgress));
    let get = mock!(aws_sdk_lambda::Client::get_function)
        .match_requests(|r| r.qualifier().is_none())
        .sequence()
        .output(|| config(LastUpdateStatus::InProgress, "r2"))
        .times(2)
        .output(|| config(LastUpdateStatus::Successful, "r3"))
        .repeatedly()
        .build();
    let description = spec().version_description();
    let publish = mock!(aws_sdk_lambda::Client::publish_version)
        .match_requests(|req| {
            req.revision_id() == Some("r3") && req.code_sha256() == Some("code-sha")
        })
        .then_output(move || {
            PublishVersionOutput::builder()
                .version("7")
                .description(description.clone())
                .build()
        });
    let (invoke, alias) = (invoke_ok(), alias_ok());
    let outcome = deploy(&[&update, &get, &publish, &invoke, &alias]).await;
    assert_eq!(outcome.error, None);
    assert_eq!(
        publish.num_calls(),
        1,
        "published with the revision of the finished update"
    );
}

#[tokio::test]
async fn a_failed_update_stops_the_model_with_lambdas_reason() {
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::InProgress));
    let get = mock!(aws_sdk_lambda::Client::get_function)
        .match_requests(|r| r.qualifier().is_none())
        .then_output(|| config(LastUpdateStatus::Failed, "r2"));
    let (publish, invoke, alias) = (publish_ok(), invoke_ok(), alias_ok());
    let outcome = deploy(&[&update, &get, &publish, &invoke, &alias]).await;
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            "ferry-prod-risk-score: wait until updated: the update failed: EFS mount target not reachable"
        )
    );
    assert_eq!(publish.num_calls(), 0);
    assert_eq!(alias.num_calls(), 0);
}

#[tokio::test]
async fn the_update_is_conditional_on_the_listed_revision_without_reading_it_again() {
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .match_requests(|req| req.revision_id() == Some("r1"))
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let (get, publish, invoke, alias) = (
        get_config_successful(),
        publish_ok(),
        invoke_ok(),
        alias_ok(),
    );
    let observed = ObservedFunction {
        latest_revision_id: Some("r1".into()),
        ..ObservedFunction::default()
    };
    let outcome = deploy_onto(&[&update, &get, &publish, &invoke, &alias], &observed).await;
    assert_eq!(outcome.error, None);
    assert_eq!(update.num_calls(), 1);
    assert_eq!(
        get.num_calls(),
        0,
        "the listed revision needs no read of $LATEST"
    );
    assert_eq!(alias.num_calls(), 1);
}

#[tokio::test]
async fn an_update_on_a_stale_revision_reads_the_current_one_and_updates_once_more() {
    let stale = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .match_requests(|req| req.revision_id() == Some("r0"))
        .then_error(|| {
            UpdateFunctionConfigurationError::PreconditionFailedException(
                PreconditionFailedException::builder()
                    .message("The Revision Id provided does not match the latest Revision Id")
                    .meta(
                        ErrorMetadata::builder()
                            .code("PreconditionFailedException")
                            .build(),
                    )
                    .build(),
            )
        });
    let current = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .match_requests(|req| req.revision_id() == Some("r1"))
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let publish = mock!(aws_sdk_lambda::Client::publish_version)
        .match_requests(|req| req.revision_id() == Some("r2"))
        .then_output({
            let description = spec().version_description();
            move || {
                PublishVersionOutput::builder()
                    .version("7")
                    .description(description.clone())
                    .build()
            }
        });
    let (get, invoke, alias) = (get_config_successful(), invoke_ok(), alias_ok());
    let observed = ObservedFunction {
        latest_revision_id: Some("r0".into()),
        ..ObservedFunction::default()
    };
    let outcome = deploy_onto(
        &[&stale, &current, &get, &publish, &invoke, &alias],
        &observed,
    )
    .await;
    assert_eq!(outcome.error, None);
    assert_eq!(
        (stale.num_calls(), get.num_calls(), current.num_calls()),
        (1, 1, 1),
        "refused on the stale revision, read the current one, updated on it"
    );
    assert_eq!(
        publish.num_calls(),
        1,
        "published on the update's own revision"
    );
    assert_eq!(alias.num_calls(), 1);
}

fn precondition_failed() -> PublishVersionError {
    PublishVersionError::PreconditionFailedException(
        PreconditionFailedException::builder()
            .message("The Revision Id provided does not match the latest Revision Id")
            .meta(
                ErrorMetadata::builder()
                    .code("PreconditionFailedException")
                    .message("The Revision Id provided does not match")
                    .build(),
            )
            .build(),
    )
}

/// ListVersionsByFunction answering these (version, description, memory) triples, each version otherwise
/// configured as `spec()` sets it.
fn versions_listed(versions: Vec<(&'static str, String, i32)>) -> Rule {
    mock!(aws_sdk_lambda::Client::list_versions_by_function).then_output(move || {
        let s = spec();
        let mut out = ListVersionsByFunctionOutput::builder();
        for (v, d, memory) in &versions {
            out = out.versions(
                FunctionConfiguration::builder()
                    .version(*v)
                    .description(d.clone())
                    .memory_size(*memory)
                    .timeout(s.timeout_s as i32)
                    .ephemeral_storage(
                        aws_sdk_lambda::types::EphemeralStorage::builder()
                            .size(s.ephemeral_storage_mb as i32)
                            .build()
                            .unwrap(),
                    )
                    .environment(
                        aws_sdk_lambda::types::EnvironmentResponse::builder()
                            .set_variables(Some(s.environment.clone().into_iter().collect()))
                            .build(),
                    )
                    .build(),
            );
        }
        out.build()
    })
}

#[tokio::test]
async fn a_precondition_failure_on_publish_creates_no_alias() {
    // Given a publish refused on its revision, and no published version carrying this spec's hash,
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let publish = mock!(aws_sdk_lambda::Client::publish_version).then_error(precondition_failed);
    let listed = versions_listed(vec![
        ("$LATEST", String::new(), 1024),
        ("3", "hotfix by hand".into(), 1024),
    ]);
    let (get, invoke, alias) = (get_config_successful(), invoke_ok(), alias_ok());
    let outcome = deploy(&[&update, &get, &publish, &listed, &invoke, &alias]).await;
    // then the model stops with Lambda's reason, and no alias is created.
    let error = outcome.error.unwrap();
    assert!(
        error.starts_with("ferry-prod-risk-score: PublishVersion: PreconditionFailedException"),
        "{error}"
    );
    assert_eq!(alias.num_calls(), 0);
}

#[tokio::test]
async fn a_publish_whose_answer_was_lost_carries_on_with_the_version_it_published() {
    // Given a publish that succeeded but whose answer was lost, so that the SDK's retry met $LATEST's revision
    // renewed by that very publish (412), and the published version carries this spec's hash,
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let publish = mock!(aws_sdk_lambda::Client::publish_version).then_error(precondition_failed);
    let listed = versions_listed(vec![
        ("$LATEST", String::new(), 1024),
        ("6", "hotfix by hand".into(), 1024),
        ("7", spec().version_description(), 1024),
    ]);
    let (get, invoke, alias) = (get_config_successful(), invoke_ok(), alias_ok());
    let outcome = deploy(&[&update, &get, &publish, &listed, &invoke, &alias]).await;
    // then the deploy carries on with that version: smoke-tested and aliased, not published a second time.
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(publish.num_calls(), 1);
    assert_eq!(invoke.num_calls(), 1);
    assert_eq!(alias.num_calls(), 1);
}

#[tokio::test]
async fn a_lost_publish_answer_is_not_taken_for_a_version_published_by_hand_with_a_copied_description()
 {
    // Given a lost publish answer (412 on the retry), and the only version carrying this spec's hash configured
    // otherwise than the spec says (a description copied by hand),
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let publish = mock!(aws_sdk_lambda::Client::publish_version).then_error(precondition_failed);
    let listed = versions_listed(vec![
        ("$LATEST", String::new(), 1024),
        ("7", spec().version_description(), 2048),
    ]);
    let (get, invoke, alias) = (get_config_successful(), invoke_ok(), alias_ok());
    let outcome = deploy(&[&update, &get, &publish, &listed, &invoke, &alias]).await;
    // then that version is not this deploy's: the model stops with Lambda's reason, and no alias is created.
    let error = outcome.error.unwrap();
    assert!(
        error.starts_with("ferry-prod-risk-score: PublishVersion: PreconditionFailedException"),
        "{error}"
    );
    assert_eq!((invoke.num_calls(), alias.num_calls()), (0, 0));
}

#[tokio::test]
async fn each_new_version_is_pinned_to_its_runtime_version_before_its_alias_exists() {
    // Given a publish whose answer names no runtime version,
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let pin = mock!(aws_sdk_lambda::Client::put_runtime_management_config)
        .match_requests(|req| {
            req.qualifier() == Some("7")
                && req.update_runtime_on() == Some(&UpdateRuntimeOn::Manual)
                && req.runtime_version_arn() == Some(RUNTIME_VERSION)
        })
        .then_output(|| pin_answer(UpdateRuntimeOn::Manual, Some(RUNTIME_VERSION)));
    let (get, publish, invoke, alias, runtime) = (
        get_config_successful(),
        publish_ok(),
        invoke_ok(),
        alias_ok(),
        runtime_version_found(),
    );
    let outcome = deploy(&[&update, &get, &publish, &runtime, &pin, &invoke, &alias]).await;
    // then Ferry asks which runtime version the version runs and pins it there (Manual), then creates the alias.
    assert_eq!(outcome.error, None);
    assert_eq!((runtime.num_calls(), pin.num_calls()), (1, 1));
    assert_eq!(alias.num_calls(), 1);
}

#[tokio::test]
async fn a_new_version_still_pending_is_waited_for_before_its_smoke_invoke() {
    // Given a version Lambda keeps Pending for two reads after its publish,
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let detail = mock!(aws_sdk_lambda::Client::get_function)
        .match_requests(|r| r.qualifier().is_some())
        .sequence()
        .output(|| version_detail(Some(aws_sdk_lambda::types::State::Pending)))
        .times(2)
        .output(|| version_detail(Some(aws_sdk_lambda::types::State::Active)))
        .build();
    let (get, publish, invoke, alias) = (
        get_config_successful(),
        publish_ok(),
        invoke_ok(),
        alias_ok(),
    );
    let outcome = deploy(&[&update, &get, &publish, &detail, &invoke, &alias]).await;
    // then Ferry reads it until it is Active, and only then smoke-invokes it and creates the alias.
    assert_eq!(outcome.error, None);
    assert_eq!(detail.num_calls(), 3, "Pending, Pending, Active");
    assert_eq!((invoke.num_calls(), alias.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_pin_lambda_does_not_confirm_creates_no_alias() {
    // Given a PutRuntimeManagementConfig answered with another mode than asked,
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let pin = mock!(aws_sdk_lambda::Client::put_runtime_management_config)
        .then_output(|| pin_answer(UpdateRuntimeOn::Auto, None));
    let (get, publish, invoke, alias) = (
        get_config_successful(),
        publish_ok(),
        invoke_ok(),
        alias_ok(),
    );
    let outcome = deploy(&[&update, &get, &publish, &pin, &invoke, &alias]).await;
    // then the model stops naming both, before the smoke invoke and with no alias.
    let error = outcome.error.unwrap();
    assert!(
        error.starts_with(&format!(
            "ferry-prod-risk-score: PutRuntimeManagementConfig: asked for Manual (runtime version {RUNTIME_VERSION}), Lambda answered Auto"
        )),
        "{error}"
    );
    assert_eq!((invoke.num_calls(), alias.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_smoke_invoke_answering_a_function_error_creates_no_alias() {
    let update = mock!(aws_sdk_lambda::Client::update_function_configuration)
        .then_output(|| update_output(LastUpdateStatus::Successful));
    let invoke = mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
        InvokeOutput::builder()
            .status_code(200)
            .function_error("Unhandled")
            .payload(Blob::new(r#"{"errorType": "ModuleNotFoundError"}"#))
            .build()
    });
    let (get, publish, alias) = (get_config_successful(), publish_ok(), alias_ok());
    let outcome = deploy(&[&update, &get, &publish, &invoke, &alias]).await;
    let error = outcome.error.unwrap();
    assert!(
        error.contains("smoke invoke: version 7 answered FunctionError Unhandled"),
        "{error}"
    );
    assert!(error.ends_with("no alias created"), "{error}");
    assert_eq!(alias.num_calls(), 0);
}

/// A plan of risk-score made of one stage action.
fn stage_plan(action: Action) -> ModelPlan {
    ModelPlan {
        model: "risk-score".into(),
        function: FUNCTION.into(),
        blocked: false,
        actions: vec![action],
    }
}

/// A function whose version aliases (name, Lambda version) exist, and nothing else.
fn with_aliases(aliases: &[(&str, &str)]) -> ObservedFunction {
    let mut observed = ObservedFunction::default();
    for (name, lv) in aliases {
        observed.aliases.insert(
            name.to_string(),
            ferry::observe::ObservedAlias {
                name: name.to_string(),
                function_version: lv.to_string(),
                additional: BTreeMap::new(),
                description: String::new(),
            },
        );
    }
    observed
}

#[tokio::test]
async fn a_new_stage_alias_gets_the_provisioned_concurrency_the_catalog_asks_for() {
    let alias = mock!(aws_sdk_lambda::Client::create_alias)
        .match_requests(|r| r.name() == Some("production") && r.function_version() == Some("7"))
        .then_output(|| {
            CreateAliasOutput::builder()
                .name("production")
                .function_version("7")
                .build()
        });
    let provisioned = mock!(aws_sdk_lambda::Client::put_provisioned_concurrency_config)
        .match_requests(|r| r.qualifier() == Some("production") && r.provisioned_concurrent_executions() == Some(2))
        .then_output(|| aws_sdk_lambda::operation::put_provisioned_concurrency_config::PutProvisionedConcurrencyConfigOutput::builder().build());
    let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&alias, &provisioned]);
    let plan = stage_plan(Action::StageMove {
        stage: "production".into(),
        from_version: None,
        to_version: "4".into(),
        canary_weight: None,
        provisioned_concurrency: Some(2),
        from_record: None,
    });
    let observed = with_aliases(&[("v4", "7")]);
    let outcome = apply_model(&context(lambda), &plan, &observed, &BTreeMap::new()).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.stage_moves[0].lambda_version, "7");
    assert_eq!((alias.num_calls(), provisioned.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_canary_replayed_from_the_record_creates_the_stage_alias_with_the_recorded_share() {
    // A rebuild of production as its record left it: v3 (Lambda version 5 here) keeps 90%, v4 (7) gets 10%.
    let alias = mock!(aws_sdk_lambda::Client::create_alias)
        .match_requests(|r| {
            let weights = r
                .routing_config()
                .and_then(|c| c.additional_version_weights())
                .cloned()
                .unwrap_or_default();
            r.name() == Some("production")
                && r.function_version() == Some("5")
                && weights == std::collections::HashMap::from([("7".to_string(), 0.1)])
        })
        .then_output(|| {
            CreateAliasOutput::builder()
                .name("production")
                .function_version("5")
                .build()
        });
    let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&alias]);
    let plan = stage_plan(Action::StageMove {
        stage: "production".into(),
        from_version: None,
        to_version: "4".into(),
        canary_weight: Some(0.1),
        provisioned_concurrency: None,
        from_record: Some(ferry::plan::StageReplay {
            record_key: "ferry/audit/prod/risk-score/stages/production/x-lv9.json".into(),
            main_version: Some("3".into()),
        }),
    });
    let observed = with_aliases(&[("v3", "5"), ("v4", "7")]);
    let outcome = apply_model(&context(lambda), &plan, &observed, &BTreeMap::new()).await;
    assert_eq!(outcome.error, None);
    assert_eq!(alias.num_calls(), 1, "one CreateAlias, with its routing");
    assert_eq!(
        (
            outcome.stage_moves[0].lambda_version.as_str(),
            outcome.stage_moves[0].canary_weight
        ),
        ("7", Some(0.1))
    );
}

#[tokio::test]
async fn observing_follows_every_page_and_waits_out_throttling() {
    let s = spec();
    let description = s.version_description();
    let versions_page1 = mock!(aws_sdk_lambda::Client::list_versions_by_function)
        .match_requests(|r| r.marker().is_none())
        .then_output(|| {
            ListVersionsByFunctionOutput::builder()
                .versions(FunctionConfiguration::builder().version("$LATEST").build())
                .versions(
                    FunctionConfiguration::builder()
                        .version("1")
                        .description("hand-made")
                        .build(),
                )
                .next_marker("page-2")
                .build()
        });
    let versions_page2 = mock!(aws_sdk_lambda::Client::list_versions_by_function)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(move || {
            ListVersionsByFunctionOutput::builder()
                .versions(
                    FunctionConfiguration::builder()
                        .version("7")
                        .description(description.clone())
                        .build(),
                )
                .build()
        });
    let throttled = || {
        ListAliasesError::TooManyRequestsException(
            TooManyRequestsException::builder()
                .message("Rate exceeded")
                .meta(
                    ErrorMetadata::builder()
                        .code("TooManyRequestsException")
                        .message("Rate exceeded")
                        .build(),
                )
                .build(),
        )
    };
    let aliases_page1 = mock!(aws_sdk_lambda::Client::list_aliases)
        .match_requests(|r| r.marker().is_none())
        .sequence()
        .error(throttled)
        .times(2)
        .output(|| {
            ListAliasesOutput::builder()
                .aliases(
                    AliasConfiguration::builder()
                        .name("v4")
                        .function_version("7")
                        .build(),
                )
                .next_marker("a2")
                .build()
        })
        .build();
    let aliases_page2 = mock!(aws_sdk_lambda::Client::list_aliases)
        .match_requests(|r| r.marker() == Some("a2"))
        .then_output(|| {
            ListAliasesOutput::builder()
                .aliases(
                    AliasConfiguration::builder()
                        .name("production")
                        .function_version("7")
                        .build(),
                )
                .build()
        });
    let lambda = mock_client!(
        aws_sdk_lambda,
        RuleMode::MatchAny,
        [
            &versions_page1,
            &versions_page2,
            &aliases_page1,
            &aliases_page2
        ],
        // Ferry's attempt count (`ferry::aws::retry_config`), in standard mode: the adaptive mode's client-side rate
        // limiter never let the throttled call go again under aws-smithy-mocks (the test hung), so that mode is left
        // to the stand-in's tests; the first backoff is shortened to keep this one fast.
        |c| c.retry_config(
            aws_sdk_lambda::config::retry::RetryConfig::standard()
                .with_max_attempts(ferry::aws::retry_config().max_attempts())
                .with_initial_backoff(Duration::from_millis(1))
        )
    );
    let ctx = context(lambda.clone());
    let observed = observe(&lambda, &ctx.audit, "risk-score", FUNCTION)
        .await
        .unwrap();
    assert_eq!(
        observed.versions.keys().collect::<Vec<_>>(),
        ["1", "7"],
        "$LATEST is not a published version"
    );
    assert_eq!(
        observed.versions["7"]
            .ferry
            .as_ref()
            .map(|f| f.spec_hash.as_str()),
        Some(s.spec_hash.as_str())
    );
    assert_eq!(
        observed.aliases.keys().collect::<Vec<_>>(),
        ["production", "v4"]
    );
    assert_eq!(
        aliases_page1.num_calls(),
        3,
        "two throttled answers retried under Ferry's retry policy, then the page"
    );
}

// Routes per alias: what moto's API Gateway cannot show.

mod routes {
    use super::*;
    use aws_sdk_apigatewayv2::operation::create_integration::CreateIntegrationOutput;
    use aws_sdk_apigatewayv2::operation::create_route::CreateRouteOutput;
    use aws_sdk_apigatewayv2::operation::get_integrations::GetIntegrationsOutput;
    use aws_sdk_apigatewayv2::operation::get_routes::GetRoutesOutput;
    use aws_sdk_apigatewayv2::types::{Integration, IntegrationType};
    use aws_sdk_lambda::operation::add_permission::AddPermissionError;
    use aws_sdk_lambda::operation::get_policy::GetPolicyOutput;
    use ferry::http_api::{HttpApi, observe_api};
    use ferry::plan::Plan;
    use ferry::routes::{MAX_INTEGRATIONS, RouteKey};

    const ARN: &str = "arn:aws:lambda:eu-west-1:111122223333:function:ferry-prod-risk-score";
    const API: &str = "a1b2c3d4e5";

    fn integrations(from: usize, to: usize) -> Vec<Integration> {
        (from..to)
            .map(|i| {
                Integration::builder()
                    .integration_id(format!("i{i}"))
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_uri(format!("{ARN}-other{i}:live"))
                    .build()
            })
            .collect()
    }

    /// risk-score's plan to give v4 its route.
    fn v4_route_plan() -> ModelPlan {
        ModelPlan {
            model: "risk-score".into(),
            function: FUNCTION.into(),
            blocked: false,
            actions: vec![Action::CreateRoute {
                alias: "v4".into(),
                route_key: RouteKey::new("risk-score", "v4"),
                reuse_integration: None,
            }],
        }
    }

    /// AddPermission's answer when the statement id is taken.
    fn statement_id_taken() -> AddPermissionError {
        AddPermissionError::ResourceConflictException(
            ResourceConflictException::builder()
                .message("The statement id (ferry-route-a1b2c3d4e5) provided already exists.")
                .meta(
                    ErrorMetadata::builder()
                        .code("ResourceConflictException")
                        .build(),
                )
                .build(),
        )
    }

    /// Applies one `CreateRoute` of v4 through the mocked clients.
    async fn create_v4_route(lambda_rules: &[&Rule], apigw_rules: &[&Rule]) -> ModelOutcome {
        let lambda = mock_client!(
            aws_sdk_lambda,
            RuleMode::MatchAny,
            lambda_rules.iter().copied()
        );
        let apigw = mock_client!(
            aws_sdk_apigatewayv2,
            RuleMode::MatchAny,
            apigw_rules.iter().copied()
        );
        let mut ctx = context(lambda.clone());
        ctx.http_api = Some(HttpApi {
            apigw,
            lambda,
            api_id: API.into(),
            authorization: Default::default(),
        });
        let plan = v4_route_plan();
        let observed = ObservedFunction {
            function_arn: Some(ARN.into()),
            ..ObservedFunction::default()
        };
        apply_model(&ctx, &plan, &observed, &BTreeMap::new()).await
    }

    /// An API whose 300 integrations come in two pages: all are counted, so one more route is refused.
    #[tokio::test]
    async fn integrations_listed_over_pages_are_all_counted_and_the_301st_is_refused() {
        let first = mock!(aws_sdk_apigatewayv2::Client::get_integrations)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                GetIntegrationsOutput::builder()
                    .set_items(Some(integrations(0, 200)))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(aws_sdk_apigatewayv2::Client::get_integrations)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                GetIntegrationsOutput::builder()
                    .set_items(Some(integrations(200, 300)))
                    .build()
            });
        let routes = mock!(aws_sdk_apigatewayv2::Client::get_routes)
            .then_output(|| GetRoutesOutput::builder().build());
        let apigw = mock_client!(
            aws_sdk_apigatewayv2,
            RuleMode::MatchAny,
            [&first, &second, &routes]
        );
        let api = observe_api(&apigw, API).await.unwrap();
        assert_eq!(api.integrations.len(), MAX_INTEGRATIONS);
        let plan = Plan::new(vec![v4_route_plan()], vec![]).limit_integrations(&api);
        assert!(!plan.has_changes() && plan.is_blocked());
        assert!(
            plan.refused()
                .unwrap()
                .contains("would take it to 301 integrations (300 now, 1 to create)"),
            "{:?}",
            plan.refused()
        );
    }

    /// A run stopped after adding v4's invoke permission: the next one finds the same permission, and goes on.
    #[tokio::test]
    async fn a_permission_left_by_a_stopped_run_is_recognised_and_the_route_created() {
        let conflict = mock!(aws_sdk_lambda::Client::add_permission).then_error(statement_id_taken);
        let source = format!(
            "arn:aws:execute-api:eu-west-1:111122223333:{API}/*/POST/models/risk-score/v4/invocations"
        );
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Sid": format!("ferry-route-{API}"), "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "lambda:InvokeFunction",
            "Resource": format!("{ARN}:v4"), "Condition": {"ArnLike": {"AWS:SourceArn": source}}}]})
        .to_string();
        let get_policy = mock!(aws_sdk_lambda::Client::get_policy)
            .match_requests(|r| r.qualifier() == Some("v4"))
            .then_output(move || GetPolicyOutput::builder().policy(policy.clone()).build());
        let integration = mock!(aws_sdk_apigatewayv2::Client::create_integration)
            .match_requests(|r| {
                r.integration_uri() == Some(&format!("{ARN}:v4"))
                    && r.description() == Some("ferry: risk-score v4")
            })
            .then_output(|| {
                CreateIntegrationOutput::builder()
                    .integration_id("i9")
                    .build()
            });
        let route = mock!(aws_sdk_apigatewayv2::Client::create_route)
            .match_requests(|r| {
                r.route_key() == Some("POST /models/risk-score/v4/invocations")
                    && r.target() == Some("integrations/i9")
            })
            .then_output(|| CreateRouteOutput::builder().route_id("r9").build());
        let outcome = create_v4_route(&[&conflict, &get_policy], &[&integration, &route]).await;
        assert_eq!(outcome.error, None);
        assert_eq!(
            (
                conflict.num_calls(),
                get_policy.num_calls(),
                integration.num_calls(),
                route.num_calls()
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(outcome.routes_created[0].route_id, "r9");
        assert!(
            outcome.routes_created[0]
                .audit_key
                .contains("/risk-score/routes/v4/")
        );
    }

    /// A permission under Ferry's statement id that lets some other source in is not taken for Ferry's.
    #[tokio::test]
    async fn a_foreign_permission_under_ferrys_statement_id_stops_the_route() {
        let conflict = mock!(aws_sdk_lambda::Client::add_permission).then_error(statement_id_taken);
        let policy = serde_json::json!({"Statement": [{"Sid": format!("ferry-route-{API}"),
            "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "lambda:InvokeFunction",
            "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:eu-west-1:111122223333:a1b2c3d4e5/*"}}}]})
        .to_string();
        let get_policy = mock!(aws_sdk_lambda::Client::get_policy)
            .then_output(move || GetPolicyOutput::builder().policy(policy.clone()).build());
        let outcome = create_v4_route(&[&conflict, &get_policy], &[]).await;
        let error = outcome.error.unwrap();
        assert!(
            error.starts_with("ferry-prod-risk-score: AddPermission: invoke permission ferry-route-a1b2c3d4e5 lets"),
            "{error}"
        );
        assert!(outcome.routes_created.is_empty());
    }
}
