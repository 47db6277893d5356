//! The S3 side: listing a version's prefix (every key checked before anything is written) and streaming objects
//! into files, whole or as concurrent ranged parts, hashing what is written.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, EncodingType};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::disk;
use super::ordered_hash::{CloseOnDrop, OrderedHasher};
use super::{Progress, SyncError, SyncOptions};
use crate::manifest::{MANIFEST_FILE, check_relative_path};
use crate::s3::{describe_sdk_error, parse_s3_uri};

/// Bytes gathered from the network before one write (and hash) on a blocking thread.
const WRITE_BLOCK: usize = 512 << 10;
/// Longest path Linux (and EFS over NFS) accepts.
const PATH_MAX: usize = 4095;

/// An `s3://bucket/prefix` holding one version's artifacts.
#[derive(Debug, Clone)]
pub struct Source {
    uri: String,
    bucket: String,
    prefix: String,
}

/// One object of the listing, its key already checked.
#[derive(Debug, Clone)]
pub struct RemoteObject {
    pub key: String,
    /// Path inside the version folder, `/`-separated.
    pub path: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: Option<SystemTime>,
}

impl Source {
    pub fn parse(uri: &str) -> Result<Source, SyncError> {
        let (bucket, prefix) = parse_s3_uri(uri).map_err(|reason| SyncError::Source {
            uri: uri.to_string(),
            reason,
        })?;
        if !prefix.is_empty() {
            check_relative_path(&prefix).map_err(|r| SyncError::Source {
                uri: uri.to_string(),
                reason: format!("the prefix {r}"),
            })?;
        }
        let uri = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        Ok(Source {
            uri,
            bucket,
            prefix,
        })
    }

    /// `s3://bucket/prefix`, normalised (no trailing '/').
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, without a trailing '/'.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn object_uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// One small file of the version (`MLmodel`, `requirements.txt`) as text, `None` when the version has no such
    /// object. Refuses one larger than `max_bytes` (it is not the small file it is named for).
    pub async fn read_text(
        &self,
        s3: &aws_sdk_s3::Client,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<String>, SyncError> {
        let key = if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.prefix)
        };
        let fail = |reason: String| SyncError::Source {
            uri: self.object_uri(&key),
            reason,
        };
        // A small file: a body that breaks is read again whole.
        let mut attempt = 0;
        let bytes = loop {
            let out = match s3.get_object().bucket(&self.bucket).key(&key).send().await {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                    return Ok(None);
                }
                Err(e) => return Err(fail(format!("GetObject: {}", describe_sdk_error(&e)))),
            };
            let size = u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0);
            if size > max_bytes {
                return Err(fail(format!(
                    "is {size} bytes, more than the {max_bytes} such a file can be"
                )));
            }
            match out.body.collect().await {
                Ok(body) => break body.into_bytes(),
                Err(e) if attempt < BODY_RESUMES => {
                    attempt += 1;
                    tracing::warn!("reading {key} broke ({e}); reading it again");
                }
                Err(e) => {
                    return Err(fail(format!(
                        "GetObject: reading the body: {e} (after {attempt} re-reads)"
                    )));
                }
            }
        };
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Every object under the prefix, sorted by path; refuses keys that would escape the version folder, names
    /// the target cannot hold, a file that is also a folder, and an empty prefix.
    pub async fn list(&self, s3: &aws_sdk_s3::Client) -> Result<Vec<RemoteObject>, SyncError> {
        let key_prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut pages = s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&key_prefix)
            // Keys travel URL-encoded: XML cannot carry every character a key may hold.
            .encoding_type(EncodingType::Url)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| SyncError::Source {
                uri: self.uri.clone(),
                reason: format!("cannot list: {}", describe_sdk_error(&e)),
            })?;
            // A server that ignores encoding-type answers plain keys and says so by not echoing it.
            let encoded = page.encoding_type() == Some(&EncodingType::Url);
            for o in page.contents() {
                let Some(listed) = o.key() else { continue };
                let decoded;
                let key = if encoded {
                    decoded = url_decode(listed).map_err(|reason| SyncError::Source {
                        uri: self.uri.clone(),
                        reason: format!("listing: key {listed:?} {reason}"),
                    })?;
                    decoded.as_str()
                } else {
                    listed
                };
                let size = u64::try_from(o.size().unwrap_or(0)).unwrap_or(0);
                let rel = key.strip_prefix(&key_prefix).unwrap_or(key);
                if rel.ends_with('/') && size == 0 {
                    continue; // a folder marker written by a console or a tool
                }
                check_target_path(rel).map_err(|reason| SyncError::UnsafeKey {
                    object: self.object_uri(key),
                    reason,
                })?;
                objects.push(RemoteObject {
                    key: key.to_string(),
                    path: rel.to_string(),
                    size,
                    e_tag: o.e_tag().map(str::to_string),
                    last_modified: o
                        .last_modified()
                        .and_then(|t| SystemTime::try_from(*t).ok()),
                });
            }
        }
        if objects.is_empty() {
            return Err(SyncError::Source {
                uri: self.uri.clone(),
                reason: "no object under this prefix (is it the version's artifact location?)"
                    .into(),
            });
        }
        objects.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let paths: std::collections::BTreeSet<&str> =
            objects.iter().map(|o| o.path.as_str()).collect();
        for o in &objects {
            let mut parent = o.path.as_str();
            while let Some((p, _)) = parent.rsplit_once('/') {
                if paths.contains(p) {
                    return Err(SyncError::UnsafeKey {
                        object: self.object_uri(&o.key),
                        reason: format!(
                            "its folder {p:?} is also an object: a file cannot be a folder"
                        ),
                    });
                }
                parent = p;
            }
        }
        Ok(objects)
    }
}

