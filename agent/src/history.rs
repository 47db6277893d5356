//! History from the audit records alone: what each key says (kind, model, alias, time, Lambda version: the keys are
//! written so that one listing tells the story, see [`crate::audit`]), which records a question needs, and the
//! answer. Pure: the command lists and reads, this module decides.
use std::collections::BTreeMap;

use serde::Serialize;

/// What an audit record is about, from its key alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Deploy,
    Retire,
    StageMove,
    Gc,
    RouteCreate,
    RouteDelete,
    FunctionUrlCreate,
    FunctionUrlDelete,
    Unlock,
    LockTakeover,
    /// A recorded run of `ferry verify --record` over a model.
    Verification,
    /// A version put into a model's EKS served set (rolled out).
    EksServe,
    /// A version taken out of it by `ferry retire --target eks`.
    EksRetire,
    /// A model's EKS manifests applied to the cluster (or emitted for a GitOps tool).
    EksRollout,
}

impl EventKind {
    /// Its kebab-case name, as in JSON (`stage-move`).
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Deploy => "deploy",
            EventKind::Retire => "retire",
            EventKind::StageMove => "stage-move",
            EventKind::Gc => "gc",
            EventKind::RouteCreate => "route-create",
            EventKind::RouteDelete => "route-delete",
            EventKind::FunctionUrlCreate => "function-url-create",
            EventKind::FunctionUrlDelete => "function-url-delete",
            EventKind::Unlock => "unlock",
            EventKind::LockTakeover => "lock-takeover",
            EventKind::Verification => "verification",
            EventKind::EksServe => "eks-serve",
            EventKind::EksRetire => "eks-retire",
            EventKind::EksRollout => "eks-rollout",
        }
    }
}

/// One audit record as its key names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyedEvent {
    /// Sortable key time (`20261126T081500.123Z`).
    pub key_time: String,
    pub kind: EventKind,
    /// `None` for environment-wide events (unlock, lock takeover).
    pub model: Option<String>,
    /// The version alias (`v3`) or stage alias (`production`) the event is about.
    pub alias: Option<String>,
    pub lambda_version: Option<String>,
    pub key: String,
}

/// Reads a key relative to `<audit_prefix><environment>/`; `None` for anything Ferry did not write.
pub fn parse_key(rel: &str, key: &str) -> Option<KeyedEvent> {
    let parts: Vec<&str> = rel.split('/').collect();
    let stem = parts.last()?.strip_suffix(".json")?;
    let event = |kind, model: Option<&str>, alias: Option<&str>, time: &str, lv: Option<&str>| {
        Some(KeyedEvent {
            key_time: time.to_string(),
            kind,
            model: model.map(str::to_string),
            alias: alias.map(str::to_string),
            lambda_version: lv.map(str::to_string),
            key: key.to_string(),
        })
    };
    match parts.as_slice() {
        ["unlock", _] => match stem.strip_suffix("-takeover") {
            Some(time) => event(EventKind::LockTakeover, None, None, time, None),
            None => event(EventKind::Unlock, None, None, stem, None),
        },
        [model, "verifications", _] => {
            event(EventKind::Verification, Some(model), None, stem, None)
        }
        [model, "gc", _] => {
            let (time, lv) = stem.split_once("-lv")?;
            event(EventKind::Gc, Some(model), None, time, Some(lv))
        }
        [model, "stages", stage, _] => {
            let (time, lv) = stem.split_once("-lv")?;
            event(
                EventKind::StageMove,
                Some(model),
                Some(stage),
                time,
                Some(lv),
            )
        }
        [model, folder @ ("routes" | "urls"), alias, _] => {
            let (time, kind) = stem.split_once('-')?;
            let kind = match (*folder, kind) {
                ("routes", "create") => EventKind::RouteCreate,
                ("routes", "delete") => EventKind::RouteDelete,
                ("urls", "create") => EventKind::FunctionUrlCreate,
                ("urls", "delete") => EventKind::FunctionUrlDelete,
                _ => return None,
            };
            event(kind, Some(model), Some(alias), time, None)
        }
        [model, "eks", "rollouts", _] => {
            event(EventKind::EksRollout, Some(model), None, stem, None)
        }
        [model, "eks", alias, _] if crate::plan::is_version_alias(alias).is_some() => {
            let (time, kind) = stem.split_once('-')?;
            let kind = match kind {
                "serve" => EventKind::EksServe,
                "retire" => EventKind::EksRetire,
                _ => return None,
            };
            event(kind, Some(model), Some(alias), time, None)
        }
        [model, alias, _] if crate::plan::is_version_alias(alias).is_some() => {
            let (time, rest) = stem.split_once('-')?;
            let (kind, lv) = rest.split_once("-lv")?;
            let kind = match kind {
                "deploy" => EventKind::Deploy,
                "retire" => EventKind::Retire,
                _ => return None,
            };
            event(kind, Some(model), Some(alias), time, Some(lv))
        }
        _ => None,
    }
}

