//! `ta-signals fetch` against a local server that serves recorded provider
//! answers: storage, incremental runs, backoff, fallback, bad answers, bad
//! input, kills, and the exchange calendar's "nothing to do".

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{Run, TestContext, block_on, fixture};
use crate::provider_server::ProviderServer;

/// Evening of Tue 2020-12-01 in New York (after the close), and of Fri 2020-12-04.
const TUESDAY_EVENING: &str = "2020-12-01T22:00:00Z";
const FRIDAY_EVENING: &str = "2020-12-04T22:00:00Z";

/// `fetch` with one API key variable set.
fn fetch_with_key(ctx: &TestContext, server: &ProviderServer, now: &str, key: (&str, &str), args: &[&str]) -> Run {
    let mut cmd = ctx.command("ta-signals");
    cmd.env("SWINGML_NOW", now)
        .env(key.0, key.1)
        .args(["fetch", "--watchlist", "us", "--base-url", &server.url])
        .args(args);
    Run::from(cmd.output().unwrap())
}

fn fetch(ctx: &TestContext, server: &ProviderServer, now: &str, args: &[&str]) -> Run {
    let mut cmd = ctx.command("ta-signals");
    cmd.env("SWINGML_NOW", now)
        .env_remove("TWELVEDATA_API_KEY")
        .env_remove("FINNHUB_API_KEY")
        .args(["fetch", "--watchlist", "us", "--base-url", &server.url])
        .args(args);
    Run::from(cmd.output().unwrap())
}

/// A config with test-sized backoff and no rate limit.
fn config(ctx: &TestContext, providers: &str, extra: &str) -> String {
    let text = format!(
        "[fetch]\nproviders = {providers}\nretries = 2\nbackoff_ms = 300\n{extra}\n\
         [fetch.yahoo]\nrequests_per_minute = 0\n[fetch.twelvedata]\nrequests_per_minute = 0\n\
         [fetch.finnhub]\nrequests_per_minute = 0\n"
    );
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.write(&format!("swingml-{n}.toml"), &text).display().to_string()
}

/// Every stored candle: (symbol, date) -> (o, h, l, c, adj, volume, split, source).
pub(crate) type Table = BTreeMap<(String, String), (f64, f64, f64, f64, Option<f64>, i64, Option<f64>, String)>;

/// One `candles` row as selected below.
type StoredRow = (
    String,
    String,
    f64,
    f64,
    f64,
    f64,
    Option<f64>,
    i64,
    Option<f64>,
    String,
);

