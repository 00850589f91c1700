//! Errors by failure class, and the exit code each class maps to.
//!
//! Library code returns these typed errors where a caller must tell cases
//! apart; jobs wrap them with `anyhow::Context`. The binaries find the class
//! by walking the error chain (`cli::exit_code_for`) and print the whole chain
//! on one line (`{:#}`), so a user sees what was wrong and what to do.

use std::path::PathBuf;

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

impl UsageError {
    /// A count flag (`--top-k`, `--predictions-days-back`, …) of at least 1.
    pub fn require_at_least_one(name: &'static str, value: usize) -> Result<(), UsageError> {
        if value == 0 {
            return Err(UsageError::InvalidSetting {
                name,
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// `monitor --fail-on-alerts` found alerts: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{count} alert(s) raised")]
pub struct AlertsRaised {
    pub count: usize,
}
