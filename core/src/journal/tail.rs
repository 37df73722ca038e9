//! Following a journal as it grows: the records appended since the last read, the chain (and
//! MACs) verified from where the last read stopped. The outbound policy service learns
//! containments and releases this way, without a directory search per request.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::chain::{scan_lines_from, tampered, GENESIS};
use super::location::Location;
use super::record::Record;
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// A reader of a journal's new records. The first [`read_new`](Self::read_new) returns every
/// record so far; each later one, those appended since. A record that breaks the chain is an
/// [`ErrorKind::JournalTampered`] error (and the tail stays where it was); a file that shrank
/// or was replaced is an [`ErrorKind::Journal`] error.
///
/// ```no_run
/// # fn demo() -> Result<(), cadenas::Error> {
/// use cadenas::journal::{Location, Tail};
///
/// let mut tail = Tail::new(Location::File("/var/lib/cadenas/journal.jsonl".into()), None);
/// for record in tail.read_new()? {
///     println!("{} {}", record.seq, record.incident);
/// }
/// # Ok(()) }
/// ```
pub struct Tail {
    location: Location,
    key: Option<Secret>,
    /// Records read so far (the next one's `seq`).
    seq: u64,
    /// Hash of the last record read.
    head: String,
    /// File: bytes read so far (complete lines only), and the file's identity.
    offset: u64,
    file_id: Option<(u64, u64)>,
    /// Database: the connection kept between reads.
    pg: Option<crate::db::PgClient>,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("location", &self.location.to_string())
            .field("records_read", &self.seq)
            .finish()
    }
}

impl Tail {
    /// A tail of the journal at `location`, verifying MACs with `key` when given.
    pub fn new(location: Location, key: Option<Secret>) -> Self {
        Self {
            location,
            key,
            seq: 0,
            head: GENESIS.to_owned(),
            offset: 0,
            file_id: None,
            pg: None,
        }
    }

    /// Records read so far.
    pub fn records_read(&self) -> u64 {
        self.seq
    }

    /// The hash of the last record read ([`GENESIS`] before any).
    pub fn head(&self) -> &str {
        &self.head
    }

    /// The records appended since the last call (all of them the first time). A record being
    /// written (no end of line yet) waits for the next call. Blocking (file or database I/O).
    pub fn read_new(&mut self) -> Result<Vec<Record>, Error> {
        match self.location.clone() {
            Location::File(p) => self.read_file(&p),
            Location::Postgres(t) => {
                let lines = super::postgres::lines_from(&t, &mut self.pg, self.seq)?;
                self.take(lines.into_iter().map(String::into_bytes).collect(), 0)
            }
        }
    }

