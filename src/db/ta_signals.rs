//! The `ta_signals` table (one row per symbol and date) and `ta_state`
//! (the streaming indicator state after a symbol's last computed bar).

use std::collections::HashMap;
use std::sync::OnceLock;

use anyhow::Context as _;
use chrono::NaiveDate;
use sqlx::Row;

use super::{Db, Dialect, with_pool};
use crate::indicators::{CATEGORICAL_COLUMNS, IndicatorRow, NUMERIC_COLUMNS, Numeric, signals};
use crate::symbols::Symbol;

/// One computed row on its way to the database.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalRow {
    pub symbol: Symbol,
    pub date: NaiveDate,
    pub row: IndicatorRow,
}

fn all_columns() -> Vec<&'static str> {
    let mut cols = vec!["symbol", "date"];
    cols.extend(NUMERIC_COLUMNS);
    cols.extend(CATEGORICAL_COLUMNS);
    cols.extend(["ta_version", "computed_at"]);
    cols
}

/// The upsert of `rows` rows, built from the column list (constant text;
/// the values are always bound).
fn upsert_text(dialect: Dialect, rows: usize) -> String {
    let cols = all_columns();
    let placeholders = format!("({})", vec!["?"; cols.len()].join(", "));
    let updates: Vec<String> = cols[2..]
        .iter()
        .map(|c| match dialect {
            Dialect::Sqlite => format!("{c} = excluded.{c}"),
            Dialect::MySql => format!("{c} = VALUES({c})"),
        })
        .collect();
    let conflict = match dialect {
        Dialect::Sqlite => "ON CONFLICT(symbol, date) DO UPDATE SET",
        Dialect::MySql => "ON DUPLICATE KEY UPDATE",
    };
    format!(
        "INSERT INTO ta_signals ({}) VALUES {} {conflict} {}",
        cols.join(", "),
        vec![placeholders.as_str(); rows].join(", "),
        updates.join(", ")
    )
}

/// Bind one row's values in column order.
macro_rules! bind_row {
    ($query:expr, $row:expr, $version:expr, $at:expr) => {{
        let mut q = $query.bind($row.symbol.as_str()).bind($row.date);
        for value in $row.row.numeric.values() {
            q = q.bind(value);
        }
        for value in $row.row.categoricals() {
            q = q.bind(value);
        }
        q.bind($version).bind($at)
    }};
}

/// Decode a row selected as `date, <numeric…>, <categorical…>, ta_version`
/// from column `$first` on.
macro_rules! decode_row {
    ($r:expr, $symbol:expr, $first:expr) => {{
        let (n, first) = (NUMERIC_COLUMNS.len(), $first);
        let numeric: Vec<Option<f64>> = (0..n).map(|i| $r.try_get(first + i + 1)).collect::<Result<_, _>>()?;
        let mut cats = [None; 5];
        for (i, cat) in cats.iter_mut().enumerate() {
            let text: Option<&str> = $r.try_get(first + 1 + n + i)?;
            *cat = text.and_then(signals::intern);
        }
        let version: i64 = $r.try_get(first + 1 + n + 5)?;
        let row = SignalRow {
            symbol: $symbol.clone(),
            date: $r.try_get(first)?,
            row: indicator_row(&numeric, cats),
        };
        anyhow::Ok((row, version))
    }};
}

mod mysql;

/// A symbol's saved indicator state: its head and the streaming state.
#[derive(Debug, Clone)]
pub struct StoredState {
    pub head: StateHead,
    pub state: String,
}

/// What a saved state says of the rows it was computed with — all a
/// reader of the stored rows needs (the streaming state is for `run`).
#[derive(Debug, Clone)]
pub struct StateHead {
    pub ta_version: i64,
    pub last_date: NaiveDate,
    /// Candles through `last_date`.
    pub bars: i64,
    /// Whether every one of those candles has a usable `adj_close`
    /// ([`crate::candles::splits::has_total_return`]); `None` when not
    /// known (saved before schema v3).
    pub all_adj_close: Option<bool>,
    /// The symbol's history counter when the state was computed
    /// ([`crate::db::candles::bump_history`]); `None` before schema v4.
    pub history_generation: Option<i64>,
}

/// One symbol's output of a run: rows to upsert and the state to save.
#[derive(Debug, Clone)]
pub struct SymbolUpdate {
    pub symbol: Symbol,
    /// Delete the symbol's rows first (a full recompute).
    pub replace: bool,
    pub rows: Vec<SignalRow>,
    pub state: Option<StoredState>,
}

/// Write the updates of several symbols in one transaction: rows and
/// states move together, so a crash never leaves a state ahead of its rows.
pub async fn write(db: &Db, updates: &[SymbolUpdate], ta_version: i64, computed_at: &str) -> anyhow::Result<u64> {
    match db {
        Db::Sqlite(pool) => {
            super::on_raw_sqlite(pool, |sqlite| write_sqlite(sqlite, updates, ta_version, computed_at)).await
        }
        // Another process's run (`--shard`) may write neighbouring symbols.
        Db::MySql(pool) => {
            super::mysql_bulk::retry_deadlocks(|| mysql::write(pool, updates, ta_version, computed_at)).await
        }
    }
}

