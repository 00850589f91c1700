//! The MySQL side of the `ta_signals` bulk reads and of [`super::write`]:
//! one statement per chunk of symbols, and multi-row upserts of up to a
//! thousand rows ([`crate::db::mysql_bulk`]).

use chrono::NaiveDate;
use sqlx::Row as _;
use sqlx::mysql::{MySqlPool, MySqlRow};

use super::{SignalRow, StoredState, SymbolUpdate, indicator_row, upsert_text};
use crate::db::Dialect;
use crate::db::mysql_bulk::{
    HISTORIES, InList, MultiRow, Param, RECENT_ROWS, collect_per_symbol, execute_per_chunk, per_symbol,
    statement_sizes, write_budget,
};
use crate::indicators::{CATEGORICAL_COLUMNS, NUMERIC_COLUMNS, signals};
use crate::symbols::Symbol;

/// `SELECT symbol, date, <every indicator column>, ta_version FROM
/// ta_signals WHERE ` + the rest (the columns of [`super::select_sql`]
/// after the symbol).
fn select_where(rest: &str) -> String {
    let cols = super::all_columns();
    format!(
        "SELECT symbol, {}, ta_version FROM ta_signals WHERE {rest}",
        cols[1..cols.len() - 2].join(", ")
    )
}

/// The statements are built from the column list, so their text is
/// leaked once (two short strings for the life of the process).
fn statement(cell: &'static std::sync::OnceLock<InList>, rest: &str, size: usize) -> &'static InList {
    cell.get_or_init(|| InList::new(Box::leak(select_where(rest).into_boxed_str()), size))
}

fn decode(symbol: &Symbol, r: &MySqlRow) -> anyhow::Result<(SignalRow, i64)> {
    decode_row!(r, symbol, 1)
}

/// See [`super::at_each`].
pub(super) async fn at_each(
    pool: &MySqlPool,
    symbols: &[Symbol],
    date: NaiveDate,
) -> anyhow::Result<Vec<Option<(SignalRow, i64)>>> {
    static ON: std::sync::OnceLock<InList> = std::sync::OnceLock::new();
    let on = statement(&ON, "date = ? AND {symbols}", RECENT_ROWS);
    let read = collect_per_symbol(pool, on, &[Param::Date(date)], &[], symbols, decode).await?;
    Ok(read.into_iter().map(|mut rows| rows.pop()).collect())
}

/// See [`super::for_each_symbol_between`].
pub(super) async fn each_between(
    pool: &MySqlPool,
    symbols: &[Symbol],
    from: NaiveDate,
    through: NaiveDate,
    mut each: impl FnMut(&Symbol, Vec<SignalRow>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    static BETWEEN: std::sync::OnceLock<InList> = std::sync::OnceLock::new();
    // Weeks of rows per symbol at most (the daily jobs' windows).
    let between = statement(
        &BETWEEN,
        "date >= ? AND date <= ? AND {symbols} ORDER BY symbol, date",
        HISTORIES * 4,
    );
    let dates = [Param::Date(from), Param::Date(through)];
    per_symbol(pool, between, &dates, &[], symbols, decode, |symbol, rows| {
        each(symbol, rows.into_iter().map(|(row, _)| row).collect())
    })
    .await
}

static DELETE: InList = InList::new("DELETE FROM ta_signals WHERE {symbols}", HISTORIES);
static UPSERT: MultiRow = MultiRow::new(|rows| upsert_text(Dialect::MySql, rows));
static SAVE_STATE: MultiRow = MultiRow::new(|rows| {
    format!(
        "INSERT INTO ta_state (symbol, ta_version, last_date, bars, split_factor, all_adj_close,
         history_generation, state, updated_at) VALUES {}
         ON DUPLICATE KEY UPDATE ta_version = VALUES(ta_version), last_date = VALUES(last_date),
         bars = VALUES(bars), split_factor = VALUES(split_factor), all_adj_close = VALUES(all_adj_close),
         history_generation = VALUES(history_generation), state = VALUES(state), updated_at = VALUES(updated_at)",
        vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ")
    )
});

/// Bytes of one indicator row in a statement, about (45 values, the
/// symbol and the timestamp, and the row's 45 placeholders in the text):
/// sizes the statements within the packet.
const ROW_BYTES: usize = 45 * 9 + 32 + 40 + 45 * 3;

/// See [`super::write`]: in one transaction, the rows of the symbols
/// recomputed in full deleted (one statement per chunk of symbols), every
/// row upserted in multi-row statements, every state saved likewise.
pub(super) async fn write(
    pool: &MySqlPool,
    updates: &[SymbolUpdate],
    ta_version: i64,
    computed_at: &str,
) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    let budget = write_budget(&mut tx).await?;
    let replaced: Vec<Symbol> = updates.iter().filter(|u| u.replace).map(|u| u.symbol.clone()).collect();
    execute_per_chunk(&mut tx, &DELETE, &replaced).await?;

    let mut rows = updates.iter().flat_map(|u| &u.rows);
    let total = updates.iter().map(|u| u.rows.len()).sum::<usize>();
    let params = NUMERIC_COLUMNS.len() + CATEGORICAL_COLUMNS.len() + 4;
    for size in statement_sizes(total, ROW_BYTES, params, budget) {
        let mut query = sqlx::query(UPSERT.sql(size)?);
        for row in rows.by_ref().take(size) {
            query = bind_row!(query, row, ta_version, computed_at);
        }
        query.execute(&mut *tx).await?;
        crate::crashpoint::reach("ta_signals.symbol_rows");
    }

    let states: Vec<(&Symbol, &StoredState)> = updates
        .iter()
        .filter_map(|u| u.state.as_ref().map(|s| (&u.symbol, s)))
        .collect();
    let state_bytes = states.iter().map(|(_, s)| s.state.len()).max().unwrap_or(0) + 128;
    let mut next = states.iter();
    for size in statement_sizes(states.len(), state_bytes, 9, budget) {
        let mut query = sqlx::query(SAVE_STATE.sql(size)?);
        for (symbol, StoredState { head, state }) in next.by_ref().take(size) {
            query = query
                .bind(symbol.as_str())
                .bind(head.ta_version)
                .bind(head.last_date)
                .bind(head.bars)
                .bind(1.0f64)
                .bind(head.all_adj_close)
                .bind(head.history_generation)
                .bind(state.as_str())
                .bind(computed_at);
        }
        query.execute(&mut *tx).await?;
    }
    crate::crashpoint::reach("db.before_commit");
    tx.commit().await?;
    crate::crashpoint::reach("db.after_commit");
    Ok(total as u64)
}
