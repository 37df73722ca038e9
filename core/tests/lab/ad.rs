//! Active Directory specifics against the lab's real Samba AD DC (`lab/samba.sh start`),
//! acting as the delegated helpdesk account (not a Domain Admin).

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

use cadenas::directory::{BindOutcome, ChangeOutcome, Directory, Dn, Flavour, User, UserRef};
use cadenas::Password;
use ldap3::Mod;

use crate::support::AdLab;

async fn connect(lab: &AdLab) -> Directory {
    let cfg = cadenas::Config::from_file(&lab.config_path()).expect("config");
    Directory::connect(&cfg.directory)
        .await
        .expect("connect as helpdesk")
}

async fn user(dir: &Directory, dn: &Dn) -> User {
    dir.find_user(&UserRef::Dn(dn.clone())).await.expect("find")
}

fn uac(dir_state: &cadenas::directory::AccountState) -> String {
    dir_state.attributes["userAccountControl"][0].clone()
}

#[tokio::test]
async fn the_flavour_is_detected_and_the_account_is_a_delegated_non_admin() {
    let lab = AdLab::load();
    let dir = connect(&lab).await;
    assert_eq!(dir.flavour(), Flavour::ActiveDirectory);
    // Least privilege, seen from outside: the helpdesk may not write other attributes.
    let tls = crate::support::tls_config(lab.get("CADENAS_LAB_CA"));
    let (conn, mut helpdesk) = ldap3::LdapConnAsync::with_settings(
        ldap3::LdapConnSettings::new().set_config(tls),
        lab.get("CADENAS_LAB_AD_LDAPS_URL"),
    )
    .await
    .expect("connect");
    ldap3::drive!(conn);
    let pw = std::fs::read_to_string(lab.config_path().with_file_name("helpdesk.pw")).expect("pw");
    helpdesk
        .simple_bind(lab.get("CADENAS_LAB_AD_HELPDESK_DN"), pw.trim())
        .await
        .expect("bind")
        .success()
        .expect("ok");
    let (_, dn) = lab.fresh_user_uac("priv", 512).await;
    let r = helpdesk
        .modify(
            dn.as_str(),
            vec![Mod::Replace("description", HashSet::from(["x"]))],
        )
        .await
        .expect("modify");
    assert_eq!(r.rc, 50, "no write access beyond what the responder needs");
}

#[tokio::test]
async fn samba_keeps_the_old_password_valid_after_a_reset_without_pwdlastset_zero() {
    // docs/FACTS.md (AD): `old password allowed period` (60 min by default, kept in the lab).
    // This is why a containment reset always writes pwdLastSet: 0 in the same modify.
    let lab = AdLab::load();
    let dir = connect(&lab).await;
    let (_, dn) = lab.fresh_user_uac("oldpw", 512).await;
    let u = user(&dir, &dn).await;
    let old = Password::new(lab.get("CADENAS_LAB_AD_USER_PW"));
    let new = Password::new("Replacement-Passw0rd-1");
    dir.reset_password(&u, &new, false).await.expect("reset");
    assert_eq!(
        dir.check_password(&dn, &old).await.expect("bind"),
        BindOutcome::Success,
        "old still works"
    );
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::Success
    );

    let (_, dn) = lab.fresh_user_uac("oldpw2", 512).await;
    let u = user(&dir, &dn).await;
    dir.reset_password(&u, &new, true)
        .await
        .expect("reset + must change");
    assert_eq!(
        dir.check_password(&dn, &old).await.expect("bind"),
        BindOutcome::InvalidCredentials
    );
    assert_eq!(
        dir.check_password(&dn, &new).await.expect("bind"),
        BindOutcome::MustChange
    );
}

