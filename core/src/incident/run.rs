//! The run: users in parallel (bounded), each through the containment steps with an intent
//! journaled before and an outcome after every change.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle};

use super::pool::connection_lost;
use super::report::{ContainReport, Progress, StepReport, UserReport};
use super::{status_of, ContainOptions, Contained, EarlierSteps, Responder};
use crate::directory::{ChangeOutcome, Directory, Flavour, LockState, ProtectedMembers, User, UserRef};
use crate::error::{Error, ErrorKind};
use crate::journal::{Event, Journal, Step, StepDetail, StepStatus};
use crate::session::{revoke_all, RevocationStatus, RevocationTarget};

/// Users finished, and of those failed (for the progress callback).
type Counters = (AtomicUsize, AtomicUsize);

/// A user admitted by the lock wave, for the second wave.
pub(super) struct Going {
    u: User,
    lent: super::pool::Lent,
    /// The lock step found the account locked already.
    locked_before: bool,
    /// The account's place among those in flight (wave 2).
    place: Option<Place>,
}

/// An account's place among the run's accounts in flight (`ContainOptions::concurrency` of
/// them), held while its steps work on the servers. An account that only waits for the shared
/// MFA-group modify may give its place to the next account ([`Place::park`]); no more wait
/// for a fuller batch than the run has places.
pub(super) struct Place {
    permit: Option<OwnedSemaphorePermit>,
    places: Arc<Semaphore>,
    size: usize,
    /// The run's accounts parked now.
    parked: Arc<AtomicUsize>,
}

/// One of a run's accounts parked, waiting for a fuller MFA-group batch: counted until dropped
/// (when a turn takes it into a modify).
pub(super) struct Parked(Arc<AtomicUsize>);

impl Drop for Parked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Place {
    /// Accounts holding a place now (working, not parked).
    pub(super) fn working(&self) -> usize {
        self.size.saturating_sub(self.places.available_permits())
    }

