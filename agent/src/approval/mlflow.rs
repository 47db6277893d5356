//! Approvals from an MLflow model registry, through its REST API (MLflow 2.x and 3.x servers).
//!
//! A version is approved when it carries `ferry.approved=true` with `ferry.approved_by`, `ferry.approved_at` and
//! `ferry.ticket` (optionally `ferry.artifact_sha256` and `ferry.approval_meaning`). Its artifacts are located with `get-download-uri`, since a
//! 3.x version's `source` is a `models:/m-<id>` URI, not a path.
use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    Approval, ApprovalError, ApprovalSource, ApprovedVersion, ModelApprovals, check_approval,
    check_version_numbers, parse_artifact_sha256, version_order,
};
use crate::catalog::Model;

pub const TAG_APPROVED: &str = "ferry.approved";
pub const TAG_APPROVED_BY: &str = "ferry.approved_by";
pub const TAG_APPROVED_AT: &str = "ferry.approved_at";
pub const TAG_TICKET: &str = "ferry.ticket";
pub const TAG_ARTIFACT_SHA256: &str = "ferry.artifact_sha256";
pub const TAG_APPROVAL_MEANING: &str = "ferry.approval_meaning";

/// The most versions of one registered model Ferry reads: a registry that pages on past it is answered with an error
/// instead of being followed for ever (a registry answering ever-new page tokens took 43,734 requests in 45 s).
pub const MAX_LISTED_VERSIONS: usize = 100_000;

