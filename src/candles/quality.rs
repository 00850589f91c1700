//! The data-quality rules of SPEC §2.1, applied on import and again before
//! any computation.
//!
//! A row that breaks a rule is quarantined (kept out of the database and
//! written to the quarantine report with the rule's name); two rules only
//! flag a row, which is then kept and listed as a warning: a weekend date
//! (exchanges hold special sessions) and a one-day move that looks like an
//! unadjusted split.

use chrono::{Datelike, Weekday};
use serde::Serialize;

use super::Candle;

/// The rule a row broke. `as_str` is the name written to reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    InvalidSymbol,
    MissingField,
    UnparseableField,
    NonFinite,
    NonPositivePrice,
    NegativeVolume,
    HighBelowOpenClose,
    LowAboveOpenClose,
    DuplicateConflict,
    ConflictsWithStored,
    WeekendDate,
    SuspectedSplit,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::InvalidSymbol => "invalid_symbol",
            Rule::MissingField => "missing_field",
            Rule::UnparseableField => "unparseable_field",
            Rule::NonFinite => "non_finite",
            Rule::NonPositivePrice => "non_positive_price",
            Rule::NegativeVolume => "negative_volume",
            Rule::HighBelowOpenClose => "high_below_open_close",
            Rule::LowAboveOpenClose => "low_above_open_close",
            Rule::DuplicateConflict => "duplicate_conflict",
            Rule::ConflictsWithStored => "conflicts_with_stored",
            Rule::WeekendDate => "weekend_date",
            Rule::SuspectedSplit => "suspected_split",
        }
    }

    /// Flags keep the row; every other rule quarantines it.
    pub fn severity(self) -> Severity {
        match self {
            Rule::WeekendDate | Rule::SuspectedSplit => Severity::Flagged,
            _ => Severity::Quarantined,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Quarantined,
    Flagged,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Quarantined => "quarantined",
            Severity::Flagged => "flagged",
        }
    }
}

/// One offence: a line of the quarantine report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offence {
    /// File the row came from (`database` for stored rows).
    pub source: String,
    /// 1-based line (CSV, header = line 1) or row number (Parquet).
    pub line: u64,
    pub symbol: String,
    pub date: String,
    pub rule: Rule,
    pub detail: String,
}

impl Offence {
    pub fn severity(&self) -> Severity {
        self.rule.severity()
    }
}

/// Value rules on one parsed bar: non-finite numbers, prices ≤ 0, negative
/// volume, and high/low not enclosing open/close. Returns the first rule
/// broken, with a detail for the report.
pub fn check_values(c: &Candle) -> Option<(Rule, String)> {
    let prices = [("open", c.open), ("high", c.high), ("low", c.low), ("close", c.close)];
    let optional = [("adj_close", c.adj_close), ("split_coef", c.split_coef)];
    let all = prices
        .iter()
        .copied()
        .chain(optional.iter().filter_map(|&(n, v)| v.map(|v| (n, v))));
    for (name, value) in all.clone() {
        if !value.is_finite() {
            return Some((Rule::NonFinite, format!("{name} is {value}")));
        }
    }
    for (name, value) in all {
        if value <= 0.0 {
            return Some((Rule::NonPositivePrice, format!("{name} = {value}")));
        }
    }
    if c.volume < 0 {
        return Some((Rule::NegativeVolume, format!("volume = {}", c.volume)));
    }
    if c.high < c.open.max(c.close) {
        return Some((
            Rule::HighBelowOpenClose,
            format!("high {} < max(open {}, close {})", c.high, c.open, c.close),
        ));
    }
    if c.low > c.open.min(c.close) {
        return Some((
            Rule::LowAboveOpenClose,
            format!("low {} > min(open {}, close {})", c.low, c.open, c.close),
        ));
    }
    None
}

