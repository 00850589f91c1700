//! Writing a bootstrap's artifacts through the store: the labeled data,
//! feature config, bundle, both models, their metrics and the backtest.

use std::sync::Arc;

use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use arrow_schema::SchemaRef;
use arrow_schema::{DataType, Field, Schema};
use chrono::NaiveDate;

use super::training::Models;
use super::{BootstrapOptions, BootstrapReport, DataSet, FoldReport, Windows};
use crate::context::Context;
use crate::features::config::FeatureConfig;
use crate::features::transform::TransformerBundle;
use crate::models::backtest::{Backtest, CONVENTION, Cohort};
use crate::models::metrics::Evaluation;
use crate::store::{ArtifactRecord, InputRef, NameStyle, NewArtifact, WatchlistStore, Writer};

pub(super) fn write_artifacts(
    ctx: &Context,
    store: &WatchlistStore,
    options: &BootstrapOptions,
    data: &DataSet,
    windows: &Windows,
    models: &Models,
    report: &BootstrapReport,
) -> anyhow::Result<Vec<ArtifactRecord>> {
    let by = ctx.writer();
    let params = serde_json::json!({
        "options": options,
        "as_of": report.as_of,
        "first_scan_date": data.first_date,
        "online": ctx.settings.online,
        "batch": ctx.settings.batch,
        "bootstrap": {
            "valid_fraction": ctx.settings.bootstrap.valid_fraction,
            "folds": ctx.settings.bootstrap.folds,
            "early_stopping_fraction": ctx.settings.bootstrap.early_stopping_fraction,
            "lockbox_fraction": ctx.settings.bootstrap.lockbox_fraction,
            "min_bars": ctx.settings.ta.min_bars,
        },
        "label": report.barrier,
        "label_prices": ctx.settings.import.adjust,
        "promotion": ctx.settings.promotion,
        "universe": report.universe,
        "train_on_untradeable": ctx.settings.universe.train_on_untradeable,
        "exchange": report.exchange,
    });
    let candles = InputRef {
        name: format!("candles:{}:..{}", ctx.settings.watchlist, report.as_of),
        sha256: data.candle_hash.clone(),
    };
    let years = format_years(options.train_years);
    let labeled_spec = NewArtifact::new("labeled_data", NameStyle::Timestamped, "parquet")
        .prefix(format!("labeled_data_{years}y_{}", report.as_of))
        .parameters(params.clone())
        .inputs(vec![candles.clone()]);
    // The Parquet writer runs on one core; the drift reference (order
    // statistics of every feature) takes the other meanwhile.
    let families = models.bundle.families;
    let (labeled, reference) = rayon::join(
        || {
            store.write(&by, labeled_spec, |w| {
                let mut part = vec!["purged"; data.rows.len()];
                for &i in &windows.holdout.train {
                    part[i] = "train";
                }
                for &i in &windows.holdout.valid {
                    part[i] = "valid";
                }
                for &i in &windows.lockbox {
                    part[i] = "lockbox";
                }
                crate::parquet_out::write_labeled(w, &data.rows, &part, &families.columns())
            })
        },
        || reference_and_drift(data, windows, report, families),
    );
    let labeled = labeled?;
    let lineage = vec![
        candles,
        InputRef {
            name: labeled.name.clone(),
            sha256: labeled.sha256.clone(),
        },
    ];
    let spec = |kind: &str, ext: &str| {
        NewArtifact::new(kind, NameStyle::Versioned, ext)
            .parameters(params.clone())
            .inputs(lineage.clone())
    };
    let feature_config = FeatureConfig {
        label: Some(report.barrier),
        ranking: report.ranking.as_ref().map(|r| r.chosen.to_string()),
        batch_weight: report.ranking.as_ref().map(|r| r.ensemble.batch_weight),
        expected_return: report.return_by_score.clone(),
        ..reference
    };
    let config = store.write_json(&by, spec("feature_config", "json"), &feature_config)?;
    let bundle = TransformerBundle {
        batch_calibration: models.batch.calibration,
        ..models.bundle.clone()
    };
    let bundle = store.write_json(&by, spec("transformer_bundle", "json"), &bundle)?;
    // What the model has learned: `incremental-update` continues after it.
    let online_model = crate::models::online::OnlineModel {
        learned_through: data.rows.last().map(|r| r.date),
        // Its rows are those whose windows completed by the as-of date.
        completed_through: Some(report.as_of),
        ..models.online.clone()
    };
    let online = store.write_json(&by, spec("model_online", "json"), &online_model)?;
    let batch = store.write_bytes(&by, spec("model_batch", "txt"), models.batch.to_text()?.as_bytes())?;

    let importance: Vec<(String, f64)> = {
        let mut pairs: Vec<(String, f64)> = models
            .bundle
            .batch_names()
            .into_iter()
            .zip(models.batch.importance_gain()?)
            .collect();
        pairs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        pairs
    };
    let folds_of = |pick: fn(&FoldReport) -> &Evaluation| -> Vec<serde_json::Value> {
        report
            .folds
            .iter()
            .map(|f| {
                serde_json::json!({"fold": f.fold, "train_rows": f.train_rows, "valid_rows": f.valid_rows,
                "first_valid_date": f.first_valid_date, "metrics": pick(f)})
            })
            .collect()
    };
    let common = serde_json::json!({
        "run_id": ctx.run_id,
        "as_of": report.as_of,
        "rows": report.rows,
        "train_rows": report.train_rows,
        "valid_rows": report.valid_rows,
        "first_valid_date": report.first_valid_date,
        "dropped_undefined_features": report.dropped_undefined,
        "baselines": report.baselines,
        "label": report.barrier,
        "decision": report.decision,
        "promoted": report.promoted,
    });
    let mut online_metrics = common.clone();
    online_metrics["holdout"] = serde_json::to_value(&report.online)?;
    online_metrics["walk_forward"] = serde_json::json!(folds_of(|f| &f.online));
    let mut batch_metrics = common;
    batch_metrics["holdout"] = serde_json::to_value(&report.batch)?;
    batch_metrics["ensemble"] = serde_json::to_value(&report.ensemble)?;
    batch_metrics["production_precision_at_k"] = serde_json::json!(report.production_precision_at_k);
    batch_metrics["rounds"] = serde_json::json!(report.batch_rounds);
    batch_metrics["objective"] = serde_json::json!(ctx.settings.batch.objective);
    batch_metrics["families"] = serde_json::json!(families.names());
    batch_metrics["calibration"] = serde_json::json!(models.batch.calibration);
    batch_metrics["ensemble_batch_weight"] =
        serde_json::json!(report.ranking.as_ref().map(|r| r.ensemble.batch_weight));
    batch_metrics["feature_importance_gain"] = serde_json::json!(importance);
    batch_metrics["walk_forward"] = serde_json::json!(folds_of(|f| &f.batch));
    batch_metrics["walk_forward_ensemble"] = serde_json::json!(folds_of(|f| &f.ensemble));
    let metric_spec = |kind: &str| {
        NewArtifact::new(kind, NameStyle::Timestamped, "json")
            .parameters(params.clone())
            .inputs(vec![
                InputRef {
                    name: online.name.clone(),
                    sha256: online.sha256.clone(),
                },
                InputRef {
                    name: batch.name.clone(),
                    sha256: batch.sha256.clone(),
                },
            ])
    };
    let online_m = store.write_json(&by, metric_spec("online_train_metrics"), &online_metrics)?;
    let batch_m = store.write_json(&by, metric_spec("batch_train_metrics"), &batch_metrics)?;
    let backtest = write_backtest_summary(store, &by, report, metric_spec("backtest"))?;
    let parquet_spec = |kind: &str| {
        NewArtifact::new(kind, NameStyle::Timestamped, "parquet")
            .parameters(params.clone())
            .inputs(vec![InputRef {
                name: labeled.name.clone(),
                sha256: labeled.sha256.clone(),
            }])
    };
    let windows = backtest_windows(report);
    let daily = write_daily(store, &by, &windows, parquet_spec("backtest_daily"))?;
    let trades = write_trades(store, &by, data, &windows, parquet_spec("trades"))?;
    Ok(vec![
        labeled, config, bundle, online, batch, online_m, batch_m, backtest, daily, trades,
    ])
}

