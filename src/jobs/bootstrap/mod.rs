//! `bootstrap`: build the labeled data set of a watchlist, evaluate both
//! models on a leakage-safe time split (and walk-forward folds), train the
//! final models on everything labelable, write every artifact through the
//! store, and promote the new models only when they earn it.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde::Serialize;

use crate::context::Context;
use crate::db::job_runs::RunStatus;
use crate::error::UsageError;
use crate::features::Snapshot;
use crate::jobs::dataset::{
    Skipped, labeled_cross_sections, read_and_build, resolve_as_of, trade_paths, watchlist_calendar, watchlist_symbols,
};
use crate::labels::{Barrier, Entry};
use crate::models::backtest::{Backtest, BacktestParams, backtest};
use crate::models::ensemble;
use crate::models::metrics::{Baselines, Evaluation, evaluate};
use crate::models::online::OnlineModel;
use crate::models::split::{Split, holdout, lockbox, walk_forward};
use crate::settings::{BarrierKind, LabelConfig, Settings};
use crate::store::{ArtifactRecord, WatchlistStore};
use crate::symbols::Symbol;
use crate::universe::UniverseRule;

mod promotion;
mod publish;
mod report;
mod training;

pub use report::{summary_line, table};
use training::{
    Fitted, Rounds, TrainParams, eval_dates, eval_set, fit_and_evaluate, fit_bundle, fit_models, label, score_rows,
    timed,
};

pub const JOB: &str = "bootstrap";

/// The flags of a bootstrap run.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapOptions {
    pub horizon: usize,
    pub target: f64,
    pub stop: f64,
    pub train_years: f64,
    pub max_symbols: Option<usize>,
    pub seed: u64,
    pub top_k: usize,
    pub force: bool,
    /// `--entry`, over the config's `[labels] entry`.
    pub entry: Option<Entry>,
    /// `--barrier`, over the config's `[labels] barrier`.
    pub barrier: Option<BarrierKind>,
}

impl BootstrapOptions {
    pub fn check(&self) -> Result<(), UsageError> {
        let bad = |name: &'static str, message: String| Err(UsageError::InvalidSetting { name, message });
        if self.horizon == 0 {
            return bad("--horizon", "must be at least 1 trading day".into());
        }
        if !(self.target > 0.0 && self.target.is_finite()) {
            return bad(
                "--target",
                format!("must be a positive fraction (0.05 = +5 %), got {}", self.target),
            );
        }
        if !(self.stop > 0.0 && self.stop < 1.0) {
            return bad(
                "--stop",
                format!("must be a fraction between 0 and 1 (0.04 = −4 %), got {}", self.stop),
            );
        }
        if !(self.train_years > 0.0 && self.train_years.is_finite()) {
            return bad("--train-years", format!("must be positive, got {}", self.train_years));
        }
        UsageError::require_at_least_one("--top-k", self.top_k)
    }

    /// The label rules: the flags' barriers, entry and sizing from
    /// `[labels]` (the flag wins), costs from `[costs]` (the tick of the
    /// watchlist's exchange).
    pub fn barrier(&self, settings: &Settings, exchange: &str) -> Barrier {
        Barrier {
            horizon: self.horizon,
            target: self.target,
            stop: self.stop,
            entry: self.entry.unwrap_or(settings.labels.entry),
            sizing: LabelConfig {
                barrier: self.barrier.unwrap_or(settings.labels.barrier),
                ..settings.labels.clone()
            }
            .sizing(),
            cost_bps_per_side: settings.costs.bps_per_side,
            tick: settings.costs.tick_for(exchange),
        }
    }

    fn train_params<'a>(&self, settings: &'a Settings) -> TrainParams<'a> {
        TrainParams {
            online: &settings.online,
            batch: &settings.batch,
            early_stopping_fraction: settings.bootstrap.early_stopping_fraction,
            horizon: self.horizon,
            seed: self.seed,
            top_k: self.top_k,
            backtest: BacktestParams {
                k: self.top_k,
                horizon: self.horizon,
                block: settings.promotion.block_horizons * self.horizon,
                seed: self.seed,
            },
        }
    }
}

