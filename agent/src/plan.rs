//! The plan: a pure diff of desired specs (render) against observed state. No I/O; a value that `apply` walks and
//! `ferry plan` prints. Frozen means frozen: nothing here ever repoints, rewrites or deletes a version alias.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::approval::ModelApprovals;
use crate::observe::ObservedFunction;
use crate::spec::FunctionSpec;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Publish a version from the spec (or reuse one already published with its hash) and create alias `v<N>`.
    Create {
        alias: String,
        version: String,
        spec_hash: String,
        /// A version an interrupted run already published with this exact spec.
        reuse_lambda_version: Option<String>,
        #[serde(skip)]
        spec: Box<FunctionSpec>,
    },
    /// The alias is right but its audit record was never written (a run stopped in between): write it.
    RecordAudit {
        alias: String,
        version: String,
        lambda_version: String,
        #[serde(skip)]
        spec: Box<FunctionSpec>,
    },
    Unchanged {
        alias: String,
        version: String,
        lambda_version: String,
    },
    /// The catalog or a template changed since this version was deployed: informational, never applied.
    PendingRespec {
        alias: String,
        version: String,
        deployed_spec_hash: String,
        rendered_spec_hash: String,
    },
    /// The alias is not what Ferry recorded: reported, never repointed; blocks this model's deploy.
    Drift { alias: String, reason: String },
    /// An alias whose version is no longer approved: left live until `ferry retire`.
    Revoked { alias: String, version: String },
    /// Point a stage alias at a version (creating the alias if needed); with a canary, only a share of traffic.
    StageMove {
        stage: String,
        from_version: Option<String>,
        to_version: String,
        /// Share of traffic on the new version while the old one keeps the rest; `None` for a full move.
        canary_weight: Option<f64>,
        /// Provisioned concurrency the catalog asks for on this stage alias.
        provisioned_concurrency: Option<u32>,
    },
    StageUnchanged {
        stage: String,
        version: String,
        canary_weight: Option<f64>,
    },
}

