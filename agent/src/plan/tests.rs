//! The plan on its own: desired specs against observed state, no I/O.
use std::collections::BTreeMap;

use super::*;
use crate::approval::Approval;
use crate::observe::{ObservedAlias, ObservedVersion, RecordedDeploy};
use crate::python_env::pinned_packages;
use crate::rebuild::{Canary, NotRebuilt, RecordedRoute};
use crate::spec::ArtifactRef;

/// The runtime the functions of these tests run, and the Python their versions are saved with.
const RUNTIME: &str = "python3.13";
const PYTHON: &str = "3.13.1";

pub(crate) fn spec(version: &str, memory_mb: u32) -> FunctionSpec {
    FunctionSpec {
        model: "risk".into(),
        registered_model: "risk".into(),
        version: version.into(),
        function_name: "f".into(),
        alias: format!("v{version}"),
        description: "d".into(),
        memory_mb,
        timeout_s: 30,
        ephemeral_storage_mb: 512,
        environment: BTreeMap::new(),
        layers: vec![],
        efs_path: format!("/mnt/models/risk/{version}"),
        artifact: ArtifactRef {
            source: "s3://b/p".into(),
            expected_digest: None,
        },
        approval: Approval {
            approved_by: "qa@example.org".into(),
            approved_at: "2026-11-01T10:00:00Z".into(),
            ticket: "QA-1".into(),
            artifact_sha256: None,
            meaning: None,
        },
        smoke_payload: None,
        spec_hash: String::new(),
    }
    .seal()
}

/// Observed state where each given spec is deployed at Lambda version = its registry version, with audit records.
fn deployed(specs: &[&FunctionSpec]) -> ObservedFunction {
    let mut o = ObservedFunction {
        function_name: "f".into(),
        runtime: Some(RUNTIME.into()),
        ..Default::default()
    };
    for s in specs {
        publish(&mut o, &s.version, Some(s));
        alias(&mut o, &s.alias, &s.version);
        record(&mut o, &s.alias, &s.version);
    }
    o
}

/// A deploy record of `alias` at Lambda version `lv`.
pub(crate) fn record(o: &mut ObservedFunction, alias: &str, lv: &str) {
    o.recorded.insert(
        alias.into(),
        RecordedDeploy {
            lambda_version: lv.into(),
            key: format!("audit/{alias}/deploy-lv{lv}.json"),
        },
    );
}

pub(crate) fn publish(o: &mut ObservedFunction, lv: &str, s: Option<&FunctionSpec>) {
    let description = s
        .map(|s| s.version_description())
        .unwrap_or_else(|| "by hand".into());
    let ferry = s.map(|s| crate::spec::PublishedAs {
        spec_hash: ferry_sync::Sha256Hex::parse(&s.spec_hash).unwrap(),
        model: s.model.clone(),
        version: s.version.clone(),
    });
    o.versions.insert(
        lv.into(),
        ObservedVersion {
            number: lv.into(),
            description,
            code_sha256: "c".into(),
            role: None,
            ferry,
            config: s.map(FunctionSpec::published_config).unwrap_or_default(),
        },
    );
}

/// An alias at `lv`; a stage alias as Ferry moves it: its description names the move, and its record is there.
pub(crate) fn alias(o: &mut ObservedFunction, name: &str, lv: &str) {
    let stage = is_version_alias(name).is_none();
    let description = if stage {
        StageDescription {
            model: "risk".into(),
            stage: name.into(),
            version: lv.into(),
            run_id: Some("run-1".into()),
        }
        .render()
    } else {
        String::new()
    };
    o.aliases.insert(
        name.into(),
        ObservedAlias {
            name: name.into(),
            function_version: lv.into(),
            additional: BTreeMap::new(),
            description,
        },
    );
    if stage {
        o.stage_records.insert(
            name.into(),
            crate::audit::RecordedStage {
                lambda_version: lv.into(),
                routing: BTreeMap::new(),
                version: Some(lv.into()),
            },
        );
    }
}

fn run(
    specs: &[FunctionSpec],
    stages: &[(&str, &str)],
    observed: &ObservedFunction,
    canary: Option<f64>,
    promote: bool,
) -> ModelPlan {
    run_with(specs, stages, observed, canary, promote, Served::Alias)
}

