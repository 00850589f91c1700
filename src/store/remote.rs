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

use super::lock::{Holder, parse_holder};

/// How long a job's lease lives without renewal; a killed job blocks the
/// next one at most this long. `SWINGML_S3_LEASE_SECS` overrides it.
const DEFAULT_LEASE_SECS: u64 = 60;
pub const LEASE_SECS_VAR: &str = "SWINGML_S3_LEASE_SECS";

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

/// A job lock on object storage: an object created only if absent, renewed
/// by a thread while the job runs, released (rewritten as expired, only if
/// it is still ours) when it ends. An expired lease (its holder was killed
/// or stalled) is taken over by a conditional replace, so two jobs never
/// both take it.
///
/// The lease fences: its [`Fence`] knows until when the lease is surely
/// ours — the moment the last confirmed write (take or renewal) was sent,
/// plus the lease's life, less a quarter of it for the hosts' clocks — and
/// the store refuses to commit after that, or once a renewal found the
/// lease taken over. A renewal request gives up after a quarter of the
/// lease, so one slow request cannot outlive it.
pub struct Lease {
    folder: Folder,
    name: String,
    fence: Arc<Fence>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<Option<(Version, String)>>>,
}

/// Until when a lease is surely its holder's.
#[derive(Debug)]
pub struct Fence {
    location: String,
    state: std::sync::Mutex<FenceState>,
}

#[derive(Debug, Clone, Copy)]
struct FenceState {
    valid_until: std::time::Instant,
    taken_over: bool,
    /// The lease was released: the fence no longer applies.
    released: bool,
}

impl Fence {
    fn confirm(&self, sent: std::time::Instant, ttl: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.valid_until = state.valid_until.max(sent + ttl - ttl / 4);
    }

