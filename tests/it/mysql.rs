//! The import against a real MariaDB server. The server is started on
//! loopback by `scripts/test.sh` (and so by `.ci/run`), which hands its URL
//! over in `SWINGML_TEST_MYSQL_URL`. A missing server is a failure: build
//! the tests with `SWINGML_SKIP_MYSQL=1` to mark them ignored (listed as
//! such in the output) on a machine without MariaDB.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{TestContext, block_on, count_in, fixture, quarantine_rows};

/// A fresh database on the test server.
pub(crate) fn mysql_context() -> Option<TestContext> {
    let base = std::env::var("SWINGML_TEST_MYSQL_URL").expect(
        "SWINGML_TEST_MYSQL_URL is not set: run the tests with scripts/test.sh (starts MariaDB), \
         or build them with SWINGML_SKIP_MYSQL=1 to mark them ignored",
    );
    Some(create_database(&base))
}

/// A new database named from digits and a fixed prefix on the server at `base`.
pub(crate) fn create_database(base: &str) -> TestContext {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "swingml_it_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    block_on(async {
        let pool = sqlx::mysql::MySqlPool::connect(base)
            .await
            .expect("test MariaDB server reachable");
        // The name is made here from digits and a fixed prefix, never from input.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    TestContext::with_database(format!("{base}/{name}"))
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_fixture_import_is_idempotent_and_quarantines_bad_rows() {
    let Some(ctx) = mysql_context() else { return };
    let us = fixture("us_daily_10sym_2018_2020.csv");
    let nse = fixture("nse_daily_5sym_2024.csv");
    let bad = fixture("us_daily_known_bad_rows.csv");
    let run = ctx.import(&[&us, &nse, &bad], "demo");
    run.assert_ok();
    assert_eq!(count_in(&run.stderr, "inserted"), 7560 + 1245 + 2);
    assert_eq!(count_in(&run.stderr, "quarantined"), 13);
    assert_eq!(count_in(&run.stderr, "flagged"), 15);
    assert_eq!(quarantine_rows(&ctx, "demo").len(), 28);

    let again = ctx.import(&[&us, &nse, &bad], "demo");
    again.assert_ok();
    assert_eq!(count_in(&again.stderr, "inserted"), 0);
    assert_eq!(count_in(&again.stderr, "unchanged"), 8807);

    let db = ctx.db();
    assert_eq!(block_on(swingml::db::candles::count(&db)).unwrap(), 8807);
    let aapl = swingml::symbols::Symbol::parse("AAPL").unwrap();
    let candles = block_on(swingml::db::candles::for_symbol(&db, &aapl)).unwrap();
    assert_eq!(candles.len(), 756);
    // Values round-trip exactly through DOUBLE and DATE.
    assert_eq!(candles[0].date.to_string(), "2018-01-02");
    assert_eq!(candles[0].adj_close, Some(41.3780616595));
    assert_eq!(candles[0].volume, 25048048);
    let split = candles.iter().find(|c| c.date.to_string() == "2020-08-31").unwrap();
    assert_eq!(split.split_coef, Some(4.0));
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_conflict_with_stored_row_keeps_the_stored_row() {
    let Some(ctx) = mysql_context() else { return };
    let header = "symbol,date,open,high,low,close,volume";
    let a = ctx.write("a.csv", &format!("{header}\nM&M.NS,2024-01-02,10,11,9,10.5,100\n"));
    ctx.import(&[&a], "w").assert_ok();
    let b = ctx.write("b.csv", &format!("{header}\nM&M.NS,2024-01-02,10,11,9,10.9,100\n"));
    let run = ctx.import(&[&b], "w");
    run.assert_ok();
    assert_eq!(quarantine_rows(&ctx, "w")[0].0, "conflicts_with_stored");
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_wrong_password_is_one_line_without_the_password() {
    let Some(ctx) = mysql_context() else { return };
    let wrong = ctx.database_url.replace("swingml-test-pw", "not-the-password-42");
    let ctx = TestContext::with_database(wrong);
    let path = ctx.write(
        "a.csv",
        "symbol,date,open,high,low,close,volume\nA,2024-01-02,10,11,9,10.5,100\n",
    );
    let run = ctx.import(&[&path], "w");
    assert_eq!(run.code, 1);
    let line = run.error_line();
    assert!(line.contains("Access denied"), "{line}");
    assert!(line.contains("swingml:***@127.0.0.1"), "{line}");
    assert!(!run.stderr.contains("not-the-password-42"));
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_indicators_match_the_sqlite_run() {
    let Some(ctx) = mysql_context() else { return };
    let lite = TestContext::new();
    for c in [&ctx, &lite] {
        c.import(&[&fixture("nse_daily_5sym_2024.csv")], "nse").assert_ok();
        let run = c.run("ta-signals", &["run", "--watchlist", "nse"]);
        run.assert_ok();
        assert!(run.stderr.contains("1245 rows written"), "{}", run.stderr);
    }
    let symbol = swingml::symbols::Symbol::parse("RELIANCE.NS").unwrap();
    let (my, sq) = (ctx.db(), lite.db());
    let mysql_rows = block_on(swingml::db::ta_signals::for_symbol(&my, &symbol)).unwrap();
    let sqlite_rows = block_on(swingml::db::ta_signals::for_symbol(&sq, &symbol)).unwrap();
    assert_eq!(mysql_rows.len(), 249);
    assert_eq!(mysql_rows, sqlite_rows, "DOUBLE and REAL hold the same f64 values");
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_end_to_end_import_indicators_bootstrap_score() {
    let Some(ctx) = mysql_context() else { return };
    crate::score::trained(&ctx, "us");
    let run = ctx.run("score", &["--watchlist", "us", "--top-k", "3", "--format", "json"]);
    run.assert_ok();
    let files = crate::bootstrap::artifact(&ctx, "us", "predictions_");
    let p = crate::score::read_predictions(&files[0]);
    crate::score::assert_valid_predictions(&p, 3);
    // The same pipeline on SQLite scores every symbol with the same
    // probabilities, to the last bit (JSON prints f64 round-trip exact).
    let lite = TestContext::new();
    crate::score::trained(&lite, "us");
    let lite_run = lite.run("score", &["--watchlist", "us", "--top-k", "3", "--format", "json"]);
    lite_run.assert_ok();
    assert!(run.stdout.contains("\"p_score\""), "{}", run.stdout);
    assert_eq!(run.stdout, lite_run.stdout);
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_incremental_update_learns_what_the_sqlite_run_learns() {
    // On the market with gaps: missed sessions, a symbol that stops, one
    // listed mid-way.
    let Some(ctx) = mysql_context() else { return };
    let lite = TestContext::new();
    let mut heads = Vec::new();
    for c in [&ctx, &lite] {
        c.import(&[&crate::incremental::gapped_csv(c)], "us").assert_ok();
        // The update reads the stored indicator rows (bulk reads per database).
        c.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
        crate::bootstrap::bootstrap(c, "us", &["--force", "--as-of", "2020-10-30"]).assert_ok();
        let run = c.run(
            "incremental-update",
            &["--watchlist", "us", "--top-k", "3", "--as-of", "2020-11-19"],
        );
        run.assert_ok();
        assert!(run.stderr.contains("learned 14 scan date(s)"), "{}", run.stderr);
        assert!(run.stderr.contains("3 row(s) given up"), "{}", run.stderr);
        assert!(!run.stderr.contains("whole history"), "{}", run.stderr);
        let model = crate::bootstrap::artifact(c, "us", "model_online_v2_");
        heads.push(std::fs::read_to_string(&model[0]).unwrap());
    }
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    let (a, b) = (parse(&heads[0]), parse(&heads[1]));
    assert_eq!(a["weights"], b["weights"], "the same bits on both databases");
    assert_eq!(a["intercept"], b["intercept"]);
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_version_1_database_gains_candle_sources_and_keeps_its_rows() {
    use crate::migrations::{V1_CANDLES, V1_LEDGER, v1_script};
    let Some(ctx) = mysql_context() else { return };
    block_on(async {
        let pool = sqlx::mysql::MySqlPool::connect(&ctx.database_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(v1_script("mysql")))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, description VARCHAR(200) NOT NULL, applied_at VARCHAR(40) NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(V1_LEDGER).execute(&pool).await.unwrap();
        sqlx::query(V1_CANDLES).execute(&pool).await.unwrap();
        pool.close().await;
    });
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "nse").assert_ok();
    let swingml::db::Db::MySql(pool) = ctx.db() else {
        unreachable!()
    };
    let (rows, old): (i64, Vec<String>) = block_on(async {
        (
            sqlx::query_scalar("SELECT COUNT(*) FROM candles")
                .fetch_one(&pool)
                .await
                .unwrap(),
            sqlx::query_scalar("SELECT source FROM candles WHERE symbol = 'OLD' ORDER BY date")
                .fetch_all(&pool)
                .await
                .unwrap(),
        )
    });
    assert_eq!(rows, 2 + 1245);
    assert_eq!(old, ["import", "import"]);
}

/// A MariaDB server of this test's own, stopped by its PID when dropped.
pub(crate) struct OwnServer {
    dir: tempfile::TempDir,
    pub(crate) url: String,
}

impl OwnServer {
    fn script(args: &[&str]) -> std::process::Output {
        std::process::Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mariadb.sh"))
            .args(args)
            .output()
            .unwrap()
    }

    pub(crate) fn start() -> OwnServer {
        let dir = tempfile::tempdir().unwrap();
        let out = OwnServer::script(&["start", dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        OwnServer { dir, url }
    }

    fn kill_9(&self) {
        let pid: i32 = std::fs::read_to_string(self.dir.path().join("server.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: kill(2) on the server this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        while unsafe { libc::kill(pid, 0) } == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn restart(&self) {
        let out = OwnServer::script(&["restart", self.dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        OwnServer::script(&["stop", self.dir.path().to_str().unwrap()]);
    }
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_server_killed_in_the_middle_of_an_import_is_one_line_and_the_rerun_completes() {
    let server = OwnServer::start();
    let ctx = create_database(&server.url);
    let us = fixture("us_daily_10sym_2018_2020.csv");
    // Where the first chunk of candles is in the open transaction.
    let trace = ctx.path("trace.txt");
    let probe = create_database(&server.url);
    let mut cmd = probe.command("ta-signals");
    cmd.env(swingml::crashpoint::CRASH_TRACE_VAR, &trace)
        .args(["import", "--watchlist", "us"])
        .arg(&us);
    assert!(cmd.output().unwrap().status.success());
    let points = std::fs::read_to_string(&trace).unwrap();
    let chunk = points.lines().find(|l| l.ends_with(" candles.insert_chunk")).unwrap();
    let n = chunk.split_once(' ').unwrap().0;

    let pause = ctx.path("pause");
    let mut cmd = ctx.command("ta-signals");
    cmd.env(swingml::crashpoint::PAUSE_AT_VAR, n)
        .env(swingml::crashpoint::PAUSE_FILE_VAR, &pause)
        .args(["import", "--watchlist", "us"])
        .arg(&us)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    while !pause.exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    server.kill_9();
    std::fs::write(pause.with_extension("go"), "").unwrap();
    let run = crate::common::Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("swingml-test-pw"), "no password in the message");

    server.restart();
    // The transaction died with the server: nothing of it is stored.
    assert_eq!(block_on(swingml::db::candles::count(&ctx.db())).unwrap(), 0);
    let rerun = ctx.import(&[&us], "us");
    rerun.assert_ok();
    assert_eq!(count_in(&rerun.stderr, "inserted"), 7560);
    assert_eq!(block_on(swingml::db::candles::count(&ctx.db())).unwrap(), 7560);
}