/// How the model of a plan is served: by its aliases alone, on the platform's HTTP API, or through function URLs.
#[derive(Clone, Copy)]
enum Served<'a> {
    Alias,
    Api(&'a crate::routes::ObservedApi),
    Urls(&'a BTreeMap<String, ObservedUrl>),
}

/// As `run`, with the model served as `served` says.
fn run_with(
    specs: &[FunctionSpec],
    stages: &[(&str, &str)],
    observed: &ObservedFunction,
    canary: Option<f64>,
    promote: bool,
    served: Served,
) -> ModelPlan {
    let (http_api, function_urls) = match served {
        Served::Alias => (None, None),
        Served::Api(api) => (Some(api), None),
        Served::Urls(urls) => (None, Some(urls)),
    };
    let approvals = ModelApprovals {
        stages: stages
            .iter()
            .map(|(s, v)| (s.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let provisioned = BTreeMap::from([("production".to_string(), 2)]);
    let saved = specs
        .iter()
        .map(|s| (s.version.clone(), saved_on(Some(PYTHON))))
        .collect();
    let (plan, warnings) = plan_model(&PlanInput {
        model: specs.first().map_or("risk", |s| s.model.as_str()),
        specs,
        approvals: &approvals,
        observed,
        canary_weight: canary,
        provisioned_concurrency: &provisioned,
        promote,
        platform_runtime: None,
        saved: &saved,
        http_api,
        function_urls,
        from_record: None,
    });
    assert_eq!(
        warnings,
        [],
        "every version is saved on the function's Python"
    );
    plan
}

/// A version's artifacts as MLflow writes them, saved on `python`.
pub(super) fn saved_on(python: Option<&str>) -> SavedEnv {
    SavedEnv {
        has_mlmodel: true,
        python: python.map(str::to_string),
        pins: None,
    }
}

/// The plan of `specs` on `observed`, each version saved as `saved` says, on a platform with this `runtime`.
fn checked(
    specs: &[FunctionSpec],
    observed: &ObservedFunction,
    saved: &[(&str, SavedEnv)],
    runtime: Option<&Runtime>,
) -> Plan {
    let saved = saved
        .iter()
        .map(|(v, env)| (v.to_string(), env.clone()))
        .collect();
    let (plan, warnings) = plan_model(&PlanInput {
        model: "risk",
        specs,
        approvals: &ModelApprovals::default(),
        observed,
        canary_weight: None,
        provisioned_concurrency: &BTreeMap::new(),
        promote: false,
        platform_runtime: runtime,
        saved: &saved,
        http_api: None,
        function_urls: None,
        from_record: None,
    });
    Plan::new(vec![plan], warnings)
}

fn layer(python: &str) -> Runtime {
    Runtime {
        python: python.into(),
        architecture: "x86_64".into(),
        layer_packages: BTreeMap::from([
            ("mlflow-skinny".into(), "3.17.2".into()),
            ("numpy".into(), "2.4.6".into()),
            ("pandas".into(), "3.1.1".into()),
            ("cloudpickle".into(), "3.1.3".into()),
        ]),
    }
}

fn kinds(plan: &ModelPlan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| {
            let v = serde_json::to_value(a).unwrap();
            format!(
                "{} {}",
                v["action"].as_str().unwrap(),
                v.get("alias")
                    .or(v.get("stage"))
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn a_new_approved_version_is_created_and_deployed_ones_are_unchanged() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let plan = run(&[s1.clone(), s2], &[], &deployed(&[&s1]), None, false);
    assert_eq!(kinds(&plan), ["unchanged v1", "create v2"]);
    assert!(!plan.blocked);
}

#[test]
fn a_catalog_change_is_pending_respec_and_never_applied() {
    let s1 = spec("1", 1024);
    let plan = run(&[spec("1", 2048)], &[], &deployed(&[&s1]), None, false);
    assert_eq!(kinds(&plan), ["pending_respec v1"]);
    assert!(!Plan::new(vec![plan], vec![]).has_changes());
}

#[test]
fn an_alias_repointed_by_hand_is_drift_and_blocks_the_model() {
    let (s1, s2, s3) = (spec("1", 1024), spec("2", 1024), spec("3", 1024));
    let mut o = deployed(&[&s1, &s2]);
    alias(&mut o, "v2", "1"); // v2 now points at v1's Lambda version
    let plan = run(&[s1, s2, s3], &[], &o, None, false);
    assert!(plan.blocked);
    assert!(
        kinds(&plan).contains(&"drift v2".to_string()),
        "{:?}",
        kinds(&plan)
    );
    assert!(kinds(&plan).contains(&"create v3".to_string()));
    assert!(
        !Plan::new(vec![plan], vec![]).has_changes(),
        "drift blocks the create too"
    );
}

#[test]
fn an_alias_on_a_hand_published_version_is_drift() {
    let s1 = spec("1", 1024);
    let mut o = deployed(&[&s1]);
    publish(&mut o, "9", None);
    alias(&mut o, "v1", "9");
    record(&mut o, "v1", "9");
    let plan = run(&[s1], &[], &o, None, false);
    let Action::Drift { reason, .. } = &plan.actions[0] else {
        panic!("{:?}", plan.actions)
    };
    assert!(
        reason.contains("which was not published by Ferry"),
        "{reason}"
    );
}

/// `verify` reads a version alias with the same function (`version_alias_target`): what plan calls drift, verify
/// fails, with the same words.
#[test]
fn every_way_a_version_alias_points_wrong_is_drift_with_the_reason_verify_gives() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    type HandChange = Box<dyn Fn(&mut ObservedFunction)>;
    let cases: Vec<(&str, HandChange)> = vec![
        (
            "a traffic split",
            Box::new(|o| {
                o.aliases
                    .get_mut("v1")
                    .unwrap()
                    .additional
                    .insert("2".into(), 0.1);
            }),
        ),
        ("which does not exist", Box::new(|o| alias(o, "v1", "7"))),
        (
            "which was not published by Ferry",
            Box::new(|o| {
                publish(o, "9", None);
                alias(o, "v1", "9");
            }),
        ),
        (
            "which was published for risk v3",
            Box::new(|o| {
                publish(o, "5", Some(&spec("3", 1024)));
                alias(o, "v1", "5");
            }),
        ),
    ];
    for (why, change) in cases {
        let mut o = deployed(&[&s1, &s2]);
        change(&mut o);
        let plan = run(&[s1.clone(), s2.clone()], &[], &o, None, false);
        let Some(Action::Drift { reason, .. }) = plan
            .actions
            .iter()
            .find(|a| matches!(a, Action::Drift { alias, .. } if alias == "v1"))
        else {
            panic!("{why}: no drift of v1 in {:?}", kinds(&plan))
        };
        assert!(reason.contains(why), "{why}: {reason}");
        let verify = o.version_alias_target(&o.aliases["v1"], "risk", "1");
        assert_eq!(verify.err().as_ref(), Some(reason), "{why}");
    }
}

#[test]
fn an_alias_elsewhere_than_its_audit_record_is_drift() {
    let s1 = spec("1", 1024);
    let mut o = deployed(&[&s1]);
    record(&mut o, "v1", "4");
    let plan = run(&[s1], &[], &o, None, false);
    let Action::Drift { reason, .. } = &plan.actions[0] else {
        panic!()
    };
    assert_eq!(
        reason,
        "points at Lambda version 1, the audit record says 4; left alone"
    );
}

#[test]
fn two_aliases_for_one_version_are_drift() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let mut o = deployed(&[&s1]);
    alias(&mut o, "v2", "1");
    let plan = run(&[s1, s2], &[], &o, None, false);
    assert_eq!(kinds(&plan), ["drift v1", "drift v2"]);
}

#[test]
fn a_withdrawn_approval_is_reported_and_nothing_is_removed() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let plan = run(
        std::slice::from_ref(&s2),
        &[],
        &deployed(&[&s1, &s2]),
        None,
        false,
    );
    assert_eq!(kinds(&plan), ["unchanged v2", "revoked v1"]);
    assert!(!Plan::new(vec![plan], vec![]).has_changes());
}

#[test]
fn an_interrupted_run_is_finished_without_publishing_again() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    // v2 was published (Lambda version 2) but its alias never created.
    let mut o = deployed(&[&s1]);
    publish(&mut o, "2", Some(&s2));
    let plan = run(&[s1.clone(), s2.clone()], &[], &o, None, false);
    assert!(
        matches!(&plan.actions[1], Action::Create { reuse_lambda_version: Some(v), .. } if v == "2")
    );
    // The alias was created but the audit record was not written.
    alias(&mut o, "v2", "2");
    let plan = run(&[s1, s2], &[], &o, None, false);
    assert_eq!(kinds(&plan), ["unchanged v1", "record_audit v2"]);
}

#[test]
fn a_version_published_by_hand_with_a_copied_description_is_never_reused_nor_recorded() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    // Someone published Lambda version 2 with v2's description copied, but at 2048 MB.
    let mut o = deployed(&[&s1]);
    publish(&mut o, "2", Some(&s2));
    o.versions.get_mut("2").unwrap().config.memory_mb = Some(2048);
    let plan = run(&[s1.clone(), s2.clone()], &[], &o, None, false);
    assert!(
        matches!(
            &plan.actions[1],
            Action::Create {
                reuse_lambda_version: None,
                ..
            }
        ),
        "a forged version is not reused: {:?}",
        plan.actions[1]
    );
    // And pointed at by an alias with no record: drift, not an audit repair.
    alias(&mut o, "v2", "2");
    let plan = run(&[s1, s2], &[], &o, None, false);
    let Action::Drift { reason, .. } = &plan.actions[1] else {
        panic!("{:?}", plan.actions)
    };
    assert_eq!(
        reason,
        "points at Lambda version 2, which carries this spec's hash but not its configuration (memory is 2048 MB, \
         the spec says 1024 MB), and has no audit record"
    );
    assert!(plan.blocked);
}

#[test]
fn a_stage_moves_fully_or_as_a_canary_until_promoted() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let mut o = deployed(&[&s1, &s2]);
    alias(&mut o, "production", "1");
    let full = run(
        &[s1.clone(), s2.clone()],
        &[("production", "2")],
        &o,
        None,
        false,
    );
    assert!(
        matches!(full.actions.last(), Some(Action::StageMove { canary_weight: None, from_version: Some(f), .. }) if f == "1")
    );
    assert!(
        matches!(
            full.actions.last(),
            Some(Action::StageMove {
                provisioned_concurrency: Some(2),
                ..
            })
        ),
        "the catalog's provisioned concurrency for production goes with the move"
    );

    let canary = run(
        &[s1.clone(), s2.clone()],
        &[("production", "2")],
        &o,
        Some(0.1),
        false,
    );
    assert!(
        matches!(canary.actions.last(), Some(Action::StageMove { canary_weight: Some(w), .. }) if *w == 0.1)
    );
    // Once the canary is in place (and recorded), it stays until --promote.
    o.aliases
        .get_mut("production")
        .unwrap()
        .additional
        .insert("2".into(), 0.1);
    o.stage_records
        .get_mut("production")
        .unwrap()
        .routing
        .insert("2".into(), 0.1);
    let waiting = run(
        &[s1.clone(), s2.clone()],
        &[("production", "2")],
        &o,
        Some(0.1),
        false,
    );
    assert!(matches!(
        waiting.actions.last(),
        Some(Action::StageUnchanged {
            canary_weight: Some(_),
            ..
        })
    ));
    let promoted = run(&[s1, s2], &[("production", "2")], &o, Some(0.1), true);
    assert!(matches!(
        promoted.actions.last(),
        Some(Action::StageMove {
            canary_weight: None,
            ..
        })
    ));
}

