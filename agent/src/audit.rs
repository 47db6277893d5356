//! The audit log: one JSON object per event under the platform's audit prefix, written with `If-None-Match: *`
//! so that no record is ever overwritten. Keys carry what the plan needs, so one listing per model suffices:
//!
//! ```text
//! <audit_prefix><environment>/<model>/v<N>/<time>-deploy-lv<L>.json      alias v<N> created at Lambda version L
//! <audit_prefix><environment>/<model>/v<N>/<time>-retire-lv<L>.json      alias v<N> (at L) deleted by `ferry retire`
//! <audit_prefix><environment>/<model>/stages/<stage>/<time>-lv<L>.json  a stage alias moved
//! <audit_prefix><environment>/<model>/gc/<time>-lv<L>.json              an unreferenced version deleted
//! <audit_prefix><environment>/<model>/routes/<alias>/<time>-create.json  the alias's HTTP route created
//! <audit_prefix><environment>/<model>/routes/<alias>/<time>-delete.json  its route deleted (`ferry retire`)
//! <audit_prefix><environment>/<model>/urls/<alias>/<time>-create.json    the alias's function URL created
//! <audit_prefix><environment>/<model>/urls/<alias>/<time>-delete.json    its function URL deleted (`ferry retire`)
//! <audit_prefix><environment>/<model>/eks/<alias>/<time>-serve.json   v<N> served by the EKS Deployment (rolled out)
//! <audit_prefix><environment>/<model>/eks/<alias>/<time>-retire.json  v<N> out of its served set (`ferry retire`)
//! <audit_prefix><environment>/<model>/eks/rollouts/<time>.json         its Deployment's manifests applied (or emitted)
//! <audit_prefix><environment>/<model>/verifications/<time>.json        a `ferry verify --record` over the model
//! <audit_prefix><environment>/unlock/<time>.json                         a lock removed by force
//! ```
use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;

use crate::approval::Approval;
use crate::lock::RunId;
use crate::platform::Platform;
use crate::runtime_management::RuntimeManagement;
use crate::spec::{FunctionSpec, VersionConfig};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit s3://{bucket}/{key}: {reason}")]
    S3 {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error(
        "audit s3://{bucket}/{key}: a record already exists there; audit records are never overwritten"
    )]
    Exists { bucket: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    Deploy {
        alias: String,
        lambda_version: String,
        /// The record's full S3 key.
        key: String,
    },
    Retire {
        alias: String,
        lambda_version: String,
    },
}

/// Who ran the deploy: the AWS identity, the run (as its lock names it), and what CI says about the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deployer {
    pub aws_identity: Option<String>,
    /// The run that wrote the record; the deploy lock carries the same id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    pub host: String,
    pub user: Option<String>,
    pub ci: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot tell who is making this change: sts:GetCallerIdentity failed: {reason}; audit records need the deployer's AWS identity, so nothing was changed"
)]
pub struct IdentityError {
    reason: String,
}

impl Deployer {
    /// The deployer of run `run_id`. Fails when the AWS identity cannot be had: a change without it would be an
    /// audit record that does not say who made it.
    pub async fn identify(
        sts: &aws_sdk_sts::Client,
        run_id: RunId,
    ) -> Result<Deployer, IdentityError> {
        let aws_identity = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| IdentityError {
                reason: crate::aws::describe_sdk_error(&e),
            })?
            .arn()
            .map(str::to_string)
            .ok_or_else(|| IdentityError {
                reason: "the answer names no ARN".into(),
            })?;
        let ci = [
            "GITHUB_REPOSITORY",
            "GITHUB_RUN_ID",
            "GITHUB_ACTOR",
            "GITHUB_SHA",
            "GITHUB_WORKFLOW",
            "CI_PROJECT_PATH",
            "CI_PIPELINE_ID",
            "CI_JOB_ID",
            "GITLAB_USER_LOGIN",
            "CI_COMMIT_SHA",
        ]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
        Ok(Deployer {
            aws_identity: Some(aws_identity),
            run_id: Some(run_id),
            host: hostname(),
            user: std::env::var("USER").ok(),
            ci,
        })
    }

    pub fn name(&self) -> String {
        let who = self
            .ci
            .get("GITHUB_ACTOR")
            .or(self.ci.get("GITLAB_USER_LOGIN"))
            .or(self.user.as_ref());
        format!(
            "{}@{}",
            who.map(String::as_str).unwrap_or("unknown"),
            self.host
        )
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The body of one audit record. Fields that do not apply to an event are left out of the JSON; build one with
/// struct-update syntax from `AuditRecord::default()`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditRecord {
    pub event: &'static str,
    pub environment: String,
    pub model: String,
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub alias: String,
    pub lambda_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The HTTP route of an alias, on `route-create` and `route-delete` records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteRecord>,
    /// The function URL of an alias, on `function-url-create` and `function-url-delete` records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_url: Option<String>,
    /// On deploy records: the whole spec the version was published from (`spec_hash` is its hash), so that the
    /// record alone shows, and re-derives, what was approved and deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Box<FunctionSpec>>,
    /// On deploy records: the published version's configuration as Lambda answered it (its runtime and layers too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<VersionConfig>,
    /// On deploy records: how Lambda updates the version's runtime (pinned by Ferry before the alias existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_management: Option<RuntimeManagement>,
    /// On `eks-serve` and `eks-retire` records: where the version is (or was) served, and the whole served set after
    /// the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eks: Option<EksRecord>,
    pub deployer: Deployer,
    pub time: String,
}

