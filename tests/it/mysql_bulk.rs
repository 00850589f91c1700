//! The MySQL bulk reads and writes (`src/db/mysql_bulk.rs`) against the
//! SQLite path, which reads a statement per symbol: the same universe in
//! both, every bulk read asked the same questions, the answers equal to
//! the bit. The universe has more symbols than one statement asks for,
//! thin, stale and new listings (read beyond the date windows), a symbol
//! with no candles and a symbol asked twice. Then `ta-signals run` killed
//! in its MariaDB write transaction, and the rerun's rows.

use chrono::NaiveDate;
use swingml::db::{Db, candles, ta_signals};
use swingml::symbols::Symbol;

use crate::common::{Run, TestContext, block_on, repo};
use crate::mysql::mysql_context;

/// 600 synthetic symbols over 100 sessions (`bench/synth.py`: late
/// listings, missing days, splits), of which S00000 trades one session in
/// seven, S00001 stops 60 sessions before the end, and S00002 lists 4
/// sessions before the end.
fn universe(ctx: &TestContext) -> std::path::PathBuf {
    let out = std::process::Command::new("python3")
        .args([repo("bench/synth.py").as_str(), "600", "0.4", "11"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let mut csv = vec![lines.next().unwrap().to_string()];
    let rows: Vec<&str> = lines.collect();
    let of = |name: &str| rows.iter().filter(|l| l.starts_with(&format!("{name},"))).count();
    let (n1, n2) = (of("S00001"), of("S00002"));
    assert!(of("S00000") > 90 && n1 > 90 && n2 > 90, "listed from the start");
    let mut seen = std::collections::HashMap::new();
    for line in rows {
        let i = seen.entry(&line[..6]).or_insert(0usize);
        let keep = match &line[..6] {
            "S00000" => *i % 7 == 0,
            "S00001" => *i < n1 - 60,
            "S00002" => *i >= n2 - 4,
            _ => true,
        };
        *i += 1;
        if keep {
            csv.push(line.to_string());
        }
    }
    ctx.write("universe.csv", &(csv.join("\n") + "\n"))
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// Every bulk read's answers on `db`, printed (`{:?}` of f64 is exact).
fn answers(db: &Db, symbols: &[Symbol]) -> Vec<String> {
    let (early, mid, end) = (date("2015-02-16"), date("2015-04-01"), date("2015-05-22"));
    let mut out = Vec::new();
    let mut record = |name: &str, value: String| out.push(format!("{name}: {value}"));
    block_on(async {
        let after: Vec<(Symbol, Option<NaiveDate>)> = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), [None, Some(mid), Some(early)][i % 3]))
            .collect();
        record(
            "after_each",
            format!("{:?}", candles::after_each(db, &after).await.unwrap()),
        );
        let around: Vec<(Symbol, NaiveDate, NaiveDate)> = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i % 2 == 0 {
                    (s.clone(), mid, end)
                } else {
                    (s.clone(), early, mid)
                }
            })
            .collect();
        record(
            "around_each",
            format!("{:?}", candles::around_each(db, &around).await.unwrap()),
        );
        let counted: Vec<(Symbol, NaiveDate)> = after.iter().map(|(s, d)| (s.clone(), d.unwrap_or(end))).collect();
        record(
            "counts_through",
            format!("{:?}", candles::counts_through(db, &counted).await.unwrap()),
        );
        let mut last: Vec<_> = candles::last_dates(db, symbols).await.unwrap().into_iter().collect();
        last.sort();
        record("last_dates", format!("{last:?}"));
        for day in [mid, end] {
            record(
                "as_of_each",
                format!("{:?}", candles::as_of_each(db, symbols, day).await.unwrap()),
            );
            record(
                "at_each",
                format!("{:?}", ta_signals::at_each(db, symbols, day).await.unwrap()),
            );
        }
        for n in [20, 61] {
            record(
                "recent_each",
                format!("{:?}", candles::recent_each(db, symbols, end, n).await.unwrap()),
            );
        }
        let mut each = Vec::new();
        candles::for_each_symbol_through(db, symbols, mid, |s, c| {
            each.push(format!("{s} {c:?}"));
            Ok(())
        })
        .await
        .unwrap();
        candles::for_each_symbol_from(db, symbols, mid, |s, c| {
            each.push(format!("{s} {c:?}"));
            Ok(())
        })
        .await
        .unwrap();
        ta_signals::for_each_symbol_between(db, symbols, early, end, |s, r| {
            each.push(format!("{s} {r:?}"));
            Ok(())
        })
        .await
        .unwrap();
        record("for_each", each.join("\n"));
    });
    out
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_bulk_reads_and_writes_equal_the_sqlite_path() {
    let Some(my) = mysql_context() else { return };
    let lite = TestContext::new();
    let csv = universe(&lite);
    for ctx in [&my, &lite] {
        ctx.import(&[&csv], "synth").assert_ok();
        ctx.run("ta-signals", &["run", "--watchlist", "synth"]).assert_ok();
    }
    let (my_db, lite_db) = (my.db(), lite.db());
    let mut symbols = block_on(swingml::db::watchlists::members(&lite_db, "synth")).unwrap();
    assert_eq!(symbols.len(), 600);
    // Beyond one statement's 512 symbols, one with no candles, one twice.
    symbols.push(Symbol::parse("NOSUCH").unwrap());
    symbols.insert(3, symbols[10].clone());

    let (mine, theirs) = (answers(&my_db, &symbols), answers(&lite_db, &symbols));
    assert_eq!(mine.len(), theirs.len());
    for (a, b) in mine.iter().zip(&theirs) {
        assert!(a == b, "MariaDB and SQLite differ in {}", &b[..b.find(':').unwrap()]);
    }
    // The reads saw what was planted: the thin symbol's last 20 candles
    // reach back before the 20-session window, the stale one has a last
    // candle two months old, the new listing has 4, NOSUCH none.
    let recent = block_on(candles::recent_each(&lite_db, &symbols[..4], date("2015-05-22"), 20)).unwrap();
    assert_eq!(recent[0].len(), 15, "S00000: one session in seven of ~100");
    assert!(recent[0][0].date < date("2015-02-01"), "{:?}", recent[0][0].date);
    assert!(
        recent[1][19].date < date("2015-03-01"),
        "S00001 stopped: {:?}",
        recent[1][19].date
    );
    assert_eq!(recent[2].len(), 4);
    let nothing = block_on(candles::recent_each(&my_db, &symbols[601..], date("2015-05-22"), 20)).unwrap();
    assert_eq!(nothing, [Vec::new()]);

    // The rows `run` wrote in multi-row statements, every one of them.
    let rows = |db: &Db| {
        let mut all = Vec::new();
        block_on(ta_signals::for_each_symbol_between(
            db,
            &symbols[4..601],
            date("2015-01-01"),
            date("2015-12-31"),
            |_, r| {
                all.extend(r);
                Ok(())
            },
        ))
        .unwrap();
        all
    };
    let (mine, theirs) = (rows(&my_db), rows(&lite_db));
    assert!(mine.len() > 50_000, "{}", mine.len());
    assert!(mine == theirs, "the stored indicator rows differ");
    assert_eq!(
        block_on(ta_signals::count(&my_db)).unwrap(),
        block_on(ta_signals::count(&lite_db)).unwrap()
    );
}

