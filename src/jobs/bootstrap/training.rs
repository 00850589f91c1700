//! Fitting both models on a split's training rows and judging them on its
//! validation rows, without the validation rows ever steering a fit.
//!
//! LightGBM's early stopping runs on an *inner* slice: the latest
//! `early_stopping_fraction` of the training window's scan dates, purged
//! and embargoed from the rows it trains on exactly like the outer split.
//! The round count found there is the model that is evaluated, and the
//! count the final model (trained on everything) reuses. The logistic
//! model fits on all training rows (on a seeded random sample of them).

use std::time::Instant;

use ndarray::ArrayView2;

use super::Timings;
use crate::features::transform::{Columns, TransformerBundle};
use crate::features::{Families, Features, Snapshot};
pub use crate::jobs::dataset::{eval_dates, eval_set};
use crate::models::backtest::BacktestParams;
use crate::models::batch::{BatchModel, BatchParams, Datasets, Matrix, Objective, platt};
use crate::models::ensemble;
use crate::models::metrics::{Baselines, Evaluation, baselines, evaluate};
use crate::models::online::{OnlineModel, OnlineParams};
use crate::models::split::{Split, holdout};

/// What a fit needs besides the rows: plain parameters, no context.
#[derive(Debug, Clone, Copy)]
pub struct TrainParams<'a> {
    pub online: &'a OnlineParams,
    pub batch: &'a BatchParams,
    /// Share of the training window's scan dates for early stopping.
    pub early_stopping_fraction: f64,
    /// The label horizon: the embargo of every split.
    pub horizon: usize,
    pub seed: u64,
    pub top_k: usize,
    /// Backtests of the folds, the holdout and the lockbox.
    pub backtest: BacktestParams,
    /// The optional feature families the batch model sees.
    pub families: Families,
    /// The batch model's weight in the ensemble.
    pub batch_weight: f64,
}

/// Both models and their bundle, fitted on `train` rows.
pub struct Models {
    pub bundle: TransformerBundle,
    pub online: OnlineModel,
    pub batch: BatchModel,
}

pub fn label(s: &Snapshot) -> u8 {
    s.label.map(|l| l.label).unwrap_or(0)
}

/// Row-major matrix of `idx` rows — the online model's design or the
/// batch model's raw columns — and the labels.
fn matrix(bundle: &TransformerBundle, rows: &[Snapshot], idx: &[usize], columns: Columns) -> (Vec<f64>, Vec<u8>) {
    let features: Vec<&Features> = idx.iter().map(|&i| &rows[i].features).collect();
    let labels = idx.iter().map(|&i| label(&rows[i])).collect();
    (bundle.matrix(&features, columns), labels)
}

/// LightGBM's view of the rows `idx` (in date order): their raw columns,
/// built a chunk at a time as LightGBM asks for them, and the targets
/// `objective` learns.
fn batch_matrix<'a>(
    bundle: &'a TransformerBundle,
    rows: &'a [Snapshot],
    idx: &'a [usize],
    objective: Objective,
) -> Matrix<'a> {
    let (labels, groups) = targets(rows, idx, objective);
    Matrix {
        rows: idx.len(),
        width: bundle.width(Columns::Batch),
        labels,
        groups,
        fill: Box::new(move |at: &[usize]| {
            let features: Vec<&Features> = at.iter().map(|&j| &rows[idx[j]].features).collect();
            bundle.matrix(&features, Columns::Batch)
        }),
    }
}

/// The targets of the rows `idx` (in date order) for `objective`, and
/// for a ranking objective the sizes of their per-date groups: the
/// barrier label; the after-cost return less the mean of the date's rows
/// among `idx`; or the date's after-cost return quintile, 0 … 4 (average
/// ranks, so tied returns share a grade).
pub fn targets(rows: &[Snapshot], idx: &[usize], objective: Objective) -> (Vec<f32>, Vec<i32>) {
    if objective == Objective::Binary {
        return (idx.iter().map(|&i| f32::from(label(&rows[i]))).collect(), Vec::new());
    }
    let net = |i: usize| rows[i].label.map_or(0.0, |l| l.realized_return);
    let mut labels = Vec::with_capacity(idx.len());
    let mut groups = Vec::new();
    let mut start = 0;
    while start < idx.len() {
        let date = rows[idx[start]].date;
        let end = start + idx[start..].partition_point(|&i| rows[i].date == date);
        let returns: Vec<f64> = idx[start..end].iter().map(|&i| net(i)).collect();
        match objective {
            Objective::Regression => {
                let mean = returns.iter().sum::<f64>() / returns.len() as f64;
                labels.extend(returns.iter().map(|r| (r - mean) as f32));
            }
            _ => {
                let n = returns.len() as f64;
                let ranks = crate::models::metrics::ranks(&returns);
                labels.extend(ranks.iter().map(|r| (5.0 * (r - 1.0) / n).floor().min(4.0) as f32));
            }
        }
        groups.push((end - start) as i32);
        start = end;
    }
    if objective == Objective::Regression {
        groups.clear();
    }
    (labels, groups)
}

