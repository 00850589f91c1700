//! Writing a bootstrap's artifacts through the store: the labeled data,
//! feature config, bundle, both models, their metrics and the backtest.

use std::sync::Arc;

use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::NaiveDate;

use super::training::Models;
use super::{BootstrapOptions, BootstrapReport, DataSet, FoldReport};
use crate::context::Context;
use crate::features::config::FeatureConfig;
use crate::models::backtest::Backtest;
use crate::models::metrics::Evaluation;
use crate::models::split::Split;
use crate::store::{ArtifactRecord, InputRef, NameStyle, NewArtifact, WatchlistStore, Writer};

pub(super) fn write_artifacts(
    ctx: &Context,
    store: &WatchlistStore,
    options: &BootstrapOptions,
    data: &DataSet,
    split: &Split,
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
            "min_bars": ctx.settings.ta.min_bars,
        },
        "label": report.barrier,
        "label_prices": ctx.settings.import.adjust,
        "promotion": ctx.settings.promotion,
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
    let (labeled, reference) = rayon::join(
        || {
            store.write(&by, labeled_spec, |w| {
                let mut part = vec!["purged"; data.rows.len()];
                for &i in &split.train {
                    part[i] = "train";
                }
                for &i in &split.valid {
                    part[i] = "valid";
                }
                crate::parquet_out::write_labeled(w, &data.rows, &part)
            })
        },
        || FeatureConfig::from_training(data.rows.iter().map(|r| &r.features)),
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
        validation: Some(crate::features::config::ValidationReference {
            k: report.ensemble.k,
            precision_at_k: report.ensemble.precision_at_k,
            score: crate::features::config::numeric_reference(report.validation_scores.clone()),
        }),
        ..reference
    };
    let config = store.write_json(&by, spec("feature_config", "json"), &feature_config)?;
    let bundle = store.write_json(&by, spec("transformer_bundle", "json"), &models.bundle)?;
    // What the model has learned: `incremental-update` continues after it.
    let online_model = crate::models::online::OnlineModel {
        learned_through: data.rows.last().map(|r| r.date),
        ..models.online.clone()
    };
    let online = store.write_json(&by, spec("model_online", "json"), &online_model)?;
    let batch = store.write_bytes(&by, spec("model_batch", "txt"), models.batch.to_text()?.as_bytes())?;

    let importance: Vec<(String, f64)> = {
        let mut pairs: Vec<(String, f64)> = models
            .bundle
            .design_names()
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
    let (backtest, daily) = write_backtest(
        store,
        &by,
        report,
        metric_spec("backtest"),
        metric_spec("backtest_daily"),
    )?;
    Ok(vec![
        labeled, config, bundle, online, batch, online_m, batch_m, backtest, daily,
    ])
}

fn format_years(years: f64) -> String {
    if years.fract() == 0.0 {
        format!("{}", years as u64)
    } else {
        format!("{years}")
    }
}

/// `backtest_<ts>.json` (every KPI per fold and pooled) and
/// `backtest_daily_<ts>.parquet` (one row per validation date and window).
fn write_backtest(
    store: &WatchlistStore,
    by: &Writer,
    report: &BootstrapReport,
    json_spec: NewArtifact,
    daily_spec: NewArtifact,
) -> anyhow::Result<(ArtifactRecord, ArtifactRecord)> {
    let folds: Vec<serde_json::Value> = report
        .folds
        .iter()
        .map(|f| {
            serde_json::json!({"fold": f.fold, "first_valid_date": f.first_valid_date,
                "rank_ic": f.ensemble.rank_ic, "precision_at_k": f.ensemble.precision_at_k,
                "backtest": f.backtest})
        })
        .collect();
    let summary = serde_json::json!({
        "as_of": report.as_of,
        "label": report.barrier,
        "portfolio": "daily cohort of the top-K by ensemble probability, 1/horizon of equity each, \
                      equal weight inside a cohort, entered at the next open, exited by the label rules, \
                      returns after costs booked on the exit day",
        "folds": folds,
        "pooled": report.pooled_backtest,
        "ranking": report.ranking,
        "holdout": report.holdout_backtest,
    });
    let json = store.write_json(by, json_spec, &summary)?;
    let mut windows: Vec<(String, &Backtest)> = report
        .folds
        .iter()
        .map(|f| (format!("fold{}", f.fold), &f.backtest))
        .collect();
    if let Some(p) = &report.pooled_backtest {
        windows.push(("pooled".to_string(), p));
    }
    windows.push(("holdout".to_string(), &report.holdout_backtest));
    let rows: Vec<(&str, &crate::models::backtest::DailyRow)> = windows
        .iter()
        .flat_map(|(name, bt)| bt.daily.iter().map(move |d| (name.as_str(), d)))
        .collect();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let float = |f: &dyn Fn(&crate::models::backtest::DailyRow) -> Option<f64>| {
        Arc::new(Float64Array::from_iter(rows.iter().map(|(_, d)| f(d)))) as ArrayRef
    };
    let fields = vec![
        Field::new("window", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
        Field::new("top_k_return", DataType::Float64, false),
        Field::new("universe_return", DataType::Float64, false),
        Field::new("rule_buy_return", DataType::Float64, false),
        Field::new("top_k_equity", DataType::Float64, false),
        Field::new("universe_equity", DataType::Float64, false),
        Field::new("rule_buy_equity", DataType::Float64, false),
        Field::new("top_k_cohort_return", DataType::Float64, true),
        Field::new("universe_cohort_return", DataType::Float64, true),
        Field::new("picks", DataType::Int64, false),
        Field::new("universe", DataType::Int64, false),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(w, _)| *w))),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|(_, d)| (d.date - epoch).num_days() as i32),
        )),
        float(&|d| Some(d.top_k_return)),
        float(&|d| Some(d.universe_return)),
        float(&|d| Some(d.rule_buy_return)),
        float(&|d| Some(d.top_k_equity)),
        float(&|d| Some(d.universe_equity)),
        float(&|d| Some(d.rule_buy_equity)),
        float(&|d| d.top_k_cohort),
        float(&|d| d.universe_cohort),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(_, d)| i64::from(d.picks)),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(_, d)| i64::from(d.universe)),
        )),
    ];
    let n = rows.len();
    let schema = Arc::new(Schema::new(fields));
    let daily = store.write(by, daily_spec, |w| {
        crate::parquet_out::write_batch(w, schema, columns, n)
    })?;
    Ok((json, daily))
}