/// Not enough data to train honestly.
#[derive(Debug, thiserror::Error)]
pub enum TrainingDataError {
    #[error(
        "{found} symbol(s) with usable rows, fewer than the minimum {min} (bootstrap.min_symbols): \
         {rows} labeled rows from {from}, {dropped} dropped for undefined features \
         (the 52-week features need 252 bars of history){skipped}"
    )]
    TooFewSymbols {
        found: usize,
        min: usize,
        rows: usize,
        dropped: usize,
        from: NaiveDate,
        skipped: String,
    },
    #[error(
        "{found} labeled rows with every feature defined, fewer than the minimum {min} (bootstrap.min_rows); \
         {dropped} rows had undefined features (the 52-week features need 252 bars of history)"
    )]
    TooFewRows { found: usize, min: usize, dropped: usize },
    #[error("all {rows} training labels are {label}: nothing to learn (check --target {target} and --stop {stop})")]
    OneClass {
        rows: usize,
        label: u8,
        target: f64,
        stop: f64,
    },
    #[error(
        "{0} scan dates are too few for a lockbox, a validation split and training dates with a {1}-day embargo \
         (use a longer --train-years)"
    )]
    NoSplit(usize, usize),
}

/// Wall time of each stage, summed over every fit (walk-forward folds,
/// holdout, final models). The logistic fits and the LightGBM datasets run
/// side by side, so the stages add up to more than `total`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Timings {
    /// Until the last candle is read (snapshots are built meanwhile).
    pub read: f64,
    /// From then until the labeled rows are in order.
    pub features_and_labels: f64,
    pub split: f64,
    /// Scalers, vocabularies, design matrices and the logistic fits.
    pub online_fit: f64,
    /// LightGBM's datasets: the raw columns, built a chunk at a time and
    /// binned as they come.
    pub batch_matrices: f64,
    /// LightGBM's boosting.
    pub batch_fit: f64,
    /// Scoring the validation rows and computing the metrics (LightGBM's
    /// validation probabilities come from its fit).
    pub metrics: f64,
    pub write: f64,
    /// Wall time of the walk-forward folds (already counted in the stages above).
    pub walk_forward: f64,
    /// The whole run, from the first read to the last file written.
    pub total: f64,
}

