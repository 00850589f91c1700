//! Drift thresholds calibrated on the reference period.
//!
//! A drift statistic measured on a week of a market is large by
//! construction for features tied to the market's state (a week's 20-day
//! returns all sit in one part of their range), and noisy when the window
//! has few rows. So the threshold of each feature is not a rule of thumb but
//! what the statistic does on the reference period itself: every chunk of
//! `W` consecutive reference dates (sliding by one date, all symbols, the
//! same shape as a monitored window of `W` dates) is measured like a live
//! window, and the thresholds are set so that at most [`FALSE_ALARM_RATE`]
//! of those chunks would have raised *any* drift alert.
//!
//! Why a family-wise level and not each feature's 99th percentile: an
//! operator reads one report a night, and 30 features each over their own
//! 99th percentile 1 % of the time would alert most weeks. The level is
//! found on the chunks themselves (the share of chunks in which some feature
//! is over the same quantile level of its own chunks), so features that move
//! together (volatility, ATR, band width) are not counted as independent.
//! A quantile and not mean + 3 sd: PSI is a sum of squares-like terms,
//! skewed to the right, and the chunks of one market are not normal.
//!
//! Statistics: PSI on the reference's bins for the features with one value
//! per row; for the per-date features (one value per date for the whole
//! market: [`PER_DATE_FEATURES`]), the one-sample Kolmogorov–Smirnov
//! distance between the window's per-date values and the reference's
//! per-date values (a PSI over 7 values means nothing).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rayon::prelude::*;

pub use super::config::{DriftCalibration, Thresholds};
use super::config::{NumericReference, Reference, bin_of};
use super::drift::psi;
use super::{CATEGORICAL_FEATURES, Features, NUMERIC_FEATURES, PER_DATE_FEATURES};
use crate::indicators::signals;

/// Share of the reference's chunks that would have raised a drift alert.
pub const FALSE_ALARM_RATE: f64 = 0.01;

/// Fewer chunks than this: no calibrated thresholds for that window length
/// (the monitor falls back on the PSI rule of thumb).
pub const MIN_CHUNKS: usize = 20;

/// The window lengths (dates) thresholds are calibrated for; a monitored
/// window uses the longest one not longer than itself (a shorter window's
/// thresholds are the higher ones: conservative).
pub const WINDOW_DATES: [usize; 11] = [1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 60];

/// Points of the per-date features' reference distribution (percentiles).
const PER_DATE_POINTS: usize = 101;

/// Given each feature's statistic on each chunk (`stats[f][c]`, NaN where
/// undefined), the quantile level `q` and per-feature thresholds such that
/// at most `alpha` of the chunks have some feature above its threshold.
/// A feature's threshold is its largest chunk value whose empirical CDF is
/// at most `q`: a value is above it exactly when its CDF is above `q`.
pub fn family_thresholds(stats: &[Vec<f64>], alpha: f64) -> Option<(f64, Vec<f64>)> {
    let chunks = stats.first()?.len();
    let sorted: Vec<Vec<f64>> = stats
        .iter()
        .map(|s| {
            let mut v: Vec<f64> = s.iter().copied().filter(|x| !x.is_nan()).collect();
            v.sort_by(f64::total_cmp);
            v
        })
        .collect();
    let cdf = |f: usize, x: f64| sorted[f].partition_point(|&v| v <= x) as f64 / sorted[f].len() as f64;
    // Each chunk's highest CDF over the features.
    let mut highest: Vec<f64> = (0..chunks)
        .map(|c| {
            (0..stats.len())
                .filter(|&f| !stats[f][c].is_nan())
                .map(|f| cdf(f, stats[f][c]))
                .fold(0.0, f64::max)
        })
        .collect();
    highest.sort_by(|a, b| b.total_cmp(a));
    let allowed = (alpha * chunks as f64).floor() as usize;
    let level = *highest.get(allowed.min(chunks.saturating_sub(1)))?;
    let thresholds = sorted
        .iter()
        .map(|v| {
            let within = v.partition_point(|&x| (v.partition_point(|&y| y <= x) as f64 / v.len() as f64) <= level);
            match within {
                0 => v.first().copied().unwrap_or(f64::NAN),
                n => v[n - 1],
            }
        })
        .collect();
    Some((level, thresholds))
}

