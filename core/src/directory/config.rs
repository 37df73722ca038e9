//! The `[directory]` configuration section, parsed once: DNs are [`Dn`]s and the URL an
//! [`LdapUrl`] from the moment the file is read, so no call re-parses them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::names::Dn;
use crate::error::{Error, ErrorKind};
use crate::secret::Password;

/// Which kind of directory server; `auto` reads the rootDSE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FlavourSetting {
    /// Detect from the rootDSE.
    #[default]
    Auto,
    /// OpenLDAP with the ppolicy overlay.
    Openldap,
    /// Active Directory (or Samba AD).
    ActiveDirectory,
}

/// Active Directory: which domain controller receives the writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AdWriteDc {
    /// The domain's PDC emulator (the `fSMORoleOwner` of the domain's root), whatever DC
    /// `url` reaches first: the DC that other DCs ask about a wrong password and that sees
    /// lockouts first. `url`'s scheme and port are kept; the DC's `dNSHostName` must resolve
    /// and be in its certificate.
    #[default]
    PdcEmulator,
    /// The DC `url` names (or reaches), as configured.
    AsConfigured,
}

/// Where an OpenLDAP password is hashed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PasswordHashing {
    /// Send the password with RFC 3062 Password Modify; the server hashes it.
    #[default]
    Server,
    /// Hash client-side (`{ARGON2}` + argon2id PHC string, m=19 MiB, t=2) and write
    /// `userPassword`. Moves the hashing cost from the directory to the responder's host:
    /// worth it when the directory is the bottleneck and this host has spare cores (on the
    /// 2-core lab, where both share the CPUs, it is slower: see `make bench`).
    ClientArgon2,
}

/// A checked `ldap://` or `ldaps://` URL with a host.
///
/// ```
/// use cadenas::directory::LdapUrl;
///
/// assert!(LdapUrl::parse("ldaps://ldap.example.test:636").unwrap().is_ldaps());
/// assert!(LdapUrl::parse("http://ldap.example.test").is_err());
/// assert!(LdapUrl::parse("ldap://").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct LdapUrl {
    raw: String,
    ldaps: bool,
}

impl LdapUrl {
    /// Parses `s`; refuses other schemes, a missing host, and anything `url` cannot parse.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::new(ErrorKind::Config, format!("directory.url {s:?}: {why}"));
        let u = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        let ldaps = match u.scheme() {
            "ldaps" => true,
            "ldap" => false,
            _ => return Err(bad("scheme must be ldap or ldaps")),
        };
        if u.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        Ok(Self {
            raw: s.to_owned(),
            ldaps,
        })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The same URL on another host (scheme, port and path kept).
    pub fn with_host(&self, host: &str) -> Result<Self, Error> {
        let mut u = url::Url::parse(&self.raw)
            .map_err(|e| Error::new(ErrorKind::Config, format!("directory.url: {e}")))?;
        u.set_host(Some(host))
            .map_err(|e| Error::new(ErrorKind::UnexpectedResponse, format!("host {host:?}: {e}")))?;
        Self::parse(u.as_str().trim_end_matches('/'))
    }

    /// The host (IPv6 without brackets) and port connections go to (636 for `ldaps://`, 389
    /// for `ldap://` unless the URL says).
    pub(crate) fn host_port(&self) -> (String, u16) {
        let default = if self.ldaps { 636 } else { 389 };
        url::Url::parse(&self.raw)
            .ok()
            .and_then(|u| crate::tls::host_port(&u, default))
            .unwrap_or_else(|| ("localhost".to_owned(), default))
    }

    /// Whether TLS starts with the first byte (`ldaps://`).
    pub fn is_ldaps(&self) -> bool {
        self.ldaps
    }
}

impl fmt::Debug for LdapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LdapUrl({:?})", self.raw)
    }
}

