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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

pub use plan::{PlanReport, PlannedStep, UserPlan};

use crate::config::Config;
use crate::directory::{Attributes, ChangeOutcome, Directory, Dn, Flavour, User, UserRef};
use crate::error::{Error, ErrorKind};
use crate::journal::{self, Event, Journal, Step, StepStatus};
use crate::mfa::{EnrolmentState, Mfa};
use crate::secret::Password;
use crate::session::{build_revokers, revoke_all, RevocationStatus, RevocationTarget, Revoker};
use crate::time::{rfc3339, unix_now};

/// Steps an earlier run of the same incident finished: status and journaled detail.
type EarlierSteps = BTreeMap<Step, (StepStatus, Value)>;

/// Receives each new password once, right after it was set. Implementations must not log it.
pub trait PasswordSink: Send + Sync {
    /// Hands `password` over for `user` (as given) / `dn`.
    fn deliver(&self, user: &str, dn: &str, password: &Password) -> Result<(), Error>;
}

/// Writes `user<TAB>password` lines to a new file created with mode 0600 (never overwritten).
pub struct FileSink {
    file: Mutex<std::fs::File>,
    path: std::path::PathBuf,
}

impl FileSink {
    /// Creates the file; fails if it exists.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let file = crate::secret::create_private_file(path).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot create new file {}: {e}", path.display()),
            )
        })?;
        Ok(Self {
            file: Mutex::new(file),
            path: path.to_owned(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl PasswordSink for FileSink {
    fn deliver(&self, user: &str, _dn: &str, password: &Password) -> Result<(), Error> {
        let mut f = self
            .file
            .lock()
            .map_err(|_| Error::new(ErrorKind::Internal, "password file lock poisoned"))?;
        let line = zeroize::Zeroizing::new(format!("{user}\t{}\n", password.expose_secret()));
        // Written through to the OS before the reset's outcome is journaled (a killed process
        // loses nothing); fsynced once when the sink is dropped rather than 6000 times.
        f.write_all(line.as_bytes())
            .and_then(|_| f.flush())
            .map_err(|e| Error::new(ErrorKind::Io, format!("writing {}: {e}", self.path.display())))
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Ok(f) = self.file.lock() {
            let _ = f.sync_all();
        }
    }
}

/// Progress of a bulk run, after each user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Users to process.
    pub total: usize,
    /// Users finished (done or failed).
    pub finished: usize,
    /// Users refused or with a failed step so far.
    pub failed: usize,
    /// The user just finished.
    pub user: String,
}

/// A progress callback. Called from worker tasks: it must be cheap and thread-safe.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Options for [`Responder::contain`].
#[derive(Clone)]
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
        }
    }
}

/// One step's result for one user.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    /// The step.
    pub step: Step,
    /// How it ended (a step finished by an earlier run shows its earlier status).
    pub status: StepStatus,
    /// The `Change`, revocation outcomes, or the error.
    pub detail: Value,
    /// True when an earlier (interrupted) run had already finished this step.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_earlier_run: bool,
}

/// One user's result.
#[derive(Clone, Debug, Serialize)]
pub struct UserReport {
    /// The user as given.
    pub user: String,
    /// The entry, once found.
    pub dn: Option<String>,
    /// Why nothing was done, when refused (unknown, protected, out of scope...).
    pub refused: Option<Error>,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
}

impl UserReport {
    /// Whether every step is done.
    pub fn complete(&self) -> bool {
        self.refused.is_none() && !self.steps.is_empty() && self.steps.iter().all(|s| s.status.is_done())
    }
}

/// The result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct ContainReport {
    /// Incident identifier.
    pub incident: String,
    /// Per user, in the order given.
    pub users: Vec<UserReport>,
    /// What this run did not (could not) revoke, in words.
    pub not_revoked: Vec<String>,
    /// The journal file.
    pub journal: String,
    /// SHA-256 of the journal's last line after the run: keep it to pin the journal.
    pub journal_head: String,
}

impl ContainReport {
    /// Users fully contained.
    pub fn done(&self) -> usize {
        self.users.iter().filter(|u| u.complete()).count()
    }

