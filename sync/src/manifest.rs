//! The artifact manifest of a model version (docs/contracts.md, section 2): relative path, size and SHA-256 of
//! every file, sorted, and the artifact digest over them. The digest depends on the files only, so the one an
//! approver records before approval (`ferry manifest`) is the one the deploy checks.
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MANIFEST_FILE: &str = ".ferry-manifest.json";
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// S3's ETag of the object the file was copied from (written by `ferry sync`): a later sync compares it with
    /// the listing's, so that an object rewritten after the copy is caught whatever the clocks say. Not in the
    /// digest, which depends on the files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl ManifestEntry {
    /// What the file is (path, size, SHA-256), leaving out where it was copied from.
    pub fn content(&self) -> (&str, u64, &str) {
        (&self.path, self.size, &self.sha256)
    }
}

/// Whether two lists of entries describe the same files (ETags aside).
pub fn same_files(a: &[ManifestEntry], b: &[ManifestEntry]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.content() == y.content())
}

/// One way a folder's files differ from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileDifference {
    Changed {
        path: String,
        expected_sha256: String,
        found_sha256: String,
        expected_size: u64,
        found_size: u64,
    },
    Missing {
        path: String,
        expected_sha256: String,
    },
    Added {
        path: String,
        found_sha256: String,
    },
}

impl std::fmt::Display for FileDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileDifference::Changed {
                path,
                expected_sha256,
                found_sha256,
                expected_size,
                found_size,
            } => write!(
                f,
                "{path} changed: manifest says sha256 {expected_sha256} ({expected_size} bytes), found {found_sha256} ({found_size} bytes)"
            ),
            FileDifference::Missing {
                path,
                expected_sha256,
            } => write!(f, "{path} missing (manifest says sha256 {expected_sha256})"),
            FileDifference::Added { path, found_sha256 } => {
                write!(
                    f,
                    "{path} added (not in the manifest; sha256 {found_sha256})"
                )
            }
        }
    }
}

/// Every file of `found` (a folder as scanned) that differs from `expected` (its manifest), by path.
pub fn file_differences(
    found: &[ManifestEntry],
    expected: &[ManifestEntry],
) -> Vec<FileDifference> {
    let found_by: std::collections::BTreeMap<&str, &ManifestEntry> =
        found.iter().map(|e| (e.path.as_str(), e)).collect();
    let expected_by: std::collections::BTreeMap<&str, &ManifestEntry> =
        expected.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut out = Vec::new();
    for (path, e) in &expected_by {
        match found_by.get(path) {
            None => out.push(FileDifference::Missing {
                path: path.to_string(),
                expected_sha256: e.sha256.clone(),
            }),
            Some(f) if f.content() != e.content() => out.push(FileDifference::Changed {
                path: path.to_string(),
                expected_sha256: e.sha256.clone(),
                found_sha256: f.sha256.clone(),
                expected_size: e.size,
                found_size: f.size,
            }),
            Some(_) => {}
        }
    }
    for (path, f) in &found_by {
        if !expected_by.contains_key(path) {
            out.push(FileDifference::Added {
                path: path.to_string(),
                found_sha256: f.sha256.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

impl FileDifference {
    pub fn path(&self) -> &str {
        match self {
            FileDifference::Changed { path, .. }
            | FileDifference::Missing { path, .. }
            | FileDifference::Added { path, .. } => path,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactManifest {
    pub format: u32,
    pub model: String,
    pub version: String,
    pub source: String,
    pub files: Vec<ManifestEntry>,
    pub digest: String,
}

impl ArtifactManifest {
    /// Sorts the entries and computes the digest.
    pub fn new(
        model: &str,
        version: &str,
        source: &str,
        mut files: Vec<ManifestEntry>,
    ) -> ArtifactManifest {
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let digest = digest(&files);
        ArtifactManifest {
            format: FORMAT,
            model: model.into(),
            version: version.into(),
            source: source.into(),
            files,
            digest,
        }
    }

    /// Parses a manifest and checks it is internally consistent (sorted, digest matches its entries).
    pub fn parse(text: &str) -> Result<ArtifactManifest, String> {
        let m: ArtifactManifest =
            serde_json::from_str(text).map_err(|e| format!("is not a Ferry manifest: {e}"))?;
        if m.format != FORMAT {
            return Err(format!(
                "has format {}, this ferry reads format {FORMAT}",
                m.format
            ));
        }
        if !m
            .files
            .windows(2)
            .all(|w| w[0].path.as_bytes() < w[1].path.as_bytes())
        {
            return Err("lists its files out of order or twice".into());
        }
        for f in &m.files {
            check_relative_path(&f.path).map_err(|r| format!("lists {:?}, which {r}", f.path))?;
        }
        let expected = digest(&m.files);
        if expected != m.digest {
            return Err(format!(
                "says digest {} but its entries give {expected}",
                m.digest
            ));
        }
        Ok(m)
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The text printed by `ferry manifest`: one `sha256  size  path` line per file, then the digest.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            out.push_str(&format!("{}  {:>12}  {}\n", f.sha256, f.size, f.path));
        }
        out.push_str(&format!(
            "digest {}  ({} files, {} bytes)\n",
            self.digest,
            self.files.len(),
            self.total_bytes()
        ));
        out
    }
}

/// The artifact digest: SHA-256 of the lines `<path>\t<size>\t<sha256>\n`, in the given (sorted) order.
pub fn digest(files: &[ManifestEntry]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.path.as_bytes());
        h.update(b"\t");
        h.update(f.size.to_string().as_bytes());
        h.update(b"\t");
        h.update(f.sha256.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// A path inside a version folder: relative, `/`-separated, no `.`/`..`, no empty or over-long parts, no NUL.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.starts_with('/') || path.contains('\\') {
        return Err("is not a relative '/'-separated path".into());
    }
    for part in path.split('/') {
        match part {
            "" => return Err("has an empty path segment".into()),
            "." | ".." => return Err("escapes or re-enters its folder ('.' or '..')".into()),
            p if p.len() > 255 => return Err("has a name longer than 255 bytes".into()),
            p if p.contains('\0') => return Err("contains a NUL byte".into()),
            _ => {}
        }
    }
    if path == MANIFEST_FILE {
        return Err(format!("collides with Ferry's own {MANIFEST_FILE}"));
    }
    Ok(())
}

/// Hashes every file under `dir` (streamed), skipping the manifest itself. Symlinks and special files are errors:
/// a version folder holds regular files only.
pub fn scan_dir(dir: &Path) -> Result<Vec<ManifestEntry>, String> {
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries)?;
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(entries)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<ManifestEntry>) -> Result<(), String> {
    let listing =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
    for item in listing {
        let item = item.map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
        let path = item.path();
        let kind = item
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = relative_slash_path(root, &path)?;
            if rel == MANIFEST_FILE {
                continue;
            }
            let (size, sha256) = hash_file(&path)?;
            out.push(ManifestEntry {
                path: rel,
                size,
                sha256,
                etag: None,
            });
        } else {
            return Err(format!(
                "{}: is neither a file nor a folder",
                path.display()
            ));
        }
    }
    Ok(())
}

fn relative_slash_path(root: &Path, path: &Path) -> Result<String, String> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| format!("{} is outside {}", path.display(), root.display()))?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| format!("{}: name is not UTF-8", path.display()))?
                    .to_string(),
            ),
            _ => return Err(format!("{}: unexpected path component", path.display())),
        }
    }
    Ok(parts.join("/"))
}

