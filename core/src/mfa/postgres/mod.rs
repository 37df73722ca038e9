//! The MFA store on PostgreSQL, for several hosts (PAM on every mail and VPN gateway, several
//! responders) sharing one state: the same semantics as [`SqliteStore`](super::SqliteStore).
//!
//! - Secrets are encrypted at rest exactly as in SQLite, under the key file each host holds
//!   (the same 32 bytes everywhere; the database never sees the key).
//! - The replay guard is one conditional `UPDATE … WHERE last_step < $1`: PostgreSQL
//!   re-checks the condition on the newest row version when two updates race, so exactly one
//!   host accepts a code.
//! - Throttling reads the user's row `FOR UPDATE` inside one transaction: racing guesses from
//!   several hosts are serialised per user and never exceed `max_failures`.
//! - The schema is versioned (`core/migrations/mfa/*.sql`, table `cadenas_mfa_migrations`),
//!   applied under an advisory lock when a store is opened.
//! - A lost connection (server restart) fails the call in progress with an
//!   [`ErrorKind::MfaStore`] error; the next call connects again.

mod verify;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::key::{load_or_create_key, AtRest};

use super::store::{alg_name, state_name};
use super::throttle::{confirmed, reserved, throttled};
use super::{Enrolment, Failures, MfaStore, Synchronous, ThrottlePolicy, Verified};
use crate::db::{migrate, PgClient, PgFailure, PgTarget};
use crate::error::{Error, ErrorKind};

/// The versioned schema: migration N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[include_str!("../../../migrations/mfa/0001_init.sql")];

/// Advisory lock id serialising migrations of the MFA schema ("CADMFA01").
const MIGRATION_LOCK: i64 = 0x4341_444d_4641_3031;

/// The MFA store in a PostgreSQL database shared by several hosts.
pub struct PgStore {
    target: PgTarget,
    client: Mutex<Option<Conn>>,
    at_rest: AtRest,
    /// Enrolments read by this process, their secrets decrypted once (zeroized when dropped):
    /// a verify judges the code here, then one statement checks that the row is still the
    /// same one (its nonce) while it records the step.
    enrolments: Mutex<HashMap<String, Arc<verify::Cached>>>,
    /// The process that connected: a connection must not be used on both sides of a `fork()`.
    pid: u32,
    synchronous: Synchronous,
}

/// A connection and the statements prepared on it.
struct Conn {
    client: PgClient,
    statements: verify::Statements,
}

/// A connection to the store's database, its commits as durable as `synchronous` says.
fn connect(target: &PgTarget, synchronous: Synchronous) -> Result<PgClient, Error> {
    let mut client = target.connect(ErrorKind::MfaStore)?;
    if synchronous == Synchronous::Normal {
        client
            .run(|c| c.batch_execute("SET synchronous_commit = off"))
            .map_err(|e| store_err(target, "synchronous_commit", e))?;
    }
    Ok(client)
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.target.url())
            .finish_non_exhaustive()
    }
}

fn read_failures(tx: &mut postgres::Transaction<'_>, user: &str) -> Result<Failures, postgres::Error> {
    // the row exists (count 0) before it is locked: racing transactions then queue on it
    tx.execute(
        "INSERT INTO mfa_failures (login, count, window_start, locked_until) VALUES ($1, 0, 0, NULL)
         ON CONFLICT (login) DO NOTHING",
        &[&user],
    )?;
    let row = tx.query_opt(
        "SELECT count, window_start, locked_until FROM mfa_failures WHERE login = $1 FOR UPDATE",
        &[&user],
    )?;
    Ok(row.map(|r| failures_of(&r)).unwrap_or_default())
}

/// A failures row (`count, window_start, locked_until`).
fn failures_of(r: &postgres::Row) -> Failures {
    Failures {
        count: u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
        window_start: r.get::<_, i64>(1).max(0) as u64,
        locked_until: r.get::<_, Option<i64>>(2).map(|l| l.max(0) as u64),
    }
}

fn write_failures(
    tx: &mut postgres::Transaction<'_>,
    user: &str,
    f: &Failures,
) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO mfa_failures (login, count, window_start, locked_until) VALUES ($1, $2, $3, $4)
         ON CONFLICT (login) DO UPDATE SET count = $2, window_start = $3, locked_until = $4",
        &[
            &user,
            &i64::from(f.count),
            &(f.window_start as i64),
            &f.locked_until.map(|l| l as i64),
        ],
    )
    .map(|_| ())
}

impl PgStore {
    /// Connects to the store at `target` with the key in `key_file`, applying the schema's
    /// migrations.
    ///
    /// With `create`, a database without an MFA store gets one, and a missing key file is
    /// created (32 random bytes, 0600) — only then: a host joining an existing store must be
    /// given the store's key. Without `create`, a database with no store is an
    /// [`ErrorKind::MfaStore`] error. A key that is not the store's is an [`ErrorKind::MfaKey`]
    /// error and nothing is written.
    pub fn open(cfg: &super::MfaConfig, create: bool) -> Result<Self, Error> {
        match cfg.postgres_target()? {
            Some(target) => Self::open_target(&target, &cfg.key_file, create, cfg.synchronous),
            None => Err(Error::new(
                ErrorKind::Config,
                "mfa.database is not a PostgreSQL URL: open a SqliteStore",
            )),
        }
    }