    fn read_file(&mut self, path: &Path) -> Result<Vec<Record>, Error> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let err = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::Journal,
                format!("journal {}: {what}: {e}", path.display()),
            )
            .with_source(e)
        };
        let mut f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(f) => f,
            // no journal yet: nothing contained yet
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.seq == 0 => return Ok(Vec::new()),
            Err(e) => return Err(err("cannot open", e)),
        };
        let meta = f.metadata().map_err(|e| err("stat", e))?;
        let id = (meta.dev(), meta.ino());
        if self.file_id.is_some_and(|old| old != id) || meta.len() < self.offset {
            // another file (restored, copied back): the same journal if its first records
            // are the ones read so far — then go on after them
            return self.read_again(path, id);
        }
        self.file_id = Some(id);
        if meta.len() == self.offset {
            return Ok(Vec::new());
        }
        f.seek(SeekFrom::Start(self.offset)).map_err(|e| err("seek", e))?;
        let mut buf = Vec::with_capacity((meta.len() - self.offset) as usize);
        f.read_to_end(&mut buf).map_err(|e| err("read", e))?;
        // complete lines only: a record being written is read next time
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let lines = buf[..end].split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        self.take(lines, end as u64 + 1)
    }

    /// Reads the file at `path` (identity `id`) from its start: the records after those read
    /// so far when it begins with them (the same chain up to the same head), else an error.
    fn read_again(&mut self, path: &Path, id: (u64, u64)) -> Result<Vec<Record>, Error> {
        let mut fresh = Tail::new(self.location.clone(), self.key.clone());
        let all = fresh.read_file(path)?;
        let same = fresh.seq >= self.seq
            && (self.seq == 0
                || all
                    .get(self.seq as usize)
                    .map_or(fresh.head == self.head, |r| r.prev == self.head));
        if !same {
            return Err(Error::new(
                ErrorKind::Journal,
                format!(
                    "journal {}: the file was replaced by one that does not begin with the {} records \
                     read so far; restart to read it from the start",
                    path.display(),
                    self.seq
                ),
            ));
        }
        let skip = self.seq as usize;
        (self.seq, self.head, self.offset) = (fresh.seq, fresh.head, fresh.offset);
        self.file_id = Some(id);
        Ok(all.into_iter().skip(skip).collect())
    }

    /// Verifies `lines` as the continuation of what was read, then moves past them.
    fn take(&mut self, lines: Vec<Vec<u8>>, bytes: u64) -> Result<Vec<Record>, Error> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let (report, records) = scan_lines_from(
            lines.into_iter().map(Ok),
            self.key.as_ref(),
            true,
            |_| Ok(false),
            self.seq,
            &self.head,
        )?;
        if let Some(bad) = &report.first_bad {
            return Err(tampered(&self.location.to_string(), bad));
        }
        self.seq = report.records as u64;
        self.head = report.head;
        self.offset += bytes;
        Ok(records)
    }

    /// The journal file, when it is one.
    pub fn path(&self) -> Option<PathBuf> {
        match &self.location {
            Location::File(p) => Some(p.clone()),
            Location::Postgres(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::intent;
    use crate::journal::Journal;

    #[tokio::test]
    async fn a_tail_reads_what_was_appended_since_and_catches_an_edit_behind_it() {
        let p = std::env::temp_dir().join(format!("cadenas-tail-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let mut tail = Tail::new(Location::File(p.clone()), None);
        assert!(tail.read_new().expect("no file yet").is_empty());
        let j = Journal::open(&p).expect("open");
        j.append("INC", vec![intent("a"), intent("b")])
            .await
            .expect("append");
        let got = tail.read_new().expect("read");
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 1]);
        assert!(tail.read_new().expect("again").is_empty());
        j.append("INC", vec![intent("c")]).await.expect("append");
        let got = tail.read_new().expect("read");
        assert_eq!((got.len(), got[0].seq), (1, 2));
        assert_eq!(tail.head(), j.head());

        // half a record (a writer mid-write) waits for its end of line
        drop(j);
        let text = std::fs::read_to_string(&p).expect("read");
        let full = text.clone();
        let last = text.lines().last().expect("line").to_owned();
        std::fs::write(&p, format!("{text}{}", &last[..10])).expect("write");
        assert!(tail.read_new().expect("partial").is_empty());

        // a line appended that does not chain is refused, and nothing moves
        std::fs::write(&p, format!("{full}{last}\n")).expect("write");
        let e = tail.read_new().expect_err("a replayed line");
        assert_eq!(e.kind(), ErrorKind::JournalTampered, "{e}");
        assert_eq!(tail.records_read(), 3);

        // the same journal copied back in place (another file): read on after what was read
        std::fs::write(&p, &full).expect("write");
        let copy = p.with_extension("copy");
        std::fs::write(&copy, &full).expect("copy");
        std::fs::rename(&copy, &p).expect("replace");
        assert!(tail.read_new().expect("the same journal").is_empty());
        // a shortened or different file is said, not silently re-read
        std::fs::write(&p, "").expect("truncate");
        assert_eq!(tail.read_new().expect_err("shrank").kind(), ErrorKind::Journal);
        std::fs::remove_file(&p).ok();
    }
}