/// The reference's CDF at `x` from its percentiles, linear between them.
pub fn cdf_of_percentiles(points: &[f64], x: f64) -> f64 {
    let (Some(&first), Some(&last)) = (points.first(), points.last()) else {
        return f64::NAN;
    };
    if x < first {
        return 0.0;
    }
    if x >= last {
        return 1.0;
    }
    let steps = (points.len() - 1) as f64;
    let i = points.partition_point(|&p| p <= x) - 1;
    let (lo, hi) = (points[i], points[i + 1]);
    let within = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
    (i as f64 + within) / steps
}

/// One-sample Kolmogorov–Smirnov distance of `values` to the distribution
/// given by its percentiles; `None` without values.
pub fn ks_distance(points: &[f64], values: &[f64]) -> Option<f64> {
    if values.is_empty() || points.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let d = v.iter().enumerate().fold(0.0f64, |d, (i, &x)| {
        let f = cdf_of_percentiles(points, x);
        d.max((i as f64 + 1.0) / n - f).max(f - i as f64 / n)
    });
    Some(d)
}

/// Percentiles 0..=100 of `values` (nearest rank, as the decile edges).
pub fn percentiles(values: &[f64]) -> Option<Vec<f64>> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let last = v.len() - 1;
    Some(
        (0..PER_DATE_POINTS)
            .map(|q| v[q * last / (PER_DATE_POINTS - 1)])
            .collect(),
    )
}

/// A row's bucket of a feature (none when undefined).
type Bucket<'a> = Box<dyn Fn(&Features) -> Option<usize> + Sync + 'a>;

/// A feature with one value per row, judged by PSI on its reference
/// buckets: each row's bucket, and the buckets' reference shares.
struct Pooled<'a> {
    name: String,
    expected: Vec<f64>,
    bucket: Bucket<'a>,
}

fn pooled_features(reference: &Reference) -> Vec<Pooled<'_>> {
    let mut out = Vec::new();
    for (i, name) in NUMERIC_FEATURES.iter().enumerate() {
        if PER_DATE_FEATURES.contains(name) {
            continue;
        }
        if let Some(r) = reference.numeric.get(*name) {
            out.push(Pooled {
                name: name.to_string(),
                expected: r.shares.clone(),
                bucket: Box::new(move |f: &Features| f.numeric(i).map(|x| bin_of(x, &r.edges))),
            });
        }
    }
    for (i, name) in CATEGORICAL_FEATURES.iter().enumerate() {
        if let Some(shares) = reference.categorical.get(*name) {
            // The reference's categories in their stored (sorted) order.
            let labels: Vec<&str> = shares.keys().map(String::as_str).collect();
            out.push(Pooled {
                name: name.to_string(),
                expected: shares.values().copied().collect(),
                bucket: Box::new(move |f: &Features| {
                    let label = signals::label_of(f.category_code(i))?;
                    labels.iter().position(|l| *l == label)
                }),
            });
        }
    }
    out
}

/// Running counts by date: `prefix[d * width + b]` counts the rows of
/// dates before `d` in bucket `b`.
struct Prefix {
    width: usize,
    prefix: Vec<u64>,
}

impl Prefix {
    fn new(per_date: &[Vec<u64>], width: usize) -> Prefix {
        let mut prefix = vec![0u64; (per_date.len() + 1) * width];
        for (d, counts) in per_date.iter().enumerate() {
            for b in 0..width {
                prefix[(d + 1) * width + b] = prefix[d * width + b] + counts[b];
            }
        }
        Prefix { width, prefix }
    }

    /// Counts of dates `from..to` by bucket.
    fn window(&self, from: usize, to: usize) -> Vec<u64> {
        (0..self.width)
            .map(|b| self.prefix[to * self.width + b] - self.prefix[from * self.width + b])
            .collect()
    }
}

/// PSI of bucket counts against reference shares; NaN without rows.
fn psi_of_counts(expected: &[f64], counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let actual: Vec<f64> = counts.iter().map(|&c| c as f64 / total as f64).collect();
    psi(expected, &actual)
}

