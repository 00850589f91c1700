//! `monitor`: a replay of daily scores, pending rows completing on the
//! right day, repeatable reports, alerts and bad input.

use crate::bootstrap::{artifact, bootstrap, with_us_candles};
use crate::common::TestContext;

/// Candles, indicators, a bootstrap as of 2020-11-30 and a score run for
/// each of `days`.
/// A cron day's morning score and evening update (K = 3).
fn score_and_update(ctx: &TestContext, day: &str) {
    ctx.run("score", &["--watchlist", "us", "--top-k", "3", "--as-of", day])
        .assert_ok();
    ctx.run(
        "incremental-update",
        &["--watchlist", "us", "--top-k", "3", "--as-of", day],
    )
    .assert_ok();
}

pub(crate) fn replay(days: &[&str]) -> TestContext {
    let ctx = with_us_candles();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    bootstrap(&ctx, "us", &["--force", "--as-of", "2020-11-30"]).assert_ok();
    for day in days {
        ctx.run("score", &["--watchlist", "us", "--top-k", "3", "--as-of", day])
            .assert_ok();
    }
    ctx
}

pub(crate) const DECEMBER: [&str; 10] = [
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
fn reports_from_stored_rows_equal_reports_from_whole_histories() {
    let ctx = replay(&DECEMBER[..6]);
    // Rows through 12-31 are stored; the report as of 12-30 reads them.
    let fast = monitor(&ctx, "2020-12-30", &[]);
    fast.assert_ok();
    assert!(!fast.stderr.contains("whole history"), "{}", fast.stderr);
    let db = rusqlite::Connection::open(ctx.path("swingml.db")).unwrap();
    assert_eq!(db.execute("DELETE FROM ta_state", []).unwrap(), 10);
    drop(db);
    let slow = monitor(&ctx, "2020-12-30", &[]);
    slow.assert_ok();
    assert!(slow.stderr.contains("10 from their whole history"), "{}", slow.stderr);
    let (mut a, mut b) = (report(&fast), report(&slow));
    assert_eq!(a["pooled"]["completed"], 40, "{a}");
    for r in [&mut a, &mut b] {
        for key in ["run_id", "report_path", "html_path"] {
            r.as_object_mut().unwrap().remove(key);
        }
    }
    assert_eq!(a, b);
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

    // Predictions of a program with other features (one column missing):
    // named, skipped, with the reason.
    let older = artifact(&ctx, "us", "predictions_").into_iter().rev().nth(1).unwrap();
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); pq.write_table(t.drop(['rsi_14']), sys.argv[1])")
        .arg(&older)
        .status()
        .unwrap();
    assert!(status.success());
    let r = report(monitor(&ctx, "2020-12-31", &[]).assert_ok());
    let skipped = r["skipped_files"].to_string();
    assert!(
        skipped.contains(older.file_name().unwrap().to_str().unwrap())
            && skipped.contains("another feature config than this program's (missing columns: rsi_14)"),
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

/// A one-shot HTTP listener on loopback: the body of the first request.
fn webhook_listener() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T000/B000/secret-token",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .unwrap();
        tx.send(String::from_utf8(body).unwrap()).unwrap();
    });
    (url, rx)
}

