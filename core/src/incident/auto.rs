//! Containing an account without an operator, for a service's rule (the outbound policy
//! service's sending limits, the watcher's alerts) — within rails: at most `max_per_hour`
//! automatic containments (the caller counts them in its own durable record), never a
//! protected account (the containment's own rail), and a dry run that only says what it would
//! do.
//!
//! An automatic containment is a containment like any other — journaled, its reason in the
//! journal's start record — but without the reset (nobody is there to hand a new password
//! over): the account is **locked**, its sessions revoked (SMTP included) and its queued mail
//! held; an operator resets it later (`cadenas contain USER`, which finds it already locked).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ContainOptions, NoPasswordSink, Responder};
use crate::journal::Step;
use crate::notify::{notify_all, Notice, NoticeUser, Notifier, NotifyEvent};

/// What an automatic containment came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AutoOutcome {
    /// Contained: locked, sessions revoked, queued mail held — not reset.
    Contained {
        /// The containment's incident.
        incident: String,
    },
    /// Dry run: it would have been; nothing changed.
    WouldContain,
    /// Not: the hourly cap was reached.
    CapReached {
        /// Automatic containments (or dry-run ones) in the last hour.
        recent: usize,
    },
    /// Not: the containment refused the account (protected, unknown, out of scope) — or, in a
    /// dry run, would.
    Refused {
        /// Why.
        error: String,
    },
    /// Not: the containment failed (the directory unreachable, the lock refused).
    Failed {
        /// Why.
        error: String,
    },
}

impl AutoOutcome {
    /// Whether it takes a place among the hour's (contained, or would have been).
    pub fn counts(&self) -> bool {
        matches!(self, AutoOutcome::Contained { .. } | AutoOutcome::WouldContain)
    }

    /// In words, for the log and the notice.
    pub fn said(&self) -> String {
        match self {
            AutoOutcome::Contained { incident } => format!(
                "contained automatically (incident {incident}): locked, sessions revoked, queued mail held; NOT reset"
            ),
            AutoOutcome::WouldContain => {
                "would be contained automatically (dry run: nothing changed)".to_owned()
            }
            AutoOutcome::CapReached { recent } => format!(
                "NOT contained automatically: {recent} automatic containment(s) in the last hour already (max_per_hour)"
            ),
            AutoOutcome::Refused { error } => {
                format!("NOT contained automatically: the containment refuses it: {error}")
            }
            AutoOutcome::Failed { error } => format!("automatic containment failed: {error}"),
        }
    }
}

/// The rails' default cap: automatic containments in any hour.
pub(crate) fn default_max_per_hour() -> usize {
    3
}

/// The rails' default: a dry run, that only says what it would do.
pub(crate) fn default_dry_run() -> bool {
    true
}

/// The rails an automatic containment runs within.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rails {
    pub(crate) max_per_hour: usize,
    pub(crate) dry_run: bool,
}

/// Contains `account` (or says it would), within `rails`; `recent` is how many automatic
/// containments the last hour holds, `why` the journal's note (it starts with the service's
/// own words, by which its containments are known). Tells `notifiers` what it did.
pub(crate) async fn contain_automatically(
    cfg: &crate::Config,
    rails: Rails,
    recent: usize,
    account: &str,
    why: &str,
    notifiers: &[Arc<Notifier>],
) -> AutoOutcome {
    let outcome = if recent >= rails.max_per_hour {
        AutoOutcome::CapReached { recent }
    } else if rails.dry_run {
        would_contain(cfg, account).await
    } else {
        contain(cfg, account, why).await
    };
    let said = outcome.said();
    tracing::warn!(account = ?account, outcome = %said, why = %why, "automatic containment");
    let mut notice = Notice::new(
        NotifyEvent::NeedsAttention,
        match &outcome {
            AutoOutcome::Contained { incident } => Some(incident.clone()),
            _ => None,
        },
        vec![NoticeUser::new(account.to_owned(), None, said)],
    );
    notice.details.push(why.to_owned());
    notify_all(notifiers, &notice, None).await;
    outcome
}

/// The dry run: what the containment would say of the account (a protected one: refused).
async fn would_contain(cfg: &crate::Config, account: &str) -> AutoOutcome {
    let failed = |error: String| AutoOutcome::Failed { error };
    let user = match crate::directory::UserRef::parse(account) {
        Ok(u) => u,
        Err(e) => return AutoOutcome::Refused { error: e.to_string() },
    };
    let planner = match super::Planner::new(cfg).await {
        Ok(p) => p,
        Err(e) => return failed(e.to_string()),
    };
    match planner.plan(&[user], false).await {
        Ok(p) => match p.users.first().and_then(|u| u.refused.as_ref()) {
            Some(e) => AutoOutcome::Refused { error: e.to_string() },
            None => AutoOutcome::WouldContain,
        },
        Err(e) => failed(e.to_string()),
    }
}

/// Locks, revokes and holds the account's mail, journaled like any containment.
async fn contain(cfg: &crate::Config, account: &str, why: &str) -> AutoOutcome {
    let failed = |error: String| AutoOutcome::Failed { error };
    let responder = match Responder::from_config(cfg).await {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let mut opts = ContainOptions::new(Arc::new(NoPasswordSink));
    opts.steps = vec![Step::Lock, Step::RevokeSessions, Step::HoldMail];
    opts.reason = Some(why.to_owned());
    match responder.contain_names(&[account.to_owned()], opts).await {
        Ok(r) => match r.users.first() {
            Some(u)
                if u.refused.is_none()
                    && u.steps.iter().any(|s| s.step == Step::Lock && s.status.is_done()) =>
            {
                AutoOutcome::Contained { incident: r.incident }
            }
            Some(u) => match &u.refused {
                Some(e) => AutoOutcome::Refused { error: e.to_string() },
                None => failed("the lock failed".to_owned()),
            },
            None => failed("no report".into()),
        },
        Err(e) => failed(e.to_string()),
    }
}
