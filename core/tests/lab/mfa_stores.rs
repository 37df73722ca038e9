//! One MFA suite, two backends: every test below runs against the SQLite store (a file) and
//! against the PostgreSQL store (a fresh database on the lab's real PostgreSQL, over TLS).
//! Then what only a shared store must survive: 8 processes with separate configs (as if on 8
//! hosts) racing one code and wrong guesses, and a PostgreSQL restart in the middle of a run.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cadenas::mfa::totp::{base32, code_for_step, TotpParams};
use cadenas::mfa::{Enrolment, Mfa, MfaConfig, MfaStore, PgStore, SqliteStore, ThrottlePolicy, Verified};
use cadenas::{Error, ErrorKind, Secret};

use crate::support::{pg_connect, pg_exclusive, pg_shared, PgDatabase};

const T: u64 = 1_800_000_000;

/// A store of one backend for one test: its config (files in a private directory) and what
/// it takes to look at the raw stored bytes.
struct Store {
    cfg: MfaConfig,
    dir: PathBuf,
    pg: Option<PgDatabase>,
    _shared: Option<tokio::sync::RwLockReadGuard<'static, ()>>,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn private_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("cadenas-mfa-suite-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

impl Store {
    fn sqlite(tag: &str) -> Self {
        let dir = private_dir(tag);
        let cfg = MfaConfig::new(dir.join("mfa.db"), dir.join("mfa.key"));
        Self {
            cfg,
            dir,
            pg: None,
            _shared: None,
        }
    }

    fn postgres(tag: &str) -> Self {
        let shared = pg_shared();
        let dir = private_dir(tag);
        let pg = PgDatabase::new(tag);
        let cfg = Self::pg_config(&pg, &dir);
        Self {
            cfg,
            dir,
            pg: Some(pg),
            _shared: Some(shared),
        }
    }

    fn pg_config(pg: &PgDatabase, dir: &std::path::Path) -> MfaConfig {
        let text = format!(
            "{}key_file = \"{}\"\n",
            pg.toml_keys(),
            dir.join("mfa.key").display()
        );
        toml::from_str(&text).expect("[mfa] for PostgreSQL")
    }

    /// The store itself (for fault injection), opened like `Mfa::open` opens it.
    fn raw(&self) -> Box<dyn MfaStore> {
        match &self.pg {
            Some(_) => Box::new(PgStore::open(&self.cfg, false).expect("pg store")),
            None => Box::new(
                SqliteStore::open(self.cfg.database.file().expect("file"), &self.cfg.key_file, false)
                    .expect("sqlite store"),
            ),
        }
    }

    /// Every byte the store holds: the SQLite files, or every PostgreSQL row as text.
    fn stored_bytes(&self) -> Vec<u8> {
        match &self.pg {
            Some(pg) => {
                let mut c = pg_connect(&pg.name);
                let mut out = Vec::new();
                for table in ["mfa_meta", "mfa_totp", "mfa_failures", "mfa_recovery"] {
                    for row in c
                        .query(&format!("SELECT t::text FROM {table} t"), &[])
                        .expect("dump")
                    {
                        out.extend(row.get::<_, String>(0).into_bytes());
                    }
                    // bytea also as raw bytes (its text form is hex)
                    if let Ok(rows) = c.query(&format!("SELECT secret FROM {table}"), &[]) {
                        for r in rows {
                            out.extend(r.get::<_, Vec<u8>>(0));
                        }
                    }
                }
                out
            }
            None => {
                let mut out = Vec::new();
                for e in std::fs::read_dir(&self.dir).expect("dir") {
                    let p = e.expect("entry").path();
                    if p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("mfa.db"))
                    {
                        out.extend(std::fs::read(p).expect("read"));
                    }
                }
                out
            }
        }
    }
}

fn enrolled(mfa: &Mfa, user: &str) -> (Secret, TotpParams) {
    let e = mfa.enroll(user).expect("enroll");
    (e.secret.clone(), e.params)
}

