//! One account's steps: each with an intent journaled before and an outcome after, what a
//! step does on the servers, and when a reset must not run again.

use std::collections::HashMap;

use super::pivot::judge_mail_rules;
use super::place::{Going, Place};
use super::pool::connection_lost;
use super::report::{StepReport, UserReport};
use super::{status_of, ContainOptions, Contained, EarlierSteps, Responder};
use crate::directory::{ChangeOutcome, Directory, LockState, User};
use crate::error::{Error, ErrorKind};
use crate::journal::{Event, Step, StepDetail, StepStatus};
use crate::session::{revoke_all, RevocationStatus, RevocationTarget};

/// What one account's steps run with: the incident, the name as given, the steps an earlier
/// run finished, the run's options, and the entries other incidents contained.
#[derive(Clone, Copy)]
pub(super) struct Steps<'a> {
    pub(super) incident: &'a str,
    pub(super) user: &'a str,
    pub(super) earlier: &'a EarlierSteps,
    pub(super) opts: &'a ContainOptions,
    pub(super) contained: &'a HashMap<String, Contained>,
}

impl Responder {
    /// Wave 2 for one user: the containment steps after the lock.
    pub(super) async fn finish_user(
        &self,
        incident: &str,
        mut report: UserReport,
        going: &mut Going,
        earlier: &EarlierSteps,
        opts: &ContainOptions,
        contained: &HashMap<String, Contained>,
    ) -> UserReport {
        // checked by run() before any user starts
        let mut steps: Vec<Step> = opts
            .checked_steps()
            .unwrap_or_else(|_| Step::CONTAIN.to_vec())
            .into_iter()
            .filter(|s| *s != Step::Lock)
            .collect();
        // A lock that failed in the first wave is tried again first (journaled like any try);
        // the report keeps the last try, with the first one's error in a note.
        let first_try = match report.steps.last() {
            Some(s) if s.step == Step::Lock && s.status == StepStatus::Failed && !s.from_earlier_run => {
                steps.insert(0, Step::Lock);
                report.steps.pop()
            }
            _ => None,
        };
        let user = report.user.clone();
        let of = Steps {
            incident,
            user: &user,
            earlier,
            opts,
            contained,
        };
        self.run_steps(&of, &steps, &mut report, going).await;
        if let Some(first) = first_try {
            let why = first
                .detail
                .error
                .as_ref()
                .map_or_else(|| "no error recorded".to_owned(), |e| e.message().to_owned());
            match report.steps.iter_mut().find(|s| s.step == Step::Lock) {
                Some(again) => {
                    let note = format!(
                        "tried again after the other accounts were locked; the first try failed: {why}"
                    );
                    again.detail.note = Some(match again.detail.note.take() {
                        Some(n) => format!("{n}; {note}"),
                        None => note,
                    });
                }
                // not tried again (cancelled, or the journal failed): the first try stands
                None => report.steps.insert(0, first),
            }
        }
        // what the attacker may have changed (read-only, after the steps)
        if let Some(since) = opts.changes_since {
            // work on the server again: with a place, like the steps
            if let Some(place) = going.place.as_mut() {
                place.take_back().await;
            }
            match going.lent.dir.changes_since(&going.u, since.unix()).await {
                Ok(c) => report.changes = Some(c),
                Err(e) => report.changes_error = Some(e),
            }
        }
        report
    }