pub(crate) fn candles(ctx: &TestContext) -> Table {
    let swingml::db::Db::Sqlite(pool) = ctx.db() else {
        unreachable!()
    };
    block_on(async {
        let rows: Vec<StoredRow> = sqlx::query_as(
            "SELECT symbol, date, open, high, low, close, adj_close, volume, split_coef, source FROM candles",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows.into_iter()
            .map(|r| ((r.0, r.1), (r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9)))
            .collect()
    })
}

/// The fixture CSV's rows of `symbol` from `first` to `last`: (date, o, h, l, c, adj, volume).
fn csv_rows(symbol: &str, first: &str, last: &str) -> Vec<(String, f64, f64, f64, f64, f64, i64)> {
    let text = std::fs::read_to_string(fixture("us_daily_10sym_2018_2020.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[0] == symbol && (first..=last).contains(&f[1]))
        .map(|f| {
            let n = |i: usize| f[i].parse::<f64>().unwrap();
            (f[1].to_string(), n(2), n(3), n(4), n(5), n(6), f[7].parse().unwrap())
        })
        .collect()
}

#[test]
fn fetch_stores_the_bars_and_later_runs_ask_only_for_new_days() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["yahoo"]"#, "");
    let first = fetch(
        &ctx,
        &server,
        TUESDAY_EVENING,
        &["--config", &cfg, "--symbols", "AAPL,MSFT,KO"],
    );
    first.assert_ok();
    let table = candles(&ctx);
    for symbol in ["AAPL", "MSFT", "KO"] {
        let expected = csv_rows(symbol, "2020-08-03", "2020-12-01");
        let stored: Vec<_> = table.iter().filter(|((s, _), _)| s == symbol).collect();
        assert_eq!(stored.len(), expected.len(), "{symbol}");
        for (((_, date), got), want) in stored.iter().zip(&expected) {
            assert_eq!(date, &want.0);
            assert_eq!(
                (got.0, got.1, got.2, got.3, got.4, got.5),
                (want.1, want.2, want.3, want.4, Some(want.5), want.6)
            );
            assert_eq!(got.7, "yahoo");
        }
    }
    // AAPL's 4:1 split comes with the answer: recorded, not flagged.
    assert_eq!(table[&("AAPL".into(), "2020-08-31".into())].6, Some(4.0));
    assert!(first.stderr.contains("0 flagged"), "{}", first.stderr);
    assert!(first.stderr.contains("yahoo 3 symbol(s)"), "{}", first.stderr);

    // Friday: only the three new sessions are stored; each symbol is asked
    // from its last candle minus the 5-day overlap (and a day of margin).
    let before = server.seen().len();
    let second = fetch(&ctx, &server, FRIDAY_EVENING, &["--config", &cfg]);
    second.assert_ok();
    assert!(second.stderr.contains("9 inserted, 0 revised"), "{}", second.stderr);
    let asked = &server.seen()[before..];
    assert_eq!(asked.len(), 3);
    // 2020-12-01 − 5 days − 1 = 2020-11-25 00:00 UTC.
    assert!(
        asked.iter().all(|s| s.query.contains("period1=1606262400")),
        "{asked:?}"
    );
    assert_eq!(candles(&ctx).len(), table.len() + 9);

    // Again: nothing to ask, exit 0, one line.
    let before = server.seen().len();
    let third = fetch(&ctx, &server, FRIDAY_EVENING, &["--config", &cfg]);
    third.assert_ok();
    assert_eq!(server.seen().len(), before);
    let lines: Vec<&str> = third.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", third.stderr);
    assert!(lines[0].contains("nothing to do: 3 symbol(s) already have candles through 2020-12-04"));
}

#[test]
fn a_bar_of_a_session_still_open_is_not_stored() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["yahoo"]"#, "");
    // 15:45 in New York on Tue 2020-12-01 (20:45 UTC): the 1st has not
    // closed; the server (like Yahoo) already has a bar for it.
    let run = fetch(
        &ctx,
        &server,
        "2020-12-01T20:45:00Z",
        &["--config", &cfg, "--symbols", "KO"],
    );
    run.assert_ok();
    let dates: Vec<String> = candles(&ctx).keys().map(|(_, d)| d.clone()).collect();
    assert_eq!(dates.last().unwrap(), "2020-11-30");
    assert!(run.stderr.contains("1 not closed yet"), "{}", run.stderr);
}

#[test]
fn too_many_requests_is_retried_after_a_backoff() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["yahoo"]"#, "");
    server.fail(
        "/chart/KO",
        1,
        429,
        r#"{"finance":{"error":{"code":"Too Many Requests"}}}"#,
    );
    let run = fetch(&ctx, &server, TUESDAY_EVENING, &["--config", &cfg, "--symbols", "KO"]);
    run.assert_ok();
    let asked = server.seen_for("/chart/KO");
    assert_eq!(asked.len(), 2);
    // backoff_ms = 300 with jitter: between 150 and 300 ms.
    let gap = asked[1].at - asked[0].at;
    assert!(gap >= Duration::from_millis(150), "{gap:?}");
    assert!(run.stderr.contains("(1 retries"), "{}", run.stderr);
    assert_eq!(candles(&ctx).len(), csv_rows("KO", "2020-08-03", "2020-12-01").len());
}