#[tokio::test]
async fn dont_expire_passwd_is_cleared_for_the_containment_and_restored_byte_for_byte() {
    let lab = AdLab::load();
    let dir = connect(&lab).await;
    let old = Password::new(lab.get("CADENAS_LAB_AD_USER_PW"));

    // docs/FACTS.md (AD): with DONT_EXPIRE_PASSWD, pwdLastSet: 0 alone has no effect.
    let (_, raw) = lab.fresh_user_uac("dontexp0", 66048).await;
    lab.admin_replace(&raw, "pwdLastSet", &[b"0"]).await;
    assert_eq!(
        dir.check_password(&raw, &old).await.expect("bind"),
        BindOutcome::Success,
        "must-change defeated"
    );

    let (_, dn) = lab.fresh_user_uac("dontexp", 66048).await;
    let u = user(&dir, &dn).await;
    let lock = dir.lock(&u).await.expect("lock");
    assert_eq!(lock.before["userAccountControl"], vec!["66048".to_owned()]);
    let new = Password::new("Contained-Passw0rd-3");
    let reset = dir.reset_password(&u, &new, true).await.expect("reset");
    assert_eq!(
        reset.after["userAccountControl"],
        vec!["514".to_owned()],
        "disabled, DONT_EXPIRE cleared"
    );
    assert_eq!(reset.after["pwdLastSet"], vec!["0".to_owned()]);
    // Release: the exact original flags come back.
    let r = dir.restore_flags(&u, &lock.before).await.expect("restore");
    assert_eq!(r.outcome, ChangeOutcome::Applied);
    assert_eq!(uac(&dir.account_state(&u).await.expect("state")), "66048");

    // force_change alone also clears it, and the bind then says 773.
    let (_, dn) = lab.fresh_user_uac("dontexp2", 66048).await;
    let u = user(&dir, &dn).await;
    let c = dir.force_change(&u).await.expect("force");
    assert_eq!(c.before["userAccountControl"], vec!["66048".to_owned()]);
    assert_eq!(
        dir.check_password(&dn, &old).await.expect("bind"),
        BindOutcome::MustChange
    );
}

#[tokio::test]
async fn the_lock_swaps_useraccountcontrol_and_samba_takes_a_swap_to_the_value_it_holds_as_a_no_op() {
    let lab = AdLab::load();
    let dir = connect(&lab).await;
    // read, then one modify swapping the value read for the locked one; what it reports
    // after is the value swapped in, which the server holds (no read back)
    let (_, dn) = lab.fresh_user_uac("swap1", 512).await;
    let u = user(&dir, &dn).await;
    let sent = dir.operations();
    let lock = dir.lock(&u).await.expect("lock");
    assert_eq!(dir.operations() - sent, 2, "a read and the modify: {lock:?}");
    assert_eq!(lock.outcome, ChangeOutcome::Applied);
    assert_eq!(lock.before["userAccountControl"], vec!["512".to_owned()]);
    assert_eq!(lock.after["userAccountControl"], vec!["514".to_owned()]);
    assert_eq!(uac(&dir.account_state(&u).await.expect("state")), "514");

    // docs/FACTS.md (AD): the delete-old/add-new swap is refused when the value is neither
    // (16, no such value) — but accepted, as a no-op, when the entry holds the new value
    // already: not a strict compare-and-swap, so a before-state is only as fresh as its read
    let swap = |old: &'static str, new: &'static str| {
        vec![
            Mod::Delete("userAccountControl", HashSet::from([old])),
            Mod::Add("userAccountControl", HashSet::from([new])),
        ]
    };
    let mut admin = lab.admin().await;
    let r = admin
        .modify(dn.as_str(), swap("66048", "66050"))
        .await
        .expect("modify");
    assert_eq!(r.rc, 16, "{r:?}");
    let r = admin
        .modify(dn.as_str(), swap("512", "514"))
        .await
        .expect("modify");
    assert_eq!(r.rc, 0, "taken although 512 is not the value: {r:?}");
    assert_eq!(uac(&dir.account_state(&u).await.expect("state")), "514");
}

#[tokio::test]
async fn bind_failures_map_to_typed_states_without_revealing_a_disabled_account() {
    let lab = AdLab::load();
    let dir = connect(&lab).await;
    let pw = Password::new(lab.get("CADENAS_LAB_AD_USER_PW"));
    let (_, dn) = lab.fresh_user_uac("binds", 512).await;
    let u = user(&dir, &dn).await;
    dir.lock(&u).await.expect("lock");
    assert_eq!(
        dir.check_password(&dn, &pw).await.expect("bind"),
        BindOutcome::Disabled,
        "533"
    );
    assert_eq!(
        dir.check_password(&dn, &Password::new("wrong-Passw0rd"))
            .await
            .expect("bind"),
        BindOutcome::InvalidCredentials,
        "52e: a wrong password does not learn that the account is disabled"
    );
    let (_, dn) = lab.fresh_user_uac("expired", 512).await;
    lab.admin_replace(&dn, "accountExpires", &[b"1"]).await;
    assert_eq!(
        dir.check_password(&dn, &pw).await.expect("bind"),
        BindOutcome::Expired,
        "701"
    );
}