impl Action {
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Action::Create { .. } | Action::RecordAudit { .. } | Action::StageMove { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPlan {
    pub model: String,
    pub function: String,
    pub actions: Vec<Action>,
    /// Drift blocks every change to this model.
    pub blocked: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub record_audit: usize,
    pub stage_moves: usize,
    pub drift: usize,
    pub revoked: usize,
    pub pending_respec: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub format: u32,
    pub models: Vec<ModelPlan>,
    pub summary: Summary,
}

impl Plan {
    pub fn new(models: Vec<ModelPlan>) -> Plan {
        let mut s = Summary::default();
        for a in models.iter().flat_map(|m| &m.actions) {
            match a {
                Action::Create { .. } => s.create += 1,
                Action::RecordAudit { .. } => s.record_audit += 1,
                Action::StageMove { .. } => s.stage_moves += 1,
                Action::Drift { .. } => s.drift += 1,
                Action::Revoked { .. } => s.revoked += 1,
                Action::PendingRespec { .. } => s.pending_respec += 1,
                Action::Unchanged { .. } | Action::StageUnchanged { .. } => s.unchanged += 1,
            }
        }
        Plan {
            format: 1,
            models,
            summary: s,
        }
    }

    pub fn has_changes(&self) -> bool {
        self.models
            .iter()
            .any(|m| !m.blocked && m.actions.iter().any(Action::is_change))
    }

    pub fn has_drift(&self) -> bool {
        self.models.iter().any(|m| m.blocked)
    }
}

pub struct PlanInput<'a> {
    pub model: &'a str,
    pub specs: &'a [FunctionSpec],
    pub approvals: &'a ModelApprovals,
    pub observed: &'a ObservedFunction,
    pub canary_weight: Option<f64>,
    pub provisioned_concurrency: &'a BTreeMap<String, u32>,
    pub promote: bool,
}

fn is_version_alias(name: &str) -> Option<&str> {
    let n = name.strip_prefix('v')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

pub fn plan_model(input: &PlanInput) -> ModelPlan {
    let PlanInput {
        model,
        specs,
        observed,
        ..
    } = input;
    let mut actions = Vec::new();

    // Two version aliases on one Lambda version: someone pointed one by hand.
    let mut by_lambda_version: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for a in observed
        .aliases
        .values()
        .filter(|a| is_version_alias(&a.name).is_some())
    {
        by_lambda_version
            .entry(a.function_version.as_str())
            .or_default()
            .push(&a.name);
    }
    for (lv, names) in by_lambda_version.iter().filter(|(_, n)| n.len() > 1) {
        for name in names {
            actions.push(Action::Drift {
                alias: name.to_string(),
                reason: format!(
                    "aliases {} all point at Lambda version {lv}",
                    names.join(", ")
                ),
            });
        }
    }
    let already_drifted: Vec<String> = actions
        .iter()
        .filter_map(|a| {
            if let Action::Drift { alias, .. } = a {
                Some(alias.clone())
            } else {
                None
            }
        })
        .collect();

    for spec in specs.iter() {
        if already_drifted.contains(&spec.alias) {
            continue;
        }
        actions.push(plan_version(model, spec, observed));
    }

    // Version aliases whose version is no longer approved.
    for a in observed.aliases.values() {
        if let Some(n) = is_version_alias(&a.name)
            && !specs.iter().any(|s| s.alias == a.name)
            && !already_drifted.contains(&a.name)
        {
            actions.push(Action::Revoked {
                alias: a.name.clone(),
                version: n.to_string(),
            });
        }
    }

    actions.extend(plan_stages(input));
    let blocked = actions.iter().any(|a| matches!(a, Action::Drift { .. }));
    ModelPlan {
        model: model.to_string(),
        function: observed.function_name.clone(),
        actions,
        blocked,
    }
}

fn plan_version(model: &str, spec: &FunctionSpec, observed: &ObservedFunction) -> Action {
    let alias = spec.alias.clone();
    let version = spec.version.clone();
    let Some(live) = observed.aliases.get(&alias) else {
        return Action::Create {
            alias,
            version,
            spec_hash: spec.spec_hash.clone(),
            reuse_lambda_version: observed
                .version_with_hash(&spec.spec_hash)
                .map(|v| v.number.clone()),
            spec: Box::new(spec.clone()),
        };
    };
    let lv = live.function_version.clone();
    let drift = |reason: String| Action::Drift {
        alias: alias.clone(),
        reason,
    };
    if !live.additional.is_empty() {
        return drift(format!(
            "version alias carries a traffic split {:?}; version aliases never do",
            live.additional
        ));
    }
    let Some(published) = observed.versions.get(&lv) else {
        return drift(format!(
            "points at Lambda version {lv}, which does not exist"
        ));
    };
    let Some((hash, m, v)) = &published.ferry else {
        return drift(format!(
            "points at Lambda version {lv}, which Ferry did not publish (no spec hash)"
        ));
    };
    if m != model || v != &spec.version {
        return drift(format!(
            "points at Lambda version {lv}, which was published for {m} v{v}"
        ));
    }
    match observed.recorded.get(&alias) {
        Some(recorded) if recorded != &lv => drift(format!(
            "points at Lambda version {lv}, the audit record says {recorded}; left alone"
        )),
        Some(_) if hash == &spec.spec_hash => Action::Unchanged {
            alias,
            version,
            lambda_version: lv,
        },
        Some(_) => Action::PendingRespec {
            alias,
            version,
            deployed_spec_hash: hash.clone(),
            rendered_spec_hash: spec.spec_hash.clone(),
        },
        None if hash == &spec.spec_hash => Action::RecordAudit {
            alias,
            version,
            lambda_version: lv,
            spec: Box::new(spec.clone()),
        },
        None => drift(format!(
            "points at Lambda version {lv} with another spec and has no audit record"
        )),
    }
}

fn plan_stages(input: &PlanInput) -> Vec<Action> {
    let mut actions = Vec::new();
    for (stage, to_version) in &input.approvals.stages {
        let target_alias = format!("v{to_version}");
        if !input.specs.iter().any(|s| s.alias == target_alias) {
            actions.push(Action::Drift {
                alias: stage.clone(),
                reason: format!("the registry points stage {stage} at version {to_version}, which is not approved"),
            });
            continue;
        }
        // The Lambda version behind v<N>, when it exists already (otherwise it is created earlier in this plan).
        let target_lv = input
            .observed
            .aliases
            .get(&target_alias)
            .map(|a| a.function_version.clone());
        let current = input.observed.aliases.get(stage);
        let version_of = |lv: &str| {
            input
                .observed
                .versions
                .get(lv)
                .and_then(|v| v.ferry.as_ref())
                .map(|(_, _, n)| n.clone())
        };
        let from_version = current.and_then(|a| version_of(&a.function_version));
        let fully_there = current.is_some_and(|a| {
            Some(&a.function_version) == target_lv.as_ref() && a.additional.is_empty()
        });
        if fully_there {
            actions.push(Action::StageUnchanged {
                stage: stage.clone(),
                version: to_version.clone(),
                canary_weight: None,
            });
            continue;
        }
        let canary = match (input.canary_weight, current, input.promote) {
            (Some(w), Some(_), false) => Some(w),
            _ => None,
        };
        if let (Some(w), Some(cur), Some(lv)) = (canary, current, target_lv.as_ref())
            && cur.additional.get(lv).is_some_and(|x| (x - w).abs() < 1e-9)
        {
            actions.push(Action::StageUnchanged {
                stage: stage.clone(),
                version: to_version.clone(),
                canary_weight: Some(w),
            });
            continue;
        }
        actions.push(Action::StageMove {
            stage: stage.clone(),
            from_version,
            to_version: to_version.clone(),
            canary_weight: canary,
            provisioned_concurrency: input.provisioned_concurrency.get(stage).copied(),
        });
    }
    actions
}

/// The plan as people read it in CI logs.
pub fn to_text(plan: &Plan) -> String {
    let mut out = String::new();
    for m in &plan.models {
        out.push_str(&format!("{}  (function {})\n", m.model, m.function));
        let mut unchanged = Vec::new();
        for a in &m.actions {
            let line = match a {
                Action::Create {
                    alias,
                    version,
                    spec_hash,
                    reuse_lambda_version,
                    spec,
                } => Some(format!(
                    "  + {alias:<12} create  registry version {version}, approved by {} ({}), spec {}…{}",
                    spec.approval.approved_by,
                    spec.approval.ticket,
                    &spec_hash[..12],
                    reuse_lambda_version
                        .as_ref()
                        .map(|v| format!(" (reuses published version {v})"))
                        .unwrap_or_default()
                )),
                Action::RecordAudit {
                    alias,
                    lambda_version,
                    ..
                } => Some(format!(
                    "  + {alias:<12} audit   alias exists at Lambda version {lambda_version}; write its missing audit record"
                )),
                Action::StageMove {
                    stage,
                    from_version,
                    to_version,
                    canary_weight,
                    provisioned_concurrency,
                } => Some(format!(
                    "  ~ {stage:<12} move    {} -> v{to_version}{}{}",
                    from_version
                        .as_ref()
                        .map(|v| format!("v{v}"))
                        .unwrap_or_else(|| "(new)".into()),
                    canary_weight
                        .map(|w| format!(
                            " (canary {:.0}% on v{to_version}; --promote completes the move)",
                            w * 100.0
                        ))
                        .unwrap_or_default(),
                    provisioned_concurrency
                        .map(|n| format!(", provisioned concurrency {n}"))
                        .unwrap_or_default()
                )),
                Action::Drift { alias, reason } => {
                    Some(format!("  ! {alias:<12} drift   {reason}"))
                }
                Action::Revoked { alias, version } => Some(format!(
                    "  ! {alias:<12} revoked approval of version {version} withdrawn; alias left live (use `ferry retire`)"
                )),
                Action::PendingRespec {
                    alias,
                    deployed_spec_hash,
                    rendered_spec_hash,
                    ..
                } => Some(format!(
                    "  ? {alias:<12} pending re-spec: deployed spec {}…, catalog now renders {}…; a deployed version is never changed",
                    &deployed_spec_hash[..12.min(deployed_spec_hash.len())],
                    &rendered_spec_hash[..12.min(rendered_spec_hash.len())]
                )),
                Action::Unchanged { alias, .. } => {
                    unchanged.push(alias.clone());
                    None
                }
                Action::StageUnchanged {
                    stage,
                    version,
                    canary_weight,
                } => Some(match canary_weight {
                    Some(w) => format!(
                        "  = {stage:<12} canary  {:.0}% on v{version}; `--promote` completes the move",
                        w * 100.0
                    ),
                    None => format!("  = {stage:<12} -> v{version}"),
                }),
            };
            if let Some(l) = line {
                out.push_str(&l);
                out.push('\n');
            }
        }
        if !unchanged.is_empty() {
            out.push_str(&format!("  = {:<12} unchanged\n", unchanged.join(" ")));
        }
        if m.blocked {
            out.push_str("  (drift blocks every change to this model)\n");
        }
    }
    let s = &plan.summary;
    out.push_str(&format!(
        "Plan: {} to create, {} stage move(s), {} audit repair(s), {} drift, {} revoked, {} pending re-spec. Nothing will be deleted.\n",
        s.create, s.stage_moves, s.record_audit, s.drift, s.revoked, s.pending_respec
    ));
    out
}

#[cfg(test)]
mod tests;
