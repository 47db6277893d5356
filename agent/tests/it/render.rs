//! `ferry render` against a real MLflow registry: approvals set by MLflow's own client, more versions than one
//! search page, registry aliases; and the table of bad inputs, each named with file, field or line. `--target eks`
//! also from the release-manifest fixture (tests/fixtures/k8s-render), offline: the files it writes are the
//! reviewed snapshots, they follow new approvals and catalog changes, and bad inputs are named.
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
fn renders_every_approved_version_across_search_pages_for_lambda_and_eks() {
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

    // `ferry render ARGS` on this catalog and platform.
    let render = |args: &[&std::ffi::OsStr]| {
        env.ferry()
            .arg("render")
            .arg("--catalog")
            .arg(&catalog)
            .arg("--platform")
            .arg(&platform)
            .args(args)
            .assert()
            .success()
    };
    let json = ["--output".as_ref(), "json".as_ref()];
    let out = render(&json);
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
    let again = render(&json);
    assert_eq!(out.get_output().stdout, again.get_output().stdout);

    // The text summary shows the registry alias.
    render(&[]).stdout(
        predicate::str::contains("stage production -> v4")
            .and(predicate::str::contains("4 spec(s) rendered.")),
    );

    // --out writes one file per version.
    let out_dir = env.tmp.path().join("specs");
    render(&["--out".as_ref(), out_dir.as_os_str()]);
    assert!(out_dir.join("risk-score/v5.json").is_file());

    // For the EKS service, read as the Lambda render reads them: the served set is every approved version.
    std::fs::write(
        &catalog,
        std::fs::read_to_string(&catalog).unwrap() + "[models.risk-score.eks]\nreplicas = 3\n",
    )
    .unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&platform).unwrap()).unwrap();
    doc["eks"] = serde_json::json!({"cluster": "ml-test", "namespace": "ferry", "service_account": "ferry-inference",
        "volume_claim": "ferry-test-models", "mount_path": "/mnt/eks-models",
        "image": format!("registry.example.org/ferry-runtime@sha256:{}", "ab".repeat(32))});
    std::fs::write(&platform, doc.to_string()).unwrap();
    let out_dir = env.tmp.path().join("manifests");
    render(&[
        "--target".as_ref(),
        "eks".as_ref(),
        "--out".as_ref(),
        out_dir.as_os_str(),
    ]);
    let deployment =
        std::fs::read_to_string(out_dir.join("risk-score/02-deployment.yaml")).unwrap();
    assert!(
        deployment.contains("ferry.dev/served-versions: \"1,2,4,5\""),
        "{deployment}"
    );
    assert!(deployment.contains(r#""version": "5", "path": "/mnt/eks-models/risk-score/5""#));
    assert!(deployment.contains("\n  replicas: 3\n"));
    assert!(deployment.contains(&format!(
        "image: \"registry.example.org/ferry-runtime@sha256:{}\"",
        "ab".repeat(32)
    )));
    assert!(!out_dir.join("risk-score/03-hpa.yaml").exists());
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

// ---- --target eks ---------------------------------------------------------------------------------------------

/// The EKS render fixture (tests/fixtures/k8s-render: catalog, platform, release manifest) copied into a fresh
/// folder, so that a test can change it.
struct EksFixture {
    dir: tempfile::TempDir,
}

impl EksFixture {
    fn new() -> EksFixture {
        let dir = tempfile::tempdir().unwrap();
        let from = crate::harness::workspace().join("tests/fixtures/k8s-render");
        for file in ["ferry.toml", "platform.json", "releases.toml"] {
            std::fs::copy(from.join(file), dir.path().join(file)).unwrap();
        }
        EksFixture { dir }
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join(file)
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(file)).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(self.path(file), text.replace(from, to)).unwrap();
    }

    /// `ferry render --target eks` on the fixture, with no AWS endpoint and no registry reachable: nothing but the
    /// release manifest may be read.
    fn render(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        assert_cmd::Command::cargo_bin("ferry")
            .unwrap()
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_REGION", "eu-west-1")
            .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
            .current_dir(self.dir.path())
            .args([
                "render",
                "--target",
                "eks",
                "--catalog",
                "ferry.toml",
                "--platform",
                "platform.json",
            ])
            .args(args)
            .assert()
    }

    fn files(&self, out: &str, model: &str) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(self.path(out).join(model))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }
}

