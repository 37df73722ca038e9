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

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::directory::Change;
use crate::error::{Error, ErrorKind};
use crate::session::RevocationOutcome;
use crate::time::{rfc3339, unix_now};

/// The `[journal]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JournalConfig {
    /// The JSON-lines journal file (created 0600; appended to by every run).
    pub path: PathBuf,
}

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Most records written per fsync.
const MAX_BATCH: usize = 512;

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
        }
    }

    /// The containment steps, in order.
    pub const CONTAIN: [Step; 4] = [
        Step::Lock,
        Step::ResetPassword,
        Step::RevokeSessions,
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
    /// The typed error, when the step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    /// What an operator must know that the fields above do not say (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
pub struct Record {
    /// 0, 1, 2... across the whole file.
    pub seq: u64,
    /// SHA-256 (hex) of the previous line; [`GENESIS`] for the first.
    pub prev: String,
    /// RFC 3339 UTC.
    pub time: String,
    /// Incident identifier.
    pub incident: String,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn io_err<E>(path: &Path, what: &str, e: E) -> Error
where
    E: std::fmt::Display + Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    Error::new(
        ErrorKind::Journal,
        format!("journal {}: {what}: {e}", path.display()),
    )
    .with_source(e)
}

type Job = (Vec<(String, Event)>, oneshot::Sender<Result<(), Error>>);

/// An open journal: appends go through one writer thread that batches fsyncs.
#[derive(Clone)]
pub struct Journal {
    tx: std_mpsc::Sender<Job>,
    path: PathBuf,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Opens (or creates, mode 0600) the journal at `path`, verifies the existing chain,
    /// and locks the file for this writer. A broken chain refuses to open.
    pub fn open(path: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_err(path, "cannot open", e))?;
        // The previous writer of this process may still be closing: wait a little for it.
        let mut tries = 0;
        while let Err(e) = file.try_lock() {
            tries += 1;
            if tries > 100 {
                return Err(io_err(path, "another writer holds it", e));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let report = verify_intact(path)?;
        let (tx, rx) = std_mpsc::channel::<Job>();
        let p = path.to_owned();
        let mut seq = report.records as u64;
        let mut prev = report.head.clone();
        std::thread::Builder::new()
            .name("cadenas-journal".into())
            .spawn(move || {
                let mut file = file;
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let (res, s, pv) = write_batch(&mut file, &p, &jobs, seq, &prev);
                    if res.is_ok() {
                        seq = s;
                        prev = pv;
                    }
                    for (_, reply) in jobs {
                        let _ = reply.send(res.clone());
                    }
                }
            })
            .map_err(|e| io_err(path, "cannot start the writer", e))?;
        Ok(Self {
            tx,
            path: path.to_owned(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends records and returns once they are on disk (fsynced). Concurrent callers
    /// share one fsync (group commit).
    pub async fn append(&self, incident: &str, events: Vec<Event>) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        let batch = events.into_iter().map(|e| (incident.to_owned(), e)).collect();
        self.tx
            .send((batch, tx))
            .map_err(|_| io_err(&self.path, "append", "the writer stopped"))?;
        rx.await
            .map_err(|_| io_err(&self.path, "append", "the writer stopped"))?
    }
}

/// Serialises and appends one batch, then fsyncs. On failure the file is cut back to its
/// previous length, so a half-written batch never breaks the chain for later records.
fn write_batch(
    file: &mut File,
    path: &Path,
    jobs: &[Job],
    seq: u64,
    prev: &str,
) -> (Result<(), Error>, u64, String) {
    let mut buf = Vec::new();
    let (mut s, mut pv) = (seq, prev.to_owned());
    for (events, _) in jobs {
        for (incident, event) in events {
            let rec = Record {
                seq: s,
                prev: pv.clone(),
                time: rfc3339(unix_now()),
                incident: incident.clone(),
                event: event.clone(),
            };
            let line = match serde_json::to_string(&rec) {
                Ok(l) => l,
                Err(e) => return (Err(io_err(path, "serialise", e)), seq, prev.to_owned()),
            };
            pv = sha256_hex(line.as_bytes());
            s += 1;
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
    }
    let before = file.metadata().map(|m| m.len());
    let res = file.write_all(&buf).and_then(|_| file.sync_data());
    match res {
        Ok(()) => (Ok(()), s, pv),
        Err(e) => {
            if let Ok(len) = before {
                let _ = file.set_len(len);
            }
            (Err(io_err(path, "write + fsync", e)), seq, prev.to_owned())
        }
    }
}

/// Where a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadRecord {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records read (up to the first bad one).
    pub records: usize,
    /// SHA-256 of the last good line: keep it to pin the journal's end.
    pub head: String,
    /// The first bad record, if any.
    pub first_bad: Option<BadRecord>,
}

/// Recomputes the chain: every line must parse, have `seq` = its index and `prev` = the hash
/// of the line before. A missing file is an empty journal.
pub fn verify(path: &Path) -> Result<VerifyReport, Error> {
    let mut report = VerifyReport {
        records: 0,
        head: GENESIS.to_owned(),
        first_bad: None,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(io_err(path, "cannot read", e)),
    };
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|e| io_err(path, "read", e))?;
        let bad = |reason: String| Some(BadRecord { line: i + 1, reason });
        let rec: Record = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                report.first_bad = bad(format!("not a journal record ({e})"));
                break;
            }
        };
        if rec.seq != i as u64 {
            report.first_bad = bad(format!(
                "seq {} where {i} was expected (a record was removed or inserted)",
                rec.seq
            ));
            break;
        }
        if rec.prev != report.head {
            report.first_bad = bad(
                "prev does not match the previous line (a record was edited, removed or inserted)".into(),
            );
            break;
        }
        report.head = sha256_hex(&line);
        report.records += 1;
    }
    Ok(report)
}

/// [`verify`], with a broken chain as an [`ErrorKind::JournalTampered`] error.
pub fn verify_intact(path: &Path) -> Result<VerifyReport, Error> {
    let report = verify(path)?;
    if let Some(bad) = &report.first_bad {
        return Err(Error::new(
            ErrorKind::JournalTampered,
            format!(
                "journal {} is broken at line {}: {}",
                path.display(),
                bad.line,
                bad.reason
            ),
        ));
    }
    Ok(report)
}

/// Reads every record (verifying the chain first; a broken chain is an error).
pub fn read(path: &Path) -> Result<Vec<Record>, Error> {
    verify_intact(path)?;
    let file = File::open(path).map_err(|e| io_err(path, "cannot read", e))?;
    BufReader::new(file)
        .lines()
        .map(|l| {
            let l = l.map_err(|e| io_err(path, "read", e))?;
            serde_json::from_str(&l).map_err(|e| io_err(path, "parse", e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cadenas-journal-{tag}-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    fn intent(u: &str) -> Event {
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
        assert_eq!(
            verify(&p).expect("v").first_bad.map(|b| b.line),
            Some(4),
            "edit of line 3 shows at line 4"
        );

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
