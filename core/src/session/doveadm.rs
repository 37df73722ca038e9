//! The doveadm HTTP API client. Commands of concurrent callers go in one request.
//!
//! Dovecot runs every HTTP connection of the doveadm service in a new `doveadm-server`
//! process (`service_count = 1`, its default) and closes it after one request: a request costs
//! 10–13 ms here however little it asks (`docs/FACTS.md`). The API runs a request's commands in
//! order and answers each on its own — a failing command does not stop the next — so the
//! commands of callers waiting while a request is out go together in the next one: `contain`'s
//! workers, each revoking one user, share requests instead of queueing for processes.
//!
//! Only server-wide commands (`who`, `kick`, `authCacheFlush`) are shared. A command that runs
//! as a mail user (`sieve list`, ...) drops the process's privileges to that user's: a `who`
//! after it in the same request dies on the root-only anvil socket and the whole request is
//! lost without an answer (seen on the lab) — and two users' mail commands could need two
//! different users' privileges. Those go alone ([`Doveadm::call_alone`]).
//!
//! One shared request is out at a time per API. A caller's commands stay together and in
//! order; each caller gets the replies to its own commands, parsed on their own (one caller's
//! error reply is not another's). What fails the whole request (HTTP status, malformed body, time-out)
//! fails every caller in it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::http::{HttpClient, HttpUrl};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// Most commands in one request (a caller's own are never split, whatever their number).
const MAX_COMMANDS: usize = 96;

/// One answer of the API: data or a Dovecot exit code.
pub(super) enum Reply {
    Data(Value),
    ExitCode(i64, String),
}

/// A command: its API name and parameters.
pub(super) type Command = (&'static str, Value);

type Answer = Result<Vec<Reply>, Error>;

/// One caller's commands waiting for a request.
struct Pending {
    commands: Vec<Command>,
    answer: oneshot::Sender<Answer>,
}

/// The client of one doveadm HTTP API.
pub(super) struct Doveadm {
    url: HttpUrl,
    auth_header: Secret,
    http: HttpClient,
    waiting: Mutex<Vec<Pending>>,
    /// Held by the caller whose request is out.
    turn: tokio::sync::Mutex<()>,
    requests: AtomicU64,
}

impl std::fmt::Debug for Doveadm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doveadm")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Doveadm {
    pub(super) fn new(url: HttpUrl, auth_header: Secret, http: HttpClient) -> Self {
        Self {
            url,
            auth_header,
            http,
            waiting: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
        }
    }

    pub(super) fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// HTTP requests sent so far.
    pub(super) fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Runs `commands` — server-wide ones only — in this order, in one request with those of
    /// other callers waiting at the same time; one reply per command.
    pub(super) async fn call_all(self: &Arc<Self>, commands: Vec<Command>) -> Answer {
        let (answer, mut mine) = oneshot::channel();
        self.waiting_list().push(Pending { commands, answer });
        loop {
            let turn = self.turn.lock().await;
            match mine.try_recv() {
                Ok(a) => return a,
                Err(oneshot::error::TryRecvError::Closed) => return Err(abandoned()),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch = self.next_batch();
            if batch.is_empty() {
                // taken by a request still out whose caller gave up waiting: it answers
                drop(turn);
                return mine.await.unwrap_or_else(|_| Err(abandoned()));
            }
            // The request goes on even if this caller stops waiting: the others in it get
            // their answers.
            let me = Arc::clone(self);
            let sent = tokio::spawn(async move { me.send(batch).await });
            let _ = sent.await;
            drop(turn);
        }
    }

    /// Runs `commands` — which may run as a mail user — in a request of their own.
    pub(super) async fn call_alone(&self, commands: Vec<Command>) -> Answer {
        let replies = self.post(&commands.iter().collect::<Vec<_>>()).await?;
        parse(&commands, replies)
    }

    fn waiting_list(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        // a panic while holding it cannot leave the list half-changed (push and drain only)
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The callers that go in the next request, oldest first.
    fn next_batch(&self) -> Vec<Pending> {
        let mut waiting = self.waiting_list();
        let mut n = 0;
        let mut take = 0;
        for p in waiting.iter() {
            if take > 0 && n + p.commands.len() > MAX_COMMANDS {
                break;
            }
            n += p.commands.len();
            take += 1;
        }
        waiting.drain(..take).collect()
    }

    async fn send(&self, batch: Vec<Pending>) {
        let commands: Vec<&Command> = batch.iter().flat_map(|p| p.commands.iter()).collect();
        match self.post(&commands).await {
            Ok(replies) => {
                let mut replies = replies.into_iter();
                for p in batch {
                    let mine: Vec<Value> = replies.by_ref().take(p.commands.len()).collect();
                    let _ = p.answer.send(parse(&p.commands, mine));
                }
            }
            Err(e) => {
                for p in batch {
                    let _ = p.answer.send(Err(e.clone()));
                }
            }
        }
    }

    /// One request; the raw reply of each command.
    async fn post(&self, commands: &[&Command]) -> Result<Vec<Value>, Error> {
        let what = names(commands.iter().map(|(c, _)| *c));
        let body = Value::Array(
            commands
                .iter()
                .enumerate()
                .map(|(i, (c, p))| json!([c, p, format!("c{i}")]))
                .collect(),
        )
        .to_string();
        let auth = std::str::from_utf8(self.auth_header.expose_secret())
            .map_err(|_| Error::new(ErrorKind::Internal, "API key header is not UTF-8"))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
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
                    format!("doveadm API answered HTTP {s} to {what}: {}", snippet(&resp.body)),
                ))
            }
        }
        let protocol = |why: &str| {
            Error::new(
                ErrorKind::RevokerProtocol,
                format!("doveadm {what}: {why}: {}", snippet(&resp.body)),
            )
        };
        match serde_json::from_slice(&resp.body).map_err(|_| protocol("not JSON"))? {
            Value::Array(a) if a.len() == commands.len() => Ok(a),
            _ => Err(protocol("not one reply per command")),
        }
    }
}

