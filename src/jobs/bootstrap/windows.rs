//! The rows' windows and what the walk-forward folds decide: the lockbox
//! cut, the holdout and the folds, the folds' fits and backtests, and the
//! ranking chosen on the folds before the holdout.

use chrono::NaiveDate;
use serde::Serialize;

use super::training::{Fitted, TrainParams, eval_dates, eval_set, fit_and_evaluate, label, timed};
use super::{FoldReport, Timings, TrainingDataError, distinct, training};
use crate::features::Snapshot;
use crate::jobs::dataset::trade_paths;
use crate::labels::Barrier;
use crate::models::backtest::{Backtest, backtest, top_k_per_date};
use crate::models::online::OnlineModel;
use crate::models::split::{Split, holdout, lockbox, walk_forward};
use crate::models::{DEFAULT_BATCH_WEIGHT, ENSEMBLE_BATCH_WEIGHTS, ensemble};
use crate::settings::Settings;

/// The rows' windows: training and walk-forward folds before the holdout,
/// the holdout, the lockbox after an embargo. Only tradeable rows are
/// evaluated (with `train_on_untradeable` the others train).
pub(super) struct Windows {
    pub(super) holdout: Split,
    pub(super) folds: Vec<Split>,
    pub(super) lockbox: Vec<usize>,
}

pub(super) fn windows(rows: &[Snapshot], settings: &Settings, horizon: usize) -> Result<Windows, TrainingDataError> {
    let dates: Vec<NaiveDate> = rows.iter().map(|r| r.date).collect();
    let ends: Vec<NaiveDate> = rows
        .iter()
        .map(|r| r.window_end.expect("labeled rows have a window"))
        .collect();
    let cfg = &settings.bootstrap;
    let no_split = || TrainingDataError::NoSplit(distinct(&dates), horizon);
    let (train_end, lockbox_start) = lockbox(&dates, cfg.lockbox_fraction, horizon).ok_or_else(no_split)?;
    let (dates, ends) = (&dates[..train_end], &ends[..train_end]);
    let mut holdout = holdout(dates, ends, cfg.valid_fraction, horizon).ok_or_else(no_split)?;
    let mut folds = walk_forward(dates, ends, cfg.folds, horizon);
    // With valid_fraction = 1/(folds + 1) (the default) the last fold is
    // the holdout (its block can differ by a rounding date).
    if (cfg.valid_fraction * (cfg.folds as f64 + 1.0) - 1.0).abs() < 1e-9
        && let Some(last) = folds.last_mut()
    {
        *last = holdout.clone();
    }
    let mut lockbox: Vec<usize> = (lockbox_start..rows.len()).collect();
    for valid in folds
        .iter_mut()
        .map(|f| &mut f.valid)
        .chain([&mut holdout.valid, &mut lockbox])
    {
        valid.retain(|&i| rows[i].tradeable);
    }
    if holdout.valid.is_empty() {
        return Err(no_split());
    }
    Ok(Windows {
        holdout,
        folds,
        lockbox,
    })
}

/// The validation rows and both models' probabilities of the walk-forward
/// folds that validate before the holdout, in fold order: what chooses
/// the ensemble's weights and the ranking.
#[derive(Default)]
pub(super) struct Pooled {
    parts: Vec<PooledFold>,
}

struct PooledFold {
    fold: usize,
    rows: Vec<usize>,
    online: Vec<f64>,
    batch: Vec<f64>,
}

/// The pooled walk-forward backtests of the two rankings, with the
/// ensemble weight chosen first.
pub(super) struct PooledBacktests {
    pub(super) probability: Backtest,
    pub(super) expected_return: Backtest,
    /// The pooled rows and their ensemble probabilities.
    pub(super) idx: Vec<usize>,
    pub(super) scores: Vec<f64>,
    pub(super) weights: WeightChoice,
}

/// The batch model's weight in the ensemble, chosen on the folds before
/// the holdout: the weight whose ranking by probability earned the highest
/// mean per-date top-K return there (the universe's is the same for
/// every weight, so this is the highest excess; ties keep the weight
/// nearer the mean).
#[derive(Debug, Clone, Serialize)]
pub struct WeightChoice {
    pub batch_weight: f64,
    /// (batch weight, mean per-date top-K after-cost return) of each tried.
    pub tried: Vec<(f64, f64)>,
}

