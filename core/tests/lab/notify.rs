//! Notifications against the lab's real MTA (OpenSMTPD, `lab/smtp.sh`), which delivers over
//! LMTP into the lab's real Dovecot, where the message is read back over IMAP.

use std::sync::Arc;

use cadenas::incident::{ContainOptions, Responder};
use cadenas::journal::{self, Event};
use cadenas::notify::NotifyEvent;
use cadenas::{Config, ErrorKind};

use crate::incident::{temp_journal, MemorySink};
use crate::support::{dovecot_env, smtp_env, Imap, OpenLdapLab};

/// The lab config, the Dovecot revoker and `[mail]`, and `notify` (TOML `[[notify]]` entries).
fn config_with_notify(lab: &OpenLdapLab, notify: &str) -> Config {
    let extra = std::fs::read_to_string(&dovecot_env()["CADENAS_LAB_REVOKERS"]).expect("revokers.toml");
    lab.config_with(|t| format!("{t}\n{extra}\n{notify}"))
}

/// The smtp notifier's connection settings for the lab MTA.
pub(crate) fn smtp_settings(lab: &OpenLdapLab, url_key: &str, scheme: &str, password_file: &str) -> String {
    format!(
        "url = \"{scheme}://{}\"\nca_file = \"{}\"\nusername = \"{}\"\npassword_file = \"{password_file}\"\n\
         from = \"Cadenas <cadenas@example.test>\"\n",
        smtp_env()[url_key],
        lab.get("CADENAS_LAB_CA"),
        dovecot_env()["CADENAS_LAB_SMTP_USER"],
    )
}

