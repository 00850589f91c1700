//! `bootstrap`: build the labeled data set of a watchlist, evaluate both
//! models on a leakage-safe time split (and walk-forward folds), train the
//! final models on everything labelable, write every artifact through the
//! store, and promote the new models only when they earn it.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ndarray::ArrayView2;
use serde::Serialize;

use crate::context::Context;
use crate::db::job_runs::RunStatus;
use crate::error::UsageError;
use crate::features::config::FeatureConfig;
use crate::features::transform::{Columns, TransformerBundle};
use crate::features::{Features, Snapshot};
use crate::jobs::dataset::{Skipped, read_and_build, resolve_as_of, watchlist_symbols};
use crate::jobs::production::ProductionModels;
use crate::labels::Barrier;
use crate::models::batch::{BatchModel, Matrix};
use crate::models::ensemble;
use crate::models::metrics::{Baselines, EvalSet, Evaluation, baselines, evaluate};
use crate::models::online::OnlineModel;
use crate::models::split::{Split, holdout, walk_forward};
use crate::store::{ArtifactRecord, InputRef, NameStyle, NewArtifact, WatchlistStore};
use crate::symbols::Symbol;

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
        if self.top_k == 0 {
            return bad("--top-k", "must be at least 1".into());
        }
        Ok(())
    }

    pub fn barrier(&self) -> Barrier {
        Barrier {
            horizon: self.horizon,
            target: self.target,
            stop: self.stop,
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
    #[error("{0} scan dates are too few for a validation split with a {1}-day embargo")]
    NoSplit(usize, usize),
}

/// Wall time of each stage, summed over every fit (walk-forward folds,
/// holdout, final models). The logistic fits and the LightGBM matrices run
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
    /// The LightGBM input matrices.
    pub batch_matrices: f64,
    /// LightGBM itself: dataset construction and boosting.
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
    let barrier = options.barrier();
    let built = read_and_build(ctx, &symbols, as_of, &barrier, ctx.settings.ta.min_bars, first_date).await?;
    for s in &built.skipped {
        tracing::warn!("skipped {}: {}", s.symbol, s.reason);
    }
    // The snapshots are built while the candles are read: the read stage
    // ends with the last candle, the features and labels with the last symbol.
    timings.read = built.read_secs;
    let data = labeled_rows(built.snapshots, first_date, built.candle_hash, &built.skipped, ctx)?;
    release_free_memory();
    timings.features_and_labels = secs(t.elapsed()) - timings.read;

    let t = Instant::now();
    let dates: Vec<NaiveDate> = data.rows.iter().map(|r| r.date).collect();
    let ends: Vec<NaiveDate> = data
        .rows
        .iter()
        .map(|r| r.window_end.expect("labeled rows have a window"))
        .collect();
    let cfg = &ctx.settings.bootstrap;
    let split = holdout(&dates, &ends, cfg.valid_fraction, options.horizon)
        .ok_or(TrainingDataError::NoSplit(distinct(&dates), options.horizon))?;
    let folds = walk_forward(&dates, &ends, cfg.folds, options.horizon);
    timings.split = secs(t.elapsed());
    check_classes(&data.rows, &split.train, options)?;

    let t = Instant::now();
    let (mut fold_reports, start) = evaluate_folds(ctx, &data.rows, &folds, &split, options, &mut timings)?;
    timings.walk_forward = secs(t.elapsed());
    let fitted = fit_and_evaluate(ctx, &data.rows, &split, options, start.as_ref(), &mut timings)?;
    if let Some(k) = folds.iter().position(|f| is_holdout(f, &split)) {
        fold_reports.push(FoldReport::new(k + 1, &split, &fitted));
        fold_reports.sort_by_key(|f| f.fold);
    }

    // Final models: everything labelable, the round count early stopping
    // found, the online fit starting from the holdout's weights.
    let all: Vec<usize> = (0..data.rows.len()).collect();
    let bundle = timed(&mut timings.online_fit, || fit_bundle(&data.rows, &all));
    let plan = FitPlan {
        rounds: Rounds::Fixed(fitted.models.batch.rounds().max(1)),
        start: Some(&fitted.models.online),
    };
    let (final_models, _) = fit_models(ctx, &data.rows, &all, bundle, plan, options, &mut timings)?;

    let production = timed(&mut timings.metrics, || {
        compare_with_production(store, &data.rows, &split, &fitted.valid_scores, options.top_k)
    });
    let (promote, decision) = decide(&fitted, &production, options.force);

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
        train_rows: split.train.len(),
        valid_rows: split.valid.len(),
        first_valid_date: split.first_valid_date,
        online: fitted.online_eval,
        batch: fitted.batch_eval,
        ensemble: fitted.ensemble_eval,
        baselines: fitted.baselines,
        production_precision_at_k: production.production_precision(),
        folds: fold_reports,
        batch_rounds: fitted.models.batch.rounds(),
        promoted: promote,
        decision,
        artifacts: Vec::new(),
        timings: Timings::default(),
    };
    let written = write_artifacts(ctx, store, options, &data, &split, &final_models, &report)?;
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

