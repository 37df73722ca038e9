//! The `cadenas` binary against the lab's real OpenLDAP.

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use cadenas::directory::{BindOutcome, Directory, UserRef};
use cadenas::Password;
use support::OpenLdapLab;

fn cadenas(lab: &OpenLdapLab, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", lab.get("CADENAS_LAB_CONFIG")])
        .args(args)
        .env("CADENAS_LOG", "trace")
        .output()
        .expect("run cadenas")
}

/// A journal of the test's own: runs in parallel must not share one (it is locked per writer).
fn own_journal(tag: &str) -> String {
    let p = std::env::temp_dir().join(format!("cadenas-cli-{tag}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p.display().to_string()
}

/// The password for `user` in a `user<TAB>password` file.
fn password_in(file: &std::path::Path, user: &str) -> Password {
    let text = std::fs::read_to_string(file).expect("password file");
    let line = text
        .lines()
        .find(|l| l.split('\t').next() == Some(user))
        .expect("user in file");
    Password::new(line.split_once('\t').expect("tab").1)
}

/// `n` processes of `cadenas mfa verify USER` all started first, then all given `code` on
/// stdin at once (each waits for it): a race with every racer in flight.
fn race_mfa_verify(config: &str, user: &str, code: &str, n: usize) -> Vec<Output> {
    use std::io::Write;
    let mut racers: Vec<_> = (0..n)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_cadenas"))
                .args(["--config", config, "mfa", "verify", user])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in &mut racers {
        let mut s = c.stdin.take().expect("stdin");
        s.write_all(format!("{code}\n").as_bytes()).expect("code");
    }
    racers
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn contain_locks_resets_requires_mfa_and_hands_the_password_over_in_a_0600_file() {
    let lab = OpenLdapLab::load();
    let (name, dn) = lab.fresh_user("cli-contain").await;
    let dir = std::env::temp_dir().join(format!("cadenas-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pw_file = dir.join(format!("{name}.pw"));

    let journal = own_journal("contain");
    let out = cadenas(
        &lab,
        &[
            "--json",
            "contain",
            name.as_str(),
            "--password-file",
            pw_file.to_str().expect("utf8"),
            "--journal",
            &journal,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["done"], 1);
    // CADENAS_LOG=trace: every step and every server operation is logged (a process-wide
    // subscriber, as an operator runs it), and never the password
    let logs = String::from_utf8_lossy(&out.stderr);
    let missing: Vec<String> = [
        "run starts".to_owned(),
        format!(
            "step incident={} user=\"{name}\" dn={dn} step=\"lock\" status=\"changed\"",
            report["incident"]
        ),
        format!("ldap modify dn={dn} attributes=replace:pwdAccountLockedTime rc=0"),
        format!("ldap password modify (RFC 3062) dn={dn} rc=0"),
        "ldap search".to_owned(),
        "run ends".to_owned(),
    ]
    .into_iter()
    .filter(|w| !logs.contains(w.as_str()))
    .collect();
    assert!(missing.is_empty(), "not in the logs: {missing:?}\n{logs}");
    let handed = password_in(&pw_file, name.as_str());
    assert!(
        !logs.contains(handed.expose_secret()),
        "the password reached the logs"
    );
    let user = &report["users"][0];
    assert_eq!(user["complete"], true);
    let steps: Vec<_> = user["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].clone())
        .collect();
    assert_eq!(
        steps,
        ["lock", "reset_password", "revoke_sessions", "require_mfa"]
    );
    assert_eq!(
        user["steps"][2]["status"], "partial",
        "no revokers in this config: not claimed revoked"
    );

    let mode = std::fs::metadata(&pw_file).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let new = password_in(&pw_file, name.as_str());
    assert!(
        !text(&out).contains(new.expose_secret()),
        "the password is only in the file"
    );
    assert!(
        !std::fs::read_to_string(&journal)
            .expect("journal")
            .contains(new.expose_secret()),
        "not in the journal"
    );

    let d = Directory::connect(&lab.config().directory)
        .await
        .expect("connect");
    // Locked: even the new password is refused until release.
    assert_eq!(
        d.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::Locked
    );
    let u = d.find_user(&UserRef::Name(name.clone())).await.expect("user");
    let state = d.account_state(&u).await.expect("state");
    assert!(state.must_change && state.mfa_required == Some(true));
    d.unlock(&u).await.expect("unlock");
    assert_eq!(
        d.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange
    );
    assert_eq!(
        d.check_password(&dn, &lab.user_password()).await.expect("bind"),
        BindOutcome::InvalidCredentials
    );

    // The file is never overwritten: a second run refuses before changing anything.
    let again = cadenas(
        &lab,
        &[
            "contain",
            name.as_str(),
            "--password-file",
            pw_file.to_str().expect("utf8"),
            "--journal",
            &journal,
        ],
    );
    assert_eq!(again.status.code(), Some(2), "a usage error: {}", text(&again));
    assert!(text(&again).contains("never overwritten"));
    assert_eq!(
        d.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange,
        "untouched"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_starttls_the_server_refuses_is_a_tls_failure_exit_4() {
    let lab = OpenLdapLab::load();
    // a real slapd with no TLS at all (lab/openldap.sh notls): it refuses StartTLS
    support::lab_script("openldap.sh", "notls");
    let dir = std::env::temp_dir().join(format!("cadenas-cli-notls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("cadenas.toml");
    let base = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG")).expect("config");
    let edited = base.replace(
        &format!("url = \"{}\"", lab.get("CADENAS_LAB_LDAPS_URL")),
        "url = \"ldap://127.0.0.1:3898\"\nstarttls = true",
    );
    std::fs::write(&config, edited).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", config.to_str().expect("utf8"), "status", "user0001"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused StartTLS") && err.contains("(E201)"),
        "{err}"
    );
}

#[tokio::test]
async fn contain_refuses_to_print_a_password_into_a_pipe_and_changes_nothing() {
    let lab = OpenLdapLab::load();
    let (name, dn) = lab.fresh_user("cli-pipe").await;
    let out = cadenas(&lab, &["contain", name.as_str()]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("--password-file"));
    let d = Directory::connect(&lab.config().directory)
        .await
        .expect("connect");
    assert_eq!(
        d.check_password(&dn, &lab.user_password()).await.expect("bind"),
        BindOutcome::Success
    );
}

#[tokio::test]
async fn protected_accounts_and_bad_names_are_refused_with_documented_exit_codes() {
    let lab = OpenLdapLab::load();
    let pw_file = std::env::temp_dir().join(format!("cadenas-cli-protected-{}.pw", std::process::id()));
    let _ = std::fs::remove_file(&pw_file);
    let journal = own_journal("protected");
    let out = cadenas(
        &lab,
        &[
            "--json",
            "contain",
            "admin0001",
            "no-such-user-x",
            "--password-file",
            pw_file.to_str().expect("utf8"),
            "--journal",
            &journal,
        ],
    );
    // every user refused: nothing changed, exit 5 (README), not 6
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["users"][0]["refused"]["kind"], "protected_account");
    assert_eq!(j["users"][1]["refused"]["kind"], "user_not_found");
    assert!(
        j["users"][0]["steps"].as_array().expect("steps").is_empty(),
        "nothing done"
    );
    assert!(
        !pw_file.exists(),
        "no password handed over, no (empty) file left behind"
    );
    assert_eq!(
        j["not_revoked"],
        serde_json::json!([]),
        "nobody contained, no notices"
    );
    // so the same command can be retried with the same --password-file
    let out = cadenas(
        &lab,
        &[
            "contain",
            "admin0001",
            "--password-file",
            pw_file.to_str().expect("utf8"),
            "--journal",
            &journal,
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(!text(&out).contains("new passwords:"), "{}", text(&out));
    assert!(!text(&out).contains("not revoked:"), "{}", text(&out));
    assert!(!pw_file.exists());

    let out = cadenas(&lab, &["--json", "status", "*)(uid=*"]);
    assert_eq!(out.status.code(), Some(5));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["error"]["kind"], "invalid_user_name");
    assert_eq!(j["error"]["code"], 205);

    // a list with a name that is filter syntax: refused whole, before anything is created or
    // contacted — the valid account stays as it was
    let (good, _) = lab.fresh_user("cli-badlist").await;
    let out = cadenas(
        &lab,
        &[
            "--json",
            "contain",
            good.as_str(),
            "*)(uid=*",
            "--password-file",
            pw_file.to_str().expect("utf8"),
            "--journal",
            &journal,
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["error"]["kind"], "invalid_user_name");
    assert!(
        j["error"]["message"].as_str().expect("message").contains("#2"),
        "{j}"
    );
    assert!(!pw_file.exists(), "no hand-over file for a refused list");
    let state = cadenas(&lab, &["--json", "status", good.as_str()]);
    let j: serde_json::Value = serde_json::from_slice(&state.stdout).expect("json");
    assert_eq!(j["lock"]["state"], "unlocked", "{j}");

    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", "/nonexistent/cadenas.toml", "status", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
}

#[tokio::test]
async fn status_shows_the_account_state() {
    let lab = OpenLdapLab::load();
    let (name, _) = lab.fresh_user("cli-status").await;
    let out = cadenas(&lab, &["status", name.as_str()]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("lock:             unlocked") && t.contains("MFA required:     no"),
        "{t}"
    );
    let out = cadenas(&lab, &["--json", "status", name.as_str()]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["lock"]["state"], "unlocked");
    assert_eq!(j["flavour"], "open-ldap");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("WARNING"));

    // the plaintext opt-in works, and says on stderr that passwords cross in clear
    let dir = std::env::temp_dir().join(format!("cadenas-cli-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("cadenas.toml");
    let base = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG")).expect("config");
    let plain = base
        .replace(lab.get("CADENAS_LAB_LDAPS_URL"), lab.get("CADENAS_LAB_LDAP_URL"))
        .replace("[directory]\n", "[directory]\nallow_plaintext_passwords = true\n");
    std::fs::write(&config, plain).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args([
            "--config",
            config.to_str().expect("utf8"),
            "status",
            name.as_str(),
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARNING: allow_plaintext_passwords = true") && err.contains("in clear"),
        "{err}"
    );
}

#[tokio::test]
async fn contain_with_the_full_lab_config_kicks_the_attackers_imap_session() {
    let lab = OpenLdapLab::load();
    let env = support::dovecot_env();
    let (name, _) = lab.fresh_user("cli-imap").await;
    let mut attacker = support::Imap::login(
        &env["CADENAS_LAB_IMAP"],
        name.as_str(),
        lab.get("CADENAS_LAB_USER_PW"),
    )
    .await
    .expect("attacker logs in");
    attacker.idle().await;

    let dir = std::env::temp_dir().join(format!("cadenas-cli-imap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("cadenas.toml");
    let base = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG")).expect("config");
    let revokers = std::fs::read_to_string(&env["CADENAS_LAB_REVOKERS"]).expect("revokers");
    std::fs::write(&config, format!("{base}\n{revokers}")).expect("write");
    let pw_file = dir.join("pw");
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args([
            "--json",
            "--config",
            config.to_str().expect("utf8"),
            "contain",
            name.as_str(),
            "--journal",
            &own_journal("imap"),
        ])
        .args(["--password-file", pw_file.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rev = &j["users"][0]["steps"][2]["detail"]["revocations"][0];
    assert_eq!(rev["revoker"], "mail");
    assert_eq!(rev["status"], "revoked");
    assert_eq!(rev["sessions_closed"], 1);
    // IMAP is revoked; SMTP is not, with no outbound policy service in this config: said
    assert_eq!(j["users"][0]["steps"][2]["status"], "partial");
    let smtp = &j["users"][0]["steps"][2]["detail"]["revocations"][1];
    assert_eq!(smtp["revoker"], "smtp");
    assert!(
        smtp["not_revoked"][0]
            .as_str()
            .is_some_and(|n| n.contains("SMTP sessions")),
        "{smtp}"
    );
    assert!(attacker.closed_within(5).await);
    let again = support::Imap::login(
        &env["CADENAS_LAB_IMAP"],
        name.as_str(),
        lab.get("CADENAS_LAB_USER_PW"),
    )
    .await;
    assert!(
        support::Imap::refused(&again),
        "refused by the server: {:?}",
        again.err()
    );
    assert!(!text(&out).contains(password_in(&pw_file, name.as_str()).expose_secret()));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn mfa_enrol_then_two_processes_racing_on_one_code_exactly_one_wins() {
    let lab = OpenLdapLab::load();
    let (name, _) = lab.fresh_user("cli-mfa").await;
    let dir = std::env::temp_dir().join(format!("cadenas-cli-mfa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let uri_file = dir.join("uri");
    let out = cadenas(
        &lab,
        &[
            "mfa",
            "enroll",
            name.as_str(),
            "--uri-file",
            uri_file.to_str().expect("utf8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let uri = std::fs::read_to_string(&uri_file).expect("uri");
    assert!(uri.starts_with("otpauth://totp/Cadenas%20Lab:"), "{uri}");
    assert_eq!(
        std::fs::metadata(&uri_file).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    let secret = support::secret_from_uri(uri.trim());
    let b32 = uri
        .split_once("secret=")
        .expect("secret")
        .1
        .split('&')
        .next()
        .expect("b32")
        .to_owned();
    assert!(!text(&out).contains(&b32), "the secret only went to the file");

    let p = cadenas::mfa::MfaConfig::new("x", "y").params();
    let now = support::unix_now();
    let code = cadenas::mfa::totp::code_for_step(&secret, p.step_at(now), &p);
    let results = race_mfa_verify(lab.get("CADENAS_LAB_CONFIG"), name.as_str(), &code, 4);
    let wins = results.iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1, "{:?}", results.iter().map(text).collect::<Vec<_>>());
    for o in results.iter().filter(|o| !o.status.success()) {
        assert_eq!(o.status.code(), Some(7), "{}", text(o));
        assert!(text(o).contains("already used"), "{}", text(o));
    }

    let codes_file = dir.join("codes");
    let out = cadenas(
        &lab,
        &[
            "mfa",
            "recovery-codes",
            name.as_str(),
            "--output",
            codes_file.to_str().expect("utf8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let codes = std::fs::read_to_string(&codes_file).expect("codes");
    assert_eq!(codes.lines().count(), 10);
    assert!(!text(&out).contains(codes.lines().next().expect("one")));

    let out = cadenas(&lab, &["--json", "mfa", "reset", name.as_str()]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["deleted"], true);
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args([
            "--config",
            lab.get("CADENAS_LAB_CONFIG"),
            "mfa",
            "verify",
            name.as_str(),
            "--code",
            "123456",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(7));
    assert!(text(&out).contains("no TOTP enrolment"), "{}", text(&out));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn contain_on_active_directory_reports_what_kerberos_keeps_valid() {
    let ad = support::AdLab::load();
    let (name, dn) = ad.fresh_user_uac("clicont", 66048).await;
    let dir = std::env::temp_dir().join(format!("cadenas-cli-ad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pw_file = dir.join("pw");
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args([
            "--json",
            "--config",
            ad.config_path().to_str().expect("utf8"),
            "contain",
            name.as_str(),
            "--journal",
            &own_journal("ad"),
        ])
        .args(["--password-file", pw_file.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        j["users"][0]["steps"][0]["detail"]["change"]["before"]["userAccountControl"][0], "66048",
        "original flags recorded"
    );
    assert!(j["not_revoked"]
        .as_array()
        .expect("list")
        .iter()
        .any(|n| n.as_str().is_some_and(|s| s.contains("Kerberos"))));
    let d = Directory::connect(
        &cadenas::Config::from_file(&ad.config_path())
            .expect("cfg")
            .directory,
    )
    .await
    .expect("connect");
    let new = password_in(&pw_file, name.as_str());
    assert_eq!(
        d.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::Disabled
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_existing_password_file_is_a_usage_error_found_before_anything_is_contacted() {
    let lab = OpenLdapLab::load();
    let dir = std::env::temp_dir().join(format!("cadenas-cli-exists-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let existing = dir.join("passwords.tsv");
    std::fs::write(&existing, "earlier\tpassword\n").expect("write");
    // a directory nobody listens on: contacting it would be exit 4
    let cfg = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG"))
        .expect("config")
        .replace("127.0.0.1:6360", "127.0.0.1:9");
    let cfg_path = dir.join("cadenas.toml");
    std::fs::write(&cfg_path, cfg).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", cfg_path.to_str().expect("utf8"), "contain", "someone"])
        .args(["--password-file", existing.to_str().expect("utf8")])
        .args(["--journal", &own_journal("exists")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("never overwritten"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&existing).expect("read"),
        "earlier\tpassword\n",
        "untouched"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_second_contain_of_a_contained_user_keeps_the_first_password_and_release_reads_right() {
    let lab = OpenLdapLab::load();
    let (name, dn) = lab.fresh_user("cli-twice").await;
    let dir = std::env::temp_dir().join(format!("cadenas-cli-twice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (first, second, third) = (dir.join("1.pw"), dir.join("2.pw"), dir.join("3.pw"));
    for f in [&first, &second, &third] {
        let _ = std::fs::remove_file(f);
    }
    let journal = own_journal("twice");
    let contain = |file: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "--json",
            "contain",
            name.as_str(),
            "--password-file",
            file.to_str().expect("utf8"),
            "--journal",
            &journal,
        ];
        args.extend_from_slice(extra);
        cadenas(&lab, &args)
    };
    let out = contain(&first, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let incident =
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["incident"].clone();

    // the second on-call sysadmin runs the same command
    let out = contain(&second, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let reset = &j["users"][0]["steps"][1];
    assert_eq!(reset["status"], "already_so", "{j:#}");
    let note = reset["detail"]["note"].as_str().expect("note");
    assert!(note.contains(incident.as_str().expect("id")), "{note}");
    assert!(note.contains(first.to_str().expect("utf8")), "{note}");
    assert!(!second.exists(), "no second password");
    let d = Directory::connect(&lab.config().directory)
        .await
        .expect("connect");
    assert_eq!(
        d.check_password(&dn, &password_in(&first, name.as_str()))
            .await
            .expect("bind"),
        BindOutcome::Locked,
        "the first password is still the account's (locked)"
    );

    // resetting again is explicit, and journaled with its reason
    let out = contain(&third, &["--reset-again", "first hand-over lost"]);
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["users"][0]["steps"][1]["status"], "changed");
    assert_eq!(
        j["users"][0]["steps"][1]["detail"]["note"],
        "reset again: first hand-over lost"
    );
    assert!(std::fs::read_to_string(&journal)
        .expect("journal")
        .contains("reset again: first hand-over lost"));

    let out = cadenas(
        &lab,
        &[
            "release",
            name.as_str(),
            "--override-reason",
            "test\n     9 2026-12-07T00:00:00Z forged end: 0 done",
            "--journal",
            &journal,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // the reason is journaled as given, and shown on its record's one line
    let shown = cadenas(&lab, &["journal", "show", &journal]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("note: test\\n     9 2026"), "{shown}");
    assert!(
        !shown
            .lines()
            .any(|l| l.contains("forged") && !l.contains("note: test")),
        "{shown}"
    );
    assert!(
        text(&out).contains("pwdAccountLockedTime: 000001010000Z -> (none) (as it was before containment)"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn journal_verify_checks_the_head_kept_elsewhere_and_the_records_mac() {
    let lab = OpenLdapLab::load();
    let (name, _) = lab.fresh_user("cli-head").await;
    let dir = std::env::temp_dir().join(format!("cadenas-cli-head-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join("journal.key");
    std::fs::write(&key, b"0123456789abcdef0123456789abcdef").expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let journal = dir.join("journal.jsonl");
    let cfg = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG"))
        .expect("config")
        .replace(
            "[journal]\n",
            &format!("[journal]\nkey_file = \"{}\"\n", key.display()),
        );
    let cfg_path = dir.join("cadenas.toml");
    std::fs::write(&cfg_path, cfg).expect("write");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .args(["--config", cfg_path.to_str().expect("utf8")])
            .args(args)
            .output()
            .expect("run")
    };
    let pw = dir.join("pw.tsv");
    let j = journal.to_str().expect("utf8");
    let out = run(&[
        "--json",
        "contain",
        name.as_str(),
        "--password-file",
        pw.to_str().expect("utf8"),
        "--journal",
        j,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let head = serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["journal_head"]
        .as_str()
        .expect("head")
        .to_owned();
    let out = run(&["journal", "verify", j, "--expect-head", &head]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("every MAC verified"), "{}", text(&out));
    let other = "0".repeat(64);
    let out = run(&["journal", "verify", j, "--expect-head", &other]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(text(&out).contains("not the expected"), "{}", text(&out));
    // the record checks the MACs too, with the config's key
    let shown = run(&["--json", "journal", "show", j]).stdout;
    let first = shown.split(|b| *b == b'\n').next().unwrap_or_default();
    let incident = serde_json::from_slice::<serde_json::Value>(first).expect("a record")["incident"]
        .as_str()
        .expect("incident")
        .to_owned();
    let out = run(&[
        "--json",
        "report",
        &incident,
        "--journal",
        j,
        "--expect-head",
        &head,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["proof"]["macs_checked"], true, "{r:#}");
    assert_eq!(r["summary"]["contained"], 1, "{r:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn two_processes_containing_one_user_at_once_hand_over_exactly_one_working_password() {
    let lab = OpenLdapLab::load();
    let (name, dn) = lab.fresh_user("cli-race").await;
    let dir = std::env::temp_dir().join(format!("cadenas-cli-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let journal = own_journal("race");
    let files = [dir.join("a.pw"), dir.join("b.pw")];
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(env!("CARGO_BIN_EXE_cadenas"))
                .args([
                    "--config",
                    lab.get("CADENAS_LAB_CONFIG"),
                    "--json",
                    "contain",
                    name.as_str(),
                ])
                .args([
                    "--password-file",
                    f.to_str().expect("utf8"),
                    "--journal",
                    &journal,
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    for o in &outs {
        assert!(o.status.success(), "{}", text(o));
    }
    let handed: Vec<&std::path::PathBuf> = files.iter().filter(|f| f.exists()).collect();
    assert_eq!(
        handed.len(),
        1,
        "exactly one password handed over: {}",
        outs.iter().map(text).collect::<String>()
    );
    let d = Directory::connect(&lab.config().directory)
        .await
        .expect("connect");
    assert_eq!(
        d.check_password(&dn, &password_in(handed[0], name.as_str()))
            .await
            .expect("bind"),
        BindOutcome::Locked,
        "the one handed over is the account's password"
    );
    // one story: one reset in the journal, the other run's reset already so
    let records = cadenas::journal::read(journal.as_ref()).expect("journal");
    let resets: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.event {
            cadenas::journal::Event::Outcome { step, status, .. }
                if *step == cadenas::journal::Step::ResetPassword =>
            {
                Some(*status)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        resets,
        vec![
            cadenas::journal::StepStatus::Changed,
            cadenas::journal::StepStatus::AlreadySo
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn racing_processes_guessing_codes_never_get_more_than_max_failures_checked() {
    let lab = OpenLdapLab::load();
    let (name, _) = lab.fresh_user("cli-guess").await;
    let dir = std::env::temp_dir().join(format!("cadenas-cli-guess-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG"))
        .expect("config")
        .replace("[mfa]\n", "[mfa]\nmax_failures = 3\n");
    let cfg_path = dir.join("cadenas.toml");
    std::fs::write(&cfg_path, cfg).expect("write");
    let uri_file = dir.join("uri");
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args([
            "--config",
            cfg_path.to_str().expect("utf8"),
            "mfa",
            "enroll",
            name.as_str(),
        ])
        .args(["--uri-file", uri_file.to_str().expect("utf8")])
        .output()
        .expect("enroll");
    assert!(out.status.success(), "{}", text(&out));
    let secret = support::secret_from_uri(std::fs::read_to_string(&uri_file).expect("uri").trim());
    let p = cadenas::mfa::MfaConfig::new("x", "y").params();
    let right = cadenas::mfa::totp::code_for_step(&secret, p.step_at(support::unix_now()), &p);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let results = race_mfa_verify(cfg_path.to_str().expect("utf8"), name.as_str(), wrong, 8);
    assert!(
        results.iter().all(|o| o.status.code() == Some(7)),
        "{:?}",
        results.iter().map(text).collect::<Vec<_>>()
    );
    let checked = results
        .iter()
        .filter(|o| text(o).contains("does not match"))
        .count();
    let throttled = results
        .iter()
        .filter(|o| text(o).contains("too many failed attempts"))
        .count();
    assert_eq!(
        (checked, throttled),
        (3, 5),
        "{:?}",
        results.iter().map(text).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lab config with the Dovecot revoker and `[mail]`, written next to the OpenLDAP one.
fn mail_config(lab: &OpenLdapLab) -> String {
    let env = support::dovecot_env();
    let base = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG")).expect("config");
    let extra = std::fs::read_to_string(&env["CADENAS_LAB_REVOKERS"]).expect("revokers.toml");
    let path = std::path::Path::new(lab.get("CADENAS_LAB_CONFIG"))
        .with_file_name(format!("cli-mail-{}.toml", std::process::id()));
    std::fs::write(&path, format!("{base}\n{extra}")).expect("write config");
    path.display().to_string()
}

#[tokio::test]
async fn sessions_plan_and_contain_from_ip_follow_the_attackers_address() {
    let lab = OpenLdapLab::load();
    let imap = support::dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let pid = std::process::id();
    let ip = format!("127.68.{}.{}", pid % 250, 1 + (pid / 250) % 250);
    let range = format!("{ip}/32");
    let (victim, _) = lab.fresh_user("cli-pivot").await;
    let mut attacker = support::Imap::login_from(&imap, &ip, victim.as_str(), lab.get("CADENAS_LAB_USER_PW"))
        .await
        .expect("attacker login");
    attacker.idle().await;
    let config = mail_config(&lab);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .args(["--config", &config])
            .args(args)
            .output()
            .expect("run cadenas")
    };

    // who, as JSON: the victim, live and in the login log
    let out = run(&["--json", "sessions", "--ip", &range]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["range"], range.as_str());
    assert_eq!(v["users"], serde_json::json!([victim.as_str()]), "{v:#}");
    let kinds: Vec<&str> = v["sightings"]
        .as_array()
        .expect("sightings")
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"live_session") && kinds.contains(&"logged_in"),
        "{kinds:?}"
    );

    // who needs no directory: the same with the directory unreachable
    let down = std::path::Path::new(&config).with_file_name(format!("cli-mail-down-{pid}.toml"));
    std::fs::write(
        &down,
        std::fs::read_to_string(&config)
            .expect("config")
            .replace("ldaps://127.0.0.1:6360", "ldaps://127.0.0.1:1"),
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .arg("--config")
        .arg(&down)
        .args(["--json", "sessions", "--ip", &range])
        .output()
        .expect("run cadenas");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["users"], serde_json::json!([victim.as_str()]), "{v:#}");
    let _ = std::fs::remove_file(down);

    // the plan names who, why, and the kick by address; changes nothing
    let out = run(&["plan", "--from-ip", &range]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains(&format!("seen from {range}")), "{shown}");
    assert!(
        shown.contains(victim.as_str()) && shown.contains("would change"),
        "{shown}"
    );
    assert!(shown.contains(&format!("kick mask={range}")), "{shown}");

    // usage errors: a range that is not one, users together with --from-ip
    let out = run(&["sessions", "--ip", "127.0.0.1/33"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(&["contain", "--from-ip", "10.0.0.7/8"]);
    assert_eq!(out.status.code(), Some(2), "host bits set: {}", text(&out));
    let out = run(&["plan", "someone", "--from-ip", &range]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // contain: the victim is contained, the attacker's session is gone
    let pw_file = std::env::temp_dir().join(format!("cadenas-cli-pivot-{pid}.pw"));
    let _ = std::fs::remove_file(&pw_file);
    let journal = own_journal("pivot");
    let out = run(&[
        "--json",
        "contain",
        "--from-ip",
        &range,
        "--password-file",
        pw_file.to_str().expect("path"),
        "--journal",
        &journal,
        "--changes-since",
        "1h",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["done"], 1, "{v:#}");
    assert_eq!(v["pivot"]["users"], serde_json::json!([victim.as_str()]));
    assert_eq!(v["address_kicks"][0]["revoker"], "mail");
    assert!(attacker.closed_within(5).await, "the attacker's session survived");
    let _ = password_in(&pw_file, victim.as_str());
    let out = run(&["journal", "show", &journal]);
    assert!(
        text(&out).contains(&format!("kick by address {range}: 0 session(s) closed")),
        "{}",
        text(&out)
    );

    // the incident record: the attacker's address and the account seen from it, the session
    // closed, the head the run printed
    let incident = v["incident"].as_str().expect("incident").to_owned();
    let head = v["journal_head"].as_str().expect("head").to_owned();
    let out = run(&["--json", "report", &incident, "--journal", &journal]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["attacker"][0]["range"], range.as_str(), "{r:#}");
    assert_eq!(r["attacker"][0]["accounts"], serde_json::json!([victim.as_str()]));
    assert!(r["summary"]["sessions_closed"].as_u64() >= Some(1), "{r:#}");
    assert_eq!(r["proof"]["head"], head.as_str());
    assert!(
        r["accounts"][0]["changes"].is_array(),
        "--changes-since journaled: {r:#}"
    );
    let page = std::env::temp_dir().join(format!("cadenas-cli-report-{pid}.html"));
    let out = run(&[
        "report",
        &incident,
        "--journal",
        &journal,
        "--lang",
        "fr",
        "--alert-at",
        "1h",
        "--expect-head",
        &head,
        "--out",
        page.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(html.contains(&range) && html.contains("Les adresses de l&#39;attaquant"));
    let out = run(&["report", &incident, "--journal", &journal, "--format", "md"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("# Incident record"));
    // another head than the one kept, an edited record: exit 8, and the page says why
    let out = run(&[
        "report",
        &incident,
        "--journal",
        &journal,
        "--expect-head",
        &"0".repeat(64),
        "--out",
        page.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    let edited = format!("{journal}.edited");
    std::fs::write(
        &edited,
        std::fs::read_to_string(&journal)
            .expect("journal")
            .replacen(victim.as_str(), "someone-else", 1),
    )
    .expect("write");
    let out = run(&[
        "report",
        &incident,
        "--journal",
        &edited,
        "--out",
        page.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(text(&out).contains("BROKEN at line"), "{}", text(&out));
    assert!(std::fs::read_to_string(&page)
        .expect("page")
        .contains("THE JOURNAL DOES NOT VERIFY"));
    let out = run(&["report", "no-such-incident", "--journal", &journal]);
    assert_eq!(out.status.code(), Some(5), "an argument refused: {}", text(&out));
    for f in [page.display().to_string(), edited] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(pw_file);
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn mfa_reset_tells_the_notifiers_that_ask_for_it_once_there_was_something_to_reset() {
    let lab = OpenLdapLab::load();
    let (name, _) = lab.fresh_user("cli-mfa-notify").await;
    let pid = std::process::id();
    let told = std::env::temp_dir().join(format!("cadenas-cli-told-{pid}.txt"));
    let _ = std::fs::remove_file(&told);
    let base = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG")).expect("config");
    let config =
        std::path::Path::new(lab.get("CADENAS_LAB_CONFIG")).with_file_name(format!("cli-notify-{pid}.toml"));
    std::fs::write(
        &config,
        format!(
            "{base}\n[[notify]]\nname = \"helpdesk\"\ntype = \"command\"\nevents = [\"mfa_reset\"]\n\
             program = \"/usr/bin/tee\"\nargs = [\"-a\", \"{}\"]\n",
            told.display()
        ),
    )
    .expect("write config");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("run cadenas")
    };
    let uri = std::env::temp_dir().join(format!("cadenas-cli-notify-{pid}.uri"));
    let _ = std::fs::remove_file(&uri);
    let out = run(&[
        "mfa",
        "enroll",
        name.as_str(),
        "--uri-file",
        uri.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["mfa", "reset", name.as_str()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("told helpdesk (mfa_reset)"), "{}", text(&out));
    let message = std::fs::read_to_string(&told).expect("the command got the text");
    assert!(
        message.contains(&format!("[Cadenas] second factor reset: {name}")),
        "{message}"
    );
    assert!(
        message.contains("any device enrolled before no longer works"),
        "{message}"
    );
    // nothing left to reset: nobody is told
    let out = run(&["--json", "mfa", "reset", name.as_str()]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (j["deleted"].clone(), j["notifications"].clone()),
        (false.into(), serde_json::json!([]))
    );
    assert_eq!(std::fs::read_to_string(&told).expect("text"), message);
    for f in [told, uri, config] {
        let _ = std::fs::remove_file(f);
    }
}

#[tokio::test]
async fn status_changes_since_lists_what_the_victim_changed() {
    let lab = OpenLdapLab::load();
    let (name, dn) = lab.fresh_user("cli-changes").await;
    let mut ldap = support::bound_connection(
        lab.get("CADENAS_LAB_LDAPS_URL"),
        lab.get("CADENAS_LAB_CA"),
        dn.as_str(),
        lab.get("CADENAS_LAB_USER_PW"),
    )
    .await;
    ldap.modify(
        dn.as_str(),
        vec![ldap3::Mod::Replace(
            "mobile",
            std::collections::HashSet::from(["+44 7700 900321"]),
        )],
    )
    .await
    .expect("modify")
    .success()
    .expect("self-write");
    let _ = ldap.unbind().await;
    // slapo-accesslog writes its record once the modify has answered: wait for it
    let mut v = serde_json::Value::Null;
    for _ in 0..50 {
        let out = cadenas(
            &lab,
            &["--json", "status", name.as_str(), "--changes-since", "1h"],
        );
        assert!(out.status.success(), "{}", text(&out));
        v = serde_json::from_slice(&out.stdout).expect("json");
        if v["changes"].as_array().is_some_and(|c| !c.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mobile: Vec<&serde_json::Value> = v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["attribute"] == "mobile")
        .collect();
    assert_eq!(mobile.len(), 1, "{v:#}");
    assert_eq!(mobile[0]["flagged"], true);
    assert_eq!(mobile[0]["new"], serde_json::json!(["+44 7700 900321"]));
    let out = cadenas(&lab, &["status", name.as_str(), "--changes-since", "1h"]);
    assert!(
        text(&out).contains("mobile replace = +44 7700 900321 by uid="),
        "{}",
        text(&out)
    );
    let out = cadenas(&lab, &["status", name.as_str(), "--changes-since", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[tokio::test]
async fn mfa_and_journal_on_postgresql_race_contain_verify_and_export() {
    let _shared = support::pg_shared_async().await;
    let lab = OpenLdapLab::load();
    let (name, _) = lab.fresh_user("cli-pg").await;
    let pg = support::PgDatabase::new("cli");
    let dir = std::env::temp_dir().join(format!("cadenas-cli-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join("journal.key");
    std::fs::write(&key, b"0123456789abcdef0123456789abcdef").expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let lab_cfg = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG")).expect("config");
    let cfg = format!(
        "{}\n[journal]\n{}key_file = \"{}\"\n\n[mfa]\n{}key_file = \"{}\"\nissuer = \"Cadenas Lab\"\n",
        support::without_sections(&lab_cfg, &["journal", "mfa"]),
        pg.toml_keys(),
        key.display(),
        pg.toml_keys(),
        dir.join("mfa.key").display()
    );
    let cfg_path = dir.join("cadenas.toml");
    std::fs::write(&cfg_path, cfg).expect("write");
    let config = cfg_path.to_str().expect("utf8");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .args(["--config", config])
            .args(args)
            .output()
            .expect("run")
    };
    // MFA on PostgreSQL: enrol, then 4 processes race one code — exactly one wins
    let uri_file = dir.join("uri");
    let out = run(&[
        "mfa",
        "enroll",
        name.as_str(),
        "--uri-file",
        uri_file.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let secret = support::secret_from_uri(std::fs::read_to_string(&uri_file).expect("uri").trim());
    let p = cadenas::mfa::MfaConfig::new("x", "y").params();
    let now = support::unix_now();
    let code = cadenas::mfa::totp::code_for_step(&secret, p.step_at(now), &p);
    let results = race_mfa_verify(config, name.as_str(), &code, 4);
    assert_eq!(
        results.iter().filter(|o| o.status.success()).count(),
        1,
        "{:?}",
        results.iter().map(text).collect::<Vec<_>>()
    );
    // contain with the journal in PostgreSQL, then verify it there and in its exported file
    let pw = dir.join("pw.tsv");
    let out = run(&[
        "--json",
        "contain",
        name.as_str(),
        "--password-file",
        pw.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        report["journal"]
            .as_str()
            .expect("journal")
            .starts_with("postgresql://"),
        "{report}"
    );
    let head = report["journal_head"].as_str().expect("head").to_owned();
    let out = run(&["journal", "verify", "--expect-head", &head]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("every MAC verified") && text(&out).contains("postgresql://"),
        "{}",
        text(&out)
    );
    let file = dir.join("exported.jsonl");
    let f = file.to_str().expect("utf8");
    let out = run(&["journal", "export", "--to", f]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&head), "{}", text(&out));
    let out = run(&["journal", "verify", f, "--expect-head", &head]);
    assert!(
        out.status.success() && text(&out).contains("every MAC verified"),
        "{}",
        text(&out)
    );
    let out = run(&["journal", "export", "--to", f]);
    assert!(
        !out.status.success(),
        "an existing file is refused: {}",
        text(&out)
    );
    let out = run(&["journal", "show"]);
    assert!(
        out.status.success() && text(&out).contains(name.as_str()),
        "{}",
        text(&out)
    );
    // the incident record from the database, its MACs checked
    let incident = report["incident"].as_str().expect("incident");
    let out = run(&["--json", "report", incident, "--expect-head", &head]);
    assert!(out.status.success(), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        r["proof"]["journal"]
            .as_str()
            .expect("journal")
            .starts_with("postgresql://"),
        "{r:#}"
    );
    assert_eq!(r["proof"]["macs_checked"], true, "{r:#}");
    assert_eq!(r["summary"]["contained"], 1, "{r:#}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn check_exits_0_when_all_is_well_1_on_warnings_and_9_when_a_check_fails() {
    let lab = OpenLdapLab::load();
    let dir = std::env::temp_dir().join(format!("cadenas-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let labdir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let full = std::fs::read_to_string(format!("{labdir}/cadenas.toml")).expect("lab config");
    let check = |text: &str, json: bool| {
        let path = dir.join("cadenas.toml");
        std::fs::write(&path, text).expect("write");
        let mut args = vec!["--config", path.to_str().expect("utf8")];
        if json {
            args.push("--json");
        }
        args.push("check");
        Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .args(&args)
            .output()
            .expect("run")
    };
    // no canary: the service account's rights are not tried, a warning
    let out = check(&full, false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("WARN directory: rights to lock"),
        "{}",
        text(&out)
    );
    // with a canary: every check ok
    let (canary, _) = lab.fresh_user("cli-canary").await;
    let with_canary = format!("{full}\n[canary]\naccounts = [\"{canary}\"]\n");
    let out = check(&with_canary, true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["verdict"], "ok", "{j:#}");
    // the doveadm API down (a port nothing listens on): that check fails, exit 9
    let down = with_canary.replace("127.0.0.1:18080", "127.0.0.1:9");
    let out = check(&down, false);
    assert_eq!(out.status.code(), Some(9), "{}", text(&out));
    assert!(
        text(&out).contains("FAIL revoker mail: doveadm answers"),
        "{}",
        text(&out)
    );

    // the monthly drill on the canary: passed, exit 0, every step timed; another account: refused
    std::fs::write(dir.join("cadenas.toml"), &with_canary).expect("write");
    let journal = dir.join("drill.jsonl");
    let drill = |who: &str| {
        Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .args(["--config", dir.join("cadenas.toml").to_str().expect("utf8")])
            .args(["drill", who, "--journal", journal.to_str().expect("utf8")])
            .output()
            .expect("run")
    };
    let out = drill(canary.as_str());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("drill passed") && text(&out).contains(" ms"),
        "{}",
        text(&out)
    );
    let (other, _) = lab.fresh_user("cli-not-canary").await;
    let out = drill(other.as_str());
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("not a [canary] account"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `cadenas` command lines of a runbook, in order (the ```sh blocks' lines, comments cut).
fn runbook_commands(file: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(format!("{}/../docs/{file}", env!("CARGO_MANIFEST_DIR"))).expect("runbook");
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if in_sh && line.starts_with("cadenas ") {
            out.push(line.split(" #").next().unwrap_or(line).trim().to_owned());
        }
    }
    out
}

#[tokio::test]
async fn the_runbook_runs_against_the_lab() {
    // both languages give the same commands, in the same order
    let commands = runbook_commands("runbook.md");
    assert_eq!(commands, runbook_commands("runbook.fr.md"));
    assert!(commands.len() >= 9, "{commands:?}");

    let lab = OpenLdapLab::load();
    let pid = std::process::id();
    let ip = format!("127.69.{}.{}", pid % 250, 1 + (pid / 250) % 250);
    let (victim, _) = lab.fresh_user("runbook").await;
    let imap = support::dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let mut attacker = support::Imap::login_from(&imap, &ip, victim.as_str(), lab.get("CADENAS_LAB_USER_PW"))
        .await
        .expect("attacker login");
    attacker.idle().await;
    let dir = std::env::temp_dir().join(format!("cadenas-runbook-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let labdir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let config = std::fs::read_to_string(format!("{labdir}/cadenas.toml"))
        .expect("lab config")
        .replace(
            "path = \"/tmp/cadenas-lab/openldap/journal.jsonl\"",
            &format!("path = \"{}\"", dir.join("journal.jsonl").display()),
        );
    let config_path = dir.join("cadenas.toml");
    std::fs::write(&config_path, config).expect("config");

    let mut incident: Option<String> = None;
    for line in &commands {
        let mut cmd = line
            .replace("jdupont", victim.as_str())
            .replace("203.0.113.7", &ip)
            .replace("/root/incident/", &format!("{}/", dir.display()));
        if cmd.contains("INC-20261207T0930-1a2b3c") {
            let inc = incident.as_deref().expect("the containment's incident");
            cmd = cmd.replace("INC-20261207T0930-1a2b3c", inc);
        }
        let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        // `mfa verify` reads the code the owner reads out from their phone
        let stdin = if args.starts_with(&["mfa", "verify"]) {
            let uri = std::fs::read_to_string(dir.join(format!("{victim}.uri"))).expect("uri file");
            let secret = support::secret_from_uri(uri.trim());
            let p = cadenas::mfa::totp::TotpParams::default();
            cadenas::mfa::totp::code_for_step(&secret, p.step_at(support::unix_now()), &p)
        } else {
            String::new()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .args(&args)
            .env("CADENAS_CONFIG", &config_path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run cadenas");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            let _ = writeln!(input, "{stdin}");
        }
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{cmd}\n{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if args.first() == Some(&"contain") {
            incident = stdout
                .lines()
                .find_map(|l| l.strip_prefix("incident "))
                .map(|s| s.trim().to_owned());
            assert!(stdout.contains("1 contained, 0 need attention"), "{stdout}");
            assert!(attacker.closed_within(5).await, "the attacker's session survived");
        }
        if args.first() == Some(&"sessions") {
            assert!(stdout.contains(victim.as_str()), "{stdout}");
        }
        if args.first() == Some(&"report") {
            let page = std::fs::read_to_string(dir.join("record.html")).expect("the record");
            assert!(
                page.contains(victim.as_str()) && page.contains("release"),
                "the release run too"
            );
        }
        if args.first() == Some(&"journal") && args.get(1) == Some(&"show") {
            assert!(
                stdout.contains("start contain") && stdout.contains("end: 1 done"),
                "{stdout}"
            );
        }
    }
    // released: unlocked again, with its new password and MFA
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--json", "status", victim.as_str()])
        .env("CADENAS_CONFIG", &config_path)
        .output()
        .expect("status");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["lock"]["state"], "unlocked", "{j}");
    assert_eq!(j["mfa_required"], true, "{j}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_and_man_pages_come_from_the_commands_themselves() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .args(args)
            .env_remove("CADENAS_CONFIG")
            .output()
            .expect("run")
    };
    for (shell, marker) in [
        ("bash", "_cadenas()"),
        ("zsh", "#compdef cadenas"),
        ("fish", "complete -c cadenas"),
    ] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script:.200}");
        for sub in ["contain", "check", "drill", "release"] {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
    }
    let dir = std::env::temp_dir().join(format!("cadenas-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = run(&["man", "--output", dir.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for page in [
        "cadenas",
        "cadenas-contain",
        "cadenas-check",
        "cadenas-drill",
        "cadenas-mfa-verify",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{page}.1"))).expect(page);
        assert!(text.contains(&format!(".TH {page} 1")), "{page}: {text:.200}");
    }
    let top = std::fs::read_to_string(dir.join("cadenas.1")).expect("cadenas.1");
    assert!(top.contains("9 a check failed"), "the exit codes are in the page");
    // rendered by man itself where it is installed
    if Path::new("/usr/bin/man").exists() {
        let out = Command::new("man")
            .args(["-l", dir.join("cadenas-drill.1").to_str().expect("utf8")])
            .env("MANPAGER", "cat")
            .output()
            .expect("man");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("canary"),
            "{}",
            text(&out)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn watch_killed_and_restarted_neither_misses_nor_repeats_an_alert() {
    use std::io::BufRead;
    let lab = OpenLdapLab::load();
    let imap = support::dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let log = support::dovecot_env()["CADENAS_LAB_DOVECOT_LOG"].clone();
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("cadenas-cli-watch-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // a journal of its own: every alert is journaled
    let journal = dir.join("journal.jsonl");
    let base = std::fs::read_to_string(lab.get("CADENAS_LAB_CONFIG")).expect("config");
    let base = base.replace(
        base.lines()
            .find(|l| l.starts_with("path = ") && l.contains("journal"))
            .expect("the journal's path"),
        &format!("path = \"{}\"", journal.display()),
    );
    let cfg = format!(
        "{base}\n[watch]\ndovecot_logs = [\"{log}\"]\nstate = \"{}\"\nmany_accounts = 3\nmax_alerts_per_hour = 1000000\n",
        dir.join("watch.db").display()
    );
    let cfg_path = dir.join("cadenas.toml");
    std::fs::write(&cfg_path, cfg).expect("write");
    let config = cfg_path.to_str().expect("utf8").to_owned();
    // password spraying from `ip` on 3 fresh accounts, at once
    let spray = |ip: String, tag: &'static str| {
        let (lab, imap) = (&lab, imap.clone());
        async move {
            let mut users = Vec::new();
            for i in 0..3 {
                users.push(lab.fresh_user(&format!("{tag}{i}")).await.0.to_string());
            }
            let tries = users
                .iter()
                .map(|u| support::Imap::login_from(&imap, &ip, u, "Winter2026!"));
            for r in futures_util::future::join_all(tries).await {
                assert!(support::Imap::refused(&r));
            }
        }
    };
    let a = format!("127.{}.{}.31", 60 + pid % 40, 1 + (pid / 40) % 250);
    let b = format!("127.{}.{}.32", 60 + pid % 40, 1 + (pid / 40) % 250);

    let mut child = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", &config, "--json", "watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // its first poll keeps the log's end: wait for the state to exist
    for _ in 0..50 {
        if dir.join("watch.db").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    spray(a.clone(), "cli-watch-a").await;
    let mut seen_a = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen_a.is_empty() && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_str(&line).expect("an alert as JSON");
            if v["alert"]["ip"] == a.as_str() {
                seen_a.push(v["alert"].clone());
            }
        }
    }
    assert_eq!(seen_a.len(), 1, "the spray from {a} alerted once");
    assert_eq!(seen_a[0]["rule"], "many_accounts");
    assert_eq!(seen_a[0]["command"], format!("cadenas contain --from-ip {a}/32"));
    // SIGKILL, and a spray while it is down
    child.kill().expect("kill -9");
    let _ = child.wait();
    spray(b.clone(), "cli-watch-b").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let once = |config: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
            .args(["--config", config, "--json", "watch", "--once"])
            .output()
            .expect("watch --once");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let restarted = once(&config);
    assert!(
        restarted.contains(&format!("\"ip\":\"{b}\"")),
        "written while it was down: {restarted}"
    );
    assert!(
        !restarted.contains(&format!("\"ip\":\"{a}\"")),
        "already alerted: {restarted}"
    );
    let again = once(&config);
    assert!(
        !again.contains(&format!("\"ip\":\"{a}\"")) && !again.contains(&format!("\"ip\":\"{b}\"")),
        "{again}"
    );
    // each alert journaled once, under its own identifier
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", &config, "--json", "journal", "show"])
        .output()
        .expect("journal show");
    assert!(out.status.success(), "{}", text(&out));
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    for ip in [&a, &b] {
        let mine: Vec<&serde_json::Value> = records
            .iter()
            .filter(|r| r["event"] == "alert" && r["alert"]["ip"] == ip.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{records:#?}");
        assert_eq!(mine[0]["incident"], mine[0]["alert"]["id"]);
    }
    // the replay of the log finds both, from a state of its own
    let out = Command::new(env!("CARGO_BIN_EXE_cadenas"))
        .args(["--config", &config, "watch", "--replay", &log, "--since", "1h"])
        .output()
        .expect("replay");
    assert!(out.status.success(), "{}", text(&out));
    let replayed = String::from_utf8_lossy(&out.stdout);
    assert!(replayed.contains(&a) && replayed.contains(&b), "{replayed}");
    let _ = std::fs::remove_dir_all(&dir);
}
