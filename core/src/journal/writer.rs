//! An open journal: one writer thread per journal with group commit, shared by every open of
//! the same file in the process, and never joined in a forked child.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::chain::{sha256_hex, TornTail};
use super::file::{io_err, FileSink};
use super::location::Location;
use super::record::{Event, Record};
use super::sink::{Job, Sink};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// Most records written per fsync.
const MAX_BATCH: usize = 512;

/// The writer threads of journals dropped in a forked child (the parent's threads: never
/// joined there).
static THREADS_OF_THE_PARENT: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// The journal files open in this process, by (process, device, inode): their writer, and a
/// hash of the record key it seals with. The process id keeps a forked child from sharing
/// its parent's writer (whose thread the child does not have).
type OpenFiles = std::collections::BTreeMap<(u32, u64, u64), (std::sync::Weak<Writer>, Option<String>)>;
static OPEN_FILES: std::sync::Mutex<OpenFiles> = std::sync::Mutex::new(std::collections::BTreeMap::new());

/// An open journal: appends go through one writer thread that batches fsyncs. Clones share
/// the writer; when the last clone is dropped the writer thread is joined (and the file's
/// lock released) before `drop` returns — no thread outlives the journal (a PAM host may
/// unload the library right after).
#[derive(Clone)]
pub struct Journal {
    writer: Arc<Writer>,
    location: Location,
    torn_tail: Option<TornTail>,
}

/// The writer thread and the channel to it.
struct Writer {
    tx: Option<std_mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Batches written (each one write + one fsync), for the group-commit test.
    batches: Arc<std::sync::atomic::AtomicU64>,
    /// The hash of the last record on disk.
    head: Arc<std::sync::Mutex<String>>,
    /// The process that started the thread (a forked child has no such thread to join).
    pid: u32,
}

impl Writer {
    /// Starts the writer thread over `sink`: it takes every queued job (up to [`MAX_BATCH`])
    /// as one batch, so concurrent appends share one durable write.
    fn start(mut sink: Box<dyn Sink>, head: String) -> std::io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let batches = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = batches.clone();
        let head = Arc::new(std::sync::Mutex::new(head));
        let head_w = head.clone();
        let thread = std::thread::Builder::new()
            .name("cadenas-journal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let res = sink.write(&jobs).map(|h| {
                        *head_w.lock().unwrap_or_else(|p| p.into_inner()) = h;
                    });
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    for (_, reply) in jobs {
                        let _ = reply.send(res.clone());
                    }
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            batches,
            head,
            pid: std::process::id(),
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queued batches are written.
        self.tx.take();
        if std::process::id() != self.pid {
            // a forked child: the thread is the parent's; never wait for it here (kept
            // reachable, for leak checkers)
            if let Some(t) = self.thread.take() {
                THREADS_OF_THE_PARENT
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(t);
            }
            return;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("location", &self.location.to_string())
            .finish()
    }
}

