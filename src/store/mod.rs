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

pub mod atomic;
pub mod lock;
pub mod manifest;
pub mod meta;
pub mod repair;
pub mod verify;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use self::atomic::{HashingWriter, TempFile};
use self::lock::FileLock;
pub use self::manifest::{
    ArtifactRecord, ArtifactRef, DecisionRecord, Manifest, ManifestEntry, PointerChange, ProductionPointer,
};
pub use self::meta::{ArtifactMeta, InputRef, ParquetInfo};
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
    #[error("already running: {job} for {watchlist} since {since} (pid {pid})")]
    AlreadyRunning {
        job: String,
        watchlist: String,
        since: String,
        pid: u32,
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
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The root of the store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
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
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store of one watchlist; the name is validated so that no path
    /// can escape the root.
    pub fn watchlist(&self, name: &str) -> Result<WatchlistStore, StoreError> {
        validate_watchlist(name)?;
        Ok(WatchlistStore {
            dir: self.root.join(name),
            watchlist: name.to_string(),
        })
    }

    /// Watchlists that have a folder under the root.
    pub fn watchlists(&self) -> Result<Vec<String>, StoreError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.root)(e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| validate_watchlist(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }
}

/// A held job lock; the job runs while this lives.
#[derive(Debug)]
pub struct JobLock {
    _lock: FileLock,
}

/// The store of one watchlist.
#[derive(Debug, Clone)]
pub struct WatchlistStore {
    dir: PathBuf,
    watchlist: String,
}

impl WatchlistStore {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn name(&self) -> &str {
        &self.watchlist
    }

    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn ensure_dir(&self) -> Result<(), StoreError> {
        std::fs::create_dir_all(self.dir.join(".locks")).map_err(io_err(&self.dir))
    }

