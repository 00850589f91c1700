//! The drift of the monitored window against the training reference:
//! each feature's PSI (and `p_score`'s) on its reference bins, the
//! per-date features' Kolmogorov–Smirnov distance over the window's
//! dates, each judged against the threshold bootstrap calibrated on chunks
//! of the reference with as many dates ([`crate::features::calibration`]).
//! Too few rows is "insufficient data", never an alert; a feature config
//! without calibration (or a reference too short to chunk) falls back on
//! the PSI rule of thumb (`[monitor] psi_warn` / `psi_alert`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::predictions::Scored;
use crate::features::calibration::{DriftCalibration, Thresholds, ks_distance};
use crate::features::config::FeatureConfig;
use crate::features::drift::{categorical_psi, numeric_psi};
use crate::features::{CATEGORICAL_FEATURES, NUMERIC_FEATURES, PER_DATE_FEATURES};
use crate::settings::MonitorConfig;

pub const DRIFTED: &str = "drifted";
pub const WATCH: &str = "watch";
pub const OK: &str = "ok";
pub const INSUFFICIENT: &str = "insufficient data";
pub const NOT_JUDGED: &str = "not judged";

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub feature: String,
    /// `numeric`, `categorical`, `per_date` or `score`.
    pub kind: &'static str,
    /// `psi` or `ks`.
    pub statistic: &'static str,
    pub value: f64,
    /// The PSI (the statistic of every feature but the per-date ones).
    pub psi: Option<f64>,
    /// What `value` is judged against (absent when not judged).
    pub threshold: Option<f64>,
    /// `calibrated` or `rule of thumb`.
    pub threshold_from: Option<&'static str>,
    /// Rows (dates for a per-date feature) the statistic is measured on.
    pub sample: usize,
    /// `ok`, `drifted`, `watch` (rule of thumb's warning band),
    /// `insufficient data` or `not judged`.
    pub status: &'static str,
}

/// How the window's drift was judged, with the reason in words.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftCheck {
    /// `calibrated`, `rule of thumb`, `insufficient data` or `no rows`.
    pub status: &'static str,
    pub reason: String,
    pub dates: usize,
    pub rows: usize,
    /// The chunks the feature thresholds come from.
    pub calibration: Option<Calibrated>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Calibrated {
    pub dates: usize,
    pub chunks: usize,
    pub rows_per_chunk: f64,
    pub level: f64,
    pub false_alarm_rate: f64,
}

/// The drift of every feature and of `p_score` over `rows`.
pub(super) fn drift(config: &FeatureConfig, rows: &[Scored], cfg: &MonitorConfig) -> (Vec<Drift>, DriftCheck) {
    let dates: usize = {
        let mut d: Vec<NaiveDate> = rows.iter().map(|r| r.as_of).collect();
        d.sort_unstable();
        d.dedup();
        d.len()
    };
    let calibration = config.drift.as_ref();
    let feature_thresholds = calibration.and_then(|c| c.features_for(dates));
    let judge = Judge {
        cfg,
        thresholds: feature_thresholds,
    };
    let mut out = Vec::new();
    for (i, name) in NUMERIC_FEATURES.iter().enumerate() {
        if PER_DATE_FEATURES.contains(name) {
            continue;
        }
        let values: Vec<f64> = rows.iter().filter_map(|r| r.numeric[i]).collect();
        if let Some(r) = config.reference.numeric.get(*name)
            && let Some(psi) = numeric_psi(r, &values)
        {
            out.push(judge.pooled(name, "numeric", psi, values.len()));
        }
    }
    for (i, name) in CATEGORICAL_FEATURES.iter().enumerate() {
        let values: Vec<&str> = rows.iter().filter_map(|r| r.categorical[i].as_deref()).collect();
        if let Some(shares) = config.reference.categorical.get(*name)
            && let Some(psi) = categorical_psi(shares, values.iter().copied())
        {
            out.push(judge.pooled(name, "categorical", psi, values.len()));
        }
    }
    out.extend(per_date(calibration, feature_thresholds, rows));
    let scores: Vec<f64> = rows.iter().map(|r| r.p_score).collect();
    if let Some(r) = config.validation.as_ref().and_then(|v| v.score.as_ref())
        && let Some(psi) = numeric_psi(r, &scores)
    {
        let judge = Judge {
            cfg,
            thresholds: calibration.and_then(|c| c.score_for(dates)),
        };
        out.push(judge.pooled("p_score", "score", psi, scores.len()));
    }
    let check = check(calibration, feature_thresholds, dates, rows.len(), cfg);
    (out, check)
}

struct Judge<'a> {
    cfg: &'a MonitorConfig,
    thresholds: Option<&'a Thresholds>,
}

