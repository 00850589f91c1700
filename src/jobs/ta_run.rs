//! `ta-signals run`: compute every indicator column for the watchlist's
//! symbols and upsert them into `ta_signals`.
//!
//! Incremental by default: a symbol continues from its saved streaming
//! state with only the candles after its last computed date, which gives
//! exactly the numbers of a full recompute. A symbol is recomputed in full
//! when asked (`--full`), when it has no state, when `ta_version` changed,
//! when a new candle records a split (the adjusted history changes), or
//! when candles appeared before its last computed date (a back-fill).
//! Symbols are read, computed (in parallel) and written in chunks, each
//! chunk in one transaction, so memory stays flat and a crash loses at most
//! the chunk in flight.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::NaiveDate;
use rayon::prelude::*;

use crate::candles::Candle;
use crate::candles::quality::check_values;
use crate::candles::splits::{adjust, has_split, has_total_return};
use crate::clock::utc_now_rfc3339;
use crate::context::Context;
use crate::db::job_runs::RunStatus;
use crate::db::ta_signals::{SignalRow, StateHead, StoredState, SymbolUpdate};
use crate::db::{self, Db};
use crate::indicators::{IndicatorState, NUMERIC_COLUMNS, TA_VERSION, bars_from};
use crate::jobs::in_flight::InFlight;
use crate::parquet_out::SignalsWriter;
use crate::store::atomic::{Sink, TempFile};
use crate::symbols::Symbol;

pub const JOB: &str = "ta-signals";

/// Symbols per read-compute-write round.
const CHUNK: usize = 48;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub full: bool,
    pub parquet: Option<PathBuf>,
    /// Only this shard's symbols.
    pub shard: Option<crate::shard::Shard>,
}

#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub symbols: usize,
    pub updated: usize,
    pub full_recomputes: usize,
    pub up_to_date: usize,
    pub rows_written: u64,
    pub skipped: Vec<(String, String)>,
    pub read: Duration,
    pub compute: Duration,
    pub write: Duration,
}

/// What to do for one symbol.
enum Plan {
    Full {
        candles: Vec<Candle>,
    },
    Continue {
        state: Box<IndicatorState>,
        bars: i64,
        /// Whether the candles before `candles` all have an adj_close.
        all_adj_close: bool,
        candles: Vec<Candle>,
    },
}

pub async fn run(ctx: &Context, options: &RunOptions) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let store = ctx.watchlist_store()?;
    let job = super::job_name(JOB, options.shard);
    let _lock = store.lock_job(&job)?;
    super::audited(ctx, &job, compute_all(ctx, options), |s| {
        let status = if s.updated == 0 && s.skipped.is_empty() {
            RunStatus::NothingToDo
        } else {
            RunStatus::Ok
        };
        (status, summary_line(s, started))
    })
    .await
}