#[test]
fn a_stage_move_whose_record_was_never_written_is_recorded_from_what_the_alias_shows() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let mut o = deployed(&[&s1, &s2]);
    alias(&mut o, "production", "1");
    // A run moved production to v2 (as a canary) and stopped before its record: the record still says v1.
    let live = o.aliases.get_mut("production").unwrap();
    live.additional.insert("2".into(), 0.1);
    live.description = "risk stage production -> v2 run 20261126T081500.123Z-4411-9f3c2a1b".into();
    let plan = run(&[s1, s2], &[("production", "2")], &o, Some(0.1), false);
    assert!(!plan.blocked, "{plan:#?}");
    assert_eq!(
        plan.actions
            .iter()
            .filter(|a| a.is_change())
            .collect::<Vec<_>>(),
        [&Action::RecordStageMove {
            stage: "production".into(),
            version: "2".into(),
            lambda_version: "1".into(),
            routing: BTreeMap::from([("2".to_string(), 0.1)]),
            moved_by_run: Some("20261126T081500.123Z-4411-9f3c2a1b".into()),
        }],
        "the record is written and the canary is left as it is"
    );
}

#[test]
fn a_stage_alias_moved_outside_ferry_is_drift_and_blocks_the_model() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    for (description, points_at) in [
        // By hand, with a description of its own.
        ("moved by the on-call engineer", "2"),
        // Ferry's description, but not where it says: v2 is Lambda version 2, the alias is at 1 with no share.
        ("risk stage production -> v2 run r-9", "1"),
    ] {
        let mut o = deployed(&[&s1, &s2]);
        alias(&mut o, "production", "1");
        let live = o.aliases.get_mut("production").unwrap();
        live.function_version = points_at.into();
        live.description = description.into();
        if points_at == "1" {
            o.stage_records.remove("production");
        }
        let plan = run(
            &[s1.clone(), s2.clone()],
            &[("production", "2")],
            &o,
            None,
            false,
        );
        assert!(plan.blocked, "{description}: {plan:#?}");
        assert!(
            plan.actions
                .iter()
                .any(|a| matches!(a, Action::Drift { alias, reason }
                if alias == "production" && reason.contains("not a move Ferry made"))),
            "{description}: {plan:#?}"
        );
        assert!(
            !plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::StageMove { .. })),
            "a drifted stage is never moved"
        );
    }
}

