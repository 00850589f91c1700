//! `score`: rank today's snapshots of a watchlist with the production
//! models and write `predictions_<ts>.parquet`.
//!
//! Every member gets a row: scored ones with probabilities and a rank,
//! the others with the reason they were not scored (no candle on the
//! as-of date, undefined features, quality problems, indicators not yet
//! computed) and no made-up values. The indicators come from `ta_signals`
//! (the 08:00 job), so scoring reads a few rows per symbol.
//!
//! The date's cross-sectional features are computed over every member of
//! the watchlist (as in training), then `--country` and `--limit` select
//! the rows written and ranked. A symbol outside the tradeable universe on
//! the date ([`crate::universe`]) is scored but never ranked or picked.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::NaiveDate;
use serde::Serialize;

use crate::candles::Candle;
use crate::candles::quality::check_values;
use crate::context::Context;
use crate::db::ta_signals::SignalRow;
use crate::db::{self, job_runs::RunStatus};
use crate::features::{CATEGORICAL_FEATURES, Families, Features, NUMERIC_FEATURES};
use crate::indicators::TA_VERSION;
use crate::jobs::dataset::resolve_as_of;
use crate::jobs::production::{NoProductionModel, ProductionModels};
use crate::labels::Barrier;
use crate::store::{InputRef, NameStyle, NewArtifact};
use crate::symbols::Symbol;
use crate::universe::{UniverseRule, VALUE_WINDOW};

pub const JOB: &str = "score";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone)]
pub struct ScoreOptions {
    pub top_k: usize,
    pub limit: Option<usize>,
    pub country: Option<String>,
    pub format: OutputFormat,
    /// Write only this shard's predictions, as a part for `score --merge`.
    pub shard: Option<crate::shard::Shard>,
}

/// One symbol's prediction (or why there is none).
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub symbol: String,
    pub status: String,
    pub p_online: Option<f64>,
    pub p_batch: Option<f64>,
    pub p_score: Option<f64>,
    /// The mean after-cost return that out-of-sample trades with a score
    /// like this one earned in bootstrap's walk-forward (none for models
    /// trained before it was recorded).
    pub expected_return: Option<f64>,
    /// What the rows are ranked by.
    #[serde(skip)]
    pub ranking_key: Option<f64>,
    pub rank: Option<u32>,
    pub in_top_k: bool,
    pub entry_close: Option<f64>,
    pub target_price: Option<f64>,
    pub stop_price: Option<f64>,
    pub atr_stop: Option<f64>,
    pub ta_recommendation: Option<String>,
    #[serde(skip)]
    pub features: Option<Features>,
}

#[derive(Debug, Clone)]
pub struct ScoreReport {
    pub as_of: NaiveDate,
    pub predictions: Vec<Prediction>,
    pub path: String,
    pub top_k: usize,
}

pub async fn run(ctx: &Context, options: &ScoreOptions) -> anyhow::Result<ScoreReport> {
    crate::error::UsageError::require_at_least_one("--top-k", options.top_k)?;
    let store = ctx.watchlist_store()?;
    let job = super::job_name(JOB, options.shard);
    let _lock = store.lock_job(&job)?;
    let models = ProductionModels::load(&store)?.ok_or_else(|| NoProductionModel(ctx.settings.watchlist.clone()))?;
    let started = Instant::now();
    let work = score(ctx, &store, &models, options);
    super::audited(ctx, &job, work, |r| (RunStatus::Ok, summary_line(r, started))).await
}

