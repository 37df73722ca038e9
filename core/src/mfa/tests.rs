//! Unit tests of the MFA service over its SQLite store (the lab tests cover `authenticate`).

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
    let b32 = String::from_utf8(new.secret_base32().expose_secret().to_vec()).expect("utf8");
    assert!(
        std::str::from_utf8(new.uri.expose_secret())
            .expect("utf8")
            .contains(&format!("secret={b32}&")),
        "the base32 secret is the URI's"
    );
    assert_eq!(new.secret.len(), 20);
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
fn concurrent_recovery_code_use_from_separate_connections_succeeds_exactly_once() {
    let (_t, cfg) = tmp("race");
    let mfa = Arc::new(Mfa::open(&cfg, true).expect("open"));
    let code = mfa.new_recovery_codes("alice").expect("codes")[3]
        .expose_secret()
        .to_owned();
    // 4 racers: each loser counts as a failed attempt, and the 5th failure (max_failures)
    // answers "throttled" by design
    let start = Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (cfg, code, start) = (cfg.clone(), code.clone(), start.clone());
            // separate connections, as separate processes would have, released together
            std::thread::spawn(move || {
                let mfa = Mfa::open(&cfg, false).expect("open");
                start.wait();
                mfa.use_recovery_code("alice", &code, T)
            })
        })
        .collect();
    let results: Vec<Result<(), Error>> = handles.into_iter().map(|h| h.join().expect("join")).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            e.kind(),
            ErrorKind::MfaRecoveryCode,
            "a loser must be told the code is used: {e}"
        );
    }
}

#[test]
fn two_users_of_one_recovery_code_who_both_read_the_codes_first_one_wins() {
    let (_t, cfg) = tmp("recovery-together");
    let setup = Mfa::open(&cfg, true).expect("open");
    let code = setup.new_recovery_codes("alice").expect("codes")[0]
        .expose_secret()
        .to_owned();
    let store = Arc::new(ReadTogether {
        inner: SqliteStore::open(&cfg.database, &cfg.key_file, false).expect("store"),
        barrier: std::sync::Barrier::new(2),
        hold: Hold::RecoveryCodes,
    });
    let mfa = Mfa::with_store(store, cfg.clone());
    let results: Vec<Result<(), Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| mfa.use_recovery_code("alice", &code, T)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    // both matched the same stored hash; only the conditional DELETE lets one of them win
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let loser = results.iter().find_map(|r| r.as_ref().err()).expect("a loser");
    assert_eq!(loser.kind(), ErrorKind::MfaRecoveryCode, "{loser}");
}

/// Which read [`ReadTogether`] holds until every racer has made it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    Enrolment,
    RecoveryCodes,
}

/// Fault injection for the replay races: the real SQLite store, except that one read (of the
/// enrolment, or of the recovery codes) waits until every racer has made it — so all of them
/// hold the same state and only the conditional UPDATE / DELETE can stop the second use.
struct ReadTogether {
    inner: SqliteStore,
    barrier: std::sync::Barrier,
    hold: Hold,
}

impl MfaStore for ReadTogether {
    fn put_enrolment(&self, user: &str, e: &Enrolment) -> Result<(), Error> {
        self.inner.put_enrolment(user, e)
    }
    fn enrolment(&self, user: &str) -> Result<Option<Enrolment>, Error> {
        let e = self.inner.enrolment(user);
        if self.hold == Hold::Enrolment {
            self.barrier.wait();
        }
        e
    }
    fn advance_step(&self, user: &str, step: u64) -> Result<bool, Error> {
        self.inner.advance_step(user, step)
    }
    fn delete_enrolment(&self, user: &str) -> Result<bool, Error> {
        self.inner.delete_enrolment(user)
    }
    fn throttle(&self, user: &str, now: u64, failed: bool, p: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.inner.throttle(user, now, failed, p)
    }
    fn reserve_attempt(&self, user: &str, now: u64, p: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.inner.reserve_attempt(user, now, p)
    }
    fn confirm_failure(&self, user: &str, now: u64, p: &ThrottlePolicy) -> Result<(), Error> {
        self.inner.confirm_failure(user, now, p)
    }
    fn clear_failures(&self, user: &str) -> Result<(), Error> {
        self.inner.clear_failures(user)
    }
    fn replace_recovery_codes(&self, user: &str, hashes: &[String]) -> Result<(), Error> {
        self.inner.replace_recovery_codes(user, hashes)
    }
    fn recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, Error> {
        let codes = self.inner.recovery_codes(user);
        if self.hold == Hold::RecoveryCodes {
            self.barrier.wait();
        }
        codes
    }
    fn consume_recovery_code(&self, user: &str, id: i64) -> Result<bool, Error> {
        self.inner.consume_recovery_code(user, id)
    }
}

#[test]
fn two_users_of_one_code_who_both_read_the_enrolment_first_one_wins() {
    let (_t, cfg) = tmp("replay-together");
    let setup = Mfa::open(&cfg, true).expect("open");
    setup.enroll("alice", T).expect("enroll");
    let (s, p) = secret_of(&setup, "alice");
    let code = code_for_step(&s, p.step_at(T), &p);
    let store = Arc::new(ReadTogether {
        inner: SqliteStore::open(&cfg.database, &cfg.key_file, false).expect("store"),
        barrier: std::sync::Barrier::new(2),
        hold: Hold::Enrolment,
    });
    let mfa = Mfa::with_store(store, cfg.clone());
    let results: Vec<Result<Verified, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| mfa.verify("alice", &code, T)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let loser = results.iter().find_map(|r| r.as_ref().err()).expect("a loser");
    assert_eq!(loser.kind(), ErrorKind::MfaReplayed, "{loser}");
}
