//! Configuration in two steps: [`FileConfig`] is what the TOML file says;
//! [`Settings::resolve`] merges flag > env > file > default and validates the
//! result into the types the code uses. Nothing else reads the environment
//! or the config file.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use crate::calendar::{CalendarConfig, Calendars};

mod fetch;
mod monitor;
mod training;
mod universe;
use crate::candles::CandleSource;
use fetch::validate_fetch;
pub use fetch::{ApiKeys, FINNHUB_KEY_VAR, FetchConfig, NOW_VAR, ProviderConfig, Secret, TWELVEDATA_KEY_VAR};
pub use monitor::{EmailConfig, EmailSecurity, MonitorConfig, SMTP_PASSWORD_VAR, SMTP_USERNAME_VAR, SendEmail};
pub use training::{BootstrapConfig, FeaturesConfig, PromotionConfig};
pub use universe::{CostConfig, TickSetting, UniverseConfig, exchange_defaults};

use crate::candles::splits::PriceAdjust;
use crate::error::UsageError;
use crate::labels::{BarrierSizing, Entry};
use crate::logging::LogFormat;
use crate::models::batch::BatchParams;
use crate::models::online::OnlineParams;
use crate::symbols::validate_watchlist;

pub const DEFAULT_CONFIG_PATH: &str = "config/swingml.toml";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/swingml.db?mode=rwc";
pub const DEFAULT_ARTIFACTS: &str = "artifacts";
pub const DEFAULT_WATCHLIST: &str = "default";

/// Flags every binary takes. Precedence: flag > env > config file > default.
#[derive(Debug, Clone, Default, clap::Args)]
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

    /// The artifact store: a folder, or s3://BUCKET/PREFIX on S3-compatible
    /// storage (AWS_* variables set the endpoint and credentials)
    /// [default: artifacts]
    #[arg(long, global = true, env = "SWINGML_ARTIFACTS", value_name = "DIR|S3_URL")]
    pub artifacts: Option<PathBuf>,

    /// Watchlist to work on [default: from the config file, else "default"]
    #[arg(long, global = true, value_name = "NAME")]
    pub watchlist: Option<String>,

    /// Run as of this trading date (YYYY-MM-DD) [default: the latest date with candles]
    #[arg(long, global = true, value_name = "YYYY-MM-DD")]
    pub as_of: Option<String>,

    /// Only candles from this source (yahoo, twelvedata, finnhub — also
    /// FINNHUB_LOCAL — or import): bootstrap, score and incremental-update
    /// use the symbols whose candles all came from it [default: any]
    #[arg(long, global = true, value_name = "NAME")]
    pub source: Option<String>,

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

/// The TOML file as written. Unknown keys are an error (a typo must not be
/// silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub database_url: Option<String>,
    /// Seconds a SQLite writer waits for another process's write.
    pub sqlite_busy_timeout_secs: Option<f64>,
    pub artifacts: Option<PathBuf>,
    pub watchlist: Option<String>,
    pub log_format: Option<LogFormat>,
    pub import: ImportConfig,
    pub ta: TaConfig,
    pub bootstrap: BootstrapConfig,
    pub features: FeaturesConfig,
    pub labels: LabelConfig,
    pub costs: CostConfig,
    pub universe: UniverseConfig,
    pub promotion: PromotionConfig,
    pub incremental: IncrementalConfig,
    pub monitor: MonitorConfig,
    pub online: OnlineParams,
    pub batch: BatchParams,
    pub fetch: FetchConfig,
    pub calendar: CalendarConfig,
}

/// `[incremental]`: when a daily update replaces the live online model.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncrementalConfig {
    /// Scan dates of prequential log loss the pointer decision looks at.
    pub trailing_dates: usize,
    /// The most the one-sided 95 % bound of the updated model's mean
    /// per-date log loss minus the live one's may be for it to replace the
    /// live model (0: it must be better beyond the window's noise).
    pub tolerance: f64,
}

impl Default for IncrementalConfig {
    fn default() -> Self {
        IncrementalConfig {
            trailing_dates: 20,
            tolerance: 0.0,
        }
    }
}

/// `[labels]`: how a snapshot's trade enters and where its barriers sit.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelConfig {
    /// `next-open` (tradeable default) or `close`.
    pub entry: Entry,
    /// `fixed` (the --target/--stop fractions) or `atr` (k × ATR14).
    pub barrier: BarrierKind,
    pub k_target: f64,
    pub k_stop: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BarrierKind {
    /// `--target` / `--stop` fractions of the entry price.
    Fixed,
    /// `k_target` / `k_stop` multiples of the scan date's ATR14.
    Atr,
}

