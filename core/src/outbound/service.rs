//! The policy service: a long-running server Postfix asks about every recipient and every
//! message (`check_policy_service`). Its state is the journal — read in full before the first
//! answer, then followed (every `journal_poll_ms`) — and the sending windows, kept in memory.
//!
//! Bounded whatever the clients do: at most `max_connections` at once (a new one closes the
//! connection idle the longest), a request must arrive whole within `request_timeout_secs` of
//! its first byte (a client sending a byte a second is cut off), an idle connection is closed
//! after `idle_timeout_secs`, a request is at most [`MAX_REQUEST_BYTES`] — one connection's
//! bad input closes that connection only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::contained::ContainedSet;
use super::limits::{Exceeded, Limits};
use super::policy::{PolicyRequest, RequestReader, Verdict, MAX_REQUEST_BYTES};
use super::OutboundConfig;
use crate::error::{Error, ErrorKind};
use crate::incident::AutoOutcome;
use crate::journal::{Location, Tail};
use crate::notify::{notify_all, Notice, NoticeUser, Notifier, NotifyEvent};

/// Where the service listens: `unix:/path` or `host:port` (loopback or a private address).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenAddress {
    /// A unix socket (created mode 0660; a stale one is replaced).
    Unix(PathBuf),
    /// A TCP address.
    Tcp(std::net::SocketAddr),
}

impl ListenAddress {
    /// Parses `unix:/path` or `host:port`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if let Some(p) = s.strip_prefix("unix:") {
            let p = PathBuf::from(p);
            if !p.is_absolute() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("outbound listen {s:?}: a unix socket needs an absolute path"),
                ));
            }
            return Ok(ListenAddress::Unix(p));
        }
        s.parse().map(ListenAddress::Tcp).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!("outbound listen {s:?}: give unix:/path or ADDRESS:PORT"),
            )
        })
    }
}

impl std::fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddress::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenAddress::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// What the service knows and has done, for its status file and `outbound status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ServiceStatus {
    /// Accounts contained now.
    pub contained: usize,
    /// Journal records read.
    pub records_read: u64,
    /// When the journal was last read without error (RFC 3339).
    pub journal_read_at: Option<String>,
    /// Why the last read failed, while it fails: the service answers from what it knew.
    pub journal_error: Option<String>,
    /// Requests answered.
    pub requests: u64,
    /// Requests refused because the account is contained.
    pub refused_contained: u64,
    /// Requests over a sending limit.
    pub over_limit: u64,
    /// Connections open now.
    pub connections: usize,
    /// Accounts contained automatically by a `contain = true` limit since the start.
    pub auto_contained: u64,
    /// Automatic containments not made: the hourly cap, a dry run, a refusal or a failure.
    pub auto_not_contained: u64,
}

/// One open connection: when it was last active, and how to close it.
struct Conn {
    last_ms: AtomicU64,
    close: tokio::sync::Notify,
}

/// What every connection shares.
struct Shared {
    contained: RwLock<ContainedSet>,
    limits: Mutex<Limits>,
    reject_text: String,
    /// The answers' bytes, made once: to a contained account, and per limit.
    reject_wire: String,
    limit_wires: Vec<String>,
    notifiers: Vec<Arc<Notifier>>,
    cfg: OutboundConfig,
    started: Instant,
    status: Mutex<ServiceStatus>,
    requests: AtomicU64,
    refused: AtomicU64,
    over_limit: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_conn: AtomicU64,
    /// The whole config: an automatic containment is a containment like any other.
    full: crate::Config,
    /// `needs_attention` notifiers, told of automatic containments.
    attention: Vec<Arc<Notifier>>,
    /// The service's own records of the messages it let through (`database`).
    records: Option<super::records::Records>,
    /// The automatic containments (incident → Unix time) the journal records or this process
    /// made, and how many are under way.
    auto: Mutex<(HashMap<String, i64>, usize)>,
    auto_contained: AtomicU64,
    auto_not: AtomicU64,
}

