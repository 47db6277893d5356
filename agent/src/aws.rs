//! AWS clients from the standard configuration chain (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...), with the
//! SDK's own retry policy for throttling and 5xx answers. Nothing AWS-specific is hand-rolled here.
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};

pub use ferry_sync::s3::{
    MAX_ATTEMPTS, describe_sdk_error, parse_s3_uri, s3_client, s3_retry_config,
};

use crate::api_budget::ApiBudget;

/// Ferry's retry policy for every client: the SDK's adaptive mode (it also slows the client down when throttled),
/// [`MAX_ATTEMPTS`] attempts.
pub fn retry_config() -> RetryConfig {
    RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS)
}

#[derive(Clone, Debug)]
pub struct Clients {
    pub lambda: aws_sdk_lambda::Client,
    pub s3: aws_sdk_s3::Client,
    pub sts: aws_sdk_sts::Client,
    pub efs: aws_sdk_efs::Client,
    /// API Gateway v2: the HTTP API's routes.
    pub apigw: aws_sdk_apigatewayv2::Client,
}

/// Shared SDK configuration. `region` (the platform's) is used when the environment names none.
pub async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config());
    if std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        && let Some(r) = region
    {
        loader = loader.region(Region::new(r.to_string()));
    }
    loader.load().await
}

/// A Lambda client whose control-plane requests all go through `budget`, whoever sends them.
pub fn lambda_client(config: &aws_config::SdkConfig, budget: &ApiBudget) -> aws_sdk_lambda::Client {
    let http = config.http_client().unwrap_or_else(https_client);
    let lambda_config = aws_sdk_lambda::config::Builder::from(config)
        .http_client(budget.http_client(http))
        .build();
    aws_sdk_lambda::Client::from_conf(lambda_config)
}

/// An API Gateway v2 client whose requests all go through `budget`'s share of API Gateway's management quota.
pub fn api_gateway_client(
    config: &aws_config::SdkConfig,
    budget: &ApiBudget,
) -> aws_sdk_apigatewayv2::Client {
    let http = config.http_client().unwrap_or_else(https_client);
    let api_config = aws_sdk_apigatewayv2::config::Builder::from(config)
        .http_client(budget.api_gateway_http_client(http))
        .build();
    aws_sdk_apigatewayv2::Client::from_conf(api_config)
}

/// The SDK's own default HTTPS client (aws-smithy-runtime's `default_https_client`, which is not public): rustls with
/// aws-lc, the connector settings and sleep of the client it serves, the proxy from the environment.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

impl Clients {
    pub async fn from_env(region: Option<&str>, budget: &ApiBudget) -> Clients {
        let config = sdk_config(region).await;
        Clients {
            lambda: lambda_client(&config, budget),
            s3: s3_client(&config),
            sts: aws_sdk_sts::Client::new(&config),
            efs: aws_sdk_efs::Client::new(&config),
            apigw: api_gateway_client(&config, budget),
        }
    }
}
