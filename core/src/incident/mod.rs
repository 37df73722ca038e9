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
//! **The lock wave.** A run first finds, checks and locks *every* account, and only then
//! resets, revokes and requires MFA: the attacker is out of all the accounts as soon as the
//! cheap lock modifies are done, not when the last (slow, hashed) reset is
//! (`core/tests/lab/incident.rs` `every_account_is_locked_before_any_reset_starts`). On
//! OpenLDAP the concurrent workers' finds share searches, as
//! [`Directory::find_users`](crate::directory::Directory::find_users) does. The progress callback fires
//! when a user is finished, so not during the lock wave.
//!
//! **Live sessions first.** The second wave takes first the accounts holding a live session
//! when the locks are done (a revoker that lists them all at once: Dovecot's `who`) — the
//! attacker's, most likely: their reset and revocation come with the first resets, not when
//! their turn in the list comes (`core/tests/lab/investigate.rs`
//! `accounts_holding_live_sessions_are_reset_and_revoked_first_and_the_report_keeps_the_given_order`).
//! Each account's steps keep their order — the sessions are revoked after the password
//! changed, so a mail server that checks passwords itself (not by binding) lets no one back
//! in with the old one — and the report keeps the order the users were given in.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cadenas::Error> {
//! use std::sync::Arc;
//! use cadenas::directory::UserRef;
//! use cadenas::incident::{ContainOptions, FileSink, Responder};
//!
//! let cfg = cadenas::Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
//! let responder = Responder::new(&cfg, "/var/lib/cadenas/journal.jsonl".as_ref()).await?;
//! let sink = Arc::new(FileSink::create("/root/incident/passwords.tsv".as_ref())?);
//! let users = UserRef::parse_all(&["jdupont", "mmartin"])?;
//! let report = responder.contain(&users, ContainOptions::new(sink)).await?;
//! println!("{} contained, {} need attention", report.done(), report.failed());
//! # Ok(()) }
//! ```

mod batch;
mod finds;
mod mail;
mod notices;
mod pivot;
mod plan;
mod pool;
mod release;
mod replicas;
mod report;
mod run;
mod sink;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use pivot::sightings;
pub use release::{original_flags, ReleaseOptions};
pub use report::{
    ContainReport, PlanReport, PlannedStep, Progress, ReleaseReport, StatusReport, StepReport, UserPlan,
    UserReport,
};
pub use sink::{FileSink, NoPasswordSink, PasswordSink};

use crate::config::Config;
use crate::directory::{AccountState, ChangeOutcome, Directory, UserRef};
use crate::error::{Error, ErrorKind};
use crate::investigate::{AddressRange, Instant};
use crate::journal::{self, Event, Journal, Step, StepStatus};
use crate::mfa::Mfa;
use crate::notify::{build_notifiers, Notifier};
use crate::session::{build_revokers_and_dovecots, Dovecot, Revoker};
use crate::time::{rfc3339, unix_now};

/// Steps an earlier run of the same incident finished: status and journaled detail.
type EarlierSteps = BTreeMap<Step, (StepStatus, crate::journal::StepDetail)>;

/// An entry contained by an earlier incident of the journal, not released since.
#[derive(Clone, Debug)]
struct Contained {
    incident: String,
    handed_over: Option<String>,
}

/// Entries (by normalised DN) whose password an incident other than `except` reset, with no
/// release since.
fn contained_entries(records: &[journal::Record], except: &str) -> HashMap<String, Contained> {
    let mut out = HashMap::new();
    for r in records.iter().filter(|r| r.incident != except) {
        if let Event::Outcome {
            dn,
            step,
            status,
            detail,
            ..
        } = &r.event
        {
            let Ok(key) = crate::directory::Dn::parse(dn).map(|d| d.normalised()) else {
                continue;
            };
            match step {
                Step::ResetPassword if *status == StepStatus::Changed => {
                    out.insert(
                        key,
                        Contained {
                            incident: r.incident.clone(),
                            handed_over: detail.handed_over.clone(),
                        },
                    );
                }
                Step::RestoreFlags if status.is_done() => {
                    out.remove(&key);
                }
                _ => {}
            }
        }
    }
    out
}

