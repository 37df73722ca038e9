//! New passwords: generation from the OS CSPRNG, and client-side `{ARGON2}` hashing.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::secret::{fill_random, Password, Secret};

/// Lower-case letters without look-alikes (no `l`).
const LOWER: &str = "abcdefghijkmnopqrstuvwxyz";
/// Upper-case letters without look-alikes (no `I`, `O`).
const UPPER: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Digits without look-alikes (no `0`, `1`).
const DIGITS: &str = "23456789";
/// Symbols that survive shells, URLs, CSV and phone dictation; no quotes, no backslash.
const SYMBOLS: &str = "-_.!@#%+=:";

/// Which characters a generated password draws from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Alphabet {
    /// Letters and digits without look-alikes.
    Alphanumeric,
    /// Letters, digits and a few unambiguous symbols (the default).
    #[default]
    AlphanumericSymbols,
    /// Exactly these characters (at least 16 distinct ones).
    Custom(String),
}

/// How new passwords are generated (the `[password]` config section).
///
/// Generated passwords contain at least one character of every class the alphabet has
/// (lower, upper, digit, symbol), which satisfies Active Directory's complexity rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PasswordPolicy {
    /// Length in characters, 12 to 256. Default 20.
    #[serde(default = "default_length")]
    pub length: usize,
    /// Character set. Default: letters, digits, symbols.
    #[serde(default)]
    pub alphabet: Alphabet,
}

fn default_length() -> usize {
    20
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            length: default_length(),
            alphabet: Alphabet::default(),
        }
    }
}

impl PasswordPolicy {
    /// Checks the policy's bounds.
    pub fn check(&self) -> Result<(), Error> {
        if !(12..=256).contains(&self.length) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("password.length {} is outside 12..=256", self.length),
            ));
        }
        let chars = self.chars();
        let mut distinct = chars.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if chars.len() > 256 {
            // the generator draws one random byte per character
            return Err(Error::new(
                ErrorKind::Config,
                format!("password.alphabet has {} characters; at most 256", chars.len()),
            ));
        }
        if distinct.len() < 16 || distinct.len() != chars.len() {
            return Err(Error::new(
                ErrorKind::Config,
                "password.alphabet needs at least 16 distinct characters and no repeats",
            ));
        }
        if chars.iter().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::new(
                ErrorKind::Config,
                "password.alphabet must not contain white space or control characters",
            ));
        }
        Ok(())
    }

    fn chars(&self) -> Vec<char> {
        match &self.alphabet {
            Alphabet::Alphanumeric => [LOWER, UPPER, DIGITS].concat().chars().collect(),
            Alphabet::AlphanumericSymbols => [LOWER, UPPER, DIGITS, SYMBOLS].concat().chars().collect(),
            Alphabet::Custom(s) => s.chars().collect(),
        }
    }

    /// Generates a password: uniform draws (rejection sampling, no modulo bias) from the OS
    /// CSPRNG, redrawn until every character class of the alphabet is present.
    ///
    /// ```
    /// use cadenas::password::PasswordPolicy;
    ///
    /// let p = PasswordPolicy::default().generate().unwrap();
    /// assert_eq!(p.char_count(), 20);
    /// ```
    pub fn generate(&self) -> Result<Password, Error> {
        self.check()?;
        let alphabet = self.chars();
        let classes: Vec<fn(&char) -> bool> = vec![
            |c| c.is_lowercase(),
            |c| c.is_uppercase(),
            |c| c.is_ascii_digit(),
            |c| !c.is_alphanumeric(),
        ];
        let present: Vec<_> = classes.into_iter().filter(|f| alphabet.iter().any(f)).collect();
        // 256 is a multiple of nothing useful: reject bytes above the largest multiple.
        let n = alphabet.len();
        let limit = 256 - (256 % n);
        loop {
            let mut out = Zeroizing::new(String::with_capacity(self.length * 4));
            let mut buf = Zeroizing::new([0u8; 64]);
            let mut count = 0;
            while count < self.length {
                fill_random(&mut buf[..])?;
                for &b in buf.iter() {
                    if (b as usize) < limit && count < self.length {
                        out.push(alphabet[b as usize % n]);
                        count += 1;
                    }
                }
            }
            if present.iter().all(|f| out.chars().any(|c| f(&c))) {
                return Ok(Password::new(std::mem::take(&mut *out)));
            }
        }
    }
}

/// Argon2id cost for client-side hashes: OWASP's minimum (m=19 MiB, t=2, p=1).
pub(crate) const ARGON2_PARAMS: (u32, u32, u32) = (19_456, 2, 1);

