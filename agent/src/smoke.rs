//! Whether a version's answer to its smoke invoke says it serves (docs/contracts.md, section 3, "Smoke invoke"):
//! pure, so that the convention is tested apart from Lambda.

/// What a new version answered the catalog's smoke payload.
#[derive(Debug, Clone, Copy)]
pub struct SmokeAnswer<'a> {
    /// Lambda's `FunctionError` (`Unhandled`, ...): the handler raised, or the runtime failed.
    pub function_error: Option<&'a str>,
    /// The Invoke call's HTTP status.
    pub status_code: i32,
    /// The function's answer.
    pub body: &'a str,
}

/// Characters of the answer shown in a failure.
const SHOWN: usize = 300;

/// `Ok` when the answer says the version serves; else what it answered, for the failure message. Ferry's runtime
/// answers its errors (it never raises them, so no stack trace reaches a caller): a JSON object with `error_code`,
/// or with a numeric `status` or `statusCode` of 400 and above (the second when the payload is an API Gateway
/// event), is a failed smoke test. Any other answer, JSON or not, passes: what a model predicts is its own.
pub fn verdict(answer: &SmokeAnswer) -> Result<(), String> {
    let shown = || answer.body.chars().take(SHOWN).collect::<String>();
    if let Some(kind) = answer.function_error {
        return Err(format!("answered FunctionError {kind}: {}", shown()));
    }
    if !(200..300).contains(&answer.status_code) {
        return Err(format!("answered status {}", answer.status_code));
    }
    if let Ok(serde_json::Value::Object(v)) = serde_json::from_str(answer.body) {
        let status = ["status", "statusCode"]
            .iter()
            .find_map(|k| v.get(*k).and_then(serde_json::Value::as_u64));
        if v.contains_key("error_code") || status.is_some_and(|s| s >= 400) {
            return Err(format!("answered an error: {}", shown()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(body: &str) -> Result<(), String> {
        verdict(&SmokeAnswer {
            function_error: None,
            status_code: 200,
            body,
        })
    }

    #[test]
    fn a_prediction_a_health_check_and_any_other_answer_pass() {
        for body in [
            r#"{"predictions": [0.12], "model": "risk-score", "version": "3"}"#,
            r#"{"status": "ok", "model": "risk-score", "version": "3"}"#,
            r#"{"statusCode": 200, "body": "{\"predictions\": [1]}"}"#,
            r#""a model that answers a string""#,
            "[1, 2, 3]",
            "not JSON at all",
            "",
        ] {
            assert_eq!(answered(body), Ok(()), "{body}");
        }
    }

    #[test]
    fn an_answered_error_fails_whatever_its_shape() {
        for body in [
            r#"{"error_code": "BAD_REQUEST", "message": "no dataframe_split", "status": 400}"#,
            r#"{"error_code": "MODEL_UNAVAILABLE"}"#,
            r#"{"status": 500, "message": "out of memory"}"#,
            r#"{"statusCode": 503, "body": "{\"error_code\": \"INTERNAL_ERROR\"}"}"#,
        ] {
            let why = answered(body).expect_err(body);
            assert!(why.starts_with("answered an error: {"), "{why}");
        }
    }

    #[test]
    fn a_raised_error_or_a_failed_invoke_fails_naming_it() {
        let raised = SmokeAnswer {
            function_error: Some("Unhandled"),
            status_code: 200,
            body: r#"{"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'mlflow'"}"#,
        };
        let why = verdict(&raised).unwrap_err();
        assert!(
            why.starts_with(
                "answered FunctionError Unhandled: {\"errorType\": \"Runtime.ImportModuleError\""
            ),
            "{why}"
        );
        let failed = SmokeAnswer {
            function_error: None,
            status_code: 502,
            body: "",
        };
        assert_eq!(verdict(&failed), Err("answered status 502".into()));
    }

    #[test]
    fn a_long_answer_is_cut_at_a_character_not_a_byte() {
        let body = format!(
            r#"{{"error_code": "BAD_REQUEST", "message": "{}"}}"#,
            "é".repeat(5000)
        );
        let why = answered(&body).unwrap_err();
        let shown = why.trim_start_matches("answered an error: ");
        assert_eq!(shown.chars().count(), SHOWN);
    }
}
