//! The batch model: LightGBM (lightgbm3), early stopping on the
//! validation fold, fixed seed and `deterministic=true`, saved in
//! LightGBM's native text format (Python's
//! `lightgbm.Booster(model_file=…)` loads it).
//!
//! Its `objective` is the barrier classifier (`binary`, the default), or
//! one that ranks: `regression` on the after-cost return less its scan
//! date's mean, or `lambdarank` on per-date groups graded by after-cost
//! return quintile (0 worst … 4 best), stopping early on each date's
//! whole-list NDCG. A
//! ranking model's score is not a probability; it is mapped to one by a
//! logistic fit of the barrier label on the score (Platt scaling) over
//! the early-stopping slice, so the ensemble, the log loss and the
//! expected return read it as they read the classifier's.
//!
//! | parameter | default | purpose |
//! |---|---|---|
//! | `num_leaves` | 31 | leaves per tree |
//! | `learning_rate` | 0.05 | shrinkage |
//! | `num_rounds` | 500 | boosting rounds at most |
//! | `early_stopping_rounds` | 50 | stop when validation log loss stalls |
//! | `min_data_in_leaf` | 50 | smallest leaf |
//! | `feature_fraction` | 0.8 | columns per tree |
//! | `bagging_fraction` / `bagging_freq` | 0.8 / 1 | rows per tree |
//! | `num_threads` | 2 | OpenMP threads (fixed: results depend on it) |

use lightgbm3::{Booster, ImportanceType};

use super::boosting;
pub use super::boosting::{Datasets, Matrix};
use serde::{Deserialize, Serialize};

/// What LightGBM is trained to answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// P(target before stop): the barrier label.
    #[default]
    Binary,
    /// The after-cost return less its scan date's mean.
    Regression,
    /// Per-date ranking by after-cost return quintile.
    Lambdarank,
}

impl Objective {
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Binary => "binary",
            Objective::Regression => "regression",
            Objective::Lambdarank => "lambdarank",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchParams {
    pub objective: Objective,
    pub num_leaves: u32,
    pub learning_rate: f64,
    pub num_rounds: u32,
    pub early_stopping_rounds: u32,
    pub min_data_in_leaf: u32,
    pub feature_fraction: f64,
    pub bagging_fraction: f64,
    pub bagging_freq: u32,
    pub num_threads: u32,
}

impl Default for BatchParams {
    fn default() -> Self {
        BatchParams {
            objective: Objective::Binary,
            num_leaves: 31,
            learning_rate: 0.05,
            num_rounds: 500,
            early_stopping_rounds: 50,
            min_data_in_leaf: 50,
            feature_fraction: 0.8,
            bagging_fraction: 0.8,
            bagging_freq: 1,
            num_threads: 2,
        }
    }
}

impl BatchParams {
    pub fn check(&self) -> Result<(), String> {
        let fraction = |x: f64| x > 0.0 && x <= 1.0;
        if self.num_leaves < 2 || self.num_rounds == 0 || self.num_threads == 0 {
            return Err("batch.num_leaves must be ≥ 2, batch.num_rounds and batch.num_threads ≥ 1".into());
        }
        if !(self.learning_rate > 0.0 && fraction(self.feature_fraction) && fraction(self.bagging_fraction)) {
            return Err("batch.learning_rate must be > 0 and the fractions in (0, 1]".into());
        }
        Ok(())
    }

    /// LightGBM's parameter list ("key=value", space-separated).
    pub fn lightgbm(&self, seed: u64, rounds: u32, early_stopping: bool) -> String {
        let metric = match self.objective {
            Objective::Binary => "binary_logloss",
            Objective::Regression => "l2",
            Objective::Lambdarank => "ndcg",
        };
        let mut p = serde_json::json!({
            "objective": self.objective.as_str(),
            "metric": metric,
            "num_iterations": rounds,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "seed": seed,
            "deterministic": true,
            "force_col_wise": true,
            "num_threads": self.num_threads,
            "verbosity": -1,
        });
        if early_stopping {
            p["early_stopping_rounds"] = serde_json::json!(self.early_stopping_rounds);
        }
        if self.objective == Objective::Lambdarank {
            // NDCG over each date's whole list (LightGBM clamps the cut to
            // the group's size): at the top K alone the early-stopping
            // metric is so noisy that it stops after a few rounds.
            p["eval_at"] = serde_json::json!(NDCG_WHOLE_LIST);
        }
        let pairs = p.as_object().into_iter().flatten();
        pairs.map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    }
}

/// An NDCG cut deeper than any watchlist's date: the whole list.
const NDCG_WHOLE_LIST: usize = 100_000;

/// Rows from which a prediction uses every core.
const PARALLEL_PREDICT_ROWS: usize = 10_000;

/// A trained booster and the rounds it kept.
pub struct BatchModel {
    booster: Booster,
    n_features: usize,
    /// For a ranking objective, the logistic map (a, b) of its score s to
    /// a probability σ(a·s + b); `None` for the classifier.
    pub calibration: Option<[f64; 2]>,
}

impl BatchModel {
    /// Train, stopping early on `valid`'s log loss and keeping the best
    /// rounds; the model's probabilities on the validation rows come back
    /// with it.
    pub fn train(data: &Datasets, params: &BatchParams, seed: u64) -> anyhow::Result<(Self, Vec<f64>)> {
        let lgb_params = params.lightgbm(seed, params.num_rounds, true);
        let stopping = boosting::Stopping {
            patience: params.early_stopping_rounds,
            higher_is_better: params.objective == Objective::Lambdarank,
        };
        let boosted = boosting::boost(data, &lgb_params, params.num_rounds, Some(stopping))?;
        let scores = boosted
            .valid_scores
            .ok_or_else(|| anyhow::anyhow!("LightGBM kept no validation scores"))?;
        Ok((Self::from_text(&boosted.text)?, scores))
    }

