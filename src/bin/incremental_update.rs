//! `incremental-update`: not available yet (the issue that builds it is open).

use std::process::ExitCode;

use clap::Parser;
use swingml::cli::{CommonArgs, run_offline};
use swingml::error::UsageError;

#[derive(Debug, Parser)]
#[command(
    name = "incremental-update",
    version,
    about = "swingml incremental-update (not available yet)"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_offline(&cli.common, |_| {
        Err(UsageError::NotAvailableYet("incremental-update is not available yet in this version of swingml").into())
    })
}