/// Run `work`, adding its wall time to `stage`.
pub fn timed<T>(stage: &mut f64, work: impl FnOnce() -> T) -> T {
    let (out, elapsed) = stopwatch(work);
    *stage += elapsed;
    out
}

/// Run `work`; its result and wall time.
fn stopwatch<T>(work: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = work();
    (out, t.elapsed().as_secs_f64())
}

/// How LightGBM's rounds are chosen.
#[derive(Clone, Copy)]
pub enum Rounds<'a> {
    /// Train on `train`, keep as many rounds as early stopping on `valid`
    /// finds (both inside the training window).
    StopOn { train: &'a [usize], valid: &'a [usize] },
    /// Exactly this many rounds on all the fit's rows, and the score's
    /// calibration of the model that found them (ranking objectives).
    Fixed(u32, Option<[f64; 2]>),
}

/// The scaler and vocabularies of `train` rows.
pub fn fit_bundle(rows: &[Snapshot], train: &[usize], families: Families) -> TransformerBundle {
    let features: Vec<&Features> = train.iter().map(|&i| &rows[i].features).collect();
    TransformerBundle::fit(&features, families)
}

/// Fit both models: the logistic one on `train` rows (starting from
/// `start`'s weights), LightGBM as `rounds` says.
pub fn fit_models(
    rows: &[Snapshot],
    train: &[usize],
    bundle: TransformerBundle,
    rounds: Rounds,
    start: Option<&OnlineModel>,
    params: &TrainParams,
    timings: &mut Timings,
) -> anyhow::Result<Models> {
    let boost_rows = match rounds {
        Rounds::StopOn { train, .. } => train,
        Rounds::Fixed(..) => train,
    };
    let objective = params.batch.objective;
    // The logistic fit runs on one core; LightGBM bins its rows on the
    // others meanwhile.
    let ((online, online_secs), (datasets, datasets_secs)) = rayon::join(
        || stopwatch(|| fit_online(rows, train, &bundle, start, params)),
        || {
            stopwatch(|| {
                let valid = match rounds {
                    Rounds::StopOn { valid, .. } => Some(batch_matrix(&bundle, rows, valid, objective)),
                    Rounds::Fixed(..) => None,
                };
                Datasets::new(&batch_matrix(&bundle, rows, boost_rows, objective), valid.as_ref())
            })
        },
    );
    timings.online_fit += online_secs;
    timings.batch_matrices += datasets_secs;
    let (online, datasets) = (online?, datasets?);
    let batch = timed(&mut timings.batch_fit, || -> anyhow::Result<BatchModel> {
        let seed = params.seed;
        Ok(match rounds {
            Rounds::StopOn { valid, .. } => {
                let (mut model, scores) = BatchModel::train(&datasets, params.batch, seed)?;
                if objective != Objective::Binary {
                    // Calibrated on the early-stopping slice, which the
                    // trees were not fitted on.
                    let labels: Vec<u8> = valid.iter().map(|&i| label(&rows[i])).collect();
                    model.calibration = Some(platt(&scores, &labels));
                }
                model
            }
            Rounds::Fixed(r, calibration) => {
                let mut model = BatchModel::train_rounds(&datasets, params.batch, seed, r)?;
                model.calibration = calibration;
                model
            }
        })
    })?;
    drop(datasets);
    crate::jobs::release_free_memory();
    Ok(Models { bundle, online, batch })
}