/// One caller's replies, in the order of its commands.
fn parse(commands: &[Command], replies: Vec<Value>) -> Answer {
    let what = names(commands.iter().map(|(c, _)| *c));
    let protocol = |why: &str| Error::new(ErrorKind::RevokerProtocol, format!("doveadm {what}: {why}"));
    if replies.len() != commands.len() {
        return Err(protocol("not one reply per command"));
    }
    let mut out = Vec::with_capacity(replies.len());
    for (reply, (command, _)) in replies.iter().zip(commands) {
        let reply = reply.as_array().ok_or_else(|| protocol("not [[...]]"))?;
        out.push(match reply.first().and_then(Value::as_str) {
            Some("doveadmResponse") => Reply::Data(reply.get(1).cloned().unwrap_or(Value::Null)),
            Some("error") => {
                let e = reply.get(1).ok_or_else(|| protocol("error without details"))?;
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
                Reply::ExitCode(code, kind)
            }
            _ => return Err(protocol("unknown reply type")),
        });
    }
    Ok(out)
}

/// The distinct command names, in order: `who+authCacheFlush+kick`.
fn names<'a>(commands: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for c in commands {
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen.join("+")
}

fn abandoned() -> Error {
    Error::new(
        ErrorKind::RevokerFailed,
        "doveadm: the request was abandoned before it was answered",
    )
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_error_reply_is_its_own_and_the_replies_keep_their_order() {
        let commands: Vec<Command> = vec![("who", json!({})), ("kick", json!({}))];
        let replies = vec![
            json!(["doveadmResponse", [], "c0"]),
            json!(["error", {"type": "exitCode", "exitCode": 68}, "c1"]),
        ];
        let r = parse(&commands, replies).expect("parsed");
        assert!(matches!(r[0], Reply::Data(_)));
        assert!(matches!(r[1], Reply::ExitCode(68, _)));
        let denied = vec![
            json!(["doveadmResponse", [], "c0"]),
            json!(["error", {"type": "unAuthorized"}, "c1"]),
        ];
        assert_eq!(
            parse(&commands, denied).err().map(|e| e.kind()),
            Some(ErrorKind::RevokerAuth)
        );
        assert_eq!(names(["who", "kick", "who", "kick"].into_iter()), "who+kick");
    }
}
