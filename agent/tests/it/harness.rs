//! Test harness: stacks of stand-ins (moto + local Lambda + MLflow), started on free ports by `tools/standins.py` (the
//! same code as `make local-up`), and stopped by PID when the binary exits — normally, after a failed test, or killed
//! (a watchdog started with `--parent-pid` stops them then). The watchdog then deletes the stack's folder (each holds
//! its own unpacked runtime layer, about 530 MB) unless `FERRY_TEST_KEEP_STACKS` is set, to read its logs afterwards.
//!
//! Tests that touch the servers take [`Env::new`], which gives the test a stack of its own for as long as it runs (a
//! free one, or a new one when every stack is busy: as many stacks as tests run at once), resets moto on it, and
//! recreates the artifact bucket. So tests run in parallel and none sees another's functions, objects or requests.
//! MLflow's store outlives a moto reset, so every test registers models under its own names.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

pub const BUCKET: &str = "ferry-artifacts";

#[derive(Debug, Deserialize)]
pub struct Stack {
    pub dir: String,
    /// `AWS_ENDPOINT_URL`: the local Lambda (tools/lambda_local), which runs invokes and passes the rest to moto.
    pub aws_url: String,
    /// moto itself: its request recorder sees every request but invokes.
    pub moto_url: String,
    pub mlflow_url: Option<String>,
    pub pids: Vec<i32>,
}

/// Stacks no test holds now.
static FREE: Mutex<Vec<&'static Stack>> = Mutex::new(Vec::new());
/// Held while a stack starts: each server picks its free port by binding port 0, so two starting at once could race.
static STARTING: Mutex<()> = Mutex::new(());
static PIDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static FIXTURE_REQUIREMENTS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

thread_local! {
    /// The stack of the test running on this thread, for the helpers below that read AWS state in-process.
    static CURRENT: Cell<Option<&'static Stack>> = const { Cell::new(None) };
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agent/ has a parent")
        .to_path_buf()
}

pub fn python() -> PathBuf {
    std::env::var_os("FERRY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

/// Where tools/registry_fixture.py keeps the requirements MLflow inferred for each demo model, for this run of the
/// test binary only: inferring them loads the model in a new interpreter, about 4 s a version, most of a fixture's time.
fn fixture_requirements() -> &'static Path {
    FIXTURE_REQUIREMENTS.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("ferry-it-requirements-")
            .tempdir()
            .expect("temp dir")
            .keep()
    })
}

extern "C" fn stop_servers() {
    if let Some(dir) = FIXTURE_REQUIREMENTS.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Ok(pids) = PIDS.lock() {
        for &pid in pids.iter() {
            // Each server runs in its own process group (started with start_new_session).
            unsafe {
                libc::killpg(pid, libc::SIGTERM);
            }
        }
    }
}

