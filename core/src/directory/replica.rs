//! What replicas showed: the data of the replica checks (run by the incident layer after a
//! containment, and by `status`), kept here so that the journal, which records them, needs
//! nothing above it.

use serde::{Deserialize, Serialize};

use super::LockState;
use crate::error::Error;

/// What one replica showed after a containment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReplicaCheck {
    /// The replica's URL.
    pub url: String,
    /// Contained accounts the replica showed locked, with how long after the check began (ms).
    pub seen: Vec<(String, u64)>,
    /// Contained accounts the replica did not show locked by the deadline: contained on the
    /// primary, pending on this replica.
    pub pending: Vec<String>,
    /// Why the replica could not be read (every account is then pending on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

/// The lock as one replica shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReplicaState {
    /// The replica's URL.
    pub url: String,
    /// Its view of the lock, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockState>,
    /// Why it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}
