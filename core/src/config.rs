//! The configuration file (TOML).
//!
//! Secrets never come from the file itself or from command-line arguments: the service
//! account's password is read from a file (`bind_password_file`) or an environment variable
//! (`bind_password_env`). Relative paths are resolved against the config file's directory.
//!
//! ```
//! use cadenas::Config;
//!
//! let cfg = Config::from_toml_str(r#"
//!     [directory]
//!     url = "ldaps://ldap.example.test:636"
//!     ca_file = "/etc/cadenas/ca.pem"
//!     bind_dn = "cn=responder,ou=services,dc=example,dc=test"
//!     bind_password_env = "CADENAS_BIND_PASSWORD"
//!     base_dns = ["ou=people,dc=example,dc=test"]
//!     mfa_group_dn = "cn=mfa-required,ou=groups,dc=example,dc=test"
//! "#, std::path::Path::new(".")).unwrap();
//! assert_eq!(cfg.password.length, 20);
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::directory::Dn;
use crate::error::{Error, ErrorKind};
use crate::mfa::MfaConfig;
use crate::password::PasswordPolicy;
use crate::secret::Password;
use crate::session::RevokerConfig;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory to act on.
    pub directory: DirectoryConfig,
    /// How new passwords are generated.
    #[serde(default)]
    pub password: PasswordPolicy,
    /// Session revokers (`[[revokers]]`), run in this order after the directory changes.
    #[serde(default)]
    pub revokers: Vec<RevokerConfig>,
    /// TOTP store and policy (`[mfa]`).
    pub mfa: Option<MfaConfig>,
    /// The audit journal (`[journal]`).
    pub journal: Option<JournalConfig>,
}

/// The `[journal]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// The JSON-lines journal file (created 0600; appended to by every run).
    pub path: PathBuf,
}

/// Which kind of directory server; `auto` reads the rootDSE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlavourSetting {
    /// Detect from the rootDSE.
    #[default]
    Auto,
    /// OpenLDAP with the ppolicy overlay.
    Openldap,
    /// Active Directory (or Samba AD).
    ActiveDirectory,
}

/// Where an OpenLDAP password is hashed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

/// The directory section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldaps://host:port` or `ldap://host:port` (with `starttls = true`).
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file with the CA certificate(s) that sign the server's certificate. Without it,
    /// the system trust store is used.
    pub ca_file: Option<PathBuf>,
    /// The service account's DN (not the rootDN: give it only the rights it needs).
    pub bind_dn: String,
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
    pub base_dns: Vec<String>,
    /// Attributes a user name is looked up in. Default: `uid`, `mail` (OpenLDAP);
    /// AD adds `sAMAccountName` and `userPrincipalName`.
    pub user_attributes: Option<Vec<String>>,
    /// The attribute holding the name services (IMAP, apps) know the user by. Default `uid`
    /// (OpenLDAP) or `sAMAccountName` (AD).
    pub login_attribute: Option<String>,
    /// Group whose members must present a second factor.
    pub mfa_group_dn: Option<String>,
    /// Members of these groups are protected from automated response.
    #[serde(default)]
    pub protected_group_dns: Vec<String>,
    /// OpenLDAP: the default password policy DN (`olcPPolicyDefault`), used to check that a
    /// lock will take effect (`pwdLockout: TRUE`) when the entry has no `pwdPolicySubentry`.
    pub password_policy_dn: Option<String>,
    /// Directory flavour; `auto` detects it from the rootDSE.
    #[serde(default)]
    pub flavour: FlavourSetting,
    /// OpenLDAP: where new passwords are hashed.
    #[serde(default)]
    pub password_hashing: PasswordHashing,
    /// Connections kept open for bulk work (each carries many operations in flight). Default 2.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
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

impl Config {
    /// Reads and checks a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_toml_str(&text, dir)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// Parses and checks TOML text; relative paths are resolved against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Self, Error> {
        // toml's own Display quotes the offending source line, which may hold a secret
        // someone pasted in by mistake: report the message and the position only.
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            Error::new(ErrorKind::Config, format!("invalid config{at}: {}", e.message()))
        })?;
        cfg.directory.resolve_paths(base_dir);
        cfg.directory.check()?;
        if let Some(j) = &mut cfg.journal {
            if j.path.is_relative() {
                j.path = base_dir.join(&j.path);
            }
        }
        if let Some(m) = &mut cfg.mfa {
            m.resolve_paths(base_dir);
            m.check()?;
        }
        for r in &mut cfg.revokers {
            r.resolve_paths(base_dir);
            r.check()?;
        }
        cfg.password.check()?;
        Ok(cfg)
    }
}