/// A stack no other test holds: a free one, else a new one.
fn take_stack() -> &'static Stack {
    if let Some(stack) = lock(&FREE).pop() {
        return stack;
    }
    let _starting = lock(&STARTING);
    Box::leak(Box::new(start_stack()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn start_stack() -> Stack {
    let dir = tempfile::Builder::new()
        .prefix("ferry-it-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let mut up = Command::new(python());
    up.arg(workspace().join("tools/standins.py")).args([
        "up",
        "--json",
        "--parent-pid",
        &std::process::id().to_string(),
    ]);
    if std::env::var_os("FERRY_TEST_KEEP_STACKS").is_none() {
        up.arg("--remove-dir");
    }
    let out = up
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("run tools/standins.py (is the venv there? `make venv`)");
    assert!(
        out.status.success(),
        "stand-ins did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack: Stack = serde_json::from_slice(&out.stdout).expect("standins.py --json output");
    let mut pids = lock(&PIDS);
    if pids.is_empty() {
        unsafe {
            libc::atexit(stop_servers);
        }
    }
    pids.extend(&stack.pids);
    stack
}

/// The stack of the test running on this thread.
pub fn current() -> &'static Stack {
    CURRENT.with(Cell::get).expect(
        "no Env on this thread: take Env::new first, and read AWS state from the test's own thread",
    )
}

/// An in-process Lambda client of this thread's test stack.
pub async fn lambda() -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&current().sdk_config().await)
}

/// An in-process Lambda client of this thread's test stack that reads moto directly, past the control-plane
/// stand-in: a test's own looks at the state spend none of the account's request budget that the deploy under test
/// shares, and are never throttled while it runs.
pub async fn moto_lambda() -> aws_sdk_lambda::Client {
    let stack = current();
    let config = aws_sdk_lambda::config::Builder::from(&stack.sdk_config().await)
        .endpoint_url(&stack.moto_url)
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// An in-process S3 client of this thread's test stack.
pub async fn s3() -> aws_sdk_s3::Client {
    current().s3().await
}

/// The bytes of an object in the test's bucket.
pub async fn object_bytes(key: &str) -> Vec<u8> {
    s3().await
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}

impl Stack {
    /// SDK configuration for this stack, built from nothing in the process environment (tests run in parallel).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let credentials = aws_sdk_s3::config::Credentials::new(
            "ferry-local",
            "ferry-local-secret",
            None,
            None,
            "test",
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.aws_url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// One test's view of the stand-ins: a stack of its own while it lives, moto freshly reset.
pub struct Env {
    pub stack: &'static Stack,
    pub tmp: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        // Only if it is still this test's: an Env made before this one dropped is the thread's stack now.
        CURRENT.with(|c| {
            if c.get().is_some_and(|s| std::ptr::eq(s, self.stack)) {
                c.set(None);
            }
        });
        lock(&FREE).push(self.stack);
    }
}

impl Env {
    pub fn new() -> Env {
        let stack = take_stack();
        CURRENT.with(|c| c.set(Some(stack)));
        // Through the local Lambda, which stops every execution environment with it.
        let reset = ureq_post(&format!("{}/moto-api/reset", stack.aws_url), "");
        assert!(reset, "moto reset failed");
        let env = Env {
            stack,
            tmp: tempfile::tempdir().expect("temp dir"),
        };
        let (status, body) = http_request("PUT", &format!("{}/{BUCKET}", stack.moto_url), "")
            .expect("create bucket");
        assert_eq!(status, 200, "create bucket: {body}");
        env
    }

    /// What a client of the stand-ins needs: AWS endpoint and credentials, the registry.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        for (k, val) in [
            ("AWS_ENDPOINT_URL", self.stack.aws_url.as_str()),
            ("MLFLOW_S3_ENDPOINT_URL", self.stack.aws_url.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "ferry-local"),
            ("AWS_SECRET_ACCESS_KEY", "ferry-local-secret"),
        ] {
            v.insert(k.to_string(), val.to_string());
        }
        if let Some(m) = &self.stack.mlflow_url {
            v.insert("MLFLOW_TRACKING_URI".into(), m.clone());
        }
        v
    }

    pub fn python(&self, args: &[&str]) -> String {
        let out = Command::new(python())
            .args(args)
            .envs(self.vars())
            .env("FERRY_FIXTURE_REQUIREMENTS", fixture_requirements())
            .current_dir(workspace())
            .output()
            .expect("python");
        assert!(
            out.status.success(),
            "python {:?} failed:\n{}\n{}",
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Registers `count` versions of a demo model under `name` through MLflow's own client; approves `approve`,
    /// sets the given registry aliases. Returns (version, artifact_uri) per new version.
    pub fn register(
        &self,
        demo_model: &str,
        name: &str,
        count: u32,
        approve: &[u32],
        aliases: &[(&str, u32)],
    ) -> Vec<(String, String)> {
        let approve = approve
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            "tools/registry_fixture.py".to_string(),
            "register".into(),
            "--model".into(),
            demo_model.into(),
            "--name".into(),
            name.into(),
            "--versions".into(),
            count.to_string(),
            "--approve".into(),
            approve,
        ];
        for (alias, v) in aliases {
            args.push("--alias".into());
            args.push(format!("{alias}={v}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.python(&refs)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).expect("registry_fixture output");
                (
                    v["version"].as_str().unwrap().to_string(),
                    v["artifact_uri"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn approve(&self, name: &str, version: u32, extra: &[&str]) {
        let v = version.to_string();
        let mut args = vec![
            "tools/registry_fixture.py",
            "approve",
            "--name",
            name,
            "--version",
            &v,
        ];
        args.extend_from_slice(extra);
        self.python(&args);
    }

    pub fn ferry(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("ferry").expect("ferry binary");
        cmd.envs(self.vars())
            .env_remove("FERRY_CATALOG")
            .env_remove("FERRY_PLATFORM")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Writes a file under the test's temp folder and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.tmp.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A local platform file (same shape as Terraform's output) with the given model → function names.
    pub fn platform(&self, functions: &[(&str, &str)]) -> PathBuf {
        let functions: serde_json::Map<String, serde_json::Value> = functions
            .iter()
            .map(|(m, f)| (m.to_string(), serde_json::Value::String(f.to_string())))
            .collect();
        let efs_root = self.tmp.path().join("efs");
        std::fs::create_dir_all(&efs_root).unwrap();
        let platform = serde_json::json!({
            "schema_version": 1, "environment": "test", "region": "us-east-1", "artifact_bucket": BUCKET,
            "audit_prefix": "ferry/audit/", "lock_prefix": "ferry/locks/",
            "efs": {"file_system_id": "fs-test",
                    "inference_access_point_arn": "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-ro",
                    "sync_access_point_arn": "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-rw",
                    "mount_path": "/mnt/models", "local_root": efs_root},
            "network": {"subnet_ids": ["subnet-a"], "security_group_ids": ["sg-a"]},
            "functions": functions, "sync_function": null, "http_api_id": null
        });
        self.write(
            "platform.json",
            &serde_json::to_string_pretty(&platform).unwrap(),
        )
    }

    pub fn efs_root(&self) -> PathBuf {
        self.tmp.path().join("efs")
    }
}

/// The requests other than GET and HEAD (moto's own admin API aside) that this stack's moto saw while `f` ran: what
/// a command changed in AWS. Invokes go to the local Lambda, not to moto, and are not among them.
pub fn mutating_calls(env: &Env, f: impl FnOnce()) -> Vec<String> {
    let recorder = |method: &str, step: &str| {
        let url = format!("{}/moto-api/recorder/{step}", env.stack.moto_url);
        http_request(method, &url, "").expect("moto's recorder").1
    };
    recorder("POST", "reset-recording");
    recorder("POST", "start-recording");
    let answered_before = answered_by_the_front(env);
    f();
    recorder("POST", "stop-recording");
    let answered_after = answered_by_the_front(env);
    let by_the_front = answered_after.into_iter().filter_map(|(op, n)| {
        let before = answered_before.get(&op).copied().unwrap_or(0);
        (n > before).then(|| format!("{op} x{} (answered by the local Lambda)", n - before))
    });
    recorder("GET", "download-recording")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| !matches!(r["method"].as_str(), Some("GET") | Some("HEAD")))
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap_or(""),
                r["path"].as_str().unwrap_or("")
            )
        })
        .filter(|l| !l.contains("/moto-api/"))
        .chain(by_the_front)
        .collect()
}

/// Mutating calls the local Lambda answers itself, which moto's recorder never sees: operation → answers so far.
fn answered_by_the_front(env: &Env) -> BTreeMap<String, u64> {
    const MUTATING: [&str; 6] = [
        "PutRuntimeManagementConfig",
        "AddPermission",
        "RemovePermission",
        "CreateFunctionUrlConfig",
        "UpdateFunctionUrlConfig",
        "DeleteFunctionUrlConfig",
    ];
    let url = format!("{}/ferry-lambda/control-plane", env.stack.aws_url);
    let (_, body) = http_request("GET", &url, "").expect("the local Lambda's control plane");
    let seen: serde_json::Value = serde_json::from_str(&body).expect("control-plane JSON");
    MUTATING
        .iter()
        .map(|op| {
            let n = seen["answers"][op].as_object().map_or(0, |by_status| {
                by_status.values().filter_map(|v| v.as_u64()).sum()
            });
            (op.to_string(), n)
        })
        .collect()
}

/// A bare HTTP POST through Python's stdlib would be slow; std's TcpStream is enough for moto's admin API.
pub fn ureq_post(url: &str, body: &str) -> bool {
    http_request("POST", url, body)
        .map(|(status, _)| status == 200)
        .unwrap_or(false)
}

pub fn http_request(method: &str, url: &str, body: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A TCP relay to a stand-in that holds each chunk of a request for `delay` before passing it on: a deploy through
/// it runs slowly enough to be killed between two steps. Stops accepting when dropped.
pub struct SlowRelay {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl SlowRelay {
    pub async fn start(upstream_url: &str, delay: Duration) -> SlowRelay {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream_url.trim_start_matches("http://").to_string();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut server_rx, mut server_tx) = server.into_split();
                    let requests = async {
                        let mut buf = vec![0u8; 1 << 16];
                        while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
                            tokio::time::sleep(delay).await;
                            if server_tx.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = server_tx.shutdown().await;
                    };
                    let answers = async {
                        let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
                        let _ = client_tx.shutdown().await;
                    };
                    tokio::join!(requests, answers);
                });
            }
        });
        SlowRelay { url, task }
    }
}

