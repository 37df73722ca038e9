//! HOTP (RFC 4226) and TOTP (RFC 6238), pinned by the RFC vectors in `fixtures/totp/`.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// The HMAC hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA1: what every authenticator app supports (the default).
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// The name used in `otpauth://` URIs.
    pub fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

/// TOTP parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TotpParams {
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Digits per code, 6 to 8.
    pub digits: u32,
    /// Step in seconds (30 for authenticator apps).
    pub period: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

impl TotpParams {
    /// Checks the bounds (6..=8 digits, 15..=300 s period).
    pub fn check(&self) -> Result<(), Error> {
        if !(6..=8).contains(&self.digits) || !(15..=300).contains(&self.period) {
            return Err(Error::new(
                ErrorKind::Config,
                "mfa: digits must be 6..=8 and period 15..=300 seconds",
            ));
        }
        Ok(())
    }

    /// The time step containing `unix` seconds.
    pub fn step_at(&self, unix: u64) -> u64 {
        unix / self.period
    }
}

fn hmac_digest(algorithm: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; new_from_slice cannot fail.
    macro_rules! run {
        ($h:ty) => {{
            match Hmac::<$h>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(msg);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }};
    }
    match algorithm {
        Algorithm::Sha1 => run!(sha1::Sha1),
        Algorithm::Sha256 => run!(sha2::Sha256),
        Algorithm::Sha512 => run!(sha2::Sha512),
    }
}

/// The HOTP value for `counter` (RFC 4226 §5.3 dynamic truncation), as a zero-padded string.
pub fn hotp(secret: &Secret, counter: u64, algorithm: Algorithm, digits: u32) -> String {
    let mac = hmac_digest(algorithm, secret.expose_secret(), &counter.to_be_bytes());
    let Some(&last) = mac.last() else {
        return String::new();
    };
    let offset = (last & 0x0f) as usize;
    let bin = ((u32::from(mac[offset]) & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    let code = bin % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// The TOTP code for time step `step`.
pub fn code_for_step(secret: &Secret, step: u64, params: &TotpParams) -> String {
    hotp(secret, step, params.algorithm, params.digits)
}

/// A code as typed by a user: only digits, exactly the expected count (spaces removed).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    /// Parses `s` (surrounding white space and inner spaces are ignored).
    pub fn parse(s: &str, digits: u32) -> Result<Self, Error> {
        let cleaned: String = s
            .chars()
            .filter(|c| *c != ' ')
            .collect::<String>()
            .trim()
            .to_owned();
        if cleaned.len() != digits as usize || !cleaned.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::new(
                ErrorKind::MfaBadCode,
                format!("a code is exactly {digits} digits"),
            ));
        }
        Ok(Self(cleaned))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpCode(<redacted>)")
    }
}

/// The step (among `now-1`, `now`, `now+1`) whose code equals `code`, compared in constant
/// time. Every candidate is computed and compared, match or not.
pub fn matching_step(secret: &Secret, code: &TotpCode, now_step: u64, params: &TotpParams) -> Option<u64> {
    let mut found = None;
    for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
        let expected = code_for_step(secret, step, params);
        if bool::from(expected.as_bytes().ct_eq(code.as_str().as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding (what `otpauth://` URIs carry).
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u64, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(A[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// RFC 4648 base32 decoding (case-insensitive, padding optional); `None` on a bad character.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u64, 0u32);
    for c in s.trim_end_matches('=').chars() {
        let v = A.find(c.to_ascii_uppercase())? as u64;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=…&digits=…&period=…`
/// (Google Authenticator key URI format). The result holds the secret: treat it as one.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &Secret, params: &TotpParams) -> Secret {
    let uri = format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        percent_encode(issuer),
        percent_encode(account),
        base32(secret.expose_secret()),
        percent_encode(issuer),
        params.algorithm.uri_name(),
        params.digits,
        params.period
    );
    Secret::new(uri.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/../fixtures/totp/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
    }

    #[test]
    fn rfc4226_vectors() {
        let f = fixture("rfc4226.json");
        let secret = Secret::new(f["secret_ascii"].as_str().expect("s").as_bytes().to_vec());
        let vectors = f["vectors"].as_array().expect("vectors");
        assert_eq!(vectors.len(), 10);
        for v in vectors {
            let c = v["counter"].as_u64().expect("counter");
            assert_eq!(
                hotp(&secret, c, Algorithm::Sha1, 6),
                v["code"].as_str().expect("code"),
                "counter {c}"
            );
        }
    }

    #[test]
    fn rfc6238_vectors_for_all_three_hashes() {
        let f = fixture("rfc6238.json");
        let mut checked = 0;
        for (name, alg) in [
            ("sha1", Algorithm::Sha1),
            ("sha256", Algorithm::Sha256),
            ("sha512", Algorithm::Sha512),
        ] {
            let secret = Secret::new(f["secrets_ascii"][name].as_str().expect("s").as_bytes().to_vec());
            let params = TotpParams {
                algorithm: alg,
                digits: 8,
                period: 30,
            };
            for v in f["vectors"].as_array().expect("vectors") {
                let t = v["time"].as_u64().expect("time");
                assert_eq!(
                    code_for_step(&secret, params.step_at(t), &params),
                    v[name].as_str().expect("code")
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 18);
    }

    #[test]
    fn only_adjacent_steps_match() {
        let secret = Secret::new(b"12345678901234567890".to_vec());
        let p = TotpParams::default();
        let code = |s| TotpCode::parse(&code_for_step(&secret, s, &p), 6).expect("code");
        assert_eq!(matching_step(&secret, &code(100), 100, &p), Some(100));
        assert_eq!(matching_step(&secret, &code(99), 100, &p), Some(99));
        assert_eq!(matching_step(&secret, &code(101), 100, &p), Some(101));
        assert_eq!(matching_step(&secret, &code(98), 100, &p), None);
        assert_eq!(matching_step(&secret, &code(102), 100, &p), None);
    }

    #[test]
    fn codes_are_parsed_strictly() {
        assert_eq!(TotpCode::parse(" 123 456 ", 6).expect("ok").as_str(), "123456");
        for bad in ["12345", "1234567", "12345a", "", "١٢٣٤٥٦"] {
            assert_eq!(
                TotpCode::parse(bad, 6).expect_err(bad).kind(),
                ErrorKind::MfaBadCode
            );
        }
        assert!(!format!("{:?}", TotpCode::parse("123456", 6).expect("ok")).contains("123456"));
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        for (input, out) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), out);
            assert_eq!(base32_decode(out).expect("decode"), input.as_bytes());
        }
    }

    #[test]
    fn otpauth_uri_has_the_key_uri_format() {
        let s = Secret::new(b"12345678901234567890".to_vec());
        let uri = otpauth_uri(
            "Ville de Test",
            "j.dupont@example.test",
            &s,
            &TotpParams::default(),
        );
        assert_eq!(
            std::str::from_utf8(uri.expose_secret()).expect("utf8"),
            "otpauth://totp/Ville%20de%20Test:j.dupont@example.test?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Ville%20de%20Test&algorithm=SHA1&digits=6&period=30"
        );
    }
}
