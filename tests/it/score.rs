//! `score` and the end-to-end slice: import → ta-signals run → bootstrap →
//! score, on SQLite (here) and MariaDB (in mysql.rs).

use crate::bootstrap::{artifact, bootstrap};
use crate::common::{TestContext, fixture};

/// import → ta-signals run → bootstrap --force, every step exit 0.
pub fn trained(ctx: &TestContext, watchlist: &str) {
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], watchlist)
        .assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", watchlist]).assert_ok();
    bootstrap(ctx, watchlist, &["--force"]).assert_ok();
}

/// The predictions file as an independent reader (pyarrow) sees it.
pub fn read_predictions(path: &std::path::Path) -> serde_json::Value {
    let script = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]).to_pydict()
print(json.dumps(t, default=str))
"#;
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "pyarrow: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The checks every predictions file must pass.
pub fn assert_valid_predictions(p: &serde_json::Value, k: usize) {
    let ranks: Vec<Option<u64>> = p["rank"].as_array().unwrap().iter().map(|r| r.as_u64()).collect();
    let scored: Vec<usize> = (0..ranks.len()).filter(|&i| ranks[i].is_some()).collect();
    let mut sorted: Vec<u64> = scored.iter().map(|&i| ranks[i].unwrap()).collect();
    sorted.sort();
    assert_eq!(
        sorted,
        (1..=scored.len() as u64).collect::<Vec<_>>(),
        "ranks 1..n without gaps"
    );
    let in_top = p["in_top_k"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b.as_bool() == Some(true))
        .count();
    assert_eq!(in_top, k.min(scored.len()));
    // Ranked by what bootstrap chose (said in every row).
    let key = match p["ranked_by"][0].as_str().unwrap() {
        "probability" => "p_score",
        "expected_return" => "expected_return",
        other => panic!("ranked by {other}"),
    };
    let mut by_rank: Vec<(u64, f64)> = scored
        .iter()
        .map(|&i| (ranks[i].unwrap(), p[key][i].as_f64().unwrap()))
        .collect();
    by_rank.sort_by_key(|r| r.0);
    assert!(by_rank.windows(2).all(|w| w[0].1 >= w[1].1), "{key} sorted by rank");
    for col in ["p_online", "p_batch", "p_score"] {
        for &i in &scored {
            let x = p[col][i].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{col} = {x}");
        }
    }
    for &i in &scored {
        assert_eq!(p["status"][i], "scored");
        assert!(p["rsi_14"][i].is_f64() && p["entry_close"][i].is_f64());
    }
}

#[test]
fn end_to_end_on_sqlite_and_scoring_twice_gives_the_same_probabilities() {
    let ctx = TestContext::new();
    trained(&ctx, "us");
    let run = ctx.run("score", &["--watchlist", "us", "--top-k", "3"]);
    run.assert_ok();
    assert!(run.stdout.starts_with("top 3 of 10 as of 2020-12-31"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 2 + 3);
    let files = artifact(&ctx, "us", "predictions_");
    assert_eq!(files.len(), 1);
    let first = read_predictions(&files[0]);
    assert_valid_predictions(&first, 3);
    assert_eq!(first["symbol"].as_array().unwrap().len(), 10);

    ctx.run("score", &["--watchlist", "us", "--top-k", "3"]).assert_ok();
    let second = read_predictions(&artifact(&ctx, "us", "predictions_")[1]);
    for col in ["symbol", "p_online", "p_batch", "p_score", "rank"] {
        assert_eq!(first[col], second[col], "{col} differs between two runs");
    }
    // Train/serve consistency: the features scored (from ta_signals) are
    // the features bootstrap computes from candles for the same date.
    // Every symbol is scored, so the scored symbols are the date's whole
    // cross-section, as in bootstrap.
    let db = ctx.db();
    let barrier = swingml::labels::Barrier::fixed(5, 0.05, 0.04);
    let symbols = first["symbol"].as_array().unwrap();
    let mut lasts: Vec<swingml::features::Snapshot> = symbols
        .iter()
        .map(|symbol| {
            let symbol = swingml::symbols::Symbol::parse(symbol.as_str().unwrap()).unwrap();
            let candles = crate::common::block_on(swingml::db::candles::for_symbol(&db, &symbol)).unwrap();
            swingml::features::snapshots(&candles, &barrier).pop().unwrap()
        })
        .collect();
    assert!(lasts.iter().all(|s| s.date == lasts[0].date));
    swingml::features::fill_cross_section(&mut lasts, swingml::features::Families::NONE);
    for (i, last) in lasts.iter().enumerate() {
        assert_eq!(first["status"][i], "scored");
        for (j, name) in swingml::features::NUMERIC_FEATURES.iter().enumerate() {
            let (got, want) = (first[*name][i].as_f64().unwrap(), last.features.numeric(j).unwrap());
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1e-9),
                "{} {name}: scored {got}, bootstrap {want}",
                last.symbol
            );
        }
    }
    ctx.run("artifacts", &["--watchlist", "us", "verify"]).assert_ok();

    let json = ctx.run("score", &["--watchlist", "us", "--top-k", "2", "--format", "json"]);
    let top: serde_json::Value = serde_json::from_str(&json.assert_ok().stdout).unwrap();
    assert_eq!(top.as_array().unwrap().len(), 2);
    assert_eq!(top[0]["rank"], 1);
    let csv = ctx.run("score", &["--watchlist", "us", "--top-k", "2", "--format", "csv"]);
    assert_eq!(csv.assert_ok().stdout.lines().count(), 3);

    // --limit and --country narrow the universe.
    ctx.run("score", &["--watchlist", "us", "--top-k", "2", "--limit", "4"])
        .assert_ok();
    let limited = read_predictions(artifact(&ctx, "us", "predictions_").last().unwrap());
    assert_eq!(limited["symbol"].as_array().unwrap().len(), 4);
    assert_valid_predictions(&limited, 2);
    let us = ctx.run("score", &["--watchlist", "us", "--country", "US", "--top-k", "2"]);
    assert!(us.assert_ok().stdout.starts_with("top 2 of 10"), "{}", us.stdout);
    let india = ctx.run("score", &["--watchlist", "us", "--country", "IN"]);
    assert!(india.assert_ok().stdout.starts_with("top 0 of 0"), "{}", india.stdout);
}

