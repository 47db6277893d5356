//! `ferry-bench-s3-server --port P --access-key K --secret-key S ROOT`: s3s-fs's S3 API over the folder ROOT on
//! 127.0.0.1, with a GetObject body of its own. s3s-fs streams bodies in 4 KiB reads, each a trip through tokio's
//! blocking pool; serving 1 GiB cost it more CPU than any client it served, so the benchmark measured the server.
//! Here a body is sent straight from the page cache, in 1 MiB slices of a mapping of the object's file: the server
//! copies each byte once, into the socket. Everything else is s3s-fs's own code.
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::Stream;
use s3s::dto::*;
use s3s::dto::{GetObjectInput, GetObjectOutput, StreamingBlob};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

/// Size of the slices of a mapping a body is sent in.
const SLICE_SIZE: usize = 1 << 20;

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
        let file = File::open(&path).map_err(|e| s3_error!(e, NoSuchKey))?;
        resp.output.body = Some(StreamingBlob::wrap(file_body(file, first, len)?));
        Ok(resp)
    }
}

/// `len` bytes of `file` from `first`, sent straight from the page cache: the range is mapped and sent in 1 MiB
/// slices of the mapping, so the server copies each byte once (into the socket) rather than twice.
fn file_body(
    file: File,
    first: u64,
    len: u64,
) -> S3Result<impl Stream<Item = io::Result<Bytes>> + Send + Sync + 'static> {
    let mapped = if len == 0 {
        Bytes::new()
    } else {
        Bytes::from_owner(Mapping::new(&file, first, len).map_err(|e| s3_error!(e, InternalError))?)
    };
    let chunks: Vec<io::Result<Bytes>> = (0..mapped.len())
        .step_by(SLICE_SIZE)
        .map(|at| Ok(mapped.slice(at..(at + SLICE_SIZE).min(mapped.len()))))
        .collect();
    Ok(futures::stream::iter(chunks))
}

/// A read-only mapping of part of a file, unmapped when the last slice sent from it is dropped. The benchmark never
/// changes a file while it is served (a file truncated under a mapping would fault the server).
struct Mapping {
    base: *mut libc::c_void,
    mapped: usize,
    skip: usize,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; it is unmapped once, on drop.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(file: &File, first: u64, len: u64) -> io::Result<Mapping> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        let start = first - first % page;
        let skip = (first - start) as usize;
        let mapped = skip + usize::try_from(len).map_err(io::Error::other)?;
        let offset = libc::off_t::try_from(start).map_err(io::Error::other)?;
        // SAFETY: a fresh read-only shared mapping of an open file; nothing else refers to that address range.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            base,
            mapped,
            skip,
            len: len as usize,
        })
    }
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `skip + len` bytes are mapped readable at `base` for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.base.cast::<u8>().add(self.skip), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped, once; no slice of it outlives `self`.
        unsafe { libc::munmap(self.base, self.mapped) };
    }
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
