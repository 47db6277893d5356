//! HTTP routes per alias on the platform's API Gateway HTTP API (pure: names, ARNs and what an observed route
//! says). An HTTP API cannot pick a Lambda alias from a path parameter, so every alias Ferry serves gets its own
//! route `POST /models/<model>/<alias>/invocations`, its own integration (to that alias's ARN) and an invoke
//! permission on that alias scoped to that route. An integration is never repointed: one that points elsewhere is
//! drift, as a repointed alias is.
use std::collections::BTreeMap;

use serde::Serialize;

/// API Gateway's hard limit of integrations per HTTP API (it cannot be raised).
pub const MAX_INTEGRATIONS: usize = 300;

/// What Ferry writes as the description of each integration it creates: `ferry: <model> <alias>`. An integration
/// without it (Terraform's `routes` input, or one made by hand) is not Ferry's to delete.
pub fn integration_description(model: &str, alias: &str) -> String {
    format!("ferry: {model} {alias}")
}

/// Whether an integration description says Ferry created it for this model and alias.
pub fn is_ferrys_integration(description: &str, model: &str, alias: &str) -> bool {
    description == integration_description(model, alias)
}

/// The route of one alias: `POST /models/<model>/<alias>/invocations`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RouteKey(String);

impl RouteKey {
    pub fn new(model: &str, alias: &str) -> RouteKey {
        RouteKey(format!("POST {}", route_path(model, alias)))
    }

    /// A route key as API Gateway lists it.
    pub fn parse(key: &str) -> RouteKey {
        RouteKey(key.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RouteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn route_path(model: &str, alias: &str) -> String {
    format!("/models/{model}/{alias}/invocations")
}

/// The statement id of the invoke permission a route's alias carries: one per API, so that the routes of two APIs
/// on one alias do not collide (Lambda allows 100 characters; API ids are 10).
pub fn permission_statement_id(api_id: &str) -> String {
    format!("ferry-route-{api_id}")
}

/// The parts of an unqualified Lambda function ARN `arn:<partition>:lambda:<region>:<account>:function:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
}

impl FunctionArn {
    /// Reads an ARN as Lambda lists it, with or without a qualifier (`:$LATEST`, `:7`, `:production`).
    pub fn parse(arn: &str) -> Option<FunctionArn> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            [
                "arn",
                partition,
                "lambda",
                region,
                account,
                "function",
                name,
                ..,
            ] if parts.len() <= 8 && !name.is_empty() && !account.is_empty() => Some(FunctionArn {
                partition: partition.to_string(),
                region: region.to_string(),
                account: account.to_string(),
                name: name.to_string(),
            }),
            _ => None,
        }
    }

