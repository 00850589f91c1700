//! Loading a watchlist's candles and turning them into snapshots: shared
//! by `bootstrap` (labeled history) and `score` (the as-of snapshot).

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::candles::Candle;
use crate::candles::quality::check_values;
use crate::candles::splits::PriceAdjust;
use crate::context::Context;
use crate::db;
use crate::features::{Families, Snapshot, snapshots_from};
use crate::labels::Barrier;
use crate::models::backtest::Position;
use crate::models::metrics::EvalSet;
use crate::symbols::Symbol;
use crate::universe::UniverseRule;

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
    let members = db::watchlists::members(&ctx.db, name).await?;
    if members.is_empty() {
        anyhow::bail!(
            "watchlist {name} has no symbols: import candles with `ta-signals import --watchlist {name} FILE`"
        );
    }
    let mut members = from_source(ctx, members).await?;
    if let Some(max) = max_symbols {
        members.truncate(max);
    }
    Ok(members)
}

/// The run's as-of date: the flag, else the newest candle of the watchlist
/// up to the latest session of its exchange whose close has passed (in the
/// exchange's time zone: a bar of a session still open is not used). An
/// as-of behind that session is logged: the feed may have stalled.
pub async fn resolve_as_of(ctx: &Context) -> anyhow::Result<NaiveDate> {
    let as_of = default_as_of(ctx).await?;
    // The audit trail keeps the date the run worked on, also by default.
    db::job_runs::set_as_of(&ctx.db, &ctx.run_id, as_of).await?;
    Ok(as_of)
}

async fn default_as_of(ctx: &Context) -> anyhow::Result<NaiveDate> {
    if let Some(date) = ctx.settings.as_of {
        return Ok(date);
    }
    let calendar = watchlist_calendar(ctx).await?;
    let session = calendar.latest_closed_session(ctx.settings.now);
    let newest = db::candles::latest_date_through(&ctx.db, &ctx.settings.watchlist, session)
        .await?
        .ok_or_else(|| anyhow::anyhow!("watchlist {} has no candles: import some first", ctx.settings.watchlist))?;
    let behind = calendar.sessions_between(newest, session);
    if behind > 0 {
        tracing::info!(
            "as of {newest}, the newest candle: {behind} {} session(s) before the latest closed one ({session})",
            calendar.name
        );
    }
    Ok(newest)
}

/// Whether a daily job (score, incremental-update, monitor) has work
/// today: not when no `--as-of` was given and today is not a session of
/// the watchlist's exchange (a weekend or a holiday in the exchange's time
/// zone) — then it says so in one line and the run ends with exit 0.
pub async fn session_today(ctx: &Context) -> anyhow::Result<bool> {
    if ctx.settings.as_of.is_some() {
        return Ok(true);
    }
    let calendar = watchlist_calendar(ctx).await?;
    let today = calendar.local_date(ctx.settings.now);
    if calendar.is_session(today) {
        return Ok(true);
    }
    tracing::info!(
        "{}: nothing to do: {today} ({}) is not a {} session; pass --as-of to run for an earlier one",
        ctx.job,
        today.format("%A"),
        calendar.name
    );
    Ok(false)
}

/// With `--source`, the symbols whose candles all came from it (the others
/// are named in one log line); all of them otherwise.
pub async fn from_source(ctx: &Context, symbols: Vec<Symbol>) -> anyhow::Result<Vec<Symbol>> {
    let Some(source) = ctx.settings.source else {
        return Ok(symbols);
    };
    let mut kept = Vec::new();
    let mut mixed = Vec::new();
    for symbol in symbols {
        if db::candles::count_not_from(&ctx.db, &symbol, source).await? == 0 {
            kept.push(symbol);
        } else {
            mixed.push(symbol.to_string());
        }
    }
    if !mixed.is_empty() {
        tracing::info!(
            "--source {source}: {} symbol(s) left out, their candles are not all from {source}: {}",
            mixed.len(),
            mixed.join(", ")
        );
    }
    if kept.is_empty() {
        anyhow::bail!(
            "no symbol of watchlist {} has candles only from {source}",
            ctx.settings.watchlist
        );
    }
    Ok(kept)
}

