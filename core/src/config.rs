//! The configuration file (TOML). This module only aggregates: each section's type lives with
//! the module it configures ([`DirectoryConfig`], [`MfaConfig`], [`RevokerConfig`],
//! [`JournalConfig`], [`PasswordPolicy`], [`MailConfig`], [`NotifyConfig`], [`OutboundConfig`], [`PostfixConfig`]).
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

use std::path::Path;

use serde::Deserialize;

use crate::directory::DirectoryConfig;
use crate::error::{Error, ErrorKind};
use crate::investigate::MailConfig;
use crate::journal::JournalConfig;
use crate::mfa::MfaConfig;
use crate::notify::NotifyConfig;
use crate::outbound::OutboundConfig;
use crate::password::PasswordPolicy;
use crate::postfix::PostfixConfig;
use crate::preflight::CanaryConfig;
use crate::session::RevokerConfig;

/// The whole configuration: each section's type lives with the module it configures.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
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
    /// What the mail server may hold for the attacker (`[mail]`): local domains, Sieve
    /// redirects, login logs.
    pub mail: Option<MailConfig>,
    /// Who is told, and how (`[[notify]]`): after the directory steps, never blocking them.
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
    /// The outbound mail policy service (`[outbound]`): Postfix asks it about every message.
    pub outbound: Option<OutboundConfig>,
    /// The Postfix whose queue a containment searches for the account's mail (`[postfix]`).
    pub postfix: Option<PostfixConfig>,
    /// Test accounts (`[canary]`): what `cadenas check` tries the service account's rights on.
    pub canary: Option<CanaryConfig>,
    /// Noticing an attack (`[watch]`): the logs followed, the rules' thresholds, the state.
    pub watch: Option<crate::watch::WatchConfig>,
}

impl Config {
    /// Reads and checks a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read config file {}: {e}", path.display()),
            )
            .with_source(e)
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
            j.resolve_paths(base_dir);
            j.location()?;
        }
        if let Some(m) = &mut cfg.mfa {
            m.resolve_paths(base_dir);
            m.check()?;
        }
        for r in &mut cfg.revokers {
            r.resolve_paths(base_dir);
            r.check()?;
        }
        if let Some(m) = &mut cfg.mail {
            m.resolve_paths(base_dir);
            m.check()?;
        }
        for n in &mut cfg.notify {
            n.resolve_paths(base_dir);
            n.check()?;
        }
        if let Some(p) = &mut cfg.postfix {
            p.resolve_paths(base_dir);
        }
        if let Some(o) = &mut cfg.outbound {
            o.resolve_paths(base_dir);
            o.check()?;
        }
        if let Some(w) = &mut cfg.watch {
            w.resolve_paths(base_dir);
            w.check()?;
        }
        cfg.password.check()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_guides_configuration_reference_is_one_valid_configuration() {
        // every TOML block of the reference, as one file: an unknown key, a wrong type or a
        // section that does not fit with the others fails here (tools/check_docs.py checks the
        // other way: every field of the types is in the reference)
        let text = include_str!("../../docs/guide/src/configuration.md");
        let mut toml = String::new();
        for block in text.split("```toml\n").skip(1) {
            toml.push_str(block.split("```").next().unwrap_or_default());
        }
        let cfg = Config::from_toml_str(&toml, Path::new("/etc/cadenas"))
            .unwrap_or_else(|e| panic!("the reference does not parse: {e}"));
        assert!(cfg.journal.is_some() && cfg.mfa.is_some() && cfg.outbound.is_some());
        assert!(cfg.mail.is_some() && cfg.postfix.is_some() && cfg.canary.is_some());
        assert_eq!(cfg.revokers.len(), 3);
        assert_eq!(cfg.notify.len(), 2);
    }
    use crate::directory::{FlavourSetting, PasswordHashing};

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
