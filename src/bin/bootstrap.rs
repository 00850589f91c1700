//! `bootstrap`: rebuild the labeled data set and retrain both models.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use swingml::cli::{CommonArgs, run_job};
use swingml::jobs::bootstrap::{self, BootstrapOptions};
use swingml::settings::BarrierKind;

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
    /// Profit target as a fraction (0.05 = +5 %); implies --barrier fixed [default: 0.05]
    #[arg(long)]
    target: Option<f64>,
    /// Stop loss as a fraction (0.04 = −4 %); implies --barrier fixed [default: 0.04]
    #[arg(long)]
    stop: Option<f64>,
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
    /// Barriers at k·ATR14 from the entry (`[labels] k_target`, `k_stop`)
    /// or at the --target/--stop fractions [default: config `[labels] barrier`, atr]
    #[arg(long, value_enum)]
    barrier: Option<BarrierKind>,
    /// Promote the new models even when they do not pass the gate (also
    /// when this run's --as-of is older than the live models')
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let fractions_given = cli.target.is_some() || cli.stop.is_some();
    if fractions_given && cli.barrier == Some(BarrierKind::Atr) {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--target/--stop are fractions for fixed barriers; with --barrier atr set [labels] k_target/k_stop",
            )
            .exit();
    }
    let options = BootstrapOptions {
        horizon: cli.horizon,
        target: cli.target.unwrap_or(0.05),
        stop: cli.stop.unwrap_or(0.04),
        train_years: cli.train_years,
        max_symbols: cli.max_symbols,
        seed: cli.seed,
        top_k: cli.top_k,
        force: cli.force,
        entry: cli.entry,
        barrier: cli.barrier.or(fractions_given.then_some(BarrierKind::Fixed)),
    };
    run_job(bootstrap::JOB, &cli.common, |ctx| async move {
        let report = bootstrap::run(&ctx, &options).await?;
        print!("{}", bootstrap::table(&report));
        ctx.db.close().await;
        Ok(())
    })
}
