//! The [`MfaStore`] trait every store implements (SQLite on one host: [`SqliteStore`];
//! PostgreSQL across hosts: [`PgStore`](super::PgStore)), the enrolment types, and the row
//! codec both stores share. The throttling rules are in `throttle`.

use super::key::AtRest;
use super::throttle::{confirmed, reserved, Failures, ThrottlePolicy};
use super::totp::{Algorithm, TotpParams};
use super::Verified;
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
    /// One verification attempt, as one durable write where the store can: the throttling
    /// decision (the attempt counted), the enrolment read, `judge` (the code checked against
    /// it: `Ok(step)` when it matches one), the replay guard, and the failure recorded or the
    /// failures forgotten. Whatever the store, of racing attempts (processes, hosts) a code is
    /// accepted at most once, at most `max_failures` failures are answered as such per window
    /// (the others are answered [`ErrorKind::MfaThrottled`]), and a right code is accepted only
    /// while no lockout runs. The SQLite store runs it as one transaction (racing attempts
    /// wait for each other); the PostgreSQL store as one statement.
    ///
    /// The default (for a store that cannot) runs the separate calls above in that order:
    /// [`reserve_attempt`](Self::reserve_attempt), [`enrolment`](Self::enrolment),
    /// [`advance_step`](Self::advance_step), then [`clear_failures`](Self::clear_failures) or
    /// [`confirm_failure`](Self::confirm_failure).
    fn verify_attempt(
        &self,
        user: &str,
        now: u64,
        policy: &ThrottlePolicy,
        judge: &mut (dyn FnMut(&Enrolment) -> Result<u64, Error> + Send),
    ) -> Result<Verified, Error> {
        if let Some(until) = self.reserve_attempt(user, now, policy)? {
            return Err(throttled(until, now));
        }
        let Some(e) = self.enrolment(user)? else {
            return Err(not_enrolled(user));
        };
        let checked = judge(&e).and_then(|step| {
            if e.last_step.is_some_and(|l| step <= l) || !self.advance_step(user, step)? {
                Err(replayed())
            } else {
                Ok(step)
            }
        });
        match checked {
            Ok(step) => {
                self.clear_failures(user)?;
                Ok(Verified {
                    step,
                    activated: e.state == EnrolmentState::Pending,
                })
            }
            Err(err) => {
                self.confirm_failure(user, now, policy)?;
                Err(err)
            }
        }
    }
    /// Replaces the user's recovery codes with these hashes.
    fn replace_recovery_codes(&self, user: &str, hashes: &[String]) -> Result<(), Error>;
    /// The user's unused recovery code hashes, with their ids.
    fn recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, Error>;
    /// Atomically consumes recovery code `id`; `false` if it was already consumed.
    fn consume_recovery_code(&self, user: &str, id: i64) -> Result<bool, Error>;
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

/// The error of an attempt refused while the user is throttled.
pub(super) fn throttled(until: u64, now: u64) -> Error {
    Error::new(
        ErrorKind::MfaThrottled,
        format!(
            "too many failed attempts: try again in {} s",
            until.saturating_sub(now)
        ),
    )
}

/// The error of an attempt for a user with no enrolment.
pub(super) fn not_enrolled(user: &str) -> Error {
    Error::new(ErrorKind::MfaNotEnrolled, format!("{user} has no TOTP enrolment"))
}

/// The error of a code at or before the last accepted step.
pub(super) fn replayed() -> Error {
    Error::new(
        ErrorKind::MfaReplayed,
        "this code (or a later one) was already used",
    )
}

/// What a store writes for one attempt, decided by [`decide`] from the rows read in the
/// attempt's transaction.
pub(super) struct Decision {
    /// What the caller is told.
    pub outcome: Result<Verified, Error>,
    /// The replay guard's new step (and the enrolment made active), on success.
    pub advance: Option<u64>,
    /// The user's failures row afterwards.
    pub failures: FailuresRow,
}

/// The user's failures row after an attempt.
pub(super) enum FailuresRow {
    /// Unchanged.
    Keep,
    /// Written (the attempt counted, a lockout started).
    Write(Failures),
    /// Deleted (a success forgets the failures).
    Delete,
}

/// One attempt judged over the rows its transaction read — the user's failures row, if any,
/// and enrolment row, if any — by the same rules as the default
/// [`MfaStore::verify_attempt`]: the attempt is counted unless it succeeds, a window used up
/// starts the lockout, a step at or before the last accepted one is a replay. An enrolment
/// row that does not decode is the store's error (nothing is written).
pub(super) fn decide(
    user: &str,
    now: u64,
    policy: &ThrottlePolicy,
    failures: Option<Failures>,
    enrolment: Option<Result<Enrolment, Error>>,
    judge: &mut (dyn FnMut(&Enrolment) -> Result<u64, Error> + Send),
) -> Result<Decision, Error> {
    let had_failures = failures.is_some();
    let (locked, counted) = reserved(failures.unwrap_or_default(), now, policy);
    let refuse = |outcome: Error, row: Option<Failures>| Decision {
        outcome: Err(outcome),
        advance: None,
        failures: row.map_or(FailuresRow::Keep, FailuresRow::Write),
    };
    if let Some(until) = locked {
        // a lockout starting now is written; one already running is not touched
        return Ok(refuse(throttled(until, now), counted));
    }
    let Some(counted) = counted else {
        return Err(Error::new(
            ErrorKind::Internal,
            "throttling: an attempt not counted",
        ));
    };
    let Some(e) = enrolment.transpose()? else {
        return Ok(refuse(not_enrolled(user), Some(counted)));
    };
    let checked = judge(&e).and_then(|step| {
        if e.last_step.is_some_and(|l| step <= l) {
            Err(replayed())
        } else {
            Ok(step)
        }
    });
    Ok(match checked {
        Ok(step) => Decision {
            outcome: Ok(Verified {
                step,
                activated: e.state == EnrolmentState::Pending,
            }),
            advance: Some(step),
            failures: if had_failures {
                FailuresRow::Delete
            } else {
                FailuresRow::Keep
            },
        },
        Err(err) => refuse(err, Some(confirmed(counted, now, policy).unwrap_or(counted))),
    })
}
