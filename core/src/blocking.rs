//! A synchronous facade for embedders (the Python and C bindings, scripts, PAM modules).
//!
//! Each type owns a **current-thread** tokio runtime, created with the handle and dropped with
//! it; every method is one `block_on` over the async method it names. Nothing runs between
//! calls, and no thread is left behind when the handle is dropped (a PAM host `dlclose`s the
//! module after `pam_end`).
//!
//! **Where not to call it.** Calling a blocking method from inside an async runtime (a tokio
//! task, or a `block_on` of another runtime) is an error, [`ErrorKind::InvalidContext`], not a
//! panic: use the async API there. A handle created before a `fork()` refuses to work in the
//! child ([`ErrorKind::InvalidContext`]: tokio and open connections do not survive a fork);
//! create a new handle after forking. Dropping it in the child is safe for the parent: its
//! runtime and connections are kept there, never torn down (the epoll instance and the
//! sockets are the parent's too), and a journal's writer thread is never waited for.
//!
//! **Callbacks** (the [`PasswordSink`](crate::incident::PasswordSink) and the
//! [`ProgressFn`](crate::incident::ProgressFn) of [`ContainOptions`]) are always called **on
//! the thread that called the method**, one at a time, never concurrently and never after the
//! method returned. They may block (the run waits for them) and may take locks the caller's
//! thread holds, such as Python's GIL. A sink error fails that user's reset step (the account
//! stays locked; the report and the journal say so). To stop a long run, cancel the
//! [`CancelToken`](crate::incident::CancelToken) of the options — from the progress callback
//! (e.g. on Ctrl-C) or from another thread: steps in flight finish and are journaled, and
//! [`BlockingResponder::resume`] finishes the rest.
//!
//! ```no_run
//! # fn demo() -> Result<(), cadenas::Error> {
//! use std::sync::Arc;
//! use cadenas::blocking::BlockingResponder;
//! use cadenas::directory::UserRef;
//! use cadenas::incident::{ContainOptions, FileSink};
//!
//! let cfg = cadenas::Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
//! let responder = BlockingResponder::new(&cfg, "/var/lib/cadenas/journal.jsonl".as_ref())?;
//! let sink = Arc::new(FileSink::create("/root/incident/passwords.tsv".as_ref())?);
//! let users = UserRef::parse_all(&["jdupont", "mmartin"])?;
//! let report = responder.contain(&users, ContainOptions::new(sink))?;
//! println!("{} contained, {} need attention", report.done(), report.failed());
//! # Ok(()) }
//! ```

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use crate::auth::AuthOutcome;
use crate::config::Config;
use crate::directory::{AccountState, Directory, UserRef};
use crate::error::{Error, ErrorKind};
use crate::incident::{
    self, ContainOptions, ContainReport, PlanReport, ReleaseOptions, ReleaseReport, StatusReport,
};
use crate::investigate::{Instant, Pivot, PivotReport};
use crate::secret::Password;
use crate::time::unix_now;

use crate::mfa::Mfa;

/// A current-thread runtime bound to the process that created it.
struct Runtime {
    /// Always `Some` but while dropped in a forked child (then leaked: see `Drop`).
    rt: Option<tokio::runtime::Runtime>,
    pid: u32,
}

/// The runtimes of handles freed in a forked child: kept, never torn down (see `Drop`), and
/// still reachable (a leak checker sees memory kept on purpose, not lost).
static KEPT_AFTER_FORK: std::sync::Mutex<Vec<tokio::runtime::Runtime>> = std::sync::Mutex::new(Vec::new());

impl Drop for Runtime {
    /// In a forked child, the runtime and its tasks (the connections) are kept, never torn
    /// down: its I/O driver's epoll instance is the parent's too, and deregistering the
    /// sockets here would leave the parent's connections deaf (its next call timing out).
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            if let Some(rt) = self.rt.take() {
                KEPT_AFTER_FORK.lock().unwrap_or_else(|p| p.into_inner()).push(rt);
            }
        }
    }
}