async fn score(
    ctx: &Context,
    store: &crate::store::WatchlistStore,
    models: &ProductionModels,
    options: &ScoreOptions,
) -> anyhow::Result<ScoreReport> {
    let (symbols, wanted, mut predictions) = select_symbols(ctx, options).await?;
    let as_of = resolve_as_of(ctx).await?;
    let exchange = crate::jobs::dataset::watchlist_calendar(ctx).await?.name.clone();
    let universe = ctx.settings.universe.rule_for(&exchange);
    let barrier = models
        .feature_config
        .label
        .unwrap_or_else(|| Barrier::fixed(5, 0.05, 0.04));
    let candles = db::candles::as_of_each(&ctx.db, &symbols, as_of).await?;
    let rows = db::ta_signals::at_each(&ctx.db, &symbols, as_of).await?;
    // The traded-value window, and the bars the model's feature families read.
    let families = models.bundle.families;
    let window = VALUE_WINDOW.max(families.lookback() + 1);
    let recent = db::candles::recent_each(&ctx.db, &symbols, as_of, window).await?;
    let mut ready: Vec<Ready> = Vec::new();
    for (((symbol, (candle, factor)), stored), recent) in symbols.iter().zip(candles).zip(rows).zip(recent) {
        match as_of_snapshot(symbol, as_of, candle, factor, stored).and_then(|s| with_families(s, &recent, families)) {
            Ok(snapshot) => ready.push(Ready {
                untradeable: untradeable(&universe, &recent[recent.len().saturating_sub(VALUE_WINDOW)..]),
                ..snapshot
            }),
            Err(reason) if wanted.contains(symbol) => predictions.push(unscored(symbol.as_str(), reason)),
            Err(_) => {}
        }
    }
    // Every member scored today is the date's cross-section (as in
    // training); the selection only decides which rows are written.
    let mut day: Vec<&mut Features> = ready.iter_mut().map(|s| &mut s.features).collect();
    crate::features::cross_section_of_day(&mut day, families);
    ready.retain(|s| wanted.contains(&s.symbol));
    let features: Vec<&Features> = ready.iter().map(|s| &s.features).collect();
    let (online, batch, ensemble) = models.score(&features)?;
    let mut scored: Vec<Prediction> = ready
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // The trade enters at the next open; until then the levels are
            // quoted from today's close (move them with the fill).
            let levels = barrier.prices(s.close, s.atr);
            Prediction {
                symbol: s.symbol.to_string(),
                status: s.untradeable.clone().unwrap_or_else(|| "scored".into()),
                p_online: Some(online[i]),
                p_batch: Some(batch[i]),
                p_score: Some(ensemble[i]),
                expected_return: None,
                ranking_key: None,
                rank: None,
                in_top_k: false,
                entry_close: Some(s.close),
                target_price: levels.map(|l| l.0),
                stop_price: levels.map(|l| l.1),
                atr_stop: s.atr.map(|a| s.close - 2.0 * a),
                ta_recommendation: s.features.categorical(4).map(str::to_string),
                features: Some(s.features.clone()),
            }
        })
        .collect();
    // The ranking bootstrap chose on its walk-forward folds: the
    // probability, or the barrier payoff p·up − (1−p)·down − costs.
    let by_payoff = models.feature_config.ranking.as_deref() == Some("expected_return");
    let ranking_key = |i: usize| {
        if by_payoff {
            barrier.expected_return(ensemble[i], ready[i].atr.map(|a| a / ready[i].close))
        } else {
            Some(ensemble[i])
        }
    };
    for (i, p) in scored.iter_mut().enumerate() {
        let key = ranking_key(i);
        p.expected_return =
            key.and_then(|k| crate::models::expected::lookup(&models.feature_config.expected_return, k));
        p.ranking_key = key;
    }
    let key = |p: &Prediction| p.ranking_key.unwrap_or(f64::NEG_INFINITY);
    // Only tradeable symbols are ranked; the others follow, unranked.
    scored.sort_by(|a, b| {
        (a.status != "scored")
            .cmp(&(b.status != "scored"))
            .then(key(b).total_cmp(&key(a)))
            .then(a.symbol.cmp(&b.symbol))
    });
    for (i, p) in scored.iter_mut().enumerate().filter(|(_, p)| p.status == "scored") {
        p.rank = Some(i as u32 + 1);
        p.in_top_k = i < options.top_k;
    }
    predictions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    scored.extend(predictions);
    for p in scored.iter().filter(|p| p.rank.is_none()) {
        let what = if p.p_score.is_some() {
            "not ranked"
        } else {
            "not scored"
        };
        tracing::warn!("{what} {}: {}", p.symbol, p.status);
    }
    // A shard still reads and ranks the whole market (the cross-sectional
    // features need every symbol, and it is a few rows each); it keeps its
    // own symbols' rows, ranked in the whole market.
    if let Some(shard) = options.shard {
        let total = scored.len();
        scored.retain(|p| shard.owns(&p.symbol));
        tracing::info!("shard {shard}: {} of the {total} symbol(s)", scored.len());
    }
    let (schema, columns) = predictions_columns(ctx, models, as_of, &scored);
    let path = write_predictions(ctx, store, models, as_of, options.shard, schema, columns, scored.len())?;
    Ok(ScoreReport {
        as_of,
        predictions: scored,
        path,
        top_k: options.top_k,
    })
}

