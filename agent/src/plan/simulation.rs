//! The planner against random histories: approvals, revocations, catalog changes, registry stage moves, retirements
//! and deploys that crash after any step, on a simulated function that applies each action in the order
//! `apply` does (publish → alias → record; stage alias → stage record). After every event:
//!
//! - no version alias ever points anywhere but where it was created, unless `ferry retire` removed it;
//! - a deploy that is not blocked and not interrupted leaves every alias audited and nothing left to do.
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::tests::{record, spec};
use super::*;
use crate::approval::{ApprovedVersion, ModelApprovals};
use crate::audit::RecordedStage;
use crate::observe::{ObservedAlias, ObservedVersion};
use crate::spec::PublishedAs;
use crate::stage::StageDescription;

#[derive(Debug, Clone)]
enum Event {
    Approve(u8),
    Revoke(u8),
    /// The catalog changes memory: every spec rendered from now on has another hash.
    Retemplate,
    StageTo(u8),
    Retire(u8),
    /// A deploy that stops after `crash_after` steps (`None`: runs to the end), with a canary or not.
    Deploy {
        crash_after: Option<u8>,
        canary: bool,
        promote: bool,
    },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (1u8..6).prop_map(Event::Approve),
        1 => (1u8..6).prop_map(Event::Revoke),
        1 => Just(Event::Retemplate),
        2 => (1u8..6).prop_map(Event::StageTo),
        1 => (1u8..6).prop_map(Event::Retire),
        4 => (proptest::option::of(0u8..8), any::<bool>(), any::<bool>())
            .prop_map(|(crash_after, canary, promote)| Event::Deploy { crash_after, canary, promote }),
    ]
}

/// The world: the registry, the catalog, and the function with its audit log.
#[derive(Default)]
struct World {
    approved: std::collections::BTreeSet<u8>,
    stage: Option<u8>,
    memory_mb: u32,
    function: ObservedFunction,
    /// Version alias → the Lambda version it was created at (removed by retire).
    created: BTreeMap<String, String>,
    next_lv: u32,
}

/// One simulated run: counts its steps and stops at `crash_after`.
struct Run {
    steps: u8,
    crash_after: Option<u8>,
}

impl Run {
    /// Whether the next step happens (false once the run was killed).
    fn step(&mut self) -> bool {
        if self.crash_after.is_some_and(|c| self.steps >= c) {
            return false;
        }
        self.steps += 1;
        true
    }
}

impl World {
    fn specs(&self) -> Vec<FunctionSpec> {
        self.approved
            .iter()
            .map(|n| spec(&n.to_string(), self.memory_mb))
            .collect()
    }

    fn plan(&self, canary: bool, promote: bool) -> ModelPlan {
        let specs = self.specs();
        let approvals = ModelApprovals {
            approved: specs
                .iter()
                .map(|s| ApprovedVersion {
                    version: s.version.clone(),
                    approval: s.approval.clone(),
                    artifact_uri: "s3://b/p".into(),
                })
                .collect(),
            revoked: vec![],
            stages: self
                .stage
                .map(|n| BTreeMap::from([("production".to_string(), n.to_string())]))
                .unwrap_or_default(),
        };
        let saved = specs
            .iter()
            .map(|s| (s.version.clone(), super::tests::saved_on(Some("3.13.1"))))
            .collect();
        plan_model(&PlanInput {
            model: "risk",
            specs: &specs,
            approvals: &approvals,
            observed: &self.function,
            canary_weight: canary.then_some(0.25),
            provisioned_concurrency: &BTreeMap::new(),
            promote,
            platform_runtime: None,
            saved: &saved,
            http_api: None,
            function_urls: None,
            from_record: None,
        })
        .0
    }

