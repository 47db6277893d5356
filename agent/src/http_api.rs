//! The HTTP API edge: lists the API's routes and integrations, creates an alias's route (invoke permission, then
//! integration, then route: a route that exists has both), deletes one, and reads an alias's invoke permission
//! back. Names and the checks of what is observed are in [`crate::routes`].
use aws_sdk_apigatewayv2::types::{AuthorizationType, IntegrationType};
use aws_sdk_lambda::error::ProvideErrorMetadata;

use crate::audit::RouteRecord;
use crate::aws::describe_sdk_error;
use crate::lock::Fence;
use crate::routes::{
    FunctionArn, ObservedApi, ObservedIntegration, ObservedRoute, RouteAuthorization, RouteKey,
    integration_description, permission_statement_id,
};

/// The principal API Gateway invokes Lambda functions as.
const PRINCIPAL: &str = "apigateway.amazonaws.com";
/// An integration's timeout: API Gateway's maximum for HTTP APIs, as the http-api module sets it.
const INTEGRATION_TIMEOUT_MS: i32 = 30_000;

/// The step of a route's creation or deletion that failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {reason}")]
pub struct RouteError {
    pub step: &'static str,
    pub reason: String,
}

fn route_err(step: &'static str, reason: String) -> RouteError {
    RouteError { step, reason }
}

/// The HTTP API the routes go to, with the clients that change it.
#[derive(Clone, Debug)]
pub struct HttpApi {
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub api_id: String,
    pub authorization: RouteAuthorization,
}

impl HttpApi {
    /// The platform's HTTP API with the clients that change its routes; `None` when it has none.
    pub fn of_platform(
        clients: &crate::aws::Clients,
        platform: &crate::platform::Platform,
    ) -> Option<HttpApi> {
        platform.http_api_id.as_ref().map(|api_id| HttpApi {
            apigw: clients.apigw.clone(),
            lambda: clients.lambda.clone(),
            api_id: api_id.clone(),
            authorization: platform.route_authorization(),
        })
    }
}

/// One alias's route: which function, model and alias.
pub struct RouteTarget<'a> {
    pub function: &'a FunctionArn,
    pub model: &'a str,
    pub alias: &'a str,
}

impl RouteTarget<'_> {
    fn source_arn(&self, api_id: &str) -> String {
        self.function
            .route_source_arn(api_id, self.model, self.alias)
    }
}

/// Every route and integration of the API: two paginated reads.
pub async fn observe_api(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> Result<ObservedApi, RouteError> {
    let routes = all_pages(|next| async move {
        let page = apigw
            .get_routes()
            .api_id(api_id)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| route_err("GetRoutes", describe_sdk_error(&e)))?;
        Ok((page.items().to_vec(), page.next_token().map(str::to_string)))
    })
    .await?;
    let integrations = all_pages(|next| async move {
        let page = apigw
            .get_integrations()
            .api_id(api_id)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| route_err("GetIntegrations", describe_sdk_error(&e)))?;
        Ok((page.items().to_vec(), page.next_token().map(str::to_string)))
    })
    .await?;
    let mut observed = ObservedApi {
        api_id: api_id.into(),
        ..ObservedApi::default()
    };
    for r in routes {
        let (Some(key), Some(id)) = (r.route_key(), r.route_id()) else {
            continue;
        };
        observed.routes.insert(
            RouteKey::parse(key),
            ObservedRoute {
                route_id: id.into(),
                target: r.target().map(str::to_string),
                authorization_type: r.authorization_type().map(|a| a.as_str().to_string()),
            },
        );
    }
    for i in integrations {
        let Some(id) = i.integration_id() else {
            continue;
        };
        observed.integrations.insert(
            id.into(),
            ObservedIntegration {
                integration_id: id.into(),
                integration_type: i
                    .integration_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                uri: i.integration_uri().unwrap_or_default().into(),
                description: i.description().unwrap_or_default().into(),
            },
        );
    }
    Ok(observed)
}

