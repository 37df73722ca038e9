//! The certificates of the servers a containment talks to over TLS: the chain and the host
//! name (the TLS verifier's own verdict, kept by a recording verifier), and the days left
//! before the certificate expires — a warning under [`WARN_DAYS`], for then every containment
//! fails to connect.

use std::time::{SystemTime, UNIX_EPOCH};

use rustls::CertificateError;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::Check;
use crate::tls::Shown;

/// Days before expiry from which a certificate is a warning.
pub(super) const WARN_DAYS: i64 = 30;

/// What a certificate says about itself, for the detail.
struct Described {
    /// Unix seconds of `notAfter`.
    not_after: i64,
    /// Its subjectAltName DNS names and addresses (the CN when it has none).
    names: Vec<String>,
    issuer: String,
}

fn describe(der: &[u8]) -> Option<Described> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                    16 => names.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_owned)),
        );
    }
    Some(Described {
        not_after: cert.validity().not_after.timestamp(),
        names,
        issuer: cert.issuer().to_string(),
    })
}

/// The date of Unix seconds `t` (`2027-01-31`).
fn date(t: i64) -> String {
    let s = crate::time::rfc3339(u64::try_from(t).unwrap_or(0));
    s.get(..10).unwrap_or(&s).to_owned()
}

/// The check of what the server at `host` showed (`shown`), with the handshake's error
/// (`failed`) when it did not complete.
pub(super) fn judge(
    name: String,
    host: &str,
    shown: Option<&Shown>,
    failed: Option<String>,
    now: SystemTime,
) -> Check {
    let Some(shown) = shown else {
        return Check::warn(
            name,
            format!(
                "no certificate seen: {}",
                crate::escape_controls(failed.as_deref().unwrap_or("the server showed none"))
            ),
            "see the connection's own check",
        );
    };
    let Some(d) = describe(shown.certificate.as_ref()) else {
        return Check::fail(
            name,
            "the server's certificate does not parse as X.509",
            "install a valid certificate on the server",
        );
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |x| i64::try_from(x.as_secs()).unwrap_or(i64::MAX));
    let left = (d.not_after - now).div_euclid(86_400);
    let names = d.names.join(", ");
    let names = crate::escape_controls(&names);
    let issuer = crate::escape_controls(&d.issuer).into_owned();
    let expired = matches!(
        shown.refused,
        Some(rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ))
    );
    if expired || d.not_after < now {
        return Check::fail(
            name,
            format!(
                "{host}: the certificate expired on {} ({} day(s) ago)",
                date(d.not_after),
                -left
            ),
            "renew the server's certificate: until then no containment can connect",
        );
    }
    match &shown.refused {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Check::fail(
            name,
            format!("{host}: the certificate is made out to {names}, not to {host}"),
            format!(
                "connect by one of the certificate's names (fix the URL), or reissue it with {host} \
                 in its subjectAltName"
            ),
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Check::fail(
            name,
            format!("{host}: the certificate is signed by {issuer}, which the trusted CAs do not hold"),
            "point ca_file at the CA that signed the server's certificate",
        ),
        Some(other) => Check::fail(
            name,
            format!("{host}: {}", crate::escape_controls(&other.to_string())),
            "install a certificate the CA file's CA signed, for this host, and in its validity period",
        ),
        None if left < WARN_DAYS => Check::warn(
            name,
            format!(
                "{host}: the certificate expires on {}, in {left} day(s)",
                date(d.not_after)
            ),
            "renew it before then: on that day every containment fails to connect",
        ),
        None => Check::ok(
            name,
            format!(
                "{host}: valid until {} ({left} days), for {names}, signed by {issuer}",
                date(d.not_after)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_that_does_not_parse_fails_and_none_seen_warns() {
        let garbage = Shown {
            certificate: vec![0x30, 0x03, 0x02, 0x01, 0x01].into(),
            refused: None,
        };
        let c = judge("c".into(), "h", Some(&garbage), None, SystemTime::now());
        assert_eq!(c.verdict, super::super::Verdict::Fail, "{c:?}");
        let c = judge("c".into(), "h", None, Some("refused\n".into()), SystemTime::now());
        assert_eq!(c.verdict, super::super::Verdict::Warn, "{c:?}");
        assert!(c.detail.contains("refused\\n"), "escaped: {c:?}");
    }
}
