//! The journal on the lab's real PostgreSQL: responders on several hosts append to one chain
//! that never forks, verify works as for a file (and catches edits made in the database),
//! `export` writes the file form, and "already contained" and release hold across hosts.

use std::sync::Arc;

use cadenas::incident::{ContainOptions, PasswordSink, ReleaseOptions, Responder};
use cadenas::journal::{self, Event, Journal, JournalConfig, Location, Step, StepStatus};
use cadenas::{Config, Error, ErrorKind, Password, Secret};

use crate::support::{pg_execute, pg_shared_async, without_sections, OpenLdapLab, PgDatabase};

fn location(pg: &PgDatabase) -> (JournalConfig, Location) {
    let cfg: JournalConfig = toml::from_str(&pg.toml_keys()).expect("[journal]");
    let loc = cfg.location().expect("location");
    (cfg, loc)
}

fn event(i: usize) -> Event {
    Event::IncidentEnd { done: i, failed: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_append_to_one_chain_that_never_forks_and_export_verifies_the_same() {
    let _shared = pg_shared_async().await;
    let pg = PgDatabase::new("journal-two-hosts");
    let (_, loc) = location(&pg);
    let key = Secret::new(b"a journal key of at least 16 bytes".to_vec());
    // two writers, as two responder hosts would have, appending at once
    let a = Journal::open_at(&loc, Some(key.clone())).expect("host a");
    let b = Journal::open_at(&loc, Some(key.clone())).expect("host b");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let j = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            j.append(&format!("INC-{}", i % 2), vec![event(i), event(i + 1000)])
                .await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("append");
    }
    let report = loc.verify(Some(&key)).expect("verify");
    assert_eq!(report.records, 80);
    assert!(report.first_bad.is_none(), "{report:?}");
    assert!(report.macs_checked);
    let records = loc.records(Some(&key)).expect("records");
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..80).collect::<Vec<u64>>(), "one chain, no gap, no fork");
    // each append's two records stay together (one transaction per batch)
    for pair in records.chunks(2) {
        match (&pair[0].event, &pair[1].event) {
            (Event::IncidentEnd { done: x, .. }, Event::IncidentEnd { done: y, .. }) => {
                assert_eq!(*x + 1000, *y)
            }
            other => panic!("{other:?}"),
        }
    }
    // the head the last writer saw is the chain's head
    let heads = [a.head(), b.head()];
    assert!(heads.contains(&report.head), "{heads:?} vs {}", report.head);

    // the file form verifies the same, with the key
    let dir = std::env::temp_dir().join(format!("cadenas-journal-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("incident.jsonl");
    let exported = loc.export(&file).expect("export");
    assert_eq!((exported.records, &exported.head), (80, &report.head));
    let from_file = journal::verify_with_key(&file, Some(&key)).expect("verify file");
    assert_eq!(
        (
            from_file.records,
            from_file.head.as_str(),
            from_file.first_bad.as_ref()
        ),
        (80, report.head.as_str(), None)
    );
    assert!(
        loc.export(&file).is_err(),
        "an existing file is never overwritten"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).expect("meta").permissions());
    assert_eq!(mode & 0o777, 0o600);
    // with another key, the MACs do not verify
    let wrong = Secret::new(b"another key, also 16 bytes long".to_vec());
    assert!(loc.verify(Some(&wrong)).expect("verify").first_bad.is_some());
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_edit_or_deletion_in_the_database_is_caught_at_its_line_and_refuses_to_open() {
    let _shared = pg_shared_async().await;
    let pg = PgDatabase::new("journal-tamper");
    let (_, loc) = location(&pg);
    let j = Journal::open_at(&loc, None).expect("open");
    for i in 0..5 {
        j.append("INC-T", vec![event(i)]).await.expect("append");
    }
    drop(j);
    pg_execute(
        &pg.name,
        "UPDATE journal_records SET line = replace(line, '\"done\":2', '\"done\":7') WHERE seq = 2",
    );
    let bad = loc.verify(None).expect("verify").first_bad.expect("caught");
    assert_eq!(bad.line, 3, "{bad:?}");
    assert!(bad.reason.contains("edited"), "{bad:?}");
    let e = Journal::open_at(&loc, None).expect_err("a broken chain refuses to open");
    assert_eq!(e.kind(), ErrorKind::JournalTampered, "{e}");
    assert_eq!(
        loc.records(None).expect_err("records").kind(),
        ErrorKind::JournalTampered
    );
    // a deleted record (the edit undone first) is caught where the gap is
    pg_execute(
        &pg.name,
        "UPDATE journal_records SET line = replace(line, '\"done\":7', '\"done\":2') WHERE seq = 2",
    );
    assert!(loc.verify(None).expect("verify").first_bad.is_none());
    pg_execute(&pg.name, "DELETE FROM journal_records WHERE seq = 1");
    let bad = loc.verify(None).expect("verify").first_bad.expect("caught");
    assert_eq!(bad.line, 2, "{bad:?}");
}

#[derive(Default)]
struct Kept(std::sync::Mutex<Vec<String>>);

impl PasswordSink for Kept {
    fn deliver(&self, user: &str, _dn: &str, _password: &Password) -> Result<(), Error> {
        self.0.lock().expect("lock").push(user.to_owned());
        Ok(())
    }
    fn describe(&self) -> String {
        "memory:test".into()
    }
}

#[tokio::test]
async fn responders_on_two_hosts_share_the_incident_story_already_contained_and_release() {
    let _shared = pg_shared_async().await;
    let lab = OpenLdapLab::load();
    let pg = PgDatabase::new("journal-responders");
    let config = |_host: &str| -> Config {
        lab.config_with(|text| {
            format!(
                "{}\n[journal]\n{}",
                without_sections(&text, &["journal"]),
                pg.toml_keys()
            )
        })
    };
    let host_a = Responder::from_config(&config("a")).await.expect("host a");
    let host_b = Responder::from_config(&config("b")).await.expect("host b");
    assert!(host_a
        .journal()
        .expect("journal")
        .location()
        .to_string()
        .starts_with("postgresql://"));
    let (name, dn) = lab.fresh_user("journal-pg").await;
    let sink = Arc::new(Kept::default());
    let first = host_a
        .contain(
            &[crate::support::one(&name.to_string())],
            ContainOptions::new(sink.clone()),
        )
        .await
        .expect("contain on a");
    assert!(first.users[0].complete(), "{first:#?}");
    assert_eq!(sink.0.lock().expect("lock").len(), 1);
    // host b, asked to contain the same account: the shared journal says it is contained
    let second = host_b
        .contain(
            &[crate::support::one(&name.to_string())],
            ContainOptions::new(sink.clone()),
        )
        .await
        .expect("contain on b");
    let reset = &second.users[0].steps[1];
    assert_eq!(
        (reset.step, reset.status),
        (Step::ResetPassword, StepStatus::AlreadySo)
    );
    let note = reset.detail.note.as_deref().unwrap_or_default();
    assert!(note.contains(&first.incident), "{note}");
    assert_eq!(sink.0.lock().expect("lock").len(), 1, "no second password");
    // host b releases what host a contained: the flags host a recorded
    let released = host_b
        .release(
            &crate::support::one(name.as_str()),
            ReleaseOptions::default().with_override_reason("test: release from another host"),
        )
        .await
        .expect("release on b");
    assert_eq!(released.dn, dn.to_string());
    // one story: both incidents, one chain
    let loc = host_a.journal().expect("journal").location().clone();
    let records = loc.records(None).expect("records");
    let incidents: std::collections::BTreeSet<&str> = records.iter().map(|r| r.incident.as_str()).collect();
    assert!(incidents.contains(first.incident.as_str()) && incidents.contains(second.incident.as_str()));
    assert!(loc.verify(None).expect("verify").first_bad.is_none());
}
