//! Dovecot's login log lines: who logged in (or tried) from where, and when.
//!
//! Dovecot's login processes log one line per login, whatever the passdb:
//!
//! ```text
//! Dec 02 04:09:17 imap-login: Info: Login: user=<user0008>, method=PLAIN, rip=127.0.0.66, lip=127.0.0.1, mpid=8104, session=<…>
//! Dec 02 04:09:28 imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 1 secs): user=<user0011>, method=PLAIN, rip=127.0.0.66, …
//! ```
//!
//! (`log_path` of the lab's Dovecot 2.3.19; through syslog the prefix is `Dec  2 04:09:17 host
//! dovecot: imap-login: Login: …`). Time stamps are read in these forms: Dovecot's default
//! `log_timestamp` and syslog's `Mmm dd HH:MM:SS` (no year: the latest year that does not put
//! the line more than a day in the future; read as UTC), `YYYY-MM-DD HH:MM:SS` (UTC), and RFC
//! 3339 (rsyslog's precise format). A failed-login line names only the last user tried on that
//! connection. Files are read as a stream; gzip'd ones (rotated logs) are found by their content,
//! not their name.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{Instant, Pivot};
use crate::error::{Error, ErrorKind};

/// One login (or failed login) line of a Dovecot log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLogin {
    /// When, if the line's time stamp could be read.
    pub time: Option<Instant>,
    /// The login name.
    pub user: String,
    /// The client address (`rip=`).
    pub ip: String,
    /// The service (`imap`, `pop3`, `managesieve`, `submission`…).
    pub service: String,
    /// A failed login (`auth failed`) rather than a login.
    pub failed: bool,
}

/// Reads a Dovecot log file (plain or gzip'd) and returns its login lines from the pivot's
/// range and inside its time window, in file order.
pub fn read_auth_log(path: &Path, pivot: &Pivot) -> Result<Vec<LogLogin>, Error> {
    let now = Instant::now();
    let mut out = Vec::new();
    for_each_line(path, |text| {
        if let Some(l) = parse_line(text, now) {
            if pivot.range.contains_text(&l.ip) && pivot.in_window(l.time) {
                out.push(l);
            }
        }
    })?;
    Ok(out)
}

/// Calls `f` with every line of the log file `path`, plain or gzip'd (found by its content,
/// not its name), read as a stream.
pub(crate) fn for_each_line(path: &Path, mut f: impl FnMut(&str)) -> Result<(), Error> {
    let io = |e: std::io::Error| {
        Error::new(
            ErrorKind::Io,
            format!("cannot read the log file {}: {e}", path.display()),
        )
        .with_source(e)
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut plain = BufReader::new(file);
    let gzip = plain.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(plain)))
    } else {
        Box::new(plain)
    };
    let mut line = Vec::with_capacity(512);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            return Ok(());
        }
        f(&String::from_utf8_lossy(&line));
    }
}

/// One login line, borrowed from the line's text (no copy: the watcher judges a million a
/// second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LoginLine<'a> {
    pub(crate) time: Option<Instant>,
    pub(crate) user: &'a str,
    pub(crate) ip: &'a str,
    pub(crate) service: &'a str,
    pub(crate) failed: bool,
}

/// Parses one log line; `None` for anything that is not a login or a failed login.
pub(crate) fn parse_line(line: &str, now: Instant) -> Option<LogLogin> {
    parse_login(line, now).map(|l| LogLogin {
        time: l.time,
        user: l.user.to_owned(),
        ip: l.ip.to_owned(),
        service: l.service.to_owned(),
        failed: l.failed,
    })
}

/// [`parse_line`], borrowing from `line`.
pub(crate) fn parse_login(line: &str, now: Instant) -> Option<LoginLine<'_>> {
    // most lines of a mail log are not logins: one vectorised search says so
    let at = memchr::memmem::find(line.as_bytes(), b"-login: ")?;
    let service = line[..at].rsplit([' ', ':']).next().filter(|s| !s.is_empty())?;
    let msg = line[at + "-login: ".len()..].trim_end();
    let msg = msg.strip_prefix("Info: ").unwrap_or(msg);
    let failed = if msg.starts_with("Login: ") {
        false
    } else if memchr::memmem::find(msg.as_bytes(), b"(auth failed").is_some() {
        true
    } else {
        return None;
    };
    let user = field(msg, "user=<", ">")?;
    let ip = field(msg, "rip=", ",").or_else(|| msg.split_once("rip=").map(|(_, r)| r.trim()))?;
    if user.is_empty() || ip.is_empty() {
        return None;
    }
    Some(LoginLine {
        time: timestamp(&line[..at], now),
        user,
        ip,
        service,
        failed,
    })
}

