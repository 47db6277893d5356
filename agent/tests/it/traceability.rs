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
    // Pinned before the alias existed, to the runtime version the version was published on.
    let runtime_version = record["configuration"]["runtime_version_arn"]
        .as_str()
        .expect("the record names the runtime version")
        .to_string();
    assert!(runtime_version.contains("::runtime:"), "{record}");
    assert_eq!(
        record["runtime_management"],
        serde_json::json!({"update_runtime_on": "Manual", "runtime_version_arn": runtime_version}),
        "{record}"
    );
    let set_runtime = |mode: &'static str, arn: Option<String>| {
        let lam = lam.clone();
        let v1 = v1.clone();
        async move {
            lam.put_runtime_management_config()
                .function_name(RISK_FN)
                .qualifier(v1)
                .update_runtime_on(mode.into())
                .set_runtime_version_arn(arn)
                .send()
                .await
                .unwrap();
        }
    };
    let release_url = format!("{}/ferry-lambda/runtime-release", fx.env.stack.aws_url);
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
            expected: format!("Lambda version {v2}, which was published for risk-score v2"),
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
            name: "alias deleted by hand",
            expected: "the alias is gone and no retirement record says why: deleted outside `ferry retire`".into(),
        },
        Drift {
            name: "runtime update mode set to Auto by hand",
            expected: format!(
                "Lambda version {v1}: its runtime update mode is Auto, its deploy record says Manual (runtime version {runtime_version})"
            ),
        },
        Drift {
            name: "runtime version changed by hand",
            expected: "runs runtime version arn:".into(),
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
            "alias deleted by hand" => {
                lam.delete_alias()
                    .function_name(RISK_FN)
                    .name("v1")
                    .send()
                    .await
                    .unwrap();
            }
            "runtime update mode set to Auto by hand" => set_runtime("Auto", None).await,
            "runtime version changed by hand" => {
                // Lambda releases a new runtime version: every version in Auto mode moves to it, Ferry's do not.
                let runtime = record["configuration"]["runtime"].as_str().unwrap();
                assert!(crate::harness::ureq_post(
                    &release_url,
                    &format!("{{\"runtime\": {runtime:?}}}")
                ));
                fx.ferry(&["verify"]).assert().success();
                let newer = lam
                    .get_function_configuration()
                    .function_name(RISK_FN)
                    .send()
                    .await
                    .unwrap()
                    .runtime_version_config()
                    .and_then(|r| r.runtime_version_arn())
                    .unwrap()
                    .to_string();
                assert_ne!(
                    newer, runtime_version,
                    "$LATEST (Auto) moved to the new runtime version"
                );
                set_runtime("Manual", Some(newer)).await;
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
        if drift.name == "file changed" {
            // --alias narrows the check to the aliases named; one that does not exist is an error.
            fx.ferry(&["verify", "--alias", "v2"]).assert().success();
            fx.ferry(&["verify", "--alias", "v1", "--alias", "production"])
                .assert()
                .code(1)
                .stdout(predicate::str::contains(drift.expected.as_str()));
            fx.ferry(&["verify", "--alias", "v9"])
                .assert()
                .failure()
                .stderr(predicate::str::contains("--alias v9: no such alias"));
        }
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
            "runtime update mode set to Auto by hand" | "runtime version changed by hand" => {
                set_runtime("Manual", Some(runtime_version.clone())).await
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

/// `ferry audit export` after a real story (deploys, a recorded verification, a canary, its promotion, a
/// retirement), with the values approvers really type: the bundle holds each version's approval, deploys, stage
/// periods with their shares, retirement and verifications; the three formats name one digest; the HTML page is
/// rendered by a real browser (headless Chromium) and shows hostile text as text.
#[tokio::test(flavor = "multi_thread")]
async fn audit_export_gives_each_version_its_evidence_in_json_csv_and_a_page_a_browser_renders() {
    let fx = Fixture::new("trace-export", "canary_weight = 0.1");
    let approver =
        "Zoë Ångström-Łukasiewicz <zoe.angstrom-lukasiewicz@clinical-research.example.org>";
    // A ticket a spreadsheet would run as a formula, and markup a page would run as a script.
    let ticket = "=HYPERLINK(\"https://evil.example/\",\"CHG-1042\")";
    let meaning = "approved for clinical use — SOP-12 §4 <b>not bold</b>";
    for (tag, value) in [
        ("ferry.approved_by", approver),
        ("ferry.ticket", ticket),
        ("ferry.approval_meaning", meaning),
    ] {
        fx.env.python(&[
            "-c",
            &format!(
                "from mlflow import MlflowClient; MlflowClient().set_model_version_tag({:?}, '1', {tag:?}, {value:?})",
                fx.risk
            ),
        ]);
    }
    fx.ferry(&["deploy"]).assert().success();
    fx.ferry(&["verify", "--record"])
        .assert()
        .success()
        .stderr(predicate::str::contains("recorded: s3://"));
    registry_stage(&fx, &fx.risk, 1);
    fx.ferry(&["deploy"]).assert().success(); // production: 10% on v1
    fx.ferry(&["deploy", "--promote"]).assert().success(); // production: all on v1
    fx.retire("2", "superseded by v1", "CHG-7")
        .assert()
        .success();

    let dir = tempfile::tempdir().unwrap();
    let export = |format: &str| {
        let out = dir.path().join(format!("evidence.{format}"));
        fx.ferry(&[
            "audit",
            "export",
            "--model",
            "risk-score",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("2 model version(s)"));
        // The sidecar names the file's own digest, as `sha256sum -c` reads it.
        let body = std::fs::read(&out).unwrap();
        let sidecar =
            std::fs::read_to_string(out.with_extension(format!("{format}.sha256"))).unwrap();
        use sha2::Digest;
        assert_eq!(
            sidecar,
            format!(
                "{}  evidence.{format}\n",
                hex::encode(sha2::Sha256::digest(&body))
            )
        );
        (out, String::from_utf8(body).unwrap())
    };

    let (_, json) = export("json");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let digest = doc["bundle_sha256"].as_str().unwrap().to_string();
    let versions = doc["bundle"]["versions"].as_array().unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v["alias"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["v1", "v2"],
        "{doc:#}"
    );
    let (v1, v2) = (&versions[0], &versions[1]);
    assert_eq!(v1["approval"]["approved_by"], approver);
    assert_eq!(v1["approval"]["ticket"], ticket);
    assert_eq!(v1["approval"]["meaning"], meaning);
    assert_eq!(v1["deploys"].as_array().unwrap().len(), 1);
    assert!(v1["deploys"][0]["spec_hash"].as_str().unwrap().len() == 64);
    let shares = |v: &serde_json::Value| -> Vec<(String, bool, f64)> {
        v["stage_periods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["stage"].as_str().unwrap().to_string(),
                    p["until"].is_null(),
                    (p["share"].as_f64().unwrap() * 100.0).round(),
                )
            })
            .collect()
    };
    // v2 served production alone, then kept 90% during the canary; v1 got 10%, then all of it.
    assert_eq!(
        shares(v2),
        [
            ("production".into(), false, 100.0),
            ("production".into(), false, 90.0)
        ]
    );
    assert_eq!(
        shares(v1),
        [
            ("production".into(), false, 10.0),
            ("production".into(), true, 100.0)
        ]
    );
    assert_eq!(v2["retirements"].as_array().unwrap().len(), 1);
    assert!(v1["retirements"].as_array().unwrap().is_empty());
    for v in [v1, v2] {
        let checks = v["verifications"].as_array().unwrap();
        assert_eq!(checks.len(), 1, "{v:#}");
        assert_eq!(checks[0]["ok"], true);
    }

    // The same records, exported again: the same digest; in CSV the formula is shown, not run.
    let (_, json_again) = export("json");
    assert!(json_again.contains(&digest));
    let (_, csv) = export("csv");
    assert!(csv.contains(&format!("sha256 {digest}")), "{csv}");
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"https://evil.example/\"\",\"\"CHG-1042\"\")\""),
        "{csv}"
    );

    let (page, html) = export("html");
    assert!(html.contains(&digest));
    let browser = "/usr/bin/chromium";
    assert!(
        std::path::Path::new(browser).exists(),
        "{browser} is missing: .ci/run installs Debian's chromium package for this test"
    );
    let profile = tempfile::tempdir().unwrap();
    let chromium = |extra: &[String]| {
        let out = std::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The DOM the browser built: the approver's markup is text, no element came of it.
    let dom = chromium(&["--dump-dom".into()]);
    assert!(dom.contains("<section id=\"risk-score-v1\">"), "{dom}");
    assert!(dom.contains(
        "Zoë Ångström-Łukasiewicz &lt;zoe.angstrom-lukasiewicz@clinical-research.example.org&gt;"
    ));
    assert!(dom.contains("&lt;b&gt;not bold&lt;/b&gt;") && !dom.contains("<b>"));
    assert!(dom.contains("still serving") && dom.contains("10%"));
    // A screenshot a person can look at (kept beside the test binary's other outputs).
    let shot = std::env::temp_dir().join("ferry-evidence.png");
    chromium(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,2400".into(),
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );

    // A model nobody deployed is an error, not an empty bundle.
    fx.ferry(&["audit", "export", "--model", "nonesuch", "--format", "json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("holds no record of it"));
}
