//! The containment primitives against the lab's real OpenLDAP (`lab/openldap.sh start`),
//! acting as the least-privilege service account. Each test makes its own users.

use crate::support::{CapturedLogs, OpenLdapLab};
use cadenas::directory::PasswordHashing;
use cadenas::directory::{Action, BindOutcome, ChangeOutcome, Directory, Dn, LockState, Transport, UserRef};
use cadenas::{ErrorKind, Password};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope};

async fn connect(lab: &OpenLdapLab) -> Directory {
    Directory::connect(&lab.config().directory)
        .await
        .expect("connect as the service account")
}

/// The entry's `userPassword` as the rootDN reads it, raw bytes (ldap3 files a value under
/// `attrs` when it happens to be valid UTF-8, under `bin_attrs` otherwise).
/// A `userPassword` value read back from OpenLDAP, cut at its first NUL byte: Debian 12's
/// argon2 module stores server-made hashes 105 bytes long, the 103-byte PHC string, a NUL and
/// one arbitrary byte (docs/FACTS.md).
fn up_to_nul(value: &[u8]) -> &[u8] {
    value.split(|&b| b == 0).next().unwrap_or(value)
}

async fn stored_password(lab: &OpenLdapLab, dn: &cadenas::directory::Dn) -> Vec<u8> {
    let mut admin = lab.admin().await;
    let (entries, _) = admin
        .search(dn.as_str(), Scope::Base, "(objectClass=*)", vec!["userPassword"])
        .await
        .expect("search")
        .success()
        .expect("read");
    let _ = admin.unbind().await;
    let mut entry = ldap3::SearchEntry::construct(entries.into_iter().next().expect("entry"));
    match entry.attrs.remove("userPassword") {
        Some(v) => v[0].clone().into_bytes(),
        None => entry.bin_attrs.remove("userPassword").expect("userPassword")[0].clone(),
    }
}

async fn user(dir: &Directory, name: &cadenas::directory::UserName) -> cadenas::directory::User {
    dir.find_user(&UserRef::Name(name.clone()))
        .await
        .expect("find user")
}

#[tokio::test]
async fn connects_over_ldaps_as_the_service_account_and_detects_openldap() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    assert_eq!(dir.flavour(), cadenas::directory::Flavour::OpenLdap);
    assert_eq!(dir.transport(), Transport::Ldaps);
}

#[tokio::test]
async fn reset_password_makes_the_old_one_fail_and_the_new_one_must_change() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("reset").await;
    let u = user(&dir, &name).await;
    assert_eq!(
        dir.check_password(&dn, &lab.user_password()).await.expect("bind"),
        BindOutcome::Success
    );

    let new = lab.config().password.generate().expect("generate");
    let change = dir.reset_password(&u, &new, true).await.expect("reset");
    assert_eq!(change.action, Action::ResetPassword);
    assert_eq!(change.outcome, ChangeOutcome::Applied);
    assert_eq!(change.after.get("pwdReset"), Some(&vec!["TRUE".to_owned()]));

    assert_eq!(
        dir.check_password(&dn, &lab.user_password()).await.expect("bind"),
        BindOutcome::InvalidCredentials
    );
    // The ppolicy "change after reset" control: the bind succeeds but the account is unusable.
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange
    );
    let state = dir.account_state(&u).await.expect("state");
    assert!(state.must_change);
    assert!(state.password_changed_at.is_some());
}