#[test]
fn alerts_reach_the_webhook_and_an_unreachable_one_still_writes_the_report() {
    let ctx = replay(&DECEMBER[8..]);
    let (url, body) = webhook_listener();
    let run = ctx.run("monitor", &["--watchlist", "us", "--notify-url", &url]);
    run.assert_ok();
    let body: serde_json::Value =
        serde_json::from_str(&body.recv_timeout(std::time::Duration::from_secs(20)).unwrap()).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("data_stale: the newest candle is 2020-12-31"), "{text}");
    assert!(text.contains("report: ") && text.contains("monitor_report_"), "{text}");
    assert!(
        !run.stderr.contains("secret-token"),
        "the webhook's secret path is never logged: {}",
        run.stderr
    );

    // Nobody listens on this port: an error line, the report is written.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let before = artifact(&ctx, "us", "monitor_report_").len();
    let run = ctx
        .command("monitor")
        .args(["--watchlist", "us"])
        .env("SWINGML_WEBHOOK_URL", format!("http://{closed}/hook/secret-token"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("could not post the alerts to the webhook at http://127.0.0.1/"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-token"), "{stderr}");
    assert_eq!(
        artifact(&ctx, "us", "monitor_report_").len(),
        before + 2,
        "JSON and HTML written"
    );
}

#[test]
fn the_html_report_opens_in_a_real_browser_with_every_chart() {
    let ctx = replay(&DECEMBER);
    monitor(&ctx, "2020-12-31", &[]).assert_ok();
    let page = artifact(&ctx, "us", "monitor_report_")
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("src=\"http"), "nothing loaded from the network");
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|b| {
            std::process::Command::new("which")
                .arg(b)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Chromium is needed for this test: scripts/setup.sh installs it (apt-get install chromium)");
    let profile = ctx.path("chromium-profile");
    let shot = ctx.path("report.png");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--hide-scrollbars",
    ];
    let url = format!("file://{}", page.display());
    let dom = std::process::Command::new(chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let rendered = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        rendered.matches("<svg").count(),
        4,
        "every chart is in the page the browser built"
    );
    assert!(rendered.contains("precision@K per scan date") && rendered.contains("drift per feature"));
    let console: Vec<&str> = String::from_utf8_lossy(&dom.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(|_| "console message")
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let run = std::process::Command::new(chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([
            "--window-size=760,1900",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // A blank 760×1900 page compresses to a few kB; charts and tables do not.
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 40_000, "screenshot of {} bytes looks blank", png.len());
}

#[test]
fn a_thirty_day_replay_completes_each_scan_date_on_its_fifth_session() {
    // The fixture's last 30 trading dates of 2020, bootstrap just before.
    let text = std::fs::read_to_string(crate::common::fixture("us_daily_10sym_2018_2020.csv")).unwrap();
    let mut dates: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1).map(str::to_string))
        .collect();
    dates.sort();
    dates.dedup();
    let days: Vec<String> = dates[dates.len() - 30..].to_vec();
    let before = &dates[dates.len() - 31];
    let ctx = with_us_candles();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    bootstrap(&ctx, "us", &["--force", "--as-of", before]).assert_ok();
    for (i, day) in days.iter().enumerate() {
        score_and_update(&ctx, day);
        if i % 6 == 5 || i == days.len() - 1 {
            let run = ctx.run(
                "monitor",
                &[
                    "--watchlist",
                    "us",
                    "--as-of",
                    day,
                    "--predictions-days-back",
                    "30",
                    "--format",
                    "json",
                ],
            );
            let r = report(run.assert_ok());
            // Scan date j is complete from session j + 5 on.
            let completed: Vec<u64> = r["dates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["completed"].as_u64().unwrap())
                .collect();
            let want: Vec<u64> = (0..=i).map(|j| if j + 5 <= i { 10 } else { 0 }).collect();
            assert_eq!(completed, want, "as of {day}");
            assert!(
                r["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|a| a["code"] != "incremental_lagging"),
                "{}",
                r["alerts"]
            );
        }
    }
    let last = days.last().unwrap();
    let twice: Vec<serde_json::Value> = (0..2)
        .map(|_| {
            let run = ctx.run(
                "monitor",
                &[
                    "--watchlist",
                    "us",
                    "--as-of",
                    last,
                    "--predictions-days-back",
                    "30",
                    "--format",
                    "json",
                ],
            );
            let mut r = report(run.assert_ok());
            r["run_id"] = serde_json::Value::Null;
            r
        })
        .collect();
    assert_eq!(twice[0], twice[1], "the same as-of gives the same report");
    ctx.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();
}

#[test]
fn a_missed_update_is_told_from_a_model_kept_as_a_candidate() {
    let days = crate::incremental::november(10);
    let ctx = with_us_candles();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    bootstrap(&ctx, "us", &["--force", "--as-of", "2020-10-30"]).assert_ok();
    for day in &days {
        ctx.run("score", &["--watchlist", "us", "--top-k", "3", "--as-of", day])
            .assert_ok();
    }
    let monitor = |ctx: &TestContext| {
        let run = ctx.run(
            "monitor",
            &[
                "--watchlist",
                "us",
                "--as-of",
                &days[9],
                "--predictions-days-back",
                "10",
                "--format",
                "json",
            ],
        );
        report(run.assert_ok())
    };
    let lagging = |r: &serde_json::Value| -> Vec<String> {
        r["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["code"] == "incremental_lagging")
            .map(|a| a["message"].as_str().unwrap().to_string())
            .collect()
    };
    // No update ran: scan dates through 6 November are due.
    let missed = monitor(&ctx);
    let alert = lagging(&missed);
    assert_eq!(alert.len(), 1, "{}", missed["alerts"]);
    assert!(
        alert[0].contains("a run was missed, run incremental-update"),
        "{alert:?}"
    );
    // The update runs and keeps its model as a candidate (one trailing
    // date can never be told apart from noise): nothing to run.
    std::fs::create_dir_all(ctx.path("config")).unwrap();
    ctx.write("config/swingml.toml", "[incremental]\ntrailing_dates = 1\n");
    let run = ctx.run(
        "incremental-update",
        &["--watchlist", "us", "--top-k", "3", "--as-of", &days[9]],
    );
    assert!(run.assert_ok().stderr.contains("as a candidate"), "{}", run.stderr);
    let kept = monitor(&ctx);
    assert!(lagging(&kept).is_empty(), "{}", kept["alerts"]);
    let notes = kept["notes"].to_string();
    assert!(
        notes.contains("was kept as a candidate") && notes.contains("nothing to run"),
        "{notes}"
    );
}

#[test]
fn the_quick_start_monitor_run_raises_no_drift_alert_and_says_why() {
    // quickstart.sh's steps, then its monitor run.
    let ctx = crate::bootstrap::quick_start_bootstrap();
    for day in DECEMBER[4..].iter() {
        ctx.run("ta-signals", &["run", "--watchlist", "us", "--as-of", day])
            .assert_ok();
        score_and_update(&ctx, day);
    }
    let text = ctx.run("monitor", &["--watchlist", "us", "--as-of", "2020-12-31"]);
    text.assert_ok();
    let r = report(
        ctx.run(
            "monitor",
            &["--watchlist", "us", "--as-of", "2020-12-31", "--format", "json"],
        )
        .assert_ok(),
    );
    let codes: Vec<&str> = r["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert!(
        !codes.contains(&"feature_drift") && !codes.contains(&"retrain_recommended"),
        "{codes:?}"
    );
    // Ten symbols over the six scored dates of the 7-date window: too few
    // rows for a PSI over 10 bins; the reason is in the report and the text.
    let check = &r["drift_check"];
    assert_eq!(check["status"], "insufficient data", "{check}");
    assert_eq!((check["rows"].as_u64(), check["dates"].as_u64()), (Some(60), Some(6)));
    assert!(
        check["reason"]
            .as_str()
            .unwrap()
            .contains("60 scored rows over 6 date(s)"),
        "{check}"
    );
    assert!(
        text.stdout.contains("note  drift: insufficient data"),
        "{}",
        text.stdout
    );
    for d in r["drift"].as_array().unwrap() {
        match d["kind"].as_str().unwrap() {
            // The market's per-date values are still judged, calibrated.
            "per_date" => assert_eq!(d["threshold_from"], "calibrated", "{d}"),
            _ => assert_eq!(d["status"], "insufficient data", "{d}"),
        }
    }
}