impl fmt::Display for LdapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for LdapUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LdapUrl::parse(&s).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// The directory section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DirectoryConfig {
    /// `ldaps://host:port` or `ldap://host:port` (with `starttls = true`).
    pub url: LdapUrl,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file with the CA certificate(s) that sign the server's certificate. Without it,
    /// the system trust store is used.
    pub ca_file: Option<PathBuf>,
    /// The service account's DN (not the rootDN: give it only the rights it needs).
    pub bind_dn: Dn,
    /// File holding the service account's password (one line).
    pub bind_password_file: Option<PathBuf>,
    /// Environment variable holding the service account's password.
    pub bind_password_env: Option<String>,
    /// Allow passwords (the service bind, resets, user binds) over unencrypted LDAP.
    /// Off by default; meant only for lab set-ups that cannot do TLS.
    #[serde(default)]
    pub allow_plaintext_passwords: bool,
    /// Seconds allowed for TCP connect + TLS handshake.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds allowed for any single LDAP operation.
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_secs: u64,
    /// The subtrees the responder may act on; anything outside is refused.
    pub base_dns: Vec<Dn>,
    /// Attributes a user name is looked up in. Default: `uid`, `mail` (OpenLDAP);
    /// AD adds `sAMAccountName` and `userPrincipalName`.
    pub user_attributes: Option<Vec<String>>,
    /// The attribute holding the name services (IMAP, apps) know the user by. Default `uid`
    /// (OpenLDAP) or `sAMAccountName` (AD).
    pub login_attribute: Option<String>,
    /// Group whose members must present a second factor.
    pub mfa_group_dn: Option<Dn>,
    /// Members of these groups are protected from automated response.
    #[serde(default)]
    pub protected_group_dns: Vec<Dn>,
    /// OpenLDAP: the default password policy DN (`olcPPolicyDefault`), used to check that a
    /// lock will take effect (`pwdLockout: TRUE`) when the entry has no `pwdPolicySubentry`.
    pub password_policy_dn: Option<Dn>,
    /// Directory flavour; `auto` detects it from the rootDSE.
    #[serde(default)]
    pub flavour: FlavourSetting,
    /// OpenLDAP: where new passwords are hashed.
    #[serde(default)]
    pub password_hashing: PasswordHashing,
    /// Connections kept open for bulk work (each carries many operations in flight). Default 2.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// OpenLDAP: the `slapo-accesslog` database (`cn=accesslog`) read to say what changed on
    /// an account (`status --changes-since`); the service account needs read access to it.
    pub accesslog_base: Option<Dn>,
    /// The attributes flagged as a way back in when they changed; default
    /// [`WATCHED_ATTRIBUTES`](super::WATCHED_ATTRIBUTES).
    pub watched_attributes: Option<Vec<String>>,
    /// Replicas (OpenLDAP syncrepl consumers, other DCs) read after a containment until they
    /// show the lock (same bind, CA and TLS settings as `url`).
    #[serde(default)]
    pub replicas: Vec<LdapUrl>,
    /// How long a containment waits for the replicas to show the lock. Default 10.
    #[serde(default = "default_replica_wait")]
    pub replica_wait_secs: u64,
    /// Active Directory: which DC the writes go to. Default `pdc-emulator`.
    #[serde(default)]
    pub ad_write_dc: AdWriteDc,
}

fn default_replica_wait() -> u64 {
    10
}

fn default_pool_size() -> usize {
    2
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_operation_timeout() -> u64 {
    30
}

impl DirectoryConfig {
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.ca_file, &mut self.bind_password_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let cfg_err = |m: String| Err(Error::new(ErrorKind::Config, m));
        if self.url.is_ldaps() && self.starttls {
            return cfg_err("starttls = true needs an ldap:// URL".into());
        }
        if self.base_dns.is_empty() {
            return cfg_err("directory.base_dns must name at least one subtree".into());
        }
        if self.bind_password_file.is_some() == self.bind_password_env.is_some() {
            return cfg_err(
                "set exactly one of directory.bind_password_file and directory.bind_password_env".into(),
            );
        }
        for a in self
            .user_attributes
            .iter()
            .flatten()
            .chain(&self.login_attribute)
            .chain(self.watched_attributes.iter().flatten())
        {
            if a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return cfg_err(format!("directory: {a:?} is not an attribute name"));
            }
        }
        if !(1..=64).contains(&self.pool_size) {
            return cfg_err("directory.pool_size must be 1..=64".into());
        }
        if self.operation_timeout_secs == 0 || self.connect_timeout_secs == 0 {
            return cfg_err("timeouts must be at least 1 second".into());
        }
        Ok(())
    }

    /// Whether the connection is encrypted (LDAPS or StartTLS).
    pub fn is_encrypted(&self) -> bool {
        self.url.is_ldaps() || self.starttls
    }

    /// The service account's password, from its file or environment variable.
    pub fn bind_password(&self) -> Result<Password, Error> {
        match (&self.bind_password_file, &self.bind_password_env) {
            (Some(f), None) => Password::from_file(f),
            (None, Some(v)) => Password::from_env(v),
            _ => Err(Error::new(
                ErrorKind::Config,
                "set exactly one of directory.bind_password_file and directory.bind_password_env",
            )),
        }
    }

    /// Timeout for one operation.
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.operation_timeout_secs)
    }

    /// Timeout for connect + TLS.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// The base DNs, for messages.
    pub(crate) fn base_dns_text(&self, sep: &str) -> String {
        self.base_dns.iter().map(Dn::as_str).collect::<Vec<_>>().join(sep)
    }
}
