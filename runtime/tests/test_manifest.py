"""The manifest and artifact digest of docs/contracts.md section 2, and the refusal of a folder that differs."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from conftest import child_env
from ferry_runtime import manifest
from ferry_runtime.manifest import ManifestError


def write_tree(root, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_digest_is_sha256_of_sorted_path_size_hash_lines(tmp_path):
    # given files whose bytewise order differs from a case-insensitive or a path-component order
    files = {"a_b": b"x", "a/b": b"hello\n", "a-b": b"", "B": b"\x00\x01", "MLmodel": b"flavors: {}\n"}
    write_tree(tmp_path, files)
    # when the manifest is built
    built = manifest.build_manifest(tmp_path, "risk-score", "3", source="s3://b/p")
    # then files are sorted bytewise and the digest is the contract's, computed here independently
    order = sorted(files, key=lambda p: p.encode())
    assert [f["path"] for f in built["files"]] == order == ["B", "MLmodel", "a-b", "a/b", "a_b"]
    text = "".join(f"{p}\t{len(files[p])}\t{hashlib.sha256(files[p]).hexdigest()}\n" for p in order)
    assert built["digest"] == hashlib.sha256(text.encode()).hexdigest()
    assert built["format"] == 1 and built["model"] == "risk-score" and built["version"] == "3"


def test_digest_does_not_depend_on_model_version_or_source(tmp_path):
    write_tree(tmp_path, {"MLmodel": b"m", "python_model.pkl": b"p"})
    one = manifest.build_manifest(tmp_path, "risk-score", "1", "s3://a/x")
    two = manifest.build_manifest(tmp_path, "other", "9", "s3://b/y")
    assert one["digest"] == two["digest"]


def test_shared_vector_matches(tmp_path):
    """tests/data/manifest_vector.json is a fixed example both the agent and the runtime can check."""
    vector = json.loads((manifest_vector_path()).read_text())
    write_tree(tmp_path, {k: v.encode() for k, v in vector["files"].items()})
    assert manifest.build_manifest(tmp_path, "m", "1")["digest"] == vector["digest"]


def manifest_vector_path():
    from pathlib import Path
    return Path(__file__).parent / "data" / "manifest_vector.json"


def test_manifest_file_is_excluded_and_verify_accepts_an_intact_folder(efs_root):
    folder = efs_root / "risk-score" / "1"
    recorded = json.loads((folder / ".ferry-manifest.json").read_text())
    assert ".ferry-manifest.json" not in [f["path"] for f in recorded["files"]]
    assert {"MLmodel", "python_model.pkl", "code/demo_models.py"} <= {f["path"] for f in recorded["files"]}
    assert manifest.verify(folder, expected_digest=recorded["digest"], model="risk-score", version="1")["digest"] \
        == recorded["digest"]


@pytest.mark.parametrize("tamper, reason", [
    (lambda d: (d / "python_model.pkl").write_bytes(b"X" + (d / "python_model.pkl").read_bytes()[1:]),
     "python_model.pkl has SHA-256"),
    (lambda d: (d / "code" / "demo_models.py").write_text("# patched\n"), "code/demo_models.py has"),
    (lambda d: (d / "MLmodel").unlink(), "MLmodel is listed in the manifest but missing"),
    (lambda d: (d / "extra.py").write_text("import os\n"), "extra.py is not in the manifest"),
    (lambda d: (d / ".ferry-manifest.json").unlink(), "no .ferry-manifest.json"),
    (lambda d: (d / ".ferry-manifest.json").write_text("{not json"), "not valid JSON"),
])
def test_tampered_or_incomplete_folder_is_refused_with_the_file_named(version_copy, tamper, reason):
    folder = version_copy("risk-score", 1)
    tamper(folder)
    with pytest.raises(ManifestError) as err:
        manifest.verify(folder)
    assert reason in str(err.value)


def test_a_manifest_edited_to_match_tampered_files_fails_the_digest(version_copy):
    folder = version_copy("risk-score", 1)
    original = json.loads((folder / ".ferry-manifest.json").read_text())
    (folder / "code" / "demo_models.py").write_text("# patched\n")
    forged = manifest.build_manifest(folder, "risk-score", "1")
    forged["digest"] = original["digest"]  # the approved digest kept, the file list changed
    (folder / ".ferry-manifest.json").write_text(json.dumps(forged))
    with pytest.raises(ManifestError, match="not the digest of its file list"):
        manifest.verify(folder)
    # and a fully recomputed manifest no longer matches the approved digest
    manifest.write_manifest(folder, "risk-score", "1")
    with pytest.raises(ManifestError, match="differs from the approved"):
        manifest.verify(folder, expected_digest=original["digest"])


@pytest.mark.parametrize("files, reason", [
    ([{"path": "b", "size": 1, "sha256": "0"}, {"path": "a", "size": 1, "sha256": "0"}], "not sorted"),
    ([{"path": "../etc/passwd", "size": 1, "sha256": "0"}], "not a plain relative path"),
    ([{"path": "/abs", "size": 1, "sha256": "0"}], "not a plain relative path"),
    ([{"path": "a", "size": "1", "sha256": "0"}], "integer size"),
])
def test_malformed_manifest_is_refused(tmp_path, files, reason):
    (tmp_path / ".ferry-manifest.json").write_text(json.dumps({"format": 1, "files": files, "digest": "0"}))
    with pytest.raises(ManifestError, match=reason):
        manifest.verify(tmp_path)


def test_manifest_naming_another_version_is_refused(efs_root):
    with pytest.raises(ManifestError, match="names version '1', expected '2'"):
        manifest.verify(efs_root / "risk-score" / "1", model="risk-score", version="2")


def test_cli_prints_the_digest_and_verifies(efs_root, version_copy):
    folder = efs_root / "risk-score" / "2"
    recorded = json.loads((folder / ".ferry-manifest.json").read_text())["digest"]
    run = lambda *a: subprocess.run([sys.executable, "-m", "ferry_runtime.manifest", *a], env=child_env(),
                                    capture_output=True, text=True, timeout=60)
    printed = run(str(folder))
    assert printed.returncode == 0 and printed.stdout.strip() == recorded
    assert run(str(folder), "--verify").stdout.startswith(f"ok {recorded}")
    broken = version_copy("risk-score", 2)
    (broken / "conda.yaml").write_text("changed\n")
    refused = run(str(broken), "--verify")
    assert refused.returncode == 1 and "conda.yaml" in refused.stderr
