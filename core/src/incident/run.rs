//! The run: users in parallel (bounded), each through the containment steps with an intent
//! journaled before and an outcome after every change.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinHandle};

use super::place::{Going, Parking, Place};
use super::pool::connection_lost;
use super::report::{ContainReport, Progress, UserReport};
use super::steps::Steps;
use super::{ContainOptions, Contained, EarlierSteps, Responder};
use crate::directory::{Directory, Flavour, ProtectedMembers, User, UserRef};
use crate::error::{Error, ErrorKind};
use crate::journal::{Event, Journal, Step};

/// Users finished, and of those failed (for the progress callback).
#[derive(Default)]
struct Counters {
    finished: AtomicUsize,
    failed: AtomicUsize,
}

/// One account of a run: the name as given, and the steps an earlier run of the same
/// incident finished (a resume's).
pub(super) struct Work {
    pub(super) user: String,
    pub(super) earlier: EarlierSteps,
}

/// An account after wave 1: its report so far, and what wave 2 needs to go on (nothing when
/// it stopped: refused, cancelled, or the journal failed).
struct Locked {
    report: UserReport,
    going: Option<Going>,
    earlier: EarlierSteps,
}

/// Which account a wave-2 task works on: its place in the report, and its name.
struct Slot {
    index: usize,
    user: String,
}

/// Moves out, in order, the outputs of the tasks at the front of `tasks` that have finished:
/// a finished task's output otherwise waits in the runtime's memory, with the task, until
/// the run collects it (when both waves collected only after the last spawn, a 6000-account
/// run peaked at 49 MiB instead of 40).
async fn take_finished<K, T>(
    tasks: &mut VecDeque<(K, JoinHandle<T>)>,
    mut put: impl FnMut(K, Result<T, JoinError>),
) {
    while tasks.front().is_some_and(|(_, t)| t.is_finished()) {
        if let Some((k, t)) = tasks.pop_front() {
            put(k, t.await);
        }
    }
}

/// The report of a user whose worker panicked: that user's failure, not the run's.
fn worker_failed(user: &str, e: &JoinError) -> UserReport {
    let mut r = UserReport::new(user);
    r.refused = Some(Error::new(ErrorKind::Internal, format!("worker failed: {e}")));
    r
}