    /// The ARN of one alias of the function: what its route's integration invokes.
    pub fn alias_arn(&self, alias: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}:{alias}",
            self.partition, self.region, self.account, self.name
        )
    }

    /// The `SourceArn` an alias's invoke permission is scoped to: its one route on the API, on any stage.
    pub fn route_source_arn(&self, api_id: &str, model: &str, alias: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/*/POST{}",
            self.partition,
            self.region,
            self.account,
            route_path(model, alias)
        )
    }
}

/// How the routes Ferry creates are authorized: as the API's other routes are (the http-api module's
/// `route_authorization` output). Never `NONE`: an inference endpoint is never public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAuthorization {
    /// `AWS_IAM` or `JWT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The JWT authorizer (with `JWT` only).
    #[serde(default)]
    pub authorizer_id: Option<String>,
    /// Scopes every route requires (with `JWT` only).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Default for RouteAuthorization {
    fn default() -> Self {
        RouteAuthorization {
            kind: "AWS_IAM".into(),
            authorizer_id: None,
            scopes: vec![],
        }
    }
}

impl RouteAuthorization {
    pub fn validate(&self) -> Result<(), String> {
        match (self.kind.as_str(), &self.authorizer_id) {
            ("AWS_IAM", None) if self.scopes.is_empty() => Ok(()),
            ("AWS_IAM", _) => Err(
                "type = \"AWS_IAM\" takes no authorizer_id and no scopes (they belong to a JWT authorizer)".into(),
            ),
            ("JWT", Some(id)) if !id.is_empty() => Ok(()),
            ("JWT", _) => Err("type = \"JWT\" needs the authorizer_id of the API's JWT authorizer".into()),
            (other, _) => Err(format!(
                "type = {other:?} is not AWS_IAM or JWT (an inference endpoint is never public)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedRoute {
    pub route_id: String,
    /// `integrations/<id>`, as API Gateway names a route's target.
    pub target: Option<String>,
    pub authorization_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedIntegration {
    pub integration_id: String,
    pub integration_type: String,
    pub uri: String,
    pub description: String,
}

/// Every route and integration of the HTTP API, as listed (two paginated reads for the whole platform).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObservedApi {
    pub api_id: String,
    pub routes: BTreeMap<RouteKey, ObservedRoute>,
    /// By integration id.
    pub integrations: BTreeMap<String, ObservedIntegration>,
}

/// What the API shows for one alias's route.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteState {
    /// No route with the alias's key; `unrouted` is an integration Ferry created for it whose route was never
    /// created (a run stopped in between): reused rather than created again.
    Missing { unrouted: Option<String> },
    /// The route invokes the alias through an AWS_PROXY integration; `ferrys` when Ferry created it.
    Serving {
        route_id: String,
        integration_id: String,
        ferrys: bool,
    },
    /// The route exists but does not invoke the alias: drift, never repointed.
    Elsewhere { reason: String },
}

impl ObservedApi {
    /// The state of the route of `alias` of `model`, whose ARN is `alias_arn`.
    pub fn route_state(&self, model: &str, alias: &str, alias_arn: &str) -> RouteState {
        let key = RouteKey::new(model, alias);
        let Some(route) = self.routes.get(&key) else {
            let unrouted = self
                .integrations
                .values()
                .find(|i| {
                    is_ferrys_integration(&i.description, model, alias)
                        && i.uri == alias_arn
                        && !self.is_routed(&i.integration_id)
                })
                .map(|i| i.integration_id.clone());
            return RouteState::Missing { unrouted };
        };
        let elsewhere = |reason: String| RouteState::Elsewhere {
            reason: format!("route {key} {reason}; left alone"),
        };
        let Some(id) = route
            .target
            .as_deref()
            .and_then(|t| t.strip_prefix("integrations/"))
        else {
            return elsewhere(format!(
                "targets {:?}, not an integration",
                route.target.as_deref().unwrap_or("nothing")
            ));
        };
        let Some(integration) = self.integrations.get(id) else {
            return elsewhere(format!("targets integration {id}, which does not exist"));
        };
        if integration.integration_type != "AWS_PROXY" || integration.uri != alias_arn {
            return elsewhere(format!(
                "integrates {} {}, not {alias_arn}",
                integration.integration_type, integration.uri
            ));
        }
        RouteState::Serving {
            route_id: route.route_id.clone(),
            integration_id: id.to_string(),
            ferrys: is_ferrys_integration(&integration.description, model, alias),
        }
    }

    fn is_routed(&self, integration_id: &str) -> bool {
        let target = format!("integrations/{integration_id}");
        self.routes
            .values()
            .any(|r| r.target.as_deref() == Some(target.as_str()))
    }
}

/// The way out of API Gateway's integration limit, for the plan's refusal.
pub fn integration_limit_refusal(api_id: &str, now: usize, to_create: usize) -> String {
    format!(
        "HTTP API {api_id}: this deploy would take it to {} integrations ({now} now, {to_create} to create), above API \
         Gateway's limit of {MAX_INTEGRATIONS} per API, which cannot be raised; nothing was changed. Give some models a \
         second HTTP API (a second http-api module, their functions in a platform file of their own), serve them from \
         function URLs instead (`endpoint = \"function_url\"` in the catalog: one per alias, AWS_IAM auth, no \
         integration), or retire aliases no one calls (`ferry retire`)",
        now + to_create
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:eu-west-1:111122223333:function:ferry-prod-risk-score";

    fn api(routes: &[(&str, &str, &str)], integrations: &[(&str, &str, &str)]) -> ObservedApi {
        ObservedApi {
            api_id: "a1b2c3d4e5".into(),
            routes: routes
                .iter()
                .map(|(model, alias, target)| {
                    (
                        RouteKey::new(model, alias),
                        ObservedRoute {
                            route_id: format!("r-{alias}"),
                            target: Some(target.to_string()),
                            authorization_type: Some("AWS_IAM".into()),
                        },
                    )
                })
                .collect(),
            integrations: integrations
                .iter()
                .map(|(id, uri, description)| {
                    (
                        id.to_string(),
                        ObservedIntegration {
                            integration_id: id.to_string(),
                            integration_type: "AWS_PROXY".into(),
                            uri: uri.to_string(),
                            description: description.to_string(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn arns_of_an_alias_and_of_its_route() {
        let f = FunctionArn::parse(&format!("{ARN}:$LATEST")).unwrap();
        assert_eq!(FunctionArn::parse(ARN).unwrap(), f);
        assert_eq!(f.alias_arn("v4"), format!("{ARN}:v4"));
        assert_eq!(
            f.route_source_arn("a1b2c3d4e5", "risk-score", "v4"),
            "arn:aws:execute-api:eu-west-1:111122223333:a1b2c3d4e5/*/POST/models/risk-score/v4/invocations"
        );
        assert_eq!(
            RouteKey::new("risk-score", "production").as_str(),
            "POST /models/risk-score/production/invocations"
        );
        assert_eq!(FunctionArn::parse("ferry-prod-risk-score"), None);
        assert_eq!(
            FunctionArn::parse("arn:aws:s3:::bucket/function:x"),
            None,
            "not a Lambda ARN"
        );
    }

    #[test]
    fn the_longest_names_fit_lambdas_statement_id_and_description_limits() {
        assert!(permission_statement_id("a1b2c3d4e5").len() <= 100);
        let model = format!("m{}", "x".repeat(63));
        let stage = "s".repeat(128);
        assert!(integration_description(&model, &stage).len() <= 1024);
    }

    #[test]
    fn a_route_is_serving_missing_or_elsewhere() {
        let v4 = format!("{ARN}:v4");
        let ferrys = integration_description("risk-score", "v4");
        let serving = api(
            &[("risk-score", "v4", "integrations/i1")],
            &[("i1", &v4, &ferrys)],
        );
        assert_eq!(
            serving.route_state("risk-score", "v4", &v4),
            RouteState::Serving {
                route_id: "r-v4".into(),
                integration_id: "i1".into(),
                ferrys: true
            }
        );
        // Terraform's route to the same alias serves it too, but is not Ferry's.
        let terraform = api(
            &[("risk-score", "v4", "integrations/i1")],
            &[("i1", &v4, "")],
        );
        assert!(matches!(
            terraform.route_state("risk-score", "v4", &v4),
            RouteState::Serving { ferrys: false, .. }
        ));
        // An integration left without its route by a stopped run is reused.
        let unrouted = api(&[], &[("i1", &v4, &ferrys)]);
        assert_eq!(
            unrouted.route_state("risk-score", "v4", &v4),
            RouteState::Missing {
                unrouted: Some("i1".into())
            }
        );
        assert_eq!(
            api(&[], &[]).route_state("risk-score", "v4", &v4),
            RouteState::Missing { unrouted: None }
        );
        // Repointed by hand at another alias: drift.
        let repointed = api(
            &[("risk-score", "v4", "integrations/i1")],
            &[("i1", &format!("{ARN}:v3"), &ferrys)],
        );
        let RouteState::Elsewhere { reason } = repointed.route_state("risk-score", "v4", &v4)
        else {
            panic!("not drift");
        };
        assert!(reason.contains(&format!("not {v4}")), "{reason}");
        let dangling = api(&[("risk-score", "v4", "integrations/gone")], &[]);
        assert!(matches!(
            dangling.route_state("risk-score", "v4", &v4),
            RouteState::Elsewhere { .. }
        ));
    }

    #[test]
    fn route_authorization_is_aws_iam_or_a_jwt_authorizer() {
        assert_eq!(RouteAuthorization::default().validate(), Ok(()));
        let jwt = RouteAuthorization {
            kind: "JWT".into(),
            authorizer_id: Some("abc123".into()),
            scopes: vec!["inference".into()],
        };
        assert_eq!(jwt.validate(), Ok(()));
        for bad in [
            RouteAuthorization {
                kind: "NONE".into(),
                ..RouteAuthorization::default()
            },
            RouteAuthorization {
                authorizer_id: None,
                ..jwt.clone()
            },
            RouteAuthorization {
                kind: "AWS_IAM".into(),
                ..jwt.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
