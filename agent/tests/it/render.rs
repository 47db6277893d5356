//! `ferry render` against a real MLflow registry: approvals set by MLflow's own client, more versions than one
//! search page, registry aliases; and the table of bad inputs, each named with file, field or line.
use predicates::prelude::*;

use crate::harness::Env;

fn catalog(env: &Env, registered: &str, extra: &str) -> std::path::PathBuf {
    env.write(
        "ferry.toml",
        &format!(
            "[registry]\nsource = \"mlflow\"\npage_size = 2\n[defaults]\nstages = [\"production\"]\n\
             [models.risk-score]\nregistered_model = \"{registered}\"\nenvironment = {{ LOG_LEVEL = \"info\" }}\n{extra}"
        ),
    )
}

#[test]
fn renders_one_spec_per_approved_version_across_search_pages() {
    let env = Env::new();
    env.register(
        "risk-score",
        "render-pages",
        5,
        &[1, 2, 4, 5],
        &[("production", 4)],
    );
    let catalog = catalog(&env, "render-pages", "");
    let platform = env.platform(&[("risk-score", "ferry-test-risk-score")]);

    let out = env
        .ferry()
        .args(["render", "--output", "json", "--catalog"])
        .arg(&catalog)
        .arg("--platform")
        .arg(&platform)
        .assert()
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let specs = doc["specs"].as_array().unwrap();
    let versions: Vec<&str> = specs
        .iter()
        .map(|s| s["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1", "2", "4", "5"], "version 3 is not approved");
    let v4 = &specs[2];
    assert_eq!(v4["alias"], "v4");
    assert_eq!(v4["function_name"], "ferry-test-risk-score");
    assert_eq!(v4["efs_path"], "/mnt/models/risk-score/4");
    assert_eq!(
        v4["environment"]["FERRY_MODEL_PATH"],
        "/mnt/models/risk-score/4"
    );
    assert_eq!(v4["environment"]["LOG_LEVEL"], "info");
    assert_eq!(v4["approval"]["ticket"], "QA-100");
    assert!(
        v4["artifact"]["source"]
            .as_str()
            .unwrap()
            .starts_with("s3://ferry-artifacts/")
    );
    assert_eq!(v4["spec_hash"].as_str().unwrap().len(), 64);

    // Same inputs, byte-identical output.
    let again = env
        .ferry()
        .args(["render", "--output", "json", "--catalog"])
        .arg(&catalog)
        .arg("--platform")
        .arg(&platform)
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, again.get_output().stdout);

    // The text summary shows the registry alias.
    env.ferry()
        .arg("render")
        .arg("--catalog")
        .arg(&catalog)
        .arg("--platform")
        .arg(&platform)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("stage production -> v4")
                .and(predicate::str::contains("4 spec(s) rendered.")),
        );

    // --out writes one file per version.
    let out_dir = env.tmp.path().join("specs");
    env.ferry()
        .arg("render")
        .arg("--catalog")
        .arg(&catalog)
        .arg("--platform")
        .arg(&platform)
        .arg("--out")
        .arg(&out_dir)
        .assert()
        .success();
    assert!(out_dir.join("risk-score/v5.json").is_file());
}

#[test]
fn an_approved_version_without_a_ticket_is_an_error_not_a_skip() {
    let env = Env::new();
    env.register("risk-score", "render-noticket", 1, &[], &[]);
    env.python(&["-c", "from mlflow import MlflowClient as C; c=C(); \
        [c.set_model_version_tag('render-noticket','1',k,v) for k,v in \
        {'ferry.approved':'true','ferry.approved_by':'qa@example.org','ferry.approved_at':'2026-11-01T10:00:00Z'}.items()]"]);
    let catalog = catalog(&env, "render-noticket", "");
    let platform = env.platform(&[("risk-score", "f")]);
    env.ferry().arg("render").arg("--catalog").arg(&catalog).arg("--platform").arg(&platform).assert().code(1).stderr(
        predicate::str::contains("render-noticket version 1 is tagged ferry.approved=true but has no ticket (ferry.ticket)"),
    );
}