#[tokio::test]
async fn a_must_change_bind_succeeds_but_every_other_operation_fails_with_50() {
    // docs/FACTS.md (OpenLDAP): a successful bind is not proof of a usable account.
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("mustchange").await;
    let u = user(&dir, &name).await;
    let c = dir.force_change(&u).await.expect("force change");
    assert_eq!(c.outcome, ChangeOutcome::Applied);
    assert_eq!(
        dir.force_change(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );

    let tls = crate::support::tls_config(lab.get("CADENAS_LAB_CA"));
    let (conn, mut ldap) = LdapConnAsync::with_settings(
        LdapConnSettings::new().set_config(tls),
        lab.get("CADENAS_LAB_LDAPS_URL"),
    )
    .await
    .expect("connect");
    ldap3::drive!(conn);
    let bind = ldap
        .simple_bind(dn.as_str(), lab.get("CADENAS_LAB_USER_PW"))
        .await
        .expect("bind");
    assert_eq!(bind.rc, 0, "the bind itself succeeds");
    let search = ldap
        .search(dn.as_str(), Scope::Base, "(objectClass=*)", vec!["uid"])
        .await
        .expect("search");
    assert_eq!(
        search.1.rc, 50,
        "but a search is refused until the password is changed"
    );

    // The rightful user changes the password themself (RFC 3062 with the old one): usable again.
    let own = ldap3::exop::PasswordModify {
        user_id: None,
        old_pass: Some(lab.get("CADENAS_LAB_USER_PW")),
        new_pass: Some("Own-choice-Passw0rd-2"),
    };
    assert_eq!(ldap.extended(own).await.expect("self change").1.rc, 0);
    let _ = ldap.unbind().await;
    assert_eq!(
        dir.check_password(&dn, &Password::new("Own-choice-Passw0rd-2"))
            .await
            .expect("bind"),
        BindOutcome::Success
    );
    assert!(!dir.account_state(&u).await.expect("state").must_change);
}

#[tokio::test]
async fn reset_without_force_change_leaves_no_pwdreset_even_though_the_policy_adds_one() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("noforce").await;
    let u = user(&dir, &name).await;
    let new = Password::new("Given-Passw0rd-by-helpdesk");
    let c = dir.reset_password(&u, &new, false).await.expect("reset");
    assert_eq!(c.after.get("pwdReset"), Some(&vec![]));
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::Success
    );
}

#[tokio::test]
async fn client_side_argon2_hashes_bind_and_non_ascii_passwords_work() {
    let lab = OpenLdapLab::load();
    let cfg =
        lab.config_with(|t| t.replace("[password]", "password_hashing = \"client-argon2\"\n\n[password]"));
    assert_eq!(cfg.directory.password_hashing, PasswordHashing::ClientArgon2);
    let dir = Directory::connect(&cfg.directory).await.expect("connect");
    for (i, pw) in ["Pässwörd-€-ß-日本-🔒", "plain-ascii-Passw0rd"]
        .into_iter()
        .enumerate()
    {
        let (name, dn) = lab.fresh_user(&format!("argon{i}")).await;
        let u = user(&dir, &name).await;
        let new = Password::new(pw);
        dir.reset_password(&u, &new, true).await.expect("reset");
        assert_eq!(
            dir.check_password(&dn, &new).await.expect("bind"),
            BindOutcome::MustChange,
            "{pw}"
        );
        assert_eq!(
            dir.check_password(&dn, &Password::new(format!("{pw}x")))
                .await
                .expect("bind"),
            BindOutcome::InvalidCredentials
        );
        // stored as a hash, not as cleartext: neither the stored value nor its PHC part binds
        let raw = stored_password(&lab, &dn).await;
        let stored = String::from_utf8_lossy(up_to_nul(&raw)).into_owned();
        assert!(stored.starts_with("{ARGON2}$argon2id$"), "{stored:.20}");
        for candidate in [stored.clone(), stored["{ARGON2}".len()..].to_owned()] {
            assert_eq!(
                dir.check_password(&dn, &Password::new(candidate))
                    .await
                    .expect("bind"),
                BindOutcome::InvalidCredentials,
                "the hash text is not a password"
            );
        }
    }
    // And through the server's own hashing (RFC 3062), the same non-ASCII password binds.
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("utf8-server").await;
    let new = Password::new("Élodie-ñandú-€uro-日本");
    dir.reset_password(&user(&dir, &name).await, &new, true)
        .await
        .expect("reset");
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange
    );
}

#[tokio::test]
async fn a_phc_string_without_the_argon2_prefix_is_stored_as_cleartext_and_no_password_works() {
    // docs/FACTS.md (OpenLDAP): the reason openldap_argon2_hash() always writes the {ARGON2} prefix.
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (_, dn) = lab.fresh_user("bare-phc").await;
    let pw = Password::new("Bare-Phc-Passw0rd");
    let hash = cadenas::password::openldap_argon2_hash(&pw).expect("hash");
    let bare = &hash.expose_secret()["{ARGON2}".len()..];
    lab.admin_replace(&dn, "userPassword", &[bare]).await;
    assert_eq!(
        dir.check_password(&dn, &pw).await.expect("bind"),
        BindOutcome::InvalidCredentials
    );
    lab.admin_replace(&dn, "userPassword", &[hash.expose_secret()])
        .await;
    assert_eq!(
        dir.check_password(&dn, &pw).await.expect("bind"),
        BindOutcome::MustChange
    );
}

