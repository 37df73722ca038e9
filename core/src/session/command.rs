//! Run a local program to revoke sessions (a VPN kill script, a proxy's admin tool...).
//!
//! No shell is involved: the program is executed directly, with a minimal environment, and
//! the user name is passed as one whole argument (never spliced into a command line).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{BoxFuture, CommandConfig, RevocationOutcome, RevocationStatus, RevocationTarget, Revoker};
use crate::error::{Error, ErrorKind};

/// A command revoker.
#[derive(Clone, Debug)]
pub struct Command {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
}

impl Command {
    /// Builds the revoker from its config.
    pub fn from_config(cfg: &CommandConfig) -> Self {
        Self {
            name: cfg.name.clone(),
            program: cfg.program.clone(),
            args: cfg.args.clone(),
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
        }
    }

    /// The argument vector for `target`: whole-argument placeholders only.
    pub fn argv(&self, target: &RevocationTarget) -> Vec<String> {
        let mut argv: Vec<String> = self
            .args
            .iter()
            .map(|a| match a.as_str() {
                "{user}" => target.login.clone(),
                "{dn}" => target.dn.clone(),
                "{incident}" => target.incident.clone().unwrap_or_default(),
                _ => a.clone(),
            })
            .collect();
        if !self.args.iter().any(|a| a == "{user}") {
            argv.push(target.login.clone());
        }
        argv
    }

    async fn run(&self, target: &RevocationTarget) -> Result<(), Error> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(self.argv(target))
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("CADENAS_USER", &target.login)
            .env("CADENAS_DN", &target.dn)
            .env("CADENAS_ACTION", &target.action)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::new(
                    ErrorKind::RevokerFailed,
                    format!("cannot start {}: {e}", self.program.display()),
                )
            })?;
        let mut stderr = child.stderr.take();
        let waited = tokio::time::timeout(self.timeout, child.wait()).await;
        let status = match waited {
            Ok(s) => {
                s.map_err(|e| Error::new(ErrorKind::RevokerFailed, format!("waiting for the command: {e}")))?
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{} did not finish within {:?} and was killed",
                        self.program.display(),
                        self.timeout
                    ),
                ));
            }
        };
        if status.success() {
            return Ok(());
        }
        let mut err = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(2048).read_to_end(&mut err).await;
        }
        Err(Error::new(
            ErrorKind::RevokerFailed,
            format!(
                "{} exited with {status}: {}",
                self.program.display(),
                String::from_utf8_lossy(&err).trim()
            ),
        ))
    }
}

impl Revoker for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn revoke<'a>(&'a self, target: &'a RevocationTarget) -> BoxFuture<'a, RevocationOutcome> {
        Box::pin(async move {
            let out = RevocationOutcome::new(&self.name);
            match self.run(target).await {
                Ok(()) => RevocationOutcome {
                    status: RevocationStatus::Revoked,
                    not_revoked: vec!["the command exited 0; it reports no session count".into()],
                    ..out
                },
                Err(e) => out.failed(e),
            }
        })
    }
}
