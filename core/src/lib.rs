//! # Cadenas — compromised-credential response for LDAP and Active Directory
//!
//! When an account's password is stolen, Cadenas takes the attacker out and brings the
//! rightful user back: **lock** the account, **reset** the password to a strong random one
//! with a forced change, **revoke** live sessions and cached credentials, **require MFA**,
//! **journal** every step, and later **release** the account to exactly its original flags.
//!
//! The main entry point is [`incident::Responder`] (contain / plan / release / resume, for one
//! user or thousands). The building blocks, all async (tokio):
//!
//! - [`Directory`]: connect over LDAPS/StartTLS as a least-privilege service account, find
//!   users safely ([`UserRef`], [`UserName`], [`Dn`]), read [`AccountState`], and the
//!   idempotent primitives, each returning a [`Change`] (before/after).
//! - [`Password`] / [`Secret`]: zeroized, redacted, never displayed.
//! - [`Error`]: one error type with stable codes ([`ErrorKind::code`]).
//! - [`Config`]: the TOML configuration.
//! - [`session`]: revokers (Dovecot, webhooks, commands); [`mfa`]: TOTP, recovery codes,
//!   `authenticate`; [`journal`]: the hash-chained audit journal.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cadenas::Error> {
//! use cadenas::{Config, Directory, UserRef};
//!
//! let cfg = Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
//! let dir = Directory::connect(&cfg.directory).await?;
//! let user = dir.find_user(&UserRef::parse("jdupont")?).await?;
//! dir.lock(&user).await?;
//! let new_password = cfg.password.generate()?;
//! dir.reset_password(&user, &new_password, true).await?;
//! dir.require_mfa(&user).await?;
//! // hand `new_password` to the user through a safe channel; never log it
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod blocking;
pub mod config;
pub mod db;
pub mod directory;
pub mod error;
pub mod incident;
pub mod investigate;
pub mod journal;
pub mod mfa;
pub mod notify;
pub mod outbound;
pub mod password;
pub mod postfix;
pub mod secret;
pub mod session;
mod text;
mod time;
mod tls;

pub use auth::{authenticate, AuthOutcome};
pub use config::Config;
pub use directory::{
    AccountState, Action, Attributes, BindOutcome, Change, ChangeOutcome, Directory, DirectoryConfig, Dn,
    Flavour, LockState, Transport, User, UserName, UserRef,
};
pub use error::{Error, ErrorKind, LdapDiagnostic, Result};
pub use incident::{
    ContainOptions, ContainReport, PlanReport, ReleaseOptions, ReleaseReport, Responder, StepDetail,
    StepReport, UserReport,
};
pub use journal::{Step, StepStatus};
pub use mfa::{Mfa, MfaConfig};
pub use secret::{Password, Secret};
pub use session::{RevocationOutcome, RevocationStatus};
pub use text::escape_controls;

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