#[tokio::test]
async fn server_made_argon2_hashes_carry_a_nul_and_a_junk_byte() {
    // docs/FACTS.md (OpenLDAP): stored 105 bytes long; cut at the first NUL when reading.
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("nul").await;
    dir.reset_password(&user(&dir, &name).await, &Password::new("Server-Hashed-1"), true)
        .await
        .expect("reset");
    let stored = stored_password(&lab, &dn).await;
    assert_eq!(stored.len(), 105);
    let trimmed = up_to_nul(&stored);
    assert_eq!(trimmed.len(), 103);
    assert!(trimmed.starts_with(b"{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$"));
}

#[tokio::test]
async fn lock_refuses_the_right_password_and_unlock_restores_it_idempotently() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("lock").await;
    let u = user(&dir, &name).await;
    let pw = lab.user_password();

    let c = dir.lock(&u).await.expect("lock");
    assert_eq!((c.action, c.outcome), (Action::Lock, ChangeOutcome::Applied));
    assert_eq!(c.before.get("pwdAccountLockedTime"), Some(&vec![]));
    assert_eq!(
        c.after.get("pwdAccountLockedTime"),
        Some(&vec!["000001010000Z".to_owned()])
    );
    assert_eq!(
        dir.check_password(&dn, &pw).await.expect("bind"),
        BindOutcome::Locked
    );
    assert_eq!(
        dir.account_state(&u).await.expect("state").lock,
        LockState::Locked
    );
    assert_eq!(
        dir.lock(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );

    let c = dir.unlock(&u).await.expect("unlock");
    assert_eq!(c.outcome, ChangeOutcome::Applied);
    assert_eq!(
        dir.check_password(&dn, &pw).await.expect("bind"),
        BindOutcome::Success
    );
    assert_eq!(
        dir.unlock(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );
    assert_eq!(
        dir.account_state(&u).await.expect("state").lock,
        LockState::Unlocked
    );
}

#[tokio::test]
async fn lock_is_refused_when_the_effective_policy_would_ignore_it() {
    // docs/FACTS.md (OpenLDAP): pwdAccountLockedTime only works with pwdLockout: TRUE.
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let no_lockout = format!("cn=no-lockout,ou=policies,{}", lab.get("CADENAS_LAB_SUFFIX"));
    let (name, dn) = lab
        .fresh_user_with("nolockout", &[("pwdPolicySubentry", &no_lockout)])
        .await;
    let u = user(&dir, &name).await;
    let e = dir.lock(&u).await.expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::LockIneffective, "{e}");
    assert_eq!(
        dir.account_state(&u).await.expect("state").lock,
        LockState::Unlocked,
        "nothing written"
    );

    // What the refusal protects against: written anyway, the lock is silently ignored.
    lab.admin_replace(&dn, "pwdAccountLockedTime", &[b"000001010000Z"])
        .await;
    assert_eq!(
        dir.check_password(&dn, &lab.user_password()).await.expect("bind"),
        BindOutcome::Success
    );
}

