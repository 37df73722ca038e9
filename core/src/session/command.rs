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
        let env = [
            ("CADENAS_USER", target.login.clone()),
            ("CADENAS_DN", target.dn.clone()),
            ("CADENAS_ACTION", target.action.clone()),
        ];
        self.run_with(&self.argv(target), &env, b"").await
    }

    /// Runs the program with `args` (no shell, a clean environment plus `env`), `input` on its
    /// standard input; `Ok` on exit status 0 within the timeout. Notifications use it too.
    pub(crate) async fn run_with(
        &self,
        args: &[String],
        env: &[(&str, String)],
        input: &[u8],
    ) -> Result<(), Error> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.program)
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(if input.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
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
        if let Some(mut stdin) = child.stdin.take() {
            // a program that exits without reading its input is its own business
            let _ = tokio::time::timeout(self.timeout, stdin.write_all(input)).await;
        }
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
