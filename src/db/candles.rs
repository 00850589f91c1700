//! The `candles` table: bulk insert of new rows, reads per symbol.

use std::sync::OnceLock;

use chrono::NaiveDate;
use sqlx::Row;

use super::{Db, Dialect, in_transaction, with_pool};
use crate::candles::Candle;

const COLUMNS: &str = "symbol, date, open, high, low, close, adj_close, volume, split_coef";
const PLACEHOLDERS: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// Rows per multi-row INSERT: 9 parameters each, far below both databases'
/// limits on bound parameters, large enough to amortise the round trip.
const CHUNK: usize = 256;

/// Multi-row insert statements, built once per (dialect, row count) from
/// constant text only; the values always go in as bound parameters. A
/// conflicting key is left as stored (the importer has already compared it).
fn insert_sql(dialect: Dialect, rows: usize) -> &'static str {
    static SQLITE: OnceLock<[String; 2]> = OnceLock::new();
    static MYSQL: OnceLock<[String; 2]> = OnceLock::new();
    let build = |suffix: &str| {
        [CHUNK, 1].map(|n| {
            let values = vec![PLACEHOLDERS; n].join(", ");
            format!("INSERT INTO candles ({COLUMNS}) VALUES {values} {suffix}")
        })
    };
    let texts = match dialect {
        Dialect::Sqlite => SQLITE.get_or_init(|| build("ON CONFLICT(symbol, date) DO NOTHING")),
        Dialect::MySql => MYSQL.get_or_init(|| build("ON DUPLICATE KEY UPDATE symbol = symbol")),
    };
    if rows == CHUNK { &texts[0] } else { &texts[1] }
}

/// Insert candles in transactions of `batch_rows`; returns rows inserted.
pub async fn insert(db: &Db, candles: &[Candle], batch_rows: usize) -> anyhow::Result<u64> {
    let mut inserted = 0;
    for batch in candles.chunks(batch_rows.max(CHUNK)) {
        inserted += in_transaction!(db, tx => {
            let mut n = 0u64;
            let mut chunks = batch.chunks_exact(CHUNK);
            for chunk in &mut chunks {
                let mut query = sqlx::query(insert_sql(db.dialect(), CHUNK));
                for c in chunk {
                    query = bind_candle(query, c);
                }
                n += query.execute(&mut *tx).await?.rows_affected();
            }
            for c in chunks.remainder() {
                let query = bind_candle(sqlx::query(insert_sql(db.dialect(), 1)), c);
                n += query.execute(&mut *tx).await?.rows_affected();
            }
            n
        });
    }
    Ok(inserted)
}

fn bind_candle<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    c: &'q Candle,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    NaiveDate: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(c.symbol.as_str())
        .bind(c.date)
        .bind(c.open)
        .bind(c.high)
        .bind(c.low)
        .bind(c.close)
        .bind(c.adj_close)
        .bind(c.volume)
        .bind(c.split_coef)
}

const SELECT_SYMBOL: &str = "SELECT date, open, high, low, close, adj_close, volume, split_coef
    FROM candles WHERE symbol = ? ORDER BY date";
const SELECT_SYMBOL_AFTER: &str = "SELECT date, open, high, low, close, adj_close, volume, split_coef
    FROM candles WHERE symbol = ? AND date > ? ORDER BY date";

const SELECT_RANGE: &str = "SELECT date, open, high, low, close, adj_close, volume, split_coef
    FROM candles WHERE symbol = ? AND date >= ? AND date <= ? ORDER BY date";
const SELECT_BEFORE: &str = "SELECT date, open, high, low, close, adj_close, volume, split_coef
    FROM candles WHERE symbol = ? AND date < ? ORDER BY date DESC LIMIT 1";

