//! Rebuild from the record: the desired state of one model as its audit records say it was live at a time, for a
//! platform rebuilt from nothing (a new region after a disaster). Each version alias live then gets the spec its
//! deploy record holds, exactly (re-sealed, and checked against the record's hash and key); each stage alias gets
//! the routing its last recorded move left it with, a canary included. The registry is still asked: a version whose
//! approval was withdrawn or changed since is not rebuilt. Pure: the command lists and reads the records
//! ([`crate::history::live_at`] says which), this module decides.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::approval::{ModelApprovals, still_given, version_order};
use crate::audit::{RecordedDeployBody, RecordedStage};
use crate::history::KeyedEvent;
use crate::plan::is_version_alias;
use crate::render::model_path;
use crate::spec::FunctionSpec;

/// Where a rebuilt version's spec comes from: its deploy record, and the hash that record names (the spec re-seals
/// to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordSource {
    pub key: String,
    pub spec_hash: String,
}

/// A stage alias as its last recorded move left it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRoute {
    pub stage: String,
    /// The version the move was to: all of the stage's traffic, or the canary's share of it.
    pub to_version: String,
    /// Mid-canary: the version that keeps the rest of the traffic, and the share on `to_version`.
    pub canary: Option<Canary>,
    /// The stage-move record.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Canary {
    pub main_version: String,
    pub weight: f64,
}

/// An alias the record shows live that is not rebuilt, and why (it blocks its model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotRebuilt {
    pub alias: String,
    pub version: String,
    pub key: String,
    pub reason: String,
}

/// The desired state of one model from the record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FromRecord {
    /// The recorded specs, in version order.
    pub specs: Vec<FunctionSpec>,
    /// Version alias → the record its spec comes from.
    pub sources: BTreeMap<String, RecordSource>,
    pub stages: Vec<RecordedRoute>,
    pub refused: Vec<NotRebuilt>,
}

/// What the record says about one model at the time, and what it is checked against.
pub struct ModelRecord<'a> {
    /// The catalog key.
    pub model: &'a str,
    /// The platform's function for the model.
    pub function: &'a str,
    /// Where the platform mounts model storage in its functions.
    pub mount_path: &'a str,
    /// Version alias → its deploy event live at the time ([`crate::history::LiveAt::versions`]).
    pub versions: &'a BTreeMap<String, KeyedEvent>,
    /// Stage alias → its last move at the time ([`crate::history::LiveAt::stages`]).
    pub stages: &'a BTreeMap<String, KeyedEvent>,
    /// The records read, by key.
    pub deploys: &'a BTreeMap<String, RecordedDeployBody>,
    pub moves: &'a BTreeMap<String, RecordedStage>,
    /// What the approval source says now.
    pub approvals: &'a ModelApprovals,
}

