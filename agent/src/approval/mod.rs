//! Approvals: which versions of a model may be deployed, who approved them, and where the stage aliases point.
//! Two sources behind one trait: the MLflow registry (tags on model versions) and a release manifest in git.
use std::collections::BTreeMap;
use std::future::Future;

use ferry_sync::Sha256Hex;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Model, Registry};

pub mod manifest;
pub mod mlflow;

/// Who approved a version, when, under which ticket, and what the approval means; optionally the artifact digest
/// they approved. Together: the manifestation of an electronic signature (21 CFR 11.50: the signer's name, the date
/// and time, the meaning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub approved_by: String,
    /// RFC 3339.
    pub approved_at: String,
    pub ticket: String,
    pub artifact_sha256: Option<Sha256Hex>,
    /// What the approver's signature means ("approved for clinical use", "reviewed"): `ferry.approval_meaning`.
    /// Left out of the JSON when not given, so the spec hash of a version approved before the field existed stays
    /// what it was (a frozen version's spec never changes by an upgrade of Ferry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovedVersion {
    pub version: String,
    pub approval: Approval,
    /// `s3://bucket/prefix` of the version's artifacts.
    pub artifact_uri: String,
}

/// What the approval source says about one model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelApprovals {
    /// Sorted by version number.
    pub approved: Vec<ApprovedVersion>,
    /// Versions whose approval was withdrawn (`ferry.approved` set to something other than `true`).
    pub revoked: Vec<String>,
    /// Stage alias → version, for the stages the catalog mirrors.
    pub stages: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("registry {uri}: unreachable: {source}")]
    Unreachable { uri: String, source: reqwest::Error },
    #[error("registry {uri}: {request} answered HTTP {status}: {body}")]
    Http {
        uri: String,
        request: String,
        status: u16,
        body: String,
    },
    #[error("registry {uri}: {request} answered with an unexpected shape: {reason}")]
    Shape {
        uri: String,
        request: String,
        reason: String,
    },
    #[error("registry {uri}: {model} version {version} {reason}")]
    BadApproval {
        uri: String,
        model: String,
        version: String,
        reason: String,
    },
    #[error(
        "registry {uri}: listing the versions of {model} did not end after {pages} pages (at most {max_versions} \
         versions are read): the registry keeps answering a next_page_token"
    )]
    Unbounded {
        uri: String,
        model: String,
        pages: usize,
        max_versions: usize,
    },
    #[error("{path}: {reason}")]
    Manifest { path: String, reason: String },
    #[error("no registry URI: set MLFLOW_TRACKING_URI or registry.tracking_uri in the catalog")]
    NoTrackingUri,
}

/// A source of approvals.
pub trait ApprovalSource {
    fn read(
        &self,
        model: &Model,
    ) -> impl Future<Output = Result<ModelApprovals, ApprovalError>> + Send;
}

/// The source the catalog names.
pub enum Source {
    Mlflow(mlflow::MlflowRegistry),
    Manifest(manifest::ReleaseManifest),
}

impl Source {
    pub fn from_catalog(catalog: &Catalog) -> Result<Source, ApprovalError> {
        match &catalog.registry {
            Registry::Mlflow {
                tracking_uri,
                page_size,
            } => {
                let uri = tracking_uri
                    .clone()
                    .or_else(|| {
                        std::env::var("MLFLOW_TRACKING_URI")
                            .ok()
                            .filter(|s| !s.is_empty())
                    })
                    .ok_or(ApprovalError::NoTrackingUri)?;
                Ok(Source::Mlflow(mlflow::MlflowRegistry::new(
                    &uri, *page_size,
                )))
            }
            Registry::Manifest { path } => {
                Ok(Source::Manifest(manifest::ReleaseManifest::load(path)?))
            }
        }
    }
}

impl ApprovalSource for Source {
    async fn read(&self, model: &Model) -> Result<ModelApprovals, ApprovalError> {
        match self {
            Source::Mlflow(r) => r.read(model).await,
            Source::Manifest(m) => m.read(model).await,
        }
    }
}

/// Reads the approvals of several models, concurrently and in catalog order.
pub async fn read_all<S: ApprovalSource + Sync>(
    source: &S,
    models: &[&Model],
) -> Result<Vec<ModelApprovals>, ApprovalError> {
    futures::future::try_join_all(models.iter().map(|m| source.read(m))).await
}

