//! The desired state from the record on its own: audit records and the registry's answer in, specs and stage
//! routing out, no I/O.
use std::collections::BTreeMap;

use super::*;
use crate::approval::ApprovedVersion;
use crate::history::{Filter, live_at, parse_key};
use crate::plan::tests::spec;

const PREFIX: &str = "ferry/audit/test/";

/// An audit log as the records under one environment's prefix say it, and the bodies read back.
#[derive(Default)]
struct Log {
    events: Vec<KeyedEvent>,
    deploys: BTreeMap<String, RecordedDeployBody>,
    moves: BTreeMap<String, RecordedStage>,
}

impl Log {
    fn event(&mut self, rel: String) -> String {
        let key = format!("{PREFIX}{rel}");
        self.events
            .push(parse_key(&rel, &key).unwrap_or_else(|| panic!("{rel}")));
        key
    }

    /// `spec` deployed at Lambda version `lv` at `time` (`20261101T100000.000Z`), recorded as `apply` records it.
    fn deploy(&mut self, time: &str, spec: &FunctionSpec, lv: &str) -> String {
        let key = self.event(format!("risk/{}/{time}-deploy-lv{lv}.json", spec.alias));
        self.deploys.insert(
            key.clone(),
            RecordedDeployBody {
                lambda_version: lv.into(),
                code_sha256: Some("c".into()),
                spec_hash: Some(spec.spec_hash.clone()),
                artifact_digest: None,
                approval: Some(spec.approval.clone()),
                spec: Some(spec.clone()),
                configuration: None,
                runtime_management: None,
            },
        );
        key
    }

    fn retire(&mut self, time: &str, alias: &str, lv: &str) {
        self.event(format!("risk/{alias}/{time}-retire-lv{lv}.json"));
    }

    /// A stage moved to `version` (Lambda version `to_lv`): all of it, or with `canary` the share on `to_lv` while
    /// `main_lv` keeps the rest.
    fn stage(
        &mut self,
        time: &str,
        version: &str,
        to_lv: &str,
        canary: Option<(&str, f64)>,
    ) -> String {
        let key = self.event(format!("risk/stages/production/{time}-lv{to_lv}.json"));
        let (main, routing) = match canary {
            Some((main_lv, w)) => (main_lv, BTreeMap::from([(to_lv.to_string(), w)])),
            None => (to_lv, BTreeMap::new()),
        };
        self.moves.insert(
            key.clone(),
            RecordedStage {
                lambda_version: main.into(),
                routing,
                version: Some(version.into()),
            },
        );
        key
    }

    /// The model's desired state from the record at `at`, on the platform the specs were rendered for.
    fn at(&self, at: &str, approvals: &ModelApprovals) -> Result<FromRecord, Vec<String>> {
        self.at_on(at, approvals, "f", "/mnt/models")
    }

    fn at_on(
        &self,
        at: &str,
        approvals: &ModelApprovals,
        function: &str,
        mount_path: &str,
    ) -> Result<FromRecord, Vec<String>> {
        let live = live_at(&self.events, at, &Filter::default());
        let none = BTreeMap::new();
        from_record(&ModelRecord {
            model: "risk",
            function,
            mount_path,
            versions: live.versions.get("risk").unwrap_or(&none),
            stages: live.stages.get("risk").unwrap_or(&none),
            deploys: &self.deploys,
            moves: &self.moves,
            approvals,
        })
    }
}

/// The registry approving each spec's version exactly as its spec records it.
fn approving(specs: &[&FunctionSpec]) -> ModelApprovals {
    ModelApprovals {
        approved: specs
            .iter()
            .map(|s| ApprovedVersion {
                version: s.version.clone(),
                approval: s.approval.clone(),
                artifact_uri: s.artifact.source.clone(),
            })
            .collect(),
        ..ModelApprovals::default()
    }
}

const T1: &str = "20261101T100000.000Z";
const T2: &str = "20261102T100000.000Z";
const T3: &str = "20261103T100000.000Z";
const T4: &str = "20261104T100000.000Z";
const T5: &str = "20261105T100000.000Z";

