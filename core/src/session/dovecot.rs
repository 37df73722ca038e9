//! Dovecot's doveadm HTTP API: `who`, `authCacheFlush`, `kick`.
//!
//! Facts this code respects (`docs/FACTS.md`; pinned by `core/tests/lab/dovecot.rs`):
//! - "nothing to kick" is HTTP 200 with `["error", {"exitCode": 68}]`: success, zero sessions;
//! - a kick SIGTERMs whole processes: with `client_limit > 1` other users on the process are
//!   disconnected too and the reply lists them — reported as collateral;
//! - masks are case-insensitive globs: a login with `*` or `?` is refused;
//! - `authCacheFlush` without `user` crashes the request: the user is always given;
//! - the grouped `who` JSON is malformed: only `separateConnections: true` is used;
//! - the reply can arrive before the sessions' sockets close: `who` is polled afterwards.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::http::{HttpClient, HttpUrl};
use super::{
    read_key, BoxFuture, DovecotConfig, RevocationOutcome, RevocationStatus, RevocationTarget, Revoker,
    Session,
};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::tls::client_config_with_ca;

/// Revokes IMAP/POP3 sessions and cached credentials through the doveadm HTTP API.
pub struct Dovecot {
    name: String,
    url: HttpUrl,
    auth_header: Secret,
    http: HttpClient,
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One answer of the API: data or a Dovecot exit code.
enum Reply {
    Data(Value),
    ExitCode(i64, String),
}

impl Dovecot {
    /// Builds the revoker from its config, reading the API key now.
    pub fn from_config(cfg: &DovecotConfig) -> Result<Self, Error> {
        let key = read_key(
            cfg.api_key_file.as_deref(),
            cfg.api_key_env.as_deref(),
            "dovecot api key",
        )?;
        let url = HttpUrl::parse(&cfg.url)?;
        let tls = cfg.ca_file.as_deref().map(client_config_with_ca).transpose()?;
        Self::with_tls(
            &cfg.name,
            url,
            &key,
            tls,
            Duration::from_secs(cfg.timeout_secs.max(1)),
        )
    }

    /// Builds a revoker for a plain-HTTP doveadm API (e.g. on loopback) directly; use
    /// [`from_config`](Self::from_config) for https with a CA.
    pub fn new(name: &str, url: &str, api_key: &Secret, timeout: Duration) -> Result<Self, Error> {
        Self::with_tls(name, HttpUrl::parse(url)?, api_key, None, timeout)
    }

    fn with_tls(
        name: &str,
        url: HttpUrl,
        api_key: &Secret,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let header = format!(
            "X-Dovecot-API {}",
            base64::engine::general_purpose::STANDARD.encode(api_key.expose_secret())
        );
        Ok(Self {
            name: name.to_owned(),
            url,
            auth_header: Secret::new(header.into_bytes()),
            http: HttpClient::new(tls, timeout)?,
        })
    }

    async fn call(&self, command: &str, params: Value) -> Result<Reply, Error> {
        let body = json!([[command, params, "c"]]).to_string();
        let auth = std::str::from_utf8(self.auth_header.expose_secret())
            .map_err(|_| Error::new(ErrorKind::Internal, "API key header is not UTF-8"))?;
        let resp = self
            .http
            .post(
                &self.url,
                &[("Authorization", auth), ("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .await?;
        match resp.status {
            200 => {}
            401 | 403 => {
                return Err(Error::new(
                    ErrorKind::RevokerAuth,
                    format!("doveadm API refused the API key (HTTP {})", resp.status),
                ))
            }
            s => {
                return Err(Error::new(
                    ErrorKind::RevokerFailed,
                    format!(
                        "doveadm API answered HTTP {s} to {command}: {}",
                        snippet(&resp.body)
                    ),
                ))
            }
        }
        let protocol = |why: &str| {
            Error::new(
                ErrorKind::RevokerProtocol,
                format!("doveadm {command}: {why}: {}", snippet(&resp.body)),
            )
        };
        let v: Value = serde_json::from_slice(&resp.body).map_err(|_| protocol("not JSON"))?;
        let first = v
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_array)
            .ok_or_else(|| protocol("not [[...]]"))?;
        match first.first().and_then(Value::as_str) {
            Some("doveadmResponse") => Ok(Reply::Data(first.get(1).cloned().unwrap_or(Value::Null))),
            Some("error") => {
                let e = first.get(1).ok_or_else(|| protocol("error without details"))?;
                let kind = e.get("type").and_then(Value::as_str).unwrap_or("").to_owned();
                if kind == "unAuthorized" {
                    return Err(Error::new(
                        ErrorKind::RevokerAuth,
                        format!("the API key may not run {command} (doveadm_allowed_commands)"),
                    ));
                }
                let code = e
                    .get("exitCode")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| protocol("error without exitCode"))?;
                Ok(Reply::ExitCode(code, kind))
            }
            _ => Err(protocol("unknown reply type")),
        }
    }

    /// Lists live connections matching `mask` (one object per connection).
    async fn who(&self, mask: Option<&str>) -> Result<Vec<Session>, Error> {
        let params = match mask {
            Some(m) => json!({"separateConnections": true, "mask": [m]}),
            None => json!({"separateConnections": true}),
        };
        match self.call("who", params).await? {
            Reply::Data(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    let s = |k: &str| i.get(k).and_then(Value::as_str).map(str::to_owned);
                    Ok(Session {
                        user: s("username").ok_or_else(|| {
                            Error::new(ErrorKind::RevokerProtocol, "doveadm who: entry without username")
                        })?,
                        service: s("service").unwrap_or_default(),
                        pid: s("pid").and_then(|p| p.parse().ok()),
                        ip: s("ip").unwrap_or_default(),
                    })
                })
                .collect(),
            Reply::Data(_) => Err(Error::new(
                ErrorKind::RevokerProtocol,
                "doveadm who: result is not a list",
            )),
            Reply::ExitCode(c, t) => Err(Error::new(
                ErrorKind::RevokerFailed,
                format!("doveadm who failed: exit code {c} {t}"),
            )),
        }
    }