#[test]
fn a_stage_alias_never_recorded_and_not_ferrys_is_drift_even_when_no_stage_is_configured() {
    let s1 = spec("1", 1024);
    let mut o = deployed(&[&s1]);
    o.aliases.insert(
        "live".into(),
        ObservedAlias {
            name: "live".into(),
            function_version: "1".into(),
            additional: BTreeMap::new(),
            description: String::new(),
        },
    );
    let plan = run(std::slice::from_ref(&s1), &[], &o, None, false);
    assert!(plan.blocked, "{plan:#?}");
}

#[test]
fn a_stage_on_an_unapproved_version_is_drift() {
    let s1 = spec("1", 1024);
    let plan = run(
        std::slice::from_ref(&s1),
        &[("production", "5")],
        &deployed(&[&s1]),
        None,
        false,
    );
    assert!(plan.blocked);
}

#[test]
fn the_text_plan_reads_like_the_style_guide() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let plan = Plan::new(
        vec![run(&[s1.clone(), s2], &[], &deployed(&[&s1]), None, false)],
        vec![],
    );
    let text = to_text(&plan);
    assert!(text.starts_with("risk  (function f)\n  + v2           create  registry version 2, approved by qa@example.org (QA-1), spec "), "{text}");
    assert!(text.contains("  = v1           unchanged\n"), "{text}");
    assert!(text.ends_with("Plan: 1 to create, 0 stage move(s), 0 audit repair(s), 0 drift, 0 revoked, 0 pending re-spec. Nothing will be deleted.\n"));
}

#[test]
fn a_new_version_saved_on_another_python_minor_is_refused_and_blocks_the_model() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let plan = checked(
        &[s1.clone(), s2],
        &deployed(&[&s1]),
        &[("2", saved_on(Some("3.11.7")))],
        None,
    );
    let model = &plan.models[0];
    assert_eq!(kinds(model), ["unchanged v1", "refused v2"]);
    assert!(model.blocked);
    assert!(plan.is_blocked() && !plan.has_changes());
    assert_eq!(
        plan.refusals(),
        [
            "risk v2: saved with Python 3.11.7, but function f runs python3.13; cloudpickled model code crashes \
          across Python minors: re-save the model on Python 3.13 (or deploy it to a python3.11 function)"
        ]
    );
    assert_eq!(
        serde_json::to_value(&model.actions[1]).unwrap(),
        serde_json::json!({"action": "refused", "alias": "v2", "version": "2", "saved_python": "3.11.7",
                           "function_runtime": "python3.13", "reason": plan.refusals()[0]["risk v2: ".len()..]})
    );
    let text = to_text(&plan);
    assert!(
        text.contains(
            "  ! v2           refused saved with Python 3.11.7, but function f runs python3.13; "
        ),
        "{text}"
    );
    assert!(
        text.contains("  (a refused version blocks every change to this model)\n"),
        "{text}"
    );
    assert!(
        text.contains(", 1 refused. Nothing will be deleted."),
        "{text}"
    );
}

#[test]
fn a_patch_release_of_the_same_minor_is_created() {
    let plan = checked(
        &[spec("1", 1024)],
        &deployed(&[]),
        &[("1", saved_on(Some("3.13.0")))],
        None,
    );
    assert_eq!(kinds(&plan.models[0]), ["create v1"]);
    assert_eq!(plan.warnings, []);
}

#[test]
fn a_version_that_does_not_say_which_python_saved_it_is_created_with_a_warning() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let plan = checked(
        &[s1, s2],
        &deployed(&[]),
        &[("1", saved_on(None)), ("2", SavedEnv::default())],
        None,
    );
    assert_eq!(kinds(&plan.models[0]), ["create v1", "create v2"]);
    assert!(plan.has_changes() && !plan.is_blocked());
    let messages: Vec<_> = plan
        .warnings
        .iter()
        .map(|w| {
            assert_eq!(w.kind, WarningKind::PythonUnknown);
            format!("{} {}", w.alias.as_deref().unwrap(), w.message)
        })
        .collect();
    assert_eq!(
        messages,
        [
            "v1 its MLmodel names no flavors.python_function.python_version and no python_env.yaml names one: \
             cannot check it against python3.13; a model saved on another Python minor crashes on its first \
             prediction (make sure it was saved on Python 3.13)",
            "v2 no MLmodel at s3://b/p: cannot check it against python3.13; a model saved on another Python minor \
             crashes on its first prediction (make sure it was saved on Python 3.13)",
        ]
    );
    assert!(
        to_text(&plan).contains("  ! v2           warning no MLmodel at s3://b/p: "),
        "{}",
        to_text(&plan)
    );
}

#[test]
fn a_deployed_version_is_never_checked_again() {
    let s1 = spec("1", 1024);
    let plan = checked(
        std::slice::from_ref(&s1),
        &deployed(&[&s1]),
        &[("1", saved_on(Some("3.11.7")))],
        None,
    );
    assert_eq!(kinds(&plan.models[0]), ["unchanged v1"]);
    assert_eq!(plan.warnings, []);
}

