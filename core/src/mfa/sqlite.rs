//! The embedded SQLite [`MfaStore`]: one host, several processes.
//!
//! SQLite in WAL mode is safe for several processes on one host. The replay guard is one
//! conditional `UPDATE … WHERE last_step < ?`, so when two processes verify the same code at
//! the same moment exactly one row update succeeds. TOTP secrets are encrypted at rest with
//! ChaCha20-Poly1305 under a key read from a key file (created 0600 only together with a new
//! database), with the user name as associated data: a stolen database file alone reveals no
//! secret, and a row moved to another user does not decrypt.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::key::{load_or_create_key, AtRest};
use super::store::{alg_name, decide, state_name, Enrolment, EnrolmentRow, FailuresRow, MfaStore};
use super::throttle::{confirmed, reserved, throttled, Failures, ThrottlePolicy};
use super::{Synchronous, Verified};
use crate::error::{Error, ErrorKind};

fn read_failures(tx: &rusqlite::Transaction<'_>, user: &str) -> rusqlite::Result<Failures> {
    Ok(failures_row(tx, user)?.unwrap_or_default())
}

/// The user's failures row, if there is one. Statements here are prepared once per
/// connection (`prepare_cached`).
fn failures_row(tx: &rusqlite::Transaction<'_>, user: &str) -> rusqlite::Result<Option<Failures>> {
    let row: Option<(u32, i64, Option<i64>)> = tx
        .prepare_cached("SELECT count, window_start, locked_until FROM failures WHERE user = ?1")?
        .query_row(params![user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(row.map(|(count, ws, lu)| Failures {
        count,
        window_start: ws.max(0) as u64,
        locked_until: lu.map(|l| l.max(0) as u64),
    }))
}

/// The user's enrolment row, if there is one.
fn enrolment_row(c: &Connection, user: &str) -> rusqlite::Result<Option<EnrolmentRow>> {
    c.prepare_cached(
        "SELECT nonce, secret, algorithm, digits, period, state, last_step FROM totp WHERE user = ?1",
    )?
    .query_row(params![user], |r| {
        Ok(EnrolmentRow {
            nonce: r.get(0)?,
            secret: r.get(1)?,
            algorithm: r.get(2)?,
            digits: r.get(3)?,
            period: r.get(4)?,
            state: r.get(5)?,
            last_step: r.get(6)?,
        })
    })
    .optional()
}

fn write_failures(tx: &rusqlite::Transaction<'_>, user: &str, f: &Failures) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO failures (user, count, window_start, locked_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user) DO UPDATE SET count = ?2, window_start = ?3, locked_until = ?4",
    )?
    .execute(params![
        user,
        f.count,
        f.window_start as i64,
        f.locked_until.map(|l| l as i64)
    ])
    .map(|_| ())
}

/// The embedded default store: one SQLite file, WAL mode, secrets encrypted at rest.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    at_rest: AtRest,
    path: PathBuf,
    /// The process that opened the connection: SQLite connections must not cross a `fork()`.
    pid: u32,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn store_err<E>(path: &Path, what: &str, e: E) -> Error
where
    E: std::fmt::Display + Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    Error::new(
        ErrorKind::MfaStore,
        format!("MFA database {}: {what}: {e}", path.display()),
    )
    .with_source(e)
}

impl SqliteStore {
    /// Opens the database at `path` with the key in `key_file`.
    ///
    /// With `create`, a missing database is created, and a missing key file too (32 random
    /// bytes, mode 0600) — but only when the database is new: a key is never replaced.
    /// Without `create`, a missing database is an [`ErrorKind::MfaStore`] error. A key that
    /// does not decrypt the database is an [`ErrorKind::MfaKey`] error and nothing is written.
    pub fn open(path: &Path, key_file: &Path, create: bool) -> Result<Self, Error> {
        Self::open_with(path, key_file, create, Synchronous::Full)
    }