/// What an EKS record says besides the approval: the Deployment, its image, and the served set it rolled out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EksRecord {
    pub cluster: String,
    pub namespace: String,
    pub deployment: String,
    pub image: String,
    /// `s3://bucket/prefix` the version's artifacts were copied from (its approval's).
    pub artifact_uri: String,
    /// Every version the Deployment serves after this change, in version order.
    pub served_versions: Vec<String>,
    /// The SHA-256 of the manifests applied (the Deployment's `ferry.dev/rendered-sha256`).
    pub rendered_sha256: String,
    /// With `--emit-only`: the folder the manifests were written to (a GitOps tool applies them), not the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emitted_to: Option<String>,
    /// On `eks-rollout` records: the objects applied or deleted, and why (`Deployment ferry/ferry-risk differs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

/// What an `eks-serve` record is read back for: the approval the version is served under.
#[derive(Debug, Clone, serde::Deserialize)]
struct RecordedEksServe {
    version: String,
    approval: Approval,
    eks: EksRecord,
}

/// What a route record says: the route, its integration and the permission that lets the route invoke the alias.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteRecord {
    pub api_id: String,
    pub route_key: String,
    pub route_id: String,
    pub integration_id: String,
    /// The alias ARN the integration invokes.
    pub integration_uri: String,
    pub authorization_type: String,
    /// The invoke permission on the alias: its statement id and the route ARN it is scoped to.
    pub permission_statement_id: String,
    pub permission_source_arn: String,
}

/// A route record's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEvent {
    Create,
    Delete,
}

impl RouteEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteEvent::Create => "create",
            RouteEvent::Delete => "delete",
        }
    }
}

/// A version entering (`serve`) or leaving (`retire`) a model's EKS served set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EksEvent {
    Serve,
    Retire,
}

impl EksEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            EksEvent::Serve => "serve",
            EksEvent::Retire => "retire",
        }
    }
}

#[derive(Clone)]
pub struct AuditLog {
    s3: aws_sdk_s3::Client,
    bucket: String,
    /// `<audit_prefix><environment>/`
    prefix: String,
}