    async fn run(&self, target: &RevocationTarget, out: &mut RevocationOutcome) -> Result<(), Error> {
        let login = checked_login(&target.login)?;
        let mine = self.who(Some(login)).await?;
        out.sessions_found = Some(mine.len());
        // Who else lives in the processes a kick will SIGTERM?
        let pids: Vec<u32> = mine.iter().filter_map(|s| s.pid).collect();
        let mut predicted: Vec<String> = Vec::new();
        if !pids.is_empty() {
            for s in self.who(None).await? {
                if s.pid.is_some_and(|p| pids.contains(&p))
                    && !s.user.eq_ignore_ascii_case(login)
                    && !predicted.contains(&s.user)
                {
                    predicted.push(s.user);
                }
            }
        }

        // 1. Cached credentials: without this the old password keeps working up to auth_cache_ttl.
        match self.call("authCacheFlush", json!({"user": [login]})).await? {
            Reply::Data(v) => {
                let n = v
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(|o| o.get("entries"))
                    .and_then(|e| e.as_str().and_then(|s| s.parse().ok()).or_else(|| e.as_u64()))
                    .ok_or_else(|| {
                        Error::new(ErrorKind::RevokerProtocol, "authCacheFlush: no entry count")
                    })?;
                out.cache_entries_flushed = Some(n);
                if n > 0 {
                    out.status = RevocationStatus::Revoked;
                }
            }
            Reply::ExitCode(c, t) => {
                return Err(Error::new(
                    ErrorKind::RevokerFailed,
                    format!("authCacheFlush failed: exit code {c} {t}"),
                ))
            }
        }

        // 2. Live sessions.
        match self.call("kick", json!({"mask": [login]})).await? {
            Reply::Data(Value::Array(items)) => {
                for i in items {
                    let user = i.get("result").and_then(Value::as_str).unwrap_or("");
                    if !user.is_empty()
                        && !user.eq_ignore_ascii_case(login)
                        && !out.collateral.iter().any(|c| c == user)
                    {
                        out.collateral.push(user.to_owned());
                    }
                }
            }
            Reply::Data(_) => {
                return Err(Error::new(
                    ErrorKind::RevokerProtocol,
                    "kick: result is not a list",
                ))
            }
            Reply::ExitCode(68, _) => {} // nothing to kick
            Reply::ExitCode(c, t) => {
                return Err(Error::new(
                    ErrorKind::RevokerFailed,
                    format!("kick failed: exit code {c} {t}"),
                ))
            }
        }
        for p in predicted {
            if !out.collateral.contains(&p) {
                out.collateral.push(p);
            }
        }

        // 3. The reply can precede the sockets closing: check until they are gone (≤ 2 s).
        let mut left = mine.len();
        for _ in 0..20 {
            left = self.who(Some(login)).await?.len();
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out.sessions_closed = mine.len().saturating_sub(left);
        if out.sessions_closed > 0 {
            out.status = RevocationStatus::Revoked;
        }
        if left > 0 {
            out.not_revoked.push(format!(
                "{left} session(s) of {login} still listed by doveadm who after the kick"
            ));
            return Err(Error::new(
                ErrorKind::RevokerFailed,
                format!("{left} session(s) survived the kick"),
            ));
        }
        Ok(())
    }
}

impl Revoker for Dovecot {
    fn name(&self) -> &str {
        &self.name
    }

    fn revoke<'a>(&'a self, target: &'a RevocationTarget) -> BoxFuture<'a, RevocationOutcome> {
        Box::pin(async move {
            let mut out = RevocationOutcome::new(&self.name);
            match self.run(target, &mut out).await {
                Ok(()) => out,
                Err(e) => out.failed(e),
            }
        })
    }

    fn sessions<'a>(
        &'a self,
        target: &'a RevocationTarget,
    ) -> BoxFuture<'a, Result<Option<Vec<Session>>, Error>> {
        Box::pin(async move { Ok(Some(self.who(Some(checked_login(&target.login)?)).await?)) })
    }
}

/// Dovecot masks are case-insensitive globs: refuse anything that is not one literal user.
fn checked_login(login: &str) -> Result<&str, Error> {
    if login.is_empty()
        || login
            .chars()
            .any(|c| c == '*' || c == '?' || c.is_whitespace() || c.is_control())
    {
        return Err(Error::new(
            ErrorKind::InvalidUserName,
            format!("{login:?} cannot be a Dovecot mask: glob characters, white space or control characters"),
        ));
    }
    Ok(login)
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_logins_are_refused() {
        for l in ["*", "user*", "us?r", "", "a b", "a\nb"] {
            assert_eq!(checked_login(l).expect_err(l).kind(), ErrorKind::InvalidUserName);
        }
        assert_eq!(checked_login("user0001").expect("ok"), "user0001");
    }

    #[test]
    fn debug_does_not_show_the_api_key() {
        let d = Dovecot::new(
            "mail",
            "http://127.0.0.1:1/doveadm/v1",
            &Secret::new(b"super-secret-key".to_vec()),
            Duration::from_secs(1),
        )
        .expect("revoker");
        let shown = format!("{d:?}");
        assert!(
            !shown.contains("super-secret-key") && !shown.contains("c3VwZXI"),
            "{shown}"
        );
    }
}
