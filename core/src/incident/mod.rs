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

pub(crate) mod auto;
mod batch;
mod drill;
mod finds;
mod mail;
mod notices;
mod options;
mod pivot;
mod place;
mod plan;
mod planner;
mod pool;
mod release;
mod replicas;
mod report;
mod resume;
mod run;
mod sink;
mod steps;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use auto::AutoOutcome;
pub use drill::{DrillReport, DrillStep};
pub use options::{CancelToken, ContainOptions, ProgressFn};
pub(crate) use pivot::mail_rules_on;
pub use pivot::sightings;
pub use planner::Planner;
pub use release::{original_flags, ReleaseOptions};
pub use report::{
    ContainReport, PlanReport, PlannedStep, Progress, ReleaseReport, StatusReport, StepReport, UserPlan,
    UserReport,
};
use resume::{contained_entries, Contained};
pub use sink::{FileSink, NoPasswordSink, PasswordSink};

use crate::config::Config;
use crate::directory::{AccountState, ChangeOutcome, Directory, UserRef};
use crate::error::{Error, ErrorKind};
use crate::journal::{self, Event, Journal, Step, StepStatus};
use crate::mfa::Mfa;
use crate::notify::{build_notifiers, Notifier};
use crate::session::{build_revokers_and_dovecots, Dovecot, Revoker};
use crate::time::{rfc3339, unix_now};

/// Steps an earlier run of the same incident finished: status and journaled detail.
type EarlierSteps = BTreeMap<Step, (StepStatus, crate::journal::StepDetail)>;

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

    /// Without a journal, for the bindings' one handle type (Python, C): `contain`, `resume`
    /// and `release` refuse with [`ErrorKind::Journal`]. In Rust, [`Planner`] is the typed
    /// form.
    pub(crate) async fn without_journal(cfg: &Config) -> Result<Self, Error> {
        Self::open(cfg, None).await
    }

    pub(super) async fn open(cfg: &Config, journal: Option<journal::Location>) -> Result<Self, Error> {
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

    /// The incident record of `incident` from this responder's journal (checked with the
    /// config's journal key, when it has one): see
    /// [`IncidentReport::from_journal`](crate::report::IncidentReport::from_journal). Read on a
    /// blocking thread; a journal being written meanwhile is read up to its last whole record.
    ///
    /// ```no_run
    /// # async fn demo(responder: &cadenas::incident::Responder) -> Result<(), cadenas::Error> {
    /// use cadenas::notify::Language;
    /// use cadenas::report::ReportOptions;
    ///
    /// let report = responder.report("INC-20261207T091403-5e2a1c", &ReportOptions::default()).await?;
    /// std::fs::write("incident.html", report.to_html(Language::En)).expect("written");
    /// # Ok(()) }
    /// ```
    pub async fn report(
        &self,
        incident: &str,
        opts: &crate::report::ReportOptions,
    ) -> Result<crate::report::IncidentReport, Error> {
        let location = self.journal_or_err()?.location().clone();
        let key = match &self.inner.cfg.journal {
            Some(j) => j.key()?,
            None => None,
        };
        let (incident, opts) = (incident.to_owned(), opts.clone());
        tokio::task::spawn_blocking(move || {
            crate::report::IncidentReport::from_journal(&location, key.as_ref(), &incident, &opts)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("report task failed: {e}")))?
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
        let work = users
            .iter()
            .map(|u| run::Work {
                user: u.clone(),
                earlier: EarlierSteps::new(),
            })
            .collect();
        self.run(&incident, work, &opts, Arc::new(contained)).await
    }

    /// A dry run: touches nothing, and shows per user the exact directory modifications and
    /// revoker calls `contain` would make, and what it would refuse. Needs no journal.
    pub async fn plan(&self, users: &[UserRef], allow_protected: bool) -> Result<PlanReport, Error> {
        let names: Vec<String> = users.iter().map(ToString::to_string).collect();
        plan::plan(self, &names, allow_protected).await
    }
}
