//! `IncidentReport` from real incidents run against the lab: every figure of the page equals
//! the one recomputed here, independently, from the journal's lines; no secret in any format;
//! an edited record breaks the proof and the page says so first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cadenas::incident::{ContainOptions, Progress};
use cadenas::journal::{Location, Step};
use cadenas::notify::Language;
use cadenas::report::{AccountOutcome, IncidentReport, ReportOptions};
use serde_json::Value;

use crate::incident::{temp_journal, MemorySink};
use crate::support::OpenLdapLab;

/// What the test recomputes from the journal's lines on its own: per account, when each
/// step was first done and its last status; the runs' starts.
struct Recomputed {
    accounts: Vec<String>,
    first_done: HashMap<(String, String), String>,
    last_status: HashMap<(String, String), String>,
    refused: HashSet<String>,
    started: Option<String>,
    records: usize,
}

fn recompute(journal: &Path, incident: &str) -> Recomputed {
    let done = ["changed", "already_so", "partial"];
    let mut r = Recomputed {
        accounts: Vec::new(),
        first_done: HashMap::new(),
        last_status: HashMap::new(),
        refused: HashSet::new(),
        started: None,
        records: 0,
    };
    for line in std::fs::read_to_string(journal).expect("journal").lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        if v["incident"] != incident {
            continue;
        }
        r.records += 1;
        let time = v["time"].as_str().expect("time").to_owned();
        match v["event"].as_str().expect("event") {
            "incident_start" if v["action"] != "release" => {
                r.started.get_or_insert(time);
                for u in v["users"].as_array().expect("users") {
                    let u = u.as_str().expect("user").to_owned();
                    if !r.accounts.contains(&u) {
                        r.accounts.push(u);
                    }
                }
            }
            "outcome" => {
                let key = (
                    v["user"].as_str().expect("user").to_owned(),
                    v["step"].as_str().expect("step").to_owned(),
                );
                let status = v["status"].as_str().expect("status").to_owned();
                if done.contains(&status.as_str()) {
                    r.first_done.entry(key.clone()).or_insert(time);
                }
                r.last_status.insert(key, status);
            }
            "refused" => {
                r.refused.insert(v["user"].as_str().expect("user").to_owned());
            }
            _ => {}
        }
    }
    r
}

fn ms(t: &str) -> i128 {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
        .unix_timestamp_nanos()
        / 1_000_000
}

/// The summary's figures against the recomputed ones.
fn check_against_journal(report: &IncidentReport, journal: &Path) {
    let r = recompute(journal, &report.incident);
    let s = &report.summary;
    assert_eq!(report.proof.records, r.records, "records used");
    assert_eq!(s.accounts, r.accounts.len(), "accounts");
    assert_eq!(s.refused, r.refused.len(), "refused");
    let locks: Vec<&String> = r
        .accounts
        .iter()
        .filter_map(|u| r.first_done.get(&(u.clone(), "lock".into())))
        .collect();
    assert_eq!(s.all_locked, locks.len() == r.accounts.len(), "all locked");
    let first = locks.iter().map(|t| ms(t)).min();
    let last = locks.iter().map(|t| ms(t)).max();
    assert_eq!(s.first_lock_at.as_deref().map(ms), first, "first lock");
    assert_eq!(s.last_lock_at.as_deref().map(ms), last, "last lock");
    assert_eq!(s.started_at, r.started, "started");
    let started = ms(r.started.as_deref().expect("a start"));
    assert_eq!(
        s.to_last_lock_ms,
        last.map(|l| u64::try_from(l - started).expect("after the start")),
        "to the last lock"
    );
    // per account: the steps' last statuses, and when the lock was first done
    // a step failed, or one of the four (the lab has no [postfix]) without an outcome: cut short
    let steps = ["lock", "reset_password", "revoke_sessions", "require_mfa"];
    let attention: usize = r
        .accounts
        .iter()
        .filter(|u| !r.refused.contains(*u))
        .filter(|u| {
            steps.iter().any(|st| {
                r.last_status
                    .get(&((*u).clone(), (*st).to_owned()))
                    .is_none_or(|status| status == "failed")
            })
        })
        .count();
    assert_eq!(
        s.needs_attention, attention,
        "accounts with a step failed or not done"
    );
    assert_eq!(
        s.contained,
        r.accounts.len() - attention - r.refused.len(),
        "contained"
    );
    for a in &report.accounts {
        for step in &a.steps {
            let key = (a.user.clone(), step.step.name().to_owned());
            assert_eq!(
                step.status.map(|st| st.name().to_owned()),
                r.last_status.get(&key).cloned(),
                "{key:?}"
            );
            assert_eq!(
                step.done_at.as_deref().map(ms),
                r.first_done.get(&key).map(|t| ms(t)),
                "{key:?}"
            );
        }
    }
    // the lock curve ends at the number of accounts locked
    let lock_curve = report.timeline.curves.iter().find(|c| c.step == Step::Lock);
    assert_eq!(lock_curve.map(|c| c.total), Some(locks.len()).filter(|n| *n > 0));
}