/// The feature config's reference: the training rows' distributions, the
/// holdout's figures and score distribution, and the drift thresholds
/// calibrated on chunks of both.
fn reference_and_drift(
    data: &DataSet,
    windows: &Windows,
    report: &BootstrapReport,
    families: crate::features::Families,
) -> FeatureConfig {
    use crate::features::calibration::{FALSE_ALARM_RATE, calibrate_features, calibrate_score};
    let config = FeatureConfig::from_training(data.rows.iter().map(|r| &r.features), families);
    // The monitor sees the rows `score` ranked: the tradeable ones (the
    // training rows hold untradeable ones too with train_on_untradeable).
    let tradeable = data.rows.iter().filter(|r| r.tradeable);
    let rows: Vec<&crate::features::Features> = tradeable.clone().map(|r| &r.features).collect();
    let dates: Vec<NaiveDate> = tradeable.map(|r| r.date).collect();
    let mut drift = calibrate_features(&dates, &rows, &config.reference, FALSE_ALARM_RATE);
    let score = crate::features::config::numeric_reference(report.reference_scores.clone());
    if let Some(score) = &score {
        // The holdout's scores are in the order of its rows.
        let valid_dates: Vec<NaiveDate> = windows.holdout.valid.iter().map(|&i| data.rows[i].date).collect();
        drift.score = calibrate_score(&valid_dates, &report.reference_scores, score, FALSE_ALARM_RATE);
    }
    FeatureConfig {
        validation: Some(crate::features::config::ValidationReference {
            k: report.ensemble.k,
            precision_at_k: report.holdout_ranked.0,
            score,
            top_k_mean_return: Some(report.holdout_ranked.1),
        }),
        drift: Some(drift),
        ..config
    }
}