fn wrong_code(s: &Secret, p: &TotpParams, now: u64) -> &'static str {
    if code_for_step(s, p.step_at(now), p) == "000000" {
        "111111"
    } else {
        "000000"
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Store::sqlite(stringify!($name))) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Store::postgres(stringify!($name))) } )*
        }
    };
}

both_backends!(
    enrol_then_first_code_activates_and_replays_are_refused,
    re_enrolment_replaces_the_old_secret,
    a_re_enrolment_on_another_host_is_seen_by_a_host_that_verified_before,
    throttling_starts_after_n_failures_and_expires_with_the_clock,
    recovery_codes_are_single_use_and_regeneration_invalidates_the_old_set,
    racing_wrong_guesses_never_get_more_than_max_failures_codes_checked,
    a_code_raced_from_8_connections_is_accepted_once,
    concurrent_recovery_code_use_from_separate_connections_succeeds_exactly_once,
    two_users_of_one_code_who_both_read_the_enrolment_first_one_wins,
    two_users_of_one_recovery_code_who_both_read_the_codes_first_one_wins,
    the_store_holds_no_secret_in_the_clear,
    a_wrong_or_missing_key_is_a_typed_error_and_nothing_is_written,
    handles_opening_a_new_store_at_once_share_one_key,
    eight_processes_with_separate_configs_race_one_code_and_wrong_guesses,
    reset_deletes_enrolment_codes_and_failures,
    reset_many_drops_several_users_in_one_call_and_says_who_had_one,
);

fn enrol_then_first_code_activates_and_replays_are_refused(st: Store) {
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    let (s, p) = enrolled(&mfa, "alice");
    assert_eq!(
        mfa.enrolment_state("alice").expect("state"),
        Some(cadenas::mfa::EnrolmentState::Pending)
    );
    let code = code_for_step(&s, p.step_at(T), &p);
    assert!(mfa.verify_at("alice", &code, T).expect("valid").activated);
    assert_eq!(
        mfa.enrolment_state("alice").expect("state"),
        Some(cadenas::mfa::EnrolmentState::Active)
    );
    assert_eq!(
        mfa.verify_at("alice", &code, T).expect_err("replay").kind(),
        ErrorKind::MfaReplayed
    );
    let older = code_for_step(&s, p.step_at(T) - 1, &p);
    assert_eq!(
        mfa.verify_at("alice", &older, T + 5).expect_err("older").kind(),
        ErrorKind::MfaReplayed
    );
    let next = code_for_step(&s, p.step_at(T) + 1, &p);
    assert!(!mfa.verify_at("alice", &next, T + 30).expect("next").activated);
    assert_eq!(
        mfa.verify_at("bob", &next, T).expect_err("none").kind(),
        ErrorKind::MfaNotEnrolled
    );
    // a second handle (another host) sees the same replay state
    let other = Mfa::open(&st.cfg, false).expect("second handle");
    assert_eq!(
        other
            .verify_at("alice", &next, T + 30)
            .expect_err("replay elsewhere")
            .kind(),
        ErrorKind::MfaReplayed
    );
}

fn re_enrolment_replaces_the_old_secret(st: Store) {
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    let (old, p) = enrolled(&mfa, "alice");
    mfa.verify_at("alice", &code_for_step(&old, p.step_at(T), &p), T)
        .expect("ok");
    mfa.enroll("alice").expect("re-enroll");
    let old_code = code_for_step(&old, p.step_at(T + 90), &p);
    assert_eq!(
        mfa.verify_at("alice", &old_code, T + 90)
            .expect_err("old device")
            .kind(),
        ErrorKind::MfaBadCode
    );
    assert_eq!(
        mfa.enrolment_state("alice").expect("state"),
        Some(cadenas::mfa::EnrolmentState::Pending)
    );
}