impl Journal {
    /// Opens (or creates, mode 0600) the journal at `path`, verifies the existing chain,
    /// and locks the file for this writer. A broken chain refuses to open, and so does a
    /// symbolic link (`O_NOFOLLOW`: a journal written as root never follows one).
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with_key(path, None)
    }

    /// [`open`](Self::open), authenticating every record with HMAC-SHA256 under `key` (the
    /// `[journal] key_file`): a forger who rewrites the whole file cannot recompute the MACs.
    /// Existing records are verified with the key.
    ///
    /// In one process, every open of the same file shares one writer (responders made one per
    /// thread append to one chain); another process waits for the file's lock (up to 5 s).
    pub fn open_with_key(path: &Path, key: Option<Secret>) -> Result<Self, Error> {
        Self::open_file(path, key, true)
    }

    /// [`open_with_key`](Self::open_with_key); without `wait`, a file another process holds
    /// is an error at once.
    fn open_file(path: &Path, key: Option<Secret>, wait: bool) -> Result<Self, Error> {
        // one open at a time in this process: two threads opening the same file share the
        // writer the first one starts
        let mut open = OPEN_FILES.lock().unwrap_or_else(|p| p.into_inner());
        let me = std::process::id();
        open.retain(|(pid, _, _), (w, _)| *pid == me && w.strong_count() > 0);
        let (file, (dev, ino)) = super::file::open_for_append(path)?;
        let id = (me, dev, ino);
        let key_id = key.as_ref().map(|k| sha256_hex(k.expose_secret()));
        if let Some((w, k)) = open.get(&id) {
            if let Some(writer) = w.upgrade() {
                if *k != key_id {
                    return Err(io_err(
                        path,
                        "already open in this process",
                        "with another record key",
                    ));
                }
                return Ok(Self {
                    writer,
                    location: Location::File(path.to_owned()),
                    torn_tail: None,
                });
            }
        }
        let (sink, report) = FileSink::take(file, path, key, wait)?;
        let writer = Writer::start(Box::new(sink), report.head.clone())
            .map_err(|e| io_err(path, "cannot start the writer", e))?;
        let writer = Arc::new(writer);
        open.insert(id, (Arc::downgrade(&writer), key_id));
        Ok(Self {
            writer,
            location: Location::File(path.to_owned()),
            torn_tail: report.torn_tail,
        })
    }

    /// Opens the journal at `location` (a file, or PostgreSQL), with the record key if any.
    pub fn open_at(location: &Location, key: Option<Secret>) -> Result<Self, Error> {
        Self::open_at_waiting(location, key, true)
    }

    /// [`open_at`](Self::open_at) without waiting: `None` at once when another process holds
    /// the journal file (a containment running) — for a service that tries again later.
    pub(crate) fn open_at_now(location: &Location, key: Option<Secret>) -> Result<Option<Self>, Error> {
        match Self::open_at_waiting(location, key, false) {
            Ok(j) => Ok(Some(j)),
            Err(e) if e.message().contains(super::file::HELD) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_at_waiting(location: &Location, key: Option<Secret>, wait: bool) -> Result<Self, Error> {
        match location {
            Location::File(p) => Self::open_file(p, key, wait),
            Location::Postgres(target) => {
                let (sink, head) = super::postgres::PgSink::open(target, key)?;
                let writer = Writer::start(Box::new(sink), head).map_err(|e| {
                    Error::new(
                        ErrorKind::Journal,
                        format!("journal {}: cannot start the writer: {e}", target.url()),
                    )
                })?;
                Ok(Self {
                    writer: Arc::new(writer),
                    location: location.clone(),
                    torn_tail: None,
                })
            }
        }
    }

    /// Where the journal is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Every record, verifying the chain as it goes (a broken chain is an error). With a
    /// database, what every host appended so far.
    pub fn records(&self) -> Result<Vec<Record>, Error> {
        self.location.records(None)
    }

    /// The file, when the journal is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// SHA-256 of the last record on disk (what `verify` would give as the head), without
    /// reading the file.
    pub fn head(&self) -> String {
        self.writer.head.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Batches written so far (one write and one fsync each): fewer than the appends when
    /// concurrent appends shared an fsync.
    pub fn batches_written(&self) -> u64 {
        self.writer.batches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The torn last record cut off when this journal was opened, if there was one.
    pub fn torn_tail(&self) -> Option<TornTail> {
        self.torn_tail
    }

    /// Appends records and returns once they are on disk (fsynced). Concurrent callers
    /// share one fsync (group commit).
    pub async fn append(&self, incident: &str, events: Vec<Event>) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        let batch = events.into_iter().map(|e| (incident.to_owned(), e)).collect();
        let stopped = || {
            Error::new(
                ErrorKind::Journal,
                format!("journal {}: append: the writer stopped", self.location),
            )
        };
        self.writer
            .tx
            .as_ref()
            .ok_or_else(stopped)?
            .send((batch, tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}
