//! `monitor`: realised performance, drift and alerts of the live models.

use std::process::ExitCode;

use clap::Parser;
use swingml::cli::{CommonArgs, run_job};
use swingml::jobs::monitor::{self, MonitorOptions, ReportFormat};

/// Join the predictions of the last trading days with their realised
/// outcomes (pending until the horizon completes), measure precision@K, hit
/// rate, AUC, Brier, log loss and returns against the baselines, the drift
/// of every feature and of the score against the training reference, and
/// raise alerts (drift, precision drop, stale model or data, missing scores
/// or symbols, a lagging incremental update). Writes monitor_report_*.json
/// and monitor_preview_*.parquet; prints a summary.
#[derive(Debug, Parser)]
#[command(name = "monitor", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Trading days of predictions to look at
    #[arg(long, default_value_t = 7)]
    predictions_days_back: usize,
    /// K of precision@K [default: the top-K each predictions file marked]
    #[arg(long)]
    top_k: Option<usize>,
    /// Exit with code 3 when the report's status is `alerts`
    #[arg(long)]
    fail_on_alerts: bool,
    /// Terminal summary format
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// Slack-compatible webhook the alerts are posted to when the status is
    /// `alerts` [default: config `[monitor] webhook_url`]
    #[arg(long, env = "SWINGML_WEBHOOK_URL", hide_env_values = true, value_name = "URL")]
    notify_url: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = MonitorOptions {
        days_back: cli.predictions_days_back,
        top_k: cli.top_k,
        fail_on_alerts: cli.fail_on_alerts,
        format: cli.format,
        notify_url: cli.notify_url,
    };
    let format = options.format;
    run_job(monitor::JOB, &cli.common, |ctx| async move {
        if !swingml::jobs::dataset::session_today(&ctx).await? {
            return Ok(());
        }
        let report = monitor::run(&ctx, &options).await?;
        print!("{}", monitor::render(&report, format)?);
        ctx.db.close().await;
        monitor::check_alerts(&report, options.fail_on_alerts)
    })
}
