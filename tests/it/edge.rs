//! The edge: the optional feature families recomputed with pandas, the
//! ranking objectives on universes with and without a planted signal,
//! and bad settings for both.

use crate::bootstrap::{artifact, bootstrap, with_us_candles};
use crate::common::{TestContext, fixture, import_synthetic, python_json, repo};

fn newest_json(ctx: &TestContext, watchlist: &str, prefix: &str) -> serde_json::Value {
    let path = artifact(ctx, watchlist, prefix).pop().unwrap();
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_family_column_matches_pandas_on_the_fixture() {
    let ctx = with_us_candles();
    let plain = ctx.write("plain.toml", "[features]\nfamilies = [\"candle\", \"window\"]\n");
    let ranked = ctx.write(
        "ranked.toml",
        "[features]\nfamilies = [\"candle\", \"window\", \"rank\"]\n",
    );
    bootstrap(&ctx, "us", &["--force", "--config", plain.to_str().unwrap()]).assert_ok();
    let first = artifact(&ctx, "us", "labeled_data_").pop().unwrap();
    bootstrap(&ctx, "us", &["--force", "--config", ranked.to_str().unwrap()]).assert_ok();
    let second = artifact(&ctx, "us", "labeled_data_").pop().unwrap();
    assert_ne!(first, second);
    let v = python_json(&[
        &repo("tests/families_check.py"),
        first.to_str().unwrap(),
        fixture("us_daily_10sym_2018_2020.csv").to_str().unwrap(),
        second.to_str().unwrap(),
    ]);
    assert_eq!(
        v["columns"].as_array().unwrap().len(),
        5 * 5 + 4 * 18,
        "{}",
        v["columns"]
    );
    assert_eq!(v["rows"], v["labeled_rows"], "every labeled row found in the candles");
    assert!(v["rows"].as_u64().unwrap() > 3000, "{v}");
    for (column, worst) in v["worst"].as_object().unwrap() {
        // Beyond float32 rounding: pandas' rolling sums drift by ~1e-9.
        assert!(worst.as_f64().unwrap() < 1e-7, "{column}: {worst}");
    }
    assert!(v["ranked_rows"].as_u64().unwrap() > 3000, "{v}");
    for (column, worst) in v["ranked_worst"].as_object().unwrap() {
        assert!(worst.as_f64().unwrap() < 1e-6, "rank of {column}: {worst}");
    }
    // The model was trained on them, and says so.
    let metrics = newest_json(&ctx, "us", "batch_train_metrics_");
    assert_eq!(metrics["families"], serde_json::json!(["candle", "window", "rank"]));
    let config = newest_json(&ctx, "us", "feature_config_");
    let columns = config["columns"].as_array().unwrap();
    assert!(
        columns
            .iter()
            .any(|c| c["name"] == "w60_vwap_ret" && c["kind"] == "rank")
    );
    let gains = metrics["feature_importance_gain"].as_array().unwrap();
    assert!(
        gains.iter().any(|g| g[0].as_str().unwrap().starts_with("w20_")),
        "{gains:?}"
    );
    // `score` computes them from the last candles exactly as bootstrap did
    // (the ranks among the same ten symbols), to the bit.
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    ctx.run("score", &["--watchlist", "us", "--top-k", "3", "--as-of", "2020-11-02"])
        .assert_ok();
    let predictions = artifact(&ctx, "us", "predictions_").pop().unwrap();
    let same = python_json(&[
        "-c",
        r#"
import json, sys
import pandas as pd
p = pd.read_parquet(sys.argv[1])
l = pd.read_parquet(sys.argv[2])
l = l[l["date"] == pd.Timestamp("2020-11-02").date()]
cols = [c for c in l.columns if c.startswith("candle_") or (c[0] == "w" and c[1].isdigit())]
m = p.merge(l, on="symbol", suffixes=("_score", "_boot"))
diff = max(float((m[c + "_score"] - m[c + "_boot"]).abs().max()) for c in cols)
print(json.dumps({"rows": len(m), "columns": len(cols), "worst": diff}))
"#,
        predictions.to_str().unwrap(),
        second.to_str().unwrap(),
    ]);
    assert_eq!(same["rows"], 10, "{same}");
    assert_eq!(same["columns"], 97, "{same}");
    assert_eq!(same["worst"], 0.0, "{same}");
}

/// Bootstrap a synthetic universe (bench/synth.py) with `objective`; the
/// batch metrics and the backtest summary.
fn synthetic(
    objective: &str,
    symbols: &str,
    seed: &str,
    planted: &str,
) -> (serde_json::Value, serde_json::Value, String) {
    let ctx = TestContext::new();
    import_synthetic(&ctx, "synth", symbols, "5.2", seed, planted);
    let config = ctx.write("objective.toml", &format!("[batch]\nobjective = \"{objective}\"\n"));
    let decision = crate::judge::bootstrap_synthetic(&ctx, seed, &["--config", config.to_str().unwrap()]);
    let metrics = newest_json(&ctx, "synth", "batch_train_metrics_");
    assert_eq!(metrics["objective"], objective);
    assert!(
        metrics["calibration"].is_array(),
        "a ranking score is calibrated: {metrics}"
    );
    (metrics, newest_json(&ctx, "synth", "backtest_2"), decision)
}

/// Half the names of 100 mean-revert (their last week predicts the next):
/// the batch model alone must rank them, on the holdout and on average
/// over the walk-forward folds. (With 40 names a date, lambdarank's
/// per-date pairs are too few: its rank IC stays near 0.08.)
fn planted_signal_is_ranked(objective: &str, holdout_ic: f64) {
    let (metrics, backtest, decision) = synthetic(objective, "100", "21", "0.5");
    let ic = metrics["holdout"]["rank_ic"].as_f64().unwrap();
    assert!(ic > holdout_ic, "{objective}: holdout rank IC {ic}");
    let folds: Vec<f64> = metrics["walk_forward"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["metrics"]["rank_ic"].as_f64().unwrap())
        .collect();
    let mean = folds.iter().sum::<f64>() / folds.len() as f64;
    assert!(folds.len() == 4 && mean > 0.1, "{objective}: fold rank ICs {folds:?}");
    assert!(
        backtest["holdout"]["excess"]["ci95_low"].as_f64().unwrap() > 0.0,
        "{backtest}"
    );
    assert!(decision.starts_with("promoted:"), "{decision}");
}

fn random_walk_is_refused(objective: &str) {
    let (_, backtest, decision) = synthetic(objective, "40", "12", "0");
    let excess = &backtest["holdout"]["excess"];
    let (low, high) = (
        excess["ci95_low"].as_f64().unwrap(),
        excess["ci95_high"].as_f64().unwrap(),
    );
    assert!(
        low < 0.0 && high > 0.0,
        "{objective}: the interval includes 0: {excess}"
    );
    assert!(decision.starts_with("not promoted"), "{objective}: {decision}");
}

#[test]
fn regression_finds_a_planted_signal() {
    planted_signal_is_ranked("regression", 0.15);
}

#[test]
fn lambdarank_finds_a_planted_signal() {
    planted_signal_is_ranked("lambdarank", 0.12);
}

#[test]
fn regression_is_refused_on_a_random_walk() {
    random_walk_is_refused("regression");
}

#[test]
fn lambdarank_is_refused_on_a_random_walk() {
    random_walk_is_refused("lambdarank");
}

#[test]
fn bad_families_and_objectives_are_one_line_and_exit_2() {
    let ctx = with_us_candles();
    let cases = [
        (
            "[features]\nfamilies = [\"volume\"]\n",
            "unknown feature family \"volume\"",
        ),
        (
            "[ta]\nmin_bars = 50\n\n[features]\nfamilies = [\"window\"]\n",
            "read 61 bars, more than ta.min_bars = 50",
        ),
        ("[batch]\nobjective = \"ranknet\"\n", "unknown variant `ranknet`"),
    ];
    for (i, (toml, text)) in cases.into_iter().enumerate() {
        let config = ctx.write(&format!("bad{i}.toml"), toml);
        bootstrap(&ctx, "us", &["--config", config.to_str().unwrap()]).assert_error(2, text);
    }
}
