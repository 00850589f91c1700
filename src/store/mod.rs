//! The artifact store: every output of every job, atomic and auditable.
//!
//! Layout: `<root>/<watchlist>/` holds the artifacts, a sidecar
//! `<name>.meta.json` beside each, `manifest.jsonl` (the commit log),
//! `production.json` (the live models) and `.locks/` (job locks).
//!
//! Protocol of one write ([`WatchlistStore::write`]):
//! 1. the content goes to a temporary file in the folder, fsync'd;
//! 2. under the manifest lock the version is allocated, the file renamed to
//!    its final name and the folder fsync'd;
//! 3. the sidecar is written the same atomic way;
//! 4. the manifest line is appended and fsync'd — the commit point.
//!
//! A crash before 4 leaves an orphan (a complete file without a manifest
//! line) that `verify` lists; it never leaves a partial file under a final
//! name, nor a manifest line without its file. Nothing else in the code
//! writes under the root.
//!
//! On object storage (`s3://bucket/prefix`, [`remote`]) the same protocol
//! runs with conditional puts instead of renames and locks: the content is
//! staged in a local temporary file, then the artifact and its sidecar are
//! created under names no object has (`If-None-Match: *`), and the commit
//! point is the manifest replaced with one more line `If-Match` the version
//! the writer read. A writer that loses that race removes its two objects,
//! reads the manifest again, allocates the version again and retries, so
//! several writers on one manifest never lose a line nor share a version.
//! Job locks are leases (see [`lease::Lease`]).

pub mod atomic;
mod commit;
pub mod lease;
pub mod lock;
pub mod manifest;
pub mod meta;
mod names;
mod place;
mod pointer;
pub mod remote;
pub mod repair;
pub mod verify;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::atomic::{HashingWriter, TempFile};
use self::lock::FileLock;
pub use self::manifest::{
    ArtifactRecord, ArtifactRef, DecisionRecord, Manifest, ManifestEntry, PointerChange, ProductionPointer,
};
pub use self::meta::{ArtifactMeta, InputRef, ParquetInfo};
use self::place::{CommitGuard, ManifestRead, Place};
use crate::symbols::validate_watchlist;

pub const MANIFEST: &str = "manifest.jsonl";
pub const POINTER: &str = "production.json";
const MANIFEST_LOCK: &str = ".locks/manifest.lock";
const META_SUFFIX: &str = ".meta.json";

/// The artifact kinds a production pointer names.
pub const POINTER_KINDS: [&str; 4] = ["model_online", "model_batch", "transformer_bundle", "feature_config"];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    InvalidWatchlist(#[from] crate::error::UsageError),
    #[error("already running: {job} for {watchlist} since {since} (pid {pid}{on_host})")]
    AlreadyRunning {
        job: String,
        watchlist: String,
        since: String,
        pid: u32,
        /// " on HOST" for a lease on shared storage, else empty.
        on_host: String,
    },
    #[error("already running: {job} for {watchlist} (holder unknown)")]
    AlreadyRunningUnknown { job: String, watchlist: String },
    #[error("no artifacts of run or version {0:?} to promote (see `artifacts list`)")]
    NothingToPromote(String),
    #[error("version {selector} matches artifacts of several runs ({runs}); promote by run id instead")]
    AmbiguousVersion { selector: String, runs: String },
    #[error("no earlier promotion to roll back to for {0}")]
    NothingToRollBack(String),
    #[error("artifact store {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("artifact store {0}")]
    InvalidLocation(String),
    #[error("artifact store {0}: {1} does not exist")]
    Missing(String, String),
    #[error("artifact store {0}: the manifest kept changing under other writers; nothing was committed (run again)")]
    Contended(String),
    #[error("{0}: refusing to commit (another job may be running; nothing of this run after it was committed)")]
    LeaseLost(String),
    #[error(
        "artifact store {location}: the server does not honour conditional writes ({why}); refusing to write \
         there: concurrent commits and job leases would overwrite each other"
    )]
    Unconditional { location: String, why: String },
    #[error(
        "{watchlist}: manifest.jsonl has corrupt line(s) {lines}; nothing was written: run `artifacts --watchlist {watchlist} repair`"
    )]
    CorruptManifest { watchlist: String, lines: String },
}