#[test]
fn versions_live_at_the_time_get_their_recorded_specs_exactly_and_retired_ones_are_absent() {
    // Given v1 and v2 deployed (v2 at 2048 MB, a spec no template renders now), production on v2, v1 retired:
    let (s1, s2, s10) = (spec("1", 1024), spec("2", 2048), spec("10", 512));
    let mut log = Log::default();
    let k1 = log.deploy(T1, &s1, "1");
    let k2 = log.deploy(T2, &s2, "2");
    log.deploy(T2, &s10, "3");
    log.stage(T3, "2", "2", None);
    log.retire(T4, "v1", "1");
    let registry = approving(&[&s1, &s2, &s10]);

    // Then before the retirement both are rebuilt, byte for byte, each from its own record, in version order.
    let before = log.at(T3, &registry).unwrap();
    assert_eq!(before.specs, [s1.clone(), s2.clone(), s10.clone()]);
    assert_eq!(
        before.sources["v1"],
        RecordSource {
            key: k1,
            spec_hash: s1.spec_hash.clone()
        }
    );
    assert_eq!(before.sources["v2"].key, k2);
    assert_eq!(
        before
            .stages
            .iter()
            .map(|s| (s.stage.as_str(), s.to_version.as_str(), s.canary.clone()))
            .collect::<Vec<_>>(),
        [("production", "2", None)]
    );
    assert!(before.refused.is_empty());
    // After it, v1 is not.
    let after = log.at(T5, &registry).unwrap();
    assert_eq!(after.specs, [s2, s10]);
    assert!(!after.sources.contains_key("v1"));
    // Before anything was deployed, nothing is.
    assert_eq!(
        log.at("20261001T000000.000Z", &registry).unwrap(),
        FromRecord::default()
    );
}

#[test]
fn a_stage_mid_canary_is_rebuilt_with_its_recorded_weight_between_its_recorded_versions() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let mut log = Log::default();
    log.deploy(T1, &s1, "4");
    log.deploy(T2, &s2, "7");
    log.stage(T2, "1", "4", None);
    // production moved towards v2 as a canary: 10% on Lambda version 7, the rest still on 4 (v1).
    let key = log.stage(T3, "2", "7", Some(("4", 0.1)));
    let rebuilt = log.at(T4, &approving(&[&s1, &s2])).unwrap();
    assert_eq!(
        rebuilt.stages,
        [RecordedRoute {
            stage: "production".into(),
            to_version: "2".into(),
            canary: Some(Canary {
                main_version: "1".into(),
                weight: 0.1
            }),
            key,
        }]
    );
}

#[test]
fn a_record_that_does_not_say_what_it_claims_is_refused_with_its_key_and_why() {
    let s1 = spec("1", 1024);
    type Alter = Box<dyn Fn(&mut RecordedDeployBody)>;
    let cases: Vec<(&str, Alter, &str)> = vec![
        (
            "spec edited after the deploy",
            Box::new(|b| b.spec.as_mut().unwrap().memory_mb = 4096),
            "its spec hashes to",
        ),
        (
            "spec and its own hash edited together",
            Box::new(|b| {
                let s = b.spec.take().unwrap();
                b.spec = Some(
                    FunctionSpec {
                        memory_mb: 4096,
                        ..s
                    }
                    .seal(),
                );
            }),
            "but the record's spec_hash is",
        ),
        (
            "the record's hash removed",
            Box::new(|b| b.spec_hash = None),
            "names no spec_hash",
        ),
        (
            "another version's spec filed under v1",
            Box::new(|b| {
                let s2 = spec("2", 1024);
                b.spec_hash = Some(s2.spec_hash.clone());
                b.spec = Some(s2);
            }),
            "holds the spec of risk v2 (version 2), but is filed under risk v1",
        ),
        (
            "another Lambda version in the body than in the key",
            Box::new(|b| b.lambda_version = "9".into()),
            "it says Lambda version 9, its key says 1",
        ),
        (
            "the record's approval edited",
            Box::new(|b| b.approval.as_mut().unwrap().ticket = "QA-2".into()),
            "its approval is not the one its spec holds",
        ),
        (
            "a record from before records held the spec",
            Box::new(|b| b.spec = None),
            "holds no spec",
        ),
    ];
    for (name, alter, expected) in cases {
        let mut log = Log::default();
        let key = log.deploy(T1, &s1, "1");
        alter(log.deploys.get_mut(&key).unwrap());
        let errors = log.at(T2, &approving(&[&s1])).unwrap_err();
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert!(
            errors[0].starts_with(&format!("{key}: ")) && errors[0].contains(expected),
            "{name}: {:?} should name the key and {expected:?}",
            errors[0]
        );
        let altered = !matches!(name, "a record from before records held the spec");
        assert_eq!(
            errors[0].ends_with("the record was altered"),
            altered,
            "{name}: {}",
            errors[0]
        );
    }
}