/// Sortable UTC time with milliseconds, used in keys: `20261126T081500.123Z`.
pub fn key_time(now: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    now.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

pub fn rfc3339(now: time::OffsetDateTime) -> String {
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl AuditLog {
    pub fn new(s3: aws_sdk_s3::Client, platform: &Platform) -> AuditLog {
        AuditLog {
            s3,
            bucket: platform.artifact_bucket.clone(),
            prefix: format!("{}{}/", platform.audit_prefix, platform.environment),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `<audit_prefix><environment>/`: where this environment's records are.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn deploy_key(
        &self,
        model: &str,
        alias: &str,
        lambda_version: &str,
        now: time::OffsetDateTime,
    ) -> String {
        format!(
            "{}{model}/{alias}/{}-deploy-lv{lambda_version}.json",
            self.prefix,
            key_time(now)
        )
    }

    pub fn retire_key(
        &self,
        model: &str,
        alias: &str,
        lambda_version: &str,
        now: time::OffsetDateTime,
    ) -> String {
        format!(
            "{}{model}/{alias}/{}-retire-lv{lambda_version}.json",
            self.prefix,
            key_time(now)
        )
    }

    pub fn stage_key(
        &self,
        model: &str,
        stage: &str,
        lambda_version: &str,
        now: time::OffsetDateTime,
    ) -> String {
        format!(
            "{}{model}/stages/{stage}/{}-lv{lambda_version}.json",
            self.prefix,
            key_time(now)
        )
    }

    pub fn gc_key(&self, model: &str, lambda_version: &str, now: time::OffsetDateTime) -> String {
        format!(
            "{}{model}/gc/{}-lv{lambda_version}.json",
            self.prefix,
            key_time(now)
        )
    }

    /// Where the record of an alias's route's creation or deletion goes.
    pub fn route_key(
        &self,
        model: &str,
        alias: &str,
        event: RouteEvent,
        now: time::OffsetDateTime,
    ) -> String {
        self.endpoint_key(model, "routes", alias, event, now)
    }

    /// Where the record of an alias's function URL's creation or deletion goes.
    pub fn url_key(
        &self,
        model: &str,
        alias: &str,
        event: RouteEvent,
        now: time::OffsetDateTime,
    ) -> String {
        self.endpoint_key(model, "urls", alias, event, now)
    }

    fn endpoint_key(
        &self,
        model: &str,
        folder: &str,
        alias: &str,
        event: RouteEvent,
        now: time::OffsetDateTime,
    ) -> String {
        format!(
            "{}{model}/{folder}/{alias}/{}-{}.json",
            self.prefix,
            key_time(now),
            event.as_str()
        )
    }

    /// The aliases of a model whose newest route record is a creation (one listing).
    pub async fn routed_aliases(
        &self,
        model: &str,
    ) -> Result<std::collections::BTreeSet<String>, AuditError> {
        self.created_endpoints(model, "routes").await
    }

    /// The aliases of a model whose newest function URL record is a creation (one listing).
    pub async fn url_recorded_aliases(
        &self,
        model: &str,
    ) -> Result<std::collections::BTreeSet<String>, AuditError> {
        self.created_endpoints(model, "urls").await
    }

    /// The aliases whose newest record under `<model>/<folder>/` is a creation.
    async fn created_endpoints(
        &self,
        model: &str,
        folder: &str,
    ) -> Result<std::collections::BTreeSet<String>, AuditError> {
        let prefix = format!("{}{model}/{folder}/", self.prefix);
        let mut newest: BTreeMap<String, String> = BTreeMap::new();
        for key in self.list_keys(&prefix).await? {
            // `<alias>/<time>-<event>.json`: the time sorts, so the greatest file name per alias is its last event.
            let Some((alias, file)) = key[prefix.len()..].split_once('/') else {
                continue;
            };
            let slot = newest.entry(alias.to_string()).or_default();
            if file > slot.as_str() {
                *slot = file.to_string();
            }
        }
        Ok(newest
            .into_iter()
            .filter(|(_, file)| file.ends_with("-create.json"))
            .map(|(alias, _)| alias)
            .collect())
    }

    pub fn unlock_key(&self, now: time::OffsetDateTime) -> String {
        format!("{}unlock/{}.json", self.prefix, key_time(now))
    }

    /// A dead run's expired lock taken over by a later run (beside the forced unlocks: every lock removal).
    pub fn takeover_key(&self, now: time::OffsetDateTime) -> String {
        format!("{}unlock/{}-takeover.json", self.prefix, key_time(now))
    }

    /// Where the record of one `ferry verify --record` over a model goes.
    pub fn verification_key(&self, model: &str, now: time::OffsetDateTime) -> String {
        format!(
            "{}{model}/verifications/{}.json",
            self.prefix,
            key_time(now)
        )
    }

    /// Writes a record; an existing object at the key is an error, never overwritten.
    pub async fn write(&self, key: &str, record: &impl Serialize) -> Result<(), AuditError> {
        let body = serde_json::to_vec_pretty(record).unwrap_or_default();
        let put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(body.clone()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            // The SDK retried a put whose answer was lost: the record there is this one (it names the run and the
            // millisecond), so it was written.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                if self.holds(key, &body).await {
                    return Ok(());
                }
                Err(AuditError::Exists {
                    bucket: self.bucket.clone(),
                    key: key.into(),
                })
            }
            Err(e) => Err(AuditError::S3 {
                bucket: self.bucket.clone(),
                key: key.into(),
                reason: crate::aws::describe_sdk_error(&e),
            }),
        }
    }

    /// Whether the object at `key` holds exactly `body`.
    async fn holds(&self, key: &str, body: &[u8]) -> bool {
        self.read_bytes(key).await.is_ok_and(|b| b == body)
    }

    /// Where the record of a version entering or leaving a model's EKS served set goes.
    pub fn eks_key(
        &self,
        model: &str,
        alias: &str,
        event: EksEvent,
        now: time::OffsetDateTime,
    ) -> String {
        format!(
            "{}{model}/eks/{alias}/{}-{}.json",
            self.prefix,
            key_time(now),
            event.as_str()
        )
    }

    /// Where the record of one apply (or emit) of a model's EKS manifests goes.
    pub fn eks_rollout_key(&self, model: &str, now: time::OffsetDateTime) -> String {
        format!("{}{model}/eks/rollouts/{}.json", self.prefix, key_time(now))
    }

    /// The versions the audit records say a model's EKS Deployment serves (served, and not retired since), each with
    /// the approval it was served under.
    pub async fn eks_served(
        &self,
        model: &str,
    ) -> Result<crate::eks::served::Recorded, AuditError> {
        let prefix = format!("{}{model}/eks/", self.prefix);
        let mut events: Vec<crate::history::KeyedEvent> = self
            .list_keys(&prefix)
            .await?
            .iter()
            .filter_map(|k| crate::history::parse_key(&k[self.prefix.len()..], k))
            .collect();
        events.sort_by(|a, b| (&a.key_time, &a.key).cmp(&(&b.key_time, &b.key)));
        let mut last: BTreeMap<String, crate::history::KeyedEvent> = BTreeMap::new();
        for e in events.into_iter().filter(|e| e.alias.is_some()) {
            last.insert(e.alias.clone().unwrap_or_default(), e);
        }
        let mut recorded = crate::eks::served::Recorded::default();
        for (alias, e) in last {
            if e.kind != crate::history::EventKind::EksServe {
                if let Some(version) = crate::plan::is_version_alias(&alias) {
                    recorded.retired.insert(version.to_string());
                }
                continue;
            }
            let body = self.read_bytes(&e.key).await?;
            let r: RecordedEksServe =
                serde_json::from_slice(&body).map_err(|err| AuditError::S3 {
                    bucket: self.bucket.clone(),
                    key: e.key.clone(),
                    reason: format!("not an eks-serve record: {err}"),
                })?;
            recorded.served.insert(
                r.version.clone(),
                crate::approval::ApprovedVersion {
                    version: r.version,
                    approval: r.approval,
                    artifact_uri: r.eks.artifact_uri,
                },
            );
        }
        Ok(recorded)
    }

    /// Every record of the environment: (key relative to `<audit_prefix><environment>/`, key).
    pub async fn all_keys(&self) -> Result<Vec<(String, String)>, AuditError> {
        Ok(self
            .list_keys(&self.prefix)
            .await?
            .into_iter()
            .map(|k| (k[self.prefix.len()..].to_string(), k))
            .collect())
    }

    /// Every record of the environment Ferry wrote, as its key names it (one listing, no record read).
    pub async fn keyed_events(&self) -> Result<Vec<crate::history::KeyedEvent>, AuditError> {
        Ok(self
            .all_keys()
            .await?
            .iter()
            .filter_map(|(rel, key)| crate::history::parse_key(rel, key))
            .collect())
    }

    /// The bytes of the object at `key`.
    async fn read_bytes(&self, key: &str) -> Result<Vec<u8>, AuditError> {
        let err = |reason: String| AuditError::S3 {
            bucket: self.bucket.clone(),
            key: key.into(),
            reason,
        };
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| err(crate::aws::describe_sdk_error(&e)))?;
        Ok(out
            .body
            .collect()
            .await
            .map_err(|e| err(e.to_string()))?
            .to_vec())
    }

    /// One record, as JSON.
    pub async fn read_record(&self, key: &str) -> Result<serde_json::Value, AuditError> {
        serde_json::from_slice(&self.read_bytes(key).await?).map_err(|e| AuditError::S3 {
            bucket: self.bucket.clone(),
            key: key.into(),
            reason: format!("not a JSON record: {e}"),
        })
    }

    /// Every key under `prefix`, over all pages.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, AuditError> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AuditError::S3 {
                bucket: self.bucket.clone(),
                key: prefix.into(),
                reason: crate::aws::describe_sdk_error(&e),
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(str::to_string),
            );
        }
        Ok(keys)
    }

    /// Deploy and retire events of a model's version aliases, oldest first.
    pub async fn version_events(&self, model: &str) -> Result<Vec<AuditEvent>, AuditError> {
        let prefix = format!("{}{model}/v", self.prefix);
        let mut events: Vec<(String, AuditEvent)> = self
            .list_keys(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| parse_version_key(&k[prefix.len() - 1..], &k))
            .collect();
        events.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }
}

