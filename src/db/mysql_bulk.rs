//! Bulk reads and writes on MySQL/MariaDB: one statement for many symbols
//! or many rows instead of a round trip each. A round trip on loopback
//! costs about as much as the server's work on a few hundred rows, so a
//! daily job reading one row per symbol, statement by statement, spent its
//! time waiting (`bench/db_cycle.sh`).
//!
//! Reads bind a list of symbols (`symbol IN (?, …)`) of a fixed length per
//! statement, padded with the list's last symbol, so that each statement
//! text is prepared once per connection. Writes insert many rows per
//! statement, in sizes from a short ladder (the same few statement texts
//! again), each statement kept under the server's `max_allowed_packet`.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::NaiveDate;
use futures_util::TryStreamExt as _;
use sqlx::mysql::{MySqlArguments, MySqlPool, MySqlRow};
use sqlx::{MySql, Row as _};

use crate::symbols::Symbol;

/// A statement selecting rows of many symbols, the symbol its first
/// column. Either `{symbols}` in its text stands for `symbol IN (?, …)`, or
/// the statement is a union: copies of a part selecting one symbol's rows
/// (`symbol = ?` its first placeholder, then the read's own parameters)
/// joined by `UNION ALL`. Each comes in three lengths (`size`, `size`/8,
/// `size`/64 symbols), so that a read of a few symbols does not bind
/// hundreds of padding values.
pub(super) struct InList {
    template: &'static str,
    size: usize,
    union: bool,
    texts: [OnceLock<String>; 3],
}

/// Symbols per statement for reads of a few rows per symbol (a date's row,
/// the last weeks): large, to amortise the round trip.
pub(super) const RECENT_ROWS: usize = 512;
/// Symbols per statement for reads of whole histories: small, to bound the
/// rows held before they are handed out (a symbol's history is thousands).
pub(super) const HISTORIES: usize = 48;

impl InList {
    pub(super) const fn new(template: &'static str, size: usize) -> InList {
        InList {
            template,
            size,
            union: false,
            texts: [const { OnceLock::new() }; 3],
        }
    }

    /// Copies of `part` (in parentheses) joined by `UNION ALL`: an index
    /// dive per symbol (`ORDER BY date DESC LIMIT ?`) where one statement
    /// over all the symbols would read their whole histories (MariaDB
    /// answers `MAX(date) … GROUP BY symbol` over an `IN` list so).
    pub(super) const fn union(part: &'static str, size: usize) -> InList {
        InList {
            template: part,
            size,
            union: true,
            texts: [const { OnceLock::new() }; 3],
        }
    }

    /// The statement lengths, largest first.
    fn lengths(&self) -> [usize; 3] {
        [self.size, (self.size / 8).max(1), (self.size / 64).max(1)]
    }

    /// The shortest length that holds `symbols` symbols (at most `size`),
    /// and its text.
    fn sql_for(&'static self, symbols: usize) -> (usize, &'static str) {
        let lengths = self.lengths();
        let step = (0..3).rev().find(|&i| lengths[i] >= symbols).unwrap_or(0);
        let length = lengths[step];
        let text = self.texts[step].get_or_init(|| {
            if self.union {
                return vec![format!("({})", self.template); length].join(" UNION ALL ");
            }
            let list = vec!["?"; length].join(", ");
            self.template.replace("{symbols}", &format!("symbol IN ({list})"))
        });
        (length, text)
    }

