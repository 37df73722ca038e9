//! The journal file: one writer thread with group commit, the hash chain, verify and read.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::{Event, Record, GENESIS};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::time::rfc3339_millis_now;

/// Most records written per fsync.
const MAX_BATCH: usize = 512;

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

type Job = (Vec<(String, Event)>, oneshot::Sender<Result<(), Error>>);

/// An open journal: appends go through one writer thread that batches fsyncs. Clones share
/// the writer; when the last clone is dropped the writer thread is joined (and the file's
/// lock released) before `drop` returns — no thread outlives the journal (a PAM host may
/// unload the library right after).
#[derive(Clone)]
pub struct Journal {
    writer: Arc<Writer>,
    path: PathBuf,
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
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queued batches are written.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
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
    pub fn open_with_key(path: &Path, key: Option<Secret>) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| io_err(path, "cannot open", e))?;
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
            return Err(tampered(path, bad));
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
        let (tx, rx) = std_mpsc::channel::<Job>();
        let batches = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = batches.clone();
        let head = Arc::new(std::sync::Mutex::new(report.head.clone()));
        let head_w = head.clone();
        let p = path.to_owned();
        let mut seq = report.records as u64;
        let mut prev = report.head.clone();
        let thread = std::thread::Builder::new()
            .name("cadenas-journal".into())
            .spawn(move || {
                let mut file = file;
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let (res, s, pv) = write_batch(&mut file, &p, &jobs, seq, &prev, key.as_ref());
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if res.is_ok() {
                        seq = s;
                        *head_w.lock().unwrap_or_else(|p| p.into_inner()) = pv.clone();
                        prev = pv;
                    }
                    for (_, reply) in jobs {
                        let _ = reply.send(res.clone());
                    }
                }
            })
            .map_err(|e| io_err(path, "cannot start the writer", e))?;
        Ok(Self {
            writer: Arc::new(Writer {
                tx: Some(tx),
                thread: Some(thread),
                batches,
                head,
            }),
            path: path.to_owned(),
            torn_tail: report.torn_tail,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
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
        self.writer
            .tx
            .as_ref()
            .ok_or_else(|| io_err(&self.path, "append", "the writer stopped"))?
            .send((batch, tx))
            .map_err(|_| io_err(&self.path, "append", "the writer stopped"))?;
        rx.await
            .map_err(|_| io_err(&self.path, "append", "the writer stopped"))?
    }
}

/// Serialises and appends one batch, then fsyncs. On failure the file is cut back to its
/// previous length, so a half-written batch never breaks the chain for later records.
fn write_batch(
    file: &mut File,
    path: &Path,
    jobs: &[Job],
    seq: u64,
    prev: &str,
    key: Option<&Secret>,
) -> (Result<(), Error>, u64, String) {
    let mut buf = Vec::new();
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
            let content = match serde_json::to_string(&rec) {
                Ok(l) => l,
                Err(e) => return (Err(io_err(path, "serialise", e)), seq, prev.to_owned()),
            };
            let (line, hash) = seal(&content, key);
            pv = hash;
            s += 1;
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
    }
    let before = file.metadata().map(|m| m.len());
    let res = file.write_all(&buf).and_then(|_| file.sync_data());
    match res {
        Ok(()) => (Ok(()), s, pv),
        Err(e) => {
            if let Ok(len) = before {
                let _ = file.set_len(len);
            }
            (Err(io_err(path, "write + fsync", e)), seq, prev.to_owned())
        }
    }
}

/// Where a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

/// One pass over the file: the chain's report, and the records that verified (the ones read
/// are the ones checked — no second read that could see another file).
/// Reads the file once, verifying as it goes; keeps the records only when asked (`keep`): a
/// verify of 48 000 records must not hold them all in memory.
fn scan(path: &Path, key: Option<&Secret>, keep: bool) -> Result<(VerifyReport, Vec<Record>), Error> {
    let mut report = VerifyReport {
        records: 0,
        head: GENESIS.to_owned(),
        first_bad: None,
        macs_checked: key.is_some(),
        torn_tail: None,
    };
    let mut records = Vec::new();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((report, records)),
        Err(e) => return Err(io_err(path, "cannot read", e)),
    };
    let mut offset: u64 = 0;
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|e| io_err(path, "read", e))?;
        let start = offset;
        offset += line.len() as u64 + 1;
        let bad = |reason: String| Some(BadRecord { line: i + 1, reason });
        let rec: Record = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                // the last line, unterminated and unreadable: a write cut by a crash, not an
                // edit (every record is written whole with its newline)
                if e.is_eof() && line_is_last_and_unterminated(path, offset)? {
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
                        Some(m) if mac_hex(k, content.as_bytes()) == m => {}
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

/// [`verify`], with a broken chain as an [`ErrorKind::JournalTampered`] error.
pub fn verify_intact(path: &Path) -> Result<VerifyReport, Error> {
    let report = verify(path)?;
    if let Some(bad) = &report.first_bad {
        return Err(tampered(path, bad));
    }
    Ok(report)
}

/// Reads every record, verifying the chain as it goes; a broken chain is an error.
pub fn read(path: &Path) -> Result<Vec<Record>, Error> {
    let (report, records) = scan(path, None, true)?;
    if let Some(bad) = &report.first_bad {
        return Err(tampered(path, bad));
    }
    Ok(records)
}

fn tampered(path: &Path, bad: &BadRecord) -> Error {
    Error::new(
        ErrorKind::JournalTampered,
        format!(
            "journal {} is broken at line {}: {}",
            path.display(),
            bad.line,
            bad.reason
        ),
    )
}