/// Decodes a key of a listing asked with `encoding-type=url` (`%XX` escapes, `+` for a space).
fn url_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("has a broken %-escape")?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once decoded".to_string())
}

/// A path the version folder can hold on Linux/EFS: relative, no `..`, names of at most 255 bytes, no control
/// characters, not Ferry's own names.
pub fn check_target_path(path: &str) -> Result<(), String> {
    check_relative_path(path).map_err(|r| format!("its path {path:?} {r}"))?;
    if path.len() > PATH_MAX {
        return Err(format!(
            "its path is {} bytes, more than the target's {PATH_MAX}",
            path.len()
        ));
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!(
            "its path {path:?} contains the control character {c:?}, which is not a valid file name here"
        ));
    }
    if path
        .split('/')
        .any(|p| p.starts_with(".ferry-tmp-") || p == MANIFEST_FILE)
    {
        return Err(format!("its path {path:?} uses a name Ferry reserves"));
    }
    Ok(())
}

/// Streams objects of one source, bounded by a shared number of requests in flight.
pub struct Transfer<'a> {
    s3: &'a aws_sdk_s3::Client,
    source: &'a Source,
    options: &'a SyncOptions,
    progress: Arc<Progress>,
    permits: Arc<Semaphore>,
}

impl<'a> Transfer<'a> {
    pub fn new(
        s3: &'a aws_sdk_s3::Client,
        source: &'a Source,
        options: &'a SyncOptions,
        progress: Arc<Progress>,
    ) -> Transfer<'a> {
        Transfer {
            s3,
            source,
            options,
            progress,
            permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
        }
    }

    /// Copies one object into `file` (created empty) and returns the SHA-256 of what was written; compares it with
    /// S3's own SHA-256 where S3 has a full-object one; fsyncs the file.
    pub async fn copy_to_file(
        &self,
        object: &RemoteObject,
        file: File,
        path: &Path,
    ) -> Result<String, SyncError> {
        let fail = |reason: String| SyncError::Object {
            object: self.source.object_uri(&object.key),
            file: path.to_owned(),
            reason,
        };
        disk::preallocate(&file, object.size)
            .map_err(|e| fail(format!("cannot reserve {} bytes for it: {e}", object.size)))?;
        let file = Arc::new(file);
        let sha256 = if object.size > 2 * self.options.part_size {
            self.copy_ranged(object, file.clone(), path).await?
        } else {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|e| fail(e.to_string()))?;
            let out = self.get(object, None).await.map_err(&fail)?;
            let s3_sha = out.checksum;
            let (written, hashing) = stream_to_file(
                out.body,
                Rest::whole(self.s3, self.source.bucket(), object),
                Some(file.clone()),
                0,
                Hashing::Whole(Sha256::new()),
                &self.progress,
            )
            .await
            .map_err(&fail)?;
            if written != object.size {
                return Err(fail(format!(
                    "the listing says {} bytes but {written} arrived (was the object replaced during the sync?)",
                    object.size
                )));
            }
            let sha = whole_sha256(hashing);
            compare_checksum(s3_sha.as_deref(), &sha).map_err(&fail)?;
            sha
        };
        let f = file.clone();
        tokio::task::spawn_blocking(move || f.sync_all())
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(format!("cannot fsync: {e}")))?;
        self.progress.file_done();
        Ok(sha256)
    }

    /// SHA-256 of one object, streamed, nothing written.
    pub async fn hash_object(&self, object: &RemoteObject) -> Result<String, SyncError> {
        let object_uri = self.source.object_uri(&object.key);
        let fail = |reason: String| SyncError::Source {
            uri: object_uri.clone(),
            reason,
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let out = self.get(object, None).await.map_err(&fail)?;
        let (written, hashing) = stream_to_file(
            out.body,
            Rest::whole(self.s3, self.source.bucket(), object),
            None,
            0,
            Hashing::Whole(Sha256::new()),
            &self.progress,
        )
        .await
        .map_err(&fail)?;
        if written != object.size {
            return Err(fail(format!(
                "the listing says {} bytes but {written} arrived",
                object.size
            )));
        }
        let sha = whole_sha256(hashing);
        compare_checksum(out.checksum.as_deref(), &sha).map_err(&fail)?;
        Ok(sha)
    }

    async fn get(
        &self,
        object: &RemoteObject,
        range: Option<(u64, u64)>,
    ) -> Result<Fetched, String> {
        get_object(self.s3, self.source.bucket(), object, range).await
    }

    /// A large object: ranged parts downloaded concurrently into their place in the file, while one thread hashes
    /// the file in order as its written prefix grows (OrderedHasher), so memory stays bounded whatever the size.
    async fn copy_ranged(
        &self,
        object: &RemoteObject,
        file: Arc<File>,
        path: &Path,
    ) -> Result<String, SyncError> {
        let object_uri = self.source.object_uri(&object.key);
        let fail = |reason: String| SyncError::Object {
            object: object_uri.clone(),
            file: path.to_owned(),
            reason,
        };
        let s3_sha = {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|e| fail(e.to_string()))?;
            let mut head = self
                .s3
                .head_object()
                .bucket(self.source.bucket())
                .key(&object.key)
                .checksum_mode(ChecksumMode::Enabled);
            if let Some(tag) = &object.e_tag {
                head = head.if_match(tag);
            }
            let head = head
                .send()
                .await
                .map_err(|e| fail(format!("HeadObject: {}", describe_sdk_error(&e))))?;
            let size = head.content_length().and_then(|l| u64::try_from(l).ok());
            if size != Some(object.size) {
                return Err(fail(format!(
                    "the listing says {} bytes but HeadObject says {size:?} (was the object replaced during the sync?)",
                    object.size
                )));
            }
            full_object_sha256(
                head.checksum_sha256(),
                head.checksum_type().map(|t| t.as_str()),
            )
        };
        // Parts of a fixed size (whole MiB), started in order: the hashed prefix then trails the newest part by at
        // most the requests in flight, so little is left to hash when the last part lands, whatever the file's size.
        let part = self.options.part_size.max(1).next_multiple_of(1 << 20);
        let parts: Vec<(u64, u64)> = (0..object.size.div_ceil(part))
            .map(|i| (i * part, ((i + 1) * part).min(object.size) - 1))
            .collect();
        let ordered = Arc::new(OrderedHasher::new(object.size, part));
        // The hash follows the written prefix on a thread of its own. A blocking thread cannot be aborted: the
        // guard closes the hasher however the copy ends, and the thread then returns.
        let hashing = {
            let (f, ordered) = (file.clone(), ordered.clone());
            tokio::task::spawn_blocking(move || ordered.hash(&f))
        };
        let close = CloseOnDrop(ordered.clone());
        let mut done = futures::stream::iter(parts)
            .map(|(first, last)| {
                let s3 = self.s3.clone();
                let bucket = self.source.bucket().to_string();
                let object = object.clone();
                let file = file.clone();
                let permits = self.permits.clone();
                let progress = self.progress.clone();
                let hashing = Hashing::Part(ordered.clone());
                AbortOnDrop(tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
                    let out = get_object(&s3, &bucket, &object, Some((first, last))).await?;
                    let rest = Rest {
                        s3: &s3,
                        bucket: &bucket,
                        object: &object,
                        first,
                        last,
                    };
                    let (written, _) =
                        stream_to_file(out.body, rest, Some(file), first, hashing, &progress)
                            .await?;
                    if written != last - first + 1 {
                        return Err(format!(
                            "bytes {first}-{last}: {written} bytes arrived (was the object replaced during the sync?)"
                        ));
                    }
                    Ok::<_, String>(())
                }))
            })
            .buffer_unordered(self.options.concurrency.max(1));
        while let Some(result) = done.next().await {
            result.map_err(|e| fail(e.to_string()))?.map_err(&fail)?;
            // Write back what has arrived now rather than all at the final fsync, without pausing the parts.
            disk::start_write_back(&file);
        }
        drop(done);
        drop(close);
        let sha = hashing
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(format!("cannot hash: {e}")))?;
        compare_checksum(s3_sha.as_deref(), &sha).map_err(&fail)?;
        Ok(sha)
    }
}

