//! Ferry's share of Lambda's control-plane request quotas, kept on the client side so that a deploy never starves
//! the other users of the account (Terraform, consoles, other pipelines) and is not throttled itself.
//!
//! Lambda limits control-plane requests per account and Region, and the limits cannot be raised (Lambda developer
//! guide, "Lambda quotas", API requests): `GetFunction` 100 per second, `GetPolicy` 15 per second, every other
//! control-plane request together 15 per second. Invocations are the data plane and not counted. Ferry's budget,
//! `--api-rate` requests per second (default [`DEFAULT_API_RATE`]), is its share of the shared 15; `GetFunction`
//! and `GetPolicy` get the same share of their own quotas, and so do API Gateway's management requests (the HTTP
//! API's routes) of theirs ([`API_GATEWAY_QUOTA`]). Every attempt of every concurrent call of the process
//! goes through one [`ApiBudget`], retries included: AWS counts each one. What slips through (other traffic
//! filling the account's quota) is answered 429: the request is sent again here, after a pause that holds back every
//! request of that quota (the account is full for all of Ferry's work, not for one call), doubling up to
//! [`MAX_PAUSE`], for up to [`THROTTLED_PATIENCE`]; only then does the SDK's adaptive retry policy
//! (`aws::retry_config`) see it. Six SDK attempts of a second or so are too few when another client spends the
//! account's whole quota. Lambda's `Retry-After` (whole seconds) is not read: the SDK reads only
//! `x-amz-retry-after`, and a second is coarser than a per-second quota needs.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use tokio::time::Instant;

/// Lambda's quota shared by every control-plane request but `GetFunction` and `GetPolicy`, per second.
pub const SHARED_QUOTA: f64 = 15.0;
/// `GetFunction`'s own quota, per second.
pub const GET_FUNCTION_QUOTA: f64 = 100.0;
/// `GetPolicy`'s own quota, per second.
pub const GET_POLICY_QUOTA: f64 = 15.0;
/// API Gateway's quota of management requests ("Total operations"), per account and Region: 10 per second, burst 40,
/// not raisable (API Gateway developer guide, "Amazon API Gateway quotas", quotas for creating, deploying and
/// managing an API). Ferry's routes (GetApi, GetRoutes, GetIntegrations, CreateRoute, ...) all count against it.
pub const API_GATEWAY_QUOTA: f64 = 10.0;
/// Two thirds of the shared quota: a third is left for everyone else in the account.
pub const DEFAULT_API_RATE: f64 = 10.0;

/// The first pause after a throttled answer; it doubles on each one after it, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// How long one SDK attempt of a control-plane request is sent again while throttled. Well inside SigV4's validity
/// of the signed request that is sent again (5 minutes).
const THROTTLED_PATIENCE: Duration = Duration::from_secs(60);

/// Which quota a request counts against: one of Lambda's, or API Gateway's; `None` is Lambda's data plane
/// (invocations), not limited here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    GetFunction,
    GetPolicy,
    Shared,
    /// API Gateway's management requests, every one of them.
    ApiGateway,
}

/// The quota of a Lambda request, from its method and path (the REST shapes of Lambda's API reference).
pub fn quota_of(method: &str, path: &str) -> Option<Quota> {
    let segments: Vec<&str> = path
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_matches('/')
        .split('/')
        .collect();
    match (method, segments.as_slice()) {
        // Invoke (`/2015-03-31/functions/{name}/invocations`) and InvokeAsync (`/2014-11-13/.../invoke-async/`);
        // InvokeWithResponseStream is `/2021-11-15/functions/{name}/response-streaming-invocations`.
        (_, [_, "functions", _, last])
            if matches!(
                *last,
                "invocations" | "invoke-async" | "response-streaming-invocations"
            ) =>
        {
            None
        }
        ("GET", ["2015-03-31", "functions", _]) => Some(Quota::GetFunction),
        ("GET", ["2015-03-31", "functions", _, "policy"]) => Some(Quota::GetPolicy),
        _ => Some(Quota::Shared),
    }
}

/// Requests go out at most one per `interval`, in the order they asked: the next free slot is reserved under a lock
/// and waited for outside it. No burst: in any second at most `rate` + 1 requests leave.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next_free: Mutex<Option<Instant>>,
}

