//! Realised figures of scored predictions (precision@K with its Wilson
//! interval, hit rate, AUC, Brier, log loss, returns against the
//! baselines).

use serde::Serialize;

use super::predictions::Scored;
use crate::models::metrics::{auc, log_loss};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Performance {
    pub scored: usize,
    pub completed: usize,
    pub pending: usize,
    pub top_k_completed: usize,
    pub precision_at_k: Option<f64>,
    /// Wilson 95 % interval of precision@K over the completed top-K picks.
    pub precision_at_k_ci95: Option<(f64, f64)>,
    /// Share of completed top-K picks with a positive after-cost return.
    pub top_k_hit_rate: Option<f64>,
    pub auc: Option<f64>,
    pub brier: Option<f64>,
    pub log_loss: Option<f64>,
    pub top_k_mean_return: Option<f64>,
    pub all_mean_return: Option<f64>,
    pub rule_buy_mean_return: Option<f64>,
}

pub(super) fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Wilson score interval (95 %) for `hits` of `n`.
pub fn wilson(hits: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let (n, p) = (n as f64, hits as f64 / n as f64);
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let denominator = 1.0 + z * z / n;
    Some(((centre - spread) / denominator, (centre + spread) / denominator))
}

/// Realised figures of scored rows: the top-K are the rows ranked ≤ K
/// with `--top-k`, else the list each predictions file marked.
pub(super) fn performance(rows: &[Scored], k: Option<usize>) -> Performance {
    let completed: Vec<&Scored> = rows.iter().filter(|r| r.outcome.is_some()).collect();
    let outcome = |r: &Scored| r.outcome.expect("completed");
    let in_top = |r: &Scored| k.map_or(r.in_top_k, |k| r.rank <= k as i64);
    let top: Vec<&Scored> = completed.iter().copied().filter(|r| in_top(r)).collect();
    let hits = top.iter().filter(|r| outcome(r).label == 1).count();
    let labels: Vec<u8> = completed.iter().map(|r| outcome(r).label).collect();
    let scores: Vec<f64> = completed.iter().map(|r| r.p_score).collect();
    let returns = |rows: &[&Scored]| mean(&rows.iter().map(|r| outcome(r).realized_return).collect::<Vec<_>>());
    let rule: Vec<&Scored> = completed.iter().copied().filter(|r| r.rule_buy).collect();
    Performance {
        scored: rows.len(),
        completed: completed.len(),
        pending: rows.len() - completed.len(),
        top_k_completed: top.len(),
        precision_at_k: (!top.is_empty()).then(|| hits as f64 / top.len() as f64),
        precision_at_k_ci95: wilson(hits, top.len()),
        top_k_hit_rate: (!top.is_empty())
            .then(|| top.iter().filter(|r| outcome(r).realized_return > 0.0).count() as f64 / top.len() as f64),
        auc: auc(&scores, &labels),
        brier: mean(
            &scores
                .iter()
                .zip(&labels)
                .map(|(p, &y)| (p - y as f64).powi(2))
                .collect::<Vec<_>>(),
        ),
        log_loss: (!labels.is_empty()).then(|| log_loss(&scores, &labels)),
        top_k_mean_return: returns(&top),
        all_mean_return: returns(&completed),
        rule_buy_mean_return: returns(&rule),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Label;
    use chrono::NaiveDate;

    /// A scored row with a known outcome (`label`, after-cost `ret`).
    fn row(rank: i64, p: f64, outcome: Option<(u8, f64)>) -> Scored {
        Scored {
            symbol: format!("S{rank}"),
            as_of: NaiveDate::from_ymd_opt(2020, 12, 1).unwrap(),
            p_score: p,
            rank,
            in_top_k: rank <= 2,
            rule_buy: rank % 2 == 0,
            numeric: Vec::new(),
            categorical: Vec::new(),
            outcome: outcome.map(|(label, ret)| Label {
                label,
                exit_reason: crate::labels::ExitReason::Timeout,
                bars_to_exit: 5,
                entry_price: 100.0,
                exit_price: 100.0 * (1.0 + ret),
                gross_return: ret + 0.002,
                realized_return: ret,
                entry_cost: 0.001,
                exit_cost: 0.001,
            }),
        }
    }

    #[test]
    fn realised_figures_by_hand() {
        // Five scored, four completed, the top-2 marked by score.
        let rows = [
            row(1, 0.8, Some((1, 0.05))),
            row(2, 0.6, Some((0, -0.04))),
            row(3, 0.4, Some((1, 0.03))),
            row(4, 0.2, Some((0, 0.01))),
            row(5, 0.1, None),
        ];
        let p = performance(&rows, None);
        assert_eq!((p.scored, p.completed, p.pending, p.top_k_completed), (5, 4, 1, 2));
        assert_eq!(p.precision_at_k, Some(0.5));
        assert_eq!(p.top_k_hit_rate, Some(0.5));
        // Positives 0.8, 0.4 vs negatives 0.6, 0.2: pairs won 1 + 1 + 0 + 1 = 3 of 4.
        assert_eq!(p.auc, Some(0.75));
        // (0.2² + 0.6² + 0.6² + 0.2²) / 4 = 0.2
        assert!((p.brier.unwrap() - 0.2).abs() < 1e-15);
        let ll = -(0.8f64.ln() + 0.4f64.ln() + 0.4f64.ln() + 0.8f64.ln()) / 4.0;
        assert!((p.log_loss.unwrap() - ll).abs() < 1e-15);
        assert!((p.top_k_mean_return.unwrap() - 0.005).abs() < 1e-15);
        assert!((p.all_mean_return.unwrap() - 0.0125).abs() < 1e-15);
        // Rule BUY: ranks 2 and 4 → (−0.04 + 0.01) / 2.
        assert!((p.rule_buy_mean_return.unwrap() + 0.015).abs() < 1e-15);
        // --top-k 3 instead of the file's marks: 2 of 3.
        assert_eq!(performance(&rows, Some(3)).precision_at_k, Some(2.0 / 3.0));
        let (lo, hi) = p.precision_at_k_ci95.unwrap();
        assert!(lo < 0.5 && hi > 0.5);
    }

    #[test]
    fn wilson_interval_against_published_values() {
        // 8 of 10 at 95 %: 0.4902 .. 0.9433 (Wilson 1927; Newcombe 1998, method 3).
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!((lo - 0.4902).abs() < 5e-5 && (hi - 0.9433).abs() < 5e-5, "{lo} {hi}");
        // 0 of 10: 0 .. 0.2775.
        let (lo, hi) = wilson(0, 10).unwrap();
        assert!(lo.abs() < 1e-12 && (hi - 0.2775).abs() < 5e-5, "{lo} {hi}");
        assert_eq!(wilson(0, 0), None);
    }
}
