//! Evaluation of scores against labels: classification metrics over all
//! rows, ranking metrics per scan date (what a daily top-K user sees).

use serde::{Deserialize, Serialize};

/// The validation rows as the metrics need them, sorted by date.
#[derive(Debug, Clone, Default)]
pub struct EvalSet {
    /// Scan date index (rows with the same index are one day's universe).
    pub day: Vec<u32>,
    pub label: Vec<u8>,
    pub realized_return: Vec<f64>,
    /// The rule-based recommendation was BUY.
    pub rule_buy: Vec<bool>,
    /// Bars from the scan date to the trade's exit.
    pub bars_to_exit: Vec<u32>,
    /// The market's breadth on the row's scan date (share of the date's
    /// symbols above their SMA50; NaN unknown): the regime filter's input.
    pub breadth: Vec<f64>,
}

impl EvalSet {
    pub fn len(&self) -> usize {
        self.label.len()
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_empty()
    }

    /// (start, end) of each day's rows; rows must be sorted by day.
    pub fn day_ranges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..=self.day.len() {
            if i == self.day.len() || self.day[i] != self.day[start] {
                out.push((start, i));
                start = i;
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_predicted: Option<f64>,
    pub observed_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    pub dates: usize,
    pub base_rate: f64,
    pub auc: Option<f64>,
    pub f1_at_0_5: f64,
    pub best_f1: f64,
    pub best_f1_threshold: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub k: usize,
    pub precision_at_k: f64,
    pub rank_ic: Option<f64>,
    /// The per-date rank ICs' mean over their sample standard deviation
    /// (rank ICIR): how steady the ranking is from date to date.
    #[serde(default)]
    pub rank_ic_ir: Option<f64>,
    pub top_k_mean_return: f64,
    pub universe_mean_return: f64,
    pub calibration: Vec<CalibrationBin>,
}

/// Baselines on the same rows. The per-date figures are what a per-date
/// metric (precision@K, the top-K's mean return) is fairly compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    pub base_rate: f64,
    /// Mean over dates of each date's share of label 1: precision@K of a
    /// random pick.
    pub base_rate_per_date: f64,
    /// Precision of `ta_recommendation = BUY` over all its rows.
    pub rule_buy_precision: Option<f64>,
    /// Mean over the dates with BUY rows of that date's BUY precision;
    /// `None` when no date has one (the baseline cannot be computed).
    pub rule_buy_precision_per_date: Option<f64>,
    /// Mean over the same dates of the BUY rows' mean after-cost return.
    pub rule_buy_mean_return: Option<f64>,
    pub rule_buy_rows: usize,
    pub rule_buy_dates: usize,
}

pub fn evaluate(set: &EvalSet, scores: &[f64], k: usize) -> Evaluation {
    let labels = &set.label;
    let n = labels.len().max(1) as f64;
    let (best_f1, best_f1_threshold) = best_f1(scores, labels);
    let days = set.day_ranges();
    let mut p_at_k = Vec::new();
    let mut ics = Vec::new();
    let (mut top_returns, mut all_returns) = (Vec::new(), Vec::new());
    for &(a, b) in &days {
        let top = top_k(&scores[a..b], k);
        p_at_k.push(top.iter().map(|&i| labels[a + i] as f64).sum::<f64>() / top.len() as f64);
        top_returns.push(top.iter().map(|&i| set.realized_return[a + i]).sum::<f64>() / top.len() as f64);
        all_returns.push(mean(&set.realized_return[a..b]));
        if let Some(ic) = spearman(&scores[a..b], &set.realized_return[a..b]) {
            ics.push(ic);
        }
    }
    Evaluation {
        rows: labels.len(),
        dates: days.len(),
        base_rate: labels.iter().map(|&l| l as f64).sum::<f64>() / n,
        auc: auc(scores, labels),
        f1_at_0_5: f1_at(scores, labels, 0.5),
        best_f1,
        best_f1_threshold,
        log_loss: log_loss(scores, labels),
        brier: scores
            .iter()
            .zip(labels)
            .map(|(p, &y)| (p - y as f64).powi(2))
            .sum::<f64>()
            / n,
        k,
        precision_at_k: mean(&p_at_k),
        rank_ic: (!ics.is_empty()).then(|| mean(&ics)),
        rank_ic_ir: information_ratio(&ics),
        top_k_mean_return: mean(&top_returns),
        universe_mean_return: mean(&all_returns),
        calibration: calibration(scores, labels),
    }
}

/// Mean over sample standard deviation; `None` under two values or with
/// no spread.
fn information_ratio(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs);
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
    (var > 0.0).then(|| m / var.sqrt())
}

