//! `cadenas.Responder`: contain, plan, release, resume and status over
//! `cadenas::blocking::BlockingResponder`, with Python callables as password sink and progress.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cadenas::blocking;
use cadenas::directory::UserRef;
use cadenas::incident::{
    CancelToken, ContainOptions, FileSink, PasswordSink, Progress, ProgressFn, ReleaseOptions,
};
use cadenas::investigate::{AddressRange, Instant, Pivot};
use cadenas::journal::Step;
use cadenas::{Config, Error, ErrorKind, Password};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::secret::PySecret;
use crate::{run, to_report};

/// Reads a config file (parsed and checked once, here).
pub(crate) fn load_config(py: Python<'_>, path: &Path) -> PyResult<Config> {
    run(py, || Config::from_file(path))
}

/// Parses config text; relative paths are resolved against `base_dir`.
pub(crate) fn parse_config(py: Python<'_>, text: &str, base_dir: &Path) -> PyResult<Config> {
    run(py, || Config::from_toml_str(text, base_dir))
}

/// The incident responder: owns the directory connections, the revokers, the MFA store and
/// the journal. Build it with `from_config` or `from_toml`.
#[pyclass(name = "Responder", module = "cadenas", frozen)]
pub struct PyResponder {
    inner: blocking::BlockingResponder,
    /// Where the journal is (a file, or a PostgreSQL URL), if there is one.
    journal: Option<String>,
}

/// Hands each new password to a Python callable `(user, dn, Secret)`, on the calling thread.
struct CallableSink(Py<PyAny>);

impl PasswordSink for CallableSink {
    fn deliver(&self, user: &str, dn: &str, password: &Password) -> Result<(), Error> {
        Python::attach(|py| {
            let secret = Py::new(py, PySecret::new(password.expose_secret()))
                .map_err(|_| Error::new(ErrorKind::Internal, "cannot make a Secret"))?;
            self.0.call1(py, (user, dn, secret)).map(|_| ()).map_err(|e| {
                // The exception's text is not repeated: it could quote the password.
                let kind = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_default();
                Error::new(
                    ErrorKind::Io,
                    format!("the on_password callback raised {kind}; the account stays locked"),
                )
            })
        })
    }

    fn describe(&self) -> String {
        "the on_password callback".into()
    }
}

/// The users argument: one name, or an iterable of names (a `str` is never split in letters).
/// `users` (a `str` or an iterable of `str`), parsed once, here: every name must be valid
/// (`cadenas.InvalidUserName` naming each one that is not, before anything is done).
fn user_list(users: &Bound<'_, PyAny>) -> PyResult<Vec<UserRef>> {
    let names = user_names(users)?;
    UserRef::parse_all(&names).map_err(|e| crate::errors::to_py(users.py(), &e))
}

/// One user name, parsed here.
fn user_ref(py: Python<'_>, user: &str) -> PyResult<UserRef> {
    UserRef::parse(user).map_err(|e| crate::errors::to_py(py, &e))
}

fn user_names(users: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = users.cast::<PyString>() {
        return Ok(vec![s.extract::<String>()?]);
    }
    let mut out = Vec::new();
    for u in users.try_iter()? {
        let u = u?;
        let s = u
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("users must be str or an iterable of str"))?;
        out.push(s.extract::<String>()?);
    }
    Ok(out)
}

/// The pivot of `sightings`, `plan_from` and `contain_from`, parsed once, here.
fn pivot(
    py: Python<'_>,
    ip: &str,
    auth_logs: Option<Vec<PathBuf>>,
    since: Option<String>,
    until: Option<String>,
) -> PyResult<Pivot> {
    let time = |t: Option<String>| t.map(|t| Instant::parse(&t)).transpose();
    run(py, || {
        let mut p = Pivot::new(AddressRange::parse(ip)?);
        p.auth_logs = auth_logs.unwrap_or_default();
        p.since = time(since)?;
        p.until = time(until)?;
        Ok(p)
    })
}

/// What a run leaves behind for Python: an exception raised by a callback (or Ctrl-C seen
/// between users), to re-raise once the run has stopped at a step boundary.
#[derive(Clone, Default)]
struct Interrupt(Arc<Mutex<Option<PyErr>>>);

