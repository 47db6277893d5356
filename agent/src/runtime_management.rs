//! The runtime a published version runs, frozen too. Lambda moves every version in its default `Auto` mode to each
//! new runtime version it releases (Lambda developer guide, "Runtime management controls"), so an approved version
//! would run a runtime nobody validated it on. Ferry pins each version it publishes, before its alias exists, to the
//! runtime version it was published on (`Manual`: "the function will use this runtime version indefinitely"), records
//! the pin in the deploy record, and `verify` reads it back. Taking a patched runtime is then a new deploy of a
//! validated version, never a change under a live alias.
use aws_sdk_lambda::types::UpdateRuntimeOn;
use serde::{Deserialize, Serialize};

use crate::aws::describe_sdk_error;
use crate::observe::{VersionDetail, version_detail};

/// A version's runtime management configuration, as Lambda answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeManagement {
    /// `Auto`, `FunctionUpdate` or `Manual`.
    pub update_runtime_on: String,
    /// The runtime version the version is pinned to (Lambda answers it in `Manual` mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version_arn: Option<String>,
}

impl RuntimeManagement {
    /// What Ferry sets on each version it publishes.
    pub fn pinned(runtime_version_arn: &str) -> RuntimeManagement {
        RuntimeManagement {
            update_runtime_on: UpdateRuntimeOn::Manual.as_str().to_string(),
            runtime_version_arn: Some(runtime_version_arn.to_string()),
        }
    }

    fn of(mode: Option<&UpdateRuntimeOn>, arn: Option<&str>) -> RuntimeManagement {
        RuntimeManagement {
            update_runtime_on: mode.map_or("not answered", |m| m.as_str()).to_string(),
            runtime_version_arn: arn.map(str::to_string),
        }
    }
}

impl std::fmt::Display for RuntimeManagement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.runtime_version_arn {
            Some(arn) => write!(f, "{} (runtime version {arn})", self.update_runtime_on),
            None => f.write_str(&self.update_runtime_on),
        }
    }
}

/// `PutRuntimeManagementConfig` of Lambda version `lambda_version` to `wanted`; Lambda's answer.
pub async fn put(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    lambda_version: &str,
    wanted: &RuntimeManagement,
) -> Result<RuntimeManagement, String> {
    let answer = lambda
        .put_runtime_management_config()
        .function_name(function)
        .qualifier(lambda_version)
        .update_runtime_on(UpdateRuntimeOn::from(wanted.update_runtime_on.as_str()))
        .set_runtime_version_arn(wanted.runtime_version_arn.clone())
        .send()
        .await
        .map_err(|e| describe_sdk_error(&e))?;
    Ok(RuntimeManagement::of(
        Some(answer.update_runtime_on()),
        answer.runtime_version_arn(),
    ))
}

/// `GetRuntimeManagementConfig` of Lambda version `lambda_version`.
pub async fn read(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    lambda_version: &str,
) -> Result<RuntimeManagement, String> {
    let answer = lambda
        .get_runtime_management_config()
        .function_name(function)
        .qualifier(lambda_version)
        .send()
        .await
        .map_err(|e| describe_sdk_error(&e))?;
    Ok(RuntimeManagement::of(
        answer.update_runtime_on(),
        answer.runtime_version_arn(),
    ))
}

/// A version's runtime as `verify` reads it: its update mode, and what `GetFunction` says of it (its runtime
/// version, its state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRuntime {
    pub management: RuntimeManagement,
    pub detail: VersionDetail,
}

/// Both reads of a version's runtime.
pub async fn observe(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    lambda_version: &str,
) -> Result<ObservedRuntime, String> {
    Ok(ObservedRuntime {
        management: read(lambda, function, lambda_version).await?,
        detail: version_detail(lambda, function, lambda_version).await?,
    })
}

/// How a version's runtime management differs from its record; `None` when it is as recorded.
pub fn difference(recorded: &RuntimeManagement, found: &RuntimeManagement) -> Option<String> {
    (recorded != found).then(|| {
        format!("its runtime update mode is {found}, its deploy record says {recorded}: changed after the deploy")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:eu-west-1::runtime:0cdcfbdefbc5e7d3343f73c2e2dd3cba17d61dea0686b404502a0c9ce83931b9";

    #[test]
    fn a_pin_is_manual_with_the_runtime_version_and_matches_itself() {
        let pin = RuntimeManagement::pinned(ARN);
        assert_eq!(pin.update_runtime_on, "Manual");
        assert_eq!(difference(&pin, &pin.clone()), None);
        assert_eq!(pin.to_string(), format!("Manual (runtime version {ARN})"));
    }

    #[test]
    fn a_version_set_back_to_auto_or_pinned_elsewhere_is_named_with_both_sides() {
        let pin = RuntimeManagement::pinned(ARN);
        let auto = RuntimeManagement::of(Some(&UpdateRuntimeOn::Auto), None);
        let why = difference(&pin, &auto).expect("Auto is not the recorded pin");
        assert!(why.starts_with("its runtime update mode is Auto, its deploy record says Manual (runtime version arn:"), "{why}");
        let elsewhere = RuntimeManagement::pinned(&ARN.replace("0cdc", "ffff"));
        assert!(difference(&pin, &elsewhere).is_some_and(|w| w.contains("ffff")));
    }

    #[test]
    fn a_record_without_the_field_reads_back_and_the_arn_is_left_out_when_absent() {
        let auto = RuntimeManagement::of(Some(&UpdateRuntimeOn::FunctionUpdate), None);
        let json = serde_json::to_string(&auto).unwrap();
        assert_eq!(json, r#"{"update_runtime_on":"FunctionUpdate"}"#);
        assert_eq!(
            serde_json::from_str::<RuntimeManagement>(&json).unwrap(),
            auto
        );
    }
}
