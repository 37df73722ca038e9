//! Unit tests of what only the SQLite store has (files, modes, locks, rows written by hand).
//! The behaviour every store shares runs against SQLite *and* PostgreSQL in the lab suite
//! (`core/tests/lab/mfa_stores.rs`); the lab tests also cover `authenticate`.

use std::path::PathBuf;

use super::*;

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

const T: u64 = 1_800_000_000;

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
                    mfa.enroll(&format!("user{i}")).map(|_| ())
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
    for f in [cfg.database.file().expect("file"), &cfg.key_file] {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(f).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
    }
}

#[test]
fn totp_parameters_read_back_from_the_store_are_checked() {
    let (_t, cfg) = tmp("params");
    let mfa = Mfa::open(&cfg, true).expect("open");
    mfa.enroll("alice").expect("enroll");
    let db = rusqlite::Connection::open(cfg.database.file().expect("file")).expect("db");
    for (digits, period) in [(10, 30), (6, 0), (5, 30)] {
        db.execute(
            "UPDATE totp SET digits = ?1, period = ?2 WHERE user = 'alice'",
            (digits, period),
        )
        .expect("tamper");
        let e = mfa.verify_at("alice", "123456", T).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::MfaStore, "{digits} digits, {period} s: {e}");
    }
}

#[test]
fn a_wrong_or_missing_key_or_database_is_a_typed_error_and_nothing_is_overwritten() {
    let (t, cfg) = tmp("keys");
    Mfa::open(&cfg, true)
        .expect("open")
        .enroll("alice")
        .expect("enroll");
    let db_before = std::fs::read(cfg.database.file().expect("file")).expect("db");

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
        database: t.0.join("none.db").into(),
        ..cfg.clone()
    };
    assert_eq!(
        Mfa::open(&missing_db, false).expect_err("missing").kind(),
        ErrorKind::MfaStore
    );

    let garbage = t.0.join("garbage.db");
    std::fs::write(&garbage, vec![0x42u8; 4096]).expect("garbage");
    let corrupt = MfaConfig {
        database: garbage.into(),
        ..cfg.clone()
    };
    assert_eq!(
        Mfa::open(&corrupt, false).expect_err("corrupt").kind(),
        ErrorKind::MfaStore
    );

    assert_eq!(
        std::fs::read(cfg.database.file().expect("file")).expect("db"),
        db_before,
        "database untouched"
    );
    Mfa::open(&cfg, false).expect("the right key still opens it");
}

#[test]
fn a_store_locked_by_another_writer_is_a_typed_error_after_the_busy_timeout() {
    let (_t, cfg) = tmp("locked");
    let mfa = Mfa::open(&cfg, true).expect("open");
    mfa.enroll("alice").expect("enroll");
    let other = rusqlite::Connection::open(cfg.database.file().expect("file")).expect("second connection");
    other
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("hold the write lock");
    let e = mfa.verify_at("alice", "123456", T).expect_err("locked");
    assert_eq!(e.kind(), ErrorKind::MfaStore, "{e}");
    assert!(e.message().contains("locked"), "{e}");
    other.execute_batch("ROLLBACK").expect("release");
}