    pub(crate) fn open_target(
        target: &PgTarget,
        key_file: &std::path::Path,
        create: bool,
        synchronous: Synchronous,
    ) -> Result<Self, Error> {
        let mut client = connect(target, synchronous)?;
        let err = |what: &str, e: PgFailure| store_err(target, what, e);
        client
            .run(|c| migrate(c, "cadenas_mfa_migrations", MIGRATION_LOCK, MIGRATIONS))
            .map_err(|e| err("schema migration", e))?;
        let read_check = |c: &mut PgClient| -> Result<Option<Vec<u8>>, Error> {
            c.run(|c| {
                c.query_opt("SELECT v FROM mfa_meta WHERE k = 'key_check'", &[])
                    .map(|r| r.map(|r| r.get(0)))
            })
            .map_err(|e| err("read", e))
        };
        let at_rest = match read_check(&mut client)? {
            Some(blob) => {
                let at_rest = AtRest::new(&load_or_create_key(key_file, false)?);
                check_key(&at_rest, &blob, target)?;
                at_rest
            }
            None if !create => {
                return Err(Error::new(
                    ErrorKind::MfaStore,
                    format!(
                        "PostgreSQL {} holds no MFA store yet (enrol a user first, or check mfa.database)",
                        target.url()
                    ),
                ))
            }
            None => {
                let at_rest = AtRest::new(&load_or_create_key(key_file, true)?);
                let check = at_rest.key_check()?;
                client
                    .run(|c| {
                        c.execute(
                            "INSERT INTO mfa_meta (k, v) VALUES ('key_check', $1) ON CONFLICT (k) DO NOTHING",
                            &[&check],
                        )
                    })
                    .map_err(|e| err("write", e))?;
                // another host may have created the store at the same moment: its key won
                let blob = read_check(&mut client)?.unwrap_or_default();
                check_key(&at_rest, &blob, target)?;
                at_rest
            }
        };
        Ok(Self {
            target: target.clone(),
            client: Mutex::new(Some(Conn {
                client,
                statements: verify::Statements::default(),
            })),
            at_rest,
            enrolments: Mutex::default(),
            pid: std::process::id(),
            synchronous,
        })
    }

    /// Runs `f` on the connection (connecting again first if the last one was lost). An error
    /// that lost the connection drops it: the next call reconnects.
    fn db<T: Send>(
        &self,
        what: &str,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, Error> {
        self.db_with(what, |c, _| f(c))
    }

    /// [`db`](Self::db), with the statements prepared on the connection.
    fn db_with<T: Send>(
        &self,
        what: &str,
        f: impl FnOnce(&mut postgres::Client, &mut verify::Statements) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, Error> {
        if std::process::id() != self.pid {
            return Err(Error::new(
                ErrorKind::InvalidContext,
                format!(
                    "the MFA store {} was connected before a fork(): open it again in this process",
                    self.target.url()
                ),
            ));
        }
        let mut slot = self.client.lock().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                "MFA store handle poisoned by an earlier panic",
            )
        })?;
        if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
            *slot = None;
            *slot = Some(Conn {
                client: connect(&self.target, self.synchronous)?,
                statements: verify::Statements::default(),
            });
        }
        let Some(conn) = slot.as_mut() else {
            return Err(Error::new(ErrorKind::Internal, "no MFA store connection"));
        };
        let statements = &mut conn.statements;
        conn.client.run(|c| f(c, statements)).map_err(|e| {
            let lost = e.lost_connection();
            let err = store_err(&self.target, what, e);
            if lost {
                *slot = None;
            }
            err
        })
    }

    /// Forgets what this process read of `user`'s enrolment.
    fn forget(&self, user: &str) {
        if let Ok(mut m) = self.enrolments.lock() {
            m.remove(user);
        }
    }
}

fn check_key(at_rest: &AtRest, blob: &[u8], target: &PgTarget) -> Result<(), Error> {
    if at_rest.opens(blob) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::MfaKey,
        format!(
            "the MFA store in {} was encrypted with another key (check mfa.key_file: every host needs the store's key)",
            target.url()
        ),
    ))
}

fn store_err(target: &PgTarget, what: &str, e: PgFailure) -> Error {
    let err = Error::new(
        ErrorKind::MfaStore,
        format!("MFA store {}: {what}: {}", target.url(), e.reason()),
    );
    match e.into_source() {
        Some(src) => err.with_source(src),
        None => err,
    }
}

