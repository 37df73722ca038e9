//! MFA: TOTP enrolment and verification with a durable replay guard, throttling and
//! single-use recovery codes. What needs the directory too (password + code, enforcement) is
//! in the `auth` module, above both.
//!
//! Time is a parameter (`now`, Unix seconds) everywhere, so tests control it.
//!
//! ```no_run
//! # fn demo(cfg: &cadenas::mfa::MfaConfig) -> Result<(), cadenas::Error> {
//! use cadenas::mfa::Mfa;
//!
//! let mfa = Mfa::open(cfg, true)?;
//! let now = cadenas::mfa::unix_now();
//! let enrolment = mfa.enroll("jdupont", now)?;          // pending until proven
//! // show enrolment.qr_terminal (or the SVG) to the user, who scans it, then types a code:
//! mfa.verify("jdupont", "123456", now)?;                 // activates; the code can never be used again
//! let codes = mfa.new_recovery_codes("jdupont")?;        // shown once, stored as argon2id hashes
//! # Ok(()) }
//! ```

mod config;
mod recovery;
mod store;
pub mod totp;

use std::sync::Arc;

use serde::Serialize;

pub use config::MfaConfig;
pub use store::{Enrolment, EnrolmentState, Failures, MfaStore, SqliteStore, ThrottlePolicy};
use totp::{matching_step, otpauth_uri, TotpCode, TotpParams};

use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
pub use crate::time::unix_now;

