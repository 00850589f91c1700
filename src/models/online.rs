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
//! | `learning_rate` | 0.05 | largest move of a weight per scan date in `learn_day` (logits per unit of a scaled feature) | > 0 |
//!
//! Daily updates ([`OnlineModel::learn_day`]) take one AdaGrad step per
//! scan date on that date's *mean* gradient: its size does not grow with
//! the number of rows a date brings, no coordinate moves by more than
//! `learning_rate` in one date (a market-wide drop labels every row 0 and
//! moves the intercept by at most that), and steps shrink as evidence
//! accumulates (per-coordinate sums of squared gradients, kept in the
//! model so a daily run and a catch-up run give the same weights).

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
            learning_rate: 0.05,
            max_fit_rows: 50_000,
        }
    }
}

impl OnlineParams {
    pub fn check(&self) -> Result<(), String> {
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return Err(format!("online.l2 must be ≥ 0, got {}", self.l2));
        }
        if self.max_iterations == 0 || self.max_fit_rows == 0 {
            return Err("online.max_iterations and online.max_fit_rows must be ≥ 1".into());
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
    /// Rows learned by daily updates since the batch fit.
    pub updated_rows: u64,
    /// The last scan date whose label this model has learned (bootstrap:
    /// its newest training row; each update: the newest date it learned).
    #[serde(default)]
    pub learned_through: Option<chrono::NaiveDate>,
    /// Every row whose label window completed by this date has been
    /// learned (`jobs::learnable`; `None` in models written before rows
    /// were keyed by completion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_through: Option<chrono::NaiveDate>,
    /// AdaGrad's per-coordinate sums of squared gradients (weights, then
    /// the intercept); empty until the first update.
    #[serde(default)]
    pub squared_gradients: Vec<f64>,
    /// The bootstrap model this one was updated from (`None`: it is one).
    #[serde(default)]
    pub base_model: Option<String>,
    /// The lineage's recent states, oldest first: what the model was when
    /// the scan dates it may still learn were scored (the prequential
    /// check scores a row with the state live on its scan date).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past: Vec<PastState>,
}

/// An updated model as it was once every row completing by
/// `completed_through` had been learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastState {
    pub completed_through: chrono::NaiveDate,
    pub weights: Vec<f64>,
    pub intercept: f64,
}

impl PastState {
    pub fn of(model: &OnlineModel, completed_through: chrono::NaiveDate) -> PastState {
        PastState {
            completed_through,
            weights: model.weights.clone(),
            intercept: model.intercept,
        }
    }

    /// P(label = 1) of one design row.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        sigmoid(self.intercept + row.iter().zip(&self.weights).map(|(x, w)| x * w).sum::<f64>())
    }
}

