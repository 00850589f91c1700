//! The `symbols` and `watchlist_members` tables.

use super::Db;
use super::mysql_bulk::{MultiRow, statement_sizes, write_budget};
use crate::symbols::Symbol;

const UPSERT_SYMBOL_SQLITE: &str = "INSERT INTO symbols (symbol, exchange, country, currency, timezone)
    VALUES (?, ?, ?, ?, ?) ON CONFLICT(symbol) DO NOTHING";
const ADD_MEMBER_SQLITE: &str =
    "INSERT INTO watchlist_members (watchlist, symbol) VALUES (?, ?) ON CONFLICT(watchlist, symbol) DO NOTHING";
static UPSERT_SYMBOLS_MYSQL: MultiRow = MultiRow::new(|rows| {
    format!(
        "INSERT INTO symbols (symbol, exchange, country, currency, timezone) VALUES {}
         ON DUPLICATE KEY UPDATE symbol = symbol",
        vec!["(?, ?, ?, ?, ?)"; rows].join(", ")
    )
});
static ADD_MEMBERS_MYSQL: MultiRow = MultiRow::new(|rows| {
    format!(
        "INSERT INTO watchlist_members (watchlist, symbol) VALUES {} ON DUPLICATE KEY UPDATE symbol = symbol",
        vec!["(?, ?)"; rows].join(", ")
    )
});

/// Make sure every symbol has a `symbols` row (exchange facts from its
/// suffix where known) and, with `watchlist`, a membership row.
pub async fn register(db: &Db, symbols: &[Symbol], watchlist: Option<&str>) -> anyhow::Result<()> {
    match db {
        Db::Sqlite(pool) => super::on_raw_sqlite(pool, |sqlite| register_sqlite(sqlite, symbols, watchlist)).await,
        Db::MySql(pool) => register_mysql(pool, symbols, watchlist).await,
    }
}

/// The MySQL side of [`register`]: multi-row upserts (a daily import
/// registers every symbol of the market again, a no-op each, so a
/// statement per symbol is all round trips).
async fn register_mysql(pool: &sqlx::MySqlPool, symbols: &[Symbol], watchlist: Option<&str>) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let budget = write_budget(&mut tx).await?;
    let mut next = symbols.iter();
    for size in statement_sizes(symbols.len(), 128, 5, budget) {
        let mut query = sqlx::query(UPSERT_SYMBOLS_MYSQL.sql(size)?);
        for symbol in next.by_ref().take(size) {
            let listing = symbol.listing();
            query = query
                .bind(symbol.as_str())
                .bind(listing.exchange)
                .bind(listing.country)
                .bind(listing.currency)
                .bind(listing.timezone);
        }
        query.execute(&mut *tx).await?;
    }
    if let Some(watchlist) = watchlist {
        let mut next = symbols.iter();
        for size in statement_sizes(symbols.len(), 128, 2, budget) {
            let mut query = sqlx::query(ADD_MEMBERS_MYSQL.sql(size)?);
            for symbol in next.by_ref().take(size) {
                query = query.bind(watchlist).bind(symbol.as_str());
            }
            query.execute(&mut *tx).await?;
        }
    }
    crate::crashpoint::reach("db.before_commit");
    tx.commit().await?;
    crate::crashpoint::reach("db.after_commit");
    Ok(())
}

/// The SQLite side of [`register`], on the raw handle: a daily import
/// registers every symbol of the market again (a no-op each), so the
/// statements' round trips through sqlx's worker are the cost.
fn register_sqlite(sqlite: &rusqlite::Connection, symbols: &[Symbol], watchlist: Option<&str>) -> anyhow::Result<()> {
    let tx = rusqlite::Transaction::new_unchecked(sqlite, rusqlite::TransactionBehavior::Immediate)?;
    {
        let (mut upsert, mut add) = (tx.prepare(UPSERT_SYMBOL_SQLITE)?, tx.prepare(ADD_MEMBER_SQLITE)?);
        for symbol in symbols {
            let listing = symbol.listing();
            upsert.execute((
                symbol.as_str(),
                listing.exchange,
                listing.country,
                listing.currency,
                listing.timezone,
            ))?;
            if let Some(watchlist) = watchlist {
                add.execute((watchlist, symbol.as_str()))?;
            }
        }
    }
    crate::crashpoint::reach("db.before_commit");
    tx.commit()?;
    crate::crashpoint::reach("db.after_commit");
    Ok(())
}

/// Members of a watchlist, sorted. Names that fail validation (written by
/// hand into the database) are skipped with a warning.
pub async fn members(db: &Db, watchlist: &str) -> anyhow::Result<Vec<Symbol>> {
    const SQL: &str = "SELECT symbol FROM watchlist_members WHERE watchlist = ? ORDER BY symbol";
    let raw: Vec<String> = super::with_pool!(db, pool => {
        sqlx::query_scalar(SQL).bind(watchlist).fetch_all(pool).await
    })?;
    Ok(parse_symbols(raw))
}

/// Every symbol that has at least one candle, sorted.
pub async fn symbols_with_candles(db: &Db) -> anyhow::Result<Vec<Symbol>> {
    const SQL: &str = "SELECT DISTINCT symbol FROM candles ORDER BY symbol";
    let raw: Vec<String> = super::with_pool!(db, pool => sqlx::query_scalar(SQL).fetch_all(pool).await)?;
    Ok(parse_symbols(raw))
}

fn parse_symbols(raw: Vec<String>) -> Vec<Symbol> {
    raw.into_iter()
        .filter_map(|s| match Symbol::parse(&s) {
            Ok(symbol) => Some(symbol),
            Err(err) => {
                tracing::warn!("skipping stored symbol: {err}");
                None
            }
        })
        .collect()
}

/// Country of each member of a watchlist (`None` when unknown).
pub async fn countries(db: &Db, watchlist: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
    const SQL: &str = "SELECT w.symbol, s.country FROM watchlist_members w
        LEFT JOIN symbols s ON s.symbol = w.symbol WHERE w.watchlist = ? ORDER BY w.symbol";
    super::with_pool!(db, pool => {
        let rows = sqlx::query(SQL).bind(watchlist).fetch_all(pool).await?;
        rows.iter()
            .map(|r| Ok((sqlx::Row::try_get::<String, _>(r, 0)?, sqlx::Row::try_get::<Option<String>, _>(r, 1)?)))
            .collect()
    })
}