pub struct MlflowRegistry {
    base: String,
    page_size: u32,
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct SearchPage {
    #[serde(default)]
    model_versions: Vec<ModelVersion>,
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ModelVersion {
    version: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
struct Tag {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct DownloadUri {
    artifact_uri: String,
}

#[derive(Debug, Deserialize)]
struct RegisteredModelAnswer {
    registered_model: RegisteredModel,
}

#[derive(Debug, Deserialize)]
struct RegisteredModel {
    #[serde(default)]
    aliases: Vec<AliasEntry>,
}

#[derive(Debug, Deserialize)]
struct AliasEntry {
    alias: String,
    version: String,
}

impl MlflowRegistry {
    pub fn new(tracking_uri: &str, page_size: u32) -> MlflowRegistry {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        MlflowRegistry {
            base: tracking_uri.trim_end_matches('/').to_string(),
            page_size,
            http,
        }
    }

    pub fn uri(&self) -> &str {
        &self.base
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ApprovalError> {
        let request = format!("GET {path}");
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|source| ApprovalError::Unreachable {
                uri: self.base.clone(),
                source,
            })?;
        let status = answer.status();
        let body = answer
            .text()
            .await
            .map_err(|source| ApprovalError::Unreachable {
                uri: self.base.clone(),
                source,
            })?;
        if !status.is_success() {
            return Err(ApprovalError::Http {
                uri: self.base.clone(),
                request,
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
            });
        }
        serde_json::from_str(&body).map_err(|e| ApprovalError::Shape {
            uri: self.base.clone(),
            request,
            reason: e.to_string(),
        })
    }

    /// Every version of a registered model, following `next_page_token`, for at most as many pages as
    /// [`MAX_LISTED_VERSIONS`] fill.
    async fn all_versions(&self, name: &str) -> Result<Vec<ModelVersion>, ApprovalError> {
        let filter = format!("name='{}'", name.replace('\'', "\\'"));
        let page_size = self.page_size.to_string();
        let max_pages = MAX_LISTED_VERSIONS.div_ceil(self.page_size.max(1) as usize) + 1;
        let mut versions = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..max_pages {
            let mut query = vec![
                ("filter", filter.as_str()),
                ("max_results", page_size.as_str()),
            ];
            if let Some(t) = &token {
                query.push(("page_token", t.as_str()));
            }
            let page: SearchPage = self
                .get("/api/2.0/mlflow/model-versions/search", &query)
                .await?;
            versions.extend(page.model_versions);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => {
                    check_version_numbers(versions.iter().map(|v| v.version.as_str())).map_err(
                        |reason| ApprovalError::Shape {
                            uri: self.base.clone(),
                            request: format!("model-versions/search for {name}"),
                            reason,
                        },
                    )?;
                    return Ok(versions);
                }
            }
            if versions.len() > MAX_LISTED_VERSIONS {
                break;
            }
        }
        Err(ApprovalError::Unbounded {
            uri: self.base.clone(),
            model: name.to_string(),
            pages: max_pages,
            max_versions: MAX_LISTED_VERSIONS,
        })
    }

    async fn download_uri(&self, name: &str, version: &str) -> Result<String, ApprovalError> {
        let answer: DownloadUri = self
            .get(
                "/api/2.0/mlflow/model-versions/get-download-uri",
                &[("name", name), ("version", version)],
            )
            .await?;
        if !answer.artifact_uri.starts_with("s3://") {
            return Err(ApprovalError::BadApproval {
                uri: self.base.clone(),
                model: name.into(),
                version: version.into(),
                reason: format!(
                    "has artifacts at {:?}; Ferry copies artifacts from S3 (s3://...) only",
                    answer.artifact_uri
                ),
            });
        }
        Ok(answer.artifact_uri)
    }

    async fn stage_aliases(
        &self,
        name: &str,
        stages: &[String],
    ) -> Result<BTreeMap<String, String>, ApprovalError> {
        if stages.is_empty() {
            return Ok(BTreeMap::new());
        }
        let answer: RegisteredModelAnswer = self
            .get("/api/2.0/mlflow/registered-models/get", &[("name", name)])
            .await?;
        Ok(answer
            .registered_model
            .aliases
            .into_iter()
            .filter(|a| stages.contains(&a.alias))
            .map(|a| (a.alias, a.version))
            .collect())
    }
}

impl ApprovalSource for MlflowRegistry {
    async fn read(&self, model: &Model) -> Result<ModelApprovals, ApprovalError> {
        let name = model.registered_model.as_str();
        let versions = self.all_versions(name).await?;
        let mut candidates = Vec::new();
        let mut revoked = Vec::new();
        for mv in versions {
            let tags: BTreeMap<&str, &str> = mv
                .tags
                .iter()
                .map(|t| (t.key.as_str(), t.value.as_str()))
                .collect();
            match tags.get(TAG_APPROVED) {
                Some(&"true") => {
                    let tag = |k: &str| tags.get(k).map(|v| v.to_string()).unwrap_or_default();
                    let mut approval = Approval {
                        approved_by: tag(TAG_APPROVED_BY),
                        approved_at: tag(TAG_APPROVED_AT),
                        ticket: tag(TAG_TICKET),
                        artifact_sha256: None,
                        meaning: tags.get(TAG_APPROVAL_MEANING).map(|v| v.to_string()),
                    };
                    let bad = |reason: String| ApprovalError::BadApproval {
                        uri: self.base.clone(),
                        model: name.into(),
                        version: mv.version.clone(),
                        reason: format!("is tagged {TAG_APPROVED}=true but {reason}"),
                    };
                    check_approval(&approval).map_err(bad)?;
                    approval.artifact_sha256 =
                        parse_artifact_sha256(tags.get(TAG_ARTIFACT_SHA256).copied())
                            .map_err(bad)?;
                    candidates.push((mv.version, approval));
                }
                Some(_) => revoked.push(mv.version),
                None => {}
            }
        }
        // Resolve artifact locations a few at a time: one request per approved version.
        let mut approved: Vec<ApprovedVersion> = futures::stream::iter(candidates)
            .map(|(version, approval)| async move {
                let artifact_uri = self.download_uri(name, &version).await?;
                Ok::<_, ApprovalError>(ApprovedVersion {
                    version,
                    approval,
                    artifact_uri,
                })
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        approved.sort_by(|a, b| version_order(&a.version, &b.version));
        revoked.sort_by(|a, b| version_order(a, b));
        let stages = self.stage_aliases(name, &model.stages).await?;
        Ok(ModelApprovals {
            approved,
            revoked,
            stages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A registry on 127.0.0.1 that answers its n-th request (from 0) with `answer(n)`.
    async fn registry(answer: impl Fn(usize) -> String + Send + 'static) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(k) if k > 0 => {}
                        _ => break,
                    }
                    let body = answer(n);
                    n += 1;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            }
        });
        uri
    }

    /// Answers `answers[n]` to the n-th request, the last one from then on.
    async fn registry_answering(answers: Vec<String>) -> String {
        registry(move |n| answers[n.min(answers.len() - 1)].clone()).await
    }

    fn version(v: &str) -> String {
        format!(r#"{{"name": "risk-score", "version": "{v}", "tags": []}}"#)
    }

    #[tokio::test]
    async fn a_registry_listing_a_version_twice_is_refused_naming_it() {
        let uri = registry_answering(vec![
            format!(
                r#"{{"model_versions": [{}, {}], "next_page_token": "p2"}}"#,
                version("1"),
                version("2")
            ),
            format!(r#"{{"model_versions": [{}]}}"#, version("2")),
        ])
        .await;
        let err = MlflowRegistry::new(&uri, 2)
            .all_versions("risk-score")
            .await
            .expect_err("a version listed twice")
            .to_string();
        assert!(err.contains("version \"2\" is listed twice"), "{err}");
    }

    #[tokio::test]
    async fn a_registry_version_that_is_not_a_number_is_refused() {
        for bad in ["../../x", "", "01", "1.5", "v3", "99999999999"] {
            let uri =
                registry_answering(vec![format!(r#"{{"model_versions": [{}]}}"#, version(bad))])
                    .await;
            let err = MlflowRegistry::new(&uri, 10)
                .all_versions("risk-score")
                .await
                .expect_err(bad)
                .to_string();
            assert!(
                err.contains("is not a registry version number"),
                "{bad:?}: {err}"
            );
        }
    }

    /// A registry that answers every search page with no versions and a new `next_page_token`.
    async fn endless_registry() -> String {
        registry(|n| {
            format!(
                r#"{{"model_versions": [], "next_page_token": "page-{}"}}"#,
                n + 1
            )
        })
        .await
    }

    #[tokio::test]
    async fn a_registry_that_never_stops_paging_is_refused_after_a_bound() {
        let registry = MlflowRegistry::new(&endless_registry().await, 1000);
        let answer =
            tokio::time::timeout(Duration::from_secs(60), registry.all_versions("risk-score"))
                .await
                .expect("paging stops by itself");
        let err = answer
            .expect_err("an endless listing is an error")
            .to_string();
        assert!(
            err.contains("risk-score") && err.contains("pages") && err.contains("next_page_token"),
            "{err}"
        );
    }
}