    /// Runs `steps` for one user, each with an intent journaled before and an outcome after.
    /// `false` when the user must stop (cancelled, or the journal could not be written).
    pub(super) async fn run_steps(
        &self,
        of: &Steps<'_>,
        steps: &[Step],
        report: &mut UserReport,
        going: &mut Going,
    ) -> bool {
        let Steps {
            incident,
            user,
            earlier,
            opts,
            contained,
        } = *of;
        let Ok(journal) = self.journal_or_err() else {
            return false;
        };
        let dn = going.u.dn.to_string();
        // A step's outcome goes to the journal with the next step's intent, in one durable
        // write (the outcome is durable before the next step changes anything, as if written
        // alone); the last one alone, at the end.
        let mut outcome: Option<Event> = None;
        for &step in steps {
            if let Some((status, detail)) = earlier.get(&step) {
                report.steps.push(StepReport {
                    step,
                    status: *status,
                    detail: detail.clone(),
                    from_earlier_run: true,
                });
                continue;
            }
            if opts.cancelled() {
                report.interrupted = true;
                if let Some(o) = outcome {
                    let _ = journal.append(incident, vec![o]).await;
                }
                return false;
            }
            let intent = Event::Intent {
                user: user.to_owned(),
                dn: dn.clone(),
                step,
            };
            let mut write: Vec<Event> = outcome.take().into_iter().collect();
            write.push(intent);
            if let Err(e) = journal.append(incident, write).await {
                // Without a durable intent nothing may change.
                report.steps.push(StepReport {
                    step,
                    status: StepStatus::Failed,
                    detail: StepDetail::of_error(e),
                    from_earlier_run: false,
                });
                return false;
            }
            let skip = match step {
                Step::ResetPassword if opts.reset_again.is_none() => {
                    self.already_contained(&going.lent.dir, &going.u, contained, going.locked_before)
                        .await
                }
                _ => None,
            };
            let started = std::time::Instant::now();
            let (mut status, mut detail) = match skip {
                Some(note) => (StepStatus::AlreadySo, StepDetail::default().with_note(note)),
                None => self.run_step(going, user, step, incident, opts).await,
            };
            if status == StepStatus::Failed && detail.error.as_ref().is_some_and(connection_lost) {
                // every step decides from what the server holds now: running it again on a
                // new connection is safe whether or not the lost modify was applied
                if let Some(l) = self.inner.pool.reconnect(&going.lent).await {
                    going.lent = l;
                    going.u.saw(None);
                    (status, detail) = self.run_step(going, user, step, incident, opts).await;
                }
            }
            // the run's logger (`cadenas.incident.run` in Python), wherever the code lives
            tracing::debug!(
                target: "cadenas::incident::run",
                incident,
                user,
                dn = %dn,
                step = step.name(),
                status = status.name(),
                ms = started.elapsed().as_millis() as u64,
                "step"
            );
            if step == Step::Lock {
                going.locked_before = status == StepStatus::AlreadySo;
            }
            if let (Step::ResetPassword, Some(reason), StepStatus::Changed) =
                (step, &opts.reset_again, status)
            {
                detail.note = Some(format!("reset again: {reason}"));
            }
            outcome = Some(Event::Outcome {
                user: user.to_owned(),
                dn: dn.clone(),
                step,
                status,
                detail: detail.clone(),
            });
            report.steps.push(StepReport {
                step,
                status,
                detail,
                from_earlier_run: false,
            });
        }
        match outcome {
            Some(o) => journal.append(incident, vec![o]).await.is_ok(),
            None => true,
        }
    }

    /// Why the reset must not run again, when the user is contained already: by an earlier
    /// incident of this journal (whose password hand-over would die), or — when the account was
    /// locked before this run — as the directory shows it (locked, must change, MFA required:
    /// a run this journal does not know, e.g. on another host).
    async fn already_contained(
        &self,
        dir: &Directory,
        u: &User,
        contained: &HashMap<String, Contained>,
        locked_before: bool,
    ) -> Option<String> {
        if let Some(c) = contained.get(&u.dn.normalised()) {
            return Some(format!(
                "already contained by incident {} (new password handed over to {}); not reset again, \
                 so that password stays the one that works — reset again only with an explicit reason",
                c.incident,
                c.handed_over.as_deref().unwrap_or("an unrecorded place")
            ));
        }
        if !locked_before {
            return None;
        }
        let st = dir.account_state(u).await.ok()?;
        let contained_here = st.lock == LockState::Locked && st.must_change && st.mfa_required == Some(true);
        contained_here.then(|| {
            "the directory shows this account contained already (locked, must change, MFA required) by a \
             run this journal does not know (another host?); not reset — reset again only with an explicit \
             reason"
                .to_owned()
        })
    }