    /// Applies the plan as `apply` does, one step after another, until the run is killed.
    fn apply(&mut self, plan: &ModelPlan, run: &mut Run) {
        if plan.blocked {
            return;
        }
        for action in &plan.actions {
            match action {
                Action::Create {
                    alias,
                    spec,
                    reuse_lambda_version,
                    ..
                } => {
                    let lv = match reuse_lambda_version {
                        Some(lv) => lv.clone(),
                        None => {
                            if !run.step() {
                                return;
                            }
                            self.next_lv += 1;
                            let lv = self.next_lv.to_string();
                            self.function.versions.insert(
                                lv.clone(),
                                ObservedVersion {
                                    number: lv.clone(),
                                    description: spec.version_description(),
                                    code_sha256: "c".into(),
                                    role: None,
                                    ferry: Some(PublishedAs {
                                        spec_hash: ferry_sync::Sha256Hex::parse(&spec.spec_hash)
                                            .unwrap(),
                                        model: spec.model.clone(),
                                        version: spec.version.clone(),
                                    }),
                                    config: spec.published_config(),
                                },
                            );
                            lv
                        }
                    };
                    if !run.step() {
                        return;
                    }
                    self.function.aliases.insert(
                        alias.clone(),
                        ObservedAlias {
                            name: alias.clone(),
                            function_version: lv.clone(),
                            additional: BTreeMap::new(),
                            description: String::new(),
                        },
                    );
                    self.created.insert(alias.clone(), lv.clone());
                    if !run.step() {
                        return;
                    }
                    record(&mut self.function, alias, &lv);
                }
                Action::RecordAudit {
                    alias,
                    lambda_version,
                    ..
                }
                | Action::RecordUnapproved {
                    alias,
                    lambda_version,
                    ..
                } => {
                    if !run.step() {
                        return;
                    }
                    record(&mut self.function, alias, lambda_version);
                }
                Action::StageMove {
                    stage,
                    to_version,
                    canary_weight,
                    ..
                } => {
                    let target = self.function.aliases[&format!("v{to_version}")]
                        .function_version
                        .clone();
                    let current = self.function.aliases.get(stage).cloned();
                    let (main, routing) = match (canary_weight, current) {
                        (Some(w), Some(cur)) => (
                            cur.function_version.clone(),
                            BTreeMap::from([(target.clone(), *w)]),
                        ),
                        _ => (target.clone(), BTreeMap::new()),
                    };
                    if !run.step() {
                        return;
                    }
                    self.function.aliases.insert(
                        stage.clone(),
                        ObservedAlias {
                            name: stage.clone(),
                            function_version: main.clone(),
                            additional: routing.clone(),
                            description: StageDescription {
                                model: "risk".into(),
                                stage: stage.clone(),
                                version: to_version.clone(),
                                run_id: Some("run".into()),
                            }
                            .render(),
                        },
                    );
                    if !run.step() {
                        return;
                    }
                    self.function.stage_records.insert(
                        stage.clone(),
                        RecordedStage {
                            lambda_version: main,
                            routing,
                            version: Some(to_version.clone()),
                        },
                    );
                }
                Action::RecordStageMove {
                    stage,
                    version,
                    lambda_version,
                    routing,
                    ..
                } => {
                    if !run.step() {
                        return;
                    }
                    self.function.stage_records.insert(
                        stage.clone(),
                        RecordedStage {
                            lambda_version: lambda_version.clone(),
                            routing: routing.clone(),
                            version: Some(version.clone()),
                        },
                    );
                }
                _ => {}
            }
        }
    }

    /// `ferry retire`: refused while a stage alias sends the version traffic; deletes the alias, records it.
    fn retire(&mut self, n: u8) {
        let alias = format!("v{n}");
        let Some(target) = self
            .function
            .aliases
            .get(&alias)
            .map(|a| a.function_version.clone())
        else {
            return;
        };
        let staged = self.function.aliases.values().any(|a| {
            a.name != alias && (a.function_version == target || a.additional.contains_key(&target))
        });
        if staged {
            return;
        }
        self.function.aliases.remove(&alias);
        self.function.recorded.remove(&alias);
        self.created.remove(&alias);
    }

    fn check_frozen(&self) -> Result<(), TestCaseError> {
        for (alias, lv) in &self.created {
            let live = &self.function.aliases[alias].function_version;
            prop_assert_eq!(live, lv, "{} was repointed", alias);
        }
        for a in self.function.aliases.values() {
            if is_version_alias(&a.name).is_some() {
                prop_assert!(
                    self.created.contains_key(&a.name),
                    "{} exists but was never created by a deploy",
                    a.name
                );
            }
        }
        Ok(())
    }

    fn check_audited(&self) -> Result<(), TestCaseError> {
        for a in self.function.aliases.values() {
            if is_version_alias(&a.name).is_some() {
                prop_assert_eq!(
                    self.function.recorded_version(&a.name),
                    Some(a.function_version.as_str()),
                    "{} has no audit record of where it points",
                    a.name
                );
            } else {
                let record = self.function.stage_records.get(&a.name);
                prop_assert!(
                    record.is_some_and(|r| a.matches(r)),
                    "stage {} at {} with {:?} is not what its record says: {:?}",
                    a.name,
                    a.function_version,
                    a.additional,
                    record
                );
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_histories_never_repoint_a_version_alias_and_leave_every_change_audited(
        events in proptest::collection::vec(event(), 1..40)
    ) {
        let mut world = World {
            memory_mb: 1024,
            function: ObservedFunction {
                function_name: "f".into(),
                runtime: Some("python3.13".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        for e in events {
            match e {
                Event::Approve(n) => { world.approved.insert(n); }
                Event::Revoke(n) => { world.approved.remove(&n); }
                Event::Retemplate => world.memory_mb += 64,
                Event::StageTo(n) => world.stage = Some(n),
                Event::Retire(n) => world.retire(n),
                Event::Deploy { crash_after, canary, promote } => {
                    let plan = world.plan(canary, promote);
                    world.apply(&plan, &mut Run { steps: 0, crash_after });
                    world.check_frozen()?;
                    if crash_after.is_none() && !plan.blocked {
                        // A finished run leaves every live alias audited; a second one has nothing to do.
                        world.check_audited()?;
                        let again = world.plan(canary, promote);
                        prop_assert!(
                            again.blocked || !again.actions.iter().any(Action::is_change),
                            "a finished deploy left work: {:?}", again.actions
                        );
                    }
                }
            }
            world.check_frozen()?;
        }
    }
}
