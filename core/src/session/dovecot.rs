//! Dovecot's doveadm HTTP API: `who`, `authCacheFlush`, `kick` (by user or by address range),
//! and the Sieve scripts (`sieve list`, `sieve get`, `sieve deactivate`).
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

use super::doveadm::{Doveadm, Reply};
use super::http::{HttpClient, HttpUrl};
use super::{
    read_key, BoxFuture, DovecotConfig, RevocationOutcome, RevocationStatus, RevocationTarget, Revoker,
    Session,
};
use crate::error::{Error, ErrorKind};
use crate::investigate::AddressRange;
use crate::secret::Secret;
use crate::tls::client_config_with_ca;

/// Revokes IMAP/POP3 sessions and cached credentials through the doveadm HTTP API.
pub struct Dovecot {
    name: String,
    api: Arc<Doveadm>,
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("name", &self.name)
            .field("url", self.api.url())
            .finish_non_exhaustive()
    }
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
            api: Arc::new(Doveadm::new(
                url,
                Secret::new(header.into_bytes()),
                HttpClient::new(tls, timeout)?,
            )),
        })
    }

    /// doveadm HTTP requests sent so far. The commands of calls made at the same time share
    /// a request (Dovecot starts a process for each): `contain`'s workers revoking users
    /// together send fewer requests than users.
    pub fn requests_sent(&self) -> u64 {
        self.api.requests_sent()
    }

    /// One server-wide command (in a request shared with other calls of the moment).
    async fn call(&self, command: &'static str, params: Value) -> Result<Reply, Error> {
        only(self.api.call_all(vec![(command, params)]).await?)
    }

    /// One read-only command run as a mail user (in a request shared with other users' of the
    /// moment).
    async fn call_as_user(&self, command: &'static str, params: Value) -> Result<Reply, Error> {
        only(self.api.call_as_users(vec![(command, params)]).await?)
    }

    /// One command that changes a user's mailbox (a request of its own).
    async fn change_as_user(&self, command: &'static str, params: Value) -> Result<Reply, Error> {
        only(self.api.call_alone(vec![(command, params)]).await?)
    }

    /// Lists live connections matching `mask` (one object per connection).
    async fn who(&self, mask: Option<&str>) -> Result<Vec<Session>, Error> {
        sessions_of(self.call("who", who_params(mask)).await?)
    }

    async fn run(&self, target: &RevocationTarget, out: &mut RevocationOutcome) -> Result<(), Error> {
        let login = checked_login(&target.login)?;
        // One request, run in this order: the user's sessions now; the cached credentials
        // (without the flush the old password keeps working up to auth_cache_ttl); the kick.
        // Users sharing a process with the user's sessions are in the kick's reply (pinned:
        // `dovecot.rs` on_shared_processes_other_users_kicked_along_are_reported_as_collateral).
        let mut replies = self
            .api
            .call_all(vec![
                ("who", who_params(Some(login))),
                ("authCacheFlush", json!({"user": [login]})),
                ("kick", json!({"mask": [login]})),
            ])
            .await?
            .into_iter();
        let (Some(who), Some(flush), Some(kick)) = (replies.next(), replies.next(), replies.next()) else {
            return Err(Error::new(ErrorKind::Internal, "doveadm: replies missing"));
        };
        // the flush and the kick ran whatever the who's result: what they did is recorded
        let (mine, who_failed) = match sessions_of(who) {
            Ok(m) => (m, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        out.sessions_found = who_failed.is_none().then_some(mine.len());
        let kicked = self
            .record_kick(
                login,
                &mine,
                Vec::new(),
                kick,
                |s| s.user.eq_ignore_ascii_case(login),
                out,
            )
            .await;
        match flush {
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
        match who_failed {
            Some(e) => Err(e),
            None => kicked,
        }
    }

    /// Users other than the targets that live in the processes a kick of `mine` will SIGTERM.
    async fn predict_collateral(
        &self,
        mine: &[Session],
        is_target: impl Fn(&Session) -> bool,
    ) -> Result<Vec<String>, Error> {
        let pids: Vec<u32> = mine.iter().filter_map(|s| s.pid).collect();
        let mut predicted: Vec<String> = Vec::new();
        if !pids.is_empty() {
            let targets: Vec<&str> = mine.iter().map(|s| s.user.as_str()).collect();
            for s in self.who(None).await? {
                if s.pid.is_some_and(|p| pids.contains(&p))
                    && !is_target(&s)
                    && !targets.iter().any(|t| t.eq_ignore_ascii_case(&s.user))
                    && !predicted.contains(&s.user)
                {
                    predicted.push(s.user);
                }
            }
        }
        Ok(predicted)
    }

    /// From the `reply` to a kick of `mask`: records who else was disconnected (users kicked
    /// who are neither the mask nor owners of `mine`), and checks with `who` until the
    /// sessions matching `is_target` are gone (≤ 2 s: the reply can precede the sockets
    /// closing; asked again after 5 ms, then twice as long each time).
    async fn record_kick(
        &self,
        mask: &str,
        mine: &[Session],
        predicted: Vec<String>,
        reply: Reply,
        is_target: impl Fn(&Session) -> bool,
        out: &mut RevocationOutcome,
    ) -> Result<(), Error> {
        let mut kicked_any = false;
        match reply {
            Reply::Data(Value::Array(items)) => {
                kicked_any = !items.is_empty();
                for i in items {
                    let user = i.get("result").and_then(Value::as_str).unwrap_or("");
                    if !user.is_empty()
                        && !user.eq_ignore_ascii_case(mask)
                        && !mine.iter().any(|s| s.user.eq_ignore_ascii_case(user))
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
        let found = mine.len();
        if found == 0 && !kicked_any {
            // no session before the kick, none kicked: nothing to see closed
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        let left = loop {
            let listed = self
                .who(Some(mask))
                .await?
                .iter()
                .filter(|s| is_target(s))
                .count();
            if listed == 0 || started.elapsed() >= Duration::from_secs(2) {
                break listed;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(400));
        };
        out.sessions_closed = found.saturating_sub(left);
        if out.sessions_closed > 0 {
            out.status = RevocationStatus::Revoked;
        }
        if left > 0 {
            out.not_revoked.push(format!(
                "{left} session(s) matching {mask} still listed by doveadm who after the kick"
            ));
            return Err(Error::new(
                ErrorKind::RevokerFailed,
                format!("{left} session(s) survived the kick"),
            ));
        }
        Ok(())
    }

    /// Live sessions from `range` (doveadm `who` with the range as mask, each address checked
    /// again here).
    pub async fn sessions_from(&self, range: &AddressRange) -> Result<Vec<Session>, Error> {
        Ok(self
            .who(Some(&range.to_string()))
            .await?
            .into_iter()
            .filter(|s| range.contains_text(&s.ip))
            .collect())
    }

    /// Kicks every session from `range`, whoever it belongs to; the outcome counts the sessions
    /// closed and names the users of other addresses disconnected with them (shared processes).
    /// Closing sessions does not stop a new login: only the accounts' containment does.
    pub async fn kick_from(&self, range: &AddressRange) -> RevocationOutcome {
        let mut out = RevocationOutcome::new(&self.name);
        let mask = range.to_string();
        let r = async {
            let mine = self.sessions_from(range).await?;
            out.sessions_found = Some(mine.len());
            let in_range = |s: &Session| range.contains_text(&s.ip);
            let predicted = self.predict_collateral(&mine, in_range).await?;
            let reply = self.call("kick", json!({"mask": [mask.as_str()]})).await?;
            self.record_kick(&mask, &mine, predicted, reply, in_range, &mut out)
                .await
        }
        .await;
        match r {
            Ok(()) => out,
            Err(e) => out.failed(e),
        }
    }

    /// The user's Sieve scripts with their text (doveadm `sieve list` and `sieve get`; the API
    /// key must be allowed those commands). A user the server does not know has none. Reads
    /// made at the same moment, for other users, share doveadm requests.
    ///
    /// `scriptname` goes as a string: Dovecot 2.3.19's doveadm HTTP server aborts the request
    /// (assertion in its JSON parser, no answer) when it is given as an array.
    pub async fn sieve_scripts(&self, login: &str) -> Result<Vec<SieveScript>, Error> {
        let login = checked_login(login)?;
        let list = match self.call_as_user("sieveList", json!({"user": login})).await? {
            Reply::Data(Value::Array(items)) => items,
            Reply::Data(_) => {
                return Err(Error::new(
                    ErrorKind::RevokerProtocol,
                    "doveadm sieve list: result is not a list",
                ))
            }
            Reply::ExitCode(67, _) => return Ok(Vec::new()), // EX_NOUSER
            Reply::ExitCode(c, t) => {
                return Err(Error::new(
                    ErrorKind::RevokerFailed,
                    format!("doveadm sieve list failed: exit code {c} {t}"),
                ))
            }
        };
        let mut out = Vec::with_capacity(list.len());
        for item in list {
            let name = item
                .get("script")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::new(ErrorKind::RevokerProtocol, "doveadm sieve list: no script name"))?
                .to_owned();
            let active = item
                .get("active")
                .and_then(Value::as_str)
                .is_some_and(|a| a.eq_ignore_ascii_case("ACTIVE"));
            let text = match self
                .call_as_user("sieveGet", json!({"user": login, "scriptname": name.as_str()}))
                .await?
            {
                Reply::Data(v) => v
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(|o| o.get("sieve script"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::new(ErrorKind::RevokerProtocol, "doveadm sieve get: no script text")
                    })?,
                Reply::ExitCode(68, _) => continue, // deleted since it was listed
                Reply::ExitCode(c, t) => {
                    return Err(Error::new(
                        ErrorKind::RevokerFailed,
                        format!("doveadm sieve get {name:?} failed: exit code {c} {t}"),
                    ))
                }
            };
            out.push(SieveScript { name, active, text });
        }
        Ok(out)
    }

    /// Deactivates the user's active Sieve script (none active: nothing to do). The script is
    /// kept, inactive, for the investigation.
    pub async fn sieve_deactivate(&self, login: &str) -> Result<(), Error> {
        let login = checked_login(login)?;
        match self
            .change_as_user("sieveDeactivate", json!({"user": login}))
            .await?
        {
            Reply::Data(_) => Ok(()),
            Reply::ExitCode(c, t) => Err(Error::new(
                ErrorKind::RevokerFailed,
                format!("doveadm sieve deactivate failed: exit code {c} {t}"),
            )),
        }
    }
}

/// A user's Sieve script as the server holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SieveScript {
    /// Its name.
    pub name: String,
    /// Whether it is the active one (at most one is).
    pub active: bool,
    /// Its text.
    pub text: String,
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

    /// Every session's user (one `who`).
    fn live_logins(&self) -> BoxFuture<'_, Result<Option<Vec<String>>, Error>> {
        Box::pin(async move { Ok(Some(self.who(None).await?.into_iter().map(|s| s.user).collect())) })
    }
}

/// The reply to a call of one command.
fn only(replies: Vec<Reply>) -> Result<Reply, Error> {
    replies
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(ErrorKind::Internal, "doveadm: reply missing"))
}

/// The parameters of `who` for `mask` (every connection without one).
fn who_params(mask: Option<&str>) -> Value {
    match mask {
        Some(m) => json!({"separateConnections": true, "mask": [m]}),
        None => json!({"separateConnections": true}),
    }
}

/// The sessions in the reply to a `who`.
fn sessions_of(reply: Reply) -> Result<Vec<Session>, Error> {
    match reply {
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
