//! `ta-signals run`: incremental = full, split handling, Parquet output
//! read back by pyarrow, skipped symbols, versions.

use std::collections::BTreeMap;

use swingml::db::ta_signals::SignalRow;
use swingml::indicators::NUMERIC_COLUMNS;
use swingml::symbols::Symbol;

use crate::common::{TestContext, block_on, fixture};

/// The US fixture cut at a date: (rows on or before, rows after), as CSV text.
fn split_fixture(cut: &str) -> (String, String) {
    let text = std::fs::read_to_string(fixture("us_daily_10sym_2018_2020.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let (mut before, mut after) = (vec![header.clone()], vec![header]);
    for line in lines {
        let date = line.split(',').nth(1).unwrap();
        if date <= cut {
            before.push(line.to_string())
        } else {
            after.push(line.to_string())
        }
    }
    (before.join("\n") + "\n", after.join("\n") + "\n")
}

pub(crate) fn all_rows(ctx: &TestContext) -> BTreeMap<String, Vec<SignalRow>> {
    let db = ctx.db();
    let symbols = block_on(swingml::db::watchlists::symbols_with_candles(&db)).unwrap();
    symbols
        .into_iter()
        .map(|s| {
            (
                s.to_string(),
                block_on(swingml::db::ta_signals::for_symbol(&db, &s)).unwrap(),
            )
        })
        .collect()
}

fn assert_same_rows(a: &BTreeMap<String, Vec<SignalRow>>, b: &BTreeMap<String, Vec<SignalRow>>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (symbol, rows_a) in a {
        let rows_b = &b[symbol];
        assert_eq!(rows_a.len(), rows_b.len(), "{symbol}: row count");
        for (ra, rb) in rows_a.iter().zip(rows_b) {
            assert_eq!(ra.date, rb.date);
            assert_eq!(ra.row.categoricals(), rb.row.categoricals(), "{symbol} {}", ra.date);
            for ((name, va), vb) in NUMERIC_COLUMNS
                .iter()
                .zip(ra.row.numeric.values())
                .zip(rb.row.numeric.values())
            {
                match (va, vb) {
                    (None, None) => {}
                    (Some(x), Some(y)) => {
                        assert!(
                            (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                            "{symbol} {} {name}: {x} vs {y}",
                            ra.date
                        )
                    }
                    _ => panic!("{symbol} {} {name}: {va:?} vs {vb:?}", ra.date),
                }
            }
        }
    }
}

fn incremental_equals_full(cut: &str, recomputed_in_full: usize) {
    let ctx = TestContext::new();
    let (before, after) = split_fixture(cut);
    let first = ctx.write("before.csv", &before);
    let rest = ctx.write("after.csv", &after);
    ctx.import(&[&first], "us").assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    ctx.import(&[&rest], "us").assert_ok();
    let run = ctx.run("ta-signals", &["run", "--watchlist", "us"]);
    run.assert_ok();
    let expected = format!("10 updated ({recomputed_in_full} in full)");
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    let incremental = all_rows(&ctx);
    assert_eq!(incremental["AAPL"].len(), 756);
    let full = ctx.run("ta-signals", &["run", "--watchlist", "us", "--full"]);
    full.assert_ok();
    assert!(full.stderr.contains("10 updated (10 in full)"), "{}", full.stderr);
    assert_same_rows(&incremental, &all_rows(&ctx));
}

#[test]
fn incremental_run_equals_full_recompute_last_20_days() {
    // 2020-12-02 leaves the last 20 trading days of 2020 for the second import.
    incremental_equals_full("2020-12-02", 0);
}

#[test]
fn incremental_run_across_a_split_recomputes_that_symbol_and_still_equals_full() {
    // AAPL (4:1) and TSLA (5:1) split on 2020-08-31, inside the second import.
    incremental_equals_full("2020-08-20", 2);
}

#[test]
fn continuation_touches_only_new_dates_and_second_run_does_nothing() {
    let ctx = TestContext::new();
    let (before, after) = split_fixture("2020-12-02");
    ctx.import(&[&ctx.write("b.csv", &before)], "us").assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    ctx.import(&[&ctx.write("a.csv", &after)], "us").assert_ok();
    let run = ctx.run("ta-signals", &["run", "--watchlist", "us"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("10 updated (0 in full)") && run.stderr.contains("200 rows written"),
        "{}",
        run.stderr
    );
    let again = ctx.run("ta-signals", &["run", "--watchlist", "us"]);
    again.assert_ok();
    assert!(
        again.stderr.contains("0 updated (0 in full), 10 up to date"),
        "{}",
        again.stderr
    );
}

/// `ta_state.all_adj_close` of every symbol, by symbol.
fn adj_close_flags(ctx: &TestContext) -> Vec<(String, Option<bool>)> {
    let db = rusqlite::Connection::open(ctx.path("swingml.db")).unwrap();
    let mut q = db
        .prepare("SELECT symbol, all_adj_close FROM ta_state ORDER BY symbol")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_state_records_whether_every_candle_has_an_adj_close() {
    let ctx = TestContext::new();
    let (before, after) = split_fixture("2020-12-02");
    // KO's candles up to the cut lose their adj_close.
    let before: String = before
        .lines()
        .map(|l| match l.split(',').collect::<Vec<_>>() {
            f if f[0] == "KO" => format!(
                "{},{},{},{},{},{},,{}\n",
                f[0],
                f[1],
                f[2],
                f[3],
                f[4],
                f[5],
                f[7..].join(",")
            ),
            _ => format!("{l}\n"),
        })
        .collect();
    ctx.import(&[&ctx.write("b.csv", &before)], "us").assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    let flags = adj_close_flags(&ctx);
    assert_eq!(flags.len(), 10);
    for (symbol, flag) in &flags {
        assert_eq!(*flag, Some(symbol != "KO"), "{symbol}");
    }
    // A state saved before schema v3 knows nothing; the next continuation
    // asks the candles once (KO's new candles have an adj_close, its old
    // ones do not).
    let db = rusqlite::Connection::open(ctx.path("swingml.db")).unwrap();
    db.execute("UPDATE ta_state SET all_adj_close = NULL", []).unwrap();
    drop(db);
    ctx.import(&[&ctx.write("a.csv", &after)], "us").assert_ok();
    let run = ctx.run("ta-signals", &["run", "--watchlist", "us"]);
    run.assert_ok();
    assert!(run.stderr.contains("10 updated (0 in full)"), "{}", run.stderr);
    assert_eq!(adj_close_flags(&ctx), flags);
}

/// The fixture cut in three: everything but KO's 2020-06-15 and the last
/// day, KO's 2020-06-15 (with the header), and the last day.
fn fixture_with_a_gap() -> (String, String, String) {
    let (before, last) = split_fixture("2020-12-30");
    let mut lines = before.lines();
    let header = lines.next().unwrap();
    let (kept, day): (Vec<&str>, Vec<&str>) = lines.partition(|l| !l.starts_with("KO,2020-06-15,"));
    assert_eq!(day.len(), 1);
    let text = |rows: &[&str]| format!("{header}\n{}\n", rows.join("\n"));
    (text(&kept), text(&day), last)
}

/// KO's history counter (`candle_history`), 0 when never raised.
fn history_generation(ctx: &TestContext) -> i64 {
    let db = rusqlite::Connection::open(ctx.path("swingml.db")).unwrap();
    db.query_row(
        "SELECT COALESCE(MAX(generation), 0) FROM candle_history WHERE symbol = 'KO'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Insert KO's missing day by hand (no import: no counter raised).
fn insert_behind_its_back(ctx: &TestContext, day: &str) {
    let f: Vec<&str> = day.lines().nth(1).unwrap().split(',').collect();
    let db = rusqlite::Connection::open(ctx.path("swingml.db")).unwrap();
    db.execute(
        "INSERT INTO candles (symbol, date, open, high, low, close, adj_close, volume) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        rusqlite::params![
            f[0],
            f[1],
            f[2].parse::<f64>().unwrap(),
            f[3].parse::<f64>().unwrap(),
            f[4].parse::<f64>().unwrap(),
            f[5].parse::<f64>().unwrap(),
            f[6].parse::<f64>().unwrap(),
            f[7].parse::<i64>().unwrap()
        ],
    )
    .unwrap();
}

#[test]
fn a_back_filled_day_recomputes_its_symbol_and_an_unchanged_history_is_not_counted() {
    let whole = TestContext::new();
    whole
        .import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    whole.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    let expected = all_rows(&whole);
    let (kept, day, last) = fixture_with_a_gap();
    let daily_run = |prepare: &dyn Fn(&TestContext)| {
        let ctx = TestContext::new();
        ctx.import(&[&ctx.write("kept.csv", &kept)], "us").assert_ok();
        ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
        prepare(&ctx);
        ctx.import(&[&ctx.write("last.csv", &last)], "us").assert_ok();
        let run = ctx.run("ta-signals", &["run", "--watchlist", "us"]);
        run.assert_ok();
        (ctx, run.stderr)
    };

    // By import: the import raises KO's counter before it writes; the run
    // sees it moved and recomputes KO alone.
    let (ctx, stderr) = daily_run(&|ctx| {
        assert_eq!(history_generation(ctx), 0);
        ctx.import(&[&ctx.write("day.csv", &day)], "us").assert_ok();
        assert_eq!(history_generation(ctx), 1);
    });
    assert!(stderr.contains("10 updated (1 in full)"), "{stderr}");
    assert!(
        all_rows(&ctx) == expected,
        "the back-filled run differs from the whole run"
    );

    // Behind its back into states saved before the counter existed: their
    // candles are counted, and the count gives the new day away.
    let (ctx, stderr) = daily_run(&|ctx| {
        let db = rusqlite::Connection::open(ctx.path("swingml.db")).unwrap();
        db.execute("UPDATE ta_state SET history_generation = NULL", []).unwrap();
        insert_behind_its_back(ctx, &day);
    });
    assert!(stderr.contains("10 updated (1 in full)"), "{stderr}");
    assert!(all_rows(&ctx) == expected);

    // Behind its back with the counter in place: an unchanged counter
    // vouches for the history, which is not counted — the hand-written
    // row stays unseen until `--full` (writes go through import or fetch).
    let (ctx, stderr) = daily_run(&|ctx| insert_behind_its_back(ctx, &day));
    assert!(stderr.contains("10 updated (0 in full)"), "{stderr}");
    assert!(all_rows(&ctx) != expected);
    ctx.run("ta-signals", &["run", "--watchlist", "us", "--full"])
        .assert_ok();
    assert!(all_rows(&ctx) == expected);
}

#[test]
fn split_days_are_adjusted_not_crashes() {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    let db = ctx.db();
    let aapl = block_on(swingml::db::ta_signals::for_symbol(
        &db,
        &Symbol::parse("AAPL").unwrap(),
    ))
    .unwrap();
    let split_day = aapl.iter().find(|r| r.date.to_string() == "2020-08-31").unwrap();
    // Raw close 499.23 → 129.04 (4:1); adjusted, the day is +3.4 %.
    let ret = split_day.row.numeric.ret_1d.unwrap();
    assert!((ret - (129.04 / (499.23 / 4.0) - 1.0)).abs() < 1e-12, "{ret}");
    // Before the split, prices are divided by 4: the 2018 SMA20 is ~43, not ~172.
    let early = aapl.iter().find(|r| r.date.to_string() == "2018-03-01").unwrap();
    assert!(early.row.numeric.sma_20.unwrap() < 50.0);
}

#[test]
fn parquet_output_read_back_by_pyarrow() {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "nse").assert_ok();
    let out = ctx.path("out/signals.parquet");
    ctx.run(
        "ta-signals",
        &["run", "--watchlist", "nse", "--parquet", out.to_str().unwrap()],
    )
    .assert_ok();
    let script = r#"
import json, sys
import pyarrow.compute as pc
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
infy = t.filter(pc.equal(t["symbol"], "INFY.NS"))
print(json.dumps({
  "rows": t.num_rows,
  "fields": [[f.name, str(f.type), f.nullable] for f in t.schema],
  "infy_rsi": infy.column("rsi_14").to_pylist(),
  "infy_dates": [str(d) for d in infy.column("date").to_pylist()],
  "infy_reco": infy.column("ta_recommendation").to_pylist(),
}))
"#;
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&out)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "pyarrow failed (is it installed? scripts/setup.sh installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["rows"], 1245);
    let fields = v["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 2 + NUMERIC_COLUMNS.len() + 5 + 1);
    assert_eq!(fields[0], serde_json::json!(["symbol", "string", false]));
    assert_eq!(fields[1], serde_json::json!(["date", "date32[day]", false]));
    assert_eq!(fields[2], serde_json::json!(["ema_20", "double", true]));
    assert_eq!(
        fields.last().unwrap(),
        &serde_json::json!(["ta_version", "int64", false])
    );
    // NULL where TA-Lib gives nothing, values where the database has them.
    let rsi = v["infy_rsi"].as_array().unwrap();
    assert_eq!(rsi.len(), 249);
    assert!(rsi[..14].iter().all(|x| x.is_null()) && rsi[14].is_f64());
    let db = ctx.db();
    let stored = block_on(swingml::db::ta_signals::for_symbol(
        &db,
        &Symbol::parse("INFY.NS").unwrap(),
    ))
    .unwrap();
    for (i, row) in stored.iter().enumerate() {
        assert_eq!(v["infy_dates"][i], row.date.to_string());
        assert_eq!(rsi[i].as_f64(), row.row.numeric.rsi_14);
        assert_eq!(v["infy_reco"][i].as_str(), row.row.ta_recommendation);
    }
}

#[test]
fn short_history_gives_nulls_and_bad_candles_skip_the_symbol() {
    let ctx = TestContext::new();
    let mut text = String::from("symbol,date,open,high,low,close,volume\n");
    for day in 1..=9 {
        text.push_str(&format!("SHORT,2024-01-{day:02},10,11,9,10.{day},100\n"));
    }
    ctx.import(&[&ctx.write("s.csv", &text)], "w").assert_ok();
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "w").assert_ok();
    // A row written straight into the database, past the import rules.
    let db = ctx.db();
    block_on(async {
        let swingml::db::Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        sqlx::query("UPDATE candles SET high = 1 WHERE symbol = 'TCS.NS' AND date = '2024-06-03'")
            .execute(pool)
            .await
            .unwrap();
    });
    let run = ctx.run("ta-signals", &["run", "--watchlist", "w"]);
    run.assert_ok();
    assert!(run.stderr.contains("1 skipped"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("skipped TCS.NS: candle 2024-06-03 breaks high_below_open_close"),
        "{}",
        run.stderr
    );
    let short = block_on(swingml::db::ta_signals::for_symbol(
        &db,
        &Symbol::parse("SHORT").unwrap(),
    ))
    .unwrap();
    assert_eq!(short.len(), 9);
    assert!(
        short
            .iter()
            .all(|r| r.row.numeric.ema_20.is_none() && r.row.numeric.rsi_14.is_none())
    );
    assert_eq!(
        short[8].row.numeric.ret_5d.map(|r| (r * 1e9).round()),
        Some(((10.9 / 10.4 - 1.0) * 1e9_f64).round())
    );
}

#[test]
fn a_new_ta_version_forces_a_full_recompute() {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "w").assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "w"]).assert_ok();
    let db = ctx.db();
    block_on(async {
        let swingml::db::Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        sqlx::query("UPDATE ta_state SET ta_version = 0 WHERE symbol = 'ITC.NS'")
            .execute(pool)
            .await
            .unwrap();
    });
    let run = ctx.run("ta-signals", &["run", "--watchlist", "w"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("1 updated (1 in full), 4 up to date"),
        "{}",
        run.stderr
    );
}

#[test]
fn empty_watchlist_is_a_clear_error() {
    let ctx = TestContext::new();
    let run = ctx.run("ta-signals", &["run", "--watchlist", "nobody"]);
    run.assert_error(1, "watchlist nobody has no symbols");
}

#[test]
fn parquet_output_to_a_bare_file_name_lands_in_the_working_folder() {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "nse").assert_ok();
    // The folder of "bare.parquet" is the empty path: it used to fail
    // ("cannot write bare.parquet: No such file or directory").
    ctx.run(
        "ta-signals",
        &["run", "--watchlist", "nse", "--parquet", "bare.parquet"],
    )
    .assert_ok();
    assert!(std::fs::metadata(ctx.path("bare.parquet")).unwrap().len() > 1000);
}
