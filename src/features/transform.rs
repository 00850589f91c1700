//! The transformer bundle: standard scaling of the numeric features
//! (fitted on training rows only) and the categorical vocabularies (from
//! training rows). The online model sees scaled numerics plus one-hot
//! categoricals; an unseen category is all zeros, never an error. The
//! batch model sees raw numerics (trees need no scaling) plus the same
//! one-hot columns — low-cardinality categories split as well one-hot, and
//! lightgbm3 builds its datasets without dataset parameters, so LightGBM's
//! own categorical handling is not reachable.

use serde::{Deserialize, Serialize};

use super::{CATEGORICAL_FEATURES, Families, Features, N_NUMERIC, NUMERIC_FEATURES};
use crate::indicators::signals;
use rayon::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformerBundle {
    pub feature_hash: String,
    pub numeric: Vec<String>,
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
    /// (feature, its training categories, sorted).
    pub vocabulary: Vec<(String, Vec<String>)>,
    /// The optional families the batch model sees after the design
    /// columns (the online model never does).
    #[serde(default)]
    pub families: Families,
    /// A ranking objective's score-to-probability map (see
    /// [`crate::models::batch::BatchModel::calibration`]), kept here so
    /// the LightGBM file stays LightGBM's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_calibration: Option<[f64; 2]>,
}

impl TransformerBundle {
    /// Fit on training rows (every feature defined).
    pub fn fit(training: &[&Features], families: Families) -> TransformerBundle {
        let (means, stds) = moments(training);
        let vocabulary = CATEGORICAL_FEATURES
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_string(), categories(training, i)))
            .collect();
        TransformerBundle {
            feature_hash: super::config::current_hash(families),
            numeric: NUMERIC_FEATURES.iter().map(|s| s.to_string()).collect(),
            means,
            stds,
            vocabulary,
            families,
            batch_calibration: None,
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

    /// Columns of the batch model's matrix: the design's, then the
    /// families'.
    pub fn batch_names(&self) -> Vec<String> {
        let mut names = self.design_names();
        names.extend(self.families.columns());
        names
    }

    pub fn width(&self, columns: Columns) -> usize {
        match columns {
            Columns::Design => self.design_width(),
            Columns::Batch => self.design_width() + self.families.width(),
        }
    }

    /// Row-major matrix of `features`: the online model's design (scaled
    /// numerics, missing = 0, the training mean; callers drop rows with
    /// missing features before they get here) or the batch model's raw
    /// columns (missing = NaN, which LightGBM handles); both end with the
    /// one-hot categoricals. Filled in parallel: a million rows are built
    /// five times per training run.
    pub fn matrix(&self, features: &[&Features], columns: Columns) -> Vec<f64> {
        const ROWS_PER_TASK: usize = 4096;
        let width = self.width(columns);
        let mut flat = vec![0.0; features.len() * width];
        flat.par_chunks_mut(width * ROWS_PER_TASK)
            .zip(features.par_chunks(ROWS_PER_TASK))
            .for_each(|(out, rows)| {
                for (row, f) in out.chunks_exact_mut(width).zip(rows) {
                    self.fill_row(f, columns, row);
                }
            });
        flat
    }

    /// One row into `row` (zeros on entry).
    fn fill_row(&self, f: &Features, columns: Columns, row: &mut [f64]) {
        for (i, x) in row[..N_NUMERIC].iter_mut().enumerate() {
            *x = match (columns, f.numeric(i)) {
                (Columns::Design, Some(v)) => (v - self.means[i]) / self.stds[i],
                (Columns::Design, None) => 0.0,
                (Columns::Batch, v) => v.unwrap_or(f64::NAN),
            };
        }
        let mut at = N_NUMERIC;
        for (i, (_, cats)) in self.vocabulary.iter().enumerate() {
            // An unseen category leaves its columns at zero.
            if let Some(j) = f.categorical(i).and_then(|v| cats.iter().position(|c| c == v)) {
                row[at + j] = 1.0;
            }
            at += cats.len();
        }
        if columns == Columns::Batch {
            // A row without the families' values (too short a history)
            // leaves them missing.
            for (x, v) in row[at..]
                .iter_mut()
                .zip(f.extra.iter().chain(std::iter::repeat(&f32::NAN)))
            {
                *x = f64::from(*v);
            }
        }
    }
}

