//! Data providers behind one trait: each adapter only builds the request
//! for a symbol's daily bars and parses the answer into candles (pure
//! functions, tested on recorded answers); [`client`] does the HTTP with
//! timeouts, retries with backoff and a rate limit, the same for all.
//! Every bar then goes through the quality rules of `import`.

pub mod client;
pub mod finnhub;
pub mod twelvedata;
pub mod yahoo;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use reqwest::Url;

use crate::candles::quality::{Offence, Rule, check_values};
use crate::candles::source::{FileRead, SourceRow};
use crate::candles::{Candle, CandleSource};
use crate::error::UsageError;
use crate::symbols::Symbol;

/// Environment variables of the API keys (read only by the settings).
pub const TWELVEDATA_KEY_VAR: &str = "TWELVEDATA_API_KEY";
pub const FINNHUB_KEY_VAR: &str = "FINNHUB_API_KEY";

/// The providers `ta-signals fetch` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderName {
    Yahoo,
    TwelveData,
    Finnhub,
}

impl ProviderName {
    pub const ALL: [ProviderName; 3] = [ProviderName::Yahoo, ProviderName::TwelveData, ProviderName::Finnhub];

    pub fn parse(raw: &str) -> Result<ProviderName, UsageError> {
        let name = raw.trim().to_ascii_lowercase();
        ProviderName::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| UsageError::InvalidSetting {
                name: "provider",
                message: format!("unknown provider {raw:?}: use yahoo, twelvedata or finnhub"),
            })
    }

    pub fn as_str(self) -> &'static str {
        self.source().as_str()
    }

    /// What its candles are stored as.
    pub fn source(self) -> CandleSource {
        match self {
            ProviderName::Yahoo => CandleSource::Yahoo,
            ProviderName::TwelveData => CandleSource::TwelveData,
            ProviderName::Finnhub => CandleSource::Finnhub,
        }
    }

    /// The environment variable holding its API key, when it needs one.
    pub fn key_var(self) -> Option<&'static str> {
        match self {
            ProviderName::Yahoo => None,
            ProviderName::TwelveData => Some(TWELVEDATA_KEY_VAR),
            ProviderName::Finnhub => Some(FINNHUB_KEY_VAR),
        }
    }

    pub fn adapter(self) -> &'static dyn Provider {
        match self {
            ProviderName::Yahoo => &yahoo::Yahoo,
            ProviderName::TwelveData => &twelvedata::TwelveData,
            ProviderName::Finnhub => &finnhub::Finnhub,
        }
    }
}

/// One HTTP GET: the URL and its headers. API keys travel in headers, so
/// a URL in a log line or an error never carries one.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
}

/// Why a provider gave no bars for a symbol.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown symbol: {0}")]
    UnknownSymbol(String),
    #[error("no bars in the requested range")]
    Empty,
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The answer said "too many requests" in its body (HTTP 200).
    #[error("rate limited: {0}")]
    RateLimited(String),
    #[error("{0}")]
    Api(String),
}

/// What every adapter does.
pub trait Provider: Send + Sync {
    fn name(&self) -> ProviderName;

    /// The public API's base URL.
    fn default_base(&self) -> &'static str;

    /// The request for `symbol`'s daily bars from `from` to `to` (exchange
    /// trading dates, both included).
    fn request(&self, base: &Url, symbol: &Symbol, range: DateRange, key: Option<&str>) -> ApiRequest;

    /// Parse an answer into bars; `timezone` is the symbol's exchange zone
    /// (daily bars are time-stamped at the session's open or at midnight).
    fn parse(&self, symbol: &Symbol, timezone: Tz, body: &[u8]) -> Result<FileRead, ProviderError>;
}

/// Trading dates from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    /// Unix seconds of `from` 00:00 UTC and of the day after `to`: wide
    /// enough for any zone's time stamps of those dates (a provider filters
    /// by time stamp; bars outside the range are dropped afterwards).
    fn unix_bounds(self) -> (i64, i64) {
        let start = self.from.pred_opt().unwrap_or(self.from);
        let end = self.to.succ_opt().and_then(|d| d.succ_opt()).unwrap_or(self.to);
        let secs = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp();
        (secs(start), secs(end))
    }
}

/// The trading date of a daily bar's time stamp: a bar stamped exactly at
/// midnight UTC carries its date in UTC (Finnhub's daily bars since 2021);
/// any other stamp is a session time, read in the exchange's zone.
pub fn trading_date(unix: i64, timezone: Tz) -> Option<NaiveDate> {
    let t: DateTime<Utc> = DateTime::from_timestamp(unix, 0)?;
    if t.num_seconds_from_midnight() == 0 {
        Some(t.date_naive())
    } else {
        Some(t.with_timezone(&timezone).date_naive())
    }
}

/// Collects one answer's bars through the same value rules as a file.
pub struct BarsBuilder<'a> {
    symbol: &'a Symbol,
    origin: String,
    out: FileRead,
}

