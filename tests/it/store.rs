//! The artifact store under crashes, injected failures and concurrency,
//! and the `artifacts` binary.
//!
//! Child processes are this test binary run again with one test selected
//! and `SWINGML_STORE_CHILD` set (see [`store_child`]): they write through
//! the real store code and are killed with SIGKILL.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use swingml::store::atomic::inject_failure;
use swingml::store::{NameStyle, NewArtifact, Store, StoreError, WatchlistStore, Writer};

use crate::common::TestContext;

const CHILD_MODE: &str = "SWINGML_STORE_CHILD";
const CHILD_DIR: &str = "SWINGML_STORE_DIR";
const CHILD_SEED: &str = "SWINGML_STORE_SEED";

/// Small deterministic generator (xorshift64*): seeded kills and sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn writer(run: &str) -> Writer {
    Writer {
        job: "test".into(),
        run_id: run.into(),
    }
}

/// Self-checking payload: length prefix, bytes, end marker.
fn payload(len: usize, fill: u8) -> Vec<u8> {
    let mut out = (len as u64).to_le_bytes().to_vec();
    out.extend(std::iter::repeat_n(fill, len));
    out.extend_from_slice(b"END!");
    out
}

fn payload_is_complete(bytes: &[u8]) -> bool {
    bytes.len() >= 12
        && u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 12 == bytes.len()
        && bytes.ends_with(b"END!")
}