fn whole_sha256(hashing: Hashing) -> String {
    match hashing {
        Hashing::Whole(h) => hex::encode(h.finalize()),
        _ => unreachable!("a whole object is hashed as a whole"),
    }
}

struct Fetched {
    body: ByteStream,
    /// S3's full-object SHA-256 (base64), where it has one.
    checksum: Option<String>,
}

async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    object: &RemoteObject,
    range: Option<(u64, u64)>,
) -> Result<Fetched, String> {
    let mut get = s3.get_object().bucket(bucket).key(&object.key);
    if let Some(tag) = &object.e_tag {
        // The bytes must be the ones listed: a replaced object fails instead of mixing versions.
        get = get.if_match(tag);
    }
    get = match range {
        Some((first, last)) => get.range(format!("bytes={first}-{last}")),
        None => get.checksum_mode(ChecksumMode::Enabled),
    };
    let out = get
        .send()
        .await
        .map_err(|e| format!("GetObject: {}", describe_sdk_error(&e)))?;
    let checksum = if range.is_none() {
        full_object_sha256(
            out.checksum_sha256(),
            out.checksum_type().map(|t| t.as_str()),
        )
    } else {
        None
    };
    Ok(Fetched {
        body: out.body,
        checksum,
    })
}

/// A SHA-256 of the whole object: not the composite checksum of a multipart upload (`…-N`, type COMPOSITE).
fn full_object_sha256(sha: Option<&str>, kind: Option<&str>) -> Option<String> {
    let sha = sha?;
    if sha.contains('-') || kind == Some("COMPOSITE") {
        return None;
    }
    Some(sha.to_string())
}

