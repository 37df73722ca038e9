//! The directory: connecting, finding users, reading account state, and the containment
//! primitives (`lock`, `unlock`, `reset_password`, `force_change`, `require_mfa`,
//! `clear_mfa_requirement`).
//!
//! Every primitive is idempotent and returns a [`Change`] saying what it changed (the
//! relevant attributes before and after — never a password or hash), so callers can journal
//! and undo. Flavour-specific behaviour lives in [`openldap`] (and, later, `ad`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), cadenas::Error> {
//! use cadenas::{Config, Directory, UserRef};
//!
//! let cfg = Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
//! let dir = Directory::connect(&cfg.directory).await?;
//! let user = dir.find_user(&UserRef::parse("jdupont")?).await?;
//! let change = dir.lock(&user).await?;
//! println!("{:?}: {:?}", change.action, change.outcome);
//! # Ok(()) }
//! ```

pub(crate) mod ad;
mod config;
mod names;
mod openldap;
pub(crate) mod ppolicy;

use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope, SearchEntry};
use serde::Serialize;

pub use config::{DirectoryConfig, FlavourSetting, LdapUrl, PasswordHashing};
pub use names::{Dn, UserName, UserRef, MAX_USER_NAME_CHARS};

use crate::error::{Error, ErrorKind};
use crate::secret::Password;
use crate::tls;