impl WeightChoice {
    fn choose(rows: &[Snapshot], idx: &[usize], online: &[f64], batch: &[f64], k: usize) -> WeightChoice {
        let set = eval_set(rows, idx);
        let tried: Vec<(f64, f64)> = ENSEMBLE_BATCH_WEIGHTS
            .iter()
            .map(|&w| {
                let per_date = top_k_per_date(&set, &ensemble(online, batch, w), k);
                (w, per_date.iter().sum::<f64>() / per_date.len().max(1) as f64)
            })
            .collect();
        WeightChoice {
            batch_weight: best_weight(&tried),
            tried,
        }
    }
}

/// The weight with the highest figure; of equal ones, the nearest the mean.
fn best_weight(tried: &[(f64, f64)]) -> f64 {
    let distance = |w: f64| (w - DEFAULT_BATCH_WEIGHT).abs();
    tried
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(distance(b.0).total_cmp(&distance(a.0))))
        .map_or(DEFAULT_BATCH_WEIGHT, |(w, _)| w)
}

impl Pooled {
    fn add(&mut self, fold: usize, rows: Vec<usize>, online: Vec<f64>, batch: Vec<f64>) {
        if !rows.is_empty() {
            self.parts.push(PooledFold {
                fold,
                rows,
                online,
                batch,
            });
        }
    }

    /// The backtests over the folds' validation dates (consecutive,
    /// disjoint blocks of dates; the bootstrap's blocks stay inside each),
    /// ranked by probability and by expected after-cost return, at the
    /// chosen ensemble weight.
    pub(super) fn backtests(
        mut self,
        rows: &[Snapshot],
        params: &TrainParams,
        barrier: &Barrier,
    ) -> Option<PooledBacktests> {
        if self.parts.is_empty() {
            return None;
        }
        self.parts.sort_by_key(|p| p.fold);
        let idx: Vec<usize> = self.parts.iter().flat_map(|p| p.rows.iter().copied()).collect();
        let online: Vec<f64> = self.parts.iter().flat_map(|p| p.online.iter().copied()).collect();
        let batch: Vec<f64> = self.parts.iter().flat_map(|p| p.batch.iter().copied()).collect();
        let weights = WeightChoice::choose(rows, &idx, &online, &batch, params.top_k);
        let scores = ensemble(&online, &batch, weights.batch_weight);
        let mut starts = Vec::new();
        let mut days = 0;
        for part in &self.parts {
            starts.push(days);
            days += eval_dates(rows, &part.rows).len();
        }
        let expected = expected_returns(rows, &idx, &scores, barrier);
        let run = |scores: &[f64]| window_backtest(rows, &idx, scores, params, &starts);
        Some(PooledBacktests {
            probability: run(&scores),
            expected_return: run(&expected),
            idx,
            scores,
            weights,
        })
    }
}

/// Each row's expected after-cost return from its probability.
pub(super) fn expected_returns(rows: &[Snapshot], idx: &[usize], probabilities: &[f64], barrier: &Barrier) -> Vec<f64> {
    idx.iter()
        .zip(probabilities)
        .map(|(&i, &p)| {
            let atr_over_close = rows[i].atr.map(|a| a / rows[i].close);
            barrier.expected_return(p, atr_over_close).unwrap_or(f64::NEG_INFINITY)
        })
        .collect()
}

/// Walk-forward figures of the two rankings, and the one chosen.
#[derive(Debug, Clone, Serialize)]
pub struct RankingChoice {
    /// `probability` unless ranking by expected return earned a higher
    /// per-date top-K excess over the folds before the holdout.
    pub chosen: &'static str,
    /// The folds whose validation dates chose.
    pub folds: Vec<usize>,
    pub probability_excess: Option<f64>,
    pub expected_return_excess: Option<f64>,
    pub probability_top_k_per_date: Option<f64>,
    pub expected_return_top_k_per_date: Option<f64>,
    /// The ensemble's weights tried and the one chosen (before the
    /// ranking, on the same rows).
    pub ensemble: WeightChoice,
}

impl RankingChoice {
    pub(super) fn from(b: &PooledBacktests) -> RankingChoice {
        let (p, e) = (&b.probability, &b.expected_return);
        let better = match (e.excess.mean, p.excess.mean) {
            (Some(e), Some(p)) => e > p,
            _ => false,
        };
        RankingChoice {
            chosen: if better { "expected_return" } else { "probability" },
            folds: Vec::new(),
            probability_excess: p.excess.mean,
            expected_return_excess: e.excess.mean,
            probability_top_k_per_date: p.top_k.per_date_mean_return,
            expected_return_top_k_per_date: e.top_k.per_date_mean_return,
            ensemble: b.weights.clone(),
        }
    }
}