#[test]
fn a_version_whose_approval_was_withdrawn_removed_or_changed_is_not_rebuilt_nor_the_stage_it_served()
 {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let mut log = Log::default();
    log.deploy(T1, &s1, "1");
    let k2 = log.deploy(T2, &s2, "2");
    let stage_key = log.stage(T3, "2", "2", None);
    let withdrawn = ModelApprovals {
        revoked: vec!["2".into()],
        ..approving(&[&s1])
    };
    let removed = approving(&[&s1]);
    let mut changed = approving(&[&s1, &s2]);
    changed.approved[1].approval.ticket = "CHG-9".into();
    for (registry, expected) in [
        (
            withdrawn,
            "the approval of version 2 was withdrawn in the registry",
        ),
        (
            removed,
            "the approval of version 2 is no longer in the registry (its ferry.approved tag or release-manifest entry is gone)",
        ),
        (
            changed,
            "the approval of version 2 in the registry is not the one it was deployed under: ticket \"QA-1\" is now \"CHG-9\"",
        ),
    ] {
        let rebuilt = log.at(T4, &registry).unwrap();
        assert_eq!(rebuilt.specs, std::slice::from_ref(&s1), "{expected}");
        assert_eq!(
            rebuilt.refused,
            [
                NotRebuilt {
                    alias: "v2".into(),
                    version: "2".into(),
                    key: k2.clone(),
                    reason: format!(
                        "{expected}: rebuilding it would deploy what is no longer approved"
                    ),
                },
                NotRebuilt {
                    alias: "production".into(),
                    version: "2".into(),
                    key: stage_key.clone(),
                    reason: "it served v2, which is not rebuilt".into(),
                }
            ]
        );
        assert!(rebuilt.stages.is_empty());
    }
}

#[test]
fn a_recorded_spec_for_another_function_or_mount_path_is_refused_not_re_sourced() {
    let s1 = spec("1", 1024);
    let mut log = Log::default();
    let key = log.deploy(T1, &s1, "1");
    let registry = approving(&[&s1]);
    let other_function = log.at_on(T2, &registry, "g", "/mnt/models").unwrap_err();
    assert_eq!(
        other_function,
        [format!(
            "{key}: the recorded spec of risk v1 names function f, but the platform's function for risk is g: a \
             rebuild replays the spec as recorded (a spec for another function is a new spec, with a new hash)"
        )]
    );
    let other_mount = log.at_on(T2, &registry, "f", "/mnt/elsewhere").unwrap_err();
    assert!(
        other_mount[0].contains("loads its model from /mnt/models/risk/1, but the platform mounts model storage at /mnt/elsewhere"),
        "{other_mount:?}"
    );
}

#[test]
fn stage_records_that_disagree_with_the_deploy_records_are_refused() {
    let (s1, s2) = (spec("1", 1024), spec("2", 1024));
    let registry = approving(&[&s1, &s2]);
    // Moved to a version that was retired before the time asked about.
    let mut log = Log::default();
    log.deploy(T1, &s1, "1");
    let key = log.stage(T2, "1", "1", None);
    log.retire(T3, "v1", "1");
    assert_eq!(
        log.at(T4, &registry).unwrap_err(),
        [format!(
            "{key}: stage production was moved to v1, which the record does not show live then (no deploy record, \
             or retired)"
        )]
    );
    // A move naming a Lambda version that is not the one v1 was deployed at.
    let mut log = Log::default();
    log.deploy(T1, &s1, "1");
    log.stage(T2, "1", "5", None);
    assert!(
        log.at(T3, &registry).unwrap_err()[0].contains("the records disagree"),
        "a move to v1 at Lambda version 5 when v1 is at 1"
    );
    // A canary whose main Lambda version no live version alias was at.
    let mut log = Log::default();
    log.deploy(T1, &s2, "2");
    log.stage(T2, "2", "2", Some(("8", 0.25)));
    assert!(
        log.at(T3, &registry).unwrap_err()[0]
            .contains("mid-canary with the rest of its traffic on Lambda version 8"),
    );
}