/// Two handles, as two hosts: the first has verified (and, on PostgreSQL, keeps its copy of
/// the enrolment); the second re-enrols the user. The first judges the next codes against the
/// new secret: the new device's code is accepted (it activates), the old device's refused.
fn a_re_enrolment_on_another_host_is_seen_by_a_host_that_verified_before(st: Store) {
    let gateway = Mfa::open(&st.cfg, true).expect("open");
    let (old, p) = enrolled(&gateway, "alice");
    gateway
        .verify_at("alice", &code_for_step(&old, p.step_at(T), &p), T)
        .expect("ok");
    let helpdesk = Mfa::open(&st.cfg, false).expect("open");
    let (new, _) = enrolled(&helpdesk, "alice");
    let later = T + 90;
    let old_code = code_for_step(&old, p.step_at(later), &p);
    let new_code = code_for_step(&new, p.step_at(later), &p);
    if old_code != new_code {
        assert_eq!(
            gateway
                .verify_at("alice", &old_code, later)
                .expect_err("the old device")
                .kind(),
            ErrorKind::MfaBadCode
        );
    }
    let v = gateway
        .verify_at("alice", &new_code, later)
        .expect("the new device");
    assert!(v.activated, "{v:?}");
    // and a reset elsewhere: no enrolment any more
    helpdesk.reset("alice").expect("reset");
    let next = code_for_step(&new, p.step_at(later + 30), &p);
    assert_eq!(
        gateway
            .verify_at("alice", &next, later + 30)
            .expect_err("reset")
            .kind(),
        ErrorKind::MfaNotEnrolled
    );
}

fn throttling_starts_after_n_failures_and_expires_with_the_clock(mut st: Store) {
    st.cfg.max_failures = 3;
    st.cfg.lockout_secs = 600;
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    let (s, p) = enrolled(&mfa, "alice");
    let wrong = wrong_code(&s, &p, T);
    for _ in 0..3 {
        assert_eq!(
            mfa.verify_at("alice", wrong, T).expect_err("bad").kind(),
            ErrorKind::MfaBadCode
        );
    }
    let good = code_for_step(&s, p.step_at(T), &p);
    let e = mfa.verify_at("alice", &good, T + 1).expect_err("throttled");
    assert_eq!(e.kind(), ErrorKind::MfaThrottled);
    assert!(e.message().contains("599 s"), "{e}");
    let later = T + 601;
    mfa.verify_at("alice", &code_for_step(&s, p.step_at(later), &p), later)
        .expect("cool-down over");
}

fn recovery_codes_are_single_use_and_regeneration_invalidates_the_old_set(st: Store) {
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    let codes = mfa.new_recovery_codes("alice").expect("codes");
    assert_eq!(codes.len(), 10);
    let first = codes[0].expose_secret().to_owned();
    mfa.use_recovery_code_at("alice", &first.to_uppercase(), T)
        .expect("valid once");
    assert_eq!(
        mfa.use_recovery_code_at("alice", &first, T)
            .expect_err("used")
            .kind(),
        ErrorKind::MfaRecoveryCode
    );
    assert_eq!(mfa.recovery_codes_left("alice").expect("left"), 9);
    let second = codes[1].expose_secret().to_owned();
    mfa.new_recovery_codes("alice").expect("regenerate");
    assert_eq!(
        mfa.use_recovery_code_at("alice", &second, T)
            .expect_err("old set")
            .kind(),
        ErrorKind::MfaRecoveryCode
    );
}

/// 8 handles (8 connections, as 8 processes would have), released at once.
fn race<T: Send>(n: usize, f: impl Fn(Mfa) -> T + Sync, cfg: &MfaConfig) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    let mfa = Mfa::open(cfg, false).expect("open");
                    barrier.wait();
                    f(mfa)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

fn racing_wrong_guesses_never_get_more_than_max_failures_codes_checked(mut st: Store) {
    st.cfg.max_failures = 3;
    let first = Mfa::open(&st.cfg, true).expect("open");
    let (s, p) = enrolled(&first, "alice");
    let wrong = wrong_code(&s, &p, T);
    let kinds = race(
        8,
        |mfa| mfa.verify_at("alice", wrong, T).expect_err("wrong").kind(),
        &st.cfg,
    );
    let checked = kinds.iter().filter(|k| **k == ErrorKind::MfaBadCode).count();
    assert_eq!(checked, 3, "{kinds:?}");
    assert!(kinds
        .iter()
        .all(|k| matches!(k, ErrorKind::MfaBadCode | ErrorKind::MfaThrottled)));
}

