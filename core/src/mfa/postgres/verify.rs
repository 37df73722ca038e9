//! A TOTP verification on the PostgreSQL store in one statement, one round trip and one
//! commit on the common path — what a login gateway does on every login.
//!
//! The code is judged against this process's copy of the user's enrolment (read once, its
//! secret decrypted once and zeroized when dropped). Then one statement, prepared once per
//! connection, does atomically what the SQLite store does in its transaction:
//!
//! - **accepted**: the step is recorded only if it is later than the last accepted one (the
//!   replay guard: of racing hosts with one code, PostgreSQL re-checks the condition on the
//!   newest row version, so exactly one wins), only if the row is still the enrolment the
//!   code was judged against (its nonce: a re-enrolment elsewhere is noticed), and only if
//!   no lockout runs; the failures are then forgotten;
//! - **refused**: one upsert counts the failure in the window and starts the lockout at
//!   `max_failures`; the count it returns says whether this failure is one of the window's
//!   first `max_failures` (answered as such) or came after them (answered "throttled"). Of
//!   any number of racing guesses, at most `max_failures` are answered, and a right code is
//!   accepted only while no lockout runs.
//!
//! The window rules are those of `throttle`, written in SQL: a lockout that has ended, or a
//! window that has passed with none, starts a new window.

use std::sync::Arc;

use postgres::types::Type;
use postgres::Statement;

use super::PgStore;
use crate::error::{Error, ErrorKind};
use crate::mfa::store::{not_enrolled, replayed, throttled, EnrolmentRow};
use crate::mfa::{Enrolment, ThrottlePolicy, Verified};

/// An enrolment as this process read it.
pub(super) struct Cached {
    /// The row's nonce: which encryption of which secret it is.
    nonce: Vec<u8>,
    pub(super) enrolment: Enrolment,
}

/// The statements of a verification, prepared on a connection at first use.
#[derive(Default)]
pub(super) struct Statements {
    load: Option<Statement>,
    accept: Option<Statement>,
    fail: Option<Statement>,
}

const LOAD: &str = "SELECT nonce, secret, algorithm, digits, period, state, last_step
                    FROM mfa_totp WHERE login = $1";

/// $1 login, $2 step, $3 nonce, $4 now.
const ACCEPT: &str = "
WITH lock AS (
    SELECT locked_until FROM mfa_failures WHERE login = $1 AND locked_until > $4
), before AS (
    SELECT state FROM mfa_totp WHERE login = $1
), guard AS (
    UPDATE mfa_totp SET last_step = $2, state = 'active'
    WHERE login = $1 AND nonce = $3 AND (last_step IS NULL OR last_step < $2)
      AND NOT EXISTS (SELECT 1 FROM lock)
    RETURNING 1
), cleared AS (
    DELETE FROM mfa_failures WHERE login = $1 AND EXISTS (SELECT 1 FROM guard)
)
SELECT (SELECT count(*) FROM guard),
       (SELECT state FROM before),
       (SELECT locked_until FROM lock),
       EXISTS (SELECT 1 FROM mfa_totp WHERE login = $1 AND nonce = $3)";

/// $1 login, $2 now, $3 max_failures, $4 window, $5 lockout. A new window starts when a
/// lockout has ended, or when the window has passed with none running.
const FAIL: &str = "
INSERT INTO mfa_failures AS f (login, count, window_start, locked_until)
VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $2 + $5 END)
ON CONFLICT (login) DO UPDATE SET
    count = CASE WHEN (f.locked_until IS NOT NULL AND f.locked_until <= $2)
                   OR (f.locked_until IS NULL AND $2 - f.window_start >= $4)
                 THEN 1 ELSE f.count + 1 END,
    window_start = CASE WHEN (f.locked_until IS NOT NULL AND f.locked_until <= $2)
                          OR (f.locked_until IS NULL AND $2 - f.window_start >= $4)
                        THEN $2 ELSE f.window_start END,
    locked_until = CASE WHEN (f.locked_until IS NOT NULL AND f.locked_until <= $2)
                          OR (f.locked_until IS NULL AND $2 - f.window_start >= $4)
                        THEN CASE WHEN 1 >= $3 THEN $2 + $5 END
                        WHEN f.locked_until IS NOT NULL THEN f.locked_until
                        WHEN f.count + 1 >= $3 THEN $2 + $5
                        END
RETURNING count, locked_until";

/// The statement in `slot`, prepared on `c` the first time.
fn prepared(
    c: &mut postgres::Client,
    slot: &mut Option<Statement>,
    sql: &str,
    types: &[Type],
) -> Result<Statement, postgres::Error> {
    if let Some(s) = slot {
        return Ok(s.clone());
    }
    let s = c.prepare_typed(sql, types)?;
    *slot = Some(s.clone());
    Ok(s)
}

/// How [`ACCEPT`] ended.
enum Accept {
    Accepted {
        activated: bool,
    },
    Locked {
        until: u64,
    },
    /// The row is not the enrolment the code was judged against (re-enrolled, or gone).
    Stale,
    Replayed,
}