    /// Train exactly `rounds` rounds without a validation set (the final
    /// model on all data, with the round count early stopping found).
    pub fn train_rounds(data: &Datasets, params: &BatchParams, seed: u64, rounds: u32) -> anyhow::Result<Self> {
        let lgb_params = params.lightgbm(seed, rounds, false);
        let boosted = boosting::boost(data, &lgb_params, rounds, None)?;
        Self::from_text(&boosted.text)
    }

    pub fn rounds(&self) -> u32 {
        self.booster.num_iterations().max(0) as u32
    }

    /// P(label = 1) for each row of a row-major matrix (a ranking model's
    /// score through its calibration).
    pub fn predict(&self, flat: &[f64]) -> anyhow::Result<Vec<f64>> {
        let raw = self.predict_raw(flat)?;
        Ok(match self.calibration {
            Some([a, b]) => raw.into_iter().map(|s| sigmoid(a * s + b)).collect(),
            None => raw,
        })
    }

    /// LightGBM's output: a probability for the classifier, a score for
    /// the ranking objectives.
    pub fn predict_raw(&self, flat: &[f64]) -> anyhow::Result<Vec<f64>> {
        if flat.is_empty() {
            return Ok(Vec::new());
        }
        // Every core for a validation set; one for a day's scoring, where
        // starting OpenMP threads costs more than the trees.
        let rows = flat.len() / self.n_features.max(1);
        let threads = if rows >= PARALLEL_PREDICT_ROWS {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        let params = format!("num_threads={threads}");
        Ok(self
            .booster
            .predict_with_params(flat, self.n_features as i32, true, &params)?)
    }

    /// LightGBM's native text format.
    pub fn to_text(&self) -> anyhow::Result<String> {
        Ok(self.booster.save_string()?)
    }

    pub fn from_text(text: &str) -> anyhow::Result<Self> {
        let booster = Booster::from_string(text)?;
        let n_features = booster.num_features().max(0) as usize;
        Ok(BatchModel {
            booster,
            n_features,
            calibration: None,
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Total gain per feature.
    pub fn importance_gain(&self) -> anyhow::Result<Vec<f64>> {
        Ok(self.booster.feature_importance(ImportanceType::Gain)?)
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The logistic map (a, b) with P(label = 1) = σ(a·score + b) that
/// maximises the likelihood of `labels` (Newton's method on the two
/// parameters; a tiny ridge keeps it finite when the classes separate).
/// Scores are standardised first, so the iterations are well scaled.
pub fn platt(scores: &[f64], labels: &[u8]) -> [f64; 2] {
    let n = scores.len().max(1) as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let sd = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
    let sd = if sd > 0.0 { sd } else { 1.0 };
    let base = (labels.iter().map(|&y| f64::from(y)).sum::<f64>() + 0.5) / (n + 1.0);
    let (mut a, mut b) = (0.0, (base / (1.0 - base)).ln());
    const RIDGE: f64 = 1e-6;
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (RIDGE * a, 0.0, RIDGE, 0.0, 0.0);
        for (s, &y) in scores.iter().zip(labels) {
            let z = (s - mean) / sd;
            let p = sigmoid(a * z + b);
            let (r, w) = (p - f64::from(y), p * (1.0 - p));
            ga += r * z;
            gb += r;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-300 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a -= da;
        b -= db;
        if da.abs().max(db.abs()) < 1e-12 {
            break;
        }
    }
    // Back to the raw score: a·(s − mean)/sd + b.
    [a / sd, b - a * mean / sd]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_logistic_map() {
        // Labels drawn (deterministically, by a low-discrepancy sequence)
        // from σ(2·s − 1) over scores spread on [−3, 3].
        let n = 20_000;
        let scores: Vec<f64> = (0..n).map(|i| -3.0 + 6.0 * (i as f64 + 0.5) / n as f64).collect();
        let labels: Vec<u8> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| u8::from(((i as f64 * 0.618_033_988_75) % 1.0) < sigmoid(2.0 * s - 1.0)))
            .collect();
        let [a, b] = platt(&scores, &labels);
        assert!((a - 2.0).abs() < 0.1 && (b + 1.0).abs() < 0.1, "a {a}, b {b}");
        // Constant labels: a flat map at (about) the base rate, no blow-up.
        let [a, b] = platt(&scores, &vec![0u8; n]);
        assert!(a.is_finite() && b.is_finite() && sigmoid(b) < 0.01, "a {a}, b {b}");
    }
}
