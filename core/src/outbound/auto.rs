//! Containing an account automatically when it exceeds a sending limit — only under an
//! explicit rule (`contain = true` on the limit) and within rails: at most `max_per_hour`
//! automatic containments (counted in the journal, so a restart does not reset them), never a
//! protected account (the containment's own rail), and a dry run by default.
//!
//! The containment itself is [`crate::incident::auto`]'s: locked, sessions revoked, queued
//! mail held, not reset.

use std::sync::Arc;

use serde::Deserialize;

use super::limits::Exceeded;
use crate::incident::auto::{contain_automatically, default_dry_run, default_max_per_hour, Rails};
use crate::incident::AutoOutcome;
use crate::journal::{Event, Record};
use crate::notify::Notifier;

/// The note that starts the journal record of an automatic containment (how they are counted).
pub(crate) const AUTO_NOTE: &str = "automatic containment by the outbound policy service";

/// `[outbound.auto_contain]`: the rails of automatic containments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AutoContainConfig {
    /// At most this many automatic containments in any hour. Default 3.
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: usize,
    /// Only say what would be done (log, `needs_attention` notifiers). Default true.
    #[serde(default = "default_dry_run")]
    pub dry_run: bool,
}

impl Default for AutoContainConfig {
    fn default() -> Self {
        Self {
            max_per_hour: default_max_per_hour(),
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
    let rails = Rails {
        max_per_hour: rails.max_per_hour,
        dry_run: rails.dry_run,
    };
    contain_automatically(cfg, rails, recent, &x.account, &why, notifiers).await
}
