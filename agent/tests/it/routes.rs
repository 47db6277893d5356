//! Routes per alias on the platform's HTTP API, against moto's API Gateway v2 and Lambda: `ferry deploy` gives every
//! alias it serves a route, an integration to that alias and an invoke permission scoped to the route; `plan` shows
//! them, `verify` checks them (and fails on an integration repointed by hand, which is never repointed back),
//! `retire` removes a retired alias's route.
use std::collections::BTreeMap;

use predicates::prelude::*;

use crate::deploy::{Fixture, READM_FN, RISK_FN, audit_keys, count};
use crate::harness::mutating_calls;

fn http_api_id(fx: &Fixture) -> String {
    let platform: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fx.platform).unwrap()).unwrap();
    platform["http_api_id"]
        .as_str()
        .expect("http_api_id")
        .to_string()
}

async fn apigw() -> aws_sdk_apigatewayv2::Client {
    aws_sdk_apigatewayv2::Client::new(&crate::harness::current().sdk_config().await)
}

/// Route key → (route id, integration id, integration URI, integration description), as moto lists them.
async fn routes(api: &str) -> BTreeMap<String, (String, String, String, String)> {
    let client = apigw().await;
    let integrations = client.get_integrations().api_id(api).send().await.unwrap();
    let by_id: BTreeMap<&str, (&str, &str)> = integrations
        .items()
        .iter()
        .map(|i| {
            (
                i.integration_id().unwrap(),
                (
                    i.integration_uri().unwrap_or_default(),
                    i.description().unwrap_or_default(),
                ),
            )
        })
        .collect();
    let listed = client.get_routes().api_id(api).send().await.unwrap();
    listed
        .items()
        .iter()
        .map(|r| {
            let id = r.target().unwrap().trim_start_matches("integrations/");
            let (uri, description) = by_id.get(id).copied().unwrap_or_default();
            (
                r.route_key().unwrap().to_string(),
                (
                    r.route_id().unwrap().to_string(),
                    id.to_string(),
                    uri.to_string(),
                    description.to_string(),
                ),
            )
        })
        .collect()
}

/// `ferry verify` exits with `code` (0: every check passed, 1: one failed), and its report says `says`.
fn verify_says(fx: &Fixture, code: i32, says: &str) {
    fx.ferry(&["verify"])
        .assert()
        .code(code)
        .stdout(predicate::str::contains(says));
}

/// A second deploy finds nothing to do and makes no mutating call.
fn a_rerun_changes_nothing(fx: &Fixture) {
    let calls = mutating_calls(&fx.env, || {
        fx.ferry(&["deploy"])
            .assert()
            .success()
            .stdout(predicate::str::contains("No changes."));
    });
    assert_eq!(calls, Vec::<String>::new());
}

fn alias_arn(function: &str, alias: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{function}:{alias}")
}