/// Hand memory freed by the candle and indicator stages back to the OS:
/// glibc keeps freed heap pages mapped, which would otherwise stay in the
/// process's resident size through the long training stages.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages; no pointers change.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn log_timings(t: &Timings) {
    tracing::info!(
        "bootstrap timings: read {:.2} s, features+labels {:.2} s, split {:.2} s, online fits {:.2} s, \
         LightGBM matrices {:.2} s, LightGBM fits {:.2} s, metrics {:.2} s, write {:.2} s; \
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
    let mut built = built;
    let mut dropped = 0;
    for (_, snapshots) in &mut built {
        snapshots.retain(|s| {
            let labeled = s.label.is_some() && s.date >= first_date;
            let undefined = labeled && s.features.first_missing().is_some();
            dropped += usize::from(undefined);
            labeled && !undefined
        });
    }
    let symbols = built.iter().filter(|(_, s)| !s.is_empty()).count();
    let labeled: usize = built.iter().map(|(_, s)| s.len()).sum();
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
            rows: labeled,
            dropped,
            from: first_date,
            skipped,
        }
        .into());
    }
    if labeled < cfg.min_rows {
        return Err(TrainingDataError::TooFewRows {
            found: labeled,
            min: cfg.min_rows,
            dropped,
        }
        .into());
    }
    let rows = in_date_symbol_order(built);
    tracing::info!(
        "labeled data: {} rows of {symbols} symbols from {first_date} ({dropped} dropped: undefined features)",
        rows.len()
    );
    Ok(DataSet {
        rows,
        dropped_undefined: dropped,
        symbols,
        candle_hash,
        first_date,
    })
}

