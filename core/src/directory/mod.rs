//! The directory: connecting, finding users, reading account state, and the containment
//! primitives (`lock`, `unlock`, `reset_password`, `force_change`, `add_to_mfa_group`,
//! `remove_from_mfa_group`). Requiring MFA — the group **and** any enrolment dropped — is
//! [`crate::auth::require_mfa`].
//!
//! Every primitive is idempotent and returns a [`Change`] saying what it changed (the
//! relevant attributes before and after — never a password or hash), so callers can journal
//! and undo. Flavour-specific behaviour lives in the private `openldap` and `ad` modules.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cadenas::Error> {
//! use cadenas::Config;
//! use cadenas::directory::{Directory, UserRef};
//!
//! let cfg = Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
//! let dir = Directory::connect(&cfg.directory).await?;
//! let user = dir.find_user(&UserRef::parse("jdupont")?).await?;
//! let change = dir.lock(&user).await?;
//! println!("{:?}: {:?}", change.action, change.outcome);
//! # Ok(()) }
//! ```

pub(crate) mod ad;
mod attributes;
mod changes;
mod config;
mod flavour;
mod ldap;
mod lookup;
mod names;
mod openldap;
pub(crate) mod ppolicy;
mod replica;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ldap3::{Ldap, Mod, Scope};
use serde::Serialize;

pub use attributes::{Attributes, AttributesIter};
pub(crate) use changes::from_generalized;
pub use changes::{AttributeChange, WATCHED_ATTRIBUTES};
pub use config::{AdWriteDc, DirectoryConfig, FlavourSetting, LdapUrl, PasswordHashing};
pub(crate) use lookup::ProtectedMembers;
pub(crate) use lookup::NAMES_PER_SEARCH;
pub use names::{Dn, UserName, UserRef, MAX_USER_NAME_CHARS};
pub use replica::{ReplicaCheck, ReplicaState};

use flavour::{AdRules, OpenLdapRules, Planned, Rules, Wanted};
use ldap::{bind_outcome, open, refuse_plaintext, transport_of};
pub(crate) use ldap::{change, first, ldap_error, only, refused, unchanged};

use crate::error::{Error, ErrorKind};
use crate::secret::Password;
use crate::tls;

/// Which kind of directory server this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Flavour {
    /// OpenLDAP (`slapd`) with the ppolicy overlay.
    OpenLdap,
    /// Microsoft Active Directory or a Samba AD DC.
    ActiveDirectory,
}

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Transport {
    /// TLS from the first byte (`ldaps://`).
    Ldaps,
    /// `ldap://` upgraded with StartTLS before the bind.
    StartTls,
    /// Unencrypted LDAP (passwords only with an explicit opt-in).
    Plain,
}

/// A directory entry the responder may act on: found under a configured base DN.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct User {
    /// The entry's DN, as the server spells it.
    pub dn: Dn,
    /// The login name, when the search that found the entry read it already (one read less
    /// for the revocation step).
    #[serde(skip)]
    login: Option<String>,
    /// OpenLDAP: the entry's `pwdPolicySubentry` when the search that found it read it
    /// (`Some(None)`: it has none, the default policy applies) — the lock checks that policy
    /// before its one modify.
    #[serde(skip)]
    policy_subentry: Option<Option<String>>,
    /// Attribute values this process saw in the entry — when the search that found it read
    /// them (AD: `userAccountControl`), or in a change's own response (OpenLDAP: the lock's
    /// Post-Read). Only a starting point, used by `contain` right after it saw them: for the
    /// AD lock's delete-old/add-new swap (refused when the value changed since), and for what
    /// a reset reports as its before-state; never a reason to send nothing.
    #[serde(skip)]
    seen: Option<Seen>,
}

/// Values read from an entry, with the attributes asked (an attribute asked and absent from
/// `values` was absent from the entry).
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    asked: &'static [&'static str],
    values: Attributes,
}

impl Seen {
    /// `values` of the attributes `asked` (others dropped).
    pub(crate) fn of(asked: &'static [&'static str], values: &Attributes) -> Self {
        Self {
            asked,
            values: only(values, asked),
        }
    }
}

