//! Population stability index (PSI) between a reference distribution —
//! the training rows' bins stored in `feature_config`, never re-binned on
//! recent data — and recent values: Σ (a − e)·ln(a / e) over bins, with
//! empty bins counted as ε = 1e-4 so that a bin seen on one side only
//! weighs in without an infinite log. Rule of thumb (and the monitor's
//! thresholds): < 0.1 stable, ≥ 0.1 worth a look, ≥ 0.25 shifted.

use std::collections::BTreeMap;

use super::config::{NumericReference, bin_shares};

/// Share given to an empty bin.
pub const EPSILON: f64 = 1e-4;

/// PSI of `actual` shares against `expected` shares (same bins).
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(EPSILON), a.max(EPSILON));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// PSI of recent values of a numeric feature against its reference bins;
/// `None` without values.
pub fn numeric_psi(reference: &NumericReference, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let actual = bin_shares(values.iter().copied(), &reference.edges);
    Some(psi(&reference.shares, &actual))
}

/// PSI of recent categories against the reference shares; a category the
/// reference never saw is a bucket of its own (expected ε).
pub fn categorical_psi<'a>(reference: &BTreeMap<String, f64>, values: impl Iterator<Item = &'a str>) -> Option<f64> {
    let mut counts: BTreeMap<&str, f64> = BTreeMap::new();
    let mut total = 0.0;
    for v in values {
        *counts.entry(v).or_default() += 1.0;
        total += 1.0;
    }
    if total == 0.0 {
        return None;
    }
    let mut buckets: Vec<&str> = reference.keys().map(String::as_str).collect();
    buckets.extend(counts.keys().filter(|k| !reference.contains_key(**k)));
    let expected: Vec<f64> = buckets
        .iter()
        .map(|b| reference.get(*b).copied().unwrap_or(0.0))
        .collect();
    let actual: Vec<f64> = buckets
        .iter()
        .map(|b| counts.get(b).copied().unwrap_or(0.0) / total)
        .collect();
    Some(psi(&expected, &actual))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::config::numeric_reference;
    use crate::models::backtest::SplitMix;

    #[test]
    fn psi_by_hand() {
        // (0.3−0.5)·ln(0.3/0.5) + (0.7−0.5)·ln(0.7/0.5)
        let want = -0.2 * (0.6f64).ln() + 0.2 * (1.4f64).ln();
        assert!((psi(&[0.5, 0.5], &[0.3, 0.7]) - want).abs() < 1e-15);
        assert_eq!(psi(&[0.2, 0.8], &[0.2, 0.8]), 0.0);
        // An empty bin counts as ε: (1e-4 − 0.5)·ln(1e-4/0.5) + (1 − 0.5)·ln(2).
        let want = (1e-4 - 0.5) * (1e-4f64 / 0.5).ln() + 0.5 * 2f64.ln();
        assert!((psi(&[0.5, 0.5], &[0.0, 1.0]) - want).abs() < 1e-12);
    }

    fn normal(rng: &mut SplitMix, n: usize, mean: f64) -> Vec<f64> {
        // Box–Muller from two uniforms.
        (0..n)
            .map(|_| {
                let u1 = (rng.below(1 << 30) as f64 + 0.5) / (1u64 << 30) as f64;
                let u2 = rng.below(1 << 30) as f64 / (1u64 << 30) as f64;
                mean + (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            })
            .collect()
    }

    #[test]
    fn a_shifted_sample_drifts_and_a_fresh_one_does_not() {
        let mut rng = SplitMix(17);
        let reference = numeric_reference(normal(&mut rng, 50_000, 0.0)).unwrap();
        let same = numeric_psi(&reference, &normal(&mut rng, 5_000, 0.0)).unwrap();
        let shifted = numeric_psi(&reference, &normal(&mut rng, 5_000, 0.5)).unwrap();
        assert!(same < 0.1, "{same}");
        assert!(shifted >= 0.25, "{shifted}");
        assert_eq!(numeric_psi(&reference, &[]), None);
    }

    #[test]
    fn an_unseen_category_is_its_own_bucket() {
        let reference: BTreeMap<String, f64> = [("up".to_string(), 0.5), ("down".to_string(), 0.5)].into();
        let stable = categorical_psi(&reference, ["up", "down", "up", "down"].into_iter()).unwrap();
        assert_eq!(stable, 0.0);
        let unseen = categorical_psi(&reference, ["up", "down", "sideways", "sideways"].into_iter()).unwrap();
        // buckets down, up, sideways: expected .5 .5 ε; actual .25 .25 .5
        let want = 2.0 * (-0.25 * 0.5f64.ln()) + (0.5 - 1e-4) * (0.5f64 / 1e-4).ln();
        assert!((unseen - want).abs() < 1e-12, "{unseen} vs {want}");
        assert!(unseen >= 0.25);
    }
}