    /// [`open`](Self::open), its commits as durable as `synchronous` says.
    pub fn open_with(
        path: &Path,
        key_file: &Path,
        create: bool,
        synchronous: Synchronous,
    ) -> Result<Self, Error> {
        let exists = path.exists();
        if !exists && !create {
            return Err(Error::new(
                ErrorKind::MfaStore,
                format!(
                    "no MFA database at {} (enrol a user first, or check mfa.database)",
                    path.display()
                ),
            ));
        }
        let key = load_or_create_key(key_file, !exists)?;
        if !exists {
            // created 0600 by us (SQLite gives its -wal and -shm files the same mode); a
            // process that created it first in the meantime is fine
            match crate::secret::create_private_file(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(store_err(path, "cannot create", e)),
            }
        }
        let conn = Connection::open(path).map_err(|e| store_err(path, "cannot open", e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| store_err(path, "busy timeout", e))?;
        // set, not left to the build's default: FULL syncs the WAL at every commit
        let level = match synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", level)
            .map_err(|e| store_err(path, "synchronous", e))?;
        let store = Self {
            conn: Mutex::new(conn),
            at_rest: AtRest::new(&key),
            path: path.to_owned(),
            pid: std::process::id(),
        };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<(), Error> {
        let mut conn = self.lock()?;
        let p = self.path.clone();
        // Switching a new database to WAL takes an exclusive lock and, while another process
        // is doing the same, answers "busy" without waiting for the busy timeout: retry
        // (bounded) — seen with several processes opening a new store at once.
        let mut tries = 0;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(store_err(&p, "not a usable SQLite database", e)),
            }
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| store_err(&p, "begin", e))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS totp (
                 user TEXT PRIMARY KEY, nonce BLOB NOT NULL, secret BLOB NOT NULL,
                 algorithm TEXT NOT NULL, digits INTEGER NOT NULL, period INTEGER NOT NULL,
                 state TEXT NOT NULL, last_step INTEGER);
             CREATE TABLE IF NOT EXISTS failures (
                 user TEXT PRIMARY KEY, count INTEGER NOT NULL, window_start INTEGER NOT NULL, locked_until INTEGER);
             CREATE TABLE IF NOT EXISTS recovery (id INTEGER PRIMARY KEY, user TEXT NOT NULL, hash TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS recovery_user ON recovery(user);",
        )
        .map_err(|e| store_err(&p, "schema", e))?;
        let check: Option<Vec<u8>> = tx
            .query_row("SELECT v FROM meta WHERE k = 'key_check'", [], |r| r.get(0))
            .optional()
            .map_err(|e| store_err(&p, "read", e))?;
        match check {
            Some(blob) => {
                if !self.at_rest.opens(&blob) {
                    return Err(Error::new(
                        ErrorKind::MfaKey,
                        format!(
                            "{} was encrypted with another key (check mfa.key_file)",
                            p.display()
                        ),
                    ));
                }
            }
            None => {
                let blob = self.at_rest.key_check()?;
                tx.execute("INSERT INTO meta (k, v) VALUES ('key_check', ?1)", params![blob])
                    .map_err(|e| store_err(&p, "write", e))?;
            }
        }
        tx.commit().map_err(|e| store_err(&p, "commit", e))
    }

    /// The connection, refused in a child of the process that opened it ([`ErrorKind::InvalidContext`]:
    /// a SQLite connection used on both sides of a `fork()` can corrupt the database; sshd
    /// runs PAM in a forked child).
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, Error> {
        if std::process::id() != self.pid {
            return Err(Error::new(
                ErrorKind::InvalidContext,
                format!(
                    "the MFA database {} was opened before a fork(): open it again in this process",
                    self.path.display()
                ),
            ));
        }
        self.conn.lock().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                "MFA database handle poisoned by an earlier panic",
            )
        })
    }

    /// An enrolment row decoded and its secret decrypted.
    fn decode(&self, user: &str, row: EnrolmentRow) -> Result<Enrolment, Error> {
        row.decode(user, &self.at_rest, |why| {
            store_err(&self.path, "corrupted row", why)
        })
    }

    fn db<T>(&self, what: &str, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        let mut conn = self.lock()?;
        f(&mut conn).map_err(|e| store_err(&self.path, what, e))
    }
}

