//! `bootstrap`: artifacts, promotion, determinism and bad input.

use std::path::PathBuf;

use crate::common::{TestContext, fixture};

/// Bootstrap flags used by the tests: two years of the US fixture, K = 3
/// (with 10 symbols, K = 10 would make precision@K the base rate).
pub const TRAIN: [&str; 6] = ["--train-years", "2", "--top-k", "3", "--seed", "7"];

/// `bootstrap --watchlist WATCHLIST <TRAIN flags> <extra>`.
pub fn bootstrap(ctx: &TestContext, watchlist: &str, extra: &[&str]) -> crate::common::Run {
    let mut args = vec!["--watchlist", watchlist];
    args.extend(TRAIN);
    args.extend(extra);
    ctx.run("bootstrap", &args)
}

/// quickstart.sh's first steps: the US fixture, its indicators up to
/// 2020-11-30 and the forced 2-year bootstrap with K = 3 as of that date.
pub fn quick_start_bootstrap() -> TestContext {
    let ctx = with_us_candles();
    ctx.run("ta-signals", &["run", "--watchlist", "us", "--as-of", "2020-11-30"])
        .assert_ok();
    let args = [
        "--watchlist",
        "us",
        "--train-years",
        "2",
        "--top-k",
        "3",
        "--as-of",
        "2020-11-30",
        "--force",
    ];
    ctx.run("bootstrap", &args).assert_ok();
    ctx
}

pub fn with_us_candles() -> TestContext {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    ctx
}

pub fn artifact(ctx: &TestContext, watchlist: &str, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(ctx.artifacts().join(watchlist))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && !name.ends_with(".meta.json")
        })
        .collect();
    found.sort();
    found
}