/// The SQLite side of [`write`]: one prepared single-row upsert stepped
/// per row on the connection's own handle. Through sqlx every statement's
/// values cross to its worker thread, which cost more than SQLite's own
/// work (`bench/write_path.sh`).
fn write_sqlite(
    sqlite: &rusqlite::Connection,
    updates: &[SymbolUpdate],
    ta_version: i64,
    computed_at: &str,
) -> anyhow::Result<u64> {
    let tx = rusqlite::Transaction::new_unchecked(sqlite, rusqlite::TransactionBehavior::Immediate)?;
    let mut written = 0u64;
    {
        let mut delete = tx.prepare(DELETE_SYMBOL)?;
        let mut upsert = tx.prepare(&upsert_text(Dialect::Sqlite, 1))?;
        let mut save = tx.prepare(SAVE_STATE_SQLITE)?;
        for update in updates {
            let symbol = update.symbol.as_str();
            if update.replace {
                delete.execute([symbol])?;
            }
            for row in &update.rows {
                // Dates as sqlx writes them: ISO text.
                let date = row.date.format("%Y-%m-%d").to_string();
                upsert.raw_bind_parameter(1, symbol)?;
                upsert.raw_bind_parameter(2, &date)?;
                let mut i = 3;
                for value in row.row.numeric.values() {
                    upsert.raw_bind_parameter(i, value)?;
                    i += 1;
                }
                for value in row.row.categoricals() {
                    upsert.raw_bind_parameter(i, value)?;
                    i += 1;
                }
                upsert.raw_bind_parameter(i, ta_version)?;
                upsert.raw_bind_parameter(i + 1, computed_at)?;
                upsert.raw_execute()?;
            }
            written += update.rows.len() as u64;
            crate::crashpoint::reach("ta_signals.symbol_rows");
            if let Some(StoredState { head, state }) = &update.state {
                save.execute(rusqlite::params![
                    symbol,
                    head.ta_version,
                    head.last_date.format("%Y-%m-%d").to_string(),
                    head.bars,
                    1.0f64,
                    head.all_adj_close,
                    head.history_generation,
                    state,
                    computed_at
                ])?;
            }
        }
    }
    crate::crashpoint::reach("db.before_commit");
    tx.commit()?;
    crate::crashpoint::reach("db.after_commit");
    Ok(written)
}

const DELETE_SYMBOL: &str = "DELETE FROM ta_signals WHERE symbol = ?";
const SAVE_STATE_SQLITE: &str = "INSERT INTO ta_state (symbol, ta_version, last_date, bars, split_factor,
    all_adj_close, history_generation, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(symbol) DO UPDATE SET ta_version = excluded.ta_version, last_date = excluded.last_date,
    bars = excluded.bars, split_factor = excluded.split_factor, all_adj_close = excluded.all_adj_close,
    history_generation = excluded.history_generation, state = excluded.state, updated_at = excluded.updated_at";
/// Decode a `ta_state` row selected as `symbol, <HEAD_COLUMNS>[, state]`
/// into the symbol and its head.
macro_rules! decode_head {
    ($r:expr) => {{
        let head = StateHead {
            ta_version: $r.try_get(1)?,
            last_date: $r.try_get(2)?,
            bars: $r.try_get(3)?,
            all_adj_close: $r.try_get(4)?,
            history_generation: $r.try_get(5)?,
        };
        anyhow::Ok(($r.try_get::<String, _>(0)?, head))
    }};
}

/// Every saved state, by symbol.
pub async fn load_states(db: &Db) -> anyhow::Result<HashMap<String, StoredState>> {
    const SQL: &str =
        "SELECT symbol, ta_version, last_date, bars, all_adj_close, history_generation, state FROM ta_state";
    with_pool!(db, pool => {
        let rows = sqlx::query(SQL).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let (symbol, head) = decode_head!(r)?;
                Ok((symbol, StoredState { head, state: r.try_get(6)? }))
            })
            .collect()
    })
}

/// Every saved state's head (without the streaming state), by symbol.
pub async fn load_state_heads(db: &Db) -> anyhow::Result<HashMap<String, StateHead>> {
    const SQL: &str = "SELECT symbol, ta_version, last_date, bars, all_adj_close, history_generation FROM ta_state";
    with_pool!(db, pool => {
        let rows = sqlx::query(SQL).fetch_all(pool).await?;
        rows.iter().map(|r| decode_head!(r)).collect()
    })
}

/// The stored rows of each of `symbols` dated `from` to `through`, handed
/// to `each` symbol by symbol in date order.
pub async fn for_each_symbol_between(
    db: &Db,
    symbols: &[Symbol],
    from: NaiveDate,
    through: NaiveDate,
    each: impl FnMut(&Symbol, Vec<SignalRow>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| select_sql(" AND date >= ? AND date <= ? ORDER BY date"));
    match db {
        Db::Sqlite(pool) => {
            super::on_raw_sqlite(pool, |sqlite| sqlite_between(sqlite, sql, symbols, from, through, each)).await
        }
        Db::MySql(pool) => mysql::each_between(pool, symbols, from, through, each).await,
    }
}

