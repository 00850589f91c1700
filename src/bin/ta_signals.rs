//! `ta-signals`: load candles (`import`) and compute indicators (`run`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swingml::cli::{CommonArgs, run_job};
use swingml::jobs;

/// Load daily candles into the database and compute technical indicators.
#[derive(Debug, Parser)]
#[command(name = "ta-signals", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import CSV, CSV.gz or Parquet candle files (or folders of them).
    ///
    /// Columns: symbol,date,open,high,low,close[,adj_close],volume[,split_coef];
    /// a file without a symbol column is named after its symbol (INFY.NS.csv).
    /// Rows that break a data-quality rule are quarantined into a report
    /// under the artifacts root; re-importing the same data changes nothing.
    /// With --watchlist the symbols are added to that watchlist.
    Import {
        /// Files or folders to import
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Compute every indicator column for the watchlist's symbols (all
    /// symbols with candles when no --watchlist is given).
    ///
    /// Incremental by default: each symbol continues from its last computed
    /// date with exactly the numbers a full recompute gives.
    Run {
        /// Recompute every symbol from its first candle
        #[arg(long)]
        full: bool,
        /// Also write the computed rows to this Parquet file
        #[arg(long, value_name = "PATH")]
        parquet: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Import { paths } => run_job(jobs::import::JOB, &cli.common, |ctx| async move {
            jobs::import::run(&ctx, &jobs::import::ImportOptions { paths }).await?;
            ctx.db.close().await;
            Ok(())
        }),
        Command::Run { full, parquet } => run_job(jobs::ta_run::JOB, &cli.common, |ctx| async move {
            jobs::ta_run::run(&ctx, &jobs::ta_run::RunOptions { full, parquet }).await?;
            ctx.db.close().await;
            Ok(())
        }),
    }
}