/// Every symbol's rows (each in date order) as one vector in (date,
/// symbol) order: the (date, symbol, position) keys are sorted, then each
/// row is copied once to its place.
fn in_date_symbol_order(mut per_symbol: Vec<(Symbol, Vec<Snapshot>)>) -> Vec<Snapshot> {
    per_symbol.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut keys: Vec<(NaiveDate, u32, u32)> = per_symbol
        .iter()
        .enumerate()
        .flat_map(|(s, (_, rows))| rows.iter().enumerate().map(move |(i, r)| (r.date, s as u32, i as u32)))
        .collect();
    // (date, symbol) is unique, so an unstable sort gives the one order.
    keys.sort_unstable();
    keys.iter()
        .map(|&(_, s, i)| per_symbol[s as usize].1[i as usize].clone())
        .collect()
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

fn label(s: &Snapshot) -> u8 {
    s.label.map(|l| l.label).unwrap_or(0)
}

/// Both models and their bundle, fitted on `train` rows.
struct Models {
    bundle: TransformerBundle,
    online: OnlineModel,
    batch: BatchModel,
}

/// Row-major matrix of `idx` rows — the online model's design or the
/// batch model's raw columns — and the labels.
fn matrix(bundle: &TransformerBundle, rows: &[Snapshot], idx: &[usize], columns: Columns) -> (Vec<f64>, Vec<u8>) {
    let features: Vec<&Features> = idx.iter().map(|&i| &rows[i].features).collect();
    let labels = idx.iter().map(|&i| label(&rows[i])).collect();
    (bundle.matrix(&features, columns), labels)
}

/// Run `work`, adding its wall time to `stage`.
fn timed<T>(stage: &mut f64, work: impl FnOnce() -> T) -> T {
    let (out, elapsed) = stopwatch(work);
    *stage += elapsed;
    out
}

/// Run `work`; its result and wall time.
fn stopwatch<T>(work: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = work();
    (out, secs(t.elapsed()))
}

/// How a fit is done: LightGBM's rounds and the online model's starting
/// weights.
struct FitPlan<'a> {
    rounds: Rounds<'a>,
    start: Option<&'a OnlineModel>,
}

#[derive(Clone, Copy)]
enum Rounds<'a> {
    /// As many as early stopping on these validation rows keeps.
    StopOn(&'a [usize]),
    Fixed(u32),
}

/// [`Rounds`] with the validation rows' LightGBM matrix built.
enum Stopping {
    On((Vec<f64>, Vec<u8>)),
    After(u32),
}

/// The scaler and vocabularies of `train` rows.
fn fit_bundle(rows: &[Snapshot], train: &[usize]) -> TransformerBundle {
    let features: Vec<&Features> = train.iter().map(|&i| &rows[i].features).collect();
    TransformerBundle::fit(&features)
}

/// Fit both models on `train` rows, whose `bundle` is given; with early
/// stopping, LightGBM's probabilities on the validation rows come too.
fn fit_models(
    ctx: &Context,
    rows: &[Snapshot],
    train: &[usize],
    bundle: TransformerBundle,
    plan: FitPlan,
    options: &BootstrapOptions,
    timings: &mut Timings,
) -> anyhow::Result<(Models, Option<Vec<f64>>)> {
    // The logistic fit runs on one core; LightGBM's input matrices are
    // built on the others meanwhile.
    let ((online, online_secs), ((train_raw, stopping), matrices_secs)) = rayon::join(
        || stopwatch(|| fit_online(ctx, rows, train, &bundle, plan.start)),
        || {
            stopwatch(|| {
                let stopping = match plan.rounds {
                    Rounds::StopOn(valid) => Stopping::On(matrix(&bundle, rows, valid, Columns::Batch)),
                    Rounds::Fixed(r) => Stopping::After(r),
                };
                (matrix(&bundle, rows, train, Columns::Batch), stopping)
            })
        },
    );
    timings.online_fit += online_secs;
    timings.batch_matrices += matrices_secs;
    let online = online?;
    let width = bundle.design_width();
    let train_matrix = Matrix {
        flat: &train_raw.0,
        labels: &train_raw.1,
        width,
    };
    let params = &ctx.settings.batch;
    let (batch, valid_scores) = timed(&mut timings.batch_fit, || match &stopping {
        Stopping::On((flat, labels)) => {
            let valid = Matrix { flat, labels, width };
            BatchModel::train(&train_matrix, &valid, params, options.seed).map(|(m, s)| (m, Some(s)))
        }
        Stopping::After(r) => BatchModel::train_rounds(&train_matrix, params, options.seed, *r).map(|m| (m, None)),
    })?;
    drop((train_raw, stopping));
    release_free_memory();
    Ok((Models { bundle, online, batch }, valid_scores))
}

