//! What the journal records: events, steps and their details, and the record around them.

use serde::{Deserialize, Serialize};

use crate::directory::{AttributeChange, Change, ReplicaCheck};
use crate::error::Error;
use crate::investigate::MailRule;
use crate::notify::NotificationOutcome;
use crate::session::RevocationOutcome;

/// A step of a containment or release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Lock the account.
    Lock,
    /// Reset the password with a forced change.
    ResetPassword,
    /// Revoke sessions and cached credentials.
    RevokeSessions,
    /// Require MFA and drop existing enrolments.
    RequireMfa,
    /// Put the account's mail still in the Postfix queue on hold (`[postfix]`).
    HoldMail,
    /// Restore the original lock flags (release).
    RestoreFlags,
}

impl Step {
    /// The stable snake_case name (as in the journal and `--json`).
    pub const fn name(self) -> &'static str {
        match self {
            Step::Lock => "lock",
            Step::ResetPassword => "reset_password",
            Step::RevokeSessions => "revoke_sessions",
            Step::RequireMfa => "require_mfa",
            Step::RestoreFlags => "restore_flags",
            Step::HoldMail => "hold_mail",
        }
    }

    /// The containment steps, in order. `HoldMail` runs only where a `[postfix]` section is
    /// configured.
    pub const CONTAIN: [Step; 5] = [
        Step::Lock,
        Step::ResetPassword,
        Step::RevokeSessions,
        Step::HoldMail,
        Step::RequireMfa,
    ];
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepStatus {
    /// The step changed something.
    Changed,
    /// Nothing needed changing.
    AlreadySo,
    /// The step failed; the record holds the typed error.
    Failed,
    /// Done, but part of it could not be revoked (the record says what).
    Partial,
}

impl StepStatus {
    /// The stable snake_case name (as in the journal and `--json`).
    pub const fn name(self) -> &'static str {
        match self {
            StepStatus::Changed => "changed",
            StepStatus::AlreadySo => "already_so",
            StepStatus::Failed => "failed",
            StepStatus::Partial => "partial",
        }
    }

    /// Whether the step needs no further work.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            StepStatus::Changed | StepStatus::AlreadySo | StepStatus::Partial
        )
    }
}

/// What one step did, typed: the same shape in the journal, in reports, in the CLI's `--json`
/// and in the bindings. Fields that do not apply to a step are absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepDetail {
    /// The directory change, before/after (lock, reset, MFA group, restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// Reset: whether the lock had to be re-applied after the password set (OpenLDAP's
    /// ppolicy deletes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relocked: Option<bool>,
    /// Revoke: one outcome per configured revoker, in configuration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocations: Vec<RevocationOutcome>,
    /// Require MFA: whether existing TOTP enrolments (and recovery codes) were dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolments_dropped: Option<bool>,
    /// Reset: where the new password was handed over (`file:/root/x.tsv`; never the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_over: Option<String>,
    /// The typed error, when the step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    /// What an operator must know that the fields above do not say (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Revoke: the user's Sieve scripts that send mail outside the local domains (`[mail]`),
    /// each with its content hash and whether this step deactivated it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mail_rules: Vec<MailRule>,
    /// Lock: the name services know the account by (`login_attribute`), as SMTP AUTH and
    /// IMAP logins give it — what the outbound policy service refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// Hold mail: the account's messages put on hold in the Postfix queue (queue IDs,
    /// recipients, outside domains; never content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_mail: Option<crate::postfix::HeldMail>,
}

impl StepDetail {
    /// A detail holding a directory change.
    pub fn of_change(change: Change) -> Self {
        Self {
            change: Some(change),
            ..Self::default()
        }
    }

    /// A detail holding an error.
    pub fn of_error(error: Error) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }

    /// The same detail with a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// What a record says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
// Records are made one at a time and written out at once; boxing the outcome's detail would
// only add an allocation per record and a Box to every caller's pattern.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A run begins (`action`: contain, release, resume).
    IncidentStart {
        /// contain / release / resume.
        action: String,
        /// The users asked for, as given.
        users: Vec<String>,
        /// Free text (release override reason, operator note).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The containment steps asked for, when not all four (`resume` runs the same ones).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        steps: Option<Vec<Step>>,
        /// The attacker's range kicked at the end of the run (`contain_from`; `resume` kicks it
        /// too).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kick_from: Option<String>,
    },
    /// A step is about to change the directory (durable before the change).
    Intent {
        /// User as given.
        user: String,
        /// Entry.
        dn: String,
        /// Step.
        step: Step,
    },
    /// A step ended.
    Outcome {
        /// User as given.
        user: String,
        /// Entry.
        dn: String,
        /// Step.
        step: Step,
        /// Status.
        status: StepStatus,
        /// What the step did: the change (before/after), revocation outcomes, or the error.
        detail: StepDetail,
    },
    /// A user was refused before anything changed (unknown, protected, out of scope...).
    Refused {
        /// User as given.
        user: String,
        /// Why.
        error: Error,
    },
    /// Every session from the attacker's address range was kicked on each Dovecot, after the
    /// accounts' steps (`contain_from`): accounts refused or out of scope included.
    AddressKick {
        /// The range (`ADDRESS/PREFIX`).
        range: String,
        /// One outcome per Dovecot.
        outcomes: Vec<RevocationOutcome>,
    },
    /// The replicas were read after the steps: which showed the lock, which had not by the
    /// deadline.
    ReplicaChecks {
        /// One per replica.
        checks: Vec<ReplicaCheck>,
    },
    /// Notifications were sent (after the directory steps): one outcome per message.
    Notified {
        /// Who was told what, and whether it was delivered.
        outcomes: Vec<NotificationOutcome>,
    },
    /// Mail an incident held in the Postfix queue was reviewed: released (delivered after
    /// all) or deleted.
    MailReviewed {
        /// What was done, to which messages.
        review: crate::postfix::MailReview,
    },
    /// What was found on an account after its steps, with `--changes-since`: the entry's
    /// changes since then and the mail the account sent (numbers and addresses, never
    /// content). One per account, at the end of the run.
    Findings {
        /// User as given.
        user: String,
        /// Entry.
        dn: String,
        /// What changed on the entry (the containment's own changes included).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changes: Option<Vec<AttributeChange>>,
        /// Why the changes could not be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changes_error: Option<Error>,
        /// What the account sent (`[postfix] log_files`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_mail: Option<crate::postfix::SentMail>,
    },
    /// The watcher raised an alert (filed under the alert's identifier, `ALR-…`): the alert,
    /// what its automatic containment came to, and who was told.
    Alert {
        /// The alert.
        alert: crate::watch::Alert,
        /// The automatic containment, when its rule may contain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        automatic: Option<crate::incident::AutoOutcome>,
        /// One outcome per message sent about it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notifications: Vec<NotificationOutcome>,
    },
    /// A run ended.
    IncidentEnd {
        /// Users fully done.
        done: usize,
        /// Users refused or with a failed step.
        failed: usize,
    },
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// 0, 1, 2... across the whole file.
    pub seq: u64,
    /// SHA-256 (hex) of the previous line; [`GENESIS`](super::GENESIS) for the first.
    pub prev: String,
    /// RFC 3339 UTC, with milliseconds (older journals: whole seconds).
    pub time: String,
    /// Incident identifier.
    pub incident: String,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}
