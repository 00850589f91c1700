//! The artifact store on S3-compatible object storage (`s3://bucket/prefix`),
//! through the `object_store` crate.
//!
//! Object storage has no rename and no lock, so three facts carry the
//! protocol instead:
//! - a put is atomic: an object is whole or absent, never partial;
//! - a put with `If-None-Match: *` creates a name or fails, so artifacts
//!   and sidecars are never overwritten;
//! - a put with `If-Match: <etag>` replaces an object only if nobody
//!   replaced it since it was read: the manifest's compare-and-swap.
//!
//! A large artifact is not held in memory: it is uploaded in parts to a
//! temporary name first, then copied server-side to its final name with
//! `If-None-Match: *` (a multipart copy, `S3CopyIfNotExists::Multipart`).
//!
//! Connection settings come from the usual AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` for a plain-HTTP server).

use std::future::Future;
use std::io;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

/// Artifacts from this size on are uploaded in parts, then copied into
/// place; smaller ones go in one conditional put from memory.
/// `SWINGML_S3_PART_UPLOAD_BYTES` overrides it.
const DEFAULT_PART_UPLOAD_BYTES: u64 = 32 << 20;
pub const PART_UPLOAD_BYTES_VAR: &str = "SWINGML_S3_PART_UPLOAD_BYTES";
/// The size of one uploaded part (S3: at least 5 MiB but the last).
const PART_BYTES: usize = 8 << 20;

/// A bucket and the key prefix the store lives under.
#[derive(Debug)]
pub struct Bucket {
    client: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    /// What the probe of conditional writes found (once per process).
    conditions: OnceLock<Result<(), String>>,
}

/// The folder of one watchlist in a bucket.
#[derive(Debug, Clone)]
pub struct Folder {
    bucket: Arc<Bucket>,
    prefix: String,
}

/// The version of an object a writer read: what a conditional put names.
#[derive(Debug, Clone)]
pub struct Version(UpdateVersion);

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.0.e_tag == other.0.e_tag && self.0.version == other.0.version
    }
}

/// How a put treats an object already under the name.
pub enum Mode {
    Overwrite,
    Create,
    Replace(Version),
}

/// What a conditional put did.
pub enum Put {
    Done(Version),
    /// `Create` found the name taken, or `Replace` found a newer version.
    Refused,
}

impl Bucket {
    /// `s3://bucket` or `s3://bucket/some/prefix`.
    pub fn open(url: &str) -> Result<Bucket, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url}: not an s3:// location"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url}: no bucket name (s3://BUCKET/PREFIX)"));
        }
        let prefix = prefix.trim_matches('/').to_string();
        ObjectPath::parse(&prefix).map_err(|e| format!("{url}: {e}"))?;
        let client = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_copy_if_not_exists(object_store::aws::S3CopyIfNotExists::Multipart)
            .build()
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(Bucket {
            client: Arc::new(client),
            bucket: bucket.to_string(),
            prefix,
            conditions: OnceLock::new(),
        })
    }

    pub fn url(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    pub fn folder(self: &Arc<Bucket>, name: &str) -> Folder {
        let prefix = match self.prefix.as_str() {
            "" => name.to_string(),
            prefix => format!("{prefix}/{name}"),
        };
        Folder {
            bucket: Arc::clone(self),
            prefix,
        }
    }

    /// The folders directly under the prefix.
    pub fn folders(&self) -> io::Result<Vec<String>> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let client = Arc::clone(&self.client);
        let listed = block(async move { client.list_with_delimiter(prefix.as_ref()).await })?.map_err(to_io)?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }
}

impl Folder {
    /// Whether the server honours the conditional writes every commit and
    /// lease relies on (checked once per process, on a throw-away object):
    /// a create-if-absent must land once and be refused the second time,
    /// and a replace `If-Match` a made-up ETag must be refused. A server
    /// that ignores them would let the last writer win: two commits of one
    /// version, two lease holders.
    pub fn probe_conditions(&self) -> io::Result<Result<(), String>> {
        if let Some(found) = self.bucket.conditions.get() {
            return Ok(found.clone());
        }
        let name = format!(".probe-conditions-{}", super::manifest::new_commit_id());
        let found = self.probe_on(&name);
        if let Err(err) = self.delete(&name) {
            tracing::warn!("could not remove the probe object {}: {err}", self.location(&name));
        }
        // Only a definite answer is kept; a network error is tried again
        // at the next write.
        let found = found?;
        Ok(self.bucket.conditions.get_or_init(|| found).clone())
    }

