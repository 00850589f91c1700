//! The online model: L2-regularised logistic regression on the design
//! matrix of the transformer bundle, fitted in batch by linfa-logistic
//! (L-BFGS) and updated later by SGD steps on the same objective.
//!
//! Objective (per row, averaged): log loss + `l2`/2·‖w‖², intercept not
//! penalised. linfa minimises the summed loss + α/2·‖w‖², so it is given
//! α = `l2`·n — the same minimum.
//!
//! | parameter | default | purpose | range |
//! |---|---|---|---|
//! | `l2` | 1e-4 | weight decay per row | ≥ 0 |
//! | `max_iterations` | 200 | L-BFGS iterations | ≥ 1 |
//! | `gradient_tolerance` | 1e-5 | L-BFGS stop, on the mean (per-row) gradient | > 0 |
//! | `max_fit_rows` | 50 000 | rows the batch fit uses at most (every k-th row, deterministic) | ≥ 1 |
//! | `learning_rate` | 0.01 | SGD step of `partial_fit` | > 0 |
//! | `epochs` | 1 | SGD passes over new rows | ≥ 1 |

use anyhow::Context as _;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, ArrayView2};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnlineParams {
    pub l2: f64,
    pub max_iterations: u64,
    pub gradient_tolerance: f64,
    pub learning_rate: f64,
    pub epochs: usize,
    /// 33 weights need far fewer rows than a 10-year universe has; L-BFGS
    /// over a million rows costs minutes on one core (no BLAS), an evenly
    /// spaced subsample seconds, with the same fit to a few decimals.
    pub max_fit_rows: usize,
}

impl Default for OnlineParams {
    fn default() -> Self {
        OnlineParams {
            l2: 1e-4,
            max_iterations: 200,
            gradient_tolerance: 1e-5,
            learning_rate: 0.01,
            epochs: 1,
            max_fit_rows: 50_000,
        }
    }
}

impl OnlineParams {
    pub fn check(&self) -> Result<(), String> {
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return Err(format!("online.l2 must be ≥ 0, got {}", self.l2));
        }
        if self.max_iterations == 0 || self.epochs == 0 || self.max_fit_rows == 0 {
            return Err("online.max_iterations, online.epochs and online.max_fit_rows must be ≥ 1".into());
        }
        if !(self.learning_rate > 0.0 && self.gradient_tolerance > 0.0) {
            return Err("online.learning_rate and online.gradient_tolerance must be > 0".into());
        }
        Ok(())
    }
}