#[test]
fn a_failing_provider_falls_back_to_the_next_with_the_key_in_a_header_only() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["yahoo", "twelvedata"]"#, "");
    server.fail("/chart/MSFT", 3, 500, "{}");
    let run = fetch_with_key(
        &ctx,
        &server,
        TUESDAY_EVENING,
        ("TWELVEDATA_API_KEY", "td-secret-123"),
        &["--config", &cfg, "--symbols", "MSFT,KO", "-v"],
    );
    run.assert_ok();
    assert_eq!(server.seen_for("/chart/MSFT").len(), 3, "one try and two retries");
    let td = server.seen_for("/time_series");
    assert_eq!(td.len(), 1);
    assert!(td[0].query.contains("symbol=MSFT"));
    assert!(
        td[0].headers.iter().any(|h| h == "authorization: apikey td-secret-123"),
        "{:?}",
        td[0].headers
    );
    assert!(!td[0].query.contains("secret"));
    assert!(!run.stderr.contains("td-secret-123"), "the key is never logged");
    assert!(
        run.stderr.contains("twelvedata 1 symbol(s)") && run.stderr.contains("yahoo 1 symbol(s)"),
        "{}",
        run.stderr
    );
    let table = candles(&ctx);
    let msft: Vec<_> = table.iter().filter(|((s, _), _)| s == "MSFT").collect();
    assert!(msft.iter().all(|(_, v)| v.7 == "twelvedata" && v.4.is_none()));
    assert_eq!(msft.len(), csv_rows("MSFT", "2020-08-03", "2020-12-01").len());
}

#[test]
fn bad_answers_fail_their_symbol_and_the_others_are_stored() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["yahoo"]"#, "");
    server.fail("/chart/KO", 1, 200, "{\"chart\": {\"result\": [ oops");
    server.fail(
        "/chart/JNJ",
        1,
        200,
        r#"{"chart":{"result":[{"meta":{},"timestamp":[],"indicators":{"quote":[{}]}}],"error":null}}"#,
    );
    let run = fetch(
        &ctx,
        &server,
        TUESDAY_EVENING,
        &["--config", &cfg, "--symbols", "AAPL,KO,JNJ,ZZZZ"],
    );
    run.assert_error(1, "3 symbol(s) got no bars");
    for (symbol, why) in [
        ("KO", "malformed answer"),
        ("JNJ", "no bars in the requested range"),
        ("ZZZZ", "unknown symbol: No data found"),
    ] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains(&format!("{symbol}: no bars: yahoo: {why}"))),
            "{symbol}: {}",
            run.stderr
        );
    }
    let symbols: Vec<String> = candles(&ctx).keys().map(|(s, _)| s.clone()).collect();
    assert!(symbols.iter().all(|s| s == "AAPL") && !symbols.is_empty());
    // The rerun asks again for the three: KO and JNJ answer now and are
    // stored; the unknown symbol fails again (it stays in the watchlist).
    let again = fetch(&ctx, &server, TUESDAY_EVENING, &["--config", &cfg]);
    again.assert_error(1, "1 symbol(s) got no bars");
    assert!(again.stderr.contains("(1 up to date)"), "{}", again.stderr);
    assert_eq!(
        candles(&ctx).len(),
        3 * csv_rows("KO", "2020-08-03", "2020-12-01").len()
    );
}

#[test]
fn an_unexplained_split_in_a_series_without_ratios_is_flagged() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["twelvedata"]"#, "");
    let run = fetch_with_key(
        &ctx,
        &server,
        TUESDAY_EVENING,
        ("TWELVEDATA_API_KEY", "k"),
        &["--config", &cfg, "--symbols", "AAPL"],
    );
    run.assert_ok();
    assert!(run.stderr.contains("1 flagged"), "{}", run.stderr);
    let rows = crate::common::quarantine_rows(&ctx, "us");
    assert_eq!(rows.len(), 1);
    // (rule, severity, symbol, date)
    assert_eq!(
        rows[0],
        (
            "suspected_split".into(),
            "flagged".into(),
            "AAPL".into(),
            "2020-08-31".into()
        )
    );
}

