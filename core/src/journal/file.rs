//! The journal file: one writer thread with group commit, the hash chain, verify and read.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::{Event, Location, Record, GENESIS};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::time::rfc3339_millis_now;

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

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn io_err<E>(path: &Path, what: &str, e: E) -> Error
where
    E: std::fmt::Display + Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    Error::new(
        ErrorKind::Journal,
        format!("journal {}: {what}: {e}", path.display()),
    )
    .with_source(e)
}

pub(super) type Job = (Vec<(String, Event)>, oneshot::Sender<Result<(), Error>>);

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
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        // one open at a time in this process: two threads opening the same file share the
        // writer the first one starts
        let mut open = OPEN_FILES.lock().unwrap_or_else(|p| p.into_inner());
        let me = std::process::id();
        open.retain(|(pid, _, _), (w, _)| *pid == me && w.strong_count() > 0);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| io_err(path, "cannot open", e))?;
        let meta = file.metadata().map_err(|e| io_err(path, "stat", e))?;
        let id = (std::process::id(), meta.dev(), meta.ino());
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
        // The previous writer of this process may still be closing: wait a little for it.
        let mut tries = 0;
        while let Err(e) = file.try_lock() {
            tries += 1;
            if tries > 100 {
                return Err(io_err(path, "another writer holds it", e));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let (report, _) = scan(path, key.as_ref(), false)?;
        if let Some(bad) = &report.first_bad {
            return Err(tampered(&path.display(), bad));
        }
        if let Some(t) = report.torn_tail {
            file.set_len(t.offset)
                .and_then(|_| file.sync_data())
                .map_err(|e| io_err(path, "cutting off a torn last record", e))?;
            tracing::warn!(
                journal = %path.display(),
                line = t.line,
                "the journal's last record was cut by a crash mid-write; it was removed (its step is resumed)"
            );
        }
        let sink = FileSink {
            file,
            path: path.to_owned(),
            seq: report.records as u64,
            prev: report.head.clone(),
            key,
        };
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
        match location {
            Location::File(p) => Self::open_with_key(p, key),
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

/// The sealed lines of a batch of jobs, numbered from `seq` and chained from `prev`; returns
/// the lines and the new head.
pub(super) fn seal_batch(
    jobs: &[Job],
    seq: u64,
    prev: &str,
    key: Option<&Secret>,
) -> Result<(Vec<String>, String), serde_json::Error> {
    let mut lines = Vec::new();
    let (mut s, mut pv) = (seq, prev.to_owned());
    for (events, _) in jobs {
        for (incident, event) in events {
            let rec = Record {
                seq: s,
                prev: pv.clone(),
                time: rfc3339_millis_now(),
                incident: incident.clone(),
                event: event.clone(),
            };
            let (line, hash) = seal(&serde_json::to_string(&rec)?, key);
            pv = hash;
            s += 1;
            lines.push(line);
        }
    }
    Ok((lines, pv))
}

/// Where a writer thread puts batches: the file, or a database.
pub(super) trait Sink: Send {
    /// Writes one batch durably; returns the new head.
    fn write(&mut self, jobs: &[Job]) -> Result<String, Error>;
}

/// The file sink: appends, then fsyncs. On failure the file is cut back to its previous
/// length, so a half-written batch never breaks the chain for later records.
struct FileSink {
    file: File,
    path: PathBuf,
    seq: u64,
    prev: String,
    key: Option<Secret>,
}

impl Sink for FileSink {
    fn write(&mut self, jobs: &[Job]) -> Result<String, Error> {
        let (lines, head) = seal_batch(jobs, self.seq, &self.prev, self.key.as_ref())
            .map_err(|e| io_err(&self.path, "serialise", e))?;
        let mut buf = Vec::new();
        for l in &lines {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
        }
        let before = self.file.metadata().map(|m| m.len());
        if let Err(e) = self.file.write_all(&buf).and_then(|_| self.file.sync_data()) {
            if let Ok(len) = before {
                let _ = self.file.set_len(len);
            }
            return Err(io_err(&self.path, "write + fsync", e));
        }
        self.seq += lines.len() as u64;
        self.prev = head.clone();
        Ok(head)
    }
}

/// Where a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BadRecord {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records read (up to the first bad one).
    pub records: usize,
    /// SHA-256 of the last good line: keep it to pin the journal's end.
    pub head: String,
    /// The first bad record, if any.
    pub first_bad: Option<BadRecord>,
    /// Whether every record's MAC was checked (a key was given).
    pub macs_checked: bool,
    /// A last line cut by a crash in the middle of its write (not counted, not an error):
    /// the next writer cuts it off before appending.
    pub torn_tail: Option<TornTail>,
}

/// A last record cut by a crash in the middle of its write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TornTail {
    /// 1-based line number.
    pub line: usize,
    /// Where it starts in the file (the length the file is cut back to).
    pub offset: u64,
}

/// Recomputes the chain: every line must parse, have `seq` = its index and `prev` = the hash
/// of the line before. A missing file is an empty journal.
pub fn verify(path: &Path) -> Result<VerifyReport, Error> {
    scan(path, None, false).map(|(report, _)| report)
}

/// [`verify`], also checking every record's HMAC under `key` (`[journal] key_file`).
pub fn verify_with_key(path: &Path, key: Option<&Secret>) -> Result<VerifyReport, Error> {
    scan(path, key, false).map(|(report, _)| report)
}

/// Whether the line ending at `end` (counting its newline) is the file's last and has no newline.
fn line_is_last_and_unterminated(path: &Path, end: u64) -> Result<bool, Error> {
    let len = std::fs::metadata(path)
        .map_err(|e| io_err(path, "stat", e))?
        .len();
    Ok(end == len + 1)
}

/// `,"hash":"<64 hex>"` (and `,"mac":"<64 hex>"`) closing a sealed line.
const HASH_TAG: &str = ",\"hash\":\"";
const MAC_TAG: &str = "\",\"mac\":\"";

/// The line for a record's JSON `content`: the content with its own hash (and MAC) as the
/// last fields; returns the line and the hash (the next record's `prev`).
pub(super) fn seal(content: &str, key: Option<&Secret>) -> (String, String) {
    let hash = sha256_hex(content.as_bytes());
    let body = content.strip_suffix('}').unwrap_or(content);
    let line = match key.map(|k| mac_hex(k, content.as_bytes())) {
        Some(mac) => format!("{body}{HASH_TAG}{hash}{MAC_TAG}{mac}\"}}"),
        None => format!("{body}{HASH_TAG}{hash}\"}}"),
    };
    (line, hash)
}

/// A sealed line's content (the JSON without hash and MAC), its own hash and MAC.
pub(super) fn unseal(line: &str) -> Option<(String, &str, Option<&str>)> {
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let rest = line.strip_suffix("\"}")?;
    let (rest, mac) = match rest.rsplit_once(MAC_TAG) {
        Some((r, m)) if hex(m) => (r, Some(m)),
        _ => (rest, None),
    };
    let (body, hash) = rest.rsplit_once(HASH_TAG)?;
    hex(hash).then(|| (format!("{body}}}"), hash, mac))
}

fn mac_hex(key: &Secret, content: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    match Hmac::<Sha256>::new_from_slice(key.expose_secret()) {
        Ok(mut m) => {
            m.update(content);
            hex::encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Whether `mac` (hex) is the HMAC-SHA256 of `content` under `key`, compared in constant time.
fn mac_verifies(key: &Secret, content: &[u8], mac: &str) -> bool {
    use hmac::{Hmac, Mac};
    let (Ok(mut m), Ok(expected)) = (
        Hmac::<Sha256>::new_from_slice(key.expose_secret()),
        hex::decode(mac),
    ) else {
        return false;
    };
    m.update(content);
    m.verify_slice(&expected).is_ok()
}

/// One pass over the file: the chain's report, and the records that verified (the ones read
/// are the ones checked — no second read that could see another file). Keeps the records only
/// when asked (`keep`): a verify of 48 000 records must not hold them all in memory.
fn scan(path: &Path, key: Option<&Secret>, keep: bool) -> Result<(VerifyReport, Vec<Record>), Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((VerifyReport::empty(key.is_some()), Vec::new()))
        }
        Err(e) => return Err(io_err(path, "cannot read", e)),
    };
    let lines = BufReader::new(file)
        .split(b'\n')
        .map(|l| l.map_err(|e| io_err(path, "read", e)));
    // the last line, unterminated and unreadable: a write cut by a crash, not an edit (every
    // record is written whole with its newline)
    scan_lines(lines, key, keep, |end| line_is_last_and_unterminated(path, end))
}

impl VerifyReport {
    fn empty(macs_checked: bool) -> Self {
        Self {
            records: 0,
            head: GENESIS.to_owned(),
            first_bad: None,
            macs_checked,
            torn_tail: None,
        }
    }
}

/// Verifies a journal's lines in order (a file's, or a database's rows): every line must parse,
/// have `seq` = its index and `prev` = the hash of the line before, and its own hash (and MAC,
/// with a key) must match. `torn(end)`: whether an unreadable line ending at byte `end` is a
/// last line cut by a crash (files only; a database never holds half a row).
pub(super) fn scan_lines(
    lines: impl Iterator<Item = Result<Vec<u8>, Error>>,
    key: Option<&Secret>,
    keep: bool,
    torn: impl Fn(u64) -> Result<bool, Error>,
) -> Result<(VerifyReport, Vec<Record>), Error> {
    scan_lines_from(lines, key, keep, torn, 0, GENESIS)
}

/// [`scan_lines`] of lines that continue a chain whose first `seq` records end in `head`
/// (what a [`Tail`](super::Tail) reads after what it read before). `report.records` counts
/// the records of the whole chain; line numbers in `first_bad` too.
pub(super) fn scan_lines_from(
    lines: impl Iterator<Item = Result<Vec<u8>, Error>>,
    key: Option<&Secret>,
    keep: bool,
    torn: impl Fn(u64) -> Result<bool, Error>,
    seq: u64,
    head: &str,
) -> Result<(VerifyReport, Vec<Record>), Error> {
    let mut report = VerifyReport::empty(key.is_some());
    report.records = seq as usize;
    report.head = head.to_owned();
    let mut records = Vec::new();
    let mut offset: u64 = 0;
    for (i, line) in lines.enumerate() {
        let i = i + seq as usize;
        let line = line?;
        let start = offset;
        offset += line.len() as u64 + 1;
        let bad = |reason: String| Some(BadRecord { line: i + 1, reason });
        let rec: Record = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                if e.is_eof() && torn(offset)? {
                    report.torn_tail = Some(TornTail {
                        line: i + 1,
                        offset: start,
                    });
                    break;
                }
                report.first_bad = bad(format!("not a journal record ({e})"));
                break;
            }
        };
        if rec.seq != i as u64 {
            report.first_bad = bad(format!(
                "seq {} where {i} was expected (a record was removed or inserted)",
                rec.seq
            ));
            break;
        }
        if rec.prev != report.head {
            report.first_bad = bad(
                "prev does not match the previous line (a record was edited, removed or inserted)".into(),
            );
            break;
        }
        // a sealed record carries its own hash (and MAC): an edit is named on its own line
        let text = String::from_utf8_lossy(&line);
        let own = match unseal(&text) {
            Some((content, hash, mac)) => {
                if sha256_hex(content.as_bytes()) != hash {
                    report.first_bad =
                        bad("this record was edited: its content does not match its own hash".into());
                    break;
                }
                if let Some(k) = key {
                    match mac {
                        Some(m) if mac_verifies(k, content.as_bytes(), m) => {}
                        Some(_) => {
                            report.first_bad =
                                bad("the MAC does not verify: forged, or written with another key".into());
                            break;
                        }
                        None => {
                            report.first_bad = bad("no MAC: written without the journal key".into());
                            break;
                        }
                    }
                }
                hash.to_owned()
            }
            None if key.is_some() => {
                report.first_bad = bad("no MAC: written without the journal key".into());
                break;
            }
            // a record of an older writer: chained by the hash of the whole line
            None => sha256_hex(&line),
        };
        report.head = own;
        report.records += 1;
        if keep {
            records.push(rec);
        }
    }
    Ok((report, records))
}