impl Interrupt {
    fn set(&self, e: PyErr) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Builds the options: the sink (exactly one of `password_file` and `on_password`), and a
/// progress hook that runs on the calling thread after each user — it checks for Ctrl-C
/// (`KeyboardInterrupt` stops the run at the next step boundary) and calls `progress`.
fn options(
    password_file: Option<PathBuf>,
    on_password: Option<Py<PyAny>>,
    progress: Option<Py<PyAny>>,
    concurrency: usize,
    interrupt: &Interrupt,
    resets: bool,
) -> PyResult<ContainOptions> {
    let sink: Arc<dyn PasswordSink> = match (password_file, on_password) {
        (None, None) if !resets => Arc::new(cadenas::incident::NoPasswordSink),
        (Some(p), None) => Arc::new(FileSink::create(&p).map_err(|e| Python::attach(|py| crate::errors::to_py(py, &e)))?),
        (None, Some(f)) => Arc::new(CallableSink(f)),
        (None, None) => {
            return Err(crate::errors::invalid_input(
                "pass password_file (a new 0600 file) or on_password (a callable): new passwords must go somewhere",
            ))
        }
        (Some(_), Some(_)) => return Err(crate::errors::invalid_input("pass password_file or on_password, not both")),
    };
    let mut opts = ContainOptions::new(sink);
    opts.concurrency = concurrency.max(1);
    let cancel = CancelToken::new();
    opts.cancel = Some(cancel.clone());
    let interrupt = interrupt.clone();
    let hook: ProgressFn = Arc::new(move |p: &Progress| {
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                interrupt.set(e);
                cancel.cancel();
                return;
            }
            if let Some(cb) = &progress {
                let obj = py
                    .import("cadenas._reports")
                    .and_then(|m| m.getattr("Progress"))
                    .and_then(|c| c.call1((p.total, p.finished, p.failed, p.user.as_str())));
                if let Err(e) = obj.and_then(|o| cb.call1(py, (o,))) {
                    interrupt.set(e);
                    cancel.cancel();
                }
            }
        })
    });
    opts.progress = Some(hook);
    Ok(opts)
}

impl PyResponder {
    fn open(py: Python<'_>, cfg: Config, journal: Option<PathBuf>) -> PyResult<Self> {
        let inner = match (&journal, &cfg.journal) {
            (Some(j), _) => run(py, || blocking::BlockingResponder::new(&cfg, j))?,
            (None, Some(_)) => run(py, || blocking::BlockingResponder::from_config(&cfg))?,
            (None, None) => run(py, || blocking::BlockingResponder::without_journal(&cfg))?,
        };
        let journal = inner.as_async().journal().map(|j| j.location().to_string());
        Ok(Self { inner, journal })
    }

    fn finish<'py>(
        py: Python<'py>,
        report: PyResult<cadenas::incident::ContainReport>,
        interrupt: &Interrupt,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(e) = interrupt.take() {
            return Err(e);
        }
        to_report(py, "ContainReport", &report?)
    }
}

#[pymethods]
impl PyResponder {
    /// Opens a responder from a TOML config file. `journal` (a file) overrides `[journal]`
    /// (a file, or PostgreSQL); without either, the responder can only `plan` and read
    /// `status`.
    #[staticmethod]
    #[pyo3(signature = (path, *, journal=None))]
    fn from_config(py: Python<'_>, path: PathBuf, journal: Option<PathBuf>) -> PyResult<Self> {
        let cfg = load_config(py, &path)?;
        Self::open(py, cfg, journal)
    }

    /// Opens a responder from TOML text; relative paths resolve against `base_dir`.
    #[staticmethod]
    #[pyo3(signature = (text, *, journal=None, base_dir=None))]
    fn from_toml(
        py: Python<'_>,
        text: &str,
        journal: Option<PathBuf>,
        base_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let base = base_dir.unwrap_or_else(|| PathBuf::from("."));
        let cfg = parse_config(py, text, &base)?;
        Self::open(py, cfg, journal)
    }

    /// Where the journal is (a file, or the PostgreSQL URL), if this responder has one.
    #[getter]
    fn journal(&self) -> Option<String> {
        self.journal.clone()
    }

