//! `monitor`: the night watch. Reads the predictions `score` wrote for the
//! last trading days (polars lazy scans), joins them with their realised
//! outcomes — computed from candles by the same label code as `bootstrap`,
//! `pending` until the horizon completes — and reports realised
//! performance, feature and score drift against the training reference,
//! and operational alerts, as `monitor_report_<ts>.json` and
//! `monitor_preview_<ts>.parquet` through the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use arrow_array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::context::Context;
use crate::db::job_runs::RunStatus;
use crate::error::{AlertsRaised, UsageError};
use crate::features::drift::{categorical_psi, numeric_psi};
use crate::features::{CATEGORICAL_FEATURES, NUMERIC_FEATURES};
use crate::jobs::dataset::{read_and_build, resolve_as_of, watchlist_symbols};
use crate::jobs::production::{NoProductionModel, ProductionModels};
use crate::labels::Label;
use crate::models::metrics::{auc, log_loss};
use crate::store::{InputRef, NameStyle, NewArtifact, WatchlistStore};

mod html;

pub const JOB: &str = "monitor";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Trading days of predictions to look at (≥ 1).
    pub days_back: usize,
    /// K of precision@K; default: the top-K each predictions file marked.
    pub top_k: Option<usize>,
    pub fail_on_alerts: bool,
    pub format: ReportFormat,
    /// `--notify-url` / env `SWINGML_WEBHOOK_URL` (clap merges both).
    pub notify_url: Option<String>,
}

