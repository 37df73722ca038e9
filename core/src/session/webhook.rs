//! Signed webhooks: tell an application (Keycloak, Nextcloud, an in-house app, through a
//! small adapter) to end the user's sessions.
//!
//! The request is `POST` with a JSON body:
//! `{"event":"cadenas.revoke","user":…,"dn":…,"action":…,"incident":…,"time":"RFC 3339"}`
//! and two headers: `X-Cadenas-Timestamp: <unix seconds>` and
//! `X-Cadenas-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>`. Receivers
//! should recompute the HMAC in constant time and refuse stale timestamps (replays).
//! A 2xx answer counts as revoked; a JSON body with `"sessions_revoked": N` gives the count.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::http::{HttpClient, HttpUrl};
use super::{
    read_key, BoxFuture, RevocationOutcome, RevocationStatus, RevocationTarget, Revoker, WebhookConfig,
};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::time::{rfc3339, unix_now};
use crate::tls::client_config_with_ca;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Cadenas-Signature";
/// Header carrying the signed timestamp.
pub const TIMESTAMP_HEADER: &str = "X-Cadenas-Timestamp";

/// `sha256=<hex>` of HMAC-SHA256(key, `"{timestamp}.{body}"`).
pub fn sign(key: &Secret, timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length: new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.expose_secret()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook revoker.
pub struct Webhook {
    name: String,
    url: HttpUrl,
    key: Secret,
    http: HttpClient,
    retries: u32,
    backoff: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Builds the revoker from its config, reading the signing key now.
    pub fn from_config(cfg: &WebhookConfig) -> Result<Self, Error> {
        Ok(Self {
            name: cfg.name.clone(),
            url: HttpUrl::parse(&cfg.url)?,
            key: read_key(
                cfg.secret_file.as_deref(),
                cfg.secret_env.as_deref(),
                "webhook secret",
            )?,
            http: HttpClient::new(
                cfg.ca_file.as_deref().map(client_config_with_ca).transpose()?,
                Duration::from_secs(cfg.timeout_secs.max(1)),
            )?,
            retries: cfg.retries,
            backoff: Duration::from_millis(cfg.backoff_ms),
        })
    }

    async fn attempt(&self, body: &[u8]) -> Result<(u16, Vec<u8>), Error> {
        let ts = unix_now();
        let sig = sign(&self.key, ts, body);
        let ts = ts.to_string();
        let resp = self
            .http
            .post(
                &self.url,
                &[
                    ("Content-Type", "application/json"),
                    (TIMESTAMP_HEADER, &ts),
                    (SIGNATURE_HEADER, &sig),
                ],
                body,
            )
            .await?;
        Ok((resp.status, resp.body))
    }
}

/// Whether another attempt may help.
impl Webhook {
    /// POSTs the signed `body`, retrying network errors, timeouts, 429 and 5xx with doubling
    /// back-off; returns the last answer and the attempts made.
    async fn post_with_retries(&self, body: &[u8]) -> (Result<(u16, Vec<u8>), Error>, u32) {
        let backoff = crate::retry::Backoff {
            first: self.backoff,
            retries: self.retries,
        };
        crate::retry::retry(&self.name, backoff, || self.attempt(body), retryable).await
    }

    /// Delivers a signed JSON `body` (retried like a revocation); `Ok` on a 2xx answer. Used
    /// by notifications. Returns the attempts made too.
    pub(crate) async fn deliver(&self, body: &[u8]) -> (Result<(), Error>, u32) {
        let (r, tries) = self.post_with_retries(body).await;
        let r = match r {
            Ok((s, _)) if (200..300).contains(&s) => Ok(()),
            Ok((s, _)) => Err(Error::new(
                ErrorKind::NotifyFailed,
                format!("webhook {} answered HTTP {s} after {tries} attempt(s)", self.name),
            )),
            Err(e) => Err(e),
        };
        (r, tries)
    }
}

fn retryable(r: &Result<(u16, Vec<u8>), Error>) -> bool {
    match r {
        Ok((s, _)) => *s == 429 || *s >= 500,
        Err(e) => matches!(
            e.kind(),
            ErrorKind::RevokerUnreachable | ErrorKind::Timeout | ErrorKind::RevokerProtocol
        ),
    }
}

impl Revoker for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn revoke<'a>(&'a self, target: &'a RevocationTarget) -> BoxFuture<'a, RevocationOutcome> {
        Box::pin(async move {
            let mut out = RevocationOutcome::new(&self.name);
            let body = json!({
                "event": "cadenas.revoke",
                "user": target.login,
                "dn": target.dn,
                "action": target.action,
                "incident": target.incident,
                "time": rfc3339(unix_now()),
            })
            .to_string();
            let (result, tries) = self.post_with_retries(body.as_bytes()).await;
            match result {
                Ok((s, body)) if (200..300).contains(&s) => {
                    out.status = RevocationStatus::Revoked;
                    let n = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v.get("sessions_revoked").and_then(Value::as_u64));
                    match n {
                        Some(n) => {
                            out.sessions_closed = n as usize;
                            if n == 0 {
                                out.status = RevocationStatus::NothingToRevoke;
                            }
                        }
                        None => out
                            .not_revoked
                            .push("the receiver confirmed (2xx) without a session count".into()),
                    }
                    out
                }
                Ok((s, _)) => {
                    let kind = if s == 401 || s == 403 {
                        ErrorKind::RevokerAuth
                    } else {
                        ErrorKind::RevokerFailed
                    };
                    out.failed(Error::new(
                        kind,
                        format!("webhook answered HTTP {s} after {tries} attempt(s)"),
                    ))
                }
                Err(e) => {
                    let message = format!("{} (after {tries} attempt(s))", e.message());
                    out.failed(Error::new(e.kind(), message).with_source(e))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_reference_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        // Here the data is "<ts>.<body>", so reproduce that split: ts=... is part of the data.
        let key = Secret::new(b"Jefe".to_vec());
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            expected,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = sign(&key, 1_700_000_000, b"{}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert_ne!(s, sign(&key, 1_700_000_001, b"{}"), "the timestamp is signed");
        assert_ne!(s, sign(&Secret::new(b"other".to_vec()), 1_700_000_000, b"{}"));
    }
}
