//! HOTP (RFC 4226) and TOTP (RFC 6238), pinned by the RFC vectors in `fixtures/totp/`.

use serde::Deserialize;

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
#[non_exhaustive]
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
    /// Parameters given as arguments: 6 to 8 digits and a period of 15 to 300 seconds, else
    /// an [`ErrorKind::InvalidInput`] error.
    ///
    /// ```
    /// use cadenas::mfa::totp::{Algorithm, TotpParams};
    ///
    /// assert_eq!(TotpParams::new(Algorithm::Sha1, 6, 30).unwrap(), TotpParams::default());
    /// assert!(TotpParams::new(Algorithm::Sha1, 5, 30).is_err());
    /// ```
    pub fn new(algorithm: Algorithm, digits: u32, period: u64) -> Result<Self, Error> {
        let p = Self {
            algorithm,
            digits,
            period,
        };
        p.check()
            .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("TOTP digits must be 6 to 8 and the period 15 to 300 seconds ({digits} and {period} given)")))?;
        Ok(p)
    }

    /// Checks the bounds (6..=8 digits, 15..=300 s period) of a configuration.
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

/// totp-rs' own algorithm type.
fn rs_algorithm(a: Algorithm) -> totp_rs::Algorithm {
    match a {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
    }
}

/// A totp-rs generator for `secret` with ±1 step of skew. `None` for parameters it cannot
/// compute with (digits outside 1..=9 would make it panic; a zero period divide by zero):
/// [`TotpParams::check`] refuses those earlier, this guards values read back from a store.
fn generator(secret: &Secret, algorithm: Algorithm, digits: u32, period: u64) -> Option<totp_rs::Totp> {
    if !(1..=9).contains(&digits) || period == 0 {
        return None;
    }
    // RFC 4226's 20-byte test secret and the 160-bit secrets Cadenas makes are compliant;
    // `build_noncompliant` only skips totp-rs' 128-bit minimum for secrets read back.
    Some(
        totp_rs::Builder::new()
            .with_algorithm(rs_algorithm(algorithm))
            .with_digits(digits as u8)
            .with_skew(1)
            .with_step_duration(period)
            .with_secret(secret.expose_secret())
            .build_noncompliant(),
    )
}

/// The HOTP value for `counter` (RFC 4226 §5.3 dynamic truncation), as a zero-padded string
/// (totp-rs with a one-second step, so that the time *is* the counter). Empty for digits
/// outside 1..=9.
pub fn hotp(secret: &Secret, counter: u64, algorithm: Algorithm, digits: u32) -> String {
    generator(secret, algorithm, digits, 1)
        .map(|t| t.generate(counter).to_string())
        .unwrap_or_default()
}

/// The TOTP code for time step `step`.
pub fn code_for_step(secret: &Secret, step: u64, params: &TotpParams) -> String {
    generator(secret, params.algorithm, params.digits, params.period)
        .map(|t| t.generate(step.saturating_mul(params.period)).to_string())
        .unwrap_or_default()
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

/// The step (among `now-1`, `now`, `now+1`) whose code equals `code` — totp-rs' `check`,
/// which compares tokens in constant time. The replay guard records the step it returns.
pub fn matching_step(secret: &Secret, code: &TotpCode, now_step: u64, params: &TotpParams) -> Option<u64> {
    generator(secret, params.algorithm, params.digits, params.period)?
        .check(code.as_str(), now_step.saturating_mul(params.period))
}

/// RFC 4648 base32 without padding (what `otpauth://` URIs carry).
pub fn base32(bytes: &[u8]) -> String {
    totp_rs::Secret::from(bytes).to_base32()
}

/// RFC 4648 base32 decoding (case-insensitive, padding optional); `None` on a bad character.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').to_ascii_uppercase();
    totp_rs::Secret::try_from_base32(&s).ok().map(|x| x.to_vec())
}

/// The Key URI (`otpauth://totp/Issuer:account?secret=…&issuer=…`, with `digits`,
/// `algorithm` and `period` when not the defaults), made by totp-rs. The result holds the
/// secret: treat it as one. An issuer or account containing `:` is refused.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret: &Secret,
    params: &TotpParams,
) -> Result<Secret, Error> {
    let bad = |e: totp_rs::TotpError| {
        Error::new(
            ErrorKind::InvalidUserName,
            format!("cannot make an otpauth URI for {account:?}: {e}"),
        )
    };
    let uri = totp_rs::Builder::new()
        .with_algorithm(rs_algorithm(params.algorithm))
        .with_digits(u8::try_from(params.digits).unwrap_or(u8::MAX))
        .with_step_duration(params.period)
        .with_secret(secret.expose_secret())
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build_noncompliant()
        .to_url()
        .map_err(bad)?;
    Ok(Secret::new(uri.into_bytes()))
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
        )
        .expect("uri");
        assert_eq!(
            std::str::from_utf8(uri.expose_secret()).expect("utf8"),
            "otpauth://totp/Ville%20de%20Test:j.dupont%40example.test?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Ville%20de%20Test"
        );
        let p = TotpParams {
            algorithm: Algorithm::Sha256,
            digits: 8,
            period: 60,
        };
        let uri = otpauth_uri("Ville", "jdupont", &s, &p).expect("uri");
        let text = std::str::from_utf8(uri.expose_secret()).expect("utf8");
        for part in ["digits=8", "algorithm=SHA256", "period=60"] {
            assert!(text.contains(part), "{text}");
        }
        assert_eq!(
            otpauth_uri("Ville", "a:b", &s, &p)
                .map(|_| ())
                .expect_err("colon")
                .kind(),
            ErrorKind::InvalidUserName
        );
    }
}
