//! Triple-barrier labels on one symbol's daily bars. Plain slices in,
//! vectors out.
//!
//! Entry is the close of the scan bar `t`; `up = entry·(1+target)`,
//! `down = entry·(1−stop)`; bars `t+1 … t+horizon` are looked at in order.
//! The first bar whose low ≤ down ends the trade with label 0 (`stop`) —
//! also when the same bar's high ≥ up, since daily bars cannot tell which
//! came first and the pessimistic order is the honest one; otherwise the
//! first bar whose high ≥ up gives label 1 (`target`). Neither within the
//! horizon is label 0 (`timeout`). The exit is at the barrier price (a gap
//! through a barrier is booked at the barrier, as a resting order would be
//! filled at best), or at the close of the last bar on timeout. A snapshot
//! is labelable only when all `horizon` future bars exist.

use serde::{Deserialize, Serialize};

/// The barrier parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Barrier {
    pub horizon: usize,
    /// Profit target as a fraction (0.05 = +5 %).
    pub target: f64,
    /// Stop loss as a fraction (0.04 = −4 %).
    pub stop: f64,
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
    pub realized_return: f64,
}

/// The label of scan bar `t`, or `None` when its horizon is not complete.
pub fn label_at(high: &[f64], low: &[f64], close: &[f64], t: usize, barrier: &Barrier) -> Option<Label> {
    if barrier.horizon == 0 || t + barrier.horizon >= close.len() {
        return None;
    }
    let entry = close[t];
    let up = entry * (1.0 + barrier.target);
    let down = entry * (1.0 - barrier.stop);
    for step in 1..=barrier.horizon {
        let i = t + step;
        let bars_to_exit = step as u32;
        if low[i] <= down {
            return Some(Label {
                label: 0,
                exit_reason: ExitReason::Stop,
                bars_to_exit,
                realized_return: -barrier.stop,
            });
        }
        if high[i] >= up {
            return Some(Label {
                label: 1,
                exit_reason: ExitReason::Target,
                bars_to_exit,
                realized_return: barrier.target,
            });
        }
    }
    let last = close[t + barrier.horizon];
    Some(Label {
        label: 0,
        exit_reason: ExitReason::Timeout,
        bars_to_exit: barrier.horizon as u32,
        realized_return: last / entry - 1.0,
    })
}

/// Labels of every bar of a series (`None` for the last `horizon` bars).
pub fn label_series(high: &[f64], low: &[f64], close: &[f64], barrier: &Barrier) -> Vec<Option<Label>> {
    (0..close.len())
        .map(|t| label_at(high, low, close, t, barrier))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Barrier = Barrier {
        horizon: 3,
        target: 0.05,
        stop: 0.04,
    };

    /// Bars as (high, low, close); entry close 100 at t = 0.
    fn run(bars: &[(f64, f64, f64)]) -> Vec<Option<Label>> {
        let high: Vec<f64> = bars.iter().map(|b| b.0).collect();
        let low: Vec<f64> = bars.iter().map(|b| b.1).collect();
        let close: Vec<f64> = bars.iter().map(|b| b.2).collect();
        label_series(&high, &low, &close, &B)
    }

    #[test]
    fn target_first() {
        let l = run(&[
            (100.0, 100.0, 100.0),
            (103.0, 99.0, 102.0),
            (105.0, 101.0, 104.0),
            (101.0, 95.0, 96.0),
        ])[0]
            .unwrap();
        assert_eq!((l.label, l.exit_reason, l.bars_to_exit), (1, ExitReason::Target, 2));
        assert!((l.realized_return - 0.05).abs() < 1e-15);
    }

    #[test]
    fn stop_first() {
        let l = run(&[
            (100.0, 100.0, 100.0),
            (101.0, 96.0, 97.0),
            (107.0, 99.0, 106.0),
            (106.0, 104.0, 105.0),
        ])[0]
            .unwrap();
        assert_eq!((l.label, l.exit_reason, l.bars_to_exit), (0, ExitReason::Stop, 1));
        assert!((l.realized_return + 0.04).abs() < 1e-15);
    }

    #[test]
    fn both_barriers_in_one_bar_is_a_stop() {
        let l = run(&[
            (100.0, 100.0, 100.0),
            (106.0, 95.0, 100.0),
            (100.0, 100.0, 100.0),
            (100.0, 100.0, 100.0),
        ])[0]
            .unwrap();
        assert_eq!((l.label, l.exit_reason, l.bars_to_exit), (0, ExitReason::Stop, 1));
    }

    #[test]
    fn timeout_books_the_last_close() {
        let l = run(&[
            (100.0, 100.0, 100.0),
            (102.0, 99.0, 101.0),
            (103.0, 98.0, 102.0),
            (104.0, 97.0, 103.0),
        ])[0]
            .unwrap();
        assert_eq!((l.label, l.exit_reason, l.bars_to_exit), (0, ExitReason::Timeout, 3));
        assert!((l.realized_return - 0.03).abs() < 1e-12);
    }

    #[test]
    fn gap_through_a_barrier_exits_at_the_barrier() {
        // Opens far above the target: the bar's low is above up.
        let l = run(&[
            (100.0, 100.0, 100.0),
            (112.0, 110.0, 111.0),
            (111.0, 110.0, 110.0),
            (110.0, 109.0, 109.0),
        ])[0]
            .unwrap();
        assert_eq!((l.label, l.exit_reason), (1, ExitReason::Target));
        assert!((l.realized_return - 0.05).abs() < 1e-15);
        // Gaps down through the stop.
        let l = run(&[
            (100.0, 100.0, 100.0),
            (90.0, 88.0, 89.0),
            (90.0, 88.0, 89.0),
            (90.0, 88.0, 89.0),
        ])[0]
            .unwrap();
        assert_eq!(
            (l.label, l.exit_reason, l.realized_return),
            (0, ExitReason::Stop, -0.04)
        );
    }

    #[test]
    fn exactly_touching_a_barrier_counts() {
        let l = run(&[
            (100.0, 100.0, 100.0),
            (105.0, 100.0, 104.0),
            (100.0, 100.0, 100.0),
            (100.0, 100.0, 100.0),
        ])[0]
            .unwrap();
        assert_eq!(l.exit_reason, ExitReason::Target);
    }

    #[test]
    fn last_horizon_bars_are_unlabeled() {
        let bars = vec![(100.0, 100.0, 100.0); 6];
        let labels = run(&bars);
        assert!(labels[..3].iter().all(Option::is_some));
        assert!(labels[3..].iter().all(Option::is_none));
        let zero = Barrier { horizon: 0, ..B };
        assert_eq!(label_at(&[1.0, 1.0], &[1.0, 1.0], &[1.0, 1.0], 0, &zero), None);
    }
}