/// The longest approver Ferry records: an e-mail address may have 254 characters, a name beside it some more.
pub const APPROVER_CHARS: usize = 320;
/// The longest ticket: an id or a URL to the change record, not the record itself.
pub const TICKET_CHARS: usize = 2048;
/// The longest meaning: a sentence, like "approved for clinical use under SOP-12 §4".
pub const MEANING_CHARS: usize = 256;

/// Checks the fields every approval needs; `Err(reason)` names the field.
pub fn check_approval(approval: &Approval) -> Result<(), String> {
    if approval.approved_by.trim().is_empty() {
        return Err("has no approver (ferry.approved_by)".into());
    }
    if approval.ticket.trim().is_empty() {
        return Err("has no ticket (ferry.ticket)".into());
    }
    // An audit record is read by people and by tools: one line per field, of a size a record can hold.
    if approval
        .meaning
        .as_ref()
        .is_some_and(|m| m.trim().is_empty())
    {
        return Err("has an empty ferry.approval_meaning (leave the tag out, or say what the approval means)".into());
    }
    let meaning = approval.meaning.clone().unwrap_or_default();
    for (tag, value, max) in [
        ("ferry.approved_by", &approval.approved_by, APPROVER_CHARS),
        ("ferry.ticket", &approval.ticket, TICKET_CHARS),
        ("ferry.approval_meaning", &meaning, MEANING_CHARS),
    ] {
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(format!(
                "has {tag} with a control character ({:?}); an approval is one line of text",
                c
            ));
        }
        let chars = value.chars().count();
        if chars > max {
            return Err(format!(
                "has {tag} of {chars} characters; at most {max} are recorded"
            ));
        }
    }
    if time::OffsetDateTime::parse(
        &approval.approved_at,
        &time::format_description::well_known::Rfc3339,
    )
    .is_err()
    {
        return Err(format!(
            "has ferry.approved_at = {:?}, which is not an RFC 3339 time",
            approval.approved_at
        ));
    }
    Ok(())
}

/// Reads `ferry.artifact_sha256` as the approval source gives it (an MLflow tag, a release manifest's field);
/// `Err(reason)` names the field.
pub fn parse_artifact_sha256(given: Option<&str>) -> Result<Option<Sha256Hex>, String> {
    given
        .map(|d| {
            Sha256Hex::parse(d).map_err(|_| {
                format!("has ferry.artifact_sha256 = {d:?}, which is not 64 lowercase hex digits")
            })
        })
        .transpose()
}

/// Why the approval a version was deployed under is no longer given as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoLongerGiven {
    /// `ferry.approved` is set to something other than `true`.
    Withdrawn,
    /// The version is neither approved nor withdrawn: its tags or its release-manifest entry are gone.
    Removed,
    /// Approved, but not as recorded: one `field "was" is now "is"` per changed field.
    Changed(Vec<String>),
}

impl NoLongerGiven {
    /// What the registry says about `version` now, for people; each caller says what follows from it.
    pub fn describe(&self, version: &str) -> String {
        match self {
            NoLongerGiven::Withdrawn => {
                format!("the approval of version {version} was withdrawn in the registry")
            }
            NoLongerGiven::Removed => format!(
                "the approval of version {version} is no longer in the registry (its ferry.approved tag or \
                 release-manifest entry is gone)"
            ),
            NoLongerGiven::Changed(fields) => format!(
                "the approval of version {version} in the registry is not the one it was deployed under: {}",
                fields.join(", ")
            ),
        }
    }
}

/// Whether the approval `recorded` (what a version was deployed under; `None` for a record that names none) is
/// still given for `version`, unchanged, in what the approval source says now.
pub fn still_given(
    version: &str,
    recorded: Option<&Approval>,
    approvals: &ModelApprovals,
) -> Result<(), NoLongerGiven> {
    if approvals.revoked.iter().any(|v| v == version) {
        return Err(NoLongerGiven::Withdrawn);
    }
    let now = approvals
        .approved
        .iter()
        .find(|a| a.version == version)
        .ok_or(NoLongerGiven::Removed)?;
    let Some(was) = recorded else {
        return Ok(());
    };
    let is = &now.approval;
    let changed: Vec<String> = [
        (
            "approved_by",
            Some(&*was.approved_by),
            Some(&*is.approved_by),
        ),
        (
            "approved_at",
            Some(&*was.approved_at),
            Some(&*is.approved_at),
        ),
        ("ticket", Some(&*was.ticket), Some(&*is.ticket)),
        (
            "artifact_sha256",
            was.artifact_sha256.as_ref().map(Sha256Hex::as_str),
            is.artifact_sha256.as_ref().map(Sha256Hex::as_str),
        ),
        ("meaning", was.meaning.as_deref(), is.meaning.as_deref()),
    ]
    .into_iter()
    .filter(|(_, x, y)| x != y)
    .map(|(field, x, y)| {
        let show = |v: Option<&str>| v.map_or("not set".to_string(), |v| format!("{v:?}"));
        format!("{field} {} is now {}", show(x), show(y))
    })
    .collect();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(NoLongerGiven::Changed(changed))
    }
}

