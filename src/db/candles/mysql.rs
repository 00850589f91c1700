//! The MySQL side of the candle reads that take many symbols at once:
//! one statement per chunk of symbols ([`crate::db::mysql_bulk`]).
//!
//! Every statement is served by the primary key `(symbol, date)`: the
//! symbol list and a date bound make one index range per symbol
//! (`EXPLAIN`: `range` on `PRIMARY`). "The last candles up to a date" read
//! a date window first, then only the symbols it leaves short further back.
//!
//! Two traps found on the way, in `bench/db_cycle.sh`:
//! - MariaDB plans the usual last-row join (`MAX(date)` per symbol joined
//!   back) as a scan of the whole table with a lateral subquery per row
//!   (61 s for 512 symbols of 500 rows): `STRAIGHT_JOIN` forces the
//!   maximum first.
//! - A descending range dive (`symbol = ? AND date < ? ORDER BY date DESC
//!   LIMIT 1`) steps back over every uncommitted row of the keys before
//!   the symbol before it finds the range's end: during an import, whose
//!   previous round is being inserted there, 6 s a statement. The last
//!   candle before a date is read ascending (the join above) instead; the
//!   descending dives serve `recent_each`, which no write of the same job
//!   runs beside.

use chrono::{Days, NaiveDate};
use sqlx::Row as _;
use sqlx::mysql::MySqlPool;

use super::{Candle, candle_from_row, split_product};
use crate::candles::CandleSource;
use crate::db::Dialect;
use crate::db::mysql_bulk::{
    HISTORIES, InList, MultiRow, Param, RECENT_ROWS, collect_per_symbol, group_by, per_symbol, pick, retry_deadlocks,
    statement_sizes, write_budget,
};
use crate::symbols::Symbol;

/// `SELECT symbol, <the candle columns> FROM candles WHERE ` + the rest.
macro_rules! select_where {
    ($rest:literal) => {
        concat!(
            "SELECT symbol, date, open, high, low, close, adj_close, volume, split_coef FROM candles WHERE ",
            $rest
        )
    };
}

