//! `feature_config`: the feature list, its order and types, a hash of
//! them, and the reference distribution for drift monitoring (10 quantile
//! bins per numeric feature, category shares), from the training rows.
//!
//! The hash covers what a model depends on — names, order, types and the
//! definitions' version — not the reference distribution, so every model
//! trained by the same code has the same hash, and a model whose hash
//! differs from what the running code produces is refused, naming the
//! columns that differ.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CATEGORICAL_FEATURES, Families, Features, NUMERIC_FEATURES};
use crate::indicators::signals;

/// Bump when a feature's definition changes (not only its name).
pub const FEATURE_DEFINITIONS_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `numeric` or `categorical`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericReference {
    /// 11 edges: min, the 9 deciles, max.
    pub edges: Vec<f64>,
    /// Share of training rows in each of the 10 bins.
    pub shares: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reference {
    pub rows: u64,
    pub numeric: BTreeMap<String, NumericReference>,
    pub categorical: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConfig {
    pub definitions_version: u32,
    pub columns: Vec<Column>,
    pub hash: String,
    pub reference: Reference,
    /// The label the models were trained to predict (not part of the hash).
    #[serde(default)]
    pub label: Option<crate::labels::Barrier>,
    /// How `score` ranks: `probability` or `expected_return` (chosen by
    /// bootstrap's walk-forward backtest; not part of the hash).
    #[serde(default)]
    pub ranking: Option<String>,
    /// The batch model's weight in the ensemble `score` ranks by (chosen
    /// on the walk-forward folds before the holdout; 0.5 when absent).
    #[serde(default)]
    pub batch_weight: Option<f64>,
    /// What the models showed on the holdout's validation dates, for
    /// `monitor` to compare live figures with (not part of the hash).
    #[serde(default)]
    pub validation: Option<ValidationReference>,
    /// The mean after-cost return of out-of-sample rows (walk-forward
    /// folds and holdout) by bin of their ranking score: what `score`
    /// reports as a pick's expected return (not part of the hash).
    #[serde(default)]
    pub expected_return: Vec<crate::models::expected::ReturnBin>,
    /// The optional feature families the batch model was trained with
    /// (their columns are in `columns` and the hash).
    #[serde(default)]
    pub families: Families,
    /// The drift thresholds calibrated on chunks of the reference period
    /// (absent in configs written before them: the monitor then uses the
    /// PSI rule of thumb).
    #[serde(default)]
    pub drift: Option<DriftCalibration>,
}

/// The holdout's figures a live model is held to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReference {
    pub k: usize,
    pub precision_at_k: f64,
    /// Deciles of the live models' ensemble score on the validation rows:
    /// the reference for the drift of `p_score`.
    pub score: Option<NumericReference>,
    /// The top-K's mean after-cost return per pick on the holdout.
    #[serde(default)]
    pub top_k_mean_return: Option<f64>,
}

/// The thresholds for windows of `dates` dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub dates: usize,
    /// Chunks of the reference period they come from.
    pub chunks: usize,
    /// Mean rows per chunk.
    pub rows: f64,
    /// The quantile level of each feature's chunk statistics the thresholds
    /// sit at (the same for every feature).
    pub level: f64,
    pub features: BTreeMap<String, f64>,
}

/// What `monitor` judges drift by, stored in `feature_config` (computed by
/// [`super::calibration`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DriftCalibration {
    pub false_alarm_rate: f64,
    /// Percentiles (0, 1, …, 100) of each per-date feature's values over
    /// the reference dates.
    pub per_date: BTreeMap<String, Vec<f64>>,
    /// Thresholds of the features, by window length.
    pub features: Vec<Thresholds>,
    /// Thresholds of `p_score` (calibrated on the holdout's dates and
    /// scores), by window length.
    pub score: Vec<Thresholds>,
}

impl DriftCalibration {
    /// The feature thresholds for a window of `dates` dates.
    pub fn features_for(&self, dates: usize) -> Option<&Thresholds> {
        longest_within(&self.features, dates)
    }

    pub fn score_for(&self, dates: usize) -> Option<&Thresholds> {
        longest_within(&self.score, dates)
    }
}

fn longest_within(all: &[Thresholds], dates: usize) -> Option<&Thresholds> {
    all.iter().filter(|t| t.dates <= dates).max_by_key(|t| t.dates)
}

/// A feature config that does not match the running code.
#[derive(Debug, thiserror::Error)]
#[error(
    "feature config {stored_hash:.12} does not match this program's features {current_hash:.12}: {differences}; \
     retrain with bootstrap"
)]
pub struct FeatureMismatch {
    pub stored_hash: String,
    pub current_hash: String,
    pub differences: String,
}

