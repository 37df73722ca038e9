//! The audit journal: append-only JSON lines, each carrying the SHA-256 of the previous line
//! (a hash chain), group-committed with one fsync per batch.
//!
//! - An *intent* record is durable (fsynced) **before** the change it describes; the *outcome*
//!   after. `resume` and `release` read the journal back.
//! - No secrets, ever: records hold DNs, step names, before/after attributes (never passwords
//!   or hashes), revocation outcomes and typed errors.
//! - [`verify`] recomputes the chain and reports the first bad record. The chain shows any
//!   edit, insertion or deletion *before the head*; keep the head hash it prints (in the
//!   incident ticket) to pin the end as well: a chain alone can be recomputed by a forger.
//! - One writer at a time: the file is locked exclusively while a [`Journal`] is open.
//! - Or the journal lives in PostgreSQL (`[journal] database = "postgresql://…"`), where
//!   responders on several hosts append to one story: the same lines, chain and MACs, each
//!   batch appended under a table lock so the chain never forks; [`Location::export`] writes
//!   the file form, which verifies the same way.

mod file;
mod postgres;
mod tail;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use file::{read, verify, verify_intact, verify_with_key, BadRecord, Journal, TornTail, VerifyReport};
pub use tail::Tail;

use crate::db::{Database, PgTarget};
use crate::directory::{Change, ReplicaCheck};
use crate::error::{Error, ErrorKind};
use crate::investigate::MailRule;
use crate::notify::NotificationOutcome;
use crate::session::RevocationOutcome;

/// The `[journal]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JournalConfig {
    /// The JSON-lines journal file (created 0600; appended to by every run). Give this or
    /// `database`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The journal's database: a `postgresql://user@host/db` URL shared by every responder
    /// host (or a file path, the same as `path`).
    #[serde(default)]
    pub database: Option<Database>,
    /// PostgreSQL only: the file holding the database user's password.
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// PostgreSQL only: CA certificates (PEM) to verify the server with; default the system's.
    #[serde(default)]
    pub database_ca_file: Option<PathBuf>,
    /// A file (0600, at least 16 bytes) whose content keys an HMAC-SHA256 of every record:
    /// a forger who rewrites the whole journal cannot recompute them. Keep it off the
    /// journal's host if you can.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl JournalConfig {
    /// A journal in the file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            database: None,
            database_password_file: None,
            database_ca_file: None,
            key_file: None,
        }
    }

    /// Where the journal is (checked: exactly one of `path` and `database`; for PostgreSQL,
    /// no password in the URL and TLS).
    pub fn location(&self) -> Result<Location, Error> {
        let bad = |why: &str| Error::new(ErrorKind::Config, format!("journal: {why}"));
        match (&self.path, &self.database) {
            (Some(p), None) | (None, Some(Database::File(p))) => {
                if self.database_password_file.is_some() || self.database_ca_file.is_some() {
                    return Err(bad(
                        "database_password_file and database_ca_file are for a postgresql:// database",
                    ));
                }
                Ok(Location::File(p.clone()))
            }
            (None, Some(Database::Postgres(url))) => PgTarget::parse(
                url,
                self.database_password_file.clone(),
                self.database_ca_file.clone(),
            )
            .map(|t| Location::Postgres(Box::new(t)))
            .map_err(|e| bad(e.message())),
            (Some(_), Some(_)) => Err(bad("give path or database, not both")),
            (None, None) => Err(bad("give path (a file) or database (postgresql://…)")),
        }
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(d) = &mut self.database {
            d.resolve_path(base);
        }
        let files = self
            .path
            .iter_mut()
            .chain(self.key_file.as_mut())
            .chain(self.database_password_file.as_mut())
            .chain(self.database_ca_file.as_mut());
        for p in files {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The record-authentication key, when `key_file` is set. Refused if the file can be
    /// read by anyone but its owner, or is shorter than 16 bytes.
    pub fn key(&self) -> Result<Option<crate::secret::Secret>, Error> {
        let Some(path) = &self.key_file else {
            return Ok(None);
        };
        use std::os::unix::fs::PermissionsExt;
        let bad = |why: String| {
            Error::new(
                crate::error::ErrorKind::Config,
                format!("journal.key_file {}: {why}", path.display()),
            )
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad("readable by others than its owner: chmod 600".into()));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        if bytes.len() < 16 {
            return Err(bad("holds fewer than 16 bytes".into()));
        }
        Ok(Some(crate::secret::Secret::new(bytes)))
    }
}

/// Where a journal is: a file on this host, or a PostgreSQL database several hosts share.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Location {
    /// A JSON-lines file.
    File(PathBuf),
    /// A PostgreSQL database (table `journal_records`).
    Postgres(Box<PgTarget>),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => f.write_str(t.url()),
        }
    }
}

