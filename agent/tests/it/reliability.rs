//! Faults and hostile conditions a deploy meets on AWS, each reproduced through the fault proxy (tests/it/faults.rs)
//! in front of the stand-ins: lost answers, refused calls, a lock that goes away, no identity. Each ends in a state
//! the next run finishes by itself, with every change to a live alias audited.
use predicates::prelude::*;

use crate::deploy::{Fixture, RISK_FN, aliases, audit_keys, count, mutating_calls};
use crate::faults::{Fault, FaultProxy, Rule};
use crate::harness::{BUCKET, SlowRelay};

const LOCK_KEY: &str = "ferry/locks/test.lock";

impl Fixture {
    /// `ferry <args>` with every AWS call through `proxy`.
    fn ferry_via(&self, proxy: &FaultProxy, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.ferry(args);
        cmd.env("AWS_ENDPOINT_URL", &proxy.url);
        cmd
    }
}

async fn s3() -> aws_sdk_s3::Client {
    ferry::aws::s3_client(&ferry::aws::sdk_config(Some("us-east-1")).await)
}

async fn object(key: &str) -> Option<String> {
    let out = s3()
        .await
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .ok()?;
    let bytes = out.body.collect().await.ok()?.into_bytes();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_to_the_lock_put_is_recognised_as_the_runs_own_lock() {
    let fx = Fixture::new("rel-lockput", "");
    // S3 takes the lock put, the answer never arrives, the SDK sends the put again and S3 answers 412.
    let proxy = FaultProxy::start(
        &fx.env.stack.aws_url,
        vec![Rule::new("PUT", LOCK_KEY, Fault::LoseAnswer, 1)],
    )
    .await;
    fx.ferry_via(&proxy, &["deploy", "--lock-timeout", "20"])
        .assert()
        .success();
    let lock_puts = proxy
        .seen()
        .iter()
        .filter(|(r, _)| r.starts_with("PUT") && r.contains(LOCK_KEY))
        .count();
    assert!(
        lock_puts >= 2,
        "the put was sent again: {:#?}",
        proxy.seen()
    );
    assert_eq!(
        object(LOCK_KEY).await,
        None,
        "and the run released its own lock"
    );
    assert!(aliases(RISK_FN).await.contains_key("v2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_whose_lock_release_fails_reports_its_result_and_the_next_run_takes_the_lock_over()
{
    let fx = Fixture::new("rel-release", "");
    // Every delete of the lock is refused: the deploy itself succeeds, the lock stays behind.
    let proxy = FaultProxy::start(
        &fx.env.stack.aws_url,
        vec![Rule::new(
            "DELETE",
            LOCK_KEY,
            Fault::Refuse(403, "AccessDenied"),
            100,
        )],
    )
    .await;
    let out = fx
        .ferry_via(&proxy, &["--output", "json", "deploy", "--lock-lease", "3"])
        .assert()
        .success()
        .stderr(predicate::str::contains("could not release it"))
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).expect("the deploy's JSON report");
    assert_eq!(report["ok"], true);
    assert_eq!(report["results"].as_array().unwrap().len(), 2);
    assert!(object(LOCK_KEY).await.is_some(), "the lock was left behind");

    // The next change (a new approval) takes the dead run's lock over once its lease ran out, audited.
    fx.env.approve(&fx.risk, 3, &[]);
    fx.ferry(&["deploy", "--lock-timeout", "30"])
        .assert()
        .success()
        .stderr(predicate::str::contains("took over the deploy lock of run"));
    let keys = audit_keys().await;
    let takeover: Vec<_> = keys
        .iter()
        .filter(|k| k.ends_with("-takeover.json"))
        .collect();
    assert_eq!(takeover.len(), 1, "{keys:#?}");
    let record: serde_json::Value =
        serde_json::from_str(&object(takeover[0]).await.unwrap()).unwrap();
    assert_eq!(record["event"], "lock-takeover");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("its lease ran out"),
        "{record:#}"
    );
    assert!(aliases(RISK_FN).await.contains_key("v3"));
    assert_eq!(object(LOCK_KEY).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_move_whose_audit_record_failed_is_recorded_by_the_next_run() {
    let fx = Fixture::new("rel-stage", "");
    // The stage alias moves; the put of its record is refused.
    let proxy = FaultProxy::start(
        &fx.env.stack.aws_url,
        vec![Rule::new(
            "PUT",
            "/stages/production/",
            Fault::Refuse(403, "AccessDenied"),
            1,
        )],
    )
    .await;
    fx.ferry_via(&proxy, &["deploy"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("audit record"));
    assert!(aliases(RISK_FN).await.contains_key("production"));
    assert_eq!(count(&audit_keys().await, "/stages/production/"), 0);

    // verify sees a live alias change without its record,
    fx.ferry(&["verify"]).assert().code(1).stdout(
        predicate::str::contains("production").and(predicate::str::contains("no audit record")),
    );
    // the plan shows the repair, and the next run writes the record from what the alias shows:
    fx.ferry(&["plan"])
        .assert()
        .stdout(
            predicate::str::contains("production").and(predicate::str::contains(
                "without its audit record; write it",
            )),
        );
    fx.ferry(&["deploy"]).assert().success();
    let keys = audit_keys().await;
    let stage: Vec<_> = keys
        .iter()
        .filter(|k| k.contains("/stages/production/"))
        .collect();
    assert_eq!(stage.len(), 1, "{keys:#?}");
    let record: serde_json::Value = serde_json::from_str(&object(stage[0]).await.unwrap()).unwrap();
    assert_eq!(record["version"], "2");
    assert_eq!(record["lambda_version"], aliases(RISK_FN).await["v2"].0);
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("recorded after the move"),
        "{record:#}"
    );
    fx.ferry(&["verify"]).assert().success();
    let calls = mutating_calls(&fx.env, || {
        fx.ferry(&["deploy"]).assert().success();
    });
    assert!(calls.is_empty(), "{calls:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_alias_moved_by_hand_is_drift_and_fails_verify() {
    let fx = Fixture::new("rel-handmove", "");
    fx.ferry(&["deploy"]).assert().success();
    let live = aliases(RISK_FN).await;
    crate::deploy::lambda()
        .await
        .update_alias()
        .function_name(RISK_FN)
        .name("production")
        .function_version(&live["v1"].0)
        .description("rolled back by the on-call engineer")
        .send()
        .await
        .unwrap();
    fx.ferry(&["verify"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("a move without its record"));
    let calls = mutating_calls(&fx.env, || {
        fx.ferry(&["deploy"])
            .assert()
            .code(1)
            .stdout(predicate::str::contains("not a move Ferry made"));
    });
    assert!(
        calls.is_empty(),
        "nothing is changed, not even the lock: {calls:#?}"
    );
    assert_eq!(
        aliases(RISK_FN).await["production"].0,
        live["v1"].0,
        "left alone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_loses_its_lock_stops_before_its_next_change() {
    let fx = Fixture::new("rel-fence", "");
    // A slow deploy (each request held 150 ms) with a 3 s lease, renewed every second.
    let relay =
        SlowRelay::start(&fx.env.stack.aws_url, std::time::Duration::from_millis(150)).await;
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .envs(fx.env.vars())
        .env("AWS_ENDPOINT_URL", &relay.url)
        .arg("--catalog")
        .arg(&fx.catalog)
        .arg("--platform")
        .arg(&fx.platform)
        .args(["-q", "deploy", "--jobs", "1", "--lock-lease", "3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while object(LOCK_KEY).await.is_none() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the deploy never took the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Another run's lock replaces it (as `ferry unlock --force` and a takeover by someone else would).
    s3().await
        .put_object()
        .bucket(BUCKET)
        .key(LOCK_KEY)
        .body(
            br#"{"holder": "other", "host": "h", "pid": 1, "run_id": "other-run", "command": "ferry deploy",
                 "started_at": "2026-12-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z"}"#
                .to_vec()
                .into(),
        )
        .send()
        .await
        .unwrap();
    let replaced = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no longer holds it"), "{stderr}");
    assert!(
        replaced.elapsed().as_secs() < 30,
        "stopped at its next step, not at the end"
    );
    let held: serde_json::Value = serde_json::from_str(&object(LOCK_KEY).await.unwrap()).unwrap();
    assert_eq!(
        held["run_id"], "other-run",
        "the other run's lock is left alone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_aws_identity_nothing_is_changed() {
    let fx = Fixture::new("rel-sts", "");
    let proxy = FaultProxy::start(
        &fx.env.stack.aws_url,
        vec![Rule::new(
            "POST",
            "GetCallerIdentity",
            Fault::Refuse(403, "AccessDenied"),
            100,
        )],
    )
    .await;
    let calls = mutating_calls(&fx.env, || {
        fx.ferry_via(&proxy, &["deploy"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "cannot tell who is making this change",
            ));
    });
    assert!(calls.is_empty(), "not even the lock: {calls:#?}");
}

/// Seeds of the random-fault runs: one in `make test` (each takes about two minutes here), `make test-reliability`
/// runs 20 (`FERRY_FAULT_SEEDS=1-20`).
fn fault_seeds() -> Vec<u64> {
    let spec = std::env::var("FERRY_FAULT_SEEDS").unwrap_or_else(|_| "1".into());
    match spec.split_once('-') {
        Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect(),
        None => spec.split(',').map(|s| s.parse().unwrap()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_with_a_fifth_of_all_requests_faulted_converge_with_no_manual_step() {
    use crate::faults::RandomFaults;
    let kinds = vec![
        Fault::LoseAnswer,
        Fault::Drop,
        Fault::Refuse(500, "InternalError"),
        Fault::Refuse(503, "SlowDown"),
        Fault::Refuse(429, "TooManyRequestsException"),
    ];
    let mut table = Vec::new();
    for seed in fault_seeds() {
        let fx = Fixture::new(&format!("rel-random-{seed}"), "");
        let proxy = FaultProxy::start_with(
            &fx.env.stack.aws_url,
            vec![],
            Some(RandomFaults {
                seed,
                rate: 0.2,
                kinds: kinds.clone(),
            }),
        )
        .await;
        // Rerun under the same faults until a run succeeds, as a CI retry would; nobody touches the lock.
        let mut runs = 0;
        loop {
            runs += 1;
            let ok = fx
                .ferry_via(
                    &proxy,
                    &["-q", "deploy", "--lock-lease", "3", "--lock-timeout", "30"],
                )
                .output()
                .unwrap()
                .status
                .success();
            if ok {
                break;
            }
            assert!(
                runs < 8,
                "seed {seed}: no convergence in {runs} runs: {:#?}",
                proxy.seen()
            );
        }
        let (requests, faulted) = (proxy.seen().len(), proxy.faulted());
        drop(proxy);
        // Converged: a clean run has nothing to do, verify passes, every alias has its record.
        let calls = mutating_calls(&fx.env, || {
            fx.ferry(&["deploy", "--lock-timeout", "30"])
                .assert()
                .success();
        });
        assert!(calls.is_empty(), "seed {seed}: {calls:#?}");
        fx.ferry(&["verify"]).assert().success();
        let live = aliases(RISK_FN).await;
        assert_eq!(
            live.keys().collect::<Vec<_>>(),
            ["production", "v1", "v2"],
            "seed {seed}"
        );
        table.push((seed, runs, requests, faulted));
    }
    eprintln!("fault runs (seed, runs until success, requests, faulted): {table:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_body_that_breaks_mid_stream_is_read_again_from_where_it_broke() {
    let fx = Fixture::new("rel-body", "");
    // The first two artifact downloads answer their headers and half their bytes, then the connection closes.
    let proxy = FaultProxy::start(
        &fx.env.stack.aws_url,
        vec![Rule::new(
            "GET",
            "/ferry-artifacts/mlflow/",
            Fault::Truncate,
            2,
        )],
    )
    .await;
    fx.ferry_via(&proxy, &["deploy"]).assert().success();
    assert_eq!(proxy.faulted(), 2, "{:#?}", proxy.seen());
    fx.ferry(&["verify"]).assert().success();
    assert!(aliases(RISK_FN).await.contains_key("v2"));
}
