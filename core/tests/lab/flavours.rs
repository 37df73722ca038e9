//! One suite, two flavours: every behaviour meant to be the same runs against the lab's real
//! OpenLDAP and the lab's real Samba AD DC, acting as each lab's least-privilege account.

use cadenas::directory::{Action, BindOutcome, ChangeOutcome, Directory, Dn, LockState, UserRef};
use cadenas::{ErrorKind, Password};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope};

use crate::support::{AdLab, AnyLab, OpenLdapLab};

macro_rules! both_flavours {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn openldap() {
                    super::$name(crate::support::AnyLab::OpenLdap(super::OpenLdapLab::load())).await
                }
                #[tokio::test]
                async fn active_directory() {
                    super::$name(crate::support::AnyLab::Ad(super::AdLab::load())).await
                }
            }
        )*
    };
}

both_flavours!(
    reset_refuses_the_old_password_at_once_and_the_new_one_must_change,
    lock_refuses_the_right_password_and_unlock_and_restore_bring_it_back,
    require_mfa_is_idempotent_both_ways,
    add_to_mfa_group_many_adds_in_one_modify_and_each_account_keeps_its_own_outcome,
    plaintext_is_refused_and_starttls_works,
    injection_shaped_names_and_out_of_scope_dns_are_refused,
    non_ascii_passwords_give_an_account_the_user_can_log_in_to,
    already_bound_ldap_connections_survive_containment,
    users_are_found_by_every_lookup_attribute,
);

async fn connect(lab: &AnyLab) -> Directory {
    Directory::connect(&lab.config().directory)
        .await
        .expect("connect as the least-privilege account")
}

async fn reset_refuses_the_old_password_at_once_and_the_new_one_must_change(lab: AnyLab) {
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("reset").await;
    let u = dir.find_user(&UserRef::Name(name)).await.expect("find");
    assert_eq!(
        dir.check_password(&dn, &lab.user_password()).await.expect("bind"),
        BindOutcome::Success
    );
    let new = lab.config().password.generate().expect("generate");
    let c = dir.reset_password(&u, &new, true).await.expect("reset");
    assert_eq!(
        (c.action, c.outcome),
        (Action::ResetPassword, ChangeOutcome::Applied)
    );
    // AD: without pwdLastSet: 0 in the same modify, Samba would still accept the old one here.
    assert_eq!(
        dir.check_password(&dn, &lab.user_password()).await.expect("bind"),
        BindOutcome::InvalidCredentials
    );
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange
    );
    assert!(dir.account_state(&u).await.expect("state").must_change);
    assert_eq!(
        dir.force_change(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );
}