/// Every item of a paginated API Gateway listing: `page(next_token)` answers one page and the next token.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, RouteError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), RouteError>>,
{
    let mut items = Vec::new();
    let mut next = None;
    loop {
        let (mut got, token) = page(next).await?;
        items.append(&mut got);
        next = token.filter(|t| !t.is_empty());
        if next.is_none() {
            return Ok(items);
        }
    }
}

impl HttpApi {
    /// The record of an alias's route as it is (or is about to be).
    pub fn record(
        &self,
        target: &RouteTarget<'_>,
        route_id: &str,
        integration_id: &str,
    ) -> RouteRecord {
        RouteRecord {
            api_id: self.api_id.clone(),
            route_key: RouteKey::new(target.model, target.alias).to_string(),
            route_id: route_id.into(),
            integration_id: integration_id.into(),
            integration_uri: target.function.alias_arn(target.alias),
            authorization_type: self.authorization.kind.clone(),
            permission_statement_id: permission_statement_id(&self.api_id),
            permission_source_arn: target.source_arn(&self.api_id),
        }
    }

    /// Invoke permission on the alias scoped to its route, then the integration (unless `reuse_integration`, one a
    /// stopped run left), then the route. Each change passes the fence first.
    pub async fn create_route(
        &self,
        fence: &Fence,
        target: &RouteTarget<'_>,
        reuse_integration: Option<&str>,
    ) -> Result<RouteRecord, RouteError> {
        let fenced = |step| fence.check().map_err(|e| route_err(step, e.to_string()));
        fenced("AddPermission")?;
        self.add_permission(target).await?;
        let integration_id = match reuse_integration {
            Some(id) => id.to_string(),
            None => {
                fenced("CreateIntegration")?;
                self.apigw
                    .create_integration()
                    .api_id(&self.api_id)
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_method("POST")
                    .integration_uri(target.function.alias_arn(target.alias))
                    .payload_format_version("2.0")
                    .timeout_in_millis(INTEGRATION_TIMEOUT_MS)
                    .description(integration_description(target.model, target.alias))
                    .send()
                    .await
                    .map_err(|e| route_err("CreateIntegration", describe_sdk_error(&e)))?
                    .integration_id()
                    .unwrap_or_default()
                    .to_string()
            }
        };
        fenced("CreateRoute")?;
        let auth = &self.authorization;
        let route = self
            .apigw
            .create_route()
            .api_id(&self.api_id)
            .route_key(RouteKey::new(target.model, target.alias).as_str())
            .target(format!("integrations/{integration_id}"))
            .authorization_type(AuthorizationType::from(auth.kind.as_str()))
            .set_authorizer_id(auth.authorizer_id.clone())
            .set_authorization_scopes((!auth.scopes.is_empty()).then(|| auth.scopes.clone()))
            .send()
            .await
            .map_err(|e| route_err("CreateRoute", describe_sdk_error(&e)))?;
        Ok(self.record(
            target,
            route.route_id().unwrap_or_default(),
            &integration_id,
        ))
    }

    async fn add_permission(&self, target: &RouteTarget<'_>) -> Result<(), RouteError> {
        let added = self
            .lambda
            .add_permission()
            .function_name(&target.function.name)
            .qualifier(target.alias)
            .statement_id(permission_statement_id(&self.api_id))
            .action("lambda:InvokeFunction")
            .principal(PRINCIPAL)
            .source_arn(target.source_arn(&self.api_id))
            .send()
            .await;
        match added {
            Ok(_) => Ok(()),
            // Added by a run that stopped before its route: fine when it is the same permission.
            Err(e) if e.code() == Some("ResourceConflictException") => self
                .check_permission(target)
                .await
                .map_err(|reason| route_err("AddPermission", reason)),
            Err(e) => Err(route_err("AddPermission", describe_sdk_error(&e))),
        }
    }

    /// The alias's invoke permission for this API: present, for API Gateway, and scoped to the alias's route.
    pub async fn check_permission(&self, target: &RouteTarget<'_>) -> Result<(), String> {
        let sid = permission_statement_id(&self.api_id);
        let policy = match self
            .lambda
            .get_policy()
            .function_name(&target.function.name)
            .qualifier(target.alias)
            .send()
            .await
        {
            Ok(p) => p.policy().unwrap_or_default().to_string(),
            Err(e) if e.code() == Some("ResourceNotFoundException") => String::new(),
            Err(e) => return Err(format!("GetPolicy: {}", describe_sdk_error(&e))),
        };
        permission_matches(&policy, &sid, &target.source_arn(&self.api_id))
    }