impl Default for LabelConfig {
    fn default() -> Self {
        LabelConfig {
            entry: Entry::NextOpen,
            // Volatility-scaled by default: with fixed fractions the label
            // mostly measures volatility (a volatile stock reaches +5 % and
            // −4 % more often), and its top-K trailed the universe after
            // costs on the 10-year S&P 500 walk-forward (README).
            barrier: BarrierKind::Atr,
            k_target: 2.0,
            k_stop: 1.5,
        }
    }
}

impl LabelConfig {
    pub fn sizing(&self) -> BarrierSizing {
        match self.barrier {
            BarrierKind::Fixed => BarrierSizing::Fixed,
            BarrierKind::Atr => BarrierSizing::Atr {
                k_target: self.k_target,
                k_stop: self.k_stop,
            },
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
    /// Prices labels are measured on: `adj_close` (total return, where
    /// every bar has one) or `none` (split-adjusted only).
    pub adjust: PriceAdjust,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            max_daily_move: 0.40,
            batch_rows: 100_000,
            adjust: PriceAdjust::AdjClose,
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

/// A database URL: its password never shows in a debug print.
#[derive(Clone, PartialEq)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::db::redact_url(&self.0))
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Validated settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    pub artifacts: PathBuf,
    pub watchlist: String,
    /// Whether the watchlist was named explicitly (flag or file) rather than
    /// the built-in default.
    pub watchlist_explicit: bool,
    pub as_of: Option<NaiveDate>,
    pub sqlite_busy_timeout: std::time::Duration,
    pub log_format: LogFormat,
    pub verbosity: i8,
    pub import: ImportConfig,
    pub ta: TaConfig,
    pub bootstrap: BootstrapConfig,
    pub features: FeaturesConfig,
    pub labels: LabelConfig,
    pub costs: CostConfig,
    pub universe: UniverseConfig,
    pub promotion: PromotionConfig,
    pub incremental: IncrementalConfig,
    pub monitor: MonitorConfig,
    pub online: OnlineParams,
    pub batch: BatchParams,
    pub fetch: FetchConfig,
    pub calendars: Calendars,
    /// The instant "today" and "the latest closed session" are taken at.
    pub now: DateTime<Utc>,
    /// `--source`: only candles from it (None: any).
    pub source: Option<CandleSource>,
    pub api_keys: ApiKeys,
}

impl Settings {
    /// The `[features]` families (validated when the settings resolved).
    pub fn families(&self) -> crate::features::Families {
        self.features
            .parse(self.ta.min_bars)
            .expect("[features] was validated when the settings resolved")
    }

    /// Merge flag > env > config file > default, and validate.
    pub fn resolve(args: &CommonArgs) -> anyhow::Result<Settings> {
        let file = load_file_config(args.config.as_deref())?;
        validate_training(&file)?;
        file.monitor.validate()?;
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
        validate_fetch(&file.fetch)?;
        let source = args
            .source
            .as_deref()
            .map(|raw| {
                CandleSource::parse(raw).ok_or_else(|| UsageError::InvalidSetting {
                    name: "--source",
                    message: format!(
                        "unknown source {raw:?}: use yahoo, twelvedata, finnhub (or FINNHUB_LOCAL) or import"
                    ),
                })
            })
            .transpose()?;
        let calendars = Calendars::new(&file.calendar)?;
        let now = match std::env::var(NOW_VAR) {
            Ok(raw) => DateTime::parse_from_rfc3339(raw.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| UsageError::InvalidSetting {
                    name: NOW_VAR,
                    message: format!("{raw:?} is not an RFC 3339 time stamp"),
                })?,
            Err(_) => Utc::now(),
        };
        let key = |var: &str| std::env::var(var).ok().filter(|k| !k.trim().is_empty()).map(Secret);
        let api_keys = ApiKeys {
            twelvedata: key(TWELVEDATA_KEY_VAR),
            finnhub: key(FINNHUB_KEY_VAR),
        };
        let busy = file
            .sqlite_busy_timeout_secs
            .unwrap_or(crate::db::DEFAULT_BUSY_TIMEOUT.as_secs_f64());
        if !(0.0..=86_400.0).contains(&busy) {
            return Err(UsageError::InvalidSetting {
                name: "sqlite_busy_timeout_secs",
                message: format!("must be between 0 and 86400 seconds, got {busy}"),
            }
            .into());
        }
        Ok(Settings {
            sqlite_busy_timeout: std::time::Duration::from_secs_f64(busy),
            database_url: DatabaseUrl(database_url),
            artifacts,
            watchlist,
            watchlist_explicit,
            as_of,
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            verbosity: args.verbose as i8 - args.quiet as i8,
            import: file.import,
            ta: file.ta,
            bootstrap: file.bootstrap,
            features: file.features,
            labels: file.labels,
            costs: file.costs,
            universe: file.universe,
            promotion: file.promotion,
            incremental: file.incremental,
            monitor: file.monitor,
            online: file.online,
            batch: file.batch,
            fetch: file.fetch,
            calendars,
            now,
            source,
            api_keys,
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
    file.features
        .parse(file.ta.min_bars)
        .map_err(|m| invalid("features.families", m))?;
    file.batch.check().map_err(|m| invalid("batch", m))?;
    let b = &file.bootstrap;
    if !(b.valid_fraction > 0.0 && b.valid_fraction < 1.0) {
        return Err(invalid(
            "bootstrap.valid_fraction",
            format!("must be in (0, 1), got {}", b.valid_fraction),
        ));
    }
    if !(b.early_stopping_fraction > 0.0 && b.early_stopping_fraction < 0.5) {
        return Err(invalid(
            "bootstrap.early_stopping_fraction",
            format!("must be in (0, 0.5), got {}", b.early_stopping_fraction),
        ));
    }
    let l = &file.labels;
    for (name, k) in [("labels.k_target", l.k_target), ("labels.k_stop", l.k_stop)] {
        if !(k > 0.0 && k.is_finite()) {
            return Err(invalid(name, format!("must be a positive multiple of ATR14, got {k}")));
        }
    }
    file.costs.validate()?;
    file.universe.validate()?;
    if !(b.lockbox_fraction >= 0.0 && b.lockbox_fraction < 1.0) {
        return Err(invalid(
            "bootstrap.lockbox_fraction",
            format!("must be in [0, 1), got {}", b.lockbox_fraction),
        ));
    }
    if b.valid_fraction + b.lockbox_fraction >= 0.9 {
        return Err(invalid(
            "bootstrap.valid_fraction",
            format!(
                "valid_fraction {} + lockbox_fraction {} leave under 10 % of the dates to train on",
                b.valid_fraction, b.lockbox_fraction
            ),
        ));
    }
    // Fold k validates on block k of folds + 1: a holdout longer than one
    // block would be trained on by the last fold, whose figures choose.
    if b.folds > 0 && b.valid_fraction > 1.0 / (b.folds as f64 + 1.0) + 1e-12 {
        return Err(invalid(
            "bootstrap.valid_fraction",
            format!(
                "{} is more than 1/(folds + 1) = {:.4} with {} folds: the last walk-forward fold would \
                 train on holdout dates",
                b.valid_fraction,
                1.0 / (b.folds as f64 + 1.0),
                b.folds
            ),
        ));
    }
    let inc = &file.incremental;
    if inc.trailing_dates == 0 || !(inc.tolerance >= 0.0 && inc.tolerance.is_finite()) {
        return Err(invalid(
            "incremental",
            format!(
                "trailing_dates must be ≥ 1 and tolerance ≥ 0, got {} and {}",
                inc.trailing_dates, inc.tolerance
            ),
        ));
    }
    let p = &file.promotion;
    for (name, m) in [
        ("promotion.precision_margin", p.precision_margin),
        ("promotion.return_margin", p.return_margin),
    ] {
        if !(m >= 0.0 && m.is_finite()) {
            return Err(invalid(name, format!("must be ≥ 0, got {m}")));
        }
    }
    if p.min_windows == 0 || !(2..=4).contains(&p.block_horizons) {
        return Err(invalid(
            "promotion.min_windows",
            format!(
                "min_windows must be ≥ 1 and block_horizons 2, 3 or 4 (blocks of one horizon cover too little), \
                 got {} and {}",
                p.min_windows, p.block_horizons
            ),
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

    #[test]
    fn the_shipped_config_parses_and_states_the_model_defaults() {
        let text = include_str!("../../config/swingml.toml");
        let file: FileConfig = toml::from_str(text).unwrap();
        validate_training(&file).unwrap();
        assert_eq!(file.batch, BatchParams::default());
        assert!(file.features.families.is_empty());
        assert_eq!(file.ta.min_bars, TaConfig::default().min_bars);
    }

    fn args() -> CommonArgs {
        CommonArgs::default()
    }

    /// 2 for a usage error (what the binaries exit with), else 1.
    fn usage(err: &anyhow::Error) -> u8 {
        if err.chain().any(|c| c.downcast_ref::<UsageError>().is_some()) {
            2
        } else {
            1
        }
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
        assert_eq!(usage(&err), 2);
        assert!(format!("{err:#}").contains("watchlits"), "{err:#}");
    }

    #[test]
    fn bad_label_and_cost_settings_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for (text, name) in [
            ("[costs]\nbps_per_side = -5\n", "costs.bps_per_side"),
            ("[labels]\nk_stop = 0\n", "labels.k_stop"),
            ("[labels]\nk_target = -1\n", "labels.k_target"),
            ("[labels]\nentry = \"tomorrow\"\n", "tomorrow"),
            ("[promotion]\nreturn_margin = -0.1\n", "promotion.return_margin"),
            ("[universe]\nmin_price = -1\n", "universe.min_price"),
            ("[universe]\nmin_traded_value = -5\n", "universe.min_traded_value"),
            ("[bootstrap]\nlockbox_fraction = 1.0\n", "bootstrap.lockbox_fraction"),
            ("[bootstrap]\nvalid_fraction = 0.3\n", "1/(folds + 1)"),
            (
                "[bootstrap]\nvalid_fraction = 0.4\nfolds = 1\nlockbox_fraction = 0.5\n",
                "under 10 %",
            ),
            ("[costs]\ntick_size = { US = 0 }\n", "costs.tick_size"),
            ("[costs]\ntick_size = { US = \"cents\" }\n", "costs.tick_size"),
            ("[promotion]\nblock_horizons = 0\n", "promotion.min_windows"),
            ("sqlite_busy_timeout_secs = 1e30\n", "sqlite_busy_timeout_secs"),
            ("[fetch]\ntimeout_secs = 1e30\n", "fetch.timeout_secs"),
            ("[fetch.yahoo]\nrequests_per_minute = 1e-300\n", "fetch.yahoo"),
            ("[fetch]\nmax_backoff_ms = 18446744073709551615\n", "fetch.backoff_ms"),
        ] {
            std::fs::write(&path, text).unwrap();
            let mut a = args();
            a.config = Some(path.clone());
            let err = Settings::resolve(&a).unwrap_err();
            assert_eq!(usage(&err), 2, "{text}");
            assert!(format!("{err:#}").contains(name), "{text}: {err:#}");
        }
        std::fs::write(
            &path,
            "[labels]\nentry = \"close\"\nbarrier = \"atr\"\n[costs]\nbps_per_side = 5\n",
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path);
        let s = Settings::resolve(&a).unwrap();
        assert_eq!(s.labels.entry, Entry::Close);
        assert_eq!(
            s.labels.sizing(),
            BarrierSizing::Atr {
                k_target: 2.0,
                k_stop: 1.5
            }
        );
        assert_eq!(s.costs.bps_per_side, 5.0);
    }

    #[test]
    fn the_example_config_is_valid_and_says_the_defaults() {
        let mut a = args();
        a.config = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH));
        let s = Settings::resolve(&a).unwrap();
        let d = Settings::resolve(&CommonArgs {
            config: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml.missing")),
            ..args()
        });
        assert!(d.is_err(), "a named config file must exist");
        assert_eq!(s.labels.entry, Entry::NextOpen);
        assert_eq!(s.labels.barrier, LabelConfig::default().barrier);
        assert_eq!(s.costs.bps_per_side, CostConfig::default().bps_per_side);
        assert_eq!(s.import.adjust, PriceAdjust::AdjClose);
        assert_eq!(s.promotion.min_valid_dates, PromotionConfig::default().min_valid_dates);
        assert_eq!(
            s.bootstrap.early_stopping_fraction,
            BootstrapConfig::default().early_stopping_fraction
        );
        assert_eq!(s.online, OnlineParams::default());
        assert_eq!(s.batch, BatchParams::default());
    }

    #[test]
    fn bad_as_of_and_watchlist_are_rejected() {
        let mut a = args();
        a.as_of = Some("2024-13-01".into());
        assert!(Settings::resolve(&a).is_err());
        let mut a = args();
        a.watchlist = Some("../x".into());
        assert_eq!(usage(&Settings::resolve(&a).unwrap_err()), 2);
    }
}