/// Registry versions are numbers; sort them as numbers (then as text, for anything else).
/// Registry versions as MLflow numbers them (1, 2, ...): they name EFS folders and aliases, so anything else (a path,
/// an empty string, a leading zero that would alias another) is refused, and so is a version listed twice.
pub fn check_version_numbers<'a>(versions: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for v in versions {
        let number = !v.is_empty()
            && v.len() <= 10
            && !v.starts_with('0')
            && v.bytes().all(|b| b.is_ascii_digit());
        if !number {
            return Err(format!(
                "version {v:?} is not a registry version number (1 to 10 digits, no leading zero)"
            ));
        }
        if !seen.insert(v) {
            return Err(format!("version {v:?} is listed twice"));
        }
    }
    Ok(())
}

pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(approved_by: &str, ticket: &str) -> Approval {
        Approval {
            approved_by: approved_by.into(),
            approved_at: "2026-11-30T09:12:03Z".into(),
            ticket: ticket.into(),
            artifact_sha256: None,
            meaning: None,
        }
    }

    #[test]
    fn long_unicode_approvers_and_tickets_people_use_are_accepted() {
        for (who, ticket) in [
            (
                "maria.rodriguez-fernandez@clinical-research.example.org",
                "CHG-1042",
            ),
            (
                "José Ñúñez-Müller <jose.nunez-muller@universitätsklinikum.example.de>",
                "https://jira.example.org/browse/QA-812?focusedCommentId=1&page=com.atlassian",
            ),
            ("李小龍 <li@example.cn>", "変更-2026-0001"),
        ] {
            assert_eq!(check_approval(&approval(who, ticket)), Ok(()), "{who}");
        }
    }

    #[test]
    fn control_characters_and_oversized_fields_are_refused_naming_the_tag() {
        let newline = check_approval(&approval("qa@example.org\nroot@evil", "QA-1")).unwrap_err();
        assert!(newline.contains("ferry.approved_by") && newline.contains("control character"));
        let nul = check_approval(&approval("qa@example.org", "QA-1\u{0}")).unwrap_err();
        assert!(nul.contains("ferry.ticket"));
        let huge = check_approval(&approval("qa@example.org", &"x".repeat(1 << 20))).unwrap_err();
        assert!(
            huge.contains("ferry.ticket of 1048576 characters"),
            "{huge}"
        );
        let long = check_approval(&approval(&"a".repeat(321), "QA-1")).unwrap_err();
        assert!(
            long.contains("ferry.approved_by of 321 characters"),
            "{long}"
        );
    }

    #[test]
    fn a_meaning_is_a_line_of_text_and_its_absence_keeps_old_spec_hashes() {
        let with = |m: &str| Approval {
            meaning: Some(m.into()),
            ..approval("qa@example.org", "QA-1")
        };
        assert_eq!(
            check_approval(&with("approved for clinical use — SOP-12 §4")),
            Ok(())
        );
        assert!(
            check_approval(&with("  "))
                .unwrap_err()
                .contains("empty ferry.approval_meaning")
        );
        assert!(
            check_approval(&with("ok\nroot"))
                .unwrap_err()
                .contains("ferry.approval_meaning")
        );
        assert!(
            check_approval(&with(&"m".repeat(257)))
                .unwrap_err()
                .contains("ferry.approval_meaning of 257 characters")
        );
        // An approval without a meaning serialises as it did before the field existed: same spec hash.
        let json = serde_json::to_string(&approval("qa@example.org", "QA-1")).unwrap();
        assert_eq!(
            json,
            r#"{"approved_by":"qa@example.org","approved_at":"2026-11-30T09:12:03Z","ticket":"QA-1","artifact_sha256":null}"#
        );
    }
}