/// The INBOX of `user`, unfolded (header continuation lines, quoted-printable soft breaks),
/// once it holds `want` messages (delivery over LMTP follows the SMTP answer).
pub(crate) async fn inbox_of(lab: &OpenLdapLab, user: &str, want: usize) -> String {
    let imap = dovecot_env()["CADENAS_LAB_IMAP"].clone();
    let mut last = String::new();
    for _ in 0..100 {
        let mut s = Imap::login(&imap, user, lab.get("CADENAS_LAB_USER_PW"))
            .await
            .expect("imap login");
        last = s
            .inbox()
            .await
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ")
            .replace("=\r\n", "")
            .replace("=3D", "=");
        if last.matches("Auto-Submitted: auto-generated").count() >= want {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{want} message(s) expected in {user}'s INBOX; got:\n{last}");
}

#[tokio::test]
async fn the_on_call_list_is_told_without_a_secret_and_a_failing_channel_changes_nothing() {
    let lab = OpenLdapLab::load();
    let (oncall, _) = lab.fresh_user("oncall").await;
    let (victim, victim_dn) = lab.fresh_user("notified").await;
    let pid = std::process::id();
    let sms = std::env::temp_dir().join(format!("cadenas-sms-{pid}.txt"));
    let _ = std::fs::remove_file(&sms);
    let wrong = std::env::temp_dir().join(format!("cadenas-wrong-smtp-{pid}.pw"));
    std::fs::write(&wrong, "not-the-password\n").expect("wrong password file");
    let good = dovecot_env()["CADENAS_LAB_SMTP_PASSWORD_FILE"].clone();
    let notify = format!(
        "[[notify]]\nname = \"oncall\"\ntype = \"smtp\"\nevents = [\"contained\", \"needs_attention\"]\n{}\
         to = [\"{oncall}@example.test\"]\n\n\
         [[notify]]\nname = \"sms\"\ntype = \"command\"\nevents = [\"contained\"]\nprogram = \"/usr/bin/tee\"\n\
         args = [\"{}\"]\n\n\
         [[notify]]\nname = \"broken\"\ntype = \"smtp\"\nevents = [\"contained\"]\n{}\
         to = [\"{oncall}@example.test\"]\nretries = 1\nbackoff_ms = 10\n",
        smtp_settings(&lab, "CADENAS_LAB_SMTP_STARTTLS", "smtp", &good),
        sms.display(),
        smtp_settings(&lab, "CADENAS_LAB_SMTP_TLS", "smtps", &wrong.display().to_string()),
    );
    let cfg = config_with_notify(&lab, &notify);
    let journal_path = temp_journal("notify");
    let r = Responder::new(&cfg, &journal_path).await.expect("responder");
    let sink = Arc::new(MemorySink::default());
    let report = r
        .contain(
            &crate::support::refs(&[victim.to_string(), "ghost-nobody".into()]),
            ContainOptions::new(sink.clone()),
        )
        .await
        .expect("contain");
    // the containment's result is the same whatever the notifications did
    assert_eq!((report.done(), report.failed()), (1, 1), "{report:#?}");

    let by = |name: &str, event: NotifyEvent| {
        report
            .notifications
            .iter()
            .find(|n| n.notifier == name && n.event == event)
            .unwrap_or_else(|| panic!("{name} {event:?}: {:#?}", report.notifications))
    };
    let contained = by("oncall", NotifyEvent::Contained);
    assert!(contained.delivered, "{contained:#?}");
    assert_eq!(contained.users, [victim.to_string()]);
    assert_eq!(contained.recipients, [format!("{oncall}@example.test")]);
    let attention = by("oncall", NotifyEvent::NeedsAttention);
    assert!(
        attention.delivered && attention.users == ["ghost-nobody"],
        "{attention:#?}"
    );
    assert!(by("sms", NotifyEvent::Contained).delivered);
    let broken = by("broken", NotifyEvent::Contained);
    assert!(!broken.delivered, "{broken:#?}");
    assert_eq!(broken.attempts, 2, "retried once");
    assert_eq!(
        broken.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::NotifyFailed)
    );
    assert_eq!(report.notifications.len(), 4);

    // What the on-call person reads, through the real MTA and Dovecot.
    let mail = inbox_of(&lab, oncall.as_str(), 2).await;
    let incident = &report.incident;
    assert!(
        mail.contains(&format!(
            "Subject: [Cadenas] {incident}: 1 account(s) contained: {victim}"
        )),
        "{mail}"
    );
    assert!(mail.contains(&format!(
        "Subject: [Cadenas] {incident}: 1 account(s) need attention: ghost-nobody"
    )));
    assert!(mail.contains("From: Cadenas <cadenas@example.test>"), "{mail}");
    assert!(
        mail.contains(&format!(
            "- {victim} ({victim_dn}): lock changed, reset_password changed"
        )),
        "{mail}"
    );
    assert!(mail.contains("ghost-nobody: refused"), "{mail}");
    let password = sink.0.lock().expect("sink")[victim.as_str()].clone();
    let sms_text = std::fs::read_to_string(&sms).expect("the command got the text");
    for text in [&mail, &sms_text] {
        assert!(!text.contains(&password), "a password in a notification");
        assert!(
            !text.contains(&report.password_handover),
            "where the password went, in a notification"
        );
    }
    assert!(
        sms_text.contains(&format!("[Cadenas] {incident}: 1 account(s) contained")),
        "{sms_text}"
    );

    // The journal has every outcome, before the end of the run.
    let records = journal::read(&journal_path).expect("journal");
    let notified = records
        .iter()
        .position(|rec| matches!(&rec.event, Event::Notified { outcomes } if outcomes.len() == 4))
        .expect("notified record");
    let end = records
        .iter()
        .position(|rec| matches!(rec.event, Event::IncidentEnd { .. }))
        .expect("end");
    assert!(notified < end);
    let _ = std::fs::remove_file(sms);
    let _ = std::fs::remove_file(wrong);
}

/// Quoted-printable soft breaks and `=XX` escapes undone (the body of a non-ASCII message).
fn unquote(text: &str) -> String {
    let b = text.replace("=\r\n", "").into_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&b[i + 1..i + 3]), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_manager_is_told_in_french_on_containment_and_release_and_the_sms_gateway_gets_a_signed_text() {
    let lab = OpenLdapLab::load();
    let (manager, manager_dn) = lab.fresh_user("manager").await;
    let (victim, _) = lab
        .fresh_user_with("managed", &[("manager", manager_dn.as_str())])
        .await;
    let (port, received) = crate::revokers::receiver(vec![200], 0).await;
    let key_file = std::env::temp_dir().join(format!("cadenas-sms-key-{}", std::process::id()));
    std::fs::write(&key_file, "sms-gateway-signing-key\n").expect("key");
    let good = dovecot_env()["CADENAS_LAB_SMTP_PASSWORD_FILE"].clone();
    let notify = format!(
        "[[notify]]\nname = \"managers\"\ntype = \"smtp\"\nevents = [\"contained\", \"released\"]\n\
         language = \"fr\"\nto_attributes = [\"manager\"]\n{}\n\
         [[notify]]\nname = \"sms\"\ntype = \"webhook\"\nevents = [\"contained\"]\n\
         url = \"https://127.0.0.1:{port}/sms\"\nca_file = \"{}\"\nsecret_file = \"{}\"\n",
        smtp_settings(&lab, "CADENAS_LAB_SMTP_TLS", "smtps", &good),
        lab.get("CADENAS_LAB_CA"),
        key_file.display(),
    );
    let cfg = config_with_notify(&lab, &notify);
    let r = Responder::new(&cfg, &temp_journal("notify-fr"))
        .await
        .expect("responder");
    let sink = Arc::new(MemorySink::default());
    let report = r
        .contain(
            &[crate::support::one(&victim.to_string())],
            ContainOptions::new(sink.clone()),
        )
        .await
        .expect("contain");
    assert_eq!(report.done(), 1);
    let told: Vec<_> = report
        .notifications
        .iter()
        .map(|n| (n.notifier.as_str(), n.delivered, n.recipients.clone()))
        .collect();
    assert_eq!(
        told,
        [
            ("managers", true, vec![format!("{manager}@example.test")]),
            ("sms", true, vec![format!("https://127.0.0.1:{port}/sms")]),
        ],
        "{:#?}",
        report.notifications
    );
    let released = r
        .release(
            &crate::support::one(victim.as_str()),
            cadenas::incident::ReleaseOptions::default().with_override_reason("test: identity checked"),
        )
        .await
        .expect("release");
    assert_eq!(released.notifications.len(), 1);
    assert!(released.notifications[0].delivered && released.notifications[0].event == NotifyEvent::Released);

    // the manager's mailbox: one message per event, in French, about this account only
    let mail = unquote(&inbox_of(&lab, manager.as_str(), 2).await);
    assert!(
        mail.contains("Le mot de passe du ou des comptes ci-dessous a probablement été volé"),
        "{mail}"
    );
    assert!(mail.contains("sont de nouveau utilisables"), "{mail}");
    assert!(mail.contains(victim.as_str()));
    let password = sink.0.lock().expect("sink")[victim.as_str()].clone();
    assert!(!mail.contains(&password));

    // the SMS gateway: one signed POST with the text
    let got = received.lock().expect("received").clone();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let ts: u64 = headers[crate::support::TIMESTAMP_HEADER]
        .parse()
        .expect("timestamp");
    assert_eq!(
        headers[crate::support::SIGNATURE_HEADER],
        crate::support::webhook_signature("sms-gateway-signing-key", ts, body)
    );
    let v: serde_json::Value = serde_json::from_slice(body).expect("json");
    assert_eq!(v["event"], "cadenas.notify");
    assert_eq!(v["kind"], "contained");
    assert_eq!(v["users"][0]["user"], victim.as_str());
    assert!(
        v["text"].as_str().is_some_and(|t| t.contains(victim.as_str())),
        "{v:#}"
    );
    assert!(!String::from_utf8_lossy(body).contains(&password));
    let _ = std::fs::remove_file(key_file);
}