fn compare_checksum(s3_base64: Option<&str>, sha_hex: &str) -> Result<(), String> {
    let Some(b64) = s3_base64 else { return Ok(()) };
    let theirs = aws_smithy_types::base64::decode(b64)
        .map(hex::encode)
        .map_err(|e| format!("S3's SHA-256 checksum {b64:?} is not base64: {e}"))?;
    if theirs != sha_hex {
        return Err(format!(
            "SHA-256 of the bytes written is {sha_hex}, S3's checksum says {theirs}"
        ));
    }
    Ok(())
}

/// How the bytes a stream writes are hashed.
enum Hashing {
    /// The whole object, in one stream.
    Whole(Sha256),
    /// One ranged part of a file hashed in order across its parts.
    Part(Arc<OrderedHasher>),
}

/// Where to read the rest of a body again: bytes `first..=last` of `object` (all of it, or one ranged part).
struct Rest<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    object: &'a RemoteObject,
    first: u64,
    last: u64,
}

impl Rest<'_> {
    fn whole<'a>(
        s3: &'a aws_sdk_s3::Client,
        bucket: &'a str,
        object: &'a RemoteObject,
    ) -> Rest<'a> {
        Rest {
            s3,
            bucket,
            object,
            first: 0,
            last: object.size.saturating_sub(1),
        }
    }

    /// The bytes from the `received`-th on.
    async fn from(&self, received: u64) -> Result<ByteStream, String> {
        let first = (self.first + received).min(self.last);
        Ok(
            get_object(self.s3, self.bucket, self.object, Some((first, self.last)))
                .await?
                .body,
        )
    }
}

/// Ranged re-reads of one body whose stream broke (the SDK retries a call only until its answer's headers).
const BODY_RESUMES: u32 = 3;