impl Responder {
    pub(super) async fn run(
        &self,
        incident: &str,
        work: Vec<Work>,
        opts: &ContainOptions,
        contained: Arc<HashMap<String, Contained>>,
    ) -> Result<ContainReport, Error> {
        let journal = self.journal_or_err()?;
        let expected = opts.checked_steps()?.len();
        let total = work.len();
        tracing::info!(incident, users = total, "run starts");
        let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let counters = Arc::new(Counters::default());
        let protected = self
            .protected_snapshot(total, opts.allow_protected)
            .await
            .map(Arc::new);
        // The progress callback, once per user as soon as the user is finished (inside that
        // user's worker: a panicking callback fails that user only).
        let finished = move |opts: &ContainOptions, counters: &Counters, report: &UserReport| {
            if let Some(p) = &opts.progress {
                let finished = counters.finished.fetch_add(1, Ordering::SeqCst) + 1;
                let failed = counters
                    .failed
                    .fetch_add(usize::from(!report.complete()), Ordering::SeqCst)
                    + usize::from(!report.complete());
                p(&Progress {
                    total,
                    finished,
                    failed,
                    user: report.user.clone(),
                });
            }
        };
        // Wave 1: every account is found, checked and locked first — the attacker is out of
        // all of them as soon as possible; the slower steps (the reset's hashing) come after.
        let mut first = VecDeque::new();
        let mut locked = Vec::with_capacity(total);
        let lock_result = |name: String, r: Result<Locked, JoinError>| match r {
            Ok(l) => l,
            Err(e) => Locked {
                report: worker_failed(&name, &e),
                going: None,
                earlier: EarlierSteps::new(),
            },
        };
        for (i, Work { user, earlier }) in work.into_iter().enumerate() {
            let (me, sem, opts) = (self.clone(), sem.clone(), opts.clone());
            let protected = protected.clone();
            let incident = incident.to_owned();
            let name = user.clone();
            // The permit is taken before the task exists, and the future is boxed: a finished
            // task keeps only its output until collected, not the whole future's state
            // (some KiB per user: 6000 finished tasks held ~70 MiB).
            let permit = sem.acquire_owned().await.ok();
            let task = tokio::spawn(Box::pin(async move {
                let _permit = permit;
                let (report, going) = me
                    .lock_wave(&incident, i, &user, &earlier, &opts, protected.as_deref())
                    .await;
                Locked {
                    report,
                    going,
                    earlier,
                }
            }));
            first.push_back((name, task));
            take_finished(&mut first, |name, r| locked.push(lock_result(name, r))).await;
        }
        // All of wave 1 ends before any of wave 2 starts.
        for (name, t) in first {
            locked.push(lock_result(name, t.await));
        }
        // Wave 2 takes first the accounts that hold a live session now — the attacker's, most
        // likely: those sessions close with the first resets, not when the account's turn in
        // the list comes. The step order of each account stays; the report keeps the order the
        // users were given in.
        let live = self.live_logins(total, opts).await;
        let mut order: Vec<usize> = (0..locked.len()).collect();
        if !live.is_empty() {
            order.sort_by_key(|&i| {
                !locked[i]
                    .going
                    .as_ref()
                    .and_then(|g| g.u.login_known())
                    .is_some_and(|l| live.contains(&l.to_lowercase()))
            });
        }
        let mut locked: Vec<Option<_>> = locked.into_iter().map(Some).collect();
        let parked = Parking::default();
        let mut second = VecDeque::new();
        let mut users: Vec<Option<UserReport>> = (0..total).map(|_| None).collect();
        // A panic in one user's worker is that user's failure, not the whole run's.
        let user_result = |slot: Slot, r: Result<UserReport, JoinError>| {
            (
                slot.index,
                r.unwrap_or_else(|e| worker_failed(&slot.user, &e).finish(expected)),
            )
        };
        for i in order {
            let Some(Locked {
                report,
                going,
                earlier,
            }) = locked[i].take()
            else {
                continue;
            };
            // Wave 2: the other steps, as permits free up (a user the lock wave stopped has
            // nothing more to run).
            let (me, sem, opts, contained, counters) = (
                self.clone(),
                sem.clone(),
                opts.clone(),
                contained.clone(),
                counters.clone(),
            );
            let incident = incident.to_owned();
            let place = match going {
                Some(_) => Some(Place::take(&sem, opts.concurrency.max(1), &parked).await),
                None => None,
            };
            second.push_back((
                Slot {
                    index: i,
                    user: report.user.clone(),
                },
                tokio::spawn(Box::pin(async move {
                    let (report, going) = match going {
                        Some(mut going) => {
                            going.place = place;
                            let report = me
                                .finish_user(&incident, report, &mut going, &earlier, &opts, &contained)
                                .await;
                            (report, Some(going))
                        }
                        None => (report, None),
                    };
                    let report = report.finish(expected);
                    finished(&opts, &counters, &report);
                    // the place is given back after the progress event (a callback that
                    // cancels stops the next account before it starts)
                    drop(going);
                    report
                })),
            ));
            take_finished(&mut second, |k, r| {
                let (i, report) = user_result(k, r);
                users[i] = Some(report);
            })
            .await;
        }
        // every account's state moved into its task: the slots go before the last reports
        drop(locked);
        for (k, task) in second {
            let (i, report) = user_result(k, task.await);
            users[i] = Some(report);
        }
        let mut users: Vec<UserReport> = users.into_iter().flatten().collect();
        let mut run_notes = Vec::new();
        if let Some(since) = opts.changes_since {
            self.sent_mail(&mut users, since, &mut run_notes).await;
            // what was found goes in the journal too: the incident record is built from it
            let findings: Vec<Event> = users
                .iter()
                .filter(|u| u.changes.is_some() || u.changes_error.is_some() || u.sent_mail.is_some())
                .map(|u| Event::Findings {
                    user: u.user.clone(),
                    dn: u.dn.clone().unwrap_or_default(),
                    changes: u.changes.clone(),
                    changes_error: u.changes_error.clone(),
                    sent_mail: u.sent_mail.clone(),
                })
                .collect();
            if !findings.is_empty() {
                journal.append(incident, findings).await?;
            }
        }
        let done = users.iter().filter(|u| u.complete()).count();
        tracing::info!(incident, done, failed = users.len() - done, "run ends");
        // notices about what stays valid concern users this run acted on
        let mut not_revoked = if users.iter().any(|u| u.refused.is_none() && !u.steps.is_empty()) {
            self.not_revoked()
        } else {
            Vec::new()
        };
        let failed = users.len() - done;
        let cancelled = opts.cancelled();
        // a replica that has not seen the lock still lets the stolen password in
        let replicas = if cancelled {
            Vec::new()
        } else {
            self.check_replicas(incident, &users).await?
        };
        for r in replicas.iter().filter(|r| !r.pending.is_empty()) {
            not_revoked.push(format!(
                "contained on the primary, pending on {}{}: {}",
                r.url,
                r.error
                    .as_ref()
                    .map(|e| format!(" (not reachable: {})", e.message()))
                    .unwrap_or_default(),
                r.pending.join(", ")
            ));
        }
        // The attacker's sessions from the range, whoever they belong to: after the accounts'
        // steps, so that a kicked client reconnecting meets locked accounts.
        let address_kicks = match &opts.kick_from {
            Some(range) if !cancelled => self.kick_range(incident, range).await?,
            _ => Vec::new(),
        };
        // Who must know: after the directory steps; the outcomes never change the run's.
        let notifications = if !cancelled && self.notifies() {
            self.notify_run(incident, &users, &not_revoked).await?
        } else {
            Vec::new()
        };
        if !cancelled {
            journal
                .append(incident, vec![Event::IncidentEnd { done, failed }])
                .await?;
        }
        let head = journal.head();
        Ok(ContainReport {
            incident: incident.to_owned(),
            users,
            done,
            failed,
            cancelled,
            not_revoked,
            notes: [self.journal_notes(), run_notes].concat(),
            password_handover: opts.sink.describe(),
            journal: journal.location().to_string(),
            journal_head: head,
            pivot: None,
            address_kicks,
            notifications,
            replicas,
        })
    }

