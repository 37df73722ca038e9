//! The doveadm HTTP API client. Commands of concurrent callers go in one request.
//!
//! Dovecot runs every HTTP connection of the doveadm service in a new `doveadm-server`
//! process (`service_count = 1`, its default) and closes it after one request: a request costs
//! 10–13 ms here however little it asks (`docs/FACTS.md`). The API runs a request's commands in
//! order and answers each on its own — a failing command does not stop the next — so the
//! commands of callers waiting while a request is out go together in the next one: `contain`'s
//! workers, each revoking one user, share requests instead of queueing for processes.
//!
//! Two kinds of commands never share a request: server-wide ones (`who`, `kick`,
//! `authCacheFlush`: [`Doveadm::call_all`]) and read-only ones run as a mail user (`sieve list`,
//! `sieve get`: [`Doveadm::call_as_users`]). A command run as a mail user drops the process's
//! privileges to that user's: a `who` after it in the same request dies on the root-only anvil
//! socket and the whole request is lost without an answer (seen on the lab). Mail-user commands
//! of several users — with different system uids, each home readable by its owner only — run
//! one after another in one request, each as its own user (seen on the lab: Dovecot takes its
//! privileges back between them); a request of 32 `sieve list`s costs the server ~2 ms of CPU
//! per user instead of ~15. Should a server lose such a request anyway, each caller's commands
//! are sent again alone, and from then on every mail-user command of that API goes alone.
//! Commands that change a mailbox (`sieve deactivate`) always go alone
//! ([`Doveadm::call_alone`]).
//!
//! One shared request of each kind is out at a time per API. A caller's commands stay together
//! and in order; each caller gets the replies to its own commands, parsed on their own (one
//! caller's error reply is not another's). What fails the whole request (HTTP status, malformed
//! body, time-out) fails every caller in it — but a lost request of several users' mail
//! commands, sent again as above.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// What a shared request did for one caller.
enum Sent {
    /// The replies to its commands (or what failed the request).
    Answered(Answer),
    /// A request of several users' mail commands was lost: the caller's commands, to send alone.
    Lost(Vec<Command>),
}

/// One caller's commands waiting for a request.
struct Pending {
    commands: Vec<Command>,
    answer: oneshot::Sender<Sent>,
}

/// The callers waiting for a shared request of one kind.
#[derive(Default)]
struct Queue {
    waiting: Mutex<Vec<Pending>>,
    /// Held by the caller whose request is out.
    turn: tokio::sync::Mutex<()>,
    /// The last request: when it ended, how long it took, how many callers it carried.
    last: Mutex<Option<(Instant, Duration, usize)>>,
}

/// A turn waits at most this many times as long as the last request took for more callers…
const LINGER_PER_REQUEST: u32 = 4;
/// …and never longer than this.
const LINGER_MAX: Duration = Duration::from_millis(100);
/// A last request older than this says nothing about callers still coming: no wait.
const STREAM_GAP: Duration = Duration::from_secs(1);

/// Which commands a shared request carries (never both).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `who`, `kick`, `authCacheFlush`.
    ServerWide,
    /// Read-only commands run as a mail user.
    AsUsers,
}

