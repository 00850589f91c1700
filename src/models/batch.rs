//! The batch model: a LightGBM binary classifier (lightgbm3), early
//! stopping on the validation fold, fixed seed and `deterministic=true`,
//! saved in LightGBM's native text format (Python's
//! `lightgbm.Booster(model_file=…)` loads it).
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchParams {
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
        let mut p = serde_json::json!({
            "objective": "binary",
            "metric": "binary_logloss",
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
        let pairs = p.as_object().into_iter().flatten();
        pairs.map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    }
}

/// Rows from which a prediction uses every core.
const PARALLEL_PREDICT_ROWS: usize = 10_000;

/// A trained booster and the rounds it kept.
pub struct BatchModel {
    booster: Booster,
    n_features: usize,
}

impl BatchModel {
    /// Train, stopping early on `valid`'s log loss and keeping the best
    /// rounds; the model's probabilities on the validation rows come back
    /// with it.
    pub fn train(data: &Datasets, params: &BatchParams, seed: u64) -> anyhow::Result<(Self, Vec<f64>)> {
        let lgb_params = params.lightgbm(seed, params.num_rounds, true);
        let boosted = boosting::boost(data, &lgb_params, params.num_rounds, Some(params.early_stopping_rounds))?;
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

    /// P(label = 1) for each row of a row-major matrix.
    pub fn predict(&self, flat: &[f64]) -> anyhow::Result<Vec<f64>> {
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
        Ok(BatchModel { booster, n_features })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Total gain per feature.
    pub fn importance_gain(&self) -> anyhow::Result<Vec<f64>> {
        Ok(self.booster.feature_importance(ImportanceType::Gain)?)
    }
}
