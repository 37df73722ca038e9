//! MFA enforcement and `authenticate` against the lab's real OpenLDAP.

use std::sync::Arc;

use cadenas::auth::{authenticate, require_mfa, AuthOutcome};
use cadenas::directory::{Directory, UserRef};
use cadenas::mfa::totp::code_for_step;
use cadenas::mfa::{EnrolmentState, Mfa};
use cadenas::Password;

use crate::support::{secret_from_uri, OpenLdapLab};

struct Fixture {
    lab: OpenLdapLab,
    dir: Directory,
    mfa: Arc<Mfa>,
}

async fn fixture() -> Fixture {
    let lab = OpenLdapLab::load();
    let cfg = lab.config();
    let dir = Directory::connect(&cfg.directory).await.expect("connect");
    let mfa = Arc::new(Mfa::open(cfg.mfa.as_ref().expect("[mfa] in the lab config"), true).expect("mfa"));
    Fixture { lab, dir, mfa }
}

const NOW: u64 = 1_900_000_000;

#[tokio::test]
async fn without_the_mfa_group_a_password_is_enough() {
    let f = fixture().await;
    let (name, _) = f.lab.fresh_user("auth-plain").await;
    let user = UserRef::Name(name);
    let pw = f.lab.user_password();
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user, &pw, None, NOW)
            .await
            .expect("auth"),
        AuthOutcome::Ok
    );
    let wrong = Password::new("wrong-password");
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user, &wrong, None, NOW)
            .await
            .expect("auth"),
        AuthOutcome::BadPassword
    );
    let nobody = UserRef::parse("no-such-user-here").expect("name");
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &nobody, &pw, None, NOW)
            .await
            .expect("auth"),
        AuthOutcome::BadPassword
    );
}

#[tokio::test]
async fn require_mfa_invalidates_an_attackers_enrolment_and_authenticate_then_needs_a_fresh_one() {
    let f = fixture().await;
    let (name, _) = f.lab.fresh_user("auth-mfa").await;
    let login = name.as_str().to_owned();
    let user_ref = UserRef::Name(name.clone());
    let u = f.dir.find_user(&user_ref).await.expect("find");
    let pw = f.lab.user_password();

    // The attacker, holding the password, enrolled their own device before containment.
    let theirs = f.mfa.enroll(&login).expect("attacker enrols");
    let theirs = secret_from_uri(std::str::from_utf8(theirs.uri.expose_secret()).expect("utf8"));
    let p = cadenas::mfa::MfaConfig::new("x", "y").params();
    f.mfa
        .verify_at(&login, &code_for_step(&theirs, p.step_at(NOW), &p), NOW)
        .expect("attacker's device active");

    require_mfa(&f.dir, &f.mfa, &u).await.expect("enforce");
    assert_eq!(
        f.dir.account_state(&u).await.expect("state").mfa_required,
        Some(true)
    );
    assert_eq!(
        f.mfa.enrolment_state(&login).expect("state"),
        None,
        "the attacker's device is gone"
    );
    let attacker_code = code_for_step(&theirs, p.step_at(NOW + 60), &p);
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user_ref, &pw, Some(&attacker_code), NOW + 60)
            .await
            .expect("auth"),
        AuthOutcome::MfaNotEnrolled
    );

    // The rightful user enrols at the helpdesk and proves it with a first code.
    let mine = f.mfa.enroll(&login).expect("enrol");
    let mine = secret_from_uri(std::str::from_utf8(mine.uri.expose_secret()).expect("utf8"));
    assert_eq!(
        authenticate(
            &f.dir,
            &f.mfa,
            &user_ref,
            &pw,
            Some(&code_for_step(&mine, p.step_at(NOW + 90), &p)),
            NOW + 90
        )
        .await
        .expect("auth"),
        AuthOutcome::MfaNotEnrolled,
        "a pending enrolment does not count until it is confirmed"
    );
    f.mfa
        .verify_at(&login, &code_for_step(&mine, p.step_at(NOW + 90), &p), NOW + 90)
        .expect("confirm");
    assert_eq!(
        f.mfa.enrolment_state(&login).expect("state"),
        Some(EnrolmentState::Active)
    );

    let t = NOW + 150;
    let code = code_for_step(&mine, p.step_at(t), &p);
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user_ref, &pw, None, t)
            .await
            .expect("auth"),
        AuthOutcome::MfaRequired
    );
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user_ref, &pw, Some(&code), t)
            .await
            .expect("auth"),
        AuthOutcome::Ok
    );
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user_ref, &pw, Some(&code), t + 1)
            .await
            .expect("auth"),
        AuthOutcome::ReplayedCode
    );
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user_ref, &pw, Some(wrong), t + 30)
            .await
            .expect("auth"),
        AuthOutcome::BadCode
    );
    // A wrong password is refused before any code is looked at.
    assert_eq!(
        authenticate(
            &f.dir,
            &f.mfa,
            &user_ref,
            &Password::new("nope-nope"),
            Some(&code),
            t
        )
        .await
        .expect("auth"),
        AuthOutcome::BadPassword
    );
}

