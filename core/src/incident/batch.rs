//! MFA-group adds from many concurrent workers, combined into few modifies: the group entry
//! (thousands of members) is rewritten once per batch instead of once per account.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::place::{Parked, Place};
use super::pool::connection_lost;
use crate::directory::{Change, Directory, User, MEMBERS_PER_MODIFY};
use crate::error::{Error, ErrorKind};
use crate::mfa::Mfa;

/// The shortest wait of a turn for more accounts while others are working.
const LINGER_MIN: Duration = Duration::from_millis(100);
/// The longest.
const LINGER_MAX: Duration = Duration::from_secs(1);
/// A turn waits this many times as long as the last group modify took (within the bounds
/// above): the group's modifies then take about 1/25 of the server's time or less, however
/// large the group has grown.
const LINGER_PER_MODIFY: u32 = 25;

/// An account queued for the group: the connection of the worker that queued it, whether it
/// kept its place among those in flight (in a run, working alone when it came), or its ticket
/// as a parked account.
type Waiting = (
    User,
    Directory,
    bool,
    Option<Parked>,
    oneshot::Sender<Result<Change, Error>>,
);

/// Flat combining, without a task of its own: a worker queues its account, then waits for
/// its result or its turn to send, whichever comes first; whoever gets the turn sends
/// everything queued by then as one [`Directory::add_to_mfa_group_many`] and hands each worker its
/// own result (those workers are done then, without a turn of their own). A worker alone sends
/// its account alone, at once; while a modify is in flight, the next ones queue up behind it.
///
/// While other accounts are working (their reset or revocation under way), the turn waits for
/// a fuller batch: slapd rewrites the whole group entry on every modify, so one add costs in
/// proportion to the members already there (16 ms at 60 000 members on the lab, 0.7 ms at
/// 1000; `docs/FACTS.md`), and batches of the few accounts that happen to arrive together made
/// the group modifies half of slapd's work in a 60 000-account run. The wait is
/// [`LINGER_PER_MODIFY`] times the last modify's duration, between [`LINGER_MIN`] and
/// [`LINGER_MAX`]. A waiting account gives its place among those in flight to the next
/// account ([`Place::park`]), so the others' resets go on at full width meanwhile (when the
/// waiting accounts kept their places, the resets in flight dwindled during every wait and
/// the server's CPU sat idle 6–8 % of a 6000-account run). The wait ends early when nobody
/// else is working, when [`MEMBERS_PER_MODIFY`] are queued, or when as many accounts are
/// parked as the run has places (the next ones would keep theirs, and the resets in flight
/// dwindle again: seen, a 6000-account run took 1.6 times as long).
#[derive(Default)]
pub(super) struct MemberAdds {
    queue: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
    /// Queued accounts that kept their place.
    holding: AtomicUsize,
    /// How long the last group modify took, microseconds.
    last_modify_us: AtomicU64,
}

impl MemberAdds {
    /// Puts `user` in the MFA-required group and, with an MFA store, drops its enrolments —
    /// possibly in one modify and one store transaction with other workers' accounts; the
    /// result is this account's own. With the account's `place` in a run, it waits for the
    /// accounts still working, parked.
    pub(super) async fn require_mfa(
        &self,
        dir: &Directory,
        mfa: Option<&Arc<Mfa>>,
        user: &User,
        mut place: Option<&mut Place>,
    ) -> Result<Change, Error> {
        let (tx, mut rx) = oneshot::channel();
        let parked = place.as_deref_mut().and_then(Place::park);
        let kept = place.is_some() && parked.is_none();
        if kept {
            self.holding.fetch_add(1, Ordering::SeqCst);
        }
        self.lock_queue()
            .push((user.clone(), dir.clone(), kept, parked, tx));
        {
            // An account a turn took along is done when its result is in: it does not wait
            // for a turn of its own (hundreds so waited, done, behind one another's turns).
            // Holding the turn, its account is still queued: a turn sends its results before
            // it ends.
            let _turn = tokio::select! {
                biased;
                r = &mut rx => return r.unwrap_or_else(|_| Err(sender_gone())),
                turn = self.turn.lock() => turn,
            };
            if let Some(place) = place.as_deref() {
                let started = Instant::now();
                let linger = self.linger();
                loop {
                    let queued = self.lock_queue().len();
                    // nothing queued: an earlier turn took this account along; nobody working
                    // but the queued accounts that kept their place: no add is on its way;
                    // no more may park: the next ones would keep their places, and the resets
                    // in flight dwindle
                    if queued == 0
                        || queued >= MEMBERS_PER_MODIFY
                        || place.working() <= self.holding.load(Ordering::SeqCst)
                        || place.parking_full()
                        || started.elapsed() >= linger
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
                for (u, d, kept, parked, tx) in batch {
                    if kept {
                        self.holding.fetch_sub(1, Ordering::SeqCst);
                    }
                    // its wait for a fuller batch is over
                    drop(parked);
                    users.push(u);
                    dirs.push(d);
                    senders.push(tx);
                }
                let sending = Instant::now();
                let mut results = dir.add_to_mfa_group_many(&users).await;
                let took = u64::try_from(sending.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.last_modify_us.store(took, Ordering::Relaxed);
                tracing::debug!(members = users.len(), us = took, "MFA group add");
                // This turn's connection was lost: an account whose worker has another one (a
                // worker that reconnected) is sent again on its own, so that its retry is not
                // spent on a dead connection.
                for (i, r) in results.iter_mut().enumerate() {
                    if r.as_ref().is_err_and(connection_lost) && !dirs[i].same_connection(dir) {
                        if let Some(again) = dirs[i].add_to_mfa_group_many(&users[i..=i]).await.pop() {
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
        rx.await.unwrap_or_else(|_| Err(sender_gone()))
    }

    /// How long a turn waits for fuller batches, from the last group modify's duration.
    fn linger(&self) -> Duration {
        let last = Duration::from_micros(self.last_modify_us.load(Ordering::Relaxed));
        last.saturating_mul(LINGER_PER_MODIFY)
            .clamp(LINGER_MIN, LINGER_MAX)
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The error of an account whose turn's worker stopped before it sent the result.
fn sender_gone() -> Error {
    Error::new(
        ErrorKind::Internal,
        "the worker sending this MFA-group add stopped before it finished",
    )
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
