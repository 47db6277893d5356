//! Observed state of one model function: published versions (with the spec hash each description carries),
//! aliases with their routing, what the audit prefix recorded for each version alias and where each stage alias's
//! last recorded move left it. Four paginated reads and one read per stage alias;
//! the first one also carries `$LATEST`'s runtime, which the plan checks new versions against.
use std::collections::BTreeMap;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use serde::Serialize;

use crate::audit::{AuditEvent, AuditLog, RecordedStage};
use crate::aws::describe_sdk_error;
use crate::spec::{PublishedAs, VersionConfig, parse_version_description};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedVersion {
    pub number: String,
    pub description: String,
    pub code_sha256: String,
    pub role: Option<String>,
    /// What Ferry published it as, when Ferry published it.
    pub ferry: Option<PublishedAs>,
    /// The configuration the version was published with.
    pub config: VersionConfig,
}

/// Reads a [`VersionConfig`] out of a Lambda answer that carries a function's configuration
/// (`FunctionConfiguration` in a listing, `PublishVersionOutput`): the two types have the same getters.
#[macro_export]
macro_rules! version_config {
    ($c:expr) => {{
        let c = $c;
        $crate::spec::VersionConfig {
            memory_mb: c.memory_size(),
            timeout_s: c.timeout(),
            ephemeral_storage_mb: c.ephemeral_storage().map(|e| e.size()),
            environment: c
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            layers: c
                .layers()
                .iter()
                .filter_map(|l| l.arn())
                .map(str::to_string)
                .collect(),
            runtime: c.runtime().map(|r| r.as_str().to_string()),
            runtime_version_arn: c
                .runtime_version_config()
                .and_then(|r| r.runtime_version_arn())
                .map(str::to_string),
        }
    }};
}

/// What listings leave out of a version's configuration (Lambda API reference, ListFunctions: "To get the additional
/// fields (State, ..., RuntimeVersionConfig) for a function or version, use GetFunction").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VersionDetail {
    /// The runtime version the version runs; `None` without a managed runtime.
    pub runtime_version_arn: Option<String>,
    /// `None` where Lambda does not say.
    pub state: Option<VersionState>,
    pub state_reason_code: Option<String>,
}

/// A published version's state (Lambda developer guide, "Lambda function states"): the one place its names are
/// compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionState {
    Active,
    /// Being created or restored: Lambda does not invoke it meanwhile.
    Pending,
    /// Idle long enough for Lambda to reclaim its VPC network interfaces: its next invoke fails
    /// (`ResourceNotReadyException`) and starts a restore.
    Inactive,
    /// Lambda cannot invoke it; `state_reason_code` says why.
    Failed,
    /// A state this build does not know, as Lambda named it.
    Other(String),
}

impl VersionState {
    pub fn of(name: &str) -> VersionState {
        match name {
            "Active" => VersionState::Active,
            "Pending" => VersionState::Pending,
            "Inactive" => VersionState::Inactive,
            "Failed" => VersionState::Failed,
            other => VersionState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            VersionState::Active => "Active",
            VersionState::Pending => "Pending",
            VersionState::Inactive => "Inactive",
            VersionState::Failed => "Failed",
            VersionState::Other(name) => name,
        }
    }
}

impl std::fmt::Display for VersionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for VersionState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What `status` and `verify` say of an Inactive version.
pub const INACTIVE_NOTE: &str = "Inactive (idle: its next invoke fails while Lambda restores it; `ferry reactivate` wakes it now)";

impl VersionDetail {
    pub fn inactive(&self) -> bool {
        self.state == Some(VersionState::Inactive)
    }
}

/// `GetFunction` of Lambda version `lambda_version`: what listings leave out.
pub async fn version_detail(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    lambda_version: &str,
) -> Result<VersionDetail, String> {
    let answer = lambda
        .get_function()
        .function_name(function)
        .qualifier(lambda_version)
        .send()
        .await
        .map_err(|e| describe_sdk_error(&e))?;
    let c = answer.configuration();
    Ok(VersionDetail {
        runtime_version_arn: c
            .and_then(|c| c.runtime_version_config())
            .and_then(|r| r.runtime_version_arn())
            .map(str::to_string),
        state: c
            .and_then(|c| c.state())
            .map(|s| VersionState::of(s.as_str())),
        state_reason_code: c
            .and_then(|c| c.state_reason_code())
            .map(|s| s.as_str().to_string()),
    })
}