#[tokio::test]
async fn locked_and_must_change_accounts_are_reported_as_such() {
    let f = fixture().await;
    let (name, _) = f.lab.fresh_user("auth-state").await;
    let user_ref = UserRef::Name(name);
    let u = f.dir.find_user(&user_ref).await.expect("find");
    let pw = f.lab.user_password();
    f.dir.force_change(&u).await.expect("force");
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user_ref, &pw, None, NOW)
            .await
            .expect("auth"),
        AuthOutcome::MustChange
    );
    f.dir.lock(&u).await.expect("lock");
    assert_eq!(
        authenticate(&f.dir, &f.mfa, &user_ref, &pw, None, NOW)
            .await
            .expect("auth"),
        AuthOutcome::Locked
    );
}

#[tokio::test]
async fn authenticate_against_active_directory() {
    let lab = crate::support::AdLab::load();
    let cfg = cadenas::Config::from_file(&lab.config_path()).expect("config");
    let dir = Directory::connect(&cfg.directory).await.expect("connect");
    let tmp = std::env::temp_dir().join(format!("cadenas-ad-mfa-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("dir");
    let mfa = Arc::new(
        Mfa::open(
            &cadenas::mfa::MfaConfig::new(tmp.join("m.db"), tmp.join("m.key")),
            true,
        )
        .expect("mfa"),
    );
    let (name, _) = lab.fresh_user_uac("authad", 512).await;
    let user_ref = UserRef::Name(name.clone());
    let pw = Password::new(lab.get("CADENAS_LAB_AD_USER_PW"));
    assert_eq!(
        authenticate(&dir, &mfa, &user_ref, &pw, None, NOW)
            .await
            .expect("auth"),
        AuthOutcome::Ok
    );
    let u = dir.find_user(&user_ref).await.expect("find");
    require_mfa(&dir, &mfa, &u).await.expect("require");
    assert_eq!(
        authenticate(&dir, &mfa, &user_ref, &pw, None, NOW)
            .await
            .expect("auth"),
        AuthOutcome::MfaNotEnrolled
    );
    let new = mfa.enroll(name.as_str()).expect("enrol");
    let secret = secret_from_uri(std::str::from_utf8(new.uri.expose_secret()).expect("utf8"));
    let p = new.params;
    mfa.verify_at(name.as_str(), &code_for_step(&secret, p.step_at(NOW), &p), NOW)
        .expect("confirm");
    let code = code_for_step(&secret, p.step_at(NOW + 30), &p);
    assert_eq!(
        authenticate(&dir, &mfa, &user_ref, &pw, Some(&code), NOW + 30)
            .await
            .expect("auth"),
        AuthOutcome::Ok
    );
    dir.lock(&u).await.expect("lock");
    assert_eq!(
        authenticate(&dir, &mfa, &user_ref, &pw, Some(&code), NOW + 60)
            .await
            .expect("auth"),
        AuthOutcome::Locked
    );
    std::fs::remove_dir_all(&tmp).ok();
}