/// The logistic fit on a seeded random sample of `train` rows.
fn fit_online(
    rows: &[Snapshot],
    train: &[usize],
    bundle: &TransformerBundle,
    start: Option<&OnlineModel>,
    params: &TrainParams,
) -> anyhow::Result<OnlineModel> {
    // Only the rows the fit samples become design rows.
    let sample: Vec<usize> = params
        .online
        .fit_sample(train.len(), params.seed)
        .into_iter()
        .map(|j| train[j])
        .collect();
    let (design, labels) = matrix(bundle, rows, &sample, Columns::Design);
    let x = ArrayView2::from_shape((labels.len(), bundle.design_width()), &design)?;
    let names = bundle.design_names();
    OnlineModel::fit(x, &labels, names, bundle.feature_hash.clone(), params.online, start)
}

/// Both models' probabilities for the rows `idx`: (online, batch).
pub fn score_rows(models: &Models, rows: &[Snapshot], idx: &[usize]) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    // LightGBM's booster is not Sync; it predicts on every core itself.
    let raw = matrix(&models.bundle, rows, idx, Columns::Batch).0;
    let batch = models.batch.predict(&raw)?;
    drop(raw);
    let design = matrix(&models.bundle, rows, idx, Columns::Design).0;
    Ok((models.online.predict(&design), batch))
}

/// Models fitted on a split's training rows and judged on its validation rows.
pub struct Fitted {
    pub models: Models,
    /// Ensemble scores of the validation rows (in `split.valid` order).
    pub valid_scores: Vec<f64>,
    /// Each model's probabilities of the same rows.
    pub valid_online: Vec<f64>,
    pub valid_batch: Vec<f64>,
    pub online_eval: Evaluation,
    pub batch_eval: Evaluation,
    pub ensemble_eval: Evaluation,
    pub baselines: Baselines,
}

/// Why a training window cannot be fitted honestly.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("the training window's {0} scan dates are too few to carve an early-stopping slice with a {1}-day embargo")]
    NoInnerSplit(usize, usize),
    #[error("one label class only in the rows LightGBM trains on before its early-stopping slice")]
    OneClass,
}

/// The early-stopping slice of a training window: a split of `train`'s
/// rows (indices into `rows`) whose validation part is the latest
/// `early_stopping_fraction` of its scan dates.
pub fn inner_split(rows: &[Snapshot], train: &[usize], params: &TrainParams) -> Result<Split, WindowError> {
    let dates: Vec<_> = train.iter().map(|&i| rows[i].date).collect();
    let ends: Vec<_> = train
        .iter()
        .map(|&i| rows[i].window_end.expect("labeled rows have a window"))
        .collect();
    let mut distinct = dates.clone();
    distinct.dedup();
    let inner = holdout(&dates, &ends, params.early_stopping_fraction, params.horizon)
        .ok_or(WindowError::NoInnerSplit(distinct.len(), params.horizon))?;
    let ones = inner.train.iter().filter(|&&j| label(&rows[train[j]]) == 1).count();
    if ones == 0 || ones == inner.train.len() {
        return Err(WindowError::OneClass);
    }
    Ok(Split {
        train: inner.train.iter().map(|&j| train[j]).collect(),
        valid: inner.valid.iter().map(|&j| train[j]).collect(),
        ..inner
    })
}

