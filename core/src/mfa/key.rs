//! The at-rest key of the MFA store: 32 random bytes in a 0600 file, created only with a new
//! database, race-free when several processes open a new store at once.

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::error::{Error, ErrorKind};
use crate::secret::{fill_random, Secret};

/// What a store's `key_check` row encrypts: proves a key is the store's before anything is written.
const KEY_CHECK: &[u8] = b"cadenas mfa key check v1";

/// Encryption at rest with the store's key: ChaCha20-Poly1305, a random nonce per value, the
/// user name (or a fixed label) as associated data. Shared by every store.
pub(super) struct AtRest {
    cipher: ChaCha20Poly1305,
}

impl AtRest {
    pub(super) fn new(key: &Secret) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key.expose_secret())),
        }
    }

    pub(super) fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce)?;
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .map_err(|_| Error::new(ErrorKind::Internal, "encryption failed"))?;
        Ok((nonce.to_vec(), ct))
    }

    pub(super) fn decrypt(&self, nonce: &[u8], ct: &[u8], aad: &[u8]) -> Result<Secret, Error> {
        if nonce.len() != 12 {
            return Err(Error::new(ErrorKind::MfaStore, "corrupted nonce"));
        }
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Secret::new)
            .map_err(|_| {
                Error::new(
                    ErrorKind::MfaKey,
                    "a stored secret does not decrypt with this key",
                )
            })
    }

    /// The `key_check` value for a new store (nonce ‖ ciphertext).
    pub(super) fn key_check(&self) -> Result<Vec<u8>, Error> {
        let (nonce, ct) = self.encrypt(KEY_CHECK, b"key_check")?;
        Ok([nonce, ct].concat())
    }

    /// Whether a store's `key_check` value was made with this key.
    pub(super) fn opens(&self, blob: &[u8]) -> bool {
        blob.len() > 12
            && self
                .decrypt(&blob[..12], &blob[12..], b"key_check")
                .is_ok_and(|pt| pt.expose_secret() == KEY_CHECK)
    }
}

pub(super) fn load_or_create_key(path: &Path, may_create: bool) -> Result<Secret, Error> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => Ok(Secret::new(bytes)),
        Ok(bytes) => Err(Error::new(
            ErrorKind::MfaKey,
            format!(
                "key file {} must hold exactly 32 bytes (it holds {})",
                path.display(),
                bytes.len()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => create_key(path),
        Err(e) => Err(Error::new(
            ErrorKind::MfaKey,
            format!(
                "cannot read key file {}: {e} (a key is only created together with a new database)",
                path.display()
            ),
        )),
    }
}

/// Creates the key race-free: written and fsynced under a private temporary name, then
/// hard-linked into place (which fails if the name exists). A process that loses the race to
/// another one reads the winner's complete key.
fn create_key(path: &Path) -> Result<Secret, Error> {
    let err = |what: &str, e: std::io::Error| {
        Error::new(
            ErrorKind::MfaKey,
            format!("cannot {what} key file {}: {e}", path.display()),
        )
        .with_source(e)
    };
    let mut tag = [0u8; 8];
    fill_random(&mut tag)?;
    let tmp = path.with_extension(format!("new-{}", hex::encode(tag)));
    let key = Secret::random(32)?;
    let written = crate::secret::create_private_file(&tmp).and_then(|mut f| {
        f.write_all(key.expose_secret())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err("write", e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path, false),
        Err(e) => Err(err("create", e)),
    }
}