#[tokio::test]
async fn require_mfa_adds_group_membership_idempotently_and_clear_removes_it() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("mfa").await;
    let u = user(&dir, &name).await;
    let group = lab.get("CADENAS_LAB_MFA_GROUP");

    assert_eq!(
        dir.account_state(&u).await.expect("state").mfa_required,
        Some(false)
    );
    assert_eq!(
        dir.add_to_mfa_group(&u).await.expect("require").outcome,
        ChangeOutcome::Applied
    );
    assert!(dir
        .is_member(&Dn::parse(group).expect("dn"), &dn)
        .await
        .expect("member"));
    assert_eq!(
        dir.add_to_mfa_group(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );
    assert_eq!(
        dir.account_state(&u).await.expect("state").mfa_required,
        Some(true)
    );

    // Seen from outside Cadenas: the group entry really lists the user.
    let mut admin = lab.admin().await;
    let filter = format!("(member={})", ldap3::ldap_escape(dn.as_str()));
    let (found, _) = admin
        .search(group, Scope::Base, &filter, vec!["1.1"])
        .await
        .expect("s")
        .success()
        .expect("ok");
    assert_eq!(found.len(), 1);

    assert_eq!(
        dir.remove_from_mfa_group(&u).await.expect("clear").outcome,
        ChangeOutcome::Applied
    );
    assert_eq!(
        dir.remove_from_mfa_group(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );
    assert!(!dir
        .is_member(&Dn::parse(group).expect("dn"), &dn)
        .await
        .expect("member"));
}

#[tokio::test]
async fn plaintext_ldap_is_refused_for_passwords_unless_explicitly_allowed() {
    let lab = OpenLdapLab::load();
    let plain = lab.config_with(|t| t.replace("ldaps://127.0.0.1:6360", "ldap://127.0.0.1:3890"));
    let e = Directory::connect(&plain.directory).await.expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::InsecureTransport, "{e}");
    assert_eq!(e.code(), 204);

    let opted_in = lab.config_with(|t| {
        t.replace("ldaps://127.0.0.1:6360", "ldap://127.0.0.1:3890")
            .replace("[password]", "allow_plaintext_passwords = true\n\n[password]")
    });
    let dir = Directory::connect(&opted_in.directory)
        .await
        .expect("explicit opt-in");
    assert_eq!(dir.transport(), Transport::Plain);
    let (name, dn) = lab.fresh_user("plain").await;
    let new = Password::new("Over-Plain-Opted-In-1");
    dir.reset_password(&user(&dir, &name).await, &new, true)
        .await
        .expect("reset with opt-in");
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange
    );
}

#[tokio::test]
async fn starttls_works_and_an_unknown_ca_is_a_tls_error() {
    let lab = OpenLdapLab::load();
    let starttls = lab.config_with(|t| {
        t.replace(
            "url = \"ldaps://127.0.0.1:6360\"",
            "url = \"ldap://127.0.0.1:3890\"\nstarttls = true",
        )
    });
    let dir = Directory::connect(&starttls.directory).await.expect("starttls");
    assert_eq!(dir.transport(), Transport::StartTls);
    let (name, dn) = lab.fresh_user("starttls").await;
    let new = Password::new("Over-StartTLS-Passw0rd");
    dir.reset_password(&user(&dir, &name).await, &new, true)
        .await
        .expect("reset");
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange
    );

    // A CA that did not sign the server's certificate.
    let other_ca = crate::support::untrusted_ca("ldap");
    let ca = lab.get("CADENAS_LAB_CA").to_owned();
    let wrong = lab.config_with(|t| t.replace(&ca, other_ca.to_str().expect("utf8")));
    let e = Directory::connect(&wrong.directory).await.expect_err("untrusted");
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    let _ = std::fs::remove_file(other_ca);
}

