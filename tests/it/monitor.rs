//! `monitor`: a replay of daily scores, pending rows completing on the
//! right day, repeatable reports, alerts and bad input.

use crate::bootstrap::{artifact, bootstrap, with_us_candles};
use crate::common::TestContext;

/// Candles, indicators, a bootstrap as of 2020-11-30 and a score run for
/// each of `days`.
fn replay(days: &[&str]) -> TestContext {
    let ctx = with_us_candles();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    bootstrap(&ctx, "us", &["--force", "--as-of", "2020-11-30"]).assert_ok();
    for day in days {
        ctx.run("score", &["--watchlist", "us", "--top-k", "3", "--as-of", day])
            .assert_ok();
    }
    ctx
}

const DECEMBER: [&str; 10] = [
    "2020-12-17",
    "2020-12-18",
    "2020-12-21",
    "2020-12-22",
    "2020-12-23",
    "2020-12-24",
    "2020-12-28",
    "2020-12-29",
    "2020-12-30",
    "2020-12-31",
];

fn monitor(ctx: &TestContext, as_of: &str, extra: &[&str]) -> crate::common::Run {
    let mut args = vec![
        "--watchlist",
        "us",
        "--as-of",
        as_of,
        "--predictions-days-back",
        "10",
        "--format",
        "json",
    ];
    args.extend(extra);
    ctx.run("monitor", &args)
}

fn report(run: &crate::common::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn pending_rows_complete_on_the_right_day_and_reports_repeat() {
    let ctx = replay(&DECEMBER);
    // As of 12-30: the scans of 12-17 .. 12-22 have their 5 bars (the last
    // is 12-22 + 5 = 12-30), 12-23 .. 12-30 are pending.
    let r = report(monitor(&ctx, "2020-12-30", &[]).assert_ok());
    let dates = r["dates"].as_array().unwrap();
    assert_eq!(dates.len(), 9, "12-17 .. 12-30 scored");
    let completed: Vec<usize> = dates
        .iter()
        .map(|d| d["completed"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(completed, [10, 10, 10, 10, 0, 0, 0, 0, 0]);
    assert_eq!(r["pooled"]["pending"], 50);
    // One session later 12-23 completes.
    let r = report(monitor(&ctx, "2020-12-31", &[]).assert_ok());
    let completed: Vec<u64> = r["dates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["completed"].as_u64().unwrap())
        .collect();
    assert_eq!(completed, [10, 10, 10, 10, 10, 0, 0, 0, 0, 0]);
    let p = &r["pooled"];
    assert_eq!(
        (
            p["scored"].as_u64(),
            p["completed"].as_u64(),
            p["top_k_completed"].as_u64()
        ),
        (Some(100), Some(50), Some(15))
    );
    let precision = p["precision_at_k"].as_f64().unwrap();
    let ci = p["precision_at_k_ci95"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= precision && precision <= ci[1].as_f64().unwrap());
    // Too few completed picks for the precision check: a note, no alarm.
    assert!(
        r["notes"]
            .to_string()
            .contains("insufficient data for the precision check"),
        "{}",
        r["notes"]
    );
    assert!(
        r["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["code"] != "precision_drop")
    );
    // Drift of every feature and of the score, against the training bins.
    let drift = r["drift"].as_array().unwrap();
    assert!(drift.iter().any(|d| d["feature"] == "p_score"));
    assert!(drift.iter().any(|d| d["feature"] == "madi_trend"));
    assert!(drift.len() >= swingml::features::NUMERIC_FEATURES.len());

    // The preview, read by pyarrow: each prediction with its outcome.
    let previews = artifact(&ctx, "us", "monitor_preview_");
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]).to_pydict()
done = [(str(d), s) for d, s in zip(t["as_of"], t["status"]) if s == "completed"]
print(json.dumps({"rows": len(t["symbol"]), "completed": len(done), "last_completed": max(d for d, _ in done),
  "labels": sorted(set(x for x in t["label"] if x is not None))}))
"#,
        )
        .arg(previews.last().unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((v["rows"].as_u64(), v["completed"].as_u64()), (Some(100), Some(50)));
    assert_eq!(v["last_completed"], "2020-12-23");

    // The same as-of twice: the same report but for the run id.
    let (mut a, mut b) = (
        report(&monitor(&ctx, "2020-12-31", &[])),
        report(&monitor(&ctx, "2020-12-31", &[])),
    );
    assert_ne!(a["run_id"], b["run_id"]);
    a["run_id"] = serde_json::Value::Null;
    b["run_id"] = serde_json::Value::Null;
    assert_eq!(a, b);
    ctx.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();
}

#[test]
fn alerts_fail_the_run_only_when_asked_and_bad_input_is_one_line() {
    let ctx = replay(&DECEMBER[7..]);
    // Without --as-of the newest candle (2020) is years behind today: the
    // data feed looks dead.
    let run = ctx.run("monitor", &["--watchlist", "us", "--format", "json"]);
    let r = report(run.assert_ok());
    assert_eq!(r["status"], "alerts");
    assert!(
        r["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "data_stale"),
        "{}",
        r["alerts"]
    );
    let run = ctx.run("monitor", &["--watchlist", "us", "--fail-on-alerts"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.contains("alert data_stale"), "{}", run.stdout);

    // Dates without a score run are listed.
    let r = report(monitor(&ctx, "2020-12-31", &[]).assert_ok());
    assert!(
        r["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "score_missing"),
        "{}",
        r["alerts"]
    );

    // A corrupt predictions file is named, skipped and reported.
    let newest = artifact(&ctx, "us", "predictions_").pop().unwrap();
    std::fs::write(&newest, b"PAR1 not a parquet file").unwrap();
    let r = report(monitor(&ctx, "2020-12-31", &[]).assert_ok());
    let skipped = r["skipped_files"].to_string();
    assert!(
        skipped.contains(newest.file_name().unwrap().to_str().unwrap()),
        "{skipped}"
    );

    let run = ctx.run(
        "monitor",
        &[
            "--watchlist",
            "us",
            "--as-of",
            "2020-12-31",
            "--predictions-days-back",
            "0",
        ],
    );
    run.assert_error(2, "invalid setting --predictions-days-back: must be at least 1");
}

#[test]
fn no_predictions_yet_says_run_score_first() {
    let ctx = with_us_candles();
    bootstrap(&ctx, "us", &["--force"]).assert_ok();
    let run = ctx.run("monitor", &["--watchlist", "us"]);
    run.assert_error(1, "no predictions for us up to 2020-12-31: run score first");
}