    /// The `i`th symbol bound for `chunk`: past its end, the last symbol
    /// again (a duplicate in `IN` is harmless), or for a union the empty
    /// name, which selects nothing (a duplicate part would repeat rows).
    fn padded<'a>(&self, chunk: &'a [Symbol], i: usize) -> &'a str {
        match chunk.get(i) {
            Some(symbol) => symbol.as_str(),
            None if self.union => "",
            None => chunk[chunk.len() - 1].as_str(),
        }
    }

    /// The statement for `chunk` (at most `size` symbols) with its values
    /// bound: `before`, the symbols, `after`; for a union, each part's
    /// symbol followed by `before` and `after`.
    fn query<'q>(
        &'static self,
        chunk: &'q [Symbol],
        before: &[Param],
        after: &[Param],
    ) -> sqlx::query::Query<'q, MySql, MySqlArguments> {
        let (length, sql) = self.sql_for(chunk.len());
        let mut query = sqlx::query(sql);
        if self.union {
            for i in 0..length {
                query = query.bind(self.padded(chunk, i));
                for param in before.iter().chain(after) {
                    query = bind_param(query, *param);
                }
            }
            return query;
        }
        for param in before {
            query = bind_param(query, *param);
        }
        for i in 0..length {
            query = query.bind(self.padded(chunk, i));
        }
        for param in after {
            query = bind_param(query, *param);
        }
        query
    }
}

/// A value bound beside the symbols.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param {
    Date(NaiveDate),
    Int(i64),
}

fn bind_param<'q>(
    query: sqlx::query::Query<'q, MySql, MySqlArguments>,
    param: Param,
) -> sqlx::query::Query<'q, MySql, MySqlArguments> {
    match param {
        Param::Date(date) => query.bind(date),
        Param::Int(n) => query.bind(n),
    }
}

