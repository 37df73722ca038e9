//! Incident response end to end: [`Responder::contain`], [`Responder::plan`],
//! [`Responder::release`] and [`Responder::resume`], for one user or thousands, journaled.
//!
//! For each user, in this order: **lock** → **reset** the password to a fresh random one with
//! a forced change (handed to a [`PasswordSink`], never stored) → **revoke** sessions
//! (configured revokers) → **require MFA** and drop existing enrolments. Every step is
//! idempotent; its intent is durable in the journal before it runs and its outcome after.
//! Users run concurrently (bounded) over a small pool of connections with many operations in
//! flight; one user's failure never stops the others.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cadenas::Error> {
//! use std::sync::Arc;
//! use cadenas::incident::{ContainOptions, FileSink, Responder};
//!
//! let cfg = cadenas::Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
//! let responder = Responder::new(&cfg, "/var/lib/cadenas/journal.jsonl".as_ref()).await?;
//! let sink = Arc::new(FileSink::create("/root/incident/passwords.tsv".as_ref())?);
//! let report = responder.contain(&["jdupont".into(), "mmartin".into()], ContainOptions::new(sink)).await?;
//! println!("{} contained, {} need attention", report.done(), report.failed());
//! # Ok(()) }
//! ```

mod plan;
mod release;
mod report;
mod sink;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

pub use release::{original_flags, ReleaseOptions};
pub use report::{
    ContainReport, PlanReport, PlannedStep, Progress, ReleaseReport, StepReport, UserPlan, UserReport,
};
pub use sink::{FileSink, PasswordSink};

use crate::auth::require_mfa;
use crate::config::Config;
use crate::directory::{AccountState, ChangeOutcome, Directory, Flavour, User, UserRef};
use crate::error::{Error, ErrorKind};
pub use crate::journal::StepDetail;
use crate::journal::{self, Event, Journal, Step, StepStatus};
use crate::mfa::Mfa;
use crate::session::{build_revokers, revoke_all, RevocationStatus, RevocationTarget, Revoker};
use crate::time::{rfc3339, unix_now};

/// Steps an earlier run of the same incident finished: status and journaled detail.
type EarlierSteps = BTreeMap<Step, (StepStatus, StepDetail)>;

/// A progress callback, called once after each user.
///
/// **Contract.** With the async [`Responder`] it runs on a runtime worker thread, possibly
/// several at once: it must be cheap and thread-safe. With
/// [`blocking::Responder`](crate::blocking::Responder) it always runs on the thread that
/// called the method, one call at a time. It cannot fail; to stop the run, cancel the
/// [`CancelToken`] of the options (from the callback or from anywhere else).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Stops a run at the next step boundary: no new step starts once cancelled, steps in flight
/// finish and are journaled, and [`Responder::resume`] finishes the rest. Clones share one flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop at the next step boundary. Safe from any thread or signal-safe
    /// context (one atomic store).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Options for [`Responder::contain`] and [`Responder::resume`]. Build with
/// [`ContainOptions::new`], then set what differs from the defaults.
#[derive(Clone)]
#[non_exhaustive]
pub struct ContainOptions {
    /// Incident identifier; generated when absent.
    pub incident: Option<String>,
    /// Act on members of protected groups too.
    pub allow_protected: bool,
    /// Users in flight at once. Default 32.
    pub concurrency: usize,
    /// Where new passwords go.
    pub sink: Arc<dyn PasswordSink>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Stops the run at the next step boundary when cancelled.
    pub cancel: Option<CancelToken>,
}

impl std::fmt::Debug for ContainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainOptions")
            .field("incident", &self.incident)
            .field("allow_protected", &self.allow_protected)
            .field("concurrency", &self.concurrency)
            .field("sink", &self.sink.describe())
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl ContainOptions {
    /// Defaults with the given password sink.
    pub fn new(sink: Arc<dyn PasswordSink>) -> Self {
        Self {
            incident: None,
            allow_protected: false,
            concurrency: 32,
            sink,
            progress: None,
            cancel: None,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
    }
}

struct Inner {
    cfg: Config,
    pool: Vec<Directory>,
    revokers: Vec<Arc<dyn Revoker>>,
    mfa: Option<Arc<Mfa>>,
    journal: Option<Journal>,
}

/// The main entry point: built from the config, it owns the connection pool, the revokers,
/// the MFA store and the journal.
#[derive(Clone)]
pub struct Responder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("connections", &self.inner.pool.len())
            .field("journal", &self.inner.journal)
            .finish_non_exhaustive()
    }
}

