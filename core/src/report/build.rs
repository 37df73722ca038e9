//! The one pass over the journal: each record of the incident folded into what the page
//! needs (per account, the last outcome of each step), nothing else kept.

use std::collections::{BTreeMap, HashMap};

use super::types::{
    AccountOutcome, AccountRecord, AttackerAddress, Curve, IncidentReport, NotificationLine, Problem, Proof,
    ReportOptions, RunSummary, StepLine, Summary, Timeline, TimelineRow, ACCOUNTS_INLINE, TIMELINE_ROWS_MAX,
};
use crate::directory::AttributeChange;
use crate::error::{Error, ErrorKind};
use crate::journal::{Event, Location, Record, Step, StepDetail, StepStatus};
use crate::secret::Secret;
use crate::time::unix_millis;

/// The containment steps a run does when its start record names none (`HoldMail` joins them
/// where the run wrote any hold-mail record: a `[postfix]` section was configured).
const DEFAULT_STEPS: [Step; 4] = [
    Step::Lock,
    Step::ResetPassword,
    Step::RevokeSessions,
    Step::RequireMfa,
];

/// Most points of a step's curve.
const CURVE_POINTS: usize = 100;

impl IncidentReport {
    /// The report of `incident`, from the journal at `location` (with `key`, every record's
    /// MAC is checked too). One pass, memory in proportion to the incident's accounts, not to
    /// the journal's length (a file is read line by line).
    ///
    /// A broken chain is not an error here: the report says where it broke
    /// ([`Proof::broken_at`](super::Proof)) and shows what still parses, unproven. An
    /// incident with no record is [`ErrorKind::InvalidInput`].
    pub fn from_journal(
        location: &Location,
        key: Option<&Secret>,
        incident: &str,
        opts: &ReportOptions,
    ) -> Result<Self, Error> {
        let mut fold = Fold::new(incident);
        let chain = location.visit(key, &mut |rec, proven| fold.record(rec, proven))?;
        if fold.records == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the journal {location} holds no record of incident {:?}",
                    crate::text::escape_controls(incident)
                ),
            ));
        }
        let proof = Proof {
            journal: location.to_string(),
            journal_records: chain.records,
            head: chain.head,
            macs_checked: chain.macs_checked,
            broken_at: chain.first_bad,
            records: fold.records,
            seq_ranges: std::mem::take(&mut fold.seq_ranges),
            unproven_records: fold.unproven,
        };
        Ok(fold.finish(proof, opts))
    }
}

/// One account's problem, before grouping.
struct AccountProblem {
    step: Option<Step>,
    status: Option<StepStatus>,
    outcome: AccountOutcome,
    why: String,
}

/// What groups problems: step, status, outcome, reason.
type ProblemKey = (Option<Step>, Option<StepStatus>, AccountOutcome, String);

/// One step of one account, as the records so far say.
struct StepAcc {
    status: Option<StepStatus>,
    at: String,
    intent_ms: Option<i128>,
    took_ms: Option<u64>,
    tries: u32,
    note: Option<String>,
    /// When the step was first done (the timeline's time): as the record says it, and in ms.
    done_at: Option<String>,
    done_ms: Option<i128>,
}

/// One account, as the records so far say.
struct Acc {
    user: String,
    dn: Option<String>,
    /// Named by a containment run (not only by a release).
    contained_by_run: bool,
    expected: Vec<Step>,
    steps: BTreeMap<Step, StepAcc>,
    refused: Option<Error>,
    sessions_closed: usize,
    rules_deactivated: Vec<String>,
    rules_left_active: Vec<String>,
    mail_held: usize,
    changes: Option<Vec<AttributeChange>>,
    sent_messages: Option<usize>,
    notified: Vec<String>,
    released_at: Option<String>,
}

/// A run being read.
struct Run {
    summary: RunSummary,
    containment: bool,
    last_ms: Option<i128>,
    last_at: String,
}