impl Runtime {
    fn new() -> Result<Self, Error> {
        ensure_not_async()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot start the I/O runtime: {e}")))?;
        Ok(Self {
            rt: Some(rt),
            pid: std::process::id(),
        })
    }

    fn block_on<F: Future>(&self, f: F) -> Result<F::Output, Error> {
        ensure_not_async()?;
        if std::process::id() != self.pid {
            return Err(Error::new(
                ErrorKind::InvalidContext,
                "this handle was created before a fork(): create a new one in this process",
            ));
        }
        match &self.rt {
            Some(rt) => Ok(rt.block_on(f)),
            None => Err(Error::new(ErrorKind::Internal, "the runtime is gone")),
        }
    }
}

fn ensure_not_async() -> Result<(), Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::InvalidContext,
            "a cadenas::blocking call was made from inside an async runtime: use the async API there",
        ));
    }
    Ok(())
}

/// The blocking [`incident::Responder`]: contain, plan, release, resume, status.
pub struct BlockingResponder {
    // Field order matters: the responder (connections, journal writer) is dropped inside
    // the runtime's lifetime, then the runtime.
    inner: incident::Responder,
    rt: Runtime,
}

impl std::fmt::Debug for BlockingResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::BlockingResponder")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl BlockingResponder {
    /// Blocking [`incident::Responder::new`].
    pub fn new(cfg: &Config, journal_path: &Path) -> Result<Self, Error> {
        let rt = Runtime::new()?;
        let inner = rt.block_on(incident::Responder::new(cfg, journal_path))??;
        Ok(Self { inner, rt })
    }

    /// Blocking [`incident::Responder::from_config`]: the journal the config's `[journal]`
    /// names (a file, or PostgreSQL).
    pub fn from_config(cfg: &Config) -> Result<Self, Error> {
        let rt = Runtime::new()?;
        let inner = rt.block_on(incident::Responder::from_config(cfg))??;
        Ok(Self { inner, rt })
    }

    /// Without a journal (what [`incident::Planner`] is in async Rust): for `plan` and
    /// `status` only; `contain`, `resume` and `release` refuse with
    /// [`ErrorKind::Journal`].
    pub fn without_journal(cfg: &Config) -> Result<Self, Error> {
        let rt = Runtime::new()?;
        let inner = rt.block_on(incident::Responder::without_journal(cfg))??;
        Ok(Self { inner, rt })
    }

    /// Blocking [`incident::Responder::contain`].
    pub fn contain(&self, users: &[UserRef], opts: ContainOptions) -> Result<ContainReport, Error> {
        self.rt.block_on(self.inner.contain(users, opts))?
    }

    /// Blocking [`incident::Responder::resume`].
    pub fn resume(&self, incident: Option<&str>, opts: ContainOptions) -> Result<ContainReport, Error> {
        self.rt.block_on(self.inner.resume(incident, opts))?
    }

    /// Blocking [`incident::Responder::plan`].
    pub fn plan(&self, users: &[UserRef], allow_protected: bool) -> Result<PlanReport, Error> {
        self.rt.block_on(self.inner.plan(users, allow_protected))?
    }

    /// Blocking [`incident::Responder::release`].
    pub fn release(&self, user: &UserRef, opts: ReleaseOptions) -> Result<ReleaseReport, Error> {
        self.rt.block_on(self.inner.release(user, opts))?
    }

    /// Blocking [`incident::Responder::status`].
    pub fn status(&self, user: &UserRef) -> Result<AccountState, Error> {
        self.rt.block_on(self.inner.status(user))?
    }

    /// Blocking [`incident::Responder::status_report`]: the state and the mail rules found.
    pub fn status_report(
        &self,
        user: &UserRef,
        changes_since: Option<Instant>,
    ) -> Result<StatusReport, Error> {
        self.rt.block_on(self.inner.status_report(user, changes_since))?
    }

    /// Blocking [`incident::Responder::report`]: the incident record from the journal.
    pub fn report(
        &self,
        incident: &str,
        opts: &crate::report::ReportOptions,
    ) -> Result<crate::report::IncidentReport, Error> {
        self.rt.block_on(self.inner.report(incident, opts))?
    }

    /// Blocking [`incident::Responder::sightings`].
    pub fn sightings(&self, pivot: &Pivot) -> Result<PivotReport, Error> {
        self.rt.block_on(self.inner.sightings(pivot))?
    }

    /// Blocking [`incident::Responder::plan_from`].
    pub fn plan_from(&self, pivot: &Pivot, allow_protected: bool) -> Result<PlanReport, Error> {
        self.rt.block_on(self.inner.plan_from(pivot, allow_protected))?
    }

    /// Blocking [`incident::Responder::contain_from`].
    pub fn contain_from(&self, pivot: &Pivot, opts: ContainOptions) -> Result<ContainReport, Error> {
        self.rt.block_on(self.inner.contain_from(pivot, opts))?
    }

    /// The async responder underneath (its journal, its first connection).
    pub fn as_async(&self) -> &incident::Responder {
        &self.inner
    }
}