/// A new (pending) enrolment, to show to the user once. Everything here contains the secret.
#[non_exhaustive]
pub struct NewEnrolment {
    /// The `otpauth://` URI (holds the secret).
    pub uri: Secret,
    /// The URI as a QR code, SVG image.
    pub qr_svg: Secret,
    /// The URI as a QR code for a terminal (Unicode half blocks).
    pub qr_terminal: Secret,
    /// The parameters.
    pub params: TotpParams,
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
    /// Opens the embedded SQLite store described by `cfg` (`create`: allow a new database).
    pub fn open(cfg: &MfaConfig, create: bool) -> Result<Self, Error> {
        cfg.check()?;
        let store = SqliteStore::open(&cfg.database, &cfg.key_file, create)?;
        Ok(Self::with_store(Arc::new(store), cfg.clone()))
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
    pub fn enroll(&self, user: &str, _now: u64) -> Result<NewEnrolment, Error> {
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
    pub fn verify(&self, user: &str, code: &str, now: u64) -> Result<Verified, Error> {
        check_user(user)?;
        self.ensure_not_throttled(user, now)?;
        let Some(e) = self.store.enrolment(user)? else {
            return Err(Error::new(
                ErrorKind::MfaNotEnrolled,
                format!("{user} has no TOTP enrolment"),
            ));
        };
        let checked = TotpCode::parse(code, e.params.digits)
            .and_then(|c| {
                matching_step(&e.secret, &c, e.params.step_at(now), &e.params)
                    .ok_or_else(|| Error::new(ErrorKind::MfaBadCode, "the code does not match"))
            })
            .and_then(|step| {
                if e.last_step.is_some_and(|l| step <= l) || !self.store.advance_step(user, step)? {
                    Err(Error::new(
                        ErrorKind::MfaReplayed,
                        "this code (or a later one) was already used",
                    ))
                } else {
                    Ok(step)
                }
            });
        match checked {
            Ok(step) => {
                self.store.clear_failures(user)?;
                Ok(Verified {
                    step,
                    activated: e.state == EnrolmentState::Pending,
                })
            }
            Err(err) => {
                self.record_failure(user, now)?;
                Err(err)
            }
        }
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
}

fn throttled(until: u64, now: u64) -> Error {
    Error::new(
        ErrorKind::MfaThrottled,
        format!(
            "too many failed attempts: try again in {} s",
            until.saturating_sub(now)
        ),
    )
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
mod tests {
    use std::path::PathBuf;

    use super::recovery::normalise_recovery;
    use super::*;
    use totp::code_for_step;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(tag: &str) -> (Tmp, MfaConfig) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("cadenas-mfa-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let cfg = MfaConfig::new(dir.join("mfa.db"), dir.join("mfa.key"));
        (Tmp(dir), cfg)
    }

    fn secret_of(mfa: &Mfa, user: &str) -> (Secret, TotpParams) {
        let e = mfa.store.enrolment(user).expect("read").expect("enrolled");
        (e.secret, e.params)
    }

    const T: u64 = 1_800_000_000;

    #[test]
    fn enrol_then_first_code_activates_and_replays_are_refused() {
        let (_t, cfg) = tmp("flow");
        let mfa = Mfa::open(&cfg, true).expect("open");
        let new = mfa.enroll("alice", T).expect("enroll");
        assert!(std::str::from_utf8(new.uri.expose_secret())
            .expect("utf8")
            .starts_with("otpauth://totp/Cadenas:alice?secret="));
        assert!(std::str::from_utf8(new.qr_svg.expose_secret())
            .expect("utf8")
            .contains("<svg"));
        assert_eq!(
            mfa.enrolment_state("alice").expect("state"),
            Some(EnrolmentState::Pending)
        );
        let (s, p) = secret_of(&mfa, "alice");
        let code = code_for_step(&s, p.step_at(T), &p);
        let v = mfa.verify("alice", &code, T).expect("valid");
        assert!(v.activated);
        assert_eq!(
            mfa.enrolment_state("alice").expect("state"),
            Some(EnrolmentState::Active)
        );
        assert_eq!(
            mfa.verify("alice", &code, T).expect_err("replay").kind(),
            ErrorKind::MfaReplayed
        );
        // the previous step's code is older than the accepted one: also refused
        let older = code_for_step(&s, p.step_at(T) - 1, &p);
        assert_eq!(
            mfa.verify("alice", &older, T + 5).expect_err("older").kind(),
            ErrorKind::MfaReplayed
        );
        // the next step works once
        let next = code_for_step(&s, p.step_at(T) + 1, &p);
        assert!(!mfa.verify("alice", &next, T + 30).expect("next").activated);
        assert_eq!(
            mfa.verify("bob", &next, T).expect_err("none").kind(),
            ErrorKind::MfaNotEnrolled
        );
    }

    #[test]
    fn re_enrolment_replaces_the_old_secret() {
        let (_t, cfg) = tmp("replace");
        let mfa = Mfa::open(&cfg, true).expect("open");
        mfa.enroll("alice", T).expect("enroll");
        let (old, p) = secret_of(&mfa, "alice");
        mfa.verify("alice", &code_for_step(&old, p.step_at(T), &p), T)
            .expect("ok");
        mfa.enroll("alice", T + 60).expect("re-enroll");
        let old_code = code_for_step(&old, p.step_at(T + 90), &p);
        assert_eq!(
            mfa.verify("alice", &old_code, T + 90)
                .expect_err("old device")
                .kind(),
            ErrorKind::MfaBadCode
        );
        assert_eq!(
            mfa.enrolment_state("alice").expect("state"),
            Some(EnrolmentState::Pending)
        );
    }

    #[test]
    fn throttling_starts_after_n_failures_and_expires_with_the_clock() {
        let (_t, mut cfg) = tmp("throttle");
        cfg.max_failures = 3;
        cfg.lockout_secs = 600;
        let mfa = Mfa::open(&cfg, true).expect("open");
        mfa.enroll("alice", T).expect("enroll");
        let (s, p) = secret_of(&mfa, "alice");
        let wrong = if code_for_step(&s, p.step_at(T), &p) == "000000" {
            "111111"
        } else {
            "000000"
        };
        for _ in 0..3 {
            assert_eq!(
                mfa.verify("alice", wrong, T).expect_err("bad").kind(),
                ErrorKind::MfaBadCode
            );
        }
        let good = code_for_step(&s, p.step_at(T), &p);
        let e = mfa
            .verify("alice", &good, T + 1)
            .expect_err("throttled even with the right code");
        assert_eq!(e.kind(), ErrorKind::MfaThrottled);
        assert!(e.message().contains("599 s"), "{e}");
        let later = T + 601;
        let good = code_for_step(&s, p.step_at(later), &p);
        mfa.verify("alice", &good, later).expect("cool-down over");
    }

    #[test]
    fn recovery_codes_are_single_use_and_regeneration_invalidates_the_old_set() {
        let (_t, cfg) = tmp("recovery");
        let mfa = Mfa::open(&cfg, true).expect("open");
        let codes = mfa.new_recovery_codes("alice").expect("codes");
        assert_eq!(codes.len(), 10);
        let first = codes[0].expose_secret().to_owned();
        assert_eq!(first.len(), 14);
        mfa.use_recovery_code("alice", &first.to_uppercase(), T)
            .expect("valid once");
        assert_eq!(
            mfa.use_recovery_code("alice", &first, T)
                .expect_err("used")
                .kind(),
            ErrorKind::MfaRecoveryCode
        );
        assert_eq!(mfa.recovery_codes_left("alice").expect("left"), 9);
        let second = codes[1].expose_secret().to_owned();
        mfa.new_recovery_codes("alice").expect("regenerate");
        assert_eq!(
            mfa.use_recovery_code("alice", &second, T)
                .expect_err("old set")
                .kind(),
            ErrorKind::MfaRecoveryCode
        );
    }

    #[test]
    fn racing_wrong_guesses_never_get_more_than_max_failures_codes_checked() {
        let (_t, mut cfg) = tmp("race-throttle");
        cfg.max_failures = 3;
        let first = Mfa::open(&cfg, true).expect("open");
        first.enroll("alice", T).expect("enroll");
        let (s, p) = secret_of(&first, "alice");
        let wrong = if code_for_step(&s, p.step_at(T), &p) == "000000" {
            "111111"
        } else {
            "000000"
        };
        // 8 handles (8 connections, as 8 processes would have), released at once
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let kinds: Vec<ErrorKind> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (cfg, barrier) = (cfg.clone(), barrier.clone());
                    scope.spawn(move || {
                        let mfa = Mfa::open(&cfg, false).expect("open");
                        barrier.wait();
                        mfa.verify("alice", wrong, T).expect_err("wrong").kind()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let checked = kinds.iter().filter(|k| **k == ErrorKind::MfaBadCode).count();
        assert_eq!(checked, 3, "{kinds:?}");
        assert!(kinds
            .iter()
            .all(|k| matches!(k, ErrorKind::MfaBadCode | ErrorKind::MfaThrottled)));
    }

    #[test]
    fn a_new_store_is_private_and_processes_creating_it_at_once_share_one_key() {
        let (_t, cfg) = tmp("first-use");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let opened: Vec<Result<(), Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let (cfg, barrier) = (cfg.clone(), barrier.clone());
                    scope.spawn(move || {
                        barrier.wait();
                        let mfa = Mfa::open(&cfg, true)?;
                        mfa.enroll(&format!("user{i}"), T).map(|_| ())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert!(opened.iter().all(Result::is_ok), "{opened:?}");
        // one key for all: every enrolment decrypts through a fresh handle
        let mfa = Mfa::open(&cfg, false).expect("open");
        for i in 0..6 {
            assert!(mfa.enrolment_state(&format!("user{i}")).expect("state").is_some());
        }
        for f in [&cfg.database, &cfg.key_file] {
            let mode =
                std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(f).expect("meta").permissions());
            assert_eq!(mode & 0o777, 0o600, "{}", f.display());
        }
    }

    #[test]
    fn totp_parameters_read_back_from_the_store_are_checked() {
        let (_t, cfg) = tmp("params");
        let mfa = Mfa::open(&cfg, true).expect("open");
        mfa.enroll("alice", T).expect("enroll");
        let db = rusqlite::Connection::open(&cfg.database).expect("db");
        for (digits, period) in [(10, 30), (6, 0), (5, 30)] {
            db.execute(
                "UPDATE totp SET digits = ?1, period = ?2 WHERE user = 'alice'",
                (digits, period),
            )
            .expect("tamper");
            let e = mfa.verify("alice", "123456", T).expect_err("refused");
            assert_eq!(e.kind(), ErrorKind::MfaStore, "{digits} digits, {period} s: {e}");
        }
    }

    #[test]
    fn the_database_file_holds_no_secret_in_the_clear() {
        let (t, cfg) = tmp("atrest");
        let mfa = Mfa::open(&cfg, true).expect("open");
        mfa.enroll("alice", T).expect("enroll");
        let codes = mfa.new_recovery_codes("alice").expect("codes");
        let (s, _) = secret_of(&mfa, "alice");
        drop(mfa);
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(&t.0).expect("dir") {
            let path = entry.expect("entry").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("mfa.db"))
            {
                bytes.extend(std::fs::read(path).expect("read"));
            }
        }
        assert!(!bytes.is_empty());
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(s.expose_secret()), "raw secret");
        assert!(
            !contains(totp::base32(s.expose_secret()).as_bytes()),
            "base32 secret"
        );
        for c in &codes {
            assert!(!contains(c.expose_secret().as_bytes()));
            assert!(!contains(normalise_recovery(c.expose_secret()).as_bytes()));
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&cfg.key_file).expect("key").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_wrong_or_missing_key_or_database_is_a_typed_error_and_nothing_is_overwritten() {
        let (t, cfg) = tmp("keys");
        Mfa::open(&cfg, true)
            .expect("open")
            .enroll("alice", T)
            .expect("enroll");
        let db_before = std::fs::read(&cfg.database).expect("db");

        let other_key = t.0.join("other.key");
        std::fs::write(&other_key, [7u8; 32]).expect("key");
        let wrong = MfaConfig {
            key_file: other_key.clone(),
            ..cfg.clone()
        };
        assert_eq!(
            Mfa::open(&wrong, true).expect_err("wrong key").kind(),
            ErrorKind::MfaKey
        );
        assert_eq!(
            std::fs::read(&other_key).expect("key"),
            vec![7u8; 32],
            "key file untouched"
        );

        let missing_key = MfaConfig {
            key_file: t.0.join("nope.key"),
            ..cfg.clone()
        };
        assert_eq!(
            Mfa::open(&missing_key, true).expect_err("no key").kind(),
            ErrorKind::MfaKey
        );
        assert!(
            !t.0.join("nope.key").exists(),
            "no key is invented for an existing database"
        );

        let short = t.0.join("short.key");
        std::fs::write(&short, b"too short").expect("key");
        assert_eq!(
            Mfa::open(
                &MfaConfig {
                    key_file: short,
                    ..cfg.clone()
                },
                true
            )
            .expect_err("short")
            .kind(),
            ErrorKind::MfaKey
        );

        let missing_db = MfaConfig {
            database: t.0.join("none.db"),
            ..cfg.clone()
        };
        assert_eq!(
            Mfa::open(&missing_db, false).expect_err("missing").kind(),
            ErrorKind::MfaStore
        );

        let garbage = t.0.join("garbage.db");
        std::fs::write(&garbage, vec![0x42u8; 4096]).expect("garbage");
        let corrupt = MfaConfig {
            database: garbage,
            ..cfg.clone()
        };
        assert_eq!(
            Mfa::open(&corrupt, false).expect_err("corrupt").kind(),
            ErrorKind::MfaStore
        );

        assert_eq!(
            std::fs::read(&cfg.database).expect("db"),
            db_before,
            "database untouched"
        );
        Mfa::open(&cfg, false).expect("the right key still opens it");
    }

    #[test]
    fn a_store_locked_by_another_writer_is_a_typed_error_after_the_busy_timeout() {
        let (_t, cfg) = tmp("locked");
        let mfa = Mfa::open(&cfg, true).expect("open");
        mfa.enroll("alice", T).expect("enroll");
        let other = rusqlite::Connection::open(&cfg.database).expect("second connection");
        other
            .execute_batch("BEGIN EXCLUSIVE")
            .expect("hold the write lock");
        let e = mfa.verify("alice", "123456", T).expect_err("locked");
        assert_eq!(e.kind(), ErrorKind::MfaStore, "{e}");
        assert!(e.message().contains("locked"), "{e}");
        other.execute_batch("ROLLBACK").expect("release");
    }

    #[test]
    fn concurrent_recovery_code_use_succeeds_exactly_once() {
        let (_t, cfg) = tmp("race");
        let mfa = Arc::new(Mfa::open(&cfg, true).expect("open"));
        let code = mfa.new_recovery_codes("alice").expect("codes")[3]
            .expose_secret()
            .to_owned();
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (cfg, code) = (cfg.clone(), code.clone());
                // separate connections, as separate processes would have
                std::thread::spawn(move || {
                    Mfa::open(&cfg, false)
                        .expect("open")
                        .use_recovery_code("alice", &code, T)
                        .is_ok()
                })
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .filter(|ok| *ok)
            .count();
        assert_eq!(wins, 1);
    }
}