#[test]
fn eks_render_writes_the_reviewed_manifests_offline_from_a_release_manifest() {
    let fixture = EksFixture::new();
    fixture.render(&["--out", "out"]).success().stderr(
        predicate::str::contains(
            "note: risk-score: approval withdrawn for v3: not in the rendered served set",
        )
        .and(predicate::str::contains(
            "wrote 4 manifest(s) for 1 model(s) under out",
        )),
    );
    let snapshots = crate::harness::workspace().join("tests/fixtures/k8s-rendered/risk-score");
    let files = fixture.files("out", "risk-score");
    assert_eq!(
        files,
        [
            "01-service.yaml",
            "02-deployment.yaml",
            "03-hpa.yaml",
            "04-pdb.yaml"
        ]
    );
    for file in &files {
        let written = std::fs::read_to_string(fixture.path("out/risk-score").join(file)).unwrap();
        let snapshot = std::fs::read_to_string(snapshots.join(file)).unwrap();
        assert!(
            written == snapshot,
            "tests/fixtures/k8s-rendered/risk-score/{file} differs from what ferry renders: review the change and \
             run the command in tests/fixtures/k8s-render/ferry.toml's header"
        );
    }

    // Printed instead: the same manifests, one YAML stream, each document headed by its file.
    let out = fixture.render(&[]).success();
    let stream = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let deployment = std::fs::read_to_string(snapshots.join("02-deployment.yaml")).unwrap();
    assert!(
        stream.starts_with("# Source: risk-score/01-service.yaml\napiVersion: v1\nkind: Service\n")
    );
    assert!(stream.contains(&format!(
        "---\n# Source: risk-score/02-deployment.yaml\n{deployment}"
    )));
    assert_eq!(stream.matches("\n---\n").count(), 3);

    // As JSON: a stable document for scripts.
    let out = fixture.render(&["--output", "json"]).success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        (doc["format"].as_u64(), doc["target"].as_str()),
        (Some(1), Some("eks"))
    );
    let model = &doc["models"][0];
    assert_eq!(model["name"], "ferry-risk-score");
    assert_eq!(model["namespace"], "ferry");
    assert_eq!(model["versions"], serde_json::json!(["1", "2", "4"]));
    assert_eq!(model["manifests"][1]["file"], "02-deployment.yaml");
    assert_eq!(model["manifests"][1]["text"], deployment.as_str());
}

