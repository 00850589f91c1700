//! Job leases on object storage: a lock that lives in a bucket, taken if
//! absent or expired, renewed while the job runs, and a fence that stops
//! the job's commits once the lease may be someone else's.

use std::io;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::lock::{Holder, parse_holder};
use super::remote::{Folder, Mode, Put, Version};

/// How long a job's lease lives without renewal; a killed job blocks the
/// next one at most this long. `SWINGML_S3_LEASE_SECS` overrides it.
const DEFAULT_LEASE_SECS: u64 = 60;
pub const LEASE_SECS_VAR: &str = "SWINGML_S3_LEASE_SECS";

/// A job lock on object storage: an object created only if absent, renewed
/// by a thread while the job runs, released (rewritten as expired, only if
/// it is still ours) when it ends. An expired lease (its holder was killed
/// or stalled) is taken over by a conditional replace, so two jobs never
/// both take it.
///
/// The lease fences: its [`Fence`] knows until when the lease is surely
/// ours — the moment the last confirmed write (take or renewal) was sent,
/// plus the lease's life, less a quarter of it for the hosts' clocks — and
/// the store refuses to commit after that, or once a renewal found the
/// lease taken over. A renewal request gives up after a quarter of the
/// lease, so one slow request cannot outlive it.
pub struct Lease {
    folder: Folder,
    name: String,
    fence: Arc<Fence>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<Option<(Version, String)>>>,
}

/// Until when a lease is surely its holder's.
#[derive(Debug)]
pub struct Fence {
    location: String,
    state: std::sync::Mutex<FenceState>,
}

#[derive(Debug, Clone, Copy)]
struct FenceState {
    valid_until: std::time::Instant,
    taken_over: bool,
    /// The lease was released: the fence no longer applies.
    released: bool,
}

impl Fence {
    fn confirm(&self, sent: std::time::Instant, ttl: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.valid_until = state.valid_until.max(sent + ttl - ttl / 4);
    }

