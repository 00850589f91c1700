//! Loading a watchlist's candles and turning them into snapshots: shared
//! by `bootstrap` (labeled history) and `score` (the as-of snapshot).

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::candles::Candle;
use crate::candles::quality::check_values;
use crate::candles::splits::PriceAdjust;
use crate::context::Context;
use crate::db;
use crate::features::{Snapshot, snapshots_from};
use crate::labels::Barrier;
use crate::symbols::Symbol;

/// A symbol left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub symbol: String,
    pub reason: String,
}

/// The watchlist's members: an explicit (or configured) watchlist must
/// have some.
pub async fn watchlist_symbols(ctx: &Context, max_symbols: Option<usize>) -> anyhow::Result<Vec<Symbol>> {
    let name = &ctx.settings.watchlist;
    let mut members = db::watchlists::members(&ctx.db, name).await?;
    if members.is_empty() {
        anyhow::bail!(
            "watchlist {name} has no symbols: import candles with `ta-signals import --watchlist {name} FILE`"
        );
    }
    if let Some(max) = max_symbols {
        members.truncate(max);
    }
    Ok(members)
}

/// The run's as-of date: the flag, else the latest candle of the watchlist.
pub async fn resolve_as_of(ctx: &Context) -> anyhow::Result<NaiveDate> {
    if let Some(date) = ctx.settings.as_of {
        return Ok(date);
    }
    db::candles::latest_date(&ctx.db, &ctx.settings.watchlist)
        .await?
        .ok_or_else(|| anyhow::anyhow!("watchlist {} has no candles: import some first", ctx.settings.watchlist))
}

/// The snapshots of a watchlist, per symbol, and what went into them.
pub struct Built {
    pub snapshots: Vec<(Symbol, Vec<Snapshot>)>,
    pub skipped: Vec<Skipped>,
    /// SHA-256 over every candle read (the data set's lineage).
    pub candle_hash: String,
    /// Wall time until the last candle was read.
    pub read_secs: f64,
    /// Symbols whose first candle comes after `keep_from`, with that date.
    pub late_starts: Vec<(String, NaiveDate)>,
}

/// Read every symbol's candles up to `as_of` and build its snapshots from
/// `keep_from` (the whole history feeds the indicators). Symbols whose
/// candles break a quality rule or are fewer than `min_bars` are skipped
/// with the reason. The thread pool builds one symbol's snapshots while the
/// next symbols are read: the database read and the indicators overlap.
pub async fn read_and_build(
    ctx: &Context,
    symbols: &[Symbol],
    as_of: NaiveDate,
    barrier: &Barrier,
    min_bars: usize,
    keep_from: NaiveDate,
) -> anyhow::Result<Built> {
    let started = std::time::Instant::now();
    let barrier = *barrier;
    let label_prices = ctx.settings.import.adjust;
    let (to_builder, from_reader) = std::sync::mpsc::sync_channel::<(usize, Symbol, Vec<Candle>)>(16);
    let builder = std::thread::spawn(move || {
        let mut built: Vec<(usize, (BuiltOne, Option<NaiveDate>))> = from_reader
            .into_iter()
            .par_bridge()
            .map(|(i, symbol, candles)| {
                let first = candles.first().map(|c| c.date);
                (
                    i,
                    (
                        build_one(symbol, &candles, &barrier, min_bars, keep_from, label_prices),
                        first,
                    ),
                )
            })
            .collect();
        // Back in watchlist order, whatever order the threads finished in.
        built.sort_unstable_by_key(|(i, _)| *i);
        built
    });
    let mut hasher = CandleHasher::default();
    let mut next = 0;
    let read = db::candles::for_each_symbol_through(&ctx.db, symbols, as_of, |symbol, candles| {
        hasher.update(symbol, &candles);
        to_builder
            .send((next, symbol.clone(), candles))
            .map_err(|_| anyhow::anyhow!("the snapshot builder stopped"))?;
        next += 1;
        Ok(())
    })
    .await;
    let read_secs = started.elapsed().as_secs_f64();
    drop(to_builder);
    let built = builder.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    read?;
    let mut out = Built {
        snapshots: Vec::with_capacity(built.len()),
        skipped: Vec::new(),
        candle_hash: hasher.finish(),
        read_secs,
        late_starts: Vec::new(),
    };
    for (_, (result, first_candle)) in built {
        if let Some(first) = first_candle.filter(|d| *d > keep_from) {
            let symbol = match &result {
                Ok((s, _)) => s.to_string(),
                Err(s) => s.symbol.clone(),
            };
            out.late_starts.push((symbol, first));
        }
        match result {
            Ok(s) => out.snapshots.push(s),
            Err(s) => out.skipped.push(s),
        }
    }
    Ok(out)
}

/// A symbol's snapshots, or why it is skipped.
type BuiltOne = Result<(Symbol, Vec<Snapshot>), Skipped>;

/// One symbol's snapshots, or why it is skipped.
fn build_one(
    symbol: Symbol,
    candles: &[Candle],
    barrier: &Barrier,
    min_bars: usize,
    keep_from: NaiveDate,
    label_prices: PriceAdjust,
) -> BuiltOne {
    let skip = |reason: String| Skipped {
        symbol: symbol.to_string(),
        reason,
    };
    if let Some((c, (rule, detail))) = candles.iter().find_map(|c| check_values(c).map(|bad| (c, bad))) {
        return Err(skip(format!("candle {} breaks {}: {detail}", c.date, rule.as_str())));
    }
    if candles.len() < min_bars {
        return Err(skip(format!(
            "{} bars, fewer than the minimum {min_bars}",
            candles.len()
        )));
    }
    let snapshots = snapshots_from(candles, barrier, keep_from, label_prices);
    Ok((symbol, snapshots))
}

/// SHA-256 over candles, symbol by symbol: the symbol, then each candle's
/// fields as fixed-width little-endian values — exact, and far cheaper
/// than formatting a million rows as text.
#[derive(Default)]
struct CandleHasher(sha2::Sha256);

impl CandleHasher {
    fn update(&mut self, symbol: &Symbol, candles: &[Candle]) {
        use chrono::Datelike;
        use sha2::Digest;
        let optional = |x: Option<f64>| x.map_or(u64::MAX, f64::to_bits).to_le_bytes();
        let h = &mut self.0;
        h.update(symbol.as_str().as_bytes());
        h.update([0u8]);
        for c in candles {
            h.update(c.date.num_days_from_ce().to_le_bytes());
            for x in [c.open, c.high, c.low, c.close] {
                h.update(x.to_bits().to_le_bytes());
            }
            h.update(optional(c.adj_close));
            h.update(c.volume.to_le_bytes());
            h.update(optional(c.split_coef));
        }
    }

    fn finish(self) -> String {
        use sha2::Digest;
        crate::store::atomic::hex(&self.0.finalize())
    }
}