/// The logistic fit on (a sample of) `train` rows.
fn fit_online(
    ctx: &Context,
    rows: &[Snapshot],
    train: &[usize],
    bundle: &TransformerBundle,
    start: Option<&OnlineModel>,
) -> anyhow::Result<OnlineModel> {
    // Only the rows the fit samples become design rows.
    let params = &ctx.settings.online;
    let sample: Vec<usize> = params.fit_sample(train.len()).map(|j| train[j]).collect();
    let (design, labels) = matrix(bundle, rows, &sample, Columns::Design);
    let x = ArrayView2::from_shape((labels.len(), bundle.design_width()), &design)?;
    let names = bundle.design_names();
    OnlineModel::fit(x, &labels, names, bundle.feature_hash.clone(), params, start)
}

/// Models fitted on a split's training rows and judged on its validation rows.
struct Fitted {
    models: Models,
    /// Ensemble scores of the validation rows (in `split.valid` order).
    valid_scores: Vec<f64>,
    online_eval: Evaluation,
    batch_eval: Evaluation,
    ensemble_eval: Evaluation,
    baselines: Baselines,
}

fn eval_set(rows: &[Snapshot], idx: &[usize]) -> EvalSet {
    let mut set = EvalSet::default();
    let mut day = 0u32;
    for (n, &i) in idx.iter().enumerate() {
        if n > 0 && rows[i].date != rows[idx[n - 1]].date {
            day += 1;
        }
        let l = rows[i].label.expect("labeled");
        set.day.push(day);
        set.label.push(l.label);
        set.realized_return.push(l.realized_return);
        set.rule_buy.push(rows[i].features.categorical(4) == Some("BUY"));
    }
    set
}

/// Fit both models on `split.train` (LightGBM stopping early on
/// `split.valid`) and evaluate them on `split.valid`.
fn fit_and_evaluate(
    ctx: &Context,
    rows: &[Snapshot],
    split: &Split,
    options: &BootstrapOptions,
    start: Option<&OnlineModel>,
    timings: &mut Timings,
) -> anyhow::Result<Fitted> {
    let bundle = timed(&mut timings.online_fit, || fit_bundle(rows, &split.train));
    let plan = FitPlan {
        rounds: Rounds::StopOn(&split.valid),
        start,
    };
    let (models, batch) = fit_models(ctx, rows, &split.train, bundle, plan, options, timings)?;
    let batch = batch.expect("early stopping keeps the validation scores");
    timed(&mut timings.metrics, || {
        let online = models
            .online
            .predict(&matrix(&models.bundle, rows, &split.valid, Columns::Design).0);
        let ens = ensemble(&online, &batch);
        let set = eval_set(rows, &split.valid);
        let k = options.top_k;
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
            models,
        })
    })
}

/// The walk-forward folds, each fitted and evaluated — except a fold that
/// is the holdout split itself, which is reported from the holdout fit.
/// Each fold's online fit starts from the previous fold's weights (fitted
/// on a subset of its rows, so no later data leaks in); the last of them
/// is returned as the start of the holdout fit.
fn evaluate_folds(
    ctx: &Context,
    rows: &[Snapshot],
    folds: &[Split],
    holdout: &Split,
    options: &BootstrapOptions,
    timings: &mut Timings,
) -> anyhow::Result<(Vec<FoldReport>, Option<OnlineModel>)> {
    let mut out = Vec::new();
    let mut start: Option<OnlineModel> = None;
    for (k, fold) in folds.iter().enumerate() {
        if is_holdout(fold, holdout) {
            continue;
        }
        let ones = fold.train.iter().filter(|&&i| label(&rows[i]) == 1).count();
        if ones == 0 || ones == fold.train.len() {
            tracing::warn!(
                "walk-forward fold {} skipped: one label class in its training rows",
                k + 1
            );
            continue;
        }
        let fitted = fit_and_evaluate(ctx, rows, fold, options, start.as_ref(), timings)?;
        out.push(FoldReport::new(k + 1, fold, &fitted));
        start = Some(fitted.models.online);
    }
    Ok((out, start))
}

