//! The audit journal: append-only JSON lines, each carrying the SHA-256 of the previous line
//! (a hash chain), group-committed with one fsync per batch.
//!
//! - An *intent* record is durable (fsynced) **before** the change it describes; the *outcome*
//!   after. `resume` and `release` read the journal back.
//! - No secrets, ever: records hold DNs, step names, before/after attributes (never passwords
//!   or hashes), revocation outcomes and typed errors.
//! - [`verify`] recomputes the chain and reports the first bad record. The chain shows any
//!   edit, insertion or deletion *before the head*; keep the head hash it prints (in the
//!   incident ticket) to pin the end as well: a chain alone can be recomputed by a forger.
//! - One writer at a time: the file is locked exclusively while a [`Journal`] is open.
//! - Or the journal lives in PostgreSQL (`[journal] database = "postgresql://…"`), where
//!   responders on several hosts append to one story: the same lines, chain and MACs, each
//!   batch appended under a table lock so the chain never forks; [`Location::export`] writes
//!   the file form, which verifies the same way.

mod chain;
mod file;
mod location;
mod postgres;
mod record;
mod sink;
mod tail;
mod writer;

pub use chain::{BadRecord, TornTail, VerifyReport, GENESIS};
pub use file::{read, verify, verify_intact, verify_with_key};
pub use location::{JournalConfig, Location};
pub use record::{Event, Record, Step, StepDetail, StepStatus};
pub use tail::Tail;
pub use writer::Journal;

#[cfg(test)]
mod tests;