/// Calibrate the features' thresholds on the reference rows (`dates[i]`
/// is the scan date of `rows[i]`) and record the per-date features'
/// reference distribution.
pub fn calibrate_features(
    dates: &[NaiveDate],
    rows: &[&Features],
    reference: &Reference,
    alpha: f64,
) -> DriftCalibration {
    let distinct: Vec<NaiveDate> = {
        let mut d = dates.to_vec();
        d.sort_unstable();
        d.dedup();
        d
    };
    let day: Vec<usize> = dates.iter().map(|d| distinct.partition_point(|x| x < d)).collect();
    let pooled = pooled_features(reference);
    let prefixes: Vec<Prefix> = pooled
        .par_iter()
        .map(|p| {
            let width = p.expected.len();
            let mut per_date = vec![vec![0u64; width]; distinct.len()];
            for (f, &d) in rows.iter().zip(&day) {
                if let Some(b) = (p.bucket)(f) {
                    per_date[d][b] += 1;
                }
            }
            Prefix::new(&per_date, width)
        })
        .collect();
    let rows_per_date: Vec<u64> = {
        let mut n = vec![0u64; distinct.len()];
        for &d in &day {
            n[d] += 1;
        }
        n
    };
    // Per-date features: the date's mean (every row of a date has the same value).
    let series: Vec<(String, Vec<f64>)> = PER_DATE_FEATURES
        .iter()
        .map(|name| {
            let i = NUMERIC_FEATURES
                .iter()
                .position(|n| n == name)
                .expect("a numeric feature");
            let mut sum = vec![(0.0, 0u32); distinct.len()];
            for (f, &d) in rows.iter().zip(&day) {
                if let Some(x) = f.numeric(i) {
                    sum[d].0 += x;
                    sum[d].1 += 1;
                }
            }
            let values = sum
                .iter()
                .map(|&(s, n)| if n > 0 { s / f64::from(n) } else { f64::NAN })
                .collect();
            (name.to_string(), values)
        })
        .collect();
    let per_date: BTreeMap<String, Vec<f64>> = series
        .iter()
        .filter_map(|(name, v)| {
            let defined: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            percentiles(&defined).map(|p| (name.clone(), p))
        })
        .collect();
    let features = WINDOW_DATES
        .iter()
        .filter_map(|&w| {
            let chunks = (distinct.len() + 1).checked_sub(w)?;
            if chunks < MIN_CHUNKS {
                return None;
            }
            let mut names: Vec<String> = Vec::new();
            let mut stats: Vec<Vec<f64>> = Vec::new();
            for (p, prefix) in pooled.iter().zip(&prefixes) {
                names.push(p.name.clone());
                stats.push(
                    (0..chunks)
                        .map(|c| psi_of_counts(&p.expected, &prefix.window(c, c + w)))
                        .collect(),
                );
            }
            for (name, values) in &series {
                let Some(points) = per_date.get(name) else { continue };
                names.push(name.clone());
                stats.push(
                    (0..chunks)
                        .map(|c| {
                            let window: Vec<f64> = values[c..c + w].iter().copied().filter(|x| !x.is_nan()).collect();
                            ks_distance(points, &window).unwrap_or(f64::NAN)
                        })
                        .collect(),
                );
            }
            let rows = rows_per_date
                .windows(w)
                .map(|x| x.iter().sum::<u64>() as f64)
                .sum::<f64>()
                / chunks as f64;
            let is_psi: Vec<bool> = (0..stats.len()).map(|f| f < pooled.len()).collect();
            thresholds(w, chunks, rows, names, &stats, &is_psi, alpha)
        })
        .collect();
    DriftCalibration {
        false_alarm_rate: alpha,
        per_date,
        features,
        score: Vec::new(),
    }
}

/// Calibrate `p_score`'s thresholds on the holdout's scores (`dates[i]`
/// the scan date of `scores[i]`) against its reference bins.
pub fn calibrate_score(
    dates: &[NaiveDate],
    scores: &[f64],
    reference: &NumericReference,
    alpha: f64,
) -> Vec<Thresholds> {
    let mut by_date: BTreeMap<NaiveDate, Vec<u64>> = BTreeMap::new();
    for (d, &s) in dates.iter().zip(scores) {
        by_date.entry(*d).or_insert_with(|| vec![0; reference.shares.len()])[bin_of(s, &reference.edges)] += 1;
    }
    let per_date: Vec<Vec<u64>> = by_date.into_values().collect();
    let prefix = Prefix::new(&per_date, reference.shares.len());
    WINDOW_DATES
        .iter()
        .filter_map(|&w| {
            let chunks = (per_date.len() + 1).checked_sub(w)?;
            if chunks < MIN_CHUNKS {
                return None;
            }
            let stats: Vec<f64> = (0..chunks)
                .map(|c| psi_of_counts(&reference.shares, &prefix.window(c, c + w)))
                .collect();
            let rows = (0..chunks)
                .map(|c| prefix.window(c, c + w).iter().sum::<u64>() as f64)
                .sum::<f64>()
                / chunks as f64;
            thresholds(w, chunks, rows, vec!["p_score".to_string()], &[stats], &[true], alpha)
        })
        .collect()
}

