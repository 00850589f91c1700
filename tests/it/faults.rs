//! Faults around the jobs: a full disk and a read-only store (injected at
//! the store's write steps: `SWINGML_FAULT`), a failure between the
//! promotion line and the pointer file, a SQLite file locked by another
//! process, and writers and readers at the same time.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::{Run, TestContext, block_on, fixture};
use crate::crash::{BOOTSTRAP_ARGS, prepare_trained};

fn with_fault(ctx: &TestContext, fault: &str, name: &str, args: &[&str]) -> Run {
    let mut cmd = ctx.command(name);
    cmd.env(swingml::crashpoint::FAULT_VAR, fault).args(args);
    Run::from(cmd.output().unwrap())
}

fn store_file(ctx: &TestContext, name: &str) -> String {
    std::fs::read_to_string(ctx.artifacts().join("us").join(name)).unwrap_or_default()
}

fn temp_files(ctx: &TestContext) -> Vec<String> {
    std::fs::read_dir(ctx.artifacts().join("us"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

fn last_status(ctx: &TestContext, job: &str) -> String {
    let swingml::db::Db::Sqlite(pool) = ctx.db() else {
        unreachable!()
    };
    block_on(async {
        sqlx::query_scalar("SELECT status FROM job_runs WHERE job = ? ORDER BY started_at DESC LIMIT 1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap()
    })
}

#[test]
fn a_full_disk_or_a_read_only_store_fails_in_one_line_and_keeps_everything_stored() {
    let ctx = TestContext::new();
    prepare_trained(&ctx);
    let (pointer, manifest) = (store_file(&ctx, "production.json"), store_file(&ctx, "manifest.jsonl"));
    let args = BOOTSTRAP_ARGS;
    with_fault(&ctx, "ENOSPC@after_temp_write", "bootstrap", &args).assert_error(1, "No space left on device");
    let score = ["--watchlist", "us", "--as-of", "2020-12-01"];
    with_fault(&ctx, "EROFS@after_rename", "score", &score).assert_error(1, "Read-only file system");
    with_fault(&ctx, "EIO@before_manifest", "score", &score).assert_error(1, "Input/output error");
    // Nothing committed, nothing half-written, the live models unchanged.
    assert_eq!(store_file(&ctx, "production.json"), pointer);
    assert_eq!(store_file(&ctx, "manifest.jsonl"), manifest);
    assert_eq!(temp_files(&ctx), Vec::<String>::new());
    ctx.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();
    for job in ["bootstrap", "score"] {
        assert_eq!(last_status(&ctx, job), "failed", "{job}");
    }
    // With room again, the same commands work.
    ctx.run("score", &score).assert_ok();
}

#[test]
fn a_failure_after_the_promotion_line_is_finished_by_the_next_job() {
    let ctx = TestContext::new();
    prepare_trained(&ctx);
    let before = store_file(&ctx, "production.json");
    let args = BOOTSTRAP_ARGS;
    with_fault(&ctx, "EIO@before_pointer", "bootstrap", &args).assert_error(1, "Input/output error");
    // The promotion is committed (the manifest is the truth); the file lags.
    assert_eq!(store_file(&ctx, "production.json"), before);
    let verify = ctx.run("artifacts", &["--watchlist", "us", "verify"]);
    verify.assert_ok();
    assert!(verify.stdout.contains("behind the manifest") || verify.stderr.contains("behind the manifest"));
    // The next job of any kind brings it in line before it reads.
    let score = ctx.run("score", &["--watchlist", "us", "--as-of", "2020-12-01"]);
    score.assert_ok();
    assert!(
        score.stderr.contains("production.json lagged the manifest"),
        "{}",
        score.stderr
    );
    assert_ne!(store_file(&ctx, "production.json"), before);
    let verify = ctx.run("artifacts", &["--watchlist", "us", "verify"]);
    assert!(!verify.stdout.contains("behind") && !verify.stderr.contains("behind"));
}

#[test]
fn a_locked_sqlite_file_waits_the_busy_timeout_then_fails_with_a_clear_line() {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "nse").assert_ok();
    let config = ctx.write("busy.toml", "sqlite_busy_timeout_secs = 1.5\n");
    let holder = rusqlite::Connection::open(ctx.path("swingml.db")).unwrap();
    holder
        .execute_batch("BEGIN EXCLUSIVE; DELETE FROM job_runs WHERE 0;")
        .unwrap();
    let started = Instant::now();
    let mut cmd = ctx.command("ta-signals");
    cmd.args(["--config", config.to_str().unwrap(), "import", "--watchlist", "us"])
        .arg(fixture("us_daily_10sym_2018_2020.csv"));
    let run = Run::from(cmd.output().unwrap());
    assert!(
        started.elapsed() >= Duration::from_millis(1_400),
        "{:?}",
        started.elapsed()
    );
    run.assert_error(1, "stayed locked by another process for the whole busy timeout");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(
        block_on(swingml::db::candles::count(&ctx.db())).unwrap(),
        1245,
        "nothing half-written"
    );
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    assert_eq!(block_on(swingml::db::candles::count(&ctx.db())).unwrap(), 1245 + 7560);
}

#[test]
fn indicators_computed_during_an_import_wait_and_end_equal_to_a_sequential_run() {
    let sequential = TestContext::new();
    sequential
        .import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    sequential.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();

    let ctx = TestContext::new();
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "us").assert_ok();
    let mut import = ctx.command("ta-signals");
    import
        .args(["import", "--watchlist", "us"])
        .arg(fixture("us_daily_10sym_2018_2020.csv"));
    let import = import
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let during = ctx.run("ta-signals", &["run", "--watchlist", "us"]);
    let import = import.wait_with_output().unwrap();
    assert!(import.status.success());
    during.assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    let db = (sequential.db(), ctx.db());
    for symbol in ["AAPL", "KO", "XOM"] {
        let symbol = swingml::symbols::Symbol::parse(symbol).unwrap();
        let a = block_on(swingml::db::ta_signals::for_symbol(&db.0, &symbol)).unwrap();
        let b = block_on(swingml::db::ta_signals::for_symbol(&db.1, &symbol)).unwrap();
        assert_eq!(a, b, "{symbol}");
    }
}

#[test]
fn score_during_promotions_always_reads_one_committed_pointer() {
    let ctx = TestContext::new();
    prepare_trained(&ctx);
    let trainer = {
        let commands: Vec<_> = (0..3)
            .map(|_| {
                let mut cmd = ctx.command("bootstrap");
                cmd.args(BOOTSTRAP_ARGS);
                cmd
            })
            .collect();
        std::thread::spawn(move || {
            for mut cmd in commands {
                assert!(cmd.output().unwrap().status.success());
            }
        })
    };
    let mut scored = 0;
    while !trainer.is_finished() || scored < 3 {
        ctx.run("score", &["--watchlist", "us", "--as-of", "2020-12-01"])
            .assert_ok();
        scored += 1;
    }
    trainer.join().unwrap();
    // Every predictions file names an online and a batch model version that
    // some committed promotion put live together.
    let manifest = store_file(&ctx, "manifest.jsonl");
    let promoted: BTreeSet<(u64, u64)> = manifest
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["entry"] == "promotion")
        .map(|e| {
            let a = &e["pointer"]["artifacts"];
            (
                a["model_online"]["version"].as_u64().unwrap(),
                a["model_batch"]["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(promoted.len(), 4);
    let files = crate::bootstrap::artifact(&ctx, "us", "predictions_");
    assert_eq!(files.len(), scored);
    for file in files {
        let p = crate::score::read_predictions(&file);
        let pair = (
            p["model_online_version"][0].as_u64().unwrap(),
            p["model_batch_version"][0].as_u64().unwrap(),
        );
        assert!(promoted.contains(&pair), "{pair:?} not among {promoted:?}");
    }
}

#[test]
fn job_runs_record_the_as_of_a_run_resolved_by_default() {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    ctx.run("bootstrap", &["--watchlist", "us", "--train-years", "1", "--force"])
        .assert_ok();
    let swingml::db::Db::Sqlite(pool) = ctx.db() else {
        unreachable!()
    };
    let as_of: Option<String> = block_on(async {
        sqlx::query_scalar("SELECT as_of FROM job_runs WHERE job = 'bootstrap'")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    // No --as-of: the newest candle up to the latest closed session.
    assert_eq!(as_of.as_deref(), Some("2020-12-31"));
}
