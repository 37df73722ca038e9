//! An account's place among a run's accounts in flight, and what wave 1 hands to wave 2.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::directory::User;

/// A user admitted by the lock wave, for the second wave.
pub(super) struct Going {
    pub(super) u: User,
    pub(super) lent: super::pool::Lent,
    /// The lock step found the account locked already.
    pub(super) locked_before: bool,
    /// The account's place among those in flight (wave 2).
    pub(super) place: Option<Place>,
}

/// An account's place among the run's accounts in flight (`ContainOptions::concurrency` of
/// them), held while its steps work on the directory. An account that only waits for the
/// shared MFA-group modify ([`Place::park`]) or for the revokers' shared requests
/// ([`Place::park_for_revokers`]) may give its place to the next account; no more wait, for
/// either, than the run has places.
pub(super) struct Place {
    permit: Option<OwnedSemaphorePermit>,
    places: Arc<Semaphore>,
    size: usize,
    /// The run's accounts parked now.
    parked: Parking,
}

/// A run's counts of parked accounts: waiting for a fuller MFA-group batch, and waiting for
/// the revokers.
#[derive(Clone, Default)]
pub(super) struct Parking {
    mfa: Arc<AtomicUsize>,
    revokers: Arc<AtomicUsize>,
}

impl Place {
    /// A place among `size`, taken from `places` (waiting for one), with the run's counts of
    /// parked accounts.
    pub(super) async fn take(places: &Arc<Semaphore>, size: usize, parked: &Parking) -> Self {
        Self {
            permit: places.clone().acquire_owned().await.ok(),
            places: places.clone(),
            size,
            parked: parked.clone(),
        }
    }
}

/// One of a run's accounts parked, waiting for a fuller MFA-group batch or for the revokers:
/// counted until dropped (when a turn takes it into a modify, when its revocations are done).
pub(super) struct Parked(Arc<AtomicUsize>);

impl Drop for Parked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Place {
    /// Accounts holding a place now (working, not parked).
    pub(super) fn working(&self) -> usize {
        self.size.saturating_sub(self.places.available_permits())
    }

    /// Gives the place to the next account when another account is working (whose MFA-group
    /// add may join this one's) and fewer accounts wait parked than the run has places;
    /// otherwise the account keeps it (`None`).
    pub(super) fn park(&mut self) -> Option<Parked> {
        if self.working() <= 1 {
            return None;
        }
        let count = self.parked.mfa.clone();
        self.park_counted(&count)
    }

    /// Gives the place to the next account while this one waits for the revokers (whose
    /// requests are shared with the accounts arriving meanwhile: the next account's reset goes
    /// on instead of waiting), when fewer accounts wait so than the run has places. The place
    /// is taken back with [`Place::take_back`] after.
    pub(super) fn park_for_revokers(&mut self) -> Option<Parked> {
        let count = self.parked.revokers.clone();
        self.park_counted(&count)
    }

    fn park_counted(&mut self, count: &Arc<AtomicUsize>) -> Option<Parked> {
        self.permit.as_ref()?;
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                (p < self.size).then_some(p + 1)
            })
            .ok()?;
        self.permit = None;
        Some(Parked(count.clone()))
    }

    /// As many of the run's accounts wait parked for the MFA group as the run has places: no
    /// more may join.
    pub(super) fn parking_full(&self) -> bool {
        self.parked.mfa.load(Ordering::SeqCst) >= self.size
    }

    /// Takes a place again after [`Place::park`] (for work on the servers after the wait).
    pub(super) async fn take_back(&mut self) {
        if self.permit.is_none() {
            self.permit = self.places.clone().acquire_owned().await.ok();
        }
    }
}
