//! Following the attacker from a [`Responder`]: who was seen from the attacker's addresses
//! ([`Responder::sightings`]), the plan and the containment of all of them
//! ([`Responder::plan_from`], [`Responder::contain_from`]), and the mail rules an attacker
//! leaves behind ([`Responder::status_report`], and the revoke step of every containment).

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::report::{ContainReport, PlanReport, StatusReport};
use super::{ContainOptions, Responder};
use crate::directory::UserRef;
use crate::error::{Error, ErrorKind};
use crate::investigate::{
    find_external_redirects, read_auth_log, AddressRange, Instant, MailRule, Pivot, PivotReport, Sighting,
    SightingKind,
};
use crate::journal::{Event, StepDetail, StepStatus};
use crate::session::{Dovecot, RevocationOutcome, Revoker};

impl Responder {
    /// Who was seen from `pivot.range`: live sessions on every configured Dovecot, and logins
    /// (and failed logins) in the pivot's log files (default: `[mail] auth_logs`) inside its
    /// time window. Changes nothing. A Dovecot or a log file that cannot be read is an error:
    /// a pivot never silently leaves a source out.
    ///
    /// ```no_run
    /// # async fn demo(responder: &cadenas::incident::Responder) -> Result<(), cadenas::Error> {
    /// use cadenas::investigate::{AddressRange, Instant, Pivot};
    ///
    /// let mut pivot = Pivot::new(AddressRange::parse("203.0.113.0/24")?);
    /// pivot.auth_logs = vec!["/var/log/dovecot.log".into(), "/var/log/dovecot.log.1.gz".into()];
    /// pivot.since = Some(Instant::parse("36h")?);
    /// let seen = responder.sightings(&pivot).await?;
    /// for user in &seen.users {
    ///     println!("{user}: {}", seen.why(user));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn sightings(&self, pivot: &Pivot) -> Result<PivotReport, Error> {
        let default_logs = self
            .inner
            .cfg
            .mail
            .as_ref()
            .map(|m| m.auth_logs.as_slice())
            .unwrap_or_default();
        let smtp_logs = self
            .inner
            .cfg
            .postfix
            .as_ref()
            .map(|p| p.log_files.as_slice())
            .unwrap_or_default();
        sightings(&self.inner.dovecots, default_logs, smtp_logs, pivot).await
    }

    /// The dry run of [`contain_from`](Self::contain_from): the pivot (who, from which
    /// address, when, on which server), each account's plan, and the kick by address.
    pub async fn plan_from(&self, pivot: &Pivot, allow_protected: bool) -> Result<PlanReport, Error> {
        let seen = self.sightings(pivot).await?;
        let mut plan = super::plan::plan(self, &seen.users, allow_protected).await?;
        plan.address_actions = self
            .inner
            .dovecots
            .iter()
            .map(|d| {
                format!(
                    "dovecot {:?}: kick mask={} (every session from the range, of any account, after the \
                     accounts' steps)",
                    d.name(),
                    pivot.range
                )
            })
            .collect();
        plan.pivot = Some(seen);
        Ok(plan)
    }

    /// Contains every account seen from `pivot.range` (live sessions and successful logins;
    /// accounts only *tried* are listed, not contained), through the same rails as any
    /// containment (scope, protected groups, the responder's own account), then kicks every
    /// session from the range on each Dovecot — of refused or out-of-scope accounts too — and
    /// says in `not_revoked` whose password still works.
    pub async fn contain_from(&self, pivot: &Pivot, opts: ContainOptions) -> Result<ContainReport, Error> {
        let seen = self.sightings(pivot).await?;
        let mut opts = opts;
        opts.kick_from = Some(pivot.range);
        opts.changes_since = opts.changes_since.or(pivot.since);
        let why = format!(
            "pivot on {}: {} account(s) seen ({})",
            pivot.range,
            seen.users.len(),
            seen.sources.join("; ")
        );
        opts.reason = Some(match opts.reason.take() {
            Some(r) => format!("{r}; {why}"),
            None => why,
        });
        let mut report = self.contain_names(&seen.users, opts).await?;
        for u in &report.users {
            if let Some(e) = &u.refused {
                report.not_revoked.push(format!(
                    "{} was seen from {} but not contained ({}): its sessions from the range were kicked, \
                     its password still works",
                    u.user,
                    pivot.range,
                    e.message()
                ));
            }
        }
        report.pivot = Some(seen);
        Ok(report)
    }

    /// Kicks every session from `range` on each Dovecot and journals it (the end of a run with
    /// [`ContainOptions::kick_from`]).
    pub(super) async fn kick_range(
        &self,
        incident: &str,
        range: &AddressRange,
    ) -> Result<Vec<RevocationOutcome>, Error> {
        let mut outcomes = Vec::with_capacity(self.inner.dovecots.len());
        for d in &self.inner.dovecots {
            let o = d.kick_from(range).await;
            tracing::info!(revoker = d.name(), %range, status = ?o.status, closed = o.sessions_closed, "kick by address");
            outcomes.push(o);
        }
        self.journal_or_err()?
            .append(
                incident,
                vec![Event::AddressKick {
                    range: range.to_string(),
                    outcomes: outcomes.clone(),
                }],
            )
            .await?;
        Ok(outcomes)
    }

    /// The account's state and, with `[mail]` configured, its Sieve scripts that send mail
    /// outside the local domains (read, never changed).
    /// With `changes_since`, also what changed on the entry since then (see
    /// [`Directory::changes_since`](crate::directory::Directory::changes_since)).
    pub async fn status_report(
        &self,
        user: &UserRef,
        changes_since: Option<Instant>,
    ) -> Result<StatusReport, Error> {
        let dir = self.directory();
        let u = dir.find_user(user).await?;
        let account = dir.account_state(&u).await?;
        let mail_rules = if self.inner.cfg.mail.is_some() {
            self.mail_rules_of(&dir.login_name(&u).await?, false).await?
        } else {
            Vec::new()
        };
        let changes = match changes_since {
            Some(t) => Some(dir.changes_since(&u, t.unix()).await?),
            None => None,
        };
        let replicas = self.replica_states(&u).await;
        Ok(StatusReport {
            account,
            mail_rules,
            changes,
            replicas,
        })
    }

    /// The user's Sieve scripts that send mail outside `[mail] local_domains`, read through
    /// each Dovecot `[mail] sieve_via` names; with `deactivate`, an active one is deactivated.
    async fn mail_rules_of(&self, login: &str, deactivate: bool) -> Result<Vec<MailRule>, Error> {
        let Some(mail) = &self.inner.cfg.mail else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for d in self
            .inner
            .dovecots
            .iter()
            .filter(|d| mail.reads_sieve_via(d.name()))
        {
            out.extend(mail_rules_on(d, login, &mail.local_domains, deactivate).await?);
        }
        Ok(out)
    }

    /// The revoke step's mail-rule part, read (and deactivated where configured): `None`
    /// without a `[mail]` section.
    pub(super) async fn read_mail_rules(&self, login: &str) -> Option<Result<Vec<MailRule>, Error>> {
        let mail = self.inner.cfg.mail.as_ref()?;
        Some(self.mail_rules_of(login, mail.disable_external_redirects).await)
    }
}