fn format_years(years: f64) -> String {
    if years.fract() == 0.0 {
        format!("{}", years as u64)
    } else {
        format!("{years}")
    }
}

/// `backtest_<ts>.json`: every figure per fold, pooled, holdout and
/// lockbox, with the book's convention and the gate's decision.
fn write_backtest_summary(
    store: &WatchlistStore,
    by: &Writer,
    report: &BootstrapReport,
    spec: NewArtifact,
) -> anyhow::Result<ArtifactRecord> {
    let folds: Vec<serde_json::Value> = report
        .folds
        .iter()
        .map(|f| {
            serde_json::json!({"fold": f.fold, "first_valid_date": f.first_valid_date,
                "chooses_ranking": f.chooses, "is_holdout": f.is_holdout,
                "rank_ic": f.ensemble.rank_ic, "precision_at_k": f.ensemble.precision_at_k,
                "backtest": f.backtest})
        })
        .collect();
    let summary = serde_json::json!({
        "as_of": report.as_of,
        "label": report.barrier,
        "convention": CONVENTION,
        "universe": {"exchange": report.exchange, "rule": report.universe,
                     "untradeable_labeled_rows_left_out": report.untradeable_rows},
        "folds": folds,
        "pooled": report.pooled_backtest,
        "ranking": report.ranking,
        "return_by_score": report.return_by_score,
        "holdout": report.holdout_backtest,
        "lockbox": report.lockbox,
        "promoted": report.promoted,
        "decision": report.decision,
    });
    store.write_json(by, spec, &summary)
}

/// Every backtest of the run with its window's name and fold number.
fn backtest_windows(report: &BootstrapReport) -> Vec<(String, Option<i64>, &Backtest)> {
    let mut out: Vec<(String, Option<i64>, &Backtest)> = report
        .folds
        .iter()
        .filter(|f| !f.is_holdout)
        .map(|f| (format!("fold{}", f.fold), Some(f.fold as i64), &f.backtest))
        .collect();
    if let Some(p) = &report.pooled_backtest {
        out.push(("pooled".into(), None, p));
    }
    let holdout_fold = report.folds.iter().find(|f| f.is_holdout).map(|f| f.fold as i64);
    out.push(("holdout".into(), holdout_fold, &report.holdout_backtest));
    if let Some(l) = &report.lockbox {
        out.push(("lockbox".into(), None, &l.backtest));
    }
    out
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (date - epoch).num_days() as i32
}

/// `backtest_daily_<ts>.parquet`: per window, session and cohort the
/// book's return, equity, exposure, weight entered and open positions.
fn write_daily(
    store: &WatchlistStore,
    by: &Writer,
    windows: &[(String, Option<i64>, &Backtest)],
    spec: NewArtifact,
) -> anyhow::Result<ArtifactRecord> {
    let rows: Vec<(&str, NaiveDate, Cohort, &crate::models::backtest::SessionBook)> = windows
        .iter()
        .flat_map(|(name, _, bt)| {
            bt.sessions_daily.iter().flat_map(move |s| {
                Cohort::ALL
                    .iter()
                    .zip(&s.books)
                    .map(move |(c, b)| (name.as_str(), s.date, *c, b))
            })
        })
        .collect();
    let float = |f: fn(&crate::models::backtest::SessionBook) -> f64| {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| f(r.3)))) as ArrayRef
    };
    let fields = vec![
        Field::new("window", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
        Field::new("cohort", DataType::Utf8, false),
        Field::new("return", DataType::Float64, false),
        Field::new("equity", DataType::Float64, false),
        Field::new("exposure", DataType::Float64, false),
        Field::new("entered", DataType::Float64, false),
        Field::new("open_positions", DataType::Int64, false),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| days_since_epoch(r.1)),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
        float(|b| b.ret),
        float(|b| b.equity),
        float(|b| b.exposure),
        float(|b| b.entered),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(r.3.open_positions)),
        )),
    ];
    write_table(store, by, spec, Arc::new(Schema::new(fields)), columns, rows.len())
}