/// The fitted model, stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineModel {
    pub feature_hash: String,
    /// Design-matrix columns the weights belong to.
    pub columns: Vec<String>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub l2: f64,
    /// Rows seen by SGD updates since the batch fit.
    pub updated_rows: u64,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl OnlineModel {
    /// Fit on a design matrix (rows × columns) and 0/1 labels.
    pub fn fit(
        x: ArrayView2<f64>,
        y: &[u8],
        columns: Vec<String>,
        feature_hash: String,
        params: &OnlineParams,
    ) -> anyhow::Result<OnlineModel> {
        // Every k-th row when there are more than max_fit_rows.
        let step = y.len().div_ceil(params.max_fit_rows).max(1);
        // Owned, so the rows are contiguous: a strided view sends ndarray's
        // products down a slow generic path.
        let x = x.slice(ndarray::s![..;step, ..]).to_owned();
        let y: Vec<u8> = y.iter().step_by(step).copied().collect();
        let targets: Array1<bool> = y.iter().map(|&l| l == 1).collect();
        let dataset = DatasetBase::new(x, targets);
        let fitted = LogisticRegression::default()
            .alpha(params.l2 * y.len() as f64)
            .with_intercept(true)
            .max_iterations(params.max_iterations)
            // linfa's gradient is a sum over rows: scale the per-row
            // tolerance so the stopping rule does not depend on n.
            .gradient_tolerance(params.gradient_tolerance * y.len() as f64)
            .fit(&dataset)
            .context("logistic regression fit failed")?;
        // linfa models the more frequent class as "positive"; turn its
        // weights into P(label = 1).
        let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
        Ok(OnlineModel {
            feature_hash,
            columns,
            weights: fitted.params().iter().map(|w| sign * w).collect(),
            intercept: sign * fitted.intercept(),
            l2: params.l2,
            updated_rows: 0,
        })
    }

    /// P(label = 1) of one design row.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        sigmoid(self.intercept + row.iter().zip(&self.weights).map(|(x, w)| x * w).sum::<f64>())
    }

    /// P(label = 1) of each row of a row-major design matrix.
    pub fn predict(&self, flat: &[f64]) -> Vec<f64> {
        flat.chunks_exact(self.weights.len())
            .map(|row| self.predict_row(row))
            .collect()
    }

    /// Mean log loss + l2/2·‖w‖² on rows — the objective both fits minimise.
    pub fn objective(&self, flat: &[f64], y: &[u8]) -> f64 {
        let p = self.predict(flat);
        crate::models::metrics::log_loss(&p, y) + 0.5 * self.l2 * self.weights.iter().map(|w| w * w).sum::<f64>()
    }

    /// SGD steps on new rows, in their given order (deterministic), on the
    /// same objective: w ← w − η·((p − y)·x + l2·w), b ← b − η·(p − y).
    pub fn partial_fit(&mut self, flat: &[f64], y: &[u8], learning_rate: f64, epochs: usize) {
        let width = self.weights.len();
        for _ in 0..epochs {
            for (row, &label) in flat.chunks_exact(width).zip(y) {
                let error = self.predict_row(row) - label as f64;
                for (w, x) in self.weights.iter_mut().zip(row) {
                    *w -= learning_rate * (error * x + self.l2 * *w);
                }
                self.intercept -= learning_rate * error;
            }
        }
        self.updated_rows += (y.len() * epochs) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Small deterministic data: 2 features, labels from a noisy linear rule.
    fn data(n: usize, seed: u64) -> (Array2<f64>, Vec<u8>) {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut x = Array2::zeros((n, 2));
        let mut y = Vec::new();
        for i in 0..n {
            x[[i, 0]] = next() * 4.0 - 2.0;
            x[[i, 1]] = next() * 4.0 - 2.0;
            let z = 1.5 * x[[i, 0]] - 0.8 * x[[i, 1]] + 0.3;
            y.push(u8::from(next() < sigmoid(z)));
        }
        (x, y)
    }

    /// Independent solution: Newton's method on the same objective.
    fn newton(x: &Array2<f64>, y: &[u8], l2: f64) -> (Vec<f64>, f64) {
        let n = y.len() as f64;
        let mut beta = [0.0f64; 3]; // w0, w1, b
        for _ in 0..50 {
            let mut grad = [0.0; 3];
            let mut hess = [[0.0; 3]; 3];
            for i in 0..y.len() {
                let row = [x[[i, 0]], x[[i, 1]], 1.0];
                let p = sigmoid(row.iter().zip(&beta).map(|(a, b)| a * b).sum());
                for a in 0..3 {
                    grad[a] += (p - y[i] as f64) * row[a] / n;
                    for b in 0..3 {
                        hess[a][b] += p * (1.0 - p) * row[a] * row[b] / n;
                    }
                }
            }
            for a in 0..2 {
                grad[a] += l2 * beta[a];
                hess[a][a] += l2;
            }
            let step = solve3(hess, grad);
            for a in 0..3 {
                beta[a] -= step[a];
            }
        }
        (vec![beta[0], beta[1]], beta[2])
    }

    fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> [f64; 3] {
        for col in 0..3 {
            let pivot = (col..3)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .unwrap();
            a.swap(col, pivot);
            b.swap(col, pivot);
            for row in col + 1..3 {
                let f = a[row][col] / a[col][col];
                let pivot_row = a[col];
                for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                    *x -= f * p;
                }
                b[row] -= f * b[col];
            }
        }
        let mut x = [0.0; 3];
        for row in (0..3).rev() {
            x[row] = (b[row] - (row + 1..3).map(|k| a[row][k] * x[k]).sum::<f64>()) / a[row][row];
        }
        x
    }

    #[test]
    fn fit_matches_newtons_method() {
        let (x, y) = data(400, 3);
        let params = OnlineParams {
            l2: 0.01,
            gradient_tolerance: 1e-9,
            max_iterations: 1000,
            ..Default::default()
        };
        let model = OnlineModel::fit(x.view(), &y, vec!["a".into(), "b".into()], "h".into(), &params).unwrap();
        let (w, b) = newton(&x, &y, 0.01);
        for (got, want) in model.weights.iter().zip(&w) {
            assert!((got - want).abs() < 1e-4, "weights {:?} vs Newton {w:?}", model.weights);
        }
        assert!(
            (model.intercept - b).abs() < 1e-4,
            "intercept {} vs {b}",
            model.intercept
        );
        assert!(
            model.weights[0] > 1.0 && model.weights[1] < -0.4,
            "signs: {:?}",
            model.weights
        );
    }

    #[test]
    fn partial_fit_lowers_the_loss_on_new_rows() {
        let (x, y) = data(300, 5);
        let model = OnlineModel::fit(
            x.view(),
            &y,
            vec!["a".into(), "b".into()],
            "h".into(),
            &OnlineParams::default(),
        )
        .unwrap();
        // New rows from a shifted rule: the old model fits them worse.
        let (x2, _) = data(200, 9);
        let y2: Vec<u8> = x2.rows().into_iter().map(|r| u8::from(r[1] > 0.2)).collect();
        let flat: Vec<f64> = x2.iter().copied().collect();
        let mut updated = model.clone();
        updated.partial_fit(&flat, &y2, 0.05, 3);
        let (before, after) = (model.objective(&flat, &y2), updated.objective(&flat, &y2));
        assert!(after < before, "loss {before} -> {after}");
        assert_eq!(updated.updated_rows, 600);
    }
}
