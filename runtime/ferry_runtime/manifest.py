"""The Ferry manifest of a version folder (docs/contracts.md, section 2): `.ferry-manifest.json` beside the MLflow
model files, listing every file with its size and SHA-256, and the artifact digest over that list.

    python -m ferry_runtime.manifest DIR                  print the digest of DIR's files (what `ferry manifest` prints)
    python -m ferry_runtime.manifest DIR --verify         check DIR against its manifest; exit 1 with the reason
    python -m ferry_runtime.manifest DIR --write --model M --version V [--source S]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = ".ferry-manifest.json"
FORMAT = 1
_CHUNK = 1 << 20


class ManifestError(Exception):
    """The folder does not match its manifest, or the manifest is missing or malformed. The message says which
    file and what differs."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str

    def line(self) -> str:
        return f"{self.path}\t{self.size}\t{self.sha256}\n"


def digest_of(entries: list[FileEntry]) -> str:
    """The artifact digest: SHA-256 of one `<path>\\t<size>\\t<sha256>\\n` line per file, files sorted bytewise."""
    h = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.path.encode("utf-8")):
        h.update(entry.line().encode("utf-8"))
    return h.hexdigest()


def hash_file(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def list_files(folder: Path) -> list[str]:
    """Relative `/`-separated paths of every regular file under `folder`, except the manifest; sorted bytewise.
    A symlink or any other non-regular file is an error: a synced version folder holds only regular files."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                raise ManifestError(f"{folder}: {(base / name).relative_to(folder).as_posix()} is a symlink")
        for name in filenames:
            full = base / name
            rel = full.relative_to(folder).as_posix()
            if rel == MANIFEST_NAME:
                continue
            mode = os.lstat(full).st_mode
            if not stat.S_ISREG(mode):
                raise ManifestError(f"{folder}: {rel} is not a regular file")
            found.append(rel)
    return sorted(found, key=lambda p: p.encode("utf-8"))


def compute_entries(folder: Path) -> list[FileEntry]:
    entries = []
    for rel in list_files(folder):
        size, sha = hash_file(folder / rel)
        entries.append(FileEntry(rel, size, sha))
    return entries


def build_manifest(folder: Path, model: str, version: str, source: str = "") -> dict:
    entries = compute_entries(folder)
    return {
        "format": FORMAT,
        "model": model,
        "version": str(version),
        "source": source,
        "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries],
        "digest": digest_of(entries),
    }


def write_manifest(folder: Path, model: str, version: str, source: str = "") -> dict:
    manifest = build_manifest(folder, model, version, source)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{folder}: no {MANIFEST_NAME} (an incomplete sync, or not a Ferry version folder)") from None
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from None
    _check_shape(path, manifest)
    return manifest


def _check_shape(path: Path, manifest: object) -> None:
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: expected a JSON object")
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{path}: format {manifest.get('format')!r} is not supported (expected {FORMAT})")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise ManifestError(f"{path}: `files` must be a list")
    if not isinstance(manifest.get("digest"), str):
        raise ManifestError(f"{path}: `digest` must be a string")
    previous = None
    for i, entry in enumerate(files):
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                and isinstance(entry.get("size"), int) and not isinstance(entry.get("size"), bool)
                and isinstance(entry.get("sha256"), str)):
            raise ManifestError(f"{path}: files[{i}] must have a string path, an integer size and a string sha256")
        rel = entry["path"]
        parts = rel.split("/")
        if not rel or rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
            raise ManifestError(f"{path}: files[{i}].path {rel!r} is not a plain relative path")
        if rel == MANIFEST_NAME:
            raise ManifestError(f"{path}: files[{i}] lists the manifest itself")
        key = rel.encode("utf-8")
        if previous is not None and key <= previous:
            raise ManifestError(f"{path}: files are not sorted bytewise by path (or repeat) at {rel!r}")
        previous = key


def verify(folder: Path, expected_digest: str | None = None, model: str | None = None,
           version: str | None = None) -> dict:
    """Check that `folder` holds exactly the files of its manifest, each with the recorded size and SHA-256, that
    the recorded digest is the digest of that list, and (when given) that it equals `expected_digest` and names
    `model` and `version`. Returns the manifest; raises ManifestError naming the first difference."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: no such version folder")
    manifest = read_manifest(folder)
    where = folder / MANIFEST_NAME
    if model is not None and manifest.get("model") not in (None, model):
        raise ManifestError(f"{where}: names model {manifest.get('model')!r}, expected {model!r}")
    if version is not None and manifest.get("version") is not None and str(manifest["version"]) != str(version):
        raise ManifestError(f"{where}: names version {manifest['version']!r}, expected {version!r}")

    listed = [FileEntry(e["path"], e["size"], e["sha256"].lower()) for e in manifest["files"]]
    recorded = manifest["digest"].lower()
    if digest_of(listed) != recorded:
        raise ManifestError(f"{where}: recorded digest {recorded} is not the digest of its file list")
    if expected_digest and recorded != expected_digest.lower():
        raise ManifestError(f"{folder}: artifact digest {recorded} differs from the approved {expected_digest.lower()}")

    on_disk = set(list_files(folder))
    names = {e.path for e in listed}
    missing = sorted(names - on_disk)
    if missing:
        raise ManifestError(f"{folder}: {missing[0]} is listed in the manifest but missing"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = sorted(on_disk - names)
    if extra:
        raise ManifestError(f"{folder}: {extra[0]} is not in the manifest"
                            + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    for entry in listed:
        size, sha = hash_file(folder / entry.path)
        if size != entry.size:
            raise ManifestError(f"{folder}: {entry.path} has {size} bytes, the manifest says {entry.size}")
        if sha != entry.sha256:
            raise ManifestError(f"{folder}: {entry.path} has SHA-256 {sha}, the manifest says {entry.sha256}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferry_runtime.manifest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--verify", action="store_true", help="check the folder against its manifest")
    mode.add_argument("--write", action="store_true", help="write .ferry-manifest.json into the folder")
    parser.add_argument("--expected-digest")
    parser.add_argument("--model")
    parser.add_argument("--version")
    parser.add_argument("--source", default="")
    args = parser.parse_args(argv)
    try:
        if args.verify:
            manifest = verify(args.folder, args.expected_digest, args.model, args.version)
            print(f"ok {manifest['digest']} ({len(manifest['files'])} files)")
        elif args.write:
            if not (args.model and args.version):
                parser.error("--write needs --model and --version")
            print(write_manifest(args.folder, args.model, args.version, args.source)["digest"])
        else:
            print(digest_of(compute_entries(args.folder)))
    except ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
