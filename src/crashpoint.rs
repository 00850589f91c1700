//! Crash points: the places between durable steps (database commits,
//! artifact renames, manifest lines, pointer writes, audit rows) where the
//! crash tests kill a job on purpose — at a step, not after a guessed time,
//! so the tests do not depend on the machine's speed.
//!
//! Off unless the environment asks (one relaxed load per point otherwise):
//! - `SWINGML_CRASH_AFTER=N`: the N-th point reached sends the process
//!   SIGKILL, exactly what `kill -9` does (no destructor, no flush);
//! - `SWINGML_CRASH_TRACE=FILE`: every point reached appends its name to
//!   FILE (how many there are in a run, and where).
//!
//! A leaf: the store, the database and the jobs call it.

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub const CRASH_AFTER_VAR: &str = "SWINGML_CRASH_AFTER";
pub const CRASH_TRACE_VAR: &str = "SWINGML_CRASH_TRACE";
/// `SWINGML_PAUSE_AT=N` with `SWINGML_PAUSE_FILE=PATH`: at the N-th point
/// the process creates PATH and waits until PATH.go exists (a test does
/// something to the world — kills the database server — in between).
pub const PAUSE_AT_VAR: &str = "SWINGML_PAUSE_AT";
pub const PAUSE_FILE_VAR: &str = "SWINGML_PAUSE_FILE";

struct Plan {
    after: Option<u64>,
    trace: Option<std::path::PathBuf>,
    pause: Option<(u64, std::path::PathBuf)>,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let after = std::env::var(CRASH_AFTER_VAR).ok().and_then(|v| v.parse().ok());
        let trace = std::env::var_os(CRASH_TRACE_VAR).map(std::path::PathBuf::from);
        let pause = std::env::var(PAUSE_AT_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .zip(std::env::var_os(PAUSE_FILE_VAR).map(std::path::PathBuf::from));
        (after.is_some() || trace.is_some() || pause.is_some()).then_some(Plan { after, trace, pause })
    })
    .as_ref()
}

/// Mark a crash point.
pub fn reach(name: &str) {
    static REACHED: AtomicU64 = AtomicU64::new(0);
    let Some(plan) = plan() else {
        return;
    };
    let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(path) = &plan.trace
        && let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(file, "{n} {name}");
    }
    if let Some((at, file)) = &plan.pause
        && *at == n
    {
        let _ = std::fs::write(file, name);
        let go = file.with_extension("go");
        while !go.exists() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    if plan.after == Some(n) {
        // SAFETY: kill(2) on our own pid; SIGKILL cannot be caught.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

pub const FAULT_VAR: &str = "SWINGML_FAULT";

/// An I/O error injected at a store write step, for the fault tests:
/// `SWINGML_FAULT=ENOSPC@after_temp_write` makes every pass through that
/// step fail as a full disk would (also `EROFS`, `EIO`, `EACCES`).
pub fn injected_fault(name: &str) -> Option<std::io::Error> {
    static FAULT: OnceLock<Option<(i32, String)>> = OnceLock::new();
    let (errno, at) = FAULT
        .get_or_init(|| {
            let raw = std::env::var(FAULT_VAR).ok()?;
            let (code, at) = raw.split_once('@')?;
            let errno = match code {
                "ENOSPC" => libc::ENOSPC,
                "EROFS" => libc::EROFS,
                "EIO" => libc::EIO,
                "EACCES" => libc::EACCES,
                _ => return None,
            };
            Some((errno, at.to_string()))
        })
        .as_ref()?;
    (at == name).then(|| std::io::Error::from_raw_os_error(*errno))
}