struct Fold {
    incident: String,
    records: usize,
    unproven: usize,
    seq_ranges: Vec<(u64, u64)>,
    accounts: Vec<Acc>,
    index: HashMap<String, usize>,
    /// The accounts by entry (lower-cased DN).
    by_dn: HashMap<String, usize>,
    runs: Vec<Run>,
    attacker: Vec<AttackerAddress>,
    notifications: Vec<NotificationLine>,
    kick_sessions: usize,
}

impl Fold {
    fn new(incident: &str) -> Self {
        Self {
            incident: incident.to_owned(),
            records: 0,
            unproven: 0,
            seq_ranges: Vec::new(),
            accounts: Vec::new(),
            index: HashMap::new(),
            by_dn: HashMap::new(),
            runs: Vec::new(),
            attacker: Vec::new(),
            notifications: Vec::new(),
            kick_sessions: 0,
        }
    }

    fn account(&mut self, user: &str) -> &mut Acc {
        let i = match self.index.get(user) {
            Some(&i) => i,
            None => {
                self.accounts.push(Acc {
                    user: user.to_owned(),
                    dn: None,
                    contained_by_run: false,
                    expected: Vec::new(),
                    steps: BTreeMap::new(),
                    refused: None,
                    sessions_closed: 0,
                    rules_deactivated: Vec::new(),
                    rules_left_active: Vec::new(),
                    mail_held: 0,
                    changes: None,
                    sent_messages: None,
                    notified: Vec::new(),
                    released_at: None,
                });
                self.index.insert(user.to_owned(), self.accounts.len() - 1);
                self.accounts.len() - 1
            }
        };
        &mut self.accounts[i]
    }

    /// `user`'s entry is `dn`.
    fn entry(&mut self, user: &str, dn: String) {
        let key = dn.to_ascii_lowercase();
        let a = self.account(user);
        if a.dn.as_ref() != Some(&dn) {
            a.dn = Some(dn);
            let i = self.index[user];
            self.by_dn.insert(key, i);
        }
    }

