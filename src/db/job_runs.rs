//! The `job_runs` table: the audit trail of every run (started, finished,
//! status, one-line message).

use chrono::NaiveDate;

use super::{Db, with_pool};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Ok,
    NothingToDo,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::NothingToDo => "nothing",
            RunStatus::Failed => "failed",
        }
    }
}

pub async fn start(db: &Db, run_id: &str, job: &str, watchlist: &str, as_of: Option<NaiveDate>) -> anyhow::Result<()> {
    const SQL: &str = "INSERT INTO job_runs (run_id, job, watchlist, as_of, started_at, status)
        VALUES (?, ?, ?, ?, ?, ?)";
    let now = crate::clock::utc_now_rfc3339();
    with_pool!(db, pool => {
        sqlx::query(SQL)
            .bind(run_id)
            .bind(job)
            .bind(watchlist)
            .bind(as_of)
            .bind(&now)
            .bind(RunStatus::Running.as_str())
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

pub async fn finish(db: &Db, run_id: &str, status: RunStatus, message: &str) -> anyhow::Result<()> {
    const SQL: &str = "UPDATE job_runs SET finished_at = ?, status = ?, message = ? WHERE run_id = ?";
    let now = crate::clock::utc_now_rfc3339();
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(&now).bind(status.as_str()).bind(message).bind(run_id).execute(pool).await.map(|_| ())
    })?;
    Ok(())
}

/// Status of a run, for tests and `artifacts` listings.
pub async fn status(db: &Db, run_id: &str) -> anyhow::Result<Option<String>> {
    const SQL: &str = "SELECT status FROM job_runs WHERE run_id = ?";
    Ok(with_pool!(db, pool => {
        sqlx::query_scalar::<_, String>(SQL).bind(run_id).fetch_optional(pool).await
    })?)
}
