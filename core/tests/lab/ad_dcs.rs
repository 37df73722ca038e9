//! Two domain controllers: the lab's Samba AD DC (DC1, the PDC emulator) and a second DC
//! joined to its domain (`lab/samba.sh dc2`, built here: 127.0.0.2, replication both ways).
//! Writes go to the PDC emulator whatever DC the URL reaches; every other DC is checked as a
//! replica — stopped it is "pending", started again it converges.

use std::sync::Arc;

use cadenas::directory::LockState;
use cadenas::directory::{AdWriteDc, Directory};
use cadenas::incident::{ContainOptions, Responder};

use crate::incident::{temp_journal, MemorySink};
use crate::support::{AdLab, AnyLab};

const DC2: &str = "ldaps://127.0.0.2:636";

fn samba_sh(arg: &str) {
    crate::support::lab_script("samba.sh", arg);
}

/// The AD lab config with `url` pointing at DC2, DC2 as a replica, and `extra` directory keys.
fn via_dc2(lab: &AnyLab, extra: &str) -> cadenas::Config {
    lab.config_with(|t| {
        t.replacen(
            "[directory]\n",
            &format!("[directory]\nreplicas = [\"{DC2}\"]\nreplica_wait_secs = 40\n{extra}"),
            1,
        )
        .replacen("url = \"ldaps://127.0.0.1:636\"", &format!("url = \"{DC2}\""), 1)
    })
}

#[tokio::test]
async fn writes_go_to_the_pdc_emulator_and_the_second_dc_is_checked_until_it_shows_the_lock() {
    let _alone = crate::support::exclusive().await;
    samba_sh("dc2");
    let lab = AnyLab::Ad(AdLab::load());
    // a connection to DC2 as configured: DC2 knows it is not the PDC emulator, and names DC1
    let as_configured = via_dc2(&lab, "ad_write_dc = \"as-configured\"\n");
    assert_eq!(as_configured.directory.ad_write_dc, AdWriteDc::AsConfigured);
    let dc2 = Directory::connect(&as_configured.directory).await.expect("DC2");
    assert_eq!(dc2.config().url.as_str(), DC2);
    assert_eq!(
        dc2.pdc_emulator().await.expect("fSMORoleOwner").as_deref(),
        Some("dc1.example.test")
    );
    // by default the same URL leads the writes to DC1
    let cfg = via_dc2(&lab, "");
    let pdc = Directory::connect(&cfg.directory).await.expect("PDC");
    assert_eq!(pdc.config().url.as_str(), "ldaps://dc1.example.test:636");
    assert_eq!(
        pdc.pdc_emulator().await.expect("fSMORoleOwner"),
        None,
        "DC1 is the PDC"
    );

    let (name, dn) = lab.fresh_user("dcs").await;
    let path = temp_journal("ad-dcs");
    let r = Responder::new(&cfg, &path).await.expect("responder");
    let report = r
        .contain(
            &[crate::support::one(&name.to_string())],
            ContainOptions::new(Arc::new(MemorySink::default())),
        )
        .await
        .expect("contain");
    assert!(report.users[0].complete(), "{report:#?}");
    // the lock is on DC1 the moment contain returns (read there by another connection)
    let on_dc1 = Directory::connect(&lab.config().directory).await.expect("DC1");
    let user = on_dc1
        .find_user(&cadenas::directory::UserRef::Name(name.clone()))
        .await
        .expect("find");
    assert_eq!(user.dn.as_str(), dn.as_str());
    assert_ne!(
        on_dc1.account_state(&user).await.expect("state").lock,
        LockState::Unlocked
    );
    // DC2 was read until it showed the lock
    assert_eq!(report.replicas.len(), 1, "{:?}", report.replicas);
    let check = &report.replicas[0];
    assert_eq!(check.url, DC2);
    assert!(check.error.is_none() && check.pending.is_empty(), "{check:?}");
    assert_eq!(check.seen.len(), 1, "{check:?}");

    drop(r);
    // DC2 stopped: the next containment is "contained on the primary, pending on DC2"
    samba_sh("dc2-stop");
    let (other, _) = lab.fresh_user("dcs2").await;
    // (the URL names DC1 now: a URL that reaches no DC cannot lead anywhere)
    let cfg_short = lab.config_with(|t| {
        t.replacen(
            "[directory]\n",
            &format!("[directory]\nreplicas = [\"{DC2}\"]\nreplica_wait_secs = 2\n"),
            1,
        )
    });
    let r2 = Responder::new(&cfg_short, &path).await.expect("responder");
    let report = r2
        .contain(
            &[crate::support::one(&other.to_string())],
            ContainOptions::new(Arc::new(MemorySink::default())),
        )
        .await
        .expect("contain");
    let check = &report.replicas[0];
    assert_eq!(check.pending, vec![other.to_string()], "{check:?}");
    assert!(check.error.is_some(), "unreachable: {check:?}");
    assert!(
        report
            .not_revoked
            .iter()
            .any(|n| n.contains(&format!("pending on {DC2}")) && n.contains(other.as_str())),
        "{:?}",
        report.not_revoked
    );
    // started again, it catches up: status shows the lock on DC2 within a few pulls
    samba_sh("dc2-start");
    let mut seen = None;
    for _ in 0..60 {
        let st = r2
            .status_report(&crate::support::one(other.as_str()), None)
            .await
            .expect("status");
        if let Some(l) = st.replicas.first().and_then(|s| s.lock.clone()) {
            if l != LockState::Unlocked {
                seen = Some(l);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(seen.is_some(), "DC2 converged");
}
