//! The one way bytes reach a final name in the store.
//!
//! Crash guarantee: a file under its final name is always complete. It is
//! written to a temporary file in the same folder (`.tmp-…`), flushed and
//! fsync'd, renamed into place (atomic on POSIX file systems), and the
//! folder is fsync'd so the rename survives a power loss. A crash at any
//! moment leaves either nothing under the final name or the whole file; a
//! leftover temporary file is an orphan that `verify` reports.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Prefix of temporary files; never a final artifact name.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hash and size of a completed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub sha256: String,
    pub bytes: u64,
}

/// What a temporary file is written through.
pub type Sink = HashingWriter<io::BufWriter<File>>;

/// A temporary file in the destination folder; removed on drop unless
/// persisted.
pub struct TempFile {
    path: PathBuf,
    writer: Option<Sink>,
    persisted: bool,
}

impl TempFile {
    pub fn create(dir: &Path, hint: &str) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TEMP_PREFIX}{}-{}-{unique}-{hint}", std::process::id(), nanos());
        let path = dir.join(name);
        // Readable by its owner only while it is being written (a staging
        // copy in the shared temporary folder is nobody else's business);
        // it gets the usual 0644 when it is put in place.
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?
        };
        let writer = HashingWriter::new(io::BufWriter::with_capacity(1 << 16, file));
        Ok(TempFile {
            path,
            writer: Some(writer),
            persisted: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn writer(&mut self) -> &mut Sink {
        self.writer
            .as_mut()
            .expect("writer is in place between take_writer and put_writer")
    }

    /// Move the writer out, for a writer type that must own its sink (the
    /// Parquet writer); give it back with [`TempFile::put_writer`] before
    /// `finish`.
    pub fn take_writer(&mut self) -> Sink {
        self.writer.take().expect("writer taken once")
    }

    pub fn put_writer(&mut self, writer: Sink) {
        self.writer = Some(writer);
    }

    /// Flush and fsync; the content is now durable under the temporary name.
    pub fn finish(&mut self) -> io::Result<Written> {
        let writer = self
            .writer
            .take()
            .expect("finish called once, with the writer in place");
        let HashingWriter { inner, hasher, bytes } = writer;
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        failpoint("after_temp_write")?;
        Ok(Written {
            sha256: hex(&hasher.finalize()),
            bytes,
        })
    }

    /// Rename into place and fsync the folder.
    pub fn persist(mut self, final_path: &Path) -> io::Result<()> {
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::rename(&self.path, final_path)?;
        self.persisted = true;
        // A bare file name (`--parquet rows.parquet`) lives in ".": its
        // parent is the empty path, which cannot be opened.
        sync_dir(parent_or_dot(final_path))?;
        failpoint("after_rename")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Write `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<Written> {
    write_with(path, |w| w.write_all(bytes))
}

/// Write to `path` atomically, the content produced by `fill`.
pub fn write_with<F>(path: &Path, fill: F) -> io::Result<Written>
where
    F: FnOnce(&mut HashingWriter<io::BufWriter<File>>) -> io::Result<()>,
{
    let dir = parent_or_dot(path);
    let hint = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut temp = TempFile::create(dir, hint)?;
    fill(temp.writer())?;
    let written = temp.finish()?;
    temp.persist(path)?;
    Ok(written)
}

pub fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync a folder so that renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<Written> {
    let mut file = File::open(path)?;
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher)?;
    Ok(Written {
        sha256: hex(&hasher.hasher.finalize()),
        bytes: hasher.bytes,
    })
}

/// SHA-256 of bytes in memory, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

thread_local! {
    static FAILPOINTS: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// Make the named step of the write protocol fail on this thread (tests
/// inject failures between the steps: `after_temp_write`, `after_rename`,
/// `before_manifest`). Returns a guard that clears it.
pub fn inject_failure(name: &'static str) -> FailpointGuard {
    FAILPOINTS.with(|f| f.borrow_mut().push(name));
    FailpointGuard(name)
}

pub struct FailpointGuard(&'static str);

impl Drop for FailpointGuard {
    fn drop(&mut self) {
        FAILPOINTS.with(|f| f.borrow_mut().retain(|n| *n != self.0));
    }
}

pub(crate) fn failpoint(name: &'static str) -> io::Result<()> {
    crate::crashpoint::reach(name);
    if let Some(err) = crate::crashpoint::injected_fault(name) {
        return Err(err);
    }
    if FAILPOINTS.with(|f| f.borrow().contains(&name)) {
        return Err(io::Error::other(format!("injected failure at {name}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_bytes_hashes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        let w = write_bytes(&path, b"abc").unwrap();
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            w.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(w.bytes, 3);
        write_bytes(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn injected_failure_leaves_previous_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_bytes(&path, b"old").unwrap();
        {
            let _guard = inject_failure("after_temp_write");
            assert!(write_bytes(&path, b"new").is_err());
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temp file removed");
    }
}
