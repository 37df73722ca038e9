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
/// them), held while its steps work on the servers. An account that only waits for the shared
/// MFA-group modify may give its place to the next account ([`Place::park`]); no more wait
/// for a fuller batch than the run has places.
pub(super) struct Place {
    permit: Option<OwnedSemaphorePermit>,
    places: Arc<Semaphore>,
    size: usize,
    /// The run's accounts parked now.
    parked: Arc<AtomicUsize>,
}

impl Place {
    /// A place among `size`, taken from `places` (waiting for one), with the run's count of
    /// parked accounts.
    pub(super) async fn take(places: &Arc<Semaphore>, size: usize, parked: &Arc<AtomicUsize>) -> Self {
        Self {
            permit: places.clone().acquire_owned().await.ok(),
            places: places.clone(),
            size,
            parked: parked.clone(),
        }
    }
}

/// One of a run's accounts parked, waiting for a fuller MFA-group batch: counted until dropped
/// (when a turn takes it into a modify).
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
        if self.permit.is_none() || self.working() <= 1 {
            return None;
        }
        self.parked
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                (p < self.size).then_some(p + 1)
            })
            .ok()?;
        self.permit = None;
        Some(Parked(self.parked.clone()))
    }

    /// As many of the run's accounts wait parked as the run has places: no more may join.
    pub(super) fn parking_full(&self) -> bool {
        self.parked.load(Ordering::SeqCst) >= self.size
    }

    /// Takes a place again after [`Place::park`] (for work on the servers after the wait).
    pub(super) async fn take_back(&mut self) {
        if self.permit.is_none() {
            self.permit = self.places.clone().acquire_owned().await.ok();
        }
    }
}