fn unscored(symbol: &str, status: String) -> Prediction {
    Prediction {
        symbol: symbol.to_string(),
        status,
        p_online: None,
        p_batch: None,
        p_score: None,
        expected_return: None,
        ranking_key: None,
        rank: None,
        in_top_k: false,
        entry_close: None,
        target_price: None,
        stop_price: None,
        atr_stop: None,
        ta_recommendation: None,
        features: None,
    }
}

/// A symbol ready to score on the as-of date.
struct Ready {
    symbol: Symbol,
    /// Stored close of the as-of date (the entry price).
    close: f64,
    /// ATR(14) in the units of `close`.
    atr: Option<f64>,
    features: Features,
    /// Why the symbol is outside the tradeable universe today, if it is.
    untradeable: Option<String>,
}

/// Why the last candles of `recent` (the as-of one last) are outside the
/// tradeable universe, or `None` when they are inside it.
fn untradeable(rule: &UniverseRule, recent: &[Candle]) -> Option<String> {
    let close: Vec<f64> = recent.iter().map(|c| c.close).collect();
    let volume: Vec<f64> = recent.iter().map(|c| c.volume as f64).collect();
    if rule.tradeable(&close, &volume).last().copied().unwrap_or(false) {
        return None;
    }
    let last = close.last().copied().unwrap_or(0.0);
    Some(if recent.len() < VALUE_WINDOW && *rule != UniverseRule::ALL {
        format!(
            "untradeable: {} sessions of history, fewer than {VALUE_WINDOW}",
            recent.len()
        )
    } else if last < rule.min_price {
        format!("untradeable: close {last} under universe.min_price {}", rule.min_price)
    } else {
        format!(
            "untradeable: median traded value of the last {VALUE_WINDOW} sessions under universe.min_traded_value {}",
            rule.min_traded_value
        )
    })
}

/// The as-of snapshot from what the 08:00 `ta-signals run` stored (the
/// same numbers `bootstrap` computes from candles: incremental equals
/// full), or the reason it cannot be scored. `candle` is the symbol's last
/// up to `as_of`, `factor` the product of the split ratios after `as_of`,
/// `stored` its indicator row of `as_of` with its `ta_version`.
fn as_of_snapshot(
    symbol: &Symbol,
    as_of: NaiveDate,
    candle: Option<Candle>,
    factor: f64,
    stored: Option<(SignalRow, i64)>,
) -> Result<Ready, String> {
    let Some(candle) = candle else {
        return Err(format!("no candles up to {as_of}"));
    };
    if candle.date != as_of {
        return Err(format!("stale: last candle {} (as of {as_of})", candle.date));
    }
    if let Some((rule, detail)) = check_values(&candle) {
        return Err(format!("quality: candle {as_of} breaks {}: {detail}", rule.as_str()));
    }
    let Some((stored, version)) = stored else {
        return Err(format!("no indicators for {as_of}: run `ta-signals run` first"));
    };
    if version != TA_VERSION {
        return Err(format!(
            "indicators of ta_version {version} (this program: {TA_VERSION}): run `ta-signals run`"
        ));
    }
    // Indicators are in split-adjusted units; the features are ratios.
    let features = Features::from_row(&stored.row, candle.close / factor);
    if let Some(feature) = features.first_missing_base() {
        return Err(format!("undefined feature {feature}"));
    }
    Ok(Ready {
        symbol: symbol.clone(),
        close: candle.close,
        atr: stored.row.numeric.atr_14.map(|a| a * factor),
        features,
        untradeable: None,
    })
}

/// The snapshot with the model's feature families, from `recent` (the
/// as-of candle last); a symbol whose window holds a candle that breaks a
/// quality rule is not scored (bootstrap never trains on one either).
fn with_families(mut snapshot: Ready, recent: &[Candle], families: Families) -> Result<Ready, String> {
    if families.is_empty() {
        return Ok(snapshot);
    }
    let window = &recent[recent.len().saturating_sub(families.lookback() + 1)..];
    if let Some((c, (rule, detail))) = window.iter().find_map(|c| check_values(c).map(|bad| (c, bad))) {
        return Err(format!(
            "quality: candle {} breaks {} (the feature families read it): {detail}",
            c.date,
            rule.as_str()
        ));
    }
    snapshot.features.extra = crate::features::families::values_at(recent, recent.len() - 1, families);
    Ok(snapshot)
}

