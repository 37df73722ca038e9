//! Durable MFA state: the [`MfaStore`] trait and its embedded SQLite implementation.
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
use super::totp::{Algorithm, TotpParams};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// Whether an enrolment has been confirmed with a first valid code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EnrolmentState {
    /// Generated, not yet proven by the user.
    Pending,
    /// Proven by a valid code; used for verification.
    Active,
}

/// A stored TOTP enrolment.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Enrolment {
    /// The shared secret.
    pub secret: Secret,
    /// Parameters.
    pub params: TotpParams,
    /// Pending or active.
    pub state: EnrolmentState,
    /// The last accepted time step (the replay guard).
    pub last_step: Option<u64>,
}

/// Failed-attempt bookkeeping for throttling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failures {
    /// Failures in the current window.
    pub count: u32,
    /// Start of the current window (Unix seconds).
    pub window_start: u64,
    /// Verification is refused until this time (Unix seconds), if set.
    pub locked_until: Option<u64>,
}

/// Throttling policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottlePolicy {
    /// Failures within `window` that trigger a cool-down.
    pub max_failures: u32,
    /// Window length in seconds.
    pub window: u64,
    /// Cool-down length in seconds.
    pub lockout: u64,
}

/// Where MFA state lives. Implementations must make [`MfaStore::advance_step`] and
/// [`MfaStore::consume_recovery_code`] atomic across processes.
pub trait MfaStore: Send + Sync {
    /// Stores a new enrolment for `user`, replacing (never merging with) any existing one and
    /// its replay state.
    fn put_enrolment(&self, user: &str, enrolment: &Enrolment) -> Result<(), Error>;
    /// The user's enrolment.
    fn enrolment(&self, user: &str) -> Result<Option<Enrolment>, Error>;
    /// Atomically records `step` as accepted (and activates a pending enrolment) if it is
    /// later than the last accepted step. `false`: the step was already used (replay).
    fn advance_step(&self, user: &str, step: u64) -> Result<bool, Error>;
    /// Deletes the enrolment and recovery codes. `true` if there was an enrolment.
    fn delete_enrolment(&self, user: &str) -> Result<bool, Error>;
    /// [`delete_enrolment`](Self::delete_enrolment) of each of `users`, in one transaction
    /// where the store can (one commit for a batch of a containment): all deleted, or none.
    /// The default deletes them one by one.
    fn delete_enrolments(&self, users: &[&str]) -> Result<Vec<bool>, Error> {
        users.iter().map(|u| self.delete_enrolment(u)).collect()
    }
    /// Throttling check and update in one transaction: if locked at `now`, returns the lock
    /// end; otherwise, when `failed`, counts one failure (starting a cool-down at the limit).
    fn throttle(
        &self,
        user: &str,
        now: u64,
        failed: bool,
        policy: &ThrottlePolicy,
    ) -> Result<Option<u64>, Error>;
    /// Counts an attempt *before* its code is checked and refuses it (`Some(until)`) when the
    /// window's attempts reached `max_failures` — atomically, so that racing guesses cannot
    /// exceed it. The default (for stores that cannot) is the non-atomic `throttle` check.
    fn reserve_attempt(&self, user: &str, now: u64, policy: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.throttle(user, now, false, policy)
    }
    /// The reserved attempt failed: starts the lockout when the window's count reached
    /// `max_failures`. The default (stores without reservations) records a failure.
    fn confirm_failure(&self, user: &str, now: u64, policy: &ThrottlePolicy) -> Result<(), Error> {
        self.throttle(user, now, true, policy).map(|_| ())
    }
    /// Forgets the user's failures (after a success).
    fn clear_failures(&self, user: &str) -> Result<(), Error>;
    /// Replaces the user's recovery codes with these hashes.
    fn replace_recovery_codes(&self, user: &str, hashes: &[String]) -> Result<(), Error>;
    /// The user's unused recovery code hashes, with their ids.
    fn recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, Error>;
    /// Atomically consumes recovery code `id`; `false` if it was already consumed.
    fn consume_recovery_code(&self, user: &str, id: i64) -> Result<bool, Error>;
}

/// The throttling rules, the same for every store (each runs them in one transaction over
/// the user's row). `throttle`: the lock end if locked at `now`, and the row to write.
pub(super) fn throttled(
    f: Failures,
    now: u64,
    failed: bool,
    p: &ThrottlePolicy,
) -> (Option<u64>, Option<Failures>) {
    if let Some(until) = f.locked_until.filter(|u| *u > now) {
        return (Some(until), None);
    }
    if !failed {
        return (None, None);
    }
    let mut f = fresh_window(f, now, p);
    f.count += 1;
    if f.count >= p.max_failures {
        f.locked_until = Some(now + p.lockout);
    }
    (None, Some(f))
}

