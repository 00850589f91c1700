//! `[bootstrap]` and `[promotion]`: how a training run splits its dates and
//! what its models must show to go live.

use serde::Deserialize;

/// `[promotion]`: what a new model must show to replace the live one.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromotionConfig {
    /// Fewest holdout dates with a top-K for the gate to judge at all.
    pub min_valid_dates: usize,
    /// Fewest independent windows (holdout dates ÷ horizon: neighbouring
    /// dates share most of their label window) for the gate to judge.
    pub min_windows: usize,
    /// Bootstrap blocks of this many horizons (2–4: long enough to keep
    /// the overlap of neighbouring dates inside a block; checked).
    pub block_horizons: usize,
    /// Reported beside production's precision@K; no longer a test (the
    /// paired return comparison is).
    pub precision_margin: f64,
    /// On the holdout dates production never trained on, the lower 95 %
    /// bound of the candidate's per-date top-K return minus production's
    /// may not fall below −return_margin (0.001 = 10 bp).
    pub return_margin: f64,
}

impl Default for PromotionConfig {
    fn default() -> Self {
        PromotionConfig {
            min_valid_dates: 20,
            min_windows: 30,
            block_horizons: 3,
            precision_margin: 0.01,
            return_margin: 0.001,
        }
    }
}

/// `[bootstrap]`: data-set and evaluation settings of training.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    /// Fewest symbols with usable rows to train on.
    pub min_symbols: usize,
    /// Fewest labeled rows (after dropping rows with undefined features).
    pub min_rows: usize,
    /// Share of the latest scan dates held out for validation.
    pub valid_fraction: f64,
    /// Expanding walk-forward folds reported besides the holdout.
    pub folds: usize,
    /// Share of a training window's latest scan dates carved off (purged
    /// and embargoed) for LightGBM's early stopping.
    pub early_stopping_fraction: f64,
    /// Share of the latest scan dates scored once for the report and
    /// never used to choose or promote (after an embargo of one horizon).
    pub lockbox_fraction: f64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            min_symbols: 2,
            min_rows: 200,
            valid_fraction: 0.2,
            folds: 4,
            early_stopping_fraction: 0.15,
            lockbox_fraction: 0.1,
        }
    }
}

/// `[features]`: the optional feature families of the batch model
/// (`candle`, `window`, `rank`; none by default — see the README's
/// "Model quality" for how that was chosen).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeaturesConfig {
    pub families: Vec<String>,
}

impl FeaturesConfig {
    /// The families, checked against `min_bars`: a symbol trained on must
    /// have every family's window.
    pub fn parse(&self, min_bars: usize) -> Result<crate::features::Families, String> {
        let families = crate::features::Families::parse(&self.families)?;
        let needs = families.lookback() + 1;
        if needs > min_bars {
            return Err(format!(
                "the families {} read {needs} bars, more than ta.min_bars = {min_bars}",
                families.names().join(", ")
            ));
        }
        Ok(families)
    }
}