#[tokio::test]
async fn group_edits_are_not_idempotent_on_ad_but_require_mfa_is() {
    // docs/FACTS.md (AD): adding a present member gives 68.
    let lab = AdLab::load();
    let dir = connect(&lab).await;
    let (_, dn) = lab.fresh_user_uac("grp", 512).await;
    let u = user(&dir, &dn).await;
    dir.add_to_mfa_group(&u).await.expect("require");
    let mut admin = lab.admin().await;
    let again = admin
        .modify(
            lab.get("CADENAS_LAB_AD_MFA_GROUP"),
            vec![Mod::Add("member", HashSet::from([dn.as_str()]))],
        )
        .await
        .expect("modify");
    assert_eq!(again.rc, 68);
    assert_eq!(
        dir.add_to_mfa_group(&u).await.expect("again").outcome,
        ChangeOutcome::AlreadyInPlace
    );
}

#[tokio::test]
async fn protected_accounts_show_their_protected_groups() {
    let lab = AdLab::load();
    let dir = connect(&lab).await;
    let admin = dir
        .find_user(&UserRef::parse("admin0001").expect("name"))
        .await
        .expect("admin0001");
    let state = dir.account_state(&admin).await.expect("state");
    assert_eq!(
        state.protected_groups,
        vec![format!(
            "CN=Domain Admins,CN=Users,{}",
            lab.get("CADENAS_LAB_AD_BASE")
        )]
    );
}

fn kinit(lab: &AdLab, principal: &str, password: &str, ccache: &str) -> bool {
    let mut c = Command::new("kinit")
        .arg(principal)
        .env("KRB5_CONFIG", lab.get("CADENAS_LAB_AD_KRB5_CONFIG"))
        .env("KRB5CCNAME", format!("FILE:{ccache}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kinit (krb5-user)");
    if let Some(mut s) = c.stdin.take() {
        let _ = writeln!(s, "{password}");
    }
    c.wait().expect("wait").success()
}

/// Asks the KDC for a ticket to `service` with the TGT in `ccache` (a service not yet in the
/// cache: a ticket already cached would be answered without the KDC).
fn kvno(lab: &AdLab, ccache: &str, service: &str) -> bool {
    Command::new("kvno")
        .arg(service)
        .env("KRB5_CONFIG", lab.get("CADENAS_LAB_AD_KRB5_CONFIG"))
        .env("KRB5CCNAME", format!("FILE:{ccache}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("kvno")
        .success()
}

#[tokio::test]
async fn a_reset_leaves_an_issued_tgt_working_but_containment_blocks_it() {
    // docs/FACTS.md (AD, Kerberos): honest about what a reset does not revoke.
    let lab = AdLab::load();
    let dir = connect(&lab).await;
    let pw = lab.get("CADENAS_LAB_AD_USER_PW").to_owned();
    let realm = lab.get("CADENAS_LAB_AD_REALM").to_owned();
    let tmp = std::env::temp_dir();

    let (name, dn) = lab.fresh_user_uac("krbreset", 512).await;
    let cc = tmp
        .join(format!("cadenas-krb-{}-{name}", std::process::id()))
        .display()
        .to_string();
    assert!(
        kinit(&lab, &format!("{name}@{realm}"), &pw, &cc),
        "attacker gets a TGT"
    );
    assert!(kvno(&lab, &cc, "ldap/dc1.example.test"));
    dir.reset_password(
        &user(&dir, &dn).await,
        &Password::new("Reset-Only-Passw0rd-1"),
        false,
    )
    .await
    .expect("reset");
    // another service: a new request to the KDC with the old TGT, not the cached ticket
    assert!(
        kvno(&lab, &cc, "host/dc1.example.test"),
        "a reset alone does NOT revoke an issued TGT"
    );
    assert!(
        !kinit(&lab, &format!("{name}@{realm}"), &pw, &format!("{cc}.new")),
        "but a new kinit fails"
    );

    let (name, dn) = lab.fresh_user_uac("krbcontain", 512).await;
    let cc = tmp
        .join(format!("cadenas-krb-{}-{name}", std::process::id()))
        .display()
        .to_string();
    assert!(kinit(&lab, &format!("{name}@{realm}"), &pw, &cc));
    let u = user(&dir, &dn).await;
    dir.lock(&u).await.expect("lock");
    dir.reset_password(&u, &Password::new("Contained-Passw0rd-5"), true)
        .await
        .expect("reset");
    assert!(
        !kvno(&lab, &cc, "ldap/dc1.example.test"),
        "disable + must-change block new service tickets from the old TGT"
    );
    let _ = std::fs::remove_file(&cc);
}