#[test]
fn pins_that_differ_from_the_runtime_layer_are_said_without_refusing() {
    let mut env = saved_on(Some(PYTHON));
    env.pins = Some(pinned_packages(
        "mlflow==3.17.2\ncloudpickle==3.1.3\nnumpy==2.2.6\npandas==3.1.1\n",
    ));
    let plan = checked(
        &[spec("1", 1024)],
        &deployed(&[]),
        &[("1", env)],
        Some(&layer(RUNTIME)),
    );
    assert_eq!(kinds(&plan.models[0]), ["create v1"]);
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["warnings"],
        serde_json::json!([{"model": "risk", "alias": "v1", "version": "1", "kind": "package_versions",
            "message": "saved with numpy 2.2.6, but the runtime layer has numpy 2.4.6: it will run on the layer's \
                        (check its predictions, or re-save it with the layer's versions)",
            "packages": [{"package": "numpy", "saved": "2.2.6", "layer": "2.4.6"}]}])
    );
    assert_eq!(json["summary"]["warnings"], 1);
    let text = to_text(&plan);
    assert!(
        text.contains("  ! v1           warning saved with numpy 2.2.6, but the runtime layer has numpy 2.4.6: "),
        "{text}"
    );
    assert!(
        text.contains(", 1 warning(s). Nothing will be deleted."),
        "{text}"
    );
}

#[test]
fn the_functions_runtime_wins_over_the_platforms_and_the_plan_says_so() {
    let on_312 = layer("python3.12");
    let plan = checked(
        &[spec("1", 1024), spec("2", 1024)],
        &deployed(&[]),
        &[
            ("1", saved_on(Some("3.13.0"))),
            ("2", saved_on(Some("3.12.1"))),
        ],
        Some(&on_312),
    );
    assert_eq!(kinds(&plan.models[0]), ["create v1", "refused v2"]);
    let [w] = &plan.warnings[..] else {
        panic!("{:?}", plan.warnings)
    };
    assert_eq!(
        (w.kind, w.alias.as_deref()),
        (WarningKind::PlatformRuntime, None)
    );
    assert_eq!(
        w.message,
        "the platform's runtime.python is python3.12, but function f runs python3.13: new versions are checked \
         against python3.13, the function's (update the stack's ferry_platform output)"
    );
    assert!(
        to_text(&plan)
            .contains("  ! function     warning the platform's runtime.python is python3.12"),
        "{}",
        to_text(&plan)
    );
}

#[test]
fn a_function_without_a_python_runtime_is_said_and_its_versions_created() {
    let mut o = deployed(&[]);
    o.runtime = None;
    let plan = checked(
        &[spec("1", 1024)],
        &o,
        &[("1", saved_on(Some("3.11.7")))],
        None,
    );
    assert_eq!(kinds(&plan.models[0]), ["create v1"]);
    let kinds: Vec<_> = plan.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(kinds, [WarningKind::RuntimeUnknown]);
    assert_eq!(
        plan.warnings[0].message,
        "function f reports no managed runtime (a container image?): the Python new versions were saved with is \
         not checked"
    );
}

#[test]
fn an_alias_whose_run_stopped_before_its_record_and_whose_approval_was_withdrawn_is_recorded() {
    // Found by the simulation: a run created v5 and stopped before its record; then v5's approval was withdrawn.
    let (s1, s5) = (spec("1", 1024), spec("5", 1024));
    let mut o = deployed(&[&s1, &s5]);
    o.recorded.remove("v5");
    let plan = run(std::slice::from_ref(&s1), &[], &o, None, false);
    assert!(!plan.blocked);
    assert!(plan.actions.contains(&Action::Revoked {
        alias: "v5".into(),
        version: "5".into()
    }));
    assert!(
        plan.actions.contains(&Action::RecordUnapproved {
            alias: "v5".into(),
            version: "5".into(),
            lambda_version: "5".into(),
            spec_hash: s5.spec_hash.clone(),
        }),
        "{plan:#?}"
    );
}

// Routes per alias on the platform's HTTP API.

const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:111122223333:function:f";

/// An API holding, per (alias, integrated alias ARN, Ferry's?) one route with its integration; plus `extra`
/// integrations of other teams' routes.
fn http_api(
    routes: &[(&str, &str, bool)],
    model: &str,
    extra: usize,
) -> crate::routes::ObservedApi {
    use crate::routes::{ObservedIntegration, ObservedRoute, integration_description};
    let mut api = crate::routes::ObservedApi {
        api_id: "a1b2c3d4e5".into(),
        ..Default::default()
    };
    for (i, (alias, target, ferrys)) in routes.iter().enumerate() {
        let id = format!("int{i}");
        api.routes.insert(
            RouteKey::new(model, alias),
            ObservedRoute {
                route_id: format!("route{i}"),
                target: Some(format!("integrations/{id}")),
                authorization_type: Some("AWS_IAM".into()),
            },
        );
        api.integrations.insert(
            id.clone(),
            ObservedIntegration {
                integration_id: id,
                integration_type: "AWS_PROXY".into(),
                uri: format!("{FUNCTION_ARN}:{target}"),
                description: if *ferrys {
                    integration_description(model, alias)
                } else {
                    String::new()
                },
            },
        );
    }
    for i in 0..extra {
        api.integrations.insert(
            format!("other{i}"),
            ObservedIntegration {
                integration_id: format!("other{i}"),
                integration_type: "AWS_PROXY".into(),
                uri: format!("{FUNCTION_ARN}-other:{i}"),
                description: String::new(),
            },
        );
    }
    api
}

/// The plan of one model with an HTTP API, as `make_plan` builds it.
fn with_api(
    specs: &[FunctionSpec],
    stages: &[(&str, &str)],
    observed: &ObservedFunction,
    api: &crate::routes::ObservedApi,
) -> Plan {
    let mut observed = observed.clone();
    observed.function_arn = Some(FUNCTION_ARN.into());
    let plan = run_with(specs, stages, &observed, None, false, Served::Api(api));
    Plan::new(vec![plan], vec![]).limit_integrations(api)
}

