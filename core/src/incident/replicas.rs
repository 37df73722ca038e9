//! Every replica checked: a lock written on the primary protects nothing on a replica that has
//! not seen it yet, and a replica answers binds. After a containment, each replica of
//! `[directory] replicas` is read until it shows every contained account locked, for at most
//! `replica_wait_secs`; the report says per replica when it saw them, or which accounts are
//! "contained on the primary, pending on R". [`Responder::status_report`] shows the lock on each
//! replica too.

use std::time::{Duration, Instant as Clock};

use super::report::UserReport;
use super::Responder;
use crate::directory::{Directory, Dn, LdapUrl, LockState, ReplicaCheck, ReplicaState, User};
use crate::error::Error;
use crate::journal::Event;

impl Responder {
    /// A connection to the replica at `url`, with the primary's settings otherwise.
    async fn replica(&self, url: &LdapUrl) -> Result<Directory, Error> {
        let mut cfg = self.inner.cfg.directory.clone();
        cfg.url = url.clone();
        cfg.replicas = Vec::new();
        // a replica is read where it is, never redirected to the PDC emulator
        cfg.ad_write_dc = crate::directory::AdWriteDc::AsConfigured;
        Directory::connect(&cfg).await
    }

    /// Waits until every replica shows the contained users of `users` locked (bounded by
    /// `replica_wait_secs`), journals and returns what each showed.
    pub(super) async fn check_replicas(
        &self,
        incident: &str,
        users: &[UserReport],
    ) -> Result<Vec<ReplicaCheck>, Error> {
        let replicas = &self.inner.cfg.directory.replicas;
        let contained: Vec<(String, Dn)> = users
            .iter()
            .filter(|u| u.refused.is_none() && !u.steps.is_empty())
            .filter_map(|u| Some((u.user.clone(), Dn::parse(u.dn.as_deref()?).ok()?)))
            .collect();
        if replicas.is_empty() || contained.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = Duration::from_secs(self.inner.cfg.directory.replica_wait_secs);
        let mut out = Vec::with_capacity(replicas.len());
        for url in replicas {
            let started = Clock::now();
            let mut check = ReplicaCheck {
                url: url.to_string(),
                seen: Vec::new(),
                pending: Vec::new(),
                error: None,
            };
            let mut pending = contained.clone();
            match self.replica(url).await {
                Err(e) => check.error = Some(e),
                Ok(dir) => {
                    loop {
                        let mut still = Vec::new();
                        for (user, dn) in pending {
                            let u = User::at(dn.clone());
                            match dir.account_state(&u).await {
                                Ok(st) if st.lock != LockState::Unlocked => {
                                    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                                    check.seen.push((user, ms));
                                }
                                // not replicated yet (unlocked, or the entry not there yet)
                                _ => still.push((user, dn)),
                            }
                        }
                        pending = still;
                        if pending.is_empty() || started.elapsed() >= deadline {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    dir.close().await;
                }
            }
            check.pending = pending.into_iter().map(|(u, _)| u).collect();
            tracing::info!(replica = %check.url, seen = check.seen.len(), pending = check.pending.len(), "replica check");
            out.push(check);
        }
        self.journal_or_err()?
            .append(incident, vec![Event::ReplicaChecks { checks: out.clone() }])
            .await?;
        Ok(out)
    }

    /// The lock of `user` (by DN) on each replica.
    pub(super) async fn replica_states(&self, user: &User) -> Vec<ReplicaState> {
        let mut out = Vec::new();
        for url in &self.inner.cfg.directory.replicas {
            let r = match self.replica(url).await {
                Ok(dir) => {
                    let st = dir.account_state(user).await;
                    dir.close().await;
                    st
                }
                Err(e) => Err(e),
            };
            out.push(match r {
                Ok(st) => ReplicaState {
                    url: url.to_string(),
                    lock: Some(st.lock),
                    error: None,
                },
                Err(e) => ReplicaState {
                    url: url.to_string(),
                    lock: None,
                    error: Some(e),
                },
            });
        }
        out
    }
}
