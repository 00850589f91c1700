//! `manifest.jsonl`: one JSON object per line, appended under an exclusive
//! lock and fsync'd. A line is the commit point of what it describes: an
//! artifact without a line is an orphan; a promotion without a line never
//! happened. Each line carries the `commit` id its writer chose for that
//! attempt: a writer whose reply was lost (a 5xx or a dropped connection
//! after the server applied the write, then a refused retry) finds its id
//! in the manifest and knows its commit landed. Lines written before ids
//! existed have none.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum ManifestEntry {
    Artifact(ArtifactRecord),
    Promotion(PointerChange),
    Rollback(PointerChange),
    /// A promotion decision that did not move the pointer (kept for audit).
    Decision(DecisionRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub run_id: String,
    pub job: String,
    pub promoted: bool,
    pub reason: String,
    pub created_at: String,
}

/// A committed artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub name: String,
    pub kind: String,
    pub version: u32,
    pub sha256: String,
    pub bytes: u64,
    pub created_at: String,
    pub job: String,
    pub run_id: String,
    /// File name of the sidecar and its hash.
    pub meta: String,
    pub meta_sha256: String,
}

/// A pointer move (promotion or rollback) with the pointer it set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointerChange {
    pub pointer: ProductionPointer,
}

/// `production.json`: which artifact of each model kind is live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionPointer {
    pub watchlist: String,
    /// kind -> the live artifact of that kind.
    pub artifacts: BTreeMap<String, ArtifactRef>,
    pub since: String,
    pub promoted_by_run: String,
    pub job: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub name: String,
    pub version: u32,
    pub sha256: String,
}

/// The parsed manifest, with what could not be parsed.
#[derive(Debug, Default)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
    /// The commit id of each entry (`None` for lines older than ids).
    pub commits: Vec<Option<String>>,
    /// (line number, error) for lines that are not valid entries.
    pub bad_lines: Vec<(usize, String)>,
    /// A last line without its newline: an append torn by a crash, never
    /// committed.
    pub torn_tail: bool,
}

impl Manifest {
    pub fn parse(text: &[u8]) -> Manifest {
        let mut manifest = Manifest::default();
        let mut rest = text;
        let mut number = 0;
        while !rest.is_empty() {
            number += 1;
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                manifest.torn_tail = true;
                break;
            };
            match serde_json::from_slice::<ManifestEntry>(&rest[..end]) {
                Ok(entry) => {
                    let commit = serde_json::from_slice::<CommitId>(&rest[..end])
                        .ok()
                        .and_then(|c| c.commit);
                    manifest.entries.push(entry);
                    manifest.commits.push(commit);
                }
                Err(err) => manifest.bad_lines.push((number, err.to_string())),
            }
            rest = &rest[end + 1..];
        }
        manifest
    }

    /// Whether a line with commit id `id` is in the manifest.
    pub fn has_commit(&self, id: &str) -> bool {
        self.commits.iter().any(|c| c.as_deref() == Some(id))
    }

    pub fn artifacts(&self) -> impl Iterator<Item = &ArtifactRecord> {
        self.entries.iter().filter_map(|e| match e {
            ManifestEntry::Artifact(a) => Some(a),
            _ => None,
        })
    }

    /// Next version number for `kind` (1 for the first).
    pub fn next_version(&self, kind: &str) -> u32 {
        self.artifacts()
            .filter(|a| a.kind == kind)
            .map(|a| a.version)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// The live pointer: promotions push, rollbacks pop back to the one
    /// before.
    pub fn pointer_history(&self) -> Vec<&ProductionPointer> {
        let mut stack: Vec<&ProductionPointer> = Vec::new();
        for entry in &self.entries {
            match entry {
                ManifestEntry::Promotion(change) => stack.push(&change.pointer),
                ManifestEntry::Rollback(change) => {
                    // Drop the live pointer; the line carries the one it
                    // restored (same artifacts, the rollback's time and run).
                    stack.pop();
                    if let Some(top) = stack.last_mut() {
                        *top = &change.pointer;
                    }
                }
                ManifestEntry::Artifact(_) | ManifestEntry::Decision(_) => {}
            }
        }
        stack
    }

    /// Whether run `run_id` recorded a promotion decision (moved the
    /// pointer, or said why not).
    pub fn decided(&self, run_id: &str) -> bool {
        self.entries.iter().any(|e| match e {
            ManifestEntry::Promotion(change) => change.pointer.promoted_by_run == run_id,
            ManifestEntry::Decision(d) => d.run_id == run_id,
            ManifestEntry::Artifact(_) | ManifestEntry::Rollback(_) => false,
        })
    }

    pub fn current_pointer(&self) -> Option<&ProductionPointer> {
        self.pointer_history().last().copied()
    }
}

