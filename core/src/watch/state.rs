//! The watcher's state, in SQLite: where each log was read up to, the networks each account
//! logged in from, the recent logins and failures the windows count, and the alerts raised.
//!
//! A batch of lines is one transaction: the positions after it, what it taught, and the alerts
//! it raised are written together — a crash (SIGKILL) before the commit re-reads the batch,
//! after it never reads it again, so no line is missed or alerted twice. An alert is marked
//! sent once delivered; alerts left unsent by a crash go out at the next start.
//!
//! The service ([`super::service`]) handles an alert in two durable stages: once notified (and
//! contained automatically, where a rule may) the row holds what was done (`handled`); once
//! journaled it is `sent`. A crash before the first stage sends the alert again at the next
//! start (at least once, never lost); after it, only the journal record is written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::follow::Position;
use super::memory::{network_text, parse_network, Changes, Kind, Memory};
use super::service::HandledAlert;
use super::Alert;
use crate::error::{Error, ErrorKind};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS watch_positions (path TEXT PRIMARY KEY, inode INTEGER NOT NULL, offset INTEGER NOT NULL,
  head INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS watch_networks (account TEXT NOT NULL, network TEXT NOT NULL, last_seen INTEGER NOT NULL,
  PRIMARY KEY (account, network));
CREATE TABLE IF NOT EXISTS watch_events (kind TEXT NOT NULL, key TEXT NOT NULL, other TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS watch_events_by_key ON watch_events (kind, key, at);
CREATE TABLE IF NOT EXISTS watch_alerts (id INTEGER PRIMARY KEY, rule TEXT NOT NULL, subject TEXT NOT NULL,
  at INTEGER NOT NULL, alert TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0, handled TEXT);
CREATE INDEX IF NOT EXISTS watch_alerts_by_subject ON watch_alerts (rule, subject, at);
CREATE TABLE IF NOT EXISTS watch_automatic (at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS watch_mail_rule_checks (id INTEGER PRIMARY KEY, account TEXT NOT NULL, ip TEXT NOT NULL,
  due INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS watch_scripts_seen (account TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (account, sha256));
";

/// The watcher's state database.
pub struct State {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("path", &self.path).finish()
    }
}

pub(super) fn db_err(path: &Path, what: &str, e: rusqlite::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("watch state {}: {what}: {e}", path.display()),
    )
}

impl State {
    /// Opens (creating) the state database at `path`: WAL, fsync at every commit.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open(path).map_err(|e| db_err(path, "cannot open", e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|e| db_err(path, "cannot set up", e))?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    /// The rules' state in memory as the database holds it at `now`: the networks seen within
    /// `baseline_days`, the window events within `window_secs`, the alerts of the last
    /// `alerts_secs`.
    pub(super) fn load(
        &self,
        now: i64,
        baseline_days: i64,
        window_secs: i64,
        alerts_secs: i64,
    ) -> Result<Memory, Error> {
        let err = |e| db_err(&self.path, "cannot load the state", e);
        let mut m = Memory::new(true);
        let mut stmt = self
            .conn
            .prepare("SELECT account, network, last_seen FROM watch_networks WHERE last_seen >= ?1")
            .map_err(err)?;
        let mut rows = stmt.query(params![now - baseline_days * 86_400]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let (account, net, at): (String, String, i64) = (
                r.get(0).map_err(err)?,
                r.get(1).map_err(err)?,
                r.get(2).map_err(err)?,
            );
            if let Some(net) = parse_network(&net) {
                m.load_network(&account, net, at);
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT kind, key, other, at FROM watch_events WHERE at >= ?1 ORDER BY at")
            .map_err(err)?;
        let mut rows = stmt.query(params![now - window_secs]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let (kind, key, other, at): (String, String, String, i64) = (
                r.get(0).map_err(err)?,
                r.get(1).map_err(err)?,
                r.get(2).map_err(err)?,
                r.get(3).map_err(err)?,
            );
            if let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == kind) {
                m.load_event(kind, &key, &other, at);
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT alert, subject, at FROM watch_alerts WHERE at >= ?1 ORDER BY at")
            .map_err(err)?;
        let mut rows = stmt.query(params![now - alerts_secs]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let (alert, subject, at): (String, String, i64) = (
                r.get(0).map_err(err)?,
                r.get(1).map_err(err)?,
                r.get(2).map_err(err)?,
            );
            if let Ok(a) = serde_json::from_str::<Alert>(&alert) {
                m.load_alert(a.rule, &subject, at);
            }
        }
        Ok(m)
    }

    /// Every log's position in the state database at `path`, opened read-only (what `cadenas
    /// check` reads while a watcher writes it).
    pub fn read_positions(path: &Path) -> Result<Vec<(String, Position)>, Error> {
        let err = |e| db_err(path, "cannot read the positions", e);
        let conn =
            Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        let mut stmt = conn
            .prepare("SELECT path, inode, offset, head FROM watch_positions")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Position {
                        inode: r.get::<_, i64>(1)? as u64,
                        offset: r.get::<_, i64>(2)? as u64,
                        head: r.get::<_, i64>(3)? as u64,
                    },
                ))
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    /// Where `log` was read up to, if it was.
    pub fn position(&self, log: &Path) -> Result<Option<Position>, Error> {
        self.conn
            .query_row(
                "SELECT inode, offset, head FROM watch_positions WHERE path = ?1",
                params![log.to_string_lossy()],
                |r| {
                    Ok(Position {
                        inode: r.get::<_, i64>(0)? as u64,
                        offset: r.get::<_, i64>(1)? as u64,
                        head: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| db_err(&self.path, "cannot read a position", e))
    }

    /// One batch: `f` reads and writes through the transaction; committed (durably) when it
    /// returns `Ok`.
    pub(super) fn batch<T>(&mut self, f: impl FnOnce(&Batch<'_>) -> Result<T, Error>) -> Result<T, Error> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(&path, "cannot begin", e))?;
        let out = f(&Batch { tx: &tx, path: &path })?;
        tx.commit().map_err(|e| db_err(&path, "cannot commit", e))?;
        Ok(out)
    }

    /// The alerts raised but not yet delivered, oldest first (with their ids).
    pub fn unsent(&self) -> Result<Vec<(i64, Alert)>, Error> {
        Ok(self
            .pending()?
            .into_iter()
            .map(|(id, h, _)| (id, h.alert))
            .collect())
    }

    /// The alerts not yet journaled, oldest first: their ids, what was done about them (the
    /// alert alone when nothing yet) and whether that stage is over.
    pub(super) fn pending(&self) -> Result<Vec<(i64, HandledAlert, bool)>, Error> {
        let err = |e| db_err(&self.path, "cannot read alerts", e);
        let mut stmt = self
            .conn
            .prepare("SELECT id, alert, handled FROM watch_alerts WHERE sent = 0 ORDER BY id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, alert, handled) = row.map_err(err)?;
            match handled.and_then(|h| serde_json::from_str::<HandledAlert>(&h).ok()) {
                Some(h) => out.push((id, h, true)),
                None => {
                    if let Ok(a) = serde_json::from_str(&alert) {
                        out.push((id, HandledAlert::new(a), false));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Records what was done about alert `id` (notified, contained automatically).
    pub(super) fn set_handled(&self, id: i64, handled: &HandledAlert) -> Result<(), Error> {
        let text = serde_json::to_string(handled)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("alert to JSON: {e}")))?;
        self.conn
            .execute(
                "UPDATE watch_alerts SET handled = ?2 WHERE id = ?1",
                params![id, text],
            )
            .map(|_| ())
            .map_err(|e| db_err(&self.path, "cannot record an alert's handling", e))
    }

    /// Automatic containments (dry-run ones included) since `since`.
    pub(super) fn automatic_since(&self, since: i64) -> Result<usize, Error> {
        self.conn
            .query_row(
                "SELECT count(*) FROM watch_automatic WHERE at >= ?1",
                params![since],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as usize)
            .map_err(|e| db_err(&self.path, "cannot count automatic containments", e))
    }

    /// Takes a place among the hour's automatic containments.
    pub(super) fn took_automatic(&self, at: i64) -> Result<(), Error> {
        self.conn
            .execute("INSERT INTO watch_automatic (at) VALUES (?1)", params![at])
            .map(|_| ())
            .map_err(|e| db_err(&self.path, "cannot record an automatic containment", e))
    }

    /// The mail-rule checks due at `now`: id, account, address, when due.
    pub(super) fn due_mail_rule_checks(&self, now: i64) -> Result<Vec<(i64, String, String, i64)>, Error> {
        let err = |e| db_err(&self.path, "cannot read the mail-rule checks", e);
        let mut stmt = self
            .conn
            .prepare("SELECT id, account, ip, due FROM watch_mail_rule_checks WHERE due <= ?1 ORDER BY due")
            .map_err(err)?;
        let rows = stmt
            .query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    /// Marks alert `id` delivered.
    pub fn mark_sent(&self, id: i64) -> Result<(), Error> {
        self.conn
            .execute("UPDATE watch_alerts SET sent = 1 WHERE id = ?1", params![id])
            .map(|_| ())
            .map_err(|e| db_err(&self.path, "cannot mark an alert sent", e))
    }
}

/// A batch's view of the state, inside its transaction.
pub(super) struct Batch<'a> {
    tx: &'a Transaction<'a>,
    path: &'a Path,
}

impl Batch<'_> {
    fn err(&self, what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        let what = what.to_owned();
        move |e| db_err(self.path, &what, e)
    }

    pub(super) fn set_position(&self, log: &Path, p: Position) -> Result<(), Error> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO watch_positions (path, inode, offset, head) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    log.to_string_lossy(),
                    p.inode as i64,
                    p.offset as i64,
                    p.head as i64
                ])
            })
            .map(|_| ())
            .map_err(self.err("cannot write a position"))
    }

    /// Writes what the rules changed in memory since the last batch.
    pub(super) fn write(&self, c: &Changes) -> Result<(), Error> {
        if !c.events.is_empty() {
            let mut stmt = self
                .tx
                .prepare_cached("INSERT INTO watch_events (kind, key, other, at) VALUES (?1, ?2, ?3, ?4)")
                .map_err(self.err("cannot write events"))?;
            for (kind, key, other, at) in &c.events {
                stmt.execute(params![kind.name(), key, other, at])
                    .map_err(self.err("cannot write events"))?;
            }
        }
        if !c.networks.is_empty() {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO watch_networks (account, network, last_seen) VALUES (?1, ?2, ?3)
                     ON CONFLICT (account, network) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
                )
                .map_err(self.err("cannot write networks"))?;
            for (account, net, at) in &c.networks {
                stmt.execute(params![account, network_text(*net), at])
                    .map_err(self.err("cannot write networks"))?;
            }
        }
        for (account, ip, due) in &c.mail_rule_checks {
            self.tx
                .prepare_cached("INSERT INTO watch_mail_rule_checks (account, ip, due) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![account, ip, due]))
                .map_err(self.err("cannot write a mail-rule check"))?;
        }
        for (alert, subject, at) in &c.alerts {
            let text = serde_json::to_string(alert)
                .map_err(|e| Error::new(ErrorKind::Internal, format!("alert to JSON: {e}")))?;
            self.tx
                .prepare_cached("INSERT INTO watch_alerts (rule, subject, at, alert) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| s.execute(params![alert.rule.name(), subject, at, text]))
                .map_err(self.err("cannot write an alert"))?;
        }
        Ok(())
    }

    /// The mail-rule check `id` is done.
    pub(super) fn mail_rule_checked(&self, id: i64) -> Result<(), Error> {
        self.tx
            .prepare_cached("DELETE FROM watch_mail_rule_checks WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id]))
            .map(|_| ())
            .map_err(self.err("cannot remove a mail-rule check"))
    }

    /// Records that `account` had the script `sha256`; whether it was new.
    pub(super) fn saw_script(&self, account: &str, sha256: &str) -> Result<bool, Error> {
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO watch_scripts_seen (account, sha256) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![account, sha256]))
            .map(|n| n == 1)
            .map_err(self.err("cannot record a script"))
    }

    /// Forgets the window events before `before`.
    pub(super) fn prune(&self, before: i64) -> Result<(), Error> {
        self.tx
            .prepare_cached("DELETE FROM watch_events WHERE at < ?1")
            .and_then(|mut s| s.execute(params![before]))
            .map(|_| ())
            .map_err(self.err("cannot prune events"))
    }
}
