//! The database: SQLite (embedded default) or MySQL/MariaDB, through one
//! code path. Every query is a `&'static str` with bound parameters; the few
//! statements that differ between the two dialects are chosen by
//! [`Db::dialect`]. One file per table.

mod migrations;
mod mysql_bulk;

pub mod candles;
pub mod job_runs;
pub mod ta_signals;
pub mod watchlists;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::error::UsageError;

/// A connection pool to one of the supported databases.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    MySql(MySqlPool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
}

/// Run the same block against whichever pool `db` holds. The block is
/// expanded once per backend, so it may use backend-specific row types.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::MySql($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Same as [`with_pool!`] for a transaction begun on the pool.
macro_rules! in_transaction {
    ($db:expr, $tx:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $crate::crashpoint::reach("db.before_commit");
                $tx.commit().await?;
                $crate::crashpoint::reach("db.after_commit");
                out
            }
            $crate::db::Db::MySql(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $crate::crashpoint::reach("db.before_commit");
                $tx.commit().await?;
                $crate::crashpoint::reach("db.after_commit");
                out
            }
        }
    };
}
pub(crate) use in_transaction;

impl Db {
    /// Connect and bring the schema up to date. The URL's password never
    /// appears in an error.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        Db::connect_with(url, DEFAULT_BUSY_TIMEOUT).await
    }

    /// As [`Db::connect`]; a SQLite writer waits up to `busy_timeout` for
    /// another process's write to finish before failing.
    pub async fn connect_with(url: &str, busy_timeout: Duration) -> anyhow::Result<Db> {
        let shown = redact_url(url);
        let db = if url.starts_with("sqlite:") {
            Db::Sqlite(
                connect_sqlite(url, busy_timeout)
                    .await
                    .with_context(|| format!("cannot open database {shown}"))?,
            )
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let url = url.replacen("mariadb:", "mysql:", 1);
            let pool = MySqlPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect(&url)
                .await
                .map_err(|err| anyhow::anyhow!(redact_in(&err.to_string(), &url)))
                .with_context(|| format!("cannot connect to database {shown} (check host, port, user and password)"))?;
            Db::MySql(pool)
        } else {
            return Err(UsageError::UnsupportedDatabaseUrl(shown).into());
        };
        migrations::run(&db)
            .await
            .with_context(|| format!("cannot migrate database {shown}"))?;
        Ok(db)
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::MySql(_) => Dialect::MySql,
        }
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// Run `work` on the SQLite handle of one pooled connection through
/// rusqlite: bulk reads and writes step prepared statements on it
/// directly, because sqlx hands every row and every statement's values
/// across to its worker thread, which costs more than SQLite's own work on
/// a million rows.
pub(crate) async fn on_raw_sqlite<T>(
    pool: &SqlitePool,
    work: impl FnOnce(&rusqlite::Connection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut conn = pool.acquire().await?;
    let mut locked = conn.lock_handle().await?;
    // SAFETY: `lock_handle` keeps sqlx's worker thread off this handle
    // while `locked` lives; the rusqlite connection does not own (close)
    // the handle and is dropped at the end of this block, before `locked`.
    let sqlite = unsafe { rusqlite::Connection::from_handle(locked.as_raw_handle().as_ptr())? };
    work(&sqlite)
}

/// How long a SQLite writer waits for another process's write by default.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

async fn connect_sqlite(url: &str, busy_timeout: Duration) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL + NORMAL: a crash loses at most the last transactions, never
        // corrupts; the import is idempotent, so a re-run restores them.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(busy_timeout)
        .foreign_keys(true);
    if let Some(parent) = options.get_filename().parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    Ok(SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await?)
}

/// The URL with its password replaced by `***`, fit for logs and errors.
pub fn redact_url(url: &str) -> String {
    match userinfo(url) {
        Some((scheme, user, Some(_), host)) => format!("{scheme}://{user}:***@{host}"),
        _ => url.to_string(),
    }
}

/// (scheme, user, password, what follows the userinfo) of a URL with a
/// userinfo. The userinfo ends at the last `@`: a password may hold `/`,
/// `@` and `:` (written unencoded, as people do), a host never holds `@`.
fn userinfo(url: &str) -> Option<(&str, &str, Option<&str>, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (info, host) = rest.rsplit_once('@')?;
    let (user, password) = match info.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (info, None),
    };
    Some((scheme, user, password, host))
}

/// Remove the URL's password from a driver message, in case it echoes it
/// (whole, percent-decoded, or in pieces when the driver split the URL at
/// a `/`, `@` or `:` inside it). A message that still shows a piece of the
/// password is withheld.
fn redact_in(message: &str, url: &str) -> String {
    let Some(password) = userinfo(url).and_then(|u| u.2).filter(|p| !p.is_empty()) else {
        return message.to_string();
    };
    let mut out = message.replace(password, "***");
    let decoded = percent_decoded(password);
    if !decoded.is_empty() {
        out = out.replace(&decoded, "***");
    }
    let shows_a_piece = password
        .split(['/', '@', ':'])
        .chain(decoded.split(['/', '@', ':']))
        .filter(|piece| piece.len() >= 3)
        .any(|piece| out.contains(piece));
    if shows_a_piece {
        return "(the driver's message is withheld: it would show part of the password)".to_string();
    }
    out
}

/// `%XX` escapes decoded (what a driver shows of an encoded password).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted() {
        assert_eq!(redact_url("mysql://bob:s3cret@db:3306/x"), "mysql://bob:***@db:3306/x");
        assert_eq!(redact_url("mysql://bob@db/x"), "mysql://bob@db/x");
        assert_eq!(redact_url("sqlite://data/a.db?mode=rwc"), "sqlite://data/a.db?mode=rwc");
        assert_eq!(
            redact_in("denied for bob using s3cret", "mysql://bob:s3cret@db/x"),
            "denied for bob using ***"
        );
        // A password with `/`, `@` and `:` in it, unencoded.
        let url = "mysql://bob:s3cr/et@pa:ss99@db:3306/x";
        assert_eq!(redact_url(url), "mysql://bob:***@db:3306/x");
        assert_eq!(redact_in("denied: s3cr/et@pa:ss99", url), "denied: ***");
        // A driver that split the URL inside the password shows a piece of it.
        let split = redact_in("invalid port: \"ss99@db:3306\"", url);
        assert!(!split.contains("ss99") && split.contains("withheld"), "{split}");
        // Encoded: the decoded form is removed as well.
        let url = "mysql://bob:pa%2Fss@db/x";
        assert_eq!(redact_in("password pa/ss rejected", url), "password *** rejected");
    }
}