fn is_holdout(fold: &Split, holdout: &Split) -> bool {
    fold.first_valid_date == holdout.first_valid_date && fold.train == holdout.train && fold.valid == holdout.valid
}

impl FoldReport {
    fn new(fold: usize, split: &Split, fitted: &Fitted) -> FoldReport {
        FoldReport {
            fold,
            train_rows: split.train.len(),
            valid_rows: split.valid.len(),
            first_valid_date: split.first_valid_date,
            online: fitted.online_eval.clone(),
            batch: fitted.batch_eval.clone(),
            ensemble: fitted.ensemble_eval.clone(),
        }
    }
}

/// How the live models compare with the candidate.
#[derive(Debug, Clone)]
enum ProductionComparison {
    NoProduction,
    Unusable(String),
    /// The live models were trained on every validation row: comparing on
    /// rows they learned from would favour them unfairly.
    SawValidation(NaiveDate),
    /// Precision@K of both on the validation rows after the live models'
    /// training data.
    Compared {
        from: NaiveDate,
        rows: usize,
        candidate: f64,
        production: f64,
    },
}

impl ProductionComparison {
    fn production_precision(&self) -> Option<f64> {
        match self {
            ProductionComparison::Compared { production, .. } => Some(*production),
            _ => None,
        }
    }
}

/// Score the validation rows the live models never trained on (scan
/// dates after their `as_of`) with both, and compare precision@K there.
fn compare_with_production(
    store: &WatchlistStore,
    rows: &[Snapshot],
    split: &Split,
    candidate_scores: &[f64],
    k: usize,
) -> ProductionComparison {
    let production = match ProductionModels::load(store) {
        Ok(Some(p)) => p,
        Ok(None) => return ProductionComparison::NoProduction,
        Err(err) => return ProductionComparison::Unusable(format!("{err:#}")),
    };
    let Some(trained_through) = production_as_of(store, &production) else {
        return ProductionComparison::Unusable("its training as-of date is not recorded".into());
    };
    let unseen: Vec<usize> = (0..split.valid.len())
        .filter(|&j| rows[split.valid[j]].date > trained_through)
        .collect();
    if unseen.is_empty() {
        return ProductionComparison::SawValidation(trained_through);
    }
    let idx: Vec<usize> = unseen.iter().map(|&j| split.valid[j]).collect();
    let features: Vec<&Features> = idx.iter().map(|&i| &rows[i].features).collect();
    let live = match production.score(&features) {
        Ok((_, _, ens)) => ens,
        Err(err) => return ProductionComparison::Unusable(format!("{err:#}")),
    };
    let set = eval_set(rows, &idx);
    let candidate: Vec<f64> = unseen.iter().map(|&j| candidate_scores[j]).collect();
    ProductionComparison::Compared {
        from: rows[idx[0]].date,
        rows: idx.len(),
        candidate: evaluate(&set, &candidate, k).precision_at_k,
        production: evaluate(&set, &live, k).precision_at_k,
    }
}

/// The `as_of` the live online model was trained with (its sidecar).
fn production_as_of(store: &WatchlistStore, production: &ProductionModels) -> Option<NaiveDate> {
    let name = &production.pointer.artifacts.get("model_online")?.name;
    let record = store
        .list(Some("model_online"))
        .ok()?
        .into_iter()
        .find(|r| &r.name == name)?;
    let meta = store.meta(&record).ok()?;
    meta.parameters.get("as_of")?.as_str()?.parse().ok()
}

