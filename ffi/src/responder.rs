//! `cadenas_responder` (contain, plan, release, resume, status), its options and callbacks,
//! and `cadenas_journal_verify`.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use core_api::blocking::BlockingResponder;
use core_api::directory::UserRef;
use core_api::incident::{CancelToken, ContainOptions, FileSink, PasswordSink, Progress, ReleaseOptions};
use core_api::journal;
use core_api::{Error, ErrorKind, Password};

use crate::boundary::{
    borrow, copy_out, guard, guard_value, hand_out, not_null, opt_text, release, text, texts, Failure,
};
use crate::config::{cadenas_config, config_ref};
use crate::report::{cadenas_report, Report};
use crate::result::cadenas_result;

/// The incident responder (opaque): directory connections, revokers, MFA store, journal.
pub struct cadenas_responder {
    _private: [u8; 0],
}

/// Options of a containment or a resume (opaque): free with `cadenas_contain_options_free()`.
pub struct cadenas_contain_options {
    _private: [u8; 0],
}

/// One new password being handed over, valid only during the password callback
/// (`cadenas_handover_password` copies it out).
pub struct cadenas_handover {
    _private: [u8; 0],
}

/// Called once after each user of a containment.
///
/// **Thread-safety contract:** always called on the thread that called
/// `cadenas_responder_contain*` / `_resume`, one call at a time, never after that call
/// returned. `user` is valid during the call only. Return 0 to go on, anything else to stop
/// the run at the next step boundary (steps in flight finish and are journaled;
/// `cadenas_responder_resume` finishes the rest). Calling back into libcadenas from it is
/// refused (`CADENAS_RESULT_INVALID_CONTEXT`).
pub type cadenas_progress_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        user: *const c_char,
        finished: usize,
        total: usize,
        failed: usize,
    ) -> c_int,
>;

/// Called once per new password, right after it was set and before it is journaled.
///
/// **Thread-safety contract:** as `cadenas_progress_callback` (the calling thread, one at a
/// time, never after the call returned). `user` and `dn` are valid during the call; copy the
/// password out with `cadenas_handover_password()` during the call and wipe your copy
/// (`explicit_bzero`) once delivered. Return 0 once the password is safely handed over;
/// anything else fails that user's reset (the account stays locked; a resume sets a fresh
/// password).
pub type cadenas_password_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        user: *const c_char,
        dn: *const c_char,
        handover: *const cadenas_handover,
    ) -> c_int,
>;

/// A C function pointer and its `userdata`.
#[derive(Clone, Copy)]
struct Callback<F> {
    f: F,
    userdata: *mut c_void,
}

// SAFETY: the blocking facade calls sinks and progress hooks only on the thread that called
// the method, one at a time, never after it returned (`cadenas::blocking` contract), so the
// pointer is never used from another thread than the caller's; the C caller owns `userdata`.
unsafe impl<F> Send for Callback<F> {}
// SAFETY: as above: never two calls at once.
unsafe impl<F> Sync for Callback<F> {}

type ProgressFnPtr = unsafe extern "C" fn(*mut c_void, *const c_char, usize, usize, usize) -> c_int;
type PasswordFnPtr =
    unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const cadenas_handover) -> c_int;

impl Callback<ProgressFnPtr> {
    fn progress(&self, user: &CString, p: &Progress) -> c_int {
        // SAFETY: `f` is the caller's function with the documented signature; `user` lives
        // until it returns; this runs on the caller's thread (blocking contract).
        unsafe { (self.f)(self.userdata, user.as_ptr(), p.finished, p.total, p.failed) }
    }
}

#[derive(Default)]
struct OptionsData {
    incident: Option<String>,
    reason: Option<String>,
    reset_again: Option<String>,
    allow_protected: bool,
    concurrency: Option<usize>,
    password_file: Option<PathBuf>,
    password_cb: Option<Callback<PasswordFnPtr>>,
    progress: Option<Callback<ProgressFnPtr>>,
}

pub(crate) struct Options(Mutex<OptionsData>);

fn options_ref<'a>(o: *const cadenas_contain_options) -> Result<&'a Options, Failure> {
    borrow::<Options, _>(o, "options")
}

fn edit(o: *const cadenas_contain_options, f: impl FnOnce(&mut OptionsData)) -> Result<(), Failure> {
    let o = options_ref(o)?;
    f(&mut o.0.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(())
}

/// New containment options with the defaults: all four steps, 32 users in flight, protected
/// accounts refused, no password hand-over (set one before a containment that resets).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_new(
    options_out: *mut *mut cadenas_contain_options,
) -> cadenas_result {
    guard(|| {
        hand_out(
            options_out,
            Options(Mutex::new(OptionsData::default())),
            "options_out",
        )
    })
}

