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
    /// Found `running` by a later run of the same job and watchlist, which
    /// holds the job's lock: the process ended without finishing (killed,
    /// machine stopped).
    Abandoned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::NothingToDo => "nothing",
            RunStatus::Failed => "failed",
            RunStatus::Abandoned => "abandoned",
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

/// Mark the `running` rows of `job` on `watchlist` other than `by_run` as
/// abandoned. Only for a caller that holds the job's lock: then no other
/// run of that job can be alive. Returns their run ids.
pub async fn abandon_unfinished(db: &Db, job: &str, watchlist: &str, by_run: &str) -> anyhow::Result<Vec<String>> {
    const FIND: &str = "SELECT run_id FROM job_runs WHERE job = ? AND watchlist = ? AND status = ? AND run_id <> ?";
    const MARK: &str = "UPDATE job_runs SET finished_at = ?, status = ?, message = ? WHERE run_id = ? AND status = ?";
    let dead: Vec<String> = with_pool!(db, pool => {
        sqlx::query_scalar(FIND)
            .bind(job)
            .bind(watchlist)
            .bind(RunStatus::Running.as_str())
            .bind(by_run)
            .fetch_all(pool)
            .await
    })?;
    let now = crate::clock::utc_now_rfc3339();
    let message = format!("ended without finishing (killed or stopped); found by run {by_run}");
    for run_id in &dead {
        with_pool!(db, pool => {
            sqlx::query(MARK)
                .bind(&now)
                .bind(RunStatus::Abandoned.as_str())
                .bind(&message)
                .bind(run_id)
                .bind(RunStatus::Running.as_str())
                .execute(pool)
                .await
                .map(|_| ())
        })?;
    }
    Ok(dead)
}

/// Record the as-of a run resolved (the flag's, or the default's).
pub async fn set_as_of(db: &Db, run_id: &str, as_of: NaiveDate) -> anyhow::Result<()> {
    const SQL: &str = "UPDATE job_runs SET as_of = ? WHERE run_id = ?";
    with_pool!(db, pool => sqlx::query(SQL).bind(as_of).bind(run_id).execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Status of a run, for tests and `artifacts` listings.
pub async fn status(db: &Db, run_id: &str) -> anyhow::Result<Option<String>> {
    const SQL: &str = "SELECT status FROM job_runs WHERE run_id = ?";
    Ok(with_pool!(db, pool => {
        sqlx::query_scalar::<_, String>(SQL).bind(run_id).fetch_optional(pool).await
    })?)
}