impl User {
    /// The entry at `dn` (its login name read when needed).
    pub(crate) fn at(dn: Dn) -> Self {
        Self {
            dn,
            login: None,
            policy_subentry: None,
            seen: None,
        }
    }

    /// What this process saw of `attrs` in the entry, when it saw all of them.
    pub(crate) fn seen(&self, attrs: &[&str]) -> Option<&Attributes> {
        let s = self.seen.as_ref()?;
        attrs
            .iter()
            .all(|a| s.asked.iter().any(|k| k.eq_ignore_ascii_case(a)))
            .then_some(&s.values)
    }

    /// The login name, when the search that found the entry read it.
    pub(crate) fn login_known(&self) -> Option<&str> {
        self.login.as_deref()
    }

    /// Replaces what this process saw of the entry (`None`: nothing known any more, e.g.
    /// after a change that did not show the entry).
    pub(crate) fn saw(&mut self, seen: Option<Seen>) {
        self.seen = seen;
    }
}

/// Two `User`s are the same entry.
impl PartialEq for User {
    fn eq(&self, other: &Self) -> bool {
        self.dn == other.dn
    }
}

impl Eq for User {}

/// Whether a change's after-state shows the containment lock in place: OpenLDAP's reset
/// re-applies the lock ppolicy drops, and says so in its after-state; AD's leaves
/// ACCOUNTDISABLE set (a password set does not clear it) and its after-state shows the value.
pub(crate) fn shows_lock(c: &Change) -> bool {
    ad::shows_disabled(&c.after)
        || c.after
            .get("pwdAccountLockedTime")
            .is_some_and(|v| v.iter().any(|l| l == openldap::LOCKED_FOREVER))
}

/// What a primitive does. Verbs in the active voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Block new logins.
    Lock,
    /// Allow logins again.
    Unlock,
    /// Set a new password.
    ResetPassword,
    /// Require a password change at next logon.
    ForceChange,
    /// Put the account in the MFA-required group.
    RequireMfa,
    /// Take the account out of the MFA-required group.
    ClearMfaRequirement,
    /// Put the account's lock flags back exactly as recorded before containment.
    RestoreFlags,
}

/// Whether a primitive had to change anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeOutcome {
    /// The directory was modified.
    Applied,
    /// The account was already in the wanted state; nothing was sent.
    AlreadyInPlace,
}

/// What a primitive changed: enough to journal it and to undo it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Change {
    /// The primitive.
    pub action: Action,
    /// The entry acted on.
    pub dn: String,
    /// Applied, or already so.
    pub outcome: ChangeOutcome,
    /// Relevant attributes before (never passwords).
    pub before: Attributes,
    /// Relevant attributes after (never passwords).
    pub after: Attributes,
}

/// Lock state of an account, as the directory reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum LockState {
    /// Not locked.
    Unlocked,
    /// Locked by an administrator until explicitly unlocked.
    Locked,
    /// Locked out automatically (too many failures) since the given time.
    LockedOut {
        /// Generalized time of the lockout.
        since: String,
    },
}

/// What an account looks like right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AccountState {
    /// The entry.
    pub dn: String,
    /// The directory's flavour.
    pub flavour: Flavour,
    /// Lock state.
    pub lock: LockState,
    /// A password change is required at next logon.
    pub must_change: bool,
    /// The account is in the MFA-required group (`None`: no group configured).
    pub mfa_required: Option<bool>,
    /// Last password change (generalized time), when the directory records it.
    pub password_changed_at: Option<String>,
    /// Configured protected groups the account belongs to.
    pub protected_groups: Vec<String>,
    /// The raw attributes the state was read from.
    pub attributes: Attributes,
}