/// The model's desired state from the record; `Err` names each record nothing may be rebuilt from (its key, then
/// why), so that nothing is changed from a record that does not say what it claims.
pub fn from_record(r: &ModelRecord) -> Result<FromRecord, Vec<String>> {
    let mut out = FromRecord::default();
    let mut errors = Vec::new();
    // Registry version → the Lambda version its live deploy record names (stage records name Lambda versions).
    let mut live_lv: BTreeMap<String, String> = BTreeMap::new();
    for (alias, event) in r.versions {
        let Some(version) = is_version_alias(alias) else {
            continue;
        };
        live_lv.insert(
            version.to_string(),
            event.lambda_version.clone().unwrap_or_default(),
        );
        let spec = match recorded_spec(r, alias, version, event) {
            Ok(spec) => spec,
            Err(reason) => {
                errors.push(format!("{}: {reason}", event.key));
                continue;
            }
        };
        match still_given(version, Some(&spec.approval), r.approvals) {
            Ok(()) => {
                out.sources.insert(
                    alias.clone(),
                    RecordSource {
                        key: event.key.clone(),
                        spec_hash: spec.spec_hash.clone(),
                    },
                );
                out.specs.push(spec);
            }
            Err(why) => out.refused.push(NotRebuilt {
                alias: alias.clone(),
                version: version.to_string(),
                key: event.key.clone(),
                reason: format!(
                    "{}: rebuilding it would deploy what is no longer approved",
                    why.describe(version)
                ),
            }),
        }
    }
    out.specs
        .sort_by(|a, b| version_order(&a.version, &b.version));
    for (stage, event) in r.stages {
        match recorded_route(r, stage, event, &live_lv) {
            Err(reason) => errors.push(format!("{}: {reason}", event.key)),
            Ok(route) => {
                let versions = std::iter::once(&route.to_version)
                    .chain(route.canary.as_ref().map(|c| &c.main_version));
                let refused: Vec<&String> = versions
                    .filter(|v| out.refused.iter().any(|n| &n.version == *v))
                    .collect();
                match refused.first() {
                    Some(v) => out.refused.push(NotRebuilt {
                        alias: stage.clone(),
                        version: route.to_version.clone(),
                        key: event.key.clone(),
                        reason: format!("it served v{v}, which is not rebuilt"),
                    }),
                    None => out.stages.push(route),
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The spec a deploy record holds, when the record says what it claims: it re-seals to its own hash and the
/// record's, it is filed under its own model, alias and Lambda version, and it is a spec for this platform.
fn recorded_spec(
    r: &ModelRecord,
    alias: &str,
    version: &str,
    event: &KeyedEvent,
) -> Result<FunctionSpec, String> {
    let body = r
        .deploys
        .get(&event.key)
        .ok_or("the deploy record was not read")?;
    let Some(spec) = &body.spec else {
        return Err(format!(
            "the deploy record of {} {alias} holds no spec (it was written before deploy records kept the whole \
             spec): there is nothing to rebuild {alias} from exactly",
            r.model
        ));
    };
    let resealed = spec.clone().seal().spec_hash;
    let altered = |what: String| Err(format!("{what}: the record was altered"));
    if resealed != spec.spec_hash {
        return altered(format!(
            "its spec hashes to {resealed}, but names itself {}",
            spec.spec_hash
        ));
    }
    match &body.spec_hash {
        None => return altered("it names no spec_hash to check its spec against".into()),
        Some(h) if *h != resealed => {
            return altered(format!(
                "its spec hashes to {resealed}, but the record's spec_hash is {h}"
            ));
        }
        Some(_) => {}
    }
    if (
        spec.model.as_str(),
        spec.alias.as_str(),
        spec.version.as_str(),
    ) != (r.model, alias, version)
    {
        return altered(format!(
            "it holds the spec of {} {} (version {}), but is filed under {} {alias}",
            spec.model, spec.alias, spec.version, r.model
        ));
    }
    if event.lambda_version.as_deref() != Some(body.lambda_version.as_str()) {
        return altered(format!(
            "it says Lambda version {}, its key says {}",
            body.lambda_version,
            event.lambda_version.as_deref().unwrap_or("none")
        ));
    }
    if body.approval.as_ref().is_some_and(|a| *a != spec.approval) {
        return altered("its approval is not the one its spec holds".into());
    }
    if spec.function_name != r.function {
        return Err(format!(
            "the recorded spec of {} {alias} names function {}, but the platform's function for {} is {}: a \
             rebuild replays the spec as recorded (a spec for another function is a new spec, with a new hash)",
            r.model, spec.function_name, r.model, r.function
        ));
    }
    let expected_path = model_path(r.mount_path, r.model, version);
    if spec.efs_path != expected_path {
        return Err(format!(
            "the recorded spec of {} {alias} loads its model from {}, but the platform mounts model storage at {} \
             ({expected_path}): a rebuild replays the spec as recorded",
            r.model, spec.efs_path, r.mount_path
        ));
    }
    Ok(spec.clone())
}

/// Where a stage's last recorded move left it, in registry versions. A move records the alias's main Lambda version
/// and its routing (the canary's share on the version moved to), and its key the Lambda version moved to; the live
/// deploy records say which registry version each of those is.
fn recorded_route(
    r: &ModelRecord,
    stage: &str,
    event: &KeyedEvent,
    live_lv: &BTreeMap<String, String>,
) -> Result<RecordedRoute, String> {
    let record = r
        .moves
        .get(&event.key)
        .ok_or("the stage-move record was not read")?;
    let moved_to_lv = event.lambda_version.clone().unwrap_or_default();
    let version_at = |lv: &str| {
        live_lv
            .iter()
            .find(|(_, l)| l.as_str() == lv)
            .map(|(v, _)| v.clone())
    };
    let to_version = record
        .version
        .clone()
        .or_else(|| version_at(&moved_to_lv))
        .ok_or_else(|| {
            format!(
                "the move of stage {stage} names no version, and no version alias live then was at Lambda version \
                 {moved_to_lv}"
            )
        })?;
    match live_lv.get(&to_version) {
        None => {
            return Err(format!(
                "stage {stage} was moved to v{to_version}, which the record does not show live then (no deploy \
                 record, or retired)"
            ));
        }
        Some(lv) if *lv != moved_to_lv => {
            return Err(format!(
                "the move of stage {stage} to v{to_version} names Lambda version {moved_to_lv}, v{to_version}'s \
                 deploy record says {lv}: the records disagree"
            ));
        }
        Some(_) => {}
    }
    let canary = match record.routing.iter().collect::<Vec<_>>().as_slice() {
        [] if record.lambda_version == moved_to_lv => None,
        [] => {
            return Err(format!(
                "the move of stage {stage} left it at Lambda version {}, but its key names {moved_to_lv}: the \
                 record was altered",
                record.lambda_version
            ));
        }
        [(lv, weight)] if **lv == moved_to_lv && **weight > 0.0 && **weight < 1.0 => {
            let main_version = version_at(&record.lambda_version).ok_or_else(|| {
                format!(
                    "stage {stage} was mid-canary with the rest of its traffic on Lambda version {}, which no \
                     version alias live then was at",
                    record.lambda_version
                )
            })?;
            Some(Canary {
                main_version,
                weight: **weight,
            })
        }
        [(lv, weight)] => {
            return Err(format!(
                "the move of stage {stage} to v{to_version} (Lambda version {moved_to_lv}) sends {weight} to \
                 Lambda version {lv}: not a canary Ferry records"
            ));
        }
        more => {
            return Err(format!(
                "the move of stage {stage} splits its traffic over {} extra versions; Lambda allows one",
                more.len()
            ));
        }
    };
    Ok(RecordedRoute {
        stage: stage.to_string(),
        to_version,
        canary,
        key: event.key.clone(),
    })
}

#[cfg(test)]
mod tests;
