//! Flags shared by every binary (`#[command(flatten)]`), and the one helper
//! that turns parsed flags into a finished run: logging, runtime, context,
//! job, exit code.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::context::Context;
use crate::settings::Settings;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Flags every binary takes. Precedence: flag > env > config file > default.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// TOML configuration file [default: config/swingml.toml when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Database URL: sqlite://PATH (embedded default) or
    /// mysql://USER:PASSWORD@HOST:PORT/DB [default: sqlite://data/swingml.db?mode=rwc]
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Root folder of the artifact store [default: artifacts]
    #[arg(long, global = true, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,

    /// Watchlist to work on [default: from the config file, else "default"]
    #[arg(long, global = true, value_name = "NAME")]
    pub watchlist: Option<String>,

    /// Run as of this trading date (YYYY-MM-DD) [default: the latest date with candles]
    #[arg(long, global = true, value_name = "YYYY-MM-DD")]
    pub as_of: Option<String>,

    /// Log format on stderr [default: text]
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (-q warnings only, -qq errors only)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

/// Resolve settings, start logging and the async runtime, build the context
/// and run `job`; every error becomes one line on stderr and an exit code.
pub fn run_job<F, Fut>(job_name: &'static str, common: &CommonArgs, job: F) -> ExitCode
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings = match Settings::resolve(common) {
        Ok(settings) => settings,
        Err(err) => return crate::error::report(Err(err)),
    };
    crate::logging::init(settings.log_format, settings.verbosity);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return crate::error::report(Err(err.into())),
    };
    let result = runtime.block_on(async move {
        let ctx = Context::open(job_name, settings).await?;
        job(ctx).await
    });
    crate::error::report(result)
}

/// Resolve settings and start logging without a database: for commands that
/// only touch the artifact store.
pub fn run_offline<F>(common: &CommonArgs, job: F) -> ExitCode
where
    F: FnOnce(Settings) -> anyhow::Result<()>,
{
    let settings = match Settings::resolve(common) {
        Ok(settings) => settings,
        Err(err) => return crate::error::report(Err(err)),
    };
    crate::logging::init(settings.log_format, settings.verbosity);
    crate::error::report(job(settings))
}