/// Append one entry. The caller holds the manifest lock. A torn tail from
/// an earlier crash is cut off first, so lines never run together.
/// The `commit` field of a line (the entry's own fields are ignored here).
#[derive(Deserialize)]
struct CommitId {
    commit: Option<String>,
}

/// A manifest line: the entry's fields in their order, then its commit
/// id, ending in `\n`.
pub fn line(entry: &ManifestEntry, commit: &str) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    debug_assert_eq!(line.last(), Some(&b'}'));
    line.pop();
    line.extend_from_slice(b",\"commit\":");
    line.extend(serde_json::to_vec(commit).map_err(io::Error::other)?);
    line.extend_from_slice(b"}\n");
    Ok(line)
}

/// A commit id no other attempt of any writer uses: the time in
/// nanoseconds, the process and a counter of this process's attempts.
pub fn new_commit_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:x}-{:x}-{:x}",
        std::process::id(),
        ATTEMPTS.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn append(path: &Path, entry: &ManifestEntry, commit: &str) -> io::Result<()> {
    let new = !path.exists();
    let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
    if new && let Some(dir) = path.parent() {
        // The first line's file is a new name in the folder: durable only
        // once the folder's entry is.
        super::atomic::sync_dir(dir)?;
    }
    cut_torn_tail(&mut file)?;
    let line = line(entry, commit)?;
    // One write call per line: with O_APPEND and the lock, lines never interleave.
    file.write_all(&line)?;
    file.sync_all()
}

fn cut_torn_tail(file: &mut File) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    let mut content = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut content)?;
    let keep = content.iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0);
    tracing::warn!(
        bytes = len as usize - keep,
        "cutting a torn manifest line left by an interrupted write"
    );
    file.set_len(keep as u64)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, version: u32) -> ManifestEntry {
        ManifestEntry::Artifact(ArtifactRecord {
            name: format!("{kind}_v{version}"),
            kind: kind.into(),
            version,
            sha256: "00".into(),
            bytes: 1,
            created_at: "t".into(),
            job: "j".into(),
            run_id: "r".into(),
            meta: "m".into(),
            meta_sha256: "00".into(),
        })
    }

    #[test]
    fn torn_tail_is_ignored_then_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.jsonl");
        append(&path, &record("a", 1), "c1").unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"entry\":\"artif").unwrap();
        let m = Manifest::parse(&std::fs::read(&path).unwrap());
        assert_eq!(m.entries.len(), 1);
        assert!(m.torn_tail);
        append(&path, &record("a", 2), "c2").unwrap();
        let m = Manifest::parse(&std::fs::read(&path).unwrap());
        assert_eq!(m.entries.len(), 2);
        assert!(m.has_commit("c1") && m.has_commit("c2") && !m.has_commit("c3"));
        // A line from before commit ids parses, without one.
        let old = Manifest::parse(&[serde_json::to_vec(&record("a", 1)).unwrap(), b"\n".to_vec()].concat());
        assert_eq!((old.entries.len(), old.commits.clone()), (1, vec![None]));
        assert!(!m.torn_tail && m.bad_lines.is_empty());
        assert_eq!(m.next_version("a"), 3);
        assert_eq!(m.next_version("b"), 1);
    }
}
