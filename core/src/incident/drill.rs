//! The fire drill: a real containment of a canary account through every configured step,
//! each verified on the servers, then the account back to its original state — what a
//! sysadmin runs monthly and shows their manager. Journal records and notifications say
//! DRILL (the incident is `DRILL-…`, its note says so).

use std::sync::Arc;

use serde::Serialize;

use super::report::ContainReport;
use super::sink::PasswordSink;
use super::{new_incident_id, ContainOptions, ReleaseOptions, Responder};
use crate::directory::{BindOutcome, LockState, User, UserRef};
use crate::error::{Error, ErrorKind};
use crate::journal::{Event, Step, StepStatus};
use crate::preflight::{Check, Verdict};
use crate::secret::Password;
use crate::session::Revoker;

/// One containment step of a drill: how it ended and how long it took on the servers (from
/// its intent to its outcome in the journal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DrillStep {
    /// The step.
    pub step: Step,
    /// How it ended.
    pub status: StepStatus,
    /// Milliseconds from its intent to its outcome, when both are journaled.
    pub millis: Option<u64>,
}

/// What a drill did and found.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct DrillReport {
    /// The drill's incident (`DRILL-…`), in the journal.
    pub incident: String,
    /// The canary's entry.
    pub dn: String,
    /// The containment's steps, with their times.
    pub steps: Vec<DrillStep>,
    /// From the first intent to the last outcome of the containment, in milliseconds.
    pub contain_millis: Option<u64>,
    /// What was verified on the servers, before, during and after.
    pub checks: Vec<Check>,
    /// The worst verdict of the checks and steps.
    pub verdict: Verdict,
}

/// The drill's password sink: the new password is never handed over (nobody uses a canary),
/// it is dropped and zeroized.
struct Discard;

impl PasswordSink for Discard {
    fn deliver(&self, _user: &str, _dn: &str, _password: &Password) -> Result<(), Error> {
        Ok(())
    }

    fn describe(&self) -> String {
        "drill: discarded".into()
    }
}

impl Responder {
    /// Drills the containment on `canary`, which must be one of the config's `[canary]`
    /// accounts: sets it a known password and checks it works, contains it through every
    /// configured step, verifies on the servers that the old password is refused, the account
    /// locked and its password to change, MFA required and no mail session left, then releases
    /// it and takes it out of the MFA group when it was not in before, and checks its lock and
    /// MFA state are the original ones (its password stays a random one).
    pub async fn drill(&self, canary: &UserRef) -> Result<DrillReport, Error> {
        let dir = self.directory();
        let user = dir.find_user(canary).await?;
        self.is_canary(&user).await?;
        let mut checks = Vec::new();
        let before = dir.account_state(&user).await?;
        // a password known to the drill, to see it refused afterwards
        let old = self.inner.cfg.password.generate()?;
        dir.reset_password(&user, &old, false).await?;
        let works = dir.check_password(&user.dn, &old).await?;
        checks.push(match works {
            BindOutcome::Success | BindOutcome::MustChange => {
                Check::ok("before: the canary's password works", "set by the drill")
            }
            other => Check::fail(
                "before: the canary's password works",
                format!("{other:?}"),
                "the canary must be able to log in before the drill: check its account",
            ),
        });
        let incident = format!("DRILL-{}", new_incident_id()?);
        let mut opts = ContainOptions::new(Arc::new(Discard));
        opts.incident = Some(incident.clone());
        opts.reason = Some("DRILL: fire drill of the containment on a canary account".into());
        let report = self.contain(std::slice::from_ref(canary), opts).await?;
        let (steps, contain_millis) = self.timed_steps(&incident, &report)?;
        checks.extend(self.verify_contained(&user, &old, &report).await);
        // back to the original state
        let mut release = ReleaseOptions::default().with_override_reason("DRILL: back to its original state");
        release.incident = Some(incident.clone());
        let released = self.release(canary, release).await;
        if before.mfa_required == Some(false) {
            dir.remove_from_mfa_group(&user).await?;
        }
        let after = dir.account_state(&user).await?;
        // unlocked again: the old password is refused for being wrong, not for the lock
        let reset = "after: the old password is wrong (the reset took)";
        checks.push(match dir.check_password(&user.dn, &old).await {
            Ok(BindOutcome::InvalidCredentials) => Check::ok(reset, "InvalidCredentials"),
            Ok(o) if after.lock != LockState::Unlocked => Check::warn(
                reset,
                format!("{o:?}: the account was locked before the drill, so this cannot be told"),
                "drill a canary that is unlocked",
            ),
            Ok(o) => Check::fail(
                reset,
                format!("{o:?}"),
                "check the reset step's outcome in the journal",
            ),
            Err(e) => Check::warn(reset, e.to_string(), "see the detail"),
        });
        let restored = "after: the original lock and MFA state";
        checks.push(match released {
            Ok(_) if after.lock == before.lock && after.mfa_required == before.mfa_required => Check::ok(
                restored,
                format!("lock {:?}, MFA required {:?}", after.lock, after.mfa_required),
            ),
            Ok(_) => Check::fail(
                restored,
                format!(
                    "lock {:?} (was {:?}), MFA required {:?} (was {:?})",
                    after.lock, before.lock, after.mfa_required, before.mfa_required
                ),
                "release the canary by hand (cadenas release) and look at the journal",
            ),
            Err(e) => Check::fail(
                restored,
                e.to_string(),
                "release the canary by hand (cadenas release)",
            ),
        });
        // a failed step fails the drill; a partial one (e.g. SMTP sessions without a policy
        // service) is a warning
        let of_steps = steps.iter().map(|s| match s.status {
            StepStatus::Failed => Verdict::Fail,
            StepStatus::Partial => Verdict::Warn,
            _ => Verdict::Ok,
        });
        let verdict = checks
            .iter()
            .map(|c| c.verdict)
            .chain(of_steps)
            .max()
            .unwrap_or(Verdict::Ok);
        Ok(DrillReport {
            incident,
            dn: user.dn.to_string(),
            steps,
            contain_millis,
            checks,
            verdict,
        })
    }

