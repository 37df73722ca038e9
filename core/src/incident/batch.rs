//! MFA-group adds from many concurrent workers, combined into few modifies: the group entry
//! (thousands of members) is rewritten once per batch instead of once per account.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::directory::{Change, Directory, User};
use crate::error::{Error, ErrorKind};

type Waiting = (User, oneshot::Sender<Result<Change, Error>>);

/// Flat combining, without a task of its own: a worker queues its account, then waits for
/// its turn to send; whoever gets the turn sends everything queued by then as one
/// [`Directory::require_mfa_many`] and hands each worker its own result. A worker alone sends
/// its account alone, at once; while a modify is in flight, the next ones queue up behind it.
#[derive(Default)]
pub(super) struct MemberAdds {
    queue: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
}

impl MemberAdds {
    /// Puts `user` in the MFA-required group, possibly in one modify with other workers'
    /// accounts; the result is this account's own.
    pub(super) async fn require_mfa(&self, dir: &Directory, user: &User) -> Result<Change, Error> {
        let (tx, rx) = oneshot::channel();
        self.lock_queue().push((user.clone(), tx));
        {
            let _turn = self.turn.lock().await;
            // empty when an earlier turn took this account along
            let batch = std::mem::take(&mut *self.lock_queue());
            if !batch.is_empty() {
                let (users, senders): (Vec<User>, Vec<_>) = batch.into_iter().unzip();
                tracing::debug!(members = users.len(), "MFA group add");
                let results = dir.require_mfa_many(&users).await;
                for (tx, r) in senders.into_iter().zip(results) {
                    // a worker that is gone has nobody to tell
                    let _ = tx.send(r);
                }
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Internal,
                "the worker sending this MFA-group add stopped before it finished",
            ))
        })
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}