    fn record(&mut self, rec: Record, proven: bool) {
        if rec.incident != self.incident {
            // a release is a run of its own (its own incident): the accounts of this one
            // released later are part of its record
            self.release_elsewhere(rec, proven);
            return;
        }
        self.count(&rec, proven);
        let ms = unix_millis(&rec.time);
        if let Some(run) = self.runs.last_mut() {
            if run.summary.ended_at.is_none() {
                run.last_ms = ms.or(run.last_ms);
                run.last_at.clone_from(&rec.time);
            }
        }
        let in_containment = self.runs.last().is_some_and(|r| r.containment);
        match rec.event {
            Event::IncidentStart {
                action,
                users,
                note,
                steps,
                kick_from,
            } => {
                let containment = action != "release";
                let expected = steps.unwrap_or_else(|| DEFAULT_STEPS.to_vec());
                for u in &users {
                    let a = self.account(u);
                    if containment {
                        a.contained_by_run = true;
                        for s in &expected {
                            if !a.expected.contains(s) {
                                a.expected.push(*s);
                            }
                        }
                    }
                }
                if let Some(range) = &kick_from {
                    match self.attacker.iter_mut().find(|a| &a.range == range) {
                        Some(a) => {
                            for u in &users {
                                if !a.accounts.contains(u) {
                                    a.accounts.push(u.clone());
                                }
                            }
                        }
                        None => self.attacker.push(AttackerAddress {
                            range: range.clone(),
                            accounts: users.clone(),
                            sessions_closed: 0,
                        }),
                    }
                }
                self.runs.push(Run {
                    summary: RunSummary {
                        action,
                        started_at: rec.time.clone(),
                        ended_at: None,
                        accounts: users.len(),
                        done: None,
                        failed: None,
                        note,
                        kick_from,
                    },
                    containment,
                    last_ms: ms,
                    last_at: rec.time,
                });
            }
            Event::Intent { user, dn, step } => {
                self.entry(&user, dn);
                let a = self.account(&user);
                let s = a.steps.entry(step).or_insert_with(|| StepAcc::new(&rec.time));
                s.intent_ms = ms;
                // started: until its outcome, the step is pending
                s.status = None;
                s.at = rec.time;
            }
            Event::Outcome {
                user,
                dn,
                step,
                status,
                detail,
            } => {
                self.entry(&user, dn);
                let a = self.account(&user);
                if step == Step::HoldMail && in_containment && !a.expected.contains(&Step::HoldMail) {
                    a.expected.push(Step::HoldMail);
                }
                a.absorb(&detail, step, status, &rec.time);
                let s = a.steps.entry(step).or_insert_with(|| StepAcc::new(&rec.time));
                s.tries += 1;
                s.status = Some(status);
                s.took_ms = match (s.intent_ms, ms) {
                    (Some(i), Some(o)) if o >= i => u64::try_from(o - i).ok(),
                    _ => None,
                };
                s.note = note_of(&detail);
                if status.is_done() && s.done_at.is_none() {
                    s.done_at = Some(rec.time.clone());
                    s.done_ms = ms;
                }
                s.at = rec.time;
            }
            Event::Refused { user, error } => {
                self.account(&user).refused = Some(error);
            }
            Event::AddressKick { range, outcomes } => {
                let closed: usize = outcomes.iter().map(|o| o.sessions_closed).sum();
                self.kick_sessions += closed;
                match self.attacker.iter_mut().find(|a| a.range == range) {
                    Some(a) => a.sessions_closed += closed,
                    None => self.attacker.push(AttackerAddress {
                        range,
                        accounts: Vec::new(),
                        sessions_closed: closed,
                    }),
                }
            }
            Event::Notified { outcomes } => {
                for o in outcomes {
                    let to = format!("{}: {}", o.notifier, o.recipients.join(", "));
                    for u in &o.users {
                        if let Some(&i) = self.index.get(u) {
                            let a = &mut self.accounts[i];
                            if !a.notified.contains(&to) {
                                a.notified.push(to.clone());
                            }
                        }
                    }
                    self.notifications.push(NotificationLine {
                        at: rec.time.clone(),
                        notifier: o.notifier,
                        event: o.event,
                        recipients: o.recipients,
                        users: o.users.len(),
                        delivered: o.delivered,
                    });
                }
            }
            Event::Findings {
                user,
                changes,
                sent_mail,
                ..
            } => {
                let a = self.account(&user);
                if changes.is_some() {
                    a.changes = changes;
                }
                if let Some(m) = sent_mail {
                    a.sent_messages = Some(m.messages);
                }
            }
            Event::IncidentEnd { done, failed } => {
                if let Some(run) = self.runs.last_mut() {
                    run.summary.ended_at = Some(rec.time);
                    run.summary.done = Some(done);
                    run.summary.failed = Some(failed);
                    run.last_ms = ms.or(run.last_ms);
                }
            }
            // read by other commands; nothing on the page
            _ => {}
        }
    }

    /// A record the report is made from: counted, and its `seq` in the ranges.
    fn count(&mut self, rec: &Record, proven: bool) {
        self.records += 1;
        if !proven {
            self.unproven += 1;
        }
        match self.seq_ranges.last_mut() {
            Some((_, end)) if *end + 1 == rec.seq => *end = rec.seq,
            _ => self.seq_ranges.push((rec.seq, rec.seq)),
        }
    }

    /// A record of another incident: a release of one of this incident's accounts (by its
    /// entry) is taken, the rest left.
    fn release_elsewhere(&mut self, rec: Record, proven: bool) {
        let Event::Outcome {
            dn,
            step: Step::RestoreFlags,
            status,
            ..
        } = &rec.event
        else {
            return;
        };
        let Some(&i) = self.by_dn.get(&dn.to_ascii_lowercase()) else {
            return;
        };
        if status.is_done() {
            self.accounts[i].released_at = Some(rec.time.clone());
            self.count(&rec, proven);
        }
    }

