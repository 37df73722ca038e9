//! The typed results of a run: one shape for Rust callers, the CLI's `--json`, Python and C.

use serde::{Deserialize, Serialize};

use crate::directory::{AttributeChange, Change, ReplicaCheck, ReplicaState};
use crate::error::Error;
use crate::investigate::{MailRule, PivotReport};
use crate::journal::{Step, StepDetail, StepStatus};
use crate::notify::NotificationOutcome;
use crate::session::RevocationOutcome;

/// Progress of a bulk run, after each user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

/// One step's result for one user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepReport {
    /// The step.
    pub step: Step,
    /// How it ended (a step finished by an earlier run shows its earlier status).
    pub status: StepStatus,
    /// What it did: the change (before/after), revocation outcomes, or the error.
    pub detail: StepDetail,
    /// True when an earlier (interrupted) run had already finished this step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_earlier_run: bool,
}

/// One user's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserReport {
    /// The user as given.
    pub user: String,
    /// The entry, once found.
    pub dn: Option<String>,
    /// Why nothing was done, when refused (unknown, protected, out of scope...).
    pub refused: Option<Error>,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// Every step is done (not refused, nothing failed, not interrupted).
    pub complete: bool,
    /// The run was cancelled before this user's steps were all run: `resume` finishes them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// What changed on the entry since [`ContainOptions::changes_since`](super::ContainOptions)
    /// (read after the steps; the containment's own changes included, by the responder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<AttributeChange>>,
    /// Why the changes could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_error: Option<Error>,
    /// What the account sent since [`ContainOptions::changes_since`](super::ContainOptions),
    /// from `[postfix] log_files` (numbers and addresses, never content; `None`: not asked or
    /// no Postfix log configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_mail: Option<crate::postfix::SentMail>,
}

impl UserReport {
    pub(crate) fn new(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            dn: None,
            refused: None,
            steps: Vec::new(),
            complete: false,
            interrupted: false,
            changes: None,
            changes_error: None,
            sent_mail: None,
        }
    }

    /// Sets [`complete`](Self::complete) from the steps (`expected` of them were asked for);
    /// called once the user's work ended.
    pub(crate) fn finish(mut self, expected: usize) -> Self {
        self.complete = !self.interrupted
            && self.refused.is_none()
            && self.steps.len() == expected
            && self.steps.iter().all(|s| s.status.is_done());
        self
    }

    /// Whether every step is done.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Whether anything in the directory was changed for this user by this run.
    pub fn changed_something(&self) -> bool {
        self.steps.iter().any(|s| {
            !s.from_earlier_run && s.status != StepStatus::AlreadySo && s.status != StepStatus::Failed
        })
    }
}

/// The result of a containment (or a resume).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContainReport {
    /// Incident identifier.
    pub incident: String,
    /// Per user, in the order given.
    pub users: Vec<UserReport>,
    /// Users fully contained.
    pub done: usize,
    /// Users refused, with a failed step, or interrupted.
    pub failed: usize,
    /// The run was cancelled at a step boundary; `resume` finishes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// What this run did not (could not) revoke, in words.
    pub not_revoked: Vec<String>,
    /// What else an operator must know about the run (e.g. a journal repaired after a crash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Where the new passwords went ([`PasswordSink::describe`](super::PasswordSink::describe)).
    pub password_handover: String,
    /// The journal file.
    pub journal: String,
    /// SHA-256 of the journal's last line after the run: keep it to pin the journal.
    pub journal_head: String,
    /// The pivot that chose the users (`contain_from`): who was seen from where, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pivot: Option<PivotReport>,
    /// The kick of every session from the attacker's range, one outcome per Dovecot
    /// (`contain_from`, after the accounts' steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_kicks: Vec<RevocationOutcome>,
    /// The notifications sent after the run (`[[notify]]`), one outcome per message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationOutcome>,
    /// What each replica (`[directory] replicas`) showed after the steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaCheck>,
}

impl ContainReport {
    /// Users fully contained.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Users refused, with a failed step, or interrupted.
    pub fn failed(&self) -> usize {
        self.failed
    }
}

/// One step of a dry run, as it would run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlannedStep {
    /// The step.
    pub step: Step,
    /// `changed` or `already_so`, as `contain` would report it if nothing changes meanwhile.
    pub predicted: StepStatus,
    /// The exact directory modifications or calls, in words (no secrets).
    pub actions: Vec<String>,
}

/// One user's plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserPlan {
    /// The user as given.
    pub user: String,
    /// The entry, once found.
    pub dn: Option<String>,
    /// Why `contain` would refuse this user.
    pub refused: Option<Error>,
    /// The steps.
    pub steps: Vec<PlannedStep>,
}

/// The dry run's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlanReport {
    /// Per user, in the order given.
    pub users: Vec<UserPlan>,
    /// The pivot that chose the users (`plan_from`): who was seen from where, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pivot: Option<PivotReport>,
    /// What `contain_from` would do after the accounts' steps (the kick by address), in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_actions: Vec<String>,
}

/// The result of a release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReleaseReport {
    /// Incident identifier of the release.
    pub incident: String,
    /// The entry.
    pub dn: String,
    /// The restore change (before/after).
    pub change: Change,
    /// What release leaves as containment set it.
    pub kept: Vec<String>,
    /// The notifications sent (`[[notify]]` with `released`), one outcome per message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationOutcome>,
}

/// An account's state as `status` shows it: the directory's view, and the mail rules found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// Lock, must-change, MFA requirement, protected groups.
    #[serde(flatten)]
    pub account: crate::directory::AccountState,
    /// Sieve scripts that send mail outside the local domains (with `[mail]` configured).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mail_rules: Vec<MailRule>,
    /// What changed on the entry since the time asked for (`None`: not asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<AttributeChange>>,
    /// The lock on each replica (`[directory] replicas`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaState>,
}