/// Size and SHA-256 of a file, read in 1 MiB blocks.
pub fn hash_file(path: &Path) -> Result<(u64, String), String> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, size: u64, sha: char) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            size,
            sha256: sha.to_string().repeat(64),
            etag: None,
        }
    }

    #[test]
    fn each_changed_missing_and_added_file_is_named_with_both_digests() {
        let expected = vec![
            entry("MLmodel", 10, 'a'),
            entry("model.pkl", 20, 'b'),
            entry("conda.yaml", 5, 'c'),
        ];
        let found = vec![
            entry("MLmodel", 10, 'a'),
            entry("model.pkl", 21, 'd'),
            entry("notes.txt", 3, 'e'),
        ];
        let d = file_differences(&found, &expected);
        let text: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                format!(
                    "conda.yaml missing (manifest says sha256 {})",
                    "c".repeat(64)
                ),
                format!(
                    "model.pkl changed: manifest says sha256 {} (20 bytes), found {} (21 bytes)",
                    "b".repeat(64),
                    "d".repeat(64)
                ),
                format!(
                    "notes.txt added (not in the manifest; sha256 {})",
                    "e".repeat(64)
                ),
            ]
        );
        assert!(file_differences(&expected, &expected).is_empty());
    }

    #[test]
    fn the_digest_is_the_documented_one() {
        // docs/contracts.md: sha256 of "<path>\t<size>\t<sha256>\n" per file, sorted by path.
        let files = vec![entry("MLmodel", 3, 'a'), entry("python_model.pkl", 10, 'b')];
        let text = format!(
            "MLmodel\t3\t{}\npython_model.pkl\t10\t{}\n",
            "a".repeat(64),
            "b".repeat(64)
        );
        assert_eq!(digest(&files), hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn entries_are_sorted_bytewise_whatever_order_they_come_in() {
        let a = ArtifactManifest::new(
            "m",
            "1",
            "s3://b/p",
            vec![entry("b", 1, 'a'), entry("B", 1, 'a'), entry("a/z", 1, 'a')],
        );
        let b = ArtifactManifest::new(
            "m",
            "1",
            "s3://b/p",
            vec![entry("a/z", 1, 'a'), entry("b", 1, 'a'), entry("B", 1, 'a')],
        );
        assert_eq!(a, b);
        assert_eq!(
            a.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["B", "a/z", "b"]
        );
    }

    #[test]
    fn a_tampered_manifest_is_refused() {
        let m = ArtifactManifest::new("m", "1", "s3://b/p", vec![entry("MLmodel", 3, 'a')]);
        let mut text = serde_json::to_string(&m).unwrap();
        text = text.replace("\"size\":3", "\"size\":4");
        assert!(
            ArtifactManifest::parse(&text)
                .unwrap_err()
                .starts_with("says digest")
        );
    }

    #[test]
    fn paths_that_escape_the_folder_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "./a",
            "a\\b",
            ".ferry-manifest.json",
        ] {
            assert!(check_relative_path(bad).is_err(), "{bad} should be refused");
        }
        assert!(check_relative_path("artifacts/weights.bin").is_ok());
    }

    #[test]
    fn scanning_a_folder_hashes_every_file_but_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("code")).unwrap();
        std::fs::write(dir.path().join("MLmodel"), b"abc").unwrap();
        std::fs::write(dir.path().join("code/m.py"), b"").unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{}").unwrap();
        let files = scan_dir(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0],
            ManifestEntry {
                path: "MLmodel".into(),
                size: 3,
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
                etag: None,
            }
        );
        assert_eq!(files[1].path, "code/m.py");
    }
}