/// The revoke step's mail-rule part, judged: adds the rules `read` to `detail` and lowers
/// `status` where a rule stays active or could not be checked.
pub(super) fn judge_mail_rules(
    read: Option<Result<Vec<MailRule>, Error>>,
    status: StepStatus,
    detail: &mut StepDetail,
) -> StepStatus {
    let Some(read) = read else {
        return status;
    };
    match read {
        Ok(rules) => {
            let left_active = rules.iter().filter(|r| r.active && !r.deactivated).count();
            let deactivated = rules.iter().any(|r| r.deactivated);
            detail.mail_rules = rules;
            if left_active > 0 {
                detail.note = Some(
                    "an active Sieve script sends mail outside the local domains and was left active \
                     ([mail] disable_external_redirects = false)"
                        .into(),
                );
                return match status {
                    StepStatus::Failed => StepStatus::Failed,
                    _ => StepStatus::Partial,
                };
            }
            if deactivated && status == StepStatus::AlreadySo {
                return StepStatus::Changed;
            }
            status
        }
        Err(e) => {
            detail.note = Some("the user's Sieve scripts could not be checked".into());
            if detail.error.is_none() {
                detail.error = Some(e);
            }
            StepStatus::Failed
        }
    }
}

/// [`Responder::sightings`] without a directory connection: live sessions on `dovecots` and
/// logins in the pivot's log files (default `default_logs`). What `cadenas sessions` runs, so
/// that it works while the directory is down.
pub async fn sightings(
    dovecots: &[Arc<Dovecot>],
    default_logs: &[std::path::PathBuf],
    default_smtp_logs: &[std::path::PathBuf],
    pivot: &Pivot,
) -> Result<PivotReport, Error> {
    let mut all: Vec<Sighting> = Vec::new();
    let mut sources = Vec::new();
    for d in dovecots {
        let sessions = d.sessions_from(&pivot.range).await?;
        sources.push(format!(
            "dovecot {:?}: {} live session(s) from {}",
            d.name(),
            sessions.len(),
            pivot.range
        ));
        all.extend(sessions.into_iter().map(|s| Sighting {
            user: s.user,
            ip: s.ip,
            kind: SightingKind::LiveSession,
            service: s.service,
            source: d.name().to_owned(),
            count: 1,
            first_seen: None,
            last_seen: None,
        }));
    }
    let logs = if pivot.auth_logs.is_empty() {
        default_logs.to_vec()
    } else {
        pivot.auth_logs.clone()
    };
    for path in logs {
        let p = pivot.clone();
        let file = path.clone();
        let lines = tokio::task::spawn_blocking(move || read_auth_log(&file, &p))
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("log reader failed: {e}")))??;
        sources.push(format!(
            "log {}: {} login line(s) from {}",
            path.display(),
            lines.len(),
            pivot.range
        ));
        all.extend(lines.into_iter().map(|l| Sighting {
            user: l.user,
            ip: l.ip,
            kind: if l.failed {
                SightingKind::FailedLogin
            } else {
                SightingKind::LoggedIn
            },
            service: l.service,
            source: path.display().to_string(),
            count: 1,
            first_seen: l.time,
            last_seen: l.time,
        }));
    }
    let smtp_logs = if pivot.smtp_logs.is_empty() {
        default_smtp_logs.to_vec()
    } else {
        pivot.smtp_logs.clone()
    };
    for path in smtp_logs {
        let (file, since, until) = (path.clone(), pivot.since, pivot.until);
        let log = tokio::task::spawn_blocking(move || crate::postfix::MailLog::read(&[file], since, until))
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("log reader failed: {e}")))??;
        let lines: Vec<_> = log
            .logins()
            .iter()
            .filter(|l| pivot.range.contains_text(&l.ip) && !l.user.is_empty())
            .collect();
        sources.push(format!(
            "Postfix log {}: {} SMTP AUTH line(s) from {}",
            path.display(),
            lines.len(),
            pivot.range
        ));
        all.extend(lines.into_iter().map(|l| Sighting {
            user: l.user.clone(),
            ip: l.ip.clone(),
            kind: if l.failed {
                SightingKind::FailedLogin
            } else {
                SightingKind::LoggedIn
            },
            service: "smtp".into(),
            source: path.display().to_string(),
            count: 1,
            first_seen: l.time,
            last_seen: l.time,
        }));
    }
    if dovecots.is_empty() && sources.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "nothing to look in: no Dovecot revoker is configured and no log file was given",
        ));
    }
    Ok(PivotReport::from_sightings(pivot, all, sources))
}

/// The user's Sieve scripts on Dovecot `d` that send mail outside `local_domains` (the
/// commands, the script's SHA-256, whether it is the active one); with `deactivate`, an
/// active one is deactivated.
pub(crate) async fn mail_rules_on(
    d: &Dovecot,
    login: &str,
    local_domains: &[String],
    deactivate: bool,
) -> Result<Vec<MailRule>, Error> {
    let mut out = Vec::new();
    for s in d.sieve_scripts(login).await? {
        let redirects = find_external_redirects(&s.text, local_domains);
        if redirects.is_empty() {
            continue;
        }
        let mut rule = MailRule {
            server: d.name().to_owned(),
            script: s.name,
            active: s.active,
            sha256: hex::encode(Sha256::digest(s.text.as_bytes())),
            redirects,
            deactivated: false,
        };
        if deactivate && s.active {
            d.sieve_deactivate(login).await?;
            rule.deactivated = true;
            tracing::info!(revoker = d.name(), script = %rule.script, "external redirect deactivated");
        }
        out.push(rule);
    }
    Ok(out)
}