/// The columns the running code produces with `families`: the base
/// numerics, the categoricals, then the families' columns (kind
/// `numeric`, or `rank` when the rank family replaces their values).
pub fn current_columns(families: Families) -> Vec<Column> {
    let numeric = NUMERIC_FEATURES.iter().map(|n| Column {
        name: n.to_string(),
        kind: "numeric".into(),
    });
    let categorical = CATEGORICAL_FEATURES.iter().map(|n| Column {
        name: n.to_string(),
        kind: "categorical".into(),
    });
    let kind = if families.rank { "rank" } else { "numeric" };
    let extra = families.columns().into_iter().map(|name| Column {
        name,
        kind: kind.into(),
    });
    numeric.chain(categorical).chain(extra).collect()
}

pub fn hash_of(version: u32, columns: &[Column]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("swingml-features-v{version}\n"));
    for c in columns {
        hasher.update(format!("{}:{}\n", c.name, c.kind));
    }
    crate::store::atomic::hex(&hasher.finalize())
}

pub fn current_hash(families: Families) -> String {
    hash_of(FEATURE_DEFINITIONS_VERSION, &current_columns(families))
}

impl FeatureConfig {
    /// The config of the running code, with the reference distribution of
    /// `training` (rows with every feature defined).
    pub fn from_training<'a>(
        training: impl Iterator<Item = &'a Features> + Clone,
        families: Families,
    ) -> FeatureConfig {
        FeatureConfig {
            definitions_version: FEATURE_DEFINITIONS_VERSION,
            columns: current_columns(families),
            hash: current_hash(families),
            families,
            reference: reference(training),
            label: None,
            ranking: None,
            batch_weight: None,
            validation: None,
            expected_return: Vec::new(),
            drift: None,
        }
    }

    /// Refuse a config whose hash differs from the running code's, saying
    /// which columns differ. The stored hash is recomputed too, so an
    /// edited column list with a kept hash is caught.
    pub fn check_compatible(&self) -> Result<(), FeatureMismatch> {
        let current = current_columns(self.families);
        let recomputed = hash_of(self.definitions_version, &self.columns);
        if self.hash == current_hash(self.families) && recomputed == self.hash {
            return Ok(());
        }
        Err(FeatureMismatch {
            stored_hash: self.hash.clone(),
            current_hash: current_hash(self.families),
            differences: describe_differences(self, &current, &recomputed),
        })
    }
}

fn describe_differences(stored: &FeatureConfig, current: &[Column], recomputed: &str) -> String {
    let mut parts = Vec::new();
    if recomputed != stored.hash {
        parts.push("its hash does not match its own column list (edited file?)".to_string());
    }
    if stored.definitions_version != FEATURE_DEFINITIONS_VERSION {
        parts.push(format!(
            "definitions version {} (this program: {FEATURE_DEFINITIONS_VERSION})",
            stored.definitions_version
        ));
    }
    let missing: Vec<&str> = current
        .iter()
        .filter(|c| !stored.columns.contains(c))
        .map(|c| c.name.as_str())
        .collect();
    let extra: Vec<&str> = stored
        .columns
        .iter()
        .filter(|c| !current.contains(c))
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        parts.push(format!("missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("unknown {}", extra.join(", ")));
    }
    if missing.is_empty() && extra.is_empty() && stored.columns != current {
        parts.push(format!("{} columns in another order", stored.columns.len()));
    }
    if parts.is_empty() {
        parts.push("hash differs".to_string());
    }
    format!(
        "expected {} columns, have {}; {}",
        current.len(),
        stored.columns.len(),
        parts.join("; ")
    )
}

fn reference<'a>(training: impl Iterator<Item = &'a Features> + Clone) -> Reference {
    let rows: Vec<&Features> = training.collect();
    // One feature per task: the order statistics of a million values each.
    let numeric: Vec<Option<NumericReference>> = (0..NUMERIC_FEATURES.len())
        .into_par_iter()
        .map(|i| numeric_reference(rows.iter().filter_map(|f| f.numeric(i)).collect()))
        .collect();
    let mut out = Reference {
        rows: rows.len() as u64,
        ..Reference::default()
    };
    for (name, reference) in NUMERIC_FEATURES.iter().zip(numeric) {
        if let Some(r) = reference {
            out.numeric.insert(name.to_string(), r);
        }
    }
    for (i, name) in CATEGORICAL_FEATURES.iter().enumerate() {
        let mut counts = [0u64; 256];
        for f in &rows {
            counts[f.category_code(i) as usize] += 1;
        }
        let shares = category_shares(&counts);
        out.categorical.insert(name.to_string(), shares);
    }
    out
}

