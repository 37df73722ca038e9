//! The connection pool of a [`Responder`](super::Responder): a few directory connections,
//! each carrying many operations in flight, replaced when the server drops them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use crate::directory::{Directory, DirectoryConfig};
use crate::error::{Error, ErrorKind};

/// Reconnection: 6 tries, 100 ms after the loss then doubling — about 6 s in all, then the
/// users left fail and `resume` finishes them.
const RECONNECT: crate::retry::Backoff = crate::retry::Backoff {
    first: Duration::from_millis(100),
    retries: 5,
};

struct Slot {
    dir: RwLock<Directory>,
    generation: AtomicU64,
    reconnecting: tokio::sync::Mutex<()>,
}

/// Connections shared by the workers of a run.
pub(crate) struct Pool {
    slots: Vec<Slot>,
    cfg: DirectoryConfig,
}

/// A connection lent to a worker: the directory and the generation of its slot, to tell a
/// connection that broke from one already replaced.
pub(crate) struct Lent {
    pub dir: Directory,
    pub slot: usize,
    generation: u64,
}

/// Whether `e` means the connection is gone (rather than a verdict on the user or the step).
pub(crate) fn connection_lost(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout)
}

impl Pool {
    /// Opens `cfg.pool_size` connections, at the same time (each is a TLS handshake and a
    /// bind the server checks: the first lock waits for the slowest, not for the sum).
    pub async fn connect(cfg: &DirectoryConfig) -> Result<Self, Error> {
        let dirs =
            futures_util::future::try_join_all((0..cfg.pool_size.max(1)).map(|_| Directory::connect(cfg)))
                .await?;
        let slots = dirs
            .into_iter()
            .map(|dir| Slot {
                dir: RwLock::new(dir),
                generation: AtomicU64::new(0),
                reconnecting: tokio::sync::Mutex::new(()),
            })
            .collect();
        Ok(Self {
            slots,
            cfg: cfg.clone(),
        })
    }

    /// Connections in the pool.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The current connection of slot `i % len`.
    pub fn lend(&self, i: usize) -> Lent {
        let slot = i % self.slots.len();
        let s = &self.slots[slot];
        let dir = s.dir.read().unwrap_or_else(|p| p.into_inner()).clone();
        Lent {
            dir,
            slot,
            generation: s.generation.load(Ordering::SeqCst),
        }
    }

    /// LDAP operations sent on the pool's current connections.
    pub fn operations(&self) -> u64 {
        (0..self.slots.len()).map(|i| self.lend(i).dir.operations()).sum()
    }

    /// The first connection.
    pub fn first(&self) -> Directory {
        self.lend(0).dir
    }

    /// Replaces the broken connection of `lent` (once, whoever asks first; the others get the
    /// new one), trying with a bounded backoff. `None` when the server stayed unreachable.
    pub async fn reconnect(&self, lent: &Lent) -> Option<Lent> {
        let s = &self.slots[lent.slot];
        let _one_at_a_time = s.reconnecting.lock().await;
        if s.generation.load(Ordering::SeqCst) != lent.generation {
            return Some(self.lend(lent.slot)); // already replaced by another worker
        }
        // the connection was just lost: a first wait, then tries with a doubling back-off
        tokio::time::sleep(RECONNECT.first).await;
        let backoff = crate::retry::Backoff {
            first: RECONNECT.first * 2,
            retries: RECONNECT.retries,
        };
        let connect = || async {
            let r = Directory::connect(&self.cfg).await;
            if let Err(e) = &r {
                tracing::debug!(slot = lent.slot, error = %e, "reconnect attempt failed");
            }
            r
        };
        let (r, _) = crate::retry::retry("directory reconnect", backoff, connect, Result::is_err).await;
        let dir = r.ok()?;
        *s.dir.write().unwrap_or_else(|p| p.into_inner()) = dir;
        s.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(slot = lent.slot, "directory connection replaced after a loss");
        Some(self.lend(lent.slot))
    }
}
