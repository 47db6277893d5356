//! `ferry deploy` against Lambda's control plane as the local Lambda answers it (tools/lambda_local/control_plane.py):
//! AWS's account quotas (all control-plane requests but GetFunction and GetPolicy together 15 per second), updates
//! that settle, RevisionIds that change on every update, settle and publish. The stand-in counts its answers per
//! operation and HTTP status (`GET /ferry-lambda/control-plane`), which is what these tests assert on.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::deploy::{Fixture, READM_FN, RISK_FN, aliases};
use crate::faults::{Fault, FaultProxy, Rule};
use crate::harness::http_request;

/// What the stand-in's control plane says of itself (`GET /ferry-lambda/control-plane`): its settings, requests
/// admitted and throttled per operation and per caller, answers per operation and HTTP status.
fn control_plane(fx: &Fixture) -> serde_json::Value {
    let url = format!("{}/ferry-lambda/control-plane", fx.env.stack.aws_url);
    let (status, body) = http_request("GET", &url, "").expect("control-plane stats");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).expect("JSON")
}

/// Requests the stand-in admitted from the tests' access key so far, per operation (the test's own setup included).
fn operations(fx: &Fixture) -> BTreeMap<String, u64> {
    serde_json::from_value(control_plane(fx)["callers"]["ferry-local"]["operations"].clone())
        .unwrap_or_default()
}

/// The stand-in's answers so far (since the test's moto reset): operation → HTTP status → count.
fn answers(fx: &Fixture) -> serde_json::Value {
    control_plane(fx)["answers"].clone()
}

fn count(answers: &serde_json::Value, operation: &str, status: &str) -> u64 {
    answers[operation][status].as_u64().unwrap_or(0)
}