impl StoreError {
    /// Errors the user can fix by changing the command: exit code 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            StoreError::InvalidWatchlist(_)
                | StoreError::NothingToPromote(_)
                | StoreError::AmbiguousVersion { .. }
                | StoreError::NothingToRollBack(_)
                | StoreError::InvalidLocation(_)
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// How many times a writer on a bucket reads the manifest again after
/// another writer committed first, before it gives up.
const COMMIT_ATTEMPTS: u32 = 64;

/// The root of the store: a local folder or a bucket prefix.
#[derive(Debug, Clone)]
pub struct Store {
    root: Root,
    /// The fences of the job leases taken through this store, by
    /// watchlist: every store of a watchlist made from it checks them.
    fences: Fences,
}

type Fences = Arc<std::sync::Mutex<Vec<(String, Arc<lease::Fence>)>>>;

#[derive(Debug, Clone)]
enum Root {
    Dir(PathBuf),
    Bucket(Arc<remote::Bucket>),
}

/// Who is writing: recorded in every sidecar and manifest line.
#[derive(Debug, Clone)]
pub struct Writer {
    pub job: String,
    pub run_id: String,
}

/// How an artifact's file name is formed.
#[derive(Debug, Clone, Copy)]
pub enum NameStyle {
    /// `<prefix>_v<N>_<ts>.<ext>`
    Versioned,
    /// `<prefix>_<ts>.<ext>`
    Timestamped,
}

/// What to write: the kind (version sequence), the name and the lineage.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    pub kind: String,
    pub prefix: String,
    pub extension: String,
    pub style: NameStyle,
    pub parameters: serde_json::Value,
    pub inputs: Vec<InputRef>,
}

impl NewArtifact {
    pub fn new(kind: &str, style: NameStyle, extension: &str) -> NewArtifact {
        NewArtifact {
            kind: kind.to_string(),
            prefix: kind.to_string(),
            extension: extension.to_string(),
            style,
            parameters: serde_json::Value::Null,
            inputs: Vec::new(),
        }
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn parameters(mut self, parameters: serde_json::Value) -> Self {
        self.parameters = parameters;
        self
    }

    pub fn inputs(mut self, inputs: Vec<InputRef>) -> Self {
        self.inputs = inputs;
        self
    }
}

impl Store {
    /// A store in a local folder.
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store {
            root: Root::Dir(root.into()),
            fences: Fences::default(),
        }
    }

    /// The store at `--artifacts`: `s3://bucket/prefix` on object storage,
    /// anything else a local folder.
    pub fn open(location: &Path) -> Result<Store, StoreError> {
        match location.to_str().filter(|l| l.starts_with("s3://")) {
            Some(url) => Ok(Store {
                root: Root::Bucket(Arc::new(
                    remote::Bucket::open(url).map_err(StoreError::InvalidLocation)?,
                )),
                fences: Fences::default(),
            }),
            None => Ok(Store::new(location)),
        }
    }

    /// The store of one watchlist; the name is validated so that no path
    /// can escape the root.
    pub fn watchlist(&self, name: &str) -> Result<WatchlistStore, StoreError> {
        validate_watchlist(name)?;
        let place = match &self.root {
            Root::Dir(root) => Place::Dir(root.join(name)),
            Root::Bucket(bucket) => Place::Bucket(bucket.folder(name)),
        };
        Ok(WatchlistStore {
            place,
            watchlist: name.to_string(),
            fences: Arc::clone(&self.fences),
        })
    }

    /// Watchlists that have a folder under the root.
    pub fn watchlists(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = match &self.root {
            Root::Dir(root) => {
                let entries = match std::fs::read_dir(root) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(io_err(root)(e)),
                };
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            }
            Root::Bucket(bucket) => bucket.folders().map_err(|source| StoreError::Io {
                path: bucket.url(),
                source,
            })?,
        };
        names.retain(|n| validate_watchlist(n).is_ok());
        names.sort();
        Ok(names)
    }
}

/// A held job lock; the job runs while this lives.
#[derive(Debug)]
pub struct JobLock {
    _lock: HeldLock,
}

/// Held for its drop, which releases it.
#[derive(Debug)]
enum HeldLock {
    File { _lock: FileLock },
    Lease { _lease: lease::Lease },
}

/// A committed value, with the manifest lock still held (folder) so that
/// what follows the commit (`production.json`) keeps the commit order.
struct Committed<T> {
    value: T,
    _guard: CommitGuard,
}

/// A local file with an artifact's content; see [`WatchlistStore::local_copy`].
pub struct LocalCopy {
    path: PathBuf,
    /// Removed on drop.
    _temporary: Option<TempFile>,
}

