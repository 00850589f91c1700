//! Daily candles: the [`Candle`] type, reading source files ([`source`]),
//! the data-quality rules ([`quality`]) and split adjustment ([`splits`]).

pub mod batch;
pub mod quality;
pub mod source;
pub mod splits;

use chrono::NaiveDate;

use crate::symbols::Symbol;

/// One daily bar as the source gave it (prices not adjusted by us).
#[derive(Debug, Clone, PartialEq)]
pub struct Candle {
    pub symbol: Symbol,
    pub date: NaiveDate,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub adj_close: Option<f64>,
    pub volume: i64,
    /// Split ratio on its ex-date (1 otherwise), when the source has it.
    pub split_coef: Option<f64>,
}

impl Candle {
    /// Same bar values (the key is compared separately). Exact comparison:
    /// both sides went through the same decimal -> f64 parse.
    pub fn same_values(&self, other: &Candle) -> bool {
        self.open == other.open
            && self.high == other.high
            && self.low == other.low
            && self.close == other.close
            && self.adj_close == other.adj_close
            && self.volume == other.volume
            && self.split_coef.unwrap_or(1.0) == other.split_coef.unwrap_or(1.0)
    }
}

/// A flat bar of symbol X on 2024-01-`day` (unit tests).
#[cfg(test)]
pub(crate) fn test_bar(day: u32, close: f64) -> Candle {
    Candle {
        symbol: Symbol::parse("X").expect("valid symbol"),
        date: NaiveDate::from_ymd_opt(2024, 1, day).expect("valid day"),
        open: close,
        high: close,
        low: close,
        close,
        adj_close: None,
        volume: 1,
        split_coef: None,
    }
}

/// Where a stored candle came from (the `candles.source` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CandleSource {
    /// `ta-signals import` of a file.
    Import,
    Yahoo,
    TwelveData,
    Finnhub,
}

impl CandleSource {
    pub const ALL: [CandleSource; 4] = [
        CandleSource::Import,
        CandleSource::Yahoo,
        CandleSource::TwelveData,
        CandleSource::Finnhub,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CandleSource::Import => "import",
            CandleSource::Yahoo => "yahoo",
            CandleSource::TwelveData => "twelvedata",
            CandleSource::Finnhub => "finnhub",
        }
    }

    /// A source by name, case-insensitive. `FINNHUB_LOCAL` — the name
    /// earlier tools gave their local table of Finnhub candles — is Finnhub.
    pub fn parse(raw: &str) -> Option<CandleSource> {
        let name = raw.trim().to_ascii_lowercase();
        match name.as_str() {
            "finnhub_local" => Some(CandleSource::Finnhub),
            _ => CandleSource::ALL.into_iter().find(|s| s.as_str() == name),
        }
    }
}

impl std::fmt::Display for CandleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::CandleSource;

    #[test]
    fn source_names_round_trip_and_finnhub_local_is_finnhub() {
        for source in CandleSource::ALL {
            assert_eq!(CandleSource::parse(source.as_str()), Some(source));
        }
        assert_eq!(CandleSource::parse("FINNHUB_LOCAL"), Some(CandleSource::Finnhub));
        assert_eq!(CandleSource::parse("Yahoo"), Some(CandleSource::Yahoo));
        assert_eq!(CandleSource::parse("bloomberg"), None);
    }
}