/// Decile edges (the 0th, 10th, …, 100th order statistics) and the share of
/// the values in each bin.
pub fn numeric_reference(mut values: Vec<f64>) -> Option<NumericReference> {
    if values.is_empty() {
        return None;
    }
    let last = values.len() - 1;
    let positions: Vec<usize> = (0..=10).map(|q| q * last / 10).collect();
    // Selecting the 11 order statistics left to right, each in the part
    // after the previous one, avoids sorting the whole column.
    let mut edges = Vec::with_capacity(positions.len());
    let mut from = 0;
    for &p in &positions {
        if p >= from {
            let (_, nth, _) = values[from..].select_nth_unstable_by(p - from, f64::total_cmp);
            edges.push(*nth);
            from = p + 1;
        } else {
            // Same position as the previous edge (fewer than 10 values).
            edges.push(*edges.last().expect("an earlier edge"));
        }
    }
    let shares = bin_shares(values.iter().copied(), &edges);
    Some(NumericReference { edges, shares })
}

/// Share of each defined category, from counts by category code.
fn category_shares(counts: &[u64; 256]) -> BTreeMap<String, f64> {
    let defined: Vec<(&'static str, u64)> = (0..=u8::MAX)
        .filter_map(|c| signals::label_of(c).map(|label| (label, counts[c as usize])))
        .filter(|&(_, n)| n > 0)
        .collect();
    let total = defined.iter().map(|&(_, n)| n).sum::<u64>().max(1) as f64;
    defined
        .into_iter()
        .map(|(label, n)| (label.to_string(), n as f64 / total))
        .collect()
}

/// The bin of a value: by the 9 inner edges, values equal to an edge go
/// to the lower bin; outside the training range to the first / last bin.
pub fn bin_of(value: f64, edges: &[f64]) -> usize {
    let inner = &edges[1..edges.len() - 1];
    inner.partition_point(|&e| e < value)
}

/// Share of `values` in each bin.
pub fn bin_shares(values: impl Iterator<Item = f64>, edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0.0; edges.len() - 1];
    let mut total = 0.0;
    for v in values {
        counts[bin_of(v, edges)] += 1.0;
        total += 1.0;
    }
    counts.iter().map(|c| c / f64::max(total, 1.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(x: f64, cat: &'static str) -> Features {
        Features::new([Some(x); crate::features::N_NUMERIC], [Some(cat); 5])
    }

    #[test]
    fn deciles_of_1_to_100_and_category_shares() {
        let rows: Vec<Features> = (1..=100)
            .map(|i| features(i as f64, if i <= 25 { "up" } else { "down" }))
            .collect();
        let config = FeatureConfig::from_training(rows.iter(), Families::NONE);
        let rsi = &config.reference.numeric["rsi_14"];
        assert_eq!(rsi.edges.len(), 11);
        assert_eq!(rsi.edges[0], 1.0);
        assert_eq!(rsi.edges[10], 100.0);
        assert!((rsi.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(rsi.shares.iter().all(|s| (s - 0.1).abs() < 0.011), "{:?}", rsi.shares);
        assert_eq!(config.reference.categorical["madi_trend"]["up"], 0.25);
        config.check_compatible().unwrap();
    }

    #[test]
    fn a_changed_column_list_is_refused_by_name() {
        let rows = [features(1.0, "up")];
        let mut config = FeatureConfig::from_training(rows.iter(), Families::NONE);
        config.columns.retain(|c| c.name != "bb_width");
        config.columns.push(Column {
            name: "raw_close".into(),
            kind: "numeric".into(),
        });
        config.hash = hash_of(config.definitions_version, &config.columns);
        let err = config.check_compatible().unwrap_err().to_string();
        assert!(err.contains("expected 31 columns, have 31"), "{err}");
        assert!(
            err.contains("missing bb_width") && err.contains("unknown raw_close"),
            "{err}"
        );

        let mut tampered = FeatureConfig::from_training(rows.iter(), Families::NONE);
        tampered.columns.pop();
        let err = tampered.check_compatible().unwrap_err().to_string();
        assert!(
            err.contains("edited file") && err.contains("missing ta_recommendation"),
            "{err}"
        );
    }

    #[test]
    fn bins_by_inner_edges() {
        let edges: Vec<f64> = (0..=10).map(|i| i as f64).collect();
        assert_eq!(bin_of(-5.0, &edges), 0);
        assert_eq!(bin_of(1.0, &edges), 0);
        assert_eq!(bin_of(1.5, &edges), 1);
        assert_eq!(bin_of(9.5, &edges), 9);
        assert_eq!(bin_of(50.0, &edges), 9);
    }
}