/// One scored prediction and, once its horizon completed, its outcome.
#[derive(Debug, Clone)]
struct Scored {
    symbol: String,
    as_of: NaiveDate,
    p_score: f64,
    rank: i64,
    in_top_k: bool,
    rule_buy: bool,
    numeric: Vec<Option<f64>>,
    categorical: Vec<Option<String>>,
    outcome: Option<Label>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub code: &'static str,
    /// `warn` or `alert`.
    pub severity: &'static str,
    pub message: String,
    pub figures: serde_json::Value,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Performance {
    pub scored: usize,
    pub completed: usize,
    pub pending: usize,
    pub top_k_completed: usize,
    pub precision_at_k: Option<f64>,
    /// Wilson 95 % interval of precision@K over the completed top-K picks.
    pub precision_at_k_ci95: Option<(f64, f64)>,
    /// Share of completed top-K picks with a positive after-cost return.
    pub top_k_hit_rate: Option<f64>,
    pub auc: Option<f64>,
    pub brier: Option<f64>,
    pub log_loss: Option<f64>,
    pub top_k_mean_return: Option<f64>,
    pub all_mean_return: Option<f64>,
    pub rule_buy_mean_return: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DateReport {
    pub date: NaiveDate,
    pub file: String,
    #[serde(flatten)]
    pub performance: Performance,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub feature: String,
    pub kind: &'static str,
    pub psi: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
    pub watchlist: String,
    pub as_of: NaiveDate,
    pub run_id: String,
    /// `ok`, `warn` or `alerts`.
    pub status: &'static str,
    pub k: Option<usize>,
    pub window: Vec<NaiveDate>,
    pub validation_precision_at_k: Option<f64>,
    pub pooled: Performance,
    pub dates: Vec<DateReport>,
    pub drift: Vec<Drift>,
    /// 10 bins of p_score over the completed predictions.
    pub calibration: Vec<crate::models::metrics::CalibrationBin>,
    pub alerts: Vec<Alert>,
    pub notes: Vec<String>,
    /// Predictions files left out, and why.
    pub skipped_files: Vec<(String, String)>,
    #[serde(skip)]
    pub report_path: Option<String>,
    #[serde(skip)]
    pub html_path: Option<String>,
}

pub async fn run(ctx: &Context, options: &MonitorOptions) -> anyhow::Result<MonitorReport> {
    if options.days_back == 0 {
        return Err(UsageError::InvalidSetting {
            name: "--predictions-days-back",
            message: "must be at least 1 trading day".into(),
        }
        .into());
    }
    if options.top_k == Some(0) {
        return Err(UsageError::InvalidSetting {
            name: "--top-k",
            message: "must be at least 1".into(),
        }
        .into());
    }
    let store = ctx.watchlist_store()?;
    let _lock = store.lock_job(JOB)?;
    let production =
        ProductionModels::load(&store)?.ok_or_else(|| NoProductionModel(ctx.settings.watchlist.clone()))?;
    let work = monitor(ctx, &store, &production, options);
    let report = super::audited(ctx, JOB, work, |r| (RunStatus::Ok, summary_line(r))).await?;
    let url = options
        .notify_url
        .clone()
        .or_else(|| ctx.settings.monitor.webhook_url.clone());
    if let (Some(url), "alerts") = (url, report.status) {
        // The report is written whatever the webhook does.
        match notify(&url, &report).await {
            Ok(()) => tracing::info!("alerts posted to the webhook at {}", redact(&url)),
            Err(err) => tracing::error!("could not post the alerts to the webhook at {}: {err:#}", redact(&url)),
        }
    }
    Ok(report)
}

/// Scheme and host of a URL: webhook paths carry the secret.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

/// POST `{"text": …}` — the alert lines and the report's path — to a
/// Slack-compatible webhook, with a timeout.
async fn notify(url: &str, report: &MonitorReport) -> anyhow::Result<()> {
    let mut lines = vec![format!(
        "swingml monitor {} as of {}: {} alert(s)",
        report.watchlist,
        report.as_of,
        report.alerts.iter().filter(|a| a.severity == "alert").count()
    )];
    lines.extend(
        report
            .alerts
            .iter()
            .filter(|a| a.severity == "alert")
            .map(|a| format!("• {}: {}", a.code, a.message)),
    );
    if let Some(path) = report.html_path.as_ref().or(report.report_path.as_ref()) {
        lines.push(format!("report: {path}"));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let body = serde_json::json!({ "text": lines.join("\n") });
    // One retry after a short pause: a webhook endpoint that blips once
    // should not cost the night's alert.
    let mut last = None;
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        match client.post(url).json(&body).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = Some(anyhow::anyhow!("the webhook answered {}", response.status())),
            Err(err) => last = Some(anyhow::anyhow!("{}", err.without_url())),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
}

/// The run's outcome for the exit code: alerts are a failure (exit 3) only
/// with `--fail-on-alerts`; the report is written either way.
pub fn check_alerts(report: &MonitorReport, fail_on_alerts: bool) -> anyhow::Result<()> {
    if fail_on_alerts && report.status == "alerts" {
        return Err(AlertsRaised {
            count: report.alerts.iter().filter(|a| a.severity == "alert").count(),
        }
        .into());
    }
    Ok(())
}

/// A predictions file of the window.
struct PredictionsFile {
    name: String,
    sha256: String,
    as_of: NaiveDate,
}

async fn monitor(
    ctx: &Context,
    store: &WatchlistStore,
    production: &ProductionModels,
    options: &MonitorOptions,
) -> anyhow::Result<MonitorReport> {
    let cfg = &ctx.settings.monitor;
    let symbols = watchlist_symbols(ctx, None).await?;
    let as_of = resolve_as_of(ctx).await?;
    let files = predictions_files(store, as_of)?;
    if files.is_empty() {
        anyhow::bail!(
            "no predictions for {} up to {as_of}: run score first",
            ctx.settings.watchlist
        );
    }
    let barrier = production
        .feature_config
        .label
        .context("the live feature config records no label rules: run bootstrap")?;
    // Candles from a little before the oldest prediction on: trading dates
    // and outcomes.
    let oldest = files.values().map(|f| f.as_of).min().unwrap_or(as_of);
    let from = oldest - chrono::Days::new(7 * options.days_back as u64 + 14);
    let built = read_and_build(ctx, &symbols, as_of, &barrier, 1, from).await?;
    let mut trading: BTreeSet<NaiveDate> = BTreeSet::new();
    let mut outcomes: HashMap<(String, NaiveDate), Option<Label>> = HashMap::new();
    for (symbol, snapshots) in &built.snapshots {
        for s in snapshots {
            trading.insert(s.date);
            outcomes.insert((symbol.to_string(), s.date), s.label);
        }
    }
    let mut window: Vec<NaiveDate> = trading.range(..=as_of).rev().take(options.days_back).copied().collect();
    window.reverse();
    let mut report = MonitorReport {
        watchlist: ctx.settings.watchlist.clone(),
        as_of,
        run_id: ctx.run_id.clone(),
        status: "ok",
        k: options.top_k,
        window: window.clone(),
        validation_precision_at_k: production.feature_config.validation.as_ref().map(|v| v.precision_at_k),
        pooled: Performance::default(),
        dates: Vec::new(),
        drift: Vec::new(),
        calibration: Vec::new(),
        alerts: Vec::new(),
        notes: Vec::new(),
        skipped_files: Vec::new(),
        report_path: None,
        html_path: None,
    };
    let mut rows: Vec<Scored> = Vec::new();
    let mut used: Vec<InputRef> = Vec::new();
    let mut per_date: Vec<(NaiveDate, String, Vec<Scored>)> = Vec::new();
    for date in &window {
        let Some(file) = files.get(date) else { continue };
        match read_predictions(&store.path_of(&file.name)) {
            Ok(mut scored) => {
                for s in &mut scored {
                    s.outcome = outcomes.get(&(s.symbol.clone(), s.as_of)).copied().flatten();
                }
                used.push(InputRef {
                    name: file.name.clone(),
                    sha256: file.sha256.clone(),
                });
                rows.extend(scored.iter().cloned());
                per_date.push((*date, file.name.clone(), scored));
            }
            Err(err) => {
                tracing::warn!("predictions file {} skipped: {err:#}", file.name);
                report.skipped_files.push((file.name.clone(), format!("{err:#}")));
            }
        }
    }
    for (date, file, scored) in &per_date {
        report.dates.push(DateReport {
            date: *date,
            file: file.clone(),
            performance: performance(scored, options.top_k),
        });
    }
    report.pooled = performance(&rows, options.top_k);
    let completed: Vec<&Scored> = rows.iter().filter(|r| r.outcome.is_some()).collect();
    report.calibration = crate::models::metrics::calibration(
        &completed.iter().map(|r| r.p_score).collect::<Vec<_>>(),
        &completed
            .iter()
            .map(|r| r.outcome.map_or(0, |l| l.label))
            .collect::<Vec<_>>(),
    );
    report.drift = drift(production, &rows);
    alerts(
        ctx,
        store,
        production,
        &symbols,
        &window,
        &files,
        &per_date,
        &mut report,
        cfg,
    )?;
    report.status = if report.alerts.iter().any(|a| a.severity == "alert") {
        "alerts"
    } else if report.alerts.is_empty() {
        "ok"
    } else {
        "warn"
    };
    publish(ctx, store, production, &rows, used, &mut report)?;
    Ok(report)
}

/// The newest predictions file of each as-of date up to `as_of`.
fn predictions_files(store: &WatchlistStore, as_of: NaiveDate) -> anyhow::Result<BTreeMap<NaiveDate, PredictionsFile>> {
    let mut out = BTreeMap::new();
    // Listed newest first: the first file of a date is its latest score run.
    for record in store.list(Some("predictions"))? {
        let meta = store.meta(&record)?;
        let Some(date) = meta
            .parameters
            .get("as_of")
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<NaiveDate>().ok())
        else {
            continue;
        };
        if date <= as_of {
            out.entry(date).or_insert(PredictionsFile {
                name: record.name.clone(),
                sha256: record.sha256.clone(),
                as_of: date,
            });
        }
    }
    Ok(out)
}

/// The scored rows of one predictions file, through a polars lazy scan.
fn read_predictions(path: &Path) -> anyhow::Result<Vec<Scored>> {
    use polars::prelude::*;
    let text = path.to_str().context("a predictions path that is not UTF-8")?;
    let mut columns = vec![
        col("symbol"),
        col("as_of").cast(DataType::Int32),
        col("p_score"),
        col("rank"),
        col("in_top_k"),
        col("ta_recommendation"),
    ];
    columns.extend(NUMERIC_FEATURES.iter().map(|n| col(*n)));
    let categorical: Vec<&str> = CATEGORICAL_FEATURES
        .iter()
        .copied()
        .filter(|n| *n != "ta_recommendation")
        .collect();
    columns.extend(categorical.iter().map(|n| col(*n)));
    let mut scan = LazyFrame::scan_parquet(PlRefPath::new(text), ScanArgsParquet::default())?;
    // Predictions of a program with other features cannot be compared.
    let schema = scan.collect_schema()?;
    let missing: Vec<&str> = [
        "symbol",
        "as_of",
        "p_score",
        "rank",
        "in_top_k",
        "ta_recommendation",
        "status",
    ]
    .into_iter()
    .chain(NUMERIC_FEATURES)
    .chain(categorical.iter().copied())
    .filter(|c| schema.get(c).is_none())
    .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "scored with another feature config than this program's (missing columns: {})",
            missing.join(", ")
        );
    }
    let frame = scan.filter(col("status").eq(lit("scored"))).select(columns).collect()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let strings = |name: &str| -> anyhow::Result<Vec<Option<String>>> {
        Ok(frame
            .column(name)?
            .str()?
            .iter()
            .map(|s| s.map(str::to_string))
            .collect())
    };
    let floats = |name: &str| -> anyhow::Result<Vec<Option<f64>>> { Ok(frame.column(name)?.f64()?.iter().collect()) };
    let symbols = strings("symbol")?;
    let dates: Vec<Option<i32>> = frame.column("as_of")?.i32()?.iter().collect();
    let p = floats("p_score")?;
    let rank: Vec<Option<i64>> = frame.column("rank")?.i64()?.iter().collect();
    let in_top_k: Vec<Option<bool>> = frame.column("in_top_k")?.bool()?.iter().collect();
    let rule = strings("ta_recommendation")?;
    let numeric: Vec<Vec<Option<f64>>> = NUMERIC_FEATURES
        .iter()
        .map(|n| floats(n))
        .collect::<anyhow::Result<_>>()?;
    let mut cats: Vec<Vec<Option<String>>> = Vec::new();
    for name in CATEGORICAL_FEATURES {
        cats.push(if name == "ta_recommendation" {
            rule.clone()
        } else {
            strings(name)?
        });
    }
    let mut out = Vec::with_capacity(symbols.len());
    for i in 0..symbols.len() {
        let (Some(symbol), Some(day), Some(p_score), Some(rank)) = (&symbols[i], dates[i], p[i], rank[i]) else {
            anyhow::bail!("a scored row without symbol, as_of, p_score or rank");
        };
        out.push(Scored {
            symbol: symbol.clone(),
            as_of: epoch + chrono::Days::new(day as u64),
            p_score,
            rank,
            in_top_k: in_top_k[i].unwrap_or(false),
            rule_buy: rule[i].as_deref() == Some("BUY"),
            numeric: numeric.iter().map(|c| c[i]).collect(),
            categorical: cats.iter().map(|c| c[i].clone()).collect(),
            outcome: None,
        });
    }
    Ok(out)
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Wilson score interval (95 %) for `hits` of `n`.
pub fn wilson(hits: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let (n, p) = (n as f64, hits as f64 / n as f64);
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let denominator = 1.0 + z * z / n;
    Some(((centre - spread) / denominator, (centre + spread) / denominator))
}

/// Realised figures of scored rows: the top-K are the rows ranked ≤ K
/// with `--top-k`, else the list each predictions file marked.
fn performance(rows: &[Scored], k: Option<usize>) -> Performance {
    let completed: Vec<&Scored> = rows.iter().filter(|r| r.outcome.is_some()).collect();
    let outcome = |r: &Scored| r.outcome.expect("completed");
    let in_top = |r: &Scored| k.map_or(r.in_top_k, |k| r.rank <= k as i64);
    let top: Vec<&Scored> = completed.iter().copied().filter(|r| in_top(r)).collect();
    let hits = top.iter().filter(|r| outcome(r).label == 1).count();
    let labels: Vec<u8> = completed.iter().map(|r| outcome(r).label).collect();
    let scores: Vec<f64> = completed.iter().map(|r| r.p_score).collect();
    let returns = |rows: &[&Scored]| mean(&rows.iter().map(|r| outcome(r).realized_return).collect::<Vec<_>>());
    let rule: Vec<&Scored> = completed.iter().copied().filter(|r| r.rule_buy).collect();
    Performance {
        scored: rows.len(),
        completed: completed.len(),
        pending: rows.len() - completed.len(),
        top_k_completed: top.len(),
        precision_at_k: (!top.is_empty()).then(|| hits as f64 / top.len() as f64),
        precision_at_k_ci95: wilson(hits, top.len()),
        top_k_hit_rate: (!top.is_empty())
            .then(|| top.iter().filter(|r| outcome(r).realized_return > 0.0).count() as f64 / top.len() as f64),
        auc: auc(&scores, &labels),
        brier: mean(
            &scores
                .iter()
                .zip(&labels)
                .map(|(p, &y)| (p - y as f64).powi(2))
                .collect::<Vec<_>>(),
        ),
        log_loss: (!labels.is_empty()).then(|| log_loss(&scores, &labels)),
        top_k_mean_return: returns(&top),
        all_mean_return: returns(&completed),
        rule_buy_mean_return: returns(&rule),
    }
}

/// PSI of every feature and of `p_score` against the training reference.
fn drift(production: &ProductionModels, rows: &[Scored]) -> Vec<Drift> {
    let reference = &production.feature_config.reference;
    let mut out = Vec::new();
    for (i, name) in NUMERIC_FEATURES.iter().enumerate() {
        let values: Vec<f64> = rows.iter().filter_map(|r| r.numeric[i]).collect();
        if let Some(psi) = reference.numeric.get(*name).and_then(|r| numeric_psi(r, &values)) {
            out.push(Drift {
                feature: name.to_string(),
                kind: "numeric",
                psi,
            });
        }
    }
    for (i, name) in CATEGORICAL_FEATURES.iter().enumerate() {
        let values = rows.iter().filter_map(|r| r.categorical[i].as_deref());
        if let Some(psi) = reference
            .categorical
            .get(*name)
            .and_then(|r| categorical_psi(r, values))
        {
            out.push(Drift {
                feature: name.to_string(),
                kind: "categorical",
                psi,
            });
        }
    }
    let scores: Vec<f64> = rows.iter().map(|r| r.p_score).collect();
    if let Some(psi) = production
        .feature_config
        .validation
        .as_ref()
        .and_then(|v| v.score.as_ref())
        .and_then(|r| numeric_psi(r, &scores))
    {
        out.push(Drift {
            feature: "p_score".into(),
            kind: "score",
            psi,
        });
    }
    out
}

/// Weekdays after `from` up to and including `to` (sessions, without the
/// exchange's holidays).
fn weekdays_between(from: NaiveDate, to: NaiveDate) -> i64 {
    let mut n = 0;
    let mut d = from;
    while d < to {
        d = d.succ_opt().expect("a next day");
        n += i64::from(d.weekday().number_from_monday() <= 5);
    }
    n
}

#[allow(clippy::too_many_arguments)]
fn alerts(
    ctx: &Context,
    store: &WatchlistStore,
    production: &ProductionModels,
    symbols: &[crate::symbols::Symbol],
    window: &[NaiveDate],
    files: &BTreeMap<NaiveDate, PredictionsFile>,
    per_date: &[(NaiveDate, String, Vec<Scored>)],
    report: &mut MonitorReport,
    cfg: &crate::settings::MonitorConfig,
) -> anyhow::Result<()> {
    let mut found: Vec<Alert> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut add = |code, severity, message: String, figures| {
        found.push(Alert {
            code,
            severity,
            message,
            figures,
        })
    };
    let drifted: Vec<&Drift> = report.drift.iter().filter(|d| d.psi >= cfg.psi_alert).collect();
    for d in &report.drift {
        if d.psi >= cfg.psi_alert || d.psi >= cfg.psi_warn {
            let severity = if d.psi >= cfg.psi_alert { "alert" } else { "warn" };
            add(
                "feature_drift",
                severity,
                format!("{} drifted: PSI {:.3}", d.feature, d.psi),
                serde_json::json!({"feature": d.feature, "psi": d.psi}),
            );
        }
    }
    if drifted.len() >= cfg.retrain_after_drifted_features {
        let names: Vec<&str> = drifted.iter().map(|d| d.feature.as_str()).collect();
        add(
            "retrain_recommended",
            "alert",
            format!(
                "{} features drifted (PSI ≥ {}): retrain recommended",
                names.len(),
                cfg.psi_alert
            ),
            serde_json::json!({"features": names}),
        );
    }
    // Realised precision against the training validation figure, only
    // with enough completed evidence.
    let completed_dates = report
        .dates
        .iter()
        .filter(|d| d.performance.top_k_completed > 0)
        .count();
    match (report.validation_precision_at_k, report.pooled.precision_at_k) {
        (Some(train), Some(live))
            if completed_dates >= cfg.min_completed_dates
                && report.pooled.top_k_completed >= cfg.min_completed_picks =>
        {
            if live < 0.8 * train {
                add(
                    "precision_drop",
                    "alert",
                    format!("precision@K {live:.3} is more than 20 % below the validation {train:.3}"),
                    serde_json::json!({"live": live, "validation": train, "ci95": report.pooled.precision_at_k_ci95,
                        "dates": completed_dates, "picks": report.pooled.top_k_completed}),
                );
            }
        }
        _ => notes.push(format!(
            "insufficient data for the precision check: {completed_dates} completed date(s), {} completed pick(s) \
             (minimum {} and {})",
            report.pooled.top_k_completed, cfg.min_completed_dates, cfg.min_completed_picks
        )),
    }
    // Model age: the live batch model's training as-of.
    if let Some(trained) = trained_as_of(store, production) {
        let age = (report.as_of - trained).num_days();
        if age > cfg.max_model_age_days {
            add(
                "model_stale",
                "warn",
                format!(
                    "the live models were trained through {trained}, {age} days before {}: run bootstrap",
                    report.as_of
                ),
                serde_json::json!({"trained_as_of": trained, "age_days": age}),
            );
        }
    }
    // Newest candle: against today unless an as-of was given (back-fill).
    let newest = *window.last().unwrap_or(&report.as_of);
    let now = ctx.settings.as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let lag = weekdays_between(newest, now);
    if lag > cfg.max_data_lag_sessions {
        add(
            "data_stale",
            "alert",
            format!("the newest candle is {newest}, {lag} weekday session(s) before {now}: is the data feed running?"),
            serde_json::json!({"newest_candle": newest, "sessions": lag}),
        );
    }
    // Watchlist symbols missing from the last predictions.
    if let Some((date, _, scored)) = per_date.last() {
        let present: BTreeSet<&str> = scored.iter().map(|s| s.symbol.as_str()).collect();
        let missing: Vec<&str> = symbols
            .iter()
            .map(|s| s.as_str())
            .filter(|s| !present.contains(s))
            .collect();
        if !missing.is_empty() {
            add(
                "symbols_not_scored",
                "warn",
                format!(
                    "{} watchlist symbol(s) not scored on {date}: {}",
                    missing.len(),
                    missing.join(", ")
                ),
                serde_json::json!({"date": date, "symbols": missing}),
            );
        }
    }
    let unscored: Vec<&NaiveDate> = window.iter().filter(|d| !files.contains_key(d)).collect();
    if !unscored.is_empty() {
        add(
            "score_missing",
            "warn",
            format!("{} trading date(s) without a score run", unscored.len()),
            serde_json::json!({"dates": unscored}),
        );
    }
    // The online model should have learned the scan date `horizon` bars back.
    let horizon = production.feature_config.label.map_or(5, |b| b.horizon);
    if window.len() > horizon
        && let Some(learned) = production.online.learned_through
    {
        let due = window[window.len() - 1 - horizon];
        if learned < due {
            add(
                "incremental_lagging",
                "warn",
                format!(
                    "the live online model learned through {learned}; scan dates through {due} are due: run incremental-update"
                ),
                serde_json::json!({"learned_through": learned, "due": due}),
            );
        }
    }
    report.alerts.extend(found);
    report.notes.extend(notes);
    Ok(())
}

/// The as-of the live batch model was trained with (its sidecar).
fn trained_as_of(store: &WatchlistStore, production: &ProductionModels) -> Option<NaiveDate> {
    let name = &production.pointer.artifacts.get("model_batch")?.name;
    let record = store
        .list(Some("model_batch"))
        .ok()?
        .into_iter()
        .find(|r| &r.name == name)?;
    store
        .meta(&record)
        .ok()?
        .parameters
        .get("as_of")?
        .as_str()?
        .parse()
        .ok()
}

fn publish(
    ctx: &Context,
    store: &WatchlistStore,
    production: &ProductionModels,
    rows: &[Scored],
    mut inputs: Vec<InputRef>,
    report: &mut MonitorReport,
) -> anyhow::Result<()> {
    let by = ctx.writer();
    inputs.extend(production.pointer.artifacts.values().map(|r| InputRef {
        name: r.name.clone(),
        sha256: r.sha256.clone(),
    }));
    let params = serde_json::json!({"as_of": report.as_of, "window": report.window, "k": report.k});
    let preview = store.write(
        &by,
        NewArtifact::new("monitor_preview", NameStyle::Timestamped, "parquet")
            .parameters(params.clone())
            .inputs(inputs.clone()),
        |w| write_preview(w, rows),
    )?;
    inputs.push(InputRef {
        name: preview.name.clone(),
        sha256: preview.sha256.clone(),
    });
    let page = html::render(report, ctx.settings.monitor.psi_warn, ctx.settings.monitor.psi_alert);
    let html = store.write_bytes(
        &by,
        NewArtifact::new("monitor_html", NameStyle::Timestamped, "html")
            .prefix("monitor_report")
            .parameters(params.clone())
            .inputs(inputs.clone()),
        page.as_bytes(),
    )?;
    report.html_path = Some(store.path_of(&html.name).display().to_string());
    let record = store.write_json(
        &by,
        NewArtifact::new("monitor_report", NameStyle::Timestamped, "json")
            .parameters(params)
            .inputs(inputs),
        report,
    )?;
    report.report_path = Some(store.path_of(&record.name).display().to_string());
    Ok(())
}

/// Each prediction with its outcome (`pending` until the horizon completes).
fn write_preview<W: std::io::Write + Send>(
    sink: W,
    rows: &[Scored],
) -> anyhow::Result<Option<crate::store::ParquetInfo>> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let n = rows.len();
    let outcome = |f: fn(&Label) -> f64| {
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.outcome.as_ref().map(f)))) as ArrayRef
    };
    let fields = vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("p_score", DataType::Float64, false),
        Field::new("rank", DataType::Int64, false),
        Field::new("rule_buy", DataType::Boolean, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("label", DataType::Int64, true),
        Field::new("exit_reason", DataType::Utf8, true),
        Field::new("bars_to_exit", DataType::Int64, true),
        Field::new("gross_return", DataType::Float64, true),
        Field::new("realized_return", DataType::Float64, true),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.symbol.as_str()))),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| (r.as_of - epoch).num_days() as i32),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.p_score))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.rank))),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.rule_buy)))),
        Arc::new(StringArray::from_iter_values(
            rows.iter()
                .map(|r| if r.outcome.is_some() { "completed" } else { "pending" }),
        )),
        Arc::new(Int64Array::from_iter(
            rows.iter().map(|r| r.outcome.map(|l| i64::from(l.label))),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.outcome.map(|l| l.exit_reason.as_str())),
        )),
        Arc::new(Int64Array::from_iter(
            rows.iter().map(|r| r.outcome.map(|l| i64::from(l.bars_to_exit))),
        )),
        outcome(|l| l.gross_return),
        outcome(|l| l.realized_return),
    ];
    crate::parquet_out::write_batch(sink, Arc::new(Schema::new(fields)), columns, n)
}

