//! `ferry deploy --target eks` and `ferry retire --target eks` against tools/kube_fake.py (the wire protocol of a
//! Kubernetes API server for the calls Ferry makes, reached through a kubeconfig with a bearer token), with MLflow's
//! approvals, moto's S3 for the artifacts, the lock and the audit records, and a local folder for EFS.
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::harness::{self, Env};

const TOKEN: &str = "ferry-test-token";

/// The fake API server, stopped (by its PID) when dropped.
struct FakeKube {
    child: Child,
    url: String,
    log: PathBuf,
    kubeconfig: PathBuf,
}

impl FakeKube {
    fn start(env: &Env, unpullable: Option<&str>) -> FakeKube {
        let dir = env.tmp.path().join("kube");
        std::fs::create_dir_all(&dir).unwrap();
        let port_file = dir.join("port");
        let log = dir.join("requests.jsonl");
        let mut cmd = Command::new(harness::python());
        cmd.arg(harness::workspace().join("tools/kube_fake.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .args(["--token", TOKEN]);
        if let Some(digest) = unpullable {
            cmd.args(["--unpullable", digest]);
        }
        let child = cmd.spawn().expect("start tools/kube_fake.py");
        let started = Instant::now();
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "kube_fake did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let url = format!("http://127.0.0.1:{port}");
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: ferry\n    namespace: ferry\n\
                 current-context: fake\nusers:\n- name: ferry\n  user:\n    token: {TOKEN}\n"
            ),
        )
        .unwrap();
        FakeKube {
            child,
            url,
            log,
            kubeconfig,
        }
    }

    /// The object at an API path, as the server holds it (None for 404).
    fn get(&self, path: &str) -> Option<serde_json::Value> {
        let (status, body) = raw_get(&self.url, path);
        match status {
            200 => Some(serde_json::from_str(&body).unwrap()),
            404 => None,
            other => panic!("GET {path}: {other} {body}"),
        }
    }

    fn deployment(&self) -> Option<serde_json::Value> {
        self.get("/apis/apps/v1/namespaces/ferry/deployments/ferry-risk-score")
    }

