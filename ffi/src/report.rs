//! `cadenas_report`: what an operation returns — the same typed report as Rust, `--json` and
//! Python, readable as JSON text and through a few accessors.

use std::ffi::c_char;

use core_api::directory::AccountState;
use core_api::incident::{ContainReport, PlanReport, ReleaseReport};
use core_api::journal::VerifyReport;
use core_api::report::{IncidentReport, ReportOptions};

use crate::boundary::{borrow, copy_out, guard, guard_value, not_null, release, Failure};
use crate::result::cadenas_result;

/// A report (opaque): free with `cadenas_report_free()`.
pub struct cadenas_report {
    _private: [u8; 0],
}

/// Which operation a report comes from.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cadenas_operation {
    /// `cadenas_responder_contain*` or `cadenas_responder_resume`.
    Contain = 1,
    /// `cadenas_responder_plan` (a dry run: nothing was changed).
    Plan = 2,
    /// `cadenas_responder_release`.
    Release = 3,
    /// `cadenas_responder_status`.
    Status = 4,
    /// `cadenas_journal_verify`.
    JournalVerify = 5,
    /// `cadenas_incident_report`.
    IncidentReport = 6,
    /// `cadenas_watch_replay`: the alerts the rules would have raised (a JSON array).
    WatchReplay = 7,
    /// `cadenas_watch_alerts`: the alerts the journal holds, each with what was done about
    /// it (a JSON array).
    WatchAlerts = 8,
}

/// How one user of a containment ended.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cadenas_user_status {
    /// Every step is done: the attacker is out.
    Done = 1,
    /// A step failed (the report's JSON says which and why); the account may still be
    /// locked — `cadenas_responder_resume` finishes it.
    Failed = 2,
    /// Nothing was done: unknown user, protected account, out of scope
    /// (`cadenas_report_user_error` gives the code).
    Refused = 3,
    /// The run was stopped before this user's steps were all run; resume finishes them.
    Interrupted = 4,
}

/// One user line of a containment or a plan.
pub(crate) struct UserLine {
    name: String,
    status: cadenas_user_status,
    error: cadenas_result,
}

/// What a report handle holds: the JSON and what the accessors read.
pub(crate) struct Report {
    kind: cadenas_operation,
    json: String,
    users: Vec<UserLine>,
    done: usize,
    failed: usize,
    incident: String,
    journal_head: String,
}

fn json_of<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(cadenas_result::Internal, format!("report to JSON: {e}")))
}

impl Report {
    fn empty(kind: cadenas_operation, json: String) -> Self {
        Self {
            kind,
            json,
            users: Vec::new(),
            done: 0,
            failed: 0,
            incident: String::new(),
            journal_head: String::new(),
        }
    }

    pub(crate) fn contain(r: &ContainReport) -> Result<Self, Failure> {
        let users = r
            .users
            .iter()
            .map(|u| {
                let (status, error) = match &u.refused {
                    Some(e) => (cadenas_user_status::Refused, cadenas_result::of_kind(e.kind())),
                    None if u.interrupted => (cadenas_user_status::Interrupted, cadenas_result::Ok),
                    None if u.complete() => (cadenas_user_status::Done, cadenas_result::Ok),
                    None => (cadenas_user_status::Failed, first_step_error(u)),
                };
                UserLine {
                    name: u.user.clone(),
                    status,
                    error,
                }
            })
            .collect();
        Ok(Self {
            users,
            done: r.done(),
            failed: r.failed(),
            incident: r.incident.clone(),
            journal_head: r.journal_head.clone(),
            ..Self::empty(cadenas_operation::Contain, json_of(r)?)
        })
    }

    pub(crate) fn plan(r: &PlanReport) -> Result<Self, Failure> {
        let users: Vec<UserLine> = r
            .users
            .iter()
            .map(|u| match &u.refused {
                Some(e) => UserLine {
                    name: u.user.clone(),
                    status: cadenas_user_status::Refused,
                    error: cadenas_result::of_kind(e.kind()),
                },
                None => UserLine {
                    name: u.user.clone(),
                    status: cadenas_user_status::Done,
                    error: cadenas_result::Ok,
                },
            })
            .collect();
        let failed = users
            .iter()
            .filter(|u| u.status == cadenas_user_status::Refused)
            .count();
        Ok(Self {
            done: users.len() - failed,
            failed,
            users,
            ..Self::empty(cadenas_operation::Plan, json_of(r)?)
        })
    }

    pub(crate) fn release(r: &ReleaseReport) -> Result<Self, Failure> {
        Ok(Self {
            incident: r.incident.clone(),
            ..Self::empty(cadenas_operation::Release, json_of(r)?)
        })
    }