pub(crate) fn new_incident_id() -> Result<String, Error> {
    let mut r = [0u8; 3];
    crate::secret::fill_random(&mut r)?;
    let t = rfc3339(unix_now()).replace(['-', ':'], "");
    Ok(format!("INC-{}-{}", t.trim_end_matches('Z'), hex::encode(r)))
}

/// A primitive's outcome as a step status.
pub(crate) fn status_of(o: ChangeOutcome) -> StepStatus {
    match o {
        ChangeOutcome::Applied => StepStatus::Changed,
        ChangeOutcome::AlreadyInPlace => StepStatus::AlreadySo,
    }
}

impl Responder {
    /// Connects the pool (`directory.pool_size` connections), builds the revokers, opens the
    /// MFA store (if configured) and the journal at `journal_path`.
    pub async fn new(cfg: &Config, journal_path: &Path) -> Result<Self, Error> {
        Self::open(cfg, Some(journal_path)).await
    }

    /// Like [`new`](Self::new) without a journal: for [`plan`](Self::plan) and
    /// [`status`](Self::status) only, which change nothing. `contain`, `resume` and `release`
    /// refuse with [`ErrorKind::Journal`].
    pub async fn without_journal(cfg: &Config) -> Result<Self, Error> {
        Self::open(cfg, None).await
    }