/// The stored candles of `symbol` from `first` to `last`, preceded by the
/// last stored candle before `first` (the previous close of the range):
/// what an import needs to compare and flag new rows, without reading a
/// symbol's whole history.
pub async fn around(
    db: &Db,
    symbol: &crate::symbols::Symbol,
    first: NaiveDate,
    last: NaiveDate,
) -> anyhow::Result<Vec<Candle>> {
    with_pool!(db, pool => {
        let before = sqlx::query(SELECT_BEFORE).bind(symbol.as_str()).bind(first).fetch_optional(pool).await?;
        let range = sqlx::query(SELECT_RANGE).bind(symbol.as_str()).bind(first).bind(last).fetch_all(pool).await?;
        before.iter().chain(range.iter()).map(|row| candle_from_row(symbol, row)).collect()
    })
}

/// Every stored candle of `symbol`, in date order.
pub async fn for_symbol(db: &Db, symbol: &crate::symbols::Symbol) -> anyhow::Result<Vec<Candle>> {
    with_pool!(db, pool => {
        let rows = sqlx::query(SELECT_SYMBOL).bind(symbol.as_str()).fetch_all(pool).await?;
        rows.iter().map(|row| candle_from_row(symbol, row)).collect()
    })
}

/// The stored candles of `symbol` after `date`, in date order.
pub async fn for_symbol_after(
    db: &Db,
    symbol: &crate::symbols::Symbol,
    date: NaiveDate,
) -> anyhow::Result<Vec<Candle>> {
    with_pool!(db, pool => {
        let rows = sqlx::query(SELECT_SYMBOL_AFTER).bind(symbol.as_str()).bind(date).fetch_all(pool).await?;
        rows.iter().map(|row| candle_from_row(symbol, row)).collect()
    })
}

fn candle_from_row<R: Row>(symbol: &crate::symbols::Symbol, row: &R) -> anyhow::Result<Candle>
where
    for<'r> NaiveDate: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(Candle {
        symbol: symbol.clone(),
        date: row.try_get(0)?,
        open: row.try_get(1)?,
        high: row.try_get(2)?,
        low: row.try_get(3)?,
        close: row.try_get(4)?,
        adj_close: row.try_get(5)?,
        volume: row.try_get(6)?,
        split_coef: row.try_get(7)?,
    })
}

/// The last stored candle of `symbol` on or before `date`.
pub async fn last_through(db: &Db, symbol: &crate::symbols::Symbol, date: NaiveDate) -> anyhow::Result<Option<Candle>> {
    const SQL: &str = "SELECT date, open, high, low, close, adj_close, volume, split_coef
        FROM candles WHERE symbol = ? AND date <= ? ORDER BY date DESC LIMIT 1";
    with_pool!(db, pool => {
        let row = sqlx::query(SQL).bind(symbol.as_str()).bind(date).fetch_optional(pool).await?;
        row.map(|r| candle_from_row(symbol, &r)).transpose()
    })
}

/// Product of the split ratios recorded after `date`: stored prices of
/// `date` divided by it are the split-adjusted prices indicators use.
pub async fn split_factor_after(db: &Db, symbol: &crate::symbols::Symbol, date: NaiveDate) -> anyhow::Result<f64> {
    const SQL: &str = "SELECT split_coef FROM candles WHERE symbol = ? AND date > ? AND split_coef IS NOT NULL";
    let ratios: Vec<f64> = with_pool!(db, pool => {
        sqlx::query_scalar(SQL).bind(symbol.as_str()).bind(date).fetch_all(pool).await
    })?;
    Ok(ratios.into_iter().filter(|r| r.is_finite() && *r > 0.0).product())
}

/// Number of stored candles (all symbols).
pub async fn count(db: &Db) -> anyhow::Result<i64> {
    Ok(with_pool!(db, pool => {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM candles").fetch_one(pool).await
    })?)
}

/// The latest date with a candle, over the watchlist's symbols.
pub async fn latest_date(db: &Db, watchlist: &str) -> anyhow::Result<Option<NaiveDate>> {
    const SQL: &str = "SELECT MAX(c.date) FROM candles c
        JOIN watchlist_members w ON w.symbol = c.symbol WHERE w.watchlist = ?";
    Ok(with_pool!(db, pool => {
        sqlx::query_scalar::<_, Option<NaiveDate>>(SQL).bind(watchlist).fetch_one(pool).await
    })?)
}
