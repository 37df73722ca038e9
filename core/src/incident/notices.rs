//! What a run tells the people who must know ([`crate::notify`]): the accounts contained, the
//! ones that need attention, a release. Sent after the directory steps; the outcomes go into
//! the report and the journal, and never change the run's result.

use super::report::UserReport;
use super::Responder;
use crate::error::Error;
use crate::journal::{Event, StepStatus};
use crate::notify::{notify_all, Notice, NoticeUser, NotificationOutcome, NotifyEvent};

/// One line per account: each step and how it ended, or why it was refused.
fn summary(u: &UserReport) -> String {
    if let Some(e) = &u.refused {
        return format!("refused: {}", e.message());
    }
    let steps: Vec<String> = u
        .steps
        .iter()
        .map(|s| format!("{} {}", s.step.name(), s.status.name()))
        .collect();
    let mut line = steps.join(", ");
    if u.interrupted {
        line.push_str(" (interrupted)");
    }
    line
}

/// Lines about this account only: the mail rules its revoke step found, its mail held in the
/// queue, its SMTP refused, and the flagged attributes changed since the time asked for (not
/// the containment's own changes).
fn details(u: &UserReport) -> Vec<String> {
    let changes = u
        .changes
        .iter()
        .flatten()
        .filter(|c| c.flagged && c.group.is_none())
        .map(|c| {
            let now = if c.redacted || c.new.is_empty() {
                String::new()
            } else {
                format!(" (now: {})", c.new.join(", "))
            };
            format!("{}: {} changed at {}{now}", u.user, c.attribute, c.time)
        });
    let rules = u.steps.iter().flat_map(|s| &s.detail.mail_rules).map(|m| {
        let targets: Vec<&str> = m.redirects.iter().map(|r| r.target.as_str()).collect();
        let state = if m.deactivated {
            "switched off"
        } else if m.active {
            "STILL ACTIVE"
        } else {
            "inactive"
        };
        format!(
            "{}: mail rule {:?} sending mail to {} — {state}",
            u.user,
            m.script,
            targets.join(", ")
        )
    });
    let held = u
        .steps
        .iter()
        .filter_map(|s| s.detail.held_mail.as_ref())
        .filter(|h| !h.messages.is_empty())
        .map(|h| {
            let outside = if h.outside_domains.is_empty() {
                String::new()
            } else {
                format!(" (outside domains: {})", h.outside_domains.join(", "))
            };
            format!(
                "{}: {} message(s) to {} recipient(s) held in the mail queue{outside}",
                u.user,
                h.messages.len(),
                h.recipients()
            )
        });
    let smtp = u
        .steps
        .iter()
        .flat_map(|s| &s.detail.revocations)
        .filter(|o| o.revoker == "outbound-policy" && o.status == crate::session::RevocationStatus::Revoked)
        .map(|_| {
            format!(
                "{}: every new message refused by the outbound policy service",
                u.user
            )
        });
    let sent = u
        .sent_mail
        .iter()
        .map(|s| format!("{}: {}", u.user, s.describe()));
    rules.chain(sent).chain(held).chain(smtp).chain(changes).collect()
}

fn notice_user(u: &UserReport) -> NoticeUser {
    let mut n = NoticeUser::new(&u.user, u.dn.clone(), summary(u));
    n.details = details(u);
    n
}

impl Responder {
    /// Whether any notifier is configured.
    pub(super) fn notifies(&self) -> bool {
        !self.inner.notifiers.is_empty()
    }

    /// Sends the run's notices (accounts contained by this run; accounts that need attention)
    /// and journals the outcomes.
    pub(super) async fn notify_run(
        &self,
        incident: &str,
        users: &[UserReport],
        not_revoked: &[String],
    ) -> Result<Vec<NotificationOutcome>, Error> {
        let contained: Vec<NoticeUser> = users
            .iter()
            .filter(|u| u.complete() && u.changed_something())
            .map(notice_user)
            .collect();
        let attention: Vec<NoticeUser> = users.iter().filter(|u| !u.complete()).map(notice_user).collect();
        let mut out = Vec::new();
        for (event, list) in [
            (NotifyEvent::Contained, contained),
            (NotifyEvent::NeedsAttention, attention),
        ] {
            let mut notice = Notice::new(event, Some(incident.to_owned()), list);
            notice.details = not_revoked.to_vec();
            out.extend(self.send_notice(&notice).await);
        }
        self.journal_notified(incident, &out).await?;
        Ok(out)
    }

    /// Sends the notice of a release and journals the outcomes.
    pub(super) async fn notify_release(
        &self,
        incident: &str,
        user: &str,
        dn: &str,
        status: StepStatus,
    ) -> Result<Vec<NotificationOutcome>, Error> {
        let u = NoticeUser::new(
            user,
            Some(dn.to_owned()),
            format!("restore_flags {}", status.name()),
        );
        let notice = Notice::new(NotifyEvent::Released, Some(incident.to_owned()), vec![u]);
        let out = self.send_notice(&notice).await;
        self.journal_notified(incident, &out).await?;
        Ok(out)
    }

    async fn send_notice(&self, notice: &Notice) -> Vec<NotificationOutcome> {
        let dir = self.directory();
        notify_all(&self.inner.notifiers, notice, Some(&dir)).await
    }

    async fn journal_notified(&self, incident: &str, outcomes: &[NotificationOutcome]) -> Result<(), Error> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.journal_or_err()?
            .append(
                incident,
                vec![Event::Notified {
                    outcomes: outcomes.to_vec(),
                }],
            )
            .await
            .map(|_| ())
    }
}