/// The SQLite side of [`for_each_symbol_between`] on the raw handle (as
/// the bulk candle read).
fn sqlite_between(
    sqlite: &rusqlite::Connection,
    sql: &str,
    symbols: &[Symbol],
    from: NaiveDate,
    through: NaiveDate,
    mut each: impl FnMut(&Symbol, Vec<SignalRow>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut statement = sqlite.prepare(sql)?;
    let (from, through) = (from.to_string(), through.to_string());
    for symbol in symbols {
        let mut rows = statement.query((symbol.as_str(), from.as_str(), through.as_str()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(sqlite_row(r, symbol)?.0);
        }
        each(symbol, out)?;
    }
    Ok(())
}

/// A row selected as `date, <numeric…>, <categorical…>, ta_version`, read
/// on the raw SQLite handle, with its `ta_version`.
fn sqlite_row(r: &rusqlite::Row, symbol: &Symbol) -> anyhow::Result<(SignalRow, i64)> {
    let n = NUMERIC_COLUMNS.len();
    let date: &str = r.get_ref(0)?.as_str()?;
    let date = super::candles::parse_iso_date(date)
        .with_context(|| format!("{symbol}: stored date {date:?} is not YYYY-MM-DD"))?;
    let numeric = (0..n)
        .map(|i| r.get::<_, Option<f64>>(i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cats = [None; 5];
    for (i, cat) in cats.iter_mut().enumerate() {
        *cat = r.get_ref(1 + n + i)?.as_str_or_null()?.and_then(signals::intern);
    }
    let row = SignalRow {
        symbol: symbol.clone(),
        date,
        row: indicator_row(&numeric, cats),
    };
    Ok((row, r.get(1 + n + 5)?))
}

/// An indicator row from its numeric values (in [`NUMERIC_COLUMNS`] order)
/// and its categoricals (in [`CATEGORICAL_COLUMNS`] order).
fn indicator_row(numeric: &[Option<f64>], cats: [Option<&'static str>; 5]) -> IndicatorRow {
    IndicatorRow {
        numeric: Numeric::from_values(numeric),
        adx_strength: cats[0],
        di_strength: cats[1],
        madi_trend: cats[2],
        trend_reversal: cats[3],
        ta_recommendation: cats[4],
    }
}

/// `SELECT date, <every indicator column>, ta_version FROM ta_signals WHERE symbol = ?` + `tail`.
fn select_sql(tail: &str) -> String {
    let cols = all_columns();
    format!(
        "SELECT {}, ta_version FROM ta_signals WHERE symbol = ?{tail}",
        cols[1..cols.len() - 2].join(", ")
    )
}

/// Every stored row of `symbol`, in date order.
pub async fn for_symbol(db: &Db, symbol: &Symbol) -> anyhow::Result<Vec<SignalRow>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| select_sql(" ORDER BY date"));
    with_pool!(db, pool => {
        let rows = sqlx::query(sql.as_str()).bind(symbol.as_str()).fetch_all(pool).await?;
        rows.iter().map(|r| decode_row!(r, symbol, 0).map(|(row, _)| row)).collect()
    })
}

/// The stored row of `symbol` on `date` with its `ta_version`.
pub async fn at(db: &Db, symbol: &Symbol, date: NaiveDate) -> anyhow::Result<Option<(SignalRow, i64)>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| select_sql(" AND date = ?"));
    with_pool!(db, pool => {
        let row = sqlx::query(sql.as_str()).bind(symbol.as_str()).bind(date).fetch_optional(pool).await?;
        row.map(|r| decode_row!(r, symbol, 0)).transpose()
    })
}

/// The stored row of each of `symbols` on `date` with its `ta_version`.
pub async fn at_each(db: &Db, symbols: &[Symbol], date: NaiveDate) -> anyhow::Result<Vec<Option<(SignalRow, i64)>>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| select_sql(" AND date = ?"));
    match db {
        Db::Sqlite(pool) => {
            super::on_raw_sqlite(pool, |sqlite| {
                let mut statement = sqlite.prepare(sql)?;
                let day = date.to_string();
                symbols
                    .iter()
                    .map(|symbol| {
                        let mut rows = statement.query((symbol.as_str(), day.as_str()))?;
                        let Some(r) = rows.next()? else { return Ok(None) };
                        let (row, version) = sqlite_row(r, symbol)?;
                        Ok(Some((row, version)))
                    })
                    .collect()
            })
            .await
        }
        Db::MySql(pool) => mysql::at_each(pool, symbols, date).await,
    }
}

/// Number of stored rows.
pub async fn count(db: &Db) -> anyhow::Result<i64> {
    Ok(with_pool!(db, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM ta_signals").fetch_one(pool).await)?)
}