/// The state live on `scan` in `states` (oldest first): the newest that
/// had learned nothing completing after it, else the oldest there is.
pub fn live_on(states: &[PastState], scan: chrono::NaiveDate) -> Option<&PastState> {
    let known = states.partition_point(|s| s.completed_through <= scan);
    states.get(known.saturating_sub(1))
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
            learned_through: None,
            completed_through: None,
            past: Vec::new(),
            squared_gradients: Vec::new(),
            base_model: None,
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

    /// Learn one scan date's rows: one AdaGrad step on their mean gradient
    /// of the objective (mean log loss + l2/2·‖w‖², intercept not
    /// penalised): `G += g²; θ −= η·g/√G` per coordinate, so |step| ≤ η.
    pub fn learn_day(&mut self, flat: &[f64], y: &[u8], learning_rate: f64) {
        let width = self.weights.len();
        if y.is_empty() || width == 0 {
            return;
        }
        let mut gradient = vec![0.0; width + 1];
        for (row, &label) in flat.chunks_exact(width).zip(y) {
            let error = self.predict_row(row) - label as f64;
            for (g, x) in gradient.iter_mut().zip(row) {
                *g += error * x;
            }
            gradient[width] += error;
        }
        let n = y.len() as f64;
        for (j, g) in gradient.iter_mut().enumerate() {
            *g /= n;
            if j < width {
                *g += self.l2 * self.weights[j];
            }
        }
        if self.squared_gradients.len() != width + 1 {
            self.squared_gradients = vec![0.0; width + 1];
        }
        for (j, g) in gradient.into_iter().enumerate() {
            self.squared_gradients[j] += g * g;
            if g == 0.0 {
                continue;
            }
            let step = learning_rate * g / self.squared_gradients[j].sqrt();
            if j < width {
                self.weights[j] -= step;
            } else {
                self.intercept -= step;
            }
        }
        self.updated_rows += y.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_state_is_the_newest_that_learned_nothing_after_the_scan_date() {
        let d = |day| chrono::NaiveDate::from_ymd_opt(2020, 11, day).unwrap();
        let state = |day, w| PastState {
            completed_through: d(day),
            weights: vec![w],
            intercept: 0.0,
        };
        let states = [state(2, 1.0), state(3, 2.0), state(6, 3.0)];
        let at = |day| live_on(&states, d(day)).unwrap().weights[0];
        assert_eq!((at(2), at(4), at(5), at(6), at(9)), (1.0, 2.0, 2.0, 3.0, 3.0));
        // Before the oldest state: the oldest (the bootstrap model).
        assert_eq!(at(1), 1.0);
        assert!(live_on(&[], d(1)).is_none());
    }
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
    fn a_one_sided_day_moves_the_intercept_by_at_most_the_rate() {
        let (x, y) = data(300, 5);
        let params = OnlineParams::default();
        let model = OnlineModel::fit(x.view(), &y, names(), "h".into(), &params, None).unwrap();
        let (x2, _) = data(500, 9);
        let flat: Vec<f64> = x2.iter().copied().collect();
        for label in [0u8, 1] {
            let mut m = model.clone();
            m.learn_day(&flat, &vec![label; 500], params.learning_rate);
            let moved = m.intercept - model.intercept;
            assert!(
                moved.abs() <= params.learning_rate + 1e-15 && moved.abs() < 0.1,
                "{label}: {moved}"
            );
            assert_eq!(moved > 0.0, label == 1, "towards the day's label");
            // Ten times the rows: the same step (it is the mean gradient's).
            let mut big = model.clone();
            let flat10: Vec<f64> = flat.iter().cycle().take(flat.len() * 10).copied().collect();
            big.learn_day(&flat10, &vec![label; 5000], params.learning_rate);
            assert!((big.intercept - m.intercept).abs() < 1e-12);
            assert_eq!(big.updated_rows, 5000);
        }
    }

    /// AUC of a model's predictions on rows.
    fn auc_of(m: &OnlineModel, x: &Array2<f64>, y: &[u8]) -> f64 {
        let flat: Vec<f64> = x.iter().copied().collect();
        crate::models::metrics::auc(&m.predict(&flat), y).unwrap()
    }

    /// A day of 200 rows whose labels follow coefficients `w`.
    fn day(w: [f64; 2], seed: u64) -> (Array2<f64>, Vec<u8>) {
        let (x, _) = data(200, seed);
        let mut s = seed ^ 0x5555;
        let y = x
            .rows()
            .into_iter()
            .map(|r| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                u8::from(u < sigmoid(w[0] * r[0] + w[1] * r[1]))
            })
            .collect();
        (x, y)
    }

    #[test]
    fn after_a_regime_change_updates_recover_and_the_frozen_model_does_not() {
        let (before, after) = ([1.5, -0.8], [-1.5, 0.8]);
        let params = OnlineParams {
            learning_rate: 0.3,
            ..Default::default()
        };
        // Bootstrap on 20 days of the first regime.
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for d in 0..20 {
            let (x, y) = day(before, 100 + d);
            xs.extend(x.iter().copied());
            ys.extend(y);
        }
        let x0 = Array2::from_shape_vec((ys.len(), 2), xs).unwrap();
        let frozen = OnlineModel::fit(x0.view(), &ys, names(), "h".into(), &params, None).unwrap();
        // 80 days after the change, predict-then-learn each day.
        let mut updated = frozen.clone();
        let (mut last_x, mut last_y) = (Vec::new(), Vec::new());
        let (mut refit_x, mut refit_y) = (Vec::new(), Vec::new());
        for d in 0..80 {
            let (x, y) = day(after, 500 + d);
            if d >= 60 {
                last_x.extend(x.iter().copied());
                last_y.extend(y.iter().copied());
            } else if d >= 40 {
                refit_x.extend(x.iter().copied());
                refit_y.extend(y.iter().copied());
            }
            let flat: Vec<f64> = if d >= 60 {
                Vec::new()
            } else {
                x.iter().copied().collect()
            };
            if d < 60 {
                updated.learn_day(&flat, &y, params.learning_rate);
            }
        }
        // Judged on the last 20 days, unseen by all three: a full refit on
        // the 20 days before them, the updated model, the frozen one.
        let xl = Array2::from_shape_vec((last_y.len(), 2), last_x).unwrap();
        let xr = Array2::from_shape_vec((refit_y.len(), 2), refit_x).unwrap();
        let refit = OnlineModel::fit(xr.view(), &refit_y, names(), "h".into(), &params, None).unwrap();
        let (a_refit, a_updated, a_frozen) = (
            auc_of(&refit, &xl, &last_y),
            auc_of(&updated, &xl, &last_y),
            auc_of(&frozen, &xl, &last_y),
        );
        eprintln!("AUC on the last 20 days: refit {a_refit:.3}, updated {a_updated:.3}, frozen {a_frozen:.3}");
        assert!(a_frozen < 0.3, "the frozen model ranks backwards: {a_frozen}");
        assert!(a_refit > 0.8, "{a_refit}");
        assert!(a_updated > a_refit - 0.02, "updated {a_updated} vs refit {a_refit}");
        assert!(
            updated.weights[0] < 0.0 && updated.weights[1] > 0.0,
            "{:?}",
            updated.weights
        );
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