/// Promote when the ensemble's validation precision@K beats both baselines
/// and is not worse than the live models' on the validation rows they have
/// not seen.
fn decide(fitted: &Fitted, production: &ProductionComparison, force: bool) -> (bool, String) {
    let p = fitted.ensemble_eval.precision_at_k;
    let k = fitted.ensemble_eval.k;
    let base = fitted.baselines.base_rate;
    let rule = fitted.baselines.rule_buy_precision.unwrap_or(0.0);
    let mut reasons = Vec::new();
    let mut ok = true;
    if p > base {
        reasons.push(format!("precision@{k} {p:.4} > base rate {base:.4}"));
    } else {
        ok = false;
        reasons.push(format!("precision@{k} {p:.4} does not beat the base rate {base:.4}"));
    }
    if p > rule {
        reasons.push(format!("> rule BUY precision {rule:.4}"));
    } else {
        ok = false;
        reasons.push(format!("does not beat the rule BUY precision {rule:.4}"));
    }
    match production {
        ProductionComparison::NoProduction => reasons.push("no production model yet".into()),
        ProductionComparison::Unusable(why) => {
            reasons.push(format!("production models unusable, not compared ({why})"))
        }
        ProductionComparison::SawValidation(through) => reasons.push(format!(
            "production trained through {through} covers the whole validation window, not compared"
        )),
        ProductionComparison::Compared {
            from,
            rows,
            candidate,
            production,
        } => {
            let verdict = if candidate >= production { "≥" } else { "<" };
            ok &= candidate >= production;
            reasons.push(format!(
                "on the {rows} validation rows from {from} production never saw: {candidate:.4} {verdict} production {production:.4}"
            ));
        }
    }
    let verdict = match (ok, force) {
        (true, _) => "promoted",
        (false, true) => "promoted by --force",
        (false, false) => "not promoted",
    };
    (ok || force, format!("{verdict}: {}", reasons.join(", ")))
}

