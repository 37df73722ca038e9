//! Containing an account automatically when it exceeds a sending limit — only under an
//! explicit rule (`contain = true` on the limit) and within rails: at most `max_per_hour`
//! automatic containments (counted in the journal, so a restart does not reset them), never a
//! protected account (the containment's own rail), and a dry run by default.
//!
//! An automatic containment is a containment like any other — journaled, with its reason —
//! but without the reset (nobody is there to hand a new password over): the account is
//! **locked**, its sessions revoked (SMTP included) and its queued mail held; an operator
//! resets it later (`cadenas contain USER`, which finds it already locked).

use std::sync::Arc;

use serde::Deserialize;

use super::limits::Exceeded;
use crate::incident::{ContainOptions, NoPasswordSink, Responder};
use crate::journal::{Event, Record, Step};
use crate::notify::{notify_all, Notice, NoticeUser, Notifier, NotifyEvent};

/// The note that starts the journal record of an automatic containment (how they are counted).
pub(crate) const AUTO_NOTE: &str = "automatic containment by the outbound policy service";

/// `[outbound.auto_contain]`: the rails of automatic containments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AutoContainConfig {
    /// At most this many automatic containments in any hour. Default 3.
    #[serde(default = "default_max")]
    pub max_per_hour: usize,
    /// Only say what would be done (log, `needs_attention` notifiers). Default true.
    #[serde(default = "default_dry_run")]
    pub dry_run: bool,
}

fn default_max() -> usize {
    3
}
fn default_dry_run() -> bool {
    true
}

impl Default for AutoContainConfig {
    fn default() -> Self {
        Self {
            max_per_hour: default_max(),
            dry_run: default_dry_run(),
        }
    }
}

/// The automatic containments the journal records: (incident, Unix time).
pub(crate) fn auto_starts(records: &[Record]) -> impl Iterator<Item = (String, i64)> + '_ {
    records.iter().filter_map(|r| match &r.event {
        Event::IncidentStart { note: Some(n), .. } if n.starts_with(AUTO_NOTE) => {
            time::OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| (r.incident.clone(), t.unix_timestamp()))
        }
        _ => None,
    })
}

/// What an automatic containment came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AutoOutcome {
    /// Contained (incident).
    Contained(String),
    /// Dry run: it would have been.
    WouldContain,
    /// Not: the hourly cap is reached.
    CapReached,
    /// Not: the containment refused or failed (why).
    Failed(String),
}

/// Contains `x.account` (or says it would), within the rails; `recent` is how many automatic
/// containments the last hour holds. Tells the `needs_attention` notifiers what it did.
pub(crate) async fn auto_contain(
    cfg: &crate::Config,
    rails: &AutoContainConfig,
    recent: usize,
    x: &Exceeded,
    notifiers: &[Arc<Notifier>],
) -> AutoOutcome {
    let why = format!(
        "{AUTO_NOTE}: {} {} within {} s (limit {}) from {}",
        x.count,
        x.counts.name(),
        x.window_secs,
        x.max,
        x.client_addresses.join(", ")
    );
    let outcome = if recent >= rails.max_per_hour {
        AutoOutcome::CapReached
    } else if rails.dry_run {
        AutoOutcome::WouldContain
    } else {
        contain(cfg, &x.account, &why).await
    };
    let said = match &outcome {
        AutoOutcome::Contained(i) => format!("contained automatically (incident {i}): locked, sessions revoked, queued mail held; NOT reset"),
        AutoOutcome::WouldContain => "would be contained automatically (dry run: nothing changed)".to_owned(),
        AutoOutcome::CapReached => format!(
            "NOT contained automatically: {} automatic containment(s) in the last hour already (max_per_hour)",
            recent
        ),
        AutoOutcome::Failed(e) => format!("automatic containment failed: {e}"),
    };
    tracing::warn!(account = ?x.account, outcome = %said, "outbound: sending limit rule");
    let mut notice = Notice::new(
        NotifyEvent::NeedsAttention,
        match &outcome {
            AutoOutcome::Contained(i) => Some(i.clone()),
            _ => None,
        },
        vec![NoticeUser::new(x.account.clone(), None, said)],
    );
    notice.details.push(why);
    notify_all(notifiers, &notice, None).await;
    outcome
}

/// Locks, revokes and holds the account's mail, journaled like any containment.
async fn contain(cfg: &crate::Config, account: &str, why: &str) -> AutoOutcome {
    let responder = match Responder::from_config(cfg).await {
        Ok(r) => r,
        Err(e) => return AutoOutcome::Failed(e.to_string()),
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
                AutoOutcome::Contained(r.incident)
            }
            Some(u) => AutoOutcome::Failed(
                u.refused
                    .as_ref()
                    .map_or_else(|| "the lock failed".to_owned(), |e| e.to_string()),
            ),
            None => AutoOutcome::Failed("no report".into()),
        },
        Err(e) => AutoOutcome::Failed(e.to_string()),
    }
}