/// One bar's fields as an answer gives them (any may be missing).
#[derive(Debug, Default, Clone, Copy)]
pub struct RawBar {
    pub date: Option<NaiveDate>,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    pub adj_close: Option<f64>,
    pub volume: Option<f64>,
    pub split_coef: Option<f64>,
}

impl<'a> BarsBuilder<'a> {
    pub fn new(provider: ProviderName, symbol: &'a Symbol) -> BarsBuilder<'a> {
        BarsBuilder {
            symbol,
            origin: format!("{}:{symbol}", provider.as_str()),
            out: FileRead::default(),
        }
    }

    /// Add the `index`-th bar of the answer (1-based in reports).
    pub fn push(&mut self, index: usize, raw: RawBar) {
        let line = index as u64 + 1;
        self.out.rows_read += 1;
        match self.candle(raw) {
            Ok(candle) => match check_values(&candle) {
                None => self.out.rows.push(SourceRow {
                    source: 0,
                    line,
                    candle,
                    derived: false,
                }),
                Some((rule, detail)) => self.offence(line, raw.date, rule, detail),
            },
            Err((rule, detail)) => self.offence(line, raw.date, rule, detail),
        }
    }

    fn candle(&self, raw: RawBar) -> Result<Candle, (Rule, String)> {
        let need = |v: Option<f64>, name: &str| v.ok_or((Rule::MissingField, format!("{name} is missing")));
        let date = raw
            .date
            .ok_or((Rule::UnparseableField, "time stamp is not a date".to_string()))?;
        let volume = need(raw.volume, "volume")?;
        if !volume.is_finite() {
            return Err((Rule::NonFinite, format!("volume {volume} is not finite")));
        }
        Ok(Candle {
            symbol: self.symbol.clone(),
            date,
            open: need(raw.open, "open")?,
            high: need(raw.high, "high")?,
            low: need(raw.low, "low")?,
            close: need(raw.close, "close")?,
            adj_close: raw.adj_close,
            volume: volume.round() as i64,
            split_coef: raw.split_coef,
        })
    }

    fn offence(&mut self, line: u64, date: Option<NaiveDate>, rule: Rule, detail: String) {
        self.out.offences.push(Offence {
            source: self.origin.clone(),
            line,
            symbol: self.symbol.to_string(),
            date: date.map(|d| d.to_string()).unwrap_or_default(),
            rule,
            detail,
        });
    }

    /// The bars; an answer with no bar at all is [`ProviderError::Empty`].
    pub fn finish(self) -> Result<FileRead, ProviderError> {
        if self.out.rows_read == 0 {
            return Err(ProviderError::Empty);
        }
        Ok(self.out)
    }
}

/// A JSON number, or a number written as a string (TwelveData).
fn number(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parallel arrays of an answer must all have one value per time stamp.
fn check_columns(stamps: usize, columns: &[(&str, &[serde_json::Value])]) -> Result<(), ProviderError> {
    match columns.iter().find(|(_, c)| c.len() != stamps) {
        Some((name, column)) => Err(ProviderError::Malformed(format!(
            "{name} has {} values for {stamps} time stamps",
            column.len()
        ))),
        None => Ok(()),
    }
}

fn malformed(err: serde_json::Error) -> ProviderError {
    ProviderError::Malformed(format!("not the expected JSON ({err})"))
}

#[cfg(test)]
pub(crate) mod testing {
    use std::path::PathBuf;

    /// A recorded answer from `fixtures/providers/`.
    pub fn recorded(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/providers")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_utc_stamps_keep_their_date_session_stamps_take_the_exchange_zone() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        // 2020-08-31 00:00 UTC: the date itself in any zone's reading.
        assert_eq!(trading_date(1_598_832_000, ny), NaiveDate::from_ymd_opt(2020, 8, 31));
        // 2020-08-31 13:30 UTC = 09:30 EDT, the US open of the 31st.
        assert_eq!(trading_date(1_598_880_600, ny), NaiveDate::from_ymd_opt(2020, 8, 31));
        // 2024-03-05 03:45 UTC = 09:15 IST, the NSE open of the 5th.
        assert_eq!(
            trading_date(1_709_610_300, kolkata),
            NaiveDate::from_ymd_opt(2024, 3, 5)
        );
        // 2024-03-04 22:00 UTC would be the 4th in UTC but is 03:30 IST on the 5th.
        assert_eq!(
            trading_date(1_709_589_600, kolkata),
            NaiveDate::from_ymd_opt(2024, 3, 5)
        );
    }

    #[test]
    fn provider_names_parse_and_unknown_ones_are_usage_errors() {
        assert_eq!(ProviderName::parse("Yahoo").unwrap(), ProviderName::Yahoo);
        assert_eq!(ProviderName::parse("twelvedata").unwrap(), ProviderName::TwelveData);
        let err = ProviderName::parse("bloomberg").unwrap_err().to_string();
        assert!(err.contains("unknown provider \"bloomberg\""), "{err}");
    }
}