#[test]
fn every_served_alias_gets_a_route_after_its_own_actions_and_recorded_routes_are_left_alone() {
    let (s1, s2, s3) = (spec("1", 1024), spec("2", 1024), spec("3", 1024));
    let mut o = deployed(&[&s1, &s2]);
    o.routed.insert("v1".into());
    // v1 has Ferry's recorded route, v2 a route Terraform owns; v3 and the new stage have none yet.
    let api = http_api(&[("v1", "v1", true), ("v2", "v2", false)], "risk", 0);
    let plan = with_api(&[s1, s2, s3], &[("production", "3")], &o, &api);
    assert_eq!(
        kinds(&plan.models[0]),
        [
            "unchanged v1",
            "unchanged v2",
            "create v3",
            "stage_move production",
            "route_unchanged v1",
            "route_unchanged v2",
            "create_route v3",
            "create_route production"
        ]
    );
    let http = plan.http_api.as_ref().unwrap();
    assert_eq!((http.integrations, http.integrations_to_create), (2, 2));
    assert!(plan.has_changes() && !plan.is_blocked());
    let text = to_text(&plan);
    assert!(
        text.contains("  + v3           route   POST /models/risk/v3/invocations -> alias v3, new integration, invoke permission scoped to the route\n"),
        "{text}"
    );
    assert!(
        text.contains("  = v1 v2(terraform) routed (POST /models/risk/<alias>/invocations)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "HTTP API a1b2c3d4e5: 2 integration(s), 2 to create (API Gateway allows 300 per API).\n"
        ),
        "{text}"
    );
    assert!(text.contains(", 2 route(s) to create."), "{text}");
}

#[test]
fn a_version_aliass_route_repointed_by_hand_is_drift_never_repointed() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let mut o = deployed(&[&s1, &s2]);
    o.routed.extend(["v1".to_string(), "v2".to_string()]);
    // v2's integration now invokes v1.
    let api = http_api(&[("v1", "v1", true), ("v2", "v1", true)], "risk", 0);
    let plan = with_api(&[s1, s2, spec("3", 1024)], &[], &o, &api);
    let m = &plan.models[0];
    assert!(m.blocked, "{:?}", kinds(m));
    let Some(Action::Drift { reason, .. }) = m
        .actions
        .iter()
        .find(|a| matches!(a, Action::Drift { alias, .. } if alias == "v2"))
    else {
        panic!("{:?}", kinds(m));
    };
    assert_eq!(
        reason,
        &format!(
            "route POST /models/risk/v2/invocations integrates AWS_PROXY {FUNCTION_ARN}:v1, not {FUNCTION_ARN}:v2; left alone"
        )
    );
    assert!(
        !plan.has_changes(),
        "drift blocks the model's other changes"
    );
}

#[test]
fn a_route_whose_run_stopped_before_its_record_is_recorded_and_a_lone_integration_reused() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let o = deployed(&[&s1, &s2]);
    let mut api = http_api(&[("v1", "v1", true), ("v2", "v2", true)], "risk", 0);
    // v2's route was never created: only its integration is there.
    api.routes.remove(&RouteKey::new("risk", "v2"));
    let plan = with_api(&[s1, s2], &[], &o, &api);
    assert_eq!(
        plan.models[0].actions[2..],
        [
            Action::RecordRoute {
                alias: "v1".into(),
                route_key: RouteKey::new("risk", "v1"),
                route_id: "route0".into(),
                integration_id: "int0".into()
            },
            Action::CreateRoute {
                alias: "v2".into(),
                route_key: RouteKey::new("risk", "v2"),
                reuse_integration: Some("int1".into())
            }
        ]
    );
    let http = plan.http_api.as_ref().unwrap();
    assert_eq!(http.integrations_to_create, 0, "a reused one is not new");
}

#[test]
fn a_deploy_that_would_pass_300_integrations_is_refused_with_the_count_and_the_way_out() {
    let specs: Vec<FunctionSpec> = (1..=3).map(|v| spec(&v.to_string(), 1024)).collect();
    let o = deployed(&[]);
    // 298 integrations of other models and teams: 3 new aliases would make 301.
    let plan = with_api(&specs, &[], &o, &http_api(&[], "risk", 298));
    assert!(plan.is_blocked());
    assert!(!plan.has_changes(), "nothing of a refused plan is applied");
    let refusal = plan.refused().unwrap();
    assert!(
        refusal.starts_with("HTTP API a1b2c3d4e5: this deploy would take it to 301 integrations (298 now, 3 to create), above API Gateway's limit of 300 per API"),
        "{refusal}"
    );
    assert!(
        refusal.contains("second HTTP API") && refusal.contains("function URLs"),
        "{refusal}"
    );
    assert_eq!(plan.refusals(), [refusal.to_string()]);
    assert!(to_text(&plan).contains(&format!("  ! refused: {refusal}\n")));
    // Exactly 300 is allowed, and so is a plan that creates nothing on a full API.
    let at_limit = with_api(&specs, &[], &o, &http_api(&[], "risk", 297));
    assert!(at_limit.refused().is_none() && at_limit.has_changes());
    let mut full = deployed(&specs.iter().collect::<Vec<_>>());
    full.routed.extend(["v1", "v2", "v3"].map(String::from));
    let served = http_api(
        &[("v1", "v1", true), ("v2", "v2", true), ("v3", "v3", true)],
        "risk",
        300,
    );
    let nothing = with_api(&specs, &[], &full, &served);
    assert!(nothing.refused().is_none() && !nothing.is_blocked());
}

#[test]
fn the_longest_model_key_and_stage_name_make_a_route() {
    let model = format!("m{}", "x".repeat(63));
    let stage = "s".repeat(128);
    let mut s1 = spec("1", 1024);
    s1.model = model.clone();
    let plan = with_api(
        &[s1],
        &[(&stage, "1")],
        &deployed(&[]),
        &http_api(&[], &model, 0),
    );
    let routes: Vec<&Action> = plan.models[0]
        .actions
        .iter()
        .filter(|a| matches!(a, Action::CreateRoute { .. }))
        .collect();
    assert_eq!(routes.len(), 2);
    assert_eq!(
        routes[1],
        &Action::CreateRoute {
            alias: stage.clone(),
            route_key: RouteKey::new(&model, &stage),
            reuse_integration: None
        }
    );
    assert_eq!(
        RouteKey::new(&model, &stage).as_str().len(),
        "POST /models///invocations".len() + 64 + 128
    );
}