impl MfaStore for SqliteStore {
    fn put_enrolment(&self, user: &str, e: &Enrolment) -> Result<(), Error> {
        let (nonce, ct) = self.at_rest.encrypt(e.secret.expose_secret(), user.as_bytes())?;
        let state = state_name(e.state);
        self.db("store enrolment", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM totp WHERE user = ?1", params![user])?;
            tx.execute(
                "INSERT INTO totp (user, nonce, secret, algorithm, digits, period, state, last_step)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    user,
                    nonce,
                    ct,
                    alg_name(e.params.algorithm),
                    e.params.digits,
                    e.params.period as i64,
                    state,
                    e.last_step.map(|s| s as i64)
                ],
            )?;
            tx.commit()
        })
    }

    fn enrolment(&self, user: &str) -> Result<Option<Enrolment>, Error> {
        let row = self.db("read enrolment", |c| enrolment_row(c, user))?;
        row.map(|r| self.decode(user, r)).transpose()
    }

    /// One `BEGIN IMMEDIATE` transaction: the two rows read, the attempt judged, at most two
    /// rows written, one commit (one WAL sync with `synchronous = FULL`). Writers wait for
    /// each other, so racing processes judge one attempt at a time.
    fn verify_attempt(
        &self,
        user: &str,
        now: u64,
        policy: &ThrottlePolicy,
        judge: &mut (dyn FnMut(&Enrolment) -> Result<u64, Error> + Send),
    ) -> Result<Verified, Error> {
        let mut conn = self.lock()?;
        let err = |e| store_err(&self.path, "verify", e);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let failures = failures_row(&tx, user).map_err(err)?;
        let row = enrolment_row(&tx, user).map_err(err)?;
        let enrolment = row.map(|r| self.decode(user, r));
        let d = decide(user, now, policy, failures, enrolment, judge)?;
        if let Some(step) = d.advance {
            let n = tx
                .prepare_cached(
                    "UPDATE totp SET last_step = ?1, state = 'active'
                     WHERE user = ?2 AND (last_step IS NULL OR last_step < ?1)",
                )
                .and_then(|mut st| st.execute(params![step as i64, user]))
                .map_err(err)?;
            if n != 1 {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "MFA replay guard: the row changed inside its own transaction",
                ));
            }
        }
        match d.failures {
            FailuresRow::Keep => {}
            FailuresRow::Write(f) => write_failures(&tx, user, &f).map_err(err)?,
            FailuresRow::Delete => {
                tx.prepare_cached("DELETE FROM failures WHERE user = ?1")
                    .and_then(|mut st| st.execute(params![user]))
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        d.outcome
    }

    fn advance_step(&self, user: &str, step: u64) -> Result<bool, Error> {
        let n = self.db("update replay guard", |c| {
            c.execute(
                "UPDATE totp SET last_step = ?1, state = 'active'
                 WHERE user = ?2 AND (last_step IS NULL OR last_step < ?1)",
                params![step as i64, user],
            )
        })?;
        Ok(n == 1)
    }

    fn delete_enrolment(&self, user: &str) -> Result<bool, Error> {
        Ok(self.delete_enrolments(&[user])?.first().copied().unwrap_or(false))
    }

    fn delete_enrolments(&self, users: &[&str]) -> Result<Vec<bool>, Error> {
        self.db("delete enrolment", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut had = Vec::with_capacity(users.len());
            for user in users {
                let n = tx.execute("DELETE FROM totp WHERE user = ?1", params![user])?;
                tx.execute("DELETE FROM recovery WHERE user = ?1", params![user])?;
                tx.execute("DELETE FROM failures WHERE user = ?1", params![user])?;
                had.push(n > 0);
            }
            tx.commit()?;
            Ok(had)
        })
    }

    fn throttle(&self, user: &str, now: u64, failed: bool, p: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.db("throttle", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (locked, write) = throttled(read_failures(&tx, user)?, now, failed, p);
            if let Some(f) = write {
                write_failures(&tx, user, &f)?;
                tx.commit()?;
            }
            Ok(locked)
        })
    }

    fn reserve_attempt(&self, user: &str, now: u64, p: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.db("reserve attempt", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (locked, write) = reserved(read_failures(&tx, user)?, now, p);
            if let Some(f) = write {
                write_failures(&tx, user, &f)?;
                tx.commit()?;
            }
            Ok(locked)
        })
    }

    fn confirm_failure(&self, user: &str, now: u64, p: &ThrottlePolicy) -> Result<(), Error> {
        self.db("record failure", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(f) = confirmed(read_failures(&tx, user)?, now, p) {
                write_failures(&tx, user, &f)?;
            }
            tx.commit()
        })
    }

    fn clear_failures(&self, user: &str) -> Result<(), Error> {
        self.db("clear failures", |c| {
            c.execute("DELETE FROM failures WHERE user = ?1", params![user])
                .map(|_| ())
        })
    }

    fn replace_recovery_codes(&self, user: &str, hashes: &[String]) -> Result<(), Error> {
        self.db("store recovery codes", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM recovery WHERE user = ?1", params![user])?;
            for h in hashes {
                tx.execute(
                    "INSERT INTO recovery (user, hash) VALUES (?1, ?2)",
                    params![user, h],
                )?;
            }
            tx.commit()
        })
    }

    fn recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, Error> {
        self.db("read recovery codes", |c| {
            let mut st = c.prepare("SELECT id, hash FROM recovery WHERE user = ?1 ORDER BY id")?;
            let rows = st.query_map(params![user], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    fn consume_recovery_code(&self, user: &str, id: i64) -> Result<bool, Error> {
        let n = self.db("consume recovery code", |c| {
            c.execute(
                "DELETE FROM recovery WHERE id = ?1 AND user = ?2",
                params![id, user],
            )
        })?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_durability_asked_for_is_the_connections_setting() {
        let dir = std::env::temp_dir().join(format!("cadenas-mfa-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let key = dir.join("mfa.key");
        for (sync, want) in [(Synchronous::Full, 2), (Synchronous::Normal, 1)] {
            let store = SqliteStore::open_with(&dir.join("mfa.db"), &key, true, sync).expect("open");
            let conn = store.lock().expect("connection");
            let level: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .expect("pragma");
            assert_eq!(level, want, "{sync:?}");
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .expect("pragma");
            assert_eq!(mode, "wal");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
