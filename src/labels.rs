//! Triple-barrier labels on one symbol's daily bars. Plain slices in,
//! values out.
//!
//! A score for scan bar `t` exists only after `t`'s close, so by default
//! the trade enters at the **open of `t+1`** ([`Entry::NextOpen`]);
//! [`Entry::Close`] (the close of `t`) is an explicit option for
//! comparison. From the entry price, `up = entry·(1+target)` and
//! `down = entry·(1−stop)` (or `entry ± k·ATR14` with
//! [`BarrierSizing::Atr`], the ATR known at `t`'s close). Bars
//! `t+1 … t+horizon` are looked at in order:
//!
//! 1. a bar that **opens** through a barrier exits at its open — a stop
//!    order fills at the first price there is (worse than the stop), a
//!    limit sell likewise (better than the target). With a next-open entry
//!    the open of `t+1` *is* the entry, so this applies from `t+2` on;
//! 2. otherwise a bar whose low ≤ down exits at `down` with label 0 —
//!    also when its high ≥ up: a daily bar cannot tell which came first,
//!    and the pessimistic order is the honest one;
//! 3. otherwise a bar whose high ≥ up exits at `up` with label 1;
//! 4. neither within the horizon exits at the close of `t+horizon` with
//!    label 0 (`timeout`).
//!
//! The return after costs subtracts each side's cost from the gross
//! return (a first-order approximation of paying the spread and commission
//! on both legs): `bps_per_side` basis points, or half a price tick of the
//! price quoted that day when that is more ([`crate::costs`]). A snapshot is labelable
//! only when all `horizon` future bars exist and every price it reads is
//! finite and positive.

use serde::{Deserialize, Serialize};

use crate::costs::TickRule;

/// Where a trade on scan date `t` enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Entry {
    /// The open of the session after the scan date (tradeable: the score
    /// exists before that open).
    #[default]
    NextOpen,
    /// The close of the scan date itself (not tradeable after a score that
    /// needs that close; kept for comparison).
    Close,
}

impl Entry {
    pub fn as_str(self) -> &'static str {
        match self {
            Entry::NextOpen => "next-open",
            Entry::Close => "close",
        }
    }
}

/// How far the barriers sit from the entry.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BarrierSizing {
    /// `target` and `stop` fractions of the entry price.
    #[default]
    Fixed,
    /// `k_target·ATR14` above and `k_stop·ATR14` below the entry (ATR of
    /// the scan bar, in the same price units).
    Atr { k_target: f64, k_stop: f64 },
}

/// The label rules: barriers, entry and costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Barrier {
    pub horizon: usize,
    /// Profit target as a fraction (0.05 = +5 %), with fixed sizing.
    pub target: f64,
    /// Stop loss as a fraction (0.04 = −4 %), with fixed sizing.
    pub stop: f64,
    /// Models trained before the entry rule existed entered at the close.
    #[serde(default = "legacy_entry")]
    pub entry: Entry,
    #[serde(default)]
    pub sizing: BarrierSizing,
    /// Costs per side (commission + half spread + slippage) in basis points.
    #[serde(default)]
    pub cost_bps_per_side: f64,
    /// The price tick whose half is the least a side can cost.
    #[serde(default)]
    pub tick: TickRule,
}

fn legacy_entry() -> Entry {
    Entry::Close
}

impl Barrier {
    /// Fixed barriers entering at the next open, without costs.
    pub fn fixed(horizon: usize, target: f64, stop: f64) -> Barrier {
        Barrier {
            horizon,
            target,
            stop,
            entry: Entry::NextOpen,
            sizing: BarrierSizing::Fixed,
            cost_bps_per_side: 0.0,
            tick: TickRule::None,
        }
    }

    /// The round-trip commission as a fraction of the entry price (the
    /// tick floor aside).
    pub fn round_trip_cost(&self) -> f64 {
        2.0 * self.cost_bps_per_side / 10_000.0
    }

