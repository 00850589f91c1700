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
    BuildRules, Skipped, labeled_cross_sections, read_and_build, resolve_as_of, watchlist_calendar, watchlist_symbols,
};
use crate::labels::{Barrier, Entry};
use crate::models::backtest::{Backtest, BacktestParams};
use crate::models::ensemble;
use crate::models::metrics::{Baselines, Evaluation, evaluate};
use crate::settings::{BarrierKind, LabelConfig, Settings};
use crate::store::{ArtifactRecord, WatchlistStore};
use crate::symbols::Symbol;
use crate::universe::UniverseRule;

mod promotion;
mod publish;
mod report;
mod training;
mod windows;

pub use report::{summary_line, table};
use training::{Rounds, TrainParams, eval_set, fit_and_evaluate, fit_bundle, fit_models, label, score_rows, timed};
pub use windows::RankingChoice;
use windows::{Windows, evaluate_folds, expected_returns, is_holdout, window_backtest};

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
            families: settings.families(),
            batch_weight: crate::models::DEFAULT_BATCH_WEIGHT,
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
    /// The live (final) models' ensemble scores of the holdout's rows, in
    /// their order: the drift reference of `p_score`. The final models
    /// were trained on these rows too, but the holdout's own models score
    /// differently (less data, another base rate), and a drift check must
    /// compare the live models with themselves.
    #[serde(skip)]
    pub reference_scores: Vec<f64>,
    /// precision@K and the top-K's mean after-cost return on the holdout
    /// ranked as `score` ranks (the chosen ranking): what `monitor` holds
    /// the live figures to.
    #[serde(skip)]
    pub holdout_ranked: (f64, f64),
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
    let rules = BuildRules {
        barrier,
        min_bars,
        universe,
        families: params.families,
    };
    let built = read_and_build(ctx, &symbols, as_of, first_date, &rules).await?;
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
    let windows = windows::windows(&data.rows, &ctx.settings, options.horizon)?;
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
    let batch_weight = ranking
        .as_ref()
        .map_or(crate::models::DEFAULT_BATCH_WEIGHT, |r| r.ensemble.batch_weight);
    let params = TrainParams { batch_weight, ..params };
    let fitted = fit_and_evaluate(&data.rows, split, &params, start.as_ref(), &mut timings)?;
    let holdout_scores = rank(&split.valid, &fitted.valid_scores);
    let holdout_ranked = {
        let e = evaluate(&eval_set(&data.rows, &split.valid), &holdout_scores, params.top_k);
        (e.precision_at_k, e.top_k_mean_return)
    };
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
        let scores = rank(&windows.lockbox, &ensemble(&online, &batch, params.batch_weight));
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
    let bundle = timed(&mut timings.online_fit, || {
        fit_bundle(&data.rows, &all, params.families)
    });
    let rounds = Rounds::Fixed(fitted.models.batch.rounds().max(1), fitted.models.batch.calibration);
    let final_models = fit_models(
        &data.rows,
        &all,
        bundle,
        rounds,
        Some(&fitted.models.online),
        &params,
        &mut timings,
    )?;

    let reference_scores = timed(&mut timings.metrics, || -> anyhow::Result<Vec<f64>> {
        let (online, batch) = score_rows(&final_models, &data.rows, &split.valid)?;
        Ok(ensemble(&online, &batch, params.batch_weight))
    })?;

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
        reference_scores,
        holdout_ranked,
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
    let labeled = labeled_cross_sections(
        built,
        first_date,
        ctx.settings.universe.train_on_untradeable,
        ctx.settings.families(),
    );
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