/// The outbound policy service. Build with [`PolicyService::new`], then [`run`](Self::run).
///
/// ```no_run
/// # async fn demo() -> Result<(), cadenas::Error> {
/// use cadenas::outbound::PolicyService;
///
/// let cfg = cadenas::Config::from_file("/etc/cadenas/cadenas.toml".as_ref())?;
/// let service = PolicyService::new(&cfg)?;
/// // reads the whole journal, then answers Postfix until the future is dropped
/// service.run().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PolicyService {
    shared: Arc<Shared>,
    journal: Location,
    key: Option<crate::secret::Secret>,
}

impl std::fmt::Debug for PolicyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyService")
            .field("journal", &self.journal.to_string())
            .field("listen", &self.shared.cfg.listen)
            .finish()
    }
}

impl PolicyService {
    /// A service for `cfg`: its `[outbound]` section, the journal it learns containments from
    /// (`[journal]`), the local domains (`[mail]`) and the notifiers told about limits.
    pub fn new(cfg: &crate::Config) -> Result<Self, Error> {
        let out = cfg.outbound.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "the policy service needs an [outbound] section",
            )
        })?;
        let journal = cfg
            .journal
            .as_ref()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    "the policy service learns containments from the journal: configure [journal]",
                )
            })?
            .location()?;
        let key = cfg.journal.as_ref().map(|j| j.key()).transpose()?.flatten();
        let domains = cfg
            .mail
            .as_ref()
            .map(|m| m.local_domains.clone())
            .unwrap_or_default();
        let all = crate::notify::build_notifiers(&cfg.notify)?;
        let attention = all
            .iter()
            .filter(|n| n.wants(NotifyEvent::NeedsAttention))
            .cloned()
            .collect();
        let notifiers = all
            .into_iter()
            .filter(|n| n.wants(NotifyEvent::SendingLimit))
            .collect();
        let mut limits = Limits::new(out.limits.clone());
        // the windows, rebuilt from the service's own records
        let records = match &out.database {
            Some(path) => {
                let now_unix = crate::time::unix_now() as i64;
                let horizon = now_unix - limits.longest_secs() as i64;
                let now = Instant::now();
                let past = super::records::read_records(path, horizon)?;
                for r in &past {
                    let age = Duration::from_secs((now_unix - r.time).max(0) as u64);
                    limits.replay(&r.login, &r.client_address, r.recipients, age, now);
                }
                Some(super::records::Records::open(path)?)
            }
            None => None,
        };
        let limit_wires: Vec<String> = (0..limits.len()).map(|i| limits.verdict(i).to_wire()).collect();
        Ok(Self {
            shared: Arc::new(Shared {
                contained: RwLock::new(ContainedSet::new(&domains)),
                limits: Mutex::new(limits),
                reject_wire: Verdict::Reject(out.reject_text.clone()).to_wire(),
                limit_wires,
                reject_text: out.reject_text.clone(),
                notifiers,
                cfg: out,
                started: Instant::now(),
                status: Mutex::new(ServiceStatus::default()),
                requests: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                over_limit: AtomicU64::new(0),
                conns: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(0),
                full: cfg.clone(),
                records,
                attention,
                auto: Mutex::new((HashMap::new(), 0)),
                auto_contained: AtomicU64::new(0),
                auto_not: AtomicU64::new(0),
            }),
            journal,
            key,
        })
    }

    /// The answer to one request, as the service gives it (contained → `REJECT`; then the
    /// sending limits; else `DUNNO`).
    pub fn decide(&self, req: &PolicyRequest) -> Verdict {
        match decide(&self.shared, req) {
            Answer::Dunno => Verdict::Dunno,
            Answer::Contained => Verdict::Reject(self.shared.reject_text.clone()),
            Answer::Limit(i) => self
                .shared
                .limits
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .verdict(i),
        }
    }

    /// What the service knows now.
    pub fn status(&self) -> ServiceStatus {
        status_now(&self.shared)
    }

    /// Reads the whole journal, binds every `listen` address, then answers until the future
    /// is dropped (or a listener fails). Nothing is answered before the journal was read.
    pub async fn run(&self) -> Result<(), Error> {
        let mut tail = Tail::new(self.journal.clone(), self.key.clone());
        let first = tokio::task::spawn_blocking(move || {
            let r = tail.read_new();
            (tail, r)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("journal reader: {e}")))?;
        let (tail, records) = first;
        self.took(&records?, tail.records_read());
        let mut listeners = Vec::new();
        for a in &self.shared.cfg.listen {
            listeners.push(bind(&ListenAddress::parse(a)?).await?);
        }
        tracing::info!(
            contained = self.status().contained,
            listen = ?self.shared.cfg.listen,
            "outbound policy service ready"
        );
        // every task of the service is in this set: dropping `run` (or its end) stops them all,
        // the connections included
        let mut tasks = tokio::task::JoinSet::new();
        let me = self.clone();
        tasks.spawn(async move {
            follow_journal(me, tail).await;
            Ok(())
        });
        for l in listeners {
            tasks.spawn(accept_loop(self.shared.clone(), l));
        }
        match tasks.join_next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(Error::new(ErrorKind::Internal, format!("listener: {e}"))),
            None => Err(Error::new(ErrorKind::Config, "outbound: no listen address")),
        }
    }

    fn took(&self, records: &[crate::journal::Record], read: u64) {
        let autos: Vec<(String, i64)> = super::auto::auto_starts(records).collect();
        if !autos.is_empty() {
            self.shared
                .auto
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .extend(autos);
        }
        let n = {
            let mut set = self.shared.contained.write().unwrap_or_else(|p| p.into_inner());
            set.apply(records);
            set.len()
        };
        let mut st = self.shared.status.lock().unwrap_or_else(|p| p.into_inner());
        st.contained = n;
        st.records_read = read;
        st.journal_read_at = Some(crate::time::rfc3339(crate::time::unix_now()));
        st.journal_error = None;
    }
}

