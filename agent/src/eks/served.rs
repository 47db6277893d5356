//! The served set of a model on the EKS service: which versions its Deployment serves next. Frozen like a Lambda
//! alias: a version once served stays in the set, whatever the registry says of it later, until `ferry retire`
//! takes it out; a new approval adds to the set. Pure: what is live, recorded and approved comes in as values.
use std::collections::{BTreeMap, BTreeSet};

use crate::approval::{ApprovedVersion, version_order};

/// The Deployment's (and its pod template's) annotation listing the versions it serves: `1,2,5`.
pub const SERVED_ANNOTATION: &str = "ferry.dev/served-versions";
/// The SHA-256 of everything rendered for the model, on the Deployment: equal means nothing to apply.
pub const RENDERED_ANNOTATION: &str = "ferry.dev/rendered-sha256";

/// The versions a served-versions annotation lists; empty for an empty or missing one.
pub fn parse_annotation(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a model's Deployment is to serve next, and why each version is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedSet {
    /// In version order, each with the approval it is served under.
    pub versions: Vec<ApprovedVersion>,
    /// Versions not served now (neither live nor recorded): the change.
    pub added: Vec<String>,
    /// Recorded as served but missing from the live Deployment (someone changed it by hand): served again.
    pub restored: Vec<String>,
    /// Served although the registry no longer approves them: frozen until `ferry retire`.
    pub kept_unapproved: Vec<String>,
}

/// Why a model's served set cannot be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServedSetError {
    #[error(
        "the Deployment serves v{} with neither an audit record nor an approval: it was not deployed by Ferry, and Ferry will not serve it on (remove it from the Deployment, or approve it)",
        .0.join(", v")
    )]
    Unaccounted(Vec<String>),
    #[error("v{0} is not served on the EKS service")]
    NotServed(String),
    #[error(
        "v{0} is the only version served: a served set is never empty, so the last version of a model stays served on EKS"
    )]
    Last(String),
}

/// What the audit records say of a model's EKS served set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Versions whose last record is a serve, with the approval they were served under.
    pub served: BTreeMap<String, ApprovedVersion>,
    /// Versions whose last record is a retire.
    pub retired: BTreeSet<String>,
}

