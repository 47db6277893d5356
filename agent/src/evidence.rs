//! Evidence bundles for auditors (`ferry audit export`), from the audit records alone: per model version, its
//! approval, its deploys, the periods each stage alias served it (with its share of traffic), its retirement, its
//! HTTP endpoints, the deletion of its Lambda version, and each recorded verification of it. Pure: the command
//! lists and reads the records, this module decides what belongs to which version and formats it ([`csv`],
//! [`html`]).
//!
//! A bundle's digest is the SHA-256 of its canonical JSON ([`crate::spec::canonical_json`]): the same records give
//! the same digest whichever format is exported and whenever, and any record changed, added or removed changes it.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::history::{EventKind, KeyedEvent};
use crate::plan::is_version_alias;

pub mod csv;
pub mod html;

/// The bundle's schema, named in every export so a reader knows which fields to expect.
pub const FORMAT: &str = "ferry-evidence/1";

/// The time window of an export, as key times (inclusive); `None` is open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Window {
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Window {
    fn before_end(&self, key_time: &str) -> bool {
        self.until.as_deref().is_none_or(|u| key_time <= u)
    }
}

/// What an export holds. Everything in it comes from audit records, each named by its S3 key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bundle {
    pub format: &'static str,
    pub environment: String,
    /// The window asked for (RFC 3339, as given), `None` when open.
    pub since: Option<String>,
    pub until: Option<String>,
    pub versions: Vec<VersionEvidence>,
    /// Environment-wide events in the window: locks removed by force or taken over.
    pub environment_events: Vec<EnvironmentEvent>,
}

/// One model version's evidence: every record about it up to the window's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionEvidence {
    pub model: String,
    /// The registry version.
    pub version: String,
    /// Its frozen alias (`v3`).
    pub alias: String,
    /// The approval its newest deploy record carries: who, when, the ticket, the meaning, the artifact digest.
    pub approval: Option<Value>,
    pub deploys: Vec<DeployEvidence>,
    pub stage_periods: Vec<StagePeriod>,
    pub retirements: Vec<RecordedEvent>,
    /// Its HTTP route or function URL created and deleted.
    pub endpoints: Vec<RecordedEvent>,
    /// Its Lambda version deleted as unreferenced (`ferry gc`).
    pub deletions: Vec<RecordedEvent>,
    pub verifications: Vec<VerificationEvidence>,
}