fn a_code_raced_from_8_connections_is_accepted_once(mut st: Store) {
    st.cfg.max_failures = 20;
    let first = Mfa::open(&st.cfg, true).expect("open");
    let (s, p) = enrolled(&first, "alice");
    let code = code_for_step(&s, p.step_at(T), &p);
    let results = race(8, |mfa| mfa.verify_at("alice", &code, T), &st.cfg);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.kind(), ErrorKind::MfaReplayed, "{e}");
    }
}

fn concurrent_recovery_code_use_from_separate_connections_succeeds_exactly_once(st: Store) {
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    let code = mfa.new_recovery_codes("alice").expect("codes")[3]
        .expose_secret()
        .to_owned();
    // 4 racers: each loser counts as a failed attempt (5 allowed)
    let results = race(4, |mfa| mfa.use_recovery_code_at("alice", &code, T), &st.cfg);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.kind(), ErrorKind::MfaRecoveryCode, "{e}");
    }
}

/// Which read [`ReadTogether`] holds until every racer has made it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    Enrolment,
    RecoveryCodes,
}

/// Fault injection for the replay races: the real store, except that one read (of the
/// enrolment, or of the recovery codes) waits until every racer has made it — so all of them
/// hold the same state and only the conditional UPDATE / DELETE can stop the second use.
struct ReadTogether {
    inner: Vec<Box<dyn MfaStore>>,
    next: std::sync::atomic::AtomicUsize,
    barrier: Barrier,
    hold: Hold,
}

