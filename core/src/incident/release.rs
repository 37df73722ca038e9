//! Release: the account back to exactly the lock flags it had before containment.

use super::report::ReleaseReport;
use super::{new_incident_id, status_of, Responder};
use crate::directory::{Attributes, Dn, UserRef};
use crate::error::{Error, ErrorKind};
use crate::journal::{self, Event, Step, StepDetail, StepStatus};
use crate::mfa::EnrolmentState;

/// Options for [`Responder::release`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReleaseOptions {
    /// Release without an active MFA enrolment; the reason is journaled.
    pub override_reason: Option<String>,
    /// Incident identifier of the release (default: generated).
    pub incident: Option<String>,
}

impl ReleaseOptions {
    /// Release even without an active MFA enrolment, for this (journaled) reason.
    pub fn with_override_reason(mut self, reason: impl Into<String>) -> Self {
        self.override_reason = Some(reason.into());
        self
    }
}

impl Responder {
    /// Releases a contained account: restores the lock flags recorded by the first lock of its
    /// containment in the journal — nothing more, nothing less (the new password, the forced
    /// change and the MFA requirement stay). Refused unless the user has an *active* MFA
    /// enrolment, or an override reason is given (journaled).
    pub async fn release(&self, user: &UserRef, opts: ReleaseOptions) -> Result<ReleaseReport, Error> {
        let journal = self.journal_or_err()?;
        let dir = self.directory();
        let u = dir.find_user(user).await?;
        let records = journal.records()?;
        let held = held_count(&records, &u.dn);
        let original = original_flags(&records, &u.dn)?.ok_or_else(|| {
            Error::new(
                ErrorKind::ReleaseRefused,
                format!("the journal has no containment of {} to release", u.dn),
            )
        })?;
        if let (Some(mfa), None) = (&self.inner.mfa, &opts.override_reason) {
            let login = dir.login_name(&u).await?;
            if mfa.enrolment_state(&login)? != Some(EnrolmentState::Active) {
                return Err(Error::new(
                    ErrorKind::ReleaseRefused,
                    format!("{login} has no active MFA enrolment yet (enrol and verify a first code, or give an override reason)"),
                ));
            }
        }
        let incident = match &opts.incident {
            Some(i) => i.clone(),
            None => new_incident_id()?,
        };
        let dn = u.dn.to_string();
        let user = user.to_string();
        let user = user.as_str();
        journal
            .append(
                &incident,
                vec![
                    Event::IncidentStart {
                        action: "release".into(),
                        users: vec![user.to_owned()],
                        note: opts.override_reason.clone(),
                        steps: None,
                        kick_from: None,
                    },
                    Event::Intent {
                        user: user.to_owned(),
                        dn: dn.clone(),
                        step: Step::RestoreFlags,
                    },
                ],
            )
            .await?;
        let result = dir.restore_flags(&u, &original).await;
        let (status, detail) = match &result {
            Ok(c) => (status_of(c.outcome), StepDetail::of_change(c.clone())),
            Err(e) => (StepStatus::Failed, StepDetail::of_error(e.clone())),
        };
        journal
            .append(
                &incident,
                vec![
                    Event::Outcome {
                        user: user.to_owned(),
                        dn: dn.clone(),
                        step: Step::RestoreFlags,
                        status,
                        detail,
                    },
                    Event::IncidentEnd {
                        done: usize::from(status.is_done()),
                        failed: usize::from(!status.is_done()),
                    },
                ],
            )
            .await?;
        let change = result?;
        let notifications = if self.notifies() {
            self.notify_release(&incident, user, &dn, status).await?
        } else {
            Vec::new()
        };
        let mut kept: Vec<String> = vec![
            "the password set at containment, with its forced change".into(),
            "the MFA requirement (group membership and the new enrolment)".into(),
        ];
        if held > 0 {
            kept.push(format!(
                "{held} message(s) held in the mail queue: review them with `cadenas outbound held`"
            ));
        }
        Ok(ReleaseReport {
            incident,
            dn,
            change,
            kept,
            notifications,
        })
    }
}

/// How many messages the hold-mail steps of the journal held for the entry `dn`.
fn held_count(records: &[journal::Record], dn: &Dn) -> usize {
    let key = dn.normalised();
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Outcome {
                dn: d,
                step: Step::HoldMail,
                detail,
                ..
            } if Dn::parse(d).is_ok_and(|d| d.normalised() == key) => detail.held_mail.as_ref(),
            _ => None,
        })
        .map(|h| h.messages.len())
        .sum()
}

/// The lock flags recorded before containment of `dn`, from the journal's records: the
/// `before` of the first lock outcome since the last release of that entry.
pub fn original_flags(records: &[journal::Record], dn: &Dn) -> Result<Option<Attributes>, Error> {
    let mut original: Option<Attributes> = None;
    for r in records {
        if let Event::Outcome {
            dn: d,
            step,
            status,
            detail,
            ..
        } = &r.event
        {
            if !Dn::parse(d).is_ok_and(|d| d.same_entry(dn)) || !status.is_done() {
                continue;
            }
            match step {
                Step::Lock if original.is_none() => {
                    original = detail.change.as_ref().map(|c| c.before.clone());
                }
                Step::RestoreFlags => original = None,
                _ => {}
            }
        }
    }
    Ok(original)
}
