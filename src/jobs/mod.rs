//! One module per binary's job. A job takes a [`crate::context::Context`]
//! and the job's own options, does the work, logs one summary line and
//! records itself in `job_runs` (through [`audited`]).

use std::future::Future;

use crate::context::Context;
use crate::db::job_runs::{self, RunStatus};

/// Run `work` as one audited run: a `job_runs` row before it, its status
/// and one-line summary after it (the summary is also the run's last log
/// line). A failure is recorded with its message and returned. Called with
/// the job's lock held, so an earlier run of the job still marked
/// `running` is dead: it is marked abandoned first.
pub async fn audited<T, W, S>(ctx: &Context, job: &str, work: W, summarize: S) -> anyhow::Result<T>
where
    W: Future<Output = anyhow::Result<T>>,
    S: FnOnce(&T) -> (RunStatus, String),
{
    job_runs::start(&ctx.db, &ctx.run_id, job, &ctx.settings.watchlist, ctx.settings.as_of).await?;
    crate::crashpoint::reach("job_runs.started");
    let dead = job_runs::abandon_unfinished(&ctx.db, job, &ctx.settings.watchlist, &ctx.run_id).await?;
    if !dead.is_empty() {
        tracing::warn!(
            "{job}: earlier run(s) {} ended without finishing: marked abandoned",
            dead.join(", ")
        );
    }
    let result = work.await;
    let (status, message) = match &result {
        Ok(value) => summarize(value),
        Err(err) => (RunStatus::Failed, format!("{err:#}")),
    };
    job_runs::finish(&ctx.db, &ctx.run_id, status, &message).await?;
    if result.is_ok() {
        tracing::info!("{message}");
    }
    result
}

/// Hand freed memory back to the OS: glibc keeps freed heap pages mapped,
/// which would otherwise stay in the process's resident size through the
/// long training stages.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages; no pointers change.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The symbols of `shard` among `symbols` (all of them without one),
/// with a line saying how many.
pub(crate) fn shard_symbols(
    shard: Option<crate::shard::Shard>,
    symbols: Vec<crate::symbols::Symbol>,
) -> Vec<crate::symbols::Symbol> {
    let Some(shard) = shard else { return symbols };
    let total = symbols.len();
    let mine = shard.select(symbols);
    tracing::info!("shard {shard}: {} of the {total} symbol(s)", mine.len());
    mine
}

/// A job's name for its lock and its `job_runs` rows: one per shard.
pub(crate) fn job_name(job: &str, shard: Option<crate::shard::Shard>) -> String {
    shard.map_or_else(|| job.to_string(), |s| s.job_name(job))
}

pub mod artifacts;
pub mod bootstrap;
pub mod dataset;
pub mod fetch;
pub mod import;
pub mod in_flight;
pub mod incremental;
pub mod ingest;
pub mod learnable;
pub mod merge;
pub mod monitor;
pub mod production;
pub mod recent;
pub mod score;
pub mod ta_run;
