//! `ferry-bench-s3-server --port P --access-key K --secret-key S ROOT`: s3s-fs's S3 API over the folder ROOT on
//! 127.0.0.1, with a GetObject body of its own. s3s-fs streams bodies in 4 KiB reads, each a trip through tokio's
//! blocking pool; serving 1 GiB cost it more CPU than any client it served, so the benchmark measured the server.
//! Here a body is 1 MiB `pread`s straight into the buffers that are sent (tokio's file reader would copy each one
//! once more), and those buffers are reused from the heap. Everything else is s3s-fs's own code.
use std::path::{Path, PathBuf};

use s3s::dto::*;
use s3s::dto::{GetObjectInput, GetObjectOutput, StreamingBlob};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

const READ_SIZE: usize = 1 << 20;

struct FastGet {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
}

/// `impl S3 for FastGet`: each listed operation forwarded to s3s-fs, plus the items given (the attribute has to be
/// inside the macro, so that it sees the methods the macro writes).
macro_rules! impl_s3 {
    (forward { $($op:ident: $input:ty => $output:ty),* $(,)? } $($item:item)*) => {
        #[async_trait::async_trait]
        impl S3 for FastGet {
            $(async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                self.inner.$op(req).await
            })*
            $($item)*
        }
    };
}

impl_s3! {
    forward {
        list_buckets: ListBucketsInput => ListBucketsOutput,
        create_bucket: CreateBucketInput => CreateBucketOutput,
        head_bucket: HeadBucketInput => HeadBucketOutput,
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
        list_objects: ListObjectsInput => ListObjectsOutput,
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
        head_object: HeadObjectInput => HeadObjectOutput,
        put_object: PutObjectInput => PutObjectOutput,
        delete_object: DeleteObjectInput => DeleteObjectOutput,
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
        upload_part: UploadPartInput => UploadPartOutput,
        complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let path = object_path(&self.root, &req.input.bucket, &req.input.key)?;
        // s3s-fs answers everything but the body (range checks, ETag, checksums, metadata); the body is replaced.
        let mut resp = self.inner.get_object(req).await?;
        let len = resp.output.content_length.unwrap_or(0) as u64;
        let first = match resp.output.content_range.as_deref() {
            Some(range) => range_start(range).ok_or_else(|| s3_error!(InternalError, "content range {range}"))?,
            None => 0,
        };
        let file = std::fs::File::open(&path).map_err(|e| s3_error!(e, NoSuchKey))?;
        resp.output.body = Some(StreamingBlob::wrap(file_body(file, first, len)));
        Ok(resp)
    }
}

/// `len` bytes of `file` from `first`, in reads of READ_SIZE on the blocking pool, each straight into the buffer
/// that is sent (tokio's own file reader reads into a buffer of its own and copies from it).
fn file_body(
    file: File,
    first: u64,
    len: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + Sync + 'static {
    futures::stream::try_unfold(
        (Arc::new(file), first, len),
        |(file, at, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let n = left.min(READ_SIZE as u64) as usize;
            let reader = file.clone();
            let chunk = tokio::task::spawn_blocking(move || read_chunk(&reader, at, n))
                .await
                .map_err(io::Error::other)??;
            Ok(Some((chunk, (file, at + n as u64, left - n as u64))))
        },
    )
}

/// Exactly `n` bytes at `at`: an object shorter than its listing is an error, not a short body.
fn read_chunk(file: &File, at: u64, n: usize) -> io::Result<Bytes> {
    let mut buf: Vec<u8> = Vec::with_capacity(n);
    while buf.len() < n {
        let offset = libc::off_t::try_from(at + buf.len() as u64).map_err(io::Error::other)?;
        let spare = buf.spare_capacity_mut();
        // SAFETY: the kernel writes at most `spare.len()` bytes into the spare capacity, which `buf` owns; only
        // the bytes it reports written are then counted as initialised.
        let got = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                offset,
            )
        };
        match got {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "object file shorter than its length",
                ));
            }
            g if g < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            // SAFETY: the kernel initialised these `got` bytes just past the current length.
            g => unsafe { buf.set_len(buf.len() + g as usize) },
        }
    }
    Ok(Bytes::from(buf))
}

/// `bytes 10-20/100` → 10.
fn range_start(content_range: &str) -> Option<u64> {
    content_range
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// The file s3s-fs keeps the object in: ROOT/bucket/key, refusing keys that would leave ROOT.
fn object_path(root: &Path, bucket: &str, key: &str) -> S3Result<PathBuf> {
    if [bucket, key]
        .iter()
        .any(|s| s.split('/').any(|c| c == ".." || c == "."))
    {
        return Err(s3_error!(InvalidArgument, "path component . or .."));
    }
    Ok(root.join(bucket).join(key))
}

fn usage() -> ! {
    eprintln!("usage: ferry-bench-s3-server --port P --access-key K --secret-key S ROOT");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut port, mut key, mut secret, mut root) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse::<u16>().ok()),
            "--access-key" => key = args.next(),
            "--secret-key" => secret = args.next(),
            _ if root.is_none() && !arg.starts_with('-') => root = Some(PathBuf::from(arg)),
            _ => usage(),
        }
    }
    let (Some(port), Some(key), Some(secret), Some(root)) = (port, key, secret, root) else {
        usage()
    };
    // Body buffers come from the heap and go back to it: with glibc's defaults every 1 MiB buffer is a fresh mmap,
    // and the page faults that fill it cost the server more than the reads themselves.
    // SAFETY: mallopt only changes glibc's allocation thresholds; nothing has been allocated on other threads yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
    let root = std::fs::canonicalize(&root)?;
    let fs = FastGet {
        inner: s3s_fs::FileSystem::new(&root).map_err(|e| format!("{}: {e:?}", root.display()))?,
        root,
    };
    let service = {
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(key, secret));
        b.build()
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    loop {
        let (socket, _) = listener.accept().await?;
        let conn = http
            .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
