//! The password policy response control (draft-behera-ldap-password-policy), parsed by hand.
//!
//! ldap3 has no built-in ppolicy control and panics in `RawControl::parse` on a control
//! without a value (DEPENDENCIES.md), so the raw bytes are decoded here, defensively: any
//! malformed input yields `None`, never a panic.
//!
//! ```text
//! PasswordPolicyResponseValue ::= SEQUENCE {
//!     warning [0] CHOICE { timeBeforeExpiration [0] INTEGER, graceAuthNsRemaining [1] INTEGER } OPTIONAL,
//!     error   [1] ENUMERATED { passwordExpired(0), accountLocked(1), changeAfterReset(2), ... } OPTIONAL }
//! ```

/// OID of the password policy request and response controls.
pub const PPOLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// The `error` member of the response control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// 0: the password has expired.
    PasswordExpired,
    /// 1: the account is locked.
    AccountLocked,
    /// 2: the password was reset by an administrator and must be changed.
    ChangeAfterReset,
    /// Any other value (3..=8 concern password changes).
    Other(u8),
}

/// What the control said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyResponse {
    /// The error, when present.
    pub error: Option<PolicyError>,
    /// Seconds before expiration, when the server warned.
    pub time_before_expiration: Option<u64>,
    /// Grace logins left, when the server warned.
    pub grace_logins_remaining: Option<u64>,
}

/// Reads one BER TLV at the start of `b`: (tag, value, rest). Definite lengths only.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &x| (acc << 8) | x as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn uint(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 8 {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
}

/// Parses the control's value. `None` when it is not a well-formed response value.
pub fn parse_response(value: &[u8]) -> Option<PolicyResponse> {
    let (tag, mut body, rest) = tlv(value)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut out = PolicyResponse::default();
    while !body.is_empty() {
        let (tag, v, rest) = tlv(body)?;
        match tag {
            0xa0 => {
                let (inner, iv, _) = tlv(v)?;
                match inner {
                    0x80 => out.time_before_expiration = Some(uint(iv)?),
                    0x81 => out.grace_logins_remaining = Some(uint(iv)?),
                    _ => return None,
                }
            }
            0x81 => {
                let code = *v.first()?;
                if v.len() != 1 {
                    return None;
                }
                out.error = Some(match code {
                    0 => PolicyError::PasswordExpired,
                    1 => PolicyError::AccountLocked,
                    2 => PolicyError::ChangeAfterReset,
                    n => PolicyError::Other(n),
                });
            }
            _ => return None,
        }
        body = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_seen_from_slapd_2_5_parse() {
        // Bytes the lab slapd 2.5 sends (the lab tests parse the live ones: a locked bind, a
        // must-change bind, `openldap.rs`).
        assert_eq!(parse_response(&[0x30, 0x00]), Some(PolicyResponse::default()));
        assert_eq!(
            parse_response(&[0x30, 0x03, 0x81, 0x01, 0x01]).and_then(|r| r.error),
            Some(PolicyError::AccountLocked)
        );
        assert_eq!(
            parse_response(&[0x30, 0x03, 0x81, 0x01, 0x02]).and_then(|r| r.error),
            Some(PolicyError::ChangeAfterReset)
        );
        let warn = parse_response(&[0x30, 0x06, 0xa0, 0x04, 0x81, 0x02, 0x01, 0x00]).expect("warning");
        assert_eq!(warn.grace_logins_remaining, Some(256));
    }

    #[test]
    fn malformed_values_give_none_never_panic() {
        for v in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x81],
            &[0x04, 0x00],
            &[0x30, 0x02, 0x99, 0x00],
            &[0x30, 0x03, 0x81, 0x02, 0x01],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x00, 0x00],
            &[0x30, 0x02, 0xa0, 0x00],
        ] {
            assert_eq!(parse_response(v), None, "{v:02x?}");
        }
        // exhaustive short inputs: no panic
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = parse_response(&[0x30, 0x03, a, 0x01, b]);
                let _ = parse_response(&[a, b, 0x81, 0x01]);
            }
        }
    }
}