#[test]
fn bad_input_is_one_line_exit_2_and_changes_nothing() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["yahoo"]"#, "");
    fetch(&ctx, &server, TUESDAY_EVENING, &["--config", &cfg, "--symbols", "KO"]).assert_ok();
    let before = candles(&ctx);
    let requests = server.seen().len();
    let td_cfg = config(&ctx, r#"["yahoo", "twelvedata"]"#, "");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--config", &cfg, "--provider", "bloomberg"],
            "unknown provider \"bloomberg\"",
        ),
        (
            vec!["--config", &td_cfg],
            "twelvedata needs an API key: set TWELVEDATA_API_KEY",
        ),
        (vec!["--config", &cfg, "--provider", "finnhub"], "set FINNHUB_API_KEY"),
        (
            vec!["--config", &cfg, "--symbols", "../../etc/passwd"],
            "invalid symbol \"../../etc/passwd\"",
        ),
        (vec!["--config", &cfg, "--symbols", "KO?x=1#"], "invalid symbol"),
        (vec!["--config", &cfg, "--since", "2020-13-01"], "invalid date"),
    ];
    for (args, message) in cases {
        let run = fetch(&ctx, &server, TUESDAY_EVENING, &args);
        run.assert_error(2, message);
    }
    for bad in ["ftp://127.0.0.1/", "not a url", "http://user:pw@127.0.0.1/"] {
        let mut cmd = ctx.command("ta-signals");
        cmd.env("SWINGML_NOW", TUESDAY_EVENING).args([
            "fetch",
            "--watchlist",
            "us",
            "--config",
            &cfg,
            "--base-url",
            bad,
        ]);
        Run::from(cmd.output().unwrap()).assert_error(2, "invalid setting --base-url");
    }
    assert_eq!(candles(&ctx), before);
    assert_eq!(server.seen().len(), requests, "nothing was asked");
}

