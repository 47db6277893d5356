//! Rebuild from the record, as after the loss of a region: a second stand-in stack plays the new region (its own
//! Lambda, EFS and bucket, functions created empty as `terraform apply` leaves them), its bucket holding a copy of the
//! artifacts and the audit records as a replicated bucket would, the registry the same. `ferry deploy --from-record`
//! rebuilds exactly what was live, with the recorded specs, and `ferry verify` passes on it.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::deploy::{Fixture, READM_FN, RISK_FN, aliases};
use crate::harness::{BUCKET, Env, mutating_calls};
use crate::traceability::{now, registry_stage};

/// Every object of the current stack's bucket under `prefix`, with its bytes.
async fn objects(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let s3 = crate::harness::s3().await;
    let mut pages = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    let mut out = Vec::new();
    for key in keys {
        let bytes = crate::harness::object_bytes(&key).await;
        out.push((key, bytes));
    }
    out
}

async fn put(key: &str, bytes: Vec<u8>) {
    crate::harness::s3()
        .await
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .unwrap();
}

/// Version alias → (deploy record key, its spec_hash, its spec's memory) of a model's newest deploy records.
fn deploy_records(
    records: &[(String, Vec<u8>)],
    model: &str,
) -> BTreeMap<String, (String, String, u64)> {
    let mut out = BTreeMap::new();
    for (key, bytes) in records.iter().filter(|(k, _)| {
        k.starts_with(&format!("ferry/audit/test/{model}/v")) && k.contains("-deploy-lv")
    }) {
        let record: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        out.insert(
            record["alias"].as_str().unwrap().to_string(),
            (
                key.clone(),
                record["spec_hash"].as_str().unwrap().to_string(),
                record["spec"]["memory_mb"].as_u64().unwrap(),
            ),
        );
    }
    out
}

