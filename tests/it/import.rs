//! `ta-signals import`: fixtures, idempotence, quarantine and bad input.

use crate::common::{TestContext, count_in, fixture, quarantine_rows};

const HEADER: &str = "symbol,date,open,high,low,close,volume";

async fn candle_count(db: &swingml::db::Db) -> i64 {
    swingml::db::candles::count(db).await.unwrap()
}

#[test]
fn fixtures_import_with_right_counts_and_second_import_changes_nothing() {
    let ctx = TestContext::new();
    let us = fixture("us_daily_10sym_2018_2020.csv");
    let nse = fixture("nse_daily_5sym_2024.csv");
    let intraday = fixture("nse_15min_3sym_2024-10-21_2024-11-08.csv");
    let run = ctx.import(&[&us, &nse, &intraday], "demo");
    run.assert_ok();
    assert_eq!(count_in(&run.stderr, "rows read"), 7560 + 1245 + 1062);
    // 10 US × 756 days + 5 NSE × 249 sessions; the 45 intraday roll-ups
    // (3 symbols × 15 sessions) all give way to official daily candles.
    assert_eq!(count_in(&run.stderr, "inserted"), 7560 + 1245);
    assert!(run.stderr.contains("45 intraday roll-up(s) gave way"), "{}", run.stderr);
    assert_eq!(count_in(&run.stderr, "quarantined"), 0);
    // The NSE Saturday sessions (2024-01-20, 03-02, 05-18) × 5 symbols.
    assert_eq!(count_in(&run.stderr, "flagged"), 15);
    let db = ctx.db();
    assert_eq!(crate::common::block_on(candle_count(&db)), 8805);
    let members = crate::common::block_on(swingml::db::watchlists::members(&db, "demo")).unwrap();
    assert_eq!(members.len(), 15);

    let again = ctx.import(&[&us, &nse, &intraday], "demo");
    again.assert_ok();
    assert_eq!(count_in(&again.stderr, "inserted"), 0);
    assert_eq!(count_in(&again.stderr, "unchanged"), 8805);
    assert_eq!(count_in(&again.stderr, "flagged"), 0);
    assert_eq!(crate::common::block_on(candle_count(&db)), 8805);
}

#[test]
fn intraday_file_alone_rolls_up_to_daily_candles() {
    let ctx = TestContext::new();
    let run = ctx.import(&[&fixture("nse_15min_3sym_2024-10-21_2024-11-08.csv")], "intraday");
    run.assert_ok();
    assert_eq!(count_in(&run.stderr, "inserted"), 45);
    let db = ctx.db();
    let infy = swingml::symbols::Symbol::parse("INFY.NS").unwrap();
    let candles = crate::common::block_on(swingml::db::candles::for_symbol(&db, &infy)).unwrap();
    assert_eq!(candles.len(), 15);
    // The Diwali Muhurat evening bars belong to the 2024-11-01 session.
    assert!(candles.iter().any(|c| c.date.to_string() == "2024-11-01"));
}

#[test]
fn known_bad_rows_are_quarantined_one_record_each_with_the_right_rule() {
    let ctx = TestContext::new();
    let run = ctx.import(&[&fixture("us_daily_known_bad_rows.csv")], "bad");
    run.assert_ok();
    assert_eq!(count_in(&run.stderr, "quarantined"), 13);
    assert_eq!(
        count_in(&run.stderr, "inserted"),
        2,
        "LNT 2016-05-18 and 2016-05-20 are good rows"
    );
    let rows = quarantine_rows(&ctx, "bad");
    assert_eq!(rows.len(), 13);
    let rule_of = |symbol: &str, date: &str| {
        rows.iter()
            .find(|r| r.2 == symbol && r.3 == date)
            .map(|r| r.0.as_str())
            .unwrap()
    };
    assert_eq!(rule_of("AOS", "2014-05-19"), "high_below_open_close");
    assert_eq!(rule_of("LNT", "2016-05-19"), "low_above_open_close");
    for (symbol, date) in [
        ("BHF", "2017-07-26"),
        ("DHR", "2015-07-17"),
        ("REGN", "2015-06-09"),
        ("WRK", "2015-06-26"),
    ] {
        assert_eq!(rule_of(symbol, date), "missing_field");
    }
    assert!(rows.iter().all(|r| r.1 == "quarantined"));
}