/// Relevant attributes of an entry, by name, as text. Never holds passwords or hashes.
pub type Attributes = BTreeMap<String, Vec<String>>;

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct User {
    /// The entry's DN, as the server spells it.
    pub dn: Dn,
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
    /// Connects (LDAPS or StartTLS, verifying the server certificate), binds as the service
    /// account and detects the flavour from the rootDSE.
    ///
    /// Refuses with [`ErrorKind::InsecureTransport`] — before anything is sent — to bind over
    /// unencrypted LDAP unless `allow_plaintext_passwords` is set.
    pub async fn connect(cfg: &DirectoryConfig) -> Result<Self, Error> {
        let transport = transport_of(cfg);
        refuse_plaintext(cfg, transport, "binding as the service account")?;
        let password = cfg.bind_password()?;
        let tls = cfg
            .ca_file
            .as_deref()
            .map(tls::client_config_with_ca)
            .transpose()?;
        let ldap = open(cfg, tls.clone()).await?;
        let mut dir = Self {
            ldap,
            cfg: Arc::new(cfg.clone()),
            tls,
            flavour: Flavour::OpenLdap,
            transport,
            ppolicy: false,
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
        tracing::debug!(url = %cfg.url, flavour = ?dir.flavour, transport = ?transport, "directory connected");
        Ok(dir)
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

    /// Finds the entry for a user name (looked up in the configured attributes, escaped) or
    /// checks an explicit DN, under the configured base DNs only.
    ///
    /// Errors: [`ErrorKind::UserNotFound`], [`ErrorKind::AmbiguousUser`],
    /// [`ErrorKind::OutOfScope`] (a DN outside every base DN: nothing is sent).
    pub async fn find_user(&self, user: &UserRef) -> Result<User, Error> {
        match user {
            UserRef::Dn(dn) => {
                self.ensure_in_scope(dn)?;
                let found = self
                    .search_raw(dn.as_str(), Scope::Base, "(objectClass=*)", &["1.1"])
                    .await?;
                match found.into_iter().next() {
                    Some(e) => self.user_from_entry(&e.dn),
                    None => Err(Error::new(ErrorKind::UserNotFound, format!("no entry {dn}"))),
                }
            }
            UserRef::Name(name) => {
                let value = name.filter_escaped();
                let attrs = self.lookup_attributes();
                let any = attrs.iter().map(|a| format!("({a}={value})")).collect::<String>();
                let filter = match self.flavour {
                    // groups and computers have a sAMAccountName too
                    Flavour::ActiveDirectory => {
                        format!("(&(objectCategory=person)(objectClass=user)(|{any}))")
                    }
                    Flavour::OpenLdap => format!("(|{any})"),
                };
                let mut dns: Vec<String> = Vec::new();
                for base in &self.cfg.base_dns {
                    for e in self
                        .search_raw(base.as_str(), Scope::Subtree, &filter, &["1.1"])
                        .await?
                    {
                        if !dns.iter().any(|d| d.eq_ignore_ascii_case(&e.dn)) {
                            dns.push(e.dn);
                        }
                    }
                }
                match dns.len() {
                    0 => Err(Error::new(
                        ErrorKind::UserNotFound,
                        format!("no user {name:?} under {}", self.cfg.base_dns_text(" or ")),
                    )),
                    1 => self.user_from_entry(&dns[0]),
                    n => Err(Error::new(
                        ErrorKind::AmbiguousUser,
                        format!("{n} entries match user {name:?}: {}", dns.join("; ")),
                    )),
                }
            }
        }
    }

    fn lookup_attributes(&self) -> Vec<String> {
        if let Some(a) = &self.cfg.user_attributes {
            return a.clone();
        }
        match self.flavour {
            Flavour::OpenLdap => vec!["uid".into(), "mail".into()],
            Flavour::ActiveDirectory => {
                vec!["sAMAccountName".into(), "userPrincipalName".into(), "mail".into()]
            }
        }
    }

    fn user_from_entry(&self, dn: &str) -> Result<User, Error> {
        let dn =
            Dn::parse(dn).map_err(|e| Error::new(ErrorKind::UnexpectedResponse, e.message().to_owned()))?;
        self.ensure_in_scope(&dn)?;
        Ok(User { dn })
    }

    /// Refuses a DN outside every configured base DN.
    pub fn ensure_in_scope(&self, dn: &Dn) -> Result<(), Error> {
        if self.cfg.base_dns.iter().any(|b| dn.is_within(b)) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::OutOfScope,
                format!(
                    "{dn} is outside the configured base DNs ({})",
                    self.cfg.base_dns_text("; ")
                ),
            ))
        }
    }

    /// The name services know the user by (`login_attribute`: `uid` or `sAMAccountName` by
    /// default), as sessions are revoked by it.
    pub async fn login_name(&self, user: &User) -> Result<String, Error> {
        let attr = match (&self.cfg.login_attribute, self.flavour) {
            (Some(a), _) => a.as_str(),
            (None, Flavour::OpenLdap) => "uid",
            (None, Flavour::ActiveDirectory) => "sAMAccountName",
        };
        let attrs = self.read_entry(&user.dn, &[attr]).await?;
        attrs
            .get(attr)
            .and_then(|v| v.first())
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::UserNotFound, format!("{} has no {attr}", user.dn)))
    }

    /// Reads the account's state: lock, must-change, MFA requirement, protected groups.
    pub async fn account_state(&self, user: &User) -> Result<AccountState, Error> {
        let mfa_required = match &self.cfg.mfa_group_dn {
            Some(g) => Some(self.is_member(g, &user.dn).await?),
            None => None,
        };
        let mut protected_groups = Vec::new();
        for g in &self.cfg.protected_group_dns {
            if self.is_member(g, &user.dn).await? {
                protected_groups.push(g.to_string());
            }
        }
        let mut state = match self.flavour {
            Flavour::OpenLdap => openldap::account_state(self, user).await?,
            Flavour::ActiveDirectory => ad::account_state(self, user).await?,
        };
        state.mfa_required = mfa_required;
        state.protected_groups = protected_groups;
        Ok(state)
    }

    /// Blocks new logins. OpenLDAP: `pwdAccountLockedTime: 000001010000Z`, after checking that
    /// the effective policy has `pwdLockout: TRUE` (otherwise the server silently ignores the
    /// lock: [`ErrorKind::LockIneffective`]). AD: set ACCOUNTDISABLE, keeping every other
    /// `userAccountControl` bit (the original value is in the returned [`Change`]).
    pub async fn lock(&self, user: &User) -> Result<Change, Error> {
        match self.flavour {
            Flavour::OpenLdap => openldap::lock(self, user).await,
            Flavour::ActiveDirectory => ad::lock(self, user).await,
        }
    }

    /// Allows logins again. OpenLDAP: deletes `pwdAccountLockedTime` (the server also clears
    /// `pwdFailureTime`). AD: clears ACCOUNTDISABLE and sets `lockoutTime: 0`.
    pub async fn unlock(&self, user: &User) -> Result<Change, Error> {
        match self.flavour {
            Flavour::OpenLdap => openldap::unlock(self, user).await,
            Flavour::ActiveDirectory => ad::unlock(self, user).await,
        }
    }

    /// Puts the account's lock flags back exactly as `original` records them — the `before`
    /// of the [`Action::Lock`] change made at containment: OpenLDAP `pwdAccountLockedTime`
    /// (deleted if it was absent), AD `userAccountControl` byte for byte (including a
    /// `DONT_EXPIRE_PASSWD` that containment cleared) and `lockoutTime: 0`.
    pub async fn restore_flags(&self, user: &User, original: &Attributes) -> Result<Change, Error> {
        match self.flavour {
            Flavour::OpenLdap => openldap::restore_flags(self, user, original).await,
            Flavour::ActiveDirectory => ad::restore_flags(self, user, original).await,
        }
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
        match self.flavour {
            Flavour::OpenLdap => openldap::reset_password(self, user, new, force_change).await,
            Flavour::ActiveDirectory => ad::reset_password(self, user, new, force_change).await,
        }
    }

    /// Requires a password change at next logon. OpenLDAP: `pwdReset: TRUE`. AD:
    /// `pwdLastSet: 0`, clearing `DONT_EXPIRE_PASSWD`, which would silently defeat it.
    pub async fn force_change(&self, user: &User) -> Result<Change, Error> {
        match self.flavour {
            Flavour::OpenLdap => openldap::force_change(self, user).await,
            Flavour::ActiveDirectory => ad::force_change(self, user).await,
        }
    }

    /// Puts the account in the configured MFA-required group (idempotent).
    pub async fn require_mfa(&self, user: &User) -> Result<Change, Error> {
        let group = self.mfa_group()?;
        self.set_membership(&group, user, true).await
    }

    /// Takes the account out of the configured MFA-required group (idempotent).
    pub async fn clear_mfa_requirement(&self, user: &User) -> Result<Change, Error> {
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
        let action = if member {
            Action::RequireMfa
        } else {
            Action::ClearMfaRequirement
        };
        let was = self.is_member(group, &user.dn).await?;
        let snapshot = |m: bool| {
            Attributes::from([(
                "memberOf".to_owned(),
                if m { vec![group.to_string()] } else { vec![] },
            )])
        };
        let before = snapshot(was);
        if was == member {
            return Ok(unchanged(action, user, before));
        }
        let value = HashSet::from([user.dn.as_str().as_bytes().to_vec()]);
        let m = if member {
            Mod::Add(b"member".to_vec(), value)
        } else {
            Mod::Delete(b"member".to_vec(), value)
        };
        let res = self.modify_raw(group, vec![m]).await?;
        // Concurrent runs: OpenLDAP answers 20 (value exists) / 16 (no such value); AD 68 / 53.
        let outcome = match res.rc {
            0 => ChangeOutcome::Applied,
            20 | 68 if member => ChangeOutcome::AlreadyInPlace,
            16 | 53 if !member => ChangeOutcome::AlreadyInPlace,
            _ => return Err(refused(&format!("{action:?} on {group}"), res)),
        };
        Ok(change(action, user, outcome, before, snapshot(member)))
    }

    /// Whether `dn` is a `member` of `group` (one base-scope search with an escaped filter).
    pub async fn is_member(&self, group: &Dn, dn: &Dn) -> Result<bool, Error> {
        let filter = format!("(member={})", dn.filter_escaped());
        Ok(!self
            .search_raw(group.as_str(), Scope::Base, &filter, &["1.1"])
            .await?
            .is_empty())
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
        let policy = res
            .ctrls
            .iter()
            .find(|c| c.1.ctype == ppolicy::PPOLICY_OID)
            .and_then(|c| c.1.val.as_deref())
            .and_then(ppolicy::parse_response);
        Ok(bind_outcome(&res, policy))
    }

    // ---- helpers shared by the flavour modules ----

    /// A handle on the shared connection, with the operation timeout set.
    pub(crate) fn handle(&self) -> Ldap {
        let mut l = self.ldap.clone();
        l.with_timeout(self.cfg.operation_timeout());
        l
    }

    /// Searches; entries only (references skipped). A missing base (32) is an empty result.
    pub(crate) async fn search_raw(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, Error> {
        let result = self
            .handle()
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| ldap_error("search", e))?;
        match result.1.rc {
            0 => {}
            32 => return Ok(Vec::new()),
            _ => return Err(refused(&format!("search under {base:?}"), result.1)),
        }
        let mut out = Vec::with_capacity(result.0.len());
        for re in result.0 {
            if re.is_ref() || re.is_intermediate() {
                continue;
            }
            // ldap3 panics on a malformed entry; keep a server's bad answer from crashing us.
            match std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(re))) {
                Ok(e) => out.push(e),
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::UnexpectedResponse,
                        format!("malformed search entry from the server under {base:?}"),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Reads the given attributes of one entry (text values; binary ones are skipped).
    pub(crate) async fn read_entry(&self, dn: &Dn, attrs: &[&str]) -> Result<Attributes, Error> {
        let entry = self
            .search_raw(dn.as_str(), Scope::Base, "(objectClass=*)", attrs)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::UserNotFound, format!("entry {dn} vanished")))?;
        let wanted: Vec<String> = attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
        let mut out = Attributes::new();
        for (k, v) in entry.attrs {
            // keep the caller's spelling of the attribute name
            if let Some(i) = wanted.iter().position(|w| w.eq_ignore_ascii_case(&k)) {
                out.insert(attrs[i].to_owned(), v);
            }
        }
        Ok(out)
    }

    /// Sends a modify; returns the raw result (the caller decides which codes are fine).
    pub(crate) async fn modify_raw(&self, dn: &Dn, mods: Vec<Mod<Vec<u8>>>) -> Result<LdapResult, Error> {
        self.handle()
            .modify(dn.as_str(), mods)
            .await
            .map_err(|e| ldap_error("modify", e))
    }

    /// Sends `mods` (requiring success), reads the `shown` attributes back, and returns the
    /// applied change from `before` to what the server now holds.
    pub(crate) async fn apply(
        &self,
        action: Action,
        user: &User,
        what: &str,
        mods: Vec<Mod<Vec<u8>>>,
        shown: &[&str],
        before: Attributes,
    ) -> Result<Change, Error> {
        self.modify(what, &user.dn, mods).await?;
        let after = only(&self.read_entry(&user.dn, shown).await?, shown);
        Ok(change(action, user, ChangeOutcome::Applied, before, after))
    }

    /// Sends a modify and requires success.
    pub(crate) async fn modify(&self, what: &str, dn: &Dn, mods: Vec<Mod<Vec<u8>>>) -> Result<(), Error> {
        let res = self.modify_raw(dn, mods).await?;
        if res.rc != 0 {
            return Err(refused(what, res));
        }
        Ok(())
    }

    pub(crate) fn has_ppolicy(&self) -> bool {
        self.ppolicy
    }
}