    fn finish(self, proof: Proof, opts: &ReportOptions) -> IncidentReport {
        let alert_ms = opts.alert_at.map(|a| i128::from(a.unix()) * 1000);
        let containment_runs: Vec<&Run> = self.runs.iter().filter(|r| r.containment).collect();
        let started = containment_runs.first().map(|r| r.summary.started_at.clone());
        let started_ms = started.as_deref().and_then(unix_millis);
        let last_run = containment_runs
            .iter()
            .filter(|r| r.last_ms.is_some())
            .max_by_key(|r| r.last_ms);
        let ended_at = last_run.map(|r| r.summary.ended_at.clone().unwrap_or_else(|| r.last_at.clone()));
        let ended_ms = ended_at.as_deref().and_then(unix_millis);

        let mut summary = Summary {
            alert_at: opts.alert_at.map(|a| a.rfc3339()),
            started_at: started,
            ended_at,
            sessions_closed: self.kick_sessions,
            ..Summary::default()
        };
        let mut first_lock: Option<(i128, String)> = None;
        let mut last_lock: Option<(i128, String)> = None;
        let mut all_locked = true;
        let mut times: BTreeMap<Step, Vec<i128>> = BTreeMap::new();
        let mut accounts = Vec::with_capacity(self.accounts.len());
        let mut problem_index: HashMap<ProblemKey, usize> = HashMap::new();
        for a in self.accounts {
            let outcome = a.outcome();
            if a.contained_by_run {
                summary.accounts += 1;
                match outcome {
                    AccountOutcome::Contained => summary.contained += 1,
                    AccountOutcome::Released => {
                        summary.contained += 1;
                        summary.released += 1;
                    }
                    AccountOutcome::Refused => summary.refused += 1,
                    AccountOutcome::NeedsAttention | AccountOutcome::Interrupted => {
                        summary.needs_attention += 1
                    }
                }
                match a
                    .steps
                    .get(&Step::Lock)
                    .and_then(|s| Some((s.done_ms?, s.done_at.clone()?)))
                {
                    Some((m, at)) => {
                        if first_lock.as_ref().is_none_or(|(f, _)| m < *f) {
                            first_lock = Some((m, at.clone()));
                        }
                        if last_lock.as_ref().is_none_or(|(l, _)| m > *l) {
                            last_lock = Some((m, at));
                        }
                    }
                    None => all_locked = false,
                }
                for (step, s) in &a.steps {
                    if let Some(m) = s.done_ms {
                        times.entry(*step).or_default().push(m);
                    }
                }
                for p in a.problems(outcome) {
                    let key = (p.step, p.status, p.outcome, p.why);
                    match problem_index.get(&key) {
                        Some(&i) => summary.problems[i].users.push(a.user.clone()),
                        None => {
                            summary.problems_total += 1;
                            if summary.problems.len() < ACCOUNTS_INLINE {
                                problem_index.insert(key.clone(), summary.problems.len());
                                summary.problems.push(Problem {
                                    step: key.0,
                                    status: key.1,
                                    outcome: key.2,
                                    why: key.3,
                                    users: vec![a.user.clone()],
                                });
                            }
                        }
                    }
                }
            } else if a.released_at.is_some() {
                summary.released += 1;
            }
            summary.sessions_closed += a.sessions_closed;
            summary.mail_rules_deactivated += a.rules_deactivated.len();
            summary.mail_held += a.mail_held;
            accounts.push(a.into_record(outcome));
        }
        summary.all_locked = all_locked && summary.accounts > 0;
        summary.notifications_delivered = self.notifications.iter().filter(|n| n.delivered).count();
        summary.notifications_failed = self.notifications.len() - summary.notifications_delivered;
        let since = |from: Option<i128>, to: Option<i128>| match (from, to) {
            (Some(f), Some(t)) if t >= f => u64::try_from(t - f).ok(),
            _ => None,
        };
        summary.to_last_lock_ms = since(started_ms, last_lock.as_ref().map(|l| l.0));
        summary.to_end_ms = since(started_ms, ended_ms);
        summary.alert_to_last_lock_ms = since(alert_ms, last_lock.as_ref().map(|l| l.0));
        summary.first_lock_at = first_lock.as_ref().map(|l| l.1.clone());
        summary.last_lock_at = last_lock.as_ref().map(|l| l.1.clone());

        let timeline = timeline(
            &accounts,
            &times,
            summary.started_at.as_deref().zip(started_ms),
            alert_ms,
            ended_ms,
            first_lock.map(|l| l.0),
            last_lock.map(|l| l.0),
        );
        IncidentReport {
            incident: self.incident,
            proof,
            summary,
            runs: self.runs.into_iter().map(|r| r.summary).collect(),
            timeline,
            accounts,
            attacker: self.attacker,
            notifications: self.notifications,
        }
    }
}