#[test]
fn each_bad_value_gets_its_rule_and_good_rows_still_load() {
    let ctx = TestContext::new();
    let text = format!(
        "{HEADER},dividend\n\
         GOOD,2024-01-02,10,11,9,10.5,100,0.1\n\
         TEXT,2024-01-02,ten,11,9,10.5,100,0\n\
         NAN,2024-01-02,NaN,11,9,10.5,100,0\n\
         INF,2024-01-02,10,inf,9,10.5,100,0\n\
         ZERO,2024-01-02,0,11,0,10.5,100,0\n\
         NEG,2024-01-02,10,11,9,10.5,-5,0\n\
         HIGH,2024-01-02,10,10.2,9,10.5,100,0\n\
         LOW,2024-01-02,10,11,10.2,10.5,100,0\n\
         a b,2024-01-02,10,11,9,10.5,100,0\n\
         ;DROP,2024-01-02,10,11,9,10.5,100,0\n\
         DUP,2024-01-02,10,11,9,10.5,100,0\n\
         DUP,2024-01-02,10,11,9,10.6,100,0\n\
         WKND,2024-01-06,10,11,9,10.5,100,0\n"
    );
    let path = ctx.write("mixed.csv", &text);
    let run = ctx.import(&[&path], "mixed");
    run.assert_ok();
    let rows = quarantine_rows(&ctx, "mixed");
    let rule_of = |symbol: &str| {
        rows.iter()
            .find(|r| r.2 == symbol)
            .map(|r| r.0.clone())
            .unwrap_or_default()
    };
    assert_eq!(rule_of("TEXT"), "unparseable_field");
    assert_eq!(rule_of("NAN"), "non_finite");
    assert_eq!(rule_of("INF"), "non_finite");
    assert_eq!(rule_of("ZERO"), "non_positive_price");
    assert_eq!(rule_of("NEG"), "negative_volume");
    assert_eq!(rule_of("HIGH"), "high_below_open_close");
    assert_eq!(rule_of("LOW"), "low_above_open_close");
    assert_eq!(rule_of("a b"), "invalid_symbol");
    assert_eq!(rule_of(";DROP"), "invalid_symbol");
    assert_eq!(
        rows.iter()
            .filter(|r| r.2 == "DUP" && r.0 == "duplicate_conflict")
            .count(),
        2
    );
    assert_eq!(rule_of("WKND"), "weekend_date");
    assert_eq!(rows.iter().find(|r| r.2 == "WKND").unwrap().1, "flagged");
    // GOOD (with an ignored extra column) and the flagged weekend row are stored.
    assert_eq!(count_in(&run.stderr, "inserted"), 2);
    assert_eq!(count_in(&run.stderr, "quarantined"), 11);
}

#[test]
fn a_row_conflicting_with_the_database_is_quarantined_and_the_stored_row_kept() {
    let ctx = TestContext::new();
    let first = ctx.write("a.csv", &format!("{HEADER}\nAAA,2024-01-02,10,11,9,10.5,100\n"));
    ctx.import(&[&first], "w").assert_ok();
    let second = ctx.write(
        "b.csv",
        &format!("{HEADER}\nAAA,2024-01-02,10,11,9,10.7,100\nAAA,2024-01-03,10,11,9,10.5,100\n"),
    );
    let run = ctx.import(&[&second], "w");
    run.assert_ok();
    assert_eq!(count_in(&run.stderr, "inserted"), 1);
    let rows = quarantine_rows(&ctx, "w");
    assert_eq!(
        rows,
        vec![(
            "conflicts_with_stored".into(),
            "quarantined".into(),
            "AAA".into(),
            "2024-01-02".into()
        )]
    );
    let db = ctx.db();
    let aaa = swingml::symbols::Symbol::parse("AAA").unwrap();
    let stored = crate::common::block_on(swingml::db::candles::for_symbol(&db, &aaa)).unwrap();
    assert_eq!(stored[0].close, 10.5, "the stored row was not overwritten");
}

#[test]
fn missing_file_is_a_usage_error() {
    let ctx = TestContext::new();
    let run = ctx.import(&[&ctx.path("nope.csv")], "w");
    run.assert_error(2, "input not found");
}

