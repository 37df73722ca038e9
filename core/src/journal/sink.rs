//! What a journal's writer thread writes to: a [`Sink`] (the file, or PostgreSQL), given
//! batches of jobs it seals into chained lines.

use tokio::sync::oneshot;

use super::chain::seal;
use super::record::{Event, Record};
use crate::error::Error;
use crate::secret::Secret;
use crate::time::rfc3339_millis_now;

pub(super) type Job = (Vec<(String, Event)>, oneshot::Sender<Result<(), Error>>);

/// The sealed lines of a batch of jobs, numbered from `seq` and chained from `prev`; returns
/// the lines and the new head.
pub(super) fn seal_batch(
    jobs: &[Job],
    seq: u64,
    prev: &str,
    key: Option<&Secret>,
) -> Result<(Vec<String>, String), serde_json::Error> {
    let mut lines = Vec::new();
    let (mut s, mut pv) = (seq, prev.to_owned());
    for (events, _) in jobs {
        for (incident, event) in events {
            let rec = Record {
                seq: s,
                prev: pv.clone(),
                time: rfc3339_millis_now(),
                incident: incident.clone(),
                event: event.clone(),
            };
            let (line, hash) = seal(&serde_json::to_string(&rec)?, key);
            pv = hash;
            s += 1;
            lines.push(line);
        }
    }
    Ok((lines, pv))
}

/// Where a writer thread puts batches: the file, or a database.
pub(super) trait Sink: Send {
    /// Writes one batch durably; returns the new head.
    fn write(&mut self, jobs: &[Job]) -> Result<String, Error>;
}