pub fn is_weekend(c: &Candle) -> bool {
    matches!(c.date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Flag one-day moves over `max_move` that look like an unadjusted split.
///
/// `series` is one symbol's candles in date order. A move explained by the
/// bar's own `split_coef` is a recorded split (not flagged). Where the
/// source gives `adj_close` and the adjusted series moves less than
/// `max_move`, the vendor adjusted an event we have no ratio for: flagged.
/// Where the adjusted series moves as much, the move is real (a crash or a
/// jump): not flagged. Without either column nothing can tell a split from
/// a crash, so the move is flagged. Returns (index, detail) pairs.
pub fn suspected_splits(series: &[Candle], max_move: f64) -> Vec<(usize, String)> {
    let mut flags = Vec::new();
    for i in 1..series.len() {
        let (prev, bar) = (&series[i - 1], &series[i]);
        let raw_move = bar.close / prev.close - 1.0;
        if raw_move.abs() <= max_move {
            continue;
        }
        let ratio = bar.split_coef.unwrap_or(1.0);
        if ratio != 1.0 {
            let adjusted = bar.close * ratio / prev.close - 1.0;
            if adjusted.abs() <= max_move {
                continue;
            }
        }
        let detail = match (prev.adj_close, bar.adj_close) {
            (Some(a0), Some(a1)) => {
                let adjusted = a1 / a0 - 1.0;
                if adjusted.abs() > max_move {
                    continue;
                }
                format!(
                    "close moved {:+.1}% but adj_close only {:+.1}%, and no split_coef records it",
                    raw_move * 100.0,
                    adjusted * 100.0
                )
            }
            _ => format!(
                "close moved {:+.1}% in one day; no split_coef or adj_close to tell a split from a crash",
                raw_move * 100.0
            ),
        };
        flags.push((i, detail));
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(day: u32, close: f64) -> Candle {
        crate::candles::test_bar(day, close)
    }

    #[test]
    fn value_rules_in_order() {
        let mut c = bar(2, 10.0);
        assert_eq!(check_values(&c), None);
        c.high = 9.0;
        assert_eq!(check_values(&c).unwrap().0, Rule::HighBelowOpenClose);
        c = bar(2, 10.0);
        c.low = 10.5;
        assert_eq!(check_values(&c).unwrap().0, Rule::LowAboveOpenClose);
        c = bar(2, 10.0);
        c.volume = -1;
        assert_eq!(check_values(&c).unwrap().0, Rule::NegativeVolume);
        c = bar(2, 10.0);
        c.open = 0.0;
        assert_eq!(check_values(&c).unwrap().0, Rule::NonPositivePrice);
        c.close = f64::NAN;
        assert_eq!(check_values(&c).unwrap().0, Rule::NonFinite);
        c = bar(2, 10.0);
        c.adj_close = Some(f64::INFINITY);
        assert_eq!(check_values(&c).unwrap().0, Rule::NonFinite);
    }

    #[test]
    fn weekend_is_detected() {
        assert!(is_weekend(&bar(6, 1.0))); // 2024-01-06 is a Saturday
        assert!(!is_weekend(&bar(5, 1.0)));
    }

    #[test]
    fn recorded_split_is_not_flagged_unexplained_one_is() {
        let mut series = vec![bar(2, 400.0), bar(3, 100.0)];
        series[1].split_coef = Some(4.0);
        assert!(suspected_splits(&series, 0.4).is_empty());
        series[1].split_coef = Some(1.0);
        assert_eq!(suspected_splits(&series, 0.4).len(), 1);
        series[1].split_coef = None;
        assert_eq!(suspected_splits(&series, 0.4)[0].0, 1);
    }

    #[test]
    fn adj_close_tells_a_crash_from_a_split() {
        let mut series = vec![bar(2, 100.0), bar(3, 50.0)];
        // Vendor-adjusted series falls as much: a real crash, not flagged.
        series[0].adj_close = Some(100.0);
        series[1].adj_close = Some(50.0);
        assert!(suspected_splits(&series, 0.4).is_empty());
        // Adjusted series is flat: an unrecorded 2:1 split, flagged.
        series[0].adj_close = Some(50.0);
        assert_eq!(suspected_splits(&series, 0.4).len(), 1);
    }
}
