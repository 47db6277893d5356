//! Approvals from a release manifest (`releases.toml`) kept in git and approved by code review.
//!
//! ```toml
//! [models.risk-score]                       # the catalog's model key
//! stages = { production = "2" }
//! [[models.risk-score.versions]]
//! version = "2"
//! approved_by = "qa@example.org"
//! approved_at = "2026-11-02T09:30:00Z"
//! ticket = "QA-812"
//! artifact_uri = "s3://acme-ml-artifacts/mlflow/1/models/m-abc/artifacts"
//! artifact_sha256 = "…"                     # optional
//! meaning = "approved for clinical use"     # optional: what the approval means (the signature's meaning)
//! revoked = false                           # optional: true withdraws the approval
//! ```
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    Approval, ApprovalError, ApprovalSource, ApprovedVersion, ModelApprovals, check_approval,
    version_order,
};
use crate::catalog::Model;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(default)]
    models: BTreeMap<String, ManifestModel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestModel {
    #[serde(default)]
    stages: BTreeMap<String, String>,
    #[serde(default)]
    versions: Vec<ManifestVersion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestVersion {
    version: String,
    approved_by: String,
    approved_at: String,
    ticket: String,
    artifact_uri: String,
    artifact_sha256: Option<String>,
    meaning: Option<String>,
    #[serde(default)]
    revoked: bool,
}

pub struct ReleaseManifest {
    path: PathBuf,
    models: BTreeMap<String, ModelApprovals>,
}

impl ReleaseManifest {
    pub fn load(path: &Path) -> Result<ReleaseManifest, ApprovalError> {
        let text = std::fs::read_to_string(path).map_err(|e| ApprovalError::Manifest {
            path: path.display().to_string(),
            reason: format!("cannot read the release manifest: {e}"),
        })?;
        ReleaseManifest::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<ReleaseManifest, ApprovalError> {
        let fail = |reason: String| ApprovalError::Manifest {
            path: path.display().to_string(),
            reason,
        };
        let file: ManifestFile =
            toml::from_str(text).map_err(|e| fail(crate::catalog::toml_message(&e, text)))?;
        let mut models = BTreeMap::new();
        for (key, m) in file.models {
            let mut approvals = ModelApprovals {
                stages: m.stages.clone(),
                ..Default::default()
            };
            let mut seen = std::collections::BTreeSet::new();
            for v in m.versions {
                let field = format!("models.{key}.versions[version = {:?}]", v.version);
                if !seen.insert(v.version.clone()) {
                    return Err(fail(format!("{field} appears twice")));
                }
                super::check_version_numbers(std::iter::once(v.version.as_str()))
                    .map_err(|r| fail(format!("{field}: {r}")))?;
                if v.revoked {
                    approvals.revoked.push(v.version);
                    continue;
                }
                let mut approval = Approval {
                    approved_by: v.approved_by,
                    approved_at: v.approved_at,
                    ticket: v.ticket,
                    artifact_sha256: None,
                    meaning: v.meaning,
                };
                check_approval(&approval).map_err(|r| fail(format!("{field} {r}")))?;
                approval.artifact_sha256 =
                    super::parse_artifact_sha256(v.artifact_sha256.as_deref())
                        .map_err(|r| fail(format!("{field} {r}")))?;
                if !v.artifact_uri.starts_with("s3://") {
                    return Err(fail(format!(
                        "{field}.artifact_uri = {:?} is not an s3:// URI",
                        v.artifact_uri
                    )));
                }
                approvals.approved.push(ApprovedVersion {
                    version: v.version,
                    approval,
                    artifact_uri: v.artifact_uri,
                });
            }
            for (stage, version) in &approvals.stages {
                if !approvals.approved.iter().any(|a| &a.version == version) {
                    return Err(fail(format!(
                        "models.{key}.stages.{stage} = {version:?} names a version that is not approved here"
                    )));
                }
            }
            approvals
                .approved
                .sort_by(|a, b| version_order(&a.version, &b.version));
            approvals.revoked.sort_by(|a, b| version_order(a, b));
            models.insert(key, approvals);
        }
        Ok(ReleaseManifest {
            path: path.to_owned(),
            models,
        })
    }
}

impl ApprovalSource for ReleaseManifest {
    async fn read(&self, model: &Model) -> Result<ModelApprovals, ApprovalError> {
        let mut approvals =
            self.models
                .get(&model.key)
                .cloned()
                .ok_or_else(|| ApprovalError::Manifest {
                    path: self.path.display().to_string(),
                    reason: format!("has no [models.{}] section", model.key),
                })?;
        approvals
            .stages
            .retain(|stage, _| model.stages.contains(stage));
        Ok(approvals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[models.risk-score]
stages = { production = "2" }
[[models.risk-score.versions]]
version = "10"
approved_by = "qa@example.org"
approved_at = "2026-11-02T09:30:00Z"
ticket = "QA-9"
artifact_uri = "s3://b/m10"
[[models.risk-score.versions]]
version = "2"
approved_by = "qa@example.org"
approved_at = "2026-11-01T09:30:00Z"
ticket = "QA-8"
artifact_uri = "s3://b/m2"
[[models.risk-score.versions]]
version = "1"
approved_by = "qa@example.org"
approved_at = "2026-10-01T09:30:00Z"
ticket = "QA-7"
artifact_uri = "s3://b/m1"
revoked = true
"#;

    #[test]
    fn versions_sort_numerically_and_revoked_ones_are_listed_apart() {
        let m = ReleaseManifest::parse(Path::new("releases.toml"), GOOD).unwrap();
        let a = &m.models["risk-score"];
        assert_eq!(
            a.approved
                .iter()
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>(),
            ["2", "10"]
        );
        assert_eq!(a.revoked, ["1"]);
        assert_eq!(a.stages["production"], "2");
    }

    #[test]
    fn the_meaning_of_an_approval_is_read_and_an_empty_one_named() {
        let text = GOOD.replace(
            "ticket = \"QA-8\"",
            "ticket = \"QA-8\"\nmeaning = \"approved for clinical use — SOP-12 §4\"",
        );
        let m = ReleaseManifest::parse(Path::new("releases.toml"), &text).unwrap();
        let two = &m.models["risk-score"].approved[0];
        assert_eq!(
            two.approval.meaning.as_deref(),
            Some("approved for clinical use — SOP-12 §4")
        );
        assert_eq!(m.models["risk-score"].approved[1].approval.meaning, None);
        let err = ReleaseManifest::parse(
            Path::new("releases.toml"),
            &GOOD.replace("ticket = \"QA-8\"", "ticket = \"QA-8\"\nmeaning = \"\""),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("versions[version = \"2\"] has an empty ferry.approval_meaning"),
            "{err}"
        );
    }

    #[test]
    fn the_approved_artifact_digest_is_read_and_one_not_in_ferrys_form_named() {
        let digest = ferry_sync::Sha256Hex::of_bytes(b"weights");
        let with = |d: &str| {
            GOOD.replace(
                "ticket = \"QA-8\"",
                &format!("ticket = \"QA-8\"\nartifact_sha256 = \"{d}\""),
            )
        };
        let m = ReleaseManifest::parse(Path::new("releases.toml"), &with(digest.as_str())).unwrap();
        assert_eq!(
            m.models["risk-score"].approved[0].approval.artifact_sha256,
            Some(digest.clone())
        );
        // What `sha256sum` prints in upper case, a digest cut short, one with a stray space: each refused, named.
        for bad in [
            digest.as_str().to_uppercase(),
            digest.as_str()[..40].to_string(),
            format!("{digest} "),
        ] {
            let err = ReleaseManifest::parse(Path::new("releases.toml"), &with(&bad))
                .err()
                .unwrap()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "releases.toml: models.risk-score.versions[version = \"2\"] has ferry.artifact_sha256 = {bad:?}, which is not 64 lowercase hex digits"
                )
            );
        }
    }

    #[test]
    fn a_missing_ticket_is_named() {
        let text = GOOD.replace("ticket = \"QA-8\"", "ticket = \"\"");
        let err = ReleaseManifest::parse(Path::new("releases.toml"), &text)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "releases.toml: models.risk-score.versions[version = \"2\"] has no ticket (ferry.ticket)"
        );
    }

    #[test]
    fn a_stage_on_an_unapproved_version_is_refused() {
        let text = GOOD.replace("production = \"2\"", "production = \"1\"");
        let err = ReleaseManifest::parse(Path::new("releases.toml"), &text)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(
            "models.risk-score.stages.production = \"1\" names a version that is not approved"
        ));
    }
}