impl StepAcc {
    fn new(at: &str) -> Self {
        Self {
            status: None,
            at: at.to_owned(),
            intent_ms: None,
            took_ms: None,
            tries: 0,
            note: None,
            done_at: None,
            done_ms: None,
        }
    }
}

impl Acc {
    /// What a step's outcome adds to the account beyond the step's own line.
    fn absorb(&mut self, d: &StepDetail, step: Step, status: StepStatus, at: &str) {
        self.sessions_closed += d.revocations.iter().map(|r| r.sessions_closed).sum::<usize>();
        if step == Step::RevokeSessions {
            self.rules_left_active.clear();
        }
        for r in &d.mail_rules {
            if r.deactivated {
                if !self.rules_deactivated.contains(&r.script) {
                    self.rules_deactivated.push(r.script.clone());
                }
            } else if r.active && !self.rules_left_active.contains(&r.script) {
                self.rules_left_active.push(r.script.clone());
            }
        }
        if let Some(h) = &d.held_mail {
            self.mail_held += h.messages.len();
        }
        if step == Step::RestoreFlags && status.is_done() {
            self.released_at = Some(at.to_owned());
        }
    }

    fn outcome(&self) -> AccountOutcome {
        let done_any = self
            .steps
            .values()
            .any(|s| s.status.is_some_and(StepStatus::is_done));
        if self.refused.is_some() && !done_any {
            return AccountOutcome::Refused;
        }
        let expected: Vec<&Step> = if self.expected.is_empty() {
            self.steps.keys().collect()
        } else {
            self.expected.iter().collect()
        };
        let mut missing = false;
        for step in expected {
            match self.steps.get(step).and_then(|s| s.status) {
                Some(StepStatus::Failed) => return AccountOutcome::NeedsAttention,
                Some(_) => {}
                None => missing = true,
            }
        }
        if missing {
            AccountOutcome::Interrupted
        } else if self.released_at.is_some() {
            AccountOutcome::Released
        } else {
            AccountOutcome::Contained
        }
    }

    /// What could not be done on this account, and why.
    fn problems(&self, outcome: AccountOutcome) -> Vec<AccountProblem> {
        let problem = |step: Option<Step>, status: Option<StepStatus>, why: String| AccountProblem {
            step,
            status,
            outcome,
            why,
        };
        if outcome == AccountOutcome::Refused {
            let why = self
                .refused
                .as_ref()
                .map_or_else(|| "refused".to_owned(), |e| e.message().to_owned());
            return vec![problem(None, None, why)];
        }
        let mut out = Vec::new();
        for step in &self.expected {
            match self.steps.get(step) {
                Some(s) => match s.status {
                    Some(st @ (StepStatus::Failed | StepStatus::Partial)) => out.push(problem(
                        Some(*step),
                        Some(st),
                        s.note.clone().unwrap_or_else(|| "no reason recorded".to_owned()),
                    )),
                    None => out.push(problem(
                        Some(*step),
                        None,
                        "started, and no outcome was written: the run stopped during this step (cadenas resume \
                         finishes it)"
                            .to_owned(),
                    )),
                    Some(_) => {}
                },
                None if outcome == AccountOutcome::Interrupted => out.push(problem(
                    Some(*step),
                    None,
                    "not run: the run was interrupted before this step (cadenas resume finishes it)".to_owned(),
                )),
                None => {}
            }
        }
        out
    }