/// The client of one doveadm HTTP API.
pub(super) struct Doveadm {
    url: HttpUrl,
    auth_header: Secret,
    http: HttpClient,
    server_wide: Queue,
    as_users: Queue,
    /// Set once a request of several users' mail commands was lost: each goes alone since.
    users_alone: AtomicBool,
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
            server_wide: Queue::default(),
            as_users: Queue::default(),
            users_alone: AtomicBool::new(false),
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
        self.call_shared(Kind::ServerWide, commands).await
    }

    /// Runs `commands` — read-only ones run as a mail user, e.g. `sieveList` — in this order, in
    /// one request with those of other callers (other users) waiting at the same time; alone
    /// once this API lost such a request.
    pub(super) async fn call_as_users(self: &Arc<Self>, commands: Vec<Command>) -> Answer {
        if self.users_alone.load(Ordering::Relaxed) {
            return self.call_alone(commands).await;
        }
        self.call_shared(Kind::AsUsers, commands).await
    }

    /// Runs `commands` — which may run as a mail user, or change a mailbox — in a request of
    /// their own.
    pub(super) async fn call_alone(&self, commands: Vec<Command>) -> Answer {
        let replies = self.post(&commands.iter().collect::<Vec<_>>()).await?;
        parse(&commands, replies)
    }

    fn queue(&self, kind: Kind) -> &Queue {
        match kind {
            Kind::ServerWide => &self.server_wide,
            Kind::AsUsers => &self.as_users,
        }
    }

    /// Flat combining: the caller holding the queue's turn sends what every caller waiting has
    /// queued, in one request; the others find their answer when they get the turn.
    async fn call_shared(self: &Arc<Self>, kind: Kind, commands: Vec<Command>) -> Answer {
        let queue = self.queue(kind);
        let (answer, mut mine) = oneshot::channel();
        waiting_list(queue).push(Pending { commands, answer });
        let sent = loop {
            let turn = queue.turn.lock().await;
            match mine.try_recv() {
                Ok(sent) => break sent,
                Err(oneshot::error::TryRecvError::Closed) => return Err(abandoned()),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            linger(queue).await;
            let batch = next_batch(queue);
            if batch.is_empty() {
                // taken by a request still out whose caller gave up waiting: it answers
                drop(turn);
                match mine.await {
                    Ok(sent) => break sent,
                    Err(_) => return Err(abandoned()),
                }
            }
            // The request goes on even if this caller stops waiting: the others in it get
            // their answers.
            let me = Arc::clone(self);
            let callers = batch.len();
            let sending = Instant::now();
            let out = tokio::spawn(async move { me.send(kind, batch).await });
            let _ = out.await;
            let took = sending.elapsed();
            tracing::debug!(
                callers,
                as_users = (kind == Kind::AsUsers),
                us = took.as_micros() as u64,
                "doveadm shared request"
            );
            *lock(&queue.last) = Some((Instant::now(), took, callers));
            drop(turn);
        };
        match sent {
            Sent::Answered(a) => a,
            Sent::Lost(commands) => self.call_alone(commands).await,
        }
    }

    async fn send(&self, kind: Kind, batch: Vec<Pending>) {
        let commands: Vec<&Command> = batch.iter().flat_map(|p| p.commands.iter()).collect();
        match self.post(&commands).await {
            Ok(replies) => {
                let mut replies = replies.into_iter();
                for p in batch {
                    let mine: Vec<Value> = replies.by_ref().take(p.commands.len()).collect();
                    let _ = p.answer.send(Sent::Answered(parse(&p.commands, mine)));
                }
            }
            // no usable answer (the process died) or a server error: each caller's commands
            // go again alone, and every user's alone from now on
            Err(e)
                if kind == Kind::AsUsers
                    && batch.len() > 1
                    && matches!(e.kind(), ErrorKind::RevokerProtocol | ErrorKind::RevokerFailed) =>
            {
                self.users_alone.store(true, Ordering::Relaxed);
                tracing::warn!(
                    host = %self.url.host,
                    port = self.url.port,
                    users = batch.len(),
                    error = %e,
                    "doveadm lost a request of several users' mail commands: each goes alone from now on"
                );
                for p in batch {
                    let _ = p.answer.send(Sent::Lost(p.commands));
                }
            }
            Err(e) => {
                for p in batch {
                    let _ = p.answer.send(Sent::Answered(Err(e.clone())));
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

fn waiting_list(queue: &Queue) -> std::sync::MutexGuard<'_, Vec<Pending>> {
    // a panic while holding it cannot leave the list half-changed (push and drain only)
    lock(&queue.waiting)
}

/// Waits, holding the turn, for more callers while they keep coming — only while this queue's
/// requests carry several callers (a run of many accounts, whose revocations then share fewer,
/// fuller requests: each costs the server a process, 10–13 ms, however few commands it
/// carries). The wait ends when a request's worth is queued, when no caller came for as long
/// as the last request took, or after [`LINGER_PER_REQUEST`] times that (at most
/// [`LINGER_MAX`]). A lone caller — one account contained — goes at once.
async fn linger(queue: &Queue) {
    let Some((ended, took, callers)) = *lock(&queue.last) else {
        return;
    };
    if callers < 2 || ended.elapsed() > STREAM_GAP {
        return;
    }
    let quiet = took.max(Duration::from_millis(2));
    let most = took.saturating_mul(LINGER_PER_REQUEST).min(LINGER_MAX);
    let started = Instant::now();
    let (mut seen, mut last_came) = (0, started);
    loop {
        let (waiting, commands) = {
            let w = waiting_list(queue);
            (w.len(), w.iter().map(|p| p.commands.len()).sum::<usize>())
        };
        if waiting != seen {
            (seen, last_came) = (waiting, Instant::now());
        }
        if commands >= MAX_COMMANDS || last_came.elapsed() >= quiet || started.elapsed() >= most {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The callers that go in the next request of `queue`, oldest first.
fn next_batch(queue: &Queue) -> Vec<Pending> {
    let mut waiting = waiting_list(queue);
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