thread_local! {
    static SLOT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

impl ReadTogether {
    /// One connection per racing thread (two connections, as two hosts would have).
    fn store(&self) -> &dyn MfaStore {
        let i = SLOT.with(|s| match s.get() {
            Some(i) => i,
            None => {
                let i = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % self.inner.len();
                s.set(Some(i));
                i
            }
        });
        &*self.inner[i]
    }
}

impl MfaStore for ReadTogether {
    fn put_enrolment(&self, user: &str, e: &Enrolment) -> Result<(), Error> {
        self.store().put_enrolment(user, e)
    }
    fn enrolment(&self, user: &str) -> Result<Option<Enrolment>, Error> {
        let e = self.store().enrolment(user);
        if self.hold == Hold::Enrolment {
            self.barrier.wait();
        }
        e
    }
    fn advance_step(&self, user: &str, step: u64) -> Result<bool, Error> {
        self.store().advance_step(user, step)
    }
    fn delete_enrolment(&self, user: &str) -> Result<bool, Error> {
        self.store().delete_enrolment(user)
    }
    fn throttle(&self, user: &str, now: u64, failed: bool, p: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.store().throttle(user, now, failed, p)
    }
    fn reserve_attempt(&self, user: &str, now: u64, p: &ThrottlePolicy) -> Result<Option<u64>, Error> {
        self.store().reserve_attempt(user, now, p)
    }
    fn confirm_failure(&self, user: &str, now: u64, p: &ThrottlePolicy) -> Result<(), Error> {
        self.store().confirm_failure(user, now, p)
    }
    fn clear_failures(&self, user: &str) -> Result<(), Error> {
        self.store().clear_failures(user)
    }
    fn replace_recovery_codes(&self, user: &str, hashes: &[String]) -> Result<(), Error> {
        self.store().replace_recovery_codes(user, hashes)
    }
    fn recovery_codes(&self, user: &str) -> Result<Vec<(i64, String)>, Error> {
        let codes = self.store().recovery_codes(user);
        if self.hold == Hold::RecoveryCodes {
            self.barrier.wait();
        }
        codes
    }
    fn consume_recovery_code(&self, user: &str, id: i64) -> Result<bool, Error> {
        self.store().consume_recovery_code(user, id)
    }
}

fn read_together(st: &Store, hold: Hold) -> Mfa {
    let store = ReadTogether {
        inner: vec![st.raw(), st.raw()],
        next: Default::default(),
        barrier: Barrier::new(2),
        hold,
    };
    Mfa::with_store(Arc::new(store), st.cfg.clone())
}

fn two_users_of_one_code_who_both_read_the_enrolment_first_one_wins(st: Store) {
    let setup = Mfa::open(&st.cfg, true).expect("open");
    let (s, p) = enrolled(&setup, "alice");
    let code = code_for_step(&s, p.step_at(T), &p);
    let mfa = read_together(&st, Hold::Enrolment);
    let results: Vec<Result<Verified, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| mfa.verify_at("alice", &code, T)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let loser = results.iter().find_map(|r| r.as_ref().err()).expect("a loser");
    assert_eq!(loser.kind(), ErrorKind::MfaReplayed, "{loser}");
}

fn two_users_of_one_recovery_code_who_both_read_the_codes_first_one_wins(st: Store) {
    let setup = Mfa::open(&st.cfg, true).expect("open");
    let code = setup.new_recovery_codes("alice").expect("codes")[0]
        .expose_secret()
        .to_owned();
    let mfa = read_together(&st, Hold::RecoveryCodes);
    let results: Vec<Result<(), Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| mfa.use_recovery_code_at("alice", &code, T)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let loser = results.iter().find_map(|r| r.as_ref().err()).expect("a loser");
    assert_eq!(loser.kind(), ErrorKind::MfaRecoveryCode, "{loser}");
}

fn the_store_holds_no_secret_in_the_clear(st: Store) {
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    let (s, _) = enrolled(&mfa, "alice");
    let codes = mfa.new_recovery_codes("alice").expect("codes");
    drop(mfa);
    let bytes = st.stored_bytes();
    assert!(bytes.len() > 100, "the dump reads the store");
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"alice"), "the dump holds the rows");
    assert!(!contains(s.expose_secret()), "raw secret");
    assert!(!contains(hex_lower(s.expose_secret()).as_bytes()), "hex secret");
    assert!(!contains(base32(s.expose_secret()).as_bytes()), "base32 secret");
    for c in &codes {
        assert!(!contains(c.expose_secret().as_bytes()));
        assert!(!contains(c.expose_secret().replace('-', "").as_bytes()));
    }
    let key = std::fs::read(&st.cfg.key_file).expect("key");
    assert!(
        !contains(&key) && !contains(hex_lower(&key).as_bytes()),
        "the key stays on the host"
    );
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn a_wrong_or_missing_key_is_a_typed_error_and_nothing_is_written(st: Store) {
    Mfa::open(&st.cfg, true)
        .expect("open")
        .enroll("alice")
        .expect("enroll");
    let before = st.stored_bytes();
    let other_key = st.dir.join("other.key");
    std::fs::write(&other_key, [7u8; 32]).expect("key");
    let mut wrong = st.cfg.clone();
    wrong.key_file = other_key.clone();
    assert_eq!(
        Mfa::open(&wrong, true).expect_err("wrong key").kind(),
        ErrorKind::MfaKey
    );
    assert_eq!(std::fs::read(&other_key).expect("key"), vec![7u8; 32]);
    let mut missing = st.cfg.clone();
    missing.key_file = st.dir.join("nope.key");
    assert_eq!(
        Mfa::open(&missing, true).expect_err("no key").kind(),
        ErrorKind::MfaKey
    );
    assert!(
        !st.dir.join("nope.key").exists(),
        "no key is invented for an existing store"
    );
    if st.pg.is_some() {
        assert_eq!(st.stored_bytes(), before, "store untouched");
    }
    Mfa::open(&st.cfg, false).expect("the right key still opens it");
}

fn handles_opening_a_new_store_at_once_share_one_key(st: Store) {
    let barrier = Barrier::new(6);
    let opened: Vec<Result<(), Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (cfg, barrier) = (st.cfg.clone(), &barrier);
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
    let mfa = Mfa::open(&st.cfg, false).expect("open");
    for i in 0..6 {
        assert!(mfa.enrolment_state(&format!("user{i}")).expect("state").is_some());
    }
}

