//! Following a log file as it is written, across both kinds of rotation, from a position kept
//! elsewhere (the watcher's state): a restart neither misses nor repeats a line.
//!
//! - **rename and create** (logrotate's default): the path names a new file. The rest of the
//!   old one is read first — through the handle kept open, or, after a restart, from the file
//!   in the same directory that still has the old inode (`dovecot.log.1`) — then the new one
//!   from its start.
//! - **copytruncate**: the same file, shorter than the position — or already written past it
//!   again, which its first line tells (a hash of it is part of the position): read from its
//!   start.
//!
//! Only whole lines are returned (a line still being written waits for its newline). A line
//! longer than [`MAX_LINE`] is returned cut, marked; bytes that are not UTF-8 are replaced.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};

/// The longest line returned whole; a longer one is cut there (and marked).
pub const MAX_LINE: usize = 64 * 1024;

/// Most bytes read from one file per [`Follower::read_new`].
const CHUNK: usize = 4 * 1024 * 1024;

/// Where a file was read up to: its inode, the offset after the last whole line, and a hash
/// of its first line (0: not known yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// The file's inode.
    pub inode: u64,
    /// Bytes read (whole lines only).
    pub offset: u64,
    /// FNV-1a of the file's first line (up to 256 bytes), once it was whole: a file truncated
    /// and written past the offset again has another.
    pub head: u64,
}

/// The hash of `file`'s first line (up to 256 bytes; 0 while it has no newline yet).
fn head_of(file: &File) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 256];
    let n = file.read_at(&mut buf, 0)?;
    let first = match buf[..n].iter().position(|&b| b == b'\n') {
        Some(i) => &buf[..i],
        None if n == buf.len() => &buf[..],
        None => return Ok(0),
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in first {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    Ok(h.max(1))
}

/// One line read, and the position after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The text (without its newline; cut at [`MAX_LINE`]).
    pub text: String,
    /// The line was longer than [`MAX_LINE`].
    pub cut: bool,
}

/// A follower of one log file.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    pos: Option<Position>,
    /// The file read, kept open: after a rename its rest is still readable.
    file: Option<File>,
    /// The last read stopped at its size limit: more is written already.
    more: bool,
}

fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("log {}: {what}: {e}", path.display())).with_source(e)
}