/// The plan of a model served through function URLs, with `stages` approved, against these URL configs.
fn with_urls(
    specs: &[FunctionSpec],
    stages: &[(&str, &str)],
    observed: &ObservedFunction,
    urls: &BTreeMap<String, ObservedUrl>,
) -> ModelPlan {
    run_with(specs, stages, observed, None, false, Served::Urls(urls))
}

/// A function URL config of `auth` at a URL named for `alias`.
fn url_of(alias: &str, auth: &str) -> ObservedUrl {
    ObservedUrl {
        url: format!("https://{alias}.lambda-url.eu-west-1.on.aws/"),
        auth_type: auth.into(),
    }
}

#[test]
fn a_model_served_through_function_urls_gets_one_per_alias_and_a_public_one_is_drift() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let mut o = deployed(&[&s1]);
    o.url_recorded.insert("v1".into());
    let specs = [s1, s2];
    let production = [("production", "2")];
    let plan = with_urls(
        &specs,
        &production,
        &o,
        &BTreeMap::from([("v1".to_string(), url_of("v1", "AWS_IAM"))]),
    );
    assert_eq!(
        kinds(&plan)[3..],
        [
            "function_url_unchanged v1",
            "create_function_url v2",
            "create_function_url production"
        ]
    );
    let text = to_text(&Plan::new(vec![plan], vec![]));
    assert!(
        text.contains("  + v2           url     function URL of alias v2, AWS_IAM auth\n"),
        "{text}"
    );
    // Someone made v1's URL public: drift, never changed back by Ferry, and the model is blocked.
    let public = with_urls(
        &specs,
        &production,
        &o,
        &BTreeMap::from([("v1".to_string(), url_of("v1", "NONE"))]),
    );
    assert!(public.blocked);
    assert!(
        kinds(&public).contains(&"drift v1".to_string()),
        "{:?}",
        kinds(&public)
    );
}

#[test]
fn a_function_url_whose_run_stopped_before_its_record_is_recorded_and_an_unrecorded_public_one_is_drift()
 {
    // Given v1, v2 and production (on v2) with their URLs, AWS_IAM all; only v2's creation is recorded: the runs
    // that created v1's and production's stopped before their records.
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let mut o = deployed(&[&s1, &s2]);
    alias(&mut o, "production", "2");
    o.url_recorded.insert("v2".into());
    let specs = [s1, s2];
    let production = [("production", "2")];
    let mut urls: BTreeMap<String, _> = ["v1", "v2", "production"]
        .into_iter()
        .map(|a| (a.to_string(), url_of(a, "AWS_IAM")))
        .collect();

    // The plan writes the missing records, from what the URLs show, and creates nothing.
    let plan = with_urls(&specs, &production, &o, &urls);
    assert_eq!(
        plan.actions[3..],
        [
            Action::RecordFunctionUrl {
                alias: "v1".into(),
                url: "https://v1.lambda-url.eu-west-1.on.aws/".into()
            },
            Action::FunctionUrlUnchanged {
                alias: "v2".into(),
                url: "https://v2.lambda-url.eu-west-1.on.aws/".into()
            },
            Action::RecordFunctionUrl {
                alias: "production".into(),
                url: "https://production.lambda-url.eu-west-1.on.aws/".into()
            },
        ]
    );
    assert!(!plan.blocked);
    let plan = Plan::new(vec![plan], vec![]);
    assert!(plan.has_changes());
    assert_eq!(
        (
            plan.summary.record_audit,
            plan.summary.function_urls_create,
            plan.summary.function_urls_unchanged
        ),
        (2, 0, 1)
    );
    let text = to_text(&plan);
    assert!(
        text.contains("  + v1           audit   function URL https://v1.lambda-url.eu-west-1.on.aws/ (AWS_IAM) exists without its audit record; write it\n"),
        "{text}"
    );

    // Once recorded, nothing is left to do.
    o.url_recorded
        .extend(["v1".to_string(), "production".to_string()]);
    let recorded = Plan::new(vec![with_urls(&specs, &production, &o, &urls)], vec![]);
    assert!(!recorded.has_changes(), "{:?}", kinds(&recorded.models[0]));

    // An unrecorded URL with any other auth is drift, never recorded as Ferry's.
    o.url_recorded.remove("v1");
    urls.insert("v1".into(), url_of("v1", "NONE"));
    let public = with_urls(&specs, &production, &o, &urls);
    assert!(public.blocked);
    assert_eq!(
        kinds(&public)[3..],
        [
            "drift v1",
            "function_url_unchanged v2",
            "function_url_unchanged production"
        ]
    );
}

/// What the record says of model risk: each spec from its own deploy record, the stages as given.
fn recorded(specs: &[&FunctionSpec], stages: Vec<RecordedRoute>) -> FromRecord {
    FromRecord {
        specs: specs.iter().map(|s| (*s).clone()).collect(),
        sources: specs
            .iter()
            .map(|s| {
                let source = RecordSource {
                    key: format!("audit/risk/{}/deploy.json", s.alias),
                    spec_hash: s.spec_hash.clone(),
                };
                (s.alias.clone(), source)
            })
            .collect(),
        stages,
        refused: vec![],
    }
}

/// production mid-canary: `weight` on `to`, the rest on `main`.
fn canary(main: &str, to: &str, weight: f64) -> RecordedRoute {
    RecordedRoute {
        stage: "production".into(),
        to_version: to.into(),
        canary: Some(Canary {
            main_version: main.into(),
            weight,
        }),
        key: "audit/risk/stages/production/move.json".into(),
    }
}