/// What a deploy record says, as `verify` reads it back. Records written before a field existed lack it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RecordedDeployBody {
    pub lambda_version: String,
    #[serde(default)]
    pub code_sha256: Option<String>,
    #[serde(default)]
    pub spec_hash: Option<String>,
    #[serde(default)]
    pub artifact_digest: Option<String>,
    #[serde(default)]
    pub approval: Option<Approval>,
    #[serde(default)]
    pub spec: Option<FunctionSpec>,
    #[serde(default)]
    pub configuration: Option<VersionConfig>,
    #[serde(default)]
    pub runtime_management: Option<RuntimeManagement>,
}

impl AuditLog {
    /// A deploy record, read back.
    pub async fn read_deploy_record(&self, key: &str) -> Result<RecordedDeployBody, AuditError> {
        serde_json::from_slice(&self.read_bytes(key).await?).map_err(|e| AuditError::S3 {
            bucket: self.bucket.clone(),
            key: key.into(),
            reason: format!("not a deploy record: {e}"),
        })
    }
}

/// What the newest stage-move record of a stage alias says it was left at.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
pub struct RecordedStage {
    /// The alias's main Lambda version.
    pub lambda_version: String,
    /// Extra version → share of traffic (a canary); empty for a full move.
    #[serde(default)]
    pub routing: BTreeMap<String, f64>,
    /// The registry version the move was to.
    #[serde(default)]
    pub version: Option<String>,
}