fn key(model: &str, alias: &str) -> String {
    format!("POST /models/{model}/{alias}/invocations")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_routes_every_alias_plan_shows_verify_checks_and_retire_removes_them() {
    // Given a stack with an HTTP API: risk-score v1 and v2 approved with production on v2, readmission v1.
    let fx = Fixture::with_platform_args("routes", "", &["--http-api"]);
    let api = http_api_id(&fx);

    // The plan names each route it would create, and the integration count against API Gateway's limit.
    fx.ferry(&["plan"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "  + v1           route   {} -> alias v1, new integration, invoke permission scoped to the route",
            key("risk-score", "v1")
        )))
        .stdout(predicate::str::contains(format!(
            "  + production   route   {}",
            key("risk-score", "production")
        )))
        .stdout(predicate::str::contains(format!(
            "HTTP API {api}: 0 integration(s), 4 to create (API Gateway allows 300 per API)."
        )));

    // When deployed: one route per alias, each integrating exactly that alias, each alias letting only its route in.
    fx.ferry(&["deploy"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "HTTP routes created for risk-score: v1 v2 production",
        ));
    let live = routes(&api).await;
    let expected: BTreeMap<String, String> = [
        (key("risk-score", "v1"), alias_arn(RISK_FN, "v1")),
        (key("risk-score", "v2"), alias_arn(RISK_FN, "v2")),
        (
            key("risk-score", "production"),
            alias_arn(RISK_FN, "production"),
        ),
        (key("readmission", "v1"), alias_arn(READM_FN, "v1")),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        live.iter()
            .map(|(k, (_, _, uri, _))| (k.clone(), uri.clone()))
            .collect::<BTreeMap<_, _>>(),
        expected
    );
    assert_eq!(live[&key("risk-score", "v1")].3, "ferry: risk-score v1");
    let lambda = crate::deploy::lambda().await;
    let policy = lambda
        .get_policy()
        .function_name(RISK_FN)
        .qualifier("v1")
        .send()
        .await
        .unwrap();
    let source = format!(
        "arn:aws:execute-api:us-east-1:123456789012:{api}/*/POST/models/risk-score/v1/invocations"
    );
    assert!(
        policy.policy().unwrap().contains(&source),
        "{:?}",
        policy.policy()
    );
    // Each alias's permission is in that alias's own policy: production's holds only its own route's, though it is
    // on v2's Lambda version, and that version has no policy (Lambda keeps one per qualifier; so does the stand-in).
    let statements = |policy: &str| -> Vec<String> {
        let doc: serde_json::Value = serde_json::from_str(policy).unwrap();
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s["Condition"]["ArnLike"]["AWS:SourceArn"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let production = lambda
        .get_policy()
        .function_name(RISK_FN)
        .qualifier("production")
        .send()
        .await
        .unwrap();
    assert_eq!(
        statements(production.policy().unwrap()),
        [format!(
            "arn:aws:execute-api:us-east-1:123456789012:{api}/*/POST/models/risk-score/production/invocations"
        )]
    );
    let v2_version = crate::deploy::aliases(RISK_FN).await["v2"].0.clone();
    assert!(
        lambda
            .get_policy()
            .function_name(RISK_FN)
            .qualifier(&v2_version)
            .send()
            .await
            .is_err(),
        "no permission on the version itself"
    );
    // Each route's creation is audited, beside its alias's own record.
    let keys = audit_keys().await;
    for alias in ["v1", "v2", "production"] {
        assert_eq!(
            count(&keys, &format!("risk-score/routes/{alias}/")),
            1,
            "{keys:?}"
        );
    }
    let record_key = keys
        .iter()
        .find(|k| k.contains("risk-score/routes/v1/") && k.ends_with("-create.json"))
        .unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&crate::harness::object_bytes(record_key).await).unwrap();
    assert_eq!(record["event"], "route-create");
    assert_eq!(record["route"]["route_key"], key("risk-score", "v1"));
    assert_eq!(record["route"]["permission_source_arn"], source.as_str());

    // A rerun makes no mutating call; the plan shows the routes as they are.
    a_rerun_changes_nothing(&fx);
    fx.ferry(&["plan"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "  = v1 v2 production routed (POST /models/risk-score/<alias>/invocations)",
        ))
        .stdout(predicate::str::contains(format!(
            "HTTP API {api}: 4 integration(s), 0 to create"
        )));

    // Verify checks every route, integration and permission.
    verify_says(
        &fx,
        0,
        &format!(
            "risk-score     v1     route {} invokes the alias through integration {}, invoke permission scoped to the route, audited",
            key("risk-score", "v1"),
            live[&key("risk-score", "v1")].1
        ),
    );

    // Retire v1: its route and integration are gone, and that is recorded; the other routes stay.
    fx.retire("1", "superseded by v2", "QA-77")
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "removed route {} of risk-score v1",
            key("risk-score", "v1")
        )));
    let after = routes(&api).await;
    assert!(!after.contains_key(&key("risk-score", "v1")), "{after:?}");
    assert_eq!(after.len(), 3);
    let integrations = apigw()
        .await
        .get_integrations()
        .api_id(&api)
        .send()
        .await
        .unwrap();
    assert_eq!(
        integrations.items().len(),
        3,
        "its integration went with it"
    );
    assert!(
        audit_keys()
            .await
            .iter()
            .any(|k| k.contains("risk-score/routes/v1/") && k.ends_with("-delete.json"))
    );

    // Someone repoints v2's integration at production by hand: verify fails naming it, the plan reports drift and
    // blocks the model, and the deploy never repoints it back.
    let (_, v2_integration, _, _) = &after[&key("risk-score", "v2")];
    apigw()
        .await
        .update_integration()
        .api_id(&api)
        .integration_id(v2_integration)
        .integration_uri(alias_arn(RISK_FN, "production"))
        .send()
        .await
        .unwrap();
    verify_says(
        &fx,
        1,
        &format!(
            "FAIL risk-score     v2     route {} integrates AWS_PROXY {}, not {}; left alone",
            key("risk-score", "v2"),
            alias_arn(RISK_FN, "production"),
            alias_arn(RISK_FN, "v2")
        ),
    );
    let calls = mutating_calls(&fx.env, || {
        fx.ferry(&["deploy", "--model", "risk-score"])
            .assert()
            .code(1)
            .stdout(predicate::str::contains("  ! v2           drift   route"));
    });
    assert_eq!(calls, Vec::<String>::new());
    assert_eq!(
        routes(&api).await[&key("risk-score", "v2")].2,
        alias_arn(RISK_FN, "production"),
        "left alone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_terraform_owns_is_used_and_never_deleted_by_retire() {
    // Given Terraform's `routes` already routes risk-score v1 (an integration without Ferry's description).
    let fx = Fixture::with_platform_args("routes-tf", "", &["--http-api"]);
    let api = http_api_id(&fx);
    let client = apigw().await;
    let integration = client
        .create_integration()
        .api_id(&api)
        .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
        .integration_method("POST")
        .integration_uri(alias_arn(RISK_FN, "v1"))
        .payload_format_version("2.0")
        .send()
        .await
        .unwrap();
    client
        .create_route()
        .api_id(&api)
        .route_key(key("risk-score", "v1"))
        .target(format!(
            "integrations/{}",
            integration.integration_id().unwrap()
        ))
        .send()
        .await
        .unwrap();
    fx.ferry(&["deploy", "--model", "risk-score"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "HTTP routes created for risk-score: v2 production",
        ));
    // The plan sees it serving v1 and leaves it to Terraform; retire refuses to take it away under Terraform.
    fx.ferry(&["plan", "--model", "risk-score"])
        .assert()
        .success()
        .stdout(predicate::str::contains("v1(terraform)"));
    fx.retire("1", "superseded", "QA-78")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "route {} on HTTP API {api} is not Ferry's",
            key("risk-score", "v1")
        )));
    assert!(crate::deploy::aliases(RISK_FN).await.contains_key("v1"));
    assert!(routes(&api).await.contains_key(&key("risk-score", "v1")));
}