/// The plan of a rebuild from `record` on `observed`, with the registry's production on `registry_stage` and the
/// catalog asking for a 50% canary: neither may matter.
fn rebuild(record: &FromRecord, observed: &ObservedFunction, registry_stage: &str) -> ModelPlan {
    let approvals = ModelApprovals {
        stages: BTreeMap::from([("production".to_string(), registry_stage.to_string())]),
        ..Default::default()
    };
    let saved = record
        .specs
        .iter()
        .map(|s| (s.version.clone(), saved_on(Some(PYTHON))))
        .collect();
    let (plan, warnings) = plan_model(&PlanInput {
        model: "risk",
        specs: &record.specs,
        approvals: &approvals,
        observed,
        canary_weight: Some(0.5),
        provisioned_concurrency: &BTreeMap::new(),
        promote: false,
        platform_runtime: None,
        saved: &saved,
        http_api: None,
        function_urls: None,
        from_record: Some(record),
    });
    assert_eq!(warnings, []);
    plan
}

fn empty_function() -> ObservedFunction {
    ObservedFunction {
        function_name: "f".into(),
        runtime: Some(RUNTIME.into()),
        ..Default::default()
    }
}

#[test]
fn a_rebuild_on_an_empty_function_creates_each_recorded_spec_and_replays_the_recorded_canary() {
    // Given the record: v1, and v2 at 2048 MB, production mid-canary with 10% on v2; the registry now says v1.
    let (s1, s2) = (spec("1", 1024), spec("2", 2048));
    let record = recorded(&[&s1, &s2], vec![canary("1", "2", 0.1)]);
    let plan = rebuild(&record, &empty_function(), "1");
    assert_eq!(
        kinds(&plan),
        ["create v1", "create v2", "stage_move production"]
    );
    let Action::Create {
        spec,
        from_record,
        reuse_lambda_version: None,
        ..
    } = &plan.actions[1]
    else {
        panic!("{:?}", plan.actions[1])
    };
    assert_eq!(**spec, s2, "the recorded spec, not a rendered one");
    assert_eq!(from_record.as_ref(), Some(&record.sources["v2"]));
    assert_eq!(
        plan.actions[2],
        Action::StageMove {
            stage: "production".into(),
            from_version: None,
            to_version: "2".into(),
            canary_weight: Some(0.1),
            provisioned_concurrency: None,
            from_record: Some(StageReplay {
                record_key: "audit/risk/stages/production/move.json".into(),
                main_version: Some("1".into()),
            }),
        }
    );
    assert!(!plan.blocked);
    let text = to_text(&Plan {
        from_record: Some(RecordedAt {
            at: "2026-11-26T08:15:00Z".into(),
            audit: "s3://b/ferry/audit/prod/".into(),
        }),
        ..Plan::new(vec![plan], vec![])
    });
    for line in [
        "Desired state from the audit record at 2026-11-26T08:15:00Z (s3://b/ferry/audit/prod/), not from the templates; the registry's stage aliases are not used.\n",
        &format!(
            "  + v2           create  registry version 2, approved by qa@example.org (QA-1), spec {}… exactly as recorded in audit/risk/v2/deploy.json (hash equal to the record's)\n",
            &s2.spec_hash[..12]
        ),
        "  ~ production   rebuild v1 90% + v2 10% (mid-canary: replayed, not completed), as its last recorded move left it (audit/risk/stages/production/move.json)\n",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
}

#[test]
fn a_rebuild_rerun_after_it_succeeded_changes_nothing() {
    let (s1, s2) = (spec("1", 1024), spec("2", 2048));
    let record = recorded(&[&s1, &s2], vec![canary("1", "2", 0.1)]);
    let mut o = deployed(&[&s1, &s2]);
    alias(&mut o, "production", "1");
    let routing = BTreeMap::from([("2".to_string(), 0.1)]);
    o.aliases.get_mut("production").unwrap().additional = routing.clone();
    o.stage_records.get_mut("production").unwrap().routing = routing;
    let plan = rebuild(&record, &o, "1");
    assert_eq!(
        kinds(&plan),
        ["unchanged v1", "unchanged v2", "stage_unchanged production"]
    );
    assert!(!plan.actions.iter().any(Action::is_change));
    // A stage the record left fully on v2 is moved there, whatever the registry says.
    let full = RecordedRoute {
        canary: None,
        ..canary("1", "2", 0.1)
    };
    let plan = rebuild(&recorded(&[&s1, &s2], vec![full]), &o, "1");
    assert!(
        matches!(&plan.actions[2], Action::StageMove { to_version, canary_weight: None, .. } if to_version == "2"),
        "{:?}",
        plan.actions[2]
    );
}

#[test]
fn a_version_not_rebuilt_blocks_its_model_and_an_alias_the_record_does_not_show_is_left_alone() {
    let (s1, s3) = (spec("1", 1024), spec("3", 1024));
    let mut record = recorded(&[&s1], vec![]);
    record.refused.push(NotRebuilt {
        alias: "v2".into(),
        version: "2".into(),
        key: "audit/risk/v2/deploy.json".into(),
        reason: "the approval of version 2 was withdrawn in the registry: rebuilding it would deploy what is no \
                 longer approved"
            .into(),
    });
    // v3 is live on the function, but not in the record at the time rebuilt.
    let plan = rebuild(&record, &deployed(&[&s3]), "1");
    assert_eq!(
        kinds(&plan),
        ["create v1", "refused_rebuild v2", "drift v3"]
    );
    assert!(plan.blocked);
    let plan = Plan::new(vec![plan], vec![]);
    assert_eq!(plan.summary.refused, 1);
    assert_eq!(
        plan.refusals(),
        [
            "risk v2: not rebuilt from audit/risk/v2/deploy.json: the approval of version 2 was withdrawn in the \
          registry: rebuilding it would deploy what is no longer approved"
        ]
    );
}