/// The crash points a clean `run --full` passes, in order.
fn run_trace(ctx: &TestContext) -> Vec<String> {
    let trace = ctx.path("trace.txt");
    let mut cmd = ctx.command("ta-signals");
    cmd.env(swingml::crashpoint::CRASH_TRACE_VAR, &trace)
        .args(["run", "--full", "--watchlist", "us"]);
    Run::from(cmd.output().unwrap()).assert_ok();
    std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect()
}

#[test]
#[cfg_attr(skip_mysql, ignore = "built with SWINGML_SKIP_MYSQL=1")]
fn mysql_run_killed_in_its_write_transaction_reruns_to_the_same_rows() {
    let fixture = crate::common::fixture("us_daily_10sym_2018_2020.csv");
    let reference = TestContext::new();
    reference.import(&[&fixture], "us").assert_ok();
    reference.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    let all_rows = |ctx: &TestContext| {
        let db = ctx.db();
        let symbols = block_on(swingml::db::watchlists::members(&db, "us")).unwrap();
        let mut out = Vec::new();
        for s in &symbols {
            out.extend(block_on(ta_signals::for_symbol(&db, s)).unwrap());
        }
        out
    };
    let expected = all_rows(&reference);

    let probe = mysql_context().unwrap();
    probe.import(&[&fixture], "us").assert_ok();
    let points = run_trace(&probe);
    let writes: Vec<usize> = (0..points.len())
        .filter(|&i| ["ta_signals.symbol_rows", "db.before_commit", "db.after_commit"].contains(&points[i].as_str()))
        .collect();
    assert!(writes.len() >= 3, "{points:?}");
    // The first rows statement, the first commit's edges, and the last
    // write point of the run.
    let first_commit = writes.iter().position(|&i| points[i] == "db.before_commit").unwrap();
    let chosen = [
        writes[0],
        writes[first_commit],
        writes[first_commit + 1],
        *writes.last().unwrap(),
    ];
    for n in chosen {
        let ctx = mysql_context().unwrap();
        ctx.import(&[&fixture], "us").assert_ok();
        let killed = ctx
            .command("ta-signals")
            .env(swingml::crashpoint::CRASH_AFTER_VAR, (n + 1).to_string())
            .args(["run", "--full", "--watchlist", "us"])
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(killed.status.signal(), Some(9), "not killed at {n} ({})", points[n]);
        ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
        let rows = all_rows(&ctx);
        assert_eq!(rows.len(), expected.len(), "killed at {n} ({})", points[n]);
        assert!(rows == expected, "rows after a kill at {n} ({}) differ", points[n]);
    }
}