/// The newest deploy record of a version alias: the Lambda version it says, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedDeploy {
    pub lambda_version: String,
    /// The record's S3 key (what `verify` reads the recorded spec from).
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedAlias {
    pub name: String,
    pub function_version: String,
    /// Extra version → share of traffic (a canary).
    pub additional: BTreeMap<String, f64>,
    pub description: String,
}

impl ObservedAlias {
    /// Whether the alias shows what a stage-move record says it was left at.
    pub fn matches(&self, recorded: &RecordedStage) -> bool {
        self.function_version == recorded.lambda_version
            && self.additional.len() == recorded.routing.len()
            && self.additional.iter().all(|(v, w)| {
                recorded
                    .routing
                    .get(v)
                    .is_some_and(|r| (r - w).abs() < 1e-9)
            })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObservedFunction {
    pub function_name: String,
    pub versions: BTreeMap<String, ObservedVersion>,
    pub aliases: BTreeMap<String, ObservedAlias>,
    /// Version alias (`v<N>`) → its newest audit record, when that is a deploy record (absent when there is none, or
    /// when the newest record is a retirement).
    pub recorded: BTreeMap<String, RecordedDeploy>,
    /// Stage alias → what its newest stage-move audit record says it was left at.
    pub stage_records: BTreeMap<String, RecordedStage>,
    /// Aliases whose newest route record is a creation: their HTTP route is Ferry's and recorded.
    pub routed: std::collections::BTreeSet<String>,
    /// Aliases whose newest function URL record is a creation: their URL is Ferry's and recorded.
    pub url_recorded: std::collections::BTreeSet<String>,
    /// The function's unqualified ARN, as listed (what its aliases' ARNs, and so their routes, are made of).
    pub function_arn: Option<String>,
    /// `$LATEST`'s revision as listed (the first update's precondition; saves a read per function).
    pub latest_revision_id: Option<String>,
    /// `$LATEST`'s runtime as listed (`python3.13`), what a version published now runs on; `None` for a function
    /// without a managed runtime (a container image).
    pub runtime: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("{function}: {call} failed: {reason}")]
    Lambda {
        function: String,
        call: &'static str,
        reason: String,
    },
    #[error("{function}: does not exist; create it with the Terraform model-function module first")]
    NoFunction { function: String },
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl ObservedFunction {
    /// The Lambda version a version alias's newest deploy record says.
    pub fn recorded_version(&self, alias: &str) -> Option<&str> {
        self.recorded.get(alias).map(|r| r.lambda_version.as_str())
    }

    /// Lambda versions referenced by any alias, main or weighted.
    pub fn referenced_versions(&self) -> std::collections::BTreeSet<String> {
        self.aliases
            .values()
            .flat_map(|a| {
                std::iter::once(a.function_version.clone()).chain(a.additional.keys().cloned())
            })
            .collect()
    }

    /// What version alias `alias` of `model` v`version` points at, read the one way `plan` and `verify` both read it:
    /// all of its traffic on one Lambda version, which exists and which Ferry published for this model and registry
    /// version. That version and what Ferry published it as; else why not (drift).
    pub fn version_alias_target(
        &self,
        alias: &ObservedAlias,
        model: &str,
        version: &str,
    ) -> Result<(&ObservedVersion, &PublishedAs), String> {
        let lv = &alias.function_version;
        if !alias.additional.is_empty() {
            return Err(format!(
                "version alias carries a traffic split {:?}; a version alias sends all its traffic to its one version",
                alias.additional
            ));
        }
        let Some(published) = self.versions.get(lv) else {
            return Err(format!(
                "points at Lambda version {lv}, which does not exist"
            ));
        };
        let Some(ferry) = &published.ferry else {
            return Err(format!(
                "points at Lambda version {lv}, which was not published by Ferry (no spec hash in its description)"
            ));
        };
        if ferry.model != model || ferry.version != version {
            return Err(format!(
                "points at Lambda version {lv}, which was published for {} v{}",
                ferry.model, ferry.version
            ));
        }
        Ok((published, ferry))
    }

    /// A published version of exactly this spec (its hash, and the configuration it sets), for reuse after an
    /// interrupted deploy.
    pub fn version_of(&self, spec: &crate::spec::FunctionSpec) -> Option<&ObservedVersion> {
        self.versions.values().find(|v| {
            v.ferry
                .as_ref()
                .is_some_and(|p| p.spec_hash == spec.spec_hash)
                && crate::spec::configuration_differences(spec, &v.config).is_empty()
        })
    }
}

pub async fn observe(
    lambda: &aws_sdk_lambda::Client,
    audit: &AuditLog,
    model: &str,
    function: &str,
) -> Result<ObservedFunction, ObserveError> {
    let err = |call: &'static str, reason: String| ObserveError::Lambda {
        function: function.into(),
        call,
        reason,
    };
    // Aliases before versions, and audit records after both: a concurrent run publishes a version before it points
    // an alias at it and records the alias after, so a look in this order never sees an alias whose version is
    // missing, only states that run passes through (an alias not yet recorded is an audit repair, not drift).
    let mut aliases = BTreeMap::new();
    let mut pages = lambda
        .list_aliases()
        .function_name(function)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| err("ListAliases", describe_sdk_error(&e)))?;
        for a in page.aliases() {
            let (Some(name), Some(fv)) = (a.name(), a.function_version()) else {
                continue;
            };
            let additional = a
                .routing_config()
                .and_then(|r| r.additional_version_weights())
                .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default();
            aliases.insert(
                name.to_string(),
                ObservedAlias {
                    name: name.into(),
                    function_version: fv.into(),
                    additional,
                    description: a.description().unwrap_or_default().to_string(),
                },
            );
        }
    }
    let mut versions = BTreeMap::new();
    let mut latest_revision_id = None;
    let mut runtime = None;
    let mut function_arn = None;
    let mut pages = lambda
        .list_versions_by_function()
        .function_name(function)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                return Err(ObserveError::NoFunction {
                    function: function.into(),
                });
            }
            Err(e) => return Err(err("ListVersionsByFunction", describe_sdk_error(&e))),
        };
        for v in page.versions() {
            let Some(number) = v.version().filter(|n| *n != "$LATEST") else {
                latest_revision_id = v.revision_id().map(str::to_string);
                runtime = v.runtime().map(|r| r.as_str().to_string());
                function_arn = v
                    .function_arn()
                    .map(|a| a.strip_suffix(":$LATEST").unwrap_or(a).to_string());
                continue;
            };
            let description = v.description().unwrap_or_default().to_string();
            let ferry = parse_version_description(&description);
            versions.insert(
                number.to_string(),
                ObservedVersion {
                    number: number.to_string(),
                    description,
                    code_sha256: v.code_sha256().unwrap_or_default().to_string(),
                    role: v.role().map(str::to_string),
                    ferry,
                    config: crate::version_config!(v),
                },
            );
        }
    }
    let mut recorded = BTreeMap::new();
    for event in audit.version_events(model).await? {
        match event {
            AuditEvent::Deploy {
                alias,
                lambda_version,
                key,
            } => recorded.insert(
                alias,
                RecordedDeploy {
                    lambda_version,
                    key,
                },
            ),
            AuditEvent::Retire { alias, .. } => recorded.remove(&alias),
        };
    }
    let stage_records = audit.stage_records(model).await?;
    let routed = audit.routed_aliases(model).await?;
    let url_recorded = audit.url_recorded_aliases(model).await?;
    Ok(ObservedFunction {
        routed,
        url_recorded,
        function_arn,
        function_name: function.into(),
        versions,
        aliases,
        recorded,
        stage_records,
        latest_revision_id,
        runtime,
    })
}
