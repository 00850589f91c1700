//! Books that try to control drawdown, built from the plain top-K book and
//! reported beside it (never judged by the gate, which reads the plain
//! book's per-date excess):
//!
//! - `regime`: the same trades, except that no top-K position is opened
//!   on a scan date whose market breadth (the share of the date's symbols
//!   above their SMA50, known at its close) is under [`BREADTH_FLOOR`];
//!   that capital stays in cash.
//! - `vol_target`: the plain book's return on each session scaled by
//!   min(1, [`VOL_TARGET`] / σ̂), σ̂ the annualised standard deviation of
//!   the plain book's previous [`VOL_WINDOW`] session returns (known
//!   before the session opens); fully invested until that many sessions
//!   have passed. Each change of scale trades the open positions: it
//!   costs |sₜ − sₜ₋₁| × the session's exposure × the mean cost of a
//!   side of the book's trades.
//!
//! Both thresholds were set before looking at any result (a half-breadth
//! market, and a 10 % volatility budget, about the plain book's typical
//! level), not tuned.

use serde::Serialize;

use super::book::{self, Position};
use super::stats::{SeriesStats, series_stats};

pub const BREADTH_FLOOR: f64 = 0.5;
pub const VOL_TARGET: f64 = 0.10;
pub const VOL_WINDOW: usize = 20;

/// The overlays' daily-series figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlays {
    pub regime: SeriesStats,
    /// Scan dates on which the regime filter opened nothing.
    pub regime_dates_off: usize,
    pub vol_target: SeriesStats,
    /// Mean scale the volatility target applied.
    pub vol_target_mean_scale: f64,
}

/// The overlays of a top-K book: `positions` its trades with their scan
/// day, `breadth` each scan day's breadth (NaN: unknown, kept), `plain`
/// the plain book over `calendar`.
pub fn overlays(
    calendar: &[chrono::NaiveDate],
    positions: &[(u32, Position)],
    breadth: &[f64],
    plain: &book::Book,
) -> Overlays {
    let risk_on = |day: u32| {
        breadth
            .get(day as usize)
            .is_none_or(|b| b.is_nan() || *b >= BREADTH_FLOOR)
    };
    let kept: Vec<Position> = positions.iter().filter(|(d, _)| risk_on(*d)).map(|(_, p)| *p).collect();
    let regime = book::mark_to_market(calendar, &kept);
    let sides = positions.len().max(1) as f64;
    let side_cost = positions.iter().map(|(_, p)| p.entry_cost).sum::<f64>() / sides;
    let scales = vol_scales(&plain.returns);
    let scaled: Vec<f64> = (0..scales.len())
        .map(|s| {
            let before = if s == 0 { 1.0 } else { scales[s - 1] };
            let rebalance = (scales[s] - before).abs() * plain.exposure[s] * side_cost;
            plain.returns[s] * scales[s] - rebalance
        })
        .collect();
    Overlays {
        regime: series_stats(&regime.returns),
        regime_dates_off: (0..breadth.len() as u32).filter(|&d| !risk_on(d)).count(),
        vol_target: series_stats(&scaled),
        vol_target_mean_scale: scales.iter().sum::<f64>() / scales.len().max(1) as f64,
    }
}

/// Each session's exposure scale from the returns before it.
fn vol_scales(returns: &[f64]) -> Vec<f64> {
    (0..returns.len())
        .map(|s| {
            if s < VOL_WINDOW {
                return 1.0;
            }
            let window = &returns[s - VOL_WINDOW..s];
            let mean = window.iter().sum::<f64>() / VOL_WINDOW as f64;
            let var = window.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (VOL_WINDOW - 1) as f64;
            let sigma = (var * 252.0).sqrt();
            if sigma > 0.0 {
                (VOL_TARGET / sigma).min(1.0)
            } else {
                1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn the_volatility_scale_by_hand() {
        // 20 sessions alternating ±2 %: sd (n − 1) = 0.02·√(20/19),
        // annualised ×√252; the 21st session is scaled by 0.10 / that.
        let mut r: Vec<f64> = (0..20).map(|i| if i % 2 == 0 { 0.02 } else { -0.02 }).collect();
        r.push(0.01);
        let s = vol_scales(&r);
        assert!(s[..20].iter().all(|&x| x == 1.0));
        let sigma = 0.02 * (20.0f64 / 19.0).sqrt() * 252f64.sqrt();
        assert!((s[20] - 0.10 / sigma).abs() < 1e-12, "{}", s[20]);
        // A calm book is never levered up.
        assert_eq!(vol_scales(&[0.0001; 30])[25], 1.0);
    }

    #[test]
    fn a_change_of_scale_pays_the_side_cost_on_the_exposure() {
        // 21 calm sessions, then 20 of ±3 %: the scale falls from session
        // 22 on; each change costs |Δs| × exposure × 0.1 %.
        let d0 = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap();
        let cal: Vec<NaiveDate> = (0..41).map(|i| d0 + chrono::Days::new(i)).collect();
        let mut returns = vec![0.0; 21];
        returns.extend((0..20).map(|i| if i % 2 == 0 { 0.03 } else { -0.03 }));
        let plain = book::Book {
            returns: returns.clone(),
            exposure: vec![0.5; 41],
            entered: vec![0.0; 41],
            open_positions: vec![0; 41],
        };
        let marks: &'static [(NaiveDate, f64)] = Box::leak(Box::new([(cal[1], 0.0)]));
        let one = Position {
            marks,
            entry_price: 1.0,
            exit_price: 1.0,
            entry_cost: 0.001,
            exit_cost: 0.001,
            weight: 0.0,
        };
        let o = overlays(&cal, &[(0, one)], &[], &plain);
        let s = vol_scales(&returns);
        let mut equity = 1.0;
        for i in 0..41 {
            let before = if i == 0 { 1.0 } else { s[i - 1] };
            equity *= 1.0 + returns[i] * s[i] - (s[i] - before).abs() * 0.5 * 0.001;
        }
        assert!(s[40] < 1.0 && s[39] != s[40]);
        assert!((o.vol_target.total_return - (equity - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn the_regime_filter_drops_the_low_breadth_dates_only() {
        let d = |day| NaiveDate::from_ymd_opt(2021, 3, day).unwrap();
        let cal = [d(1), d(2), d(3)];
        let a: &'static [(NaiveDate, f64)] = Box::leak(Box::new([(d(2), 0.0)]));
        let b: &'static [(NaiveDate, f64)] = Box::leak(Box::new([(d(3), 0.0)]));
        let pos = |marks, exit| Position {
            marks,
            entry_price: 100.0,
            exit_price: exit,
            entry_cost: 0.0,
            exit_cost: 0.0,
            weight: 0.5,
        };
        // Day 0 (breadth .7) buys A, day 1 (breadth .3) would buy B.
        let positions = [(0, pos(a, 110.0)), (1, pos(b, 90.0))];
        let plain = book::mark_to_market(&cal, &positions.map(|(_, p)| p));
        for (r, want) in plain.returns.iter().zip([0.0, 0.05, -0.05]) {
            assert!((r - want).abs() < 1e-12, "{:?}", plain.returns);
        }
        let o = overlays(&cal, &positions, &[0.7, 0.3], &plain);
        assert_eq!(o.regime_dates_off, 1);
        assert!((o.regime.total_return - 0.05).abs() < 1e-12, "{:?}", o.regime);
        assert!((o.vol_target.total_return - (1.05 * 0.95 - 1.0)).abs() < 1e-12);
    }
}
