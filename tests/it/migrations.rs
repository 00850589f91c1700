//! A database made by an earlier version gets the new schema without
//! losing a stored row (SQLite here, MariaDB in `mysql.rs`).

use crate::common::{TestContext, block_on, fixture};

/// Schema version 1 as an earlier release created it, with two candles.
pub const V1_CANDLES: &str = "INSERT INTO candles (symbol, date, open, high, low, close, adj_close, volume, split_coef)
    VALUES ('OLD', '2019-01-02', 10, 11, 9, 10.5, NULL, 100, NULL), ('OLD', '2019-01-03', 10.5, 12, 10, 11.5, NULL, 200, NULL)";
pub const V1_LEDGER: &str =
    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (1, 'v1', '2026-01-01')";

pub fn v1_script(dialect: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("migrations/{dialect}/0001_initial.sql"));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_version_1_sqlite_database_gains_candle_sources_and_keeps_its_rows() {
    let ctx = TestContext::new();
    let path = ctx.path("swingml.db");
    block_on(async {
        let pool = sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(v1_script("sqlite")))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(V1_LEDGER).execute(&pool).await.unwrap();
        sqlx::query(V1_CANDLES).execute(&pool).await.unwrap();
        pool.close().await;
    });
    ctx.import(&[&fixture("nse_daily_5sym_2024.csv")], "nse").assert_ok();
    let swingml::db::Db::Sqlite(pool) = ctx.db() else {
        unreachable!()
    };
    let (rows, old, versions): (i64, Vec<(String, String)>, Vec<i64>) = block_on(async {
        (
            sqlx::query_scalar("SELECT COUNT(*) FROM candles")
                .fetch_one(&pool)
                .await
                .unwrap(),
            sqlx::query_as("SELECT date, source FROM candles WHERE symbol = 'OLD' ORDER BY date")
                .fetch_all(&pool)
                .await
                .unwrap(),
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap(),
        )
    });
    assert_eq!(rows, 2 + 1245);
    assert_eq!(
        old,
        [
            ("2019-01-02".into(), "import".into()),
            ("2019-01-03".into(), "import".into())
        ]
    );
    assert_eq!(versions, [1, 2, 3, 4]);
}