/// `trades_<ts>.parquet`: every simulated trade of every window, built
/// and written a row group at a time (the universe cohorts hold every
/// validation row, several times over: millions of trades on a market).
fn write_trades(
    store: &WatchlistStore,
    by: &Writer,
    data: &DataSet,
    windows: &[(String, Option<i64>, &Backtest)],
    spec: NewArtifact,
) -> anyhow::Result<ArtifactRecord> {
    let fields = vec![
        Field::new("window", DataType::Utf8, false),
        Field::new("fold", DataType::Int64, true),
        Field::new("scan_date", DataType::Date32, false),
        Field::new("symbol", DataType::Utf8, false),
        Field::new("cohort", DataType::Utf8, false),
        Field::new("weight", DataType::Float64, false),
        Field::new("entry_date", DataType::Date32, false),
        Field::new("entry_price", DataType::Float64, false),
        Field::new("exit_date", DataType::Date32, false),
        Field::new("exit_price", DataType::Float64, false),
        Field::new("exit_kind", DataType::Utf8, false),
        Field::new("gross_return", DataType::Float64, false),
        Field::new("entry_cost", DataType::Float64, false),
        Field::new("exit_cost", DataType::Float64, false),
        Field::new("net_return", DataType::Float64, false),
    ];
    let total: usize = windows.iter().map(|(_, _, bt)| bt.trades.len()).sum();
    let mut trades = windows.iter().flat_map(|(name, fold, bt)| {
        bt.trades.iter().map(move |t| TradeRow {
            window: name,
            fold: *fold,
            cohort: t.cohort,
            weight: t.weight,
            snapshot: &data.rows[bt.row_ids[t.row as usize]],
        })
    });
    let batches = std::iter::from_fn(move || {
        let chunk: Vec<TradeRow> = trades.by_ref().take(crate::parquet_out::BATCH_ROWS).collect();
        (!chunk.is_empty()).then(|| trade_columns(&chunk))
    });
    let schema = Arc::new(Schema::new(fields));
    store.write(by, spec, |w| {
        crate::parquet_out::write_batches(w, schema, batches, total)
    })
}

/// One trade and what it traded.
struct TradeRow<'a> {
    window: &'a str,
    fold: Option<i64>,
    cohort: Cohort,
    weight: f64,
    snapshot: &'a crate::features::Snapshot,
}

/// The columns of a chunk of trades, in the schema's order.
fn trade_columns(rows: &[TradeRow]) -> Vec<ArrayRef> {
    let label = |r: &TradeRow| r.snapshot.label.expect("traded rows are labeled");
    let float = |f: &dyn Fn(&TradeRow) -> f64| Arc::new(Float64Array::from_iter_values(rows.iter().map(f))) as ArrayRef;
    let date = |f: &dyn Fn(&TradeRow) -> NaiveDate| {
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| days_since_epoch(f(r))),
        )) as ArrayRef
    };
    vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.window))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.fold))),
        date(&|r| r.snapshot.date),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.snapshot.symbol.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.cohort.as_str()))),
        float(&|r| r.weight),
        date(&|r| r.snapshot.marks.first().expect("a trade has an entry session").0),
        float(&|r| label(r).entry_price),
        date(&|r| r.snapshot.marks.last().expect("a trade has an exit session").0),
        float(&|r| label(r).exit_price),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| label(r).exit_reason.as_str()),
        )),
        float(&|r| label(r).gross_return),
        float(&|r| label(r).entry_cost),
        float(&|r| label(r).exit_cost),
        float(&|r| label(r).realized_return),
    ]
}

fn write_table(
    store: &WatchlistStore,
    by: &Writer,
    spec: NewArtifact,
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> anyhow::Result<ArtifactRecord> {
    store.write(by, spec, |w| crate::parquet_out::write_batch(w, schema, columns, rows))
}