/// A progress callback, called once after each user.
///
/// **Contract.** With the async [`Responder`] it runs on a runtime worker thread, possibly
/// several at once: it must be cheap and thread-safe. With
/// the blocking facade (`cadenas::blocking::BlockingResponder`) it always runs on the thread that
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
    /// Accounts worked on at once (their steps' operations on the directory and the
    /// revokers). Default 32. An account whose only step left is waiting for a shared
    /// MFA-group modify gives its place to the next account while others are working (no
    /// more than this many wait so for a fuller batch).
    pub concurrency: usize,
    /// Where new passwords go.
    pub sink: Arc<dyn PasswordSink>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Stops the run at the next step boundary when cancelled.
    pub cancel: Option<CancelToken>,
    /// Why (an alert or ticket reference), journaled with the start of the run. No secrets.
    pub reason: Option<String>,
    /// The containment steps to run, in [`Step::CONTAIN`] order; default all of them
    /// (`HoldMail` runs only where `[postfix]` is configured). `Lock` is always one of them.
    /// Without `ResetPassword` the sink is never called.
    pub steps: Vec<Step>,
    /// Reset the password even of a user already contained (by an earlier incident of the
    /// journal, or — as the directory shows — by a run elsewhere), for this journaled reason.
    /// Without it such a user's reset is `already_so`: the password handed over then stays the
    /// one that works.
    pub reset_again: Option<String>,
    /// After every user's steps, kick every session from this range on each configured
    /// Dovecot — of accounts refused or out of scope too — journaled and reported in
    /// [`ContainReport::address_kicks`]. Set by [`Responder::contain_from`].
    pub kick_from: Option<AddressRange>,
    /// Also read, for each user, what changed on the entry since this time
    /// ([`UserReport::changes`]); `contain_from` defaults it to the pivot's `since`.
    pub changes_since: Option<Instant>,
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
            .field("reason", &self.reason)
            .field("steps", &self.steps)
            .field("reset_again", &self.reset_again)
            .field("kick_from", &self.kick_from)
            .field("changes_since", &self.changes_since)
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
            reason: None,
            steps: Step::CONTAIN.to_vec(),
            reset_again: None,
            kick_from: None,
            changes_since: None,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
    }

    /// The steps to run, in order; refuses a set without `Lock` or with a non-containment step.
    fn checked_steps(&self) -> Result<Vec<Step>, Error> {
        if let Some(s) = self.steps.iter().find(|s| !Step::CONTAIN.contains(s)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not a containment step", s.name()),
            ));
        }
        if !self.steps.contains(&Step::Lock) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a containment always locks: the steps must include lock",
            ));
        }
        Ok(Step::CONTAIN
            .into_iter()
            .filter(|s| self.steps.contains(s))
            .collect())
    }

    /// The steps for the journal's start record: `None` when all of them (`all`: how many
    /// this responder runs).
    fn recorded_steps(&self, all: usize) -> Result<Option<Vec<Step>>, Error> {
        let steps = self.checked_steps()?;
        Ok((steps.len() < all).then_some(steps))
    }

    /// Drops the steps this responder cannot run for want of configuration (hold mail
    /// without `[postfix]`).
    fn only_configured(&mut self, has_queue: bool) {
        self.steps.retain(|s| *s != Step::HoldMail || has_queue);
    }
}

