//! The contracts of docs/contracts.md, checked from the agent's side against the other parts' own files, so that
//! a change on one side fails the build instead of a deploy.
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry::manifest::{ArtifactManifest, scan_dir};
use ferry::platform::Platform;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn python() -> PathBuf {
    std::env::var_os("FERRY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

/// `ferry_platform` as each Terraform example builds it (its output expression, with placeholder values of the
/// right type) is what the agent reads.
#[test]
fn the_agent_parses_the_platform_output_of_every_terraform_example() {
    let examples = workspace().join("terraform/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        // A whole stack outputs `ferry_platform`; an add-on (eks-service: `ferry_platform_eks`) does not.
        let outputs = std::fs::read_to_string(dir.join("outputs.tf")).unwrap_or_default();
        if !outputs.contains("output \"ferry_platform\"") {
            continue;
        }
        let out = Command::new(python())
            .arg(workspace().join("terraform/tests/platform_fixture.py"))
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let platform =
            Platform::parse(&dir.join("outputs.tf"), &text).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !platform.functions.is_empty(),
            "{}: no model functions",
            dir.display()
        );
        assert!(
            platform.efs.local_root.is_none(),
            "Terraform never emits the local-only field"
        );
        // The same object wrapped as `terraform output -json` prints it.
        let wrapped = format!(
            r#"{{"ferry_platform": {{"sensitive": false, "type": "object", "value": {text}}}}}"#
        );
        assert_eq!(
            Platform::parse(Path::new("output.json"), &wrapped).unwrap(),
            platform
        );
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected the minimal and complete examples, found {seen}"
    );
}

/// The runtime's test vector for the artifact digest gives the same digest here.
#[test]
fn the_artifact_digest_matches_the_runtimes_test_vector() {
    let vector: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("runtime/tests/data/manifest_vector.json"))
            .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in vector["files"].as_object().unwrap() {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content.as_str().unwrap()).unwrap();
    }
    let manifest = ArtifactManifest::new("m", "1", "s3://b/p", scan_dir(dir.path()).unwrap());
    assert_eq!(manifest.digest, vector["digest"].as_str().unwrap());
}
