//! The command line as a user meets it: help, completions, and errors that name the missing file.
use predicates::prelude::*;

fn ferry() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("ferry").unwrap();
    cmd.env_remove("FERRY_CATALOG")
        .env_remove("FERRY_PLATFORM")
        .env_remove("MLFLOW_TRACKING_URI");
    cmd
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let assert = ferry().arg("--help").assert().success();
    let out = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    for cmd in [
        "render",
        "plan",
        "deploy",
        "sync",
        "status",
        "verify",
        "retire",
        "gc",
        "unlock",
        "manifest",
        "completions",
    ] {
        assert!(
            out.contains(&format!("  {cmd} ")),
            "--help lacks {cmd}:\n{out}"
        );
    }
    assert!(out.contains("Exit codes:"), "{out}");
}

#[test]
fn each_command_has_its_own_help() {
    for cmd in [
        "render", "plan", "deploy", "sync", "status", "verify", "retire", "gc", "unlock",
        "manifest",
    ] {
        ferry()
            .args([cmd, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: ferry"));
    }
}

#[test]
fn bash_completions_are_printed() {
    ferry()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_ferry()"));
}

#[test]
fn a_missing_catalog_is_named() {
    let dir = tempfile::tempdir().unwrap();
    ferry()
        .current_dir(dir.path())
        .args(["render", "--platform", "p.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "error: ferry.toml: cannot read the catalog: No such file",
        ));
}

#[test]
fn a_missing_platform_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        "[registry]\nsource = \"mlflow\"\n[models.m]\n",
    )
    .unwrap();
    ferry()
        .current_dir(dir.path())
        .args(["render", "--platform", "nowhere.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "error: nowhere.json: cannot read the platform file",
        ));
    ferry()
        .current_dir(dir.path())
        .arg("render")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "no platform file: pass --platform FILE",
        ));
}