impl Location {
    /// The journal a command works on: the file `given` (a command-line override), else the
    /// one `cfg` names; `None` when there is neither (each caller says so in its own terms).
    pub fn resolve(given: Option<&Path>, cfg: Option<&JournalConfig>) -> Result<Option<Self>, Error> {
        match (given, cfg) {
            (Some(p), _) => Ok(Some(Location::File(p.to_owned()))),
            (None, Some(j)) => j.location().map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Recomputes the chain (and the MACs, with `key`): the same check for both backends.
    pub fn verify(&self, key: Option<&crate::secret::Secret>) -> Result<VerifyReport, Error> {
        match self {
            Location::File(p) => verify_with_key(p, key),
            Location::Postgres(t) => postgres::scan(t, key, false).map(|(r, _)| r),
        }
    }

    /// Every record, verifying the chain (and MACs, with `key`) as it goes; a broken chain is
    /// an [`ErrorKind::JournalTampered`] error.
    pub fn records(&self, key: Option<&crate::secret::Secret>) -> Result<Vec<Record>, Error> {
        let (report, records) = match self {
            Location::File(p) => return file::read_with_key(p, key),
            Location::Postgres(t) => postgres::scan(t, key, true)?,
        };
        match &report.first_bad {
            Some(bad) => Err(file::tampered(&self.to_string(), bad)),
            None => Ok(records),
        }
    }

    /// Writes the journal's lines to a new file `to` (0600; an existing file is refused):
    /// the file form of a database journal, for the incident ticket or an offline `verify`.
    /// Only the lines up to a bad one are written; the report says whether there was one.
    pub fn export(&self, to: &Path) -> Result<VerifyReport, Error> {
        match self {
            Location::File(p) => file::export_lines(to, file::lines_of(p)?),
            Location::Postgres(t) => file::export_lines(to, postgres::lines(t)?),
        }
    }
}

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// SHA-256 (hex) of the previous line; [`GENESIS`] for the first.
    pub prev: String,
    /// RFC 3339 UTC, with milliseconds (older journals: whole seconds).
    pub time: String,
    /// Incident identifier.
    pub incident: String,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::file::{seal, unseal};
    use super::*;
    use crate::error::ErrorKind;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cadenas-journal-{tag}-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[tokio::test]
    async fn one_writer_at_a_time_and_dropping_the_last_clone_releases_the_file() {
        let p = tmp("one-writer");
        let j = Journal::open(&p).expect("open");
        let clone = j.clone();
        // opened again in this process (a responder per thread): the same writer, one chain
        let again = Journal::open(&p).expect("a second open in this process shares the writer");
        again.append("INC", vec![intent("t")]).await.expect("append");
        assert_eq!(again.head(), j.head(), "one writer");
        let other_key = Journal::open_with_key(
            &p,
            Some(crate::secret::Secret::new(b"another key of 16+ bytes".to_vec())),
        );
        assert_eq!(other_key.expect_err("another key").kind(), ErrorKind::Journal);
        drop(again);
        drop(j);
        clone
            .append("INC", vec![intent("u")])
            .await
            .expect("a clone still writes");
        drop(clone);
        // the writer thread was joined by the drop: the lock is free at once
        let again = Journal::open(&p).expect("free after the last clone is dropped");
        again.append("INC", vec![intent("v")]).await.expect("append");
        assert_eq!(verify(&p).expect("verify").records, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_fsyncs() {
        let p = tmp("group-commit");
        let j = Journal::open(&p).expect("open");
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let j = j.clone();
                tokio::spawn(async move { j.append("INC", vec![intent(&format!("u{i}"))]).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("append");
        }
        let v = verify(&p).expect("verify");
        assert_eq!(v.records, 200);
        assert_eq!(j.head(), v.head, "the writer's head is the file's");
        let batches = j.batches_written();
        assert!(batches < 200, "200 appends in {batches} fsyncs: none shared");
    }

    #[test]
    fn a_symbolic_link_is_never_opened_as_a_journal() {
        let target = tmp("symlink-target");
        std::fs::write(&target, "").expect("target");
        let link = tmp("symlink");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let e = Journal::open(&link).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Journal, "{e}");
        assert_eq!(
            std::fs::read(&target).expect("read"),
            b"",
            "nothing written through it"
        );
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_file(&target);
    }

    #[tokio::test]
    async fn with_a_key_a_rewritten_journal_is_caught_at_its_first_forged_record() {
        let key = crate::secret::Secret::new(b"a journal key of 32 bytes.......".to_vec());
        let p = tmp("mac");
        let j = Journal::open_with_key(&p, Some(key.clone())).expect("open");
        j.append("INC", (0..4).map(|i| intent(&format!("u{i}"))).collect())
            .await
            .expect("append");
        drop(j);
        let r = verify_with_key(&p, Some(&key)).expect("verify");
        assert!(r.first_bad.is_none() && r.macs_checked && r.records == 4, "{r:?}");
        let good = std::fs::read_to_string(&p).expect("read");

        // a forger rewrites everything from record 3 on, chain and own hashes recomputed —
        // but without the key: the chain alone is intact, the MACs are not
        let lines: Vec<&str> = good.lines().collect();
        let mut forged: Vec<String> = lines[..2].iter().map(|l| (*l).to_owned()).collect();
        let mut prev = unseal(lines[1]).map(|(_, h, _)| h.to_owned()).expect("sealed");
        for (i, l) in lines[2..].iter().enumerate() {
            let (content, _, _) = unseal(l).expect("sealed");
            let mut rec: Record = serde_json::from_str(&content).expect("record");
            rec.prev = prev.clone();
            if i == 0 {
                rec.event = intent("someone-else");
            }
            let content = serde_json::to_string(&rec).expect("json");
            let (line, hash) = seal(
                &content,
                Some(&crate::secret::Secret::new(b"the forger's own key".to_vec())),
            );
            forged.push(line);
            prev = hash;
        }
        std::fs::write(&p, forged.join("\n") + "\n").expect("write");
        assert!(
            verify(&p).expect("v").first_bad.is_none(),
            "without the key it looks intact"
        );
        let bad = verify_with_key(&p, Some(&key))
            .expect("v")
            .first_bad
            .expect("caught");
        assert_eq!(bad.line, 3, "{}", bad.reason);
        assert!(bad.reason.contains("MAC"), "{}", bad.reason);
        assert_eq!(
            Journal::open_with_key(&p, Some(key)).expect_err("refused").kind(),
            ErrorKind::JournalTampered
        );
        std::fs::remove_file(&p).ok();
    }

    #[tokio::test]
    async fn a_record_torn_by_a_crash_is_cut_off_while_an_edit_stays_a_broken_chain() {
        let p = tmp("torn");
        let j = Journal::open(&p).expect("open");
        j.append("INC", (0..3).map(|i| intent(&format!("u{i}"))).collect())
            .await
            .expect("append");
        drop(j);
        let good = std::fs::read_to_string(&p).expect("read");
        let last = good.lines().last().expect("line").to_owned();
        // SIGKILL in the middle of writing a fourth record
        std::fs::write(&p, format!("{good}{}", &last[..last.len() / 2])).expect("write");
        let r = verify(&p).expect("verify");
        assert_eq!((r.records, r.first_bad.clone()), (3, None), "{r:?}");
        assert_eq!(r.torn_tail.map(|t| t.line), Some(4));
        let j = Journal::open(&p).expect("a torn tail does not make the journal unusable");
        assert_eq!(j.torn_tail().map(|t| t.line), Some(4));
        j.append("INC", vec![intent("after")]).await.expect("append");
        drop(j);
        let recs = read(&p).expect("read");
        assert_eq!((recs.len(), recs[3].seq), (4, 3));
        assert!(verify(&p).expect("v").torn_tail.is_none());

        // the same cut in the middle of the file is damage, not a crash
        let lines: Vec<&str> = good.lines().collect();
        let middle = format!(
            "{}\n{}\n{}\n",
            lines[0],
            &lines[1][..lines[1].len() / 2],
            lines[2]
        );
        std::fs::write(&p, middle).expect("write");
        let r = verify(&p).expect("verify");
        assert_eq!(r.first_bad.map(|b| b.line), Some(2));
        assert!(r.torn_tail.is_none());
        std::fs::remove_file(&p).ok();
    }

    /// A lock intent for `u` (also for the tail's tests).
    pub(super) fn intent(u: &str) -> Event {
        Event::Intent {
            user: u.into(),
            dn: format!("uid={u}"),
            step: Step::Lock,
        }
    }

    #[tokio::test]
    async fn appends_chain_and_verify_then_reopen_continues_the_chain() {
        let p = tmp("chain");
        {
            let j = Journal::open(&p).expect("open");
            j.append("INC-1", vec![intent("a"), intent("b")])
                .await
                .expect("append");
            let futs: Vec<_> = (0..50)
                .map(|i| {
                    let j = j.clone();
                    tokio::spawn(async move { j.append("INC-1", vec![intent(&format!("u{i}"))]).await })
                })
                .collect();
            for f in futs {
                f.await.expect("join").expect("append");
            }
        }
        let r = verify(&p).expect("verify");
        assert_eq!((r.records, r.first_bad.clone()), (52, None));
        let j = Journal::open(&p).expect("reopen");
        j.append("INC-2", vec![intent("c")]).await.expect("append");
        drop(j);
        let recs = read(&p).expect("read");
        assert_eq!(recs.len(), 53);
        assert_eq!(recs[52].seq, 52);
        assert_eq!(recs[52].incident, "INC-2");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_file(&p).ok();
    }

    #[tokio::test]
    async fn edits_deletions_and_insertions_are_detected_at_the_first_bad_line() {
        let p = tmp("tamper");
        let j = Journal::open(&p).expect("open");
        j.append("INC", (0..5).map(|i| intent(&format!("u{i}"))).collect())
            .await
            .expect("append");
        drop(j);
        let good = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<&str> = good.lines().collect();

        let edited = good.replacen("uid=u2", "uid=zz", 1);
        std::fs::write(&p, &edited).expect("write");
        let bad = verify(&p).expect("v").first_bad.expect("bad");
        assert_eq!(bad.line, 3, "the edited record itself is named (its own hash)");
        assert!(bad.reason.contains("edited"), "{}", bad.reason);

        let deleted = [&lines[..1], &lines[2..]].concat().join("\n") + "\n";
        std::fs::write(&p, deleted).expect("write");
        assert_eq!(verify(&p).expect("v").first_bad.map(|b| b.line), Some(2));

        let inserted = [&lines[..2], &[lines[1]], &lines[2..]].concat().join("\n") + "\n";
        std::fs::write(&p, inserted).expect("write");
        assert_eq!(verify(&p).expect("v").first_bad.map(|b| b.line), Some(3));

        std::fs::write(&p, format!("{good}garbage\n")).expect("write");
        assert_eq!(verify(&p).expect("v").first_bad.map(|b| b.line), Some(6));
        assert_eq!(
            Journal::open(&p).expect_err("refused").kind(),
            ErrorKind::JournalTampered
        );
        std::fs::remove_file(&p).ok();
    }
}