fn reset_deletes_enrolment_codes_and_failures(st: Store) {
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    let (s, p) = enrolled(&mfa, "alice");
    mfa.new_recovery_codes("alice").expect("codes");
    mfa.verify_at("alice", wrong_code(&s, &p, T), T).expect_err("bad");
    assert!(mfa.reset("alice").expect("reset"));
    assert!(!mfa.reset("alice").expect("again"));
    assert_eq!(mfa.enrolment_state("alice").expect("state"), None);
    assert_eq!(mfa.recovery_codes_left("alice").expect("left"), 0);
}

fn reset_many_drops_several_users_in_one_call_and_says_who_had_one(st: Store) {
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    enrolled(&mfa, "alice");
    enrolled(&mfa, "bob");
    enrolled(&mfa, "carol");
    mfa.new_recovery_codes("bob").expect("codes");
    assert_eq!(
        mfa.reset_many(&["alice", "nobody", "bob"]).expect("reset"),
        vec![true, false, true]
    );
    for u in ["alice", "bob"] {
        assert_eq!(mfa.enrolment_state(u).expect("state"), None, "{u}");
    }
    assert_eq!(mfa.recovery_codes_left("bob").expect("left"), 0);
    assert!(
        mfa.enrolment_state("carol").expect("state").is_some(),
        "carol untouched"
    );
    // a bad name refuses the whole call before the store is touched
    assert_eq!(
        mfa.reset_many(&["carol", "bad\nname"])
            .expect_err("refused")
            .kind(),
        ErrorKind::InvalidUserName
    );
    assert!(mfa.enrolment_state("carol").expect("state").is_some());
}

// ---- separate processes ----------------------------------------------------------------

/// Set in the environment of a child process of this test binary: what it is to do.
const CHILD: &str = "CADENAS_TEST_MFA_CHILD";

/// The child's side of the process races (a no-op in a normal run): opens the store from its
/// own `[mfa]` file, waits for the start instant, verifies one code, prints the outcome.
#[test]
fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let mut parts = spec.splitn(4, '|');
    let (cfg_path, code, now, start) = (
        parts.next().expect("cfg"),
        parts.next().expect("code"),
        parts.next().expect("now").parse::<u64>().expect("now"),
        parts.next().expect("start").parse::<u128>().expect("start"),
    );
    let cfg: MfaConfig = toml::from_str(&std::fs::read_to_string(cfg_path).expect("cfg")).expect("toml");
    let mfa = Mfa::open(&cfg, false).expect("open");
    while SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        < start
    {
        std::hint::spin_loop();
    }
    let outcome = match mfa.verify_at("alice", code, now) {
        Ok(_) => "accepted".to_owned(),
        Err(e) => e.kind().name().to_owned(),
    };
    println!("CHILD-OUTCOME {outcome}");
}

/// Runs `n` processes, each with its own config directory and its own copy of the key (as
/// separate hosts would have), all verifying `code` at one instant. Their outcomes.
fn race_processes(st: &Store, n: usize, code: &str) -> Vec<String> {
    let exe = std::env::current_exe().expect("exe");
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 2500;
    let children: Vec<_> = (0..n)
        .map(|i| {
            let host = st.dir.join(format!("host{i}"));
            std::fs::create_dir_all(&host).expect("host dir");
            let key = host.join("mfa.key");
            std::fs::copy(&st.cfg.key_file, &key).expect("key copy");
            let db = match &st.pg {
                Some(pg) => pg.toml_keys(),
                None => format!("database = \"{}\"\n", st.cfg.database),
            };
            let text = format!(
                "{db}key_file = \"{}\"\nmax_failures = {}\n",
                key.display(),
                st.cfg.max_failures
            );
            let cfg_path = host.join("mfa.toml");
            std::fs::write(&cfg_path, text).expect("cfg");
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "mfa_stores::child_process_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, format!("{}|{code}|{T}|{start}", cfg_path.display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines()
                .find_map(|l| l.split_once("CHILD-OUTCOME "))
                .map(|(_, o)| o.trim().to_owned())
                .unwrap_or_else(|| panic!("child failed: {text} {}", String::from_utf8_lossy(&out.stderr)))
        })
        .collect()
}

