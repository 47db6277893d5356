//! The Python a version was saved with against the runtime of its function, with a real MLflow registry and moto:
//! a version saved on another minor is refused by `ferry plan` and `ferry deploy` before any change (the deploy
//! lock included), the model's other versions and the other models go on as for drift, and pins that differ from
//! the platform's runtime layer are said without refusing. The function runtimes are set here from the Python the
//! registered version says it was saved with, so nothing depends on the development environment's Python.
use std::path::PathBuf;

use crate::harness::{Env, mutating_calls};

const RISK_FN: &str = "ferry-test-py-risk-score";
const READM_FN: &str = "ferry-test-py-readmission";

struct Fixture {
    /// The Python the registered versions were saved with (`3.13.0`), as their MLmodel says.
    saved_python: String,
    /// A Lambda runtime of another minor than `saved_python`.
    other_runtime: String,
    readm: String,
    catalog: PathBuf,
    platform: PathBuf,
    env: Env,
}

impl Fixture {
    /// risk-score with one approved version, readmission with one version not yet approved, their functions
    /// created. With `layer`, the platform file has the optional `runtime` field: another minor than the versions'
    /// Python, and a runtime layer whose every package is at version 0.0.1.
    async fn new(tag: &str, layer: bool) -> Fixture {
        let env = Env::new();
        let risk = format!("{tag}-risk");
        let readm = format!("{tag}-readm");
        let registered = env.register("risk-score", &risk, 1, &[1], &[]);
        env.register("readmission", &readm, 1, &[], &[]);
        let saved_python = saved_python(&registered[0].1).await;
        let (_, minor) = ferry::python_env::python_minor(&saved_python).unwrap();
        let other_runtime = format!("python3.{}", if minor == 12 { 13 } else { 12 });
        let catalog = env.write(
            "ferry.toml",
            &format!(
                "[registry]\nsource = \"mlflow\"\n[models.risk-score]\nregistered_model = \"{risk}\"\n\
                 [models.readmission]\nregistered_model = \"{readm}\"\n"
            ),
        );
        let platform = env.platform(&[("risk-score", RISK_FN), ("readmission", READM_FN)]);
        if layer {
            let mut doc: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&platform).unwrap()).unwrap();
            doc["runtime"] = serde_json::json!({"python": other_runtime, "architecture": "x86_64",
                "layer_packages": {"mlflow-skinny": "0.0.1", "numpy": "0.0.1", "pandas": "0.0.1",
                                   "cloudpickle": "0.0.1"}});
            std::fs::write(&platform, doc.to_string()).unwrap();
        }
        env.python(&[
            "tools/local_platform.py",
            "--platform",
            platform.to_str().unwrap(),
        ]);
        Fixture {
            saved_python,
            other_runtime,
            readm,
            catalog,
            platform,
            env,
        }
    }

    /// `ferry ARGS` on this fixture's catalog and platform, named the way CI may name them: in the environment.
    fn ferry(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.env.ferry();
        cmd.env("FERRY_CATALOG", &self.catalog)
            .env("FERRY_PLATFORM", &self.platform)
            .args(args);
        cmd
    }

    /// The runtime of the Python the versions were saved with (`python3.13` for `3.13.0`).
    fn saved_runtime(&self) -> String {
        let (major, minor) = ferry::python_env::python_minor(&self.saved_python).unwrap();
        format!("python{major}.{minor}")
    }

    /// The `error:` line the refusal of risk-score v1 prints.
    fn refusal(&self) -> String {
        let (major, minor) = ferry::python_env::python_minor(&self.saved_python).unwrap();
        format!(
            "error: risk-score v1: saved with Python {}, but function {RISK_FN} runs {}; cloudpickled model code \
             crashes across Python minors: re-save the model on Python {} (or deploy it to a python{major}.{minor} \
             function)\n",
            self.saved_python,
            self.other_runtime,
            self.other_runtime.trim_start_matches("python"),
        )
    }
}

async fn lambda() -> aws_sdk_lambda::Client {
    crate::harness::lambda().await
}

/// `flavors.python_function.python_version` of the MLmodel MLflow wrote for a registered version.
async fn saved_python(artifact_uri: &str) -> String {
    let s3 = crate::harness::s3().await;
    let (bucket, prefix) = ferry::aws::parse_s3_uri(artifact_uri).unwrap();
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(format!("{prefix}/MLmodel"))
        .send()
        .await
        .unwrap();
    let text = object.body.collect().await.unwrap().into_bytes();
    ferry::python_env::mlmodel_python_version(&String::from_utf8_lossy(&text))
        .expect("MLflow writes the python_version of the pyfunc flavor")
}

/// Sets the runtime of a function's `$LATEST`, as a platform engineer's `terraform apply` would.
async fn set_runtime(function: &str, runtime: &str) {
    lambda()
        .await
        .update_function_configuration()
        .function_name(function)
        .runtime(runtime.into())
        .send()
        .await
        .unwrap();
}