/// `reserve_attempt`: counts the attempt, or starts the lockout when the window is used up.
pub(super) fn reserved(f: Failures, now: u64, p: &ThrottlePolicy) -> (Option<u64>, Option<Failures>) {
    if let Some(until) = f.locked_until.filter(|u| *u > now) {
        return (Some(until), None);
    }
    let mut f = fresh_window(f, now, p);
    if f.count >= p.max_failures {
        f.locked_until = Some(now + p.lockout);
    } else {
        f.count += 1;
    }
    (f.locked_until, Some(f))
}

/// `confirm_failure`: the lockout starts when the window's count reached the limit.
pub(super) fn confirmed(mut f: Failures, now: u64, p: &ThrottlePolicy) -> Option<Failures> {
    if f.count >= p.max_failures && f.locked_until.is_none_or(|u| u <= now) {
        f.locked_until = Some(now + p.lockout);
        return Some(f);
    }
    None
}

fn fresh_window(f: Failures, now: u64, p: &ThrottlePolicy) -> Failures {
    if f.locked_until.is_some() || now.saturating_sub(f.window_start) >= p.window {
        Failures {
            count: 0,
            window_start: now,
            locked_until: None,
        }
    } else {
        f
    }
}

/// The stable name of an algorithm in a store's rows.
pub(super) fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha1 => "sha1",
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha512 => "sha512",
    }
}

/// The stable name of a state in a store's rows.
pub(super) fn state_name(s: EnrolmentState) -> &'static str {
    match s {
        EnrolmentState::Pending => "pending",
        EnrolmentState::Active => "active",
    }
}

/// An enrolment row as every store reads it.
pub(super) struct EnrolmentRow {
    pub nonce: Vec<u8>,
    pub secret: Vec<u8>,
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    pub state: String,
    pub last_step: Option<i64>,
}

impl EnrolmentRow {
    /// Checks what the row says like a config (6..=8 digits, 15..=300 s) and decrypts the
    /// secret (bound to `user`); `corrupt` makes the store's error for a bad row.
    pub(super) fn decode(
        self,
        user: &str,
        at_rest: &AtRest,
        corrupt: impl Fn(String) -> Error,
    ) -> Result<Enrolment, Error> {
        let algorithm = match self.algorithm.as_str() {
            "sha1" => Algorithm::Sha1,
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(corrupt(format!("algorithm {other:?}"))),
        };
        let state = match self.state.as_str() {
            "pending" => EnrolmentState::Pending,
            "active" => EnrolmentState::Active,
            other => return Err(corrupt(format!("state {other:?}"))),
        };
        let params = TotpParams {
            algorithm,
            digits: u32::try_from(self.digits).unwrap_or(0),
            period: u64::try_from(self.period).unwrap_or(0),
        };
        params.check().map_err(|e| corrupt(e.message().to_owned()))?;
        Ok(Enrolment {
            secret: at_rest.decrypt(&self.nonce, &self.secret, user.as_bytes())?,
            params,
            state,
            last_step: self.last_step.map(|s| s.max(0) as u64),
        })
    }
}

fn read_failures(tx: &rusqlite::Transaction<'_>, user: &str) -> rusqlite::Result<Failures> {
    let row: Option<(u32, i64, Option<i64>)> = tx
        .query_row(
            "SELECT count, window_start, locked_until FROM failures WHERE user = ?1",
            params![user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row
        .map(|(count, ws, lu)| Failures {
            count,
            window_start: ws.max(0) as u64,
            locked_until: lu.map(|l| l.max(0) as u64),
        })
        .unwrap_or_default())
}

fn write_failures(tx: &rusqlite::Transaction<'_>, user: &str, f: &Failures) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO failures (user, count, window_start, locked_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user) DO UPDATE SET count = ?2, window_start = ?3, locked_until = ?4",
        params![
            user,
            f.count,
            f.window_start as i64,
            f.locked_until.map(|l| l as i64)
        ],
    )
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
        let row = self.db("read enrolment", |c| {
            c.query_row(
                "SELECT nonce, secret, algorithm, digits, period, state, last_step FROM totp WHERE user = ?1",
                params![user],
                |r| {
                    Ok(EnrolmentRow {
                        nonce: r.get(0)?,
                        secret: r.get(1)?,
                        algorithm: r.get(2)?,
                        digits: r.get(3)?,
                        period: r.get(4)?,
                        state: r.get(5)?,
                        last_step: r.get(6)?,
                    })
                },
            )
            .optional()
        })?;
        row.map(|r| {
            r.decode(user, &self.at_rest, |why| {
                store_err(&self.path, "corrupted row", why)
            })
        })
        .transpose()
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