impl Judge<'_> {
    /// A PSI feature: insufficient below the minimum rows, else against its
    /// calibrated threshold (scaled up when the window has fewer rows than
    /// the chunks had), else the rule of thumb.
    fn pooled(&self, name: &str, kind: &'static str, psi: f64, n: usize) -> Drift {
        let calibrated = self.thresholds.and_then(|t| Some((t.features.get(name)?, t.rows)));
        let (threshold, from, status) = if n < self.cfg.min_drift_rows {
            (None, None, INSUFFICIENT)
        } else if let Some((&t, chunk_rows)) = calibrated {
            let t = t * small_sample_factor(n, chunk_rows);
            (Some(t), Some("calibrated"), if psi > t { DRIFTED } else { OK })
        } else {
            let status = if psi >= self.cfg.psi_alert {
                DRIFTED
            } else if psi >= self.cfg.psi_warn {
                WATCH
            } else {
                OK
            };
            (Some(self.cfg.psi_alert), Some("rule of thumb"), status)
        };
        Drift {
            feature: name.to_string(),
            kind,
            statistic: "psi",
            value: psi,
            psi: Some(psi),
            threshold,
            threshold_from: from,
            sample: n,
            status,
        }
    }
}

/// The sampling noise of a PSI over `n` rows is about a chi-square over n
/// (its mean (buckets − 1) / n, its tail in proportion): a window with
/// fewer rows than the reference's chunks has its threshold scaled by
/// chunk rows / n. Conservative: the part of the threshold that is the
/// market's state, not noise, is scaled too.
pub fn small_sample_factor(n: usize, chunk_rows: f64) -> f64 {
    if n == 0 || (n as f64) >= chunk_rows {
        return 1.0;
    }
    chunk_rows / n as f64
}

/// The per-date features: the window's per-date values (each date's mean
/// over its rows: every row of a date has the same value) against the
/// reference's per-date values.
fn per_date(calibration: Option<&DriftCalibration>, thresholds: Option<&Thresholds>, rows: &[Scored]) -> Vec<Drift> {
    let mut out = Vec::new();
    for name in PER_DATE_FEATURES {
        let i = NUMERIC_FEATURES
            .iter()
            .position(|n| *n == name)
            .expect("a numeric feature");
        let mut by_date: BTreeMap<NaiveDate, (f64, u32)> = BTreeMap::new();
        for r in rows {
            if let Some(x) = r.numeric[i] {
                let e = by_date.entry(r.as_of).or_default();
                e.0 += x;
                e.1 += 1;
            }
        }
        let values: Vec<f64> = by_date.values().map(|&(s, n)| s / f64::from(n)).collect();
        let Some(points) = calibration.and_then(|c| c.per_date.get(name)) else {
            continue;
        };
        let Some(ks) = ks_distance(points, &values) else {
            continue;
        };
        let threshold = thresholds.and_then(|t| t.features.get(name)).copied();
        // KS never exceeds 1: where the reference's own chunks reached 1
        // (a date at its extreme), a window is drifted when every value of
        // it lies beyond the reference's range.
        let outside = |x: &f64| *x < points[0] || *x > points[points.len() - 1];
        let drifted = |t: f64| if t >= 1.0 { values.iter().all(outside) } else { ks > t };
        out.push(Drift {
            feature: name.to_string(),
            kind: "per_date",
            statistic: "ks",
            value: ks,
            psi: None,
            threshold,
            threshold_from: threshold.map(|_| "calibrated"),
            sample: values.len(),
            status: match threshold {
                Some(t) if drifted(t) => DRIFTED,
                Some(_) => OK,
                None => NOT_JUDGED,
            },
        });
    }
    out
}