/// The change for a primitive that found the account already in the wanted state.
pub(crate) fn unchanged(action: Action, user: &User, before: Attributes) -> Change {
    change(
        action,
        user,
        ChangeOutcome::AlreadyInPlace,
        before.clone(),
        before,
    )
}

pub(crate) fn change(
    action: Action,
    user: &User,
    outcome: ChangeOutcome,
    before: Attributes,
    after: Attributes,
) -> Change {
    Change {
        action,
        dn: user.dn.to_string(),
        outcome,
        before,
        after,
    }
}

/// The named attributes of `attrs`, each present (absent ones as empty lists), for
/// before/after snapshots that show a removal as `[]`.
pub(crate) fn only(attrs: &Attributes, names: &[&str]) -> Attributes {
    names
        .iter()
        .map(|n| ((*n).to_owned(), attrs.get(*n).cloned().unwrap_or_default()))
        .collect()
}

/// The first value of `name`, if any.
pub(crate) fn first<'a>(attrs: &'a Attributes, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(|v| v.first()).map(String::as_str)
}

fn transport_of(cfg: &DirectoryConfig) -> Transport {
    if cfg.url.is_ldaps() {
        Transport::Ldaps
    } else if cfg.starttls {
        Transport::StartTls
    } else {
        Transport::Plain
    }
}

