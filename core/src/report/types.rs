//! What an incident report holds: the same shape in Rust, the CLI's `--json`, Python and C.

use serde::{Deserialize, Serialize};

use crate::directory::AttributeChange;
use crate::error::Error;
use crate::investigate::Instant;
use crate::journal::{BadRecord, Step, StepStatus};
use crate::notify::NotifyEvent;

/// Up to this many accounts, the timeline draws one row per account; beyond, the curves of
/// how many accounts had reached each step.
pub const TIMELINE_ROWS_MAX: usize = 50;

/// Up to this many accounts, the page lists every account; beyond, those that need attention
/// (the full table goes to [`IncidentReport::accounts_csv`]).
pub const ACCOUNTS_INLINE: usize = 500;

/// What the report is built with, beyond the journal.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReportOptions {
    /// When the alert came (the SMS, the call): the summary counts from it too.
    pub alert_at: Option<Instant>,
}

impl ReportOptions {
    /// The options with the alert's time.
    pub fn with_alert_at(mut self, at: Instant) -> Self {
        self.alert_at = Some(at);
        self
    }
}

/// The incident record, computed from the journal's records of one incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IncidentReport {
    /// The incident identifier.
    pub incident: String,
    /// Whether the records verified, and which records the report was made from.
    pub proof: Proof,
    /// The figures a non-technical reader needs.
    pub summary: Summary,
    /// Each run of the incident (contain, resume, release), in journal order.
    pub runs: Vec<RunSummary>,
    /// When accounts reached each step.
    pub timeline: Timeline,
    /// Per account, in the order the journal first names them.
    pub accounts: Vec<AccountRecord>,
    /// The attacker's addresses the runs acted on, and the accounts seen from them.
    pub attacker: Vec<AttackerAddress>,
    /// Who was told what (addresses, never content).
    pub notifications: Vec<NotificationLine>,
}

/// The proof: the journal's chain, and the records this report comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Proof {
    /// The journal (file path or database URL without password).
    pub journal: String,
    /// Records in the journal that verified (all incidents), up to a break.
    pub journal_records: usize,
    /// The SHA-256 of the last record that verified: compare it with the head kept in the
    /// incident ticket (`cadenas journal verify` prints it).
    pub head: String,
    /// Whether every record's MAC was checked (`[journal] key_file`).
    pub macs_checked: bool,
    /// The first record that does not verify (edited, removed, inserted, forged): every
    /// figure after it is unproven.
    pub broken_at: Option<BadRecord>,
    /// This incident's records the report was made from.
    pub records: usize,
    /// Their sequence numbers, as inclusive ranges.
    pub seq_ranges: Vec<(u64, u64)>,
    /// Of them, those read after the break: shown, but not proven by the chain.
    pub unproven_records: usize,
}

impl Proof {
    /// Whether the whole journal verified: no record edited, removed, inserted or forged.
    pub fn intact(&self) -> bool {
        self.broken_at.is_none()
    }
}

/// Most account names a page shows for one problem (the JSON holds them all).
pub const PROBLEM_USERS_SHOWN: usize = 20;

/// The figures of the summary. Times are RFC 3339 UTC (the journal's, to the millisecond);
/// durations in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Summary {
    /// When the alert came, when given.
    pub alert_at: Option<String>,
    /// When the containment started (the first contain run).
    pub started_at: Option<String>,
    /// The first account locked.
    pub first_lock_at: Option<String>,
    /// The last account locked: from then on the stolen passwords opened nothing — when
    /// [`all_locked`](Self::all_locked).
    pub last_lock_at: Option<String>,
    /// When the last containment run ended (or its last record, when it was interrupted).
    pub ended_at: Option<String>,
    /// Every account the containment was asked for was locked.
    pub all_locked: bool,
    /// From the start to the last lock.
    pub to_last_lock_ms: Option<u64>,
    /// From the start to the end.
    pub to_end_ms: Option<u64>,
    /// From the alert to the last lock, when the alert's time was given.
    pub alert_to_last_lock_ms: Option<u64>,
    /// Accounts named by the containment runs.
    pub accounts: usize,
    /// Of them, with every step done.
    pub contained: usize,
    /// With a step failed, partly done or cut short: someone must look.
    pub needs_attention: usize,
    /// Refused before anything changed (unknown, protected, out of scope).
    pub refused: usize,
    /// Released since (the original flags restored).
    pub released: usize,
    /// Sessions closed (IMAP, POP3, ManageSieve... as the revokers counted them), by the
    /// accounts' revocations and the address kicks.
    pub sessions_closed: usize,
    /// Mail rules (Sieve scripts sending outside) deactivated.
    pub mail_rules_deactivated: usize,
    /// Messages put on hold in the mail queue.
    pub mail_held: usize,
    /// Notifications delivered, and not delivered.
    pub notifications_delivered: usize,
    /// Notifications that could not be delivered.
    pub notifications_failed: usize,
    /// What could not be done, and why: the accounts grouped by step, status and reason, in
    /// the order first met (at most [`ACCOUNTS_INLINE`] groups; `problems_total` counts them
    /// all).
    pub problems: Vec<Problem>,
    /// Every group of problems, counted.
    pub problems_total: usize,
}