async fn alias_names(function: &str) -> Vec<String> {
    let out = lambda()
        .await
        .list_aliases()
        .function_name(function)
        .send()
        .await
        .unwrap();
    out.aliases()
        .iter()
        .filter_map(|a| a.name().map(str::to_string))
        .collect()
}

/// One model's entry of a JSON plan.
fn model<'a>(plan: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    let models = plan["models"].as_array().unwrap();
    models.iter().find(|m| m["model"] == key).unwrap()
}

fn stdout(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_saved_on_another_python_minor_is_refused_before_any_change() {
    // Given risk-score v1, saved on this Python, approved for a function that runs another minor:
    let fx = Fixture::new("py-minor", false).await;
    set_runtime(RISK_FN, &fx.other_runtime).await;

    // When planned, then the plan refuses it, naming model, version, both Pythons and the fix, and exits 1.
    let plan = fx.ferry(&["plan"]).assert().code(1);
    assert!(stderr(&plan).contains(&fx.refusal()), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("  ! v1           refused saved with Python ")
            && stdout(&plan).contains("(a refused version blocks every change to this model)"),
        "{}",
        stdout(&plan)
    );
    let json = fx.ferry(&["plan", "--output", "json"]).assert().code(1);
    let json: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    let risk = model(&json, "risk-score");
    assert_eq!(risk["blocked"], true);
    assert_eq!(risk["actions"][0]["action"], "refused");
    assert_eq!(risk["actions"][0]["saved_python"], fx.saved_python.as_str());
    assert_eq!(
        risk["actions"][0]["function_runtime"],
        fx.other_runtime.as_str()
    );

    // When deployed with that the only change, then it exits 1 before any mutating call, the lock's included.
    let calls = mutating_calls(&fx.env, || {
        let deploy = fx.ferry(&["deploy"]).assert().code(1);
        assert!(
            stderr(&deploy).contains(&fx.refusal()),
            "{}",
            stderr(&deploy)
        );
    });
    assert!(calls.is_empty(), "{calls:#?}");
    assert!(alias_names(RISK_FN).await.is_empty());
    assert!(!fx.env.efs_root().join("risk-score/1").exists());

    // Given another model's version approved for a function of its Python: it is deployed, risk-score is not.
    fx.env.approve(&fx.readm, 1, &[]);
    set_runtime(READM_FN, &fx.saved_runtime()).await;
    let deploy = fx.ferry(&["deploy"]).assert().code(1);
    assert!(
        stderr(&deploy).contains(&fx.refusal()),
        "{}",
        stderr(&deploy)
    );
    assert!(
        stderr(&deploy).contains(
            "error: risk-score: a refused version: nothing was changed for this model (see the plan)"
        ),
        "{}",
        stderr(&deploy)
    );
    assert_eq!(alias_names(READM_FN).await, ["v1"]);
    assert!(alias_names(RISK_FN).await.is_empty());

    // And once the function runs the Python the version was saved with, it is deployed.
    set_runtime(RISK_FN, &fx.saved_runtime()).await;
    fx.ferry(&["deploy"]).assert().success();
    assert_eq!(alias_names(RISK_FN).await, ["v1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn pins_that_differ_from_the_runtime_layer_and_a_platform_runtime_unlike_the_functions_are_said()
 {
    // Given a platform whose runtime names another minor than the function runs, and a layer with another mlflow:
    let fx = Fixture::new("py-layer", true).await;
    set_runtime(RISK_FN, &fx.saved_runtime()).await;

    // When planned, then risk-score v1 is created (the function's runtime wins), and both are said.
    let out = fx
        .ferry(&["plan", "--output", "json", "--detailed-exitcode"])
        .assert()
        .code(2);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(model(&json, "risk-score")["actions"][0]["action"], "create");
    let warnings = json["warnings"].as_array().unwrap();
    let kinds: Vec<_> = warnings
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["platform_runtime", "package_versions"],
        "{warnings:#?}"
    );
    assert_eq!(warnings[1]["alias"], "v1");
    let packages: Vec<_> = warnings[1]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    assert!(
        packages.contains(&"mlflow"),
        "MLflow pins itself in every model's requirements: {packages:?}"
    );
    assert!(
        warnings[1]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["layer"] == "0.0.1")
    );

    let text = fx.ferry(&["plan"]).assert().success();
    assert!(
        stdout(&text).contains(&format!(
            "  ! function     warning the platform's runtime.python is {}, but function {RISK_FN} runs {}",
            fx.other_runtime,
            fx.saved_runtime()
        )) && stdout(&text).contains("  ! v1           warning saved with mlflow "),
        "{}",
        stdout(&text)
    );
}