    fn probe_on(&self, name: &str) -> io::Result<Result<(), String>> {
        // The name is this probe's own: a refusal here is our first try
        // landing before a lost reply (the retry was refused), not a miss.
        let _ = self.put(name, b"1".to_vec(), Mode::Create)?;
        if !self.exists(name)? {
            return Ok(Err(
                "a create-if-absent (If-None-Match: *) of a new object did not land".into(),
            ));
        }
        if matches!(self.put(name, b"2".to_vec(), Mode::Create)?, Put::Done(_)) {
            return Ok(Err(
                "a second create-if-absent (If-None-Match: *) of the same object was accepted".into(),
            ));
        }
        let made_up = Version(UpdateVersion {
            e_tag: Some("\"swingml-probe-not-an-etag\"".into()),
            version: None,
        });
        if matches!(self.put(name, b"3".to_vec(), Mode::Replace(made_up))?, Put::Done(_)) {
            return Ok(Err("a replace If-Match a made-up ETag was accepted".into()));
        }
        Ok(Ok(()))
    }

    fn path(&self, name: &str) -> io::Result<ObjectPath> {
        // Lease names keep their `.locks/` folder; every other name is a
        // plain file name of the watchlist's folder.
        super::names::check_name(name.strip_prefix(".locks/").unwrap_or(name))?;
        ObjectPath::parse(format!("{}/{name}", self.prefix)).map_err(to_io)
    }

    pub fn location(&self, name: &str) -> String {
        format!("s3://{}/{}/{name}", self.bucket.bucket, self.prefix)
    }

    /// The object's bytes and version, `None` when there is none.
    pub fn get(&self, name: &str) -> io::Result<Option<(Vec<u8>, Version)>> {
        let path = self.path(name)?;
        let client = Arc::clone(&self.bucket.client);
        let got = block(async move {
            let result = client.get(&path).await?;
            let version = UpdateVersion {
                e_tag: result.meta.e_tag.clone(),
                version: result.meta.version.clone(),
            };
            Ok::<_, object_store::Error>((result.bytes().await?, version))
        })?;
        match got {
            Ok((bytes, version)) => Ok(Some((bytes.to_vec(), Version(version)))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_io(e)),
        }
    }

    pub fn put(&self, name: &str, bytes: impl Into<PutPayload>, mode: Mode) -> io::Result<Put> {
        self.put_limited(name, bytes.into(), mode, None)
    }