impl Timings {
    /// Everything the run spent outside LightGBM's fits.
    pub fn outside_lightgbm_fits(&self) -> f64 {
        self.total - self.batch_fit
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[derive(Debug, Clone, Serialize)]
pub struct FoldReport {
    pub fold: usize,
    pub train_rows: usize,
    pub valid_rows: usize,
    pub first_valid_date: NaiveDate,
    pub online: Evaluation,
    pub batch: Evaluation,
    pub ensemble: Evaluation,
    /// The daily top-K portfolio on this fold's validation dates.
    pub backtest: Backtest,
    /// Whether this fold's figures chose the ranking (it validates before
    /// the holdout).
    pub chooses: bool,
    /// This fold is the holdout split (reported from the holdout's fit).
    pub is_holdout: bool,
}

/// The lockbox: scored once by the holdout's models, for the report only.
#[derive(Debug, Clone, Serialize)]
pub struct LockboxReport {
    pub rows: usize,
    pub first_date: NaiveDate,
    pub ensemble: Evaluation,
    pub backtest: Backtest,
}

/// What a bootstrap run found and decided.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapReport {
    pub as_of: NaiveDate,
    pub symbols: usize,
    pub skipped: Vec<(String, String)>,
    pub rows: usize,
    pub dropped_undefined: usize,
    pub train_rows: usize,
    pub valid_rows: usize,
    pub first_valid_date: NaiveDate,
    pub online: Evaluation,
    pub batch: Evaluation,
    pub ensemble: Evaluation,
    pub baselines: Baselines,
    pub production_precision_at_k: Option<f64>,
    pub folds: Vec<FoldReport>,
    /// The backtest over the validation dates of the walk-forward folds
    /// before the holdout (the ones that choose), ranked as chosen.
    pub pooled_backtest: Option<Backtest>,
    /// The backtest of the holdout's validation dates, ranked as chosen:
    /// what the gate judges.
    pub holdout_backtest: Backtest,
    /// The last dates, never used to choose or promote.
    pub lockbox: Option<LockboxReport>,
    /// Ranking by probability or by expected return, over the walk-forward
    /// folds before the holdout.
    pub ranking: Option<RankingChoice>,
    /// Mean after-cost return of the out-of-sample rows (folds before the
    /// holdout, and the holdout) by decile of their ranking score.
    pub return_by_score: Vec<crate::models::expected::ReturnBin>,
    /// The tradeable universe's thresholds and the labeled rows it left out.
    pub universe: UniverseRule,
    pub untradeable_rows: usize,
    pub exchange: String,
    /// The holdout's ensemble scores (the drift reference of `p_score`).
    #[serde(skip)]
    pub validation_scores: Vec<f64>,
    pub barrier: Barrier,
    /// Symbols whose candles start after the first training date (they
    /// joined the data later: survivorship is not undone by this).
    pub late_starts: Vec<(String, NaiveDate)>,
    pub batch_rounds: u32,
    pub promoted: bool,
    pub decision: String,
    pub artifacts: Vec<String>,
    pub timings: Timings,
}

pub async fn run(ctx: &Context, options: &BootstrapOptions) -> anyhow::Result<BootstrapReport> {
    options.check()?;
    let store = ctx.watchlist_store()?;
    let _lock = store.lock_job(JOB)?;
    let started = Instant::now();
    let work = bootstrap(ctx, &store, options);
    super::audited(ctx, JOB, work, |r| (RunStatus::Ok, summary_line(r, started))).await
}

/// The labeled rows, sorted by (date, symbol), every feature defined.
struct DataSet {
    rows: Vec<Snapshot>,
    dropped_undefined: usize,
    untradeable: usize,
    symbols: usize,
    candle_hash: String,
    first_date: NaiveDate,
}

async fn bootstrap(
    ctx: &Context,
    store: &WatchlistStore,
    options: &BootstrapOptions,
) -> anyhow::Result<BootstrapReport> {
    let mut timings = Timings::default();
    let started = Instant::now();
    let t = Instant::now();
    let symbols = watchlist_symbols(ctx, options.max_symbols).await?;
    let as_of = resolve_as_of(ctx).await?;
    let first_date = as_of - chrono::Days::new((options.train_years * 365.25).round() as u64);
    let exchange = watchlist_calendar(ctx).await?.name.clone();
    let barrier = options.barrier(&ctx.settings, &exchange);
    let universe = ctx.settings.universe.rule_for(&exchange);
    if crate::settings::exchange_defaults(&exchange).is_none() {
        tracing::warn!(
            "exchange {exchange} has no shipped tradeable-universe or tick defaults: set [universe] min_price, \
             min_traded_value and [costs] tick_size for it (now: min price {}, min traded value {}, tick {:?})",
            universe.min_price,
            universe.min_traded_value,
            barrier.tick
        );
    }
    let params = options.train_params(&ctx.settings);
    let min_bars = ctx.settings.ta.min_bars;
    let built = read_and_build(ctx, &symbols, as_of, &barrier, min_bars, first_date, universe).await?;
    for s in &built.skipped {
        tracing::warn!("skipped {}: {}", s.symbol, s.reason);
    }
    warn_late_starts(&built.late_starts, first_date);
    // The snapshots are built while the candles are read: the read stage
    // ends with the last candle, the features and labels with the last symbol.
    timings.read = built.read_secs;
    let data = labeled_rows(built.snapshots, first_date, built.candle_hash, &built.skipped, ctx)?;
    super::release_free_memory();
    timings.features_and_labels = secs(t.elapsed()) - timings.read;

    let t = Instant::now();
    let windows = windows(&data.rows, &ctx.settings, options.horizon)?;
    timings.split = secs(t.elapsed());
    let split = &windows.holdout;
    check_classes(&data.rows, &split.train, options)?;

    let t = Instant::now();
    let (mut fold_reports, choice, start) = evaluate_folds(&data.rows, &windows.folds, split, &params, &mut timings)?;
    timings.walk_forward = secs(t.elapsed());
    // Chosen on the folds before the holdout; the holdout tests the choice.
    let pooled = timed(&mut timings.metrics, || choice.backtests(&data.rows, &params, &barrier));
    let ranking = pooled.as_ref().map(|p| RankingChoice {
        folds: fold_reports.iter().filter(|f| f.chooses).map(|f| f.fold).collect(),
        ..RankingChoice::from(p)
    });
    let by_expected_return = ranking.as_ref().is_some_and(|r| r.chosen == "expected_return");
    let rank = |idx: &[usize], p: &[f64]| {
        if by_expected_return {
            expected_returns(&data.rows, idx, p, &barrier)
        } else {
            p.to_vec()
        }
    };
    let mut out_of_sample = pooled
        .as_ref()
        .map(|p| (p.idx.clone(), rank(&p.idx, &p.scores)))
        .unwrap_or_default();
    let pooled_backtest = pooled.map(|p| {
        if by_expected_return {
            p.expected_return
        } else {
            p.probability
        }
    });
    let fitted = fit_and_evaluate(&data.rows, split, &params, start.as_ref(), &mut timings)?;
    let holdout_scores = rank(&split.valid, &fitted.valid_scores);
    out_of_sample.0.extend(&split.valid);
    out_of_sample.1.extend(&holdout_scores);
    let return_by_score = {
        let returns: Vec<f64> = out_of_sample
            .0
            .iter()
            .map(|&i| data.rows[i].label.expect("labeled").realized_return)
            .collect();
        crate::models::expected::return_by_score(&out_of_sample.1, &returns, 10)
    };
    let holdout_backtest = timed(&mut timings.metrics, || {
        window_backtest(&data.rows, &split.valid, &holdout_scores, &params, &[0])
    });
    if let Some(k) = windows.folds.iter().position(|f| is_holdout(f, split)) {
        fold_reports.push(FoldReport {
            is_holdout: true,
            ..FoldReport::new(k + 1, split, &fitted, holdout_backtest.clone(), false)
        });
        fold_reports.sort_by_key(|f| f.fold);
    }
    let lockbox = timed(&mut timings.metrics, || -> anyhow::Result<Option<LockboxReport>> {
        if windows.lockbox.is_empty() {
            return Ok(None);
        }
        let (online, batch) = score_rows(&fitted.models, &data.rows, &windows.lockbox)?;
        let scores = rank(&windows.lockbox, &ensemble(&online, &batch));
        let set = eval_set(&data.rows, &windows.lockbox);
        Ok(Some(LockboxReport {
            rows: windows.lockbox.len(),
            first_date: data.rows[windows.lockbox[0]].date,
            ensemble: evaluate(&set, &scores, params.top_k),
            backtest: window_backtest(&data.rows, &windows.lockbox, &scores, &params, &[0]),
        }))
    })?;

    // Final models: everything labelable, the round count early stopping
    // found, the online fit starting from the holdout's weights.
    let all: Vec<usize> = (0..data.rows.len()).collect();
    let bundle = timed(&mut timings.online_fit, || fit_bundle(&data.rows, &all));
    let rounds = Rounds::Fixed(fitted.models.batch.rounds().max(1));
    let final_models = fit_models(
        &data.rows,
        &all,
        bundle,
        rounds,
        Some(&fitted.models.online),
        &params,
        &mut timings,
    )?;

    let production = timed(&mut timings.metrics, || {
        promotion::compare_with_production(store, &data.rows, split, &holdout_scores, &params)
    });
    let candidate = promotion::Candidate {
        as_of,
        holdout: &holdout_backtest,
        ensemble: &fitted.ensemble_eval,
        baselines: &fitted.baselines,
    };
    let (promote, decision) = promotion::decide(&candidate, &production, &ctx.settings.promotion, options.force);

    let t = Instant::now();
    let mut report = BootstrapReport {
        as_of,
        symbols: data.symbols,
        skipped: built
            .skipped
            .iter()
            .map(|s| (s.symbol.clone(), s.reason.clone()))
            .collect(),
        rows: data.rows.len(),
        dropped_undefined: data.dropped_undefined,
        untradeable_rows: data.untradeable,
        return_by_score,
        universe,
        exchange,
        lockbox,
        train_rows: split.train.len(),
        valid_rows: split.valid.len(),
        first_valid_date: split.first_valid_date,
        online: fitted.online_eval,
        batch: fitted.batch_eval,
        ensemble: fitted.ensemble_eval,
        baselines: fitted.baselines,
        production_precision_at_k: production.comparison.production_precision(),
        folds: fold_reports,
        pooled_backtest,
        ranking,
        validation_scores: fitted.valid_scores.clone(),
        holdout_backtest,
        barrier,
        late_starts: built.late_starts,
        batch_rounds: fitted.models.batch.rounds(),
        promoted: promote,
        decision,
        artifacts: Vec::new(),
        timings: Timings::default(),
    };
    let written = publish::write_artifacts(ctx, store, options, &data, &windows, &final_models, &report)?;
    report.artifacts = written.iter().map(|r| r.name.clone()).collect();
    if promote {
        let models: Vec<&ArtifactRecord> = written
            .iter()
            .filter(|r| crate::store::POINTER_KINDS.contains(&r.kind.as_str()))
            .collect();
        store.promote(&ctx.writer(), &models, &report.decision)?;
    } else {
        store.record_decision(&ctx.writer(), false, &report.decision)?;
    }
    tracing::info!("promotion: {}", report.decision);
    timings.write = secs(t.elapsed());
    timings.total = secs(started.elapsed());
    log_timings(&timings);
    report.timings = timings;
    Ok(report)
}

/// Survivorship made visible: a symbol whose candles begin after the
/// training window starts was listed (or added to the source) later; one
/// that died before today is not in today's watchlist at all.
fn warn_late_starts(late: &[(String, NaiveDate)], first_date: NaiveDate) {
    if late.is_empty() {
        return;
    }
    let list: Vec<String> = late.iter().map(|(s, d)| format!("{s} ({d})")).collect();
    tracing::warn!(
        "{} symbol(s) start after the training start {first_date}: {}; the watchlist is today's, so \
         symbols that left it (delisted, acquired, dropped from the index) are missing from the past",
        late.len(),
        list.join(", ")
    );
}

fn log_timings(t: &Timings) {
    tracing::info!(
        "bootstrap timings: read {:.2} s, features+labels {:.2} s, split {:.2} s, online fits {:.2} s, \
         LightGBM datasets {:.2} s, LightGBM fits {:.2} s, metrics {:.2} s, write {:.2} s; \
         total {:.2} s (walk-forward folds {:.2} s of it), outside the LightGBM fits {:.2} s",
        t.read,
        t.features_and_labels,
        t.split,
        t.online_fit,
        t.batch_matrices,
        t.batch_fit,
        t.metrics,
        t.write,
        t.total,
        t.walk_forward,
        t.outside_lightgbm_fits()
    );
}

fn distinct(dates: &[NaiveDate]) -> usize {
    let mut d = dates.to_vec();
    d.sort();
    d.dedup();
    d.len()
}

fn labeled_rows(
    built: Vec<(Symbol, Vec<Snapshot>)>,
    first_date: NaiveDate,
    candle_hash: String,
    skipped: &[Skipped],
    ctx: &Context,
) -> anyhow::Result<DataSet> {
    let labeled = labeled_cross_sections(built, first_date, ctx.settings.universe.train_on_untradeable);
    let (symbols, dropped) = (labeled.symbols, labeled.dropped_undefined);
    let cfg = &ctx.settings.bootstrap;
    if symbols < cfg.min_symbols {
        let skipped = if skipped.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = skipped.iter().map(|s| format!("{} ({})", s.symbol, s.reason)).collect();
            format!("; skipped: {}", list.join(", "))
        };
        return Err(TrainingDataError::TooFewSymbols {
            found: symbols,
            min: cfg.min_symbols,
            rows: labeled.rows.len(),
            dropped,
            from: first_date,
            skipped,
        }
        .into());
    }
    if labeled.rows.len() < cfg.min_rows {
        return Err(TrainingDataError::TooFewRows {
            found: labeled.rows.len(),
            min: cfg.min_rows,
            dropped,
        }
        .into());
    }
    tracing::info!(
        "labeled data: {} rows of {symbols} symbols from {first_date} ({dropped} dropped: undefined features; \
         {} untradeable{})",
        labeled.rows.len(),
        labeled.untradeable,
        if ctx.settings.universe.train_on_untradeable {
            ", kept for training"
        } else {
            " left out"
        }
    );
    Ok(DataSet {
        rows: labeled.rows,
        dropped_undefined: dropped,
        untradeable: labeled.untradeable,
        symbols,
        candle_hash,
        first_date,
    })
}

