//! `incremental-update`: learn the labels whose horizon completed since
//! the online model last learned, one scan date at a time.

use std::process::ExitCode;

use clap::Parser;
use swingml::cli::{CommonArgs, run_job};
use swingml::jobs::incremental::{self, UpdateOptions};

/// Label every scan date whose horizon has completed by --as-of and that the
/// online model has not learned yet (catch-up after missed days included),
/// score each date with the current model, then learn it (one adaptive step
/// per date), write a new online model version, and move the production
/// pointer to it when its recent prequential log loss is not worse than the
/// live model's. Running it again for the same --as-of changes nothing.
#[derive(Debug, Parser)]
#[command(name = "incremental-update", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// K of the per-date precision@K in the prequential evaluation
    #[arg(long, default_value_t = 10)]
    top_k: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = UpdateOptions { top_k: cli.top_k };
    run_job(incremental::JOB, &cli.common, |ctx| async move {
        if !swingml::jobs::dataset::session_today(&ctx).await? {
            return Ok(());
        }
        incremental::run(&ctx, &options).await?;
        ctx.db.close().await;
        Ok(())
    })
}