    /// The expected after-cost return of a trade the models give
    /// probability `p` of reaching the target: `p·up − (1−p)·down − costs`
    /// with the barriers' distances as fractions of the price (timeouts
    /// counted as stops: a pessimistic simplification). With fixed barriers
    /// it orders symbols exactly as `p` does; with ATR barriers a volatile
    /// symbol's wider target weighs in.
    pub fn expected_return(&self, p: f64, atr_over_close: Option<f64>) -> Option<f64> {
        let (up, down) = self.prices(1.0, atr_over_close)?;
        Some(p * (up - 1.0) - (1.0 - p) * (1.0 - down) - self.round_trip_cost())
    }

    /// The barrier prices `(up, down)` for an entry price and the scan
    /// bar's ATR (needed only with ATR sizing).
    pub fn prices(&self, entry: f64, atr: Option<f64>) -> Option<(f64, f64)> {
        match self.sizing {
            BarrierSizing::Fixed => Some((entry * (1.0 + self.target), entry * (1.0 - self.stop))),
            BarrierSizing::Atr { k_target, k_stop } => {
                let atr = atr.filter(|a| a.is_finite() && *a > 0.0)?;
                Some((entry + k_target * atr, entry - k_stop * atr))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Target,
    Stop,
    Timeout,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Target => "target",
            ExitReason::Stop => "stop",
            ExitReason::Timeout => "timeout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Label {
    /// 1 when the target was hit first, else 0.
    pub label: u8,
    pub exit_reason: ExitReason,
    /// Bars from the scan bar to the exit bar (1..=horizon).
    pub bars_to_exit: u32,
    pub entry_price: f64,
    pub exit_price: f64,
    /// exit / entry − 1.
    pub gross_return: f64,
    /// The gross return less both sides' costs.
    pub realized_return: f64,
    /// Cost of the entry side and of the exit side, as fractions.
    pub entry_cost: f64,
    pub exit_cost: f64,
}

/// One symbol's bars as columns (date order, split-adjusted).
#[derive(Debug, Clone, Copy)]
pub struct Bars<'a> {
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    /// The close as the exchange quoted it, where the label prices are
    /// adjusted (the tick floor is a fraction of the quoted price);
    /// `None`: the label prices are the quotes.
    pub quoted_close: Option<&'a [f64]>,
}

impl Bars<'_> {
    fn len(&self) -> usize {
        self.close.len()
    }

    /// Every price of bar `i` is finite and positive.
    fn sane(&self, i: usize) -> bool {
        [self.open[i], self.high[i], self.low[i], self.close[i]]
            .iter()
            .all(|p| p.is_finite() && *p > 0.0)
    }
}

/// The label of scan bar `t`, or `None` when its horizon is not complete,
/// a price it reads is not positive, or ATR sizing has no ATR.
pub fn label_at(bars: &Bars, t: usize, atr: Option<f64>, barrier: &Barrier) -> Option<Label> {
    let h = barrier.horizon;
    if h == 0 || t + h >= bars.len() || !(t..=t + h).all(|i| bars.sane(i)) {
        return None;
    }
    let (entry, entry_bar) = match barrier.entry {
        Entry::NextOpen => (bars.open[t + 1], t + 1),
        Entry::Close => (bars.close[t], t),
    };
    let (up, down) = barrier.prices(entry, atr)?;
    // A fill on bar i at `price` (label units) was quoted at price times
    // that bar's quoted/label ratio: the tick floor is a share of the quote.
    let quoted = |i: usize, price: f64| bars.quoted_close.map_or(price, |q| price * q[i] / bars.close[i]);
    let side_cost = |i: usize, price: f64| barrier.tick.side_cost(barrier.cost_bps_per_side, quoted(i, price));
    let entry_cost = side_cost(entry_bar, entry);
    let exit = |label: u8, exit_reason: ExitReason, step: usize, price: f64| {
        let gross_return = price / entry - 1.0;
        let exit_cost = side_cost(t + step, price);
        Label {
            label,
            exit_reason,
            bars_to_exit: step as u32,
            entry_price: entry,
            exit_price: price,
            gross_return,
            realized_return: gross_return - entry_cost - exit_cost,
            entry_cost,
            exit_cost,
        }
    };
    for step in 1..=h {
        let i = t + step;
        // The entry bar's open is the fill itself, not a gap past a barrier.
        let gap_possible = !(step == 1 && barrier.entry == Entry::NextOpen);
        if gap_possible && bars.open[i] <= down {
            return Some(exit(0, ExitReason::Stop, step, bars.open[i]));
        }
        if gap_possible && bars.open[i] >= up {
            return Some(exit(1, ExitReason::Target, step, bars.open[i]));
        }
        if bars.low[i] <= down {
            return Some(exit(0, ExitReason::Stop, step, down));
        }
        if bars.high[i] >= up {
            return Some(exit(1, ExitReason::Target, step, up));
        }
    }
    Some(exit(0, ExitReason::Timeout, h, bars.close[t + h]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Barrier = Barrier {
        horizon: 3,
        target: 0.05,
        stop: 0.04,
        entry: Entry::NextOpen,
        sizing: BarrierSizing::Fixed,
        cost_bps_per_side: 0.0,
        tick: TickRule::None,
    };

    /// The label of bar 0 of bars given as (open, high, low, close).
    fn label_of(bars: &[(f64, f64, f64, f64)], barrier: &Barrier) -> Option<Label> {
        let col = |f: fn(&(f64, f64, f64, f64)) -> f64| bars.iter().map(f).collect::<Vec<f64>>();
        let (o, h, l, c) = (col(|b| b.0), col(|b| b.1), col(|b| b.2), col(|b| b.3));
        let bars = Bars {
            open: &o,
            high: &h,
            low: &l,
            close: &c,
            quoted_close: None,
        };
        label_at(&bars, 0, Some(2.0), barrier)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    /// Scan bar closes at 90, the next session opens at 100 (the entry):
    /// barriers at 105 and 96.
    const SCAN: (f64, f64, f64, f64) = (90.0, 90.0, 90.0, 90.0);

    #[test]
    fn entry_is_the_next_open_and_barriers_are_from_it() {
        let l = label_of(
            &[
                SCAN,
                (100.0, 104.0, 99.0, 103.0),
                (103.0, 105.0, 102.0, 104.0),
                (104.0, 104.0, 100.0, 101.0),
            ],
            &B,
        )
        .unwrap();
        assert_eq!((l.label, l.exit_reason, l.bars_to_exit), (1, ExitReason::Target, 2));
        assert_eq!((l.entry_price, l.exit_price), (100.0, 105.0));
        assert!(close(l.gross_return, 0.05));
        // With a close entry the same path is a +16.7 % gap through the
        // target on bar 1 (90 → 100 open is above 94.5).
        let c = label_of(
            &[
                SCAN,
                (100.0, 104.0, 99.0, 103.0),
                (103.0, 105.0, 102.0, 104.0),
                (104.0, 104.0, 100.0, 101.0),
            ],
            &Barrier {
                entry: Entry::Close,
                ..B
            },
        )
        .unwrap();
        assert_eq!(
            (c.exit_reason, c.bars_to_exit, c.entry_price, c.exit_price),
            (ExitReason::Target, 1, 90.0, 100.0)
        );
    }

    #[test]
    fn gap_through_the_stop_fills_at_the_open() {
        // Bar 2 opens at 90, below the stop at 96: the fill is 90 (−10 %).
        let l = label_of(
            &[
                SCAN,
                (100.0, 101.0, 98.0, 99.0),
                (90.0, 92.0, 88.0, 91.0),
                (91.0, 92.0, 90.0, 91.0),
            ],
            &B,
        )
        .unwrap();
        assert_eq!((l.label, l.exit_reason, l.bars_to_exit), (0, ExitReason::Stop, 2));
        assert_eq!(l.exit_price, 90.0);
        assert!(close(l.gross_return, -0.10));
    }

    #[test]
    fn gap_through_the_target_fills_at_the_open() {
        // Bar 2 opens at 110, above the target at 105: the fill is 110.
        let l = label_of(
            &[
                SCAN,
                (100.0, 102.0, 99.0, 101.0),
                (110.0, 112.0, 108.0, 111.0),
                (111.0, 112.0, 110.0, 111.0),
            ],
            &B,
        )
        .unwrap();
        assert_eq!((l.label, l.exit_reason, l.bars_to_exit), (1, ExitReason::Target, 2));
        assert_eq!(l.exit_price, 110.0);
        assert!(close(l.gross_return, 0.10));
    }

    #[test]
    fn both_barriers_in_one_bar_is_a_stop_at_the_stop() {
        let l = label_of(
            &[
                SCAN,
                (100.0, 100.5, 99.5, 100.0),
                (100.0, 106.0, 95.0, 100.0),
                (100.0, 100.0, 100.0, 100.0),
            ],
            &B,
        )
        .unwrap();
        assert_eq!(
            (l.label, l.exit_reason, l.bars_to_exit, l.exit_price),
            (0, ExitReason::Stop, 2, 96.0)
        );
    }

    #[test]
    fn the_entry_bar_counts_after_its_open() {
        // The entry bar itself reaches the target (high 105.5 ≥ 105)...
        let l = label_of(
            &[
                SCAN,
                (100.0, 105.5, 99.0, 105.0),
                (105.0, 105.0, 100.0, 101.0),
                (101.0, 101.0, 100.0, 100.0),
            ],
            &B,
        )
        .unwrap();
        assert_eq!(
            (l.exit_reason, l.bars_to_exit, l.exit_price),
            (ExitReason::Target, 1, 105.0)
        );
        // ... or the stop (low 95 ≤ 96), at the stop price, not the open.
        let l = label_of(
            &[
                SCAN,
                (100.0, 101.0, 95.0, 97.0),
                (97.0, 98.0, 97.0, 97.0),
                (97.0, 98.0, 97.0, 97.0),
            ],
            &B,
        )
        .unwrap();
        assert_eq!(
            (l.exit_reason, l.bars_to_exit, l.exit_price),
            (ExitReason::Stop, 1, 96.0)
        );
    }

    #[test]
    fn timeout_books_the_last_close_and_costs_come_off() {
        let bars = [
            SCAN,
            (100.0, 102.0, 99.0, 101.0),
            (101.0, 103.0, 98.0, 102.0),
            (102.0, 104.0, 97.0, 103.0),
        ];
        let l = label_of(&bars, &B).unwrap();
        assert_eq!((l.label, l.exit_reason, l.bars_to_exit), (0, ExitReason::Timeout, 3));
        assert!(close(l.gross_return, 0.03) && close(l.realized_return, 0.03));
        let with_costs = Barrier {
            cost_bps_per_side: 10.0,
            ..B
        };
        let l = label_of(&bars, &with_costs).unwrap();
        assert!(close(l.gross_return, 0.03));
        assert!(close(l.realized_return, 0.03 - 0.002), "{}", l.realized_return);
        assert_eq!((l.entry_cost, l.exit_cost), (0.001, 0.001));
    }

    #[test]
    fn a_cheap_quote_pays_half_a_tick_per_side() {
        // Label prices ×100 of the quotes (an adjusted series): the entry
        // fills at the open 100, quoted 1.00, the exit at the close 103,
        // quoted 1.03; with a 0.01 tick half a tick is 0.5 % and 0.485 %,
        // both over 10 bp.
        let bars = [
            SCAN,
            (100.0, 102.0, 99.0, 101.0),
            (101.0, 103.0, 98.0, 102.0),
            (102.0, 104.0, 97.0, 103.0),
        ];
        let col = |f: fn(&(f64, f64, f64, f64)) -> f64| bars.iter().map(f).collect::<Vec<f64>>();
        let (o, h, l, c) = (col(|b| b.0), col(|b| b.1), col(|b| b.2), col(|b| b.3));
        let quoted: Vec<f64> = c.iter().map(|x| x / 100.0).collect();
        let b = Bars {
            open: &o,
            high: &h,
            low: &l,
            close: &c,
            quoted_close: Some(&quoted),
        };
        let ticked = Barrier {
            cost_bps_per_side: 10.0,
            tick: TickRule::Fixed { size: 0.01 },
            ..B
        };
        let lab = label_at(&b, 0, None, &ticked).unwrap();
        assert_eq!(lab.exit_reason, ExitReason::Timeout);
        assert!(close(lab.entry_cost, 0.005 / 1.0));
        assert!(close(lab.exit_cost, 0.005 / 1.03));
        assert!(close(lab.realized_return, 0.03 - 0.005 - 0.005 / 1.03));
    }

    #[test]
    fn atr_barriers_scale_with_volatility() {
        // ATR 2 (see label_of): k_target 1.5 → up 103, k_stop 1 → down 98.
        let atr = Barrier {
            sizing: BarrierSizing::Atr {
                k_target: 1.5,
                k_stop: 1.0,
            },
            ..B
        };
        let l = label_of(
            &[
                SCAN,
                (100.0, 102.0, 99.0, 101.0),
                (101.0, 103.0, 99.0, 102.0),
                (102.0, 102.0, 100.0, 101.0),
            ],
            &atr,
        )
        .unwrap();
        assert_eq!(
            (l.label, l.exit_reason, l.bars_to_exit, l.exit_price),
            (1, ExitReason::Target, 2, 103.0)
        );
        let bars = [
            SCAN,
            (100.0, 101.0, 97.5, 98.0),
            (98.0, 99.0, 97.0, 98.0),
            (98.0, 99.0, 97.0, 98.0),
        ];
        let l = label_of(&bars, &atr).unwrap();
        assert_eq!((l.exit_reason, l.exit_price), (ExitReason::Stop, 98.0));
        // Without an ATR the snapshot cannot be labeled.
        let col = |f: fn(&(f64, f64, f64, f64)) -> f64| bars.iter().map(f).collect::<Vec<f64>>();
        let (o, h, lo, c) = (col(|b| b.0), col(|b| b.1), col(|b| b.2), col(|b| b.3));
        let b = Bars {
            open: &o,
            high: &h,
            low: &lo,
            close: &c,
            quoted_close: None,
        };
        assert_eq!(label_at(&b, 0, None, &atr), None);
    }

    #[test]
    fn expected_return_by_hand() {
        let b = Barrier {
            cost_bps_per_side: 10.0,
            ..B
        };
        // 0.4·5 % − 0.6·4 % − 0.2 % = −0.6 %.
        assert!((b.expected_return(0.4, None).unwrap() + 0.006).abs() < 1e-15);
        let atr = Barrier {
            sizing: BarrierSizing::Atr {
                k_target: 2.0,
                k_stop: 1.0,
            },
            ..b
        };
        // ATR 3 % of the price: 0.4·6 % − 0.6·3 % − 0.2 % = +0.4 %.
        assert!((atr.expected_return(0.4, Some(0.03)).unwrap() - 0.004).abs() < 1e-15);
        assert_eq!(atr.expected_return(0.4, None), None);
    }

    #[test]
    fn missing_future_bars_give_no_label() {
        let bars = [SCAN, (100.0, 101.0, 99.0, 100.0), (100.0, 101.0, 99.0, 100.0)];
        assert_eq!(label_of(&bars, &B), None);
        assert_eq!(label_of(&bars, &Barrier { horizon: 0, ..B }), None);
        assert!(label_of(&bars, &Barrier { horizon: 2, ..B }).is_some());
    }

    #[test]
    fn zero_or_negative_prices_are_rejected() {
        let ok = (100.0, 101.0, 99.0, 100.0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let bars = [SCAN, ok, (100.0, 101.0, bad, 100.0), ok];
            assert_eq!(label_of(&bars, &B), None, "low {bad}");
            let bars = [SCAN, (bad, 101.0, 99.0, 100.0), ok, ok];
            assert_eq!(label_of(&bars, &B), None, "entry open {bad}");
        }
        assert!(label_of(&[SCAN, ok, ok, ok], &B).is_some());
    }

    #[test]
    fn stored_barriers_without_an_entry_rule_read_as_close_entries() {
        let old: Barrier = serde_json::from_str(r#"{"horizon":5,"target":0.05,"stop":0.04}"#).unwrap();
        assert_eq!(old.entry, Entry::Close);
        assert_eq!((old.sizing, old.cost_bps_per_side), (BarrierSizing::Fixed, 0.0));
        let round: Barrier = serde_json::from_str(&serde_json::to_string(&B).unwrap()).unwrap();
        assert_eq!(round, B);
    }
}