/// Writes the body at `offset` in blocks on blocking threads (and hashes each block there); returns the bytes
/// written and the hashing state. With no file it only hashes. When the body's stream breaks, `resume(n)` fetches
/// the rest from its `n`-th byte (a ranged GET, still conditional on the listed ETag), at most [`BODY_RESUMES`] times.
async fn stream_to_file(
    mut body: ByteStream,
    resume: Rest<'_>,
    file: Option<Arc<File>>,
    mut offset: u64,
    mut hashing: Hashing,
    progress: &Progress,
) -> Result<(u64, Hashing), String> {
    // The network's own buffers are written as they are (no copy), a block's worth at a time.
    let mut chunks = Vec::new();
    let mut pending = 0usize;
    let mut total = 0u64;
    let mut resumed = 0;
    loop {
        let chunk = match body.next().await.transpose() {
            Ok(chunk) => chunk,
            Err(e) => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text = format!("{text}: {s}");
                    source = s.source();
                }
                if resumed == BODY_RESUMES {
                    return Err(format!(
                        "reading the body: {text} (after {resumed} ranged re-reads)"
                    ));
                }
                resumed += 1;
                // What arrived is kept (written, or waiting in `chunks`); the rest is read again.
                let received = total + pending as u64;
                tracing::warn!(
                    "reading the body broke after {received} bytes ({text}); reading the rest again"
                );
                body = resume
                    .from(received)
                    .await
                    .map_err(|e| format!("reading the rest of the body again: {e}"))?;
                continue;
            }
        };
        let end = chunk.is_none();
        if let Some(c) = chunk {
            pending += c.len();
            chunks.push(c);
        }
        if pending >= WRITE_BLOCK || (end && pending > 0) {
            let n = pending as u64;
            let f = file.clone();
            let block = std::mem::take(&mut chunks);
            hashing = tokio::task::spawn_blocking(move || {
                let mut at = offset;
                for c in &block {
                    if let Some(f) = &f {
                        f.write_all_at(c, at)
                            .map_err(|e| format!("cannot write: {e}"))?;
                    }
                    at += c.len() as u64;
                }
                match &mut hashing {
                    Hashing::Whole(h) => block.iter().for_each(|c| h.update(c)),
                    Hashing::Part(ordered) => ordered.written(offset, n),
                }
                Ok::<_, String>(hashing)
            })
            .await
            .map_err(|e| e.to_string())??;
            offset += n;
            total += n;
            pending = 0;
            progress.add_bytes(n);
        }
        if end {
            return Ok((total, hashing));
        }
    }
}

/// A spawned task that stops when its handle is dropped (an error elsewhere ends the whole copy).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The local path of a relative `/`-separated path under `root`.
pub fn local_path(root: &Path, rel: &str) -> PathBuf {
    rel.split('/')
        .fold(root.to_path_buf(), |p, part| p.join(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_the_target_cannot_hold_are_refused() {
        for bad in [
            "../evil",
            "a/../../evil",
            "/abs",
            &"n".repeat(300),
            "bad\nname",
            "a/.ferry-tmp-3-x/f",
            ".ferry-manifest.json",
        ] {
            assert!(check_target_path(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(check_target_path("artifacts/weights.bin").is_ok());
        assert!(check_target_path("MLmodel").is_ok());
    }

    #[test]
    fn listed_keys_are_url_decoded() {
        assert_eq!(url_decode("a%2Fb+c%01%C3%A9").unwrap(), "a/b c\u{1}é");
        assert!(url_decode("bad%2").is_err());
        assert!(url_decode("%FF").is_err());
    }

    #[test]
    fn composite_checksums_are_not_compared() {
        assert_eq!(full_object_sha256(Some("abc-3"), None), None);
        assert_eq!(full_object_sha256(Some("abc"), Some("COMPOSITE")), None);
        assert_eq!(
            full_object_sha256(Some("abc"), Some("FULL_OBJECT")),
            Some("abc".into())
        );
    }

    #[test]
    fn a_checksum_that_differs_is_an_error_naming_both() {
        let sha = hex::encode(Sha256::digest(b"abc"));
        let b64 = aws_smithy_types::base64::encode(Sha256::digest(b"abc"));
        assert!(compare_checksum(Some(&b64), &sha).is_ok());
        assert!(compare_checksum(None, &sha).is_ok());
        let other = aws_smithy_types::base64::encode(Sha256::digest(b"abd"));
        assert!(
            compare_checksum(Some(&other), &sha)
                .unwrap_err()
                .contains(&sha)
        );
    }

    #[test]
    fn sources_are_normalised_and_checked() {
        assert_eq!(Source::parse("s3://b/p/q/").unwrap().uri(), "s3://b/p/q");
        assert!(Source::parse("s3://b/p/../q").is_err());
        assert!(Source::parse("/tmp/x").is_err());
    }
}