    async fn open(cfg: &Config, journal_path: Option<&Path>) -> Result<Self, Error> {
        let revokers = build_revokers(&cfg.revokers)?;
        let mfa = cfg
            .mfa
            .as_ref()
            .map(|m| Mfa::open(m, true).map(Arc::new))
            .transpose()?;
        let journal = journal_path.map(Journal::open).transpose()?;
        let mut pool = Vec::with_capacity(cfg.directory.pool_size);
        for _ in 0..cfg.directory.pool_size.max(1) {
            pool.push(Directory::connect(&cfg.directory).await?);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                pool,
                revokers,
                mfa,
                journal,
            }),
        })
    }

    /// The journal, when opened with one.
    pub fn journal(&self) -> Option<&Journal> {
        self.inner.journal.as_ref()
    }

    fn journal_or_err(&self) -> Result<&Journal, Error> {
        self.inner.journal.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Journal,
                "this responder was opened without a journal: it can plan and read state, not change anything",
            )
        })
    }

    /// The first pooled connection.
    pub fn directory(&self) -> &Directory {
        &self.inner.pool[0]
    }

    /// The account's current state (lock, must-change, MFA requirement, protected groups).
    pub async fn status(&self, user: &str) -> Result<AccountState, Error> {
        let dir = self.directory();
        let u = dir.find_user(&UserRef::parse(user)?).await?;
        dir.account_state(&u).await
    }

    /// Contains `users` (names, mail addresses or `dn:<DN>`). See the module documentation.
    pub async fn contain(&self, users: &[String], opts: ContainOptions) -> Result<ContainReport, Error> {
        let journal = self.journal_or_err()?;
        let incident = match &opts.incident {
            Some(i) => i.clone(),
            None => new_incident_id()?,
        };
        journal
            .append(
                &incident,
                vec![Event::IncidentStart {
                    action: "contain".into(),
                    users: users.to_vec(),
                    note: None,
                }],
            )
            .await?;
        let work = users.iter().map(|u| (u.clone(), BTreeMap::new())).collect();
        self.run(&incident, work, &opts).await
    }

    /// Finishes what an interrupted run of `incident` (default: the latest containment in the
    /// journal) left: users never started, and steps with an intent but no outcome or a failed
    /// outcome. Steps already done are not run again.
    pub async fn resume(&self, incident: Option<&str>, opts: ContainOptions) -> Result<ContainReport, Error> {
        let journal = self.journal_or_err()?;
        let records = journal::read(journal.path())?;
        let incident = match incident {
            Some(i) => i.to_owned(),
            None => records
                .iter()
                .rev()
                .find(|r| matches!(&r.event, Event::IncidentStart { action, .. } if action == "contain"))
                .map(|r| r.incident.clone())
                .ok_or_else(|| Error::new(ErrorKind::NothingToResume, "the journal holds no containment"))?,
        };
        let mut users: Vec<String> = Vec::new();
        let mut done: HashMap<String, EarlierSteps> = HashMap::new();
        let mut refused: BTreeSet<String> = BTreeSet::new();
        for r in records.iter().filter(|r| r.incident == incident) {
            match &r.event {
                Event::IncidentStart { action, users: u, .. } if action == "contain" && users.is_empty() => {
                    users = u.clone()
                }
                Event::Outcome {
                    user,
                    step,
                    status,
                    detail,
                    ..
                } => {
                    let steps = done.entry(user.clone()).or_default();
                    if status.is_done() {
                        steps.insert(*step, (*status, detail.clone()));
                    } else {
                        steps.remove(step);
                    }
                }
                Event::Refused { user, .. } => {
                    refused.insert(user.clone());
                }
                _ => {}
            }
        }
        if users.is_empty() {
            return Err(Error::new(
                ErrorKind::NothingToResume,
                format!("no containment {incident} in the journal"),
            ));
        }
        let work: Vec<(String, EarlierSteps)> = users
            .iter()
            .filter(|u| !refused.contains(*u))
            .map(|u| (u.clone(), done.remove(u).unwrap_or_default()))
            .collect();
        journal
            .append(
                &incident,
                vec![Event::IncidentStart {
                    action: "resume".into(),
                    users: Vec::new(),
                    note: None,
                }],
            )
            .await?;
        let mut opts = opts;
        opts.incident = Some(incident.clone());
        self.run(&incident, work, &opts).await
    }

    async fn run(
        &self,
        incident: &str,
        work: Vec<(String, EarlierSteps)>,
        opts: &ContainOptions,
    ) -> Result<ContainReport, Error> {
        let journal = self.journal_or_err()?;
        let total = work.len();
        let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let counters = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let mut tasks = Vec::with_capacity(total);
        for (i, (user, earlier)) in work.into_iter().enumerate() {
            let (me, sem, opts, counters) = (self.clone(), sem.clone(), opts.clone(), counters.clone());
            let incident = incident.to_owned();
            let name = user.clone();
            let task = tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.ok();
                let report = me.contain_one(&incident, i, &user, earlier, &opts).await;
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
                        user: user.clone(),
                    });
                }
                report
            });
            tasks.push((name, task));
        }
        let mut users = Vec::with_capacity(total);
        for (name, t) in tasks {
            // A panic in one user's worker is that user's failure, not the whole run's.
            users.push(t.await.unwrap_or_else(|e| {
                let mut r = UserReport::new(&name);
                r.refused = Some(Error::new(ErrorKind::Internal, format!("worker failed: {e}")));
                r.finish()
            }));
        }
        let done = users.iter().filter(|u| u.complete()).count();
        let failed = users.len() - done;
        let cancelled = opts.cancelled();
        if !cancelled {
            journal
                .append(incident, vec![Event::IncidentEnd { done, failed }])
                .await?;
        }
        let head = journal::verify(journal.path())?.head;
        Ok(ContainReport {
            incident: incident.to_owned(),
            users,
            done,
            failed,
            cancelled,
            not_revoked: self.not_revoked(),
            password_handover: opts.sink.describe(),
            journal: journal.path().display().to_string(),
            journal_head: head,
        })
    }

    fn not_revoked(&self) -> Vec<String> {
        let mut v = vec!["LDAP connections already bound as the user stay open until they end".to_owned()];
        if self.inner.pool[0].flavour() == Flavour::ActiveDirectory {
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
        v
    }

    /// Finds the user and applies the safety rails. `Err` = refused, nothing done.
    async fn admit(&self, dir: &Directory, user: &str, allow_protected: bool) -> Result<User, Error> {
        let u = dir.find_user(&UserRef::parse(user)?).await?;
        if self.inner.cfg.directory.bind_dn.same_entry(&u.dn) {
            return Err(Error::new(
                ErrorKind::ProtectedAccount,
                "refusing to act on the responder's own account",
            ));
        }
        if !allow_protected {
            let state = dir.account_state(&u).await?;
            if !state.protected_groups.is_empty() {
                return Err(Error::new(
                    ErrorKind::ProtectedAccount,
                    format!(
                        "{} is in protected group(s) {}; allow protected accounts to act anyway",
                        u.dn,
                        state.protected_groups.join(", ")
                    ),
                ));
            }
        }
        Ok(u)
    }

    async fn contain_one(
        &self,
        incident: &str,
        i: usize,
        user: &str,
        earlier: EarlierSteps,
        opts: &ContainOptions,
    ) -> UserReport {
        let mut report = UserReport::new(user);
        let Ok(journal) = self.journal_or_err() else {
            return report.finish();
        };
        if opts.cancelled() {
            report.interrupted = true;
            return report.finish();
        }
        let dir = &self.inner.pool[i % self.inner.pool.len()];
        let u = match self.admit(dir, user, opts.allow_protected).await {
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
                return report.finish();
            }
        };
        let dn = u.dn.to_string();
        report.dn = Some(dn.clone());
        for step in Step::CONTAIN {
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
                break;
            }
            let intent = Event::Intent {
                user: user.to_owned(),
                dn: dn.clone(),
                step,
            };
            if let Err(e) = journal.append(incident, vec![intent]).await {
                // Without a durable intent nothing may change.
                report.steps.push(StepReport {
                    step,
                    status: StepStatus::Failed,
                    detail: StepDetail::of_error(e),
                    from_earlier_run: false,
                });
                break;
            }
            let (status, detail) = self.run_step(dir, &u, user, step, incident, opts).await;
            let outcome = Event::Outcome {
                user: user.to_owned(),
                dn: dn.clone(),
                step,
                status,
                detail: detail.clone(),
            };
            let journaled = journal.append(incident, vec![outcome]).await;
            report.steps.push(StepReport {
                step,
                status,
                detail,
                from_earlier_run: false,
            });
            if journaled.is_err() {
                break;
            }
        }
        report.finish()
    }

    async fn run_step(
        &self,
        dir: &Directory,
        u: &User,
        user: &str,
        step: Step,
        incident: &str,
        opts: &ContainOptions,
    ) -> (StepStatus, StepDetail) {
        let failed = |e: Error| (StepStatus::Failed, StepDetail::of_error(e));
        match step {
            Step::Lock => match dir.lock(u).await {
                Ok(c) => (status_of(c.outcome), StepDetail::of_change(c)),
                Err(e) => failed(e),
            },
            Step::ResetPassword => {
                let password = match self.inner.cfg.password.generate() {
                    Ok(p) => p,
                    Err(e) => return failed(e),
                };
                let c = match dir.reset_password(u, &password, true).await {
                    Ok(c) => c,
                    Err(e) => return failed(e),
                };
                // The step ends with the lock in place: OpenLDAP's ppolicy deletes the lock on
                // a password set, and a run killed between the two would otherwise resume with
                // the lock step done and the account unlocked (found by the SIGKILL test).
                // lock() is idempotent: normally "already in place".
                let relock = match dir.lock(u).await {
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
                        d.relocked = Some(relock.outcome == ChangeOutcome::Applied);
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
                if self.inner.revokers.is_empty() {
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
                let outcomes = revoke_all(&self.inner.revokers, &target).await;
                let status = if outcomes.iter().any(|o| o.status == RevocationStatus::Failed) {
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
                (
                    status,
                    StepDetail {
                        revocations: outcomes,
                        ..StepDetail::default()
                    },
                )
            }
            Step::RequireMfa => {
                let r = match &self.inner.mfa {
                    Some(m) => require_mfa(dir, m, u).await,
                    None => dir.require_mfa(u).await,
                };
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
            _ => failed(Error::new(
                ErrorKind::Internal,
                format!("{} is not a containment step", step.name()),
            )),
        }
    }

    /// A dry run: touches nothing, and shows per user the exact directory modifications and
    /// revoker calls `contain` would make, and what it would refuse. Needs no journal.
    pub async fn plan(&self, users: &[String], allow_protected: bool) -> Result<PlanReport, Error> {
        plan::plan(self, users, allow_protected).await
    }
}