#[test]
fn killed_fetches_rerun_to_the_candles_of_an_uninterrupted_one() {
    // Reference: one uninterrupted run.
    let reference_ctx = TestContext::new();
    let server = ProviderServer::start();
    let symbols = "AAPL,MSFT,KO,JNJ";
    let cfg = config(&reference_ctx, r#"["yahoo"]"#, "write_every = 1\nconcurrency = 1");
    fetch(
        &reference_ctx,
        &server,
        TUESDAY_EVENING,
        &["--config", &cfg, "--symbols", symbols],
    )
    .assert_ok();
    let reference = candles(&reference_ctx);

    server.set_delay(Duration::from_millis(40));
    // Kill after the server has answered k requests (progress markers, not
    // wall time), for every k the run goes through.
    for k in 0..4 {
        let ctx = TestContext::new();
        let cfg = config(&ctx, r#"["yahoo"]"#, "write_every = 1\nconcurrency = 1");
        let before = server.seen().len();
        let mut child = ctx
            .command("ta-signals")
            .env("SWINGML_NOW", TUESDAY_EVENING)
            .args([
                "fetch",
                "--watchlist",
                "us",
                "--base-url",
                &server.url,
                "--config",
                &cfg,
            ])
            .args(["--symbols", symbols])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while server.seen().len() < before + k + 1 {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let rerun = fetch(&ctx, &server, TUESDAY_EVENING, &["--config", &cfg]);
        rerun.assert_ok();
        assert_eq!(candles(&ctx), reference, "killed after {} request(s)", k + 1);
    }
}

#[test]
fn daily_jobs_have_nothing_to_do_on_a_weekend_or_holiday() {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    // Sat 2020-12-05 and Thanksgiving 2020-11-26, evening in New York.
    for now in ["2020-12-05T22:00:00Z", "2020-11-26T22:00:00Z"] {
        for job in ["score", "incremental-update", "monitor"] {
            let mut cmd = ctx.command(job);
            cmd.env("SWINGML_NOW", now).args(["--watchlist", "us"]);
            let run = Run::from(cmd.output().unwrap());
            run.assert_ok();
            assert!(
                run.stderr.contains("nothing to do") && run.stderr.contains("is not a US session"),
                "{job}: {}",
                run.stderr
            );
        }
    }
    // An NSE watchlist on the same instant as a US session: 2024-01-22 is
    // an NSE holiday, a US session.
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "nse").assert_ok();
    let mut cmd = ctx.command("score");
    cmd.env("SWINGML_NOW", "2024-01-22T12:00:00Z")
        .args(["--watchlist", "nse"]);
    let run = Run::from(cmd.output().unwrap());
    run.assert_ok();
    assert!(run.stderr.contains("is not a NSE session"), "{}", run.stderr);
}

/// The recorded Yahoo answer of `symbol` with the close of `date` changed.
fn revised_yahoo(symbol: &str, date_stamp: i64, close: f64) -> String {
    let text = std::fs::read_to_string(fixture(&format!("providers/yahoo_{symbol}.json"))).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let series = &mut doc["chart"]["result"][0];
    let i = series["timestamp"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t.as_i64() == Some(date_stamp))
        .unwrap();
    series["indicators"]["quote"][0]["close"][i] = serde_json::json!(close);
    doc.to_string()
}

fn ta_state_rows(ctx: &TestContext, symbol: &str) -> i64 {
    let swingml::db::Db::Sqlite(pool) = ctx.db() else {
        unreachable!()
    };
    block_on(async {
        sqlx::query_scalar("SELECT COUNT(*) FROM ta_state WHERE symbol = ?")
            .bind(symbol)
            .fetch_one(&pool)
            .await
            .unwrap()
    })
}

#[test]
fn a_revised_bar_replaces_its_own_and_a_lower_provider_never_overrides_a_preferred_one() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["yahoo", "twelvedata"]"#, "");
    fetch_with_key(
        &ctx,
        &server,
        TUESDAY_EVENING,
        ("TWELVEDATA_API_KEY", "k"),
        &["--config", &cfg, "--symbols", "KO", "--run"],
    )
    .assert_ok();
    assert_eq!(ta_state_rows(&ctx, "KO"), 1);
    let key = ("KO".to_string(), "2020-11-30".to_string());
    let original = candles(&ctx)[&key].clone();

    // Yahoo revises Monday 2020-11-30's close (09:30 EST = 14:30 UTC).
    server.fail("/chart/KO", 1, 200, &revised_yahoo("KO", 1_606_746_600, 51.71));
    let run = fetch_with_key(
        &ctx,
        &server,
        TUESDAY_EVENING,
        ("TWELVEDATA_API_KEY", "k"),
        &["--config", &cfg, "--since", "2020-11-20"],
    );
    run.assert_ok();
    assert!(run.stderr.contains("1 revised"), "{}", run.stderr);
    let revised = candles(&ctx)[&key].clone();
    assert_eq!(revised.3, 51.71);
    assert_eq!(
        (revised.0, revised.5, revised.7.as_str()),
        (original.0, original.5, "yahoo")
    );
    assert_eq!(
        ta_state_rows(&ctx, "KO"),
        0,
        "indicators are recomputed from the revised bar"
    );

    // TwelveData (after Yahoo in the chain) has no adj_close: its bars
    // differ from Yahoo's, and Yahoo's are kept without a report.
    let run = fetch_with_key(
        &ctx,
        &server,
        TUESDAY_EVENING,
        ("TWELVEDATA_API_KEY", "k"),
        &["--config", &cfg, "--provider", "twelvedata", "--since", "2020-11-20"],
    );
    run.assert_ok();
    assert!(
        run.stderr.contains("0 inserted, 0 revised") && run.stderr.contains("0 quarantined"),
        "{}",
        run.stderr
    );
    assert!(candles(&ctx).values().all(|v| v.7 == "yahoo"));
}

#[test]
fn source_selects_the_symbols_whose_candles_came_from_it() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["finnhub"]"#, "");
    fetch_with_key(
        &ctx,
        &server,
        TUESDAY_EVENING,
        ("FINNHUB_API_KEY", "fh-key"),
        &["--config", &cfg, "--symbols", "KO"],
    )
    .assert_ok();
    assert!(
        server.seen_for("/api/v1/stock/candle")[0]
            .headers
            .iter()
            .any(|h| h == "x-finnhub-token: fh-key")
    );
    let table = candles(&ctx);
    assert!(table.values().all(|v| v.7 == "finnhub"));
    assert_eq!(table.len(), csv_rows("KO", "2020-08-03", "2020-12-01").len());
    // The seed tools' name for Finnhub candles selects KO; nothing else is
    // Finnhub's, so bootstrap has one symbol (it needs two).
    let run = ctx.run(
        "bootstrap",
        &[
            "--watchlist",
            "us",
            "--source",
            "FINNHUB_LOCAL",
            "--as-of",
            "2020-11-30",
        ],
    );
    assert!(!run.stderr.contains("left out"), "{}", run.stderr);
    run.assert_error(1, "skipped: KO (84 bars");
    ctx.run("bootstrap", &["--watchlist", "us", "--source", "import"])
        .assert_error(1, "no symbol of watchlist us has candles only from import");

    // The fixture's history joins KO's (rows before August are new; in
    // August-December Finnhub's are kept and the import's differing ones
    // quarantined): KO is mixed now and left out as well.
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    let run = ctx.run(
        "bootstrap",
        &["--watchlist", "us", "--source", "finnhub", "--as-of", "2020-11-30"],
    );
    assert!(
        run.stderr.contains("--source finnhub: 10 symbol(s) left out"),
        "{}",
        run.stderr
    );
    run.assert_error(1, "no symbol of watchlist us has candles only from finnhub");
    let run = ctx.run(
        "bootstrap",
        &["--watchlist", "us", "--source", "import", "--as-of", "2020-11-30"],
    );
    assert!(
        run.stderr.contains("--source import: 1 symbol(s) left out") && run.stderr.contains(": KO"),
        "{}",
        run.stderr
    );
    ctx.run("score", &["--watchlist", "us", "--source", "bloomberg"])
        .assert_error(2, "unknown source \"bloomberg\"");
}