fn python(script: &str, args: &[&std::path::Path]) -> serde_json::Value {
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "python check failed (scripts/setup.sh installs pyarrow and lightgbm): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn bootstrap_writes_every_artifact_with_lineage_and_promotes_with_force() {
    let ctx = with_us_candles();
    // Fixed barriers: the labels are checked against +5 % / −4 % below.
    let run = bootstrap(&ctx, "us", &["--force", "--barrier", "fixed"]);
    run.assert_ok();
    for line in [
        "labels: entry next-open, barriers +5% / -4% from the entry, horizon 5 bars, 10 bp per side",
        "online ",
        "batch ",
        "ensemble ",
        "baselines: base rate",
        "fold 1:",
        "fold 4:",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?} in:\n{}", run.stdout);
    }
    assert!(run.stdout.contains("promoted"), "{}", run.stdout);
    for prefix in [
        "labeled_data_2y_2020-12-31_",
        "model_online_v1_",
        "model_batch_v1_",
        "transformer_bundle_v1_",
        "feature_config_v1_",
        "online_train_metrics_",
        "batch_train_metrics_",
        "backtest_2",
        "backtest_daily_",
        "trades_",
    ] {
        assert_eq!(artifact(&ctx, "us", prefix).len(), 1, "{prefix}");
    }
    for line in [
        "backtest (top-3 daily, enter at the next open",
        "pooled   top-K ",
        "pooled   top-K − universe per date",
        "holdout  top-K − universe per date",
        "lockbox  top-K − universe per date",
        "ranking (chosen on folds 1, 2, 3 before the holdout",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?} in:\n{}", run.stdout);
    }
    ctx.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();
    let shown: serde_json::Value = serde_json::from_str(
        &ctx.run("artifacts", &["--watchlist", "us", "show-production"])
            .assert_ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(shown["artifacts"].as_object().unwrap().len(), 4);

    // Lineage: the model's sidecar names the labeled data and the candle range.
    let model = &artifact(&ctx, "us", "model_online_v1_")[0];
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.meta.json", model.display())).unwrap()).unwrap();
    let inputs: Vec<&str> = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        inputs[0].starts_with("candles:us:..2020-12-31") && inputs[1].starts_with("labeled_data_"),
        "{inputs:?}"
    );
    assert_eq!(meta["parameters"]["options"]["horizon"], 5);

    // Metrics: every figure present, each AUC a probability.
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&artifact(&ctx, "us", "batch_train_metrics_")[0]).unwrap()).unwrap();
    for key in ["holdout", "ensemble"] {
        let auc = metrics[key]["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{key} AUC {auc}");
        assert_eq!(metrics[key]["calibration"].as_array().unwrap().len(), 10);
        assert_eq!(metrics[key]["k"], 3);
    }
    let folds = metrics["walk_forward"].as_array().unwrap();
    assert_eq!(folds.len(), 4);
    // The last fold validates on the holdout's dates with the holdout's
    // training rows: it is the holdout fit, reported as such.
    assert_eq!(folds[3]["first_valid_date"], metrics["first_valid_date"]);
    assert_eq!(folds[3]["train_rows"], metrics["train_rows"]);
    assert_eq!(folds[3]["metrics"], metrics["holdout"]);
    assert_ne!(folds[2]["metrics"], metrics["holdout"]);
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&artifact(&ctx, "us", "transformer_bundle_v1_")[0]).unwrap()).unwrap();
    let one_hot: usize = bundle["vocabulary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_array().unwrap().len())
        .sum();
    let width = swingml::features::N_NUMERIC + one_hot;
    assert_eq!(metrics["feature_importance_gain"].as_array().unwrap().len(), width);

    // Independent readers: pyarrow for the labeled data, Python's LightGBM for the model.
    let labeled = &artifact(&ctx, "us", "labeled_data_")[0];
    let batch = &artifact(&ctx, "us", "model_batch_v1_")[0];
    let v = python(
        r#"
import json, sys
import lightgbm, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
b = lightgbm.Booster(model_file=sys.argv[2])
splits = t.column("split").to_pylist()
keys = list(zip(t.column("date").to_pylist(), t.column("symbol").to_pylist()))
print(json.dumps({"rows": t.num_rows, "names": t.schema.names, "labels": sorted(set(t.column("label").to_pylist())),
  "ordered": keys == sorted(keys) and len(set(keys)) == len(keys),
  "splits": sorted(set(splits)), "features": b.num_feature(), "trees": b.num_trees()}))
"#,
        &[labeled, batch],
    );
    assert_eq!(v["rows"], meta_rows(labeled));
    assert_eq!(v["labels"], serde_json::json!([0, 1]));
    assert_eq!(v["ordered"], true, "rows in (date, symbol) order, each once");
    assert_eq!(v["splits"], serde_json::json!(["lockbox", "purged", "train", "valid"]));
    let names = v["names"].as_array().unwrap();
    for col in [
        "symbol",
        "date",
        "rsi_14",
        "ta_recommendation",
        "label",
        "exit_reason",
        "bars_to_exit",
        "entry_price",
        "exit_price",
        "gross_return",
        "realized_return",
        "xs_rank_ret_20d",
        "market_breadth_sma50",
    ] {
        assert!(names.iter().any(|n| n == col), "{col}");
    }
    assert_eq!(v["features"], width);
    assert!(v["trees"].as_u64().unwrap() >= 1);

    // Labels and backtest read back by pyarrow: 10 bp per side come off
    // every trade; a target exit is at or above the barrier (gaps fill
    // better), a stop at or below; the daily file has every window.
    let daily = &artifact(&ctx, "us", "backtest_daily_")[0];
    let v = python(
        r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]).to_pydict()
d = pq.read_table(sys.argv[2]).to_pydict()
# US prices: half a cent is under 10 bp on every fixture quote.
cost = max(abs(g - r - 0.002) for g, r in zip(t["gross_return"], t["realized_return"]))
ok_target = all(x >= e * 1.05 * (1 - 1e-12) for x, e, why in zip(t["exit_price"], t["entry_price"], t["exit_reason"]) if why == "target")
ok_stop = all(x <= e * 0.96 * (1 + 1e-12) for x, e, why in zip(t["exit_price"], t["entry_price"], t["exit_reason"]) if why == "stop")
gaps = sum(1 for x, e, why in zip(t["exit_price"], t["entry_price"], t["exit_reason"]) if why == "stop" and x < e * 0.96 * (1 - 1e-9))
eq = [e for w, c, e in zip(d["window"], d["cohort"], d["equity"]) if w == "holdout" and c == "top_k"]
print(json.dumps({"cost": cost, "ok_target": ok_target, "ok_stop": ok_stop, "gaps": gaps,
  "windows": sorted(set(d["window"])), "days": len(d["date"]), "last_equity": eq[-1]}))