/// Holds at most this many enrolments; then starts again empty.
const CACHED_MAX: usize = 65_536;

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgStore {
    /// The user's enrolment read now, its secret decrypted.
    pub(super) fn load(&self, user: &str) -> Result<Option<Cached>, Error> {
        let row = self.db_with("read enrolment", |c, st| {
            let load = prepared(c, &mut st.load, LOAD, &[Type::TEXT])?;
            c.query_opt(&load, &[&user])
        })?;
        let Some(r) = row else { return Ok(None) };
        let nonce: Vec<u8> = r.get(0);
        let enrolment = EnrolmentRow {
            nonce: nonce.clone(),
            secret: r.get(1),
            algorithm: r.get(2),
            digits: r.get(3),
            period: r.get(4),
            state: r.get(5),
            last_step: r.get(6),
        }
        .decode(user, &self.at_rest, |why| {
            Error::new(
                ErrorKind::MfaStore,
                format!("MFA store {}: corrupted row: {why}", self.target.url()),
            )
        })?;
        Ok(Some(Cached { nonce, enrolment }))
    }

    /// The user's enrolment: this process's copy, or read now (and kept).
    fn cached(&self, user: &str) -> Result<Option<Arc<Cached>>, Error> {
        if let Some(c) = self.enrolments.lock().ok().and_then(|m| m.get(user).cloned()) {
            return Ok(Some(c));
        }
        let Some(cached) = self.load(user)?.map(Arc::new) else {
            return Ok(None);
        };
        if let Ok(mut m) = self.enrolments.lock() {
            if m.len() >= CACHED_MAX {
                m.clear();
            }
            m.insert(user.to_owned(), cached.clone());
        }
        Ok(Some(cached))
    }

    fn accept(&self, user: &str, step: u64, nonce: &[u8], now: u64) -> Result<Accept, Error> {
        let row = self.db_with("verify", |c, st| {
            let accept = prepared(
                c,
                &mut st.accept,
                ACCEPT,
                &[Type::TEXT, Type::INT8, Type::BYTEA, Type::INT8],
            )?;
            c.query_one(&accept, &[&user, &int(step), &nonce, &int(now)])
        })?;
        let accepted: i64 = row.get(0);
        let before: Option<String> = row.get(1);
        let locked: Option<i64> = row.get(2);
        let same: bool = row.get(3);
        Ok(if accepted == 1 {
            Accept::Accepted {
                activated: before.as_deref() == Some("pending"),
            }
        } else if let Some(until) = locked {
            Accept::Locked {
                until: until.max(0) as u64,
            }
        } else if !same {
            Accept::Stale
        } else {
            Accept::Replayed
        })
    }

    /// Counts a failed attempt; the error to answer: `refusal` when it is one of the window's
    /// first `max_failures`, "throttled" after them (or the store's, when it cannot count).
    fn fail(&self, user: &str, now: u64, p: &ThrottlePolicy, refusal: Error) -> Error {
        let counted = self.db_with("record failure", |c, st| {
            let fail = prepared(
                c,
                &mut st.fail,
                FAIL,
                &[Type::TEXT, Type::INT8, Type::INT8, Type::INT8, Type::INT8],
            )?;
            c.query_one(
                &fail,
                &[
                    &user,
                    &int(now),
                    &i64::from(p.max_failures),
                    &int(p.window),
                    &int(p.lockout),
                ],
            )
        });
        let row = match counted {
            Ok(row) => row,
            Err(e) => return e,
        };
        let count: i64 = row.get(0);
        let locked: Option<i64> = row.get(1);
        match locked {
            Some(until) if count > i64::from(p.max_failures) => throttled(until.max(0) as u64, now),
            _ => refusal,
        }
    }
}

/// [`MfaStore::verify_attempt`](crate::mfa::MfaStore::verify_attempt) on PostgreSQL.
pub(super) fn attempt(
    store: &PgStore,
    user: &str,
    now: u64,
    policy: &ThrottlePolicy,
    judge: &mut (dyn FnMut(&Enrolment) -> Result<u64, Error> + Send),
) -> Result<Verified, Error> {
    // twice at most: once more when the copy turns out stale (re-enrolled on another host)
    for _ in 0..2 {
        let Some(c) = store.cached(user)? else {
            return Err(store.fail(user, now, policy, not_enrolled(user)));
        };
        let step = match judge(&c.enrolment) {
            Ok(step) => step,
            Err(e) => return Err(store.fail(user, now, policy, e)),
        };
        match store.accept(user, step, &c.nonce, now)? {
            Accept::Accepted { activated } => return Ok(Verified { step, activated }),
            Accept::Locked { until } => return Err(throttled(until, now)),
            Accept::Replayed => return Err(store.fail(user, now, policy, replayed())),
            Accept::Stale => store.forget(user),
        }
    }
    Err(Error::new(
        ErrorKind::MfaStore,
        format!(
            "MFA store {}: the enrolment of {user} keeps changing",
            store.target.url()
        ),
    ))
}
