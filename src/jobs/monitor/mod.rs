//! `monitor`: the night watch. Reads the predictions `score` wrote for the
//! last trading days (polars lazy scans), joins them with their realised
//! outcomes — computed from candles by the same label code as `bootstrap`,
//! `pending` until the horizon completes — and reports realised
//! performance, feature and score drift against the training reference,
//! and operational alerts, as `monitor_report_<ts>.json` and
//! `monitor_preview_<ts>.parquet` through the store.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Context as _;
use arrow_array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::NaiveDate;
use serde::Serialize;

use crate::context::Context;
use crate::db::job_runs::RunStatus;
use crate::error::{AlertsRaised, UsageError};
use crate::jobs::dataset::{resolve_as_of, watchlist_symbols};
use crate::jobs::production::{NoProductionModel, ProductionModels};
use crate::jobs::recent::read_recent;
use crate::labels::Label;
use crate::store::{InputRef, NameStyle, NewArtifact, WatchlistStore};

mod alerts;
mod drift;
mod email;
mod figures;
mod html;
mod notify;
mod predictions;

pub use alerts::Alert;
pub use drift::{Drift, DriftCheck};
pub use figures::Performance;
use figures::performance;
use predictions::{Scored, predictions_files, read_predictions};

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

#[derive(Debug, Clone, Serialize)]
pub struct DateReport {
    pub date: NaiveDate,
    pub file: String,
    #[serde(flatten)]
    pub performance: Performance,
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
    /// The live feature config the drift was judged against (its store
    /// name): drift persists over runs judged against the same one.
    pub feature_config: Option<String>,
    pub validation_precision_at_k: Option<f64>,
    pub pooled: Performance,
    pub dates: Vec<DateReport>,
    pub drift: Vec<Drift>,
    /// How the drift was judged and why (calibrated, rule of thumb,
    /// insufficient data).
    pub drift_check: DriftCheck,
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
    /// The HTML page written to the store (what the e-mail attaches).
    #[serde(skip)]
    pub html: Option<String>,
}

pub async fn run(ctx: &Context, options: &MonitorOptions) -> anyhow::Result<MonitorReport> {
    UsageError::require_at_least_one("--predictions-days-back", options.days_back)?;
    if let Some(k) = options.top_k {
        UsageError::require_at_least_one("--top-k", k)?;
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
        match notify::notify(&url, &report).await {
            Ok(()) => tracing::info!("alerts posted to the webhook at {}", notify::redact(&url)),
            Err(err) => tracing::error!(
                "could not post the alerts to the webhook at {}: {err:#}",
                notify::redact(&url)
            ),
        }
    }
    if let Some(email) = &ctx.settings.monitor.email
        && email::wanted(email, &report)
    {
        // Like the webhook: the report is written whatever the relay does.
        let relay = format!("{}:{}", email.host, email.port());
        let html = report.html.clone().unwrap_or_default();
        let sent = async { email::send(email, email::message(email, &report, &html)?).await };
        match sent.await {
            Ok(()) => tracing::info!("report e-mailed to {} via {relay}", email.to.join(", ")),
            Err(err) => tracing::warn!(
                "could not e-mail the report via {relay}: {}",
                format!("{err:#}").split_whitespace().collect::<Vec<_>>().join(" ")
            ),
        }
    }
    Ok(report)
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
    // Candles from before the window's first trading date on: its trading
    // dates and outcomes. N sessions span at most 2·N + 14 calendar days
    // (weekends, a holiday week); the predictions files older than the
    // window are not read, so neither are their candles.
    let from = as_of - chrono::Days::new(2 * options.days_back as u64 + 14);
    // Outcomes of what score ranked: its own status already left the
    // untradeable out of the picks and the universe.
    let built = read_recent(
        ctx,
        &symbols,
        as_of,
        &barrier,
        1,
        from,
        crate::universe::UniverseRule::ALL,
    )
    .await?;
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
        feature_config: production
            .pointer
            .artifacts
            .get("feature_config")
            .map(|r| r.name.clone()),
        validation_precision_at_k: production.feature_config.validation.as_ref().map(|v| v.precision_at_k),
        pooled: Performance::default(),
        dates: Vec::new(),
        drift: Vec::new(),
        drift_check: DriftCheck::default(),
        calibration: Vec::new(),
        alerts: Vec::new(),
        notes: Vec::new(),
        skipped_files: Vec::new(),
        report_path: None,
        html_path: None,
        html: None,
    };
    let mut rows: Vec<Scored> = Vec::new();
    let mut used: Vec<InputRef> = Vec::new();
    let mut per_date: Vec<(NaiveDate, String, Vec<Scored>)> = Vec::new();
    for date in &window {
        let Some(file) = files.get(date) else { continue };
        match store
            .local_copy(&file.name)
            .and_then(|copy| read_predictions(copy.path()))
        {
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
    (report.drift, report.drift_check) = drift::drift(&production.feature_config, &rows, cfg);
    alerts::alerts(
        ctx,
        store,
        production,
        &symbols,
        &window,
        &files,
        &per_date,
        &mut report,
        cfg,
    )
    .await?;
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
    let page = html::render(report);
    let html = store.write_bytes(
        &by,
        NewArtifact::new("monitor_html", NameStyle::Timestamped, "html")
            .prefix("monitor_report")
            .parameters(params.clone())
            .inputs(inputs.clone()),
        page.as_bytes(),
    )?;
    report.html_path = Some(store.location(&html.name));
    report.html = Some(page);
    let record = store.write_json(
        &by,
        NewArtifact::new("monitor_report", NameStyle::Timestamped, "json")
            .parameters(params)
            .inputs(inputs),
        report,
    )?;
    report.report_path = Some(store.location(&record.name));
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
    if r.drift_check.status == "calibrated" {
        let over = r.drift.iter().filter(|d| d.status == drift::DRIFTED).count();
        out.push_str(&format!(
            "drift: {over} of {} statistics over their threshold; {}\n",
            r.drift.len(),
            r.drift_check.reason
        ));
    }
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