    pub(crate) fn status(s: &AccountState) -> Result<Self, Failure> {
        Ok(Self::empty(cadenas_operation::Status, json_of(s)?))
    }

    pub(crate) fn incident(r: &IncidentReport) -> Result<Self, Failure> {
        Ok(Self {
            done: r.summary.contained,
            failed: r.summary.needs_attention + r.summary.refused,
            incident: r.incident.clone(),
            journal_head: r.proof.head.clone(),
            ..Self::empty(cadenas_operation::IncidentReport, json_of(r)?)
        })
    }

    /// A list of alerts: `done` counts them.
    pub(crate) fn alerts<T: serde::Serialize>(kind: cadenas_operation, list: &[T]) -> Result<Self, Failure> {
        Ok(Self {
            done: list.len(),
            ..Self::empty(kind, json_of(&list)?)
        })
    }

    pub(crate) fn verify(v: &VerifyReport) -> Result<Self, Failure> {
        Ok(Self {
            journal_head: v.head.clone(),
            ..Self::empty(cadenas_operation::JournalVerify, json_of(v)?)
        })
    }
}

/// The code of the first failed step of a user, `CADENAS_RESULT_OK` if it gave none.
fn first_step_error(u: &core_api::incident::UserReport) -> cadenas_result {
    u.steps
        .iter()
        .find_map(|s| s.detail.error.as_ref())
        .map_or(cadenas_result::Ok, |e| cadenas_result::of_kind(e.kind()))
}

fn report_ref<'a>(r: *const cadenas_report) -> Result<&'a Report, Failure> {
    borrow::<Report, _>(r, "report")
}

/// The operation the report comes from (a `cadenas_operation`); 0 if `report` is not a live report.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_kind(report: *const cadenas_report) -> u32 {
    guard_value(0, || report_ref(report).map_or(0, |r| r.kind as u32))
}

/// Copies the whole report as JSON (the shape of `cadenas --json` and of the Rust and Python
/// reports) into `buf`. Reports never contain passwords.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_json(
    report: *const cadenas_report,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| copy_out(report_ref(report)?.json.as_bytes(), buf, len, out_n))
}

/// Users of a containment or plan report (0 for other kinds, and for a handle that is not a
/// live report).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_user_count(report: *const cadenas_report) -> usize {
    guard_value(0, || report_ref(report).map_or(0, |r| r.users.len()))
}

/// Users fully contained (containment) or that would be acted on (plan).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_done(report: *const cadenas_report) -> usize {
    guard_value(0, || report_ref(report).map_or(0, |r| r.done))
}

/// Users refused, with a failed step or interrupted (containment); refused (plan).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_failed(report: *const cadenas_report) -> usize {
    guard_value(0, || report_ref(report).map_or(0, |r| r.failed))
}

fn user_ref<'a>(report: *const cadenas_report, index: usize) -> Result<&'a UserLine, Failure> {
    report_ref(report)?.users.get(index).ok_or_else(|| {
        Failure::new(
            cadenas_result::OutOfRange,
            format!("user index {index} is past the end of the report"),
        )
    })
}

/// Copies the name of user `index` (as given to the call) into `buf`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_user_name(
    report: *const cadenas_report,
    index: usize,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| copy_out(user_ref(report, index)?.name.as_bytes(), buf, len, out_n))
}

/// Writes how user `index` ended (`cadenas_user_status`) to `*status_out` and the code of why
/// it was refused or failed (`CADENAS_RESULT_OK` if it was not) to `*error_out`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_user_status(
    report: *const cadenas_report,
    index: usize,
    status_out: *mut cadenas_user_status,
    error_out: *mut cadenas_result,
) -> cadenas_result {
    guard(|| {
        let u = user_ref(report, index)?;
        not_null(status_out, "status_out")?;
        not_null(error_out, "error_out")?;
        crate::boundary::write_out(status_out, u.status, "status_out")?;
        crate::boundary::write_out(error_out, u.error, "error_out")
    })
}

/// Copies the incident identifier (containment, release) into `buf`; empty for other kinds.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_incident(
    report: *const cadenas_report,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| copy_out(report_ref(report)?.incident.as_bytes(), buf, len, out_n))
}

/// Copies the journal's head (SHA-256 of its last line; keep it to pin the journal) after a
/// containment, or as verified, into `buf`; empty for other kinds.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_journal_head(
    report: *const cadenas_report,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| copy_out(report_ref(report)?.journal_head.as_bytes(), buf, len, out_n))
}