impl Follower {
    /// A follower of `path`, from `pos` (the state kept from an earlier run), or — without one
    /// — from the file's current end (`from_start`: its start).
    pub fn new(path: PathBuf, pos: Option<Position>, from_start: bool) -> Result<Self, Error> {
        let pos = match pos {
            Some(p) => Some(p),
            None => match std::fs::metadata(&path) {
                Ok(m) => Some(Position {
                    inode: m.ino(),
                    offset: if from_start { 0 } else { m.len() },
                    head: match (from_start, File::open(&path)) {
                        (false, Ok(f)) => head_of(&f).unwrap_or(0),
                        _ => 0,
                    },
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io(&path, "cannot stat", e)),
            },
        };
        Ok(Self {
            path,
            pos,
            file: None,
            more: false,
        })
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the last [`read_new`](Self::read_new) stopped at its size limit (4 MiB): more
    /// lines are written already.
    pub fn has_more(&self) -> bool {
        self.more
    }

    /// Where it was read up to (`None`: the file did not exist yet).
    pub fn position(&self) -> Option<Position> {
        self.pos
    }

    /// The whole lines written since the last read, in order, and moves the position past
    /// them. A missing file is no line (it may come back).
    pub fn read_new(&mut self) -> Result<Vec<Line>, Error> {
        self.more = false;
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.path, "cannot stat", e)),
        };
        let mut out = Vec::new();
        match self.pos {
            Some(p) if p.inode != meta.ino() => {
                // renamed away: the rest of the old file, then the new one from its start
                if let Some(mut old) = self.old_file(p.inode)? {
                    let mut pos = p;
                    read_lines(&mut old, &mut pos, &self.path, &mut out)?;
                }
                self.file = None;
                self.pos = Some(Position {
                    inode: meta.ino(),
                    ..Position::default()
                });
            }
            Some(p) if meta.len() < p.offset => {
                // copied and truncated: from the start
                self.pos = Some(Position {
                    inode: p.inode,
                    ..Position::default()
                });
            }
            Some(_) => {}
            None => {
                self.pos = Some(Position {
                    inode: meta.ino(),
                    ..Position::default()
                });
            }
        }
        if self.file.is_none() {
            self.file = Some(File::open(&self.path).map_err(|e| io(&self.path, "cannot open", e))?);
        }
        if let (Some(file), Some(pos)) = (self.file.as_ref(), self.pos.as_mut()) {
            // copied, truncated and written past the offset again before this read: its
            // first line is another
            if pos.offset > 0 && pos.head != 0 {
                let now = head_of(file).map_err(|e| io(&self.path, "cannot read", e))?;
                if now != pos.head {
                    *pos = Position {
                        inode: pos.inode,
                        ..Position::default()
                    };
                }
            }
        }
        if let (Some(file), Some(pos)) = (self.file.as_mut(), self.pos.as_mut()) {
            // the handle may be of a file renamed since it was opened: only read it for the
            // inode the position names
            let ino = file
                .metadata()
                .map_err(|e| io(&self.path, "cannot stat", e))?
                .ino();
            if ino == pos.inode {
                self.more = read_lines(file, pos, &self.path, &mut out)?;
                if pos.head == 0 && pos.offset > 0 {
                    pos.head = head_of(file).map_err(|e| io(&self.path, "cannot read", e))?;
                }
            } else {
                self.file = None;
            }
        }
        Ok(out)
    }

    /// The old file of inode `inode`: the handle kept open, or (after a restart) the file of
    /// that inode in the same directory (`dovecot.log.1`).
    fn old_file(&mut self, inode: u64) -> Result<Option<File>, Error> {
        if let Some(f) = self.file.take() {
            if f.metadata().map(|m| m.ino()).ok() == Some(inode) {
                return Ok(Some(f));
            }
        }
        let Some(dir) = self.path.parent() else {
            return Ok(None);
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let entries = std::fs::read_dir(dir).map_err(|e| io(dir, "cannot list", e))?;
        for entry in entries.flatten() {
            if entry.metadata().map(|m| m.ino()).ok() == Some(inode) {
                return File::open(entry.path())
                    .map(Some)
                    .map_err(|e| io(&entry.path(), "cannot open", e));
            }
        }
        Ok(None)
    }
}

/// Reads the whole lines of `file` from `pos` (at most [`CHUNK`] bytes), appends them to
/// `out`, and moves `pos` past them; whether the read stopped at [`CHUNK`].
fn read_lines(file: &mut File, pos: &mut Position, path: &Path, out: &mut Vec<Line>) -> Result<bool, Error> {
    file.seek(SeekFrom::Start(pos.offset))
        .map_err(|e| io(path, "cannot seek", e))?;
    let mut buf = Vec::new();
    file.take(CHUNK as u64)
        .read_to_end(&mut buf)
        .map_err(|e| io(path, "cannot read", e))?;
    let mut start = 0;
    while start < buf.len() {
        match buf[start..].iter().position(|&b| b == b'\n') {
            Some(n) => {
                out.push(line(&buf[start..start + n]));
                start += n + 1;
            }
            // no newline yet: wait for it, unless the line is already too long to keep
            None if buf.len() - start > MAX_LINE => {
                out.push(line(&buf[start..]));
                start = buf.len();
            }
            None => break,
        }
    }
    pos.offset += start as u64;
    Ok(buf.len() == CHUNK)
}

