//! What an auditor asks, after real deploys on the stand-ins: what was live when (`ferry history`), and whether what
//! runs is what was approved and recorded (`ferry verify`, one drift at a time, each named).
use predicates::prelude::*;

use crate::deploy::{Fixture, RISK_FN, aliases, lambda};
use aws_sdk_lambda::client::Waiters;

use crate::harness::BUCKET;

pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Moves the registry's `production` alias of `name` to `version` (as a release manager would in MLflow).
pub(crate) fn registry_stage(fx: &Fixture, name: &str, version: u32) {
    fx.env.python(&[
        "-c",
        &format!(
            "from mlflow import MlflowClient; MlflowClient().set_registered_model_alias({name:?}, 'production', '{version}')"
        ),
    ]);
}

fn history_json(fx: &Fixture, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--output", "json", "history"];
    all.extend_from_slice(args);
    let out = fx
        .ferry(&all)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

/// `(alias, version)` of each live row of a model in `history --at`.
fn live(doc: &serde_json::Value, model: &str) -> Vec<(String, String)> {
    doc["live"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["model"] == model)
        .map(|r| {
            (
                r["alias"].as_str().unwrap().to_string(),
                r["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn history_says_what_each_stage_served_at_each_point_of_a_scripted_sequence() {
    let fx = Fixture::new("trace-history", "");
    let before = now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    fx.ferry(&["deploy"]).assert().success();
    let t1 = now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    registry_stage(&fx, &fx.risk, 1);
    fx.ferry(&["deploy"]).assert().success();
    let t2 = now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    fx.ferry(&[
        "retire",
        "--model",
        "risk-score",
        "--version",
        "2",
        "--reason",
        "superseded",
        "--ticket",
        "CHG-7",
    ])
    .assert()
    .success();
    let t3 = now();

    assert!(live(&history_json(&fx, &["--at", &before]), "risk-score").is_empty());
    let at1 = history_json(&fx, &["--at", &t1]);
    assert_eq!(
        live(&at1, "risk-score"),
        [
            ("production".into(), "2".into()),
            ("v1".into(), "1".into()),
            ("v2".into(), "2".into())
        ]
    );
    let production = &at1["live"][0];
    assert_eq!(
        production["approval"]["approved_by"], "qa@example.org",
        "{production:#}"
    );
    assert_eq!(
        live(&history_json(&fx, &["--at", &t2]), "risk-score"),
        [
            ("production".into(), "1".into()),
            ("v1".into(), "1".into()),
            ("v2".into(), "2".into())
        ]
    );
    assert_eq!(
        live(
            &history_json(&fx, &["--at", &t3, "--model", "risk-score"]),
            "risk-score"
        ),
        [("production".into(), "1".into()), ("v1".into(), "1".into())]
    );

    // The timeline: every event in order, with who approved and who deployed.
    let out = fx
        .ferry(&["history", "--model", "risk-score"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let order: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            ["created", "-> v2", "-> v1", "retired"]
                .into_iter()
                .find(|w| l.contains(w))
        })
        .collect();
    assert_eq!(
        order,
        ["created", "created", "-> v2", "-> v1", "retired"],
        "{text}"
    );
    assert!(text.contains("approved by qa@example.org"), "{text}");
    assert!(text.contains("superseded (CHG-7)"), "{text}");
    let stage_only = history_json(&fx, &["--stage", "production"]);
    assert_eq!(stage_only.as_array().unwrap().len(), 2);
    fx.ferry(&["history", "--at", "yesterday"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--at \"yesterday\" is not an RFC 3339 time",
        ));
}

/// One drift an auditor must see: made through the AWS API or the file system, named by `verify`, then undone.
struct Drift {
    name: &'static str,
    expected: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_each_kind_of_drift_exactly() {
    let fx = Fixture::new("trace-verify", "");
    // The signature's meaning, as a review tool would tag it (Unicode and all).
    let meaning = "approved for clinical use — SOP-12 §4 (Müller)";
    fx.env.python(&[
        "-c",
        &format!(
            "from mlflow import MlflowClient; MlflowClient().set_model_version_tag({:?}, '1', 'ferry.approval_meaning', {meaning:?})",
            fx.risk
        ),
    ]);
    fx.ferry(&["deploy"]).assert().success();
    fx.ferry(&["verify"]).assert().success();
    let live = aliases(RISK_FN).await;
    let (v1, v2) = (live["v1"].0.clone(), live["v2"].0.clone());
    let folder = fx.env.efs_root().join("risk-score/1");
    let mlmodel = folder.join("MLmodel");
    let manifest = folder.join(".ferry-manifest.json");
    let s3 = crate::harness::s3().await;
    let record_key = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("ferry/audit/test/risk-score/v1/")
        .send()
        .await
        .unwrap()
        .contents()[0]
        .key()
        .unwrap()
        .to_string();
    let lam = lambda().await;
    let repoint = |alias: &'static str,
                   to: String,
                   weights: Option<(String, f64)>,
                   description: Option<&'static str>| {
        let lam = lam.clone();
        async move {
            let routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(weights.into_iter().collect()))
                .build();
            let mut req = lam
                .update_alias()
                .function_name(RISK_FN)
                .name(alias)
                .function_version(to)
                .routing_config(routing);
            if let Some(d) = description {
                req = req.description(d);
            }
            req.send().await.unwrap();
        }
    };
    let production_description = lam
        .get_alias()
        .function_name(RISK_FN)
        .name("production")
        .send()
        .await
        .unwrap()
        .description()
        .unwrap_or_default()
        .to_string();
    let mlmodel_bytes = std::fs::read(&mlmodel).unwrap();
    let manifest_bytes = std::fs::read(&manifest).unwrap();
    let record_bytes = crate::harness::object_bytes(&record_key).await;
    let record: serde_json::Value = serde_json::from_slice(&record_bytes).unwrap();
    assert_eq!(record["approval"]["meaning"], meaning, "{record}");
    assert_eq!(record["spec"]["approval"]["meaning"], meaning);
    assert_eq!(record["spec"]["spec_hash"], record["spec_hash"]);
    assert_eq!(
        record["configuration"]["memory_mb"],
        record["spec"]["memory_mb"]
    );
    // The registry, changed as a person with MLflow rights could change it.
    let mlflow = |code: String| {
        fx.env.python(&[
            "-c",
            &format!("from mlflow import MlflowClient; c = MlflowClient(); {code}"),
        ])
    };
    let risk = fx.risk.clone();
    let ticket = mlflow(format!(
        "print(c.get_model_version({risk:?}, '1').tags['ferry.ticket'], end='')"
    ));
    let set_tag = |key: &str, value: &str| {
        mlflow(format!(
            "c.set_model_version_tag({risk:?}, '1', {key:?}, {value:?})"
        ))
    };

    let mut results = Vec::new();
    for drift in [
        Drift {
            name: "version alias repointed",
            expected: format!("Lambda version {v2} was published for risk-score v2"),
        },
        Drift {
            name: "routing weight added to a version alias",
            expected: "traffic split".into(),
        },
        Drift {
            name: "version published by hand behind an alias",
            expected: "was not published by Ferry".into(),
        },
        Drift {
            name: "stage moved by hand",
            expected: "a move without its record".into(),
        },
        Drift {
            name: "routing weight added to a stage by hand",
            expected: "a move without its record".into(),
        },
        Drift {
            name: "file changed",
            expected: "MLmodel changed: manifest says sha256".into(),
        },
        Drift {
            name: "file deleted",
            expected: "MLmodel missing (manifest says sha256".into(),
        },
        Drift {
            name: "file added",
            expected: "notes.txt added (not in the manifest".into(),
        },
        Drift {
            name: "manifest edited",
            expected: ".ferry-manifest.json".into(),
        },
        Drift {
            name: "approval tag removed",
            expected: "the approval of version 1 is no longer in the registry".into(),
        },
        Drift {
            name: "approval withdrawn",
            expected: "the approval of version 1 was withdrawn in the registry".into(),
        },
        Drift {
            name: "approval edited in the registry",
            expected: format!(
                "the approval of version 1 in the registry is not the one it was deployed under: ticket {ticket:?} is now \"CHG-9999\""
            ),
        },
        Drift {
            name: "deploy record rewritten",
            expected: "the record was altered".into(),
        },
        Drift {
            name: "audit record deleted",
            expected: "the audit record says nothing".into(),
        },
    ] {
        // Make it.
        match drift.name {
            "version alias repointed" => repoint("v1", v2.clone(), None, None).await,
            "routing weight added to a version alias" => {
                repoint("v1", v1.clone(), Some((v2.clone(), 0.1)), None).await
            }
            "version published by hand behind an alias" => {
                lam.update_function_configuration()
                    .function_name(RISK_FN)
                    .memory_size(2048)
                    .send()
                    .await
                    .unwrap();
                // As a person's script must: a publish while the update is in progress is refused (409).
                lam.wait_until_function_updated_v2()
                    .function_name(RISK_FN)
                    .wait(std::time::Duration::from_secs(60))
                    .await
                    .unwrap();
                let hand = lam
                    .publish_version()
                    .function_name(RISK_FN)
                    .description("hotfix")
                    .send()
                    .await
                    .unwrap();
                repoint("v1", hand.version().unwrap().to_string(), None, None).await;
            }
            "stage moved by hand" => {
                repoint("production", v1.clone(), None, Some("rolled back by hand")).await
            }
            "routing weight added to a stage by hand" => {
                repoint("production", v2.clone(), Some((v1.clone(), 0.5)), None).await
            }
            "file changed" => std::fs::write(
                &mlmodel,
                [mlmodel_bytes.as_slice(), b"\n# edited\n"].concat(),
            )
            .unwrap(),
            "file deleted" => std::fs::remove_file(&mlmodel).unwrap(),
            "file added" => std::fs::write(folder.join("notes.txt"), "hello").unwrap(),
            "manifest edited" => std::fs::write(
                &manifest,
                String::from_utf8_lossy(&manifest_bytes).replace("\"size\": ", "\"size\": 1"),
            )
            .unwrap(),
            "approval tag removed" => {
                mlflow(format!(
                    "c.delete_model_version_tag({risk:?}, '1', 'ferry.approved')"
                ));
            }
            "approval withdrawn" => {
                set_tag("ferry.approved", "false");
            }
            "approval edited in the registry" => {
                set_tag("ferry.ticket", "CHG-9999");
            }
            "deploy record rewritten" => {
                // A privileged user rewrites the record so that it no longer says what was deployed.
                let mut record: serde_json::Value = serde_json::from_slice(&record_bytes).unwrap();
                record["spec"]["memory_mb"] = serde_json::json!(4096);
                s3.put_object()
                    .bucket(BUCKET)
                    .key(&record_key)
                    .body(serde_json::to_vec(&record).unwrap().into())
                    .send()
                    .await
                    .unwrap();
            }
            "audit record deleted" => {
                s3.delete_object()
                    .bucket(BUCKET)
                    .key(&record_key)
                    .send()
                    .await
                    .unwrap();
            }
            other => unreachable!("{other}"),
        }
        let out = fx.ferry(&["verify"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let failing: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
        let named = failing.len() == 1 && failing[0].contains(&drift.expected);
        results.push((drift.name, out.status.code(), named));
        assert!(
            named && out.status.code() == Some(1),
            "{}: exactly one finding naming {:?}:\n{stdout}",
            drift.name,
            drift.expected
        );
        // Undo it.
        match drift.name {
            "version alias repointed"
            | "routing weight added to a version alias"
            | "version published by hand behind an alias" => {
                repoint("v1", v1.clone(), None, None).await
            }
            "stage moved by hand" | "routing weight added to a stage by hand" => {
                let description: &'static str =
                    Box::leak(production_description.clone().into_boxed_str());
                repoint("production", v2.clone(), None, Some(description)).await
            }
            "file changed" | "file deleted" => std::fs::write(&mlmodel, &mlmodel_bytes).unwrap(),
            "file added" => std::fs::remove_file(folder.join("notes.txt")).unwrap(),
            "manifest edited" => std::fs::write(&manifest, &manifest_bytes).unwrap(),
            "alias deleted by hand" => {
                lam.create_alias()
                    .function_name(RISK_FN)
                    .name("v1")
                    .function_version(&v1)
                    .send()
                    .await
                    .unwrap();
            }
            "approval tag removed" | "approval withdrawn" => {
                set_tag("ferry.approved", "true");
            }
            "approval edited in the registry" => {
                set_tag("ferry.ticket", &ticket);
            }
            "deploy record rewritten" => {
                s3.put_object()
                    .bucket(BUCKET)
                    .key(&record_key)
                    .body(record_bytes.clone().into())
                    .send()
                    .await
                    .unwrap();
            }
            "audit record deleted" => {}
            other => unreachable!("{other}"),
        }
        if drift.name != "audit record deleted" {
            fx.ferry(&["verify"]).assert().success();
        }
    }
    eprintln!("verify drift table: {results:?}");
}
