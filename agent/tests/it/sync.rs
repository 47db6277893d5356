//! `ferry sync` against moto's S3 and a real MLflow registry: real custom-model artifacts copied into a temporary
//! EFS root, verified and atomic; reruns that download nothing; frozen versions never overwritten; refused digests,
//! keys and sources; a multi-GiB-class object with bounded memory; a killed sync that a rerun completes.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use ferry::manifest::{ArtifactManifest, MANIFEST_FILE, same_files, scan_dir};
use ferry::sync::function::{FunctionConfig, handle};
use ferry::sync::{SyncError, SyncOptions, SyncRequest, Syncer};
use sha2::{Digest, Sha256};

use crate::harness::{BUCKET, Env, http_request, python, ureq_post};

fn catalog(env: &Env, registered: &str) -> PathBuf {
    env.write(
        "ferry.toml",
        &format!(
            "[registry]\nsource = \"mlflow\"\n[models.risk-score]\nregistered_model = \"{registered}\"\n"
        ),
    )
}

async fn s3(env: &Env) -> aws_sdk_s3::Client {
    env.stack.s3().await
}

/// Runs `ferry sync --output json` with the test's catalog and platform; returns exit code, report, stderr.
fn ferry_sync(
    env: &Env,
    catalog: &Path,
    platform: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let out = env
        .ferry()
        .args(["sync", "--output", "json", "--catalog"])
        .arg(catalog)
        .arg("--platform")
        .arg(platform)
        .args(extra)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        doc,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Entries of the model folder other than version folders: temporary folders a sync left behind.
fn temp_folders(model_dir: &Path) -> Vec<String> {
    std::fs::read_dir(model_dir)
        .map(|l| {
            l.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".ferry-tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The object GETs (not listings, not HEADs) moto saw while `f` ran.
fn count_object_gets(env: &Env, f: impl FnOnce()) -> usize {
    let moto = &env.stack.moto_url;
    assert!(ureq_post(
        &format!("{moto}/moto-api/recorder/reset-recording"),
        ""
    ));
    assert!(ureq_post(
        &format!("{moto}/moto-api/recorder/start-recording"),
        ""
    ));
    f();
    assert!(ureq_post(
        &format!("{moto}/moto-api/recorder/stop-recording"),
        ""
    ));
    let (status, body) = http_request(
        "GET",
        &format!("{moto}/moto-api/recorder/download-recording"),
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    // moto writes the recording into its working folder, which is this test's.
    let _ = std::fs::remove_file("moto_recording");
    body.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["method"] == "GET")
        .filter(|r| {
            let url = r["url"].as_str().unwrap_or("");
            let path = url
                .split("://")
                .nth(1)
                .and_then(|u| u.split_once('/'))
                .map(|(_, p)| p)
                .unwrap_or("");
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            path.starts_with(&format!("{BUCKET}/"))
                && path.len() > BUCKET.len() + 1
                && !query.contains("list-type")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_model_is_copied_verified_and_a_rerun_downloads_nothing() {
    // Given an approved version of a custom pyfunc model registered through MLflow, artifacts in moto's S3
    let env = Env::new();
    let registered = env.register("risk-score", "sync-basic", 1, &[1], &[]);
    let source = registered[0].1.clone();
    let catalog = catalog(&env, "sync-basic");
    let platform = env.platform(&[("risk-score", "ferry-test-risk-score")]);

    // When it is synced
    let (code, doc, stderr) = ferry_sync(&env, &catalog, &platform, &[]);

    // Then the version folder holds the artifacts and a manifest whose digest is the S3 prefix's
    assert_eq!(code, 0, "{stderr}");
    let result = &doc["results"][0];
    assert_eq!(result["status"], "synced", "{doc}");
    let dir = env.efs_root().join("risk-score/1");
    let manifest =
        ArtifactManifest::parse(&std::fs::read_to_string(dir.join(MANIFEST_FILE)).unwrap())
            .unwrap();
    assert_eq!(manifest.source, source);
    assert_eq!(
        (manifest.model.as_str(), manifest.version.as_str()),
        ("risk-score", "1")
    );
    assert!(same_files(&scan_dir(&dir).unwrap(), &manifest.files));
    // each file records the ETag of the object it was copied from (what a later sync compares)
    let (bucket, prefix) = ferry::aws::parse_s3_uri(&source).unwrap();
    let s3 = s3(&env).await;
    for f in &manifest.files {
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(format!("{prefix}/{}", f.path))
            .send()
            .await
            .unwrap();
        assert_eq!(f.etag.as_deref(), head.e_tag(), "{}", f.path);
    }
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for expected in ["MLmodel", "python_model.pkl", "requirements.txt"] {
        assert!(paths.contains(&expected), "{paths:?}");
    }
    assert_eq!(result["digest"], manifest.digest);
    assert_eq!(result["files"], manifest.files.len());
    let remote = env
        .ferry()
        .args(["manifest", "--output", "json", &source])
        .output()
        .unwrap();
    let remote: ArtifactManifest = serde_json::from_slice(&remote.stdout).unwrap();
    assert_eq!(
        remote.digest, manifest.digest,
        "`ferry manifest s3://…` gives the same digest"
    );
    assert!(temp_folders(&env.efs_root().join("risk-score")).is_empty());

    // When it is synced again, with and without --verify
    let gets = count_object_gets(&env, || {
        let (code, doc, stderr) = ferry_sync(&env, &catalog, &platform, &[]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(doc["results"][0]["status"], "present");
        let (code, doc, stderr) = ferry_sync(&env, &catalog, &platform, &["--verify"]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(doc["results"][0]["status"], "present");
        assert_eq!(doc["results"][0]["digest"], manifest.digest);
    });
    // Then no object was downloaded
    assert_eq!(gets, 0, "a rerun downloads nothing");

    // And the text summary is a table
    let out = env
        .ferry()
        .args(["sync", "--catalog"])
        .arg(&catalog)
        .arg("--platform")
        .arg(&platform)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("risk-score  1        present"), "{text}");
    assert!(
        text.contains("Sync: 0 copied, 1 already present, 0 failed."),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_object_under_a_synced_version_is_an_error_and_the_folder_is_untouched() {
    let env = Env::new();
    let registered = env.register("risk-score", "sync-changed", 1, &[1], &[]);
    let (bucket, prefix) = ferry::aws::parse_s3_uri(&registered[0].1).unwrap();
    let catalog = catalog(&env, "sync-changed");
    let platform = env.platform(&[("risk-score", "f")]);
    let (code, _, stderr) = ferry_sync(&env, &catalog, &platform, &[]);
    assert_eq!(code, 0, "{stderr}");
    let dir = env.efs_root().join("risk-score/1");
    let before = scan_dir(&dir).unwrap();
    let s3 = s3(&env).await;

    // Given an object rewritten with another size
    let key = format!("{prefix}/requirements.txt");
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from_static(b"mlflow==0.0.1\nsomething-else\n"))
        .send()
        .await
        .unwrap();
    // When synced again, then it is an error naming the object, and the folder is as it was
    let (code, doc, stderr) = ferry_sync(&env, &catalog, &platform, &[]);
    assert_eq!(code, 1);
    assert_eq!(doc["results"][0]["status"], "failed");
    assert!(stderr.contains(&format!("s3://{bucket}/{key}")), "{stderr}");
    assert!(stderr.contains("never overwritten"), "{stderr}");
    assert_eq!(scan_dir(&dir).unwrap(), before);

    // Given an object rewritten with the same size, at once (within the same second as the sync: the ETag the
    // manifest recorded tells, where S3's whole-second times could not), and the other put back as it was
    let original = std::fs::read(dir.join("MLmodel")).unwrap();
    let mut same_size = original.clone();
    same_size[0] ^= 0x20;
    s3.put_object()
        .bucket(&bucket)
        .key(format!("{prefix}/MLmodel"))
        .body(ByteStream::from(same_size))
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from(
            std::fs::read(dir.join("requirements.txt")).unwrap(),
        ))
        .send()
        .await
        .unwrap();
    let (code, _, stderr) = ferry_sync(&env, &catalog, &platform, &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "s3://{bucket}/{prefix}/MLmodel was modified after this version was synced"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("requirements.txt was modified"),
        "the same bytes put back are not a change: {stderr}"
    );
    assert_eq!(scan_dir(&dir).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_that_differs_from_the_approval_is_refused_and_nothing_is_visible() {
    let env = Env::new();
    env.register("risk-score", "sync-digest", 1, &[], &[]);
    let wrong = "0".repeat(64);
    env.approve("sync-digest", 1, &["--digest", &wrong]);
    let catalog = catalog(&env, "sync-digest");
    let platform = env.platform(&[("risk-score", "f")]);

    let (code, doc, stderr) = ferry_sync(&env, &catalog, &platform, &[]);

    assert_eq!(code, 1);
    assert_eq!(doc["results"][0]["status"], "failed");
    assert!(
        stderr.contains(&format!(
            "the approval (ferry.artifact_sha256) says {wrong}"
        )),
        "{stderr}"
    );
    let model_dir = env.efs_root().join("risk-score");
    assert!(!model_dir.join("1").exists(), "nothing renamed into place");
    assert!(
        temp_folders(&model_dir).is_empty(),
        "no temporary folder left"
    );
}

/// 1 MiB of varied bytes; each MiB of the object gets its index in its first 8 bytes.
fn generated_part(block: &[u8], first_mib: u64, mibs: u64) -> Vec<u8> {
    let mut part = Vec::with_capacity((mibs << 20) as usize);
    for i in first_mib..first_mib + mibs {
        let start = part.len();
        part.extend_from_slice(block);
        part[start..start + 8].copy_from_slice(&i.to_le_bytes());
    }
    part
}

/// Uploads a generated object of `mib` MiB by multipart; returns its SHA-256.
async fn upload_generated(s3: &aws_sdk_s3::Client, key: &str, mib: u64) -> String {
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let part_mib = 64;
    let mut hasher = Sha256::new();
    let mut parts = Vec::new();
    for (n, first) in (0..mib).step_by(part_mib as usize).enumerate() {
        let data = generated_part(&block, first, part_mib.min(mib - first));
        hasher.update(&data);
        let number = n as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    hex::encode(hasher.finalize())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_is_copied_with_bounded_memory_and_a_killed_sync_is_completed_by_a_rerun() {
    // Given a version whose artifacts include a 1 GiB object uploaded by multipart
    const MIB: u64 = 1024;
    let env = Env::new();
    let registered = env.register("risk-score", "sync-large", 1, &[1], &[]);
    let (_, prefix) = ferry::aws::parse_s3_uri(&registered[0].1).unwrap();
    let s3 = s3(&env).await;
    let big_sha = upload_generated(&s3, &format!("{prefix}/artifacts/weights.bin"), MIB).await;
    let catalog = catalog(&env, "sync-large");
    let platform = env.platform(&[("risk-score", "f")]);
    let model_dir = env.efs_root().join("risk-score");
    let rss_file = env.tmp.path().join("peak-rss-kib");
    // Peak RSS by GNU time: the kernel's ru_maxrss of a child forked by this (large) test process would start
    // from this process's own RSS.
    let spawn = |measured: bool| {
        let mut cmd = if measured {
            let mut c = std::process::Command::new("/usr/bin/time");
            c.arg("-f").arg("%M").arg("-o").arg(&rss_file);
            c.arg(assert_cmd::cargo::cargo_bin("ferry"));
            c
        } else {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        };
        // 64 MiB parts: moto reads the whole object for every ranged GET, so 8 MiB parts (the default) would make
        // it read 1 GiB 128 times.
        cmd.envs(env.vars())
            .args(["sync", "--quiet", "--part-size", "64", "--catalog"])
            .arg(&catalog)
            .arg("--platform")
            .arg(&platform)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // When a sync is killed (SIGKILL) in the middle of the copy
    let mut child = spawn(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_mid_copy = loop {
        let partial = temp_folders(&model_dir).into_iter().any(|t| {
            std::fs::metadata(model_dir.join(&t).join("artifacts/weights.bin"))
                .is_ok_and(|m| m.len() > 0)
        });
        if partial {
            child.kill().unwrap();
            child.wait().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        killed_mid_copy,
        "the sync finished before it could be killed"
    );
    // Then nothing is in place, and its temporary folder is there
    assert!(!model_dir.join("1").exists());
    assert_eq!(temp_folders(&model_dir).len(), 1);

    // When it is run again
    let started = Instant::now();
    let rerun = spawn(true).wait_with_output().unwrap();
    let secs = started.elapsed().as_secs_f64();

    // Then the version is complete and verified, with no temporary folder left, in bounded memory
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    // GNU time writes "Command exited with non-zero status N" before the figure when the command fails.
    let time_report = std::fs::read_to_string(&rss_file).unwrap();
    let peak_kib: i64 = time_report
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in GNU time's report: {time_report:?}"));
    assert!(
        temp_folders(&model_dir).is_empty(),
        "{:?}",
        temp_folders(&model_dir)
    );
    let dir = model_dir.join("1");
    let manifest =
        ArtifactManifest::parse(&std::fs::read_to_string(dir.join(MANIFEST_FILE)).unwrap())
            .unwrap();
    let big = manifest
        .files
        .iter()
        .find(|f| f.path == "artifacts/weights.bin")
        .unwrap();
    assert_eq!(
        (big.size, big.sha256.as_str()),
        (MIB << 20, big_sha.as_str())
    );
    let (code, doc, stderr) = ferry_sync(&env, &catalog, &platform, &["--verify"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["results"][0]["status"], "present");
    eprintln!(
        "1 GiB synced in {secs:.1} s, peak RSS {} MiB",
        peak_kib / 1024
    );
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB is above 64 MiB"
    );
}

struct Fixture {
    env: Env,
    s3: aws_sdk_s3::Client,
    root: PathBuf,
}

async fn fixture(objects: &[(&str, &[u8])]) -> Fixture {
    let env = Env::new();
    let s3 = s3(&env).await;
    for (key, body) in objects {
        s3.put_object()
            .bucket(BUCKET)
            .key(*key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .unwrap();
    }
    let root = env.efs_root();
    std::fs::create_dir_all(&root).unwrap();
    Fixture { env, s3, root }
}

fn request(source: &str) -> SyncRequest {
    SyncRequest {
        model: "m".into(),
        version: "1".into(),
        source: source.into(),
        expected_digest: None,
        verify: false,
    }
}

impl Fixture {
    async fn sync(&self, source: &str) -> Result<ferry::sync::SyncOutcome, SyncError> {
        Syncer::new(self.s3.clone(), self.root.clone(), SyncOptions::default())
            .sync(&request(source))
            .await
    }

    fn nothing_in_place(&self) {
        let model_dir = self.root.join("m");
        assert!(!model_dir.join("1").exists(), "nothing renamed into place");
        assert!(
            temp_folders(&model_dir).is_empty(),
            "no temporary folder left"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sources_and_keys_are_refused_with_the_object_named_and_nothing_in_place() {
    let long_name = format!("mlflow/long/{}", "n".repeat(300));
    let f = fixture(&[
        ("mlflow/dots/MLmodel", b"ok"),
        ("mlflow/dots/sub/../../escape", b"evil"),
        ("mlflow/long/MLmodel", b"ok"),
        (long_name.as_str(), b"x"),
        ("mlflow/ctl/bad\u{1}name", b"x"),
        ("mlflow/both/a", b"file"),
        ("mlflow/both/a/b", b"and folder"),
    ])
    .await;

    let cases: [(&str, &str); 5] = [
        (
            "s3://ferry-artifacts/mlflow/missing",
            "no object under this prefix",
        ),
        (
            "s3://ferry-artifacts/mlflow/dots",
            "escapes or re-enters its folder",
        ),
        ("s3://ferry-artifacts/mlflow/long", "longer than 255 bytes"),
        ("s3://ferry-artifacts/mlflow/ctl", "control character"),
        (
            "s3://ferry-artifacts/mlflow/both",
            "a file cannot be a folder",
        ),
    ];
    for (source, reason) in cases {
        let err = f.sync(source).await.unwrap_err().to_string();
        assert!(err.contains(reason), "{source}: {err}");
        assert!(
            err.starts_with("s3://ferry-artifacts/mlflow/"),
            "{source}: the object or prefix first: {err}"
        );
        f.nothing_in_place();
    }
    let _ = &f.env;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sync_function_copies_allowed_sources_and_refuses_others() {
    let f = fixture(&[
        ("mlflow/7/artifacts/MLmodel", b"flavors: {}\n"),
        ("audit/x", b"{}"),
    ])
    .await;
    let config = FunctionConfig::new(f.root.clone(), BUCKET.into(), "mlflow/").unwrap();

    let outcome = handle(
        &config,
        f.s3.clone(),
        &request("s3://ferry-artifacts/mlflow/7/artifacts"),
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome.files, outcome.bytes, outcome.skipped),
        (1, 12, false)
    );
    assert!(f.root.join("m/1/MLmodel").is_file());
    let again = handle(
        &config,
        f.s3.clone(),
        &request("s3://ferry-artifacts/mlflow/7/artifacts"),
    )
    .await
    .unwrap();
    assert!(again.skipped);
    // A copy changed on the file system (same size): the manifest check alone passes it, a verifying request
    // re-hashes the files and refuses it.
    std::fs::write(f.root.join("m/1/MLmodel"), b"flavors: {x}").unwrap();
    let mut verifying = request("s3://ferry-artifacts/mlflow/7/artifacts");
    assert!(handle(&config, f.s3.clone(), &verifying).await.is_ok());
    verifying.verify = true;
    let err = handle(&config, f.s3.clone(), &verifying).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("its files do not match its manifest: MLmodel"),
        "{err}"
    );
    assert_eq!(ferry::sync::function::error_type(&err), "VersionDiffers");

    let err = handle(
        &config,
        f.s3.clone(),
        &request("s3://ferry-artifacts/audit"),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("outside what this function may copy"),
        "{err}"
    );
    assert_eq!(ferry::sync::function::error_type(&err), "SourceError");
}

/// A moto server of its own with authentication on after the first `free` requests; stopped by PID on drop.
struct AuthMoto {
    child: std::process::Child,
    url: String,
}

impl Drop for AuthMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_is_reported_with_the_source_and_nothing_in_place() {
    // Given a moto with IAM authentication on, a bucket with an object, and a user with no permission
    let env = Env::new();
    let port = free_port();
    let moto_server = python().parent().unwrap().join("moto_server");
    let child = std::process::Command::new(moto_server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = AuthMoto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_request("GET", &format!("{}/moto-api/", moto.url), "")
        .map(|r| r.0)
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "moto with auth did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = format!(
        "import boto3, json\n\
         kw = dict(endpoint_url='{url}', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='x')\n\
         s3 = boto3.client('s3', **kw); iam = boto3.client('iam', **kw)\n\
         s3.create_bucket(Bucket='denied'); s3.put_object(Bucket='denied', Key='m/MLmodel', Body=b'x')\n\
         iam.create_user(UserName='nobody')\n\
         k = iam.create_access_key(UserName='nobody')['AccessKey']\n\
         print(json.dumps([k['AccessKeyId'], k['SecretAccessKey']]))\n",
        url = moto.url
    );
    let out = env.python(&["-c", &script]);
    let keys: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    let creds = aws_sdk_s3::config::Credentials::new(&keys[0], &keys[1], None, None, "test");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let root = env.efs_root();
    std::fs::create_dir_all(&root).unwrap();

    // When the version is synced with that user's key
    let err = Syncer::new(s3, root.clone(), SyncOptions::default())
        .sync(&request("s3://denied/m"))
        .await
        .unwrap_err()
        .to_string();

    // Then the error names the source and the denial, and nothing is in place
    assert!(
        err.starts_with("s3://denied/m: cannot list: AccessDenied"),
        "{err}"
    );
    assert!(!root.join("m/1").exists());
    assert!(temp_folders(&root.join("m")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sync_of_a_version_waits_for_the_first_then_finds_it_present() {
    let f = fixture(&[
        ("mlflow/locked/MLmodel", b"flavors: {}\n"),
        ("mlflow/locked/model.pkl", &[7u8; 4096]),
    ])
    .await;
    let source = format!("s3://{BUCKET}/mlflow/locked");
    let model_dir = f.root.join("m");
    std::fs::create_dir_all(&model_dir).unwrap();

    // Another process's sync of m/1 holds the lock: this one waits, writing nothing.
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(model_dir.join(".ferry-sync-1.lock"))
        .unwrap();
    held.lock().unwrap();
    let syncer = Syncer::new(f.s3.clone(), f.root.clone(), SyncOptions::default());
    let waiting = tokio::spawn({
        let (syncer, source) = (syncer.clone(), source.clone());
        async move { syncer.sync(&request(&source)).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !waiting.is_finished(),
        "the sync waits while the lock is held"
    );
    assert!(!model_dir.join("1").exists());
    assert!(
        temp_folders(&model_dir).is_empty(),
        "nothing written while waiting"
    );
    drop(held);
    let first = waiting.await.unwrap().unwrap();
    assert!(!first.skipped);
    assert!(model_dir.join("1").join(MANIFEST_FILE).is_file());

    // Two syncs of a new version at once: one copies, the other waits and finds it present and verified.
    let mut second = request(&source);
    second.version = "2".into();
    let (a, b) = tokio::join!(syncer.sync(&second), syncer.sync(&second));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        [a.skipped, b.skipped].iter().filter(|s| !**s).count(),
        1,
        "exactly one of them copied"
    );
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.digest, first.digest);
    assert!(temp_folders(&model_dir).is_empty());
}
