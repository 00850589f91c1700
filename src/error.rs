//! Errors by failure class, and the exit code each class maps to.
//!
//! Library code returns these typed errors where a caller must tell cases
//! apart; jobs wrap them with `anyhow::Context`. The binaries find the class
//! by walking the error chain ([`exit_code_for`]) and print the whole chain on
//! one line (`{:#}`), so a user sees what was wrong and what to do.

use std::path::PathBuf;
use std::process::ExitCode;

/// Mistakes in what the user typed or configured: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(
        "invalid symbol {0:?}: expected upper-case letters/digits with optional '.', '-' or '&' parts (e.g. AAPL, BRK-B, INFY.NS)"
    )]
    InvalidSymbol(String),
    #[error("invalid watchlist name {name:?}: {reason}")]
    InvalidWatchlist { name: String, reason: &'static str },
    #[error("invalid date {0:?}: expected YYYY-MM-DD")]
    InvalidDate(String),
    #[error("input not found: {}", .0.display())]
    InputNotFound(PathBuf),
    #[error("configuration file {}: {message}", path.display())]
    ConfigFile { path: PathBuf, message: String },
    #[error("invalid setting {name}: {message}")]
    InvalidSetting { name: &'static str, message: String },
    #[error("unsupported database URL {0:?}: use sqlite://PATH or mysql://USER:PASSWORD@HOST/DB")]
    UnsupportedDatabaseUrl(String),
    #[error("{0}")]
    NotAvailableYet(&'static str),
}

/// `monitor --fail-on-alerts` found alerts: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{count} alert(s) raised")]
pub struct AlertsRaised {
    pub count: usize,
}

/// Exit code for an error: 2 for usage/configuration, 3 for raised alerts,
/// 1 for everything else (data, database, I/O failures).
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
        if cause.downcast_ref::<AlertsRaised>().is_some() {
            return 3;
        }
        if let Some(store_err) = cause.downcast_ref::<crate::store::StoreError>()
            && store_err.is_usage()
        {
            return 2;
        }
    }
    1
}

/// Turn a job's result into the process exit code, printing a failure as
/// one line on stderr (never a panic or a backtrace).
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code_for(&err);
            // One line on stderr, whatever the log format: cron mails it as is.
            eprintln!("error: {err:#}");
            ExitCode::from(code)
        }
    }
}
