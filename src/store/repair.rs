//! `artifacts repair` for a manifest with corrupt lines in the middle
//! (a disk error, a hand edit): every intact line is kept in its place; an
//! artifact line is rebuilt from the artifact's own sidecar when the
//! corrupt text still names it and file and sidecar agree; a lost pointer
//! move is restored from `production.json` when every artifact it names is
//! committed with the same hash. The corrupt lines are saved beside the
//! manifest, never silently dropped.

use super::manifest::{ArtifactRecord, ManifestEntry, PointerChange};
use super::meta::ArtifactMeta;
use super::{MANIFEST, META_SUFFIX, StoreError, WatchlistStore, atomic};

/// What a repair found and did.
#[derive(Debug, Default)]
pub struct ManifestRepair {
    /// 1-based numbers of the corrupt lines.
    pub corrupt_lines: Vec<usize>,
    /// Artifact lines rebuilt from their sidecars.
    pub restored_artifacts: Vec<String>,
    /// Whether a pointer move was restored from `production.json`.
    pub restored_pointer: bool,
    /// Where the corrupt lines were saved (a path or an s3:// URL).
    pub saved_to: Option<String>,
}

impl WatchlistStore {
    pub fn repair_manifest(&self) -> Result<ManifestRepair, StoreError> {
        let _guard = self.lock_manifest()?;
        // Read with its version: on a bucket the repaired manifest replaces
        // exactly this one, or nothing (a writer committed meanwhile).
        let read = self.read_manifest()?;
        let text = String::from_utf8_lossy(read.complete_lines()).into_owned();
        let mut report = ManifestRepair::default();
        let mut entries: Vec<ManifestEntry> = Vec::new();
        // The repaired manifest: intact lines as they were (commit ids
        // included), rebuilt ones new.
        let mut out: Vec<u8> = Vec::new();
        let mut corrupt_text = String::new();
        // A last line without its newline is a torn append (left out of the
        // complete lines): the next write cuts it anyway; not a corrupt line.
        for (i, line) in text.lines().enumerate() {
            match serde_json::from_str::<ManifestEntry>(line) {
                Ok(entry) => {
                    entries.push(entry);
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
                Err(_) => {
                    report.corrupt_lines.push(i + 1);
                    corrupt_text.push_str(&format!("line {}: {line}\n", i + 1));
                    if let Some(record) = self.restore_named_in(line, &entries) {
                        report.restored_artifacts.push(record.name.clone());
                        let entry = ManifestEntry::Artifact(record);
                        out.extend(self.new_line(&entry)?);
                        entries.push(entry);
                    }
                }
            }
        }
        if report.corrupt_lines.is_empty() {
            return Ok(report);
        }
        if let Some(pointer) = self.pointer_file()? {
            let current = super::Manifest {
                entries: entries.clone(),
                ..Default::default()
            };
            let all_committed = pointer.artifacts.values().all(|r| {
                current
                    .artifacts()
                    .any(|a| a.name == r.name && a.sha256 == r.sha256 && a.version == r.version)
            });
            // The file is put back only when the manifest never had its
            // pointer (its promotion line was lost to the corruption): a
            // file that lags the manifest names an earlier pointer of its
            // history, and putting that back would move production
            // backwards. (Not by time stamps: hosts' clocks differ.)
            let lost = !current
                .entries
                .iter()
                .any(|e| matches!(e, ManifestEntry::Promotion(c) | ManifestEntry::Rollback(c) if c.pointer == pointer));
            if current.current_pointer() != Some(&pointer) && all_committed && lost {
                let entry = ManifestEntry::Promotion(PointerChange { pointer });
                out.extend(self.new_line(&entry)?);
                entries.push(entry);
                report.restored_pointer = true;
            }
        }
        let saved = format!(
            "manifest.corrupt-{}.txt",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ")
        );
        self.place
            .replace(&saved, corrupt_text.into_bytes())
            .map_err(self.io_error(&saved))?;
        report.saved_to = Some(self.location(&saved));
        if !self
            .place
            .replace_manifest(&read, out)
            .map_err(self.io_error(MANIFEST))?
        {
            return Err(StoreError::Contended(self.watchlist.clone()));
        }
        Ok(report)
    }

    /// A line for an entry the repair writes, with a commit id of its own.
    fn new_line(&self, entry: &ManifestEntry) -> Result<Vec<u8>, StoreError> {
        super::manifest::line(entry, &super::manifest::new_commit_id()).map_err(self.io_error(MANIFEST))
    }

    /// The committed record of the artifact a corrupt line still names,
    /// rebuilt from its sidecar, when the file and sidecar agree and no
    /// intact line already commits it.
    fn restore_named_in(&self, line: &str, entries: &[ManifestEntry]) -> Option<ArtifactRecord> {
        let start = line.find("\"name\":\"")? + "\"name\":\"".len();
        let name = &line[start..start + line[start..].find('"')?];
        if name.contains('/') || name.starts_with('.') {
            return None;
        }
        let known = entries
            .iter()
            .any(|e| matches!(e, ManifestEntry::Artifact(a) if a.name == name));
        if known {
            return None;
        }
        let meta_name = format!("{name}{META_SUFFIX}");
        let meta_bytes = self.place.read(&meta_name).ok()??;
        let meta: ArtifactMeta = serde_json::from_slice(&meta_bytes).ok()?;
        let found = self.place.sha256_of(name).ok()??;
        if meta.name != name || found.sha256 != meta.sha256 || found.bytes != meta.bytes {
            return None;
        }
        Some(ArtifactRecord {
            name: meta.name,
            kind: meta.kind,
            version: meta.version,
            sha256: meta.sha256,
            bytes: meta.bytes,
            created_at: meta.created_at,
            job: meta.job,
            run_id: meta.run_id,
            meta: meta_name,
            meta_sha256: atomic::sha256_hex(&meta_bytes),
        })
    }
}