struct Inner {
    cfg: Config,
    pool: pool::Pool,
    revokers: Vec<Arc<dyn Revoker>>,
    /// The Dovecot revokers among them (sessions by address, Sieve scripts).
    dovecots: Vec<Arc<Dovecot>>,
    /// `[[notify]]`: who is told after a run.
    notifiers: Vec<Arc<Notifier>>,
    mfa: Option<Arc<Mfa>>,
    journal: Option<Journal>,
    /// Whether the torn journal tail found at open was reported already (once).
    torn_reported: std::sync::atomic::AtomicBool,
    /// The MFA-group adds of concurrent workers, combined into few modifies.
    member_adds: batch::MemberAdds,
    /// The lock wave's finds of concurrent workers, combined into few searches.
    finds: finds::Finds,
    /// `[postfix]`: the queue the hold-mail step searches.
    queue: Option<Arc<crate::postfix::Queue>>,
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
    /// MFA store (if configured) and the journal file at `journal_path` (whatever the config's
    /// `[journal]` says; its `key_file` is used).
    pub async fn new(cfg: &Config, journal_path: &Path) -> Result<Self, Error> {
        Self::open(cfg, Some(journal::Location::File(journal_path.to_owned()))).await
    }

    /// Like [`new`](Self::new), with the journal the config's `[journal]` names: a file, or
    /// the PostgreSQL database that responders on several hosts share. No `[journal]` is an
    /// [`ErrorKind::Config`] error.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), cadenas::Error> {
    /// let cfg = cadenas::Config::from_file(std::path::Path::new("/etc/cadenas/cadenas.toml"))?;
    /// let responder = cadenas::incident::Responder::from_config(&cfg).await?;
    /// let sink = cadenas::incident::FileSink::create(std::path::Path::new("/root/incident-passwords.tsv"))?;
    /// let opts = cadenas::incident::ContainOptions::new(std::sync::Arc::new(sink));
    /// let users = [cadenas::directory::UserRef::parse("jdupont")?];
    /// let report = responder.contain(&users, opts).await?;
    /// println!("journal {} head {}", report.journal, report.journal_head);
    /// # Ok(()) }
    /// ```
    pub async fn from_config(cfg: &Config) -> Result<Self, Error> {
        let location = cfg
            .journal
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Config, "the config has no [journal] section"))?
            .location()?;
        Self::open(cfg, Some(location)).await
    }

    /// Like [`new`](Self::new) without a journal: for [`plan`](Self::plan) and
    /// [`status`](Self::status) only, which change nothing. `contain`, `resume` and `release`
    /// refuse with [`ErrorKind::Journal`].
    pub async fn without_journal(cfg: &Config) -> Result<Self, Error> {
        Self::open(cfg, None).await
    }

    async fn open(cfg: &Config, journal: Option<journal::Location>) -> Result<Self, Error> {
        let (revokers, dovecots) = build_revokers_and_dovecots(&cfg.revokers)?;
        let notifiers = build_notifiers(&cfg.notify)?;
        let mfa = cfg
            .mfa
            .as_ref()
            .map(|m| Mfa::open(m, true).map(Arc::new))
            .transpose()?;
        let key = cfg.journal.as_ref().map(|j| j.key()).transpose()?.flatten();
        let journal = journal.map(|l| Journal::open_at(&l, key)).transpose()?;
        let pool = pool::Pool::connect(&cfg.directory).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                pool,
                revokers,
                dovecots,
                notifiers,
                mfa,
                journal,
                torn_reported: AtomicBool::new(false),
                member_adds: batch::MemberAdds::default(),
                finds: finds::Finds::default(),
                queue: cfg
                    .postfix
                    .as_ref()
                    .map(|p| Arc::new(crate::postfix::Queue::new(p))),
            }),
        })
    }

    /// How many containment steps this responder runs by default.
    fn configured_steps(&self) -> usize {
        self.containment_steps().len()
    }

    /// The containment steps this responder runs by default, in order: [`Step::CONTAIN`],
    /// without `HoldMail` where no `[postfix]` section is configured.
    pub fn containment_steps(&self) -> Vec<Step> {
        Step::CONTAIN
            .into_iter()
            .filter(|s| *s != Step::HoldMail || self.inner.queue.is_some())
            .collect()
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

    /// LDAP operations sent so far on the responder's pooled connections (a connection
    /// replaced after a loss starts again from zero). Benchmarks divide it by the accounts.
    pub fn ldap_operations(&self) -> u64 {
        self.inner.pool.operations()
    }

    /// The first pooled connection (the current one: a lost connection is replaced).
    pub fn directory(&self) -> Directory {
        self.inner.pool.first()
    }

    /// The account's current state (lock, must-change, MFA requirement, protected groups).
    pub async fn status(&self, user: &UserRef) -> Result<AccountState, Error> {
        let dir = self.directory();
        let u = dir.find_user(user).await?;
        dir.account_state(&u).await
    }

    /// Contains `users`. See the module documentation.
    pub async fn contain(&self, users: &[UserRef], opts: ContainOptions) -> Result<ContainReport, Error> {
        let names: Vec<String> = users.iter().map(ToString::to_string).collect();
        self.contain_names(&names, opts).await
    }

    /// [`contain`](Self::contain) of names as the journal keeps them (`dn:<DN>` for a DN); a
    /// name that is not valid is that user's refusal, as on a resume.
    pub(crate) async fn contain_names(
        &self,
        users: &[String],
        opts: ContainOptions,
    ) -> Result<ContainReport, Error> {
        let journal = self.journal_or_err()?;
        let mut opts = opts;
        opts.only_configured(self.inner.queue.is_some());
        let steps = opts.recorded_steps(self.configured_steps())?;
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
                    note: opts.reason.clone(),
                    steps,
                    kick_from: opts.kick_from.map(|r| r.to_string()),
                }],
            )
            .await?;
        let contained = contained_entries(&journal.records()?, &incident);
        let work = users.iter().map(|u| (u.clone(), BTreeMap::new())).collect();
        self.run(&incident, work, &opts, Arc::new(contained)).await
    }

    /// Finishes what an interrupted run of `incident` (default: the latest containment in the
    /// journal) left: users never started, and steps with an intent but no outcome or a failed
    /// outcome. Steps already done are not run again.
    pub async fn resume(&self, incident: Option<&str>, opts: ContainOptions) -> Result<ContainReport, Error> {
        let journal = self.journal_or_err()?;
        let records = journal.records()?;
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
        let mut asked: Option<Vec<Step>> = None;
        let mut kick_from: Option<AddressRange> = None;
        let mut done: HashMap<String, EarlierSteps> = HashMap::new();
        let mut refused: BTreeSet<String> = BTreeSet::new();
        for r in records.iter().filter(|r| r.incident == incident) {
            match &r.event {
                Event::IncidentStart {
                    action,
                    users: u,
                    steps,
                    kick_from: range,
                    ..
                } if action == "contain" && users.is_empty() => {
                    users = u.clone();
                    asked = steps.clone();
                    kick_from = range.as_deref().map(AddressRange::parse).transpose()?;
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
                    steps: None,
                    kick_from: None,
                }],
            )
            .await?;
        let contained = contained_entries(&records, &incident);
        let mut opts = opts;
        opts.incident = Some(incident.clone());
        // the steps the interrupted run was asked for, not the caller's; its kick by address
        opts.steps = asked.unwrap_or_else(|| Step::CONTAIN.to_vec());
        opts.only_configured(self.inner.queue.is_some());
        opts.kick_from = kick_from;
        self.run(&incident, work, &opts, Arc::new(contained)).await
    }

    /// A dry run: touches nothing, and shows per user the exact directory modifications and
    /// revoker calls `contain` would make, and what it would refuse. Needs no journal.
    pub async fn plan(&self, users: &[UserRef], allow_protected: bool) -> Result<PlanReport, Error> {
        let names: Vec<String> = users.iter().map(ToString::to_string).collect();
        plan::plan(self, &names, allow_protected).await
    }
}
