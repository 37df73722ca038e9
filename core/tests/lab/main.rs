//! Integration tests against the lab's real servers (`make lab-up`), in one test binary.
//! Each test makes its own users, so tests run in parallel and can be re-run on a live lab.

#[path = "../support/mod.rs"]
mod support;

mod ad;
mod ad_dcs;
mod changes;
mod dovecot;
mod flavours;
mod incident;
mod investigate;
mod journal_pg;
mod mfa;
mod mfa_stores;
mod notify;
mod openldap;
mod outbound;
mod preflight;
mod replicas;
mod report;
mod revokers;
mod watch;
