//! `bootstrap`: rebuild the labeled data set and retrain both models.

use std::process::ExitCode;

use clap::Parser;
use swingml::cli::{CommonArgs, run_job};
use swingml::jobs::bootstrap::{self, BootstrapOptions};

/// Build triple-barrier-labeled snapshots of a watchlist, evaluate the online
/// (logistic) and batch (LightGBM) models on a leakage-safe time split, train
/// the final models on everything labelable and promote them when they beat
/// the baselines and the live models. Prints the metrics table on stdout.
#[derive(Debug, Parser)]
#[command(name = "bootstrap", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Trading days a trade may last (the label horizon)
    #[arg(long, default_value_t = 5)]
    horizon: usize,
    /// Profit target as a fraction (0.05 = +5 %)
    #[arg(long, default_value_t = 0.05)]
    target: f64,
    /// Stop loss as a fraction (0.04 = −4 %)
    #[arg(long, default_value_t = 0.04)]
    stop: f64,
    /// Years of scan dates to train on, up to the last labelable date
    #[arg(long, default_value_t = 1.0)]
    train_years: f64,
    /// Use only the first N symbols of the watchlist
    #[arg(long, value_name = "N")]
    max_symbols: Option<usize>,
    /// Seed of LightGBM's bagging and feature sampling
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// K of precision@K (the daily candidate list length)
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Where a scan date's trade enters: the next session's open (tradeable,
    /// the default) or the scan date's close [default: config `[labels] entry`]
    #[arg(long, value_enum)]
    entry: Option<swingml::labels::Entry>,
    /// Promote the new models even when they do not pass the gate (also
    /// when this run's --as-of is older than the live models')
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = BootstrapOptions {
        horizon: cli.horizon,
        target: cli.target,
        stop: cli.stop,
        train_years: cli.train_years,
        max_symbols: cli.max_symbols,
        seed: cli.seed,
        top_k: cli.top_k,
        force: cli.force,
        entry: cli.entry,
    };
    run_job(bootstrap::JOB, &cli.common, |ctx| async move {
        let report = bootstrap::run(&ctx, &options).await?;
        print!("{}", bootstrap::table(&report));
        ctx.db.close().await;
        Ok(())
    })
}