    /// Hand an object to `each` in chunks of at most [`PART_BYTES`], in
    /// order (ranged reads: an artifact never changes once created), so a
    /// reader holds one chunk, not the object. Its size, `None` if absent.
    pub fn for_each_chunk(&self, name: &str, mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<Option<u64>> {
        let path = self.path(name)?;
        let client = Arc::clone(&self.bucket.client);
        let head_path = path.clone();
        let size = match block(async move { client.head(&head_path).await })? {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(to_io(e)),
        };
        let mut start = 0u64;
        while start < size {
            let end = (start + PART_BYTES as u64).min(size);
            let client = Arc::clone(&self.bucket.client);
            let range_path = path.clone();
            let chunk = block(async move { client.get_range(&range_path, start..end).await })?.map_err(to_io)?;
            each(&chunk)?;
            start = end;
        }
        Ok(Some(size))
    }

    /// [`put`](Self::put), given up (an error) after `limit`.
    pub fn put_within(&self, name: &str, bytes: impl Into<PutPayload>, mode: Mode, limit: Duration) -> io::Result<Put> {
        self.put_limited(name, bytes.into(), mode, Some(limit))
    }

    fn put_limited(&self, name: &str, payload: PutPayload, mode: Mode, limit: Option<Duration>) -> io::Result<Put> {
        let path = self.path(name)?;
        let client = Arc::clone(&self.bucket.client);
        let options = PutOptions::from(match mode {
            Mode::Overwrite => PutMode::Overwrite,
            Mode::Create => PutMode::Create,
            Mode::Replace(Version(version)) => PutMode::Update(version),
        });
        let put = block(async move {
            let put = client.put_opts(&path, payload, options);
            match limit {
                Some(limit) => tokio::time::timeout(limit, put).await.ok(),
                None => Some(put.await),
            }
        })?;
        match put {
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {:?}", limit.unwrap_or_default()),
            )),
            Some(Ok(done)) => Ok(Put::Done(Version(UpdateVersion::from(done)))),
            Some(Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. })) => {
                Ok(Put::Refused)
            }
            Some(Err(e)) => Err(to_io(e)),
        }
    }

    /// Upload a local file in parts, its memory bounded by a few parts,
    /// unconditionally: `name` is a temporary name only this writer uses.
    pub fn upload_file(&self, name: &str, file: &std::path::Path) -> io::Result<()> {
        let path = self.path(name)?;
        let client = Arc::clone(&self.bucket.client);
        let mut reader = std::fs::File::open(file)?;
        block(async move {
            let upload = client.put_multipart(&path).await.map_err(to_io)?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buffer = vec![0u8; PART_BYTES];
            let sent: io::Result<()> = async {
                loop {
                    writer.wait_for_capacity(2).await.map_err(to_io)?;
                    let n = io::Read::read(&mut reader, &mut buffer)?;
                    if n == 0 {
                        return Ok(());
                    }
                    writer.write(&buffer[..n]);
                }
            }
            .await;
            match sent {
                Ok(()) => writer.finish().await.map(|_| ()).map_err(to_io),
                Err(err) => {
                    // Parts already sent are discarded with the upload.
                    let _ = writer.abort().await;
                    Err(err)
                }
            }
        })?
    }

    /// Copy `from` to a new name server-side; `false` when `to` is taken.
    pub fn copy_new(&self, from: &str, to: &str) -> io::Result<bool> {
        let (from, to) = (self.path(from)?, self.path(to)?);
        let client = Arc::clone(&self.bucket.client);
        match block(async move { client.copy_if_not_exists(&from, &to).await })? {
            Ok(()) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(to_io(e)),
        }
    }

    pub fn exists(&self, name: &str) -> io::Result<bool> {
        let path = self.path(name)?;
        let client = Arc::clone(&self.bucket.client);
        match block(async move { client.head(&path).await })? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(to_io(e)),
        }
    }

    /// Remove an object; one already gone is fine.
    pub fn delete(&self, name: &str) -> io::Result<()> {
        let path = self.path(name)?;
        let client = Arc::clone(&self.bucket.client);
        match block(async move { client.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }

    /// The names of the objects directly in the folder.
    pub fn names(&self) -> io::Result<Vec<String>> {
        let prefix = ObjectPath::parse(&self.prefix).map_err(to_io)?;
        let client = Arc::clone(&self.bucket.client);
        let listed = block(async move { client.list_with_delimiter(Some(&prefix)).await })?.map_err(to_io)?;
        Ok(listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect())
    }
}

/// Whether an artifact of `bytes` goes up in parts (see [`upload_file`](Folder::upload_file)).
pub fn uploads_in_parts(bytes: u64) -> bool {
    let threshold = std::env::var(PART_UPLOAD_BYTES_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PART_UPLOAD_BYTES);
    bytes >= threshold
}

fn to_io(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

/// Run a storage request to its end from synchronous code, which may
/// itself run inside the jobs' tokio runtime (where a nested `block_on`
/// panics): the request runs on the store's own runtime and this thread
/// waits for its answer.
fn block<T: Send + 'static>(request: impl Future<Output = T> + Send + 'static) -> io::Result<T> {
    static RUNTIME: OnceLock<io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("swingml-s3")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
    let (answer, answered) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = answer.send(request.await);
    });
    answered
        .recv()
        .map_err(|_| io::Error::other("a storage request ended without an answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_into_bucket_and_prefix() {
        let bucket = Bucket::open("s3://my-bucket/team/swingml/").unwrap();
        assert_eq!(bucket.url(), "s3://my-bucket/team/swingml");
        let folder = Arc::new(bucket).folder("us");
        assert_eq!(
            folder.location("manifest.jsonl"),
            "s3://my-bucket/team/swingml/us/manifest.jsonl"
        );
        assert_eq!(Bucket::open("s3://b").unwrap().url(), "s3://b");
        assert!(Bucket::open("s3:///prefix").unwrap_err().contains("no bucket"));
    }
}