    /// Refuses any account that is not one of the config's `[canary]` accounts.
    async fn is_canary(&self, user: &User) -> Result<(), Error> {
        let dir = self.directory();
        let canaries = self
            .inner
            .cfg
            .canary
            .as_ref()
            .map(|c| c.accounts.clone())
            .unwrap_or_default();
        for name in &canaries {
            if let Ok(c) = dir.find_user(&UserRef::parse(name)?).await {
                if c.dn.same_entry(&user.dn) {
                    return Ok(());
                }
            }
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is not a [canary] account: a drill contains only the test accounts the config names",
                user.dn
            ),
        ))
    }

    /// The containment's steps with their durations, from the drill's journal records.
    fn timed_steps(
        &self,
        incident: &str,
        report: &ContainReport,
    ) -> Result<(Vec<DrillStep>, Option<u64>), Error> {
        let records = self.journal_or_err()?.records()?;
        let mut intents: Vec<(Step, i128)> = Vec::new();
        let mut durations: Vec<(Step, u64)> = Vec::new();
        let (mut first, mut last) = (None, None);
        for r in records.iter().filter(|r| r.incident == incident) {
            let Some(t) = crate::time::unix_millis(&r.time) else {
                continue;
            };
            match &r.event {
                Event::Intent { step, .. } => {
                    first.get_or_insert(t);
                    intents.push((*step, t));
                }
                Event::Outcome { step, .. } => {
                    if let Some((_, s)) = intents.iter().rev().find(|(st, _)| st == step) {
                        durations.push((*step, u64::try_from(t - s).unwrap_or(0)));
                    }
                    last = Some(t);
                }
                _ => {}
            }
        }
        let steps = report
            .users
            .first()
            .map(|u| {
                u.steps
                    .iter()
                    .map(|s| DrillStep {
                        step: s.step,
                        status: s.status,
                        millis: durations.iter().find(|(st, _)| *st == s.step).map(|(_, ms)| *ms),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let total = match (first, last) {
            (Some(a), Some(b)) => u64::try_from(b - a).ok(),
            _ => None,
        };
        Ok((steps, total))
    }

    /// What the containment must have done, seen on the servers.
    async fn verify_contained(&self, user: &User, old: &Password, report: &ContainReport) -> Vec<Check> {
        let dir = self.directory();
        let mut out = Vec::new();
        if let Some(e) = report.users.first().and_then(|u| u.refused.as_ref()) {
            out.push(Check::fail(
                "contain: the canary was contained",
                e.to_string(),
                "see the detail",
            ));
            return out;
        }
        out.push(match dir.check_password(&user.dn, old).await {
            Ok(BindOutcome::Success) | Ok(BindOutcome::MustChange) => Check::fail(
                "contained: the old password is refused",
                "the old password still logs in",
                "check the reset step's outcome in the journal",
            ),
            Ok(o) => Check::ok("contained: the old password is refused", format!("{o:?}")),
            Err(e) => Check::warn(
                "contained: the old password is refused",
                e.to_string(),
                "see the detail",
            ),
        });
        match dir.account_state(user).await {
            Ok(st) => {
                out.push(if st.lock != LockState::Unlocked && st.must_change {
                    Check::ok("contained: locked, password to change", format!("{:?}", st.lock))
                } else {
                    Check::fail(
                        "contained: locked, password to change",
                        format!("lock {:?}, must change {}", st.lock, st.must_change),
                        "check the lock and reset steps in the journal",
                    )
                });
                if dir.config().mfa_group_dn.is_some() {
                    out.push(if st.mfa_required == Some(true) {
                        Check::ok("contained: MFA required", "in the MFA group")
                    } else {
                        Check::fail(
                            "contained: MFA required",
                            "not in the MFA group",
                            "check the require_mfa step in the journal",
                        )
                    });
                }
            }
            Err(e) => out.push(Check::fail(
                "contained: locked, password to change",
                e.to_string(),
                "see the detail",
            )),
        }
        let login = dir.login_name(user).await.unwrap_or_default();
        for d in &self.inner.dovecots {
            let name = format!("contained: no session left on {}", d.name());
            out.push(match d.live_logins().await {
                Ok(Some(l)) if l.iter().any(|x| x.eq_ignore_ascii_case(&login)) => Check::fail(
                    name,
                    format!("{login} still has a session"),
                    "check the revoke step's outcome in the journal",
                ),
                Ok(_) => Check::ok(name, format!("no session of {login}")),
                Err(e) => Check::warn(name, e.to_string(), "check by hand (doveadm who)"),
            });
        }
        out
    }
}
