//! `ferry plan` / `ferry deploy` against moto and a real MLflow registry: every approved version behind its own
//! alias, nothing live ever changed, reruns make no mutating call, drift and failures stop before any change, and a
//! deploy killed between two steps is finished by the next run (after an audited unlock of its lock).
use std::collections::BTreeMap;
use std::path::PathBuf;

use predicates::prelude::*;

use crate::harness::{BUCKET, Env, SlowRelay, mutating_calls};

pub(crate) const RISK_FN: &str = "ferry-test-risk-score";
pub(crate) const READM_FN: &str = "ferry-test-readmission";

pub(crate) struct Fixture {
    pub(crate) env: Env,
    pub(crate) catalog: PathBuf,
    pub(crate) platform: PathBuf,
    pub(crate) risk: String,
}

impl Fixture {
    /// Two models; `risk` gets 3 versions (1 and 2 approved, `production` on 2), readmission 2 (1 approved).
    pub(crate) fn new(tag: &str, catalog_extra: &str) -> Fixture {
        Fixture::with_platform_args(tag, catalog_extra, &[])
    }

    /// As `new`, with extra arguments for tools/local_platform.py (which creates the functions).
    pub(crate) fn with_platform_args(
        tag: &str,
        catalog_extra: &str,
        platform_args: &[&str],
    ) -> Fixture {
        let env = Env::new();
        let risk = format!("{tag}-risk");
        let readm = format!("{tag}-readm");
        env.register("risk-score", &risk, 3, &[1, 2], &[("production", 2)]);
        env.register("readmission", &readm, 2, &[1], &[]);
        env.write("smoke/risk-score.json", r#"{"dataframe_split": {"columns": ["age", "systolic_bp", "cholesterol", "bmi"], "data": [[63, 148, 240, 31.5]]}}"#);
        let catalog = env.write(
            "ferry.toml",
            &format!(
                "[registry]\nsource = \"mlflow\"\n[defaults]\nstages = [\"production\"]\n\
                 [models.risk-score]\nregistered_model = \"{risk}\"\nsmoke = {{ payload = \"smoke/risk-score.json\" }}\n{catalog_extra}\n\
                 [models.readmission]\nregistered_model = \"{readm}\"\n"
            ),
        );
        let platform = env.platform(&[("risk-score", RISK_FN), ("readmission", READM_FN)]);
        let mut args = vec![
            "tools/local_platform.py",
            "--platform",
            platform.to_str().unwrap(),
        ];
        args.extend_from_slice(platform_args);
        env.python(&args);
        Fixture {
            env,
            catalog,
            platform,
            risk,
        }
    }

    /// `ferry --catalog .. --platform .. <args>` started in the background, every AWS call sent to `endpoint`;
    /// stdout and stderr piped (read them with `wait_with_output`).
    pub(crate) fn spawn_ferry(&self, endpoint: &str, args: &[&str]) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
            .envs(self.env.vars())
            .env("AWS_ENDPOINT_URL", endpoint)
            .arg("--catalog")
            .arg(&self.catalog)
            .arg("--platform")
            .arg(&self.platform)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `ferry retire` of risk-score `version`, for `reason` under `ticket`.
    pub(crate) fn retire(&self, version: &str, reason: &str, ticket: &str) -> assert_cmd::Command {
        self.ferry(&[
            "retire",
            "--model",
            "risk-score",
            "--version",
            version,
            "--reason",
            reason,
            "--ticket",
            ticket,
        ])
    }

    pub(crate) fn ferry(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.env.ferry();
        cmd.arg("--catalog")
            .arg(&self.catalog)
            .arg("--platform")
            .arg(&self.platform)
            .args(args);
        cmd
    }
}

pub(crate) async fn lambda() -> aws_sdk_lambda::Client {
    crate::harness::lambda().await
}

pub(crate) async fn aliases(function: &str) -> BTreeMap<String, (String, BTreeMap<String, f64>)> {
    let out = crate::harness::moto_lambda()
        .await
        .list_aliases()
        .function_name(function)
        .send()
        .await
        .unwrap();
    out.aliases()
        .iter()
        .map(|a| {
            let weights = a
                .routing_config()
                .and_then(|r| r.additional_version_weights())
                .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default();
            (
                a.name().unwrap().to_string(),
                (a.function_version().unwrap().to_string(), weights),
            )
        })
        .collect()
}

pub(crate) async fn audit_keys() -> Vec<String> {
    let s3 = crate::harness::s3().await;
    let out = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("ferry/")
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key())
        .map(str::to_string)
        .collect()
}