/// An EKS record in one line: the Deployment, the approval (for a serve) or the reason (for a retire), and the
/// served set the change left.
pub fn eks_summary(kind: &EventKind, r: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let deployment = format!(
        "{}/{}",
        text(&r["eks"]["namespace"]),
        text(&r["eks"]["deployment"])
    );
    let served: Vec<&str> = r["eks"]["served_versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let served = format!("served set now v{}", served.join(", v"));
    let place = match r["eks"]["emitted_to"].as_str() {
        Some(dir) => format!("{deployment} (emitted to {dir})"),
        None => deployment,
    };
    let deployment = place;
    match kind {
        EventKind::EksRollout => {
            let changes: Vec<&str> = r["eks"]["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .collect();
            format!(
                "manifests applied to {deployment}: {}; image {}; {served}",
                changes.join(", "),
                text(&r["eks"]["image"])
            )
        }
        EventKind::EksServe => format!(
            "served on EKS by {deployment}, approved by {} ({}); {served}",
            text(&r["approval"]["approved_by"]),
            text(&r["approval"]["ticket"])
        ),
        _ => format!(
            "left the EKS served set of {deployment}: {} ({}); {served}",
            text(&r["reason"]),
            text(&r["ticket"])
        ),
    }
}

/// Which events a question is about.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub models: Vec<String>,
    pub stage: Option<String>,
    /// Key times (inclusive).
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Filter {
    pub fn keeps(&self, e: &KeyedEvent) -> bool {
        let model = match &e.model {
            Some(m) => self.models.is_empty() || self.models.contains(m),
            // Environment-wide events belong to every model's history.
            None => true,
        };
        let stage = match &self.stage {
            Some(s) => e.kind == EventKind::StageMove && e.alias.as_ref() == Some(s),
            None => true,
        };
        model
            && stage
            && self.since.as_ref().is_none_or(|s| &e.key_time >= s)
            && self.until.as_ref().is_none_or(|u| &e.key_time <= u)
    }
}

/// The events of a history in time order (the key time, then the key, so that equal times keep one order).
pub fn timeline(mut events: Vec<KeyedEvent>, filter: &Filter) -> Vec<KeyedEvent> {
    events.retain(|e| filter.keeps(e));
    events.sort_by(|a, b| (&a.key_time, &a.key).cmp(&(&b.key_time, &b.key)));
    events
}

/// What was live at a time: per model, the last move of each stage alias at or before it, and each version
/// alias deployed and not yet retired then (with the deploy record that says who approved it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveAt {
    /// model → stage → its last stage-move event.
    pub stages: BTreeMap<String, BTreeMap<String, KeyedEvent>>,
    /// model → version alias → its deploy event.
    pub versions: BTreeMap<String, BTreeMap<String, KeyedEvent>>,
    /// model → version alias → the `eks-serve` event of a version the EKS service served then.
    pub eks: BTreeMap<String, BTreeMap<String, KeyedEvent>>,
}

pub fn live_at(events: &[KeyedEvent], at: &str, filter: &Filter) -> LiveAt {
    let mut live = LiveAt::default();
    let upto = Filter {
        until: Some(at.to_string()),
        since: None,
        ..filter.clone()
    };
    for e in timeline(events.to_vec(), &upto) {
        let (Some(model), Some(alias)) = (e.model.clone(), e.alias.clone()) else {
            continue;
        };
        match e.kind {
            EventKind::StageMove => {
                live.stages.entry(model).or_default().insert(alias, e);
            }
            EventKind::Deploy => {
                live.versions.entry(model).or_default().insert(alias, e);
            }
            EventKind::Retire => {
                if let Some(v) = live.versions.get_mut(&model) {
                    v.remove(&alias);
                }
            }
            EventKind::EksServe => {
                live.eks.entry(model).or_default().insert(alias, e);
            }
            EventKind::EksRetire => {
                if let Some(v) = live.eks.get_mut(&model) {
                    v.remove(&alias);
                }
            }
            _ => {}
        }
    }
    live
}

/// An RFC 3339 time as given (`2026-11-26T09:15:00+01:00`), the error naming the value; compare it with keys as
/// [`crate::audit::key_time`] (`20261126T081500.000Z`).
pub fn parse_time(rfc3339: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).map_err(
        |e| format!("{rfc3339:?} is not an RFC 3339 time (like 2026-11-26T08:15:00Z): {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(rel: &str) -> KeyedEvent {
        parse_key(rel, rel).unwrap_or_else(|| panic!("{rel}"))
    }

    #[test]
    fn each_kind_is_named_as_in_json() {
        use EventKind::*;
        let every = [
            Deploy,
            Retire,
            StageMove,
            Gc,
            RouteCreate,
            RouteDelete,
            FunctionUrlCreate,
            FunctionUrlDelete,
            Unlock,
            LockTakeover,
            Verification,
            EksServe,
            EksRetire,
            EksRollout,
        ];
        for (i, kind) in every.iter().enumerate() {
            // Exhaustive: a new kind stops this compiling until it is given the next place, here and in `every`.
            let place = match kind {
                Deploy => 0,
                Retire => 1,
                StageMove => 2,
                Gc => 3,
                RouteCreate => 4,
                RouteDelete => 5,
                FunctionUrlCreate => 6,
                FunctionUrlDelete => 7,
                Unlock => 8,
                LockTakeover => 9,
                Verification => 10,
                EksServe => 11,
                EksRetire => 12,
                EksRollout => 13,
            };
            assert_eq!(place, i);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn every_key_ferry_writes_reads_back() {
        let d = ev("risk/v3/20261126T081500.123Z-deploy-lv7.json");
        assert_eq!(
            (d.kind, d.alias.as_deref(), d.lambda_version.as_deref()),
            (EventKind::Deploy, Some("v3"), Some("7"))
        );
        assert_eq!(
            ev("risk/v3/20261126T081500.123Z-retire-lv7.json").kind,
            EventKind::Retire
        );
        let e = ev("risk/eks/v3/20261126T081500.123Z-serve.json");
        assert_eq!(
            (e.kind, e.alias.as_deref(), e.key_time.as_str()),
            (EventKind::EksServe, Some("v3"), "20261126T081500.123Z")
        );
        assert_eq!(
            ev("risk/eks/v3/20261126T081500.123Z-retire.json").kind,
            EventKind::EksRetire
        );
        let r = ev("risk/eks/rollouts/20261126T081500.123Z.json");
        assert_eq!((r.kind, r.alias), (EventKind::EksRollout, None));
        let s = ev("risk/stages/production/20261126T081500.123Z-lv7.json");
        assert_eq!(
            (s.kind, s.alias.as_deref()),
            (EventKind::StageMove, Some("production"))
        );
        assert_eq!(
            ev("risk/gc/20261126T081500.123Z-lv2.json").kind,
            EventKind::Gc
        );
        let r = ev("risk/routes/production/20261126T081500.123Z-create.json");
        assert_eq!(
            (
                &r.kind,
                r.alias.as_deref(),
                r.key_time.as_str(),
                r.lambda_version.as_deref()
            ),
            (
                &EventKind::RouteCreate,
                Some("production"),
                "20261126T081500.123Z",
                None
            )
        );
        assert_eq!(
            ev("risk/routes/v3/20261126T081500.123Z-delete.json").kind,
            EventKind::RouteDelete
        );
        assert_eq!(
            ev("risk/urls/v3/20261126T081500.123Z-create.json").kind,
            EventKind::FunctionUrlCreate
        );
        assert_eq!(
            ev("unlock/20261126T081500.123Z.json").kind,
            EventKind::Unlock
        );
        let v = ev("risk/verifications/20261126T081500.123Z.json");
        assert_eq!(
            (&v.kind, v.model.as_deref(), v.key_time.as_str()),
            (
                &EventKind::Verification,
                Some("risk"),
                "20261126T081500.123Z"
            )
        );
        assert_eq!(
            ev("unlock/20261126T081500.123Z-takeover.json").kind,
            EventKind::LockTakeover
        );
        // A model named like a folder of the environment is still a model.
        assert_eq!(
            ev("unlock/v1/20261126T081500.123Z-deploy-lv1.json")
                .model
                .as_deref(),
            Some("unlock")
        );
        for other in [
            "risk/notes.txt",
            "risk/v3/x.json",
            "risk/live/20261126T081500.123Z-deploy-lv7.json",
            "risk/routes/v3/20261126T081500.123Z-moved.json",
            "x.json",
        ] {
            assert_eq!(parse_key(other, other), None, "{other}");
        }
    }

    #[test]
    fn what_was_live_at_a_time_is_the_last_move_before_it_and_retirements_count() {
        let events = vec![
            ev("risk/v1/20261101T100000.000Z-deploy-lv1.json"),
            ev("risk/v2/20261102T100000.000Z-deploy-lv2.json"),
            ev("risk/stages/production/20261102T100001.000Z-lv2.json"),
            ev("risk/stages/production/20261103T100000.000Z-lv1.json"),
            ev("risk/v2/20261104T100000.000Z-retire-lv2.json"),
            ev("other/v1/20261101T090000.000Z-deploy-lv1.json"),
        ];
        let all = Filter::default();
        let on_the_2nd = live_at(&events, "20261102T120000.000Z", &all);
        assert_eq!(
            on_the_2nd.stages["risk"]["production"]
                .lambda_version
                .as_deref(),
            Some("2")
        );
        assert_eq!(
            on_the_2nd.versions["risk"].keys().collect::<Vec<_>>(),
            ["v1", "v2"]
        );
        let on_the_5th = live_at(&events, "20261105T000000.000Z", &all);
        assert_eq!(
            on_the_5th.stages["risk"]["production"]
                .lambda_version
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            on_the_5th.versions["risk"].keys().collect::<Vec<_>>(),
            ["v1"]
        );
        let before = live_at(&events, "20261101T000000.000Z", &all);
        assert!(before.stages.is_empty() && before.versions.is_empty());
        let only_other = Filter {
            models: vec!["other".into()],
            ..Filter::default()
        };
        assert_eq!(
            live_at(&events, "20261105T000000.000Z", &only_other)
                .versions
                .keys()
                .collect::<Vec<_>>(),
            ["other"]
        );
    }

    #[test]
    fn what_the_eks_service_served_at_a_time_is_each_version_served_and_not_retired_then() {
        let events = vec![
            ev("risk/eks/v1/20261101T100000.000Z-serve.json"),
            ev("risk/eks/v2/20261102T100000.000Z-serve.json"),
            ev("risk/eks/rollouts/20261102T095959.000Z.json"),
            ev("risk/eks/v1/20261104T100000.000Z-retire.json"),
        ];
        let all = Filter::default();
        let served = |at: &str| -> Vec<String> {
            live_at(&events, at, &all)
                .eks
                .get("risk")
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(served("20261103T000000.000Z"), ["v1", "v2"]);
        assert_eq!(served("20261105T000000.000Z"), ["v2"]);
        assert!(served("20261101T000000.000Z").is_empty());
        assert!(
            live_at(&events, "20261105T000000.000Z", &all)
                .versions
                .is_empty(),
            "not Lambda aliases"
        );
    }

    #[test]
    fn a_timeline_is_in_time_order_and_filtered() {
        let events = vec![
            ev("risk/stages/production/20261103T100000.000Z-lv1.json"),
            ev("risk/v1/20261101T100000.000Z-deploy-lv1.json"),
            ev("unlock/20261102T000000.000Z-takeover.json"),
        ];
        let all = timeline(events.clone(), &Filter::default());
        assert_eq!(
            all.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
            [
                EventKind::Deploy,
                EventKind::LockTakeover,
                EventKind::StageMove
            ]
        );
        let stage = Filter {
            stage: Some("production".into()),
            ..Filter::default()
        };
        assert_eq!(timeline(events.clone(), &stage).len(), 1);
        let window = Filter {
            since: Some("20261102T000000.000Z".into()),
            until: Some("20261102T235959.999Z".into()),
            ..Filter::default()
        };
        assert_eq!(timeline(events, &window)[0].kind, EventKind::LockTakeover);
    }

    #[test]
    fn times_are_read_as_rfc3339_and_compared_as_key_times() {
        let key_time_of = |t| parse_time(t).map(crate::audit::key_time);
        assert_eq!(
            key_time_of("2026-11-26T08:15:00Z").unwrap(),
            "20261126T081500.000Z"
        );
        assert_eq!(
            key_time_of("2026-11-26T09:15:00+01:00").unwrap(),
            "20261126T081500.000Z"
        );
        assert!(key_time_of("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