fn check(
    calibration: Option<&DriftCalibration>,
    thresholds: Option<&Thresholds>,
    dates: usize,
    rows: usize,
    cfg: &MonitorConfig,
) -> DriftCheck {
    let calibrated = thresholds.map(|t| Calibrated {
        dates: t.dates,
        chunks: t.chunks,
        rows_per_chunk: t.rows,
        level: t.level,
        false_alarm_rate: calibration.map_or(0.0, |c| c.false_alarm_rate),
    });
    let (status, reason) = if rows == 0 {
        ("no rows", "no scored rows in the window".to_string())
    } else if rows < cfg.min_drift_rows {
        (
            INSUFFICIENT,
            format!(
                "insufficient data: {rows} scored rows over {dates} date(s), fewer than the {} a PSI over 10 bins \
                 needs (`[monitor] min_drift_rows`); only the per-date features are judged",
                cfg.min_drift_rows
            ),
        )
    } else if let Some(c) = &calibrated {
        (
            "calibrated",
            format!(
                "thresholds calibrated on {} chunks of {} reference date(s) ({:.0} rows each): at most {:.0} % of \
                 them would have raised a feature drift alert (and as many of the holdout's for p_score)",
                c.chunks,
                c.dates,
                c.rows_per_chunk,
                100.0 * c.false_alarm_rate
            ),
        )
    } else {
        (
            "rule of thumb",
            match calibration {
                None => "the live feature config has no calibrated thresholds (bootstrap again to calibrate): PSI \
                         rule of thumb"
                    .to_string(),
                Some(_) => format!(
                    "the reference period is too short to calibrate windows of {dates} date(s): PSI rule of thumb"
                ),
            },
        )
    };
    DriftCheck {
        status,
        reason,
        dates,
        rows,
        calibration: calibrated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::N_NUMERIC;

    /// Two symbols on each of `values.len()` dates, every row of a date
    /// with the date's `market_ret_20d`.
    fn rows(values: &[f64]) -> Vec<Scored> {
        let i = NUMERIC_FEATURES.iter().position(|n| *n == "market_ret_20d").unwrap();
        let day0 = NaiveDate::from_ymd_opt(2021, 3, 1).unwrap();
        let mut out = Vec::new();
        for (d, &v) in values.iter().enumerate() {
            for symbol in ["A", "B"] {
                let mut numeric = vec![None; N_NUMERIC];
                numeric[i] = Some(v);
                out.push(Scored {
                    symbol: symbol.into(),
                    as_of: day0 + chrono::Days::new(d as u64),
                    p_score: 0.5,
                    rank: 1,
                    in_top_k: false,
                    rule_buy: false,
                    numeric,
                    categorical: vec![None; 5],
                    outcome: None,
                });
            }
        }
        out
    }

    #[test]
    fn per_date_features_are_judged_as_a_series_of_dates() {
        // Reference per-date values uniform on 0..100 (percentiles 0..=100);
        // threshold 0.6 for windows of 2 dates and more.
        let calibration = DriftCalibration {
            false_alarm_rate: 0.01,
            per_date: [("market_ret_20d".to_string(), (0..=100).map(f64::from).collect())].into(),
            features: vec![Thresholds {
                dates: 2,
                chunks: 50,
                rows: 4.0,
                level: 0.99,
                features: [("market_ret_20d".to_string(), 0.6)].into(),
            }],
            score: Vec::new(),
        };
        let judged = |values: &[f64]| {
            let all = per_date(
                Some(&calibration),
                calibration.features_for(values.len()),
                &rows(values),
            );
            let d = all.into_iter().find(|d| d.feature == "market_ret_20d").unwrap();
            (d.value, d.status, d.sample)
        };
        // Dates at 40 and 60 (two rows each, counted once): the ECDF is
        // 1/2 at 40 where F = .4, 1 at 60 where F = .6: D = max(.5 − .4,
        // .4 − 0, 1 − .6, .6 − .5) = 0.4.
        let (d, status, n) = judged(&[40.0, 60.0]);
        assert!((d - 0.4).abs() < 1e-12, "{d}");
        assert_eq!((status, n), (OK, 2));
        // Three dates at the top of the reference: at 95, F = .95 while
        // the ECDF just below it is 0: D = 0.95, over the threshold 0.6.
        let (d, status, _) = judged(&[95.0, 97.0, 99.0]);
        assert!((d - 0.95).abs() < 1e-12, "{d}");
        assert_eq!(status, DRIFTED);
        // Where the chunks reached KS 1, only a window wholly outside the
        // reference's range is drifted.
        let mut at_one = calibration.clone();
        at_one.features[0].features.insert("market_ret_20d".into(), 1.0);
        let judged_at_one = |values: &[f64]| {
            let all = per_date(Some(&at_one), at_one.features_for(values.len()), &rows(values));
            all.into_iter().find(|d| d.feature == "market_ret_20d").unwrap().status
        };
        assert_eq!(judged_at_one(&[101.0, 120.0]), DRIFTED);
        assert_eq!(judged_at_one(&[100.0, 120.0]), OK);
        // One date: no thresholds for windows that short.
        let (_, status, _) = judged(&[50.0]);
        assert_eq!(status, NOT_JUDGED);
    }

    #[test]
    fn a_smaller_window_gets_a_proportionally_higher_threshold() {
        assert_eq!(small_sample_factor(50, 200.0), 4.0);
        assert_eq!(small_sample_factor(300, 200.0), 1.0);
        assert_eq!(small_sample_factor(0, 200.0), 1.0);
    }
}
