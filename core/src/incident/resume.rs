//! Resuming an interrupted containment from the journal, and what other incidents contained.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::report::ContainReport;
use super::{run, ContainOptions, EarlierSteps, Responder};
use crate::error::{Error, ErrorKind};
use crate::investigate::AddressRange;
use crate::journal::{self, Event, Step, StepStatus};

/// An entry contained by an earlier incident of the journal, not released since.
#[derive(Clone, Debug)]
pub(super) struct Contained {
    pub(super) incident: String,
    pub(super) handed_over: Option<String>,
}

/// Entries (by normalised DN) whose password an incident other than `except` reset, with no
/// release since.
pub(super) fn contained_entries(records: &[journal::Record], except: &str) -> HashMap<String, Contained> {
    let mut out = HashMap::new();
    for r in records.iter().filter(|r| r.incident != except) {
        if let Event::Outcome {
            dn,
            step,
            status,
            detail,
            ..
        } = &r.event
        {
            let Ok(key) = crate::directory::Dn::parse(dn).map(|d| d.normalised()) else {
                continue;
            };
            match step {
                Step::ResetPassword if *status == StepStatus::Changed => {
                    out.insert(
                        key,
                        Contained {
                            incident: r.incident.clone(),
                            handed_over: detail.handed_over.clone(),
                        },
                    );
                }
                Step::RestoreFlags if status.is_done() => {
                    out.remove(&key);
                }
                _ => {}
            }
        }
    }
    out
}

impl Responder {
    /// Finishes what an interrupted run of `incident` (default: the latest containment in the
    /// journal) left: users never started, and steps with an intent but no outcome or a failed
    /// outcome. Steps already done are not run again.
    pub async fn resume(&self, incident: Option<&str>, opts: ContainOptions) -> Result<ContainReport, Error> {
        let journal = self.journal_or_err()?;
        let records = journal.records()?;
        let incident = match incident {
            Some(i) => i.to_owned(),
            None => records
                .iter()
                .rev()
                .find(|r| matches!(&r.event, Event::IncidentStart { action, .. } if action == "contain"))
                .map(|r| r.incident.clone())
                .ok_or_else(|| Error::new(ErrorKind::NothingToResume, "the journal holds no containment"))?,
        };
        let mut users: Vec<String> = Vec::new();
        let mut asked: Option<Vec<Step>> = None;
        let mut kick_from: Option<AddressRange> = None;
        let mut done: HashMap<String, EarlierSteps> = HashMap::new();
        let mut refused: BTreeSet<String> = BTreeSet::new();
        for r in records.iter().filter(|r| r.incident == incident) {
            match &r.event {
                Event::IncidentStart {
                    action,
                    users: u,
                    steps,
                    kick_from: range,
                    ..
                } if action == "contain" && users.is_empty() => {
                    users = u.clone();
                    asked = steps.clone();
                    kick_from = range.as_deref().map(AddressRange::parse).transpose()?;
                }
                Event::Outcome {
                    user,
                    step,
                    status,
                    detail,
                    ..
                } => {
                    let steps = done.entry(user.clone()).or_default();
                    if status.is_done() {
                        steps.insert(*step, (*status, detail.clone()));
                    } else {
                        steps.remove(step);
                    }
                }
                Event::Refused { user, .. } => {
                    refused.insert(user.clone());
                }
                _ => {}
            }
        }
        if users.is_empty() {
            return Err(Error::new(
                ErrorKind::NothingToResume,
                format!("no containment {incident} in the journal"),
            ));
        }
        let work: Vec<run::Work> = users
            .iter()
            .filter(|u| !refused.contains(*u))
            .map(|u| run::Work {
                user: u.clone(),
                earlier: done.remove(u).unwrap_or_default(),
            })
            .collect();
        journal
            .append(
                &incident,
                vec![Event::IncidentStart {
                    action: "resume".into(),
                    users: Vec::new(),
                    note: None,
                    steps: None,
                    kick_from: None,
                }],
            )
            .await?;
        let contained = contained_entries(&records, &incident);
        let mut opts = opts;
        opts.incident = Some(incident.clone());
        // the steps the interrupted run was asked for, not the caller's; its kick by address
        opts.steps = asked.unwrap_or_else(|| Step::CONTAIN.to_vec());
        opts.only_configured(self.inner.queue.is_some());
        opts.kick_from = kick_from;
        self.run(&incident, work, &opts, Arc::new(contained)).await
    }
}
