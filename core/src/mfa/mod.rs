//! MFA: TOTP enrolment and verification with a durable replay guard, throttling and
//! single-use recovery codes. What needs the directory too (password + code, enforcement) is
//! in the `auth` module, above both.
//!
//! Verification reads the clock; the `_at` variants take the time (`now`, Unix seconds), so
//! tests control it.
//!
//! ```no_run
//! # fn demo(cfg: &cadenas::mfa::MfaConfig) -> Result<(), cadenas::Error> {
//! use cadenas::mfa::Mfa;
//!
//! let mfa = Mfa::open(cfg, true)?;
//! let enrolment = mfa.enroll("jdupont")?;               // pending until proven
//! // show enrolment.qr_terminal (or the SVG) to the user, who scans it, then types a code:
//! mfa.verify("jdupont", "123456")?;                      // activates; the code can never be used again
//! let codes = mfa.new_recovery_codes("jdupont")?;        // shown once, stored as argon2id hashes
//! # Ok(()) }
//! ```

mod config;
mod key;
mod postgres;
mod recovery;
mod sqlite;
mod store;
mod throttle;
pub mod totp;

use std::sync::Arc;

use serde::Serialize;

pub use config::{MfaConfig, Synchronous};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
use store::throttled;
pub use store::{Enrolment, EnrolmentState, MfaStore};
pub use throttle::{Failures, ThrottlePolicy};
use totp::{matching_step, otpauth_uri, TotpCode, TotpParams};

use crate::db::Database;
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::time::unix_now;

/// A new (pending) enrolment, to show to the user once. Everything here contains the secret.
#[non_exhaustive]
pub struct NewEnrolment {
    /// The shared secret itself (raw key bytes).
    pub secret: Secret,
    /// The `otpauth://` URI (holds the secret).
    pub uri: Secret,
    /// The URI as a QR code, SVG image.
    pub qr_svg: Secret,
    /// The URI as a QR code for a terminal (Unicode half blocks).
    pub qr_terminal: Secret,
    /// The parameters.
    pub params: TotpParams,
}

impl NewEnrolment {
    /// The secret in base32 without padding, as the URI carries it and as authenticator apps
    /// take it for manual entry.
    pub fn secret_base32(&self) -> Secret {
        let text = zeroize::Zeroizing::new(totp::base32(self.secret.expose_secret()));
        Secret::new(text.as_bytes().to_vec())
    }
}

impl std::fmt::Debug for NewEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEnrolment")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// A successful verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Verified {
    /// The time step the code belonged to (now recorded as used).
    pub step: u64,
    /// Whether this code confirmed a pending enrolment.
    pub activated: bool,
}

/// The MFA service over a store.
pub struct Mfa {
    store: Arc<dyn MfaStore>,
    cfg: MfaConfig,
}

impl std::fmt::Debug for Mfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mfa")
            .field("database", &self.cfg.database)
            .finish_non_exhaustive()
    }
}

