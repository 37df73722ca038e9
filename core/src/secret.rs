//! Secret-holding types: [`Password`] and [`Secret`].
//!
//! Both are zeroized when dropped, print as `<redacted>` in `Debug`, implement no `Display`
//! and no `Serialize`, and hand out their content only through one explicit, greppable
//! escape hatch: `expose_secret()`. An error message or a log line that wants to mention a
//! secret has no way to format one by accident.

use std::fmt;
use std::path::Path;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind};

/// A password (UTF-8 text): zeroized on drop, redacted in `Debug`, never displayed.
///
/// ```
/// use cadenas::Password;
///
/// let p = Password::new("correct horse battery staple");
/// assert_eq!(format!("{p:?}"), "Password(<redacted>)");
/// assert_eq!(p.expose_secret(), "correct horse battery staple");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password. The caller's copy is moved in, not duplicated.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// Reads a password from a file, dropping one trailing newline (`\n` or `\r\n`).
    ///
    /// An empty password is refused: directories treat an empty simple-bind password as an
    /// anonymous bind (RFC 4513 §5.1.2), which "succeeds" without proving anything.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let mut raw = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read password file {}: {e}", path.display()),
            )
        })?;
        let keep = raw.trim_end_matches(['\n', '\r']).len();
        raw.truncate(keep);
        let password = Self::new(raw);
        password.ensure_not_empty(&format!("password file {}", path.display()))?;
        Ok(password)
    }

    /// Reads a password from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<Self, Error> {
        let value = std::env::var(name).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!("environment variable {name} is not set or not UTF-8"),
            )
        })?;
        let password = Self::new(value);
        password.ensure_not_empty(&format!("environment variable {name}"))?;
        Ok(password)
    }

    /// The password itself. Every call site is a place where a secret leaves its box:
    /// keep them few and never pass the result to a formatter.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length in characters (not bytes).
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    /// Refuses an empty password with a [`ErrorKind::InvalidInput`] error naming `what`.
    pub(crate) fn ensure_not_empty(&self, what: &str) -> Result<(), Error> {
        if self.0.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{what}: empty password refused"),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// Opaque secret bytes (API keys, TOTP seeds, AEAD keys): zeroized on drop, redacted in `Debug`.
///
/// ```
/// use cadenas::Secret;
///
/// let s = Secret::new(vec![1, 2, 3]);
/// assert_eq!(format!("{s:?}"), "Secret(<redacted>, 3 bytes)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// `len` bytes from the operating system's CSPRNG.
    pub fn random(len: usize) -> Result<Self, Error> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The secret bytes. The one escape hatch; see [`Password::expose_secret`].
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted>, {} bytes)", self.0.len())
    }
}

/// Creates a new file readable and writable by its owner only (mode 0600); fails if the
/// path exists, so a secret is never written over another file or into one others can read.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| {
        buf.zeroize();
        Error::new(
            ErrorKind::Internal,
            format!("operating system random source failed: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::new("hunter2-très-secret");
        let shown = format!("{p:?} {:#?}", p);
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn from_file_strips_one_newline_and_refuses_empty() {
        let dir = std::env::temp_dir().join(format!("cadenas-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let f = dir.join("pw");
        std::fs::write(&f, "s3cret \r\n").expect("write");
        assert_eq!(Password::from_file(&f).expect("read").expose_secret(), "s3cret ");
        std::fs::write(&f, "\n").expect("write");
        let err = Password::from_file(&f).expect_err("empty refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = Password::from_file(&dir.join("missing")).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::Config);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn secret_random_has_requested_length_and_is_not_constant() {
        let a = Secret::random(32).expect("rng");
        let b = Secret::random(32).expect("rng");
        assert_eq!(a.len(), 32);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.expose_secret())));
    }
}