    /// Runs one step for the account, noting in it what the step's own responses showed of the entry
    /// (the lock's Post-Read is where the reset starts from).
    async fn run_step(
        &self,
        going: &mut Going,
        user: &str,
        step: Step,
        incident: &str,
        opts: &ContainOptions,
    ) -> (StepStatus, StepDetail) {
        let (dir, u, place) = (&going.lent.dir, &mut going.u, going.place.as_mut());
        let failed = |e: Error| (StepStatus::Failed, StepDetail::of_error(e));
        match step {
            Step::Lock => match dir.lock_after_find(u).await {
                Ok((c, seen)) => {
                    u.saw(seen);
                    let status = status_of(c.outcome);
                    let mut d = StepDetail::of_change(c);
                    // journaled for the outbound policy service (read with the find, but
                    // for an explicit `dn:`)
                    d.login = match u.login_known() {
                        Some(l) => Some(l.to_owned()),
                        None => dir.login_name(u).await.ok(),
                    };
                    (status, d)
                }
                Err(e) => {
                    // a later try reads the entry again
                    u.saw(None);
                    failed(e)
                }
            },
            Step::ResetPassword => {
                let password = match self.inner.cfg.password.generate() {
                    Ok(p) => p,
                    Err(e) => return failed(e),
                };
                let reset = dir.reset_password(u, &password, true).await;
                // what was seen before is not the entry any more
                u.saw(None);
                let c = match reset {
                    Ok(c) => c,
                    Err(e) => return failed(e),
                };
                // The step ends with the lock in place: OpenLDAP's ppolicy deletes the lock on
                // a password set, and a run killed between the two would otherwise resume with
                // the lock step done and the account unlocked (found by the SIGKILL test).
                // lock() is idempotent: normally "already in place".
                // Where the reset's own after-state shows the lock (OpenLDAP's reset re-applies
                // it), there is nothing to check again.
                let lock_shown = crate::directory::shows_lock(&c);
                let relock = match if lock_shown {
                    Ok(None)
                } else {
                    dir.lock(u).await.map(Some)
                } {
                    Ok(r) => r,
                    Err(e) => {
                        let d = StepDetail {
                            change: Some(c),
                            error: Some(e),
                            ..StepDetail::default()
                        };
                        return (
                            StepStatus::Failed,
                            d.with_note("the password was set but the lock could not be confirmed"),
                        );
                    }
                };
                let mut d = StepDetail::of_change(c);
                match opts.sink.deliver(user, u.dn.as_str(), &password) {
                    Ok(()) => {
                        d.relocked = Some(relock.is_some_and(|r| r.outcome == ChangeOutcome::Applied));
                        d.handed_over = Some(opts.sink.describe());
                        (StepStatus::Changed, d)
                    }
                    Err(e) => {
                        d.error = Some(e);
                        (
                            StepStatus::Failed,
                            d.with_note(
                                "the password was set but could not be handed over; the account stays locked",
                            ),
                        )
                    }
                }
            }
            Step::RevokeSessions => {
                let smtp = self.inner.cfg.outbound.is_some() || self.inner.cfg.mail.is_some();
                if self.inner.revokers.is_empty() && !smtp {
                    return (
                        StepStatus::Partial,
                        StepDetail::default()
                            .with_note("no revokers configured: live sessions were not revoked"),
                    );
                }
                let login = match dir.login_name(u).await {
                    Ok(l) => l,
                    Err(e) => return failed(e),
                };
                let mut target = RevocationTarget::new(login, u.dn.to_string());
                target.incident = Some(incident.to_owned());
                // The revokers' requests are shared by the accounts that reach them close
                // together: while this one waits, its place goes to the next account, whose
                // reset keeps the directory busy and whose revocations join the same requests.
                let mut place = place;
                let parked = place.as_deref_mut().and_then(Place::park_for_revokers);
                // The mail rules are read at the same time (their own requests): neither
                // waits for the other.
                let (mut outcomes, rules) = tokio::join!(
                    revoke_all(&self.inner.revokers, &target),
                    self.read_mail_rules(&target.login)
                );
                // SMTP: sessions authenticated before the lock keep sending unless the policy
                // service refuses their next message
                if let Some(o) = self.smtp_outcome(user, &target.login).await {
                    outcomes.push(o);
                }
                let mut status = if outcomes.iter().any(|o| o.status == RevocationStatus::Failed) {
                    StepStatus::Failed
                } else if outcomes
                    .iter()
                    .any(|o| !o.not_revoked.is_empty() || !o.collateral.is_empty())
                {
                    StepStatus::Partial
                } else if outcomes.iter().any(|o| o.status == RevocationStatus::Revoked) {
                    StepStatus::Changed
                } else {
                    StepStatus::AlreadySo
                };
                let mut detail = StepDetail {
                    revocations: outcomes,
                    ..StepDetail::default()
                };
                // The way back in an attacker leaves in the mailbox: a redirect rule.
                status = judge_mail_rules(rules, status, &mut detail);
                // back to work on the servers: with a place (kept, or taken again)
                drop(parked);
                if let Some(place) = place {
                    place.take_back().await;
                }
                (status, detail)
            }
            Step::RequireMfa => {
                // other workers' accounts may go in the same modify and store transaction;
                // the result is this one's
                let r = self
                    .inner
                    .member_adds
                    .require_mfa(dir, self.inner.mfa.as_ref(), u, place)
                    .await;
                match r {
                    Ok(c) => {
                        let status = status_of(c.outcome);
                        let mut d = StepDetail::of_change(c);
                        d.enrolments_dropped = Some(self.inner.mfa.is_some());
                        (status, d)
                    }
                    Err(e) => failed(e),
                }
            }
            Step::HoldMail => match dir.login_name(u).await {
                Ok(login) => self.hold_mail(user, &login).await,
                Err(e) => failed(e),
            },
            _ => failed(Error::new(
                ErrorKind::Internal,
                format!("{} is not a containment step", step.name()),
            )),
        }
    }
}