    fn lose(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).taken_over = true;
    }

    fn release(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).released = true;
    }

    /// What is left of the lease, surely (`None` once released).
    pub fn remaining(&self) -> Option<Duration> {
        let state = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        (!state.released).then(|| state.valid_until.saturating_duration_since(std::time::Instant::now()))
    }

    /// `Err(why)` once the lease may be someone else's.
    pub fn check(&self) -> Result<(), String> {
        let state = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.released {
            return Ok(());
        }
        if state.taken_over {
            return Err(format!(
                "the job's lease {} was taken over by another job",
                self.location
            ));
        }
        let now = std::time::Instant::now();
        if now > state.valid_until {
            return Err(format!(
                "the job's lease {} has not been confirmed for too long (renewal late or failing; lapsed {:.1} s ago)",
                self.location,
                (now - state.valid_until).as_secs_f64()
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", self.folder.location(&self.name))
    }
}

impl Lease {
    /// Take the lease if free or expired; otherwise `Ok(Err(holder))`.
    pub fn try_acquire(folder: &Folder, name: &str, since: &str) -> io::Result<Result<Lease, Option<Holder>>> {
        let ttl = lease_duration();
        // A few rounds: a lease may vanish or be taken over between the reads.
        for _ in 0..3 {
            let body = lease_text(since, ttl);
            let sent = std::time::Instant::now();
            match folder.put(name, body.clone(), Mode::Create)? {
                Put::Done(version) => return Ok(Ok(Lease::hold(folder, name, since, version, body, sent))),
                // A create retried after a lost reply is refused by itself.
                Put::Refused => {
                    if let Some(version) = ours(folder, name, &body)? {
                        return Ok(Ok(Lease::hold(folder, name, since, version, body, sent)));
                    }
                }
            }
            let Some((bytes, version)) = folder.get(name)? else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            if !expired(&text) {
                return Ok(Err(parse_holder(&text)));
            }
            tracing::warn!(
                "{}: taking over an expired lease ({})",
                folder.location(name),
                text.trim()
            );
            let sent = std::time::Instant::now();
            match folder.put(name, body.clone(), Mode::Replace(version))? {
                Put::Done(version) => return Ok(Ok(Lease::hold(folder, name, since, version, body, sent))),
                Put::Refused => {
                    if let Some(version) = ours(folder, name, &body)? {
                        return Ok(Ok(Lease::hold(folder, name, since, version, body, sent)));
                    }
                }
            }
        }
        Ok(Err(None))
    }

    /// The lease's fence, for the store's commits to check.
    pub fn fence(&self) -> Arc<Fence> {
        Arc::clone(&self.fence)
    }

    fn hold(
        folder: &Folder,
        name: &str,
        since: &str,
        version: Version,
        body: String,
        sent: std::time::Instant,
    ) -> Lease {
        let ttl = lease_duration();
        let fence = Arc::new(Fence {
            location: folder.location(name),
            state: std::sync::Mutex::new(FenceState {
                valid_until: sent,
                taken_over: false,
                released: false,
            }),
        });
        fence.confirm(sent, ttl);
        let (stop, stopped) = mpsc::channel::<()>();
        let renew_folder = folder.clone();
        let renew_name = name.to_string();
        let renew_fence = Arc::clone(&fence);
        let since = since.to_string();
        // The renewer returns the lease's version and body while it is ours.
        let renewer = std::thread::spawn(move || {
            let (mut version, mut body) = (version, body);
            loop {
                match stopped.recv_timeout(ttl / 3) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return Some((version, body)),
                }
                let next = lease_text(&since, ttl);
                let sent = std::time::Instant::now();
                let put = renew_folder.put_within(&renew_name, next.clone(), Mode::Replace(version.clone()), ttl / 4);
                let landed = match put {
                    Ok(Put::Done(v)) => Some(v),
                    // A renewal applied but answered with an error, then
                    // refused on retry, is still ours: the body says so.
                    Ok(Put::Refused) => match ours(&renew_folder, &renew_name, &next) {
                        Ok(Some(v)) => Some(v),
                        Ok(None) => {
                            renew_fence.lose();
                            tracing::error!(
                                "{}: the job's lease was taken over (renewal came too late); this job commits nothing more",
                                renew_folder.location(&renew_name)
                            );
                            return None;
                        }
                        Err(err) => {
                            tracing::warn!("{}: lease renewal failed: {err}", renew_folder.location(&renew_name));
                            None
                        }
                    },
                    // A passing network error or a slow answer: the next round tries again.
                    Err(err) => {
                        tracing::warn!("{}: lease renewal failed: {err}", renew_folder.location(&renew_name));
                        None
                    }
                };
                if let Some(v) = landed {
                    renew_fence.confirm(sent, ttl);
                    (version, body) = (v, next);
                }
            }
        });
        Lease {
            folder: folder.clone(),
            name: name.to_string(),
            fence,
            stop: Some(stop),
            renewer: Some(renewer),
        }
    }
}

/// The version of the lease object when it is held by the holder `body`
/// describes (this process, this take): every field but the expiry alike,
/// so a renewal that timed out and landed later is still recognised.
fn ours(folder: &Folder, name: &str, body: &str) -> io::Result<Option<Version>> {
    let holder = |text: &str| -> Vec<String> {
        text.split_whitespace()
            .filter(|field| !field.starts_with("expires="))
            .map(str::to_string)
            .collect()
    };
    Ok(folder
        .get(name)?
        .filter(|(bytes, _)| holder(&String::from_utf8_lossy(bytes)) == holder(body))
        .map(|(_, version)| version))
}

impl Drop for Lease {
    /// Release: rewrite the lease as expired, only if it is still ours (a
    /// conditional replace: a job that lost it never frees the new holder's).
    fn drop(&mut self) {
        drop(self.stop.take());
        self.fence.release();
        let held = self.renewer.take().and_then(|r| r.join().ok().flatten());
        let Some((version, body)) = held else {
            return;
        };
        let released = body.replace("expires=", "released=") + "expires=1970-01-01T00:00:00.000Z\n";
        match self.folder.put(&self.name, released, Mode::Replace(version)) {
            Ok(Put::Done(_)) => {}
            Ok(Put::Refused) => tracing::warn!(
                "{}: the lease was no longer ours at release; left as it is",
                self.folder.location(&self.name)
            ),
            Err(err) => tracing::warn!(
                "{}: could not release the lease (it expires by itself): {err}",
                self.folder.location(&self.name)
            ),
        }
    }
}

fn lease_duration() -> Duration {
    let secs = std::env::var(LEASE_SECS_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LEASE_SECS);
    // A day at most: a larger value would overflow the expiry stamp (and a
    // lease that long would block the next job for as long).
    Duration::from_secs(secs.min(MAX_LEASE_SECS))
}

const MAX_LEASE_SECS: u64 = 86_400;

fn lease_text(since: &str, ttl: Duration) -> String {
    let expires = chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    let pid = std::process::id();
    format!(
        "pid={pid} since={since} host={} boot={} pidns={} start={} expires={}\n",
        host_name(),
        boot_id().unwrap_or_default(),
        pid_namespace().unwrap_or_default(),
        start_time(pid).unwrap_or_default(),
        expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// Whether no process `pid` exists (signal 0 checks without sending).
fn process_absent(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let answer = unsafe { libc::kill(pid, 0) };
    answer != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// This boot of the kernel (a cloned VM or a rebooted host has another).
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|i| !i.is_empty())
}

/// The pid namespace this process lives in (containers sharing a host
/// name have their own).
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_string_lossy();
    text.strip_prefix("pid:[")?.strip_suffix(']').map(str::to_string)
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// /proc/PID/stat): a recycled pid has another.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19).map(str::to_string)
}

/// A lease whose expiry passed, one whose holder is surely gone (a killed
/// cron job does not block the next one on the same machine), or one that
/// cannot be read (a lease is only ever written whole, so that is a
/// hand-made object).
///
/// "Surely gone" needs the same host, the same boot, the same pid
/// namespace and a pid that is either absent or a process started at
/// another time: a host name and a pid alone judge a live holder dead in a
/// container with the host's name, on a cloned VM, or under `hidepid`. A
/// lease that lacks any of them (older leases) waits for its expiry.
fn expired(text: &str) -> bool {
    let field = |key: &str| {
        text.split_whitespace()
            .find_map(|part| part.strip_prefix(key))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let expires = field("expires=").and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok());
    let here = field("host=").is_some_and(|h| h == host_name())
        && field("boot=").is_some_and(|b| Some(b) == boot_id())
        && field("pidns=").is_some_and(|n| Some(n) == pid_namespace());
    let holder_gone = here
        && field("start=")
            .zip(field("pid=").and_then(|p| p.parse::<u32>().ok()))
            .is_some_and(|(start, pid)| {
                // No such process (kill(pid, 0) says ESRCH; EPERM is another
                // user's live process, which `hidepid` hides from /proc), or
                // a recycled pid (another start time).
                process_absent(pid) || start_time(pid).is_some_and(|now| now != start)
            });
    holder_gone || expires.is_none_or(|t| t < chrono::Utc::now())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_at_its_stamp() {
        let live = lease_text("2026-01-01T00:00:00Z", Duration::from_secs(60));
        assert!(!expired(&live));
        let holder = parse_holder(&live).unwrap();
        assert_eq!(holder.pid, std::process::id());
        assert!(expired("pid=1 since=x expires=2020-01-01T00:00:00.000Z"));
        assert!(expired("garbage"));
        // Held by a process of this host, boot and pid namespace that is
        // gone: free before expiry.
        let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        let here = format!(
            "host={} boot={} pidns={}",
            host_name(),
            boot_id().unwrap(),
            pid_namespace().unwrap()
        );
        assert!(expired(&format!("pid=4294967 since=x {here} start=1 expires={later}")));
        // This very process, with its own start time: alive.
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(!expired(&format!(
            "pid={me} since=x {here} start={start} expires={later}"
        )));
        // The same pid started at another time (recycled): gone.
        assert!(expired(&format!(
            "pid={me} since=x {here} start=1{start} expires={later}"
        )));
        // Another boot (a cloned VM), another pid namespace (a container
        // with the host's name), or an old lease without them: expiry only.
        let host = host_name();
        for other in [
            format!("host={host} boot=other pidns={} start=1", pid_namespace().unwrap()),
            format!("host={host} boot={} pidns=1 start=1", boot_id().unwrap()),
            format!("host={host}"),
        ] {
            assert!(
                !expired(&format!("pid=4294967 since=x {other} expires={later}")),
                "{other}"
            );
        }
        // The same pid on another host: only its expiry counts.
        assert!(!expired(&format!("pid=4294967 since=x host=elsewhere expires={later}")));
    }
}
