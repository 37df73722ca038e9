//! Handing a secret (new password, TOTP enrolment, recovery codes) to the operator once:
//! into a new 0600 file, or onto an interactive terminal — never into a pipe or a log.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use cadenas::{Error, ErrorKind};

/// Where a secret goes.
pub enum Handover {
    File(PathBuf, std::fs::File),
    Terminal,
}

impl Handover {
    /// Decided (and the file created) before anything changes, so a secret is never set
    /// that nobody can read.
    pub fn prepare(path: Option<&Path>, flag: &str) -> Result<Self, Error> {
        match path {
            Some(p) => {
                use std::os::unix::fs::OpenOptionsExt;
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(p);
                let f = created.map_err(|e| {
                    Error::new(ErrorKind::Io, format!("cannot create new file {}: {e}", p.display()))
                })?;
                Ok(Self::File(p.to_owned(), f))
            }
            None if std::io::stdout().is_terminal() => Ok(Self::Terminal),
            None => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("stdout is not a terminal: pass {flag} FILE so the secret is not written into a pipe or a log"),
            )),
        }
    }

    /// Writes `secret` (to the file, or under `heading` on the terminal). Returns where it went.
    pub fn deliver(self, heading: &str, secret: &str) -> Result<String, Error> {
        match self {
            Self::File(path, mut f) => {
                f.write_all(secret.as_bytes())
                    .and_then(|_| {
                        if secret.ends_with('\n') {
                            Ok(())
                        } else {
                            f.write_all(b"\n")
                        }
                    })
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::new(ErrorKind::Io, format!("writing {}: {e}", path.display())))?;
                Ok(format!("file:{}", path.display()))
            }
            Self::Terminal => {
                // The one place the CLI shows a secret: an interactive terminal, once.
                let mut tty = std::io::stdout().lock();
                let _ = writeln!(tty, "\n{heading}\n");
                for line in secret.lines() {
                    let _ = writeln!(tty, "    {line}");
                }
                let _ = writeln!(tty);
                Ok("terminal".into())
            }
        }
    }
}
