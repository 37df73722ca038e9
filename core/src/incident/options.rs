//! What a containment run is given: the password sink, the steps, concurrency, progress and
//! cancellation, the rails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::report::Progress;
use super::sink::PasswordSink;
use crate::error::{Error, ErrorKind};
use crate::investigate::{AddressRange, Instant};
use crate::journal::Step;

/// A progress callback, called once after each user.
///
/// **Contract.** With the async [`Responder`](super::Responder) it runs on a runtime worker thread, possibly
/// several at once: it must be cheap and thread-safe. With
/// the blocking facade (`cadenas::blocking::BlockingResponder`) it always runs on the thread that
/// called the method, one call at a time. It cannot fail; to stop the run, cancel the
/// [`CancelToken`] of the options (from the callback or from anywhere else).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Stops a run at the next step boundary: no new step starts once cancelled, steps in flight
/// finish and are journaled, and [`Responder::resume`](super::Responder::resume) finishes the rest. Clones share one flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop at the next step boundary. Safe from any thread or signal-safe
    /// context (one atomic store).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Options for [`Responder::contain`](super::Responder::contain) and [`Responder::resume`](super::Responder::resume). Build with
/// [`ContainOptions::new`], then set what differs from the defaults.
#[derive(Clone)]
#[non_exhaustive]
pub struct ContainOptions {
    /// Incident identifier; generated when absent.
    pub incident: Option<String>,
    /// Act on members of protected groups too.
    pub allow_protected: bool,
    /// Accounts worked on at once (their steps' operations on the directory and the
    /// revokers). Default 32. An account whose only step left is waiting for a shared
    /// MFA-group modify gives its place to the next account while others are working (no
    /// more than this many wait so for a fuller batch).
    pub concurrency: usize,
    /// Where new passwords go.
    pub sink: Arc<dyn PasswordSink>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Stops the run at the next step boundary when cancelled.
    pub cancel: Option<CancelToken>,
    /// Why (an alert or ticket reference), journaled with the start of the run. No secrets.
    pub reason: Option<String>,
    /// The containment steps to run, in [`Step::CONTAIN`] order; default all of them
    /// (`HoldMail` runs only where `[postfix]` is configured). `Lock` is always one of them.
    /// Without `ResetPassword` the sink is never called.
    pub steps: Vec<Step>,
    /// Reset the password even of a user already contained (by an earlier incident of the
    /// journal, or — as the directory shows — by a run elsewhere), for this journaled reason.
    /// Without it such a user's reset is `already_so`: the password handed over then stays the
    /// one that works.
    pub reset_again: Option<String>,
    /// After every user's steps, kick every session from this range on each configured
    /// Dovecot — of accounts refused or out of scope too — journaled and reported in
    /// [`ContainReport::address_kicks`](super::ContainReport::address_kicks). Set by [`Responder::contain_from`](super::Responder::contain_from).
    pub kick_from: Option<AddressRange>,
    /// Also read, for each user, what changed on the entry since this time
    /// ([`UserReport::changes`](super::UserReport::changes)); `contain_from` defaults it to the pivot's `since`.
    pub changes_since: Option<Instant>,
}

impl std::fmt::Debug for ContainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainOptions")
            .field("incident", &self.incident)
            .field("allow_protected", &self.allow_protected)
            .field("concurrency", &self.concurrency)
            .field("sink", &self.sink.describe())
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .field("reason", &self.reason)
            .field("steps", &self.steps)
            .field("reset_again", &self.reset_again)
            .field("kick_from", &self.kick_from)
            .field("changes_since", &self.changes_since)
            .finish()
    }
}

impl ContainOptions {
    /// Defaults with the given password sink.
    pub fn new(sink: Arc<dyn PasswordSink>) -> Self {
        Self {
            incident: None,
            allow_protected: false,
            concurrency: 32,
            sink,
            progress: None,
            cancel: None,
            reason: None,
            steps: Step::CONTAIN.to_vec(),
            reset_again: None,
            kick_from: None,
            changes_since: None,
        }
    }

    pub(super) fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
    }

    /// The steps to run, in order; refuses a set without `Lock` or with a non-containment step.
    pub(super) fn checked_steps(&self) -> Result<Vec<Step>, Error> {
        if let Some(s) = self.steps.iter().find(|s| !Step::CONTAIN.contains(s)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not a containment step", s.name()),
            ));
        }
        if !self.steps.contains(&Step::Lock) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a containment always locks: the steps must include lock",
            ));
        }
        Ok(Step::CONTAIN
            .into_iter()
            .filter(|s| self.steps.contains(s))
            .collect())
    }

    /// The steps for the journal's start record: `None` when all of them (`all`: how many
    /// this responder runs).
    pub(super) fn recorded_steps(&self, all: usize) -> Result<Option<Vec<Step>>, Error> {
        let steps = self.checked_steps()?;
        Ok((steps.len() < all).then_some(steps))
    }

    /// Drops the steps this responder cannot run for want of configuration (hold mail
    /// without `[postfix]`).
    pub(super) fn only_configured(&mut self, has_queue: bool) {
        self.steps.retain(|s| *s != Step::HoldMail || has_queue);
    }
}