fn status_now(shared: &Shared) -> ServiceStatus {
    let mut st = shared.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    st.requests = shared.requests.load(Ordering::Relaxed);
    st.refused_contained = shared.refused.load(Ordering::Relaxed);
    st.over_limit = shared.over_limit.load(Ordering::Relaxed);
    st.connections = shared.conns.lock().map(|c| c.len()).unwrap_or(0);
    st.auto_contained = shared.auto_contained.load(Ordering::Relaxed);
    st.auto_not_contained = shared.auto_not.load(Ordering::Relaxed);
    st
}

/// Follows the journal: new records every `journal_poll_ms`; a failed read is logged once
/// (and in the status) while the service answers from what it knew.
async fn follow_journal(service: PolicyService, mut tail: Tail) {
    let every = Duration::from_millis(service.shared.cfg.journal_poll_ms.max(10));
    let mut failing = false;
    loop {
        tokio::time::sleep(every).await;
        let Ok((t, res)) = tokio::task::spawn_blocking(move || {
            let r = tail.read_new();
            (tail, r)
        })
        .await
        else {
            return;
        };
        tail = t;
        match res {
            Ok(records) => {
                if failing {
                    tracing::warn!("outbound: the journal is readable again");
                    failing = false;
                }
                service.took(&records, tail.records_read());
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "outbound: cannot read the journal; answering from what was read before");
                    failing = true;
                }
                let mut st = service.shared.status.lock().unwrap_or_else(|p| p.into_inner());
                st.journal_error = Some(e.to_string());
            }
        }
        if let Some(path) = &service.shared.cfg.status_file {
            write_status(path, &service.status());
        }
    }
}

