//! Schema migrations for both dialects, embedded in the binary.
//!
//! Each migration is a list of statements applied once and recorded in
//! `schema_migrations`. The statements use `IF NOT EXISTS`, and an added
//! column that is already there counts as added, so two processes
//! migrating the same database at the same moment do no harm.

use super::{Db, Dialect, with_pool};

struct Migration {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    mysql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "symbols, watchlists, candles, ta_signals, ta_state, job_runs",
        sqlite: include_str!("../../migrations/sqlite/0001_initial.sql"),
        mysql: include_str!("../../migrations/mysql/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "candles.source",
        sqlite: include_str!("../../migrations/sqlite/0002_candle_source.sql"),
        mysql: include_str!("../../migrations/mysql/0002_candle_source.sql"),
    },
    Migration {
        version: 3,
        description: "ta_state.all_adj_close",
        sqlite: include_str!("../../migrations/sqlite/0003_state_adj_close.sql"),
        mysql: include_str!("../../migrations/mysql/0003_state_adj_close.sql"),
    },
    Migration {
        version: 4,
        description: "candle_history, ta_state.history_generation",
        sqlite: include_str!("../../migrations/sqlite/0004_candle_history.sql"),
        mysql: include_str!("../../migrations/mysql/0004_candle_history.sql"),
    },
];

const CREATE_LEDGER_SQLITE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)";
const CREATE_LEDGER_MYSQL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT NOT NULL PRIMARY KEY, description VARCHAR(200) NOT NULL, applied_at VARCHAR(40) NOT NULL)
    ENGINE=InnoDB";
const RECORD_SQLITE: &str =
    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?) ON CONFLICT(version) DO NOTHING";
const RECORD_MYSQL: &str = "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)
    ON DUPLICATE KEY UPDATE version = version";

pub(super) async fn run(db: &Db) -> anyhow::Result<()> {
    let (create_ledger, record) = match db.dialect() {
        Dialect::Sqlite => (CREATE_LEDGER_SQLITE, RECORD_SQLITE),
        Dialect::MySql => (CREATE_LEDGER_MYSQL, RECORD_MYSQL),
    };
    with_pool!(db, pool => sqlx::query(create_ledger).execute(pool).await.map(|_| ()))?;
    let applied: Vec<i64> = with_pool!(db, pool => {
        sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(pool).await
    })?;
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let script = match db.dialect() {
            Dialect::Sqlite => migration.sqlite,
            Dialect::MySql => migration.mysql,
        };
        for statement in statements(script) {
            let applied = with_pool!(db, pool => sqlx::query(statement).execute(pool).await.map(|_| ()));
            match applied {
                Err(err) if is_duplicate_column(&err) => {}
                other => other?,
            }
        }
        let now = chrono::Utc::now().to_rfc3339();
        with_pool!(db, pool => {
            sqlx::query(record)
                .bind(migration.version)
                .bind(migration.description)
                .bind(&now)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        tracing::debug!(version = migration.version, "applied migration");
    }
    Ok(())
}

/// "Duplicate column name" (both databases): another process added the
/// column between our ledger read and our `ALTER TABLE`.
fn is_duplicate_column(err: &sqlx::Error) -> bool {
    err.to_string().to_ascii_lowercase().contains("duplicate column name")
}

/// Split a script into its statements. Slices of a `&'static str` stay
/// `'static`, as the query API requires.
fn statements(script: &'static str) -> impl Iterator<Item = &'static str> {
    script
        .split(";\n")
        .map(|chunk| chunk.trim())
        .filter(|chunk| {
            chunk
                .lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with("--"))
        })
        .map(|chunk| chunk.trim_end_matches(';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_into_their_statements() {
        let counts: Vec<(usize, usize)> = MIGRATIONS
            .iter()
            .map(|m| (statements(m.sqlite).count(), statements(m.mysql).count()))
            .collect();
        assert_eq!(counts, [(6, 6), (1, 1), (1, 1), (2, 2)]);
        for s in statements(MIGRATIONS[0].sqlite).chain(statements(MIGRATIONS[0].mysql)) {
            assert!(s.contains("CREATE TABLE IF NOT EXISTS"), "{s}");
        }
        for s in statements(MIGRATIONS[1].sqlite).chain(statements(MIGRATIONS[1].mysql)) {
            assert!(s.contains("ALTER TABLE candles ADD COLUMN source"), "{s}");
        }
        for s in statements(MIGRATIONS[2].sqlite).chain(statements(MIGRATIONS[2].mysql)) {
            assert!(s.contains("ALTER TABLE ta_state ADD COLUMN all_adj_close"), "{s}");
        }
    }
}
