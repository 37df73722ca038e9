//! What can be done without a journal: the dry run and reading state. Nothing changes, so a
//! [`Planner`] needs no journal — and a [`Responder`], which changes things, always has one:
//! a containment without a journal does not compile.

use super::report::{PlanReport, StatusReport};
use super::Responder;
use crate::config::Config;
use crate::directory::{AccountState, Directory, UserRef};
use crate::error::Error;
use crate::investigate::{Instant, Pivot, PivotReport};

/// The dry run and the reads of a [`Responder`], without its journal.
///
/// ```no_run
/// # async fn demo() -> Result<(), cadenas::Error> {
/// use cadenas::directory::UserRef;
/// use cadenas::incident::Planner;
///
/// let cfg = cadenas::Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
/// let planner = Planner::new(&cfg).await?;
/// let plan = planner.plan(&[UserRef::parse("jdupont")?], false).await?;
/// for u in &plan.users {
///     println!("{}: {} step(s) would run", u.user, u.steps.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Planner(Responder);

impl Planner {
    /// Connects the pool and builds the revokers (to list sessions); opens no journal.
    pub async fn new(cfg: &Config) -> Result<Self, Error> {
        Ok(Self(Responder::open(cfg, None).await?))
    }

    /// [`Responder::plan`]: per user, the exact modifications and revoker calls a
    /// containment would make, and what it would refuse.
    pub async fn plan(&self, users: &[UserRef], allow_protected: bool) -> Result<PlanReport, Error> {
        self.0.plan(users, allow_protected).await
    }

    /// [`Responder::plan_from`]: the dry run over every account seen from an address.
    pub async fn plan_from(&self, pivot: &Pivot, allow_protected: bool) -> Result<PlanReport, Error> {
        self.0.plan_from(pivot, allow_protected).await
    }

    /// [`Responder::sightings`]: who was seen from an address.
    pub async fn sightings(&self, pivot: &Pivot) -> Result<PivotReport, Error> {
        self.0.sightings(pivot).await
    }

    /// [`Responder::status`]: the account's state now.
    pub async fn status(&self, user: &UserRef) -> Result<AccountState, Error> {
        self.0.status(user).await
    }

    /// [`Responder::status_report`]: the state, the mail rules and what changed since.
    pub async fn status_report(
        &self,
        user: &UserRef,
        changes_since: Option<Instant>,
    ) -> Result<StatusReport, Error> {
        self.0.status_report(user, changes_since).await
    }

    /// The first pooled connection.
    pub fn directory(&self) -> Directory {
        self.0.directory()
    }
}
