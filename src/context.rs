//! The per-run context: validated settings, the database, the artifact
//! store and the run's identity.

use chrono::Utc;

use crate::db::Db;
use crate::settings::Settings;
use crate::store::{Store, WatchlistStore, Writer};

pub struct Context {
    pub job: &'static str,
    pub run_id: String,
    pub settings: Settings,
    pub db: Db,
    pub store: Store,
}

impl Context {
    pub async fn open(job: &'static str, settings: Settings) -> anyhow::Result<Context> {
        let db = Db::connect_with(&settings.database_url, settings.sqlite_busy_timeout).await?;
        let store = Store::open(&settings.artifacts)?;
        Ok(Context {
            job,
            run_id: new_run_id(job),
            settings,
            db,
            store,
        })
    }

    /// The same settings, database and store for a second job of one
    /// command (`fetch --run`), audited as its own run.
    pub fn for_job(self, job: &'static str) -> Context {
        Context {
            job,
            run_id: new_run_id(job),
            ..self
        }
    }

    /// The store of the run's watchlist.
    pub fn watchlist_store(&self) -> anyhow::Result<WatchlistStore> {
        Ok(self.store.watchlist(&self.settings.watchlist)?)
    }

    /// The identity stamped on everything this run writes.
    pub fn writer(&self) -> Writer {
        Writer {
            job: self.job.to_string(),
            run_id: self.run_id.clone(),
        }
    }
}

/// A run id: UTC time to the millisecond, job and pid — unique on a host,
/// sortable by time.
pub fn new_run_id(job: &str) -> String {
    format!(
        "{}-{job}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        std::process::id()
    )
}
