//! The dry run: what `contain` would do, computed from each account's current state by the
//! same code that would send it (`Directory::preview`), without changing anything.

use super::report::{PlanReport, PlannedStep, UserPlan};
use super::Responder;
use crate::directory::{Action, Directory, User};
use crate::error::Error;
use crate::journal::{Step, StepStatus};

pub(super) async fn plan(
    r: &Responder,
    users: &[String],
    allow_protected: bool,
) -> Result<PlanReport, Error> {
    let mut out = Vec::with_capacity(users.len());
    let protected = r.protected_snapshot(users.len(), allow_protected).await;
    for (i, user) in users.iter().enumerate() {
        let lent = r.inner.pool.lend(i);
        let dir = &lent.dir;
        let mut p = UserPlan {
            user: user.clone(),
            dn: None,
            refused: None,
            steps: Vec::new(),
        };
        let u = match r.admit(dir, user, allow_protected, protected.as_ref()).await {
            Ok(u) => u,
            Err(e) => {
                p.refused = Some(e);
                out.push(p);
                continue;
            }
        };
        p.dn = Some(u.dn.to_string());
        // Each directory step is previewed by the code that would send it.
        p.steps.push(previewed(dir, &u, Step::Lock, Action::Lock).await);
        p.steps
            .push(previewed(dir, &u, Step::ResetPassword, Action::ResetPassword).await);
        let login = dir.login_name(&u).await?;
        let calls: Vec<String> = r
            .inner
            .cfg
            .revokers
            .iter()
            .map(|rv| match rv {
                crate::session::RevokerConfig::Dovecot(d) => {
                    let sieve = match &r.inner.cfg.mail {
                        Some(m) if m.reads_sieve_via(&d.name) => format!(
                            ", sieve list/get user={login} ({} an active script that sends mail outside {:?})",
                            if m.disable_external_redirects {
                                "deactivate"
                            } else {
                                "report"
                            },
                            m.local_domains
                        ),
                        _ => String::new(),
                    };
                    format!(
                        "dovecot {:?} at {}: who, authCacheFlush user={login}, kick mask={login} (one request), then who until the sessions are gone{sieve}",
                        d.name, d.url
                    )
                }
                crate::session::RevokerConfig::Webhook(w) => {
                    format!("webhook {:?}: signed POST to {} for user={login}", w.name, w.url)
                }
                crate::session::RevokerConfig::Command(c) => format!(
                    "command {:?}: {} (user={login} as one argument)",
                    c.name,
                    c.program.display()
                ),
            })
            .collect();
        let mut calls = calls;
        let smtp_refused = match (&r.inner.cfg.outbound, &r.inner.cfg.mail) {
            (Some(o), _) => {
                calls.push(format!(
                    "outbound policy service at {}: ask as Postfix does (sasl_username={login}) until it \
                     answers REJECT, for at most {} ms",
                    o.listen.first().map(String::as_str).unwrap_or("-"),
                    o.confirm_timeout_ms
                ));
                true
            }
            (None, Some(_)) => {
                calls.push(super::mail::SMTP_NOT_REFUSED.to_owned());
                false
            }
            (None, None) => true,
        };
        // Revocation is always attempted; what it finds is only known when it runs.
        let none = calls.is_empty();
        p.steps.push(PlannedStep {
            step: Step::RevokeSessions,
            predicted: if none || !smtp_refused {
                StepStatus::Partial
            } else {
                StepStatus::Changed
            },
            actions: if none {
                vec!["no revokers configured: live sessions would not be revoked".into()]
            } else {
                calls
            },
        });
        if r.inner.queue.is_some() {
            p.steps.push(r.plan_hold_mail(user, &login).await);
        }
        // The status follows the group membership, as in `contain`; dropping an enrolment is
        // listed but does not make the step "changed".
        let mut mfa_step = previewed(dir, &u, Step::RequireMfa, Action::RequireMfa).await;
        if let Some(m) = &r.inner.mfa {
            if let Some(st) = m.enrolment_state(&login)? {
                mfa_step.actions.push(format!(
                    "delete the existing TOTP enrolment of {login} ({st:?}) and its recovery codes"
                ));
            }
        }
        p.steps.push(mfa_step);
        out.push(p);
    }
    Ok(PlanReport {
        users: out,
        pivot: None,
        address_actions: Vec::new(),
    })
}

/// One directory step as `Directory::preview` computes it; a primitive that would refuse (e.g.
/// a lock the policy would ignore) is predicted `failed`, with the reason.
async fn previewed(dir: &Directory, u: &User, step: Step, action: Action) -> PlannedStep {
    let (predicted, actions) = match dir.preview(u, action).await {
        Ok((true, actions)) => (StepStatus::Changed, actions),
        Ok((false, actions)) => (StepStatus::AlreadySo, actions),
        Err(e) => (StepStatus::Failed, vec![format!("would fail: {e}")]),
    };
    PlannedStep {
        step,
        predicted,
        actions,
    }
}