async fn lock_refuses_the_right_password_and_unlock_and_restore_bring_it_back(lab: AnyLab) {
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("lock").await;
    let u = dir.find_user(&UserRef::Name(name)).await.expect("find");
    let pw = lab.user_password();
    let lock = dir.lock(&u).await.expect("lock");
    assert_eq!(lock.outcome, ChangeOutcome::Applied);
    let refused = dir.check_password(&dn, &pw).await.expect("bind");
    assert!(
        matches!(refused, BindOutcome::Locked | BindOutcome::Disabled),
        "{refused:?}"
    );
    assert_eq!(
        dir.account_state(&u).await.expect("state").lock,
        LockState::Locked
    );
    assert_eq!(
        dir.lock(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );

    assert_eq!(
        dir.unlock(&u).await.expect("unlock").outcome,
        ChangeOutcome::Applied
    );
    assert_eq!(
        dir.check_password(&dn, &pw).await.expect("bind"),
        BindOutcome::Success
    );
    assert_eq!(
        dir.unlock(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );

    // restore_flags puts back exactly what lock() recorded.
    dir.lock(&u).await.expect("lock again");
    let r = dir.restore_flags(&u, &lock.before).await.expect("restore");
    assert_eq!(r.outcome, ChangeOutcome::Applied);
    for (attr, value) in &lock.before {
        assert_eq!(r.after.get(attr), Some(value), "{attr} restored exactly");
    }
    assert_eq!(
        dir.restore_flags(&u, &lock.before).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );
    assert_eq!(
        dir.check_password(&dn, &pw).await.expect("bind"),
        BindOutcome::Success
    );
}

async fn add_to_mfa_group_many_adds_in_one_modify_and_each_account_keeps_its_own_outcome(lab: AnyLab) {
    let dir = connect(&lab).await;
    let group = Dn::parse(&lab.mfa_group()).expect("dn");
    let mut users = Vec::new();
    for i in 0..5 {
        let (name, _) = lab.fresh_user(&format!("mfab{i}")).await;
        users.push(dir.find_user(&UserRef::Name(name)).await.expect("find"));
    }
    let (first, rest) = users.split_at(3);
    // all new: one modify for all three
    let sent = dir.operations();
    let results = dir.add_to_mfa_group_many(first).await;
    assert_eq!(dir.operations() - sent, 1, "one modify for the batch");
    for (u, r) in first.iter().zip(&results) {
        let c = r.as_ref().expect("added");
        assert_eq!(
            (c.action, c.outcome),
            (Action::RequireMfa, ChangeOutcome::Applied)
        );
        assert_eq!(c.before.get("memberOf"), Some(&vec![]));
        assert!(dir.is_member(&group, &u.dn).await.expect("member"), "{}", u.dn);
    }
    // two members already: the server refuses the batch as a whole, so each is sent alone
    // and keeps its own outcome
    let mixed = vec![
        rest[0].clone(),
        first[1].clone(),
        rest[1].clone(),
        first[2].clone(),
    ];
    let sent = dir.operations();
    let results = dir.add_to_mfa_group_many(&mixed).await;
    assert_eq!(
        dir.operations() - sent,
        1 + 4,
        "the refused batch, then each alone"
    );
    let outcomes: Vec<ChangeOutcome> = results
        .iter()
        .map(|r| r.as_ref().expect("each").outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ChangeOutcome::Applied,
            ChangeOutcome::AlreadyInPlace,
            ChangeOutcome::Applied,
            ChangeOutcome::AlreadyInPlace
        ]
    );
    for u in &users {
        assert!(dir.is_member(&group, &u.dn).await.expect("member"), "{}", u.dn);
        dir.remove_from_mfa_group(u).await.expect("clear");
    }
}

async fn require_mfa_is_idempotent_both_ways(lab: AnyLab) {
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("mfa").await;
    let u = dir.find_user(&UserRef::Name(name)).await.expect("find");
    assert_eq!(
        dir.add_to_mfa_group(&u).await.expect("require").outcome,
        ChangeOutcome::Applied
    );
    assert_eq!(
        dir.add_to_mfa_group(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );
    assert!(dir
        .is_member(&Dn::parse(&lab.mfa_group()).expect("dn"), &dn)
        .await
        .expect("member"));
    assert_eq!(
        dir.account_state(&u).await.expect("state").mfa_required,
        Some(true)
    );
    assert_eq!(
        dir.remove_from_mfa_group(&u).await.expect("clear").outcome,
        ChangeOutcome::Applied
    );
    assert_eq!(
        dir.remove_from_mfa_group(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );
    assert!(!dir
        .is_member(&Dn::parse(&lab.mfa_group()).expect("dn"), &dn)
        .await
        .expect("member"));
}

async fn plaintext_is_refused_and_starttls_works(lab: AnyLab) {
    let (ldaps, ldap) = lab.urls();
    let plain = lab.config_with(|t| t.replace(&ldaps, &ldap));
    let e = Directory::connect(&plain.directory).await.expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::InsecureTransport, "{e}");

    let starttls = lab.config_with(|t| {
        t.replace(
            &format!("url = \"{ldaps}\""),
            &format!("url = \"{ldap}\"\nstarttls = true"),
        )
    });
    let dir = Directory::connect(&starttls.directory).await.expect("starttls");
    let (name, dn) = lab.fresh_user("stls").await;
    let u = dir.find_user(&UserRef::Name(name)).await.expect("find");
    let new = Password::new("StartTLS-Passw0rd-9x");
    dir.reset_password(&u, &new, true)
        .await
        .expect("reset over StartTLS");
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange
    );
}

async fn injection_shaped_names_and_out_of_scope_dns_are_refused(lab: AnyLab) {
    let dir = connect(&lab).await;
    for s in [
        "*",
        ")(uid=*",
        "*)(|(sAMAccountName=*",
        "a\\2a",
        "x\0",
        "CN=Administrator,CN=Users,DC=example,DC=test",
    ] {
        assert_eq!(
            UserRef::parse(s).expect_err(s).kind(),
            ErrorKind::InvalidUserName,
            "{s:?}"
        );
    }
    let service = lab.config().directory.bind_dn.clone();
    assert_eq!(
        dir.find_user(&UserRef::Dn(service))
            .await
            .expect_err("scope")
            .kind(),
        ErrorKind::OutOfScope
    );
    let e = dir
        .find_user(&UserRef::parse("Administrator").expect("name"))
        .await
        .expect_err("outside");
    assert_eq!(e.kind(), ErrorKind::UserNotFound, "{e}");
}

async fn non_ascii_passwords_give_an_account_the_user_can_log_in_to(lab: AnyLab) {
    let dir = connect(&lab).await;
    for (i, pw) in ["Élodie-ñandú-€uro-ß1", "Паролъ-日本語-🔒-Aa1"]
        .into_iter()
        .enumerate()
    {
        let (name, dn) = lab.fresh_user(&format!("utf{i}")).await;
        let u = dir.find_user(&UserRef::Name(name)).await.expect("find");
        let new = Password::new(pw);
        dir.reset_password(&u, &new, false).await.expect("reset");
        assert_eq!(
            dir.check_password(&dn, &new).await.expect("bind"),
            BindOutcome::Success,
            "{pw}"
        );
    }
}

async fn already_bound_ldap_connections_survive_containment(lab: AnyLab) {
    // docs/FACTS.md: reported as "not revoked", never claimed revoked.
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("bound").await;
    let tls = crate::support::tls_config(&lab.ca());
    let (conn, mut attacker) =
        LdapConnAsync::with_settings(LdapConnSettings::new().set_config(tls), &lab.urls().0)
            .await
            .expect("connect");
    ldap3::drive!(conn);
    assert_eq!(
        attacker
            .simple_bind(dn.as_str(), lab.user_password().expose_secret())
            .await
            .expect("bind")
            .rc,
        0
    );
    let u = dir.find_user(&UserRef::Name(name)).await.expect("find");
    dir.lock(&u).await.expect("lock");
    dir.reset_password(&u, &Password::new("Contained-Passw0rd-7"), true)
        .await
        .expect("reset");
    // Not just "a search answered": on OpenLDAP anyone may read here, so ask the server who
    // the connection is (RFC 4532); Samba has no Who am I?, but refuses anonymous searches, so
    // a search answered there is one made as the user.
    if matches!(lab, AnyLab::Ad(_)) {
        let r = attacker
            .search(dn.as_str(), Scope::Base, "(objectClass=*)", vec!["cn"])
            .await
            .expect("search");
        assert_eq!(r.1.rc, 0, "the attacker's already-bound connection still works");
        let (conn, mut anonymous) = LdapConnAsync::with_settings(
            LdapConnSettings::new().set_config(crate::support::tls_config(&lab.ca())),
            &lab.urls().0,
        )
        .await
        .expect("connect");
        ldap3::drive!(conn);
        let anon = anonymous
            .search(dn.as_str(), Scope::Base, "(objectClass=*)", vec!["cn"])
            .await
            .expect("search");
        assert_ne!(
            anon.1.rc, 0,
            "an anonymous search is refused: the check above proves the bind"
        );
    } else {
        let (exop, res) = attacker
            .extended(ldap3::exop::WhoAmI)
            .await
            .expect("whoami")
            .success()
            .expect("whoami ok");
        let authzid = exop
            .parse::<ldap3::exop::WhoAmIResp>()
            .authzid
            .to_ascii_lowercase();
        assert_eq!(res.rc, 0);
        assert!(
            authzid.contains(&dn.as_str().to_ascii_lowercase()),
            "the attacker's already-bound connection is still the user's: {authzid}"
        );
    }
}

async fn users_are_found_by_every_lookup_attribute(lab: AnyLab) {
    let dir = connect(&lab).await;
    let (name, dn) = lab.fresh_user("find").await;
    let mail = format!("{name}@example.test");
    for key in [name.as_str().to_owned(), mail, format!("dn:{dn}")] {
        let u = dir
            .find_user(&UserRef::parse(&key).expect("ref"))
            .await
            .expect(&key);
        assert!(u.dn.same_entry(&dn), "{key}");
    }
    assert_eq!(
        dir.login_name(&dir.find_user(&UserRef::Dn(dn.clone())).await.expect("u"))
            .await
            .expect("login"),
        name.as_str()
    );
}