#[tokio::test]
async fn a_wrong_service_password_is_a_service_bind_error() {
    let lab = OpenLdapLab::load();
    let mut cfg = lab.config();
    std::env::set_var("CADENAS_TEST_WRONG_PW", "not-the-password");
    cfg.directory.bind_password_file = None;
    cfg.directory.bind_password_env = Some("CADENAS_TEST_WRONG_PW".into());
    let e = Directory::connect(&cfg.directory).await.expect_err("bad bind");
    assert_eq!(e.kind(), ErrorKind::ServiceBind);
    assert_eq!(e.ldap().map(|l| l.rc), Some(49));
    assert!(!e.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn injection_shaped_user_names_touch_nothing_and_give_clear_errors() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (_, victim_dn) = lab.fresh_user("inject").await;
    for s in [
        "*",
        ")(uid=*",
        "*)(|(uid=*",
        "user0001)(uid=*",
        "a\\2a",
        "nul\0",
        "uid=user0001,ou=people,dc=example,dc=test",
    ] {
        let e = UserRef::parse(s).expect_err(s);
        assert_eq!(e.kind(), ErrorKind::InvalidUserName, "{s:?}: {e}");
    }
    // DNs are accepted only explicitly, and only inside the configured base DNs.
    let outsider = UserRef::parse(&format!(
        "dn:uid=outsider,ou=elsewhere,{}",
        lab.get("CADENAS_LAB_SUFFIX")
    ))
    .expect("dn");
    assert_eq!(
        dir.find_user(&outsider).await.expect_err("scope").kind(),
        ErrorKind::OutOfScope
    );
    let service = UserRef::Dn(Dn::parse(lab.get("CADENAS_LAB_RESPONDER_DN")).expect("dn"));
    assert_eq!(
        dir.find_user(&service).await.expect_err("scope").kind(),
        ErrorKind::OutOfScope
    );
    // A user outside the base DNs cannot be found by name either.
    let e = dir
        .find_user(&UserRef::parse("outsider").expect("name"))
        .await
        .expect_err("not under base");
    assert_eq!(e.kind(), ErrorKind::UserNotFound);
    // The victim a wildcard would have matched is untouched.
    let u = dir
        .find_user(&UserRef::Dn(victim_dn))
        .await
        .expect("explicit dn in scope");
    let state = dir.account_state(&u).await.expect("state");
    assert_eq!((state.lock, state.must_change), (LockState::Unlocked, false));
}

#[tokio::test]
async fn users_are_found_by_uid_mail_or_dn_and_ambiguity_is_an_error() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("find").await;
    let by_uid = dir.find_user(&UserRef::Name(name.clone())).await.expect("uid");
    let by_mail = dir
        .find_user(&UserRef::parse(&format!("{name}@example.test")).expect("mail"))
        .await
        .expect("mail");
    let by_dn = dir.find_user(&UserRef::Dn(dn.clone())).await.expect("dn");
    assert!(by_uid.dn.same_entry(&dn) && by_mail.dn.same_entry(&dn) && by_dn.dn.same_entry(&dn));

    let e = dir
        .find_user(&UserRef::parse("no-such-user-anywhere").expect("name"))
        .await
        .expect_err("missing");
    assert_eq!(e.kind(), ErrorKind::UserNotFound);

    let shared = format!("shared-{}@example.test", std::process::id());
    lab.fresh_user_with("dup-a", &[("mail", &shared)]).await;
    lab.fresh_user_with("dup-b", &[("mail", &shared)]).await;
    let e = dir
        .find_user(&UserRef::parse(&shared).expect("mail"))
        .await
        .expect_err("ambiguous");
    assert_eq!(e.kind(), ErrorKind::AmbiguousUser, "{e}");
}

/// `find_users` against `find_user` name by name: the same entry or the same error.
async fn same_as_one_by_one(
    dir: &Directory,
    names: &[String],
) -> Vec<Result<cadenas::directory::User, cadenas::Error>> {
    let refs: Vec<UserRef> = names.iter().map(|n| UserRef::parse(n).expect("name")).collect();
    let together = dir.find_users(&refs).await;
    assert_eq!(together.len(), names.len());
    for (r, got) in refs.iter().zip(&together) {
        match (dir.find_user(r).await, got) {
            (Ok(alone), Ok(got)) => assert!(alone.dn.same_entry(&got.dn), "{r}: {} vs {}", alone.dn, got.dn),
            (Err(alone), Err(got)) => {
                assert_eq!(
                    (alone.kind(), alone.message()),
                    (got.kind(), got.message()),
                    "{r}"
                )
            }
            (alone, got) => panic!("{r}: alone {alone:?}, together {got:?}"),
        }
    }
    together
}