#[test]
fn garbled_or_incomplete_files_fail_with_one_line_and_store_nothing() {
    let ctx = TestContext::new();
    let good = ctx.write("good.csv", &format!("{HEADER}\nAAA,2024-01-02,10,11,9,10.5,100\n"));
    ctx.import(&[&good], "w").assert_ok();

    let no_close = ctx.write(
        "no_close.csv",
        "symbol,date,open,high,low,volume\nBBB,2024-01-02,10,11,9,100\n",
    );
    let run = ctx.import(
        &[
            &ctx.write("more.csv", &format!("{HEADER}\nBBB,2024-01-02,10,11,9,10.5,100\n")),
            &no_close,
        ],
        "w",
    );
    assert_eq!(run.code, 1);
    let line = run.error_line();
    assert!(
        line.contains("no_close.csv") && line.contains("missing required column(s) close"),
        "{line}"
    );

    let mut garbage = vec![0x1f, 0x8b, 0x08, 0x00];
    garbage.extend((0..200u32).map(|i| (i * 7919 % 251) as u8));
    let gz = ctx.path("broken.csv.gz");
    std::fs::write(&gz, garbage).unwrap();
    let run = ctx.import(&[&gz], "w");
    run.assert_error(1, "broken.csv.gz");

    let binary = ctx.path("binary.csv");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41, 0x0a, 0x42]).unwrap();
    let run = ctx.import(&[&binary], "w");
    run.assert_error(1, "binary.csv");

    // Nothing stored before was lost, nothing of the failed runs was stored.
    let db = ctx.db();
    assert_eq!(crate::common::block_on(candle_count(&db)), 1);
}

#[test]
fn per_symbol_file_with_an_invalid_name_is_refused() {
    let ctx = TestContext::new();
    let path = ctx.write(
        "bad name.csv",
        "date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,100\n",
    );
    let run = ctx.import(&[&path], "w");
    run.assert_error(1, "does not give a valid symbol");
}

#[test]
fn parquet_input_is_read() {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let ctx = TestContext::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Utf8, false),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["2024-01-02", "2024-01-03"])),
            Arc::new(Float64Array::from(vec![10.0, 10.5])),
            Arc::new(Float64Array::from(vec![11.0, 11.0])),
            Arc::new(Float64Array::from(vec![9.0, 10.0])),
            Arc::new(Float64Array::from(vec![10.5, 10.75])),
            Arc::new(Int64Array::from(vec![100, 200])),
        ],
    )
    .unwrap();
    let path = ctx.path("TCS.NS.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let run = ctx.import(&[&path], "pq");
    run.assert_ok();
    assert_eq!(count_in(&run.stderr, "inserted"), 2);
    let db = ctx.db();
    let tcs = swingml::symbols::Symbol::parse("TCS.NS").unwrap();
    let stored = crate::common::block_on(swingml::db::candles::for_symbol(&db, &tcs)).unwrap();
    assert_eq!(stored[1].close, 10.75);
    assert_eq!(stored[1].volume, 200);
}

#[test]
fn unreachable_database_fails_with_one_line_without_the_password() {
    let ctx = TestContext::with_database("mysql://bob:hunter2secret@127.0.0.1:9/swingml".into());
    let good = ctx.write("good.csv", &format!("{HEADER}\nAAA,2024-01-02,10,11,9,10.5,100\n"));
    let run = ctx.import(&[&good], "w");
    assert_eq!(run.code, 1);
    let line = run.error_line();
    assert!(
        line.contains("cannot connect to database mysql://bob:***@127.0.0.1:9/swingml"),
        "{line}"
    );
    assert!(!run.stderr.contains("hunter2secret") && !run.stdout.contains("hunter2secret"));

    let ctx = TestContext::with_database("postgres://x@localhost/db".into());
    let run = ctx.import(&[&good], "w");
    run.assert_error(2, "unsupported database URL");
}

#[test]
fn invalid_watchlist_and_date_flags_are_usage_errors() {
    let ctx = TestContext::new();
    let good = ctx.write("good.csv", &format!("{HEADER}\nAAA,2024-01-02,10,11,9,10.5,100\n"));
    let run = ctx.import(&[&good], "../escape");
    run.assert_error(2, "invalid watchlist name");
    let run = ctx.run(
        "ta-signals",
        &["import", "--as-of", "2024-02-30", good.to_str().unwrap()],
    );
    run.assert_error(2, "invalid date");
    assert!(!ctx.artifacts().join("..").join("escape").exists());
}
