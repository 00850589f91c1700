//! Where one watchlist's artifacts live: a local folder or a folder in a
//! bucket. The store's protocol (mod.rs) is written once against these
//! few operations; each place keeps its own way of being atomic (temp file
//! and rename under a file lock, or conditional puts).

use std::io;
use std::path::{Path, PathBuf};

use super::atomic::{self, Written};
use super::lock::FileLock;
use super::manifest::{Manifest, ManifestEntry};
use super::names::file_in;
use super::remote::{self, Folder, Mode, Put};
use super::{MANIFEST, MANIFEST_LOCK};

#[derive(Debug, Clone)]
pub(crate) enum Place {
    Dir(PathBuf),
    Bucket(Folder),
}

/// The manifest as a writer read it: what its next commit builds on.
pub(crate) struct ManifestRead {
    pub manifest: Manifest,
    /// The complete lines (a torn tail cut off).
    text: Vec<u8>,
    /// The object's version, for the compare-and-swap (bucket only).
    pub version: Option<remote::Version>,
}

/// Held while a commit decides and appends: the folder's manifest lock;
/// nothing on a bucket, where the conditional put is the arbiter.
pub(crate) type CommitGuard = Option<FileLock>;

impl ManifestRead {
    /// The manifest's text up to its last newline.
    pub fn complete_lines(&self) -> &[u8] {
        &self.text
    }
}

impl Place {
    pub fn location(&self, name: &str) -> String {
        match self {
            Place::Dir(dir) => dir.join(name).display().to_string(),
            Place::Bucket(folder) => folder.location(name),
        }
    }

    pub fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match self {
            Place::Dir(dir) => match std::fs::read(file_in(dir, name)?) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Place::Bucket(folder) => Ok(folder.get(name)?.map(|(bytes, _)| bytes)),
        }
    }

    pub fn exists(&self, name: &str) -> io::Result<bool> {
        match self {
            Place::Dir(dir) => Ok(file_in(dir, name)?.exists()),
            Place::Bucket(folder) => folder.exists(name),
        }
    }

    /// Hash and size of a file, streamed from disk; an object is read whole.
    pub fn sha256_of(&self, name: &str) -> io::Result<Option<Written>> {
        match self {
            Place::Dir(dir) => match atomic::sha256_file(&file_in(dir, name)?) {
                Ok(found) => Ok(Some(found)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            // Streamed: a 1.3 GB snapshot is never held in memory.
            Place::Bucket(folder) => {
                use sha2::Digest;
                let mut hasher = sha2::Sha256::new();
                let size = folder.for_each_chunk(name, |chunk| {
                    hasher.update(chunk);
                    Ok(())
                })?;
                Ok(size.map(|bytes| Written {
                    sha256: atomic::hex(&hasher.finalize()),
                    bytes,
                }))
            }
        }
    }

    /// Write a new name; `false` when the name is taken (never overwritten).
    /// On a folder the check and the rename are two steps: callers hold
    /// the manifest lock, the only way to write under the root.
    pub fn create(&self, name: &str, bytes: Vec<u8>) -> io::Result<bool> {
        match self {
            Place::Dir(dir) => {
                let path = file_in(dir, name)?;
                if path.exists() {
                    return Ok(false);
                }
                atomic::write_bytes(&path, &bytes)?;
                Ok(true)
            }
            Place::Bucket(folder) => Ok(matches!(folder.put(name, bytes, Mode::Create)?, Put::Done(_))),
        }
    }

    /// Replace a name's content whole (`production.json`, a repair's saved lines).
    pub fn replace(&self, name: &str, bytes: Vec<u8>) -> io::Result<()> {
        match self {
            Place::Dir(dir) => atomic::write_bytes(&file_in(dir, name)?, &bytes).map(|_| ()),
            Place::Bucket(folder) => folder.put(name, bytes, Mode::Overwrite).map(|_| ()),
        }
    }

    /// Remove an uncommitted file or object; one already gone is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match self {
            Place::Dir(dir) => match std::fs::remove_file(file_in(dir, name)?) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Place::Bucket(folder) => folder.delete(name),
        }
    }

    /// The names of the files (objects) in the folder, not in sub-folders.
    pub fn names(&self) -> io::Result<Vec<String>> {
        match self {
            Place::Dir(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                Ok(entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect())
            }
            Place::Bucket(folder) => folder.names(),
        }
    }

    /// Take the manifest lock of a folder; a bucket needs none.
    pub fn guard(&self) -> io::Result<CommitGuard> {
        match self {
            Place::Dir(dir) => {
                std::fs::create_dir_all(dir.join(".locks"))?;
                FileLock::acquire(&dir.join(MANIFEST_LOCK)).map(Some)
            }
            Place::Bucket(_) => Ok(None),
        }
    }

    pub fn read_manifest(&self) -> io::Result<ManifestRead> {
        let (text, version) = match self {
            Place::Dir(dir) => match std::fs::read(dir.join(MANIFEST)) {
                Ok(bytes) => (bytes, None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), None),
                Err(e) => return Err(e),
            },
            Place::Bucket(folder) => match folder.get(MANIFEST)? {
                Some((bytes, version)) => (bytes, Some(version)),
                None => (Vec::new(), None),
            },
        };
        let manifest = Manifest::parse(&text);
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut text = text;
        text.truncate(complete);
        Ok(ManifestRead {
            manifest,
            text,
            version,
        })
    }

    /// Append one line to the manifest `read` was read from. On a folder
    /// the caller holds the manifest lock and this always lands; on a
    /// bucket it lands only if nobody committed since `read` (`false`:
    /// read again and decide again). On a bucket the write is given up
    /// (an error) after `deadline`, when there is one (a job lease's).
    pub fn append_manifest(
        &self,
        read: &ManifestRead,
        entry: &ManifestEntry,
        commit: &str,
        deadline: Option<std::time::Duration>,
    ) -> io::Result<bool> {
        match self {
            Place::Dir(dir) => super::manifest::append(&dir.join(MANIFEST), entry, commit).map(|()| true),
            Place::Bucket(_) => {
                let mut text = read.text.clone();
                text.extend(super::manifest::line(entry, commit)?);
                self.put_manifest(read, text, deadline)
            }
        }
    }

    /// Replace the whole manifest (a repair) unless it changed since `read`.
    pub fn replace_manifest(&self, read: &ManifestRead, text: Vec<u8>) -> io::Result<bool> {
        self.put_manifest(read, text, None)
    }

    fn put_manifest(
        &self,
        read: &ManifestRead,
        text: Vec<u8>,
        deadline: Option<std::time::Duration>,
    ) -> io::Result<bool> {
        match self {
            Place::Dir(dir) => atomic::write_bytes(&dir.join(MANIFEST), &text).map(|_| true),
            Place::Bucket(folder) => {
                let mode = match &read.version {
                    Some(version) => Mode::Replace(version.clone()),
                    None => Mode::Create,
                };
                let put = match deadline {
                    Some(limit) => folder.put_within(MANIFEST, text, mode, limit)?,
                    None => folder.put(MANIFEST, text, mode)?,
                };
                Ok(matches!(put, Put::Done(_)))
            }
        }
    }

    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            Place::Dir(dir) => Some(dir),
            Place::Bucket(_) => None,
        }
    }
}
