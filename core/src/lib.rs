//! # Cadenas — compromised-credential response for LDAP and Active Directory
//!
//! When an account's password is stolen, Cadenas takes the attacker out and brings the
//! rightful user back: **lock** the account, **reset** the password to a strong random one
//! with a forced change, **revoke** live sessions and cached credentials, **require MFA**,
//! **journal** every step, and later **release** the account to exactly its original flags.
//!
//! The main entry point is [`incident::Responder`]: contain, plan (a dry run), release and
//! resume, for one account or thousands, every step journaled. The blocking facade for
//! scripts and embedders is [`blocking`]. The building blocks, all async (tokio):
//!
//! - [`directory`]: connect over LDAPS/StartTLS as a least-privilege service account, find
//!   users safely ([`directory::UserRef`]), read their state, and the idempotent primitives,
//!   each returning a [`directory::Change`] (before/after).
//! - [`auth`]: password + TOTP checks, and [`auth::require_mfa`] (the MFA group **and** any
//!   enrolment dropped); [`mfa`]: TOTP enrolment, verification, recovery codes.
//! - [`session`]: revokers (Dovecot, webhooks, commands); [`notify`]: who is told;
//!   [`journal`]: the hash-chained audit journal; [`investigate`]: following the attacker;
//!   [`outbound`] and [`postfix`]: the attacker's outbound mail.
//! - [`Password`] / [`Secret`]: zeroized, redacted, never displayed. [`Error`]: one error
//!   type with stable codes ([`ErrorKind::code`]). [`Config`]: the TOML configuration.
//!
//! Every item has one public path: the crate root holds what every module uses (errors,
//! configuration, secrets); everything else is named by its module.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cadenas::Error> {
//! use std::sync::Arc;
//! use cadenas::directory::UserRef;
//! use cadenas::incident::{ContainOptions, FileSink, Responder};
//!
//! let cfg = cadenas::Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
//! let responder = Responder::from_config(&cfg).await?;
//! // the new passwords go to a new owner-only file, never to a log
//! let sink = Arc::new(FileSink::create("/root/incident-passwords.tsv".as_ref())?);
//! let users = [UserRef::parse("jdupont")?];
//! let report = responder.contain(&users, ContainOptions::new(sink)).await?;
//! println!("{} contained, {} need attention", report.done(), report.failed());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod blocking;
mod config;
mod db;
pub mod directory;
mod error;
pub mod incident;
pub mod investigate;
pub mod journal;
pub mod mfa;
pub mod notify;
pub mod outbound;
pub mod password;
pub mod postfix;
pub mod preflight;
pub mod report;
mod retry;
mod secret;
pub mod session;
mod text;
mod time;
mod tls;
pub mod watch;

pub use config::Config;
pub use db::{Database, PgTarget};
pub use error::{Error, ErrorKind, LdapDiagnostic, Result};
pub use secret::{Password, Secret};
pub use text::escape_controls;

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The user guide's Rust chapter, compiled as doc tests so it cannot rot.
#[doc = include_str!("../../docs/guide/src/rust.md")]
#[cfg(doctest)]
pub struct GuideRustDoctests;