/// Which matrix [`TransformerBundle::matrix`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// The online model's: scaled numerics.
    Design,
    /// The batch model's: raw numerics.
    Batch,
}

/// Mean and (population) standard deviation of each numeric feature over
/// its defined values, in two passes over the rows (row by row: a million
/// rows are read twice, not 34 times).
fn moments(training: &[&Features]) -> (Vec<f64>, Vec<f64>) {
    let n = training.len().max(1) as f64;
    let mut sums = [0.0; N_NUMERIC];
    for f in training {
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum += f.numeric(i).unwrap_or(0.0);
        }
    }
    let means = sums.map(|s| s / n);
    let mut squares = [0.0; N_NUMERIC];
    for f in training {
        for (i, sq) in squares.iter_mut().enumerate() {
            *sq += f.numeric(i).map_or(0.0, |x| (x - means[i]).powi(2));
        }
    }
    // A constant feature would divide by zero; it carries no signal.
    let stds = squares.map(|sq| if sq > 0.0 { (sq / n).sqrt() } else { 1.0 });
    (means.to_vec(), stds.to_vec())
}

/// The sorted categories categorical feature `i` takes in `training`.
fn categories(training: &[&Features], i: usize) -> Vec<String> {
    let mut seen = [false; 256];
    for f in training {
        seen[f.category_code(i) as usize] = true;
    }
    let mut cats: Vec<String> = (0..=u8::MAX)
        .filter(|&c| seen[c as usize])
        .filter_map(signals::label_of)
        .map(str::to_string)
        .collect();
    cats.sort();
    cats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64, cat: &'static str) -> Features {
        Features::new([Some(x); crate::features::N_NUMERIC], [Some(cat); 5])
    }

    #[test]
    fn scaler_uses_training_rows_and_unseen_categories_are_zeros() {
        // The one-hot columns follow the numeric ones.
        const N: usize = crate::features::N_NUMERIC;
        let rows = [f(1.0, "up"), f(3.0, "down")];
        let refs: Vec<&Features> = rows.iter().collect();
        let bundle = TransformerBundle::fit(&refs, Families::NONE);
        assert_eq!(bundle.means[0], 2.0);
        assert_eq!(bundle.stds[0], 1.0);
        let out = bundle.matrix(&[&f(4.0, "up")], Columns::Design);
        assert_eq!(out[0], 2.0);
        // vocabulary sorted: ["down", "up"]
        assert_eq!(&out[N..N + 2], &[0.0, 1.0]);
        let out = bundle.matrix(&[&f(2.0, "sideways")], Columns::Design);
        assert!(out[N..].iter().all(|&x| x == 0.0));
        assert_eq!(out.len(), bundle.design_width());
        let out = bundle.matrix(&[&f(2.0, "sideways"), &f(5.0, "down")], Columns::Batch);
        assert_eq!(out[0], 2.0, "batch rows are not scaled");
        assert_eq!(out[bundle.design_width()], 5.0, "second row");
        assert_eq!(out[bundle.design_width() + N], 1.0, "second row is down");
        assert_eq!(out.len(), 2 * bundle.design_width());
    }

    #[test]
    fn a_large_matrix_is_its_rows_side_by_side() {
        let rows: Vec<Features> = (0..10_000)
            .map(|i| f(i as f64, if i % 3 == 0 { "up" } else { "down" }))
            .collect();
        let refs: Vec<&Features> = rows.iter().collect();
        let bundle = TransformerBundle::fit(&refs[..100], Families::NONE);
        let width = bundle.design_width();
        for columns in [Columns::Design, Columns::Batch] {
            let all = bundle.matrix(&refs, columns);
            for i in [0, 4095, 4096, 9999] {
                assert_eq!(
                    &all[i * width..(i + 1) * width],
                    bundle.matrix(&[refs[i]], columns),
                    "row {i}"
                );
            }
        }
    }
}