/// The market (every member, after `--source`), the members `--country`
/// and `--limit` select, and rows for the members the country filter could
/// not place.
async fn select_symbols(
    ctx: &Context,
    options: &ScoreOptions,
) -> anyhow::Result<(Vec<Symbol>, std::collections::HashSet<Symbol>, Vec<Prediction>)> {
    let name = &ctx.settings.watchlist;
    let members = db::watchlists::countries(&ctx.db, name).await?;
    if members.is_empty() {
        anyhow::bail!(
            "watchlist {name} has no symbols: import candles with `ta-signals import --watchlist {name} FILE`"
        );
    }
    let mut market = Vec::new();
    let mut selected = std::collections::HashSet::new();
    let mut unplaced = Vec::new();
    for (raw, country) in members {
        let Ok(symbol) = Symbol::parse(&raw) else { continue };
        market.push(symbol.clone());
        match (&options.country, country) {
            (None, _) => {
                selected.insert(symbol);
            }
            (Some(want), Some(c)) if c.eq_ignore_ascii_case(want) => {
                selected.insert(symbol);
            }
            (Some(_), Some(_)) => {}
            (Some(want), None) => unplaced.push(unscored(symbol.as_str(), format!("country unknown (filter {want})"))),
        }
    }
    let market = crate::jobs::dataset::from_source(ctx, market).await?;
    let mut wanted: Vec<Symbol> = market.iter().filter(|s| selected.contains(*s)).cloned().collect();
    if let Some(limit) = options.limit {
        wanted.truncate(limit);
    }
    Ok((market, wanted.into_iter().collect(), unplaced))
}

/// The predictions file's columns.
fn predictions_columns(
    ctx: &Context,
    models: &ProductionModels,
    as_of: NaiveDate,
    rows: &[Prediction],
) -> (Arc<Schema>, Vec<ArrayRef>) {
    let version = |kind: &str| models.pointer.artifacts.get(kind).map(|r| r.version as i64);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let n = rows.len();
    let float =
        |f: &dyn Fn(&Prediction) -> Option<f64>| Arc::new(Float64Array::from_iter(rows.iter().map(f))) as ArrayRef;
    let mut fields = vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("run_id", DataType::Utf8, false),
        Field::new("model_online_version", DataType::Int64, true),
        Field::new("model_batch_version", DataType::Int64, true),
        Field::new("p_online", DataType::Float64, true),
        Field::new("p_batch", DataType::Float64, true),
        Field::new("p_score", DataType::Float64, true),
        Field::new("expected_return", DataType::Float64, true),
        Field::new("rank", DataType::Int64, true),
        Field::new("ranked_by", DataType::Utf8, false),
        Field::new("in_top_k", DataType::Boolean, false),
        Field::new("entry_close", DataType::Float64, true),
        Field::new("target_price", DataType::Float64, true),
        Field::new("stop_price", DataType::Float64, true),
        Field::new("ta_stop_loss", DataType::Float64, true),
        Field::new("ta_recommendation", DataType::Utf8, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|p| p.symbol.as_str()))),
        Arc::new(Date32Array::from_iter_values(std::iter::repeat_n(
            (as_of - epoch).num_days() as i32,
            n,
        ))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            ctx.run_id.as_str(),
            n,
        ))),
        Arc::new(Int64Array::from_iter(std::iter::repeat_n(version("model_online"), n))),
        Arc::new(Int64Array::from_iter(std::iter::repeat_n(version("model_batch"), n))),
        float(&|p| p.p_online),
        float(&|p| p.p_batch),
        float(&|p| p.p_score),
        float(&|p| p.expected_return),
        Arc::new(Int64Array::from_iter(rows.iter().map(|p| p.rank.map(i64::from)))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            models.feature_config.ranking.as_deref().unwrap_or("probability"),
            n,
        ))),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|p| Some(p.in_top_k)))),
        float(&|p| p.entry_close),
        float(&|p| p.target_price),
        float(&|p| p.stop_price),
        float(&|p| p.atr_stop),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|p| p.ta_recommendation.as_deref()),
        )),
    ];
    for (i, name) in NUMERIC_FEATURES.iter().enumerate() {
        fields.push(Field::new(*name, DataType::Float64, true));
        columns.push(float(&|p| p.features.as_ref().and_then(|f| f.numeric(i))));
    }
    for (i, name) in CATEGORICAL_FEATURES
        .iter()
        .enumerate()
        .filter(|(_, n)| **n != "ta_recommendation")
    {
        fields.push(Field::new(*name, DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from_iter(
            rows.iter().map(|p| p.features.as_ref().and_then(|f| f.categorical(i))),
        )));
    }
    fields.push(Field::new("status", DataType::Utf8, false));
    columns.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|p| p.status.as_str()),
    )));
    // The model's feature families last, as in the labeled data.
    for (j, name) in models.bundle.families.columns().into_iter().enumerate() {
        fields.push(Field::new(name, DataType::Float32, true));
        columns.push(Arc::new(arrow_array::Float32Array::from_iter(rows.iter().map(|p| {
            let value = p.features.as_ref().and_then(|f| f.extra().get(j).copied());
            value.filter(|x| !x.is_nan())
        }))));
    }
    (Arc::new(Schema::new(fields)), columns)
}

