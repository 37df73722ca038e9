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
        // stderr is drained while the child runs (a child filling the pipe would otherwise
        // block forever); its first 2 KiB are kept for the error message.
        let stderr = child.stderr.take();
        let drain = async move {
            let mut kept = Vec::new();
            if let Some(mut s) = stderr {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    let room = 2048usize.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
            kept
        };
        let waited = tokio::time::timeout(self.timeout, async { tokio::join!(child.wait(), drain) }).await;
        let (status, err) = match waited {
            Ok((s, err)) => (
                s.map_err(|e| Error::new(ErrorKind::RevokerFailed, format!("waiting for the command: {e}")))?,
                err,
            ),
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
