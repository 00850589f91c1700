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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn after(ms: u64, output: anyhow::Result<u64>) -> anyhow::Result<u64> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        output
    }

    #[tokio::test]
    async fn writes_finish_in_the_order_they_started() {
        let mut writes = InFlight::new(2);
        assert!(writes.start(after(30, Ok(1))).await.unwrap().is_none());
        assert!(writes.start(after(1, Ok(2))).await.unwrap().is_none());
        // Full: the oldest (the slower one) is waited for.
        assert_eq!(writes.start(after(1, Ok(3))).await.unwrap(), Some(1));
        assert_eq!(writes.finish().await.unwrap(), [2, 3]);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_after_every_other_has_ended() {
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ended.clone();
        let mut writes = InFlight::new(2);
        writes.start(after(1, Err(anyhow::anyhow!("disk full")))).await.unwrap();
        writes
            .start(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(7)
            })
            .await
            .unwrap();
        let err = writes.finish().await.unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert!(
            ended.load(std::sync::atomic::Ordering::SeqCst),
            "the slower write was awaited"
        );
    }
}