#[allow(clippy::too_many_arguments)]
fn write_artifacts(
    ctx: &Context,
    store: &WatchlistStore,
    options: &BootstrapOptions,
    data: &DataSet,
    split: &Split,
    models: &Models,
    report: &BootstrapReport,
) -> anyhow::Result<Vec<ArtifactRecord>> {
    let by = ctx.writer();
    let params = serde_json::json!({
        "options": options,
        "as_of": report.as_of,
        "first_scan_date": data.first_date,
        "online": ctx.settings.online,
        "batch": ctx.settings.batch,
        "bootstrap": {
            "valid_fraction": ctx.settings.bootstrap.valid_fraction,
            "folds": ctx.settings.bootstrap.folds,
            "min_bars": ctx.settings.ta.min_bars,
        },
    });
    let candles = InputRef {
        name: format!("candles:{}:..{}", ctx.settings.watchlist, report.as_of),
        sha256: data.candle_hash.clone(),
    };
    let years = format_years(options.train_years);
    let labeled_spec = NewArtifact::new("labeled_data", NameStyle::Timestamped, "parquet")
        .prefix(format!("labeled_data_{years}y_{}", report.as_of))
        .parameters(params.clone())
        .inputs(vec![candles.clone()]);
    // The Parquet writer runs on one core; the drift reference (order
    // statistics of every feature) takes the other meanwhile.
    let (labeled, reference) = rayon::join(
        || {
            store.write(&by, labeled_spec, |w| {
                crate::parquet_out::write_labeled(w, &data.rows, split)
            })
        },
        || FeatureConfig::from_training(data.rows.iter().map(|r| &r.features)),
    );
    let labeled = labeled?;
    let lineage = vec![
        candles,
        InputRef {
            name: labeled.name.clone(),
            sha256: labeled.sha256.clone(),
        },
    ];
    let spec = |kind: &str, ext: &str| {
        NewArtifact::new(kind, NameStyle::Versioned, ext)
            .parameters(params.clone())
            .inputs(lineage.clone())
    };
    let feature_config = FeatureConfig {
        label: Some(options.barrier()),
        ..reference
    };
    let config = store.write_json(&by, spec("feature_config", "json"), &feature_config)?;
    let bundle = store.write_json(&by, spec("transformer_bundle", "json"), &models.bundle)?;
    let online = store.write_json(&by, spec("model_online", "json"), &models.online)?;
    let batch = store.write_bytes(&by, spec("model_batch", "txt"), models.batch.to_text()?.as_bytes())?;

    let importance: Vec<(String, f64)> = {
        let mut pairs: Vec<(String, f64)> = models
            .bundle
            .design_names()
            .into_iter()
            .zip(models.batch.importance_gain()?)
            .collect();
        pairs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        pairs
    };
    let folds_of = |pick: fn(&FoldReport) -> &Evaluation| -> Vec<serde_json::Value> {
        report
            .folds
            .iter()
            .map(|f| {
                serde_json::json!({"fold": f.fold, "train_rows": f.train_rows, "valid_rows": f.valid_rows,
                "first_valid_date": f.first_valid_date, "metrics": pick(f)})
            })
            .collect()
    };
    let common = serde_json::json!({
        "run_id": ctx.run_id,
        "as_of": report.as_of,
        "rows": report.rows,
        "train_rows": report.train_rows,
        "valid_rows": report.valid_rows,
        "first_valid_date": report.first_valid_date,
        "dropped_undefined_features": report.dropped_undefined,
        "baselines": report.baselines,
        "decision": report.decision,
        "promoted": report.promoted,
    });
    let mut online_metrics = common.clone();
    online_metrics["holdout"] = serde_json::to_value(&report.online)?;
    online_metrics["walk_forward"] = serde_json::json!(folds_of(|f| &f.online));
    let mut batch_metrics = common;
    batch_metrics["holdout"] = serde_json::to_value(&report.batch)?;
    batch_metrics["ensemble"] = serde_json::to_value(&report.ensemble)?;
    batch_metrics["production_precision_at_k"] = serde_json::json!(report.production_precision_at_k);
    batch_metrics["rounds"] = serde_json::json!(report.batch_rounds);
    batch_metrics["feature_importance_gain"] = serde_json::json!(importance);
    batch_metrics["walk_forward"] = serde_json::json!(folds_of(|f| &f.batch));
    batch_metrics["walk_forward_ensemble"] = serde_json::json!(folds_of(|f| &f.ensemble));
    let metric_spec = |kind: &str| {
        NewArtifact::new(kind, NameStyle::Timestamped, "json")
            .parameters(params.clone())
            .inputs(vec![
                InputRef {
                    name: online.name.clone(),
                    sha256: online.sha256.clone(),
                },
                InputRef {
                    name: batch.name.clone(),
                    sha256: batch.sha256.clone(),
                },
            ])
    };
    let online_m = store.write_json(&by, metric_spec("online_train_metrics"), &online_metrics)?;
    let batch_m = store.write_json(&by, metric_spec("batch_train_metrics"), &batch_metrics)?;
    Ok(vec![labeled, config, bundle, online, batch, online_m, batch_m])
}

fn format_years(years: f64) -> String {
    if years.fract() == 0.0 {
        format!("{}", years as u64)
    } else {
        format!("{years}")
    }
}

pub fn summary_line(r: &BootstrapReport, started: Instant) -> String {
    format!(
        "bootstrap: {} rows of {} symbols (train {}, validation {} from {}), ensemble AUC {} precision@{} {:.4}; {}; in {:.1} s",
        r.rows,
        r.symbols,
        r.train_rows,
        r.valid_rows,
        r.first_valid_date,
        r.ensemble
            .auc
            .map(|a| format!("{a:.4}"))
            .unwrap_or_else(|| "n/a".into()),
        r.ensemble.k,
        r.ensemble.precision_at_k,
        r.decision,
        started.elapsed().as_secs_f64()
    )
}

