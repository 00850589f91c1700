//! Advisory file locks (flock). A lock dies with its file descriptor: it is
//! released on drop and by the kernel when the process dies, even by
//! SIGKILL, so there is never a stale lock to clean up.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A held exclusive lock; released on drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

/// Who holds a job lock, as written into the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub since: String,
    /// The holder's host, for a lease on shared storage.
    pub host: Option<String>,
}

impl FileLock {
    /// Block until the lock is ours.
    pub fn acquire(path: &Path) -> io::Result<FileLock> {
        let file = open_lock_file(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(FileLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Take the lock if free; otherwise `Ok(Err(holder))` with whoever holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Result<FileLock, Option<Holder>>> {
        let mut file = open_lock_file(path)?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => Ok(Ok(FileLock {
                file,
                path: path.to_path_buf(),
            })),
            Err(err) if err.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                let mut text = String::new();
                file.read_to_string(&mut text)?;
                Ok(Err(parse_holder(&text)))
            }
            Err(err) => Err(err),
        }
    }

    /// Record the holder (pid and start time) for the "already running" message.
    pub fn write_holder(&mut self, since: &str) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        writeln!(self.file, "pid={} since={since}", std::process::id())?;
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlock explicitly so
        // the release does not wait for other clones of the descriptor.
        let _ = flock(&self.file, libc::LOCK_UN);
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), operation) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

pub(crate) fn parse_holder(text: &str) -> Option<Holder> {
    let mut pid = None;
    let mut since = None;
    let mut host = None;
    for part in text.split_whitespace() {
        if let Some(v) = part.strip_prefix("pid=") {
            pid = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("since=") {
            since = Some(v.to_string());
        } else if let Some(v) = part.strip_prefix("host=") {
            host = Some(v.to_string());
        }
    }
    Some(Holder {
        pid: pid?,
        since: since?,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.lock");
        let mut first = FileLock::try_acquire(&path).unwrap().unwrap();
        first.write_holder("2026-01-01T00:00:00Z").unwrap();
        let refused = FileLock::try_acquire(&path).unwrap().unwrap_err().unwrap();
        assert_eq!(refused.pid, std::process::id());
        assert_eq!(refused.since, "2026-01-01T00:00:00Z");
        drop(first);
        assert!(FileLock::try_acquire(&path).unwrap().is_ok());
    }
}
