//! Split adjustment: prices before each split are divided by the cumulative
//! ratio of the later splits (volumes multiplied), so that a 4:1 split is
//! not a −75 % day. Where no `split_coef` is known, prices are used as
//! stored (most vendors already adjust).

use super::Candle;

/// One symbol's bars, split-adjusted, as plain columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdjustedBars {
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
}

impl AdjustedBars {
    pub fn len(&self) -> usize {
        self.close.len()
    }

    pub fn is_empty(&self) -> bool {
        self.close.is_empty()
    }
}

/// Adjust `candles` (one symbol, date order) for the splits recorded in it.
pub fn adjust(candles: &[Candle]) -> AdjustedBars {
    let n = candles.len();
    let mut factor = vec![1.0; n];
    let mut later = 1.0;
    for i in (0..n).rev() {
        factor[i] = later;
        // The ratio applies from its ex-date on: bars before it are divided.
        later *= split_ratio(&candles[i]);
    }
    let mut out = AdjustedBars::default();
    for (c, f) in candles.iter().zip(factor) {
        out.open.push(c.open / f);
        out.high.push(c.high / f);
        out.low.push(c.low / f);
        out.close.push(c.close / f);
        out.volume.push(c.volume as f64 * f);
    }
    out
}

/// Which prices labels (trade outcomes) are measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceAdjust {
    /// Split-adjusted prices (dividends not counted).
    None,
    /// Where every bar of a symbol has `adj_close`, its OHLC scaled by
    /// `adj_close / close`: total-return prices, so a dividend paid while a
    /// trade is open counts as the holder's (and an ex-dividend drop is not
    /// a loss). Otherwise split-adjusted prices.
    #[default]
    AdjClose,
}

/// The bars labels are measured on: with [`PriceAdjust::AdjClose`] and an
/// `adj_close` on every bar, the OHLC scaled bar by bar to it; else `None`
/// (use the split-adjusted bars).
pub fn total_return_bars(candles: &[Candle], mode: PriceAdjust) -> Option<AdjustedBars> {
    if mode == PriceAdjust::None {
        return None;
    }
    let factors: Option<Vec<f64>> = candles.iter().map(total_return_factor).collect();
    let factors = factors.filter(|f| !f.is_empty())?;
    let mut out = AdjustedBars::default();
    for (c, f) in candles.iter().zip(factors) {
        out.open.push(c.open * f);
        out.high.push(c.high * f);
        out.low.push(c.low * f);
        out.close.push(c.adj_close.unwrap_or(c.close * f));
        out.volume.push(c.volume as f64);
    }
    Some(out)
}

/// `adj_close / close` of a bar that has a usable `adj_close`.
fn total_return_factor(c: &Candle) -> Option<f64> {
    let adj = c.adj_close?;
    (adj.is_finite() && adj > 0.0 && c.close > 0.0).then(|| adj / c.close)
}

/// Whether a bar has a usable `adj_close`: labels use total-return prices
/// when every bar of the symbol has one.
pub fn has_total_return(c: &Candle) -> bool {
    total_return_factor(c).is_some()
}

/// The split ratio of a bar; 1 when unknown or not a split day.
pub fn split_ratio(c: &Candle) -> f64 {
    match c.split_coef {
        Some(r) if r.is_finite() && r > 0.0 => r,
        _ => 1.0,
    }
}

/// Whether any bar records a split (which changes the adjusted history of
/// every earlier bar).
pub fn has_split(candles: &[Candle]) -> bool {
    candles.iter().any(|c| split_ratio(c) != 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbols::Symbol;
    use chrono::NaiveDate;

    #[test]
    fn total_return_bars_scale_each_bar_to_its_adjusted_close() {
        // A 2 % dividend goes ex on day 3: the raw close drops 100 → 98,
        // the vendor's adj_close before it is scaled by 0.98.
        let raw = [(1, 100.0, 98.0), (2, 100.0, 98.0), (3, 98.0, 98.0), (4, 99.0, 99.0)];
        let candles: Vec<Candle> = raw
            .iter()
            .map(|&(d, close, adj)| Candle {
                adj_close: Some(adj),
                open: close * 1.01,
                ..bar(d, close, 10, None)
            })
            .collect();
        let tr = total_return_bars(&candles, PriceAdjust::AdjClose).unwrap();
        assert_eq!(tr.close, [98.0, 98.0, 98.0, 99.0], "no loss on the ex-date");
        assert!((tr.open[0] - 98.0 * 1.01).abs() < 1e-12);
        assert_eq!(total_return_bars(&candles, PriceAdjust::None), None);
        // One bar without adj_close: the symbol falls back to split adjustment.
        let mut gap = candles.clone();
        gap[2].adj_close = None;
        assert_eq!(total_return_bars(&gap, PriceAdjust::AdjClose), None);
    }

    fn bar(day: u32, close: f64, volume: i64, split: Option<f64>) -> Candle {
        Candle {
            symbol: Symbol::parse("X").unwrap(),
            date: NaiveDate::from_ymd_opt(2020, 8, day).unwrap(),
            open: close,
            high: close,
            low: close,
            close,
            adj_close: None,
            volume,
            split_coef: split,
        }
    }

    #[test]
    fn four_to_one_split_is_not_a_crash() {
        let candles = [
            bar(27, 400.0, 10, Some(1.0)),
            bar(28, 500.0, 10, Some(1.0)),
            bar(31, 125.0, 40, Some(4.0)),
            bar(30, 130.0, 40, None),
        ];
        let adj = adjust(&candles);
        assert_eq!(adj.close, vec![100.0, 125.0, 125.0, 130.0]);
        assert_eq!(adj.volume, vec![40.0, 40.0, 40.0, 40.0]);
        assert!(has_split(&candles));
        assert!(!has_split(&candles[..2]));
    }

    #[test]
    fn two_splits_compound() {
        let candles = [
            bar(3, 600.0, 1, None),
            bar(4, 300.0, 2, Some(2.0)),
            bar(5, 100.0, 6, Some(3.0)),
        ];
        let adj = adjust(&candles);
        assert_eq!(adj.close, vec![100.0, 100.0, 100.0]);
        assert_eq!(adj.volume, vec![6.0, 6.0, 6.0]);
    }
}