/// Function URL qualifier → auth type, as the stand-in lists them (moto keeps one URL per function; the local
/// Lambda keeps them per alias, as Lambda does).
async fn function_urls(function: &str) -> BTreeMap<String, String> {
    let listed = crate::deploy::lambda()
        .await
        .list_function_url_configs()
        .function_name(function)
        .send()
        .await
        .unwrap();
    listed
        .function_url_configs()
        .iter()
        .map(|c| {
            (
                c.function_arn().rsplit(':').next().unwrap().to_string(),
                c.auth_type().as_str().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_served_through_function_urls_gets_one_per_alias_with_aws_iam_and_no_route() {
    // Given risk-score served through function URLs, readmission through the stack's HTTP API.
    let fx = Fixture::with_platform_args("urls", "endpoint = \"function_url\"", &["--http-api"]);
    let api = http_api_id(&fx);
    fx.ferry(&["plan"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "  + v1           url     function URL of alias v1, AWS_IAM auth",
        ))
        .stdout(predicate::str::contains(format!(
            "HTTP API {api}: 0 integration(s), 1 to create"
        )));
    fx.ferry(&["deploy"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Function URL created for risk-score production: https://",
        ));
    let iam = |aliases: &[&str]| -> BTreeMap<String, String> {
        aliases
            .iter()
            .map(|a| (a.to_string(), "AWS_IAM".to_string()))
            .collect()
    };
    assert_eq!(
        function_urls(RISK_FN).await,
        iam(&["production", "v1", "v2"])
    );
    assert_eq!(
        routes(&api).await.keys().cloned().collect::<Vec<_>>(),
        [key("readmission", "v1")],
        "no route for a model served through function URLs"
    );
    assert_eq!(count(&audit_keys().await, "risk-score/urls/"), 3);
    a_rerun_changes_nothing(&fx);
    verify_says(&fx, 0, "risk-score     v2     function URL https://");

    // Retire v1: its URL goes with it, recorded.
    fx.retire("1", "superseded by v2", "QA-79")
        .assert()
        .success()
        .stdout(predicate::str::contains("removed function URL https://"));
    assert_eq!(function_urls(RISK_FN).await, iam(&["production", "v2"]));
    assert!(
        audit_keys()
            .await
            .iter()
            .any(|k| k.contains("risk-score/urls/v1/") && k.ends_with("-delete.json"))
    );

    // Someone makes v2's URL public: verify fails, the plan reports drift, and Ferry does not change it back.
    crate::deploy::lambda()
        .await
        .update_function_url_config()
        .function_name(RISK_FN)
        .qualifier("v2")
        .auth_type(aws_sdk_lambda::types::FunctionUrlAuthType::None)
        .send()
        .await
        .unwrap();
    verify_says(&fx, 1, "has auth NONE, not AWS_IAM: anyone may call it");
    fx.ferry(&["deploy", "--model", "risk-score"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "  ! v2           drift   function URL",
        ));
    assert_eq!(function_urls(RISK_FN).await["v2"], "NONE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_url_whose_record_was_not_written_is_recorded_by_the_next_run() {
    // Given risk-score served through function URLs, and a deploy whose put of v2's URL record is refused (as a run
    // stopped between the URL and its record would leave it): v2 has its URL, and no record says so.
    let fx = Fixture::new("urls-record", "endpoint = \"function_url\"");
    fx.deploy_with_record_refused("risk-score/urls/v2/").await;
    let url = crate::deploy::lambda()
        .await
        .get_function_url_config()
        .function_name(RISK_FN)
        .qualifier("v2")
        .send()
        .await
        .unwrap()
        .function_url()
        .to_string();
    assert_eq!(count(&audit_keys().await, "risk-score/urls/v2/"), 0);

    // verify fails the alias, saying what is missing; the plan shows the repair.
    verify_says(
        &fx,
        1,
        &format!(
            "FAIL risk-score     v2     function URL {url} (AWS_IAM) serves the alias, but its creation has no audit record (`ferry deploy` writes it)"
        ),
    );
    fx.ferry(&["plan", "--model", "risk-score"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "  + v2           audit   function URL {url} (AWS_IAM) exists without its audit record; write it"
        )));

    // When deployed again: the record is written from what the URL shows, saying it was written after the fact,
    // and the URL is left as it is; the URL the failed run never reached (production's) is created.
    fx.ferry(&["deploy"]).assert().success();
    let keys = audit_keys().await;
    let written: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("risk-score/urls/v2/"))
        .collect();
    assert_eq!(written.len(), 1, "{keys:#?}");
    let record: serde_json::Value =
        serde_json::from_slice(&crate::harness::object_bytes(written[0]).await).unwrap();
    assert_eq!(record["event"], "function-url-create");
    assert_eq!(record["function_url"], url.as_str());
    assert_eq!(record["version"], "2");
    assert_eq!(
        record["lambda_version"],
        crate::deploy::aliases(RISK_FN).await["v2"].0.as_str()
    );
    assert!(
        record["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("recorded after the fact"),
        "{record:#}"
    );
    let iam = ["production", "v1", "v2"]
        .map(|a| (a.to_string(), "AWS_IAM".to_string()))
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    assert_eq!(function_urls(RISK_FN).await, iam);
    assert_eq!(count(&keys, "risk-score/urls/"), 3, "one record per URL");

    // Then verify passes, and a rerun plans nothing.
    verify_says(
        &fx,
        0,
        &format!("risk-score     v2     function URL {url} (AWS_IAM), audited"),
    );
    a_rerun_changes_nothing(&fx);

    // A recorded URL deleted by hand fails verify, which says so.
    crate::deploy::lambda()
        .await
        .delete_function_url_config()
        .function_name(RISK_FN)
        .qualifier("v1")
        .send()
        .await
        .unwrap();
    verify_says(
        &fx,
        1,
        "FAIL risk-score     v1     the function URL is recorded as created, but it is gone and no record says why: deleted outside `ferry retire`",
    );
}