#[test]
fn bad_inputs_are_named_with_file_field_and_reason() {
    let env = Env::new();
    env.register("risk-score", "render-bad", 1, &[1], &[]);
    let platform = env.platform(&[("risk-score", "f")]);
    let run = |catalog: &std::path::Path, platform: &std::path::Path| {
        let out = env
            .ferry()
            .arg("render")
            .arg("--catalog")
            .arg(catalog)
            .arg("--platform")
            .arg(platform)
            .assert()
            .code(1);
        String::from_utf8_lossy(&out.get_output().stderr).to_string()
    };

    // (case, catalog extra lines, template text, expected start of the message after "error: ")
    let template_missing_var =
        "{\n  \"description\": \"x\",\n  \"memory_mb\": 1024,\n  \"timeout_s\": {{timeout}},\n}";
    let template_bad_json = "{ \"description\": \"{{model.key}}\", \"memory_mb\": 1024 ";
    let template_over_limit = "{ \"description\": \"x\", \"memory_mb\": 20480, \"timeout_s\": 30 }";
    let cases: Vec<(&str, &str, Option<&str>, String)> = vec![
        ("unknown key", "memroy_mb = 2\n", None, "ferry.toml: line 9: unknown field `memroy_mb`".into()),
        ("over-limit catalog value", "memory_mb = 20480\n", None,
         "ferry.toml: models.risk-score.memory_mb = 20480 is above Lambda's maximum of 10240 MB".into()),
        ("model missing from the platform", "function = \"nope\"\n", None,
         "platform.json: models.risk-score: functions has no \"nope\"".into()),
        ("template variable not in the context", "template = \"t.hbs\"\n", Some(template_missing_var),
         "t.hbs:4: `{{timeout}}` is not in the template context (did you mean `model.timeout_s`?)".into()),
        ("template renders invalid JSON", "template = \"t.hbs\"\n", Some(template_bad_json),
         "t.hbs: rendered invalid JSON for risk-score v1".into()),
        ("template renders an over-limit spec", "template = \"t.hbs\"\n", Some(template_over_limit),
         "risk-score v1: memory_mb = 20480 is above Lambda's maximum of 10240 MB".into()),
        ("smoke payload missing", "smoke = { payload = \"smoke.json\" }\n", None, "smoke.json: cannot read".into()),
    ];
    for (case, extra, template, expected) in cases {
        if let Some(t) = template {
            env.write("t.hbs", t);
        }
        let catalog = catalog(&env, "render-bad", extra);
        let err = run(&catalog, &platform);
        let tmp = format!("{}/", env.tmp.path().display());
        let err = err.replace(&tmp, "");
        assert!(
            err.starts_with(&format!("error: {expected}")),
            "{case}: got\n{err}"
        );
    }

    // A registry that does not answer is named by its URI.
    let catalog = env.write("ferry.toml", "[registry]\nsource = \"mlflow\"\ntracking_uri = \"http://127.0.0.1:9\"\n[models.risk-score]\n");
    assert!(
        run(&catalog, &platform).starts_with("error: registry http://127.0.0.1:9: unreachable")
    );
    // A platform file of the wrong shape names the field.
    let bad_platform = env.write(
        "bad-platform.json",
        r#"{"ferry_platform": {"value": {"schema_version": 1}}}"#,
    );
    let catalog = catalog_plain(&env);
    assert!(
        run(&catalog, &bad_platform)
            .contains("bad-platform.json: ferry_platform.value: missing field")
    );
    // A registry answer of the wrong shape.
    let not_mlflow = env.write("ferry.toml", &format!(
        "[registry]\nsource = \"mlflow\"\ntracking_uri = \"{}/moto-api\"\n[models.risk-score]\n", env.stack.moto_url));
    let err = run(&not_mlflow, &platform);
    assert!(
        err.contains("GET /api/2.0/mlflow/model-versions/search answered"),
        "{err}"
    );
}

fn catalog_plain(env: &Env) -> std::path::PathBuf {
    env.write(
        "ferry.toml",
        "[registry]\nsource = \"mlflow\"\n[models.risk-score]\nregistered_model = \"render-bad\"\n",
    )
}
