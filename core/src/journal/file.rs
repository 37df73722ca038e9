//! The journal file: its sink (append, fsync, cut back on failure), opening it locked, and
//! reading, verifying and exporting it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::chain::{scan_lines, tampered, VerifyReport};
use super::record::Record;
use super::sink::{seal_batch, Job, Sink};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

pub(super) fn io_err<E>(path: &Path, what: &str, e: E) -> Error
where
    E: std::fmt::Display + Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    Error::new(
        ErrorKind::Journal,
        format!("journal {}: {what}: {e}", path.display()),
    )
    .with_source(e)
}

/// The file sink: appends, then fsyncs. On failure the file is cut back to its previous
/// length, so a half-written batch never breaks the chain for later records.
pub(super) struct FileSink {
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

/// Opens (or creates, mode 0600, never through a symbolic link) the file to append to, and
/// its identity (device, inode).
pub(super) fn open_for_append(path: &Path) -> Result<(File, (u64, u64)), Error> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| io_err(path, "cannot open", e))?;
    let meta = file.metadata().map_err(|e| io_err(path, "stat", e))?;
    Ok((file, (meta.dev(), meta.ino())))
}

/// What the error of a journal file another writer holds says.
pub(super) const HELD: &str = "another writer holds it";

impl FileSink {
    /// The sink over `file`, once it holds the file's lock (waiting up to 5 s for another
    /// writer — or not at all, without `wait`), with the chain verified and a record torn by
    /// a crash cut off.
    pub(super) fn take(
        file: File,
        path: &Path,
        key: Option<Secret>,
        wait: bool,
    ) -> Result<(Self, VerifyReport), Error> {
        // The previous writer of this process may still be closing: wait a little for it.
        let mut tries = 0;
        while let Err(e) = file.try_lock() {
            tries += 1;
            if tries > 100 || !wait {
                return Err(io_err(path, HELD, e));
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
        Ok((sink, report))
    }
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

/// One pass over the file: the chain's report, and the records that verified (the ones read
/// are the ones checked — no second read that could see another file). Keeps the records only
/// when asked (`keep`): a verify of 48 000 records must not hold them all in memory.
fn scan(path: &Path, key: Option<&Secret>, keep: bool) -> Result<(VerifyReport, Vec<Record>), Error> {
    let mut records = Vec::new();
    let report = visit_path(path, key, false, &mut |rec, _| {
        if keep {
            records.push(rec);
        }
    })?;
    Ok((report, records))
}

/// Every record of the file in order to `visit`, read line by line (see
/// [`visit_lines`](super::chain::visit_lines): after a break, what still parses, unproven).
pub(super) fn visit_file(
    path: &Path,
    key: Option<&Secret>,
    visit: &mut dyn FnMut(Record, bool),
) -> Result<VerifyReport, Error> {
    visit_path(path, key, true, visit)
}

/// The file's lines, read as a stream, through [`visit_lines`](super::chain::visit_lines). A
/// missing file is an empty journal.
fn visit_path(
    path: &Path,
    key: Option<&Secret>,
    past_break: bool,
    visit: &mut dyn FnMut(Record, bool),
) -> Result<VerifyReport, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VerifyReport::empty(key.is_some())),
        Err(e) => return Err(io_err(path, "cannot read", e)),
    };
    let lines = BufReader::with_capacity(1 << 20, file)
        .split(b'\n')
        .map(|l| l.map_err(|e| io_err(path, "read", e)));
    // the last line, unterminated and unreadable: a write cut by a crash, not an edit (every
    // record is written whole with its newline)
    super::chain::visit_lines(
        lines,
        key,
        &|end| line_is_last_and_unterminated(path, end),
        0,
        super::chain::GENESIS,
        past_break,
        visit,
    )
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
