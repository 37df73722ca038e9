//! The hash chain, independent of where the lines are kept: a record's line is its JSON
//! with its own SHA-256 (and HMAC-SHA256 under the journal key) as the last fields, and the
//! next record's `prev` is that hash. Sealing, unsealing, and verifying lines in order.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::record::Record;
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct BadRecord {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// The result of [`verify`](super::verify).
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

impl VerifyReport {
    pub(super) fn empty(macs_checked: bool) -> Self {
        Self {
            records: 0,
            head: GENESIS.to_owned(),
            first_bad: None,
            macs_checked,
            torn_tail: None,
        }
    }
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
    let mut records = Vec::new();
    let report = visit_lines(lines, key, &torn, seq, head, false, &mut |rec, _| {
        if keep {
            records.push(rec);
        }
    })?;
    Ok((report, records))
}

/// Verifies lines in order, giving each record that verified to `visit` with `true`; with
/// `past_break`, the records after the first bad line (that line included, when it parses)
/// go on to `visit` with `false` instead of ending the read — what a report of a broken
/// journal still shows, marked unproven. Nothing is kept here: memory stays flat however long
/// the journal.
pub(super) fn visit_lines(
    lines: impl Iterator<Item = Result<Vec<u8>, Error>>,
    key: Option<&Secret>,
    torn: &dyn Fn(u64) -> Result<bool, Error>,
    seq: u64,
    head: &str,
    past_break: bool,
    visit: &mut dyn FnMut(Record, bool),
) -> Result<VerifyReport, Error> {
    let mut report = VerifyReport::empty(key.is_some());
    report.records = seq as usize;
    report.head = head.to_owned();
    let mut offset: u64 = 0;
    for (i, line) in lines.enumerate() {
        let i = i + seq as usize;
        let line = line?;
        let start = offset;
        offset += line.len() as u64 + 1;
        let parsed = serde_json::from_slice::<Record>(&line);
        if report.first_bad.is_some() {
            // past the break: what still parses, unproven
            if let Ok(rec) = parsed {
                visit(rec, false);
            }
            continue;
        }
        let bad = |reason: String| Some(BadRecord { line: i + 1, reason });
        let rec = match parsed {
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
                if past_break {
                    continue;
                }
                break;
            }
        };
        match check_line(&rec, &line, i, &report.head, key) {
            Ok(own) => {
                report.head = own;
                report.records += 1;
                visit(rec, true);
            }
            Err(reason) => {
                report.first_bad = bad(reason);
                if !past_break {
                    break;
                }
                visit(rec, false);
            }
        }
    }
    Ok(report)
}

/// A parsed line's place in the chain: its own hash when it verifies (`seq` = its index `i`,
/// `prev` = `head`, its hash and MAC), else why not.
fn check_line(
    rec: &Record,
    line: &[u8],
    i: usize,
    head: &str,
    key: Option<&Secret>,
) -> Result<String, String> {
    if rec.seq != i as u64 {
        return Err(format!(
            "seq {} where {i} was expected (a record was removed or inserted)",
            rec.seq
        ));
    }
    if rec.prev != head {
        return Err(
            "prev does not match the previous line (a record was edited, removed or inserted)".into(),
        );
    }
    // a sealed record carries its own hash (and MAC): an edit is named on its own line
    let text = String::from_utf8_lossy(line);
    match unseal(&text) {
        Some((content, hash, mac)) => {
            if sha256_hex(content.as_bytes()) != hash {
                return Err("this record was edited: its content does not match its own hash".into());
            }
            if let Some(k) = key {
                match mac {
                    Some(m) if mac_verifies(k, content.as_bytes(), m) => {}
                    Some(_) => {
                        return Err("the MAC does not verify: forged, or written with another key".into())
                    }
                    None => return Err("no MAC: written without the journal key".into()),
                }
            }
            Ok(hash.to_owned())
        }
        None if key.is_some() => Err("no MAC: written without the journal key".into()),
        // a record of an older writer: chained by the hash of the whole line
        None => Ok(sha256_hex(line)),
    }
}

/// The hash a line chains to (its own sealed hash, or the whole line's for older records).
pub(super) fn line_hash(line: &str) -> String {
    match unseal(line) {
        Some((_, hash, _)) => hash.to_owned(),
        None => sha256_hex(line.as_bytes()),
    }
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