    /// Contains `users` (names, mail addresses or `dn:<DN>`): lock, reset (random password,
    /// forced change), revoke sessions, hold their queued mail (with `[postfix]`), require MFA
    /// — journaled step by step; `reset`, `revoke`, `hold_mail` and `require_mfa` can be
    /// turned off (the lock cannot). New passwords go to
    /// `password_file` (a new 0600 file) or `on_password(user, dn, Secret)`. `progress(p)` is
    /// called after each user, on this thread. Ctrl-C stops at a step boundary and raises
    /// `KeyboardInterrupt`; `resume()` finishes the run, with the same steps.
    #[pyo3(signature = (users, *, reset=true, revoke=true, require_mfa=true, hold_mail=true, password_file=None, on_password=None, progress=None, reason=None, incident=None, allow_protected=false, concurrency=32))]
    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
    fn contain<'py>(
        &self,
        py: Python<'py>,
        users: &Bound<'py, PyAny>,
        reset: bool,
        revoke: bool,
        require_mfa: bool,
        hold_mail: bool,
        password_file: Option<PathBuf>,
        on_password: Option<Py<PyAny>>,
        progress: Option<Py<PyAny>>,
        reason: Option<String>,
        incident: Option<String>,
        allow_protected: bool,
        concurrency: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let users = user_list(users)?;
        if users.is_empty() {
            return Err(crate::errors::invalid_input("no users given"));
        }
        let interrupt = Interrupt::default();
        let mut opts = options(
            password_file,
            on_password,
            progress,
            concurrency,
            &interrupt,
            reset,
        )?;
        opts.steps = [
            (Step::Lock, true),
            (Step::ResetPassword, reset),
            (Step::RevokeSessions, revoke),
            (Step::HoldMail, hold_mail),
            (Step::RequireMfa, require_mfa),
        ]
        .into_iter()
        .filter_map(|(s, on)| on.then_some(s))
        .collect();
        opts.reason = reason;
        opts.incident = incident;
        opts.allow_protected = allow_protected;
        let report = run(py, || self.inner.contain(&users, opts));
        Self::finish(py, report, &interrupt)
    }

    /// Finishes an interrupted containment (`incident`, default the latest in the journal):
    /// users never started and steps without an outcome; steps already done are not re-run.
    #[pyo3(signature = (*, incident=None, password_file=None, on_password=None, progress=None, concurrency=32))]
    fn resume<'py>(
        &self,
        py: Python<'py>,
        incident: Option<String>,
        password_file: Option<PathBuf>,
        on_password: Option<Py<PyAny>>,
        progress: Option<Py<PyAny>>,
        concurrency: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let interrupt = Interrupt::default();
        // the interrupted run may have reset passwords: a sink is needed unless it did not
        let opts = options(
            password_file,
            on_password,
            progress,
            concurrency,
            &interrupt,
            true,
        )?;
        let report = run(py, || self.inner.resume(incident.as_deref(), opts));
        Self::finish(py, report, &interrupt)
    }

    /// The dry run: per user, the exact modifications `contain` would send, and refusals.
    /// Changes nothing and needs no journal.
    #[pyo3(signature = (users, *, allow_protected=false))]
    fn plan<'py>(
        &self,
        py: Python<'py>,
        users: &Bound<'py, PyAny>,
        allow_protected: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let users = user_list(users)?;
        let report = run(py, || self.inner.plan(&users, allow_protected))?;
        to_report(py, "PlanReport", &report)
    }

    /// Restores exactly the lock flags recorded before containment. Refused unless the user
    /// has an active MFA enrolment, or `override_reason` is given (journaled).
    #[pyo3(signature = (user, *, override_reason=None))]
    fn release<'py>(
        &self,
        py: Python<'py>,
        user: String,
        override_reason: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut opts = ReleaseOptions::default();
        if let Some(r) = override_reason {
            opts = opts.with_override_reason(r);
        }
        let user = user_ref(py, &user)?;
        let report = run(py, || self.inner.release(&user, opts))?;
        to_report(py, "ReleaseReport", &report)
    }

    /// The account's current state: lock, must-change, MFA requirement, protected groups, and
    /// (with `[mail]` configured) its Sieve scripts that send mail outside the local domains.
    /// With `changes_since` (RFC 3339, a date, or a time ago: `"36h"`), also what changed on
    /// the entry since then (`state.changes`).
    #[pyo3(signature = (user, *, changes_since=None))]
    fn status<'py>(
        &self,
        py: Python<'py>,
        user: String,
        changes_since: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let since = changes_since
            .map(|t| run(py, || Instant::parse(&t)))
            .transpose()?;
        let user = user_ref(py, &user)?;
        let state = run(py, || self.inner.status_report(&user, since))?;
        to_report(py, "AccountState", &state)
    }

    /// The incident record of `incident`, from this responder's journal: summary, runs,
    /// timeline, every account, the attacker's addresses, notifications and the proof
    /// (`report.proof.intact`). `alert_at` (RFC 3339, a date, or a time ago: `"3h"`) is when
    /// the alert came. `report.to_html()` writes the page.
    #[pyo3(signature = (incident, *, alert_at=None))]
    fn report<'py>(
        &self,
        py: Python<'py>,
        incident: String,
        alert_at: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut opts = cadenas::report::ReportOptions::default();
        if let Some(t) = alert_at {
            opts = opts.with_alert_at(run(py, || Instant::parse(&t))?);
        }
        let report = run(py, || self.inner.report(&incident, &opts))?;
        crate::to_class(py, "cadenas._incident", "IncidentReport", &report)
    }

    /// Who was seen from `ip` (an address or CIDR range): live sessions on every configured
    /// Dovecot, and logins in `auth_logs` (default `[mail] auth_logs`; plain or gzip'd) between
    /// `since` and `until` (RFC 3339, a date, or a time ago: `"36h"`). Changes nothing.
    #[pyo3(signature = (ip, *, auth_logs=None, since=None, until=None))]
    fn sightings<'py>(
        &self,
        py: Python<'py>,
        ip: &str,
        auth_logs: Option<Vec<PathBuf>>,
        since: Option<String>,
        until: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pivot = pivot(py, ip, auth_logs, since, until)?;
        let report = run(py, || self.inner.sightings(&pivot))?;
        to_report(py, "PivotReport", &report)
    }

    /// The dry run of `contain_from`: who was seen from `ip` and why, each account's plan, and
    /// the kick by address. Changes nothing.
    #[pyo3(signature = (ip, *, auth_logs=None, since=None, until=None, allow_protected=false))]
    fn plan_from<'py>(
        &self,
        py: Python<'py>,
        ip: &str,
        auth_logs: Option<Vec<PathBuf>>,
        since: Option<String>,
        until: Option<String>,
        allow_protected: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pivot = pivot(py, ip, auth_logs, since, until)?;
        let report = run(py, || self.inner.plan_from(&pivot, allow_protected))?;
        to_report(py, "PlanReport", &report)
    }

    /// Contains every account seen from `ip` (live sessions, logins; accounts only tried are
    /// listed in `report.pivot.tried_only`), through the same rails as `contain`, then kicks
    /// every session from `ip` on each Dovecot (`report.address_kicks`).
    #[pyo3(signature = (ip, *, auth_logs=None, since=None, until=None, password_file=None, on_password=None, progress=None, reason=None, incident=None, allow_protected=false, concurrency=32))]
    #[allow(clippy::too_many_arguments)]
    fn contain_from<'py>(
        &self,
        py: Python<'py>,
        ip: &str,
        auth_logs: Option<Vec<PathBuf>>,
        since: Option<String>,
        until: Option<String>,
        password_file: Option<PathBuf>,
        on_password: Option<Py<PyAny>>,
        progress: Option<Py<PyAny>>,
        reason: Option<String>,
        incident: Option<String>,
        allow_protected: bool,
        concurrency: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pivot = pivot(py, ip, auth_logs, since, until)?;
        let interrupt = Interrupt::default();
        let mut opts = options(
            password_file,
            on_password,
            progress,
            concurrency,
            &interrupt,
            true,
        )?;
        opts.reason = reason;
        opts.incident = incident;
        opts.allow_protected = allow_protected;
        let report = run(py, || self.inner.contain_from(&pivot, opts));
        Self::finish(py, report, &interrupt)
    }

    fn __repr__(&self) -> String {
        match &self.journal {
            Some(j) => format!("Responder(journal={j:?})"),
            None => "Responder(journal=None)".into(),
        }
    }
}

/// Recomputes the journal's hash chain (and MACs, with the config's `[journal] key_file`):
/// the file at `path`, or the journal the config names (a file, or PostgreSQL). The report
/// names the first bad line.
#[pyfunction]
#[pyo3(signature = (path=None, *, config=None))]
pub(crate) fn verify_journal<'py>(
    py: Python<'py>,
    path: Option<PathBuf>,
    config: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = config.map(|c| load_config(py, &c)).transpose()?;
    let journal_cfg = cfg.as_ref().and_then(|c| c.journal.as_ref());
    let report = run(py, || {
        let key = journal_cfg.map(|j| j.key()).transpose()?.flatten();
        let location =
            cadenas::journal::Location::resolve(path.as_deref(), journal_cfg)?.ok_or_else(|| {
                cadenas::Error::new(
                    cadenas::ErrorKind::InvalidInput,
                    "give a journal path, or a config with [journal]",
                )
            })?;
        location.verify(key.as_ref())
    })?;
    to_report(py, "VerifyReport", &report)
}