fn line(bytes: &[u8]) -> Line {
    let cut = bytes.len() > MAX_LINE;
    let bytes = &bytes[..bytes.len().min(MAX_LINE)];
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    Line {
        text: String::from_utf8_lossy(bytes).into_owned(),
        cut,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cadenas-follow-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("append");
    }

    fn texts(lines: Vec<Line>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn whole_lines_only_then_the_rest_once_written() {
        let d = dir("whole");
        let log = d.join("dovecot.log");
        append(&log, "one\ntwo\nthr");
        let mut f = Follower::new(log.clone(), None, true).expect("follower");
        assert_eq!(texts(f.read_new().expect("read")), ["one", "two"]);
        assert!(f.read_new().expect("read").is_empty());
        append(&log, "ee\n");
        assert_eq!(texts(f.read_new().expect("read")), ["three"]);
    }

    #[test]
    fn rename_and_create_reads_the_old_files_rest_then_the_new_one() {
        let d = dir("rename");
        let log = d.join("dovecot.log");
        append(&log, "a\n");
        let mut f = Follower::new(log.clone(), None, true).expect("follower");
        assert_eq!(texts(f.read_new().expect("read")), ["a"]);
        append(&log, "b\n");
        std::fs::rename(&log, d.join("dovecot.log.1")).expect("rotate");
        append(&log, "c\n");
        assert_eq!(texts(f.read_new().expect("read")), ["b", "c"]);
        // after a restart (no handle kept): the rotated file is found by its inode
        append(&log, "d\n");
        let pos = f.position();
        std::fs::rename(&log, d.join("dovecot.log.1")).expect("rotate again");
        append(&log, "e\n");
        let mut again = Follower::new(log.clone(), pos, false).expect("follower");
        assert_eq!(texts(again.read_new().expect("read")), ["d", "e"]);
    }

    #[test]
    fn copytruncate_starts_over_and_a_missing_file_is_no_line() {
        let d = dir("truncate");
        let log = d.join("dovecot.log");
        append(&log, "a\nb\n");
        let mut f = Follower::new(log.clone(), None, true).expect("follower");
        assert_eq!(f.read_new().expect("read").len(), 2);
        std::fs::write(&log, "").expect("truncate");
        append(&log, "c\n");
        assert_eq!(texts(f.read_new().expect("read")), ["c"]);
        std::fs::remove_file(&log).expect("rm");
        assert!(f.read_new().expect("read").is_empty());
        append(&log, "d\n");
        assert_eq!(texts(f.read_new().expect("read")), ["d"]);
    }

    #[test]
    fn a_truncation_written_past_the_offset_before_the_read_is_still_seen() {
        let d = dir("truncate-past");
        let log = d.join("dovecot.log");
        append(&log, "08:00 first\n08:01 second\n");
        let mut f = Follower::new(log.clone(), None, true).expect("follower");
        assert_eq!(f.read_new().expect("read").len(), 2);
        // copied away and cut, then written on past the old offset before the next read
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .and_then(|h| h.set_len(0))
            .expect("truncate");
        append(&log, "09:00 third, a longer line\n09:01 fourth\n");
        assert_eq!(
            texts(f.read_new().expect("read")),
            ["09:00 third, a longer line", "09:01 fourth"]
        );
        // and the position carries the hash over a restart
        let pos = f.position().expect("pos");
        assert_ne!(pos.head, 0);
        std::fs::write(&log, "").expect("truncate");
        append(&log, "10:00 fifth and a long line, longer than before\n");
        let mut again = Follower::new(log.clone(), Some(pos), false).expect("again");
        assert_eq!(
            texts(again.read_new().expect("read")),
            ["10:00 fifth and a long line, longer than before"]
        );
    }

    #[test]
    fn a_read_stops_at_its_size_limit_and_says_more_is_there() {
        let d = dir("more");
        let log = d.join("dovecot.log");
        let line = format!("{}\n", "y".repeat(99));
        append(&log, &line.repeat(5 * 1024 * 1024 / 100));
        let mut f = Follower::new(log.clone(), None, true).expect("follower");
        let first = f.read_new().expect("read");
        assert!(f.has_more() && first.len() < 5 * 1024 * 1024 / 100);
        let rest = f.read_new().expect("read");
        assert!(!f.has_more());
        assert_eq!(first.len() + rest.len(), 5 * 1024 * 1024 / 100);
    }

    #[test]
    fn a_huge_line_is_cut_and_binary_is_replaced_never_a_panic() {
        let d = dir("huge");
        let log = d.join("dovecot.log");
        let huge = "x".repeat(1024 * 1024);
        append(&log, &format!("{huge}\n"));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(b"\xff\xfe\x00bin\n"))
            .expect("binary");
        let mut f = Follower::new(log.clone(), None, true).expect("follower");
        let lines = f.read_new().expect("read");
        assert_eq!(lines.len(), 2);
        assert!(lines[0].cut && lines[0].text.len() == MAX_LINE);
        assert!(!lines[1].cut && lines[1].text.ends_with("bin"));
    }
}