    fn lose(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).taken_over = true;
    }

    fn release(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).released = true;
    }

    /// What is left of the lease, surely (`None` once released).
    pub fn remaining(&self) -> Option<Duration> {
        let state = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        (!state.released).then(|| state.valid_until.saturating_duration_since(std::time::Instant::now()))
    }

    /// `Err(why)` once the lease may be someone else's.
    pub fn check(&self) -> Result<(), String> {
        let state = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.released {
            return Ok(());
        }
        if state.taken_over {
            return Err(format!(
                "the job's lease {} was taken over by another job",
                self.location
            ));
        }
        let now = std::time::Instant::now();
        if now > state.valid_until {
            return Err(format!(
                "the job's lease {} has not been confirmed for too long (renewal late or failing; lapsed {:.1} s ago)",
                self.location,
                (now - state.valid_until).as_secs_f64()
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", self.folder.location(&self.name))
    }
}

impl Lease {
    /// Take the lease if free or expired; otherwise `Ok(Err(holder))`.
    pub fn try_acquire(folder: &Folder, name: &str, since: &str) -> io::Result<Result<Lease, Option<Holder>>> {
        let ttl = lease_duration();
        // A few rounds: a lease may vanish or be taken over between the reads.
        for _ in 0..3 {
            let body = lease_text(since, ttl);
            let sent = std::time::Instant::now();
            match folder.put(name, body.clone(), Mode::Create)? {
                Put::Done(version) => return Ok(Ok(Lease::hold(folder, name, since, version, body, sent))),
                // A create retried after a lost reply is refused by itself.
                Put::Refused => {
                    if let Some(version) = ours(folder, name, &body)? {
                        return Ok(Ok(Lease::hold(folder, name, since, version, body, sent)));
                    }
                }
            }
            let Some((bytes, version)) = folder.get(name)? else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            if !expired(&text) {
                return Ok(Err(parse_holder(&text)));
            }
            tracing::warn!(
                "{}: taking over an expired lease ({})",
                folder.location(name),
                text.trim()
            );
            let sent = std::time::Instant::now();
            match folder.put(name, body.clone(), Mode::Replace(version))? {
                Put::Done(version) => return Ok(Ok(Lease::hold(folder, name, since, version, body, sent))),
                Put::Refused => {
                    if let Some(version) = ours(folder, name, &body)? {
                        return Ok(Ok(Lease::hold(folder, name, since, version, body, sent)));
                    }
                }
            }
        }
        Ok(Err(None))
    }

    /// The lease's fence, for the store's commits to check.
    pub fn fence(&self) -> Arc<Fence> {
        Arc::clone(&self.fence)
    }

    fn hold(
        folder: &Folder,
        name: &str,
        since: &str,
        version: Version,
        body: String,
        sent: std::time::Instant,
    ) -> Lease {
        let ttl = lease_duration();
        let fence = Arc::new(Fence {
            location: folder.location(name),
            state: std::sync::Mutex::new(FenceState {
                valid_until: sent,
                taken_over: false,
                released: false,
            }),
        });
        fence.confirm(sent, ttl);
        let (stop, stopped) = mpsc::channel::<()>();
        let renew_folder = folder.clone();
        let renew_name = name.to_string();
        let renew_fence = Arc::clone(&fence);
        let since = since.to_string();
        // The renewer returns the lease's version and body while it is ours.
        let renewer = std::thread::spawn(move || {
            let (mut version, mut body) = (version, body);
            loop {
                match stopped.recv_timeout(ttl / 3) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return Some((version, body)),
                }
                let next = lease_text(&since, ttl);
                let sent = std::time::Instant::now();
                let put = renew_folder.put_within(&renew_name, next.clone(), Mode::Replace(version.clone()), ttl / 4);
                let landed = match put {
                    Ok(Put::Done(v)) => Some(v),
                    // A renewal applied but answered with an error, then
                    // refused on retry, is still ours: the body says so.
                    Ok(Put::Refused) => match ours(&renew_folder, &renew_name, &next) {
                        Ok(Some(v)) => Some(v),
                        Ok(None) => {
                            renew_fence.lose();
                            tracing::error!(
                                "{}: the job's lease was taken over (renewal came too late); this job commits nothing more",
                                renew_folder.location(&renew_name)
                            );
                            return None;
                        }
                        Err(err) => {
                            tracing::warn!("{}: lease renewal failed: {err}", renew_folder.location(&renew_name));
                            None
                        }
                    },
                    // A passing network error or a slow answer: the next round tries again.
                    Err(err) => {
                        tracing::warn!("{}: lease renewal failed: {err}", renew_folder.location(&renew_name));
                        None
                    }
                };
                if let Some(v) = landed {
                    renew_fence.confirm(sent, ttl);
                    (version, body) = (v, next);
                }
            }
        });
        Lease {
            folder: folder.clone(),
            name: name.to_string(),
            fence,
            stop: Some(stop),
            renewer: Some(renewer),
        }
    }
}

/// The version of the lease object when it is held by the holder `body`
/// describes (this process, this take): every field but the expiry alike,
/// so a renewal that timed out and landed later is still recognised.
fn ours(folder: &Folder, name: &str, body: &str) -> io::Result<Option<Version>> {
    let holder = |text: &str| -> Vec<String> {
        text.split_whitespace()
            .filter(|field| !field.starts_with("expires="))
            .map(str::to_string)
            .collect()
    };
    Ok(folder
        .get(name)?
        .filter(|(bytes, _)| holder(&String::from_utf8_lossy(bytes)) == holder(body))
        .map(|(_, version)| version))
}

impl Drop for Lease {
    /// Release: rewrite the lease as expired, only if it is still ours (a
    /// conditional replace: a job that lost it never frees the new holder's).
    fn drop(&mut self) {
        drop(self.stop.take());
        self.fence.release();
        let held = self.renewer.take().and_then(|r| r.join().ok().flatten());
        let Some((version, body)) = held else {
            return;
        };
        let released = body.replace("expires=", "released=") + "expires=1970-01-01T00:00:00.000Z\n";
        match self.folder.put(&self.name, released, Mode::Replace(version)) {
            Ok(Put::Done(_)) => {}
            Ok(Put::Refused) => tracing::warn!(
                "{}: the lease was no longer ours at release; left as it is",
                self.folder.location(&self.name)
            ),
            Err(err) => tracing::warn!(
                "{}: could not release the lease (it expires by itself): {err}",
                self.folder.location(&self.name)
            ),
        }
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

fn lease_duration() -> Duration {
    let secs = std::env::var(LEASE_SECS_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LEASE_SECS);
    // A day at most: a larger value would overflow the expiry stamp (and a
    // lease that long would block the next job for as long).
    Duration::from_secs(secs.min(MAX_LEASE_SECS))
}

const MAX_LEASE_SECS: u64 = 86_400;

fn lease_text(since: &str, ttl: Duration) -> String {
    let expires = chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    let pid = std::process::id();
    format!(
        "pid={pid} since={since} host={} boot={} pidns={} start={} expires={}\n",
        host_name(),
        boot_id().unwrap_or_default(),
        pid_namespace().unwrap_or_default(),
        start_time(pid).unwrap_or_default(),
        expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// Whether no process `pid` exists (signal 0 checks without sending).
fn process_absent(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let answer = unsafe { libc::kill(pid, 0) };
    answer != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// This boot of the kernel (a cloned VM or a rebooted host has another).
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|i| !i.is_empty())
}

/// The pid namespace this process lives in (containers sharing a host
/// name have their own).
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_string_lossy();
    text.strip_prefix("pid:[")?.strip_suffix(']').map(str::to_string)
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// /proc/PID/stat): a recycled pid has another.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19).map(str::to_string)
}

/// A lease whose expiry passed, one whose holder is surely gone (a killed
/// cron job does not block the next one on the same machine), or one that
/// cannot be read (a lease is only ever written whole, so that is a
/// hand-made object).
///
/// "Surely gone" needs the same host, the same boot, the same pid
/// namespace and a pid that is either absent or a process started at
/// another time: a host name and a pid alone judge a live holder dead in a
/// container with the host's name, on a cloned VM, or under `hidepid`. A
/// lease that lacks any of them (older leases) waits for its expiry.
fn expired(text: &str) -> bool {
    let field = |key: &str| {
        text.split_whitespace()
            .find_map(|part| part.strip_prefix(key))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let expires = field("expires=").and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok());
    let here = field("host=").is_some_and(|h| h == host_name())
        && field("boot=").is_some_and(|b| Some(b) == boot_id())
        && field("pidns=").is_some_and(|n| Some(n) == pid_namespace());
    let holder_gone = here
        && field("start=")
            .zip(field("pid=").and_then(|p| p.parse::<u32>().ok()))
            .is_some_and(|(start, pid)| {
                // No such process (kill(pid, 0) says ESRCH; EPERM is another
                // user's live process, which `hidepid` hides from /proc), or
                // a recycled pid (another start time).
                process_absent(pid) || start_time(pid).is_some_and(|now| now != start)
            });
    holder_gone || expires.is_none_or(|t| t < chrono::Utc::now())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
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

    #[test]
    fn a_lease_expires_at_its_stamp() {
        let live = lease_text("2026-01-01T00:00:00Z", Duration::from_secs(60));
        assert!(!expired(&live));
        let holder = parse_holder(&live).unwrap();
        assert_eq!(holder.pid, std::process::id());
        assert!(expired("pid=1 since=x expires=2020-01-01T00:00:00.000Z"));
        assert!(expired("garbage"));
        // Held by a process of this host, boot and pid namespace that is
        // gone: free before expiry.
        let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        let here = format!(
            "host={} boot={} pidns={}",
            host_name(),
            boot_id().unwrap(),
            pid_namespace().unwrap()
        );
        assert!(expired(&format!("pid=4294967 since=x {here} start=1 expires={later}")));
        // This very process, with its own start time: alive.
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(!expired(&format!(
            "pid={me} since=x {here} start={start} expires={later}"
        )));
        // The same pid started at another time (recycled): gone.
        assert!(expired(&format!(
            "pid={me} since=x {here} start=1{start} expires={later}"
        )));
        // Another boot (a cloned VM), another pid namespace (a container
        // with the host's name), or an old lease without them: expiry only.
        let host = host_name();
        for other in [
            format!("host={host} boot=other pidns={} start=1", pid_namespace().unwrap()),
            format!("host={host} boot={} pidns=1 start=1", boot_id().unwrap()),
            format!("host={host}"),
        ] {
            assert!(
                !expired(&format!("pid=4294967 since=x {other} expires={later}")),
                "{other}"
            );
        }
        // The same pid on another host: only its expiry counts.
        assert!(!expired(&format!("pid=4294967 since=x host=elsewhere expires={later}")));
    }
}
