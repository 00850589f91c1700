//! Features of a symbol *relative to its watchlist on the same date*: a
//! daily top-K is a cross-sectional choice, and an oscillator's level
//! means little without the market's. Computed from the rows of one scan
//! date only — every input is known at that date's close — so no later
//! row can change them (a test in this module builds the same dates with
//! and without a future and compares).
//!
//! - `xs_rank_*`: the percentile rank in (0 … 1) of a feature among the
//!   date's symbols (average ranks for ties; 0.5 for a lone symbol);
//! - `market_ret_5d`, `market_ret_20d`: the median return of the date's
//!   symbols; `market_breadth_sma50`: the share trading above their SMA50;
//! - `rel_strength_20d`: the symbol's 20-day return less the median.

use super::{Features, N_BASE_NUMERIC, NUMERIC_FEATURES};
use crate::models::metrics::ranks;

// The cross-sectional features are `NUMERIC_FEATURES[N_BASE_NUMERIC..]`,
// filled below in that order.

/// Index of a base feature by name.
fn base(name: &str) -> usize {
    NUMERIC_FEATURES[..N_BASE_NUMERIC]
        .iter()
        .position(|n| *n == name)
        .expect("a base feature")
}

/// Fill the cross-sectional features of one date's rows (every base
/// feature defined).
pub fn apply(day: &mut [&mut Features]) {
    if day.is_empty() {
        return;
    }
    let column = |day: &[&mut Features], name: &str| -> Vec<f64> {
        let i = base(name);
        day.iter().map(|f| f.numeric(i).unwrap_or(f64::NAN)).collect()
    };
    let ret_5 = column(day, "ret_5d");
    let ret_20 = column(day, "ret_20d");
    let ranked: Vec<Vec<f64>> = ["ret_5d", "ret_20d", "volatility_20d", "rsi_14", "volume_ratio_20"]
        .iter()
        .map(|name| percentile_ranks(&column(day, name)))
        .collect();
    let (median_5, median_20) = (median(&ret_5), median(&ret_20));
    let above = column(day, "price_over_sma50").iter().filter(|x| **x > 1.0).count();
    let breadth = above as f64 / day.len() as f64;
    for (j, f) in day.iter_mut().enumerate() {
        let values = [
            ranked[0][j],
            ranked[1][j],
            ranked[2][j],
            ranked[3][j],
            ranked[4][j],
            median_5,
            median_20,
            breadth,
            ret_20[j] - median_20,
        ];
        for (k, v) in values.into_iter().enumerate() {
            f.set_numeric(N_BASE_NUMERIC + k, v);
        }
    }
}