/// Fit both models on `split.train` (LightGBM stopping early on a slice
/// of it) and evaluate them on `split.valid`, which no fit has seen.
pub fn fit_and_evaluate(
    rows: &[Snapshot],
    split: &Split,
    params: &TrainParams,
    start: Option<&OnlineModel>,
    timings: &mut Timings,
) -> anyhow::Result<Fitted> {
    let inner = inner_split(rows, &split.train, params)?;
    let bundle = timed(&mut timings.online_fit, || {
        fit_bundle(rows, &split.train, params.families)
    });
    let rounds = Rounds::StopOn {
        train: &inner.train,
        valid: &inner.valid,
    };
    let models = fit_models(rows, &split.train, bundle, rounds, start, params, timings)?;
    timed(&mut timings.metrics, || {
        let (online, batch) = score_rows(&models, rows, &split.valid)?;
        let ens = ensemble(&online, &batch, params.batch_weight);
        let set = eval_set(rows, &split.valid);
        let k = params.top_k;
        let (online_eval, (batch_eval, ensemble_eval)) = rayon::join(
            || evaluate(&set, &online, k),
            || rayon::join(|| evaluate(&set, &batch, k), || evaluate(&set, &ens, k)),
        );
        Ok(Fitted {
            online_eval,
            batch_eval,
            ensemble_eval,
            baselines: baselines(&set),
            valid_scores: ens,
            valid_online: online,
            valid_batch: batch,
            models,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{N_CATEGORICAL, N_NUMERIC};
    use crate::labels::{ExitReason, Label};
    use crate::models::backtest::SplitMix;
    use crate::models::split::holdout;
    use crate::symbols::Symbol;
    use chrono::NaiveDate;

    const CATEGORIES: [Option<&str>; N_CATEGORICAL] =
        [Some("weak"), Some("neutral"), Some("up"), Some("none"), Some("HOLD")];

    /// 60 dates × 20 symbols; the label depends on the first feature.
    fn rows() -> Vec<Snapshot> {
        let mut rng = SplitMix(5);
        let mut u = move || rng.below(1_000_000) as f64 / 1e6;
        let start = NaiveDate::from_ymd_opt(2021, 1, 4).unwrap();
        let mut out = Vec::new();
        for d in 0..60u64 {
            for s in 0..20 {
                let mut numeric = [Some(0.0); N_NUMERIC];
                for x in numeric.iter_mut() {
                    *x = Some(u());
                }
                let y = u8::from(numeric[0].unwrap() + 0.3 * u() > 0.7);
                out.push(Snapshot {
                    symbol: Symbol::parse(&format!("S{s:02}")).unwrap(),
                    date: start + chrono::Days::new(d),
                    close: 100.0,
                    atr: Some(1.0),
                    features: Features::new(numeric, CATEGORIES),
                    label: Some(Label {
                        label: y,
                        exit_reason: if y == 1 { ExitReason::Target } else { ExitReason::Stop },
                        bars_to_exit: 2,
                        entry_price: 100.0,
                        exit_price: if y == 1 { 105.0 } else { 96.0 },
                        gross_return: if y == 1 { 0.05 } else { -0.04 },
                        realized_return: if y == 1 { 0.048 } else { -0.042 },
                        entry_cost: 0.001,
                        exit_cost: 0.001,
                    }),
                    window_end: Some(start + chrono::Days::new(d + 3)),
                    marks: Box::default(),
                    tradeable: true,
                });
            }
        }
        out
    }

    #[test]
    fn validation_labels_never_change_the_trained_models() {
        let rows = rows();
        let dates: Vec<_> = rows.iter().map(|r| r.date).collect();
        let ends: Vec<_> = rows.iter().map(|r| r.window_end.unwrap()).collect();
        let split = holdout(&dates, &ends, 0.2, 3).unwrap();
        let batch = BatchParams {
            num_rounds: 60,
            early_stopping_rounds: 10,
            min_data_in_leaf: 10,
            ..BatchParams::default()
        };
        let online = OnlineParams::default();
        let params = TrainParams {
            online: &online,
            batch: &batch,
            early_stopping_fraction: 0.2,
            horizon: 3,
            seed: 42,
            top_k: 5,
            backtest: BacktestParams {
                k: 5,
                horizon: 3,
                block: 9,
                seed: 42,
            },
            families: Families::NONE,
            batch_weight: 0.5,
        };
        let a = fit_and_evaluate(&rows, &split, &params, None, &mut Timings::default()).unwrap();
        // Flip every validation label (and its return).
        let mut flipped = rows.clone();
        for &i in &split.valid {
            let l = flipped[i].label.as_mut().unwrap();
            l.label = 1 - l.label;
            l.realized_return = -l.realized_return;
        }
        let b = fit_and_evaluate(&flipped, &split, &params, None, &mut Timings::default()).unwrap();
        assert_eq!(a.models.batch.to_text().unwrap(), b.models.batch.to_text().unwrap());
        assert_eq!(a.models.online, b.models.online);
        assert_eq!(a.valid_scores, b.valid_scores);
        // The metrics do see the flipped labels: AUC turns into 1 − AUC.
        let (auc_a, auc_b) = (a.ensemble_eval.auc.unwrap(), b.ensemble_eval.auc.unwrap());
        assert!(auc_a > 0.7, "the known signal is learned: {auc_a}");
        assert!((auc_a + auc_b - 1.0).abs() < 1e-12, "{auc_a} {auc_b}");
        // Early stopping chose its rounds inside the training window.
        let inner = inner_split(&rows, &split.train, &params).unwrap();
        let last_train_window = inner.valid.iter().map(|&i| rows[i].window_end.unwrap()).max().unwrap();
        assert!(last_train_window < split.first_valid_date);
        assert!(
            inner
                .train
                .iter()
                .all(|&i| rows[i].window_end.unwrap() < inner.first_valid_date)
        );
    }
}