#[test]
fn a_symbol_without_the_last_candle_is_reported_not_scored() {
    let ctx = TestContext::new();
    let text = std::fs::read_to_string(fixture("us_daily_10sym_2018_2020.csv")).unwrap();
    let trimmed: String = text
        .lines()
        .filter(|l| !l.starts_with("KO,2020-12-31"))
        .map(|l| format!("{l}\n"))
        .collect();
    ctx.import(&[&ctx.write("us.csv", &trimmed)], "us").assert_ok();
    ctx.run("ta-signals", &["run", "--watchlist", "us"]).assert_ok();
    bootstrap(&ctx, "us", &["--force"]).assert_ok();
    let run = ctx.run("score", &["--watchlist", "us", "--top-k", "3"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("not scored KO: stale: last candle 2020-12-30 (as of 2020-12-31)"),
        "{}",
        run.stderr
    );
    let p = read_predictions(&artifact(&ctx, "us", "predictions_")[0]);
    let ko = p["symbol"].as_array().unwrap().iter().position(|s| s == "KO").unwrap();
    assert!(p["rank"][ko].is_null() && p["p_score"][ko].is_null());
    assert_valid_predictions(&p, 3);
}

#[test]
fn no_production_model_corrupt_model_and_tampered_feature_config_are_refused() {
    let ctx = TestContext::new();
    ctx.import(&[&fixture("us_daily_10sym_2018_2020.csv")], "us")
        .assert_ok();
    let run = ctx.run("score", &["--watchlist", "us"]);
    run.assert_error(1, "no production model for us: run bootstrap first");

    bootstrap(&ctx, "us", &["--force"]).assert_ok();
    let run = ctx.run("score", &["--watchlist", "us"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("not scored AAPL: no indicators for 2020-12-31: run `ta-signals run` first"),
        "{}",
        run.stderr
    );

    // A changed byte in the live LightGBM model.
    let model = &artifact(&ctx, "us", "model_batch_v1_")[0];
    let original = std::fs::read(model).unwrap();
    let mut bytes = original.clone();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(model, &bytes).unwrap();
    let run = ctx.run("score", &["--watchlist", "us"]);
    assert_eq!(run.code, 1);
    let line = run.error_line();
    assert!(
        line.contains(model.file_name().unwrap().to_str().unwrap()) && line.contains("corrupted"),
        "{line}"
    );
    std::fs::write(model, &original).unwrap();

    // A feature config from "another program version": committed and
    // promoted through the store, so only the feature check can catch it.
    let store = swingml::store::Store::new(ctx.artifacts()).watchlist("us").unwrap();
    let config_path = &artifact(&ctx, "us", "feature_config_v1_")[0];
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(config_path).unwrap()).unwrap();
    let columns = config["columns"].as_array_mut().unwrap();
    columns.retain(|c| c["name"] != "bb_width");
    columns.push(serde_json::json!({"name": "raw_close", "kind": "numeric"}));
    let tampered: Vec<swingml::features::config::Column> = serde_json::from_value(config["columns"].clone()).unwrap();
    config["hash"] = serde_json::json!(swingml::features::config::hash_of(1, &tampered));
    let by = swingml::store::Writer {
        job: "test".into(),
        run_id: "tamper".into(),
    };
    let spec = swingml::store::NewArtifact::new("feature_config", swingml::store::NameStyle::Versioned, "json");
    let record = store.write_json(&by, spec, &config).unwrap();
    store
        .promote(&by, &[&record], "simulate an old feature config")
        .unwrap();
    let run = ctx.run("score", &["--watchlist", "us"]);
    assert_eq!(run.code, 1);
    let line = run.error_line();
    assert!(
        line.contains(&record.name) && line.contains("missing bb_width") && line.contains("unknown raw_close"),
        "{line}"
    );
}
