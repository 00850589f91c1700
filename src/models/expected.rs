//! What a score has been worth: the mean after-cost return of
//! out-of-sample rows by bin of their score, so a prediction can say what
//! trades scored like it earned (timeouts and gap fills included) instead
//! of a formula that books every non-target outcome as a full stop.

use serde::{Deserialize, Serialize};

/// One bin of scores (equal counts of out-of-sample rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnBin {
    /// The highest score of the bin (the last bin takes everything above).
    pub upper: f64,
    pub mean_score: f64,
    pub mean_return: f64,
    pub hit_rate: f64,
    pub rows: usize,
}

/// `bins` equal-count bins of `scores` (ties kept in one bin) with the mean
/// after-cost return and the share of positive returns of their rows.
pub fn return_by_score(scores: &[f64], returns: &[f64], bins: usize) -> Vec<ReturnBin> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let n = order.len();
    let mut out = Vec::new();
    let mut start = 0;
    for b in 1..=bins.max(1) {
        let mut end = (n * b / bins.max(1)).max(start);
        // Equal scores stay in one bin.
        while end < n && end > start && scores[order[end]] == scores[order[end - 1]] {
            end += 1;
        }
        if end > start {
            let rows = &order[start..end];
            let mean = |f: &dyn Fn(usize) -> f64| rows.iter().map(|&i| f(i)).sum::<f64>() / rows.len() as f64;
            out.push(ReturnBin {
                upper: scores[order[end - 1]],
                mean_score: mean(&|i| scores[i]),
                mean_return: mean(&|i| returns[i]),
                hit_rate: mean(&|i| f64::from(u8::from(returns[i] > 0.0))),
                rows: rows.len(),
            });
        }
        start = end;
    }
    out
}

/// The mean return of the bin `score` falls in (the first whose upper
/// bound it does not exceed, else the last).
pub fn lookup(bins: &[ReturnBin], score: f64) -> Option<f64> {
    bins.iter()
        .find(|b| score <= b.upper)
        .or(bins.last())
        .map(|b| b.mean_return)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_by_hand() {
        let scores = [0.1, 0.4, 0.2, 0.3, 0.9, 0.8];
        let returns = [-0.02, 0.01, -0.01, 0.0, 0.04, 0.02];
        let bins = return_by_score(&scores, &returns, 3);
        assert_eq!(bins.len(), 3);
        assert_eq!((bins[0].upper, bins[0].rows), (0.2, 2));
        assert!((bins[0].mean_return + 0.015).abs() < 1e-15);
        assert!((bins[2].mean_return - 0.03).abs() < 1e-15 && bins[2].hit_rate == 1.0);
        assert_eq!(bins[1].hit_rate, 0.5);
        assert_eq!(lookup(&bins, 0.25), Some(0.005));
        assert_eq!(lookup(&bins, 0.99), Some(bins[2].mean_return));
        assert_eq!(lookup(&[], 0.5), None);
        // Ties never straddle two bins.
        let tied = return_by_score(&[0.5; 4], &[0.0, 0.01, 0.02, 0.03], 2);
        assert_eq!(tied.len(), 1);
        assert_eq!(tied[0].rows, 4);
    }
}
