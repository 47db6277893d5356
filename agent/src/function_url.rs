//! Function URLs per alias: the catalog's alternative to the HTTP API (`endpoint = "function_url"`) for a team that
//! wants no API Gateway. Lambda attaches a URL to an alias (never to a version number), one per alias; Ferry creates
//! each with `AWS_IAM` auth (callers sign with SigV4 and need `lambda:InvokeFunctionUrl`) and never changes one: a
//! URL whose auth is anything else is drift.
use std::collections::BTreeMap;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::FunctionUrlAuthType;
use serde::Serialize;

use crate::aws::describe_sdk_error;
use crate::lock::Fence;

/// The only auth Ferry gives a function URL.
pub const AUTH_TYPE: &str = "AWS_IAM";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedUrl {
    pub url: String,
    pub auth_type: String,
}

/// The function's URL configs by qualifier (alias), over all pages.
pub async fn observe_urls(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
) -> Result<BTreeMap<String, ObservedUrl>, String> {
    let mut urls = BTreeMap::new();
    let mut pages = lambda
        .list_function_url_configs()
        .function_name(function)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| format!("ListFunctionUrlConfigs: {}", describe_sdk_error(&e)))?;
        for c in page.function_url_configs() {
            // `arn:…:function:<name>:<qualifier>`; an unqualified ARN is `$LATEST`'s URL, which Ferry never makes.
            let parts: Vec<&str> = c.function_arn().split(':').collect();
            let Some(qualifier) = parts.get(7) else {
                continue;
            };
            urls.insert(
                qualifier.to_string(),
                ObservedUrl {
                    url: c.function_url().into(),
                    auth_type: c.auth_type().as_str().into(),
                },
            );
        }
    }
    Ok(urls)
}

/// Creates the alias's URL with `AWS_IAM` auth; one a stopped run created already is fine when it is the same.
pub async fn create_url(
    lambda: &aws_sdk_lambda::Client,
    fence: &Fence,
    function: &str,
    alias: &str,
) -> Result<String, String> {
    fence.check().map_err(|e| e.to_string())?;
    let created = lambda
        .create_function_url_config()
        .function_name(function)
        .qualifier(alias)
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await;
    match created {
        Ok(c) => Ok(c.function_url().to_string()),
        Err(e) if e.code() == Some("ResourceConflictException") => {
            let urls = observe_urls(lambda, function).await?;
            match urls.get(alias) {
                Some(u) if u.auth_type == AUTH_TYPE => Ok(u.url.clone()),
                other => Err(format!(
                    "CreateFunctionUrlConfig: {alias} appeared meanwhile with auth {:?}; left alone",
                    other.map(|u| u.auth_type.as_str())
                )),
            }
        }
        Err(e) => Err(format!(
            "CreateFunctionUrlConfig: {}",
            describe_sdk_error(&e)
        )),
    }
}

/// Deletes the alias's URL; `false` when it had none.
pub async fn delete_url(
    lambda: &aws_sdk_lambda::Client,
    fence: &Fence,
    function: &str,
    alias: &str,
) -> Result<bool, String> {
    fence.check().map_err(|e| e.to_string())?;
    match lambda
        .delete_function_url_config()
        .function_name(function)
        .qualifier(alias)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
        Err(e) => Err(format!(
            "DeleteFunctionUrlConfig: {}",
            describe_sdk_error(&e)
        )),
    }
}