/// One Lambda control-plane request of another client of the same account: a ListFunctions, signed for Lambda
/// (moto and the stand-in read the credential scope, not the signature). Returns the HTTP status.
fn list_functions(host: &str) -> std::io::Result<u16> {
    let mut stream = std::net::TcpStream::connect(host)?;
    write!(
        stream,
        "GET /2015-03-31/functions/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=neighbour/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_new_versions_of_one_function_meet_no_stale_revision() {
    // Given a function with two approved versions to deploy (each publish renews $LATEST's revision, as on AWS),
    let fx = Fixture::new("cp-revisions", "");
    let before = operations(&fx);

    // when deployed,
    fx.ferry(&["deploy"]).assert().success();

    // then every update and publish was accepted at its first attempt: no precondition failed on a revision Ferry
    // should have known was stale.
    let seen = answers(&fx);
    for operation in ["UpdateFunctionConfiguration", "PublishVersion"] {
        assert_eq!(
            count(&seen, operation, "412"),
            0,
            "{operation} answered PreconditionFailed: {seen}"
        );
    }
    assert_eq!(
        count(&seen, "UpdateFunctionConfiguration", "200"),
        3,
        "one update per new version: {seen}"
    );
    // and each new version cost 4 requests of the 15 a second the account shares (update, publish, pin, alias);
    // besides them only a listing of aliases and of versions per function and the stage move. The update and the
    // version's state were polled with GetFunction, which has a quota of its own.
    let after = operations(&fx);
    let by_ferry: BTreeMap<&str, u64> = after
        .iter()
        .map(|(op, n)| (op.as_str(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(op, n)| *n > 0 && !matches!(*op, "GetFunction" | "Invoke"))
        .collect();
    // (Each function is listed twice: to plan, and again under the lock, since another run may have deployed while
    // this one waited for it.)
    assert_eq!(
        by_ferry,
        BTreeMap::from([
            ("UpdateFunctionConfiguration", 3),
            ("PublishVersion", 3),
            ("PutRuntimeManagementConfig", 3),
            ("CreateAlias", 3 + 1),
            ("ListAliases", 2 * 2),
            ("ListVersionsByFunction", 2 * 2),
        ]),
        "Ferry's requests of the shared quota"
    );
    assert_eq!(
        aliases(RISK_FN).await.keys().collect::<Vec<_>>(),
        ["production", "v1", "v2"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_shares_the_account_budget_with_other_traffic_and_reports_no_throttling() {
    let fx = Fixture::new("cp-shared", "");
    // Given another client of the account sending 20 control-plane requests a second, more than the account's 15:
    // the account is over its quota for as long as the deploy runs (a neighbour at exactly 15 a second leaves nothing
    // for anyone, on AWS too),
    let neighbour = Neighbour::start(&fx, 20.0);

    // when Ferry deploys three new versions meanwhile,
    let out = fx.ferry(&["deploy"]).assert().success();
    let refused = neighbour.stop();

    // then the deploy completed, and no throttling reached its user
    out.stdout(predicate::str::contains("TooManyRequests").not())
        .stderr(predicate::str::contains("TooManyRequests").not());
    assert_eq!(
        aliases(RISK_FN).await.keys().collect::<Vec<_>>(),
        ["production", "v1", "v2"]
    );
    assert_eq!(aliases(READM_FN).await.keys().collect::<Vec<_>>(), ["v1"]);
    // although the stand-in refused requests of Ferry's: it met the limit and came through it.
    let callers = control_plane(&fx)["callers"].clone();
    let ferry = &callers["ferry-local"]["quotas"]["control plane"];
    assert!(
        ferry["throttled"].as_u64().unwrap_or(0) > 0,
        "Ferry was never refused, so the test did not meet the limit: {callers}"
    );
    assert!(refused > 0, "the other client was never refused: {callers}");
    eprintln!("control plane callers: {callers}; the other client was refused {refused} times");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_keeps_within_its_api_rate_and_leaves_the_rest_of_the_account_quota_to_others() {
    let fx = Fixture::new("cp-budget", "");
    // Given another client of the account sending 10 control-plane requests a second,
    let neighbour = Neighbour::start(&fx, 10.0);

    // when Ferry deploys with a budget of 3 a second (the three new versions need more than that),
    fx.ferry(&["--api-rate", "3", "deploy"]).assert().success();
    let refused = neighbour.stop();

    // then Ferry never sent more than 3 in any second and was never refused. The stand-in times a request when its
    // handler runs: with the two cores busy (other tests' stacks), requests sent 1/3 s apart were seen as 5 within
    // one second (a fresh-clone CI run); without the budget this deploy sends its requests tens a second.
    let callers = control_plane(&fx)["callers"].clone();
    let ferry = &callers["ferry-local"]["quotas"]["control plane"];
    assert!(
        ferry["admitted"].as_u64().unwrap_or(0) > 5,
        "too few requests to meet the budget: {callers}"
    );
    assert!(
        ferry["busiest_second"].as_u64().unwrap_or(99) <= 5,
        "over its budget: {callers}"
    );
    assert_eq!(ferry["throttled"].as_u64(), Some(0), "{callers}");
    // and the other client, within the 12 a second Ferry left it, was never refused either.
    assert_eq!(refused, 0, "the other client was refused: {callers}");
    assert_eq!(
        aliases(RISK_FN).await.keys().collect::<Vec<_>>(),
        ["production", "v1", "v2"]
    );
}

/// Another client of the test's account (access key `neighbour`) sending ListFunctions at a steady rate until
/// stopped.
struct Neighbour {
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Neighbour {
    fn start(fx: &Fixture, per_second: f64) -> Neighbour {
        let host = fx
            .env
            .stack
            .aws_url
            .trim_start_matches("http://")
            .to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, refused) = (stop.clone(), refused.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut sent = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if list_functions(&host).unwrap_or(0) == 429 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    sent += 1;
                    let due = started + Duration::from_secs_f64(f64::from(sent) / per_second);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
            })
        };
        Neighbour {
            stop,
            refused,
            thread,
        }
    }

    /// Stops it; how many of its requests were refused (429).
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("neighbour thread");
        self.refused.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_whose_answer_was_lost_is_recognised_when_its_retry_meets_the_renewed_revision() {
    // Given a deploy whose first PublishVersion is done but its answer lost: the SDK's retry carries the revision
    // the publish itself renewed, and Lambda refuses it (412),
    let fx = Fixture::new("cp-lost-publish", "");
    let proxy = FaultProxy::start(
        &fx.env.stack.aws_url,
        vec![Rule::new(
            "POST",
            &format!("/functions/{RISK_FN}/versions"),
            Fault::LoseAnswer,
            1,
        )],
    )
    .await;

    // when deployed, the run completes anyway,
    fx.ferry(&["deploy"])
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .assert()
        .success();
    assert_eq!(proxy.faulted(), 1, "{:#?}", proxy.seen());

    // with the version the lost publish made behind v1, and no second version of the same spec.
    let seen = answers(&fx);
    assert_eq!(count(&seen, "PublishVersion", "412"), 1, "{seen}");
    let live = aliases(RISK_FN).await;
    assert_eq!(live["v1"].0, "1");
    assert_eq!(live["v2"].0, "2");
    fx.ferry(&["verify"]).assert().success();
}

/// Versions that served nobody for a while go Inactive (Lambda reclaims an idle VPC function's network interfaces;
/// here after `idle_s`): `status` and `verify` say so (verify still passes: nothing differs from the record), and
/// `ferry reactivate` spends the one failing invoke that starts the restore and waits until each is Active, changing
/// nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn idle_versions_are_reported_inactive_and_reactivate_wakes_each_with_one_invoke_and_no_change()
 {
    // Given deployed versions, idle long enough to be Inactive,
    let fx = Fixture::new("cp-idle", "");
    fx.ferry(&["deploy"]).assert().success();
    let url = format!("{}/ferry-lambda/control-plane", fx.env.stack.aws_url);
    assert!(crate::harness::ureq_post(
        &url,
        r#"{"idle_s": 5, "restore_s": 0.5}"#
    ));
    std::thread::sleep(Duration::from_millis(5200));

    // then status and verify name them Inactive, and verify passes,
    fx.ferry(&["status", "--model", "risk-score"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Inactive (idle"));
    fx.ferry(&["verify", "--model", "risk-score"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "; Inactive (idle: its next invoke fails",
        ));
    // and reactivate wakes each aliased version once, with no mutating call.
    let before = answers(&fx);
    let mut woken = Vec::new();
    let calls = crate::harness::mutating_calls(&fx.env, || {
        let out = fx
            .ferry(&["reactivate", "--model", "risk-score", "--output", "json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        woken = serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap();
    });
    assert_eq!(calls, Vec::<String>::new());
    let aliased: std::collections::BTreeSet<String> = aliases(RISK_FN)
        .await
        .into_values()
        .flat_map(|(v, weights)| std::iter::once(v).chain(weights.into_keys()))
        .collect();
    assert_eq!(
        woken.len(),
        aliased.len(),
        "one per aliased version: {woken:?}"
    );
    for w in &woken {
        assert_eq!(
            (w["was"].as_str(), w["now"].as_str()),
            (Some("Inactive"), Some("Active")),
            "{w}"
        );
    }
    let seen = answers(&fx);
    let invokes = |answers: &serde_json::Value| {
        answers["Invoke"]
            .as_object()
            .map_or(0, |by| by.values().filter_map(|v| v.as_u64()).sum::<u64>())
    };
    assert_eq!(
        (
            count(&seen, "Invoke", "502") - count(&before, "Invoke", "502"),
            invokes(&seen) - invokes(&before)
        ),
        (woken.len() as u64, woken.len() as u64),
        "exactly one invoke per woken version, each refused before any code ran: {seen}"
    );
}
