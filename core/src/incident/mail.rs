//! The containment's mail steps: what becomes of the account's SMTP sessions (the outbound
//! policy service, part of the revoke step) and its mail still in the Postfix queue (the
//! hold-mail step).

use super::report::{PlannedStep, UserReport};
use super::Responder;
use crate::error::{Error, ErrorKind};
use crate::investigate::Instant;
use crate::journal::{Step, StepDetail, StepStatus};
use crate::postfix::{MailLog, SentMail};
use crate::session::{RevocationOutcome, RevocationStatus};

/// What a mail site without an outbound policy service must know.
pub(super) const SMTP_NOT_REFUSED: &str = "SMTP sessions authenticated before the containment may keep \
     sending until they close: no outbound policy service is configured ([outbound])";

impl Responder {
    /// What each account sent since `since`, from `[postfix] log_files` read once for the
    /// whole run, put into its report (by the name given, or the login its lock journaled).
    /// A log that cannot be read is a note of the run: it changes nothing done.
    pub(super) async fn sent_mail(&self, users: &mut [UserReport], since: Instant, notes: &mut Vec<String>) {
        let files = self
            .inner
            .cfg
            .postfix
            .as_ref()
            .map(|p| p.log_files.clone())
            .unwrap_or_default();
        let records = self.inner.cfg.outbound.as_ref().and_then(|o| o.database.clone());
        if files.is_empty() && records.is_none() {
            return;
        }
        let local = self.local_domains();
        let domains = local.clone();
        let read = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let mut sent = if files.is_empty() {
                std::collections::HashMap::new()
            } else {
                MailLog::read(&files, Some(since), None)?.sent(&domains)
            };
            // the policy service's own records, where it runs on this host: what the log
            // does not have (or no log at all)
            if let Some(db) = records.filter(|p| p.exists()) {
                for r in crate::outbound::read_records(&db, since.unix())? {
                    sent.entry(r.login.to_ascii_lowercase())
                        .or_insert_with(|| SentMail::nothing(r.login.clone()))
                        .count(
                            &r.queue_id,
                            Some(Instant::from_unix(r.time)),
                            r.recipients as usize,
                            &r.client_address,
                        );
                }
            }
            Ok(sent)
        })
        .await;
        let sent = match read {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return notes.push(format!("what the accounts sent could not be read: {e}")),
            Err(e) => return notes.push(format!("what the accounts sent could not be read: {e}")),
        };
        for u in users.iter_mut().filter(|u| u.refused.is_none()) {
            let login = u.steps.iter().find_map(|s| s.detail.login.clone());
            let names: Vec<String> = std::iter::once(u.user.clone()).chain(login).collect();
            let found = sent
                .values()
                .filter(|s| crate::postfix::login_matches(&s.login, &names, &local))
                .fold(None::<SentMail>, |acc, s| {
                    Some(acc.map_or_else(|| s.clone(), |a| a.merged(s)))
                });
            let mut s = found.unwrap_or_else(|| SentMail::nothing(names.last().cloned().unwrap_or_default()));
            s.since = Some(since);
            u.sent_mail = Some(s);
        }
    }

    /// The hold-mail step of a plan: the account's messages in the queue now (read, never
    /// changed), and the `postsuper` the step would run.
    pub(super) async fn plan_hold_mail(&self, user: &str, login: &str) -> PlannedStep {
        let mut step = PlannedStep {
            step: Step::HoldMail,
            predicted: StepStatus::AlreadySo,
            actions: Vec::new(),
        };
        let Some(queue) = &self.inner.queue else {
            return step;
        };
        let names = [user.to_owned(), login.to_owned()];
        let local = self.local_domains();
        match queue.messages().await {
            Ok(all) => {
                let mine: Vec<&crate::postfix::QueuedMail> =
                    crate::postfix::submitted_by(&all, &names, &local)
                        .filter(|m| m.queue != "hold")
                        .collect();
                if mine.is_empty() {
                    step.actions.push(format!(
                        "no message submitted by {login} in the Postfix queue now"
                    ));
                } else {
                    step.predicted = StepStatus::Changed;
                    let ids: Vec<&str> = mine.iter().map(|m| m.queue_id.as_str()).collect();
                    let domains =
                        crate::postfix::outside_domains(mine.iter().flat_map(|m| &m.recipients), &local);
                    step.actions.push(format!(
                        "postsuper -h {} ({} message(s) submitted by {login}, outside domains: {})",
                        ids.join(" "),
                        mine.len(),
                        if domains.is_empty() {
                            "none".into()
                        } else {
                            domains.join(", ")
                        }
                    ));
                }
            }
            Err(e) => {
                step.predicted = StepStatus::Failed;
                step.actions.push(format!("would fail: {e}"));
            }
        }
        step
    }

    /// `[mail] local_domains`.
    pub(super) fn local_domains(&self) -> Vec<String> {
        self.inner
            .cfg
            .mail
            .as_ref()
            .map(|m| m.local_domains.clone())
            .unwrap_or_default()
    }

    /// What happens to the account's SMTP sessions: with `[outbound]`, the policy service is
    /// asked (as Postfix asks it) until it refuses the login — `revoked` from now on, or a
    /// failure if it does not within `confirm_timeout_ms`; without it, on a mail site
    /// (`[mail]`), that authenticated sessions may keep sending until they close.
    pub(super) async fn smtp_outcome(&self, user: &str, login: &str) -> Option<RevocationOutcome> {
        let Some(out) = &self.inner.cfg.outbound else {
            self.inner.cfg.mail.as_ref()?;
            let mut o = RevocationOutcome::new("smtp");
            o.not_revoked.push(SMTP_NOT_REFUSED.into());
            return Some(o);
        };
        let mut o = RevocationOutcome::new("outbound-policy");
        let addr = match out.addresses() {
            Ok(mut a) if !a.is_empty() => a.remove(0),
            Ok(_) => return Some(o.failed(Error::new(ErrorKind::Config, "outbound: no listen address"))),
            Err(e) => return Some(o.failed(e)),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(out.confirm_timeout_ms);
        let mut last_err: Option<Error>;
        // the login Postfix sees, then the name the responder was given (a mail address; not
        // an explicit `dn:`, which no SMTP client logs in with)
        let names = std::iter::once(login).chain((user != login && !user.starts_with("dn:")).then_some(user));
        for name in names {
            let req = crate::outbound::PolicyRequest::rcpt(name, "");
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match crate::outbound::ask(&addr, &req, left.max(std::time::Duration::from_millis(100))).await
                {
                    Ok(crate::outbound::Verdict::Reject(_)) => break,
                    Ok(_) => last_err = None,
                    Err(e) => last_err = Some(e),
                }
                if std::time::Instant::now() >= deadline {
                    let e = last_err.take().unwrap_or_else(|| {
                        Error::new(
                            ErrorKind::RevokerFailed,
                            format!(
                                "the outbound policy service at {addr} did not refuse {name:?} within {} ms \
                                 (does it read this journal?): SMTP sessions authenticated before the \
                                 containment may keep sending",
                                out.confirm_timeout_ms
                            ),
                        )
                    });
                    return Some(o.failed(e));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        o.status = RevocationStatus::Revoked;
        Some(o)
    }

    /// The hold-mail step: the account's messages still in the Postfix queue, found by the
    /// SASL login that submitted them (the name given, or the login name), put on hold.
    pub(super) async fn hold_mail(&self, user: &str, login: &str) -> (StepStatus, StepDetail) {
        let failed = |e: Error| (StepStatus::Failed, StepDetail::of_error(e));
        let Some(queue) = &self.inner.queue else {
            return failed(Error::new(
                ErrorKind::Config,
                "hold mail needs a [postfix] section",
            ));
        };
        let logins = [user.to_owned(), login.to_owned()];
        let local = self.local_domains();
        match queue.hold_from(&logins, &local).await {
            Ok(h) => {
                let status = if !h.gone.is_empty() {
                    StepStatus::Partial
                } else if h.messages.is_empty() {
                    StepStatus::AlreadySo
                } else {
                    StepStatus::Changed
                };
                let mut d = StepDetail::default();
                if !h.gone.is_empty() {
                    d.note = Some(format!(
                        "{} message(s) left the queue (delivered or bounced) before they could be held",
                        h.gone.len()
                    ));
                }
                d.held_mail = Some(h);
                (status, d)
            }
            Err(e) => failed(e),
        }
    }
}
