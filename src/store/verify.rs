//! `verify`: every manifest line against its file and sidecar; orphans
//! (files no manifest line commits) are listed but are not problems — they
//! are what an interrupted write leaves, by design.

use std::collections::BTreeSet;

use super::atomic::TEMP_PREFIX;
use super::{ArtifactMeta, ArtifactRecord, MANIFEST, META_SUFFIX, POINTER, WatchlistStore};

#[derive(Debug, Default)]
pub struct VerifyReport {
    /// One line per inconsistency in committed state: exit 1.
    pub problems: Vec<String>,
    /// Uncommitted leftovers of interrupted writes.
    pub orphans: Vec<String>,
    /// Harmless findings repaired on the next write (torn manifest tail,
    /// a pointer file behind the manifest).
    pub warnings: Vec<String>,
    pub artifacts_checked: usize,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl WatchlistStore {
    pub fn verify(&self) -> anyhow::Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let manifest = self.manifest()?;
        for (line, err) in &manifest.bad_lines {
            report.problems.push(format!(
                "{}: {MANIFEST} line {line} is not a valid entry: {err}",
                self.name()
            ));
        }
        if manifest.torn_tail {
            report.warnings.push(format!(
                "{}: {MANIFEST} ends in a torn line (an interrupted append; cut on the next write)",
                self.name()
            ));
        }
        let mut committed = BTreeSet::new();
        let mut seen_versions = BTreeSet::new();
        for record in manifest.artifacts() {
            report.artifacts_checked += 1;
            committed.insert(record.name.clone());
            committed.insert(record.meta.clone());
            if !seen_versions.insert((record.kind.clone(), record.version)) {
                report.problems.push(format!(
                    "{}: {} version {} appears twice in the manifest",
                    self.name(),
                    record.kind,
                    record.version
                ));
            }
            self.check_artifact(record, &mut report.problems)?;
        }
        self.check_pointer(&manifest, &committed, &mut report)?;
        self.find_orphans(&committed, &mut report.orphans)?;
        Ok(report)
    }

    /// The problems of one committed artifact; an error only when the store
    /// cannot be read at all (a network error is not a missing file).
    fn check_artifact(&self, record: &ArtifactRecord, problems: &mut Vec<String>) -> anyhow::Result<()> {
        let wl = self.name();
        let found = self.place.sha256_of(&record.name).or_else(unreadable_file)?;
        match found {
            None => problems.push(format!("{wl}: {} is missing", record.name)),
            Some(found) if found.bytes != record.bytes => problems.push(format!(
                "{wl}: {} has {} bytes, the manifest says {}",
                record.name, found.bytes, record.bytes
            )),
            Some(found) if found.sha256 != record.sha256 => problems.push(format!(
                "{wl}: {} content changed (sha256 differs from the manifest)",
                record.name
            )),
            Some(_) => {}
        }
        let meta_bytes = match self.place.read(&record.meta).or_else(unreadable_file)? {
            Some(bytes) => bytes,
            None => {
                problems.push(format!("{wl}: sidecar {} is missing", record.meta));
                return Ok(());
            }
        };
        if super::atomic::sha256_hex(&meta_bytes) != record.meta_sha256 {
            problems.push(format!(
                "{wl}: sidecar {} changed (sha256 differs from the manifest)",
                record.meta
            ));
        }
        match serde_json::from_slice::<ArtifactMeta>(&meta_bytes) {
            Err(err) => problems.push(format!("{wl}: sidecar {} is not valid: {err}", record.meta)),
            Ok(meta) => {
                if meta.name != record.name
                    || meta.sha256 != record.sha256
                    || meta.bytes != record.bytes
                    || meta.kind != record.kind
                    || meta.version != record.version
                {
                    problems.push(format!("{wl}: sidecar {} disagrees with the manifest", record.meta));
                }
            }
        }
        Ok(())
    }

    fn check_pointer(
        &self,
        manifest: &super::Manifest,
        committed: &BTreeSet<String>,
        report: &mut VerifyReport,
    ) -> anyhow::Result<()> {
        let wl = self.name();
        let live = manifest.current_pointer();
        if let Some(live) = live {
            for (kind, reference) in &live.artifacts {
                if !committed.contains(&reference.name) {
                    report.problems.push(format!(
                        "{wl}: production {kind} names {}, which the manifest never committed",
                        reference.name
                    ));
                }
            }
        }
        // One read tells both whether the file exists and what it says.
        let raw = self.place.read(POINTER)?;
        let pointer_exists = raw.is_some();
        let file: Option<super::ProductionPointer> = raw.and_then(|b| serde_json::from_slice(&b).ok());
        match (live, file) {
            (None, None) if !pointer_exists => {}
            (None, _) => report.problems.push(format!("{wl}: {POINTER} exists but the manifest records no promotion")),
            (Some(_), None) => report
                .warnings
                .push(format!("{wl}: {POINTER} missing or unreadable; the manifest has the live pointer (repaired on the next promotion or `artifacts repair`)")),
            (Some(live), Some(file)) if &file != live => report
                .warnings
                .push(format!("{wl}: {POINTER} is behind the manifest (an interrupted promotion; `artifacts repair` rewrites it)")),
            _ => {}
        }
        Ok(())
    }

    fn find_orphans(&self, committed: &BTreeSet<String>, orphans: &mut Vec<String>) -> anyhow::Result<()> {
        let mut names: Vec<String> = self
            .place
            .names()?
            .into_iter()
            .filter(|n| n != MANIFEST && n != POINTER && !committed.contains(n))
            .collect();
        names.sort();
        for name in names {
            let why = if name.starts_with(TEMP_PREFIX) {
                "temporary file of an interrupted write"
            } else if name.ends_with(META_SUFFIX) {
                "sidecar without a manifest line"
            } else {
                "file without a manifest line"
            };
            orphans.push(format!("{}: orphan {name} ({why})", self.name()));
        }
        Ok(())
    }
}

/// A file that exists but cannot be read (permissions, a directory in its
/// place) is reported as missing, as before; a store that cannot be
/// reached is an error, not a list of missing files.
fn unreadable_file<T>(err: std::io::Error) -> std::io::Result<Option<T>> {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::IsADirectory | std::io::ErrorKind::InvalidData => {
            Ok(None)
        }
        _ => Err(err),
    }
}