/// The next served set: every version that the audit records say is served (with the approval it was served
/// under), every approved one, and every one the Deployment serves now (`live`) unless its last record is a retire
/// (a retire is recorded before its rollout, so a run stopped in between is finished by the next); less `retiring`
/// (the only way out). A live version without a record (a run that stopped between its rollout and its record) takes
/// the registry's approval, which the record written after the rollout then holds. As for a Lambda alias, a retired
/// version the registry still approves is served again: withdraw the approval first to retire it for good.
pub fn next_served_set(
    live: &[String],
    recorded: &Recorded,
    approved: &[ApprovedVersion],
    retiring: Option<&str>,
) -> Result<ServedSet, ServedSetError> {
    let is_approved = |v: &str| approved.iter().any(|a| a.version == v);
    let live_now = live;
    let live: Vec<String> = live
        .iter()
        .filter(|v| !recorded.retired.contains(*v) || is_approved(v))
        .cloned()
        .collect();
    let live = live.as_slice();
    let recorded = &recorded.served;
    // A version being retired needs no account: retire is how one that never finished its rollout, and lost its
    // approval since, leaves.
    let unaccounted: Vec<String> = live
        .iter()
        .filter(|v| !recorded.contains_key(*v) && !is_approved(v) && Some(v.as_str()) != retiring)
        .cloned()
        .collect();
    if !unaccounted.is_empty() {
        return Err(ServedSetError::Unaccounted(unaccounted));
    }
    let mut versions: BTreeMap<&str, &ApprovedVersion> = BTreeMap::new();
    for a in approved {
        versions.insert(&a.version, a);
    }
    for (v, a) in recorded {
        versions.insert(v, a);
    }
    let served_now = |v: &str| live.iter().any(|l| l == v) || recorded.contains_key(v);
    if let Some(retiring) = retiring {
        // Live though retired: a retire whose rollout did not happen, being finished.
        if !served_now(retiring) && !live_now.iter().any(|v| v == retiring) {
            return Err(ServedSetError::NotServed(retiring.to_string()));
        }
        versions.retain(|v, _| served_now(v) && *v != retiring);
        if versions.is_empty() {
            return Err(ServedSetError::Last(retiring.to_string()));
        }
    }
    let mut versions: Vec<ApprovedVersion> = versions.into_values().cloned().collect();
    versions.sort_by(|a, b| version_order(&a.version, &b.version));
    let names = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        versions
            .iter()
            .map(|a| a.version.clone())
            .filter(|v| keep(v))
            .collect()
    };
    Ok(ServedSet {
        added: names(&|v| !served_now(v)),
        restored: names(&|v| recorded.contains_key(v) && !live.iter().any(|l| l == v)),
        kept_unapproved: names(&|v| !approved.iter().any(|a| a.version == v)),
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::Approval;

    fn approved(version: &str, by: &str) -> ApprovedVersion {
        ApprovedVersion {
            version: version.into(),
            approval: Approval {
                approved_by: by.into(),
                approved_at: "2026-11-26T08:15:00Z".into(),
                ticket: "CHG-1042".into(),
                artifact_sha256: None,
                meaning: None,
            },
            artifact_uri: format!("s3://artifacts/m/{version}"),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn recorded(list: &[(&str, &str)]) -> Recorded {
        Recorded {
            served: list
                .iter()
                .map(|(v, by)| (v.to_string(), approved(v, by)))
                .collect(),
            retired: BTreeSet::new(),
        }
    }

    fn versions(set: &ServedSet) -> Vec<&str> {
        set.versions.iter().map(|a| a.version.as_str()).collect()
    }

    #[test]
    fn a_new_approval_is_added_beside_every_version_served_before() {
        let set = next_served_set(
            &strings(&["2", "10"]),
            &recorded(&[("2", "ana"), ("10", "ana")]),
            &[
                approved("2", "ana"),
                approved("10", "ana"),
                approved("11", "bo"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            versions(&set),
            ["2", "10", "11"],
            "in version order, not text order"
        );
        assert_eq!(set.added, ["11"]);
        assert!(set.restored.is_empty() && set.kept_unapproved.is_empty());
    }

    #[test]
    fn a_withdrawn_approval_leaves_the_version_served_under_its_recorded_approval() {
        let set = next_served_set(
            &strings(&["1", "2"]),
            &recorded(&[("1", "ana"), ("2", "ana")]),
            &[approved("2", "someone-else")],
            None,
        )
        .unwrap();
        assert_eq!(versions(&set), ["1", "2"]);
        assert_eq!(set.kept_unapproved, ["1"]);
        assert_eq!(
            set.versions[1].approval.approved_by, "ana",
            "the recorded approval, not today's"
        );
        assert!(set.added.is_empty());
    }

    #[test]
    fn a_recorded_version_removed_by_hand_is_served_again() {
        let set = next_served_set(
            &strings(&["2"]),
            &recorded(&[("1", "ana"), ("2", "ana")]),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(versions(&set), ["1", "2"]);
        assert_eq!(set.restored, ["1"]);
    }

    #[test]
    fn a_live_version_without_a_record_is_kept_when_approved_and_refused_otherwise() {
        let none = Recorded::default();
        let set = next_served_set(&strings(&["3"]), &none, &[approved("3", "ana")], None).unwrap();
        assert_eq!(versions(&set), ["3"]);
        assert!(
            set.added.is_empty(),
            "served already; only its record is missing"
        );
        let refused = next_served_set(&strings(&["3", "4"]), &none, &[approved("3", "ana")], None);
        assert_eq!(refused, Err(ServedSetError::Unaccounted(strings(&["4"]))));
    }

    #[test]
    fn only_retire_takes_a_version_out_and_never_the_last_one() {
        let live = strings(&["1", "2"]);
        let rec = recorded(&[("1", "ana"), ("2", "ana")]);
        let set = next_served_set(
            &live,
            &rec,
            &[approved("1", "ana"), approved("3", "bo")],
            Some("1"),
        )
        .unwrap();
        assert_eq!(
            versions(&set),
            ["2"],
            "a retire adds no new approval: it changes one thing"
        );
        assert_eq!(
            next_served_set(&live, &rec, &[], Some("7")),
            Err(ServedSetError::NotServed("7".into()))
        );
        assert_eq!(
            next_served_set(&strings(&["2"]), &recorded(&[("2", "ana")]), &[], Some("2")),
            Err(ServedSetError::Last("2".into()))
        );
    }

    #[test]
    fn a_retire_recorded_before_its_rollout_is_finished_by_the_next_run() {
        let mut rec = recorded(&[("2", "ana")]);
        rec.retired.insert("1".into());
        // The retire's record was written, its rollout never happened: v1 is still live.
        let set = next_served_set(&strings(&["1", "2"]), &rec, &[], None).unwrap();
        assert_eq!(versions(&set), ["2"]);
        // As for a Lambda alias: a retired version still approved is served again.
        let set = next_served_set(&strings(&["2"]), &rec, &[approved("1", "ana")], None).unwrap();
        assert_eq!(versions(&set), ["1", "2"]);
        assert_eq!(set.added, ["1"]);
    }

    #[test]
    fn a_retire_stopped_before_its_rollout_can_be_run_again() {
        let mut rec = recorded(&[("2", "ana")]);
        rec.retired.insert("1".into());
        let set = next_served_set(&strings(&["1", "2"]), &rec, &[], Some("1")).unwrap();
        assert_eq!(versions(&set), ["2"]);
    }

    #[test]
    fn a_version_whose_rollout_failed_and_whose_approval_was_withdrawn_can_be_retired() {
        let rec = recorded(&[("2", "ana")]);
        let live = strings(&["2", "3"]);
        assert_eq!(
            next_served_set(&live, &rec, &[], None),
            Err(ServedSetError::Unaccounted(strings(&["3"])))
        );
        let set = next_served_set(&live, &rec, &[], Some("3")).unwrap();
        assert_eq!(versions(&set), ["2"]);
    }

    #[test]
    fn the_annotation_reads_back_what_the_template_writes() {
        assert_eq!(parse_annotation(Some("1,2,10")), ["1", "2", "10"]);
        assert!(parse_annotation(Some("")).is_empty());
        assert!(parse_annotation(None).is_empty());
    }
}