impl DirectoryConfig {
    fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.ca_file, &mut self.bind_password_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    fn check(&self) -> Result<(), Error> {
        let cfg_err = |m: String| Err(Error::new(ErrorKind::Config, m));
        let scheme = self.url.split("://").next().unwrap_or("");
        match (scheme, self.starttls) {
            ("ldaps", false) | ("ldap", _) => {}
            ("ldaps", true) => return cfg_err("starttls = true needs an ldap:// URL".into()),
            _ => {
                return cfg_err(format!(
                    "directory.url {:?}: scheme must be ldap or ldaps",
                    self.url
                ))
            }
        }
        if self.base_dns.is_empty() {
            return cfg_err("directory.base_dns must name at least one subtree".into());
        }
        for dn in self
            .base_dns
            .iter()
            .chain(&self.mfa_group_dn)
            .chain(&self.protected_group_dns)
        {
            Dn::parse(dn).map_err(|e| Error::new(ErrorKind::Config, e.message().to_owned()))?;
        }
        Dn::parse(&self.bind_dn).map_err(|e| Error::new(ErrorKind::Config, e.message().to_owned()))?;
        if self.bind_password_file.is_some() == self.bind_password_env.is_some() {
            return cfg_err(
                "set exactly one of directory.bind_password_file and directory.bind_password_env".into(),
            );
        }
        for a in self.user_attributes.iter().flatten().chain(&self.login_attribute) {
            if a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return cfg_err(format!(
                    "directory.user_attributes: {a:?} is not an attribute name"
                ));
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
        self.url.starts_with("ldaps://") || self.starttls
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [directory]
        url = "ldaps://127.0.0.1:6360"
        ca_file = "ca.pem"
        bind_dn = "cn=responder,ou=services,dc=example,dc=test"
        bind_password_file = "responder.pw"
        base_dns = ["ou=people,dc=example,dc=test"]
    "#;

    #[test]
    fn minimal_config_parses_with_defaults_and_resolves_paths() {
        let cfg = Config::from_toml_str(MINIMAL, Path::new("/etc/cadenas")).expect("parse");
        let d = &cfg.directory;
        assert_eq!(d.ca_file.as_deref(), Some(Path::new("/etc/cadenas/ca.pem")));
        assert_eq!(
            d.bind_password_file.as_deref(),
            Some(Path::new("/etc/cadenas/responder.pw"))
        );
        assert!(!d.allow_plaintext_passwords);
        assert!(d.is_encrypted());
        assert_eq!(d.flavour, FlavourSetting::Auto);
        assert_eq!(d.password_hashing, PasswordHashing::Server);
        assert_eq!(d.operation_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn inconsistent_configs_are_refused_with_config_errors() {
        let cases = [
            MINIMAL.replace("ldaps://", "http://"),
            MINIMAL.replace("base_dns = [\"ou=people,dc=example,dc=test\"]", "base_dns = []"),
            MINIMAL.replace("bind_password_file = \"responder.pw\"", ""),
            MINIMAL.replace(
                "bind_password_file = \"responder.pw\"",
                "bind_password_file = \"a\"\nbind_password_env = \"B\"",
            ),
            MINIMAL.replace("url = ", "starttls = true\nurl = "),
            MINIMAL.replace("ou=people,dc=example", "ou=people,,dc=example"),
            format!("{MINIMAL}\nunknown_key = 1"),
            format!("{MINIMAL}\nbind_password = \"inline-secret\""),
            format!("{MINIMAL}\nuser_attributes = [\"uid)(x\"]"),
        ];
        for c in &cases {
            let e = Config::from_toml_str(c, Path::new("/")).expect_err(c);
            assert_eq!(e.kind(), ErrorKind::Config, "{c}");
            assert!(!e.to_string().contains("inline-secret"));
        }
    }

    #[test]
    fn bind_password_comes_from_the_environment_when_configured() {
        let text = MINIMAL.replace(
            "bind_password_file = \"responder.pw\"",
            "bind_password_env = \"CADENAS_TEST_CFG_PW\"",
        );
        let cfg = Config::from_toml_str(&text, Path::new("/")).expect("parse");
        std::env::set_var("CADENAS_TEST_CFG_PW", "from-env");
        assert_eq!(
            cfg.directory.bind_password().expect("pw").expose_secret(),
            "from-env"
        );
        std::env::remove_var("CADENAS_TEST_CFG_PW");
        assert_eq!(
            cfg.directory.bind_password().expect_err("unset").kind(),
            ErrorKind::Config
        );
    }
}