#[test]
fn shards_ask_only_for_their_own_symbols_and_together_store_them_all() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let cfg = config(&ctx, r#"["yahoo"]"#, "");
    let symbols = ["AAPL", "MSFT", "KO"];
    let mut fetched = Vec::new();
    for k in 1..=2 {
        let shard = swingml::shard::Shard::new(k, 2).unwrap();
        let before = server.seen().len();
        let run = fetch(
            &ctx,
            &server,
            TUESDAY_EVENING,
            &[
                "--config",
                &cfg,
                "--symbols",
                "AAPL,MSFT,KO",
                "--shard",
                &shard.to_string(),
            ],
        );
        run.assert_ok();
        let asked = &server.seen()[before..];
        let mine: Vec<&str> = symbols.iter().copied().filter(|s| shard.owns(s)).collect();
        assert_eq!(asked.len(), mine.len(), "{shard}: {asked:?}");
        for s in &mine {
            assert!(
                asked.iter().any(|a| a.path.contains(s)),
                "{shard} did not ask for {s}: {asked:?}"
            );
        }
        fetched.extend(mine);
    }
    fetched.sort_unstable();
    assert_eq!(fetched, ["AAPL", "KO", "MSFT"]);
    let stored: std::collections::BTreeSet<String> = candles(&ctx).keys().map(|(s, _)| s.clone()).collect();
    assert_eq!(stored.into_iter().collect::<Vec<_>>(), ["AAPL", "KO", "MSFT"]);
}

#[test]
fn a_redirect_to_another_host_never_carries_the_key() {
    let ctx = TestContext::new();
    let server = ProviderServer::start();
    let elsewhere = ProviderServer::start();
    // The same machine under another name: another host to the client.
    let other = elsewhere.url.replace("127.0.0.1", "localhost");
    server.fail(
        "stock/candle",
        10,
        302,
        &format!("{other}/api/v1/stock/candle?symbol=KO"),
    );
    let cfg = config(&ctx, r#"["finnhub"]"#, "");
    let run = fetch_with_key(
        &ctx,
        &server,
        TUESDAY_EVENING,
        ("FINNHUB_API_KEY", "fh-key"),
        &["--config", &cfg, "--symbols", "KO"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 302"), "{}", run.stderr);
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect was not followed to another host"
    );
    assert!(!run.stderr.contains("fh-key"));
}