/// How many of the keys contain `part`.
pub(crate) fn count(keys: &[String], part: &str) -> usize {
    keys.iter().filter(|k| k.contains(part)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_approved_version_gets_its_own_alias_and_nothing_live_ever_changes() {
    let fx = Fixture::new("deploy-main", "");

    // Given a plan with three new aliases and a stage, when deployed:
    fx.ferry(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("+ v2"));
    fx.ferry(&["deploy"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Artifacts: 3 version(s) verified on EFS",
        ));

    // Then every approved version is live behind its own alias, stage aliases mirror the registry.
    let risk = aliases(RISK_FN).await;
    assert_eq!(risk.keys().collect::<Vec<_>>(), ["production", "v1", "v2"]);
    assert_eq!(
        risk["production"].0, risk["v2"].0,
        "production follows the registry alias"
    );
    assert_ne!(risk["v1"].0, risk["v2"].0);
    assert_eq!(aliases(READM_FN).await.keys().collect::<Vec<_>>(), ["v1"]);
    let v2 = lambda()
        .await
        .get_function_configuration()
        .function_name(RISK_FN)
        .qualifier(&risk["v2"].0)
        .send()
        .await
        .unwrap();
    assert!(
        v2.description().unwrap().starts_with("ferry:"),
        "{:?}",
        v2.description()
    );
    assert!(v2.description().unwrap().ends_with(" risk-score/v2"));
    assert_eq!(
        v2.environment().unwrap().variables().unwrap()["FERRY_MODEL_PATH"],
        "/mnt/models/risk-score/2"
    );
    let keys = audit_keys().await;
    assert_eq!(count(&keys, "-deploy-lv"), 3, "{keys:#?}");
    assert_eq!(count(&keys, "/stages/production/"), 1);
    assert!(
        !keys.iter().any(|k| k.starts_with("ferry/locks/")),
        "the lock is released: {keys:#?}"
    );
    assert!(
        fx.env
            .efs_root()
            .join("risk-score/2/.ferry-manifest.json")
            .is_file()
    );
    assert!(fx.env.efs_root().join("readmission/1/MLmodel").is_file());

    // When one more version is approved and deployed: exactly one new alias, everything else untouched.
    fx.env.approve(&fx.risk, 3, &[]);
    fx.ferry(&["plan"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("+ v3").and(predicate::str::contains("= v1 v2")));
    fx.ferry(&["deploy"]).assert().success();
    let after = aliases(RISK_FN).await;
    assert_eq!(after.len(), 4);
    for name in ["v1", "v2", "production"] {
        assert_eq!(after[name], risk[name], "{name} was left as it was");
    }

    // A rerun after success makes no mutating call, and plan says there is nothing to do.
    let calls = mutating_calls(&fx.env, || {
        fx.ferry(&["deploy"])
            .assert()
            .success()
            .stdout(predicate::str::contains("No changes."));
    });
    assert!(
        calls.is_empty(),
        "a no-op deploy made mutating calls: {calls:#?}"
    );
    fx.ferry(&["plan", "--detailed-exitcode"]).assert().code(0);
    fx.ferry(&["verify"]).assert().success().stdout(
        predicate::str::contains("5 alias(es) checked, 0 problem(s).")
            .and(predicate::str::contains("is encrypted at rest"))
            .and(predicate::str::contains(
                "root /ferry/models, POSIX uid 1000",
            )),
    );

    // The model storage as AWS reports it is part of what verify proves.
    let text = std::fs::read_to_string(&fx.platform).unwrap();
    let arn =
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["efs"]["sync_access_point_arn"]
            .as_str()
            .unwrap()
            .to_string();
    let broken = fx.env.write(
        "broken-platform.json",
        &text.replace(
            &arn,
            "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-missing",
        ),
    );
    fx.env
        .ferry()
        .arg("--catalog")
        .arg(&fx.catalog)
        .arg("--platform")
        .arg(&broken)
        .arg("verify")
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("FAIL efs sync access point")
                .and(predicate::str::contains("fsap-missing")),
        );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_repointed_by_hand_is_drift_and_nothing_is_changed() {
    let fx = Fixture::new("deploy-drift", "");
    fx.ferry(&["deploy"]).assert().success();
    let before = aliases(RISK_FN).await;
    lambda()
        .await
        .update_alias()
        .function_name(RISK_FN)
        .name("v1")
        .function_version(&before["v2"].0)
        .send()
        .await
        .unwrap();
    fx.env.approve(&fx.risk, 3, &[]);

    fx.ferry(&["plan"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("! v1").and(predicate::str::contains("drift")));
    let calls = mutating_calls(&fx.env, || {
        fx.ferry(&["deploy"])
            .assert()
            .code(1)
            .stdout(predicate::str::contains("No changes.").not())
            .stderr(predicate::str::contains(
                "error: risk-score: drift blocks every change to this model; nothing of it is deployed",
            ));
    });
    // readmission has nothing to do; risk-score is blocked by drift: no call at all.
    assert!(calls.is_empty(), "{calls:#?}");
    assert!(
        !aliases(RISK_FN).await.contains_key("v3"),
        "drift blocks the model's new version too"
    );
    fx.ferry(&["verify"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL"));
}

/// The smoke test runs the new version for real (the local Lambda runs its code and layer): a version that cannot
/// answer gets no alias, and a model without a smoke payload is deployed all the same.
async fn assert_smoke_failed_and_no_alias(fx: &Fixture, why: &str) {
    let out = fx.ferry(&["deploy"]).assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("smoke invoke")
            && stderr.contains("no alias created")
            && stderr.contains(why),
        "{stderr}"
    );
    let risk = aliases(RISK_FN).await;
    assert!(
        !risk.contains_key("v1") && !risk.contains_key("v2"),
        "no version that failed its smoke test has an alias: {risk:?}"
    );
    assert!(
        aliases(READM_FN).await.contains_key("v1"),
        "the other model is deployed all the same"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_rendered_with_a_model_path_its_function_does_not_mount_fails_its_smoke_test() {
    let fx = Fixture::new("deploy-smoke-path", "");
    // Terraform mounted the file system at /mnt/models; this platform file says /mnt/ferry-models, so every rendered
    // FERRY_MODEL_PATH points at a folder the function cannot see.
    let text = std::fs::read_to_string(&fx.platform).unwrap();
    std::fs::write(
        &fx.platform,
        text.replace("\"/mnt/models\"", "\"/mnt/ferry-models\""),
    )
    .unwrap();
    // The reason comes from the version's own log, which the smoke invoke asks for.
    assert_smoke_failed_and_no_alias(
        &fx,
        "/mnt/ferry-models/risk-score/1: no such version folder",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_layer_that_does_not_import_fails_the_smoke_test() {
    // The arm64 layer on an x86_64 function: its numpy, pandas and pydantic_core cannot be loaded.
    let arm64 = crate::harness::workspace().join("dist/ferry-runtime-layer-arm64.zip");
    let other = if std::env::consts::ARCH == "aarch64" {
        arm64.with_file_name("ferry-runtime-layer-x86_64.zip")
    } else {
        arm64
    };
    let fx = Fixture::with_platform_args(
        "deploy-smoke-layer",
        "",
        &["--layer", other.to_str().unwrap()],
    );
    assert_smoke_failed_and_no_alias(&fx, "cannot import mlflow.pyfunc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_move_with_a_canary_weight_splits_traffic_until_promoted() {
    let fx = Fixture::new("deploy-canary", "canary_weight = 0.1");
    fx.ferry(&["deploy"]).assert().success();
    let first = aliases(RISK_FN).await;
    fx.env.approve(&fx.risk, 3, &[]);
    fx.env.python(&["-c", &format!("from mlflow import MlflowClient; MlflowClient().set_registered_model_alias('{}', 'production', '3')", fx.risk)]);

    fx.ferry(&["deploy"]).assert().success();
    let canary = aliases(RISK_FN).await;
    assert_eq!(
        canary["production"].0, first["v2"].0,
        "the old version keeps the main share"
    );
    assert_eq!(
        canary["production"].1,
        BTreeMap::from([(canary["v3"].0.clone(), 0.1)])
    );
    fx.ferry(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("canary  10% on v3"));

    fx.ferry(&["deploy", "--promote"]).assert().success();
    let promoted = aliases(RISK_FN).await;
    assert_eq!(
        promoted["production"],
        (canary["v3"].0.clone(), BTreeMap::new())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retire_is_refused_under_a_stage_and_gc_never_touches_an_aliased_version() {
    let fx = Fixture::new("deploy-retire", "");
    fx.ferry(&["deploy"]).assert().success();
    let live = aliases(RISK_FN).await;

    fx.retire("2", "superseded", "QA-9")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "stage alias production sends traffic to v2",
        ));
    fx.retire("1", "superseded", "QA-9").assert().success();
    assert!(!aliases(RISK_FN).await.contains_key("v1"));
    assert!(
        audit_keys()
            .await
            .iter()
            .any(|k| k.contains("risk-score/v1/") && k.contains("-retire-lv"))
    );

    // v1's Lambda version is now unreferenced: gc lists it, and --apply deletes only it.
    fx.ferry(&["gc"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "unreferenced: {}",
            live["v1"].0
        )));
    fx.ferry(&["gc", "--apply"]).assert().success();
    let versions = lambda()
        .await
        .list_versions_by_function()
        .function_name(RISK_FN)
        .send()
        .await
        .unwrap();
    let numbers: Vec<&str> = versions
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert!(!numbers.contains(&live["v1"].0.as_str()));
    assert!(numbers.contains(&live["v2"].0.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_makes_a_second_deploy_wait_then_fail_naming_the_holder() {
    let fx = Fixture::new("deploy-lock", "");
    let s3 = crate::harness::s3().await;
    // A live run's lock: its lease runs for another ten minutes.
    let expires = time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(600);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let holder = format!(
        r#"{{"holder": "ci-runner-12", "host": "runner", "pid": 4411, "run_id": "r1", "command": "ferry deploy",
             "started_at": "2026-11-26T09:12:03Z", "lease_seconds": 60, "expires_at": "{expires}"}}"#
    );
    s3.put_object()
        .bucket(BUCKET)
        .key("ferry/locks/test.lock")
        .body(holder.into_bytes().into())
        .send()
        .await
        .unwrap();

    fx.ferry(&["deploy", "--lock-timeout", "1"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(
                "held by ci-runner-12 (pid 4411, run r1) since 2026-11-26T09:12:03Z",
            )
            .and(predicate::str::contains("ferry unlock --force")),
        );
    assert!(
        aliases(RISK_FN).await.is_empty(),
        "nothing deployed without the lock"
    );
    fx.ferry(&["unlock", "--force", "--reason", "runner gone"])
        .assert()
        .success();
    assert!(
        audit_keys()
            .await
            .iter()
            .any(|k| k.starts_with("ferry/audit/test/unlock/"))
    );
    fx.ferry(&["deploy"]).assert().success();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_approval_is_reported_and_its_alias_left_live() {
    let fx = Fixture::new("deploy-revoke", "");
    fx.ferry(&["deploy"]).assert().success();
    fx.env.python(&[
        "tools/registry_fixture.py",
        "revoke",
        "--name",
        &fx.risk,
        "--version",
        "1",
    ]);
    let calls = mutating_calls(&fx.env, || {
        fx.ferry(&["plan"])
            .assert()
            .success()
            .stdout(predicate::str::contains("! v1").and(predicate::str::contains("revoked")));
        fx.ferry(&["deploy"]).assert().success();
    });
    assert!(calls.is_empty(), "{calls:#?}");
    assert!(aliases(RISK_FN).await.contains_key("v1"));
}

/// Published Lambda versions of a function (not `$LATEST`), with their descriptions.
pub(crate) async fn published(function: &str) -> BTreeMap<String, String> {
    let out = crate::harness::moto_lambda()
        .await
        .list_versions_by_function()
        .function_name(function)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter(|v| v.version() != Some("$LATEST"))
        .map(|v| {
            (
                v.version().unwrap().to_string(),
                v.description().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The lease of the runs the tests kill: the next run takes their lock over once it ran out (plus half of it).
const KILLED_RUN_LEASE: &str = "3";

impl Fixture {
    /// Starts `ferry deploy --jobs 1` through a relay that holds each request for 150 ms, and kills it (SIGKILL) as
    /// soon as `reached` says so, between two of its steps. Panics if the deploy ends first.
    pub(crate) async fn kill_deploy_when<F, Fut>(&self, what: &str, reached: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let relay = SlowRelay::start(
            &self.env.stack.aws_url,
            std::time::Duration::from_millis(150),
        )
        .await;
        let mut child = self.spawn_ferry(
            &relay.url,
            &[
                "-q",
                "deploy",
                "--jobs",
                "1",
                "--lock-timeout",
                "30",
                "--lock-lease",
                KILLED_RUN_LEASE,
            ],
        );
        let started = std::time::Instant::now();
        loop {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the deploy ended before {what}"
            );
            if reached().await {
                child.kill().unwrap();
                child.wait().unwrap();
                return;
            }
            assert!(started.elapsed().as_secs() < 120, "never {what}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_killed_between_two_steps_is_finished_by_the_next_run_with_no_manual_step() {
    let fx = Fixture::new("deploy-kill", "");

    // When a deploy is killed right after its first alias (readmission v1) exists, before its audit record,
    fx.kill_deploy_when("an alias existed", || async {
        aliases(READM_FN).await.contains_key("v1")
    })
    .await;
    assert!(
        !audit_keys().await.iter().any(|k| k.contains("-deploy-lv")),
        "killed before the audit record"
    );
    // the next run waits out the dead run's lease, takes its lock over (audited) and is itself killed right after
    // publishing risk-score's first version, before its smoke invoke and alias,
    fx.kill_deploy_when("a version was published", || async {
        !published(RISK_FN).await.is_empty()
    })
    .await;
    assert!(aliases(RISK_FN).await.is_empty(), "killed before the alias");

    // then the next run, again without anyone removing a lock, finishes everything:
    fx.ferry(&["deploy"])
        .assert()
        .success()
        .stderr(predicate::str::contains("took over the deploy lock of run"));

    // one published version per alias (the one published before the kill is reused, none twice), each carrying
    // its version's spec,
    for (function, expected) in [
        (RISK_FN, vec!["production", "v1", "v2"]),
        (READM_FN, vec!["v1"]),
    ] {
        let live = aliases(function).await;
        assert_eq!(live.keys().collect::<Vec<_>>(), expected);
        let versions = published(function).await;
        let version_aliases: Vec<_> = live.iter().filter(|(a, _)| a.starts_with('v')).collect();
        assert_eq!(
            versions.len(),
            version_aliases.len(),
            "{function}: one published version per alias, none twice: {versions:#?}"
        );
        for (alias, (lv, _)) in version_aliases {
            assert!(
                versions[lv].ends_with(&format!("/{alias}")),
                "{function}:{alias} -> {lv} {:?}",
                versions[lv]
            );
        }
    }
    // one audit record per alias (readmission's written by the last run), both takeovers audited, no unlock,
    let keys = audit_keys().await;
    assert_eq!(count(&keys, "-deploy-lv"), 3, "{keys:#?}");
    assert_eq!(count(&keys, "-takeover.json"), 2, "{keys:#?}");
    assert_eq!(
        count(&keys, "ferry/audit/test/unlock/"),
        2,
        "only the takeovers: {keys:#?}"
    );
    // and nothing left to do.
    let calls = mutating_calls(&fx.env, || {
        fx.ferry(&["deploy"]).assert().success();
    });
    assert!(calls.is_empty(), "{calls:#?}");
}