fn eight_processes_with_separate_configs_race_one_code_and_wrong_guesses(mut st: Store) {
    let mfa = Mfa::open(&st.cfg, true).expect("open");
    let (s, p) = enrolled(&mfa, "alice");
    let code = code_for_step(&s, p.step_at(T), &p);
    // one valid code from 8 hosts at once: exactly one is accepted, 7 see a replay (each
    // replay counts as a failure, so the later ones may already be throttled)
    st.cfg.max_failures = 20;
    let good = race_processes(&st, 8, &code);
    assert_eq!(good.iter().filter(|o| *o == "accepted").count(), 1, "{good:?}");
    assert!(
        good.iter().all(|o| o == "accepted" || o == "mfa_replayed"),
        "{good:?}"
    );
    // wrong guesses from 8 hosts at once never get more than max_failures (3) codes checked
    st.cfg.max_failures = 3;
    let e = mfa.enroll("alice").expect("a fresh enrolment (failures cleared)");
    let wrong = wrong_code(&e.secret, &e.params, T);
    let bad = race_processes(&st, 8, wrong);
    assert_eq!(bad.iter().filter(|o| *o == "mfa_bad_code").count(), 3, "{bad:?}");
    assert!(
        bad.iter().all(|o| o == "mfa_bad_code" || o == "mfa_throttled"),
        "{bad:?}"
    );
}

// ---- a PostgreSQL restart in the middle of a run ---------------------------------------

#[test]
fn a_postgres_restart_mid_run_gives_typed_errors_then_recovers_and_nothing_is_accepted_twice() {
    let _alone = pg_exclusive();
    let pg = PgDatabase::new("restart");
    let dir = private_dir("restart");
    let mut cfg = Store::pg_config(&pg, &dir);
    cfg.max_failures = 10_000; // every refusal below must be a replay, not a throttle
    let mfa = Mfa::open(&cfg, true).expect("open");
    let (s, p) = enrolled(&mfa, "alice");
    let restart = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        crate::support::lab_script("postgres.sh", "restart");
    });
    // one code per 30 s step, as fast as possible, through the restart
    let (mut accepted, mut store_errors, mut other) = (Vec::new(), 0, Vec::new());
    let db_password =
        std::fs::read_to_string(cfg.database_password_file.as_ref().expect("pw file")).expect("pw");
    let began = std::time::Instant::now();
    let mut now = T;
    while began.elapsed() < Duration::from_secs(60) {
        now += 30;
        let code = code_for_step(&s, p.step_at(now), &p);
        match mfa.verify_at("alice", &code, now) {
            Ok(_) => accepted.push(now),
            Err(e) if e.kind() == ErrorKind::MfaStore => {
                store_errors += 1;
                assert!(!e.message().contains(db_password.trim()), "{e}");
            }
            Err(e) => other.push(e),
        }
        if restart.is_finished() && store_errors > 0 && accepted.last() == Some(&now) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    restart.join().expect("restart thread");
    assert!(store_errors > 0, "the restart was seen as typed MfaStore errors");
    assert_eq!(
        accepted.last(),
        Some(&now),
        "verification works again after the restart"
    );
    // the only other outcome allowed: a code whose answer was lost mid-restart counts as used
    assert!(
        other.iter().all(|e| e.kind() == ErrorKind::MfaReplayed),
        "{other:?}"
    );
    // nothing is accepted twice: every code used (accepted or lost) is refused now
    let fresh = Mfa::open(&cfg, false).expect("reopen");
    let mut t = T;
    while t < now {
        t += 30;
        let code = code_for_step(&s, p.step_at(t), &p);
        let again = fresh.verify_at("alice", &code, t).expect_err("replayed");
        assert_eq!(again.kind(), ErrorKind::MfaReplayed, "{again}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