    /// Users refused or with a failed step.
    pub fn failed(&self) -> usize {
        self.users.len() - self.done()
    }
}

/// Options for [`Responder::release`].
#[derive(Clone, Debug, Default)]
pub struct ReleaseOptions {
    /// Release without an active MFA enrolment; the reason is journaled.
    pub override_reason: Option<String>,
}

/// The result of a release.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseReport {
    /// Incident identifier of the release.
    pub incident: String,
    /// The entry.
    pub dn: String,
    /// The restore change (before/after).
    pub change: crate::directory::Change,
    /// What release leaves as containment set it.
    pub kept: Vec<String>,
}

struct Inner {
    cfg: Config,
    pool: Vec<Directory>,
    revokers: Vec<Arc<dyn Revoker>>,
    mfa: Option<Arc<Mfa>>,
    journal: Journal,
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

fn new_incident_id() -> Result<String, Error> {
    let mut r = [0u8; 3];
    crate::secret::fill_random(&mut r)?;
    let t = rfc3339(unix_now()).replace(['-', ':'], "");
    Ok(format!(
        "INC-{}-{:02x}{:02x}{:02x}",
        t.trim_end_matches('Z'),
        r[0],
        r[1],
        r[2]
    ))
}

fn err_json(e: &Error) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

impl Responder {
    /// Connects the pool (`directory.pool_size` connections), builds the revokers, opens the
    /// MFA store (if configured) and the journal at `journal_path`.
    pub async fn new(cfg: &Config, journal_path: &Path) -> Result<Self, Error> {
        let revokers = build_revokers(&cfg.revokers)?;
        let mfa = cfg
            .mfa
            .as_ref()
            .map(|m| Mfa::open(m, true).map(Arc::new))
            .transpose()?;
        let journal = Journal::open(journal_path)?;
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

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// The first pooled connection.
    pub fn directory(&self) -> &Directory {
        &self.inner.pool[0]
    }

    /// Contains `users` (names, mail addresses or `dn:<DN>`). See the module documentation.
    pub async fn contain(&self, users: &[String], opts: ContainOptions) -> Result<ContainReport, Error> {
        let incident = match &opts.incident {
            Some(i) => i.clone(),
            None => new_incident_id()?,
        };
        self.inner
            .journal
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
        let records = journal::read(self.inner.journal.path())?;
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
        self.inner
            .journal
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
        let total = work.len();
        let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let counters = Arc::new(Mutex::new((0usize, 0usize)));
        let mut tasks = Vec::with_capacity(total);
        for (i, (user, earlier)) in work.into_iter().enumerate() {
            let (me, sem, opts, counters) = (self.clone(), sem.clone(), opts.clone(), counters.clone());
            let incident = incident.to_owned();
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.ok();
                let report = me.contain_one(&incident, i, &user, earlier, &opts).await;
                if let Some(p) = &opts.progress {
                    let (finished, failed) = {
                        let mut c = counters.lock().unwrap_or_else(|e| e.into_inner());
                        c.0 += 1;
                        c.1 += usize::from(!report.complete());
                        *c
                    };
                    p(&Progress {
                        total,
                        finished,
                        failed,
                        user: user.clone(),
                    });
                }
                report
            }));
        }
        let mut users = Vec::with_capacity(total);
        for t in tasks {
            users.push(
                t.await
                    .map_err(|e| Error::new(ErrorKind::Internal, format!("worker failed: {e}")))?,
            );
        }
        let (done, failed) = (
            users.iter().filter(|u| u.complete()).count(),
            users.iter().filter(|u| !u.complete()).count(),
        );
        self.inner
            .journal
            .append(incident, vec![Event::IncidentEnd { done, failed }])
            .await?;
        let head = journal::verify(self.inner.journal.path())?.head;
        Ok(ContainReport {
            incident: incident.to_owned(),
            users,
            not_revoked: self.not_revoked(),
            journal: self.inner.journal.path().display().to_string(),
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
        if Dn::parse(&self.inner.cfg.directory.bind_dn).is_ok_and(|d| d.same_entry(&u.dn)) {
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
        let dir = &self.inner.pool[i % self.inner.pool.len()];
        let mut report = UserReport {
            user: user.to_owned(),
            dn: None,
            refused: None,
            steps: Vec::new(),
        };
        let u = match self.admit(dir, user, opts.allow_protected).await {
            Ok(u) => u,
            Err(e) => {
                // A lost connection is not a verdict on the user: leave it for a resume.
                if !matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Tls) {
                    let _ = self
                        .inner
                        .journal
                        .append(
                            incident,
                            vec![Event::Refused {
                                user: user.to_owned(),
                                error: err_json(&e),
                            }],
                        )
                        .await;
                }
                report.refused = Some(e);
                return report;
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
            let intent = Event::Intent {
                user: user.to_owned(),
                dn: dn.clone(),
                step,
            };
            if let Err(e) = self.inner.journal.append(incident, vec![intent]).await {
                // Without a durable intent nothing may change.
                report.steps.push(StepReport {
                    step,
                    status: StepStatus::Failed,
                    detail: json!({"error": err_json(&e)}),
                    from_earlier_run: false,
                });
                break;
            }
            let (status, detail) = self.run_step(dir, &u, user, step, opts).await;
            let outcome = Event::Outcome {
                user: user.to_owned(),
                dn: dn.clone(),
                step,
                status,
                detail: detail.clone(),
            };
            let journaled = self.inner.journal.append(incident, vec![outcome]).await;
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
        report
    }

    async fn run_step(
        &self,
        dir: &Directory,
        u: &User,
        user: &str,
        step: Step,
        opts: &ContainOptions,
    ) -> (StepStatus, Value) {
        let change_status = |o: ChangeOutcome| match o {
            ChangeOutcome::Applied => StepStatus::Changed,
            ChangeOutcome::AlreadyInPlace => StepStatus::AlreadySo,
        };
        let failed = |e: &Error| (StepStatus::Failed, json!({"error": err_json(e)}));
        match step {
            Step::Lock => match dir.lock(u).await {
                Ok(c) => (change_status(c.outcome), json!({"change": c})),
                Err(e) => failed(&e),
            },
            Step::ResetPassword => {
                let password = match self.inner.cfg.password.generate() {
                    Ok(p) => p,
                    Err(e) => return failed(&e),
                };
                match dir.reset_password(u, &password, true).await {
                    // The step ends with the lock in place: OpenLDAP's ppolicy deletes the lock
                    // on a password set, and a run killed between the two would otherwise
                    // resume with the lock step done and the account unlocked (found by the
                    // SIGKILL test). lock() is idempotent: normally "already in place".
                    Ok(c) => match dir.lock(u).await {
                        Err(e) => (
                            StepStatus::Failed,
                            json!({"change": c, "error": err_json(&e), "note": "the password was set but the lock could not be confirmed"}),
                        ),
                        Ok(relock) => match opts.sink.deliver(user, u.dn.as_str(), &password) {
                            Ok(()) => (
                                StepStatus::Changed,
                                json!({"change": c, "relocked": relock.outcome == ChangeOutcome::Applied}),
                            ),
                            Err(e) => (
                                StepStatus::Failed,
                                json!({"change": c, "error": err_json(&e), "note": "the password was set but could not be handed over; the account stays locked"}),
                            ),
                        },
                    },
                    Err(e) => failed(&e),
                }
            }
            Step::RevokeSessions => {
                if self.inner.revokers.is_empty() {
                    return (
                        StepStatus::Partial,
                        json!({"note": "no revokers configured: live sessions were not revoked"}),
                    );
                }
                let login = match dir.login_name(u).await {
                    Ok(l) => l,
                    Err(e) => return failed(&e),
                };
                let target = RevocationTarget {
                    login,
                    dn: u.dn.to_string(),
                    incident: opts.incident.clone(),
                    action: "contain".into(),
                };
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
                (status, json!({"revocations": outcomes}))
            }
            Step::RequireMfa => {
                let r = match &self.inner.mfa {
                    Some(m) => crate::mfa::require_mfa(dir, m, u).await,
                    None => dir.require_mfa(u).await,
                };
                match r {
                    Ok(c) => (
                        change_status(c.outcome),
                        json!({"change": c, "enrolments_dropped": self.inner.mfa.is_some()}),
                    ),
                    Err(e) => failed(&e),
                }
            }
            Step::RestoreFlags => failed(&Error::new(
                ErrorKind::Internal,
                "restore is not a containment step",
            )),
        }
    }

    /// A dry run: touches nothing, and shows per user the exact directory modifications and
    /// revoker calls `contain` would make, and what it would refuse.
    pub async fn plan(&self, users: &[String], allow_protected: bool) -> Result<PlanReport, Error> {
        plan::plan(self, users, allow_protected).await
    }

    /// Releases a contained account: restores the lock flags recorded by the first lock of its
    /// containment in the journal — nothing more, nothing less (the new password, the forced
    /// change and the MFA requirement stay). Refused unless the user has an *active* MFA
    /// enrolment, or an override reason is given (journaled).
    pub async fn release(&self, user: &str, opts: ReleaseOptions) -> Result<ReleaseReport, Error> {
        let dir = &self.inner.pool[0];
        let u = dir.find_user(&UserRef::parse(user)?).await?;
        let original = original_flags(self.inner.journal.path(), &u.dn)?.ok_or_else(|| {
            Error::new(
                ErrorKind::ReleaseRefused,
                format!("the journal has no containment of {} to release", u.dn),
            )
        })?;
        if let (Some(mfa), None) = (&self.inner.mfa, &opts.override_reason) {
            let login = dir.login_name(&u).await?;
            if mfa.enrolment_state(&login)? != Some(EnrolmentState::Active) {
                return Err(Error::new(
                    ErrorKind::ReleaseRefused,
                    format!("{login} has no active MFA enrolment yet (enrol and verify a first code, or give an override reason)"),
                ));
            }
        }
        let incident = new_incident_id()?;
        let dn = u.dn.to_string();
        self.inner
            .journal
            .append(
                &incident,
                vec![
                    Event::IncidentStart {
                        action: "release".into(),
                        users: vec![user.to_owned()],
                        note: opts.override_reason.clone(),
                    },
                    Event::Intent {
                        user: user.to_owned(),
                        dn: dn.clone(),
                        step: Step::RestoreFlags,
                    },
                ],
            )
            .await?;
        let result = dir.restore_flags(&u, &original).await;
        let (status, detail) = match &result {
            Ok(c) => (
                if c.outcome == ChangeOutcome::Applied {
                    StepStatus::Changed
                } else {
                    StepStatus::AlreadySo
                },
                json!({"change": c}),
            ),
            Err(e) => (StepStatus::Failed, json!({"error": err_json(e)})),
        };
        self.inner
            .journal
            .append(
                &incident,
                vec![
                    Event::Outcome {
                        user: user.to_owned(),
                        dn: dn.clone(),
                        step: Step::RestoreFlags,
                        status,
                        detail,
                    },
                    Event::IncidentEnd {
                        done: usize::from(status.is_done()),
                        failed: usize::from(!status.is_done()),
                    },
                ],
            )
            .await?;
        Ok(ReleaseReport {
            incident,
            dn,
            change: result?,
            kept: vec![
                "the password set at containment, with its forced change".into(),
                "the MFA requirement (group membership and the new enrolment)".into(),
            ],
        })
    }
}

/// The lock flags recorded before containment of `dn`, from the journal: the `before` of the
/// first lock outcome since the last release of that entry.
pub fn original_flags(journal_path: &Path, dn: &Dn) -> Result<Option<Attributes>, Error> {
    let mut original: Option<Attributes> = None;
    for r in journal::read(journal_path)? {
        if let Event::Outcome {
            dn: d,
            step,
            status,
            detail,
            ..
        } = &r.event
        {
            if !Dn::parse(d).is_ok_and(|d| d.same_entry(dn)) || !status.is_done() {
                continue;
            }
            match step {
                Step::Lock if original.is_none() => {
                    original = detail
                        .get("change")
                        .and_then(|c| c.get("before"))
                        .and_then(|b| serde_json::from_value(b.clone()).ok());
                }
                Step::RestoreFlags => original = None,
                _ => {}
            }
        }
    }
    Ok(original)
}