/// Every rendering of the report, none holding any of `secrets`.
fn assert_no_secret(report: &IncidentReport, secrets: &[String]) {
    let json = serde_json::to_string(report).expect("json");
    for text in [
        report.to_html(Language::En),
        report.to_html(Language::Fr),
        report.to_markdown(Language::En),
        report.to_markdown(Language::Fr),
        report.accounts_csv(),
        json,
    ] {
        for s in secrets {
            assert!(!text.contains(s.as_str()), "a secret in a report");
        }
    }
}

fn report_of(journal: &Path, incident: &str) -> IncidentReport {
    IncidentReport::from_journal(
        &Location::File(journal.to_owned()),
        None,
        incident,
        &ReportOptions::default(),
    )
    .expect("report")
}

#[tokio::test]
async fn the_report_of_one_account_equals_what_the_journal_says_and_holds_no_secret() {
    let lab = OpenLdapLab::load();
    let journal = temp_journal("report-one");
    let r = cadenas::incident::Responder::new(&lab.config(), &journal)
        .await
        .expect("responder");
    let (name, _) = lab.fresh_user("rep-one").await;
    let sink = Arc::new(MemorySink::default());
    let alert = cadenas::investigate::Instant::from_unix(cadenas::investigate::Instant::now().unix() - 90);
    let contained = r
        .contain(
            &[crate::support::one(name.as_str())],
            ContainOptions::new(sink.clone()),
        )
        .await
        .expect("contain");
    let report = IncidentReport::from_journal(
        &Location::File(journal.clone()),
        None,
        &contained.incident,
        &ReportOptions::default().with_alert_at(alert),
    )
    .expect("report");
    check_against_journal(&report, &journal);
    assert!(report.proof.intact() && report.proof.unproven_records == 0);
    assert_eq!(
        report.proof.head, contained.journal_head,
        "the head the run printed"
    );
    let s = &report.summary;
    assert_eq!((s.accounts, s.contained), (1, 1));
    assert!(s.all_locked);
    assert!(s.alert_to_last_lock_ms.is_some_and(|m| m >= 90_000), "{s:?}");
    // no revoker configured: the revoke step is partly done, and the page says why
    assert!(
        s.problems.iter().any(|p| p.step == Some(Step::RevokeSessions)
            && p.why.contains("no revokers")
            && p.users == [name.to_string()]),
        "{s:?}"
    );
    assert_eq!(report.timeline.rows.len(), 1, "one row per account");
    let html = report.to_html(Language::En);
    assert!(html.contains(&report.proof.head) && html.contains(name.as_str()));
    assert!(html.contains("default-src 'none'") && !html.contains("<script"));
    assert!(
        !html.contains(" src=") && !html.contains(" href="),
        "no external resource"
    );
    let fr = report.to_html(Language::Fr);
    assert!(fr.contains("lang=\"fr\"") && fr.contains("L&#39;attaquant n&#39;avait plus accès"));
    let mut secrets: Vec<String> = sink.0.lock().expect("lock").values().cloned().collect();
    secrets.push(lab.user_password().expose_secret().to_owned());
    assert_no_secret(&report, &secrets);
    // the JSON goes back to the same report (Python and C read it)
    let back: IncidentReport =
        serde_json::from_str(&serde_json::to_string(&report).expect("json")).expect("parse");
    assert_eq!(back, report);

    // released later (a run of its own, its own incident): part of this incident's record
    let released = r
        .release(
            &crate::support::one(name.as_str()),
            cadenas::incident::ReleaseOptions::default().with_override_reason("report test"),
        )
        .await
        .expect("release");
    assert_ne!(released.incident, contained.incident);
    let after = report_of(&journal, &contained.incident);
    assert_eq!(after.summary.released, 1);
    assert_eq!(after.accounts[0].outcome, AccountOutcome::Released);
    assert!(after.accounts[0].released_at.is_some());
    assert_eq!(
        after.proof.records,
        report.proof.records + 1,
        "the release's outcome"
    );
    assert_eq!(after.summary.contained, 1, "released accounts were contained");
}

