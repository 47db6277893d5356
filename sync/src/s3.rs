//! S3 as the copier uses it: the client (the SDK's standard retry mode), `s3://` URIs, and one line for an SDK error.
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

/// Attempts per call, first one included; the SDK backs off exponentially with jitter between them.
pub const MAX_ATTEMPTS: u32 = 6;

/// S3's: the standard mode, without the adaptive client-side rate limiter. S3 scales a prefix up under load and answers
/// `503 SlowDown` meanwhile; the adaptive limiter would then hold the whole client (the artifact copies and the lock's
/// renewals) to a fraction of a request per second for the rest of the run, where a backed-off retry suffices.
pub fn s3_retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// An S3 client from the standard configuration chain (AWS_REGION, AWS_ENDPOINT_URL, ...), as the sync function
/// runs it.
pub async fn client_from_env() -> aws_sdk_s3::Client {
    s3_client(&aws_config::defaults(BehaviorVersion::latest()).load().await)
}

/// A custom endpoint (a local S3 server) serves buckets by path, not by host name.
fn custom_s3_endpoint() -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom_s3_endpoint())
        .retry_config(s3_retry_config())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// `s3://bucket/prefix` → (bucket, prefix without a trailing '/').
pub fn parse_s3_uri(uri: &str) -> Result<(String, String), String> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{uri:?} is not an s3:// URI"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{uri:?} names no bucket"));
    }
    Ok((bucket.to_string(), prefix.trim_end_matches('/').to_string()))
}

/// One line for an SDK error: the service's code and message, and the request id when there is one.
pub fn describe_sdk_error<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("error");
            let message = e.message().unwrap_or("");
            let request_id = e
                .meta()
                .extra("aws_request_id")
                .or_else(|| e.meta().extra("s3_extended_request_id"));
            match request_id {
                Some(id) => format!("{code}: {message} (request id {id})"),
                None => format!("{code}: {message}"),
            }
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_split_into_bucket_and_prefix() {
        assert_eq!(parse_s3_uri("s3://b/a/b/"), Ok(("b".into(), "a/b".into())));
        assert_eq!(parse_s3_uri("s3://b"), Ok(("b".into(), "".into())));
        assert!(parse_s3_uri("https://b/x").is_err());
        assert!(parse_s3_uri("s3:///x").is_err());
    }
}