async fn compute_all(ctx: &Context, options: &RunOptions) -> anyhow::Result<RunSummary> {
    let symbols = super::shard_symbols(options.shard, symbols_to_compute(ctx).await?);
    // Read before any candle: a rewrite of a symbol's past raises its
    // counter before it writes, so one that lands during this run shows as
    // a counter newer than the state this run saves.
    let generations = db::candles::history_generations(&ctx.db).await?;
    let states = db::ta_signals::load_states(&ctx.db).await?;
    let mut summary = RunSummary {
        symbols: symbols.len(),
        ..Default::default()
    };
    let mut parquet = match &options.parquet {
        Some(path) => Some(ParquetOut::create(path)?),
        None => None,
    };
    let bar = crate::logging::progress_bar(symbols.len() as u64, "indicators");
    // A round's write runs while the next round is read and computed (one
    // at a time: two MariaDB transactions replacing neighbouring symbols'
    // rows deadlock on the gap locks of their deletes).
    let mut writing = InFlight::new(1);
    // The Parquet copy takes a round's rows once the database has them.
    let mut written = |summary: &mut RunSummary, (rows, updates): (u64, Vec<SymbolUpdate>)| {
        summary.rows_written += rows;
        if let Some(out) = parquet.as_mut() {
            for update in &updates {
                out.writer.write(&update.rows)?;
            }
        }
        anyhow::Ok(())
    };
    let computed = async {
        for chunk in symbols.chunks(CHUNK) {
            let t = Instant::now();
            let (plans, up_to_date) =
                plan_round(&ctx.db, chunk, &states, &generations, options.full, ctx.settings.as_of).await?;
            summary.up_to_date += up_to_date;
            summary.read += t.elapsed();

            let t = Instant::now();
            let results: Vec<Result<SymbolUpdate, (String, String)>> = plans
                .into_par_iter()
                .map(|(symbol, plan)| {
                    let generation = generations.get(symbol.as_str()).copied().unwrap_or(0);
                    compute_symbol(symbol, plan, generation)
                })
                .collect();
            let mut updates = Vec::new();
            for result in results {
                match result {
                    Ok(update) => updates.push(update),
                    Err(skip) => summary.skipped.push(skip),
                }
            }
            summary.compute += t.elapsed();

            let t = Instant::now();
            summary.updated += updates.len();
            summary.full_recomputes += updates.iter().filter(|u| u.replace).count();
            let db = ctx.db.clone();
            let write = async move {
                let rows = db::ta_signals::write(&db, &updates, TA_VERSION, &utc_now_rfc3339()).await?;
                Ok((rows, updates))
            };
            if let Some(done) = writing.start(write).await? {
                written(&mut summary, done)?;
            }
            summary.write += t.elapsed();
            bar.inc(chunk.len() as u64);
        }
        anyhow::Ok(())
    }
    .await;
    let t = Instant::now();
    let finished = writing.finish().await;
    computed?;
    for done in finished? {
        written(&mut summary, done)?;
    }
    summary.write += t.elapsed();
    bar.finish_and_clear();
    if let Some(out) = parquet {
        let rows = out.finish()?;
        tracing::info!(
            "wrote {rows} rows to {}",
            options
                .parquet
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    for (symbol, reason) in &summary.skipped {
        tracing::warn!("skipped {symbol}: {reason}");
    }
    Ok(summary)
}

async fn symbols_to_compute(ctx: &Context) -> anyhow::Result<Vec<Symbol>> {
    if ctx.settings.watchlist_explicit {
        let members = db::watchlists::members(&ctx.db, &ctx.settings.watchlist).await?;
        if members.is_empty() {
            anyhow::bail!(
                "watchlist {} has no symbols: import candles with --watchlist {} first",
                ctx.settings.watchlist,
                ctx.settings.watchlist
            );
        }
        Ok(members)
    } else {
        db::watchlists::symbols_with_candles(&ctx.db).await
    }
}

/// For one round's symbols, decide between continuing and recomputing,
/// and read the candles each needs — in bulk reads, not a query per
/// symbol: the daily run is a few rows per symbol, so the reads are the
/// cost. The plans in the round's order, and how many symbols are up to date.
async fn plan_round(
    db: &Db,
    round: &[Symbol],
    states: &HashMap<String, StoredState>,
    generations: &HashMap<String, i64>,
    full: bool,
    as_of: Option<NaiveDate>,
) -> anyhow::Result<(Vec<(Symbol, Plan)>, usize)> {
    let through = |mut candles: Vec<Candle>| {
        if let Some(as_of) = as_of {
            candles.retain(|c| c.date <= as_of);
        }
        candles
    };
    let continuable = |symbol: &Symbol| {
        states
            .get(symbol.as_str())
            .filter(|s| !full && s.head.ta_version == TA_VERSION)
    };
    let wanted: Vec<(Symbol, Option<NaiveDate>)> = round
        .iter()
        .map(|s| (s.clone(), continuable(s).map(|state| state.head.last_date)))
        .collect();
    let read = db::candles::after_each(db, &wanted).await?;
    let mut plans: Vec<(usize, Symbol, Plan)> = Vec::with_capacity(round.len());
    let mut up_to_date = 0;
    let mut with_new = Vec::new();
    for (i, ((symbol, _), candles)) in wanted.into_iter().zip(read).enumerate() {
        let candles = through(candles);
        match continuable(&symbol) {
            None => plans.push((i, symbol, Plan::Full { candles })),
            Some(_) if candles.is_empty() => up_to_date += 1,
            Some(stored) => with_new.push((i, symbol, stored, candles)),
        }
    }
    // A continuation needs no split among its new candles (it changes the
    // adjusted history) and no candle inserted before its last computed
    // date since (a back-fill). Imports and fetches raise a symbol's
    // history counter before such a write, so an unchanged counter
    // vouches for the history; otherwise (or for a state saved before the
    // counter existed) its candles are counted.
    let vouched = |symbol: &Symbol, stored: &StoredState| {
        stored.head.history_generation == Some(generations.get(symbol.as_str()).copied().unwrap_or(0))
    };
    let counted: Vec<(Symbol, NaiveDate)> = with_new
        .iter()
        .filter(|(_, s, st, _)| !vouched(s, st))
        .map(|(_, s, st, _)| (s.clone(), st.head.last_date))
        .collect();
    let mut counts = db::candles::counts_through(db, &counted).await?.into_iter();
    let mut recompute = Vec::new();
    for (i, symbol, stored, new) in with_new {
        let backfilled = !vouched(&symbol, stored) && counts.next() != Some(stored.head.bars);
        if has_split(&new) || backfilled {
            recompute.push((i, symbol));
            continue;
        }
        match continuation(db, &symbol, stored, new).await? {
            Some(plan) => plans.push((i, symbol, plan)),
            None => recompute.push((i, symbol)),
        }
    }
    let wanted: Vec<(Symbol, Option<NaiveDate>)> = recompute.iter().map(|(_, s)| (s.clone(), None)).collect();
    for ((i, symbol), candles) in recompute.into_iter().zip(db::candles::after_each(db, &wanted).await?) {
        plans.push((
            i,
            symbol,
            Plan::Full {
                candles: through(candles),
            },
        ));
    }
    plans.sort_unstable_by_key(|(i, _, _)| *i);
    Ok((plans.into_iter().map(|(_, s, p)| (s, p)).collect(), up_to_date))
}

/// Continue `symbol` from its saved state with its `new` candles; `None`
/// when the saved state cannot be read (it is then recomputed in full).
async fn continuation(
    db: &Db,
    symbol: &Symbol,
    stored: &StoredState,
    new: Vec<Candle>,
) -> anyhow::Result<Option<Plan>> {
    let all_adj_close = match stored.head.all_adj_close {
        Some(known) => known,
        // Saved before schema v3: asked once, kept from then on.
        None => db::candles::all_have_adj_close_through(db, symbol, stored.head.last_date).await?,
    };
    match serde_json::from_str::<IndicatorState>(&stored.state) {
        Ok(state) => Ok(Some(Plan::Continue {
            state: Box::new(state),
            bars: stored.head.bars,
            all_adj_close,
            candles: new,
        })),
        Err(err) => {
            tracing::warn!("{symbol}: saved indicator state unreadable ({err}); recomputing in full");
            Ok(None)
        }
    }
}

/// Quality rules again, then the indicators. Err = skipped with a reason.
/// `generation`: the symbol's history counter read before its candles.
fn compute_symbol(symbol: Symbol, plan: Plan, generation: i64) -> Result<SymbolUpdate, (String, String)> {
    let (mut state, bars_before, adj_before, candles, replace) = match plan {
        Plan::Full { candles } => (IndicatorState::new(), 0, true, candles, true),
        Plan::Continue {
            state,
            bars,
            all_adj_close,
            candles,
        } => (*state, bars, all_adj_close, candles, false),
    };
    if let Some((candle, (rule, detail))) = candles.iter().find_map(|c| check_values(c).map(|bad| (c, bad))) {
        return Err((
            symbol.to_string(),
            format!("candle {} breaks {}: {detail}", candle.date, rule.as_str()),
        ));
    }
    let Some(last) = candles.last() else {
        return Err((symbol.to_string(), "no candles".to_string()));
    };
    let last_date = last.date;
    // A continuation has no new split (checked by the plan), so its bars
    // need no adjustment beyond what the saved state already reflects.
    let bars = bars_from(&adjust(&candles));
    let rows: Vec<SignalRow> = candles
        .iter()
        .zip(&bars)
        .map(|(c, b)| SignalRow {
            symbol: symbol.clone(),
            date: c.date,
            row: state.update(b),
        })
        .collect();
    let saved = serde_json::to_string(&state).map_err(|e| (symbol.to_string(), e.to_string()))?;
    Ok(SymbolUpdate {
        symbol,
        replace,
        state: Some(StoredState {
            head: StateHead {
                ta_version: TA_VERSION,
                last_date,
                bars: bars_before + rows.len() as i64,
                all_adj_close: Some(adj_before && candles.iter().all(has_total_return)),
                history_generation: Some(generation),
            },
            state: saved,
        }),
        rows,
    })
}

/// The `--parquet` output: streamed into a temporary file beside the
/// target, renamed into place only when complete.
struct ParquetOut {
    writer: SignalsWriter<Sink>,
    temp: TempFile,
    path: PathBuf,
}

impl ParquetOut {
    fn create(path: &std::path::Path) -> anyhow::Result<ParquetOut> {
        let dir = crate::store::atomic::parent_or_dot(path);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
        let mut temp =
            TempFile::create(dir, "signals.parquet").with_context(|| format!("cannot write in {}", dir.display()))?;
        let writer = SignalsWriter::new(temp.take_writer(), TA_VERSION)?;
        Ok(ParquetOut {
            writer,
            temp,
            path: path.to_path_buf(),
        })
    }

    /// Close, fsync and rename into place; rows written.
    fn finish(mut self) -> anyhow::Result<u64> {
        let (info, sink) = self
            .writer
            .finish()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.temp.put_writer(sink);
        self.temp.finish()?;
        self.temp
            .persist(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(info.rows)
    }
}

pub fn summary_line(s: &RunSummary, started: Instant) -> String {
    let cells = s.rows_written as f64 * (NUMERIC_COLUMNS.len() + 5) as f64;
    format!(
        "ta-signals run: {} symbol(s): {} updated ({} in full), {} up to date, {} skipped; {} rows written in {:.2} s \
         (read {:.2} s, compute {:.2} s = {:.1} M row-columns/s, write {:.2} s)",
        s.symbols,
        s.updated,
        s.full_recomputes,
        s.up_to_date,
        s.skipped.len(),
        s.rows_written,
        started.elapsed().as_secs_f64(),
        s.read.as_secs_f64(),
        s.compute.as_secs_f64(),
        cells / s.compute.as_secs_f64().max(1e-9) / 1e6,
        s.write.as_secs_f64(),
    )
}