/// The thresholds of one window length: each statistic's family-wise
/// empirical quantile over the chunks, and for a PSI not below its
/// log-normal tail (see [`log_normal_tail`]). `is_psi[f]` tells which.
fn thresholds(
    dates: usize,
    chunks: usize,
    rows: f64,
    names: Vec<String>,
    stats: &[Vec<f64>],
    is_psi: &[bool],
    alpha: f64,
) -> Option<Thresholds> {
    let (level, empirical) = family_thresholds(stats, alpha)?;
    let z = normal_quantile(1.0 - alpha / JUDGED as f64);
    let features = names
        .into_iter()
        .zip(empirical)
        .zip(stats.iter().zip(is_psi))
        .filter(|((_, t), _)| !t.is_nan())
        .map(|((name, t), (chunk_stats, &psi))| {
            // alpha 0 (every chunk within): no tail to extrapolate to.
            let tail = if psi && z.is_finite() {
                log_normal_tail(chunk_stats, z)
            } else {
                None
            };
            (name, tail.map_or(t, |tail| t.max(tail)))
        })
        .collect();
    Some(Thresholds {
        dates,
        chunks,
        rows,
        level,
        features,
    })
}

/// Statistics a monitor run judges: every feature and `p_score`.
const JUDGED: usize = NUMERIC_FEATURES.len() + CATEGORICAL_FEATURES.len() + 1;

/// exp(mean + z·sd) of the logs of a PSI's chunk values. The empirical
/// quantile alone is at best the reference's most extreme chunk, and a
/// feature with a memory of weeks to a year (volatility, 52-week
/// distances) has few independent episodes in a few years of reference:
/// a live period a little beyond the reference's record would alert. The
/// log-normal tail, its spread estimated from all chunks, reaches beyond
/// the record; `z` is the normal quantile at 1 − alpha / (statistics
/// judged): a family-wise `alpha` if the logs were normal (Bonferroni).
fn log_normal_tail(values: &[f64], z: f64) -> Option<f64> {
    let logs: Vec<f64> = values.iter().filter(|x| **x > 0.0).map(|x| x.ln()).collect();
    if logs.len() < 2 {
        return None;
    }
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let sd = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Some((mean + z * sd).exp())
}