/// The top-K backtest of the rows `idx` (sorted by date) ranked by `scores`.
pub(super) fn window_backtest(
    rows: &[Snapshot],
    idx: &[usize],
    scores: &[f64],
    params: &TrainParams,
    segment_starts: &[usize],
) -> Backtest {
    let set = eval_set(rows, idx);
    let dates = eval_dates(rows, idx);
    let paths = trade_paths(rows, idx);
    Backtest {
        row_ids: idx.to_vec(),
        ..backtest(&set, &paths, &dates, segment_starts, scores, params.backtest)
    }
}

/// The walk-forward folds, each fitted and evaluated — except a fold that
/// is the holdout split itself, which is reported from the holdout fit.
/// Each fold's online fit starts from the previous fold's weights (fitted
/// on a subset of its rows, so no later data leaks in); the last of them
/// is returned as the start of the holdout fit. The folds that validate
/// before the holdout (rows whose label window ends before it) are pooled
/// to choose the ranking.
pub(super) fn evaluate_folds(
    rows: &[Snapshot],
    folds: &[Split],
    holdout: &Split,
    params: &TrainParams,
    timings: &mut Timings,
) -> anyhow::Result<(Vec<FoldReport>, Pooled, Option<OnlineModel>)> {
    let mut out = Vec::new();
    let mut pooled = Pooled::default();
    let mut start: Option<OnlineModel> = None;
    for (k, fold) in folds.iter().enumerate() {
        if is_holdout(fold, holdout) {
            continue;
        }
        let ones = fold.train.iter().filter(|&&i| label(&rows[i]) == 1).count();
        if ones == 0 || ones == fold.train.len() || fold.valid.is_empty() {
            tracing::warn!(
                "walk-forward fold {} skipped: one label class in its training rows, or no tradeable row to validate",
                k + 1
            );
            continue;
        }
        let fitted = match fit_and_evaluate(rows, fold, params, start.as_ref(), timings) {
            Ok(fitted) => fitted,
            Err(err) if err.downcast_ref::<training::WindowError>().is_some() => {
                tracing::warn!("walk-forward fold {} skipped: {err:#}", k + 1);
                continue;
            }
            Err(err) => return Err(err),
        };
        let bt = timed(&mut timings.metrics, || {
            window_backtest(rows, &fold.valid, &fitted.valid_scores, params, &[0])
        });
        // Scan dates at least a horizon before the holdout: every symbol of
        // such a date is kept (cutting by each row's own window end would
        // drop the symbols that later miss sessions: a choice by the future).
        let before: Vec<usize> = (0..fold.valid.len())
            .filter(|&j| rows[fold.valid[j]].date < holdout.train_window_end_before)
            .collect();
        let chooses = !before.is_empty();
        let pick = |xs: &[f64]| before.iter().map(|&j| xs[j]).collect::<Vec<_>>();
        pooled.add(
            k + 1,
            before.iter().map(|&j| fold.valid[j]).collect(),
            pick(&fitted.valid_online),
            pick(&fitted.valid_batch),
        );
        out.push(FoldReport::new(k + 1, fold, &fitted, bt, chooses));
        start = Some(fitted.models.online);
    }
    Ok((out, pooled, start))
}

pub(super) fn is_holdout(fold: &Split, holdout: &Split) -> bool {
    fold.first_valid_date == holdout.first_valid_date && fold.train == holdout.train && fold.valid == holdout.valid
}

impl FoldReport {
    pub(super) fn new(fold: usize, split: &Split, fitted: &Fitted, backtest: Backtest, chooses: bool) -> FoldReport {
        FoldReport {
            fold,
            train_rows: split.train.len(),
            valid_rows: split.valid.len(),
            first_valid_date: split.first_valid_date,
            online: fitted.online_eval.clone(),
            batch: fitted.batch_eval.clone(),
            ensemble: fitted.ensemble_eval.clone(),
            backtest,
            chooses,
            is_holdout: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_weight_wins_and_ties_keep_the_mean() {
        assert_eq!(best_weight(&[(0.0, 0.001), (0.5, 0.002), (1.0, 0.003)]), 1.0);
        assert_eq!(best_weight(&[(0.0, 0.003), (0.5, 0.003), (1.0, 0.001)]), 0.5);
        assert_eq!(best_weight(&[(0.25, 0.002), (1.0, 0.002)]), 0.25);
        assert_eq!(best_weight(&[]), DEFAULT_BATCH_WEIGHT);
    }
}
