//! `ta-signals`: load candles (`import` from files, `fetch` from data
//! providers) and compute indicators (`run`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swingml::cli::{CommonArgs, run_job};
use swingml::jobs;
use swingml::shard::Shard;

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
    /// Fetch new daily candles of the watchlist's symbols from the data
    /// providers (Yahoo, TwelveData, Finnhub) and store them like an import.
    ///
    /// Each symbol is asked from its last stored candle (minus a few days of
    /// overlap, to pick up revised bars) up to the latest session of its
    /// exchange whose close has passed. Providers are tried in the order of
    /// `[fetch] providers`; API keys come from TWELVEDATA_API_KEY and
    /// FINNHUB_API_KEY. One symbol's failure is reported, the others
    /// continue (exit 1 when any failed).
    Fetch {
        /// Ask only this provider (yahoo, twelvedata or finnhub) instead of the configured chain
        #[arg(long, value_name = "NAME")]
        provider: Option<String>,
        /// Ask every symbol from this date (back-fill) instead of its last stored candle
        #[arg(long, value_name = "YYYY-MM-DD")]
        since: Option<String>,
        /// Base URL of every provider asked (a local server or a proxy)
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// Add these symbols (comma-separated) to the --watchlist first
        #[arg(long, value_name = "SYMBOLS", value_delimiter = ',')]
        symbols: Vec<String>,
        /// Then compute the new indicator rows (as `ta-signals run`)
        #[arg(long)]
        run: bool,
        /// Only this node's share of the symbols (stable hash of the name), e.g. 2/4
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
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
        /// Only this node's share of the symbols (stable hash of the name), e.g. 2/4
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
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
        Command::Fetch {
            provider,
            since,
            base_url,
            symbols,
            run,
            shard,
        } => run_job(jobs::fetch::JOB, &cli.common, |ctx| async move {
            let since = since.as_deref().map(swingml::settings::parse_date).transpose()?;
            let options = jobs::fetch::FetchOptions {
                provider,
                since,
                base_url,
                symbols,
                shard,
            };
            let fetched = jobs::fetch::run(&ctx, &options).await?;
            let ctx = ctx.for_job(jobs::ta_run::JOB);
            if run {
                let options = jobs::ta_run::RunOptions {
                    shard,
                    ..Default::default()
                };
                jobs::ta_run::run(&ctx, &options).await?;
            }
            ctx.db.close().await;
            match fetched.failed.len() {
                0 => Ok(()),
                n => anyhow::bail!("fetch: {n} symbol(s) got no bars (see the warnings above)"),
            }
        }),
        Command::Run { full, parquet, shard } => run_job(jobs::ta_run::JOB, &cli.common, |ctx| async move {
            jobs::ta_run::run(&ctx, &jobs::ta_run::RunOptions { full, parquet, shard }).await?;
            ctx.db.close().await;
            Ok(())
        }),
    }
}
