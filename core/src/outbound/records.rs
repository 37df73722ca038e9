//! The policy service's own records: every message it let through (at the end of the message),
//! in an SQLite file on the service's host (`[outbound] database`). They outlive the service:
//! after a restart — or a SIGKILL — the sending windows are rebuilt from them before the first
//! answer, and what an account sent can be told even where Postfix's log is not readable.
//! Written by one thread, many records per transaction (never a write per request on the
//! answering path); a record not yet written when the process is killed is the only loss.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// Records kept: older ones are deleted as new ones are written.
const KEEP_SECS: i64 = 30 * 86_400;

/// One message the policy service let through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageRecord {
    /// When (Unix seconds).
    pub time: i64,
    /// The SASL login.
    pub login: String,
    /// The client's address.
    pub client_address: String,
    /// Its recipients.
    pub recipients: u32,
    /// Its queue ID.
    pub queue_id: String,
}

fn err(path: &Path, what: &str, e: rusqlite::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("outbound records {}: {what}: {e}", path.display()),
    )
    .with_source(e)
}

fn open(path: &Path) -> Result<Connection, Error> {
    let c = Connection::open(path).map_err(|e| err(path, "cannot open", e))?;
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| err(path, "busy timeout", e))?;
    let _ = c.pragma_update(None, "journal_mode", "WAL");
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS outbound_messages (
             time INTEGER NOT NULL, login TEXT NOT NULL, client_address TEXT NOT NULL,
             recipients INTEGER NOT NULL, queue_id TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS outbound_messages_time ON outbound_messages (time);
         CREATE TABLE IF NOT EXISTS outbound_limits (
             id INTEGER PRIMARY KEY, time INTEGER NOT NULL, login TEXT NOT NULL,
             client_address TEXT NOT NULL, detail TEXT NOT NULL);",
    )
    .map_err(|e| err(path, "schema", e))?;
    Ok(c)
}

/// The records from `since` (Unix seconds) on, oldest first.
pub fn read_records(path: &Path, since: i64) -> Result<Vec<MessageRecord>, Error> {
    let c = open(path)?;
    let mut st = c
        .prepare(
            "SELECT time, login, client_address, recipients, queue_id FROM outbound_messages \
             WHERE time >= ?1 ORDER BY time",
        )
        .map_err(|e| err(path, "read", e))?;
    let rows = st
        .query_map(params![since], |r| {
            Ok(MessageRecord {
                time: r.get(0)?,
                login: r.get(1)?,
                client_address: r.get(2)?,
                recipients: r.get(3)?,
                queue_id: r.get(4)?,
            })
        })
        .map_err(|e| err(path, "read", e))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, "read", e))
}

/// A sending limit exceeded, as the policy service records it (for `cadenas watch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LimitRecord {
    /// When (Unix seconds).
    pub(crate) time: i64,
    /// The SASL login.
    pub(crate) login: String,
    /// The client address of the message that exceeded it.
    pub(crate) client_address: String,
    /// What was exceeded, in words (counts and addresses, never content).
    pub(crate) detail: String,
}

/// The limits exceeded after row `after` (`outbound_limits`' ids), oldest first, with their
/// ids: what `cadenas watch` follows.
pub(crate) fn read_limits(path: &Path, after: i64) -> Result<Vec<(i64, LimitRecord)>, Error> {
    let c = open(path)?;
    let mut st = c
        .prepare(
            "SELECT id, time, login, client_address, detail FROM outbound_limits WHERE id > ?1 ORDER BY id",
        )
        .map_err(|e| err(path, "read", e))?;
    let rows = st
        .query_map(params![after], |r| {
            Ok((
                r.get(0)?,
                LimitRecord {
                    time: r.get(1)?,
                    login: r.get(2)?,
                    client_address: r.get(3)?,
                    detail: r.get(4)?,
                },
            ))
        })
        .map_err(|e| err(path, "read", e))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, "read", e))
}

/// The last row of `outbound_limits` (0: none): where `cadenas watch` starts.
pub(crate) fn last_limit(path: &Path) -> Result<i64, Error> {
    open(path)?
        .query_row("SELECT coalesce(max(id), 0) FROM outbound_limits", [], |r| {
            r.get(0)
        })
        .map_err(|e| err(path, "read", e))
}

/// What the writer writes.
enum Row {
    Message(MessageRecord),
    Limit(LimitRecord),
}

/// The writer: records are queued without waiting and written by one thread, in batches.
pub(crate) struct Records {
    tx: Option<mpsc::Sender<Row>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Records {
    /// Opens (or creates, mode 0600) the file and starts the writer.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("outbound records {}: cannot create: {e}", path.display()),
                )
            })?;
        let mut conn = open(path)?;
        let (tx, rx) = mpsc::channel::<Row>();
        let p: PathBuf = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("cadenas-outbound-records".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < 4096 {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = write(&mut conn, &batch) {
                        tracing::error!(error = %err(&p, "write", e), lost = batch.len(), "outbound: records not written");
                    }
                }
            })
            .map_err(|e| Error::new(ErrorKind::Internal, format!("outbound records: no writer thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a record (never waits).
    pub(crate) fn add(&self, r: MessageRecord) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Row::Message(r));
        }
    }

    /// Queues a limit exceeded (never waits).
    pub(crate) fn limit(&self, r: LimitRecord) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Row::Limit(r));
        }
    }
}

fn write(conn: &mut Connection, batch: &[Row]) -> Result<(), rusqlite::Error> {
    let t = conn.transaction()?;
    let mut last = None;
    {
        let mut st = t.prepare_cached(
            "INSERT INTO outbound_messages (time, login, client_address, recipients, queue_id) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut lt = t.prepare_cached(
            "INSERT INTO outbound_limits (time, login, client_address, detail) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for row in batch {
            match row {
                Row::Message(r) => {
                    st.execute(params![
                        r.time,
                        r.login,
                        r.client_address,
                        r.recipients,
                        r.queue_id
                    ])?;
                    last = Some(r.time);
                }
                Row::Limit(r) => {
                    lt.execute(params![r.time, r.login, r.client_address, r.detail])?;
                    last = Some(r.time);
                }
            }
        }
    }
    if let Some(last) = last {
        t.execute(
            "DELETE FROM outbound_messages WHERE time < ?1",
            params![last - KEEP_SECS],
        )?;
        t.execute(
            "DELETE FROM outbound_limits WHERE time < ?1",
            params![last - KEEP_SECS],
        )?;
    }
    t.commit()
}

impl Drop for Records {
    fn drop(&mut self) {
        // the queued records are written before the thread ends
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_written_in_batches_and_read_back_from_a_time() {
        let p = std::env::temp_dir().join(format!("cadenas-outbound-records-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let rec = |t: i64, login: &str| MessageRecord {
            time: t,
            login: login.into(),
            client_address: "192.0.2.1".into(),
            recipients: 2,
            queue_id: format!("Q{t}"),
        };
        {
            let r = Records::open(&p).expect("open");
            for t in 0..1000 {
                r.add(rec(1_000_000 + t, if t % 2 == 0 { "a" } else { "b" }));
            }
        }
        let back = read_records(&p, 1_000_900).expect("read");
        assert_eq!(back.len(), 100);
        assert_eq!(back[0], rec(1_000_900, "a"));
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_file(&p).ok();
    }
}