/// For each of `symbols`, in their order: the rows `statement` selects
/// for it, decoded by `decode`, in the order the statement returns them.
/// `before` and `after` are bound as [`InList::query`] says.
pub(super) async fn per_symbol<T: Clone>(
    pool: &MySqlPool,
    statement: &'static InList,
    before: &[Param],
    after: &[Param],
    symbols: &[Symbol],
    decode: impl Fn(&Symbol, &MySqlRow) -> anyhow::Result<T>,
    mut each: impl FnMut(&Symbol, Vec<T>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for chunk in symbols.chunks(statement.size) {
        // A symbol listed twice gets its rows twice (read once).
        let mut position: HashMap<&str, usize> = HashMap::with_capacity(chunk.len());
        for (i, symbol) in chunk.iter().enumerate() {
            position.entry(symbol.as_str()).or_insert(i);
        }
        let mut out: Vec<Vec<T>> = chunk.iter().map(|_| Vec::new()).collect();
        let mut rows = statement.query(chunk, before, after).fetch(pool);
        while let Some(row) = rows.try_next().await? {
            let name: &str = row.try_get(0)?;
            let Some(&i) = position.get(name) else {
                anyhow::bail!("a bulk read returned a row of {name:?}, which it did not ask for");
            };
            out[i].push(decode(&chunk[i], &row)?);
        }
        drop(rows);
        for (i, symbol) in chunk.iter().enumerate() {
            let first = position[symbol.as_str()];
            if first != i {
                out[i] = out[first].clone();
            }
        }
        for (symbol, rows) in chunk.iter().zip(out) {
            each(symbol, rows)?;
        }
    }
    Ok(())
}

/// [`per_symbol`] collected: one `Vec` per symbol, in their order.
pub(super) async fn collect_per_symbol<T: Clone>(
    pool: &MySqlPool,
    statement: &'static InList,
    before: &[Param],
    after: &[Param],
    symbols: &[Symbol],
    decode: impl Fn(&Symbol, &MySqlRow) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<Vec<T>>> {
    let mut out = Vec::with_capacity(symbols.len());
    per_symbol(pool, statement, before, after, symbols, decode, |_, rows| {
        out.push(rows);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Positions of `items` grouped by `key`, groups in the order of their
/// first item: the reads of a round whose symbols share a few distinct
/// dates (every symbol's last computed date is usually the same) go out
/// as one bulk read per date.
pub(super) fn group_by<T, K: PartialEq + Copy>(items: &[T], key: impl Fn(&T) -> K) -> Vec<(K, Vec<usize>)> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    groups
}

/// The symbols of `items` at `positions` (a group's, or the ones a first
/// read left short), for a bulk read of their own.
pub(super) fn pick<T>(items: &[T], positions: &[usize], symbol: impl Fn(&T) -> &Symbol) -> Vec<Symbol> {
    positions.iter().map(|&i| symbol(&items[i]).clone()).collect()
}

/// Multi-row statements: rows per statement from this ladder, largest
/// first, so a write of any length takes few statements of few distinct
/// texts (each prepared once per connection).
pub(super) const LADDER: [usize; 6] = [1024, 256, 64, 16, 4, 1];

/// The sizes of the statements that write `rows` rows of about
/// `row_bytes` bytes each: ladder steps, largest first, each statement's
/// values within `budget` bytes and `max_params` bound parameters.
pub(super) fn statement_sizes(rows: usize, row_bytes: usize, params_per_row: usize, budget: usize) -> Vec<usize> {
    let cap = (budget / row_bytes.max(1)).min(MAX_PARAMS / params_per_row).max(1);
    let mut sizes = Vec::new();
    let mut left = rows;
    for step in LADDER.into_iter().filter(|&s| s <= cap) {
        while left >= step {
            sizes.push(step);
            left -= step;
        }
    }
    sizes
}

/// The texts of a multi-row statement, one per [`LADDER`] step, built on
/// first use from constant text (the values are always bound).
pub(super) struct MultiRow {
    build: fn(usize) -> String,
    texts: [OnceLock<String>; LADDER.len()],
}

impl MultiRow {
    pub(super) const fn new(build: fn(usize) -> String) -> MultiRow {
        MultiRow {
            build,
            texts: [const { OnceLock::new() }; LADDER.len()],
        }
    }

    /// The statement for `rows` rows, a step of [`LADDER`] (as
    /// [`statement_sizes`] gives).
    pub(super) fn sql(&'static self, rows: usize) -> anyhow::Result<&'static str> {
        let Some(step) = LADDER.iter().position(|&s| s == rows) else {
            anyhow::bail!("internal: a multi-row statement of {rows} rows is not a ladder step");
        };
        Ok(self.texts[step].get_or_init(|| (self.build)(rows)))
    }
}

/// Execute `statement` for every chunk of `symbols` in the transaction
/// (a `DELETE … WHERE {symbols}`).
pub(super) async fn execute_per_chunk(
    conn: &mut sqlx::MySqlConnection,
    statement: &'static InList,
    symbols: &[Symbol],
) -> anyhow::Result<()> {
    for chunk in symbols.chunks(statement.size) {
        statement.query(chunk, &[], &[]).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Write attempts when InnoDB picks the transaction as a deadlock victim
/// (it rolled it back whole; the writes are idempotent, so they go again).
const DEADLOCK_ATTEMPTS: usize = 5;

/// Whether `err` is a deadlock InnoDB resolved by rolling this
/// transaction back (SQLSTATE 40001, error 1213).
fn is_deadlock(err: &anyhow::Error) -> bool {
    err.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40001")
}

/// Bound parameters a MySQL prepared statement may hold.
const MAX_PARAMS: usize = 65_535;

/// Bytes of values one write statement may carry: half the server's
/// `max_allowed_packet` (the protocol's framing takes its share), and no
/// more than 8 MB (larger gains nothing). Read as signed: MySQL and
/// MariaDB do not agree on the variable's signedness.
pub(super) async fn write_budget(conn: &mut sqlx::MySqlConnection) -> anyhow::Result<usize> {
    let packet: i64 = sqlx::query_scalar("SELECT CAST(@@max_allowed_packet AS SIGNED)")
        .fetch_one(conn)
        .await?;
    Ok((packet.max(2048) as usize / 2).min(8 << 20))
}

/// Run a write transaction (`attempt`), again when InnoDB picks it as a
/// deadlock victim: it rolled the transaction back whole, so writing it
/// again is safe. Writers of different symbols can deadlock on the locks
/// InnoDB takes on the gaps between keys (an import's two rounds in
/// flight, `ta-signals run --shard` processes side by side). SQLite never
/// reports one, so both dialects go through here.
pub(super) async fn retry_deadlocks<T, F: Future<Output = anyhow::Result<T>>>(
    mut attempt: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(err) if is_deadlock(&err) && tries < DEADLOCK_ATTEMPTS => {
                tracing::debug!("a write was chosen as a deadlock victim; writing it again (try {tries})");
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10 * tries as u64)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_split_into_ladder_steps_within_the_budget() {
        assert_eq!(statement_sizes(0, 100, 10, 1 << 20), Vec::<usize>::new());
        assert_eq!(statement_sizes(1, 100, 10, 1 << 20), [1]);
        // 2 × 1024 + 256 + 3 × 16 + 4 + 3 × 1 = 2359.
        assert_eq!(
            statement_sizes(2359, 100, 10, 1 << 20),
            [1024, 1024, 256, 16, 16, 16, 4, 1, 1, 1]
        );
        // 45 parameters a row: 1456 rows at most, so 1024 still fits.
        assert_eq!(statement_sizes(1024, 10, 45, 1 << 30), [1024]);
        // 2 000 parameters a row: 32 rows at most.
        assert_eq!(statement_sizes(40, 10, 2000, 1 << 30), [16, 16, 4, 4]);
        // 20 kB rows in a 100 kB budget: 5 rows at most, so steps of 4.
        assert_eq!(statement_sizes(9, 20_000, 9, 100_000), [4, 4, 1]);
        // A row larger than the budget still goes, alone.
        assert_eq!(statement_sizes(2, 1 << 20, 9, 1000), [1, 1]);
    }

    #[test]
    fn reads_bind_the_shortest_list_that_holds_the_symbols() {
        static IN: InList = InList::new("SELECT symbol FROM t WHERE {symbols}", 512);
        static UNION: InList = InList::union("SELECT symbol FROM t WHERE symbol = ? LIMIT ?", 512);
        assert_eq!(IN.lengths(), [512, 64, 8]);
        let placeholders = |sql: &str| sql.matches('?').count();
        for (symbols, length) in [(1, 8), (8, 8), (9, 64), (64, 64), (65, 512), (512, 512)] {
            let (n, sql) = IN.sql_for(symbols);
            assert_eq!((n, placeholders(sql)), (length, length), "{symbols} symbols");
            let (n, sql) = UNION.sql_for(symbols);
            assert_eq!((n, placeholders(sql)), (length, 2 * length), "{symbols} symbols");
            assert_eq!(sql.matches(" UNION ALL ").count(), length - 1);
        }
        assert!(
            IN.sql_for(3)
                .1
                .starts_with("SELECT symbol FROM t WHERE symbol IN (?, ?, ?, ?, ?, ?, ?, ?)")
        );
        let chunk = [Symbol::parse("A").unwrap(), Symbol::parse("B").unwrap()];
        assert_eq!([IN.padded(&chunk, 1), IN.padded(&chunk, 5)], ["B", "B"]);
        assert_eq!([UNION.padded(&chunk, 0), UNION.padded(&chunk, 5)], ["A", ""]);
    }

    #[test]
    fn a_multi_row_statement_is_a_ladder_step() {
        static TEXT: MultiRow = MultiRow::new(|rows| format!("{rows} rows"));
        assert_eq!(TEXT.sql(64).unwrap(), "64 rows");
        assert!(TEXT.sql(65).is_err());
    }

    #[test]
    fn groups_keep_first_appearance_order() {
        let items = [3, 1, 3, 2, 1, 3];
        assert_eq!(
            group_by(&items, |x| *x),
            [(3, vec![0, 2, 5]), (1, vec![1, 4]), (2, vec![3])]
        );
    }
}
