//! `ferry sync` where the EFS file system is not mounted here: the same request, sent to the in-VPC sync function
//! (docs/contracts.md, section 4).
use aws_sdk_lambda::primitives::Blob;

use super::{SyncError, SyncOutcome, SyncRequest};
use crate::aws::describe_sdk_error;

/// Invokes the sync function synchronously and returns its answer; a function error becomes
/// [`SyncError::Remote`] with the function's own error type and message.
pub async fn invoke_sync_function(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    req: &SyncRequest,
) -> Result<SyncOutcome, SyncError> {
    let remote = |reason: String| SyncError::Remote {
        function: function.to_string(),
        reason,
    };
    let payload = serde_json::to_vec(req).map_err(|e| remote(e.to_string()))?;
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| remote(format!("Invoke: {}", describe_sdk_error(&e))))?;
    let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    if let Some(kind) = out.function_error() {
        return Err(remote(describe_function_error(kind, body)));
    }
    let outcome: SyncOutcome = serde_json::from_slice(body).map_err(|e| {
        remote(format!(
            "answered {:?}, not a sync response: {e}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ))
    })?;
    if outcome.model != req.model || outcome.version != req.version {
        return Err(remote(format!(
            "answered for {} version {}, asked for {} version {}",
            outcome.model, outcome.version, req.model, req.version
        )));
    }
    if let Some(expected) = &req.expected_digest
        && *expected != outcome.digest
    {
        return Err(SyncError::DigestMismatch {
            model: req.model.clone(),
            version: req.version.clone(),
            expected: expected.to_string(),
            actual: outcome.digest,
        });
    }
    Ok(outcome)
}

fn describe_function_error(kind: &str, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct LambdaError {
        #[serde(rename = "errorType", default)]
        error_type: String,
        #[serde(rename = "errorMessage", default)]
        error_message: String,
    }
    match serde_json::from_slice::<LambdaError>(body) {
        Ok(e) if !e.error_message.is_empty() => format!("{}: {}", e.error_type, e.error_message),
        _ => format!(
            "{kind} error: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_errors_carry_their_type_and_message() {
        assert_eq!(
            describe_function_error(
                "Unhandled",
                br#"{"errorType": "DigestMismatch", "errorMessage": "m version 3: digest differs"}"#
            ),
            "DigestMismatch: m version 3: digest differs"
        );
        assert_eq!(
            describe_function_error("Unhandled", b"boom"),
            "Unhandled error: boom"
        );
    }
}