/// `(action, alias or stage)` of each action of `model` in a plan document.
fn actions(plan: &serde_json::Value, model: &str) -> Vec<serde_json::Value> {
    plan["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model)
        .unwrap_or_else(|| panic!("{model} in {plan:#}"))["actions"]
        .as_array()
        .unwrap()
        .clone()
}

fn names(actions: &[serde_json::Value]) -> Vec<String> {
    actions
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["action"].as_str().unwrap(),
                a.get("alias").or(a.get("stage")).unwrap().as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_platform_rebuilt_from_the_record_serves_exactly_what_was_live_with_the_recorded_specs() {
    let started = Instant::now();
    // Given risk-score v1, v2 and v3 deployed with production on v2, then v1 withdrawn and retired, then production moved towards
    // v3 as a 10% canary (and readmission v1 deployed):
    let fx = Fixture::new("rebuild", "canary_weight = 0.1");
    fx.env.approve(&fx.risk, 3, &[]);
    fx.ferry(&["deploy"]).assert().success();
    std::thread::sleep(Duration::from_millis(20));
    let first_deploy = now();
    std::thread::sleep(Duration::from_millis(20));
    // Taken out of service for good: approval withdrawn, then retired (else the next deploy creates it again).
    fx.env.python(&[
        "-c",
        &format!(
            "from mlflow import MlflowClient; MlflowClient().set_model_version_tag({:?}, '1', 'ferry.approved', 'false')",
            fx.risk
        ),
    ]);
    fx.retire("1", "superseded", "CHG-1").assert().success();
    registry_stage(&fx, &fx.risk, 3);
    fx.ferry(&["deploy"]).assert().success();
    let live = aliases(RISK_FN).await;
    assert_eq!(
        live["production"],
        (
            live["v2"].0.clone(),
            BTreeMap::from([(live["v3"].0.clone(), 0.1)])
        ),
        "production mid-canary"
    );
    // And afterwards the catalog renders 2048 MB (a normal deploy would make new specs) and the registry's
    // production points at v2:
    let catalog = std::fs::read_to_string(&fx.catalog).unwrap();
    std::fs::write(
        &fx.catalog,
        catalog.replace(
            "canary_weight = 0.1",
            "canary_weight = 0.1\nmemory_mb = 2048",
        ),
    )
    .unwrap();
    registry_stage(&fx, &fx.risk, 2);
    fx.ferry(&["plan"])
        .assert()
        .success()
        .stdout(predicate::str::contains("? v2           pending re-spec"));
    let copied: Vec<(String, Vec<u8>)> =
        [objects("mlflow/").await, objects("ferry/audit/").await].concat();
    let recorded = deploy_records(&copied, "risk-score");
    let recorded_readm = deploy_records(&copied, "readmission");
    let mlflow = fx.env.vars()["MLFLOW_TRACKING_URI"].clone();
    let old_setup = started.elapsed();

    // When the region is lost: a new one, with a copy of the artifacts and the audit records, functions empty.
    let region = Env::new();
    for (key, bytes) in copied {
        put(&key, bytes).await;
    }
    let platform = region.platform(&[("risk-score", RISK_FN), ("readmission", READM_FN)]);
    region.python(&[
        "tools/local_platform.py",
        "--platform",
        platform.to_str().unwrap(),
    ]);
    assert!(aliases(RISK_FN).await.is_empty(), "an empty platform");
    let ferry = |args: &[&str]| {
        let mut cmd = region.ferry();
        cmd.env("MLFLOW_TRACKING_URI", &mlflow)
            .arg("--catalog")
            .arg(&fx.catalog)
            .arg("--platform")
            .arg(&platform)
            .args(args);
        cmd
    };

    // Then the plan from the record shows exactly the versions and the routing that were live, each spec the
    // recorded one, byte for byte (its hash and its record), v1 (retired) not among them:
    let out = ferry(&["--output", "json", "plan", "--from-record"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(
        plan["from_record"]["audit"] == "s3://ferry-artifacts/ferry/audit/test/",
        "{:#}",
        plan["from_record"]
    );
    let risk = actions(&plan, "risk-score");
    assert_eq!(
        names(&risk),
        ["create v2", "create v3", "stage_move production"],
        "{risk:#?}"
    );
    for a in &risk[..2] {
        let (key, hash, _) = &recorded[a["alias"].as_str().unwrap()];
        assert_eq!(
            (
                &a["spec_hash"],
                &a["from_record"]["spec_hash"],
                &a["from_record"]["key"]
            ),
            (
                &serde_json::json!(hash),
                &serde_json::json!(hash),
                &serde_json::json!(key)
            ),
            "{a:#}"
        );
    }
    assert_eq!(
        (
            &risk[2]["to_version"],
            &risk[2]["canary_weight"],
            &risk[2]["from_record"]["main_version"]
        ),
        (
            &serde_json::json!("3"),
            &serde_json::json!(0.1),
            &serde_json::json!("2")
        ),
        "production replays the canary: 90% v2, 10% v3"
    );
    let readm = actions(&plan, "readmission");
    assert_eq!(names(&readm), ["create v1"]);
    assert_eq!(
        readm[0]["spec_hash"].as_str(),
        Some(recorded_readm["v1"].1.as_str())
    );
    // At the time of the first deploy, the record shows v1 live too and production fully on v2; but v1's approval
    // was withdrawn since, so it is not rebuilt (and its model is blocked), said with its record and why:
    let out = ferry(&["--output", "json", "plan", "--from-record", "--at", &first_deploy])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the approval of version 1 was withdrawn in the registry: rebuilding it would deploy what is no longer approved",
        ))
        .get_output()
        .stdout
        .clone();
    let then = actions(&serde_json::from_slice(&out).unwrap(), "risk-score");
    assert_eq!(
        names(&then),
        [
            "create v2",
            "create v3",
            "refused_rebuild v1",
            "stage_move production"
        ]
    );
    assert_eq!(
        then[2]["record_key"].as_str(),
        Some(recorded["v1"].0.as_str())
    );
    assert_eq!(
        (&then[3]["to_version"], &then[3]["canary_weight"]),
        (&serde_json::json!("2"), &serde_json::Value::Null)
    );

    // A record altered in the copy stops the rebuild before any change, the lock included, naming it:
    let (v3_key, _, _) = &recorded["v3"];
    let original = crate::harness::object_bytes(v3_key).await;
    let mut altered: serde_json::Value = serde_json::from_slice(&original).unwrap();
    altered["spec"]["memory_mb"] = serde_json::json!(4096);
    put(v3_key, serde_json::to_vec(&altered).unwrap()).await;
    let calls = mutating_calls(&region, || {
        ferry(&["deploy", "--from-record"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!(
                "error: {v3_key}: its spec hashes to"
            )))
            .stderr(predicate::str::contains("the record was altered"));
    });
    assert_eq!(calls, Vec::<String>::new());
    put(v3_key, original).await;

    // When rebuilt from the record:
    let rebuild_started = Instant::now();
    ferry(&["deploy", "--from-record"]).assert().success();
    let rebuild_took = rebuild_started.elapsed();

    // Then it serves what was live: v2 and v3 (not v1), production 90/10 between them, readmission v1 ...
    let rebuilt = aliases(RISK_FN).await;
    assert_eq!(
        rebuilt.keys().collect::<Vec<_>>(),
        ["production", "v2", "v3"]
    );
    assert_eq!(
        rebuilt["production"],
        (
            rebuilt["v2"].0.clone(),
            BTreeMap::from([(rebuilt["v3"].0.clone(), 0.1)])
        )
    );
    assert_eq!(aliases(READM_FN).await.keys().collect::<Vec<_>>(), ["v1"]);
    // ... with the recorded configuration, not the catalog's 2048 MB ...
    let lambda = crate::harness::moto_lambda().await;
    for alias in ["v2", "v3"] {
        let config = lambda
            .get_function_configuration()
            .function_name(RISK_FN)
            .qualifier(&rebuilt[alias].0)
            .send()
            .await
            .unwrap();
        let (_, hash, memory) = &recorded[alias];
        assert_eq!(config.memory_size(), Some(*memory as i32), "{alias}");
        assert_ne!(*memory, 2048);
        assert!(
            config
                .description()
                .unwrap()
                .starts_with(&format!("ferry:{hash} ")),
            "{alias}: {:?}",
            config.description()
        );
    }
    // ... its own records saying it is a rebuild, and verify passes on it (EFS folders and registry included).
    let records = objects("ferry/audit/test/risk-score/v3/").await;
    let newest: serde_json::Value = serde_json::from_slice(&records.last().unwrap().1).unwrap();
    assert!(
        newest["reason"].as_str().unwrap().starts_with(&format!(
            "rebuilt from the record: the spec of deploy record {v3_key}"
        )),
        "{newest:#}"
    );
    ferry(&["verify"]).assert().success();
    // A rerun finds nothing to do.
    ferry(&["plan", "--from-record", "--detailed-exitcode"])
        .assert()
        .code(0);
    assert!(Path::new(&region.efs_root().join("risk-score/3")).is_dir());
    eprintln!(
        "rebuild from the record: test {:?} (old platform {old_setup:?}, rebuild deploy {rebuild_took:?})",
        started.elapsed()
    );
}