#[tokio::test]
async fn find_users_gives_each_name_what_find_user_gives_and_looks_up_plain_names_together() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let pid = std::process::id();
    let (a, a_dn) = lab.fresh_user("batch-a").await;
    let (b, _) = lab.fresh_user("batch-b").await;
    let (d, d_dn) = lab.fresh_user("batch-d").await;

    // plain names, each with one entry: one search for all of them (a name in other case
    // than its uid is the same name to slapd's caseIgnoreMatch)
    let sent = dir.operations();
    let found = same_as_one_by_one(
        &dir,
        &[a.to_string(), b.to_string(), d.to_string().to_uppercase()],
    )
    .await;
    assert!(found[2].as_ref().expect("upper case").dn.same_entry(&d_dn));
    // the three-name search, then the three single finds of the comparison
    assert_eq!(dir.operations() - sent, 1 + 3, "one search for the three names");

    // a name with no entry and one with two: the batch answers the others, these two are
    // looked up alone (the same errors, from the same search as find_user's)
    let shared = format!("shared-batch-{pid}@example.test");
    lab.fresh_user_with("batch-e1", &[("mail", &shared)]).await;
    lab.fresh_user_with("batch-e2", &[("mail", &shared)]).await;
    let missing = format!("no-such-user-batch-{pid}");
    let sent = dir.operations();
    let found = same_as_one_by_one(&dir, &[a.to_string(), missing.clone(), shared.clone()]).await;
    assert_eq!(dir.operations() - sent, (1 + 2) + 3);
    assert_eq!(
        found[1].as_ref().expect_err("missing").kind(),
        ErrorKind::UserNotFound
    );
    assert_eq!(
        found[2].as_ref().expect_err("shared").kind(),
        ErrorKind::AmbiguousUser
    );

    // an entry whose mail is another name of the batch matches two names: nothing is decided
    // from that search, every name is looked up alone (g is ambiguous: its own entry by uid,
    // f's by mail)
    let (g, _) = lab.fresh_user("batch-g").await;
    let (f, _) = lab.fresh_user_with("batch-f", &[("mail", g.as_str())]).await;
    let sent = dir.operations();
    let found = same_as_one_by_one(&dir, &[f.to_string(), g.to_string()]).await;
    assert_eq!(dir.operations() - sent, (1 + 2) + 2);
    assert!(found[0].is_ok());
    assert_eq!(found[1].as_ref().expect_err("g").kind(), ErrorKind::AmbiguousUser);

    // slapd folds a full-width uid onto a plain name (Unicode compatibility normalisation):
    // h's second uid, b's name in full-width letters, makes b ambiguous — the batch cannot
    // see that, so an entry with a value that is not plain ASCII decides nothing
    let (h, h_dn) = lab.fresh_user("batch-h").await;
    let wide: String = b
        .as_str()
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).expect("wide"))
        .collect();
    lab.admin_replace(&h_dn, "uid", &[h.as_str().as_bytes(), wide.as_bytes()])
        .await;
    let sent = dir.operations();
    let found = same_as_one_by_one(&dir, &[b.to_string(), h.to_string()]).await;
    assert_eq!(dir.operations() - sent, (1 + 2) + 2);
    assert_eq!(found[0].as_ref().expect_err("b").kind(), ErrorKind::AmbiguousUser);
    assert!(found[1].as_ref().expect("h").dn.same_entry(&h_dn));

    // DNs and names that are not plain ASCII are looked up alone; a DN outside the base DNs is
    // refused as find_user refuses it
    // (mail's syntax is ASCII only)
    let (e, _) = lab
        .fresh_user_with("batch-élo", &[("mail", &format!("elo-batch-{pid}@example.test"))])
        .await;
    let sent = dir.operations();
    let found = same_as_one_by_one(
        &dir,
        &[
            format!("dn:{a_dn}"),
            e.to_string(),
            "dn:uid=x,ou=elsewhere,dc=other,dc=test".to_owned(),
        ],
    )
    .await;
    assert_eq!(dir.operations() - sent, 2 + 2);
    assert_eq!(
        found[2].as_ref().expect_err("out of scope").kind(),
        ErrorKind::OutOfScope
    );
}

#[tokio::test]
async fn protected_group_membership_shows_in_the_account_state() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let admin = dir
        .find_user(&UserRef::parse("admin0001").expect("name"))
        .await
        .expect("admin0001");
    let state = dir.account_state(&admin).await.expect("state");
    assert_eq!(
        state.protected_groups,
        vec![lab.get("CADENAS_LAB_ADMINS_GROUP").to_owned()]
    );
}