/// Something that could not be done, for one or more accounts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Problem {
    /// The step, when one failed, was partly done or not run (none: refused).
    pub step: Option<Step>,
    /// How the step ended (none: refused, cut short, or not run).
    pub status: Option<StepStatus>,
    /// How the accounts ended.
    pub outcome: AccountOutcome,
    /// Why, in words (the error or the note the journal holds).
    pub why: String,
    /// The accounts.
    pub users: Vec<String>,
}

/// How an account ended, as far as the journal says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccountOutcome {
    /// Every step done.
    Contained,
    /// A step failed or was partly done.
    NeedsAttention,
    /// A step was started and its outcome never written, or steps are missing (an interrupted
    /// run not resumed).
    Interrupted,
    /// Refused before anything changed.
    Refused,
    /// Contained, then released.
    Released,
}

impl AccountOutcome {
    /// The stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            AccountOutcome::Contained => "contained",
            AccountOutcome::NeedsAttention => "needs_attention",
            AccountOutcome::Interrupted => "interrupted",
            AccountOutcome::Refused => "refused",
            AccountOutcome::Released => "released",
        }
    }
}

/// One run of the incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// contain, resume or release.
    pub action: String,
    /// When it started.
    pub started_at: String,
    /// When it ended (none: interrupted, or still running).
    pub ended_at: Option<String>,
    /// Accounts it was given.
    pub accounts: usize,
    /// Accounts done, as its end record says.
    pub done: Option<usize>,
    /// Accounts refused or failed, as its end record says.
    pub failed: Option<usize>,
    /// The operator's reason or note.
    pub note: Option<String>,
    /// The attacker's range it kicked at its end (`--from-ip`).
    pub kick_from: Option<String>,
}

/// When accounts reached each step: rows for a few accounts, curves for many.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timeline {
    /// The origin (the first contain run's start); offsets count from it.
    pub origin: Option<String>,
    /// The last event drawn, in ms from the origin.
    pub span_ms: u64,
    /// The first and the last lock, in ms from the origin.
    pub first_lock_ms: Option<u64>,
    /// See `first_lock_ms`.
    pub last_lock_ms: Option<u64>,
    /// The alert, in ms from the origin, when it came after the start (an alert before the
    /// start is in the summary only).
    pub alert_ms: Option<u64>,
    /// One row per account, up to [`TIMELINE_ROWS_MAX`] accounts (else empty).
    pub rows: Vec<TimelineRow>,
    /// Per step, how many accounts had reached it over time.
    pub curves: Vec<Curve>,
}

/// One account on the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelineRow {
    /// The account.
    pub user: String,
    /// Each step done, with its time in ms from the origin.
    pub steps: Vec<(Step, u64)>,
    /// Whether something needs attention on this account.
    pub attention: bool,
}

/// How many accounts had reached a step over time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Curve {
    /// The step.
    pub step: Step,
    /// Accounts that reached it, in all.
    pub total: usize,
    /// (ms from the origin, accounts by then), at most ~100 points, ending at the total.
    pub points: Vec<(u64, usize)>,
}

/// One account's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountRecord {
    /// The account as given.
    pub user: String,
    /// Its entry, once found.
    pub dn: Option<String>,
    /// How it ended.
    pub outcome: AccountOutcome,
    /// Each step's last outcome, in step order.
    pub steps: Vec<StepLine>,
    /// Why it was refused.
    pub refused: Option<Error>,
    /// Sessions its revocations closed.
    pub sessions_closed: usize,
    /// Mail rules deactivated (script names).
    pub mail_rules_deactivated: Vec<String>,
    /// Mail rules found that send outside and were left active.
    pub mail_rules_left_active: Vec<String>,
    /// Messages put on hold.
    pub mail_held: usize,
    /// What changed on the entry since `--changes-since` (the containment's own changes
    /// included), when it was asked.
    pub changes: Option<Vec<AttributeChange>>,
    /// Messages it sent since then, when it was asked and a Postfix log was configured.
    pub sent_messages: Option<usize>,
    /// Who was told about this account (notifier: addresses).
    pub notified: Vec<String>,
    /// When it was released.
    pub released_at: Option<String>,
}

/// One step of one account: its last outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepLine {
    /// The step.
    pub step: Step,
    /// How it ended (none: started, no outcome written).
    pub status: Option<StepStatus>,
    /// When it ended (or started, without an outcome).
    pub at: String,
    /// When it was first done (an earlier try's time when a later one found it done already).
    pub done_at: Option<String>,
    /// From its intent to its outcome, ms.
    pub took_ms: Option<u64>,
    /// Tries (more than one: failed, then done by a later try or a resume).
    pub tries: u32,
    /// The note or error, in words.
    pub note: Option<String>,
}

/// An attacker's address range and what the runs saw and did there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttackerAddress {
    /// `ADDRESS/PREFIX`.
    pub range: String,
    /// The accounts seen from it (the runs that contained from it).
    pub accounts: Vec<String>,
    /// Sessions from it closed by the address kicks.
    pub sessions_closed: usize,
}

/// One notification sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NotificationLine {
    /// When (the journal record's time).
    pub at: String,
    /// The notifier's name.
    pub notifier: String,
    /// The event.
    pub event: NotifyEvent,
    /// Addresses, URL or program.
    pub recipients: Vec<String>,
    /// The accounts it was about.
    pub users: usize,
    /// Whether it was delivered.
    pub delivered: bool,
}