/// The hash a line chains to (its own sealed hash, or the whole line's for older records).
pub(super) fn line_hash(line: &str) -> String {
    match unseal(line) {
        Some((_, hash, _)) => hash.to_owned(),
        None => sha256_hex(line.as_bytes()),
    }
}

/// [`verify`], with a broken chain as an [`ErrorKind::JournalTampered`] error.
pub fn verify_intact(path: &Path) -> Result<VerifyReport, Error> {
    let report = verify(path)?;
    if let Some(bad) = &report.first_bad {
        return Err(tampered(&path.display(), bad));
    }
    Ok(report)
}

/// Reads every record, verifying the chain as it goes; a broken chain is an error.
pub fn read(path: &Path) -> Result<Vec<Record>, Error> {
    read_with_key(path, None)
}

/// [`read`], also checking every record's MAC under `key`.
pub(super) fn read_with_key(path: &Path, key: Option<&Secret>) -> Result<Vec<Record>, Error> {
    let (report, records) = scan(path, key, true)?;
    if let Some(bad) = &report.first_bad {
        return Err(tampered(&path.display(), bad));
    }
    Ok(records)
}

pub(super) fn tampered(location: &dyn std::fmt::Display, bad: &BadRecord) -> Error {
    Error::new(
        ErrorKind::JournalTampered,
        format!(
            "journal {location} is broken at line {}: {}",
            bad.line, bad.reason
        ),
    )
}

/// The file's lines (a missing file: none).
pub(super) fn lines_of(path: &Path) -> Result<Vec<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(path, "cannot read", e)),
    }
}

/// Writes `lines` to the new file `to` (0600, never over an existing file), up to the first
/// bad one, fsynced; the report of their verification (without key: the MACs are copied, and
/// checked by a later `verify` with the key).
pub(super) fn export_lines(to: &Path, lines: Vec<String>) -> Result<VerifyReport, Error> {
    let (report, _) = scan_lines(
        lines.iter().map(|l| Ok(l.as_bytes().to_vec())),
        None,
        false,
        |_| Ok(false),
    )?;
    let mut file = crate::secret::create_private_file(to).map_err(|e| io_err(to, "cannot create", e))?;
    let mut buf = Vec::new();
    for l in lines.iter().take(report.records) {
        buf.extend_from_slice(l.as_bytes());
        buf.push(b'\n');
    }
    file.write_all(&buf)
        .and_then(|_| file.sync_all())
        .map_err(|e| io_err(to, "write + fsync", e))?;
    Ok(report)
}
