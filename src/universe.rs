//! The tradeable universe: which symbols a trader could actually buy on a
//! date, judged from what was known at that date's close.
//!
//! A symbol is tradeable on bar `t` when its close is at least
//! `min_price` and the median traded value (close × volume) of its last
//! [`VALUE_WINDOW`] bars through `t` is at least `min_traded_value`. The
//! median, not the mean: one block trade must not make a dead stock look
//! liquid. Fewer than [`VALUE_WINDOW`] bars is not tradeable (no evidence
//! yet). Untradeable symbols still belong to the market their date's
//! cross-sectional features describe; they are never picked, never count
//! in a baseline and (by default) never train.

use serde::{Deserialize, Serialize};

/// Bars of traded value the median looks at.
pub const VALUE_WINDOW: usize = 20;

/// The thresholds, in the watchlist's currency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UniverseRule {
    pub min_price: f64,
    pub min_traded_value: f64,
}

impl UniverseRule {
    /// Every symbol is tradeable.
    pub const ALL: UniverseRule = UniverseRule {
        min_price: 0.0,
        min_traded_value: 0.0,
    };

    /// Whether each bar of a symbol is tradeable (`close` and `volume` in
    /// date order, as quoted).
    pub fn tradeable(&self, close: &[f64], volume: &[f64]) -> Vec<bool> {
        if *self == UniverseRule::ALL {
            return vec![true; close.len()];
        }
        let mut out = Vec::with_capacity(close.len());
        let mut window: Vec<f64> = Vec::with_capacity(VALUE_WINDOW);
        for t in 0..close.len() {
            if t + 1 < VALUE_WINDOW {
                out.push(false);
                continue;
            }
            window.clear();
            window.extend((t + 1 - VALUE_WINDOW..=t).map(|i| close[i] * volume[i]));
            out.push(close[t] >= self.min_price && median(&mut window) >= self.min_traded_value);
        }
        out
    }
}

/// The median of a non-empty window (reorders it); NaN sorts last.
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        0.5 * (xs[m - 1] + xs[m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_crossed_by_hand() {
        let rule = UniverseRule {
            min_price: 1.0,
            min_traded_value: 1000.0,
        };
        // 25 bars: price 2 throughout except bar 22 (0.9); volume 400 for
        // the first 10 bars, then 600: traded value 800 then 1200.
        let close: Vec<f64> = (0..25).map(|t| if t == 22 { 0.9 } else { 2.0 }).collect();
        let volume: Vec<f64> = (0..25).map(|t| if t < 10 { 400.0 } else { 600.0 }).collect();
        let flags = rule.tradeable(&close, &volume);
        // Bars 0..=18: fewer than 20 bars of evidence.
        assert!(flags[..19].iter().all(|f| !f));
        // Bar 19: window 0..=19 holds 10 values of 800 and 10 of 1200:
        // median (800 + 1200)/2 = 1000, at the threshold: tradeable.
        assert!(flags[19]);
        // Bar 20: 9 × 800, 11 × 1200: median 1200.
        assert!(flags[20] && flags[21]);
        // Bar 22 closes under min_price (value 0.9·600 = 540 joins the window).
        assert!(!flags[22]);
        assert!(flags[23] && flags[24]);
        // A thinner stock: median 800 < 1000 on bar 19 with 11 × 800.
        let volume: Vec<f64> = (0..25).map(|t| if t < 11 { 400.0 } else { 600.0 }).collect();
        assert!(!rule.tradeable(&close, &volume)[19]);
        assert!(UniverseRule::ALL.tradeable(&close, &volume).iter().all(|f| *f));
    }

    #[test]
    fn one_block_trade_does_not_make_a_stock_liquid() {
        let rule = UniverseRule {
            min_price: 1.0,
            min_traded_value: 1000.0,
        };
        let close = vec![5.0; 30];
        let mut volume = vec![10.0; 30];
        volume[25] = 1e9;
        assert!(rule.tradeable(&close, &volume).iter().all(|f| !f));
    }
}