/// The text between `start` and the next `end` (after a `, ` or at the message's start).
fn field<'a>(msg: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = memchr::memmem::find_iter(msg.as_bytes(), start.as_bytes())
        .find(|&i| i == 0 || msg.as_bytes()[i - 1] == b' ')?;
    let rest = &msg[i + start.len()..];
    // user names may contain '>': the field ends at ">," or at the end of the line
    let j = if end == ">" {
        memchr::memmem::find(rest.as_bytes(), b">,").or_else(|| rest.rfind('>'))?
    } else {
        memchr::memmem::find(rest.as_bytes(), end.as_bytes())?
    };
    Some(&rest[..j])
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The time stamp at the start of a line, in one of the forms of the module documentation.
pub(crate) fn timestamp(prefix: &str, now: Instant) -> Option<Instant> {
    use time::format_description::well_known::Rfc3339;
    let first = prefix.split_whitespace().next()?;
    if let Ok(t) = time::OffsetDateTime::parse(first, &Rfc3339) {
        return Some(Instant::from_unix(t.unix_timestamp()));
    }
    let mut words = prefix.split_whitespace();
    let (a, b) = (words.next()?, words.next()?);
    let clock = |t: &str| -> Option<time::Time> {
        let mut p = t.splitn(3, ':').map(|n| n.parse::<u8>().ok());
        time::Time::from_hms(p.next()??, p.next()??, p.next()?.map(|s| s.min(59))?).ok()
    };
    // YYYY-MM-DD HH:MM:SS
    if let Some(date) = super::parse_date(a) {
        let t = clock(b)?;
        return Some(Instant::from_unix(
            date.with_time(t).assume_utc().unix_timestamp(),
        ));
    }
    // Mmm dd HH:MM:SS (the year is not written)
    let month = MONTHS.iter().position(|m| *m == a)?;
    let month = time::Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let day: u8 = b.parse().ok()?;
    let t = clock(words.next()?)?;
    let this_year = time::OffsetDateTime::from_unix_timestamp(now.unix()).ok()?.year();
    for year in [this_year, this_year - 1] {
        let Ok(date) = time::Date::from_calendar_date(year, month, day) else {
            continue; // 29 Feb of a year that has none
        };
        let at = date.with_time(t).assume_utc().unix_timestamp();
        if at <= now.unix() + 86_400 {
            return Some(Instant::from_unix(at));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Instant {
        Instant::parse("2026-12-02T05:00:00Z").expect("now")
    }

    #[test]
    fn dovecot_log_path_lines_are_read() {
        let l = parse_line(
            "Dec 02 04:09:17 imap-login: Info: Login: user=<user0008>, method=PLAIN, rip=127.0.0.66, \
             lip=127.0.0.1, mpid=8104, session=<u3l/zp5hPct/AABC>\n",
            now(),
        )
        .expect("login");
        assert_eq!(
            l,
            LogLogin {
                time: Some(Instant::parse("2026-12-02T04:09:17Z").expect("t")),
                user: "user0008".into(),
                ip: "127.0.0.66".into(),
                service: "imap".into(),
                failed: false,
            }
        );
        let f = parse_line(
            "Dec 02 04:09:28 imap-login: Info: Disconnected: Aborted login by logging out (auth failed, \
             1 attempts in 1 secs): user=<user0011>, method=PLAIN, rip=127.0.0.66, lip=127.0.0.1, session=<x>",
            now(),
        )
        .expect("failed login");
        assert!(f.failed);
        assert_eq!((f.user.as_str(), f.ip.as_str()), ("user0011", "127.0.0.66"));
    }

    #[test]
    fn syslog_and_iso_prefixes_are_read() {
        let l = parse_line(
            "Dec  1 23:59:59 mail1 dovecot: pop3-login: Login: user=<jdupont@example.test>, method=PLAIN, \
             rip=2001:db8::7, lip=2001:db8::1, mpid=1, TLS, session=<x>",
            now(),
        )
        .expect("syslog");
        assert_eq!(l.service, "pop3");
        assert_eq!(l.user, "jdupont@example.test");
        assert_eq!(l.ip, "2001:db8::7");
        assert_eq!(
            l.time.map(Instant::rfc3339).as_deref(),
            Some("2026-12-01T23:59:59Z")
        );
        let l = parse_line(
            "2026-12-02T04:09:17.123456+01:00 mail1 dovecot: imap-login: Login: user=<a>, rip=10.0.0.1",
            now(),
        )
        .expect("rfc 3339");
        assert_eq!(
            l.time.map(Instant::rfc3339).as_deref(),
            Some("2026-12-02T03:09:17Z")
        );
        let l = parse_line(
            "2026-12-02 04:09:17 managesieve-login: Info: Login: user=<a>, method=PLAIN, rip=10.0.0.1, lip=x",
            now(),
        )
        .expect("Y-m-d");
        assert_eq!(l.service, "managesieve");
        assert_eq!(
            l.time.map(Instant::rfc3339).as_deref(),
            Some("2026-12-02T04:09:17Z")
        );
    }

    #[test]
    fn a_december_line_read_in_january_is_last_year() {
        let jan = Instant::parse("2027-01-01T00:10:00Z").expect("t");
        let l = parse_line(
            "Dec 31 23:59:00 imap-login: Info: Login: user=<a>, rip=10.0.0.1, lip=x",
            jan,
        )
        .expect("line");
        assert_eq!(
            l.time.map(Instant::rfc3339).as_deref(),
            Some("2026-12-31T23:59:00Z")
        );
    }

    #[test]
    fn other_lines_are_not_logins() {
        for l in [
            "Dec 02 04:09:18 imap(user0009)<8106><Qw6A>: Info: Disconnected: Server shutting down. in=0",
            "Dec 02 04:09:18 auth: Info: ldap(user0009,127.0.0.66): invalid credentials",
            "Dec 02 04:09:18 imap-login: Info: Disconnected: Connection closed (no auth attempts in 0 secs): user=<>, rip=1.2.3.4",
            "Dec 02 04:09:18 imap-login: Info: Login: user=<>, method=PLAIN, rip=127.0.0.66",
            "",
            "garbage -login: ",
        ] {
            assert_eq!(parse_line(l, now()), None, "{l}");
        }
    }

    #[test]
    fn a_user_name_with_angle_brackets_stays_whole() {
        let l = parse_line(
            "Dec 02 04:09:17 imap-login: Info: Login: user=<a>b>, method=PLAIN, rip=127.0.0.66, lip=x",
            now(),
        )
        .expect("line");
        assert_eq!(l.user, "a>b");
    }
}