/// (rank − 1) / (n − 1) of average ranks; 0.5 for a single value.
fn percentile_ranks(xs: &[f64]) -> Vec<f64> {
    if xs.len() < 2 {
        return vec![0.5; xs.len()];
    }
    let n = (xs.len() - 1) as f64;
    ranks(xs).into_iter().map(|r| (r - 1.0) / n).collect()
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candles::Candle;
    use crate::features::{N_CATEGORICAL, N_NUMERIC, Snapshot, snapshots};
    use crate::labels::Barrier;
    use crate::symbols::Symbol;
    use chrono::NaiveDate;

    fn features(ret_5d: f64, ret_20d: f64, rsi: f64, above_sma50: bool) -> Features {
        let mut numeric = [Some(1.0); N_NUMERIC];
        numeric[base("ret_5d")] = Some(ret_5d);
        numeric[base("ret_20d")] = Some(ret_20d);
        numeric[base("rsi_14")] = Some(rsi);
        numeric[base("price_over_sma50")] = Some(if above_sma50 { 1.1 } else { 0.9 });
        Features::new(numeric, [Some("weak"); N_CATEGORICAL])
    }

    fn value(f: &Features, name: &str) -> f64 {
        f.numeric(NUMERIC_FEATURES.iter().position(|n| *n == name).unwrap())
            .unwrap()
    }

    #[test]
    fn ranks_medians_and_breadth_by_hand() {
        let mut rows = [
            features(0.01, 0.10, 30.0, true),
            features(-0.02, 0.00, 50.0, false),
            features(0.03, 0.04, 50.0, true),
            features(0.00, -0.02, 70.0, false),
        ];
        let mut day: Vec<&mut Features> = rows.iter_mut().collect();
        apply(&mut day);
        // ret_5d order: −.02, .00, .01, .03 → ranks 3, 1, 4, 2 → (r−1)/3.
        let r5: Vec<f64> = rows.iter().map(|f| value(f, "xs_rank_ret_5d")).collect();
        assert_eq!(r5, [2.0 / 3.0, 0.0, 1.0, 1.0 / 3.0]);
        // RSI ties at 50 share rank 2.5 → 0.5.
        let rsi: Vec<f64> = rows.iter().map(|f| value(f, "xs_rank_rsi_14")).collect();
        assert_eq!(rsi, [0.0, 0.5, 0.5, 1.0]);
        // Medians: ret_5d (0 + .01)/2, ret_20d (0 + .04)/2.
        assert!((value(&rows[0], "market_ret_5d") - 0.005).abs() < 1e-15);
        assert!((value(&rows[0], "market_ret_20d") - 0.02).abs() < 1e-15);
        assert_eq!(value(&rows[3], "market_breadth_sma50"), 0.5);
        assert!((value(&rows[0], "rel_strength_20d") - 0.08).abs() < 1e-15);
        assert!(rows.iter().all(|f| f.first_missing().is_none()));
        let mut alone = [features(0.01, 0.1, 40.0, true)];
        apply(&mut alone.iter_mut().collect::<Vec<_>>());
        assert_eq!(value(&alone[0], "xs_rank_ret_20d"), 0.5);
        assert_eq!(value(&alone[0], "rel_strength_20d"), 0.0);
    }

    /// Three symbols' candles with different paths.
    fn candles(symbol: &str, n: usize, phase: f64) -> Vec<Candle> {
        (0..n)
            .map(|i| {
                let c = 50.0 + 10.0 * ((i as f64) * 0.11 + phase).sin() + i as f64 * 0.02;
                Candle {
                    symbol: Symbol::parse(symbol).unwrap(),
                    date: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap() + chrono::Days::new(i as u64),
                    open: c * 0.995,
                    high: c * 1.02,
                    low: c * 0.98,
                    close: c,
                    adj_close: None,
                    volume: 1000 + (i as i64 * 37) % 500,
                    split_coef: None,
                }
            })
            .collect()
    }

    /// Cross-sectional features of every date on which all symbols have
    /// every base feature.
    fn by_date(all: &[Vec<Candle>]) -> Vec<Snapshot> {
        let barrier = Barrier::fixed(5, 0.05, 0.04);
        let mut rows: Vec<Snapshot> = all.iter().flat_map(|c| snapshots(c, &barrier)).collect();
        rows.retain(|s| s.features.first_missing_base().is_none());
        rows.sort_by(|a, b| a.date.cmp(&b.date).then(a.symbol.as_str().cmp(b.symbol.as_str())));
        crate::features::fill_cross_section(&mut rows, crate::features::Families::NONE);
        rows
    }

    #[test]
    fn no_future_row_changes_a_past_feature() {
        let full: Vec<Vec<Candle>> = ["AAA", "BBB", "CCC"]
            .iter()
            .enumerate()
            .map(|(k, s)| candles(s, 400, k as f64))
            .collect();
        let cut: Vec<Vec<Candle>> = full.iter().map(|c| c[..330].to_vec()).collect();
        let (a, b) = (by_date(&full), by_date(&cut));
        let last = cut[0][329].date;
        let past: Vec<&Snapshot> = a.iter().filter(|s| s.date <= last).collect();
        assert_eq!(past.len(), b.len());
        assert!(b.len() > 100, "{} rows", b.len());
        for (x, y) in past.iter().zip(&b) {
            assert_eq!((x.date, &x.symbol), (y.date, &y.symbol));
            assert_eq!(x.features, y.features, "{} {}", x.symbol, x.date);
        }
    }
}