/// Writes the status file (JSON, replaced atomically).
fn write_status(path: &std::path::Path, st: &ServiceStatus) {
    let tmp = path.with_extension("tmp");
    let Ok(json) = serde_json::to_vec_pretty(st) else {
        return;
    };
    if std::fs::write(&tmp, json)
        .and_then(|_| std::fs::rename(&tmp, path))
        .is_err()
    {
        tracing::debug!(path = %path.display(), "outbound: cannot write the status file");
    }
}

/// An answer, before its bytes.
enum Answer {
    Dunno,
    Contained,
    /// Over the limit of this index.
    Limit(usize),
}

impl Answer {
    fn wire<'a>(&self, shared: &'a Shared) -> &'a str {
        match self {
            Answer::Dunno => "action=DUNNO\n\n",
            Answer::Contained => &shared.reject_wire,
            Answer::Limit(i) => shared
                .limit_wires
                .get(*i)
                .map_or("action=DUNNO\n\n", String::as_str),
        }
    }
}

fn decide(shared: &Arc<Shared>, req: &PolicyRequest) -> Answer {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if req.sasl_username.is_empty() {
        return Answer::Dunno;
    }
    let contained = shared
        .contained
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&req.sasl_username)
        .map(|c| c.incident.clone());
    if let Some(incident) = contained {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            account = ?req.sasl_username,
            client = ?req.client_address,
            state = ?req.protocol_state,
            incident,
            "outbound: refused, the account is contained"
        );
        return Answer::Contained;
    }
    let (over, exceeded, contains) = {
        let mut limits = shared.limits.lock().unwrap_or_else(|p| p.into_inner());
        let (over, exceeded) = limits.exceeded(req, Instant::now());
        (over, exceeded, over.is_some_and(|i| limits.contains_on(i)))
    };
    if over.is_some() {
        shared.over_limit.fetch_add(1, Ordering::Relaxed);
    }
    if let (Some(x), true) = (&exceeded, contains) {
        start_auto_contain(shared, x.clone());
    }
    if let Some(x) = exceeded {
        // kept in the service's records: what `cadenas watch` follows
        if let Some(r) = &shared.records {
            r.limit(super::records::LimitRecord {
                time: crate::time::unix_now() as i64,
                login: x.account.clone(),
                client_address: req.client_address.clone(),
                detail: limit_summary(&x),
            });
        }
        tracing::warn!(
            account = ?x.account,
            counts = x.counts.name(),
            count = x.count,
            max = x.max,
            window_secs = x.window_secs,
            addresses = ?x.client_addresses,
            "outbound: sending limit exceeded"
        );
        if !shared.notifiers.is_empty() {
            let notifiers = shared.notifiers.clone();
            tokio::spawn(async move {
                let notice = limit_notice(&x);
                for o in notify_all(&notifiers, &notice, None).await {
                    tracing::info!(notifier = %o.notifier, delivered = o.delivered, "outbound: limit notification");
                }
            });
        }
    }
    over.map_or(Answer::Dunno, Answer::Limit)
}

/// Starts an automatic containment of `x.account`, a place among the hour's taken first (so
/// that accounts exceeding at the same moment cannot pass the cap together).
fn start_auto_contain(shared: &Arc<Shared>, x: Exceeded) {
    let rails = shared.cfg.auto_contain.clone();
    let recent = {
        let mut a = shared.auto.lock().unwrap_or_else(|p| p.into_inner());
        let hour_ago = crate::time::unix_now() as i64 - 3600;
        a.0.retain(|_, t| *t >= hour_ago);
        let recent = a.0.len() + a.1;
        if recent < rails.max_per_hour && !rails.dry_run {
            a.1 += 1;
        }
        recent
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let took_place = recent < rails.max_per_hour && !rails.dry_run;
        let outcome = super::auto::auto_contain(&shared.full, &rails, recent, &x, &shared.attention).await;
        if took_place {
            let mut a = shared.auto.lock().unwrap_or_else(|p| p.into_inner());
            a.1 = a.1.saturating_sub(1);
            // counted now, whether or not the journal's own record of it was read yet
            if let AutoOutcome::Contained { incident } = &outcome {
                a.0.insert(incident.clone(), crate::time::unix_now() as i64);
            }
        }
        let counter = match outcome {
            AutoOutcome::Contained { .. } => &shared.auto_contained,
            _ => &shared.auto_not,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    });
}

