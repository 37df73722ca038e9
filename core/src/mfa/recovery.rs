//! Single-use recovery codes: 60 bits each, shown once, stored as argon2id hashes, consumed
//! atomically.

use super::{check_user, Mfa};
use crate::error::{Error, ErrorKind};
use crate::password::{argon2_verify, argon2id_phc};
use crate::secret::{fill_random, Password};

/// Recovery code alphabet: Crockford base32, lower case (no i, l, o, u).
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

pub(super) fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect()
}

impl Mfa {
    /// A fresh set of single-use recovery codes (`xxxx-xxxx-xxxx`, 60 bits each), replacing
    /// any previous set. Shown once; only argon2id hashes are stored.
    pub fn new_recovery_codes(&self, user: &str) -> Result<Vec<Password>, Error> {
        check_user(user)?;
        let mut codes = Vec::with_capacity(self.cfg.recovery_codes);
        let mut hashes = Vec::with_capacity(self.cfg.recovery_codes);
        for _ in 0..self.cfg.recovery_codes {
            let mut raw = [0u8; 12];
            fill_random(&mut raw)?;
            let chars: String = raw
                .iter()
                .map(|b| RECOVERY_ALPHABET[(b & 31) as usize] as char)
                .collect();
            raw.iter_mut().for_each(|b| *b = 0);
            hashes.push(argon2id_phc(chars.as_bytes())?.into_string());
            codes.push(Password::new(format!(
                "{}-{}-{}",
                &chars[..4],
                &chars[4..8],
                &chars[8..]
            )));
        }
        self.store.replace_recovery_codes(user, &hashes)?;
        Ok(codes)
    }

    /// Uses one recovery code: valid codes are consumed atomically (exactly one of two
    /// concurrent uses succeeds). Throttled like TOTP codes.
    pub fn use_recovery_code(&self, user: &str, code: &str) -> Result<(), Error> {
        self.use_recovery_code_at(user, code, crate::time::unix_now())
    }

    /// [`use_recovery_code`](Self::use_recovery_code) as if the clock read `now` (Unix
    /// seconds).
    pub fn use_recovery_code_at(&self, user: &str, code: &str, now: u64) -> Result<(), Error> {
        check_user(user)?;
        self.ensure_not_throttled(user, now)?;
        let wanted = normalise_recovery(code);
        for (id, hash) in self.store.recovery_codes(user)? {
            if argon2_verify(wanted.as_bytes(), &hash) {
                if self.store.consume_recovery_code(user, id)? {
                    self.store.clear_failures(user)?;
                    return Ok(());
                }
                break; // consumed concurrently by someone else
            }
        }
        self.record_failure(user, now)?;
        Err(Error::new(
            ErrorKind::MfaRecoveryCode,
            "the recovery code is not valid or was already used",
        ))
    }

    /// Unused recovery codes left.
    pub fn recovery_codes_left(&self, user: &str) -> Result<usize, Error> {
        Ok(self.store.recovery_codes(user)?.len())
    }
}