pub fn summary_line(r: &MonitorReport) -> String {
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into());
    format!(
        "monitor: {} as of {}: status {}, {} scored over {} date(s) ({} completed, {} pending), precision@K {} \
         (validation {}), {} alert(s); report {}",
        r.watchlist,
        r.as_of,
        r.status,
        r.pooled.scored,
        r.dates.len(),
        r.pooled.completed,
        r.pooled.pending,
        opt(r.pooled.precision_at_k),
        opt(r.validation_precision_at_k),
        r.alerts.len(),
        r.report_path.as_deref().unwrap_or("-")
    )
}

/// The terminal summary.
pub fn render(r: &MonitorReport, format: ReportFormat) -> anyhow::Result<String> {
    if format == ReportFormat::Json {
        return Ok(serde_json::to_string_pretty(r)? + "\n");
    }
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into());
    let pct = |x: Option<f64>| x.map(|v| format!("{:+.3}%", 100.0 * v)).unwrap_or_else(|| "n/a".into());
    let p = &r.pooled;
    let mut out = format!(
        "monitor {} as of {}: {}\n{} predictions on {} date(s): {} completed, {} pending\n\
         precision@K {} (95 % CI {}), validation {}; top-K hit rate {}; AUC {}, Brier {}, log loss {}\n\
         mean after-cost return: top-K {}, all scored {}, rule BUY {}\n",
        r.watchlist,
        r.as_of,
        r.status,
        p.scored,
        r.dates.len(),
        p.completed,
        p.pending,
        opt(p.precision_at_k),
        p.precision_at_k_ci95
            .map(|(a, b)| format!("{a:.3}..{b:.3}"))
            .unwrap_or_else(|| "n/a".into()),
        opt(r.validation_precision_at_k),
        opt(p.top_k_hit_rate),
        opt(p.auc),
        opt(p.brier),
        opt(p.log_loss),
        pct(p.top_k_mean_return),
        pct(p.all_mean_return),
        pct(p.rule_buy_mean_return)
    );
    for a in &r.alerts {
        out.push_str(&format!("{:<5} {}: {}\n", a.severity, a.code, a.message));
    }
    for n in &r.notes {
        out.push_str(&format!("note  {n}\n"));
    }
    for (file, why) in &r.skipped_files {
        out.push_str(&format!("skipped {file}: {why}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_against_published_values() {
        // 8 of 10 at 95 %: 0.4902 .. 0.9433 (Wilson 1927; Newcombe 1998, method 3).
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!((lo - 0.4902).abs() < 5e-5 && (hi - 0.9433).abs() < 5e-5, "{lo} {hi}");
        // 0 of 10: 0 .. 0.2775.
        let (lo, hi) = wilson(0, 10).unwrap();
        assert!(lo.abs() < 1e-12 && (hi - 0.2775).abs() < 5e-5, "{lo} {hi}");
        assert_eq!(wilson(0, 0), None);
    }

    /// A scored row with a known outcome (`label`, after-cost `ret`).
    fn row(rank: i64, p: f64, outcome: Option<(u8, f64)>) -> Scored {
        Scored {
            symbol: format!("S{rank}"),
            as_of: NaiveDate::from_ymd_opt(2020, 12, 1).unwrap(),
            p_score: p,
            rank,
            in_top_k: rank <= 2,
            rule_buy: rank % 2 == 0,
            numeric: Vec::new(),
            categorical: Vec::new(),
            outcome: outcome.map(|(label, ret)| Label {
                label,
                exit_reason: crate::labels::ExitReason::Timeout,
                bars_to_exit: 5,
                entry_price: 100.0,
                exit_price: 100.0 * (1.0 + ret),
                gross_return: ret + 0.002,
                realized_return: ret,
            }),
        }
    }

    #[test]
    fn realised_figures_by_hand() {
        // Five scored, four completed, the top-2 marked by score.
        let rows = [
            row(1, 0.8, Some((1, 0.05))),
            row(2, 0.6, Some((0, -0.04))),
            row(3, 0.4, Some((1, 0.03))),
            row(4, 0.2, Some((0, 0.01))),
            row(5, 0.1, None),
        ];
        let p = performance(&rows, None);
        assert_eq!((p.scored, p.completed, p.pending, p.top_k_completed), (5, 4, 1, 2));
        assert_eq!(p.precision_at_k, Some(0.5));
        assert_eq!(p.top_k_hit_rate, Some(0.5));
        // Positives 0.8, 0.4 vs negatives 0.6, 0.2: pairs won 1 + 1 + 0 + 1 = 3 of 4.
        assert_eq!(p.auc, Some(0.75));
        // (0.2² + 0.6² + 0.6² + 0.2²) / 4 = 0.2
        assert!((p.brier.unwrap() - 0.2).abs() < 1e-15);
        let ll = -(0.8f64.ln() + 0.4f64.ln() + 0.4f64.ln() + 0.8f64.ln()) / 4.0;
        assert!((p.log_loss.unwrap() - ll).abs() < 1e-15);
        assert!((p.top_k_mean_return.unwrap() - 0.005).abs() < 1e-15);
        assert!((p.all_mean_return.unwrap() - 0.0125).abs() < 1e-15);
        // Rule BUY: ranks 2 and 4 → (−0.04 + 0.01) / 2.
        assert!((p.rule_buy_mean_return.unwrap() + 0.015).abs() < 1e-15);
        // --top-k 3 instead of the file's marks: 2 of 3.
        assert_eq!(performance(&rows, Some(3)).precision_at_k, Some(2.0 / 3.0));
        let (lo, hi) = p.precision_at_k_ci95.unwrap();
        assert!(lo < 0.5 && hi > 0.5);
    }

    #[test]
    fn sessions_count_weekdays_only() {
        let d = |day| NaiveDate::from_ymd_opt(2024, 3, day).unwrap();
        // Friday 1st → Monday 4th: one session; → Friday 8th: five.
        assert_eq!(weekdays_between(d(1), d(4)), 1);
        assert_eq!(weekdays_between(d(1), d(8)), 5);
        assert_eq!(weekdays_between(d(4), d(4)), 0);
    }
}