#[tokio::test]
async fn empty_passwords_are_refused_before_anything_is_sent() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("empty").await;
    let u = user(&dir, &name).await;
    let empty = Password::new("");
    assert_eq!(
        dir.reset_password(&u, &empty, true)
            .await
            .expect_err("empty")
            .kind(),
        ErrorKind::InvalidInput
    );
    // An empty simple-bind password is an anonymous bind that "succeeds": never report it as a login.
    assert_eq!(
        dir.check_password(&dn, &empty).await.expect_err("empty").kind(),
        ErrorKind::InvalidInput
    );
    assert!(!dir.account_state(&u).await.expect("state").must_change);
}

#[tokio::test]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let lab = OpenLdapLab::load();
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    tracing::trace!("capture is live");

    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("logs").await;
    let u = user(&dir, &name).await;
    let new = lab.config().password.generate().expect("generate");
    dir.lock(&u).await.expect("lock");
    dir.reset_password(&u, &new, true).await.expect("reset");
    dir.add_to_mfa_group(&u).await.expect("mfa");
    dir.unlock(&u).await.expect("unlock");
    dir.check_password(&dn, &new).await.expect("bind");
    let _ = dir.check_password(&dn, &lab.user_password()).await;

    let text = logs.text();
    assert!(text.contains("capture is live"), "the capture works");
    let service_pw = std::fs::read_to_string(lab.get("CADENAS_LAB_RESPONDER_PW_FILE")).expect("pw");
    for secret in [
        new.expose_secret(),
        lab.get("CADENAS_LAB_USER_PW"),
        service_pw.trim(),
    ] {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
}