impl Pacer {
    fn new(per_second: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next_free: Mutex::new(None),
        }
    }

    /// The instant this request may leave, its slot reserved.
    fn reserve(&self, now: Instant) -> Instant {
        let mut next_free = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        let at = next_free.map_or(now, |n| n.max(now));
        *next_free = Some(at + self.interval);
        at
    }

    /// No request leaves before `until`.
    fn hold(&self, until: Instant) {
        let mut next_free = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        *next_free = Some(next_free.map_or(until, |n| n.max(until)));
    }

    async fn wait_turn(&self) {
        tokio::time::sleep_until(self.reserve(Instant::now())).await;
    }
}

/// A pause between half of `pause` and all of it, so that concurrent callers do not come back at once.
fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// The process's budget of Lambda control-plane requests; cloned handles share it.
#[derive(Debug, Clone)]
pub struct ApiBudget {
    shared: Arc<Pacer>,
    get_function: Arc<Pacer>,
    get_policy: Arc<Pacer>,
    api_gateway: Arc<Pacer>,
}

impl ApiBudget {
    /// `rate` requests per second of Lambda's shared quota, and the same share of the others.
    pub fn new(rate: f64) -> ApiBudget {
        let share = rate / SHARED_QUOTA;
        ApiBudget {
            shared: Arc::new(Pacer::new(rate)),
            get_function: Arc::new(Pacer::new(GET_FUNCTION_QUOTA * share)),
            get_policy: Arc::new(Pacer::new(GET_POLICY_QUOTA * share)),
            api_gateway: Arc::new(Pacer::new(API_GATEWAY_QUOTA * share)),
        }
    }

    fn pacer(&self, quota: Quota) -> &Pacer {
        match quota {
            Quota::GetFunction => &self.get_function,
            Quota::GetPolicy => &self.get_policy,
            Quota::Shared => &self.shared,
            Quota::ApiGateway => &self.api_gateway,
        }
    }

    /// An HTTP client for the Lambda client: `inner`'s connections, each request after its turn.
    pub fn http_client(&self, inner: SharedHttpClient) -> SharedHttpClient {
        self.client_with(inner, quota_of)
    }

    /// An HTTP client for the API Gateway v2 client: every request is a management request.
    pub fn api_gateway_http_client(&self, inner: SharedHttpClient) -> SharedHttpClient {
        self.client_with(inner, |_, _| Some(Quota::ApiGateway))
    }

    fn client_with(&self, inner: SharedHttpClient, quota_of: QuotaOf) -> SharedHttpClient {
        SharedHttpClient::new(BudgetedClient {
            inner,
            budget: self.clone(),
            quota_of,
        })
    }
}

/// Which quota a request (method, path) counts against.
type QuotaOf = fn(&str, &str) -> Option<Quota>;

#[derive(Debug)]
struct BudgetedClient {
    inner: SharedHttpClient,
    budget: ApiBudget,
    quota_of: QuotaOf,
}

impl HttpClient for BudgetedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BudgetedConnector {
            inner: self.inner.http_connector(settings, components),
            budget: self.budget.clone(),
            quota_of: self.quota_of,
        })
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_base_client_config(components, cfg)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }
}

#[derive(Debug)]
struct BudgetedConnector {
    inner: SharedHttpConnector,
    budget: ApiBudget,
    quota_of: QuotaOf,
}

