//! MFA-group adds from many concurrent workers, combined into few modifies: the group entry
//! (thousands of members) is rewritten once per batch instead of once per account.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::pool::connection_lost;
use super::run::Crowd;
use crate::directory::{Change, Directory, User, MEMBERS_PER_MODIFY};
use crate::error::{Error, ErrorKind};
use crate::mfa::Mfa;

/// How long a turn waits for more accounts while others are on their way.
const LINGER: Duration = Duration::from_millis(100);

/// An account queued for the group, with the connection of the worker that queued it.
type Waiting = (User, Directory, oneshot::Sender<Result<Change, Error>>);

/// Flat combining, without a task of its own: a worker queues its account, then waits for
/// its turn to send; whoever gets the turn sends everything queued by then as one
/// [`Directory::require_mfa_many`] and hands each worker its own result. A worker alone sends
/// its account alone, at once; while a modify is in flight, the next ones queue up behind it.
///
/// While other accounts in flight are on their way to it (their reset or revocation under
/// way), the turn waits up to [`LINGER`] for a fuller batch: slapd rewrites the whole group
/// entry on every modify, so one add costs in proportion to the members already there (16 ms
/// at 60 000 members on the lab, 0.7 ms at 1000; `docs/FACTS.md`), and batches of the few
/// accounts that happen to arrive together made the group modifies half of slapd's work in a
/// 60 000-account run. The waiting accounts keep their place among those in flight (the
/// run's concurrency means what it says); the others' resets go on meanwhile.
#[derive(Default)]
pub(super) struct MemberAdds {
    queue: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
}

impl MemberAdds {
    /// Puts `user` in the MFA-required group and, with an MFA store, drops its enrolments —
    /// possibly in one modify and one store transaction with other workers' accounts; the
    /// result is this account's own.
    pub(super) async fn require_mfa(
        &self,
        dir: &Directory,
        mfa: Option<&Arc<Mfa>>,
        user: &User,
        crowd: Option<&Crowd>,
    ) -> Result<Change, Error> {
        let (tx, rx) = oneshot::channel();
        self.lock_queue().push((user.clone(), dir.clone(), tx));
        {
            let _turn = self.turn.lock().await;
            if let Some(crowd) = crowd {
                let started = Instant::now();
                loop {
                    let queued = self.lock_queue().len();
                    // nothing queued: an earlier turn took this account along
                    if queued == 0
                        || queued >= MEMBERS_PER_MODIFY
                        || !crowd.others_on_their_way(queued)
                        || started.elapsed() >= LINGER
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            // empty when an earlier turn took this account along
            let batch = std::mem::take(&mut *self.lock_queue());
            if !batch.is_empty() {
                let mut users = Vec::with_capacity(batch.len());
                let mut dirs = Vec::with_capacity(batch.len());
                let mut senders = Vec::with_capacity(batch.len());
                for (u, d, tx) in batch {
                    users.push(u);
                    dirs.push(d);
                    senders.push(tx);
                }
                tracing::debug!(members = users.len(), "MFA group add");
                let mut results = dir.require_mfa_many(&users).await;
                // This turn's connection was lost: an account whose worker has another one (a
                // worker that reconnected) is sent again on its own, so that its retry is not
                // spent on a dead connection.
                for (i, r) in results.iter_mut().enumerate() {
                    if r.as_ref().is_err_and(connection_lost) && !dirs[i].same_connection(dir) {
                        if let Some(again) = dirs[i].require_mfa_many(&users[i..=i]).await.pop() {
                            *r = again;
                        }
                    }
                }
                if let Some(mfa) = mfa {
                    drop_enrolments(dir, mfa, &users, &mut results).await;
                }
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

/// The enrolments of the accounts now in the group (`Ok` results), dropped in one store
/// transaction; when that fails, each of those accounts gets the error (the group membership
/// stays, as with one account: the step failed and runs again on resume).
async fn drop_enrolments(
    dir: &Directory,
    mfa: &Arc<Mfa>,
    users: &[User],
    results: &mut [Result<Change, Error>],
) {
    let mut logins = Vec::new();
    let mut at = Vec::new();
    for (i, (u, r)) in users.iter().zip(results.iter_mut()).enumerate() {
        if r.is_ok() {
            match dir.login_name(u).await {
                Ok(l) => {
                    logins.push(l);
                    at.push(i);
                }
                Err(e) => *r = Err(e),
            }
        }
    }
    if logins.is_empty() {
        return;
    }
    let mfa = mfa.clone();
    let dropped = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = logins.iter().map(String::as_str).collect();
        mfa.reset_many(&names).map(|_| ())
    })
    .await
    .unwrap_or_else(|e| Err(Error::new(ErrorKind::Internal, format!("MFA task failed: {e}"))));
    if let Err(e) = dropped {
        for i in at {
            results[i] = Err(e.clone());
        }
    }
}
