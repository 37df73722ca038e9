//! What the attacker changed on the account, against the lab's real servers: OpenLDAP's
//! slapo-accesslog and Samba's replication metadata. The victim's own bind (the stolen
//! password) makes the self-writes, as an attacker would.

use std::sync::Arc;

use cadenas::directory::AttributeChange;
use cadenas::directory::{Dn, UserRef};
use cadenas::incident::{ContainOptions, Responder};
use cadenas::investigate::Instant;
use ldap3::Mod;

use crate::incident::{temp_journal, MemorySink};
use crate::support::{bound_connection, AdLab, OpenLdapLab};

/// Replaces `attr` of `dn` bound as `dn` itself with `password` (the attacker with the stolen
/// password).
async fn self_write(url: &str, ca: &str, dn: &Dn, password: &str, attr: &str, values: &[&str]) {
    let mut ldap = bound_connection(url, ca, dn.as_str(), password).await;
    let values: std::collections::HashSet<&str> = values.iter().copied().collect();
    ldap.modify(dn.as_str(), vec![Mod::Replace(attr, values)])
        .await
        .expect("modify")
        .success()
        .unwrap_or_else(|e| panic!("self-write of {attr}: {e}"));
    let _ = ldap.unbind().await;
}

/// The changes since `since`, once at least `want` are recorded (slapo-accesslog writes its
/// record after the modify has answered).
async fn changes_once_logged(
    r: &cadenas::incident::Planner,
    user: &str,
    since: Instant,
    want: usize,
) -> Vec<AttributeChange> {
    let mut changes = Vec::new();
    for _ in 0..50 {
        changes = r
            .status_report(&crate::support::one(user), Some(since))
            .await
            .expect("status")
            .changes
            .expect("asked for changes");
        if changes.len() >= want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    changes
}

fn named<'a>(changes: &'a [AttributeChange], attr: &str) -> Vec<&'a AttributeChange> {
    changes
        .iter()
        .filter(|c| c.attribute.eq_ignore_ascii_case(attr))
        .collect()
}

#[tokio::test]
async fn openldap_accesslog_shows_what_the_victims_own_bind_changed_with_old_and_new_values() {
    let lab = OpenLdapLab::load();
    let (name, dn) = lab
        .fresh_user_with("changed", &[("mobile", "+33 6 11 11 11 11")])
        .await;
    // the lab's ACLs let a user write its own mobile and sshPublicKey (ldapPublicKey aux class)
    lab.admin_replace(&dn, "objectClass", &[b"inetOrgPerson", b"ldapPublicKey"])
        .await;
    // the log's times are whole seconds: the window starts after the set-up's change
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before = Instant::now();
    let pw = lab.get("CADENAS_LAB_USER_PW").to_owned();
    let (url, ca) = (lab.get("CADENAS_LAB_LDAPS_URL"), lab.get("CADENAS_LAB_CA"));
    self_write(url, ca, &dn, &pw, "mobile", &["+44 7700 900123"]).await;
    self_write(
        url,
        ca,
        &dn,
        &pw,
        "sshPublicKey",
        &["ssh-ed25519 AAAAC3Nza attacker@evil"],
    )
    .await;

    let r = cadenas::incident::Planner::new(&lab.config())
        .await
        .expect("responder");
    let changes = changes_once_logged(&r, name.as_str(), before, 2).await;
    let mobile = named(&changes, "mobile");
    assert_eq!(mobile.len(), 1, "{changes:#?}");
    assert_eq!(mobile[0].new, ["+44 7700 900123"]);
    assert_eq!(mobile[0].old, ["+33 6 11 11 11 11"]);
    assert_eq!(mobile[0].operation.as_deref(), Some("replace"));
    assert!(mobile[0].flagged);
    assert!(
        Dn::parse(mobile[0].by.as_deref().expect("by"))
            .expect("dn")
            .same_entry(&dn),
        "{:?}",
        mobile[0].by
    );
    let key = named(&changes, "sshPublicKey");
    assert_eq!(key.len(), 1);
    assert!(key[0].flagged && key[0].new == ["ssh-ed25519 AAAAC3Nza attacker@evil"]);
    // nothing older than the window, nothing else
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let later = Instant::from_unix(Instant::now().unix() + 3600);
    let none = r
        .status_report(&crate::support::one(name.as_str()), Some(later))
        .await
        .expect("status");
    assert_eq!(none.changes, Some(Vec::new()));

    // the contain report carries them too; the responder's own changes show, by the responder,
    // and the password's values never do
    let cfg = lab.config();
    let r = Responder::new(&cfg, &temp_journal("changes"))
        .await
        .expect("responder");
    let mut opts = ContainOptions::new(Arc::new(MemorySink::default()));
    opts.changes_since = Some(before);
    let report = r
        .contain(&[crate::support::one(&name.to_string())], opts)
        .await
        .expect("contain");
    let changes = report.users[0].changes.clone().expect("changes");
    assert_eq!(named(&changes, "mobile").len(), 1);
    let lock = named(&changes, "pwdAccountLockedTime");
    assert!(!lock.is_empty(), "{changes:#?}");
    assert!(Dn::parse(lock[0].by.as_deref().expect("by"))
        .expect("dn")
        .same_entry(&Dn::parse(lab.get("CADENAS_LAB_RESPONDER_DN")).expect("responder")));
    for c in named(&changes, "userPassword") {
        assert!(c.redacted && c.new.is_empty() && c.old.is_empty(), "{c:?}");
    }
    let text = serde_json::to_string(&report).expect("json");
    assert!(
        !text.contains("{ARGON2}") && !text.contains("argon2id"),
        "a password hash in the report"
    );
    // the membership the containment gave (the MFA group) is listed as a group change
    assert!(
        changes.iter().any(|c| c
            .group
            .as_deref()
            .is_some_and(|g| g.starts_with("cn=mfa-required"))),
        "{changes:#?}"
    );
}

#[tokio::test]
async fn samba_replication_metadata_shows_which_attributes_the_victim_changed_and_when() {
    let lab = AdLab::load();
    let (name, dn) = lab.fresh_user_uac("ad-changed", 512).await;
    let before = Instant::from_unix(Instant::now().unix() - 1);
    let pw = lab.get("CADENAS_LAB_AD_USER_PW").to_owned();
    let (url, ca) = (lab.get("CADENAS_LAB_AD_LDAPS_URL"), lab.get("CADENAS_LAB_CA"));
    // Samba's default ACLs let a user write its own personal information
    self_write(url, ca, &dn, &pw, "mobile", &["+44 7700 900456"]).await;
    self_write(url, ca, &dn, &pw, "telephoneNumber", &["+44 20 7946 0000"]).await;

    let cfg = cadenas::Config::from_file(&lab.config_path()).expect("config");
    let r = cadenas::incident::Planner::new(&cfg).await.expect("responder");
    let changes = changes_once_logged(&r, name.as_str(), before, 2).await;
    let mobile = named(&changes, "mobile");
    assert_eq!(mobile.len(), 1, "{changes:#?}");
    assert!(mobile[0].flagged);
    assert_eq!(mobile[0].new, ["+44 7700 900456"], "the current value");
    assert!(mobile[0].server.is_some(), "the originating DC");
    assert!(mobile[0].version.is_some());
    assert_eq!(named(&changes, "telephoneNumber").len(), 1);
    assert!(
        !changes.iter().any(|c| c.attribute.starts_with("attid ")),
        "every attribute id resolved: {changes:#?}"
    );
    // the user entry itself was found the normal way
    let dir = r.directory();
    dir.find_user(&UserRef::Dn(dn)).await.expect("find");
}
