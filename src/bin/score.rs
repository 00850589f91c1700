//! `score`: rank today's candidates with the production models.

use std::process::ExitCode;

use clap::Parser;
use swingml::cli::{CommonArgs, run_job};
use swingml::jobs::merge;
use swingml::jobs::score::{self, OutputFormat, ScoreOptions};
use swingml::shard::Shard;

/// Score the as-of snapshot of every watchlist symbol with the production
/// models, write predictions_<ts>.parquet to the artifact store and print the
/// top-K. Symbols that cannot be scored (stale, undefined features, quality
/// problems) are listed with the reason.
#[derive(Debug, Parser)]
#[command(name = "score", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// How many candidates to mark and print
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Score only the first N symbols of the watchlist
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Only symbols listed in this country (e.g. US, IN)
    #[arg(long, value_name = "CC")]
    country: Option<String>,
    /// Output on stdout
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Write only this node's share of the symbols (stable hash of the name) as a part, e.g. 2/4; the
    /// features and ranks still come from the whole market in the shared database
    #[arg(long, value_name = "K/N", conflicts_with = "merge")]
    shard: Option<Shard>,
    /// Join the parts every shard wrote for the as-of date into the day's predictions file
    #[arg(long)]
    merge: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = ScoreOptions {
        top_k: cli.top_k,
        limit: cli.limit,
        country: cli.country,
        format: cli.format,
        shard: cli.shard,
    };
    if cli.merge {
        return run_job(merge::JOB, &cli.common, |ctx| async move {
            let report = merge::run(&ctx).await?;
            println!("{}", report.path);
            ctx.db.close().await;
            Ok(())
        });
    }
    run_job(score::JOB, &cli.common, |ctx| async move {
        if !swingml::jobs::dataset::session_today(&ctx).await? {
            return Ok(());
        }
        let report = score::run(&ctx, &options).await?;
        print!("{}", score::render(&report, options.format)?);
        ctx.db.close().await;
        Ok(())
    })
}
