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
//! | `gradient_tolerance` | 1e-4 | L-BFGS stop, on the mean (per-row) gradient | > 0 |
//! | `max_fit_rows` | 50 000 | rows the batch fit uses at most (a seeded uniform sample) | ≥ 1 |
//! | `learning_rate` | 0.01 | SGD step of `partial_fit` | > 0 |
//! | `epochs` | 1 | SGD passes over new rows | ≥ 1 |

use anyhow::Context as _;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ArrayView2, ShapeBuilder};
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
    /// over a million rows costs minutes on one core (no BLAS), a random
    /// subsample seconds, with the same fit to a few decimals.
    pub max_fit_rows: usize,
}

impl Default for OnlineParams {
    fn default() -> Self {
        OnlineParams {
            l2: 1e-4,
            max_iterations: 200,
            gradient_tolerance: 1e-4,
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

impl OnlineParams {
    /// The rows the batch fit uses out of `n`, ascending: all of them up to
    /// `max_fit_rows`, else a uniform random sample of that size drawn with
    /// `seed` (callers pick them before building the design matrix, so the
    /// unused rows are never materialised). Random rather than every k-th
    /// row: rows come in (date, symbol) order, and a stride would drop the
    /// same symbols on every date.
    pub fn fit_sample(&self, n: usize, seed: u64) -> Vec<usize> {
        let take = self.max_fit_rows.min(n);
        if take == n {
            return (0..n).collect();
        }
        // A partial Fisher–Yates shuffle: the first `take` slots end up a
        // uniform sample without replacement.
        let mut rng = super::backtest::SplitMix(seed);
        let mut idx: Vec<u32> = (0..n as u32).collect();
        for i in 0..take {
            let j = i + rng.below((n - i) as u64) as usize;
            idx.swap(i, j);
        }
        let mut sample: Vec<usize> = idx[..take].iter().map(|&i| i as usize).collect();
        sample.sort_unstable();
        sample
    }
}

impl OnlineModel {
    /// Fit on a design matrix (rows × columns) and 0/1 labels, starting
    /// from `start`'s weights when it has the same columns. The objective
    /// is strictly convex, so the start changes the iterations needed,
    /// not the minimum.
    pub fn fit(
        x: ArrayView2<f64>,
        y: &[u8],
        columns: Vec<String>,
        feature_hash: String,
        params: &OnlineParams,
        start: Option<&OnlineModel>,
    ) -> anyhow::Result<OnlineModel> {
        let rows: Vec<usize> = params.fit_sample(y.len(), 0);
        // Column-major: the gradient's Xᵀ·r then walks contiguous columns;
        // on a row-major matrix ndarray's product takes a strided path
        // several times slower (there is no BLAS here).
        let mut design = Array2::zeros((rows.len(), x.ncols()).f());
        for (mut to, &i) in design.rows_mut().into_iter().zip(&rows) {
            to.assign(&x.row(i));
        }
        let y: Vec<u8> = rows.iter().map(|&i| y[i]).collect();
        let targets: Array1<bool> = y.iter().map(|&l| l == 1).collect();
        let mut solver = LogisticRegression::default()
            .alpha(params.l2 * y.len() as f64)
            .with_intercept(true)
            .max_iterations(params.max_iterations)
            // linfa's gradient is a sum over rows: scale the per-row
            // tolerance so the stopping rule does not depend on n.
            .gradient_tolerance(params.gradient_tolerance * y.len() as f64);
        if let Some(start) = start.filter(|s| s.columns == columns) {
            solver = solver.initial_params(start.linfa_params(&y));
        }
        let fitted = solver
            .fit(&DatasetBase::new(design, targets))
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

    /// Weights and intercept in linfa's orientation for labels `y`: it
    /// calls the more frequent class positive (on a tie, the first row's).
    /// A wrong guess only costs iterations: the fit's sign is read back
    /// from linfa's labels.
    fn linfa_params(&self, y: &[u8]) -> Array1<f64> {
        let ones = y.iter().filter(|&&l| l == 1).count();
        let ones_positive = match (2 * ones).cmp(&y.len()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => y.first() == Some(&1),
        };
        let sign = if ones_positive { 1.0 } else { -1.0 };
        self.weights.iter().chain([&self.intercept]).map(|w| sign * w).collect()
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

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
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
        let model = OnlineModel::fit(x.view(), &y, names(), "h".into(), &params, None).unwrap();
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
        let model = OnlineModel::fit(x.view(), &y, names(), "h".into(), &OnlineParams::default(), None).unwrap();
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

    #[test]
    fn a_warm_start_reaches_the_same_minimum() {
        let params = OnlineParams {
            l2: 0.01,
            gradient_tolerance: 1e-9,
            max_iterations: 1000,
            ..Default::default()
        };
        // Mostly-one and mostly-zero labels: linfa's class orientation
        // differs between the two, the start must work for both.
        for (threshold, seed) in [(-0.6, 3), (0.6, 4)] {
            let (x, _) = data(500, seed);
            let y: Vec<u8> = x
                .rows()
                .into_iter()
                .map(|r| u8::from(r[0] - 0.5 * r[1] > threshold))
                .collect();
            let cold = OnlineModel::fit(x.view(), &y, names(), "h".into(), &params, None).unwrap();
            let start = OnlineModel {
                weights: vec![3.0, 1.0],
                intercept: -2.0,
                ..cold.clone()
            };
            let warm = OnlineModel::fit(x.view(), &y, names(), "h".into(), &params, Some(&start)).unwrap();
            assert_close(&cold, &warm, 1e-4);
            // Started at the minimum, one iteration stays there: the start
            // went in with linfa's orientation of the classes.
            let one_step = OnlineParams {
                max_iterations: 1,
                ..params.clone()
            };
            let again = OnlineModel::fit(x.view(), &y, names(), "h".into(), &one_step, Some(&cold)).unwrap();
            assert_close(&cold, &again, 1e-6);
        }
    }

    fn assert_close(a: &OnlineModel, b: &OnlineModel, tolerance: f64) {
        let values = |m: &OnlineModel| m.weights.iter().chain([&m.intercept]).copied().collect::<Vec<_>>();
        for (x, y) in values(a).into_iter().zip(values(b)) {
            assert!((x - y).abs() < tolerance, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn the_fit_sample_is_seeded_random_and_bounded() {
        let params = OnlineParams {
            max_fit_rows: 4,
            ..Default::default()
        };
        let a = params.fit_sample(10, 1);
        assert_eq!(a.len(), 4);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[3] < 10, "{a:?}");
        assert_eq!(a, params.fit_sample(10, 1), "same seed, same sample");
        assert_eq!(params.fit_sample(4, 1), [0, 1, 2, 3]);
        assert!(params.fit_sample(0, 1).is_empty());
        // Rows laid out as 100 dates × 10 symbols: a stride of 10 would keep
        // one symbol only; the random sample keeps every symbol.
        let wide = OnlineParams {
            max_fit_rows: 100,
            ..Default::default()
        };
        let mut symbols: Vec<usize> = wide.fit_sample(1000, 42).iter().map(|i| i % 10).collect();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), 10);
        // Each row is drawn about equally often across seeds.
        let mut counts = [0u32; 10];
        for seed in 0..2000 {
            for i in params.fit_sample(10, seed) {
                counts[i] += 1;
            }
        }
        // Expected 800 each (2000 · 4/10); ±10 % is over 5 standard deviations.
        assert!(counts.iter().all(|&c| (720..=880).contains(&c)), "{counts:?}");
    }
}