    /// One job of a kind per watchlist at a time. The lock dies with the
    /// process, so a crashed job never blocks the next one. A run killed
    /// between a promotion's manifest line and `production.json` is
    /// finished here: the next job of any kind brings the file in line.
    pub fn lock_job(&self, job: &str) -> Result<JobLock, StoreError> {
        self.ensure_dir()?;
        let path = self.dir.join(".locks").join(format!("{job}.lock"));
        match FileLock::try_acquire(&path).map_err(io_err(&path))? {
            Ok(mut lock) => {
                lock.write_holder(&crate::clock::utc_now_rfc3339())
                    .map_err(io_err(&path))?;
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

    fn lock_manifest(&self) -> Result<FileLock, StoreError> {
        let path = self.dir.join(MANIFEST_LOCK);
        FileLock::acquire(&path).map_err(io_err(&path))
    }

    pub fn manifest(&self) -> Result<Manifest, StoreError> {
        let path = self.dir.join(MANIFEST);
        Manifest::read(&path).map_err(io_err(&path))
    }

    /// Write an artifact whose bytes `fill` produces; returns its record
    /// once committed. `fill` may return Parquet facts for the sidecar.
    pub fn write<F>(&self, by: &Writer, spec: NewArtifact, fill: F) -> anyhow::Result<ArtifactRecord>
    where
        F: FnOnce(&mut HashingWriter<io::BufWriter<std::fs::File>>) -> anyhow::Result<Option<ParquetInfo>>,
    {
        self.ensure_dir()?;
        let mut temp = TempFile::create(&self.dir, &spec.prefix).map_err(io_err(&self.dir))?;
        let parquet = fill(temp.writer())?;
        let written = temp.finish().map_err(io_err(&self.dir))?;

        let _guard = self.lock_manifest()?;
        let manifest = self.manifest()?;
        let version = manifest.next_version(&spec.kind);
        let created_at = crate::clock::utc_now_rfc3339();
        let name = self.free_name(&spec, version);
        let final_path = self.dir.join(&name);
        temp.persist(&final_path).map_err(io_err(&final_path))?;

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
            parameters: spec.parameters,
            inputs: spec.inputs,
            parquet,
        };
        let meta_name = format!("{name}{META_SUFFIX}");
        let meta_path = self.dir.join(&meta_name);
        let meta_bytes = serde_json::to_vec_pretty(&meta)?;
        let meta_written = atomic::write_bytes(&meta_path, &meta_bytes).map_err(io_err(&meta_path))?;

        let record = ArtifactRecord {
            name,
            kind: spec.kind,
            version,
            sha256: written.sha256,
            bytes: written.bytes,
            created_at,
            job: by.job.clone(),
            run_id: by.run_id.clone(),
            meta: meta_name,
            meta_sha256: meta_written.sha256,
        };
        atomic::failpoint("before_manifest").map_err(io_err(&self.dir))?;
        let manifest_path = self.dir.join(MANIFEST);
        manifest::append(&manifest_path, &ManifestEntry::Artifact(record.clone())).map_err(io_err(&manifest_path))?;
        crate::crashpoint::reach("after_manifest");
        tracing::debug!(name = %record.name, bytes = record.bytes, "artifact committed");
        Ok(record)
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
    fn free_name(&self, spec: &NewArtifact, version: u32) -> String {
        let ts = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
        let base = match spec.style {
            NameStyle::Versioned => format!("{}_v{version}_{ts}", spec.prefix),
            NameStyle::Timestamped => format!("{}_{ts}", spec.prefix),
        };
        let mut name = format!("{base}.{}", spec.extension);
        let mut n = 2;
        while self.dir.join(&name).exists() || self.dir.join(format!("{name}{META_SUFFIX}")).exists() {
            name = format!("{base}_{n}.{}", spec.extension);
            n += 1;
        }
        name
    }

    /// The live pointer, from the manifest (the source of truth).
    pub fn production(&self) -> Result<Option<ProductionPointer>, StoreError> {
        Ok(self.manifest()?.current_pointer().cloned())
    }

    /// Point production at `artifacts` (kind -> record). Kinds not named keep
    /// their current artifact. The manifest line is the commit point; then
    /// `production.json` is replaced atomically.
    pub fn promote(
        &self,
        by: &Writer,
        artifacts: &[&ArtifactRecord],
        reason: &str,
    ) -> Result<ProductionPointer, StoreError> {
        self.ensure_dir()?;
        let _guard = self.lock_manifest()?;
        let manifest = self.manifest()?;
        self.refuse_corrupt_manifest(&manifest)?;
        let mut live = manifest
            .current_pointer()
            .map(|p| p.artifacts.clone())
            .unwrap_or_default();
        for record in artifacts {
            live.insert(
                record.kind.clone(),
                ArtifactRef {
                    name: record.name.clone(),
                    version: record.version,
                    sha256: record.sha256.clone(),
                },
            );
        }
        let pointer = ProductionPointer {
            watchlist: self.watchlist.clone(),
            artifacts: live,
            since: crate::clock::utc_now_rfc3339(),
            promoted_by_run: by.run_id.clone(),
            job: by.job.clone(),
            reason: reason.to_string(),
        };
        self.commit_pointer(ManifestEntry::Promotion(PointerChange {
            pointer: pointer.clone(),
        }))?;
        Ok(pointer)
    }

    /// Promote the artifacts of a run id, or of a version (`v7` / `7`).
    pub fn promote_selector(&self, by: &Writer, selector: &str, reason: &str) -> Result<ProductionPointer, StoreError> {
        let manifest = self.manifest()?;
        let version = selector.trim_start_matches('v').parse::<u32>().ok();
        let pointer_kinds = |a: &&ArtifactRecord| POINTER_KINDS.contains(&a.kind.as_str());
        let mut chosen: Vec<&ArtifactRecord> = manifest
            .artifacts()
            .filter(pointer_kinds)
            .filter(|a| a.run_id == selector)
            .collect();
        if chosen.is_empty()
            && let Some(v) = version
        {
            chosen = manifest
                .artifacts()
                .filter(pointer_kinds)
                .filter(|a| a.version == v)
                .collect();
            let mut runs: Vec<&str> = chosen.iter().map(|a| a.run_id.as_str()).collect();
            runs.sort();
            runs.dedup();
            if runs.len() > 1 {
                return Err(StoreError::AmbiguousVersion {
                    selector: selector.to_string(),
                    runs: runs.join(", "),
                });
            }
        }
        // The newest artifact of each kind within the selection.
        let mut latest: std::collections::BTreeMap<&str, &ArtifactRecord> = Default::default();
        for a in chosen {
            latest.insert(a.kind.as_str(), a);
        }
        if latest.is_empty() {
            return Err(StoreError::NothingToPromote(selector.to_string()));
        }
        let records: Vec<&ArtifactRecord> = latest.into_values().collect();
        self.promote(by, &records, reason)
    }

    /// Record a promotion decision that left the pointer where it was.
    pub fn record_decision(&self, by: &Writer, promoted: bool, reason: &str) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let _guard = self.lock_manifest()?;
        let entry = ManifestEntry::Decision(DecisionRecord {
            run_id: by.run_id.clone(),
            job: by.job.clone(),
            promoted,
            reason: reason.to_string(),
            created_at: crate::clock::utc_now_rfc3339(),
        });
        let path = self.dir.join(MANIFEST);
        manifest::append(&path, &entry).map_err(io_err(&path))
    }

    /// Move the pointer back to the promotion before the live one.
    pub fn rollback(&self, by: &Writer) -> Result<ProductionPointer, StoreError> {
        self.ensure_dir()?;
        let _guard = self.lock_manifest()?;
        let manifest = self.manifest()?;
        self.refuse_corrupt_manifest(&manifest)?;
        let history = manifest.pointer_history();
        if history.len() < 2 {
            return Err(StoreError::NothingToRollBack(self.watchlist.clone()));
        }
        let mut restored = history[history.len() - 2].clone();
        restored.since = crate::clock::utc_now_rfc3339();
        restored.promoted_by_run = by.run_id.clone();
        restored.job = by.job.clone();
        restored.reason = format!("rollback from {}", history[history.len() - 1].promoted_by_run);
        self.commit_pointer(ManifestEntry::Rollback(PointerChange {
            pointer: restored.clone(),
        }))?;
        Ok(restored)
    }

    /// Append the pointer change (commit), then replace `production.json`.
    /// The caller holds the manifest lock.
    /// The caller has refused a manifest with corrupt lines: a pointer move
    /// could stack on the wrong history (the corrupt line may be a promotion).
    fn commit_pointer(&self, entry: ManifestEntry) -> Result<(), StoreError> {
        let manifest_path = self.dir.join(MANIFEST);
        manifest::append(&manifest_path, &entry).map_err(io_err(&manifest_path))?;
        // Committed, not yet visible in production.json: a crash here is
        // what `artifacts repair` (and every reader) handles.
        atomic::failpoint("before_pointer").map_err(io_err(&self.dir))?;
        let pointer = match &entry {
            ManifestEntry::Promotion(c) | ManifestEntry::Rollback(c) => &c.pointer,
            ManifestEntry::Artifact(_) | ManifestEntry::Decision(_) => {
                unreachable!("commit_pointer takes pointer changes")
            }
        };
        self.write_pointer_file(pointer)
    }

    fn write_pointer_file(&self, pointer: &ProductionPointer) -> Result<(), StoreError> {
        let path = self.dir.join(POINTER);
        let bytes = serde_json::to_vec_pretty(pointer).map_err(|e| io_err(&path)(io::Error::other(e)))?;
        atomic::write_bytes(&path, &bytes).map_err(io_err(&path))?;
        Ok(())
    }

    /// Bring `production.json` in line with the manifest after a crash
    /// between the manifest line and the pointer file.
    pub fn repair_pointer(&self) -> Result<bool, StoreError> {
        let _guard = self.lock_manifest()?;
        self.bring_pointer_in_line(&self.manifest()?)
    }

    /// Rewrite `production.json` when it differs from `manifest`'s live
    /// pointer. The caller holds the manifest lock.
    fn bring_pointer_in_line(&self, manifest: &Manifest) -> Result<bool, StoreError> {
        let Some(live) = manifest.current_pointer() else {
            return Ok(false);
        };
        if read_pointer_file(&self.dir.join(POINTER)).as_ref() == Some(live) {
            return Ok(false);
        }
        self.write_pointer_file(live)?;
        Ok(true)
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
        let path = self.dir.join(&record.meta);
        let text = std::fs::read(&path).map_err(io_err(&path))?;
        Ok(serde_json::from_slice(&text)?)
    }
}

pub(crate) fn read_pointer_file(path: &Path) -> Option<ProductionPointer> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}