impl LocalCopy {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The store of one watchlist.
#[derive(Debug, Clone)]
pub struct WatchlistStore {
    place: Place,
    watchlist: String,
    /// The fences of the job leases taken through the store it came from
    /// (shared by watchlist): no commit once one of them may be another job's.
    fences: Fences,
}

impl WatchlistStore {
    /// The folder, for a store on local disk.
    pub fn local_dir(&self) -> Option<&Path> {
        self.place.local_dir()
    }

    pub fn name(&self) -> &str {
        &self.watchlist
    }

    /// Where an artifact is, for messages and reports: a path or an s3:// URL.
    pub fn location(&self, name: &str) -> String {
        self.place.location(name)
    }

    /// The error of an operation on `name`; its location is formatted only
    /// when there is an error.
    fn io_error<'a>(&'a self, name: &'a str) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |source| StoreError::Io {
            path: self.place.location(name),
            source,
        }
    }

    /// The bytes of a file in the store.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        self.place
            .read(name)
            .map_err(self.io_error(name))?
            .ok_or_else(|| StoreError::Missing(self.watchlist.clone(), name.to_string()))
    }

    /// A local file with an artifact's content, for readers that take a
    /// path (polars' scans): the file itself on local disk, a temporary
    /// copy (removed on drop) from a bucket.
    pub fn local_copy(&self, name: &str) -> anyhow::Result<LocalCopy> {
        match &self.place {
            Place::Dir(dir) => Ok(LocalCopy {
                path: names::file_in(dir, name).map_err(self.io_error(name))?,
                _temporary: None,
            }),
            Place::Bucket(folder) => {
                let mut temp = TempFile::create(&std::env::temp_dir(), name)?;
                let found = folder
                    .for_each_chunk(name, |chunk| temp.writer().write_all(chunk))
                    .map_err(self.io_error(name))?;
                if found.is_none() {
                    return Err(StoreError::Missing(self.watchlist.clone(), name.to_string()).into());
                }
                temp.finish()?;
                Ok(LocalCopy {
                    path: temp.path().to_path_buf(),
                    _temporary: Some(temp),
                })
            }
        }
    }

    /// Ready to write: the folder exists; the bucket honours conditional writes.
    fn ensure_dir(&self) -> Result<(), StoreError> {
        match &self.place {
            Place::Dir(dir) => {
                if dir.join(".locks").is_dir() {
                    return Ok(());
                }
                std::fs::create_dir_all(dir.join(".locks")).map_err(io_err(dir))?;
                // New folders are durable once their parents' entries are.
                for folder in [dir.as_path(), dir.parent().unwrap_or(dir)] {
                    atomic::sync_dir(folder).map_err(io_err(folder))?;
                }
                Ok(())
            }
            Place::Bucket(folder) => match folder.probe_conditions().map_err(self.io_error(".probe-conditions"))? {
                Ok(()) => Ok(()),
                Err(why) => Err(StoreError::Unconditional {
                    location: self.location(""),
                    why,
                }),
            },
        }
    }

    /// One job of a kind per watchlist at a time. On local disk the lock
    /// dies with the process, so a crashed job never blocks the next one; on
    /// a bucket it is a lease a killed job leaves for at most its lifetime.
    /// A run killed between a promotion's manifest line and
    /// `production.json` is finished here: the next job of any kind brings
    /// the file in line.
    pub fn lock_job(&self, job: &str) -> Result<JobLock, StoreError> {
        self.ensure_dir()?;
        let since = crate::clock::utc_now_rfc3339();
        let name = format!(".locks/{job}.lock");
        let acquired = match &self.place {
            Place::Dir(dir) => {
                let path = dir.join(&name);
                FileLock::try_acquire(&path)
                    .and_then(|taken| match taken {
                        Ok(mut lock) => lock.write_holder(&since).map(|()| Ok(HeldLock::File { _lock: lock })),
                        Err(holder) => Ok(Err(holder)),
                    })
                    .map_err(io_err(&path))?
            }
            Place::Bucket(folder) => lease::Lease::try_acquire(folder, &name, &since)
                .map_err(self.io_error(&name))?
                .map(|lease| {
                    self.fences
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((self.watchlist.clone(), lease.fence()));
                    HeldLock::Lease { _lease: lease }
                }),
        };
        match acquired {
            Ok(lock) => {
                let _guard = self.lock_manifest()?;
                let manifest = self.manifest()?;
                self.refuse_corrupt_manifest(&manifest)?;
                if self.bring_pointer_in_line(&manifest)? {
                    tracing::warn!(
                        "{}: production.json lagged the manifest (a run was killed after committing a promotion): brought in line",
                        self.watchlist
                    );
                }
                Ok(JobLock { _lock: lock })
            }
            Err(Some(holder)) => Err(StoreError::AlreadyRunning {
                job: job.to_string(),
                watchlist: self.watchlist.clone(),
                since: holder.since,
                pid: holder.pid,
                on_host: holder.host.map(|h| format!(" on {h}")).unwrap_or_default(),
            }),
            Err(None) => Err(StoreError::AlreadyRunningUnknown {
                job: job.to_string(),
                watchlist: self.watchlist.clone(),
            }),
        }
    }

    /// Nothing is written on a manifest with corrupt lines before its tail
    /// until `artifacts repair` has dealt with them.
    fn refuse_corrupt_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        if manifest.bad_lines.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = manifest.bad_lines.iter().map(|(n, _)| n.to_string()).collect();
        Err(StoreError::CorruptManifest {
            watchlist: self.watchlist.clone(),
            lines: lines.join(", "),
        })
    }

    /// The folder's manifest lock (a bucket needs none).
    fn lock_manifest(&self) -> Result<CommitGuard, StoreError> {
        self.place.guard().map_err(self.io_error(MANIFEST_LOCK))
    }

    fn read_manifest(&self) -> Result<ManifestRead, StoreError> {
        self.place.read_manifest().map_err(self.io_error(MANIFEST))
    }

    pub fn manifest(&self) -> Result<Manifest, StoreError> {
        Ok(self.read_manifest()?.manifest)
    }

    /// Write an artifact whose bytes `fill` produces; returns its record
    /// once committed. `fill` may return Parquet facts for the sidecar.
    pub fn write<F>(&self, by: &Writer, spec: NewArtifact, fill: F) -> anyhow::Result<ArtifactRecord>
    where
        F: FnOnce(&mut HashingWriter<io::BufWriter<std::fs::File>>) -> anyhow::Result<Option<ParquetInfo>>,
    {
        self.ensure_dir()?;
        // The content is staged beside its final name on local disk (a
        // rename then places it), in the temporary folder for a bucket.
        let staging = self
            .place
            .local_dir()
            .map_or_else(std::env::temp_dir, Path::to_path_buf);
        let mut temp = TempFile::create(&staging, &spec.prefix).map_err(io_err(&staging))?;
        let parquet = fill(temp.writer())?;
        let written = temp.finish().map_err(io_err(&staging))?;
        let uploaded = self.upload_in_parts(&temp, written.bytes)?;
        let mut staged = Some(temp);

        let committed = self.commit(
            |manifest| {
                let version = manifest.next_version(&spec.kind);
                let created_at = crate::clock::utc_now_rfc3339();
                let name = self.free_name(&spec, version)?;
                let meta = ArtifactMeta {
                    name: name.clone(),
                    kind: spec.kind.clone(),
                    version,
                    sha256: written.sha256.clone(),
                    bytes: written.bytes,
                    created_at: created_at.clone(),
                    watchlist: self.watchlist.clone(),
                    job: by.job.clone(),
                    run_id: by.run_id.clone(),
                    program_version: crate::PROGRAM_VERSION.to_string(),
                    parameters: spec.parameters.clone(),
                    inputs: spec.inputs.clone(),
                    parquet: parquet.clone(),
                };
                if !self.place_content(&name, &mut staged, uploaded.as_deref())? {
                    return Ok(None);
                }
                let meta_name = format!("{name}{META_SUFFIX}");
                let meta_bytes = serde_json::to_vec_pretty(&meta)?;
                let meta_sha256 = atomic::sha256_hex(&meta_bytes);
                if !self
                    .place
                    .create(&meta_name, meta_bytes)
                    .map_err(self.io_error(&meta_name))?
                {
                    self.remove_uncommitted(&name);
                    return Ok(None);
                }
                let record = ArtifactRecord {
                    name,
                    kind: spec.kind.clone(),
                    version,
                    sha256: written.sha256.clone(),
                    bytes: written.bytes,
                    created_at,
                    job: by.job.clone(),
                    run_id: by.run_id.clone(),
                    meta: meta_name,
                    meta_sha256,
                };
                atomic::failpoint("before_manifest").map_err(self.io_error(MANIFEST))?;
                Ok(Some((ManifestEntry::Artifact(record.clone()), record)))
            },
            |record| {
                self.remove_uncommitted(&record.name);
                self.remove_uncommitted(&record.meta);
            },
        );
        if let Some(temporary) = &uploaded {
            self.remove_uncommitted(temporary);
        }
        let committed = committed?;
        crate::crashpoint::reach("after_manifest");
        let record = committed.value;
        tracing::debug!(name = %record.name, bytes = record.bytes, "artifact committed");
        Ok(record)
    }

    /// A large artifact bound for a bucket, uploaded in parts under a
    /// temporary object name (listed as an orphan by `verify` if the writer
    /// dies before removing it); `None` for everything else.
    fn upload_in_parts(&self, temp: &TempFile, bytes: u64) -> Result<Option<String>, StoreError> {
        let Place::Bucket(folder) = &self.place else {
            return Ok(None);
        };
        if !remote::uploads_in_parts(bytes) {
            return Ok(None);
        }
        let name = temp
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("temporary names are ASCII")
            .to_string();
        folder.upload_file(&name, temp.path()).map_err(self.io_error(&name))?;
        Ok(Some(name))
    }

    /// Put the staged content under its final name: a rename on local disk
    /// (the manifest lock is held, the name is free); on a bucket a
    /// create-only put, or a create-only server-side copy of what
    /// [`upload_in_parts`](Self::upload_in_parts) sent (`false`: another
    /// writer took the name).
    fn place_content(
        &self,
        name: &str,
        staged: &mut Option<TempFile>,
        uploaded: Option<&str>,
    ) -> Result<bool, StoreError> {
        match &self.place {
            Place::Dir(dir) => {
                let final_path = dir.join(name);
                let temp = staged.take().expect("a folder commit places its content once");
                temp.persist(&final_path).map_err(io_err(&final_path))?;
                Ok(true)
            }
            Place::Bucket(folder) => match uploaded {
                Some(temporary) => folder.copy_new(temporary, name).map_err(self.io_error(name)),
                None => {
                    let temp = staged.as_ref().expect("a bucket commit keeps its staged file");
                    let bytes = std::fs::read(temp.path()).map_err(io_err(temp.path()))?;
                    self.place.create(name, bytes).map_err(self.io_error(name))
                }
            },
        }
    }

    /// Remove what a commit that lost its race placed; what stays behind
    /// (the removal failed too) is an orphan `verify` lists.
    fn remove_uncommitted(&self, name: &str) {
        if let Err(err) = self.place.remove(name) {
            tracing::warn!("could not remove uncommitted {}: {err}", self.location(name));
        }
    }

    /// Convenience: write a byte buffer.
    pub fn write_bytes(&self, by: &Writer, spec: NewArtifact, bytes: &[u8]) -> anyhow::Result<ArtifactRecord> {
        self.write(by, spec, |w| {
            w.write_all(bytes)?;
            Ok(None)
        })
    }

    /// Convenience: write a value as pretty JSON.
    pub fn write_json<T: serde::Serialize>(
        &self,
        by: &Writer,
        spec: NewArtifact,
        value: &T,
    ) -> anyhow::Result<ArtifactRecord> {
        let bytes = serde_json::to_vec_pretty(value)?;
        self.write_bytes(by, spec, &bytes)
    }

    /// A final name not taken yet (an orphan of a crashed write may hold
    /// the obvious one; it is never overwritten).
    fn free_name(&self, spec: &NewArtifact, version: u32) -> Result<String, StoreError> {
        let ts = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
        let base = match spec.style {
            NameStyle::Versioned => format!("{}_v{version}_{ts}", spec.prefix),
            NameStyle::Timestamped => format!("{}_{ts}", spec.prefix),
        };
        let mut name = format!("{base}.{}", spec.extension);
        let mut n = 2;
        while self.taken(&name)? || self.taken(&format!("{name}{META_SUFFIX}"))? {
            name = format!("{base}_{n}.{}", spec.extension);
            n += 1;
        }
        Ok(name)
    }

    fn taken(&self, name: &str) -> Result<bool, StoreError> {
        self.place.exists(name).map_err(self.io_error(name))
    }

    /// Committed artifacts, newest first, optionally of one kind.
    pub fn list(&self, kind: Option<&str>) -> Result<Vec<ArtifactRecord>, StoreError> {
        let manifest = self.manifest()?;
        let mut records: Vec<ArtifactRecord> = manifest
            .artifacts()
            .filter(|a| kind.is_none_or(|k| a.kind == k))
            .cloned()
            .collect();
        records.reverse();
        Ok(records)
    }

    /// Read a committed artifact's sidecar.
    pub fn meta(&self, record: &ArtifactRecord) -> anyhow::Result<ArtifactMeta> {
        Ok(serde_json::from_slice(&self.read(&record.meta)?)?)
    }
}
