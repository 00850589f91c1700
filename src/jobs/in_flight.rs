//! Database writes running while a job prepares the next ones: a job's
//! rounds are read and computed on its own cores while the database
//! server writes the previous round.

use std::collections::VecDeque;
use std::future::Future;

use tokio::task::JoinHandle;

/// Writes in flight, at most `limit`, finished in the order they started.
pub struct InFlight<T> {
    limit: usize,
    running: VecDeque<JoinHandle<anyhow::Result<T>>>,
}

impl<T: Send + 'static> InFlight<T> {
    pub fn new(limit: usize) -> InFlight<T> {
        InFlight {
            limit: limit.max(1),
            running: VecDeque::new(),
        }
    }

    /// Start `write`; when `limit` writes are already running, the oldest
    /// is waited for first, and its output returned.
    pub async fn start(
        &mut self,
        write: impl Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<Option<T>> {
        let oldest = match self.running.len() >= self.limit {
            true => match self.running.pop_front() {
                Some(handle) => Some(handle.await??),
                None => None,
            },
            false => None,
        };
        self.running.push_back(tokio::spawn(write));
        Ok(oldest)
    }

    /// Wait for every write still running, in order; the outputs, or the
    /// first error once all have ended (no write is left running
    /// unwatched, whatever the outcome: a caller returning an error calls
    /// this first, so that its lock and audit row outlive its writes).
    pub async fn finish(self) -> anyhow::Result<Vec<T>> {
        let mut outputs = Vec::with_capacity(self.running.len());
        let mut first_error = None;
        for handle in self.running {
            match handle.await {
                Ok(Ok(output)) => outputs.push(output),
                Ok(Err(err)) => {
                    first_error.get_or_insert(err);
                }
                Err(join) => {
                    first_error.get_or_insert(join.into());
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(outputs),
        }
    }
}