/// Frees a report (NULL and a report freed already are ignored).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_report_free(report: *mut cadenas_report) {
    guard_value((), || release::<Report, _>(report));
}

/// The incident record of `incident`, read from the journal `path` names (a file), or else
/// from the one `config` (may be NULL) names — checked with the config's journal key, when it
/// has one. The report's JSON (`cadenas_report_json`) is what `cadenas report --json` prints
/// and Python's `IncidentReport.to_dict()` holds: summary, runs, timeline, every account, the
/// attacker's addresses, notifications and the proof. `cadenas_report_done` counts the
/// accounts contained, `cadenas_report_failed` those that need attention or were refused;
/// `cadenas_report_incident` and `cadenas_report_journal_head` read it too.
///
/// A journal whose chain does not verify still gives its report (its JSON's
/// `proof.broken_at` names the first bad record; every figure is unproven), with the result
/// `CADENAS_RESULT_JOURNAL_TAMPERED`. An incident the journal does not hold is
/// `CADENAS_RESULT_INVALID_INPUT`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_incident_report(
    config: *const crate::config::cadenas_config,
    path: *const c_char,
    incident: *const c_char,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        not_null(report_out, "report_out")?;
        let incident = crate::boundary::text(incident, "incident")?;
        let (location, key) = crate::responder::journal_of(config, path)?;
        let report =
            IncidentReport::from_journal(&location, key.as_ref(), incident, &ReportOptions::default())?;
        let broken = report.proof.broken_at.clone();
        crate::boundary::hand_out(report_out, Report::incident(&report)?, "report_out")?;
        match broken {
            Some(bad) => Err(Failure::new(
                cadenas_result::JournalTampered,
                format!(
                    "journal {location} is broken at line {}: {} (the report names it)",
                    bad.line, bad.reason
                ),
            )),
            None => Ok(()),
        }
    })
}

/// The `[watch]` rules of `config` over the `n_logs` log files `logs` (plain or gzip'd,
/// oldest first), from `since` (RFC 3339, a date, or a time ago such as `"36h"`; NULL: from
/// the start): what would have been alerted, without following or changing anything. The
/// report's JSON (`cadenas_report_json`) is an array of alerts — `id`, `rule`, `account`,
/// `ip`, `at`, `detail`, `command` — as `cadenas watch --replay --json` prints them;
/// `cadenas_report_done` counts them. A config without `[watch]` is `CADENAS_RESULT_CONFIG`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_watch_replay(
    config: *const crate::config::cadenas_config,
    logs: *const *const c_char,
    n_logs: usize,
    since: *const c_char,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        not_null(report_out, "report_out")?;
        let cfg = crate::config::config_ref(config)?;
        let logs: Vec<std::path::PathBuf> = crate::boundary::texts(logs, n_logs, "logs")?
            .into_iter()
            .map(Into::into)
            .collect();
        let since = crate::boundary::opt_text(since, "since")?
            .map(core_api::investigate::Instant::parse)
            .transpose()?;
        let watch = cfg
            .watch
            .as_ref()
            .ok_or_else(|| Failure::new(cadenas_result::Config, "the config has no [watch] section"))?;
        let alerts = core_api::watch::Watcher::replay(watch, &logs, since)?;
        crate::boundary::hand_out(
            report_out,
            Report::alerts(cadenas_operation::WatchReplay, &alerts)?,
            "report_out",
        )
    })
}

/// The alerts the journal `config` names holds — what running watchers (`cadenas watch`)
/// raised, told and contained — oldest first, from `since` (as for `cadenas_watch_replay`;
/// NULL: all). The report's JSON is an array of `{"alert": {...}, "automatic": {...},
/// "notifications": [...]}`; `cadenas_report_done` counts them. The journal's chain (and
/// MACs, with a key) is verified as it is read: a broken one is
/// `CADENAS_RESULT_JOURNAL_TAMPERED`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_watch_alerts(
    config: *const crate::config::cadenas_config,
    since: *const c_char,
    report_out: *mut *mut cadenas_report,
) -> cadenas_result {
    guard(|| {
        not_null(report_out, "report_out")?;
        crate::config::config_ref(config)?;
        let since = crate::boundary::opt_text(since, "since")?
            .map(core_api::investigate::Instant::parse)
            .transpose()?;
        let (location, key) = crate::responder::journal_of(config, std::ptr::null())?;
        let alerts = core_api::watch::journaled_alerts(&location, key.as_ref(), since)?;
        crate::boundary::hand_out(
            report_out,
            Report::alerts(cadenas_operation::WatchAlerts, &alerts)?,
            "report_out",
        )
    })
}