/// Hashes `password` as OpenLDAP's argon2 module expects a `userPassword` value:
/// `{ARGON2}` immediately followed by a PHC string with `v=19` and unpadded base64.
/// Without the `{ARGON2}` prefix the server would store the text as a *cleartext* password
/// and no password would work afterwards (`docs/FACTS.md`, pinned by the lab tests).
///
/// The result is returned as a [`Secret`]: a hash is offline-crackable and never logged.
pub fn openldap_argon2_hash(password: &Password) -> Result<Secret, Error> {
    let phc = argon2id_phc(password.expose_secret().as_bytes())?;
    Ok(Secret::new(
        format!("{{ARGON2}}{}", phc.expose_secret_str()).into_bytes(),
    ))
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `secret`, with a
/// fresh 16-byte salt. Used for `{ARGON2}` passwords and for recovery codes.
pub(crate) fn argon2id_phc(secret: &[u8]) -> Result<PhcString, Error> {
    let (m, t, p) = ARGON2_PARAMS;
    let params = Params::new(m, t, p, None)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("argon2 parameters: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("argon2 salt: {e}")))?;
    let phc = argon
        .hash_password(secret, &salt)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("argon2 hashing failed: {e}")))?;
    Ok(PhcString(phc.to_string()))
}

/// Whether `secret` matches the argon2 PHC string `phc` (constant-time comparison inside).
pub(crate) fn argon2_verify(secret: &[u8], phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(secret, &h).is_ok())
}

/// A PHC hash string: not a secret in itself, but offline-crackable, so never logged.
pub(crate) struct PhcString(String);

impl PhcString {
    pub(crate) fn expose_secret_str(&self) -> &str {
        &self.0
    }
    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_have_length_classes_and_differ() {
        let policy = PasswordPolicy::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = policy.generate().expect("generate");
            let s = p.expose_secret();
            assert_eq!(s.chars().count(), 20);
            assert!(s.chars().any(|c| c.is_ascii_lowercase()));
            assert!(s.chars().any(|c| c.is_ascii_uppercase()));
            assert!(s.chars().any(|c| c.is_ascii_digit()));
            assert!(s.chars().any(|c| SYMBOLS.contains(c)));
            assert!(s.chars().all(|c| !"0O1lI\"'\\ ".contains(c)));
            assert!(seen.insert(s.to_owned()), "repeat");
        }
    }

    #[test]
    fn custom_alphabets_are_honoured_including_non_ascii() {
        let policy = PasswordPolicy {
            length: 16,
            alphabet: Alphabet::Custom("àéîõüßçñ€ÆØÅabcd".into()),
        };
        let p = policy.generate().expect("generate");
        assert!(p.expose_secret().chars().all(|c| "àéîõüßçñ€ÆØÅabcd".contains(c)));
        assert_eq!(p.char_count(), 16);
    }

    #[test]
    fn bad_policies_are_config_errors() {
        for policy in [
            PasswordPolicy {
                length: 8,
                alphabet: Alphabet::default(),
            },
            PasswordPolicy {
                length: 20,
                alphabet: Alphabet::Custom("abc".into()),
            },
            PasswordPolicy {
                length: 20,
                alphabet: Alphabet::Custom("abcdefghijklmnoo".into()),
            },
            PasswordPolicy {
                length: 20,
                alphabet: Alphabet::Custom("abcdefghijklmno ".into()),
            },
            // 300 distinct characters: the generator would never find a byte below its limit
            PasswordPolicy {
                length: 20,
                alphabet: Alphabet::Custom((0x4e00u32..0x4e00 + 300).filter_map(char::from_u32).collect()),
            },
        ] {
            assert_eq!(policy.generate().expect_err("bad").kind(), ErrorKind::Config);
        }
    }

    #[test]
    fn client_hash_has_the_exact_prefix_and_phc_form_openldap_accepts() {
        let h = openldap_argon2_hash(&Password::new("Pässwörd-€")).expect("hash");
        let s = std::str::from_utf8(h.expose_secret()).expect("utf8");
        assert!(s.starts_with("{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$"), "{s}");
        assert!(!s.contains('='.to_string().repeat(2).as_str()) && !s.ends_with('='));
        assert!(!s.contains("Pässwörd"));
        let h2 = openldap_argon2_hash(&Password::new("Pässwörd-€")).expect("hash");
        assert_ne!(h.expose_secret(), h2.expose_secret(), "salted");
    }
}
