//! Configuration in two steps: [`FileConfig`] is what the TOML file says;
//! [`Settings::resolve`] merges flag > env > file > default and validates the
//! result into the types the code uses. Nothing else reads the environment
//! or the config file.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::cli::{CommonArgs, LogFormat};
use crate::error::UsageError;
use crate::models::batch::BatchParams;
use crate::models::online::OnlineParams;
use crate::symbols::validate_watchlist;

pub const DEFAULT_CONFIG_PATH: &str = "config/swingml.toml";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/swingml.db?mode=rwc";
pub const DEFAULT_ARTIFACTS: &str = "artifacts";
pub const DEFAULT_WATCHLIST: &str = "default";

/// The TOML file as written. Unknown keys are an error (a typo must not be
/// silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub artifacts: Option<PathBuf>,
    pub watchlist: Option<String>,
    pub log_format: Option<LogFormat>,
    pub import: ImportConfig,
    pub ta: TaConfig,
    pub bootstrap: BootstrapConfig,
    pub online: OnlineParams,
    pub batch: BatchParams,
}

/// `[bootstrap]`: data-set and evaluation settings of training.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    /// Fewest symbols with usable rows to train on.
    pub min_symbols: usize,
    /// Fewest labeled rows (after dropping rows with undefined features).
    pub min_rows: usize,
    /// Share of the latest scan dates held out for validation.
    pub valid_fraction: f64,
    /// Expanding walk-forward folds reported besides the holdout.
    pub folds: usize,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            min_symbols: 2,
            min_rows: 200,
            valid_fraction: 0.2,
            folds: 4,
        }
    }
}

/// `[import]`: data-quality thresholds and batching of candle import.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// A close-to-close move larger than this (fraction) is flagged as a
    /// possible unadjusted split.
    pub max_daily_move: f64,
    /// Rows per database transaction.
    pub batch_rows: usize,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            max_daily_move: 0.40,
            batch_rows: 100_000,
        }
    }
}

/// `[ta]`: indicator computation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaConfig {
    /// Symbols with fewer bars than this are skipped for training (they still
    /// get indicator rows, NULL where undefined).
    pub min_bars: usize,
    /// Worker threads for the per-symbol computation (0 = one per core).
    pub threads: usize,
}

impl Default for TaConfig {
    fn default() -> Self {
        TaConfig {
            min_bars: 200,
            threads: 0,
        }
    }
}

/// Validated settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub artifacts: PathBuf,
    pub watchlist: String,
    /// Whether the watchlist was named explicitly (flag or file) rather than
    /// the built-in default.
    pub watchlist_explicit: bool,
    pub as_of: Option<NaiveDate>,
    pub log_format: LogFormat,
    pub verbosity: i8,
    pub import: ImportConfig,
    pub ta: TaConfig,
    pub bootstrap: BootstrapConfig,
    pub online: OnlineParams,
    pub batch: BatchParams,
}

impl Settings {
    /// Merge flag > env > config file > default, and validate.
    pub fn resolve(args: &CommonArgs) -> anyhow::Result<Settings> {
        let file = load_file_config(args.config.as_deref())?;
        validate_training(&file)?;
        // clap already merged the --database-url flag with DATABASE_URL.
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        let artifacts = args
            .artifacts
            .clone()
            .or(file.artifacts)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ARTIFACTS));
        let named_watchlist = args.watchlist.clone().or(file.watchlist);
        let watchlist_explicit = named_watchlist.is_some();
        let watchlist = named_watchlist.unwrap_or_else(|| DEFAULT_WATCHLIST.to_string());
        validate_watchlist(&watchlist)?;
        let as_of = args.as_of.as_deref().map(parse_date).transpose()?;
        validate_import(&file.import)?;
        Ok(Settings {
            database_url,
            artifacts,
            watchlist,
            watchlist_explicit,
            as_of,
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            verbosity: args.verbose as i8 - args.quiet as i8,
            import: file.import,
            ta: file.ta,
            bootstrap: file.bootstrap,
            online: file.online,
            batch: file.batch,
        })
    }
}

/// Parse a `YYYY-MM-DD` date given by the user.
pub fn parse_date(raw: &str) -> Result<NaiveDate, UsageError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| UsageError::InvalidDate(raw.to_string()))
}

fn load_file_config(explicit: Option<&Path>) -> Result<FileConfig, UsageError> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let default = PathBuf::from(DEFAULT_CONFIG_PATH);
            if !default.exists() {
                return Ok(FileConfig::default());
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|err| UsageError::ConfigFile {
        path: path.clone(),
        message: err.to_string(),
    })?;
    toml::from_str(&text).map_err(|err| UsageError::ConfigFile {
        path,
        // toml's message spans several lines (it quotes the source); keep one.
        message: err.message().to_string(),
    })
}

fn validate_training(file: &FileConfig) -> Result<(), UsageError> {
    let invalid = |name: &'static str, message: String| UsageError::InvalidSetting { name, message };
    file.online.check().map_err(|m| invalid("online", m))?;
    file.batch.check().map_err(|m| invalid("batch", m))?;
    let b = &file.bootstrap;
    if !(b.valid_fraction > 0.0 && b.valid_fraction < 1.0) {
        return Err(invalid(
            "bootstrap.valid_fraction",
            format!("must be in (0, 1), got {}", b.valid_fraction),
        ));
    }
    if b.min_symbols == 0 || b.min_rows == 0 {
        return Err(invalid(
            "bootstrap.min_symbols",
            "min_symbols and min_rows must be ≥ 1".into(),
        ));
    }
    Ok(())
}

fn validate_import(import: &ImportConfig) -> Result<(), UsageError> {
    if !(import.max_daily_move > 0.0 && import.max_daily_move.is_finite()) {
        return Err(UsageError::InvalidSetting {
            name: "import.max_daily_move",
            message: format!("must be a positive fraction, got {}", import.max_daily_move),
        });
    }
    if import.batch_rows == 0 {
        return Err(UsageError::InvalidSetting {
            name: "import.batch_rows",
            message: "must be at least 1".to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CommonArgs {
        CommonArgs::default()
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "watchlist = \"from_file\"\nartifacts = \"/x\"\n").unwrap();
        let mut a = args();
        a.config = Some(path.clone());
        let s = Settings::resolve(&a).unwrap();
        assert_eq!(s.watchlist, "from_file");
        assert_eq!(s.artifacts, PathBuf::from("/x"));
        a.watchlist = Some("from_flag".into());
        let s = Settings::resolve(&a).unwrap();
        assert_eq!(s.watchlist, "from_flag");
        assert_eq!(s.artifacts, PathBuf::from("/x"));
    }

    #[test]
    fn unknown_key_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "watchlits = \"typo\"\n").unwrap();
        let mut a = args();
        a.config = Some(path);
        let err = Settings::resolve(&a).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&err), 2);
        assert!(format!("{err:#}").contains("watchlits"), "{err:#}");
    }

    #[test]
    fn bad_as_of_and_watchlist_are_rejected() {
        let mut a = args();
        a.as_of = Some("2024-13-01".into());
        assert!(Settings::resolve(&a).is_err());
        let mut a = args();
        a.watchlist = Some("../x".into());
        assert_eq!(crate::error::exit_code_for(&Settings::resolve(&a).unwrap_err()), 2);
    }
}
