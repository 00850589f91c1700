//! The transformer bundle: standard scaling of the numeric features
//! (fitted on training rows only) and the categorical vocabularies (from
//! training rows). The online model sees scaled numerics plus one-hot
//! categoricals; an unseen category is all zeros, never an error. The
//! batch model sees raw numerics (trees need no scaling) plus the same
//! one-hot columns — low-cardinality categories split as well one-hot, and
//! lightgbm3 builds its datasets without dataset parameters, so LightGBM's
//! own categorical handling is not reachable.

use serde::{Deserialize, Serialize};

use super::{CATEGORICAL_FEATURES, Features, N_NUMERIC, NUMERIC_FEATURES};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformerBundle {
    pub feature_hash: String,
    pub numeric: Vec<String>,
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
    /// (feature, its training categories, sorted).
    pub vocabulary: Vec<(String, Vec<String>)>,
}

impl TransformerBundle {
    /// Fit on training rows (every feature defined).
    pub fn fit(training: &[&Features]) -> TransformerBundle {
        let n = training.len().max(1) as f64;
        let mut means = vec![0.0; N_NUMERIC];
        let mut stds = vec![0.0; N_NUMERIC];
        for i in 0..N_NUMERIC {
            let values = training.iter().filter_map(|f| f.numeric(i));
            means[i] = values.clone().sum::<f64>() / n;
            let var = values.map(|x| (x - means[i]).powi(2)).sum::<f64>() / n;
            // A constant feature would divide by zero; it carries no signal.
            stds[i] = if var > 0.0 { var.sqrt() } else { 1.0 };
        }
        let vocabulary = CATEGORICAL_FEATURES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut cats: Vec<String> = training
                    .iter()
                    .filter_map(|f| f.categorical(i))
                    .map(str::to_string)
                    .collect();
                cats.sort();
                cats.dedup();
                (name.to_string(), cats)
            })
            .collect();
        TransformerBundle {
            feature_hash: super::config::current_hash(),
            numeric: NUMERIC_FEATURES.iter().map(|s| s.to_string()).collect(),
            means,
            stds,
            vocabulary,
        }
    }

    /// Columns of the online model's design matrix.
    pub fn design_names(&self) -> Vec<String> {
        let mut names = self.numeric.clone();
        for (feature, cats) in &self.vocabulary {
            names.extend(cats.iter().map(|c| format!("{feature}={c}")));
        }
        names
    }

    pub fn design_width(&self) -> usize {
        self.numeric.len() + self.vocabulary.iter().map(|(_, c)| c.len()).sum::<usize>()
    }

    /// Scaled numerics and one-hot categoricals, appended to `out`.
    /// Missing numerics become 0 (the training mean); callers drop rows
    /// with missing features before they get here.
    pub fn design_row(&self, f: &Features, out: &mut Vec<f64>) {
        for i in 0..N_NUMERIC {
            out.push(f.numeric(i).map(|x| (x - self.means[i]) / self.stds[i]).unwrap_or(0.0));
        }
        self.one_hot(f, out);
    }

    /// Raw numerics (NaN = missing, which LightGBM handles) and one-hot
    /// categoricals, appended to `out`; same columns as the design row.
    pub fn batch_row(&self, f: &Features, out: &mut Vec<f64>) {
        out.extend((0..N_NUMERIC).map(|i| f.numeric(i).unwrap_or(f64::NAN)));
        self.one_hot(f, out);
    }

    fn one_hot(&self, f: &Features, out: &mut Vec<f64>) {
        for (i, (_, cats)) in self.vocabulary.iter().enumerate() {
            let hit = f.categorical(i).and_then(|v| cats.iter().position(|c| c == v));
            out.extend((0..cats.len()).map(|j| if Some(j) == hit { 1.0 } else { 0.0 }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64, cat: &'static str) -> Features {
        Features::new([Some(x); 17], [Some(cat); 5])
    }

    #[test]
    fn scaler_uses_training_rows_and_unseen_categories_are_zeros() {
        let rows = [f(1.0, "up"), f(3.0, "down")];
        let refs: Vec<&Features> = rows.iter().collect();
        let bundle = TransformerBundle::fit(&refs);
        assert_eq!(bundle.means[0], 2.0);
        assert_eq!(bundle.stds[0], 1.0);
        let mut out = Vec::new();
        bundle.design_row(&f(4.0, "up"), &mut out);
        assert_eq!(out[0], 2.0);
        // vocabulary sorted: ["down", "up"]
        assert_eq!(&out[17..19], &[0.0, 1.0]);
        out.clear();
        bundle.design_row(&f(2.0, "sideways"), &mut out);
        assert!(out[17..].iter().all(|&x| x == 0.0));
        assert_eq!(out.len(), bundle.design_width());
        out.clear();
        bundle.batch_row(&f(2.0, "sideways"), &mut out);
        assert_eq!(out[0], 2.0, "batch rows are not scaled");
        assert_eq!(out.len(), bundle.design_width());
    }
}