impl VersionEvidence {
    /// A version with nothing recorded of it yet.
    fn new(model: &str, version: &str, alias: &str) -> VersionEvidence {
        VersionEvidence {
            model: model.to_string(),
            version: version.to_string(),
            alias: alias.to_string(),
            approval: None,
            deploys: Vec::new(),
            stage_periods: Vec::new(),
            retirements: Vec::new(),
            endpoints: Vec::new(),
            deletions: Vec::new(),
            verifications: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployEvidence {
    pub time: Value,
    pub key: String,
    pub lambda_version: Value,
    pub spec_hash: Value,
    pub code_sha256: Value,
    pub artifact_digest: Value,
    pub approval: Value,
    pub deployer: Value,
    pub configuration: Value,
    /// How Lambda updates the version's runtime (the pin Ferry set); absent from records written before pinning.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub runtime_management: Value,
}

impl DeployEvidence {
    /// The runtime the version was deployed on and how it is kept: `python3.12, Manual (runtime version arn:…)`.
    pub fn runtime(&self) -> String {
        let runtime = plain(&self.configuration["runtime"]);
        let runtime = if runtime.is_empty() {
            "no managed runtime recorded".into()
        } else {
            runtime
        };
        match serde_json::from_value::<crate::runtime_management::RuntimeManagement>(
            self.runtime_management.clone(),
        ) {
            Ok(mode) => format!("{runtime}, {mode}"),
            Err(_) => format!("{runtime}, update mode not recorded"),
        }
    }
}

/// A time a stage alias sent this version traffic: from the move that gave it a share to the next move of the
/// stage (`until` is `None` while it still does, as far as the records go).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StagePeriod {
    pub stage: String,
    pub from: Value,
    pub until: Option<Value>,
    pub lambda_version: String,
    /// Its share of the stage's traffic: 1 for a full move, the canary weight (or what the canary leaves the main
    /// version) otherwise.
    pub share: f64,
    /// The stage-move record that began the period.
    pub key: String,
    pub deployer: Value,
}

/// A record shown as it is: its kind, time, key, and the fields a reader needs (reason, ticket, deployer, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedEvent {
    pub event: EventKind,
    pub time: Value,
    pub key: String,
    pub summary: String,
    pub deployer: Value,
}

/// One recorded run of `ferry verify`, as it concerned this version's alias.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationEvidence {
    pub time: Value,
    pub key: String,
    /// Every check of this alias passed.
    pub ok: bool,
    /// Each check of the alias, as verify printed it.
    pub findings: Vec<Value>,
    pub deployer: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentEvent {
    pub event: EventKind,
    pub time: Value,
    pub key: String,
    pub reason: Value,
    pub deployer: Value,
}

/// Builds the bundle of `events` (already narrowed to the models asked for) with their `records` by key.
/// A version belongs to it when it was live (deployed, not yet retired) at some time in the window.
pub fn build(
    environment: &str,
    asked: (Option<String>, Option<String>),
    window: &Window,
    events: &[KeyedEvent],
    records: &BTreeMap<String, Value>,
) -> Bundle {
    let mut sorted: Vec<&KeyedEvent> = events
        .iter()
        .filter(|e| window.before_end(&e.key_time))
        .collect();
    sorted.sort_by(|a, b| (&a.key_time, &a.key).cmp(&(&b.key_time, &b.key)));
    let record = |e: &KeyedEvent| records.get(&e.key).cloned().unwrap_or(Value::Null);

    // Lambda never reuses a version number within a function, so a Lambda version names one model version.
    let mut alias_of_lv: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let mut versions: BTreeMap<(String, u64), VersionEvidence> = BTreeMap::new();
    for e in sorted.iter().filter(|e| e.kind == EventKind::Deploy) {
        let (Some(model), Some(alias), Some(lv)) = (&e.model, &e.alias, &e.lambda_version) else {
            continue;
        };
        let Some(n) = is_version_alias(alias) else {
            continue;
        };
        alias_of_lv.insert((model, lv), alias);
        let r = record(e);
        let v = versions
            .entry((model.clone(), n.parse().unwrap_or(u64::MAX)))
            .or_insert_with(|| VersionEvidence::new(model, n, alias));
        v.approval = Some(r["approval"].clone()).filter(|a| !a.is_null());
        v.deploys.push(DeployEvidence {
            time: r["time"].clone(),
            key: e.key.clone(),
            lambda_version: r["lambda_version"].clone(),
            spec_hash: r["spec_hash"].clone(),
            code_sha256: r["code_sha256"].clone(),
            artifact_digest: r["artifact_digest"].clone(),
            approval: r["approval"].clone(),
            deployer: r["deployer"].clone(),
            configuration: r["configuration"].clone(),
            runtime_management: r["runtime_management"].clone(),
        });
    }
    // A version served on the EKS service only has no deploy record: its serve records bring it in, with the
    // approval it was served under.
    for e in sorted.iter().filter(|e| e.kind == EventKind::EksServe) {
        let (Some(model), Some(alias)) = (&e.model, &e.alias) else {
            continue;
        };
        let Some(n) = is_version_alias(alias) else {
            continue;
        };
        let r = record(e);
        let v = versions
            .entry((model.clone(), n.parse().unwrap_or(u64::MAX)))
            .or_insert_with(|| VersionEvidence::new(model, n, alias));
        if v.approval.is_none() {
            v.approval = Some(r["approval"].clone()).filter(|a| !a.is_null());
        }
    }
    let version_of = |model: &str, alias: &str| -> Option<(String, u64)> {
        let n = is_version_alias(alias)?;
        Some((model.to_string(), n.parse().unwrap_or(u64::MAX)))
    };

    // Stage periods: each move of a stage begins one, the next move of the same stage ends it.
    let mut moves: BTreeMap<(&str, &str), Vec<&KeyedEvent>> = BTreeMap::new();
    for e in sorted.iter().filter(|e| e.kind == EventKind::StageMove) {
        if let (Some(model), Some(stage)) = (&e.model, &e.alias) {
            moves.entry((model, stage)).or_default().push(e);
        }
    }
    // When each version was last deployed and last retired, to leave out versions not live in the window.
    let mut deployed_at: BTreeMap<(String, u64), &str> = BTreeMap::new();
    let mut retired_at: BTreeMap<(String, u64), &str> = BTreeMap::new();
    // The same for the EKS service: a version may be retired in one place and still served in the other.
    let mut eks_served_at: BTreeMap<(String, u64), &str> = BTreeMap::new();
    let mut eks_retired_at: BTreeMap<(String, u64), &str> = BTreeMap::new();
    for ((model, stage), list) in &moves {
        for (i, e) in list.iter().enumerate() {
            let r = record(e);
            let until = list.get(i + 1).map(|next| record(next)["time"].clone());
            let main_lv = r["lambda_version"].as_str().unwrap_or_default().to_string();
            let routing: BTreeMap<String, f64> = r["routing"]
                .as_object()
                .map(|w| {
                    w.iter()
                        .filter_map(|(lv, x)| x.as_f64().map(|x| (lv.clone(), x)))
                        .collect()
                })
                .unwrap_or_default();
            let main_share = 1.0 - routing.values().sum::<f64>();
            let shares = std::iter::once((main_lv, main_share)).chain(routing);
            for (lv, share) in shares {
                let Some(key) = alias_of_lv
                    .get(&(*model, lv.as_str()))
                    .and_then(|alias| version_of(model, alias))
                else {
                    continue;
                };
                if let Some(v) = versions.get_mut(&key) {
                    v.stage_periods.push(StagePeriod {
                        stage: stage.to_string(),
                        from: r["time"].clone(),
                        until: until.clone(),
                        lambda_version: lv,
                        share,
                        key: e.key.clone(),
                        deployer: r["deployer"].clone(),
                    });
                }
            }
        }
    }

    let mut environment_events = Vec::new();
    for e in &sorted {
        let r = record(e);
        let recorded = |summary: String| RecordedEvent {
            event: e.kind.clone(),
            time: r["time"].clone(),
            key: e.key.clone(),
            summary,
            deployer: r["deployer"].clone(),
        };
        let model = e.model.as_deref().unwrap_or_default();
        let by_alias = e.alias.as_deref().and_then(|a| version_of(model, a));
        let by_lv = e
            .lambda_version
            .as_deref()
            .and_then(|lv| alias_of_lv.get(&(model, lv)))
            .and_then(|alias| version_of(model, alias));
        match e.kind {
            EventKind::Deploy => {
                if let Some(k) = by_alias {
                    deployed_at.insert(k, &e.key_time);
                }
            }
            EventKind::Retire => {
                if let Some(v) = by_alias.as_ref().and_then(|k| versions.get_mut(k)) {
                    v.retirements.push(recorded(format!(
                        "alias deleted: {} ({})",
                        text(&r, "reason"),
                        text(&r, "ticket")
                    )));
                    retired_at.insert(by_alias.clone().unwrap_or_default(), &e.key_time);
                }
            }
            EventKind::RouteCreate
            | EventKind::RouteDelete
            | EventKind::FunctionUrlCreate
            | EventKind::FunctionUrlDelete => {
                if let Some(v) = by_alias.as_ref().and_then(|k| versions.get_mut(k)) {
                    v.endpoints.push(recorded(endpoint_summary(&e.kind, &r)));
                }
            }
            // The EKS service is one more place the version is served from.
            EventKind::EksServe | EventKind::EksRetire => {
                if let Some(k) = by_alias.clone() {
                    let at = match e.kind {
                        EventKind::EksServe => &mut eks_served_at,
                        _ => &mut eks_retired_at,
                    };
                    at.insert(k, &e.key_time);
                }
                if let Some(v) = by_alias.as_ref().and_then(|k| versions.get_mut(k)) {
                    v.endpoints
                        .push(recorded(crate::history::eks_summary(&e.kind, &r)));
                }
            }
            EventKind::Gc => {
                if let Some(v) = by_lv.as_ref().and_then(|k| versions.get_mut(k)) {
                    v.deletions.push(recorded(format!(
                        "Lambda version {} deleted: {}",
                        e.lambda_version.as_deref().unwrap_or("?"),
                        text(&r, "reason")
                    )));
                }
            }
            EventKind::Verification => {
                for v in versions.values_mut().filter(|v| v.model == model) {
                    let findings: Vec<Value> = r["findings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|f| f["alias"] == v.alias.as_str())
                        .cloned()
                        .collect();
                    if findings.is_empty() {
                        continue;
                    }
                    v.verifications.push(VerificationEvidence {
                        time: r["time"].clone(),
                        key: e.key.clone(),
                        ok: findings.iter().all(|f| f["ok"] == true),
                        findings,
                        deployer: r["deployer"].clone(),
                    });
                }
            }
            EventKind::Unlock | EventKind::LockTakeover
                if window
                    .since
                    .as_deref()
                    .is_none_or(|s| e.key_time.as_str() >= s) =>
            {
                environment_events.push(EnvironmentEvent {
                    event: e.kind.clone(),
                    time: r["time"].clone(),
                    key: e.key.clone(),
                    reason: r["reason"].clone(),
                    deployer: r["deployer"].clone(),
                });
            }
            _ => {}
        }
    }
    // Retired before the window and not deployed again: not live in it. Live in either place counts.
    let live_in = |k: &(String, u64),
                   started: &BTreeMap<(String, u64), &str>,
                   ended: &BTreeMap<(String, u64), &str>| {
        let Some(first) = started.get(k) else {
            return false;
        };
        match (&window.since, ended.get(k)) {
            (Some(since), Some(end)) => *end >= since.as_str() || first > end,
            _ => !first.is_empty(),
        }
    };
    let live_in_window = |k: &(String, u64)| {
        live_in(k, &deployed_at, &retired_at) || live_in(k, &eks_served_at, &eks_retired_at)
    };
    Bundle {
        format: FORMAT,
        environment: environment.to_string(),
        since: asked.0,
        until: asked.1,
        versions: versions
            .into_iter()
            .filter(|(k, _)| live_in_window(k))
            .map(|(_, v)| v)
            .collect(),
        environment_events,
    }
}

fn endpoint_summary(kind: &EventKind, r: &Value) -> String {
    let route = r["route"]["route_key"].as_str().unwrap_or("?");
    let url = r["function_url"].as_str().unwrap_or("?");
    match kind {
        EventKind::RouteCreate => format!("HTTP route {route} created"),
        EventKind::RouteDelete => format!(
            "HTTP route {route} deleted: {} ({})",
            text(r, "reason"),
            text(r, "ticket")
        ),
        EventKind::FunctionUrlCreate => format!("function URL {url} created"),
        _ => format!(
            "function URL {url} deleted: {} ({})",
            text(r, "reason"),
            text(r, "ticket")
        ),
    }
}

/// A record's string field, `?` when absent.
fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("?").to_string()
}

impl Bundle {
    /// SHA-256 of the bundle's canonical JSON: the evidence's one identity, whatever the export's format.
    pub fn digest(&self) -> String {
        let value = serde_json::to_value(self).expect("a bundle always serialises");
        hex::encode(Sha256::digest(
            crate::spec::canonical_json(&value).as_bytes(),
        ))
    }

