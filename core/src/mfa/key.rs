//! The at-rest key of the MFA store: 32 random bytes in a 0600 file, created only with a new
//! database, race-free when several processes open a new store at once.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, ErrorKind};
use crate::secret::{fill_random, Secret};

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