/// New passwords go to a new file at `path` (mode 0600, `user<TAB>password` lines, never
/// overwritten: the call fails if it exists), created when the first one is set.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_set_password_file(
    options: *mut cadenas_contain_options,
    path: *const c_char,
) -> cadenas_result {
    guard(|| {
        let path = PathBuf::from(text(path, "path")?);
        edit(options, |o| o.password_file = Some(path))
    })
}

/// New passwords go to `callback` (see `cadenas_password_callback`); replaces a password file.
/// `callback` NULL removes it.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_set_password_callback(
    options: *mut cadenas_contain_options,
    callback: cadenas_password_callback,
    userdata: *mut c_void,
) -> cadenas_result {
    guard(|| {
        edit(options, |o| {
            o.password_cb = callback.map(|f| Callback { f, userdata })
        })
    })
}

/// Calls `callback` after each user (see `cadenas_progress_callback`); NULL removes it.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_set_progress_callback(
    options: *mut cadenas_contain_options,
    callback: cadenas_progress_callback,
    userdata: *mut c_void,
) -> cadenas_result {
    guard(|| {
        edit(options, |o| {
            o.progress = callback.map(|f| Callback { f, userdata })
        })
    })
}

/// The incident identifier (NULL: generated).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_set_incident(
    options: *mut cadenas_contain_options,
    incident: *const c_char,
) -> cadenas_result {
    guard(|| {
        let v = opt_text(incident, "incident")?.map(str::to_owned);
        edit(options, |o| o.incident = v)
    })
}

/// Why (an alert or ticket reference), journaled with the run. Never put a secret here.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_set_reason(
    options: *mut cadenas_contain_options,
    reason: *const c_char,
) -> cadenas_result {
    guard(|| {
        let v = opt_text(reason, "reason")?.map(str::to_owned);
        edit(options, |o| o.reason = v)
    })
}

/// Resets the password even of users already contained, for this journaled reason (NULL:
/// such a user's reset is "already so" and the password handed over before stays valid).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_set_reset_again(
    options: *mut cadenas_contain_options,
    reason: *const c_char,
) -> cadenas_result {
    guard(|| {
        let v = opt_text(reason, "reason")?.map(str::to_owned);
        edit(options, |o| o.reset_again = v)
    })
}

/// Acts on members of the configured protected groups too.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_set_allow_protected(
    options: *mut cadenas_contain_options,
    allow: bool,
) -> cadenas_result {
    guard(|| edit(options, |o| o.allow_protected = allow))
}

/// Accounts worked on at once (1 to 1024; default 32); one waiting only for the shared
/// MFA-group modify gives its place to the next.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_set_concurrency(
    options: *mut cadenas_contain_options,
    concurrency: usize,
) -> cadenas_result {
    guard(|| {
        if !(1..=1024).contains(&concurrency) {
            return Err(Failure::new(
                cadenas_result::InvalidInput,
                format!("concurrency must be 1 to 1024, not {concurrency}"),
            ));
        }
        edit(options, |o| o.concurrency = Some(concurrency))
    })
}

/// Frees options (NULL and options freed already are ignored).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_contain_options_free(options: *mut cadenas_contain_options) {
    guard_value((), || release::<Options, _>(options));
}

/// Hands passwords to a C callback.
struct CallbackSink(Callback<PasswordFnPtr>);

/// What a `cadenas_handover` handle holds during the callback.
struct Handover(Password);

impl PasswordSink for CallbackSink {
    fn deliver(&self, user: &str, dn: &str, password: &Password) -> Result<(), Error> {
        let c = |s: &str| {
            CString::new(s).map_err(|_| Error::new(ErrorKind::InvalidInput, "a name holds a NUL byte"))
        };
        let (user, dn) = (c(user)?, c(dn)?);
        let h: *mut cadenas_handover = crate::boundary::export(Handover(password.clone()));
        // SAFETY: `f` is the caller's function with the documented signature; the strings and
        // the handover handle live until after it returns; this runs on the caller's thread.
        let rc = unsafe { (self.0.f)(self.0.userdata, user.as_ptr(), dn.as_ptr(), h) };
        // Freed (and the copy zeroized) whatever happened: using it later is refused.
        release::<Handover, _>(h);
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Io,
                format!("the password callback returned {rc}; the account stays locked"),
            ))
        }
    }

    fn describe(&self) -> String {
        "the caller's password callback".into()
    }
}

/// The sink of options without one: a containment that resets fails that user's reset.
struct NoSink;

impl PasswordSink for NoSink {
    fn deliver(&self, _user: &str, _dn: &str, _password: &Password) -> Result<(), Error> {
        Err(Error::new(
            ErrorKind::InvalidInput,
            "no password hand-over was set (cadenas_contain_options_set_password_file or _callback)",
        ))
    }

