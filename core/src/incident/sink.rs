//! Where new passwords go: a [`PasswordSink`] receives each one once, right after it was set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, ErrorKind};
use crate::secret::Password;

/// Receives each new password once, right after it was set. Implementations must not log it.
///
/// **Contract.** `deliver` is called once per reset, before the reset's outcome is journaled.
/// With the async [`Responder`](super::Responder) it runs on a runtime worker thread (hence
/// `Send + Sync`); with the blocking facade (`cadenas::blocking::BlockingResponder`) always on the
/// thread that called `contain`, never concurrently. It may block (the run waits). An `Err`
/// fails that user's reset step: the account stays locked, the journal and the report say the
/// password could not be handed over, and a `resume` sets a fresh one.
pub trait PasswordSink: Send + Sync {
    /// Hands `password` over for `user` (as given) / `dn`.
    fn deliver(&self, user: &str, dn: &str, password: &Password) -> Result<(), Error>;

    /// Where passwords go, in words for the report (never the password): e.g. `file:/root/x.tsv`.
    fn describe(&self) -> String {
        "the caller's password sink".into()
    }
}

/// The sink of a run that resets no password (its steps leave `ResetPassword` out): never
/// called; if it were, the reset step fails and the account stays locked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPasswordSink;

impl PasswordSink for NoPasswordSink {
    fn deliver(
        &self,
        _user: &str,
        _dn: &str,
        _password: &crate::secret::Password,
    ) -> Result<(), crate::error::Error> {
        Err(crate::error::Error::new(
            crate::error::ErrorKind::Internal,
            "no password hand-over for a run without reset",
        ))
    }

    fn describe(&self) -> String {
        "none (no reset)".into()
    }
}

/// Writes `user<TAB>password` lines to a new file created with mode 0600 (never overwritten),
/// when the first password is handed over: a run that sets no password leaves no file.
pub struct FileSink {
    file: Mutex<Option<std::fs::File>>,
    path: PathBuf,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileSink {
    /// A sink for `path`, refused now if the file exists already (a hand-over file is never
    /// overwritten) or its folder does not; the file itself is created with the first password.
    pub fn create(path: &Path) -> Result<Self, Error> {
        if path.symlink_metadata().is_ok() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("{} exists: a hand-over file is never overwritten", path.display()),
            ));
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "cannot create {}: {} is not a folder",
                    path.display(),
                    parent.display()
                ),
            ));
        }
        Ok(Self {
            file: Mutex::new(None),
            path: path.to_owned(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a password was written (the file exists).
    pub fn used(&self) -> bool {
        self.file.lock().map(|f| f.is_some()).unwrap_or(true)
    }
}

impl PasswordSink for FileSink {
    fn deliver(&self, user: &str, _dn: &str, password: &Password) -> Result<(), Error> {
        let mut slot = self
            .file
            .lock()
            .map_err(|_| Error::new(ErrorKind::Internal, "password file lock poisoned"))?;
        if slot.is_none() {
            let f = crate::secret::create_private_file(&self.path).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot create new file {}: {e}", self.path.display()),
                )
                .with_source(e)
            })?;
            *slot = Some(f);
        }
        let Some(f) = slot.as_mut() else {
            return Err(Error::new(ErrorKind::Internal, "password file not open"));
        };
        let line = zeroize::Zeroizing::new(format!("{user}\t{}\n", password.expose_secret()));
        // Written through to the OS before the reset's outcome is journaled (a killed process
        // loses nothing: `cli/tests/crash.rs` SIGKILLs the CLI mid-run and finds every user's
        // live password in the files); fsynced once when the sink is dropped rather than
        // 6000 times.
        f.write_all(line.as_bytes()).and_then(|_| f.flush()).map_err(|e| {
            Error::new(ErrorKind::Io, format!("writing {}: {e}", self.path.display())).with_source(e)
        })
    }

    fn describe(&self) -> String {
        if self.used() {
            format!("file:{}", self.path.display())
        } else {
            "none (no password was set)".into()
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Ok(Some(f)) = self.file.lock().as_deref() {
            let _ = f.sync_all();
        }
    }
}