/// The standard normal quantile at `p` in (0, 1): Acklam's rational
/// approximation (relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let poly = |coef: &[f64], x: f64| coef.iter().fold(0.0, |acc, c| acc * x + c);
    let tail = |q: f64| poly(&C, q) / (poly(&D, q) * q + 1.0);
    const LOW: f64 = 0.02425;
    if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        poly(&A, r) * q / (poly(&B, r) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::config::numeric_reference;
    use crate::features::drift::numeric_psi;

    #[test]
    fn family_thresholds_by_hand() {
        // Ten chunks, two features. Feature a is highest on chunk 9,
        // feature b on chunk 0; alpha 0.1 allows one chunk over.
        let a: Vec<f64> = (0..10).map(|c| c as f64).collect(); // cdf (c+1)/10
        let b: Vec<f64> = (0..10).map(|c| (9 - c) as f64 * 10.0).collect();
        // Each chunk's highest CDF: max((c+1)/10, (10-c)/10): 1.0 for
        // chunks 0 and 9, then 0.9 (chunks 1, 8), 0.8, … Sorted down:
        // 1.0, 1.0, 0.9, … One allowed: the level is the second, 1.0.
        let (level, t) = family_thresholds(&[a.clone(), b.clone()], 0.1).unwrap();
        assert_eq!(level, 1.0);
        assert_eq!(t, vec![9.0, 90.0]);
        // Two allowed (alpha 0.2): level the third highest, 0.9: the
        // thresholds are each feature's value at CDF 0.9; chunks 0 and 9
        // are over (b = 90 on chunk 0, a = 9 on chunk 9), 2 of 10.
        let (level, t) = family_thresholds(&[a.clone(), b.clone()], 0.2).unwrap();
        assert_eq!(level, 0.9);
        assert_eq!(t, vec![8.0, 80.0]);
        let over = (0..10).filter(|&c| a[c] > t[0] || b[c] > t[1]).count();
        assert_eq!(over, 2);
        // Perfectly dependent features count once: with a twice, alpha 0.2
        // puts each threshold at its 80th percentile, not lower.
        let (level, t) = family_thresholds(&[a.clone(), a.clone()], 0.2).unwrap();
        assert_eq!((level, t), (0.8, vec![7.0, 7.0]));
        // An undefined chunk value is left out of that feature's CDF.
        let mut c = a.clone();
        c[0] = f64::NAN;
        let (_, t) = family_thresholds(&[c], 0.0).unwrap();
        assert_eq!(t, vec![9.0]);
    }

    #[test]
    fn ks_distance_by_hand() {
        // The reference is uniform on 0..100: percentiles 0, 1, …, 100.
        let points: Vec<f64> = (0..=100).map(f64::from).collect();
        assert_eq!(cdf_of_percentiles(&points, 25.5), 0.255);
        assert_eq!(cdf_of_percentiles(&points, -1.0), 0.0);
        assert_eq!(cdf_of_percentiles(&points, 100.0), 1.0);
        // Values 10, 20, 90: ECDF steps 1/3, 2/3, 1 against F = .1 .2 .9:
        // D = max(1/3 − .1, 2/3 − .2, 1 − .9, .1 − 0, .2 − 1/3, .9 − 2/3) = 2/3 − .2.
        let d = ks_distance(&points, &[90.0, 10.0, 20.0]).unwrap();
        assert!((d - (2.0 / 3.0 - 0.2)).abs() < 1e-12, "{d}");
        // One value above the whole reference: D = 1.
        assert_eq!(ks_distance(&points, &[150.0]), Some(1.0));
        // One value at the median: D = 0.5 either way.
        assert_eq!(ks_distance(&points, &[50.0]), Some(0.5));
        assert_eq!(ks_distance(&points, &[]), None);
        let p = percentiles(&(0..=200).map(f64::from).collect::<Vec<_>>()).unwrap();
        assert_eq!((p[0], p[50], p[100]), (0.0, 100.0, 200.0));
    }

    fn features_with(i: usize, x: f64) -> Features {
        let mut f = Features::new([None; crate::features::N_NUMERIC], [None; 5]);
        f.set_numeric(i, x);
        f
    }

    #[test]
    fn chunk_psi_is_the_monitor_psi_and_thresholds_follow_the_chunks() {
        // 30 dates × 20 rows of rsi_14; dates 0..30 each hold values
        // shifted by the date (date d: d + 0..20), so the per-chunk PSI
        // of a date far from the middle is large.
        let rsi = NUMERIC_FEATURES.iter().position(|n| *n == "rsi_14").unwrap();
        let market = NUMERIC_FEATURES.iter().position(|n| *n == "market_ret_5d").unwrap();
        let day0 = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap();
        let mut dates = Vec::new();
        let mut rows = Vec::new();
        for d in 0..30u64 {
            for r in 0..20 {
                dates.push(day0 + chrono::Days::new(d));
                let mut f = features_with(rsi, (d + r) as f64);
                f.set_numeric(market, d as f64);
                rows.push(f);
            }
        }
        let refs: Vec<&Features> = rows.iter().collect();
        let values: Vec<f64> = refs.iter().filter_map(|f| f.numeric(rsi)).collect();
        let reference = Reference {
            rows: rows.len() as u64,
            numeric: [("rsi_14".to_string(), numeric_reference(values.clone()).unwrap())].into(),
            categorical: BTreeMap::new(),
        };
        let cal = calibrate_features(&dates, &refs, &reference, 0.0);
        // Windows of 1..=10 dates have ≥ 20 chunks of 30 dates; 15 has 16.
        let lengths: Vec<usize> = cal.features.iter().map(|t| t.dates).collect();
        assert_eq!(lengths, vec![1, 2, 3, 5, 7, 10]);
        // With alpha 0 the threshold is the highest chunk: for one date,
        // the PSI of date 0's or date 29's rows (by hand through the
        // monitor's own PSI function).
        let one = cal.features_for(1).unwrap();
        assert_eq!((one.chunks, one.rows), (30, 20.0));
        let r = &reference.numeric["rsi_14"];
        let edge: f64 = [0u64, 29]
            .iter()
            .map(|&d| numeric_psi(r, &(0..20).map(|x| (d + x) as f64).collect::<Vec<_>>()).unwrap())
            .fold(0.0, f64::max);
        assert!((one.features["rsi_14"] - edge).abs() < 1e-12);
        // A window of 8 dates uses the thresholds of 7.
        assert_eq!(cal.features_for(8).unwrap().dates, 7);
        assert!(cal.features_for(0).is_none());
        // The per-date feature has one value per date, 0..29. A single
        // date at either end is wholly outside the other dates: KS 1.
        let points = &cal.per_date["market_ret_5d"];
        assert_eq!((points[0], points[100]), (0.0, 29.0));
        assert_eq!(one.features["market_ret_5d"], 1.0);
        // Five consecutive dates: the most extreme chunk is one of the ends.
        let five = cal.features_for(5).unwrap();
        let ends = [[0.0, 1.0, 2.0, 3.0, 4.0], [25.0, 26.0, 27.0, 28.0, 29.0]]
            .iter()
            .map(|w| ks_distance(points, w).unwrap())
            .fold(0.0, f64::max);
        assert!(ends > 0.8, "{ends}");
        assert!((five.features["market_ret_5d"] - ends).abs() < 1e-12);
    }

    #[test]
    fn normal_quantiles_against_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_985),
            (0.99, 2.326_347_874),
            (0.999, 3.090_232_306),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}: {}", normal_quantile(p));
            assert!((normal_quantile(1.0 - p) + z).abs() < 1e-8);
        }
        // The deep tail: 1 − 1e-6 at 4.753424.
        assert!((normal_quantile(1.0 - 1e-6) - 4.753_424_309).abs() < 1e-6);
    }

    #[test]
    fn a_psi_threshold_reaches_the_log_normal_tail_of_its_chunks() {
        // 40 dates × 10 scores; date d's are (r / 10)^(1 + (d mod 7) / 4),
        // skewed more or less, so the chunks' PSIs vary. The threshold of one-date
        // windows is the larger of the chunks' family-wise quantile and
        // exp(mean + z·sd) of their logs, z at 1 − 0.01 / 32.
        let day0 = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap();
        let score = |d: u64, r: u32| (f64::from(r) / 10.0).powf(1.0 + (d % 7) as f64 / 4.0);
        let mut dates = Vec::new();
        let mut scores = Vec::new();
        for d in 0..40u64 {
            for r in 0..10 {
                dates.push(day0 + chrono::Days::new(d));
                scores.push(score(d, r));
            }
        }
        let reference = numeric_reference(scores.clone()).unwrap();
        let t = calibrate_score(&dates, &scores, &reference, 0.01);
        let chunk: Vec<f64> = (0..40u64)
            .map(|d| numeric_psi(&reference, &(0..10).map(|r| score(d, r)).collect::<Vec<_>>()).unwrap())
            .collect();
        let logs: Vec<f64> = chunk.iter().map(|x| x.ln()).collect();
        let mean = logs.iter().sum::<f64>() / 40.0;
        let sd = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 39.0).sqrt();
        let z = 3.420_526_701; // the normal quantile at 1 − 0.01 / 32 (Python's NormalDist)
        let tail = (mean + z * sd).exp();
        // alpha · 40 chunks < 1: the empirical part is the highest chunk.
        let highest = chunk.iter().copied().fold(0.0, f64::max);
        let want = tail.max(highest);
        assert!(
            (t[0].features["p_score"] - want).abs() < 1e-6 * want,
            "{} vs {want}",
            t[0].features["p_score"]
        );
        assert!(
            tail > highest,
            "the tail reaches beyond the record here: {tail} {highest}"
        );
    }

    #[test]
    fn score_thresholds_come_from_the_holdout_dates() {
        let day0 = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap();
        let mut dates = Vec::new();
        let mut scores = Vec::new();
        for d in 0..25u64 {
            for r in 0..10 {
                dates.push(day0 + chrono::Days::new(d));
                scores.push(f64::from(r) / 10.0 + if d == 3 { 0.05 } else { 0.0 });
            }
        }
        let reference = numeric_reference(scores.clone()).unwrap();
        let t = calibrate_score(&dates, &scores, &reference, 0.0);
        assert_eq!(t.iter().map(|t| t.dates).collect::<Vec<_>>(), vec![1, 2, 3, 5]);
        let highest = (0..25u64)
            .map(|d| {
                let day: Vec<f64> = (0..10)
                    .map(|r| f64::from(r) / 10.0 + if d == 3 { 0.05 } else { 0.0 })
                    .collect();
                numeric_psi(&reference, &day).unwrap()
            })
            .fold(0.0, f64::max);
        assert!((t[0].features["p_score"] - highest).abs() < 1e-12);
    }
}