pub fn baselines(set: &EvalSet) -> Baselines {
    let n = set.len().max(1) as f64;
    let buys: Vec<u8> = set
        .label
        .iter()
        .zip(&set.rule_buy)
        .filter(|(_, b)| **b)
        .map(|(l, _)| *l)
        .collect();
    let (mut daily_base, mut daily_buy, mut daily_buy_return) = (Vec::new(), Vec::new(), Vec::new());
    for (a, b) in set.day_ranges() {
        daily_base.push(set.label[a..b].iter().map(|&l| l as f64).sum::<f64>() / (b - a) as f64);
        let picked: Vec<usize> = (a..b).filter(|&i| set.rule_buy[i]).collect();
        if !picked.is_empty() {
            let m = picked.len() as f64;
            daily_buy.push(picked.iter().map(|&i| set.label[i] as f64).sum::<f64>() / m);
            daily_buy_return.push(picked.iter().map(|&i| set.realized_return[i]).sum::<f64>() / m);
        }
    }
    let some_mean = |xs: &[f64]| (!xs.is_empty()).then(|| mean(xs));
    Baselines {
        base_rate: set.label.iter().map(|&l| l as f64).sum::<f64>() / n,
        base_rate_per_date: mean(&daily_base),
        rule_buy_precision: (!buys.is_empty()).then(|| buys.iter().map(|&l| l as f64).sum::<f64>() / buys.len() as f64),
        rule_buy_precision_per_date: some_mean(&daily_buy),
        rule_buy_mean_return: some_mean(&daily_buy_return),
        rule_buy_rows: buys.len(),
        rule_buy_dates: daily_buy.len(),
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Indices of the `k` highest scores (ties broken by position, so the
/// choice is deterministic).
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k.max(1));
    idx
}

/// Average ranks (1-based), ties sharing the mean of their positions.
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && xs[idx[j]] == xs[idx[i]] {
            j += 1;
        }
        let rank = (i + j + 1) as f64 / 2.0; // mean of positions i+1 ..= j
        for &k in &idx[i..j] {
            out[k] = rank;
        }
        i = j;
    }
    out
}

/// ROC AUC with ties counted half (Mann-Whitney U); None with one class.
pub fn auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l == 1).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    let r = ranks(scores);
    let pos_rank_sum: f64 = r.iter().zip(labels).filter(|(_, l)| **l == 1).map(|(r, _)| r).sum();
    Some((pos_rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Spearman correlation (Pearson of average ranks); None when either side
/// is constant or there are fewer than 3 rows.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 3 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let (ma, mb) = (mean(&ra), mean(&rb));
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

pub fn f1_at(scores: &[f64], labels: &[u8], threshold: f64) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l == 1) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            _ => {}
        }
    }
    if tp == 0.0 {
        0.0
    } else {
        2.0 * tp / (2.0 * tp + fp + fn_)
    }
}

/// The best F1 over all thresholds (each distinct score), and that threshold.
pub fn best_f1(scores: &[f64], labels: &[u8]) -> (f64, f64) {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut best, mut threshold) = (0.0, 1.0);
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if labels[idx[i]] == 1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        let f1 = if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (tp + fp + positives)
        };
        if f1 > best {
            (best, threshold) = (f1, s);
        }
    }
    (best, threshold)
}

pub fn log_loss(scores: &[f64], labels: &[u8]) -> f64 {
    let eps = 1e-15;
    let n = labels.len().max(1) as f64;
    -scores
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(eps, 1.0 - eps);
            if y == 1 { p.ln() } else { (1.0 - p).ln() }
        })
        .sum::<f64>()
        / n
}