/// Not a test of its own: the body of the child processes. Without
/// `SWINGML_STORE_CHILD` it returns at once.
#[test]
fn store_child() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(CHILD_DIR).unwrap());
    let seed: u64 = std::env::var(CHILD_SEED).ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let store = Store::new(&dir).watchlist("wl").unwrap();
    let me = writer(&format!("child-{}", std::process::id()));
    match mode.as_str() {
        "crash" => {
            let mut rng = Rng(seed | 1);
            loop {
                write_models(&store, &me, &mut rng);
            }
        }
        "concurrent" => {
            for i in 0..25 {
                let spec = NewArtifact::new("report", NameStyle::Versioned, "bin");
                store.write_bytes(&me, spec, &payload(100 + i, i as u8)).unwrap();
            }
        }
        "hold_lock" => {
            let _lock = store.lock_job("bootstrap").unwrap();
            println!("locked");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// One "training run": the four pointer kinds, sometimes a promotion.
fn write_models(store: &WatchlistStore, me: &Writer, rng: &mut Rng) {
    let mut records = Vec::new();
    for kind in swingml::store::POINTER_KINDS {
        let len = (rng.below(4) as usize).pow(6) * 3 + rng.below(4096) as usize; // up to ~2 MB
        let spec = NewArtifact::new(kind, NameStyle::Versioned, "bin");
        records.push(
            store
                .write_bytes(me, spec, &payload(len, rng.below(256) as u8))
                .unwrap(),
        );
    }
    if rng.below(2) == 0 {
        let refs: Vec<_> = records.iter().collect();
        store.promote(me, &refs, "child promotion").unwrap();
    }
    if rng.below(5) == 0 {
        let _ = store.rollback(me);
    }
}

fn spawn_child(mode: &str, dir: &Path, seed: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["store::store_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .env(CHILD_DIR, dir)
        .env(CHILD_SEED, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Everything a crash may leave must still be a consistent store.
fn assert_consistent(store: &WatchlistStore) {
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "verify problems: {:#?}", report.problems);
    let manifest = store.manifest().unwrap();
    assert!(
        manifest.bad_lines.is_empty(),
        "unparseable manifest lines: {:?}",
        manifest.bad_lines
    );
    for entry in std::fs::read_dir(store.dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !path.is_file() || name.starts_with(".tmp-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".bin") {
            assert!(payload_is_complete(&bytes), "partial file under a final name: {name}");
        } else if name.ends_with(".json") {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .unwrap_or_else(|e| panic!("partial JSON under a final name {name}: {e}"));
        }
    }
    // A promotion the manifest committed is what production() returns; the
    // pointer file is at most one step behind and repairable.
    store.repair_pointer().unwrap();
    assert!(
        store
            .verify()
            .unwrap()
            .warnings
            .iter()
            .all(|w| !w.contains("production.json"))
    );
}

#[test]
fn sigkill_at_random_moments_never_leaves_an_inconsistent_store() {
    let ctx = TestContext::new();
    let root = ctx.artifacts();
    let store = Store::new(&root).watchlist("wl").unwrap();
    let mut rng = Rng(0x5eed_2026);
    let kills = 60;
    for round in 0..kills {
        let mut child = spawn_child("crash", &root, rng.next());
        std::thread::sleep(Duration::from_millis(5 + rng.below(80)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if round % 10 == 9 || round == kills - 1 {
            assert_consistent(&store);
        }
    }
    let committed = store.manifest().unwrap().artifacts().count();
    assert!(
        committed > 20,
        "children committed only {committed} artifacts: kills came too early"
    );
    // Kills landed inside the write protocol, not only between writes.
    assert!(
        !store.verify().unwrap().orphans.is_empty(),
        "no kill interrupted a write"
    );
    // A fresh write after all that succeeds and verifies.
    let record = store
        .write_bytes(
            &writer("after"),
            NewArtifact::new("model_online", NameStyle::Versioned, "bin"),
            &payload(10, 1),
        )
        .unwrap();
    assert!(store.verify().unwrap().is_ok());
    assert_eq!(std::fs::read(store.path_of(&record.name)).unwrap(), payload(10, 1));
}

#[test]
fn injected_failures_between_steps_keep_the_previous_state() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts()).watchlist("wl").unwrap();
    let me = writer("run-1");
    let spec = || NewArtifact::new("model_online", NameStyle::Versioned, "bin");
    let first = store.write_bytes(&me, spec(), &payload(5, 7)).unwrap();
    store.promote(&me, &[&first], "first").unwrap();
    let before = std::fs::read(store.dir().join("manifest.jsonl")).unwrap();
    for step in ["after_temp_write", "after_rename", "before_manifest"] {
        let _guard = inject_failure(step);
        let err = store.write_bytes(&me, spec(), &payload(9, 9)).unwrap_err();
        assert!(format!("{err:#}").contains(step), "{err:#}");
        drop(_guard);
        assert_eq!(
            std::fs::read(store.dir().join("manifest.jsonl")).unwrap(),
            before,
            "{step}: manifest changed"
        );
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "{step}: {:?}", report.problems);
        assert_eq!(
            store.production().unwrap().unwrap().artifacts["model_online"].name,
            first.name
        );
    }
    // What the failed attempts left is listed as orphans, not as problems.
    let report = store.verify().unwrap();
    assert!(report.orphans.len() >= 2, "{:?}", report.orphans);
    let next = store.write_bytes(&me, spec(), &payload(3, 3)).unwrap();
    assert_eq!(next.version, 2);
}

#[test]
fn eight_concurrent_writers_never_interleave_manifest_lines() {
    let ctx = TestContext::new();
    let root = ctx.artifacts();
    let children: Vec<Child> = (0..8).map(|i| spawn_child("concurrent", &root, i)).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let store = Store::new(&root).watchlist("wl").unwrap();
    let text = std::fs::read_to_string(store.dir().join("manifest.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 200);
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every line is one JSON object");
    }
    let mut versions: Vec<u32> = store.manifest().unwrap().artifacts().map(|a| a.version).collect();
    versions.sort();
    assert_eq!(
        versions,
        (1..=200).collect::<Vec<_>>(),
        "versions are unique and gap-free"
    );
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn a_second_job_is_refused_and_the_lock_dies_with_its_holder() {
    let ctx = TestContext::new();
    let root = ctx.artifacts();
    let mut child = spawn_child("hold_lock", &root, 0);
    // The test harness prints its own lines first; wait for ours.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let locked = std::io::BufRead::lines(stdout)
        .map_while(Result::ok)
        .any(|l| l.contains("locked"));
    assert!(locked, "child never took the lock");
    let store = Store::new(&root).watchlist("wl").unwrap();
    let err = store.lock_job("bootstrap").unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, StoreError::AlreadyRunning { pid, .. } if pid == child.id()),
        "{message}"
    );
    assert!(
        message.starts_with("already running: bootstrap for wl since 20"),
        "{message}"
    );
    // Another job kind is not blocked.
    assert!(store.lock_job("score").is_ok());
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.lock_job("bootstrap").is_err() {
        assert!(Instant::now() < deadline, "lock not released after SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn verify_catches_truncation_changed_bytes_missing_files_and_sidecars() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts()).watchlist("wl").unwrap();
    let me = writer("run-1");
    let names: Vec<String> = (0..4)
        .map(|i| {
            store
                .write_bytes(
                    &me,
                    NewArtifact::new("model_batch", NameStyle::Versioned, "txt"),
                    &payload(50, i),
                )
                .unwrap()
                .name
        })
        .collect();
    let run = ctx.run("artifacts", &["--watchlist", "wl", "verify"]);
    run.assert_ok();

    let path = |n: &str| store.path_of(n);
    let truncated = std::fs::read(path(&names[0])).unwrap();
    std::fs::write(path(&names[0]), &truncated[..20]).unwrap();
    let mut changed = std::fs::read(path(&names[1])).unwrap();
    changed[10] ^= 0xff;
    std::fs::write(path(&names[1]), changed).unwrap();
    std::fs::remove_file(path(&names[2])).unwrap();
    std::fs::remove_file(path(&format!("{}.meta.json", names[3]))).unwrap();
    std::fs::write(path("stray.bin"), b"x").unwrap();

    let run = ctx.run("artifacts", &["--watchlist", "wl", "verify"]);
    assert_eq!(run.code, 1);
    let problems: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("problem:")).collect();
    assert_eq!(problems.len(), 4, "{}", run.stdout);
    assert!(
        problems[0].contains(&names[0]) && problems[0].contains("bytes"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains(&names[1]) && problems[1].contains("sha256"),
        "{problems:?}"
    );
    assert!(
        problems[2].contains(&names[2]) && problems[2].contains("missing"),
        "{problems:?}"
    );
    assert!(
        problems[3].contains("sidecar") && problems[3].contains("missing"),
        "{problems:?}"
    );
    assert!(run.stdout.contains("orphan: wl: orphan stray.bin"), "{}", run.stdout);
    assert!(run.error_line().contains("4 problem(s)"));
}

#[test]
fn promote_rollback_and_show_production_through_the_binary() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts()).watchlist("wl").unwrap();
    let write_run = |run: &str| {
        let me = writer(run);
        for kind in swingml::store::POINTER_KINDS {
            store
                .write_bytes(&me, NewArtifact::new(kind, NameStyle::Versioned, "bin"), &payload(8, 1))
                .unwrap();
        }
    };
    write_run("run-a");
    write_run("run-b");
    let show = ctx.run("artifacts", &["--watchlist", "wl", "show-production"]);
    assert_eq!(show.code, 1);
    assert!(
        show.error_line()
            .contains("no production model for wl: run bootstrap first")
    );

    ctx.run("artifacts", &["--watchlist", "wl", "promote", "run-a"])
        .assert_ok();
    ctx.run("artifacts", &["--watchlist", "wl", "promote", "v2"])
        .assert_ok();
    let live = store.production().unwrap().unwrap();
    assert!(live.artifacts.values().all(|r| r.version == 2));
    let shown: serde_json::Value = serde_json::from_str(
        &ctx.run("artifacts", &["--watchlist", "wl", "show-production"])
            .assert_ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(shown["artifacts"]["model_online"]["version"], 2);
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.dir().join("production.json")).unwrap()).unwrap();
    assert_eq!(file["artifacts"]["model_batch"]["version"], 2);

    ctx.run("artifacts", &["--watchlist", "wl", "rollback"]).assert_ok();
    let live = store.production().unwrap().unwrap();
    assert!(live.artifacts.values().all(|r| r.version == 1), "{live:?}");
    let again = ctx.run("artifacts", &["--watchlist", "wl", "rollback"]);
    again.assert_error(2, "no earlier promotion");
    let missing = ctx.run("artifacts", &["--watchlist", "wl", "promote", "run-zzz"]);
    assert_eq!(missing.code, 2);

    let list = ctx
        .run("artifacts", &["--watchlist", "wl", "list", "--kind", "model_online"])
        .assert_ok()
        .stdout
        .clone();
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].contains("model_online_v2_"), "newest first: {list}");
    ctx.run("artifacts", &["verify"]).assert_ok();
}

#[test]
fn watchlist_names_that_could_escape_the_root_are_rejected() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts());
    for bad in ["../x", "a/b", "", ".", "..", "/abs"] {
        assert!(
            matches!(store.watchlist(bad), Err(StoreError::InvalidWatchlist(_))),
            "{bad:?}"
        );
        let run = ctx.run("artifacts", &["--watchlist", bad, "list"]);
        assert_eq!(run.code, 2, "{bad:?}");
        assert!(run.error_line().contains("invalid watchlist name"), "{}", run.stderr);
    }
    assert!(!ctx.path("x").exists());
}
