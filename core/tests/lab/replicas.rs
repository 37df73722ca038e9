//! Every replica checked, against the lab's real OpenLDAP syncrepl replica
//! (`lab/openldap.sh replica`, built and started here, stopped at the end): stopped, the
//! replica is reported pending; started again, it converges. Not while the 6000-account test
//! runs: a replica replays each of its group updates as the whole group entry, and lags by
//! minutes.

use std::sync::Arc;

use cadenas::directory::LockState;
use cadenas::incident::{ContainOptions, Responder};
use cadenas::journal::{self, Event};

use crate::incident::{temp_journal, MemorySink};
use crate::support::OpenLdapLab;

const REPLICA: &str = "ldaps://127.0.0.1:6361";

fn openldap_sh(arg: &str) {
    crate::support::lab_script("openldap.sh", arg);
}

#[tokio::test]
async fn a_stopped_replica_is_reported_pending_and_converges_once_started() {
    let _alone = crate::support::exclusive().await;
    openldap_sh("replica");
    let lab = OpenLdapLab::load();
    let cfg = lab.config_with(|t| {
        t.replacen(
            "[directory]\n",
            &format!("[directory]\nreplicas = [\"{REPLICA}\"]\nreplica_wait_secs = 30\n"),
            1,
        )
    });
    let journal_path = temp_journal("replicas");
    let r = Responder::new(&cfg, &journal_path).await.expect("responder");

    // the replica is up: it shows the lock within the wait
    let (seen, _) = lab.fresh_user("repl-seen").await;
    let report = r
        .contain(
            &[crate::support::one(&seen.to_string())],
            ContainOptions::new(Arc::new(MemorySink::default())),
        )
        .await
        .expect("contain");
    assert_eq!(report.replicas.len(), 1, "{report:#?}");
    let check = &report.replicas[0];
    assert_eq!(check.url, REPLICA);
    assert!(check.error.is_none() && check.pending.is_empty(), "{check:#?}");
    assert_eq!(
        check.seen.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
        [seen.as_str()]
    );
    let st = r
        .status_report(&crate::support::one(seen.as_str()), None)
        .await
        .expect("status");
    assert_eq!(st.replicas[0].lock, Some(LockState::Locked), "{:?}", st.replicas);

    // stopped: the account is contained on the primary, pending on the replica
    openldap_sh("replica-stop");
    let (pending, _) = lab.fresh_user("repl-pending").await;
    let report = r
        .contain(
            &[crate::support::one(&pending.to_string())],
            ContainOptions::new(Arc::new(MemorySink::default())),
        )
        .await;
    openldap_sh("replica-start");
    let report = report.expect("contain");
    assert_eq!(report.done(), 1, "the containment itself is done: {report:#?}");
    let check = &report.replicas[0];
    assert_eq!(check.pending, [pending.to_string()], "{check:#?}");
    assert!(
        check.error.is_some(),
        "the replica could not be reached: {check:#?}"
    );
    assert!(
        report
            .not_revoked
            .iter()
            .any(|n| n.contains(&format!("pending on {REPLICA}")) && n.contains(pending.as_str())),
        "{:?}",
        report.not_revoked
    );

    // started again: it catches up (syncrepl), and status shows it
    let mut lock = None;
    for _ in 0..150 {
        lock = r
            .status_report(&crate::support::one(pending.as_str()), None)
            .await
            .expect("status")
            .replicas[0]
            .lock
            .clone();
        if lock == Some(LockState::Locked) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(lock, Some(LockState::Locked), "the replica converged");
    let checks = journal::read(&journal_path)
        .expect("journal")
        .into_iter()
        .filter(|rec| matches!(rec.event, Event::ReplicaChecks { .. }))
        .count();
    assert_eq!(checks, 2, "each run's replica check is journaled");
    openldap_sh("replica-stop");
}