impl HttpConnector for BudgetedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let budget = self.budget.clone();
        let quota_of = self.quota_of;
        HttpConnectorFuture::new(async move {
            let path = request
                .uri()
                .split_once("://")
                .map_or(request.uri(), |(_, rest)| {
                    rest.find('/').map_or("/", |i| &rest[i..])
                })
                .to_string();
            let Some(quota) = quota_of(request.method(), &path) else {
                return inner.call(request).await;
            };
            let pacer = budget.pacer(quota);
            let started = Instant::now();
            let mut request = request;
            let mut pause = FIRST_PAUSE;
            loop {
                pacer.wait_turn().await;
                let again = request.try_clone();
                let answer = inner.call(request).await?;
                let wait = jittered(pause);
                match again {
                    Some(again)
                        if answer.status().as_u16() == 429
                            && started.elapsed() + wait <= THROTTLED_PATIENCE =>
                    {
                        tracing::debug!(%path, ?wait, "throttled; sent again after a pause");
                        pacer.hold(Instant::now() + wait);
                        pause = (pause * 2).min(MAX_PAUSE);
                        request = again;
                    }
                    _ => return Ok(answer),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_counts_against_lambdas_quota_for_it() {
        let f = "/2015-03-31/functions/ferry-demo-churn";
        assert_eq!(quota_of("GET", f), Some(Quota::GetFunction));
        assert_eq!(
            quota_of("GET", &format!("{f}?Qualifier=7")),
            Some(Quota::GetFunction)
        );
        assert_eq!(
            quota_of("GET", &format!("{f}/policy")),
            Some(Quota::GetPolicy)
        );
        for (method, path) in [
            ("GET", format!("{f}/configuration")),
            ("PUT", format!("{f}/configuration")),
            ("POST", format!("{f}/versions")),
            ("GET", format!("{f}/versions?MaxItems=50")),
            ("POST", format!("{f}/aliases")),
            ("PUT", format!("{f}/aliases/v1")),
            (
                "PUT",
                "/2021-07-20/functions/ferry-demo-churn/runtime-management-config".into(),
            ),
            ("GET", "/2021-10-31/functions/ferry-demo-churn/url".into()),
            ("DELETE", f.to_string()),
        ] {
            assert_eq!(
                quota_of(method, &path),
                Some(Quota::Shared),
                "{method} {path}"
            );
        }
        assert_eq!(quota_of("POST", &format!("{f}/invocations")), None);
        assert_eq!(
            quota_of(
                "POST",
                "/2014-11-13/functions/ferry-demo-churn/invoke-async"
            ),
            None
        );
    }

    #[test]
    fn requests_leave_one_interval_apart_in_the_order_they_asked() {
        let pacer = Pacer::new(10.0);
        let t0 = Instant::now();
        let slots: Vec<Instant> = (0..5).map(|_| pacer.reserve(t0)).collect();
        let gaps: Vec<Duration> = slots.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(slots[0], t0, "the first goes at once");
        assert!(
            gaps.iter().all(|g| *g == Duration::from_millis(100)),
            "{gaps:?}"
        );
        // After a pause the budget does not bank up: the next one goes at once, the one after 100 ms later.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(pacer.reserve(later), later);
        assert_eq!(pacer.reserve(later), later + Duration::from_millis(100));
    }

    #[test]
    fn the_share_of_the_shared_quota_is_the_share_of_the_others() {
        let budget = ApiBudget::new(DEFAULT_API_RATE);
        assert_eq!(budget.shared.interval, Duration::from_millis(100));
        let get_function = budget.get_function.interval.as_secs_f64();
        assert!((1.0 / get_function - 100.0 * 10.0 / 15.0).abs() < 1e-6);
        assert_eq!(budget.get_policy.interval, Duration::from_millis(100));
        let api_gateway = budget.api_gateway.interval.as_secs_f64();
        assert!((1.0 / api_gateway - 10.0 * 10.0 / 15.0).abs() < 1e-6);
    }

    #[tokio::test(start_paused = true)]
    async fn api_gateway_requests_keep_to_their_own_quotas_share() {
        // Given the whole of Lambda's shared quota as the budget (so API Gateway's whole 10 a second),
        let budget = ApiBudget::new(SHARED_QUOTA);
        let api = Scripted::new(&[200]);
        let connector = BudgetedConnector {
            inner: SharedHttpConnector::new(api.clone()),
            budget: budget.clone(),
            quota_of: |_, _| Some(Quota::ApiGateway),
        };
        // when five route requests are sent at once,
        let mut request = HttpRequest::new(aws_smithy_types::body::SdkBody::from(""));
        request
            .set_uri("https://apigateway.eu-west-1.amazonaws.com/v2/apis/a1/routes")
            .unwrap();
        let calls: Vec<_> = (0..5)
            .map(|_| connector.call(request.try_clone().unwrap()))
            .collect();
        for call in calls {
            call.await.unwrap();
        }
        // then they left 100 ms apart, and Lambda's budget was not spent by them.
        let seen = api.seen();
        let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g == Duration::from_millis(100)),
            "{gaps:?}"
        );
        let now = Instant::now();
        assert_eq!(budget.shared.reserve(now), now);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_budget() {
        let budget = ApiBudget::new(5.0);
        let lambda = Scripted::new(&[200]);
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let c = connector(&budget, &lambda);
                tokio::spawn(async move { c.call(publish()).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut left: Vec<Duration> = lambda.seen().iter().map(|at| *at - t0).collect();
        left.sort();
        assert_eq!(left.len(), 10);
        assert_eq!(left.last().copied(), Some(Duration::from_millis(1800)));
        // Invocations are not held back by a spent budget.
        let invoke = Scripted::new(&[200]);
        let mut request = publish();
        request
            .set_uri("https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/f/invocations")
            .unwrap();
        let before = Instant::now();
        connector(&budget, &invoke).call(request).await.unwrap();
        assert_eq!(invoke.seen(), [before]);
    }

    /// Answers each request with the next status of its script (the last one once the script is spent), counting
    /// the requests it saw.
    #[derive(Debug, Clone)]
    struct Scripted {
        statuses: Arc<Vec<u16>>,
        seen: Arc<Mutex<Vec<Instant>>>,
    }

    impl Scripted {
        fn new(statuses: &[u16]) -> Scripted {
            Scripted {
                statuses: Arc::new(statuses.to_vec()),
                seen: Arc::default(),
            }
        }
        fn seen(&self) -> Vec<Instant> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl HttpConnector for Scripted {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let mut seen = self.seen.lock().unwrap();
            let status = self.statuses[seen.len().min(self.statuses.len() - 1)];
            seen.push(Instant::now());
            let answer = aws_smithy_runtime_api::http::Response::new(
                status.try_into().unwrap(),
                aws_smithy_types::body::SdkBody::from("{}"),
            );
            HttpConnectorFuture::ready(Ok(answer))
        }
    }

    fn connector(budget: &ApiBudget, inner: &Scripted) -> BudgetedConnector {
        let quota_of: QuotaOf = quota_of;
        BudgetedConnector {
            inner: SharedHttpConnector::new(inner.clone()),
            budget: budget.clone(),
            quota_of,
        }
    }

    fn publish() -> HttpRequest {
        let mut request = HttpRequest::new(aws_smithy_types::body::SdkBody::from("{}"));
        request.set_method("POST").unwrap();
        request
            .set_uri("https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/f/versions")
            .unwrap();
        request
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_request_is_sent_again_after_a_doubling_pause() {
        // Given an account whose quota other clients have spent: Lambda refuses two attempts, then admits the third,
        let budget = ApiBudget::new(10.0);
        let lambda = Scripted::new(&[429, 429, 200]);
        // when a publish is sent,
        let answer = connector(&budget, &lambda).call(publish()).await.unwrap();
        // then its caller sees the admitted answer, not the throttling,
        assert_eq!(answer.status().as_u16(), 200);
        let seen = lambda.seen();
        assert_eq!(seen.len(), 3, "sent once and again twice");
        // the second pause longer than the first.
        let pauses = [seen[1] - seen[0], seen[2] - seen[1]];
        assert!(pauses[0] >= FIRST_PAUSE / 2, "{pauses:?}");
        assert!(pauses[1] >= FIRST_PAUSE, "{pauses:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_answer_holds_back_every_request_of_its_quota() {
        // Given a budget that would let a request leave every millisecond, and a publish throttled once,
        let budget = ApiBudget::new(1000.0);
        let lambda = Scripted::new(&[429, 200, 200]);
        let t0 = Instant::now();
        let first = tokio::spawn({
            let c = connector(&budget, &lambda);
            async move { c.call(publish()).await.unwrap().status().as_u16() }
        });
        // when another request of the same quota is asked 10 ms later,
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = connector(&budget, &lambda).call(publish()).await.unwrap();
        // then it left only after the pause the throttled answer set: the account is full for all of Ferry's work.
        assert_eq!((second.status().as_u16(), first.await.unwrap()), (200, 200));
        let seen = lambda.seen();
        assert_eq!(seen.len(), 3);
        assert!(seen[1] - t0 >= FIRST_PAUSE / 2, "{:?}", seen[1] - t0);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_that_outlasts_the_patience_reaches_the_sdks_retry() {
        let budget = ApiBudget::new(10.0);
        let lambda = Scripted::new(&[429]);
        let t0 = Instant::now();
        let answer = connector(&budget, &lambda).call(publish()).await.unwrap();
        assert_eq!(answer.status().as_u16(), 429);
        let waited = Instant::now() - t0;
        assert!(
            waited <= THROTTLED_PATIENCE && waited >= THROTTLED_PATIENCE / 2,
            "{waited:?}"
        );
        // Invocations are another quota (the function's concurrency): a 429 there is the caller's to judge.
        let invoke = Scripted::new(&[429, 200]);
        let mut request = publish();
        request
            .set_uri("https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/f/invocations")
            .unwrap();
        let answer = connector(&budget, &invoke).call(request).await.unwrap();
        assert_eq!((answer.status().as_u16(), invoke.seen().len()), (429, 1));
    }
}
