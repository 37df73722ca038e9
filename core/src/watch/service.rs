//! The watcher as a service: each round reads the logs ([`Watcher::poll`]), then handles every
//! alert not yet journaled — told through the `[[notify]]` entries that want `alert` (the SMS
//! line, the command in it), contained automatically where `[watch.auto_contain]` lets its
//! rule (within the rails: [`crate::incident::auto`]), and journaled under its own identifier.
//!
//! The journal is opened only to write and closed right after: a `cadenas contain` run by
//! hand meanwhile never waits for the watcher's lock.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Alert, Watcher};
use crate::error::{Error, ErrorKind};
use crate::incident::auto::{contain_automatically, Rails};
use crate::incident::AutoOutcome;
use crate::journal::{Event, Journal, Location};
use crate::notify::{notify_all, Notice, NotificationOutcome, Notifier, NotifyEvent};
use crate::secret::Secret;
use crate::session::Revoker;

/// The journal note that starts an automatic containment by the watcher.
const AUTO_NOTE: &str = "automatic containment by the watcher";

/// An alert and what the watcher did about it — the journal's record of it, the same shape
/// in `--json`, Python and C.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HandledAlert {
    /// The alert.
    pub alert: Alert,
    /// What its automatic containment came to, when its rule may contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<AutoOutcome>,
    /// One outcome per message sent about it.
    #[serde(default)]
    pub notifications: Vec<NotificationOutcome>,
}

impl HandledAlert {
    pub(super) fn new(alert: Alert) -> Self {
        Self {
            alert,
            automatic: None,
            notifications: Vec::new(),
        }
    }
}

/// The watcher, its notifiers, its rails and the journal its alerts are written to.
pub struct WatchService {
    watcher: Watcher,
    /// The Dovecots whose Sieve scripts are read after a ManageSieve login (`[mail]
    /// sieve_via`), and the local domains.
    sieve: Vec<Arc<crate::session::Dovecot>>,
    local_domains: Vec<String>,
    cfg: crate::Config,
    notifiers: Vec<Arc<Notifier>>,
    attention: Vec<Arc<Notifier>>,
    journal: Location,
    key: Option<Secret>,
}

impl std::fmt::Debug for WatchService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchService")
            .field("watcher", &self.watcher)
            .field("journal", &self.journal.to_string())
            .finish_non_exhaustive()
    }
}