    /// Route, integration (when it is Ferry's), then the permission: the route stops answering first.
    pub async fn delete_route(
        &self,
        fence: &Fence,
        target: &RouteTarget<'_>,
        route_id: &str,
        integration_id: &str,
    ) -> Result<(), RouteError> {
        let fenced = |step| fence.check().map_err(|e| route_err(step, e.to_string()));
        fenced("DeleteRoute")?;
        self.apigw
            .delete_route()
            .api_id(&self.api_id)
            .route_id(route_id)
            .send()
            .await
            .map_err(|e| route_err("DeleteRoute", describe_sdk_error(&e)))?;
        fenced("DeleteIntegration")?;
        self.apigw
            .delete_integration()
            .api_id(&self.api_id)
            .integration_id(integration_id)
            .send()
            .await
            .map_err(|e| route_err("DeleteIntegration", describe_sdk_error(&e)))?;
        fenced("RemovePermission")?;
        match self
            .lambda
            .remove_permission()
            .function_name(&target.function.name)
            .qualifier(target.alias)
            .statement_id(permission_statement_id(&self.api_id))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(route_err("RemovePermission", describe_sdk_error(&e))),
        }
    }
}

/// Whether a resource policy (Lambda's JSON) holds statement `sid` letting API Gateway invoke, scoped to
/// `source_arn`; the reason when it does not.
pub fn permission_matches(policy: &str, sid: &str, source_arn: &str) -> Result<(), String> {
    let doc: serde_json::Value = serde_json::from_str(policy).unwrap_or_default();
    let statements = doc
        .get("Statement")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    // Lambda keeps one statement per id in an alias's own policy (as the local Lambda does: tools/lambda_local/
    // policies.py); a policy with more under the id was not written by AddPermission, and any of them that matches
    // will do.
    let mut mismatch = None;
    for st in statements
        .iter()
        .filter(|s| s.get("Sid").and_then(|v| v.as_str()) == Some(sid))
    {
        let field = |pointer: &str| {
            st.pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        };
        let (principal, action, scoped) = (
            field("/Principal/Service"),
            field("/Action"),
            field("/Condition/ArnLike/AWS:SourceArn"),
        );
        if principal == PRINCIPAL && action == "lambda:InvokeFunction" && scoped == source_arn {
            return Ok(());
        }
        mismatch.get_or_insert(format!(
            "invoke permission {sid} lets {principal:?} {action:?} from {scoped:?}, not {PRINCIPAL} lambda:InvokeFunction from {source_arn}"
        ));
    }
    Err(mismatch.unwrap_or_else(|| format!("no invoke permission {sid} on the alias")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str =
        "arn:aws:execute-api:us-east-1:123456789012:a1/*/POST/models/risk-score/v1/invocations";

    fn policy(sid: &str, source: &str) -> String {
        serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Sid": sid, "Effect": "Allow", "Principal": {"Service": PRINCIPAL}, "Action": "lambda:InvokeFunction",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f:v1",
            "Condition": {"ArnLike": {"AWS:SourceArn": source}}}]})
        .to_string()
    }

    #[test]
    fn a_permission_matches_only_when_scoped_to_the_route() {
        assert_eq!(
            permission_matches(&policy("ferry-route-a1", SOURCE), "ferry-route-a1", SOURCE),
            Ok(())
        );
        let wide = policy(
            "ferry-route-a1",
            "arn:aws:execute-api:us-east-1:123456789012:a1/*",
        );
        assert!(
            permission_matches(&wide, "ferry-route-a1", SOURCE)
                .unwrap_err()
                .contains("not apigateway.amazonaws.com")
        );
        assert!(
            permission_matches("", "ferry-route-a1", SOURCE)
                .unwrap_err()
                .contains("no invoke permission")
        );
    }
}