/// Password + code checks for PAM modules, RADIUS plugins and proxies: one directory
/// connection and the MFA store, over which [`authenticate`](Self::authenticate) runs.
pub struct Authenticator {
    dir: Directory,
    mfa: Arc<Mfa>,
    rt: Runtime,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Authenticator")
            .field("directory", &self.dir)
            .field("mfa", &self.mfa)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Connects to the directory and opens the MFA store (which must exist: `[mfa]` is
    /// required, and a missing database is an error rather than a new empty one).
    pub fn new(cfg: &Config) -> Result<Self, Error> {
        let mfa_cfg = cfg
            .mfa
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Config, "authenticate needs an [mfa] section"))?;
        let mfa = Arc::new(Mfa::open(mfa_cfg, false)?);
        let rt = Runtime::new()?;
        let dir = rt.block_on(Directory::connect(&cfg.directory))??;
        Ok(Self { dir, mfa, rt })
    }

    /// Blocking [`crate::auth::authenticate`] at the current time. `user` is a user name
    /// (never a DN here: what a login prompt receives is data).
    pub fn authenticate(
        &self,
        user: &str,
        password: &Password,
        code: Option<&str>,
    ) -> Result<AuthOutcome, Error> {
        let user = UserRef::Name(crate::directory::UserName::parse(user)?);
        self.rt.block_on(crate::auth::authenticate(
            &self.dir,
            &self.mfa,
            &user,
            password,
            code,
            unix_now(),
        ))?
    }

    /// The MFA service this authenticator verifies codes with.
    pub fn mfa(&self) -> &Mfa {
        &self.mfa
    }
}

/// The blocking [`crate::watch::WatchService`]: one round per [`poll`](Self::poll) — the logs
/// read, each new alert told, contained where its rule may, and journaled.
pub struct BlockingWatchService {
    // dropped inside the runtime's lifetime, then the runtime
    inner: crate::watch::WatchService,
    rt: Runtime,
}

impl std::fmt::Debug for BlockingWatchService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::BlockingWatchService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl BlockingWatchService {
    /// Blocking [`crate::watch::WatchService::new`].
    pub fn new(cfg: &Config) -> Result<Self, Error> {
        let rt = Runtime::new()?;
        Ok(Self {
            inner: crate::watch::WatchService::new(cfg)?,
            rt,
        })
    }

    /// Blocking [`crate::watch::WatchService::poll`].
    pub fn poll(&mut self) -> Result<Vec<crate::watch::HandledAlert>, Error> {
        let inner = &mut self.inner;
        self.rt.block_on(inner.poll())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_blocking_call_inside_an_async_runtime_is_a_typed_error() {
        let e = Runtime::new().map(|_| ()).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::InvalidContext);
    }

    #[test]
    fn outside_a_runtime_the_facade_runs_futures() {
        let rt = Runtime::new().expect("runtime");
        assert_eq!(rt.block_on(async { 41 + 1 }).expect("ran"), 42);
        // and a nested call from inside its own block_on is refused, not a panic
        let nested = rt.block_on(async { ensure_not_async() }).expect("ran");
        assert_eq!(nested.expect_err("nested").kind(), ErrorKind::InvalidContext);
    }
}