/// The metrics table printed to stdout.
pub fn table(r: &BootstrapReport) -> String {
    let mut out = String::new();
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into());
    out.push_str(&format!(
        "validation: {} rows, {} dates from {} (train {} rows; {} walk-forward folds)\n",
        r.valid_rows,
        r.ensemble.dates,
        r.first_valid_date,
        r.train_rows,
        r.folds.len()
    ));
    out.push_str(&format!(
        "{:<10} {:>7} {:>7} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8} {:>9}\n",
        "model", "AUC", "F1@0.5", "bestF1", "logloss", "Brier", "P@K", "rankIC", "topK ret", "all ret"
    ));
    for (name, e) in [("online", &r.online), ("batch", &r.batch), ("ensemble", &r.ensemble)] {
        out.push_str(&format!(
            "{:<10} {:>7} {:>7.4} {:>8.4} {:>8.4} {:>7.4} {:>7.4} {:>7} {:>8.4} {:>9.4}\n",
            name,
            opt(e.auc),
            e.f1_at_0_5,
            e.best_f1,
            e.log_loss,
            e.brier,
            e.precision_at_k,
            opt(e.rank_ic),
            e.top_k_mean_return,
            e.universe_mean_return
        ));
    }
    out.push_str(&format!(
        "baselines: base rate {:.4}, rule BUY precision {} ({} rows)\n",
        r.baselines.base_rate,
        opt(r.baselines.rule_buy_precision),
        r.baselines.rule_buy_rows
    ));
    for f in &r.folds {
        out.push_str(&format!(
            "fold {}: train {:>7} valid {:>6} from {}  AUC online {} batch {} ensemble {}  P@K {:.4}\n",
            f.fold,
            f.train_rows,
            f.valid_rows,
            f.first_valid_date,
            opt(f.online.auc),
            opt(f.batch.auc),
            opt(f.ensemble.auc),
            f.ensemble.precision_at_k
        ));
    }
    out.push_str(&format!("{}\n", r.decision));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{N_CATEGORICAL, N_NUMERIC};
    use chrono::Datelike;

    fn row(symbol: &str, day: u32, tag: f64) -> Snapshot {
        Snapshot {
            symbol: Symbol::parse(symbol).unwrap(),
            date: NaiveDate::from_ymd_opt(2020, 1, day).unwrap(),
            close: tag,
            atr: None,
            features: Features::new([None; N_NUMERIC], [None; N_CATEGORICAL]),
            label: None,
            window_end: None,
        }
    }

    #[test]
    fn rows_merge_in_date_then_symbol_order_and_carry_their_data() {
        // Watchlist order is not name order; the symbols' histories differ
        // (KO lacks day 3, BA starts on day 2). Each row's close tags where
        // it belongs: day * 10 + the rank of its symbol's name.
        let days: [(&str, u32, &[u32]); 4] = [
            ("MSFT", 3, &[1, 2, 3, 4, 5]),
            ("AAPL", 0, &[1, 2, 3, 4, 5]),
            ("KO", 2, &[1, 2, 4, 5]),
            ("BA", 1, &[2, 3, 4, 5]),
        ];
        let per_symbol: Vec<(Symbol, Vec<Snapshot>)> = days
            .iter()
            .map(|&(name, rank, days)| {
                let rows = days.iter().map(|&d| row(name, d, f64::from(d * 10 + rank))).collect();
                (Symbol::parse(name).unwrap(), rows)
            })
            .collect();
        let rows = in_date_symbol_order(per_symbol);
        let order: Vec<(u32, &str)> = rows.iter().map(|r| (r.date.day(), r.symbol.as_str())).collect();
        assert_eq!(order.len(), 18);
        assert_eq!(order[..3], [(1, "AAPL"), (1, "KO"), (1, "MSFT")]);
        assert_eq!(order[7..10], [(3, "AAPL"), (3, "BA"), (3, "MSFT")]);
        let mut expected = order.clone();
        expected.sort_unstable();
        assert_eq!(order, expected);
        for r in &rows {
            let rank = ["AAPL", "BA", "KO", "MSFT"]
                .iter()
                .position(|n| *n == r.symbol.as_str())
                .unwrap();
            assert_eq!(
                r.close,
                f64::from(r.date.day() * 10 + rank as u32),
                "{:?}",
                (r.date, &r.symbol)
            );
        }
    }
}