/// A limit exceeded in words: counts, window, addresses, what Postfix was told.
fn limit_summary(x: &Exceeded) -> String {
    format!(
        "{} {} within {} s (limit {}): {} message(s) to {} recipient(s) from {}; Postfix told {:?}",
        x.count,
        x.counts.name().replace('_', " "),
        x.window_secs,
        x.max,
        x.messages,
        x.recipients,
        x.client_addresses.join(", "),
        x.action
    )
}

/// The notice of a limit exceeded: account, counts and addresses, never content.
fn limit_notice(x: &Exceeded) -> Notice {
    let summary = limit_summary(x);
    let mut n = Notice::new(
        NotifyEvent::SendingLimit,
        None,
        vec![NoticeUser::new(x.account.clone(), None, summary)],
    );
    n.details
        .push(format!("client addresses: {}", x.client_addresses.join(", ")));
    n
}

/// A bound listener.
enum Bound {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

async fn bind(a: &ListenAddress) -> Result<Bound, Error> {
    let fail = |e: std::io::Error| {
        Error::new(ErrorKind::Io, format!("outbound: cannot listen on {a}: {e}")).with_source(e)
    };
    match a {
        ListenAddress::Unix(p) => {
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()) {
                std::fs::remove_file(p).map_err(fail)?;
            }
            let l = tokio::net::UnixListener::bind(p).map_err(fail)?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o660)).map_err(fail)?;
            Ok(Bound::Unix(l))
        }
        ListenAddress::Tcp(s) => Ok(Bound::Tcp(tokio::net::TcpListener::bind(s).await.map_err(fail)?)),
    }
}