/// The result of binding as a user with a password (a login check).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[non_exhaustive]
pub enum BindOutcome {
    /// The password is right and the account is usable.
    Success,
    /// The password is right but must be changed before anything else works. On OpenLDAP
    /// the bind itself *succeeds* (with the ppolicy "change after reset" control) and every
    /// other operation fails with 50: a successful bind is not proof of a usable account.
    MustChange,
    /// Wrong password (or unknown user: servers do not say which).
    InvalidCredentials,
    /// The account is locked.
    Locked,
    /// The account is disabled.
    Disabled,
    /// The password or the account has expired.
    Expired,
    /// Any other refusal.
    Refused {
        /// LDAP result code.
        rc: u32,
        /// Diagnostic text.
        text: String,
    },
}

/// The most accounts [`Directory::add_to_mfa_group_many`] adds to the group in one modify.
pub(crate) const MEMBERS_PER_MODIFY: usize = 256;

/// A connection to the directory, bound as the responder's service account.
///
/// The underlying ldap3 handle multiplexes: clones share one connection and many operations
/// can be in flight at once.
#[derive(Clone)]
pub struct Directory {
    ldap: Ldap,
    cfg: Arc<DirectoryConfig>,
    tls: Option<Arc<rustls::ClientConfig>>,
    flavour: Flavour,
    transport: Transport,
    ppolicy: bool,
    /// The server announces the Post-Read control: modifies return the entry after.
    post_read: bool,
    /// The server announces the Pre-Read control: modifies return the entry before.
    pre_read: bool,
    /// Operations sent on this connection (all clones).
    operations: Arc<std::sync::atomic::AtomicU64>,
    /// Password policies (normalised DN) seen with `pwdLockout: TRUE`, and when: a lock of
    /// thousands of accounts under one policy reads it once a minute, not once per account.
    lockout_policies: Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>,
    /// Held while a policy is read: the workers of a run that start together wait for the
    /// first one's read instead of each reading the same policy.
    policy_read: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("url", &self.cfg.url)
            .field("flavour", &self.flavour)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// The turn to read a password policy (one reader per connection at a time).
    pub(crate) async fn policy_read_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.policy_read.lock().await
    }

    /// Whether `policy` was seen with `pwdLockout: TRUE` less than a minute ago.
    pub(crate) fn lockout_policy_known(&self, policy: &Dn) -> bool {
        let seen = self.lockout_policies.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&policy.normalised())
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(60))
    }

    /// Records that `policy` has `pwdLockout: TRUE`.
    pub(crate) fn remember_lockout_policy(&self, policy: &Dn) {
        self.lockout_policies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(policy.normalised(), std::time::Instant::now());
    }

    /// Whether `other` is a clone of this connection (the same LDAP connection underneath).
    pub(crate) fn same_connection(&self, other: &Directory) -> bool {
        Arc::ptr_eq(&self.operations, &other.operations)
    }

    /// LDAP operations sent on this connection so far (every clone counts; the user binds of
    /// login checks, made on connections of their own, do not): what benchmarks divide by
    /// the accounts contained.
    pub fn operations(&self) -> u64 {
        self.operations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A connection's TLS handshake with the directory (ldaps or StartTLS, as configured), no
    /// bind: the certificate the server showed and the verifier's verdict, and the
    /// connection's error if it failed. `None` over plain LDAP. For the preflight.
    pub(crate) async fn show_certificate(
        cfg: &DirectoryConfig,
    ) -> Result<Option<(Option<tls::Shown>, Option<Error>)>, Error> {
        if transport_of(cfg) == Transport::Plain {
            return Ok(None);
        }
        let (config, shown) = tls::recording(cfg.ca_file.as_deref())?;
        let failed = match open(cfg, Some(config)).await {
            Ok(mut ldap) => {
                ldap.unbind().await.ok();
                None
            }
            Err(e) => Some(e),
        };
        let seen = shown.lock().ok().and_then(|s| s.clone());
        Ok(Some((seen, failed)))
    }

    /// Connects (LDAPS or StartTLS, verifying the server certificate), binds as the service
    /// account and detects the flavour from the rootDSE.
    ///
    /// Refuses with [`ErrorKind::InsecureTransport`] — before anything is sent — to bind over
    /// unencrypted LDAP unless `allow_plaintext_passwords` is set.
    pub async fn connect(cfg: &DirectoryConfig) -> Result<Self, Error> {
        let transport = transport_of(cfg);
        refuse_plaintext(cfg, transport, "binding as the service account")?;
        let password = cfg.bind_password()?;
        let tls = match (&cfg.ca_file, transport) {
            (Some(ca), _) => Some(tls::client_config_with_ca(ca)?),
            (None, Transport::Plain) => None,
            // never ldap3's fallback, which is an empty store when the system's fails to load
            (None, _) => Some(tls::client_config_with_system_roots()?),
        };
        let ldap = open(cfg, tls.clone()).await?;
        let mut dir = Self {
            ldap,
            cfg: Arc::new(cfg.clone()),
            tls,
            flavour: Flavour::OpenLdap,
            transport,
            ppolicy: false,
            post_read: false,
            pre_read: false,
            operations: Arc::default(),
            lockout_policies: Arc::default(),
            policy_read: Arc::default(),
        };
        let res = dir
            .handle()
            .simple_bind(cfg.bind_dn.as_str(), password.expose_secret())
            .await
            .map_err(|e| ldap_error("service account bind", e))?;
        if res.rc != 0 {
            return Err(Error::new(
                ErrorKind::ServiceBind,
                format!("the service account {} could not bind", cfg.bind_dn),
            )
            .with_ldap(res.rc, res.text, res.matched));
        }
        dir.detect_flavour().await?;
        if dir.flavour == Flavour::ActiveDirectory && cfg.ad_write_dc == AdWriteDc::PdcEmulator {
            if let Some(pdc) = dir.pdc_emulator().await? {
                let url = cfg.url.with_host(&pdc)?;
                tracing::info!(configured = %cfg.url, pdc_emulator = %url, "writes go to the PDC emulator");
                dir.close().await;
                let mut to_pdc = cfg.clone();
                to_pdc.url = url;
                to_pdc.ad_write_dc = AdWriteDc::AsConfigured;
                return Box::pin(Self::connect(&to_pdc)).await;
            }
        }
        tracing::debug!(url = %cfg.url, flavour = ?dir.flavour, transport = ?transport, "directory connected");
        Ok(dir)
    }

    /// Active Directory: the PDC emulator's host name (`dNSHostName`), when the connected DC
    /// is not it. From the rootDSE (`dsServiceName`, `defaultNamingContext`) and the domain
    /// root's `fSMORoleOwner` (the PDC's NTDS Settings, below its server object).
    pub async fn pdc_emulator(&self) -> Result<Option<String>, Error> {
        let first = |entries: &[ldap3::SearchEntry], attr: &str| {
            entries
                .first()
                .and_then(|e| e.attrs.get(attr).and_then(|v| v.first().cloned()))
        };
        let root = self
            .search_raw(
                "",
                Scope::Base,
                "(objectClass=*)",
                &["dsServiceName", "defaultNamingContext"],
            )
            .await?;
        let (Some(me), Some(domain)) = (
            first(&root, "dsServiceName"),
            first(&root, "defaultNamingContext"),
        ) else {
            return Err(Error::new(
                ErrorKind::UnexpectedResponse,
                "the rootDSE names no dsServiceName / defaultNamingContext",
            ));
        };
        let owner = first(
            &self
                .search_raw(&domain, Scope::Base, "(objectClass=*)", &["fSMORoleOwner"])
                .await?,
            "fSMORoleOwner",
        )
        .ok_or_else(|| {
            Error::new(
                ErrorKind::UnexpectedResponse,
                format!("{domain} has no fSMORoleOwner"),
            )
        })?;
        let owner = Dn::parse(&owner)?;
        if owner.same_entry(&Dn::parse(&me)?) {
            return Ok(None);
        }
        let server = owner.parent().ok_or_else(|| {
            Error::new(
                ErrorKind::UnexpectedResponse,
                format!("fSMORoleOwner {owner} has no parent"),
            )
        })?;
        let host = first(
            &self
                .search_raw(server.as_str(), Scope::Base, "(objectClass=*)", &["dNSHostName"])
                .await?,
            "dNSHostName",
        )
        .ok_or_else(|| {
            Error::new(
                ErrorKind::UnexpectedResponse,
                format!("{server} has no dNSHostName"),
            )
        })?;
        Ok(Some(host))
    }

    /// The directory's flavour.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// How the connection is protected.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The configuration this directory was opened with.
    pub fn config(&self) -> &DirectoryConfig {
        &self.cfg
    }

    /// Unbinds and closes the connection.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }

    async fn detect_flavour(&mut self) -> Result<(), Error> {
        let root = self
            .search_raw(
                "",
                Scope::Base,
                "(objectClass=*)",
                &[
                    "objectClass",
                    "supportedCapabilities",
                    "supportedControl",
                    "vendorName",
                ],
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::UnexpectedResponse, "the rootDSE could not be read"))?;
        let has = |attr: &str, value: &str| {
            root.attrs
                .get(attr)
                .is_some_and(|vs| vs.iter().any(|v| v.eq_ignore_ascii_case(value)))
        };
        self.ppolicy = has("supportedControl", ppolicy::PPOLICY_OID);
        self.post_read = has("supportedControl", ldap::POST_READ_OID);
        self.pre_read = has("supportedControl", ldap::PRE_READ_OID);
        let detected = if has("supportedCapabilities", "1.2.840.113556.1.4.800") {
            Some(Flavour::ActiveDirectory)
        } else if has("objectClass", "OpenLDAProotDSE") {
            Some(Flavour::OpenLdap)
        } else {
            None
        };
        self.flavour = match (self.cfg.flavour, detected) {
            (FlavourSetting::Openldap, _) => Flavour::OpenLdap,
            (FlavourSetting::ActiveDirectory, _) => Flavour::ActiveDirectory,
            (FlavourSetting::Auto, Some(f)) => f,
            (FlavourSetting::Auto, None) => {
                return Err(Error::new(
                    ErrorKind::UnsupportedDirectory,
                    "the rootDSE matches neither OpenLDAP nor Active Directory; set directory.flavour",
                ))
            }
        };
        Ok(())
    }

    /// Reads the account's state: lock, must-change, MFA requirement, protected groups.
    pub async fn account_state(&self, user: &User) -> Result<AccountState, Error> {
        let mfa_required = match &self.cfg.mfa_group_dn {
            Some(g) => Some(self.is_member(g, &user.dn).await?),
            None => None,
        };
        let protected_groups = self.protected_groups(user).await?;
        let mut state = self.rules().account_state(self, user).await?;
        state.mfa_required = mfa_required;
        state.protected_groups = protected_groups;
        Ok(state)
    }

    /// The configured protected groups the account belongs to, through nested groups too:
    /// this rail is the only guard against taking over an administrator (Samba lets the
    /// delegated helpdesk reset a Domain Admin).
    pub async fn protected_groups(&self, user: &User) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for g in &self.cfg.protected_group_dns {
            if self.is_member_transitive(g, &user.dn).await? {
                out.push(g.to_string());
            }
        }
        Ok(out)
    }

    /// Blocks new logins. OpenLDAP: `pwdAccountLockedTime: 000001010000Z`, after checking that
    /// the effective policy has `pwdLockout: TRUE` (otherwise the server silently ignores the
    /// lock: [`ErrorKind::LockIneffective`]). AD: set ACCOUNTDISABLE, keeping every other
    /// `userAccountControl` bit (the original value is in the returned [`Change`]).
    ///
    /// On OpenLDAP with the Pre-Read control and a user found by [`find_user`](Self::find_user)
    /// (which reads its `pwdPolicySubentry`), the lock is one modify whose response carries
    /// the entry before and after it; an account locked already is written the same value
    /// again and reported [`ChangeOutcome::AlreadyInPlace`].
    pub async fn lock(&self, user: &User) -> Result<Change, Error> {
        Ok(self.lock_seeing(user, false).await?.0)
    }

    /// The lock as `contain` sends it, right after finding the user: [`lock`](Self::lock),
    /// with what the lock's own response showed of the entry besides (OpenLDAP with
    /// Post-Read: the state the reset starts from). On AD, from the `userAccountControl` the
    /// find read a moment before, swapped for the locked value in one modify (the server
    /// refuses the swap when the value changed since; the lock then reads and decides again).
    /// Not for a `User` found earlier: Samba accepts the swap without checking the old value
    /// when the account already holds the new one (docs/FACTS.md), so what was seen stands
    /// for a read only as long as a read-then-modify's own window.
    pub(crate) async fn lock_after_find(&self, user: &User) -> Result<(Change, Option<Seen>), Error> {
        self.lock_seeing(user, true).await
    }

    /// The lock, with what its response showed of the entry; on AD from the value the find
    /// read when `after_find`, else from a read.
    async fn lock_seeing(&self, user: &User, after_find: bool) -> Result<(Change, Option<Seen>), Error> {
        match (self.flavour, self.pre_read, &user.policy_subentry) {
            (Flavour::OpenLdap, true, Some(subentry)) => {
                return openldap::lock_reading_before(self, user, subentry.as_deref()).await;
            }
            (Flavour::ActiveDirectory, ..) if after_find => {
                if let Some(locked) = ad::lock_from_seen(self, user).await? {
                    return Ok(locked);
                }
            }
            _ => {}
        }
        let c = self
            .send_deciding_again(user, || self.rules().plan(self, user, Wanted::Lock))
            .await?;
        Ok((c, None))
    }

    /// Allows logins again. OpenLDAP: deletes `pwdAccountLockedTime` (the server also clears
    /// `pwdFailureTime`). AD: clears ACCOUNTDISABLE and sets `lockoutTime: 0`.
    pub async fn unlock(&self, user: &User) -> Result<Change, Error> {
        self.send_deciding_again(user, || self.rules().plan(self, user, Wanted::Unlock))
            .await
    }

    /// Puts the account's lock flags back exactly as `original` records them — the `before`
    /// of the [`Action::Lock`] change made at containment: OpenLDAP `pwdAccountLockedTime`
    /// (deleted if it was absent), AD `userAccountControl` byte for byte (including a
    /// `DONT_EXPIRE_PASSWD` that containment cleared) and `lockoutTime: 0`.
    pub async fn restore_flags(&self, user: &User, original: &Attributes) -> Result<Change, Error> {
        self.send_deciding_again(user, || self.rules().plan(self, user, Wanted::Restore(original)))
            .await
    }

    /// Sets a new password; with `force_change`, also requires a change at next logon.
    ///
    /// Refused over unencrypted LDAP without the opt-in ([`ErrorKind::InsecureTransport`]),
    /// and for an empty password ([`ErrorKind::InvalidInput`]). OpenLDAP: RFC 3062 Password
    /// Modify (server-side hashing) or a client-side `{ARGON2}` hash, per config. AD: quoted
    /// UTF-16LE `unicodePwd` replace, with `pwdLastSet: 0` in the same modify when forcing a
    /// change (without it Samba keeps the old password valid for an hour).
    pub async fn reset_password(
        &self,
        user: &User,
        new: &Password,
        force_change: bool,
    ) -> Result<Change, Error> {
        refuse_plaintext(&self.cfg, self.transport, "resetting a password")?;
        new.ensure_not_empty("reset_password")?;
        self.rules().reset_password(self, user, new, force_change).await
    }

    /// Requires a password change at next logon. OpenLDAP: `pwdReset: TRUE`. AD:
    /// `pwdLastSet: 0`, clearing `DONT_EXPIRE_PASSWD`, which would silently defeat it.
    pub async fn force_change(&self, user: &User) -> Result<Change, Error> {
        self.send_deciding_again(user, || self.rules().plan(self, user, Wanted::ForceChange))
            .await
    }

    /// Puts the account in the configured MFA-required group (idempotent). Only the group:
    /// an enrolment the attacker made stays usable — [`crate::auth::require_mfa`] also drops
    /// it, and is what a containment runs.
    pub async fn add_to_mfa_group(&self, user: &User) -> Result<Change, Error> {
        let group = self.mfa_group()?;
        self.set_membership(&group, user, true).await
    }

    /// Puts many accounts in the configured MFA-required group: one modify adding them all
    /// (a group of thousands rewritten once per batch, not once per account), with one result
    /// per account, in order.
    ///
    /// The server applies such a modify entirely or not at all. When it refuses it — one
    /// account already a member (OpenLDAP 20, AD 68), an entry that vanished — nothing was
    /// added, and every account is then sent alone as by [`add_to_mfa_group`](Self::add_to_mfa_group),
    /// so each gets its own outcome ("already in place", its own error). At most
    /// 256 accounts go in one modify.
    ///
    /// ```no_run
    /// # async fn f(dir: &cadenas::directory::Directory, users: &[cadenas::directory::User]) {
    /// for (user, result) in users.iter().zip(dir.add_to_mfa_group_many(users).await) {
    ///     match result {
    ///         Ok(change) => println!("{}: {:?}", user.dn, change.outcome),
    ///         Err(e) => eprintln!("{}: {e}", user.dn),
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn add_to_mfa_group_many(&self, users: &[User]) -> Vec<Result<Change, Error>> {
        let group = match self.mfa_group() {
            Ok(g) => g,
            Err(e) => return users.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut out = Vec::with_capacity(users.len());
        for chunk in users.chunks(MEMBERS_PER_MODIFY) {
            out.extend(self.add_members(&group, chunk).await);
        }
        out
    }

    /// One modify adding `users` to `group`, else each alone (see [`Self::add_to_mfa_group_many`]).
    async fn add_members(&self, group: &Dn, users: &[User]) -> Vec<Result<Change, Error>> {
        let values: HashSet<Vec<u8>> = users.iter().map(|u| u.dn.as_str().as_bytes().to_vec()).collect();
        // one account named twice gets "applied" once and "already in place" once, alone
        if users.len() > 1 && values.len() == users.len() {
            let res = self
                .modify_raw(group, vec![Mod::Add(b"member".to_vec(), values)])
                .await;
            match res {
                Ok(r) if r.rc == 0 => {
                    return users
                        .iter()
                        .map(|u| {
                            let p = Self::membership_plan(group, u, true, false);
                            let after = p.after.unwrap_or_default();
                            Ok(change(p.action, u, ChangeOutcome::Applied, p.before, after))
                        })
                        .collect()
                }
                Ok(r) => {
                    tracing::debug!(group = %group, members = users.len(), rc = r.rc, "batched member add refused; each alone")
                }
                Err(e) => {
                    tracing::debug!(group = %group, members = users.len(), error = %e, "batched member add failed; each alone")
                }
            }
        }
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            out.push(self.set_membership(group, u, true).await);
        }
        out
    }

    /// Takes the account out of the configured MFA-required group (idempotent).
    pub async fn remove_from_mfa_group(&self, user: &User) -> Result<Change, Error> {
        let group = self.mfa_group()?;
        self.set_membership(&group, user, false).await
    }

    fn mfa_group(&self) -> Result<Dn, Error> {
        self.cfg
            .mfa_group_dn
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::Config, "directory.mfa_group_dn is not configured"))
    }

    async fn set_membership(&self, group: &Dn, user: &User, member: bool) -> Result<Change, Error> {
        if member {
            // One operation, not a membership search and then the add: the server's answer says
            // whether the member was there already (OpenLDAP 20, AD 68), atomically.
            let p = Self::membership_plan(group, user, true, false);
            let mut c = self.execute(user, p).await?;
            if c.outcome == ChangeOutcome::AlreadyInPlace {
                c.before = c.after.clone();
            }
            return Ok(c);
        }
        let p = self.plan_membership(group, user, member).await?;
        self.execute(user, p).await
    }

    async fn plan_membership(&self, group: &Dn, user: &User, member: bool) -> Result<Planned, Error> {
        let was = self.is_member(group, &user.dn).await?;
        Ok(Self::membership_plan(group, user, member, was))
    }

    /// The modify that makes `user` a member of `group` or not (`member`), given whether it
    /// is one now (`was`).
    fn membership_plan(group: &Dn, user: &User, member: bool, was: bool) -> Planned {
        let action = if member {
            Action::RequireMfa
        } else {
            Action::ClearMfaRequirement
        };
        let snapshot = |m: bool| {
            Attributes::from([(
                "memberOf".to_owned(),
                if m { vec![group.to_string()] } else { vec![] },
            )])
        };
        let mut p = Planned::of_user(
            action,
            user,
            &format!("{action:?} on {group}"),
            snapshot(was),
            &[],
        );
        p.target = group.clone();
        if was != member {
            let value = HashSet::from([user.dn.as_str().as_bytes().to_vec()]);
            p.mods = vec![if member {
                Mod::Add(b"member".to_vec(), value)
            } else {
                Mod::Delete(b"member".to_vec(), value)
            }];
            p.after = Some(snapshot(member));
            // Concurrent runs: OpenLDAP answers 20 (value exists) / 16 (no such value); AD 68 / 53.
            p.already = if member { &[20, 68] } else { &[16, 53] };
        }
        p
    }

    /// What `contain` would send for `action` on the account — whether it would change
    /// anything, and the modifications in words — computed by the same code that sends it
    /// (nothing is sent).
    pub(crate) async fn preview(&self, user: &User, action: Action) -> Result<(bool, Vec<String>), Error> {
        let p = match action {
            Action::Lock => self.rules().plan(self, user, Wanted::Lock).await?,
            Action::Unlock => self.rules().plan(self, user, Wanted::Unlock).await?,
            Action::ForceChange => self.rules().plan(self, user, Wanted::ForceChange).await?,
            Action::RequireMfa => self.plan_membership(&self.mfa_group()?, user, true).await?,
            Action::ClearMfaRequirement => self.plan_membership(&self.mfa_group()?, user, false).await?,
            Action::ResetPassword => return Ok((true, self.rules().describe_reset(self, user, true).await?)),
            Action::RestoreFlags => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "restore_flags needs the recorded flags: preview it through release",
                ))
            }
        };
        Ok((!p.mods.is_empty(), p.describe()))
    }

    /// The rules of this directory's flavour.
    pub(super) fn rules(&self) -> &'static dyn Rules {
        match self.flavour {
            Flavour::OpenLdap => &OpenLdapRules,
            Flavour::ActiveDirectory => &AdRules,
        }
    }

    /// Binds as `dn` with `password` on a fresh connection (with the ppolicy request control)
    /// and reports what a login would see. Refused over unencrypted LDAP without the opt-in.
    pub async fn check_password(&self, dn: &Dn, password: &Password) -> Result<BindOutcome, Error> {
        refuse_plaintext(&self.cfg, self.transport, "binding as a user")?;
        password.ensure_not_empty("check_password")?;
        let mut ldap = open(&self.cfg, self.tls.clone()).await?;
        let ctrl = ldap3::controls::RawControl {
            ctype: ppolicy::PPOLICY_OID.to_owned(),
            crit: false,
            val: None,
        };
        let res = ldap
            .with_timeout(self.cfg.operation_timeout())
            .with_controls(vec![ctrl])
            .simple_bind(dn.as_str(), password.expose_secret())
            .await
            .map_err(|e| ldap_error("user bind", e));
        let _ = ldap.unbind().await;
        let res = res?;
        tracing::debug!(dn = %dn, rc = res.rc, "ldap bind as the user (login check)");
        let policy = res
            .ctrls
            .iter()
            .find(|c| c.1.ctype == ppolicy::PPOLICY_OID)
            .and_then(|c| c.1.val.as_deref())
            .and_then(ppolicy::parse_response);
        Ok(bind_outcome(&res, policy))
    }
}