fn check_classes(rows: &[Snapshot], train: &[usize], options: &BootstrapOptions) -> Result<(), TrainingDataError> {
    let ones = train.iter().filter(|&&i| label(&rows[i]) == 1).count();
    if ones == 0 || ones == train.len() {
        return Err(TrainingDataError::OneClass {
            rows: train.len(),
            label: u8::from(ones > 0),
            target: options.target,
            stop: options.stop,
        });
    }
    Ok(())
}

/// The rows' windows: training and walk-forward folds before the holdout,
/// the holdout, the lockbox after an embargo. Only tradeable rows are
/// evaluated (with `train_on_untradeable` the others train).
struct Windows {
    holdout: Split,
    folds: Vec<Split>,
    lockbox: Vec<usize>,
}

fn windows(rows: &[Snapshot], settings: &Settings, horizon: usize) -> Result<Windows, TrainingDataError> {
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

/// The validation rows and ensemble scores of the walk-forward folds that
/// validate before the holdout, in fold order: what chooses the ranking.
#[derive(Default)]
struct Pooled {
    parts: Vec<(usize, Vec<usize>, Vec<f64>)>,
}

/// The pooled walk-forward backtests of the two rankings.
struct PooledBacktests {
    probability: Backtest,
    expected_return: Backtest,
    /// The pooled rows and their probabilities.
    idx: Vec<usize>,
    scores: Vec<f64>,
}

impl Pooled {
    fn add(&mut self, fold: usize, valid: &[usize], scores: &[f64]) {
        if !valid.is_empty() {
            self.parts.push((fold, valid.to_vec(), scores.to_vec()));
        }
    }

    /// The backtests over the folds' validation dates (consecutive,
    /// disjoint blocks of dates; the bootstrap's blocks stay inside each),
    /// ranked by probability and by expected after-cost return.
    fn backtests(mut self, rows: &[Snapshot], params: &TrainParams, barrier: &Barrier) -> Option<PooledBacktests> {
        if self.parts.is_empty() {
            return None;
        }
        self.parts.sort_by_key(|p| p.0);
        let idx: Vec<usize> = self.parts.iter().flat_map(|p| p.1.iter().copied()).collect();
        let scores: Vec<f64> = self.parts.iter().flat_map(|p| p.2.iter().copied()).collect();
        let mut starts = Vec::new();
        let mut days = 0;
        for part in &self.parts {
            starts.push(days);
            days += eval_dates(rows, &part.1).len();
        }
        let expected = expected_returns(rows, &idx, &scores, barrier);
        let run = |scores: &[f64]| window_backtest(rows, &idx, scores, params, &starts);
        Some(PooledBacktests {
            probability: run(&scores),
            expected_return: run(&expected),
            idx,
            scores,
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
}

impl RankingChoice {
    fn from(b: &PooledBacktests) -> RankingChoice {
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
        }
    }
}

/// The top-K backtest of the rows `idx` (sorted by date) ranked by `scores`.
fn window_backtest(
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
fn evaluate_folds(
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
        pooled.add(
            k + 1,
            &before.iter().map(|&j| fold.valid[j]).collect::<Vec<_>>(),
            &before.iter().map(|&j| fitted.valid_scores[j]).collect::<Vec<_>>(),
        );
        out.push(FoldReport::new(k + 1, fold, &fitted, bt, chooses));
        start = Some(fitted.models.online);
    }
    Ok((out, pooled, start))
}

fn is_holdout(fold: &Split, holdout: &Split) -> bool {
    fold.first_valid_date == holdout.first_valid_date && fold.train == holdout.train && fold.valid == holdout.valid
}

impl FoldReport {
    fn new(fold: usize, split: &Split, fitted: &Fitted, backtest: Backtest, chooses: bool) -> FoldReport {
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