fn refuse_plaintext(cfg: &DirectoryConfig, transport: Transport, what: &str) -> Result<(), Error> {
    if transport == Transport::Plain && !cfg.allow_plaintext_passwords {
        return Err(Error::new(
            ErrorKind::InsecureTransport,
            format!(
                "{what} would send a password over unencrypted LDAP ({}); use ldaps:// or starttls = true, \
                 or set allow_plaintext_passwords = true to accept the risk",
                cfg.url
            ),
        ));
    }
    Ok(())
}

async fn open(cfg: &DirectoryConfig, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Ldap, Error> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(cfg.connect_timeout())
        .set_starttls(cfg.starttls);
    if let Some(tls) = tls {
        settings = settings.set_config(tls);
    }
    let (conn, ldap) = LdapConnAsync::with_settings(settings, cfg.url.as_str())
        .await
        .map_err(|e| ldap_error(&format!("connecting to {}", cfg.url), e))?;
    ldap3::drive!(conn);
    Ok(ldap)
}

pub(crate) fn refused(what: &str, res: LdapResult) -> Error {
    Error::new(ErrorKind::Refused, format!("{what}: the server refused")).with_ldap(
        res.rc,
        res.text,
        res.matched,
    )
}

/// Maps an ldap3 error to ours, by what it means to the operator; the ldap3 error is kept as
/// the source.
pub(crate) fn ldap_error(what: &str, e: LdapError) -> Error {
    let (kind, message) = match &e {
        LdapError::Timeout { .. } => (ErrorKind::Timeout, format!("{what}: timed out")),
        LdapError::Rustls { source } => (ErrorKind::Tls, format!("{what}: TLS: {source}")),
        LdapError::LdapResult { result } => return refused(what, result.clone()),
        LdapError::Io { source } => {
            let tls = source
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            let kind = if tls { ErrorKind::Tls } else { ErrorKind::Connect };
            (kind, format!("{what}: {source}"))
        }
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => {
            (ErrorKind::Config, format!("{what}: {e}"))
        }
        LdapError::OpSend { .. } | LdapError::ResultRecv { .. } | LdapError::EndOfStream => {
            (ErrorKind::Connect, format!("{what}: connection lost ({e})"))
        }
        other => (ErrorKind::UnexpectedResponse, format!("{what}: {other}")),
    };
    Error::new(kind, message).with_source(e)
}