impl Drop for SlowRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many of a test's independent runs [`on_own_stacks`] runs at once: `FERRY_TEST_RUNS_AT_ONCE`, else 1 beside
/// the other tests `cargo test` runs (`make test-reliability`, on its own, takes 4). The runs mostly wait (on retries'
/// backoff, leases, settling updates), not on the two cores; but the timing tests running beside them are not to be
/// starved (at ten stacks at once on two cores a deploy here took over 5 minutes).
pub fn runs_at_once() -> usize {
    std::env::var("FERRY_TEST_RUNS_AT_ONCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Runs `run` for every item, `at_once` at a time, each on a thread with a runtime of its own, so that each run's
/// [`Env`] is a stack of its own; the results in the items' order. A run that panics fails the test once the runs
/// under way have ended (its message is printed as it happens); no run starts after it.
pub fn on_own_stacks<T, R, Fut>(
    items: Vec<T>,
    at_once: usize,
    run: impl Fn(T) -> Fut + Sync,
) -> Vec<R>
where
    T: Send,
    R: Send,
    Fut: std::future::Future<Output = R>,
{
    let count = items.len();
    let queue = Mutex::new(
        items
            .into_iter()
            .enumerate()
            .collect::<std::collections::VecDeque<_>>(),
    );
    let done = Mutex::new(Vec::with_capacity(count));
    let failed = std::sync::atomic::AtomicBool::new(false);
    /// Marks the runs failed when its thread unwinds from a panicking run.
    struct OnPanic<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for OnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
    std::thread::scope(|scope| {
        for _ in 0..at_once.min(count) {
            scope.spawn(|| {
                let _on_panic = OnPanic(&failed);
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                while !failed.load(std::sync::atomic::Ordering::SeqCst) {
                    let Some((index, item)) = lock(&queue).pop_front() else {
                        break;
                    };
                    let result = runtime.block_on(run(item));
                    lock(&done).push((index, result));
                }
            });
        }
    });
    // A run that panicked made `scope` panic: every item is done here.
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}