impl WatchService {
    /// The service for `cfg`: its `[watch]` section, the `[journal]` every alert is written
    /// to, the `[[notify]]` entries that want `alert` (and `needs_attention`, told what an
    /// automatic containment did).
    pub fn new(cfg: &crate::Config) -> Result<Self, Error> {
        let watch = cfg
            .watch
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Config, "the config has no [watch] section"))?;
        let journal = cfg.journal.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "the watcher journals every alert: configure [journal]",
            )
        })?;
        let all = crate::notify::build_notifiers(&cfg.notify)?;
        let (_, dovecots) = crate::session::build_revokers_and_dovecots(&cfg.revokers)?;
        let (sieve, local_domains) = match &cfg.mail {
            Some(m) => (
                dovecots
                    .into_iter()
                    .filter(|d| m.reads_sieve_via(d.name()))
                    .collect(),
                m.local_domains.clone(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let wanting = |e: NotifyEvent| all.iter().filter(|n| n.wants(e)).cloned().collect::<Vec<_>>();
        Ok(Self {
            watcher: Watcher::open(watch)?,
            sieve,
            local_domains,
            notifiers: wanting(NotifyEvent::Alert),
            attention: wanting(NotifyEvent::NeedsAttention),
            journal: journal.location()?,
            key: journal.key()?,
            cfg: cfg.clone(),
        })
    }

    /// One round: reads what the logs gained, then handles every alert not yet journaled
    /// (this round's, and any a crash left behind) — returned in the order raised.
    pub async fn poll(&mut self) -> Result<Vec<HandledAlert>, Error> {
        self.watcher.poll()?;
        self.check_mail_rules().await?;
        let pending = self.watcher.state.pending()?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let mut handled = Vec::with_capacity(pending.len());
        for (id, mut h, done) in pending {
            if !done {
                self.handle(&mut h).await?;
                self.watcher.state.set_handled(id, &h)?;
            }
            handled.push((id, h));
        }
        // a containment running holds a journal file for its whole run: these alerts are sent
        // already, and journaled at a later round (never a round held up by the lock)
        let Some(journal) = Journal::open_at_now(&self.journal, self.key.clone())? else {
            tracing::info!(
                alerts = handled.len(),
                "watch: the journal is busy (a containment is running); the alerts, sent, are journaled at a later round"
            );
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(handled.len());
        for (id, h) in handled {
            journal
                .append(
                    &h.alert.id,
                    vec![Event::Alert {
                        alert: h.alert.clone(),
                        automatic: h.automatic.clone(),
                        notifications: h.notifications.clone(),
                    }],
                )
                .await?;
            self.watcher.state.mark_sent(id)?;
            out.push(h);
        }
        Ok(out)
    }

    /// Reads the Sieve scripts of the accounts whose ManageSieve login's checks are due; an
    /// active script sending mail outside, not seen on the account before, is an alert. A
    /// Dovecot that does not answer is asked again at the next round, for ten minutes.
    async fn check_mail_rules(&mut self) -> Result<(), Error> {
        let now = crate::time::unix_now() as i64;
        for (id, account, ip, due) in self.watcher.state.due_mail_rule_checks(now)? {
            let mut found = Vec::new();
            let mut failed = None;
            for d in &self.sieve {
                match crate::incident::mail_rules_on(d, &account, &self.local_domains, false).await {
                    Ok(rules) => {
                        for r in rules.into_iter().filter(|r| r.active) {
                            let to: Vec<&str> = r.redirects.iter().map(|x| x.target.as_str()).collect();
                            found.push((
                                r.sha256,
                                format!(
                                    "active Sieve script {:?} on {} sends mail to {}",
                                    r.script,
                                    r.server,
                                    to.join(", ")
                                ),
                            ));
                        }
                    }
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                if now < due + 600 {
                    tracing::warn!(account = ?account, error = %e, "watch: the Sieve scripts could not be read; trying again");
                    continue;
                }
                tracing::error!(account = ?account, error = %e, "watch: the Sieve scripts could not be read for ten minutes; this check is given up");
            }
            self.watcher.mail_rule_checked(id, &account, &ip, &found)?;
        }
        Ok(())
    }

    /// Tells the notifiers, then contains automatically where the rule may.
    async fn handle(&self, h: &mut HandledAlert) -> Result<(), Error> {
        h.notifications = notify_all(&self.notifiers, &Notice::of_alert(&h.alert), None).await;
        let rails = &self.watcher.cfg.auto_contain;
        let Some(account) = h.alert.account.clone() else {
            return Ok(());
        };
        if !rails.rules.contains(&h.alert.rule) {
            return Ok(());
        }
        let now = crate::time::unix_now() as i64;
        let recent = self.watcher.state.automatic_since(now - 3600)?;
        let why = format!(
            "{AUTO_NOTE}: alert {}, rule {}: {} from {} ({})",
            h.alert.id,
            h.alert.rule.name(),
            crate::escape_controls(&account),
            h.alert.ip,
            h.alert.detail
        );
        let rails = Rails {
            max_per_hour: rails.max_per_hour,
            dry_run: rails.dry_run,
        };
        let outcome = contain_automatically(&self.cfg, rails, recent, &account, &why, &self.attention).await;
        if outcome.counts() {
            self.watcher.state.took_automatic(now)?;
        }
        h.automatic = Some(outcome);
        Ok(())
    }
}

/// The alerts the journal at `location` holds — what running watchers raised and did about
/// them — oldest first; with `since`, those raised from then on (the alerts' own times). The
/// chain is verified as it is read (and the MACs, with `key`).
pub fn journaled_alerts(
    location: &Location,
    key: Option<&Secret>,
    since: Option<crate::investigate::Instant>,
) -> Result<Vec<HandledAlert>, Error> {
    Ok(location
        .records(key)?
        .into_iter()
        .filter_map(|r| match r.event {
            Event::Alert {
                alert,
                automatic,
                notifications,
            } => Some(HandledAlert {
                alert,
                automatic,
                notifications,
            }),
            _ => None,
        })
        .filter(|h| {
            since.is_none_or(|s| crate::investigate::Instant::parse(&h.alert.at).is_ok_and(|t| t >= s))
        })
        .collect())
}
