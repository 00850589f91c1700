//! The production pointer: promotions, rollbacks and recorded decisions
//! are manifest lines (the commit point); `production.json` follows them
//! and is brought in line after a crash between the two.

use super::manifest::{ArtifactRef, DecisionRecord, Manifest, ManifestEntry, PointerChange, ProductionPointer};
use super::place::Place;
use super::remote::{Mode, Put};
use super::{ArtifactRecord, POINTER, POINTER_KINDS, StoreError, WatchlistStore, Writer, atomic};

impl WatchlistStore {
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
    ) -> anyhow::Result<ProductionPointer> {
        self.ensure_dir()?;
        self.commit_pointer(|manifest| {
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
            Ok(ManifestEntry::Promotion(PointerChange { pointer }))
        })
    }

    /// Promote the artifacts of a run id, or of a version (`v7` / `7`).
    pub fn promote_selector(&self, by: &Writer, selector: &str, reason: &str) -> anyhow::Result<ProductionPointer> {
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
                }
                .into());
            }
        }
        // The newest artifact of each kind within the selection.
        let mut latest: std::collections::BTreeMap<&str, &ArtifactRecord> = Default::default();
        for a in chosen {
            latest.insert(a.kind.as_str(), a);
        }
        if latest.is_empty() {
            return Err(StoreError::NothingToPromote(selector.to_string()).into());
        }
        let records: Vec<&ArtifactRecord> = latest.into_values().collect();
        self.promote(by, &records, reason)
    }

    /// Record a promotion decision that left the pointer where it was.
    pub fn record_decision(&self, by: &Writer, promoted: bool, reason: &str) -> anyhow::Result<()> {
        self.ensure_dir()?;
        let entry = ManifestEntry::Decision(DecisionRecord {
            run_id: by.run_id.clone(),
            job: by.job.clone(),
            promoted,
            reason: reason.to_string(),
            created_at: crate::clock::utc_now_rfc3339(),
        });
        self.commit(|_| Ok(Some((entry.clone(), ()))), |_| {})?;
        Ok(())
    }

    /// Move the pointer back to the promotion before the live one.
    pub fn rollback(&self, by: &Writer) -> anyhow::Result<ProductionPointer> {
        self.ensure_dir()?;
        self.commit_pointer(|manifest| {
            let history = manifest.pointer_history();
            if history.len() < 2 {
                return Err(StoreError::NothingToRollBack(self.watchlist.clone()).into());
            }
            let mut restored = history[history.len() - 2].clone();
            restored.since = crate::clock::utc_now_rfc3339();
            restored.promoted_by_run = by.run_id.clone();
            restored.job = by.job.clone();
            restored.reason = format!("rollback from {}", history[history.len() - 1].promoted_by_run);
            Ok(ManifestEntry::Rollback(PointerChange { pointer: restored }))
        })
    }

    /// Commit the pointer change `change` makes of the manifest, then
    /// replace `production.json`. A manifest with corrupt lines is refused:
    /// a pointer move could stack on the wrong history (the corrupt line
    /// may be a promotion).
    fn commit_pointer(
        &self,
        mut change: impl FnMut(&Manifest) -> anyhow::Result<ManifestEntry>,
    ) -> anyhow::Result<ProductionPointer> {
        let committed = self.commit(
            |manifest| {
                self.refuse_corrupt_manifest(manifest)?;
                let entry = change(manifest)?;
                let pointer = match &entry {
                    ManifestEntry::Promotion(c) | ManifestEntry::Rollback(c) => c.pointer.clone(),
                    ManifestEntry::Artifact(_) | ManifestEntry::Decision(_) => {
                        unreachable!("commit_pointer takes pointer changes")
                    }
                };
                Ok(Some((entry, pointer)))
            },
            |_| {},
        )?;
        // Committed, not yet visible in production.json: a crash here is
        // what `artifacts repair` (and every reader) handles.
        atomic::failpoint("before_pointer").map_err(self.io_error(POINTER))?;
        match &self.place {
            // The manifest lock is still held: no later pointer can land first.
            Place::Dir(_) => self.write_pointer_file(&committed.value)?,
            // Another writer may have committed a later pointer meanwhile:
            // write the manifest's live one, not necessarily ours.
            Place::Bucket(_) => {
                self.bring_pointer_in_line(&self.manifest()?)?;
            }
        }
        Ok(committed.value)
    }

    fn write_pointer_file(&self, pointer: &ProductionPointer) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(pointer).map_err(|e| self.io_error(POINTER)(std::io::Error::other(e)))?;
        self.place.replace(POINTER, bytes).map_err(self.io_error(POINTER))
    }

    /// Bring `production.json` in line with the manifest after a crash
    /// between the manifest line and the pointer file.
    pub fn repair_pointer(&self) -> Result<bool, StoreError> {
        let _guard = self.lock_manifest()?;
        self.bring_pointer_in_line(&self.manifest()?)
    }

    /// Rewrite `production.json` when it differs from `manifest`'s live
    /// pointer. The caller holds the manifest lock (folder). On a bucket
    /// the write is conditional on the file read: when another writer
    /// replaced it meanwhile (from a manifest at least as new), the
    /// manifest is read again and the comparison made again, so a slow
    /// writer never puts an older pointer over a newer one.
    pub(super) fn bring_pointer_in_line(&self, manifest: &Manifest) -> Result<bool, StoreError> {
        let Place::Bucket(folder) = &self.place else {
            let Some(live) = manifest.current_pointer() else {
                return Ok(false);
            };
            if self.pointer_file()?.as_ref() == Some(live) {
                return Ok(false);
            }
            self.write_pointer_file(live)?;
            return Ok(true);
        };
        let _ = manifest;
        for _ in 0..8 {
            // The file (and its version) first, then the manifest: a writer
            // always commits its line before it writes the file, so a file
            // newer than the manifest read cannot be overwritten here.
            let current = folder.get(POINTER).map_err(self.io_error(POINTER))?;
            let manifest = self.manifest()?;
            let Some(live) = manifest.current_pointer() else {
                return Ok(false);
            };
            let on_file = current
                .as_ref()
                .and_then(|(bytes, _)| serde_json::from_slice::<ProductionPointer>(bytes).ok());
            if on_file.as_ref() == Some(live) {
                return Ok(false);
            }
            let bytes =
                serde_json::to_vec_pretty(live).map_err(|e| self.io_error(POINTER)(std::io::Error::other(e)))?;
            let mode = match current {
                Some((_, version)) => Mode::Replace(version),
                None => Mode::Create,
            };
            // A refusal: someone wrote it since (or our own retried write
            // landed): compare again with the manifest as it is now.
            if let Put::Done(_) = folder.put(POINTER, bytes, mode).map_err(self.io_error(POINTER))? {
                return Ok(true);
            }
        }
        Err(StoreError::Contended(self.watchlist.clone()))
    }

    /// `production.json` as written, `None` when missing or unreadable.
    pub(super) fn pointer_file(&self) -> Result<Option<ProductionPointer>, StoreError> {
        let bytes = self.place.read(POINTER).map_err(self.io_error(POINTER))?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }
}