    /// The requests logged so far: method, path, query, content type.
    fn logged(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The requests logged so far: (method, path).
    fn requests(&self) -> Vec<(String, String)> {
        self.logged()
            .iter()
            .map(|v| {
                (
                    v["method"].as_str().unwrap().to_string(),
                    v["path"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET with the bearer token the fake wants, as a real API server would.
fn raw_get(url: &str, path: &str) -> (u16, String) {
    raw_request(url, "GET", path, None)
}

/// A request with the bearer token; a body is sent as a server-side apply (what `kubectl apply --server-side
/// --field-manager=kubectl` sends).
fn raw_request(url: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\
         Content-Type: application/apply-patch+yaml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn served_annotation(d: &serde_json::Value) -> &str {
    d["metadata"]["annotations"]["ferry.dev/served-versions"]
        .as_str()
        .unwrap_or("")
}

/// The served set the Deployment's pods are given (FERRY_SERVED_SET), as the runtime's server reads it.
fn served_set(d: &serde_json::Value) -> Vec<String> {
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let value = env
        .iter()
        .find(|e| e["name"] == "FERRY_SERVED_SET")
        .unwrap()["value"]
        .as_str()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(value).unwrap();
    doc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect()
}

struct Setup {
    catalog: PathBuf,
    platform: PathBuf,
}

fn setup(env: &Env, registered: &str, digest: &str) -> Setup {
    let catalog = env.write(
        "ferry.toml",
        &format!(
            "[registry]\nsource = \"mlflow\"\n[models.risk-score]\nregistered_model = \"{registered}\"\n\
             [models.risk-score.eks]\nreplicas = 2\n"
        ),
    );
    let platform = env.platform(&[("risk-score", "ferry-test-risk-score")]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&platform).unwrap()).unwrap();
    doc["eks"] = serde_json::json!({"cluster": "ml-test", "namespace": "ferry", "service_account": "ferry-inference",
        "volume_claim": "ferry-test-models", "mount_path": "/mnt/eks-models",
        "image": format!("registry.example.org/ferry-runtime@sha256:{digest}")});
    std::fs::write(&platform, doc.to_string()).unwrap();
    Setup { catalog, platform }
}

fn ferry(env: &Env, kube: &FakeKube, s: &Setup, args: &[&str]) -> assert_cmd::assert::Assert {
    env.ferry()
        .env("KUBECONFIG", &kube.kubeconfig)
        .arg("--catalog")
        .arg(&s.catalog)
        .arg("--platform")
        .arg(&s.platform)
        .args(args)
        .timeout(Duration::from_secs(180))
        .assert()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// How many `eks-rollout` records (one per apply) the model has.
async fn rollout_records() -> usize {
    let s3 = harness::s3().await;
    let listed = s3
        .list_objects_v2()
        .bucket(harness::BUCKET)
        .prefix("ferry/audit/test/risk-score/eks/rollouts/")
        .send()
        .await
        .unwrap();
    listed.contents().len()
}

/// The serve and retire records of the model: (alias, event, record).
async fn eks_records() -> Vec<(String, String, serde_json::Value)> {
    let s3 = harness::s3().await;
    let listed = s3
        .list_objects_v2()
        .bucket(harness::BUCKET)
        .prefix("ferry/audit/test/risk-score/eks/")
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap();
        if key.contains("/eks/rollouts/") {
            continue;
        }
        let parts: Vec<&str> = key.split('/').collect();
        let alias = parts[parts.len() - 2].to_string();
        let event = if key.ends_with("-serve.json") {
            "serve"
        } else {
            "retire"
        };
        let body: serde_json::Value =
            serde_json::from_slice(&harness::object_bytes(key).await).unwrap();
        out.push((alias, event.to_string(), body));
    }
    out
}

/// The requests since the `since`th that change something: not GET, not a server-side dry run.
fn mutations(kube: &FakeKube, since: usize) -> Vec<(String, String)> {
    kube.logged()
        .iter()
        .skip(since)
        .filter(|v| v["method"] != "GET" && v["query"]["dryRun"] != "All")
        .map(|v| format!("{} {}", v["method"], v["path"]))
        .map(|l| (l.clone(), String::new()))
        .collect()
}

/// (API group, resource, verb) of each request Ferry made (the test's own hand edit left out), as RBAC authorizes
/// it: an apply that creates (201, dry run or not) is authorized as create too.
fn calls_made(kube: &FakeKube) -> std::collections::BTreeSet<(String, String, String)> {
    kube.logged()
        .iter()
        .filter(|v| v["query"]["fieldManager"] != "kubectl")
        .flat_map(|v| {
            let path = v["path"].as_str().unwrap();
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            let (group, rest) = match parts[0] {
                "api" => ("", &parts[2..]),
                _ => (parts[1], &parts[3..]),
            };
            // rest: namespaces/<ns>/<resource>[/<name>]
            let resource = rest[2].to_string();
            let verb = match (v["method"].as_str().unwrap(), rest.len() > 3) {
                ("GET", true) => "get",
                ("GET", false) if v["query"]["watch"] == "true" => "watch",
                ("GET", false) => "list",
                ("PATCH", _) => "patch",
                ("DELETE", _) => "delete",
                (other, _) => panic!("an unexpected call: {other} {path}"),
            };
            let mut verbs = vec![verb];
            if verb == "patch" && v["status"] == 201 {
                verbs.push("create");
            }
            verbs
                .into_iter()
                .map(|verb| (group.to_string(), resource.clone(), verb.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What modules/eks-service's deployer Role grants (terraform/modules/eks-service/deployer-rules.json).
fn granted() -> std::collections::BTreeSet<(String, String, String)> {
    let path = harness::workspace().join("terraform/modules/eks-service/deployer-rules.json");
    let rules: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = std::collections::BTreeSet::new();
    for rule in rules.as_array().unwrap() {
        for g in rule["api_groups"].as_array().unwrap() {
            for r in rule["resources"].as_array().unwrap() {
                for v in rule["verbs"].as_array().unwrap() {
                    out.insert((
                        g.as_str().unwrap().into(),
                        r.as_str().unwrap().into(),
                        v.as_str().unwrap().into(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_deploy_serves_every_version_served_before_and_only_retire_takes_one_out() {
    let env = Env::new();
    env.register("risk-score", "eks-served", 2, &[1], &[]);
    let kube = FakeKube::start(&env, None);
    let s = setup(&env, "eks-served", &"ab".repeat(32));

    // First deploy: v1 synced to EFS, the four objects applied (Service, Deployment; no autoscaler or budget
    // rendered, so those are only looked for), the rollout watched to the end, v1 recorded.
    let first = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).success();
    assert!(stdout(&first).contains("serves v1"), "{}", stdout(&first));
    assert!(
        stdout(&first).contains("applied, recorded v1"),
        "{}",
        stdout(&first)
    );
    let d = kube.deployment().expect("the Deployment was applied");
    assert_eq!(served_annotation(&d), "1");
    assert_eq!(served_set(&d), ["1"]);
    assert_eq!(
        d["status"]["updatedReplicas"], 2,
        "the rollout ran to its end"
    );
    assert!(
        kube.get("/api/v1/namespaces/ferry/services/ferry-risk-score")
            .is_some()
    );
    assert!(
        env.efs_root().join("risk-score/1/MLmodel").is_file(),
        "synced before the rollout"
    );
    // Two applies (the Service, then the Deployment), each a forced server-side apply by field manager `ferry`,
    // and a watch of the rollout.
    let logged = kube.logged();
    let applies: Vec<&serde_json::Value> = logged
        .iter()
        .filter(|v| v["method"] == "PATCH" && v["query"]["dryRun"].is_null())
        .collect();
    let paths: Vec<&str> = applies
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/ferry/services/ferry-risk-score",
            "/apis/apps/v1/namespaces/ferry/deployments/ferry-risk-score"
        ],
        "the Deployment last"
    );
    for a in &applies {
        assert_eq!(a["content_type"], "application/apply-patch+yaml", "{a}");
        assert_eq!(
            (&a["query"]["fieldManager"], &a["query"]["force"]),
            (&serde_json::json!("ferry"), &serde_json::json!("true")),
            "{a}"
        );
    }
    assert!(
        logged.iter().any(|v| v["query"]["watch"] == "true"
            && v["query"]["fieldSelector"] == "metadata.name=ferry-risk-score"),
        "the rollout was watched"
    );
    assert_eq!(rollout_records().await, 1, "the apply is recorded");
    let records = eks_records().await;
    assert_eq!(records.len(), 1);
    let (alias, event, record) = &records[0];
    assert_eq!((alias.as_str(), event.as_str()), ("v1", "serve"));
    assert_eq!(record["event"], "eks-serve");
    assert_eq!(record["approval"]["ticket"], "QA-100");
    assert_eq!(record["eks"]["deployment"], "ferry-risk-score");
    assert_eq!(record["eks"]["served_versions"], serde_json::json!(["1"]));
    assert_eq!(
        record["deployer"]["aws_identity"]
            .as_str()
            .map(|s| s.starts_with("arn:aws:")),
        Some(true)
    );

    // A rerun changes nothing: no apply, no delete, no record.
    let before = kube.requests().len();
    let rerun = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).success();
    assert!(stdout(&rerun).contains("No changes."), "{}", stdout(&rerun));
    assert_eq!(mutations(&kube, before), Vec::<(String, String)>::new());

    // verify and status read the Deployment against the records.
    let verified = ferry(&env, &kube, &s, &["verify", "--target", "eks"]).success();
    let text = stdout(&verified);
    assert!(
        text.contains("served and recorded, approved by qa@example.org (QA-100)"),
        "{text}"
    );
    assert!(text.contains("EFS folder verified"), "{text}");
    assert!(text.contains("0 problem(s)."), "{text}");
    let status = ferry(&env, &kube, &s, &["status", "--target", "eks"]).success();
    assert!(
        stdout(&status).contains("serves v1  rollout done"),
        "{}",
        stdout(&status)
    );

    // Someone sets another image by hand (the digest annotation stays): verify fails naming it, and the next deploy
    // applies the manifests again.
    let mut edited = kube.deployment().unwrap();
    // What `kubectl apply --server-side` sends: the configuration, without the fields the server sets.
    edited["metadata"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| ["name", "namespace", "labels", "annotations"].contains(&k.as_str()));
    edited.as_object_mut().unwrap().remove("status");
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = serde_json::json!(format!(
        "registry.example.org/ferry-runtime@sha256:{}",
        "cd".repeat(32)
    ));
    let path = "/apis/apps/v1/namespaces/ferry/deployments/ferry-risk-score?fieldManager=kubectl&force=true";
    let (code, body) = raw_request(&kube.url, "PATCH", path, Some(&edited.to_string()));
    assert_eq!(code, 200, "{body}");
    let drift = ferry(&env, &kube, &s, &["verify", "--target", "eks"]).code(1);
    assert!(
        stdout(&drift).contains("is not the platform's"),
        "{}",
        stdout(&drift)
    );
    let repaired = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).success();
    assert!(
        stdout(&repaired)
            .contains("to apply: Deployment ferry/ferry-risk-score differs from what is rendered"),
        "{}",
        stdout(&repaired)
    );
    assert_eq!(
        rollout_records().await,
        2,
        "setting it back is an apply, recorded"
    );
    ferry(&env, &kube, &s, &["verify", "--target", "eks"]).success();
    assert_eq!(
        eks_records().await.len(),
        1,
        "setting back a hand change records no new serve"
    );
    let generation = kube.deployment().unwrap()["metadata"]["generation"].clone();

    // v2 approved and v1's approval withdrawn: the new ReplicaSet serves both (frozen), under v1's recorded approval.
    env.approve("eks-served", 2, &["--ticket", "CHG-2026-0042"]);
    env.python(&[
        "tools/registry_fixture.py",
        "revoke",
        "--name",
        "eks-served",
        "--version",
        "1",
    ]);
    let second = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).success();
    let text = stdout(&second);
    assert!(
        text.contains("serves v1 v2") && text.contains("new: v2"),
        "{text}"
    );
    assert!(
        text.contains("kept though no longer approved (frozen until `ferry retire`): v1"),
        "{text}"
    );
    let d = kube.deployment().unwrap();
    assert_eq!(served_set(&d), ["1", "2"]);
    assert_ne!(
        d["metadata"]["generation"], generation,
        "a new pod template: a new ReplicaSet"
    );
    let served: Vec<String> = eks_records()
        .await
        .iter()
        .map(|(a, e, _)| format!("{a} {e}"))
        .collect();
    assert_eq!(served, ["v1 serve", "v2 serve"]);

    // An autoscaler turned on: applied before the Deployment, which keeps its two pods until the autoscaler
    // scales it (the replica count handed to another field manager; dropped by its only manager it would be 1).
    let catalog = std::fs::read_to_string(&s.catalog).unwrap();
    std::fs::write(
        &s.catalog,
        format!("{catalog}autoscaling = {{ max_replicas = 4 }}\n"),
    )
    .unwrap();
    let hpa = "/apis/autoscaling/v2/namespaces/ferry/horizontalpodautoscalers/ferry-risk-score";
    ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).success();
    assert!(kube.get(hpa).is_some());
    assert_eq!(kube.deployment().unwrap()["spec"]["replicas"], 2);
    // Turned off again: the autoscaler is deleted, and the Deployment has its rendered count.
    std::fs::write(&s.catalog, &catalog).unwrap();
    let off = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).success();
    assert!(
        stdout(&off).contains(
            "HorizontalPodAutoscaler ferry/ferry-risk-score is no longer rendered: deleted"
        ),
        "{}",
        stdout(&off)
    );
    assert!(kube.get(hpa).is_none());

    // Only retire takes a version out: recorded first, then rolled out.
    let retire = |version: &str, reason: &str, ticket: &str| {
        ferry(
            &env,
            &kube,
            &s,
            &[
                "retire",
                "--target",
                "eks",
                "--model",
                "risk-score",
                "--version",
                version,
                "--reason",
                reason,
                "--ticket",
                ticket,
            ],
        )
    };
    let retired = retire(
        "1",
        "superseded by v2 after the 2026 recall review",
        "CHG-2026-0077",
    )
    .success();
    assert!(
        stdout(&retired).contains("left the EKS served set"),
        "{}",
        stdout(&retired)
    );
    assert_eq!(served_set(&kube.deployment().unwrap()), ["2"]);
    let records = eks_records().await;
    let (_, _, retired) = records
        .iter()
        .find(|(a, e, _)| a == "v1" && e == "retire")
        .expect("a retire record");
    assert_eq!(retired["ticket"], "CHG-2026-0077");
    assert_eq!(retired["eks"]["served_versions"], serde_json::json!(["2"]));

    // The next deploy leaves it out (its approval is withdrawn) and changes nothing.
    let before = kube.requests().len();
    let after_retire = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).success();
    assert_eq!(
        mutations(&kube, before),
        Vec::<(String, String)>::new(),
        "{}",
        stdout(&after_retire)
    );
    assert_eq!(served_set(&kube.deployment().unwrap()), ["2"]);

    // What was served when, from the records alone: now v2 only; v1 too before its retire.
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let at = ferry(&env, &kube, &s, &["history", "--at", now.as_str()]).success();
    let text = stdout(&at);
    assert!(
        text.contains("v2           served on EKS by ferry/ferry-risk-score"),
        "{text}"
    );
    assert!(!text.contains("v1           served on EKS"), "{text}");

    // The evidence bundle has the versions served on EKS only, with their approvals and EKS events.
    let bundle = ferry(&env, &kube, &s, &["audit", "export", "--format", "json"]).success();
    let doc: serde_json::Value = serde_json::from_slice(&bundle.get_output().stdout).unwrap();
    let versions = doc["bundle"]["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"));
    let v1 = versions
        .iter()
        .find(|v| v["alias"] == "v1")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(v1["approval"]["ticket"], "QA-100");
    let events: Vec<&str> = v1["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("left the EKS served set")),
        "{events:?}"
    );

    // History tells it from the records alone.
    let history = ferry(&env, &kube, &s, &["history"]).success();
    let text = stdout(&history);
    assert!(
        text.contains("served on EKS by ferry/ferry-risk-score"),
        "{text}"
    );
    assert!(
        text.contains("left the EKS served set of ferry/ferry-risk-score: superseded by v2"),
        "{text}"
    );

    // --emit-only writes the folder for a GitOps tool: nothing reaches the cluster; the served set is the records'
    // (so an empty folder drops nothing), and the emit is recorded as such.
    let out = env.tmp.path().join("gitops");
    let out_arg = out.display().to_string();
    let (before, records, rollouts) = (
        kube.requests().len(),
        eks_records().await.len(),
        rollout_records().await,
    );
    let emit = [
        "deploy",
        "--target",
        "eks",
        "--emit-only",
        "--out",
        out_arg.as_str(),
    ];
    ferry(&env, &kube, &s, &emit).success();
    let emitted = std::fs::read_to_string(out.join("risk-score/02-deployment.yaml")).unwrap();
    assert!(
        emitted.contains("ferry.dev/served-versions: \"2\""),
        "{emitted}"
    );
    assert_eq!(kube.requests().len(), before);
    assert_eq!(
        eks_records().await.len(),
        records,
        "v2 was recorded as served already"
    );
    assert_eq!(rollout_records().await, rollouts + 1);
    let again = ferry(&env, &kube, &s, &emit).success();
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));

    // The last version is never retired: a served set is never empty.
    let last = retire("2", "r", "t").code(1);

    // The deployer Role of modules/eks-service grants exactly what Ferry called, but the budget's patch and delete,
    // which this test never renders, and the pod list of a failed rollout (the next test's).
    let made = calls_made(&kube);
    let granted = granted();
    assert!(
        made.is_subset(&granted),
        "called without a grant: {:?}",
        made.difference(&granted).collect::<Vec<_>>()
    );
    let unused: Vec<_> = granted.difference(&made).collect();
    let pdb = |verb: &str| {
        (
            "policy".to_string(),
            "poddisruptionbudgets".to_string(),
            verb.to_string(),
        )
    };
    let pods = ("".to_string(), "pods".to_string(), "list".to_string());
    assert_eq!(
        unused,
        [&pods, &pdb("create"), &pdb("delete"), &pdb("patch")],
        "granted and never called"
    );
    assert!(
        stderr(&last).contains("v2 is the only version served"),
        "{}",
        stderr(&last)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eks_rollout_that_cannot_start_fails_with_the_pods_reasons_and_records_nothing() {
    let env = Env::new();
    env.register("risk-score", "eks-broken", 1, &[1], &[]);
    let unpullable = "de".repeat(32);
    let kube = FakeKube::start(&env, Some(&unpullable));
    let s = setup(&env, "eks-broken", &unpullable);

    let failed = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).code(1);
    let err = stderr(&failed);
    assert!(
        err.contains("rollout of deployment ferry/ferry-risk-score failed"),
        "{err}"
    );
    assert!(err.contains("has timed out progressing"), "{err}");
    assert!(
        err.contains("ImagePullBackOff"),
        "the pod's own reason: {err}"
    );
    assert!(
        eks_records().await.is_empty(),
        "nothing is recorded as served"
    );
    let made = calls_made(&kube);
    assert!(
        made.contains(&("".into(), "pods".into(), "list".into())) && made.is_subset(&granted()),
        "{made:?}"
    );
    // The rerun applies nothing new, but still will not record a rollout that never finished.
    let rerun = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).code(1);
    assert!(
        stderr(&rerun).contains("ImagePullBackOff"),
        "{}",
        stderr(&rerun)
    );
    assert!(
        eks_records().await.is_empty(),
        "still nothing recorded as served"
    );

    // A platform without an EKS service is named before anything is asked of the cluster.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&s.platform).unwrap()).unwrap();
    doc["eks"] = serde_json::Value::Null;
    std::fs::write(&s.platform, doc.to_string()).unwrap();
    let before = kube.requests().len();
    let bad = ferry(&env, &kube, &s, &["deploy", "--target", "eks"]).code(1);
    assert!(
        stderr(&bad).contains(&s.platform.display().to_string()),
        "{}",
        stderr(&bad)
    );
    assert_eq!(
        kube.requests().len(),
        before,
        "no request reached the cluster"
    );
}
