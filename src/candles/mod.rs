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
