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
fn smtp_settings(lab: &OpenLdapLab, url_key: &str, scheme: &str, password_file: &str) -> String {
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
async fn inbox_of(lab: &OpenLdapLab, user: &str, want: usize) -> String {
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
            &[victim.to_string(), "ghost-nobody".into()],
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
