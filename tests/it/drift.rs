//! `monitor`'s drift alerts on synthetic universes (`bench/synth.py`): a
//! stationary one stays quiet, one whose volatility and volume triple is
//! caught on the features the shift moves; the statistics are recomputed
//! with pandas from the predictions and the stored reference.

use crate::common::{TestContext, import_synthetic_args, python_json};
use serde_json::Value;

/// Sessions scored after the bootstrap; a monitor every `EVERY`th.
const SESSIONS: usize = 60;
const EVERY: usize = 5;

/// A 60-symbol, 5.5-year synthetic universe (seed `seed`, the last
/// `shifted` sessions with tripled volatility and volume), indicators, a
/// 5-year bootstrap 60 sessions before its end, a score run per session
/// and `monitor --predictions-days-back 5` every 5th: the 12 reports (and
/// those of extra runs after the sessions `also`).
fn twelve_monitor_runs(seed: &str, shifted: &str, also: &[usize]) -> (TestContext, Vec<Value>, Vec<Value>) {
    let ctx = TestContext::new();
    import_synthetic_args(&ctx, "synth", &["60", "5.5", seed, "0", shifted]);
    let csv = std::fs::read_to_string(ctx.path("universe.csv")).unwrap();
    let mut dates: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    dates.sort_unstable();
    dates.dedup();
    let dates = &dates[dates.len() - SESSIONS - 1..];
    ctx.run("ta-signals", &["run", "--watchlist", "synth"]).assert_ok();
    let bootstrap = [
        "--watchlist",
        "synth",
        "--train-years",
        "5",
        "--top-k",
        "5",
        "--as-of",
        dates[0],
        "--force",
    ];
    ctx.run("bootstrap", &bootstrap).assert_ok();
    let mut reports = Vec::new();
    let mut extra = Vec::new();
    for (i, day) in dates.iter().enumerate().skip(1) {
        ctx.run("score", &["--watchlist", "synth", "--top-k", "5", "--as-of", day])
            .assert_ok();
        if i % EVERY == 0 || also.contains(&i) {
            let run = ctx.run(
                "monitor",
                &[
                    "--watchlist",
                    "synth",
                    "--as-of",
                    day,
                    "--predictions-days-back",
                    "5",
                    "--format",
                    "json",
                ],
            );
            run.assert_ok();
            let report = serde_json::from_str(&run.stdout).unwrap();
            if i % EVERY == 0 {
                reports.push(report);
            } else {
                extra.push(report);
            }
        }
    }
    (ctx, reports, extra)
}