/// The artifact kind of a shard's part of a day's predictions.
pub const PART_KIND: &str = "predictions_part";

/// Write the day's predictions (or, with `shard`, its part of them) to
/// the store; the models are its inputs. Returns the file's path.
#[allow(clippy::too_many_arguments)]
fn write_predictions(
    ctx: &Context,
    store: &crate::store::WatchlistStore,
    models: &ProductionModels,
    as_of: NaiveDate,
    shard: Option<crate::shard::Shard>,
    schema: Arc<Schema>,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> anyhow::Result<String> {
    let inputs: Vec<InputRef> = models
        .pointer
        .artifacts
        .values()
        .map(|r| InputRef {
            name: r.name.clone(),
            sha256: r.sha256.clone(),
        })
        .collect();
    let spec = match shard {
        None => NewArtifact::new("predictions", NameStyle::Timestamped, "parquet")
            .parameters(serde_json::json!({ "as_of": as_of, "watchlist": ctx.settings.watchlist })),
        Some(shard) => NewArtifact::new(PART_KIND, NameStyle::Timestamped, "parquet")
            .prefix(format!("shard_predictions_{}of{}", shard.k(), shard.n()))
            .parameters(serde_json::json!({
                "as_of": as_of,
                "watchlist": ctx.settings.watchlist,
                "shard": shard.to_string(),
            })),
    };
    let record = store.write(&ctx.writer(), spec.inputs(inputs), |w| {
        crate::parquet_out::write_batch(w, schema, columns, rows)
    })?;
    Ok(store.location(&record.name))
}

fn summary_line(r: &ScoreReport, started: Instant) -> String {
    let scored = r.predictions.iter().filter(|p| p.rank.is_some()).count();
    format!(
        "score: {} symbol(s) as of {}: {scored} scored, {} not scored; top {} written to {} in {:.2} s",
        r.predictions.len(),
        r.as_of,
        r.predictions.len() - scored,
        r.top_k.min(scored),
        r.path,
        started.elapsed().as_secs_f64()
    )
}

/// The top-K for stdout.
pub fn render(r: &ScoreReport, format: OutputFormat) -> anyhow::Result<String> {
    let top: Vec<&Prediction> = r.predictions.iter().filter(|p| p.in_top_k).collect();
    Ok(match format {
        OutputFormat::Json => serde_json::to_string_pretty(&top)? + "\n",
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for p in &top {
                w.serialize(p)?;
            }
            String::from_utf8(w.into_inner()?)?
        }
        OutputFormat::Table => {
            let mut out = format!(
                "top {} of {} as of {}\n{:>4}  {:<14} {:>7} {:>7} {:>7} {:>10} {:>10} {:>10} {:>10}  {}\n",
                top.len(),
                r.predictions.iter().filter(|p| p.rank.is_some()).count(),
                r.as_of,
                "rank",
                "symbol",
                "p_score",
                "online",
                "batch",
                "close",
                "target",
                "stop",
                "atr_stop",
                "ta"
            );
            let num = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
            for p in top {
                out.push_str(&format!(
                    "{:>4}  {:<14} {:>7.4} {:>7.4} {:>7.4} {:>10} {:>10} {:>10} {:>10}  {}\n",
                    p.rank.unwrap_or(0),
                    p.symbol,
                    p.p_score.unwrap_or(0.0),
                    p.p_online.unwrap_or(0.0),
                    p.p_batch.unwrap_or(0.0),
                    num(p.entry_close),
                    num(p.target_price),
                    num(p.stop_price),
                    num(p.atr_stop),
                    p.ta_recommendation.as_deref().unwrap_or("-")
                ));
            }
            out
        }
    })
}