#[test]
fn eks_render_follows_the_approvals_and_the_catalog_into_the_folder() {
    let fixture = EksFixture::new();
    fixture.render(&["--out", "out"]).success();
    let deployment =
        || std::fs::read_to_string(fixture.path("out/risk-score/02-deployment.yaml")).unwrap();
    let before = deployment();

    // A new approval: the served set gains it and keeps every version before, so the pod template changes.
    let v5 = "\n[[models.risk-score.versions]]\nversion = \"5\"\napproved_by = \"qa@example.org\"\n\
              approved_at = \"2026-12-01T12:00:00Z\"\nticket = \"QA-850\"\n\
              artifact_uri = \"s3://acme-ml-artifacts-prod/mlflow/1/m-7a7a/artifacts\"\n";
    let releases = std::fs::read_to_string(fixture.path("releases.toml")).unwrap();
    std::fs::write(fixture.path("releases.toml"), releases + v5).unwrap();
    fixture.render(&["--out", "out"]).success();
    let after = deployment();
    assert!(
        after.contains("ferry.dev/served-versions: \"1,2,4,5\""),
        "{after}"
    );
    assert!(after.contains(r#"{"model": "risk-score", "version": "5", "path": "/mnt/models/risk-score/5", "artifact_digest": null}"#));
    assert_eq!(
        before.replace("1,2,4", "1,2,4,5").lines().count() + 1,
        after.lines().count(),
        "one more served version, nothing else"
    );

    // No autoscaler and no disruption budget any more: their files go, the Deployment sets its replicas itself.
    fixture.edit(
        "ferry.toml",
        "autoscaling = { min_replicas = 2, max_replicas = 6, target_cpu_percent = 70 }\ndisruption_budget = { min_available = 1 }\n",
        "",
    );
    fixture
        .render(&["--out", "out"])
        .success()
        .stderr(predicate::str::contains("wrote 2 manifest(s)"));
    assert_eq!(
        fixture.files("out", "risk-score"),
        ["01-service.yaml", "02-deployment.yaml"]
    );
    assert!(deployment().contains("\n  replicas: 2\n"));

    // --model selects; an unknown one is named.
    fixture.render(&["--model", "nope"]).code(1).stderr(predicate::str::starts_with(
        "error: ferry.toml: models.nope does not exist (--model nope); the catalog has: risk-score",
    ));
}

#[test]
fn eks_render_names_bad_inputs_with_file_field_and_reason() {
    let long_key = "r".repeat(58);
    // (case, file, from, to, expected start of stderr after "error: ")
    let cases: Vec<(&str, &str, &str, String, String)> = vec![
        ("an unknown platform key", "platform.json", "\"eks\": {", "\"eks\": null, \"x\": {".into(),
         "platform.json: the document: x: unknown field `x`".into()),
        ("an image pinned by tag", "platform.json", "ferry-runtime@sha256:8d2f", "ferry-runtime:latest@sha257:8d2f".into(),
         "platform.json: eks.image = \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/ferry-runtime:latest@sha257:".into()),
        ("a namespace Kubernetes owns", "platform.json", "\"namespace\": \"ferry\"", "\"namespace\": \"kube-system\"".into(),
         "platform.json: eks.namespace = \"kube-system\" is a namespace Kubernetes owns".into()),
        ("a CPU that is no quantity", "ferry.toml", "cpu = \"500m\"", "cpu = \"500m\\\"\\n#{{x}}\"".into(),
         "ferry.toml: models.risk-score.eks.cpu = \"500m\\\"\\n#{{x}}\" is not a Kubernetes quantity".into()),
        ("an HPA target no pod can reach", "ferry.toml", "target_cpu_percent = 70", "target_cpu_percent = 500".into(),
         "ferry.toml: models.risk-score.eks.autoscaling.target_cpu_percent = 500 is outside 1..=400".into()),
        ("a model key too long for a Kubernetes name", "ferry.toml", "[models.risk-score]", format!("[models.{long_key}]\n[models.risk-score]"),
         format!("ferry.toml: models.{long_key} cannot name its Kubernetes objects: \"ferry-{long_key}\" is 64 characters")),
        ("an environment variable that would set the served set", "ferry.toml", "{ LOG_LEVEL = \"info\" }",
         "{ LOG_LEVEL = \"info\", FERRY_SERVED_SET = \"{}\" }".into(),
         "ferry.toml: models.risk-score.environment.FERRY_SERVED_SET is set by Ferry on the EKS service".into()),
    ];
    for (case, file, from, to, expected) in cases {
        let fixture = EksFixture::new();
        fixture.edit(file, from, &to);
        if case.starts_with("a model key") {
            let releases = std::fs::read_to_string(fixture.path("releases.toml")).unwrap();
            std::fs::write(
                fixture.path("releases.toml"),
                releases.replace("risk-score", &long_key) + &releases,
            )
            .unwrap();
        }
        let out = fixture.render(&["--out", "out"]).code(1);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            stderr.starts_with(&format!("error: {expected}")),
            "{case}: got\n{stderr}"
        );
        assert!(!fixture.path("out").exists(), "{case}: nothing is written");
    }
    // The platform parses but has no EKS service.
    let fixture = EksFixture::new();
    let mut platform: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.path("platform.json")).unwrap())
            .unwrap();
    platform.as_object_mut().unwrap().remove("eks");
    std::fs::write(fixture.path("platform.json"), platform.to_string()).unwrap();
    fixture
        .render(&[])
        .code(1)
        .stderr(predicate::str::starts_with(
            "error: platform.json: has no `eks` (modules/eks-service's `ferry_platform` output",
        ));
}
