//! The commit protocol: a manifest line appended so that no writer's line
//! is lost, a retried write is recognised by its commit id, and a job
//! whose lease may be another's commits nothing.

use super::manifest::{self, Manifest, ManifestEntry};
use super::place::ManifestRead;
use super::{COMMIT_ATTEMPTS, Committed, MANIFEST, StoreError, WatchlistStore, remote};

/// One commit attempt whose outcome is not known yet: its commit id, the
/// manifest version it was conditional on, what it placed.
struct Attempt<T> {
    id: String,
    base: Option<remote::Version>,
    value: T,
}

impl WatchlistStore {
    /// Append the entry `decide` makes of the current manifest, so that no
    /// other writer's line is lost and `decide` saw every line before its
    /// own: under the manifest lock on a folder; by compare-and-swap on a
    /// bucket, where a lost race calls `undo` with what `decide` made and
    /// decides again on the new manifest. `decide` answers `None` when a
    /// name it wanted was taken meanwhile: read again, decide again.
    ///
    /// On a bucket a refusal is not proof of a lost race: the client
    /// retries a put whose reply was lost (a 5xx, a dropped connection),
    /// and when the first try was applied the retry is refused. So each
    /// attempt carries a fresh commit id, and after a refusal or an error
    /// the manifest is read again: an attempt whose id is there committed
    /// (its value is returned, never undone); an attempt whose id is absent
    /// is undone only once the manifest moved past the version it was
    /// conditional on (see `settle`). A write that keeps failing is given
    /// up after a few tries with its error.
    pub(super) fn commit<T>(
        &self,
        mut decide: impl FnMut(&Manifest) -> anyhow::Result<Option<(ManifestEntry, T)>>,
        mut undo: impl FnMut(&T),
    ) -> anyhow::Result<Committed<T>> {
        const FAILED_WRITES: usize = 3;
        let guard = self.lock_manifest()?;
        // Attempts not known to have landed.
        let mut pending: Vec<Attempt<T>> = Vec::new();
        let mut failures = Vec::new();
        for attempt in 0..COMMIT_ATTEMPTS {
            let read = self.read_manifest()?;
            if let Some(value) = self.settle(&read, &mut pending, &mut undo) {
                return Ok(Committed { value, _guard: guard });
            }
            if failures.len() >= FAILED_WRITES {
                break;
            }
            let Some((entry, value)) = decide(&read.manifest)? else {
                continue;
            };
            self.check_fences()?;
            let id = manifest::new_commit_id();
            match self.place.append_manifest(&read, &entry, &id, self.commit_deadline()) {
                Ok(true) => {
                    // Earlier attempts were conditional on older manifests.
                    for lost in pending.drain(..) {
                        undo(&lost.value);
                    }
                    return Ok(Committed { value, _guard: guard });
                }
                Ok(false) => tracing::info!(
                    "{}: another writer committed first (or a retried write of ours was refused); reading the \
                     manifest again",
                    self.watchlist
                ),
                // On a folder the lock is held and nothing retries: the error
                // is final. What was placed stays for `verify` (the line may
                // have landed before a failed sync).
                Err(err) if self.place.local_dir().is_some() => {
                    return Err(self.io_error(MANIFEST)(err).into());
                }
                Err(err) => {
                    tracing::warn!(
                        "{}: writing the manifest failed ({err}); reading it again to see whether it landed",
                        self.watchlist
                    );
                    failures.push(err);
                }
            }
            pending.push(Attempt {
                id,
                base: read.version.clone(),
                value,
            });
            // Writers that lost together should not collide again in step.
            std::thread::sleep(std::time::Duration::from_millis(
                (5 << attempt.min(5)) + u64::from(std::process::id() % 7 + attempt % 3),
            ));
        }
        // Given up: attempts still uncertain (their manifest unchanged, so
        // a delayed write may yet land) are left alone: orphans for
        // `verify` at worst, never a line naming a deleted object.
        match failures.pop() {
            Some(err) => Err(self.io_error(MANIFEST)(err).into()),
            None => Err(StoreError::Contended(self.watchlist.clone()).into()),
        }
    }

    /// After a refused or failed manifest write, on the manifest as read
    /// now: the pending attempt whose commit id it holds landed (its value);
    /// an attempt absent from it is lost for sure only when the manifest
    /// changed since the version it was conditional on (then it can never
    /// land) and is undone; one whose version is still current may be a
    /// delayed write and stays pending.
    fn settle<T>(&self, read: &ManifestRead, pending: &mut Vec<Attempt<T>>, undo: &mut impl FnMut(&T)) -> Option<T> {
        if let Some(i) = pending.iter().position(|a| read.manifest.has_commit(&a.id)) {
            tracing::info!("{}: the manifest write whose reply was lost had landed", self.watchlist);
            let value = pending.swap_remove(i).value;
            // The others were conditional on versions this line replaced.
            for lost in pending.drain(..) {
                undo(&lost.value);
            }
            return Some(value);
        }
        pending.retain(|a| {
            let uncertain = a.base == read.version;
            if !uncertain {
                undo(&a.value);
            }
            uncertain
        });
        None
    }

    /// Refuse to commit once a job lease of this store may be another job's.
    fn check_fences(&self) -> Result<(), StoreError> {
        let fences = self.fences.lock().unwrap_or_else(|p| p.into_inner());
        for (_, fence) in fences.iter().filter(|(w, _)| *w == self.watchlist) {
            fence.check().map_err(StoreError::LeaseLost)?;
        }
        Ok(())
    }

    /// How long the manifest write may take: what is left of the shortest
    /// live fence of this watchlist (none without a lease).
    fn commit_deadline(&self) -> Option<std::time::Duration> {
        let fences = self.fences.lock().unwrap_or_else(|p| p.into_inner());
        fences
            .iter()
            .filter(|(w, _)| *w == self.watchlist)
            .filter_map(|(_, f)| f.remaining())
            .min()
    }
}