/// 10 equal-width bins of the predicted probability.
pub fn calibration(scores: &[f64], labels: &[u8]) -> Vec<CalibrationBin> {
    (0..10)
        .map(|b| {
            let (lower, upper) = (b as f64 / 10.0, (b + 1) as f64 / 10.0);
            let inside: Vec<usize> = (0..scores.len())
                .filter(|&i| scores[i] >= lower && (scores[i] < upper || (b == 9 && scores[i] <= 1.0)))
                .collect();
            let count = inside.len();
            let avg = |f: &dyn Fn(usize) -> f64| {
                (count > 0).then(|| inside.iter().map(|&i| f(i)).sum::<f64>() / count as f64)
            };
            CalibrationBin {
                lower,
                upper,
                count,
                mean_predicted: avg(&|i| scores[i]),
                observed_rate: avg(&|i| labels[i] as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_with_ties_by_hand() {
        // pos scores {0.8, 0.5}, neg scores {0.5, 0.2}: pairs (0.8>0.5)=1,
        // (0.8>0.2)=1, (0.5=0.5)=½, (0.5>0.2)=1 → 3.5/4
        assert_eq!(auc(&[0.8, 0.5, 0.5, 0.2], &[1, 1, 0, 0]), Some(0.875));
        assert_eq!(auc(&[0.3, 0.3], &[1, 0]), Some(0.5));
        assert_eq!(auc(&[0.1, 0.9], &[1, 1]), None);
    }

    #[test]
    fn spearman_with_ties_by_hand() {
        // ranks a = [1, 2.5, 2.5, 4], b = [1, 2, 3, 4]:
        // cov = (−1.5)(−1.5)+0(−.5)+0(.5)+1.5·1.5 = 4.5; va = 4.5; vb = 5
        let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[10.0, 20.0, 30.0, 40.0]).unwrap();
        assert!((rho - 4.5 / (4.5f64 * 5.0).sqrt()).abs() < 1e-15);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn precision_at_k_is_per_date_then_averaged() {
        let set = EvalSet {
            day: vec![0, 0, 0, 1, 1, 1],
            label: vec![1, 0, 0, 0, 0, 1],
            realized_return: vec![0.05, -0.04, 0.01, -0.04, 0.0, 0.05],
            rule_buy: vec![true, true, false, false, false, false],
            bars_to_exit: vec![1; 6],
            breadth: Vec::new(),
        };
        let scores = [0.9, 0.8, 0.1, 0.7, 0.6, 0.2];
        let e = evaluate(&set, &scores, 2);
        // day 0: top2 = rows 0,1 → 1/2; day 1: rows 3,4 → 0/2; mean 0.25
        assert_eq!(e.precision_at_k, 0.25);
        // top-K returns: day0 (0.05−0.04)/2 = 0.005, day1 (−0.04+0)/2 = −0.02 → −0.0075
        assert!((e.top_k_mean_return + 0.0075).abs() < 1e-15);
        assert!((e.universe_mean_return - ((0.02 / 3.0) + (0.01 / 3.0)) / 2.0).abs() < 1e-15);
        assert_eq!(e.dates, 2);
        let b = baselines(&set);
        assert_eq!(b.rule_buy_precision, Some(0.5));
        assert!((b.base_rate - 2.0 / 6.0).abs() < 1e-15);
        // Per date: day 0 has 1/3 ones, day 1 1/3; BUY rows only on day 0.
        assert!((b.base_rate_per_date - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!((b.rule_buy_precision_per_date, b.rule_buy_dates), (Some(0.5), 1));
        assert!((b.rule_buy_mean_return.unwrap() - 0.005).abs() < 1e-15);
        let none = EvalSet {
            rule_buy: vec![false; 6],
            ..set.clone()
        };
        assert_eq!(baselines(&none).rule_buy_precision_per_date, None);
    }

    #[test]
    fn f1_log_loss_brier_and_calibration_by_hand() {
        let scores = [0.9, 0.6, 0.4, 0.2];
        let labels = [1, 0, 1, 0];
        // at 0.5: tp 1, fp 1, fn 1 → 2/(2+1+1) = 0.5
        assert_eq!(f1_at(&scores, &labels, 0.5), 0.5);
        // threshold 0.4: tp 2, fp 1 → 4/5 = 0.8 (the best)
        assert_eq!(best_f1(&scores, &labels), (0.8, 0.4));
        let ll = -(0.9f64.ln() + 0.4f64.ln() + 0.4f64.ln() + 0.8f64.ln()) / 4.0;
        assert!((log_loss(&scores, &labels) - ll).abs() < 1e-15);
        let set = EvalSet {
            day: vec![0; 4],
            label: labels.to_vec(),
            realized_return: vec![0.0; 4],
            rule_buy: vec![false; 4],
            bars_to_exit: vec![1; 4],
            breadth: Vec::new(),
        };
        let e = evaluate(&set, &scores, 10);
        assert!((e.brier - (0.01 + 0.36 + 0.36 + 0.04) / 4.0).abs() < 1e-15);
        assert_eq!(e.calibration.len(), 10);
        assert_eq!(e.calibration[9].count, 1);
        assert_eq!(e.calibration[4].observed_rate, Some(1.0));
        assert_eq!(e.precision_at_k, 0.5, "fewer rows than K: all of them");
    }
}