    fn into_record(self, outcome: AccountOutcome) -> AccountRecord {
        let steps = self
            .steps
            .into_iter()
            .map(|(step, s)| StepLine {
                step,
                status: s.status,
                done_at: s.done_at,
                at: s.at,
                took_ms: s.took_ms,
                tries: s.tries,
                note: s.note,
            })
            .collect();
        AccountRecord {
            user: self.user,
            dn: self.dn,
            outcome,
            steps,
            refused: self.refused,
            sessions_closed: self.sessions_closed,
            mail_rules_deactivated: self.rules_deactivated,
            mail_rules_left_active: self.rules_left_active,
            mail_held: self.mail_held,
            changes: self.changes,
            sent_messages: self.sent_messages,
            notified: self.notified,
            released_at: self.released_at,
        }
    }
}

/// A step's note or error, in words: the error's message first, then the note, then what a
/// revoker could not revoke.
fn note_of(d: &StepDetail) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(e) = &d.error {
        parts.push(e.message().to_owned());
    }
    if let Some(n) = &d.note {
        parts.push(n.clone());
    }
    for r in &d.revocations {
        if let Some(e) = &r.error {
            parts.push(format!("{}: {}", r.revoker, e.message()));
        }
        for n in &r.not_revoked {
            parts.push(format!("{}: {n}", r.revoker));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn timeline(
    accounts: &[AccountRecord],
    times: &BTreeMap<Step, Vec<i128>>,
    started: Option<(&str, i128)>,
    alert_ms: Option<i128>,
    ended_ms: Option<i128>,
    first_lock: Option<i128>,
    last_lock: Option<i128>,
) -> Timeline {
    // from the start: an alert long before would squeeze the run into the picture's edge (the
    // summary says how long after the alert)
    let Some((started, origin)) = started else {
        return Timeline::default();
    };
    let alert_ms = alert_ms.filter(|a| *a >= origin);
    let off = |m: i128| u64::try_from((m - origin).max(0)).unwrap_or(u64::MAX);
    let mut span = ended_ms.map_or(0, off);
    let contained: Vec<&AccountRecord> = accounts
        .iter()
        .filter(|a| a.outcome != AccountOutcome::Refused || !a.steps.is_empty())
        .collect();
    let rows = if contained.len() <= TIMELINE_ROWS_MAX {
        contained
            .iter()
            .map(|a| TimelineRow {
                user: a.user.clone(),
                steps: a
                    .steps
                    .iter()
                    .filter_map(|s| {
                        s.done_at
                            .as_deref()
                            .and_then(unix_millis)
                            .map(|m| (s.step, off(m)))
                    })
                    .collect(),
                attention: matches!(
                    a.outcome,
                    AccountOutcome::NeedsAttention | AccountOutcome::Interrupted | AccountOutcome::Refused
                ),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut curves = Vec::new();
    for (step, ts) in times {
        if *step == Step::RestoreFlags {
            continue;
        }
        let mut ts = ts.clone();
        ts.sort_unstable();
        let n = ts.len();
        let mut points: Vec<(u64, usize)> = Vec::new();
        for k in 0..=CURVE_POINTS {
            let idx = (k * n).div_ceil(CURVE_POINTS).clamp(1, n) - 1;
            let p = (off(ts[idx]), idx + 1);
            if points.last() != Some(&p) {
                points.push(p);
            }
        }
        if let Some(&(t, _)) = points.last() {
            span = span.max(t);
        }
        curves.push(Curve {
            step: *step,
            total: n,
            points,
        });
    }
    Timeline {
        origin: Some(started.to_owned()),
        span_ms: span,
        first_lock_ms: first_lock.map(off),
        last_lock_ms: last_lock.map(off),
        alert_ms: alert_ms.map(off),
        rows,
        curves,
    }
}