    /// Gives the place to the next account when another account is working (whose MFA-group
    /// add may join this one's) and fewer accounts wait parked than the run has places;
    /// otherwise the account keeps it (`None`).
    pub(super) fn park(&mut self) -> Option<Parked> {
        if self.permit.is_none() || self.working() <= 1 {
            return None;
        }
        self.parked
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                (p < self.size).then_some(p + 1)
            })
            .ok()?;
        self.permit = None;
        Some(Parked(self.parked.clone()))
    }

    /// As many of the run's accounts wait parked as the run has places: no more may join.
    pub(super) fn parking_full(&self) -> bool {
        self.parked.load(Ordering::SeqCst) >= self.size
    }

    /// Takes a place again after [`Place::park`] (for work on the servers after the wait).
    async fn take_back(&mut self) {
        if self.permit.is_none() {
            self.permit = self.places.clone().acquire_owned().await.ok();
        }
    }
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
        work: Vec<(String, EarlierSteps)>,
        opts: &ContainOptions,
        contained: Arc<HashMap<String, Contained>>,
    ) -> Result<ContainReport, Error> {
        let journal = self.journal_or_err()?;
        let expected = opts.checked_steps()?.len();
        let total = work.len();
        tracing::info!(incident, users = total, "run starts");
        let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let counters = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let protected = self
            .protected_snapshot(total, opts.allow_protected)
            .await
            .map(Arc::new);
        // The progress callback, once per user as soon as the user is finished (inside that
        // user's worker: a panicking callback fails that user only).
        let finished = move |opts: &ContainOptions, counters: &Counters, report: &UserReport| {
            if let Some(p) = &opts.progress {
                let finished = counters.0.fetch_add(1, Ordering::SeqCst) + 1;
                let failed = counters
                    .1
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
        let lock_result = |name: String, r: Result<_, JoinError>| match r {
            Ok(w) => w,
            Err(e) => ((worker_failed(&name, &e), None), EarlierSteps::new()),
        };
        for (i, (user, earlier)) in work.into_iter().enumerate() {
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
                let wave = me
                    .lock_wave(&incident, i, &user, &earlier, &opts, protected.as_deref())
                    .await;
                (wave, earlier)
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
                let ((_, going), _) = &locked[i];
                !going
                    .as_ref()
                    .and_then(|g| g.u.login_known())
                    .is_some_and(|l| live.contains(&l.to_lowercase()))
            });
        }
        let mut locked: Vec<Option<_>> = locked.into_iter().map(Some).collect();
        let parked = Arc::new(AtomicUsize::new(0));
        let mut second = VecDeque::new();
        let mut users: Vec<Option<UserReport>> = (0..total).map(|_| None).collect();
        // A panic in one user's worker is that user's failure, not the whole run's.
        let user_result = |(i, name): (usize, String), r: Result<UserReport, JoinError>| {
            (i, r.unwrap_or_else(|e| worker_failed(&name, &e).finish(expected)))
        };
        for i in order {
            let Some(((report, going), earlier)) = locked[i].take() else {
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
                Some(_) => Some(Place {
                    permit: sem.clone().acquire_owned().await.ok(),
                    places: sem.clone(),
                    size: opts.concurrency.max(1),
                    parked: parked.clone(),
                }),
                None => None,
            };
            second.push_back((
                (i, report.user.clone()),
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
        let go_on = self
            .run_steps(
                incident,
                user,
                &[Step::Lock],
                earlier,
                opts,
                &HashMap::new(),
                &mut report,
                &mut going,
            )
            .await;
        (report, go_on.then_some(going))
    }

    /// Wave 2 for one user: the containment steps after the lock.
    async fn finish_user(
        &self,
        incident: &str,
        mut report: UserReport,
        going: &mut Going,
        earlier: &EarlierSteps,
        opts: &ContainOptions,
        contained: &HashMap<String, Contained>,
    ) -> UserReport {
        // checked by run() before any user starts
        let mut steps: Vec<Step> = opts
            .checked_steps()
            .unwrap_or_else(|_| Step::CONTAIN.to_vec())
            .into_iter()
            .filter(|s| *s != Step::Lock)
            .collect();
        // A lock that failed in the first wave is tried again first (journaled like any try);
        // the report keeps the last try, with the first one's error in a note.
        let first_try = match report.steps.last() {
            Some(s) if s.step == Step::Lock && s.status == StepStatus::Failed && !s.from_earlier_run => {
                steps.insert(0, Step::Lock);
                report.steps.pop()
            }
            _ => None,
        };
        let user = report.user.clone();
        self.run_steps(
            incident,
            &user,
            &steps,
            earlier,
            opts,
            contained,
            &mut report,
            going,
        )
        .await;
        if let Some(first) = first_try {
            let why = first
                .detail
                .error
                .as_ref()
                .map_or_else(|| "no error recorded".to_owned(), |e| e.message().to_owned());
            match report.steps.iter_mut().find(|s| s.step == Step::Lock) {
                Some(again) => {
                    let note = format!(
                        "tried again after the other accounts were locked; the first try failed: {why}"
                    );
                    again.detail.note = Some(match again.detail.note.take() {
                        Some(n) => format!("{n}; {note}"),
                        None => note,
                    });
                }
                // not tried again (cancelled, or the journal failed): the first try stands
                None => report.steps.insert(0, first),
            }
        }
        // what the attacker may have changed (read-only, after the steps)
        if let Some(since) = opts.changes_since {
            // work on the server again: with a place, like the steps
            if let Some(place) = going.place.as_mut() {
                place.take_back().await;
            }
            match going.lent.dir.changes_since(&going.u, since.unix()).await {
                Ok(c) => report.changes = Some(c),
                Err(e) => report.changes_error = Some(e),
            }
        }
        report
    }

    /// Runs `steps` for one user, each with an intent journaled before and an outcome after.
    /// `false` when the user must stop (cancelled, or the journal could not be written).
    #[allow(clippy::too_many_arguments)]
    async fn run_steps(
        &self,
        incident: &str,
        user: &str,
        steps: &[Step],
        earlier: &EarlierSteps,
        opts: &ContainOptions,
        contained: &HashMap<String, Contained>,
        report: &mut UserReport,
        going: &mut Going,
    ) -> bool {
        let Ok(journal) = self.journal_or_err() else {
            return false;
        };
        let dn = going.u.dn.to_string();
        // A step's outcome goes to the journal with the next step's intent, in one durable
        // write (the outcome is durable before the next step changes anything, as if written
        // alone); the last one alone, at the end.
        let mut outcome: Option<Event> = None;
        for &step in steps {
            if let Some((status, detail)) = earlier.get(&step) {
                report.steps.push(StepReport {
                    step,
                    status: *status,
                    detail: detail.clone(),
                    from_earlier_run: true,
                });
                continue;
            }
            if opts.cancelled() {
                report.interrupted = true;
                if let Some(o) = outcome {
                    let _ = journal.append(incident, vec![o]).await;
                }
                return false;
            }
            let intent = Event::Intent {
                user: user.to_owned(),
                dn: dn.clone(),
                step,
            };
            let mut write: Vec<Event> = outcome.take().into_iter().collect();
            write.push(intent);
            if let Err(e) = journal.append(incident, write).await {
                // Without a durable intent nothing may change.
                report.steps.push(StepReport {
                    step,
                    status: StepStatus::Failed,
                    detail: StepDetail::of_error(e),
                    from_earlier_run: false,
                });
                return false;
            }
            let skip = match step {
                Step::ResetPassword if opts.reset_again.is_none() => {
                    self.already_contained(&going.lent.dir, &going.u, contained, going.locked_before)
                        .await
                }
                _ => None,
            };
            let started = std::time::Instant::now();
            let (mut status, mut detail) = match skip {
                Some(note) => (StepStatus::AlreadySo, StepDetail::default().with_note(note)),
                None => self.run_step(going, user, step, incident, opts).await,
            };
            if status == StepStatus::Failed && detail.error.as_ref().is_some_and(connection_lost) {
                // every step decides from what the server holds now: running it again on a
                // new connection is safe whether or not the lost modify was applied
                if let Some(l) = self.inner.pool.reconnect(&going.lent).await {
                    going.lent = l;
                    going.u.saw(None);
                    (status, detail) = self.run_step(going, user, step, incident, opts).await;
                }
            }
            tracing::debug!(
                incident,
                user,
                dn = %dn,
                step = step.name(),
                status = status.name(),
                ms = started.elapsed().as_millis() as u64,
                "step"
            );
            if step == Step::Lock {
                going.locked_before = status == StepStatus::AlreadySo;
            }
            if let (Step::ResetPassword, Some(reason), StepStatus::Changed) =
                (step, &opts.reset_again, status)
            {
                detail.note = Some(format!("reset again: {reason}"));
            }
            outcome = Some(Event::Outcome {
                user: user.to_owned(),
                dn: dn.clone(),
                step,
                status,
                detail: detail.clone(),
            });
            report.steps.push(StepReport {
                step,
                status,
                detail,
                from_earlier_run: false,
            });
        }
        match outcome {
            Some(o) => journal.append(incident, vec![o]).await.is_ok(),
            None => true,
        }
    }

    /// Why the reset must not run again, when the user is contained already: by an earlier
    /// incident of this journal (whose password hand-over would die), or — when the account was
    /// locked before this run — as the directory shows it (locked, must change, MFA required:
    /// a run this journal does not know, e.g. on another host).
    async fn already_contained(
        &self,
        dir: &Directory,
        u: &User,
        contained: &HashMap<String, Contained>,
        locked_before: bool,
    ) -> Option<String> {
        if let Some(c) = contained.get(&u.dn.normalised()) {
            return Some(format!(
                "already contained by incident {} (new password handed over to {}); not reset again, \
                 so that password stays the one that works — reset again only with an explicit reason",
                c.incident,
                c.handed_over.as_deref().unwrap_or("an unrecorded place")
            ));
        }
        if !locked_before {
            return None;
        }
        let st = dir.account_state(u).await.ok()?;
        let contained_here = st.lock == LockState::Locked && st.must_change && st.mfa_required == Some(true);
        contained_here.then(|| {
            "the directory shows this account contained already (locked, must change, MFA required) by a \
             run this journal does not know (another host?); not reset — reset again only with an explicit \
             reason"
                .to_owned()
        })
    }

    /// Runs one step for the account, noting in it what the step's own responses showed of the entry
    /// (the lock's Post-Read is where the reset starts from).
    async fn run_step(
        &self,
        going: &mut Going,
        user: &str,
        step: Step,
        incident: &str,
        opts: &ContainOptions,
    ) -> (StepStatus, StepDetail) {
        let (dir, u, place) = (&going.lent.dir, &mut going.u, going.place.as_mut());
        let failed = |e: Error| (StepStatus::Failed, StepDetail::of_error(e));
        match step {
            Step::Lock => match dir.lock_after_find(u).await {
                Ok((c, seen)) => {
                    u.saw(seen);
                    let status = status_of(c.outcome);
                    let mut d = StepDetail::of_change(c);
                    // journaled for the outbound policy service (read with the find, but
                    // for an explicit `dn:`)
                    d.login = match u.login_known() {
                        Some(l) => Some(l.to_owned()),
                        None => dir.login_name(u).await.ok(),
                    };
                    (status, d)
                }
                Err(e) => {
                    // a later try reads the entry again
                    u.saw(None);
                    failed(e)
                }
            },
            Step::ResetPassword => {
                let password = match self.inner.cfg.password.generate() {
                    Ok(p) => p,
                    Err(e) => return failed(e),
                };
                let reset = dir.reset_password(u, &password, true).await;
                // what was seen before is not the entry any more
                u.saw(None);
                let c = match reset {
                    Ok(c) => c,
                    Err(e) => return failed(e),
                };
                // The step ends with the lock in place: OpenLDAP's ppolicy deletes the lock on
                // a password set, and a run killed between the two would otherwise resume with
                // the lock step done and the account unlocked (found by the SIGKILL test).
                // lock() is idempotent: normally "already in place".
                // Where the reset's own after-state shows the lock (OpenLDAP's reset re-applies
                // it), there is nothing to check again.
                let lock_shown = crate::directory::shows_lock(&c);
                let relock = match if lock_shown {
                    Ok(None)
                } else {
                    dir.lock(u).await.map(Some)
                } {
                    Ok(r) => r,
                    Err(e) => {
                        let d = StepDetail {
                            change: Some(c),
                            error: Some(e),
                            ..StepDetail::default()
                        };
                        return (
                            StepStatus::Failed,
                            d.with_note("the password was set but the lock could not be confirmed"),
                        );
                    }
                };
                let mut d = StepDetail::of_change(c);
                match opts.sink.deliver(user, u.dn.as_str(), &password) {
                    Ok(()) => {
                        d.relocked = Some(relock.is_some_and(|r| r.outcome == ChangeOutcome::Applied));
                        d.handed_over = Some(opts.sink.describe());
                        (StepStatus::Changed, d)
                    }
                    Err(e) => {
                        d.error = Some(e);
                        (
                            StepStatus::Failed,
                            d.with_note(
                                "the password was set but could not be handed over; the account stays locked",
                            ),
                        )
                    }
                }
            }
            Step::RevokeSessions => {
                let smtp = self.inner.cfg.outbound.is_some() || self.inner.cfg.mail.is_some();
                if self.inner.revokers.is_empty() && !smtp {
                    return (
                        StepStatus::Partial,
                        StepDetail::default()
                            .with_note("no revokers configured: live sessions were not revoked"),
                    );
                }
                let login = match dir.login_name(u).await {
                    Ok(l) => l,
                    Err(e) => return failed(e),
                };
                let mut target = RevocationTarget::new(login, u.dn.to_string());
                target.incident = Some(incident.to_owned());
                let mut outcomes = revoke_all(&self.inner.revokers, &target).await;
                // SMTP: sessions authenticated before the lock keep sending unless the policy
                // service refuses their next message
                if let Some(o) = self.smtp_outcome(user, &target.login).await {
                    outcomes.push(o);
                }
                let mut status = if outcomes.iter().any(|o| o.status == RevocationStatus::Failed) {
                    StepStatus::Failed
                } else if outcomes
                    .iter()
                    .any(|o| !o.not_revoked.is_empty() || !o.collateral.is_empty())
                {
                    StepStatus::Partial
                } else if outcomes.iter().any(|o| o.status == RevocationStatus::Revoked) {
                    StepStatus::Changed
                } else {
                    StepStatus::AlreadySo
                };
                let mut detail = StepDetail {
                    revocations: outcomes,
                    ..StepDetail::default()
                };
                // The way back in an attacker leaves in the mailbox: a redirect rule.
                status = self.check_mail_rules(&target.login, status, &mut detail).await;
                (status, detail)
            }
            Step::RequireMfa => {
                // other workers' accounts may go in the same modify and store transaction;
                // the result is this one's
                let r = self
                    .inner
                    .member_adds
                    .require_mfa(dir, self.inner.mfa.as_ref(), u, place)
                    .await;
                match r {
                    Ok(c) => {
                        let status = status_of(c.outcome);
                        let mut d = StepDetail::of_change(c);
                        d.enrolments_dropped = Some(self.inner.mfa.is_some());
                        (status, d)
                    }
                    Err(e) => failed(e),
                }
            }
            Step::HoldMail => match dir.login_name(u).await {
                Ok(login) => self.hold_mail(user, &login).await,
                Err(e) => failed(e),
            },
            _ => failed(Error::new(
                ErrorKind::Internal,
                format!("{} is not a containment step", step.name()),
            )),
        }
    }
}