    fn describe(&self) -> String {
        "none".into()
    }
}

/// Copies the new password being handed over into `buf` (NUL-terminated; `*out_n` its
/// length). Valid only during the password callback that received `handover`. Wipe your copy
/// (`explicit_bzero`) as soon as it is delivered.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_handover_password(
    handover: *const cadenas_handover,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| {
        let h = borrow::<Handover, _>(handover, "handover")?;
        copy_out(h.0.expose_secret().as_bytes(), buf, len, out_n)
    })
}

/// The core options for one call (a new cancel token each time).
fn contain_options(o: *const cadenas_contain_options) -> Result<ContainOptions, Failure> {
    let data = options_ref(o)?.0.lock().unwrap_or_else(PoisonError::into_inner);
    let sink: Arc<dyn PasswordSink> = match (&data.password_cb, &data.password_file) {
        (Some(cb), _) => Arc::new(CallbackSink(*cb)),
        (None, Some(path)) => Arc::new(FileSink::create(path)?),
        (None, None) => Arc::new(NoSink),
    };
    let mut opts = ContainOptions::new(sink);
    opts.incident = data.incident.clone();
    opts.reason = data.reason.clone();
    opts.reset_again = data.reset_again.clone();
    opts.allow_protected = data.allow_protected;
    if let Some(n) = data.concurrency {
        opts.concurrency = n;
    }
    if let Some(cb) = data.progress {
        let cancel = CancelToken::new();
        opts.cancel = Some(cancel.clone());
        opts.progress = Some(Arc::new(move |p: &Progress| {
            let Ok(user) = CString::new(p.user.as_str()) else {
                return;
            };
            if cb.progress(&user, p) != 0 {
                cancel.cancel();
            }
        }));
    }
    Ok(opts)
}

fn responder_ref<'a>(r: *const cadenas_responder) -> Result<&'a BlockingResponder, Failure> {
    borrow::<BlockingResponder, _>(r, "responder")
}

/// A responder for `config`, journaling to the file `journal_path` (NULL: the journal the
/// config's `[journal]` names — a file, or the PostgreSQL database several hosts share).
/// Connects to the directory now; nothing runs between calls.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_new(
    config: *const cadenas_config,
    journal_path: *const c_char,
    responder_out: *mut *mut cadenas_responder,
) -> cadenas_result {
    guard(|| {
        let cfg = config_ref(config)?;
        let journal = opt_text(journal_path, "journal_path")?.map(PathBuf::from);
        not_null(responder_out, "responder_out")?;
        let responder = match journal {
            Some(p) => BlockingResponder::new(cfg, &p)?,
            None => BlockingResponder::from_config(cfg)?,
        };
        hand_out(responder_out, responder, "responder_out")
    })
}

/// A responder without a journal: `cadenas_responder_plan` and `_status` only.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_new_without_journal(
    config: *const cadenas_config,
    responder_out: *mut *mut cadenas_responder,
) -> cadenas_result {
    guard(|| {
        let cfg = config_ref(config)?;
        not_null(responder_out, "responder_out")?;
        hand_out(
            responder_out,
            BlockingResponder::without_journal(cfg)?,
            "responder_out",
        )
    })
}

fn hand_report(out: *mut *mut cadenas_report, r: Report) -> Result<(), Failure> {
    hand_out(out, r, "report_out")
}

/// Contains one user: lock, reset (strong random password, forced change, handed to the
/// options' sink), revoke sessions, require MFA — each step journaled. `options` NULL: the
/// defaults, which have no password hand-over (the reset then fails and the account stays
/// locked). Per-user failures are in the report, not the result.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_contain(
    responder: *const cadenas_responder,
    user: *const c_char,
    options: *const cadenas_contain_options,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        let user = text(user, "user")?.to_owned();
        contain_users(responder, vec![user], options, report_out)
    })
}

/// `cadenas_responder_contain` for `count` users at once (the options' concurrency).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_contain_list(
    responder: *const cadenas_responder,
    users: *const *const c_char,
    count: usize,
    options: *const cadenas_contain_options,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        let users = texts(users, count, "users")?;
        contain_users(responder, users, options, report_out)
    })
}

fn default_options(o: *const cadenas_contain_options) -> Result<ContainOptions, Failure> {
    if o.is_null() {
        Ok(ContainOptions::new(Arc::new(NoSink)))
    } else {
        contain_options(o)
    }
}

fn contain_users(
    r: *const cadenas_responder,
    users: Vec<String>,
    o: *const cadenas_contain_options,
    out: *mut *mut cadenas_report,
) -> Result<(), Failure> {
    let r = responder_ref(r)?;
    not_null(out, "report_out")?;
    let opts = default_options(o)?;
    let report = r.contain(&UserRef::parse_all(&users)?, opts)?;
    hand_report(out, Report::contain(&report)?)
}