/// The exchange calendar the watchlist runs on.
pub async fn watchlist_calendar(ctx: &Context) -> anyhow::Result<&crate::calendar::ExchangeCalendar> {
    let members = db::watchlists::members(&ctx.db, &ctx.settings.watchlist).await?;
    Ok(ctx.settings.calendars.for_watchlist(&ctx.settings.watchlist, &members))
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

/// How a symbol's snapshots are built: their label, the fewest bars a
/// symbol needs, the tradeable universe, the optional feature families.
#[derive(Debug, Clone, Copy)]
pub struct BuildRules {
    pub barrier: Barrier,
    pub min_bars: usize,
    pub universe: UniverseRule,
    pub families: Families,
}

/// Read every symbol's candles up to `as_of` and build its snapshots from
/// `keep_from` (the whole history feeds the indicators), each marked
/// tradeable or not by `universe` on its own date. Symbols whose
/// candles break a quality rule or are fewer than `min_bars` are skipped
/// with the reason. The thread pool builds one symbol's snapshots while the
/// next symbols are read: the database read and the indicators overlap.
pub async fn read_and_build(
    ctx: &Context,
    symbols: &[Symbol],
    as_of: NaiveDate,
    keep_from: NaiveDate,
    rules: &BuildRules,
) -> anyhow::Result<Built> {
    let started = std::time::Instant::now();
    let BuildRules {
        barrier,
        min_bars,
        universe,
        families,
    } = *rules;
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
                        build_one(symbol, &candles, &barrier, min_bars, keep_from, label_prices).map(
                            |(symbol, mut snapshots)| {
                                mark_tradeable(&candles, &mut snapshots, universe);
                                crate::features::fill_families(&candles, &mut snapshots, families);
                                (symbol, snapshots)
                            },
                        ),
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

/// Labeled rows in (date, symbol) order with their cross-sectional
/// features, and what was left out.
pub struct LabeledRows {
    pub rows: Vec<Snapshot>,
    /// Labeled rows dropped because a feature of their own row is undefined.
    pub dropped_undefined: usize,
    /// Symbols with at least one labeled row.
    pub symbols: usize,
    /// Labeled rows left out as untradeable on their date.
    pub untradeable: usize,
}

/// Mark each snapshot (the last `snapshots.len()` candles' or those from
/// its first date) tradeable or not on its own date.
pub(super) fn mark_tradeable(candles: &[Candle], snapshots: &mut [Snapshot], universe: UniverseRule) {
    let Some(first) = snapshots.first().map(|s| s.date) else {
        return;
    };
    let close: Vec<f64> = candles.iter().map(|c| c.close).collect();
    let volume: Vec<f64> = candles.iter().map(|c| c.volume as f64).collect();
    let flags = universe.tradeable(&close, &volume);
    let at = candles.partition_point(|c| c.date < first);
    for (s, flag) in snapshots.iter_mut().zip(&flags[at..]) {
        s.tradeable = *flag;
    }
}

/// The labeled snapshots dated `from` or later, each with its date's
/// cross-sectional features. The cross-section of a date is every row of
/// that date whose own features are defined — labeled or not, tradeable or
/// not (a symbol whose horizon has not completed, or too thin to trade,
/// is still part of its date's market). Untradeable rows are kept only
/// with `keep_untradeable`.
pub fn labeled_cross_sections(
    mut built: Vec<(Symbol, Vec<Snapshot>)>,
    from: NaiveDate,
    keep_untradeable: bool,
    families: Families,
) -> LabeledRows {
    let mut dropped = 0;
    for (_, snapshots) in &mut built {
        snapshots.retain(|s| {
            let undefined = s.features.first_missing_base().is_some();
            dropped += usize::from(undefined && s.label.is_some() && s.date >= from);
            s.date >= from && !undefined
        });
    }
    let symbols = built
        .iter()
        .filter(|(_, s)| s.iter().any(|r| r.label.is_some()))
        .count();
    let mut rows = in_date_symbol_order(built);
    crate::features::fill_cross_section(&mut rows, families);
    let labeled = rows.iter().filter(|s| s.label.is_some()).count();
    rows.retain(|s| s.label.is_some() && (keep_untradeable || s.tradeable));
    LabeledRows {
        untradeable: labeled - rows.len(),
        rows,
        dropped_undefined: dropped,
        symbols,
    }
}

/// Every symbol's rows (each in date order) as one vector in (date,
/// symbol) order: the (date, symbol) keys are sorted, then each row is
/// moved once to its place. On a whole market the rows are most of the
/// memory, so they are never held twice: each symbol's rows are reversed
/// (its next row is its last), popped, and its storage shrinks as it
/// empties.
fn in_date_symbol_order(mut per_symbol: Vec<(Symbol, Vec<Snapshot>)>) -> Vec<Snapshot> {
    per_symbol.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut keys: Vec<(NaiveDate, u32)> = per_symbol
        .iter()
        .enumerate()
        .flat_map(|(s, (_, rows))| rows.iter().map(move |r| (r.date, s as u32)))
        .collect();
    // (date, symbol) is unique, so an unstable sort gives the one order.
    keys.sort_unstable();
    for (_, rows) in &mut per_symbol {
        rows.reverse();
    }
    let mut out = Vec::with_capacity(keys.len());
    let trim_every = keys.len() / 8 + 1;
    for (n, &(_, s)) in keys.iter().enumerate() {
        let rows = &mut per_symbol[s as usize].1;
        out.extend(rows.pop());
        // Halving bounds the copies to one of the rows in all.
        if rows.capacity() > 2 * rows.len() + 64 {
            rows.shrink_to_fit();
        }
        if n % trim_every == trim_every - 1 {
            super::release_free_memory();
        }
    }
    out
}

/// The rows `idx` (sorted by date) as the metrics need them.
pub fn eval_set(rows: &[Snapshot], idx: &[usize]) -> EvalSet {
    let breadth = crate::features::NUMERIC_FEATURES
        .iter()
        .position(|n| *n == "market_breadth_sma50")
        .expect("breadth is a feature");
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
        set.bars_to_exit.push(l.bars_to_exit);
        set.rule_buy.push(rows[i].features.categorical(4) == Some("BUY"));
        set.breadth.push(rows[i].features.numeric(breadth).unwrap_or(f64::NAN));
    }
    set
}

/// The trades of `idx` rows (labeled), as a book holds them.
pub fn trade_paths<'a>(rows: &'a [Snapshot], idx: &[usize]) -> Vec<Position<'a>> {
    idx.iter()
        .map(|&i| {
            let l = rows[i].label.expect("labeled");
            Position {
                marks: &rows[i].marks,
                entry_price: l.entry_price,
                exit_price: l.exit_price,
                entry_cost: l.entry_cost,
                exit_cost: l.exit_cost,
                weight: 0.0,
            }
        })
        .collect()
}

/// The distinct scan dates of `idx` rows (sorted by date), in order: day
/// `d` of [`eval_set`] is `dates[d]`.
pub fn eval_dates(rows: &[Snapshot], idx: &[usize]) -> Vec<NaiveDate> {
    let mut dates: Vec<NaiveDate> = idx.iter().map(|&i| rows[i].date).collect();
    dates.dedup();
    dates
}

/// A symbol's snapshots, or why it is skipped.
pub(super) type BuiltOne = Result<(Symbol, Vec<Snapshot>), Skipped>;

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
pub(super) struct CandleHasher(sha2::Sha256);

impl CandleHasher {
    pub(super) fn update(&mut self, symbol: &Symbol, candles: &[Candle]) {
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

    /// Fold in a hash finished elsewhere (a part read another way).
    pub(super) fn update_text(&mut self, text: &str) {
        use sha2::Digest;
        self.0.update(text.as_bytes());
    }

    pub(super) fn finish(self) -> String {
        use sha2::Digest;
        crate::store::atomic::hex(&self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{Features, N_CATEGORICAL, N_NUMERIC};
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
            marks: Box::default(),
            tradeable: true,
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
