//! `ferry-bench-s3-server --port P --access-key K --secret-key S ROOT`: s3s-fs's S3 API over the folder ROOT on
//! 127.0.0.1, answering GetObject with 1 MiB reads. s3s-fs streams bodies in 4 KiB reads, each a trip through
//! tokio's blocking pool; serving 1 GiB cost it more CPU than any client it served, so the benchmark measured the
//! server. Everything else is s3s-fs's own code.
use std::path::{Path, PathBuf};

use s3s::dto::*;
use s3s::dto::{GetObjectInput, GetObjectOutput, StreamingBlob};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

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
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| s3_error!(e, NoSuchKey))?;
        file.seek(std::io::SeekFrom::Start(first)).await.map_err(|e| s3_error!(e, InternalError))?;
        let body = tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_SIZE);
        resp.output.body = Some(StreamingBlob::wrap(body));
        Ok(resp)
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