fn drift_alerts(report: &Value) -> Vec<String> {
    report["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["code"] == "feature_drift")
        .map(|a| a["figures"]["feature"].as_str().unwrap().to_string())
        .collect()
}

fn codes(report: &Value) -> Vec<&str> {
    report["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect()
}

#[test]
fn a_stationary_universe_raises_at_most_one_drift_alert_in_twelve_runs() {
    let (ctx, reports, _) = twelve_monitor_runs("7", "0", &[]);
    assert_eq!(reports.len(), SESSIONS / EVERY);
    let alerting: Vec<(String, Vec<String>)> = reports
        .iter()
        .map(|r| (r["as_of"].as_str().unwrap().to_string(), drift_alerts(r)))
        .filter(|(_, a)| !a.is_empty())
        .collect();
    assert!(alerting.len() <= 1, "{alerting:?}");
    for r in &reports {
        // Judged against calibrated thresholds, every feature and p_score.
        assert_eq!(r["drift_check"]["status"], "calibrated", "{}", r["drift_check"]);
        assert_eq!(r["drift_check"]["calibration"]["dates"], 5);
        assert!(!codes(r).contains(&"retrain_recommended"), "{:?}", codes(r));
        let judged = r["drift"].as_array().unwrap();
        assert!(judged.len() >= 32, "{}", judged.len());
        assert!(judged.iter().all(|d| d["threshold_from"] == "calibrated"), "{judged:?}");
    }
    recompute_statistics(&ctx, reports.last().unwrap());
}

#[test]
fn tripled_volatility_and_volume_alert_on_the_features_they_move() {
    // The last 20 of the 60 sessions are shifted: the 9th run (sessions
    // 41..45) is the first whose window is all shifted.
    // An extra run after session 46 shares 4 dates with the 9th run's.
    let (_ctx, reports, extra) = twelve_monitor_runs("8", "20", &[46]);
    let before = &reports[7];
    let first = &reports[8];
    let second = &reports[9];
    // The day's volume over its 20-day mean triples at once.
    assert!(!drift_alerts(before).contains(&"volume_ratio_20".to_string()));
    assert!(
        drift_alerts(first).contains(&"volume_ratio_20".to_string()),
        "{:?}",
        drift_alerts(first)
    );
    // The 20-day (and 14-day Wilder) volatility measures move as the
    // shifted sessions fill their windows: by the next run.
    for f in ["volatility_20d", "atr_over_close"] {
        assert!(
            drift_alerts(second).contains(&f.to_string()),
            "{f}: {:?}",
            drift_alerts(second)
        );
    }
    // A cross-sectional rank is uniform on each date whatever the scale of
    // the whole market: the shift cannot move its distribution.
    for r in &reports[8..] {
        let ranks: Vec<String> = drift_alerts(r)
            .into_iter()
            .filter(|f| f.starts_with("xs_rank_"))
            .collect();
        assert!(ranks.is_empty(), "{ranks:?}");
    }
    // The first drifted run is an alert, not yet a retrain (the run before
    // it saw no shift); neither is a run whose window overlaps it (the same
    // evidence); a drift that persists over the next runs is.
    assert!(!codes(first).contains(&"retrain_recommended"), "{:?}", codes(first));
    assert!(drift_alerts(&extra[0]).len() >= 3, "{:?}", drift_alerts(&extra[0]));
    assert!(
        !codes(&extra[0]).contains(&"retrain_recommended"),
        "{:?}",
        codes(&extra[0])
    );
    assert!(
        reports[9..].iter().any(|r| codes(r).contains(&"retrain_recommended")),
        "{:?}",
        reports[9..].iter().map(codes).collect::<Vec<_>>()
    );
}

/// The report's PSI of each row feature and KS of each per-date feature,
/// recomputed with pandas from the window's predictions files and the
/// live feature config's reference bins and per-date percentiles.
fn recompute_statistics(ctx: &TestContext, report: &Value) {
    let files: Vec<String> = report["dates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            ctx.artifacts()
                .join("synth")
                .join(d["file"].as_str().unwrap())
                .display()
                .to_string()
        })
        .collect();
    let configs = crate::bootstrap::artifact(ctx, "synth", "feature_config_");
    let config = configs.last().unwrap().display().to_string();
    let script = r#"
import json, sys
import numpy as np, pandas as pd
config = json.load(open(sys.argv[1]))
rows = pd.concat([pd.read_parquet(f) for f in sys.argv[2:]])
rows = rows[rows["status"] == "scored"]
out = {}
for name, ref in config["reference"]["numeric"].items():
    if name.startswith("market_"):
        continue
    v = rows[name].dropna().to_numpy()
    bins = np.searchsorted(np.array(ref["edges"][1:-1]), v, side="left")
    actual = np.bincount(bins, minlength=10) / len(v)
    e, a = np.maximum(ref["shares"], 1e-4), np.maximum(actual, 1e-4)
    out[name] = float(((a - e) * np.log(a / e)).sum())
points = config["drift"]["per_date"]
for name, q in points.items():
    per_date = np.sort(rows.groupby("as_of")[name].mean().to_numpy())
    n = len(per_date)
    # The reference CDF, linear between its percentiles (0 below, 1 from the top).
    def cdf_at(x):
        if x < q[0]:
            return 0.0
        if x >= q[-1]:
            return 1.0
        j = int(np.searchsorted(q, x, side="right")) - 1
        width = q[j + 1] - q[j]
        return (j + ((x - q[j]) / width if width > 0 else 0.0)) / (len(q) - 1)
    cdf = np.array([cdf_at(x) for x in per_date])
    i = np.arange(1, n + 1)
    out[name] = float(max((i / n - cdf).max(), (cdf - (i - 1) / n).max()))
print(json.dumps(out))
"#;
    let mut args = vec!["-c", script, config.as_str()];
    args.extend(files.iter().map(String::as_str));
    let want = python_json(&args);
    let drift = report["drift"].as_array().unwrap();
    let mut checked = 0;
    for (name, value) in want.as_object().unwrap() {
        let got = drift
            .iter()
            .find(|d| d["feature"] == *name)
            .unwrap_or_else(|| panic!("{name}"));
        let (got, want) = (got["value"].as_f64().unwrap(), value.as_f64().unwrap());
        assert!((got - want).abs() < 1e-9, "{name}: {got} vs pandas {want}");
        checked += 1;
    }
    assert_eq!(
        checked,
        23 + 3,
        "the row features but the market ones, and the per-date ones"
    );
}