    /// The logins holding a live session now (lower-cased), from every revoker that lists
    /// them at once — only for runs of several accounts that revoke. A revoker that cannot
    /// answer is left out: this only orders the work.
    async fn live_logins(&self, total: usize, opts: &ContainOptions) -> HashSet<String> {
        let mut out = HashSet::new();
        let revokes = opts
            .checked_steps()
            .is_ok_and(|s| s.contains(&Step::RevokeSessions));
        if total < 2 || !revokes || opts.cancelled() {
            return out;
        }
        for r in &self.inner.revokers {
            match r.live_logins().await {
                Ok(Some(logins)) => out.extend(logins.into_iter().map(|l| l.to_lowercase())),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(revoker = r.name(), error = %e, "live sessions not listed: no priority for them");
                }
            }
        }
        out
    }

    /// A torn last record cut off when the journal was opened, said once.
    fn journal_notes(&self) -> Vec<String> {
        match self.inner.journal.as_ref().and_then(Journal::torn_tail) {
            Some(t) if !self.inner.torn_reported.swap(true, Ordering::SeqCst) => vec![format!(
                "the journal's last record (line {}) had been cut by a crash in the middle of its write; \
                 it was removed when the journal was opened, and its step ran again",
                t.line
            )],
            _ => Vec::new(),
        }
    }

    fn not_revoked(&self) -> Vec<String> {
        let mut v = vec!["LDAP connections already bound as the user stay open until they end".to_owned()];
        if self.inner.pool.first().flavour() == Flavour::ActiveDirectory {
            v.push(
                "Kerberos service tickets already issued stay valid until they expire (10 h by default); the \
                 attacker's TGT cannot get new ones while the account is disabled or must change its password \
                 — and works again if the account is released before it expires"
                    .into(),
            );
        }
        if self.inner.revokers.is_empty() {
            v.push("no revokers configured: live sessions (IMAP, apps) were NOT revoked".into());
        }
        if self.inner.cfg.mail.is_some() && self.inner.cfg.outbound.is_none() {
            v.push(super::mail::SMTP_NOT_REFUSED.into());
        }
        v
    }

    /// The protected groups' members, read once for a run over several accounts (`None`: one
    /// account, the rail is off, or the read failed — then each account is checked on its
    /// own, and a failure is that account's, as without the snapshot).
    pub(super) async fn protected_snapshot(
        &self,
        accounts: usize,
        allow_protected: bool,
    ) -> Option<ProtectedMembers> {
        if allow_protected || accounts < 2 {
            return None;
        }
        match self.inner.pool.first().protected_members().await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::debug!(
                    error = e.message(),
                    "protected groups not read at once; each account is checked on its own"
                );
                None
            }
        }
    }

    /// Finds the user and applies the safety rails. `Err` = refused, nothing done. The
    /// protected groups are checked against `snapshot` when the run read them at its start,
    /// else with a search for this account.
    pub(super) async fn admit(
        &self,
        dir: &Directory,
        user: &str,
        allow_protected: bool,
        snapshot: Option<&ProtectedMembers>,
    ) -> Result<User, Error> {
        // with the other workers' names, in one search when it can
        let u = self.inner.finds.find(dir, &UserRef::parse(user)?).await?;
        if self.inner.cfg.directory.bind_dn.same_entry(&u.dn) {
            return Err(Error::new(
                ErrorKind::ProtectedAccount,
                "refusing to act on the responder's own account",
            ));
        }
        if !allow_protected {
            let protected = match snapshot {
                Some(s) => s.groups_of(&u.dn),
                None => dir.protected_groups(&u).await?,
            };
            if !protected.is_empty() {
                return Err(Error::new(
                    ErrorKind::ProtectedAccount,
                    format!(
                        "{} is in protected group(s) {}; allow protected accounts to act anyway",
                        u.dn,
                        protected.join(", ")
                    ),
                ));
            }
        }
        Ok(u)
    }

    /// Wave 1 for one user: finds the entry, applies the safety rails and runs the lock step.
    /// Without a [`Going`], the user stops here (refused, cancelled, or the journal failed).
    async fn lock_wave(
        &self,
        incident: &str,
        i: usize,
        user: &str,
        earlier: &EarlierSteps,
        opts: &ContainOptions,
        protected: Option<&ProtectedMembers>,
    ) -> (UserReport, Option<Going>) {
        let mut report = UserReport::new(user);
        let Ok(journal) = self.journal_or_err() else {
            return (report, None);
        };
        if opts.cancelled() {
            report.interrupted = true;
            return (report, None);
        }
        let mut lent = self.inner.pool.lend(i);
        let mut admitted = self.admit(&lent.dir, user, opts.allow_protected, protected).await;
        if admitted.as_ref().is_err_and(connection_lost) {
            // the server restarted under the run: a new connection, and one more try
            if let Some(l) = self.inner.pool.reconnect(&lent).await {
                lent = l;
                admitted = self.admit(&lent.dir, user, opts.allow_protected, protected).await;
            }
        }
        let u = match admitted {
            Ok(u) => u,
            Err(e) => {
                // A lost connection is not a verdict on the user: leave it for a resume.
                if !matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Tls) {
                    let _ = journal
                        .append(
                            incident,
                            vec![Event::Refused {
                                user: user.to_owned(),
                                error: e.clone(),
                            }],
                        )
                        .await;
                }
                report.refused = Some(e);
                return (report, None);
            }
        };
        report.dn = Some(u.dn.to_string());
        let mut going = Going {
            u,
            lent,
            locked_before: false,
            place: None,
        };
        let none_contained = HashMap::new();
        let of = Steps {
            incident,
            user,
            earlier,
            opts,
            contained: &none_contained,
        };
        let go_on = self.run_steps(&of, &[Step::Lock], &mut report, &mut going).await;
        (report, go_on.then_some(going))
    }
}