/// Finishes the unfinished run of `incident` (NULL: the journal's last) with `options`
/// (NULL: the defaults).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_resume(
    responder: *const cadenas_responder,
    incident: *const c_char,
    options: *const cadenas_contain_options,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        let r = responder_ref(responder)?;
        let incident = opt_text(incident, "incident")?;
        not_null(report_out, "report_out")?;
        let report = r.resume(incident, default_options(options)?)?;
        hand_report(report_out, Report::contain(&report)?)
    })
}

/// A dry run for `count` users: what containment would do, from the directory as it is now.
/// Nothing is changed.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_plan(
    responder: *const cadenas_responder,
    users: *const *const c_char,
    count: usize,
    allow_protected: bool,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        let r = responder_ref(responder)?;
        let users = texts(users, count, "users")?;
        not_null(report_out, "report_out")?;
        let plan = r.plan(&UserRef::parse_all(&users)?, allow_protected)?;
        hand_report(report_out, Report::plan(&plan)?)
    })
}

/// Releases a contained user: restores the lock flags the journal recorded before the
/// containment (the new password and the MFA requirement stay). Refused
/// (`CADENAS_RESULT_RELEASE_REFUSED`) unless the user has an active MFA enrolment or
/// `override_reason` (journaled) is given.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_release(
    responder: *const cadenas_responder,
    user: *const c_char,
    override_reason: *const c_char,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        let r = responder_ref(responder)?;
        let user = text(user, "user")?;
        let mut opts = ReleaseOptions::default();
        if let Some(reason) = opt_text(override_reason, "override_reason")? {
            opts = opts.with_override_reason(reason);
        }
        not_null(report_out, "report_out")?;
        let report = r.release(&UserRef::parse(user)?, opts)?;
        hand_report(report_out, Report::release(&report)?)
    })
}

/// The account as it is now (lock state, forced change, MFA group, protected groups).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_status(
    responder: *const cadenas_responder,
    user: *const c_char,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        let r = responder_ref(responder)?;
        let user = text(user, "user")?;
        not_null(report_out, "report_out")?;
        let state = r.status(&UserRef::parse(user)?)?;
        hand_report(report_out, Report::status(&state)?)
    })
}

/// Frees a responder (NULL and a responder freed already are ignored); closes its
/// connections before returning.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_responder_free(responder: *mut cadenas_responder) {
    guard_value((), || release::<BlockingResponder, _>(responder));
}

/// Recomputes the journal's hash chain — and, when `config` (may be NULL) has a `[journal]
/// key_file`, every record's HMAC. `path` is a journal file; NULL: the journal `config`'s
/// `[journal]` names (a file, or PostgreSQL). A broken chain is
/// `CADENAS_RESULT_JOURNAL_TAMPERED` (where, in `cadenas_last_error_message`); on success the
/// report gives the record count (JSON) and the head (`cadenas_report_journal_head`).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_journal_verify(
    config: *const cadenas_config,
    path: *const c_char,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        not_null(report_out, "report_out")?;
        let (location, key) = journal_of(config, path)?;
        let v = location.verify(key.as_ref())?;
        if let Some(bad) = &v.first_bad {
            return Err(Failure::new(
                cadenas_result::JournalTampered,
                format!(
                    "journal {location} is broken at line {}: {}",
                    bad.line, bad.reason
                ),
            ));
        }
        hand_report(report_out, Report::verify(&v)?)
    })
}

/// The journal `path` names (a file), or else the one `config` (may be NULL) names, with the
/// config's journal key: what `cadenas_journal_verify` and `cadenas_incident_report` read. A
/// file that does not exist is `CADENAS_RESULT_JOURNAL`.
pub(crate) fn journal_of(
    config: *const cadenas_config,
    path: *const c_char,
) -> Result<(journal::Location, Option<core_api::Secret>), Failure> {
    let journal_cfg = if config.is_null() {
        None
    } else {
        config_ref(config)?.journal.as_ref()
    };
    let key = journal_cfg.map(|j| j.key()).transpose()?.flatten();
    let given = opt_text(path, "path")?.map(PathBuf::from);
    let location = journal::Location::resolve(given.as_deref(), journal_cfg)?.ok_or_else(|| {
        Failure::new(
            cadenas_result::InvalidInput,
            "path is NULL and config has no [journal]",
        )
    })?;
    if let journal::Location::File(p) = &location {
        if !p.exists() {
            return Err(Failure::new(
                cadenas_result::Journal,
                format!("no journal at {}", p.display()),
            ));
        }
    }
    Ok((location, key))
}