fn bind_outcome(res: &LdapResult, policy: Option<ppolicy::PolicyResponse>) -> BindOutcome {
    use ppolicy::PolicyError as P;
    let perr = policy.and_then(|p| p.error);
    match (res.rc, perr) {
        (0, Some(P::ChangeAfterReset)) => BindOutcome::MustChange,
        (0, _) => BindOutcome::Success,
        (49, Some(P::AccountLocked)) => BindOutcome::Locked,
        (49, Some(P::PasswordExpired)) => BindOutcome::Expired,
        (49, _) => match ad_data_code(&res.text).as_deref() {
            Some("533") => BindOutcome::Disabled,
            Some("773") => BindOutcome::MustChange,
            Some("775") => BindOutcome::Locked,
            Some("701") | Some("532") => BindOutcome::Expired,
            _ => BindOutcome::InvalidCredentials,
        },
        (rc, _) => BindOutcome::Refused {
            rc,
            text: res.text.clone(),
        },
    }
}

/// Extracts the `data XXX` code from an AD bind diagnostic
/// (`80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1`).
pub(crate) fn ad_data_code(text: &str) -> Option<String> {
    let i = text.find(", data ")?;
    let rest = &text[i + 7..];
    let code: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (!code.is_empty()).then(|| code.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(rc: u32, text: &str) -> LdapResult {
        LdapResult {
            rc,
            matched: String::new(),
            text: text.into(),
            refs: vec![],
            ctrls: vec![],
        }
    }

    #[test]
    fn ad_bind_diagnostics_map_to_typed_outcomes() {
        let t = |code: &str| {
            format!(
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {code}, v1db1"
            )
        };
        assert_eq!(
            bind_outcome(&res(49, &t("52e")), None),
            BindOutcome::InvalidCredentials
        );
        assert_eq!(bind_outcome(&res(49, &t("533")), None), BindOutcome::Disabled);
        assert_eq!(bind_outcome(&res(49, &t("773")), None), BindOutcome::MustChange);
        assert_eq!(bind_outcome(&res(49, &t("775")), None), BindOutcome::Locked);
        assert_eq!(bind_outcome(&res(49, &t("701")), None), BindOutcome::Expired);
        assert_eq!(ad_data_code("no code here"), None);
    }

    #[test]
    fn ppolicy_controls_refine_bind_results() {
        use ppolicy::{PolicyError, PolicyResponse};
        let p = |e| {
            Some(PolicyResponse {
                error: Some(e),
                ..Default::default()
            })
        };
        assert_eq!(
            bind_outcome(&res(0, ""), p(PolicyError::ChangeAfterReset)),
            BindOutcome::MustChange
        );
        assert_eq!(bind_outcome(&res(0, ""), None), BindOutcome::Success);
        assert_eq!(
            bind_outcome(&res(49, ""), p(PolicyError::AccountLocked)),
            BindOutcome::Locked
        );
        assert_eq!(bind_outcome(&res(49, ""), None), BindOutcome::InvalidCredentials);
        assert_eq!(
            bind_outcome(&res(53, "unwilling"), None),
            BindOutcome::Refused {
                rc: 53,
                text: "unwilling".into()
            }
        );
    }
}