#[tokio::test]
async fn the_report_of_200_accounts_interrupted_and_resumed_counts_each_once() {
    let lab = OpenLdapLab::load();
    let journal = temp_journal("report-200");
    let r = cadenas::incident::Responder::new(&lab.config(), &journal)
        .await
        .expect("responder");
    let mut names = Vec::new();
    for i in 0..200 {
        names.push(lab.fresh_user(&format!("rep-many{i}")).await.0.to_string());
    }
    let sink = Arc::new(MemorySink::default());
    let mut opts = ContainOptions::new(sink.clone());
    let cancel = cadenas::incident::CancelToken::new();
    opts.cancel = Some(cancel.clone());
    let finished = Arc::new(AtomicUsize::new(0));
    let (c, f) = (cancel.clone(), finished.clone());
    opts.progress = Some(Arc::new(move |_p: &Progress| {
        if f.fetch_add(1, Ordering::SeqCst) + 1 == 60 {
            c.cancel();
        }
    }));
    let first = r
        .contain(&crate::support::refs(&names), opts)
        .await
        .expect("contain");
    assert!(first.cancelled);
    let mid = report_of(&journal, &first.incident);
    check_against_journal(&mid, &journal);
    assert!(
        mid.summary.needs_attention > 0,
        "the interrupted accounts: {:?}",
        mid.summary
    );
    assert!(mid
        .accounts
        .iter()
        .any(|a| a.outcome == AccountOutcome::Interrupted));
    assert_eq!(mid.runs.len(), 1);
    assert!(mid.runs[0].ended_at.is_none(), "no end record: interrupted");

    let resumed = r
        .resume(None, ContainOptions::new(sink.clone()))
        .await
        .expect("resume");
    assert_eq!(resumed.incident, first.incident);
    let report = report_of(&journal, &first.incident);
    let s = &report.summary;
    assert_eq!(
        (s.accounts, s.contained, s.needs_attention),
        (200, 200, 0),
        "{s:?}"
    );
    assert!(s.all_locked);
    // one reason for all 200 (no revoker configured): one group
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert_eq!(s.problems[0].users.len(), 200);
    assert_eq!(
        report.runs.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        vec!["contain", "resume"]
    );
    assert!(report.timeline.rows.is_empty(), "200 accounts: curves, not rows");
    for step in [Step::Lock, Step::ResetPassword, Step::RequireMfa] {
        let c = report
            .timeline
            .curves
            .iter()
            .find(|c| c.step == step)
            .expect("curve");
        assert_eq!(c.total, 200, "{step:?}");
        assert_eq!(c.points.last().map(|p| p.1), Some(200));
        assert!(c.points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
    check_against_journal(&report, &journal);
    // every account was reset once: the tries say so
    let resets: BTreeMap<u32, usize> = report.accounts.iter().fold(BTreeMap::new(), |mut m, a| {
        let tries = a
            .steps
            .iter()
            .find(|s| s.step == Step::ResetPassword)
            .map_or(0, |s| s.tries);
        *m.entry(tries).or_default() += 1;
        m
    });
    assert_eq!(resets, BTreeMap::from([(1, 200)]), "one reset per account");
    let secrets: Vec<String> = sink.0.lock().expect("lock").values().cloned().collect();
    assert_eq!(secrets.len(), 200);
    assert_no_secret(&report, &secrets);
}

#[tokio::test]
async fn refusals_and_a_failed_step_are_what_could_not_be_done_and_an_edit_breaks_the_proof() {
    let lab = OpenLdapLab::load();
    let journal = temp_journal("report-refused");
    let r = cadenas::incident::Responder::new(&lab.config(), &journal)
        .await
        .expect("responder");
    // a policy without pwdLockout: the lock is refused (LockIneffective), a failed step
    let no_lockout = format!("cn=no-lockout,ou=policies,{}", lab.get("CADENAS_LAB_SUFFIX"));
    let (failing, _) = lab
        .fresh_user_with("rep-nolock", &[("pwdPolicySubentry", &no_lockout)])
        .await;
    let (fine, _) = lab.fresh_user("rep-fine").await;
    let users = vec![
        failing.to_string(),
        "rep-ghost-nobody".to_owned(),
        fine.to_string(),
    ];
    let contained = r
        .contain(
            &crate::support::refs(&users),
            ContainOptions::new(Arc::new(MemorySink::default())),
        )
        .await
        .expect("contain");
    let report = report_of(&journal, &contained.incident);
    check_against_journal(&report, &journal);
    let s = &report.summary;
    assert_eq!(
        (s.accounts, s.contained, s.needs_attention, s.refused),
        (3, 1, 1, 1),
        "{s:?}"
    );
    assert!(!s.all_locked, "the attacker is not out of every account");
    assert!(s.to_last_lock_ms.is_some());
    let why_of = |user: &str| -> Vec<String> {
        s.problems
            .iter()
            .filter(|p| p.users.iter().any(|u| u == user))
            .map(|p| p.why.clone())
            .collect()
    };
    assert!(
        why_of(failing.as_str())
            .iter()
            .any(|w| w.contains("pwdLockout") || w.contains("lock")),
        "{s:?}"
    );
    assert!(
        why_of("rep-ghost-nobody").iter().any(|w| w.contains("no user")),
        "{s:?}"
    );
    let html = report.to_html(Language::En);
    assert!(html.contains("Not every account was locked"));
    assert!(!html.contains("id=\"broken\""));

    // one record edited (a user name in an outcome): the chain breaks there, the page says
    // so before anything else, and names the line
    let text = std::fs::read_to_string(&journal).expect("journal");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("\"event\":\"outcome\"") && l.contains(fine.as_str()))
        .expect("an outcome of the account");
    let forged_journal = temp_journal("report-forged");
    let mut forged: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    forged[at] = forged[at].replacen("\"status\":\"changed\"", "\"status\":\"already_so\"", 1);
    assert_ne!(forged[at], lines[at], "the record was edited");
    std::fs::write(&forged_journal, forged.join("\n") + "\n").expect("write");
    let broken = report_of(&forged_journal, &contained.incident);
    let bad = broken.proof.broken_at.as_ref().expect("the chain breaks");
    assert_eq!(bad.line, at + 1, "the edited record is named");
    assert!(!broken.proof.intact() && broken.proof.unproven_records > 0);
    assert_eq!(broken.summary.accounts, 3, "what still parses is shown");
    let page = broken.to_html(Language::En);
    let banner = page.find("THE JOURNAL DOES NOT VERIFY").expect("the banner");
    assert!(
        banner < page.find("id=\"summary\"").expect("summary"),
        "first screen"
    );
    assert!(page.contains(&format!("line {}", at + 1)));
    assert!(broken
        .to_markdown(Language::En)
        .contains("THE JOURNAL DOES NOT VERIFY"));
    let _ = std::fs::remove_file(&forged_journal);
}

#[tokio::test]
async fn an_incident_the_journal_does_not_hold_is_a_clear_error() {
    let journal = temp_journal("report-none");
    std::fs::write(&journal, "").expect("write");
    let e = IncidentReport::from_journal(
        &Location::File(journal.clone()),
        None,
        "no-such-incident\u{1b}[31m",
        &ReportOptions::default(),
    )
    .expect_err("no record");
    assert_eq!(e.kind(), cadenas::ErrorKind::InvalidInput);
    assert!(!e.message().contains('\u{1b}'), "escaped: {}", e.message());
}