static ALL: InList = InList::new(select_where!("{symbols} ORDER BY symbol, date"), HISTORIES);
static THROUGH: InList = InList::new(
    select_where!("date <= ? AND {symbols} ORDER BY symbol, date"),
    HISTORIES,
);
static FROM: InList = InList::new(
    select_where!("date >= ? AND {symbols} ORDER BY symbol, date"),
    RECENT_ROWS,
);
static AFTER: InList = InList::new(
    select_where!("date > ? AND {symbols} ORDER BY symbol, date"),
    RECENT_ROWS,
);
static RANGE: InList = InList::new(
    select_where!("date >= ? AND date <= ? AND {symbols} ORDER BY symbol, date"),
    RECENT_ROWS,
);
/// The last candle of each symbol before (`<`) or through (`<=`) a date,
/// however far back: the maximum first (see the module's note), then the
/// row by its key.
macro_rules! last_candle {
    ($bound:literal) => {
        concat!(
            "SELECT STRAIGHT_JOIN c.symbol, c.date, c.open, c.high, c.low, c.close, c.adj_close, c.volume,
             c.split_coef FROM (SELECT symbol, MAX(date) AS last FROM candles WHERE date ",
            $bound,
            " ? AND {symbols} GROUP BY symbol) m JOIN candles c ON c.symbol = m.symbol AND c.date = m.last"
        )
    };
}
static LAST_BEFORE: InList = InList::new(last_candle!("<"), RECENT_ROWS);
static LAST_THROUGH: InList = InList::new(last_candle!("<="), RECENT_ROWS);
/// The last `n` candles of a symbol through a date, however far back,
/// newest first: one part of a union.
static LAST_N_THROUGH: InList = InList::union(
    "SELECT symbol, date, open, high, low, close, adj_close, volume, split_coef FROM candles
     WHERE symbol = ? AND date <= ? ORDER BY date DESC LIMIT ?",
    RECENT_ROWS,
);
/// In date order: their product's last bit depends on the order.
static SPLITS_AFTER: InList = InList::new(
    "SELECT symbol, split_coef FROM candles WHERE date > ? AND split_coef IS NOT NULL AND {symbols}
     ORDER BY symbol, date",
    RECENT_ROWS,
);
/// A `ref` lookup on the key's prefix: InnoDB stops at the first key of
/// another symbol, committed or not (unlike the range dive of the note).
static LAST_DATES: InList = InList::union(
    "SELECT symbol, date FROM candles WHERE symbol = ? ORDER BY date DESC LIMIT 1",
    RECENT_ROWS,
);
static COUNTS: InList = InList::new(
    "SELECT symbol, COUNT(*) FROM candles WHERE date <= ? AND {symbols} GROUP BY symbol",
    RECENT_ROWS,
);
/// The candles of a date window (through or before its end): enough for
/// the last `n` of a symbol that traded most sessions of it.
static WINDOW_THROUGH: InList = InList::new(
    select_where!("date <= ? AND date > ? AND {symbols} ORDER BY symbol, date"),
    RECENT_ROWS,
);
static WINDOW_BEFORE: InList = InList::new(
    select_where!("date < ? AND date > ? AND {symbols} ORDER BY symbol, date"),
    RECENT_ROWS,
);
fn decode(symbol: &Symbol, row: &sqlx::mysql::MySqlRow) -> anyhow::Result<Candle> {
    candle_from_row(symbol, row, 1)
}

/// Each symbol's candles from a statement with one date parameter.
pub(super) async fn each_with_date(
    pool: &MySqlPool,
    symbols: &[Symbol],
    through: bool,
    date: NaiveDate,
    each: impl FnMut(&Symbol, Vec<Candle>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let statement = if through { &THROUGH } else { &FROM };
    per_symbol(pool, statement, &[Param::Date(date)], &[], symbols, decode, each).await
}

/// See [`super::after_each`]: one bulk read per distinct `after`.
pub(super) async fn after_each(
    pool: &MySqlPool,
    wanted: &[(Symbol, Option<NaiveDate>)],
) -> anyhow::Result<Vec<Vec<Candle>>> {
    let mut out: Vec<Vec<Candle>> = vec![Vec::new(); wanted.len()];
    for (after, members) in group_by(wanted, |(_, after)| *after) {
        let symbols = pick(wanted, &members, |w| &w.0);
        let read = match after {
            Some(date) => collect_per_symbol(pool, &AFTER, &[Param::Date(date)], &[], &symbols, decode).await?,
            None => collect_per_symbol(pool, &ALL, &[], &[], &symbols, decode).await?,
        };
        for (i, candles) in members.into_iter().zip(read) {
            out[i] = candles;
        }
    }
    Ok(out)
}

/// See [`super::around_each`]: two bulk reads per distinct range.
pub(super) async fn around_each(
    pool: &MySqlPool,
    wanted: &[(Symbol, NaiveDate, NaiveDate)],
) -> anyhow::Result<Vec<Vec<Candle>>> {
    let mut out: Vec<Vec<Candle>> = vec![Vec::new(); wanted.len()];
    for ((first, last), members) in group_by(wanted, |(_, first, last)| (*first, *last)) {
        let symbols = pick(wanted, &members, |w| &w.0);
        let before = last_each(pool, &symbols, Upto::Before(first)).await?;
        let range = [Param::Date(first), Param::Date(last)];
        let range = collect_per_symbol(pool, &RANGE, &range, &[], &symbols, decode).await?;
        for ((i, before), range) in members.into_iter().zip(before).zip(range) {
            out[i] = before.into_iter().chain(range).collect();
        }
    }
    Ok(out)
}

/// See [`super::counts_through`]: one bulk read per distinct date.
pub(super) async fn counts_through(pool: &MySqlPool, wanted: &[(Symbol, NaiveDate)]) -> anyhow::Result<Vec<i64>> {
    let mut out = vec![0; wanted.len()];
    for (date, members) in group_by(wanted, |(_, date)| *date) {
        let symbols = pick(wanted, &members, |w| &w.0);
        let counts = collect_per_symbol(pool, &COUNTS, &[Param::Date(date)], &[], &symbols, |_, row| {
            Ok(row.try_get::<i64, _>(1)?)
        })
        .await?;
        for (i, count) in members.into_iter().zip(counts) {
            out[i] = count.first().copied().unwrap_or(0);
        }
    }
    Ok(out)
}

/// See [`super::last_dates`].
pub(super) async fn last_dates(pool: &MySqlPool, symbols: &[Symbol]) -> anyhow::Result<Vec<Option<NaiveDate>>> {
    let read = collect_per_symbol(pool, &LAST_DATES, &[], &[], symbols, |_, row| {
        Ok(row.try_get::<Option<NaiveDate>, _>(1)?)
    })
    .await?;
    Ok(read
        .into_iter()
        .map(|dates| dates.into_iter().flatten().next())
        .collect())
}

/// See [`super::as_of_each`]: the last candles in one bulk read, the split
/// ratios after the date in another.
pub(super) async fn as_of_each(
    pool: &MySqlPool,
    symbols: &[Symbol],
    date: NaiveDate,
) -> anyhow::Result<Vec<(Option<Candle>, f64)>> {
    let last = last_each(pool, symbols, Upto::Through(date)).await?;
    let splits = collect_per_symbol(pool, &SPLITS_AFTER, &[Param::Date(date)], &[], symbols, |_, row| {
        Ok(row.try_get::<f64, _>(1)?)
    })
    .await?;
    Ok(last
        .into_iter()
        .zip(splits)
        .map(|(candle, ratios)| (candle, split_product(ratios)))
        .collect())
}

/// Where a read of the last candles ends.
#[derive(Debug, Clone, Copy)]
enum Upto {
    Before(NaiveDate),
    Through(NaiveDate),
}

/// The first day of a date window long enough for `n` sessions: they span
/// about 7n/5 calendar days, and holidays and missed sessions a few more.
fn window_start(end: NaiveDate, n: usize) -> NaiveDate {
    // No earlier than year 1000, the oldest date MySQL's DATE holds.
    let oldest = NaiveDate::from_ymd_opt(1000, 1, 1).unwrap_or(NaiveDate::MIN);
    end.checked_sub_days(Days::new(2 * n as u64 + 30))
        .unwrap_or(oldest)
        .max(oldest)
}

/// The candles of each symbol in the window of `n` sessions up to `upto`,
/// and the positions of the symbols it gives fewer than `n`.
async fn in_window(
    pool: &MySqlPool,
    symbols: &[Symbol],
    upto: Upto,
    n: usize,
) -> anyhow::Result<(Vec<Vec<Candle>>, Vec<usize>)> {
    let (statement, end) = match upto {
        Upto::Before(date) => (&WINDOW_BEFORE, date),
        Upto::Through(date) => (&WINDOW_THROUGH, date),
    };
    let window = [Param::Date(end), Param::Date(window_start(end, n))];
    let read = collect_per_symbol(pool, statement, &window, &[], symbols, decode).await?;
    let short = (0..symbols.len()).filter(|&i| read[i].len() < n).collect();
    Ok((read, short))
}

/// The last candle of each symbol up to `upto`, if any: the window of a
/// month, then, for the symbols without a candle in it, the last-row join.
async fn last_each(pool: &MySqlPool, symbols: &[Symbol], upto: Upto) -> anyhow::Result<Vec<Option<Candle>>> {
    let (read, short) = in_window(pool, symbols, upto, 1).await?;
    let mut out: Vec<Option<Candle>> = read.into_iter().map(|mut candles| candles.pop()).collect();
    let (statement, end) = match upto {
        Upto::Before(date) => (&LAST_BEFORE, date),
        Upto::Through(date) => (&LAST_THROUGH, date),
    };
    let short_symbols = pick(symbols, &short, |s| s);
    let older = collect_per_symbol(pool, statement, &[Param::Date(end)], &[], &short_symbols, decode).await?;
    for (i, mut candle) in short.into_iter().zip(older) {
        out[i] = candle.pop();
    }
    Ok(out)
}

/// See [`super::recent_each`]: the window of `n` sessions, then, for the
/// symbols it gives fewer than `n` (new listings, thin stocks), an index
/// dive each.
pub(super) async fn recent_each(
    pool: &MySqlPool,
    symbols: &[Symbol],
    date: NaiveDate,
    n: usize,
) -> anyhow::Result<Vec<Vec<Candle>>> {
    let (mut out, short) = in_window(pool, symbols, Upto::Through(date), n).await?;
    let short_symbols = pick(symbols, &short, |s| s);
    let params = [Param::Date(date), Param::Int(n as i64)];
    let older = collect_per_symbol(pool, &LAST_N_THROUGH, &params, &[], &short_symbols, decode).await?;
    for (i, mut candles) in short.into_iter().zip(older) {
        candles.reverse();
        out[i] = candles;
    }
    for candles in &mut out {
        let extra = candles.len().saturating_sub(n);
        candles.drain(..extra);
    }
    Ok(out)
}

static INSERT: MultiRow = MultiRow::new(|rows| super::insert_text(Dialect::MySql, rows));

/// Bytes of one candle in a statement, about (values and placeholders).
const CANDLE_BYTES: usize = 8 * 9 + 32 + 16 + 10 * 3;

/// See [`super::insert`]: a transaction per `batch_rows` rows, multi-row
/// inserts of up to a thousand rows in it.
pub(super) async fn insert(
    pool: &MySqlPool,
    candles: &[Candle],
    source: CandleSource,
    batch_rows: usize,
) -> anyhow::Result<u64> {
    let mut inserted = 0;
    for batch in candles.chunks(batch_rows) {
        inserted += retry_deadlocks(|| insert_batch(pool, batch, source)).await?;
    }
    Ok(inserted)
}

/// One transaction of [`insert`]. Two run at once (different symbols), so
/// InnoDB may roll one back to break a deadlock between their locks.
async fn insert_batch(pool: &MySqlPool, batch: &[Candle], source: CandleSource) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    let budget = write_budget(&mut tx).await?;
    let mut rows = batch.iter();
    let mut inserted = 0;
    for size in statement_sizes(batch.len(), CANDLE_BYTES, 10, budget) {
        let mut query = sqlx::query(INSERT.sql(size)?);
        for c in rows.by_ref().take(size) {
            query = super::bind_candle(query, c).bind(source.as_str());
        }
        inserted += query.execute(&mut *tx).await?.rows_affected();
        crate::crashpoint::reach("candles.insert_chunk");
    }
    crate::crashpoint::reach("db.before_commit");
    tx.commit().await?;
    crate::crashpoint::reach("db.after_commit");
    Ok(inserted)
}
