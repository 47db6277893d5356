//! `ferry-sync-lambda`: Ferry's artifact-sync function. Runs inside the VPC with the EFS access point mounted
//! read-write, and copies one approved version from S3 per invocation (docs/contracts.md, section 4):
//! `{"model", "version", "source", "expected_digest"}` → `{"model", "version", "digest", "files", "bytes", "skipped"}`.
//! An error answers with Lambda's `FunctionError` and `{"errorType", "errorMessage"}`.
//!
//! Configured by the environment the `artifact-sync` Terraform module sets: `FERRY_EFS_ROOT` (the mount path),
//! `FERRY_ARTIFACT_BUCKET` and `FERRY_ALLOWED_SOURCE_PREFIXES` (sources outside them are refused).
use ferry_sync::function::{FunctionConfig, error_type, handle};
use ferry_sync::{SyncError, SyncOutcome, SyncRequest};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

struct State {
    config: FunctionConfig,
    s3: aws_sdk_s3::Client,
}

async fn handler(
    state: &State,
    event: LambdaEvent<SyncRequest>,
) -> Result<SyncOutcome, Diagnostic> {
    let req = event.payload;
    match handle(&state.config, state.s3.clone(), &req).await {
        Ok(outcome) => {
            eprintln!(
                "{} version {}: {} ({} files, {} bytes, digest {})",
                outcome.model,
                outcome.version,
                if outcome.skipped {
                    "present, verified"
                } else {
                    "synced"
                },
                outcome.files,
                outcome.bytes,
                outcome.digest
            );
            Ok(outcome)
        }
        Err(err) => Err(diagnostic(&err)),
    }
}

fn diagnostic(err: &SyncError) -> Diagnostic {
    eprintln!("error: {err}");
    Diagnostic {
        error_type: error_type(err).to_string(),
        error_message: err.to_string(),
    }
}

fn main() -> Result<(), lambda_runtime::Error> {
    // Before the runtime's threads make their first allocations.
    ferry_sync::memory::reuse_freed_buffers();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> Result<(), lambda_runtime::Error> {
    let config = FunctionConfig::from_env().map_err(|e| e.to_string())?;
    let state = State {
        config,
        s3: ferry_sync::s3::client_from_env().await,
    };
    let state = &state;
    lambda_runtime::run(service_fn(move |event| handler(state, event))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        State {
            config: FunctionConfig::new("/mnt/models".into(), "art".into(), "mlflow/").unwrap(),
            s3: aws_sdk_s3::Client::from_conf(conf),
        }
    }

    fn event(source: &str) -> LambdaEvent<SyncRequest> {
        let payload: SyncRequest = serde_json::from_value(serde_json::json!({
            "model": "risk-score", "version": "3", "source": source, "expected_digest": null
        }))
        .unwrap();
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn a_source_outside_the_allowed_prefixes_is_a_function_error_before_any_call() {
        let err = handler(&state(), event("s3://art/audit/records"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "SourceError");
        assert!(
            err.error_message
                .contains("outside what this function may copy"),
            "{}",
            err.error_message
        );
        let err = handler(&state(), event("s3://other-bucket/mlflow/1"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "SourceError");
    }

    #[tokio::test]
    async fn a_request_that_names_no_single_folder_is_refused() {
        let mut e = event("s3://art/mlflow/1/models/m-1/artifacts");
        e.payload.version = "../../etc".into();
        let err = handler(&state(), e).await.unwrap_err();
        assert_eq!(err.error_type, "InvalidRequest");
    }
}