impl Mfa {
    /// Opens the store described by `cfg` — the embedded SQLite file, or the PostgreSQL
    /// database several hosts share (`create`: allow a new store, and its key file).
    pub fn open(cfg: &MfaConfig, create: bool) -> Result<Self, Error> {
        cfg.check()?;
        let store: Arc<dyn MfaStore> = match (&cfg.database, cfg.postgres_target()?) {
            (_, Some(target)) => Arc::new(PgStore::open_target(
                &target,
                &cfg.key_file,
                create,
                cfg.synchronous,
            )?),
            (Database::File(path), None) => Arc::new(SqliteStore::open_with(
                path,
                &cfg.key_file,
                create,
                cfg.synchronous,
            )?),
            (Database::Postgres(_), None) => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "a PostgreSQL store without a target",
                ))
            }
        };
        Ok(Self::with_store(store, cfg.clone()))
    }

    /// Uses any [`MfaStore`].
    pub fn with_store(store: Arc<dyn MfaStore>, cfg: MfaConfig) -> Self {
        Self { store, cfg }
    }

    fn policy(&self) -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures: self.cfg.max_failures,
            window: self.cfg.failure_window_secs,
            lockout: self.cfg.lockout_secs,
        }
    }

    /// Generates a 160-bit secret and stores a *pending* enrolment, replacing any existing
    /// enrolment (pending or active) — never merging: an attacker's device stops working.
    pub fn enroll(&self, user: &str) -> Result<NewEnrolment, Error> {
        check_user(user)?;
        let secret = Secret::random(20)?;
        let params = self.cfg.params();
        // Made first: an account name the URI cannot carry leaves no pending enrolment.
        let uri = otpauth_uri(&self.cfg.issuer, user, &secret, &params)?;
        self.store.put_enrolment(
            user,
            &Enrolment {
                secret: secret.clone(),
                params,
                state: EnrolmentState::Pending,
                last_step: None,
            },
        )?;
        self.store.clear_failures(user)?;
        let qr = qrcode::QrCode::new(uri.expose_secret())
            .map_err(|e| Error::new(ErrorKind::Internal, format!("QR encoding: {e}")))?;
        let qr_svg = qr
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(240, 240)
            .build();
        let qr_terminal = qr
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build();
        Ok(NewEnrolment {
            secret,
            uri,
            qr_svg: Secret::new(qr_svg.into_bytes()),
            qr_terminal: Secret::new(qr_terminal.into_bytes()),
            params,
        })
    }

    /// The user's enrolment state, if any.
    pub fn enrolment_state(&self, user: &str) -> Result<Option<EnrolmentState>, Error> {
        Ok(self.store.enrolment(user)?.map(|e| e.state))
    }

    /// Verifies a code: RFC 6238 with ±1 step, constant-time comparison, the replay guard
    /// (a step at or before the last accepted one is refused, also across processes), and
    /// throttling. A first valid code activates a pending enrolment.
    ///
    /// Errors: [`ErrorKind::MfaThrottled`], [`ErrorKind::MfaNotEnrolled`],
    /// [`ErrorKind::MfaBadCode`], [`ErrorKind::MfaReplayed`], store errors.
    pub fn verify(&self, user: &str, code: &str) -> Result<Verified, Error> {
        self.verify_at(user, code, unix_now())
    }

    /// [`verify`](Self::verify) as if the clock read `now` (Unix seconds): for tests and for
    /// judging a code received earlier.
    pub fn verify_at(&self, user: &str, code: &str, now: u64) -> Result<Verified, Error> {
        check_user(user)?;
        let mut judge = |e: &Enrolment| {
            TotpCode::parse(code, e.params.digits).and_then(|c| {
                matching_step(&e.secret, &c, e.params.step_at(now), &e.params)
                    .ok_or_else(|| Error::new(ErrorKind::MfaBadCode, "the code does not match"))
            })
        };
        self.store.verify_attempt(user, now, &self.policy(), &mut judge)
    }

    /// Counts this attempt before the code is checked, in one transaction with the check of
    /// the lockout: parallel guesses (several processes, several hosts on one store) can never
    /// get more than `max_failures` codes checked per window.
    fn ensure_not_throttled(&self, user: &str, now: u64) -> Result<(), Error> {
        if let Some(until) = self.store.reserve_attempt(user, now, &self.policy())? {
            return Err(throttled(until, now));
        }
        Ok(())
    }

    /// The attempt counted by [`ensure_not_throttled`](Self::ensure_not_throttled) failed.
    fn record_failure(&self, user: &str, now: u64) -> Result<(), Error> {
        self.store.confirm_failure(user, now, &self.policy())
    }

    /// Deletes the user's enrolment and recovery codes (e.g. when an attacker may have
    /// enrolled a device). `true` if there was an enrolment.
    pub fn reset(&self, user: &str) -> Result<bool, Error> {
        check_user(user)?;
        self.store.delete_enrolment(user)
    }

    /// [`reset`](Self::reset) of each of `users`, in one store transaction (one commit for a
    /// batch of a containment, not one per account): all dropped, or none. One flag per user,
    /// in order.
    pub fn reset_many(&self, users: &[&str]) -> Result<Vec<bool>, Error> {
        for u in users {
            check_user(u)?;
        }
        self.store.delete_enrolments(users)
    }
}

pub(super) fn check_user(user: &str) -> Result<(), Error> {
    if user.is_empty() || user.len() > 256 || user.chars().any(|c| c.is_control()) {
        return Err(Error::new(
            ErrorKind::InvalidUserName,
            format!("{user:?} is not a usable MFA user key"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