impl AuditLog {
    /// Per stage alias of a model, what its newest stage-move record says (one listing, one read per stage).
    pub async fn stage_records(
        &self,
        model: &str,
    ) -> Result<BTreeMap<String, RecordedStage>, AuditError> {
        let prefix = format!("{}{model}/stages/", self.prefix);
        let err = |key: &str, reason: String| AuditError::S3 {
            bucket: self.bucket.clone(),
            key: key.into(),
            reason,
        };
        let mut newest: BTreeMap<String, String> = BTreeMap::new();
        for key in self.list_keys(&prefix).await? {
            // `<stage>/<time>-lv<L>.json`: the time sorts, so the greatest key per stage is its last move.
            let Some((stage, _)) = key[prefix.len()..].split_once('/') else {
                continue;
            };
            let slot = newest.entry(stage.to_string()).or_default();
            if key > *slot {
                *slot = key.clone();
            }
        }
        let mut records = BTreeMap::new();
        for (stage, key) in newest {
            let bytes = self.read_bytes(&key).await?;
            let record: RecordedStage = serde_json::from_slice(&bytes)
                .map_err(|e| err(&key, format!("not a stage-move record: {e}")))?;
            records.insert(stage, record);
        }
        Ok(records)
    }
}

/// `v<N>/<time>-deploy-lv<L>.json` (relative to the model's prefix; `key` is the whole key) → (time, event).
fn parse_version_key(rel: &str, key: &str) -> Option<(String, AuditEvent)> {
    let (alias, file) = rel.split_once('/')?;
    // `<model>/v…` also lists `<model>/verifications/`: only version aliases' records are events of them.
    crate::plan::is_version_alias(alias)?;
    let stem = file.strip_suffix(".json")?;
    let (time, rest) = stem.split_once('-')?;
    let (kind, lv) = rest.split_once("-lv")?;
    let (alias, lambda_version) = (alias.to_string(), lv.to_string());
    let event = match kind {
        "deploy" => AuditEvent::Deploy {
            alias,
            lambda_version,
            key: key.to_string(),
        },
        "retire" => AuditEvent::Retire {
            alias,
            lambda_version,
        },
        _ => return None,
    };
    Some((time.to_string(), event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_parse_back() {
        assert_eq!(
            parse_version_key("v3/20261126T081500.123Z-deploy-lv7.json", "k"),
            Some((
                "20261126T081500.123Z".into(),
                AuditEvent::Deploy {
                    alias: "v3".into(),
                    lambda_version: "7".into(),
                    key: "k".into()
                }
            ))
        );
        assert_eq!(
            parse_version_key("v3/20261126T081500.123Z-retire-lv7.json", "k").map(|e| e.1),
            Some(AuditEvent::Retire {
                alias: "v3".into(),
                lambda_version: "7".into()
            })
        );
        assert_eq!(parse_version_key("v3/notes.txt", "k"), None);
        // Listed under the same `<model>/v` prefix, a verification (or anything else) is no version's event.
        assert_eq!(
            parse_version_key("verifications/20261126T081500.123Z-deploy-lv7.json", "k"),
            None
        );
    }

    #[test]
    fn key_times_sort_as_times() {
        let a = key_time(time::macros::datetime!(2026-11-26 08:15:00.5 UTC));
        let b = key_time(time::macros::datetime!(2026-11-26 10:00:00 UTC));
        assert_eq!(a, "20261126T081500.500Z");
        assert!(a < b);
    }
}