    /// The JSON export: the bundle and its digest.
    pub fn to_json(&self) -> String {
        let doc = serde_json::json!({"bundle_sha256": self.digest(), "bundle": self});
        serde_json::to_string_pretty(&doc).expect("a bundle always serialises") + "\n"
    }
}

/// Who a record names as having made the change: the AWS identity, else the run's host.
pub fn who(deployer: &Value) -> String {
    deployer["aws_identity"]
        .as_str()
        .or(deployer["host"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// A JSON value as one line of text: a string as it is, `null` as nothing, anything else as JSON.
pub fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::history::parse_key;

    /// Records keyed as Ferry writes them, and their bodies.
    pub(crate) struct Log {
        pub events: Vec<KeyedEvent>,
        pub records: BTreeMap<String, Value>,
    }

    impl Log {
        pub fn new() -> Log {
            Log {
                events: Vec::new(),
                records: BTreeMap::new(),
            }
        }

        pub fn add(&mut self, rel: &str, body: Value) -> &mut Log {
            let e =
                parse_key(rel, rel).unwrap_or_else(|| panic!("{rel} is not a key Ferry writes"));
            self.records.insert(rel.to_string(), body);
            self.events.push(e);
            self
        }

        pub fn bundle(&self, window: Window) -> Bundle {
            build("prod", (None, None), &window, &self.events, &self.records)
        }
    }

    fn deploy(lv: &str, approver: &str) -> Value {
        serde_json::json!({
            "event": "deploy", "lambda_version": lv, "time": format!("2026-11-0{lv}T10:00:00Z"),
            "spec_hash": "ab".repeat(32), "code_sha256": "c0de", "artifact_digest": "d1".repeat(32),
            "approval": {"approved_by": approver, "approved_at": "2026-10-30T09:00:00Z", "ticket": "CHG-1042",
                         "meaning": "approved for clinical use"},
            "deployer": {"aws_identity": "arn:aws:sts::123456789012:assumed-role/ferry-deploy/ci"},
        })
    }

    fn stage(lv: &str, time: &str, routing: Value) -> Value {
        serde_json::json!({"event": "stage-move", "lambda_version": lv, "time": time, "routing": routing,
                           "deployer": {"aws_identity": "arn:aws:sts::1:assumed-role/r/ci"}})
    }

    /// v1 and v2 deployed; production on v1, then a 10% canary on v2, then all on v2; v1 retired.
    pub(crate) fn story() -> Log {
        let mut log = Log::new();
        log.add(
            "risk/v1/20261101T100000.000Z-deploy-lv1.json",
            deploy("1", "maria.rodriguez-fernandez@clinical-research.example.org"),
        )
        .add(
            "risk/v2/20261102T100000.000Z-deploy-lv2.json",
            deploy("2", "Zoë Ångström <zoe@example.org>"),
        )
        .add(
            "risk/stages/production/20261101T110000.000Z-lv1.json",
            stage("1", "2026-11-01T11:00:00Z", Value::Null),
        )
        .add(
            "risk/stages/production/20261102T110000.000Z-lv2.json",
            stage("1", "2026-11-02T11:00:00Z", serde_json::json!({"2": 0.1})),
        )
        .add(
            "risk/stages/production/20261103T110000.000Z-lv2.json",
            stage("2", "2026-11-03T11:00:00Z", Value::Null),
        )
        .add(
            "risk/v1/20261104T100000.000Z-retire-lv1.json",
            serde_json::json!({"event": "retire", "time": "2026-11-04T10:00:00Z", "reason": "superseded",
                               "ticket": "CHG-7", "deployer": {}}),
        );
        log
    }

    fn periods(b: &Bundle, alias: &str) -> Vec<(String, Option<String>, f64)> {
        b.versions
            .iter()
            .find(|v| v.alias == alias)
            .unwrap()
            .stage_periods
            .iter()
            .map(|p| {
                (
                    plain(&p.from),
                    p.until.as_ref().map(plain),
                    (p.share * 100.0).round() / 100.0,
                )
            })
            .collect()
    }

    #[test]
    fn each_version_gets_the_periods_a_stage_served_it_with_its_share_of_traffic() {
        let b = story().bundle(Window::default());
        let t = |d: u8| format!("2026-11-0{d}T11:00:00Z");
        assert_eq!(
            periods(&b, "v1"),
            vec![
                (t(1), Some(t(2)), 1.0),
                // During the canary v1 kept what v2 did not get.
                (t(2), Some(t(3)), 0.9),
            ]
        );
        assert_eq!(
            periods(&b, "v2"),
            vec![(t(2), Some(t(3)), 0.1), (t(3), None, 1.0)]
        );
        let v1 = &b.versions[0];
        assert_eq!(v1.retirements.len(), 1);
        assert!(v1.retirements[0].summary.contains("superseded (CHG-7)"));
        assert_eq!(
            v1.approval.as_ref().unwrap()["approved_by"],
            "maria.rodriguez-fernandez@clinical-research.example.org"
        );
    }

    #[test]
    fn a_window_keeps_the_versions_live_in_it_and_ends_their_story_at_its_end() {
        let log = story();
        // After v1's retirement: only v2 was live.
        let after = log.bundle(Window {
            since: Some("20261105T000000.000Z".into()),
            until: None,
        });
        assert_eq!(
            after
                .versions
                .iter()
                .map(|v| v.alias.as_str())
                .collect::<Vec<_>>(),
            ["v2"]
        );
        // Up to the canary: v2's full move is not there yet, and v1's retirement neither.
        let early = log.bundle(Window {
            since: None,
            until: Some("20261102T120000.000Z".into()),
        });
        assert_eq!(
            periods(&early, "v2"),
            vec![("2026-11-02T11:00:00Z".into(), None, 0.1)]
        );
        assert!(early.versions[0].retirements.is_empty());
    }

    fn eks(event: &str, version: &str, time: &str) -> Value {
        serde_json::json!({"event": event, "version": version, "time": time,
            "approval": {"approved_by": "ana@example.org", "approved_at": "2026-10-30T09:00:00Z", "ticket": "CHG-9"},
            "reason": "superseded", "ticket": "CHG-10",
            "eks": {"namespace": "ferry", "deployment": "ferry-risk", "served_versions": [version]},
            "deployer": {"aws_identity": "arn:aws:sts::1:assumed-role/r/ci"}})
    }

    #[test]
    fn a_version_served_only_on_eks_is_in_the_bundle_while_it_was_served() {
        let mut log = story();
        log.add(
            "risk/eks/v7/20261101T120000.000Z-serve.json",
            eks("eks-serve", "7", "2026-11-01T12:00:00Z"),
        )
        .add(
            "risk/eks/v7/20261106T120000.000Z-retire.json",
            eks("eks-retire", "7", "2026-11-06T12:00:00Z"),
        )
        // v1: retired as a Lambda alias on the 4th, still served on EKS after it.
        .add(
            "risk/eks/v1/20261101T130000.000Z-serve.json",
            eks("eks-serve", "1", "2026-11-01T13:00:00Z"),
        );
        let all = log.bundle(Window::default());
        let v7 = all
            .versions
            .iter()
            .find(|v| v.alias == "v7")
            .expect("an EKS-only version");
        assert_eq!(v7.approval.as_ref().unwrap()["ticket"], "CHG-9");
        assert!(v7.deploys.is_empty());
        let summaries: Vec<&str> = v7.endpoints.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(summaries.len(), 2, "{summaries:?}");
        assert!(
            summaries[0].starts_with("served on EKS by ferry/ferry-risk"),
            "{summaries:?}"
        );
        assert!(
            summaries[1].starts_with("left the EKS served set of ferry/ferry-risk: superseded"),
            "{summaries:?}"
        );
        let after = log.bundle(Window {
            since: Some("20261105T000000.000Z".into()),
            until: None,
        });
        let aliases: Vec<&str> = after.versions.iter().map(|v| v.alias.as_str()).collect();
        assert_eq!(
            aliases,
            ["v1", "v2", "v7"],
            "v1 still on EKS; v7 until the 6th"
        );
        let later = log.bundle(Window {
            since: Some("20261107T000000.000Z".into()),
            until: None,
        });
        let aliases: Vec<&str> = later.versions.iter().map(|v| v.alias.as_str()).collect();
        assert_eq!(aliases, ["v1", "v2"]);
    }

    #[test]
    fn the_digest_names_the_records_not_the_order_they_were_read_in() {
        let log = story();
        let mut shuffled = Log::new();
        for e in log.events.iter().rev() {
            shuffled.add(&e.key, log.records[&e.key].clone());
        }
        let digest = log.bundle(Window::default()).digest();
        assert_eq!(shuffled.bundle(Window::default()).digest(), digest);
        // One field of one record changed: another digest.
        let mut edited = story();
        edited
            .records
            .get_mut("risk/v1/20261101T100000.000Z-deploy-lv1.json")
            .unwrap()["approval"]["ticket"] = "CHG-9999".into();
        assert_ne!(edited.bundle(Window::default()).digest(), digest);
        // One record removed: another digest.
        let mut fewer = story();
        fewer.events.pop();
        assert_ne!(fewer.bundle(Window::default()).digest(), digest);
    }

    #[test]
    fn a_recorded_verification_is_shown_under_each_version_it_checked() {
        let mut log = story();
        log.add(
            "risk/verifications/20261105T000000.000Z.json",
            serde_json::json!({"event": "verification", "time": "2026-11-05T00:00:00Z", "ok": false,
                "findings": [{"alias": "v2", "ok": true, "detail": "Lambda version 2"},
                             {"alias": "v2", "ok": false, "detail": "data/model.pkl: sha256 aa, found bb"},
                             {"alias": "production", "ok": true, "detail": "as recorded"}],
                "deployer": {}}),
        );
        let b = log.bundle(Window::default());
        let v2 = b.versions.iter().find(|v| v.alias == "v2").unwrap();
        assert_eq!(v2.verifications.len(), 1);
        assert!(!v2.verifications[0].ok);
        assert_eq!(v2.verifications[0].findings.len(), 2);
        // v1 was not checked by it (retired): nothing is invented for it.
        assert!(b.versions[0].verifications.is_empty());
    }
}
