//! The artifact store under crashes, injected failures and concurrency,
//! and the `artifacts` binary.
//!
//! Child processes are `examples/store_child.rs` (see [`spawn_child`]):
//! they write through the real store code and are killed with SIGKILL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use swingml::store::atomic::inject_failure;
use swingml::store::{NameStyle, NewArtifact, Store, StoreError, WatchlistStore};

use crate::common::TestContext;
use crate::shared::{CHILD_DIR, CHILD_MODE, CHILD_SEED, Rng, payload, payload_is_complete, writer};

/// The child processes: `examples/store_child.rs` (built with the tests),
/// writing through the real store code until they are killed.
fn spawn_child(mode: &str, dir: &Path, seed: u64) -> Child {
    spawn_child_with(mode, dir, seed, &[])
}

pub(crate) fn spawn_child_with(mode: &str, dir: &Path, seed: u64, env: &[(&str, String)]) -> Child {
    let examples = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    let child = examples.join("store_child");
    assert!(
        child.exists(),
        "{} is not built: run `cargo test` (it builds the examples) or `cargo build --examples`",
        child.display()
    );
    Command::new(child)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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
    for entry in std::fs::read_dir(store.local_dir().unwrap()).unwrap() {
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
    let mut points = std::collections::BTreeMap::new();
    for round in 0..kills {
        // Killed at its n-th step of the write protocol (a crash point of
        // src/crashpoint.rs: temp written, renamed, manifest line, pointer),
        // not after a guessed time: the same on a fast or a loaded machine.
        let n = 1 + rng.below(40);
        let trace = ctx.path(&format!("trace-{round}.txt"));
        let mut child = spawn_child_with(
            "crash",
            &root,
            rng.next(),
            &[
                (swingml::crashpoint::CRASH_AFTER_VAR, n.to_string()),
                (swingml::crashpoint::CRASH_TRACE_VAR, trace.display().to_string()),
            ],
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            child.wait().unwrap().signal(),
            Some(9),
            "round {round}: not killed at step {n}"
        );
        let last = std::fs::read_to_string(&trace).unwrap();
        let step = last.lines().last().unwrap().split_once(' ').unwrap().1.to_string();
        *points.entry(step).or_insert(0) += 1;
        if round % 10 == 9 || round == kills - 1 {
            assert_consistent(&store);
        }
    }
    // Every step of the protocol was hit.
    for step in [
        "after_temp_write",
        "after_rename",
        "before_manifest",
        "after_manifest",
        "before_pointer",
    ] {
        assert!(points.contains_key(step), "no kill at {step}: {points:?}");
    }
    let committed = store.manifest().unwrap().artifacts().count();
    assert!(committed > 60, "children committed only {committed} artifacts");
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
    assert_eq!(
        std::fs::read(store.local_dir().unwrap().join(&record.name)).unwrap(),
        payload(10, 1)
    );
}

#[test]
fn injected_failures_between_steps_keep_the_previous_state() {
    let ctx = TestContext::new();
    let store = Store::new(ctx.artifacts()).watchlist("wl").unwrap();
    let me = writer("run-1");
    let spec = || NewArtifact::new("model_online", NameStyle::Versioned, "bin");
    let first = store.write_bytes(&me, spec(), &payload(5, 7)).unwrap();
    store.promote(&me, &[&first], "first").unwrap();
    let before = std::fs::read(store.local_dir().unwrap().join("manifest.jsonl")).unwrap();
    for step in ["after_temp_write", "after_rename", "before_manifest"] {
        let _guard = inject_failure(step);
        let err = store.write_bytes(&me, spec(), &payload(9, 9)).unwrap_err();
        assert!(format!("{err:#}").contains(step), "{err:#}");
        drop(_guard);
        assert_eq!(
            std::fs::read(store.local_dir().unwrap().join("manifest.jsonl")).unwrap(),
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
    let text = std::fs::read_to_string(store.local_dir().unwrap().join("manifest.jsonl")).unwrap();
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

    let path = |n: &str| store.local_dir().unwrap().join(n);
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
        serde_json::from_slice(&std::fs::read(store.local_dir().unwrap().join("production.json")).unwrap()).unwrap();
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
