//! Every job killed with SIGKILL at its crash points (`src/crashpoint.rs`:
//! database commits, artifact renames, manifest lines, the pointer write,
//! the audit row), chosen at random with a fixed seed — at steps, not after
//! a guessed time. After each kill the job is run again and must:
//! succeed; leave `artifacts verify` clean; mark the killed run abandoned
//! in `job_runs` (none left `running`); and give exactly the outputs of an
//! uninterrupted run. `SWINGML_CRASH_KILLS=N` runs N kills per job (20).

use std::collections::BTreeMap;
use std::process::Command;

use sha2::Digest;

use crate::common::{Run, TestContext, block_on, copy_tree, fixture};
use crate::shared::Rng;

fn kills() -> usize {
    std::env::var("SWINGML_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// A job under test: how to prepare its starting state, run it, and read
/// what it produced.
struct Job {
    name: &'static str,
    watchlist: &'static str,
    prepare: fn(&TestContext),
    command: fn(&TestContext) -> Command,
    /// What must equal the uninterrupted run's (from the rerun's stdout
    /// and the context's database and store).
    outputs: fn(&TestContext, &str) -> String,
}

/// A fresh context holding a copy of `template`'s database and store.
fn clone_context(template: &TestContext) -> TestContext {
    let ctx = TestContext::new();
    copy_tree(template.dir.path(), ctx.dir.path());
    ctx
}

fn sqlite_pool(ctx: &TestContext) -> sqlx::SqlitePool {
    let swingml::db::Db::Sqlite(pool) = ctx.db() else {
        unreachable!()
    };
    pool
}

fn job_run_statuses(ctx: &TestContext, job: &str) -> Vec<String> {
    let pool = sqlite_pool(ctx);
    block_on(async {
        sqlx::query_scalar("SELECT status FROM job_runs WHERE job = ? ORDER BY started_at")
            .bind(job)
            .fetch_all(&pool)
            .await
            .unwrap()
    })
}

/// The crash points a clean run passes, in order.
fn trace(template: &TestContext, job: &Job) -> Vec<String> {
    let ctx = clone_context(template);
    let file = ctx.path("crash-trace.txt");
    let mut cmd = (job.command)(&ctx);
    cmd.env(swingml::crashpoint::CRASH_TRACE_VAR, &file);
    Run::from(cmd.output().unwrap()).assert_ok();
    std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect()
}

fn crash_test(job: Job) {
    let template = TestContext::new();
    (job.prepare)(&template);
    let points = trace(&template, &job);
    assert!(points.len() >= 3, "{}: only {} crash points", job.name, points.len());
    let started = points
        .iter()
        .position(|p| p == "job_runs.started")
        .expect("an audited run")
        + 1;

    let reference = {
        let ctx = clone_context(&template);
        let run = Run::from((job.command)(&ctx).output().unwrap());
        run.assert_ok();
        (job.outputs)(&ctx, &run.stdout)
    };

    let mut rng = Rng(0xC0FFEE ^ (job.name.len() as u64 * 0x9E37_79B9));
    let mut hit: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..kills() {
        let n = 1 + rng.below(points.len() as u64) as usize;
        let ctx = clone_context(&template);
        let killed = (job.command)(&ctx)
            .env(swingml::crashpoint::CRASH_AFTER_VAR, n.to_string())
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(killed.status.signal(), Some(9), "{}: not killed at point {n}", job.name);
        *hit.entry(points[n - 1].clone()).or_default() += 1;

        let rerun = Run::from((job.command)(&ctx).output().unwrap());
        rerun.assert_ok();
        let verify = ctx.run("artifacts", &["--watchlist", job.watchlist, "verify"]);
        verify.assert_ok();
        let statuses = job_run_statuses(&ctx, job_kind(job.name));
        let abandoned = statuses.iter().filter(|s| *s == "abandoned").count();
        assert_eq!(
            abandoned,
            usize::from(n >= started),
            "{} killed at {n} ({}): {statuses:?}",
            job.name,
            points[n - 1]
        );
        assert!(!statuses.iter().any(|s| s == "running"), "{statuses:?}");
        assert_eq!(
            (job.outputs)(&ctx, &rerun.stdout),
            reference,
            "{}: outputs after a kill at point {n} ({})",
            job.name,
            points[n - 1]
        );
    }
    eprintln!(
        "{}: {} kills over {} crash points: {hit:?}",
        job.name,
        kills(),
        points.len()
    );
}

/// The `job_runs.job` name of a binary's job.
fn job_kind(name: &str) -> &str {
    match name {
        "ta-signals run" => "ta-signals",
        other => other,
    }
}

fn candles_table(ctx: &TestContext) -> String {
    format!("{:?}", crate::fetch::candles(ctx))
}

fn indicators(ctx: &TestContext) -> String {
    let db = ctx.db();
    block_on(async {
        let mut out = String::new();
        for symbol in swingml::db::watchlists::symbols_with_candles(&db).await.unwrap() {
            let rows = swingml::db::ta_signals::for_symbol(&db, &symbol).await.unwrap();
            out.push_str(&format!("{symbol}: {rows:?}\n"));
        }
        let states: BTreeMap<_, _> = swingml::db::ta_signals::load_states(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|(s, st)| (s, (st.head.ta_version, st.head.last_date, st.head.bars, st.state)))
            .collect();
        out.push_str(&format!("{states:?}"));
        out
    })
}

/// The sha256 of each live artifact, and of the newest file of `kind`.
fn production(ctx: &TestContext, watchlist: &str) -> String {
    let dir = ctx.artifacts().join(watchlist);
    let pointer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("production.json")).unwrap()).unwrap();
    let mut live = BTreeMap::new();
    for (kind, artifact) in pointer["artifacts"].as_object().unwrap() {
        let name = artifact["name"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        live.insert(kind.clone(), format!("{:x}", sha2::Sha256::digest(&bytes)));
    }
    format!("{live:?}")
}

fn newest_online_model(ctx: &TestContext, watchlist: &str) -> String {
    let dir = ctx.artifacts().join(watchlist);
    let mut models: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let version = name.strip_prefix("model_online_v")?.split('_').next()?.parse().ok()?;
            name.ends_with(".json").then_some((version, p))
        })
        .filter(|(_, p)| !p.to_str().unwrap().ends_with(".meta.json"))
        .collect();
    models.sort();
    let (version, path) = models.last().unwrap();
    format!("v{version} {:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Monitor's JSON without what differs between two runs of the same
/// report: the run id and the time-stamped file names.
fn normalized(json: &str) -> String {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("run_id");
                map.remove("file");
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    walk(&mut value);
    value.to_string()
}

fn import_us(ctx: &TestContext) {
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
}

/// The bootstrap the reliability tests train with: one year, as of 2020-11-30.
pub(crate) const BOOTSTRAP_ARGS: [&str; 7] = [
    "--watchlist",
    "us",
    "--train-years",
    "1",
    "--as-of",
    "2020-11-30",
    "--force",
];

pub(crate) fn prepare_trained(ctx: &TestContext) {
    import_us(ctx);
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    ctx.run("bootstrap", &BOOTSTRAP_ARGS).assert_ok();
}

fn command(ctx: &TestContext, name: &str, args: &[&str]) -> Command {
    let mut cmd = ctx.command(name);
    cmd.args(args);
    cmd
}

#[test]
fn import_survives_kills() {
    crash_test(Job {
        name: "import",
        watchlist: "us",
        prepare: |_| {},
        command: |ctx| {
            let us = fixture("us_daily_10sym_2018_2020.csv");
            let bad = fixture("us_daily_known_bad_rows.csv");
            let mut cmd = command(ctx, "ta-signals", &["import", "--watchlist", "us"]);
            cmd.arg(us).arg(bad);
            cmd
        },
        outputs: |ctx, _| candles_table(ctx),
    });
}

#[test]
fn indicator_run_survives_kills() {
    crash_test(Job {
        name: "ta-signals run",
        watchlist: "us",
        prepare: import_us,
        command: |ctx| command(ctx, "ta-signals", &["run", "--watchlist", "us"]),
        outputs: |ctx, _| indicators(ctx),
    });
}

#[test]
fn bootstrap_survives_kills() {
    crash_test(Job {
        name: "bootstrap",
        watchlist: "us",
        prepare: |ctx| {
            import_us(ctx);
            ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
        },
        command: |ctx| command(ctx, "bootstrap", &BOOTSTRAP_ARGS),
        outputs: |ctx, _| production(ctx, "us"),
    });
}

#[test]
fn score_survives_kills() {
    crash_test(Job {
        name: "score",
        watchlist: "us",
        prepare: prepare_trained,
        command: |ctx| {
            command(
                ctx,
                "score",
                &["--watchlist", "us", "--as-of", "2020-12-01", "--format", "json"],
            )
        },
        outputs: |_, stdout| stdout.to_string(),
    });
}

#[test]
fn incremental_update_survives_kills() {
    crash_test(Job {
        name: "incremental-update",
        watchlist: "us",
        prepare: prepare_trained,
        command: |ctx| {
            command(
                ctx,
                "incremental-update",
                &["--watchlist", "us", "--as-of", "2020-12-15"],
            )
        },
        outputs: |ctx, _| format!("{} {}", production(ctx, "us"), newest_online_model(ctx, "us")),
    });
}

#[test]
fn monitor_survives_kills() {
    crash_test(Job {
        name: "monitor",
        watchlist: "us",
        prepare: |ctx| {
            prepare_trained(ctx);
            for day in ["2020-12-01", "2020-12-02", "2020-12-03"] {
                ctx.run("score", &["--watchlist", "us", "--as-of", day]).assert_ok();
            }
        },
        command: |ctx| {
            command(
                ctx,
                "monitor",
                &["--watchlist", "us", "--as-of", "2020-12-10", "--format", "json"],
            )
        },
        outputs: |_, stdout| normalized(stdout),
    });
}

static PROVIDER: std::sync::OnceLock<crate::provider_server::ProviderServer> = std::sync::OnceLock::new();

#[test]
fn fetch_survives_kills() {
    PROVIDER.get_or_init(crate::provider_server::ProviderServer::start);
    crash_test(Job {
        name: "fetch",
        watchlist: "us",
        prepare: |ctx| {
            ctx.write(
                "fetch.toml",
                "[fetch]\nconcurrency = 1\nwrite_every = 1\n[fetch.yahoo]\nrequests_per_minute = 0\n",
            );
        },
        command: |ctx| {
            let config = ctx.path("fetch.toml");
            let mut cmd = command(
                ctx,
                "ta-signals",
                &[
                    "--config",
                    config.to_str().unwrap(),
                    "fetch",
                    "--watchlist",
                    "us",
                    "--symbols",
                    "AAPL,MSFT,KO,JNJ",
                ],
            );
            cmd.args(["--base-url", &PROVIDER.get().unwrap().url])
                .env("SWINGML_NOW", "2020-12-01T22:00:00Z");
            cmd
        },
        outputs: |ctx, _| candles_table(ctx),
    });
}
