//! The lock wave's finds from many concurrent workers, combined into few searches: one search
//! per base DN finds up to [`NAMES_PER_SEARCH`] accounts instead of one each.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::directory::{Directory, User, UserName, UserRef, NAMES_PER_SEARCH};
use crate::error::Error;

/// A name queued for the next search, and where its result goes (`None`: look it up alone).
type Waiting = (UserName, oneshot::Sender<Option<Result<User, Error>>>);

/// Flat combining, as [`MemberAdds`](super::batch::MemberAdds) does for the MFA group but
/// without waiting for a fuller batch: a worker queues its name, then waits for its entry or
/// the turn, whichever comes first; whoever gets the turn looks up everything queued by then
/// ([`Directory::find_names`], on its own connection) and hands each worker its entry. A
/// worker alone is looked up alone, at once, holding the turn too; while a search is in
/// flight, the next names queue up behind it.
///
/// The result is always [`Directory::find_user`]'s: a name the batch cannot answer with
/// certainty (not found, several entries, a search that failed, a worker whose turn stopped)
/// is looked up alone by its own worker, on its own connection — where a lost connection
/// is retried as before.
#[derive(Default)]
pub(super) struct Finds {
    queue: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
}

impl Finds {
    /// The entry `user` names, as [`Directory::find_user`] finds it — possibly in one search
    /// with other workers' names.
    pub(super) async fn find(&self, dir: &Directory, user: &UserRef) -> Result<User, Error> {
        let name = match user {
            UserRef::Name(n) if dir.finds_in_batches(n) => n.clone(),
            _ => return dir.find_user(user).await,
        };
        let (tx, mut rx) = oneshot::channel();
        self.lock_queue().push((name, tx));
        // A name a turn took along is done when its entry is in: no turn of its own. Holding
        // the turn, this worker's name is still queued (or an earlier turn took it along):
        // a turn hands out its entries before it ends.
        let found = tokio::select! {
            biased;
            r = &mut rx => r.ok().flatten(),
            turn = self.turn.lock() => {
                let batch = std::mem::take(&mut *self.lock_queue());
                self.look_up(dir, batch).await;
                drop(turn);
                rx.await.ok().flatten()
            }
        };
        match found {
            Some(r) => r,
            None => dir.find_user(user).await,
        }
    }

    /// Looks up `batch`, [`NAMES_PER_SEARCH`] names per search, and hands out the results
    /// (a name alone: [`Directory::find_user`]'s own).
    async fn look_up(&self, dir: &Directory, batch: Vec<Waiting>) {
        if batch.len() < 2 {
            for (name, tx) in batch {
                let _ = tx.send(Some(dir.find_user(&UserRef::Name(name)).await));
            }
            return;
        }
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            let (names, senders): (Vec<UserName>, Vec<_>) = batch.by_ref().take(NAMES_PER_SEARCH).unzip();
            let found = match dir.find_names(&names).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!(
                        names = names.len(),
                        error = e.message(),
                        "batched find failed; each name is looked up alone"
                    );
                    vec![None; names.len()]
                }
            };
            tracing::trace!(
                names = names.len(),
                found = found.iter().filter(|f| f.is_some()).count(),
                "batched find"
            );
            for (tx, u) in senders.into_iter().zip(found) {
                // a worker that is gone has nobody to tell
                let _ = tx.send(u.map(Ok));
            }
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}
