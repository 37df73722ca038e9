//! The dry run: what `contain` would do, computed from each account's current state, without
//! changing anything.

use super::report::{PlanReport, PlannedStep, UserPlan};
use super::Responder;
use crate::directory::ad::{UF_ACCOUNTDISABLE, UF_DONT_EXPIRE_PASSWD};
use crate::directory::{Flavour, LockState, PasswordHashing};
use crate::error::Error;
use crate::journal::{Step, StepStatus};

pub(super) async fn plan(
    r: &Responder,
    users: &[String],
    allow_protected: bool,
) -> Result<PlanReport, Error> {
    let mut out = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        let dir = &r.inner.pool[i % r.inner.pool.len()];
        let mut p = UserPlan {
            user: user.clone(),
            dn: None,
            refused: None,
            steps: Vec::new(),
        };
        let u = match r.admit(dir, user, allow_protected).await {
            Ok(u) => u,
            Err(e) => {
                p.refused = Some(e);
                out.push(p);
                continue;
            }
        };
        p.dn = Some(u.dn.to_string());
        let state = dir.account_state(&u).await?;
        let cfg = &r.inner.cfg;
        let dn = u.dn.as_str();
        let step = |step, changed: bool, actions: Vec<String>| PlannedStep {
            step,
            predicted: if changed {
                StepStatus::Changed
            } else {
                StepStatus::AlreadySo
            },
            actions,
        };
        let locked = state.lock == LockState::Locked;
        let uac: Option<u32> = state
            .attributes
            .get("userAccountControl")
            .and_then(|v| v.first())
            .and_then(|v| v.parse::<i64>().ok())
            .map(|v| v as u32);
        let length = cfg.password.length;
        match dir.flavour() {
            Flavour::OpenLdap => {
                p.steps.push(step(
                    Step::Lock,
                    !locked,
                    if locked {
                        vec![]
                    } else {
                        vec![
                            "check the effective password policy has pwdLockout: TRUE".into(),
                            format!("modify {dn}: replace pwdAccountLockedTime: 000001010000Z"),
                        ]
                    },
                ));
                let set = match cfg.directory.password_hashing {
                    PasswordHashing::Server => format!("RFC 3062 password modify of {dn} (new random {length}-character password, hashed by the server)"),
                    PasswordHashing::ClientArgon2 => format!("modify {dn}: replace userPassword: {{ARGON2}}<argon2id of a new random {length}-character password>"),
                };
                p.steps.push(step(Step::ResetPassword, true, vec![
                    set,
                    format!("modify {dn}: replace pwdReset: TRUE (if the policy did not add it), re-apply pwdAccountLockedTime (ppolicy deletes it on a password set)"),
                ]));
            }
            Flavour::ActiveDirectory => {
                let uac = uac.unwrap_or(0);
                p.steps.push(step(
                    Step::Lock,
                    uac & UF_ACCOUNTDISABLE == 0,
                    if uac & UF_ACCOUNTDISABLE != 0 {
                        vec![]
                    } else {
                        vec![format!(
                            "modify {dn}: replace userAccountControl: {} -> {}",
                            uac as i32,
                            (uac | UF_ACCOUNTDISABLE) as i32
                        )]
                    },
                ));
                let mut reset = format!(
                    "modify {dn}: replace unicodePwd: <new random {length}-character password, quoted UTF-16LE>; replace pwdLastSet: 0"
                );
                if uac & UF_DONT_EXPIRE_PASSWD != 0 {
                    let locked_uac = uac | UF_ACCOUNTDISABLE;
                    reset.push_str(&format!(
                        "; replace userAccountControl: {} -> {} (clear DONT_EXPIRE_PASSWD, restored on release)",
                        locked_uac as i32,
                        (locked_uac & !UF_DONT_EXPIRE_PASSWD) as i32
                    ));
                }
                p.steps.push(step(Step::ResetPassword, true, vec![reset]));
            }
        }
        let login = dir.login_name(&u).await?;
        let calls: Vec<String> = r
            .inner
            .cfg
            .revokers
            .iter()
            .map(|rv| match rv {
                crate::session::RevokerConfig::Dovecot(d) => format!(
                    "dovecot {:?} at {}: who, authCacheFlush user={login}, kick mask={login}",
                    d.name, d.url
                ),
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
        // Revocation is always attempted; what it finds is only known when it runs.
        p.steps.push(PlannedStep {
            step: Step::RevokeSessions,
            predicted: if calls.is_empty() {
                StepStatus::Partial
            } else {
                StepStatus::Changed
            },
            actions: if calls.is_empty() {
                vec!["no revokers configured: live sessions would not be revoked".into()]
            } else {
                calls
            },
        });
        let member = state.mfa_required == Some(true);
        let mut actions = Vec::new();
        if let Some(g) = &cfg.directory.mfa_group_dn {
            if !member {
                actions.push(format!("modify {g}: add member: {dn}"));
            }
        }
        if let Some(m) = &r.inner.mfa {
            if let Some(st) = m.enrolment_state(&login)? {
                actions.push(format!(
                    "delete the existing TOTP enrolment of {login} ({st:?}) and its recovery codes"
                ));
            }
        }
        p.steps.push(step(Step::RequireMfa, !member, actions));
        out.push(p);
    }
    Ok(PlanReport { users: out })
}