impl MfaStore for PgStore {
    fn put_enrolment(&self, user: &str, e: &Enrolment) -> Result<(), Error> {
        let (nonce, ct) = self.at_rest.encrypt(e.secret.expose_secret(), user.as_bytes())?;
        self.forget(user);
        self.db("store enrolment", |c| {
            c.execute(
                "INSERT INTO mfa_totp (login, nonce, secret, algorithm, digits, period, state, last_step)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (login) DO UPDATE SET nonce = $2, secret = $3, algorithm = $4,
                     digits = $5, period = $6, state = $7, last_step = $8",
                &[
                    &user,
                    &nonce,
                    &ct,
                    &alg_name(e.params.algorithm),
                    &i64::from(e.params.digits),
                    &(e.params.period as i64),
                    &state_name(e.state),
                    &e.last_step.map(|s| s as i64),
                ],
            )
            .map(|_| ())
        })
    }

    fn enrolment(&self, user: &str) -> Result<Option<Enrolment>, Error> {
        // always read (the process's copy is for judging codes; its state and step go stale)
        Ok(self.load(user)?.map(|c| c.enrolment))
    }

    /// One statement on the common path (see `verify`): the code judged against this
    /// process's copy of the enrolment, then the replay guard, the lockout check and the
    /// failures' reset (or the failure's count) in one statement, prepared once per
    /// connection — one round trip, one commit.
    fn verify_attempt(
        &self,
        user: &str,
        now: u64,
        policy: &ThrottlePolicy,
        judge: &mut (dyn FnMut(&Enrolment) -> Result<u64, Error> + Send),
    ) -> Result<Verified, Error> {
        verify::attempt(self, user, now, policy, judge)
    }

    fn advance_step(&self, user: &str, step: u64) -> Result<bool, Error> {
        let n = self.db("update replay guard", |c| {
            c.execute(
                "UPDATE mfa_totp SET last_step = $1, state = 'active'
                 WHERE login = $2 AND (last_step IS NULL OR last_step < $1)",
                &[&(step as i64), &user],
            )
        })?;
        Ok(n == 1)
    }

    fn delete_enrolment(&self, user: &str) -> Result<bool, Error> {
        Ok(self.delete_enrolments(&[user])?.first().copied().unwrap_or(false))
    }

    fn delete_enrolments(&self, users: &[&str]) -> Result<Vec<bool>, Error> {
        for u in users {
            self.forget(u);
        }
        self.db("delete enrolment", |c| {
            let mut tx = c.transaction()?;
            let mut had = Vec::with_capacity(users.len());
            for user in users {
                let n = tx.execute("DELETE FROM mfa_totp WHERE login = $1", &[user])?;
                tx.execute("DELETE FROM mfa_recovery WHERE login = $1", &[user])?;
                tx.execute("DELETE FROM mfa_failures WHERE login = $1", &[user])?;
                had.push(n > 0);
            }
            tx.commit()?;
            Ok(had)
        })
    }

    fn throttle(&self, user: &str, now: u64, failed: bool, p: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.db("throttle", |c| {
            let mut tx = c.transaction()?;
            let (locked, write) = throttled(read_failures(&mut tx, user)?, now, failed, p);
            if let Some(f) = write {
                write_failures(&mut tx, user, &f)?;
            }
            tx.commit()?;
            Ok(locked)
        })
    }

    fn reserve_attempt(&self, user: &str, now: u64, p: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.db("reserve attempt", |c| {
            let mut tx = c.transaction()?;
            let (locked, write) = reserved(read_failures(&mut tx, user)?, now, p);
            if let Some(f) = write {
                write_failures(&mut tx, user, &f)?;
            }
            tx.commit()?;
            Ok(locked)
        })
    }

    fn confirm_failure(&self, user: &str, now: u64, p: &ThrottlePolicy) -> Result<(), Error> {
        self.db("record failure", |c| {
            let mut tx = c.transaction()?;
            if let Some(f) = confirmed(read_failures(&mut tx, user)?, now, p) {
                write_failures(&mut tx, user, &f)?;
            }
            tx.commit()
        })
    }

    fn clear_failures(&self, user: &str) -> Result<(), Error> {
        self.db("clear failures", |c| {
            c.execute("DELETE FROM mfa_failures WHERE login = $1", &[&user])
                .map(|_| ())
        })
    }

    fn replace_recovery_codes(&self, user: &str, hashes: &[String]) -> Result<(), Error> {
        self.db("store recovery codes", |c| {
            let mut tx = c.transaction()?;
            tx.execute("DELETE FROM mfa_recovery WHERE login = $1", &[&user])?;
            for h in hashes {
                tx.execute(
                    "INSERT INTO mfa_recovery (login, hash) VALUES ($1, $2)",
                    &[&user, h],
                )?;
            }
            tx.commit()
        })
    }

    fn recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, Error> {
        self.db("read recovery codes", |c| {
            c.query(
                "SELECT id, hash FROM mfa_recovery WHERE login = $1 ORDER BY id",
                &[&user],
            )
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn consume_recovery_code(&self, user: &str, id: i64) -> Result<bool, Error> {
        let n = self.db("consume recovery code", |c| {
            c.execute(
                "DELETE FROM mfa_recovery WHERE id = $1 AND login = $2",
                &[&id, &user],
            )
        })?;
        Ok(n == 1)
    }
}