"#,
        &[labeled, daily],
    );
    assert!(v["cost"].as_f64().unwrap() < 1e-12, "{v}");
    assert_eq!(
        (v["ok_target"].as_bool(), v["ok_stop"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    assert!(
        v["gaps"].as_u64().unwrap() > 0,
        "real data gaps through some stops: {v}"
    );
    assert_eq!(
        v["windows"],
        serde_json::json!(["fold1", "fold2", "fold3", "holdout", "lockbox", "pooled"])
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&artifact(&ctx, "us", "backtest_2")[0]).unwrap()).unwrap();
    assert_eq!(report["folds"].as_array().unwrap().len(), 4);
    let pooled = &report["pooled"];
    for key in ["top_k", "universe", "rule_buy"] {
        let s = &pooled[key];
        assert!(s["trades"].as_u64().unwrap() > 0, "{key}");
        assert!(s["exposure"].as_f64().unwrap() <= 1.0 + 1e-12, "{key} never levered");
    }
    let (lo, hi) = (
        pooled["excess"]["ci95_low"].as_f64().unwrap(),
        pooled["excess"]["ci95_high"].as_f64().unwrap(),
    );
    let mean = pooled["excess"]["mean"].as_f64().unwrap();
    assert!(lo <= mean && mean <= hi, "{lo} {mean} {hi}");
    let equity = (1.0 + pooled["top_k"]["total_return"].as_f64().unwrap()) as f64;
    let holdout_equity = 1.0 + report["holdout"]["top_k"]["total_return"].as_f64().unwrap();
    assert!(
        (v["last_equity"].as_f64().unwrap() - holdout_equity).abs() < 1e-12,
        "the holdout's book ends at its compounded return"
    );
    assert!(equity > 0.0);
}

fn meta_rows(path: &std::path::Path) -> serde_json::Value {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.meta.json", path.display())).unwrap()).unwrap();
    meta["parquet"]["rows"].clone()
}

#[test]
fn same_seed_and_data_give_byte_identical_models_and_promotion_compares_with_production() {
    let ctx = with_us_candles();
    for _ in 0..2 {
        bootstrap(&ctx, "us", &["--force"]).assert_ok();
    }
    for kind in [
        "model_online_v",
        "model_batch_v",
        "transformer_bundle_v",
        "feature_config_v",
    ] {
        let files = artifact(&ctx, "us", kind);
        assert_eq!(files.len(), 2, "{kind}");
        assert_eq!(
            std::fs::read(&files[0]).unwrap(),
            std::fs::read(&files[1]).unwrap(),
            "{kind} differs between runs"
        );
    }
    // A third run without --force: the live models were trained on the
    // whole validation window, so they are not compared on it.
    let run = bootstrap(&ctx, "us", &[]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("production trained through 2020-12-31 covers the whole holdout: no date both models"),
        "{}",
        run.stdout
    );
    let manifest = std::fs::read_to_string(ctx.artifacts().join("us/manifest.jsonl")).unwrap();
    let decisions = manifest
        .lines()
        .filter(|l| l.contains("\"entry\":\"promotion\"") || l.contains("\"entry\":\"decision\""))
        .count();
    assert_eq!(decisions, 3, "every run's decision is in the manifest");
}

#[test]
fn bad_flags_are_usage_errors() {
    let ctx = with_us_candles();
    for (arg, says) in [
        ("--target=0", "--target"),
        ("--target=-0.1", "--target"),
        ("--stop=1", "--stop"),
        ("--horizon=0", "--horizon"),
        ("--train-years=0", "--train-years"),
        ("--entry=tomorrow", "--entry"),
        ("--barrier=wide", "--barrier"),
    ] {
        let run = ctx.run("bootstrap", &["--watchlist", "us", arg]);
        assert_eq!(run.code, 2, "{arg}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
    let config = ctx.path("bad.toml");
    for (text, says) in [
        ("[costs]\nbps_per_side = -1\n", "costs.bps_per_side"),
        ("[labels]\nbarrier = \"atr\"\nk_stop = 0\n", "labels.k_stop"),
        ("[labels]\nentry = \"tomorrow\"\n", "tomorrow"),
        ("[universe]\nmin_price = -1\n", "universe.min_price"),
        ("[universe]\nmin_traded_value = -1e6\n", "universe.min_traded_value"),
        ("[bootstrap]\nlockbox_fraction = 1\n", "bootstrap.lockbox_fraction"),
        (
            "[bootstrap]\nvalid_fraction = 0.25\n",
            "the last walk-forward fold would train on holdout dates",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let run = ctx.run(
            "bootstrap",
            &["--watchlist", "us", "--config", config.to_str().unwrap()],
        );
        run.assert_error(2, says);
        assert_eq!(
            run.stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{}",
            run.stderr
        );
    }
    let run = ctx.run(
        "bootstrap",
        &["--watchlist", "us", "--barrier", "atr", "--target", "0.1"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--target/--stop are fractions for fixed barriers"),
        "{}",
        run.stderr
    );
    assert!(artifact_dir_is_empty(&ctx, "us"), "nothing written on a usage error");
}

fn artifact_dir_is_empty(ctx: &TestContext, watchlist: &str) -> bool {
    let dir = ctx.artifacts().join(watchlist);
    !dir.exists() || artifact(ctx, watchlist, "model_").is_empty()
}

#[test]
fn too_little_data_is_refused_with_the_minimum() {
    let ctx = with_us_candles();
    let run = ctx.run("bootstrap", &["--watchlist", "nothing-here"]);
    run.assert_error(1, "watchlist nothing-here has no symbols");

    let run = ctx.run(
        "bootstrap",
        &["--watchlist", "us", "--max-symbols", "1", "--train-years", "2"],
    );
    run.assert_error(1, "fewer than the minimum 2 (bootstrap.min_symbols)");

    // Two weeks of scan dates: fewer labeled rows than bootstrap.min_rows.
    let run = ctx.run("bootstrap", &["--watchlist", "us", "--train-years", "0.04"]);
    run.assert_error(1, "fewer than the minimum 200 (bootstrap.min_rows)");

    // A target no stock reaches in 5 days: every label is 0.
    let run = ctx.run(
        "bootstrap",
        &["--watchlist", "us", "--train-years", "2", "--target", "5"],
    );
    run.assert_error(1, "training labels are 0: nothing to learn");
    assert!(
        crate::bootstrap::artifact(&ctx, "us", "model_").is_empty(),
        "nothing written on refusal"
    );
}

#[test]
fn promotion_compares_with_production_only_on_rows_it_never_trained_on() {
    let ctx = with_us_candles();
    // Live models trained through 2020-06-30 ...
    bootstrap(&ctx, "us", &["--force", "--as-of", "2020-06-30"]).assert_ok();
    // ... compared on the validation rows after that date (from 2020-08-04),
    // and promoted here by --force whatever the comparison says ...
    let run = bootstrap(&ctx, "us", &["--force"]);
    run.assert_ok();
    let last = run.stdout.lines().last().unwrap();
    assert!(
        last.contains("paired with production on the")
            && last.contains("holdout rows from 2020-")
            && last.contains("it never saw"),
        "{last}"
    );
    // ... so a retrain on the same data faces live models that saw every
    // validation row: not compared.
    let run = bootstrap(&ctx, "us", &[]);
    run.assert_ok();
    let last = run.stdout.lines().last().unwrap();
    assert!(
        last.contains("covers the whole holdout: no date both models are out of sample on"),
        "{last}"
    );
    // A run as of an older date never replaces the newer live models.
    let run = bootstrap(&ctx, "us", &["--as-of", "2020-06-30"]);
    run.assert_ok();
    let last = run.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("not promoted") && last.contains("as-of 2020-06-30 is older than the live models' 2020-12-31"),
        "{last}"
    );
}