#[tokio::test]
async fn an_admin_password_set_clears_the_lock_so_reset_carries_it_through() {
    // Found on this lab (slapd 2.5 ppolicy): an administrator's password set deletes
    // pwdAccountLockedTime. Without care, lock → reset would silently unlock the account.
    let lab = OpenLdapLab::load();
    let (_, dn) = lab.fresh_user("relock-fact").await;
    lab.admin_replace(&dn, "pwdAccountLockedTime", &[b"000001010000Z"])
        .await;
    lab.admin_replace(&dn, "userPassword", &[b"Admin-Set-Passw0rd"])
        .await;
    let dir = connect(&lab).await;
    assert_eq!(
        dir.check_password(&dn, &Password::new("Admin-Set-Passw0rd"))
            .await
            .expect("bind"),
        BindOutcome::MustChange,
        "the server dropped the lock"
    );
    // ... but a lock the same modify writes along with the password survives, whether the
    // responder (a password administrator) or the rootDN sends it (the README once said
    // otherwise; this test found it wrong) ...
    let (_, dn_r) = lab.fresh_user("relock-same-modify-responder").await;
    let ldif = format!(
        "dn: {dn_r}\nchangetype: modify\nreplace: userPassword\nuserPassword: Same-Modify-Passw0rd\n-\n\
         replace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    );
    let pw = std::fs::read_to_string(lab.get("CADENAS_LAB_RESPONDER_PW_FILE")).expect("pw");
    let mut child = std::process::Command::new("ldapmodify")
        .args([
            "-x",
            "-H",
            lab.get("CADENAS_LAB_LDAPS_URL"),
            "-D",
            lab.get("CADENAS_LAB_RESPONDER_DN"),
        ])
        .args(["-w", pw.trim()])
        .env("LDAPTLS_CACERT", lab.get("CADENAS_LAB_CA"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ldapmodify");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), ldif.as_bytes()).expect("write");
    assert!(
        child.wait().expect("wait").success(),
        "ldapmodify as the responder"
    );
    assert_eq!(
        dir.check_password(&dn_r, &Password::new("Same-Modify-Passw0rd"))
            .await
            .expect("bind"),
        BindOutcome::Locked,
        "the responder's same-modify lock survives"
    );
    // ... and the rootDN's too.
    let (_, dn) = lab.fresh_user("relock-same-modify").await;
    let mut admin = lab.admin().await;
    admin
        .modify(
            dn.as_str(),
            vec![
                ldap3::Mod::Replace(
                    "userPassword",
                    std::collections::HashSet::from(["Same-Modify-Passw0rd"]),
                ),
                ldap3::Mod::Replace(
                    "pwdAccountLockedTime",
                    std::collections::HashSet::from(["000001010000Z"]),
                ),
            ],
        )
        .await
        .expect("modify")
        .success()
        .expect("modify ok");
    let _ = admin.unbind().await;
    assert_eq!(
        dir.check_password(&dn, &Password::new("Same-Modify-Passw0rd"))
            .await
            .expect("bind"),
        BindOutcome::Locked,
        "a lock the rootDN writes in the same modify as the password survives it"
    );

    for hashing in ["server", "client-argon2"] {
        let cfg = lab.config_with(|t| {
            t.replace(
                "[password]",
                &format!("password_hashing = \"{hashing}\"\n\n[password]"),
            )
        });
        let dir = Directory::connect(&cfg.directory).await.expect("connect");
        let (name, dn) = lab.fresh_user(&format!("relock-{hashing}")).await;
        let u = user(&dir, &name).await;
        dir.lock(&u).await.expect("lock");
        let new = Password::new("After-Lock-Passw0rd");
        let c = dir.reset_password(&u, &new, true).await.expect("reset");
        assert_eq!(
            c.after.get("pwdAccountLockedTime"),
            Some(&vec!["000001010000Z".to_owned()]),
            "{hashing}"
        );
        assert_eq!(
            dir.check_password(&dn, &new).await.expect("bind"),
            BindOutcome::Locked,
            "{hashing}"
        );
        assert_eq!(
            dir.account_state(&u).await.expect("state").lock,
            LockState::Locked
        );
    }
}

#[tokio::test]
async fn ldaps_without_a_ca_file_uses_the_system_store_and_refuses_the_lab_certificate() {
    let lab = OpenLdapLab::load();
    let ca_line = format!("ca_file = \"{}\"", lab.get("CADENAS_LAB_CA"));
    let cfg = lab.config_with(|t| t.replace(&ca_line, ""));
    assert!(cfg.directory.ca_file.is_none());
    let e = Directory::connect(&cfg.directory)
        .await
        .expect_err("the lab CA is not a system CA");
    // Tls when the system store loaded (the lab certificate is not trusted by it); Config
    // when this machine's store is missing or broken — never an empty store, never success
    assert!(matches!(e.kind(), ErrorKind::Tls | ErrorKind::Config), "{e}");
}

/// Operations a lock costs: the policy check (once a minute per policy; the search that found
/// the user read its pwdPolicySubentry) and one modify whose Pre-Read and Post-Read controls
/// (RFC 4527, announced by slapd) return the entry before and after — no read first, no
/// read-back. The change still shows the server's own before and after states.
#[tokio::test]
async fn a_lock_is_two_operations_then_one_and_its_before_and_after_come_with_the_modify() {
    let lab = OpenLdapLab::load();
    let dir = connect(&lab).await;
    let (a, _) = lab.fresh_user("ops-a").await;
    let (b, _) = lab.fresh_user("ops-b").await;
    let (ua, ub) = (user(&dir, &a).await, user(&dir, &b).await);
    let before = dir.operations();
    let c = dir.lock(&ua).await.expect("lock");
    assert_eq!(
        dir.operations() - before,
        2,
        "policy, modify with pre-read and post-read"
    );
    assert_eq!(
        (c.outcome, c.before.get("pwdAccountLockedTime")),
        (ChangeOutcome::Applied, Some(&vec![]))
    );
    assert_eq!(
        c.after.get("pwdAccountLockedTime"),
        Some(&vec!["000001010000Z".to_owned()])
    );
    // an automatic lockout (a time, not the containment's value) is what the lock replaces:
    // the before says so, and release would put it back
    let lockout = "20261202101500Z";
    lab.admin_replace(&ub.dn, "pwdAccountLockedTime", &[lockout.as_bytes()])
        .await;
    let before = dir.operations();
    let c = dir.lock(&ub).await.expect("lock");
    assert_eq!(
        dir.operations() - before,
        1,
        "the policy was checked a moment ago"
    );
    assert_eq!(
        (c.outcome, c.before.get("pwdAccountLockedTime")),
        (ChangeOutcome::Applied, Some(&vec![lockout.to_owned()]))
    );
    let again = dir.lock(&ub).await.expect("again");
    assert_eq!(again.outcome, ChangeOutcome::AlreadyInPlace);
    assert_eq!(again.before, again.after);
    assert_eq!(
        dir.account_state(&ub).await.expect("state").lock,
        LockState::Locked
    );
}