async fn accept_loop(shared: Arc<Shared>, l: Bound) -> Result<(), Error> {
    // the connections: aborted with this loop
    let mut conns = tokio::task::JoinSet::new();
    loop {
        // forget the connections that ended
        while conns.try_join_next().is_some() {}
        let accepted = match &l {
            Bound::Unix(u) => u.accept().await.map(|(s, _)| Box::new(s) as Box<dyn Stream>),
            Bound::Tcp(t) => t.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Box::new(s) as Box<dyn Stream>
            }),
        };
        match accepted {
            Ok(s) => {
                let conn = register(&shared);
                conns.spawn(serve_connection(shared.clone(), s, conn));
            }
            // out of descriptors and the like: wait a little, keep serving the others
            Err(e) => {
                tracing::warn!(error = %e, "outbound: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

fn now_ms(shared: &Shared) -> u64 {
    shared.started.elapsed().as_millis() as u64
}

/// Registers a new connection; at capacity, the one idle the longest is told to close.
fn register(shared: &Arc<Shared>) -> (u64, Arc<Conn>) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn {
        last_ms: AtomicU64::new(now_ms(shared)),
        close: tokio::sync::Notify::new(),
    });
    let mut conns = shared.conns.lock().unwrap_or_else(|p| p.into_inner());
    if conns.len() >= shared.cfg.max_connections.max(1) {
        let oldest = conns
            .iter()
            .min_by_key(|(_, c)| c.last_ms.load(Ordering::Relaxed))
            .map(|(k, _)| *k);
        if let Some(c) = oldest.and_then(|k| conns.remove(&k)) {
            c.close.notify_one();
        }
    }
    conns.insert(id, conn.clone());
    (id, conn)
}

async fn serve_connection(shared: Arc<Shared>, mut s: Box<dyn Stream>, (id, conn): (u64, Arc<Conn>)) {
    let why = connection_loop(&shared, &mut s, &conn).await;
    if let Err(why) = why {
        tracing::debug!(why, "outbound: connection closed");
    }
    shared.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
}

async fn connection_loop(shared: &Arc<Shared>, s: &mut Box<dyn Stream>, conn: &Conn) -> Result<(), String> {
    let idle = Duration::from_secs(shared.cfg.idle_timeout_secs.max(1));
    let whole = Duration::from_secs(shared.cfg.request_timeout_secs.max(1));
    let mut reader = RequestReader::new();
    let mut chunk = vec![0u8; 4096];
    let mut started: Option<Instant> = None;
    let mut out = String::new();
    loop {
        let wait = match started {
            Some(t) => whole.saturating_sub(t.elapsed()),
            None => idle,
        };
        let n = tokio::select! {
            r = tokio::time::timeout(wait, s.read(&mut chunk)) => match r {
                Err(_) if started.is_some() => return Err("a request did not arrive whole in time".into()),
                Err(_) => return Err("idle".into()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(n)) => n,
            },
            _ = conn.close.notified() => return Err("closed for a newer connection (max_connections)".into()),
        };
        conn.last_ms.store(now_ms(shared), Ordering::Relaxed);
        let take = n.min(MAX_REQUEST_BYTES + 1);
        reader.buffer().extend_from_slice(&chunk[..take]);
        out.clear();
        loop {
            match reader.next_request() {
                Ok(Some(req)) => {
                    let answer = decide(shared, &req);
                    let wire = answer.wire(shared);
                    // a message let through (DUNNO, or HOLD: accepted into the queue) is recorded
                    if req.at_end_of_message()
                        && !req.sasl_username.is_empty()
                        && (wire.starts_with("action=DUNNO") || wire.starts_with("action=HOLD"))
                    {
                        if let Some(r) = &shared.records {
                            r.add(super::records::MessageRecord {
                                time: crate::time::unix_now() as i64,
                                login: req.sasl_username.clone(),
                                client_address: req.client_address.clone(),
                                recipients: req.recipient_count.max(1),
                                queue_id: req.queue_id.clone(),
                            });
                        }
                    }
                    out.push_str(wire);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "outbound: protocol error; closing the connection");
                    return Err(e.to_string());
                }
            }
        }
        started = match (reader.has_partial(), started) {
            (true, Some(t)) => Some(t),
            (true, None) => Some(Instant::now()),
            (false, _) => None,
        };
        if !out.is_empty() {
            s.write_all(out.as_bytes()).await.map_err(|e| e.to_string())?;
        }
    }
}

/// Asks the policy service at `addr` about `req`, as Postfix would, and returns its verdict
/// (`cadenas outbound check`, and the revoke step's check that a contained account is refused).
pub async fn ask(addr: &ListenAddress, req: &PolicyRequest, timeout: Duration) -> Result<Verdict, Error> {
    let fail = |what: String| {
        Error::new(
            ErrorKind::RevokerUnreachable,
            format!("policy service {addr}: {what}"),
        )
    };
    let exchange = async {
        let mut s: Box<dyn Stream> = match addr {
            ListenAddress::Unix(p) => Box::new(
                tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| fail(e.to_string()))?,
            ),
            ListenAddress::Tcp(a) => Box::new(
                tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(|e| fail(e.to_string()))?,
            ),
        };
        s.write_all(req.to_wire().as_bytes())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        while !buf.ends_with(b"\n\n") {
            let n = s.read(&mut chunk).await.map_err(|e| fail(e.to_string()))?;
            if n == 0 || buf.len() > 4096 {
                return Err(fail("no complete answer".into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf);
        Verdict::from_wire(text.lines().next().unwrap_or("")).ok_or_else(|| {
            Error::new(
                ErrorKind::RevokerProtocol,
                format!("policy service {addr}: an answer that is not action=…"),
            )
        })
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("policy service {addr}: no answer in {timeout:?}"),
        )
    })?
}
