//! What an account sent, and from where: Postfix's log lines joined by queue ID.
//!
//! ```text
//! Dec 07 14:58:55 mail postfix/smtpd[7541]: DA28298C773: client=unknown[127.0.0.66], sasl_method=PLAIN, sasl_username=user0001
//! Dec 07 14:58:55 mail postfix/qmgr[6341]: DA28298C773: from=<spoof@bank.test>, size=174, nrcpt=2 (queue active)
//! Dec 07 14:58:55 mail postfix/smtp[7559]: DA28298C773: to=<victim@outside.test>, relay=none, …, status=deferred (…)
//! Dec 07 15:01:02 mail postfix/smtpd[7600]: warning: unknown[127.0.0.66]: SASL PLAIN authentication failed: …, sasl_username=user0002
//! ```
//!
//! A message is the account's when the `client=` line of its queue ID names the account's SASL
//! login (the envelope sender is the sender's choice, the login is not); its recipients are
//! the `to=<…>` of its delivery lines (each counted once, whatever the retries). Files are read
//! as a stream, gzip'd ones (rotated logs) found by their content; time stamps as in Dovecot's
//! logs (syslog's, ISO, RFC 3339). Never a message's content: Postfix does not log it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::investigate::Instant;

/// What one account sent in a time window (numbers and addresses, never content).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SentMail {
    /// The SASL login, as Postfix logged it.
    pub login: String,
    /// The start of the window the log was read for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Instant>,
    /// Messages submitted.
    pub messages: usize,
    /// Distinct recipients of those messages.
    pub recipients: usize,
    /// The recipients' domains outside the local domains.
    pub outside_domains: Vec<String>,
    /// The client addresses the messages came from.
    pub client_addresses: Vec<String>,
    /// The first and last message's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Instant>,
    /// The last message's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Instant>,
    /// The messages' queue IDs.
    pub queue_ids: Vec<String>,
}

impl SentMail {
    /// Nothing sent, by `login`.
    pub fn nothing(login: String) -> Self {
        Self {
            login,
            ..Self::default()
        }
    }

    /// Counts one more message (its queue ID, time, recipients, client address), unless a
    /// message of that queue ID is counted already. Returns whether it was counted.
    pub fn count(
        &mut self,
        queue_id: &str,
        time: Option<Instant>,
        recipients: usize,
        client_address: &str,
    ) -> bool {
        if !queue_id.is_empty() && self.queue_ids.iter().any(|q| q == queue_id) {
            return false;
        }
        self.messages += 1;
        self.recipients += recipients;
        if !queue_id.is_empty() {
            self.queue_ids.push(queue_id.to_owned());
        }
        if !client_address.is_empty() && !self.client_addresses.iter().any(|a| a == client_address) {
            self.client_addresses.push(client_address.to_owned());
        }
        self.first = self.first.min(time).or(self.first.or(time));
        self.last = self.last.max(time);
        true
    }

    /// Both counts together (the same account under two logins: `jdupont` and
    /// `jdupont@example.test`). Recipients are added: a recipient of both counts twice.
    pub fn merged(mut self, other: &SentMail) -> Self {
        self.messages += other.messages;
        self.recipients += other.recipients;
        for d in &other.outside_domains {
            if !self.outside_domains.contains(d) {
                self.outside_domains.push(d.clone());
            }
        }
        self.outside_domains.sort();
        for a in &other.client_addresses {
            if !self.client_addresses.contains(a) {
                self.client_addresses.push(a.clone());
            }
        }
        self.queue_ids.extend(other.queue_ids.iter().cloned());
        self.first = self.first.min(other.first).or(self.first.or(other.first));
        self.last = self.last.max(other.last);
        self
    }

    /// "sent 4 message(s) to 6 recipient(s) (2 outside domain(s): …) since … from 203.0.113.7
    /// between … and …", or "sent nothing since …".
    pub fn describe(&self) -> String {
        let since = self
            .since
            .map(|s| format!(" since {}", s.rfc3339()))
            .unwrap_or_default();
        if self.messages == 0 {
            return format!("sent nothing{since} (Postfix log)");
        }
        let when = match (self.first, self.last) {
            (Some(a), Some(b)) if a != b => format!(" between {} and {}", a.rfc3339(), b.rfc3339()),
            (Some(a), _) => format!(" at {}", a.rfc3339()),
            _ => String::new(),
        };
        format!(
            "sent {} message(s) to {} recipient(s) ({} outside domain(s){}){since} from {}{when}",
            self.messages,
            self.recipients,
            self.outside_domains.len(),
            if self.outside_domains.is_empty() {
                String::new()
            } else {
                format!(": {}", self.outside_domains.join(", "))
            },
            self.client_addresses.join(", ")
        )
    }
}

/// An SMTP AUTH seen in Postfix's log: a message submitted after a login, or a failed login.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpLogin {
    /// When, if the time stamp could be read.
    pub time: Option<Instant>,
    /// The SASL login (for a failed one, when Postfix logged it).
    pub user: String,
    /// The client address.
    pub ip: String,
    /// A failed login.
    pub failed: bool,
}

/// One message as the log tells it.
#[derive(Debug, Default)]
struct Message {
    login: Option<String>,
    ip: Option<String>,
    time: Option<Instant>,
    recipients: BTreeSet<String>,
}

/// Postfix's log files read once: messages by queue ID, and the SMTP AUTH lines.
#[derive(Debug, Default)]
pub struct MailLog {
    messages: HashMap<String, Message>,
    /// Queue IDs in the order their `client=` line came.
    order: Vec<String>,
    logins: Vec<SmtpLogin>,
    since: Option<Instant>,
}

impl MailLog {
    /// Reads `paths` (plain or gzip'd) for the lines between `since` and `until`.
    pub fn read(
        paths: &[impl AsRef<Path>],
        since: Option<Instant>,
        until: Option<Instant>,
    ) -> Result<Self, Error> {
        let mut log = MailLog {
            since,
            ..MailLog::default()
        };
        let now = Instant::now();
        for p in paths {
            crate::investigate::for_each_line(p.as_ref(), |line| log.take(line, now, since, until))?;
        }
        Ok(log)
    }

    fn take(&mut self, line: &str, now: Instant, since: Option<Instant>, until: Option<Instant>) {
        let Some(at) = line.find("postfix") else { return };
        let time = crate::investigate::log_time(&line[..at], now);
        if time.is_some_and(|t| since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u)) {
            return;
        }
        let Some((_, msg)) = line[at..].split_once("]: ") else {
            return;
        };
        let msg = msg.trim_end();
        if let Some(rest) = msg.strip_prefix("warning: ") {
            if let Some(l) = failed_login(rest, time) {
                self.logins.push(l);
            }
            return;
        }
        let Some((qid, rest)) = msg.split_once(": ") else {
            return;
        };
        if !qid.bytes().all(|b| b.is_ascii_alphanumeric()) || qid.len() < 6 {
            return;
        }
        if rest.starts_with("client=") {
            let ip = bracketed(rest);
            let login = attr(rest, "sasl_username=");
            if let (Some(user), Some(ip)) = (&login, &ip) {
                self.logins.push(SmtpLogin {
                    time,
                    user: user.clone(),
                    ip: ip.clone(),
                    failed: false,
                });
            }
            let m = self.messages.entry(qid.to_owned()).or_default();
            if m.login.is_none() {
                self.order.push(qid.to_owned());
            }
            (m.login, m.ip, m.time) = (login, ip, time);
        } else if let Some(to) = rest.strip_prefix("to=<") {
            if let (Some(addr), Some(m)) = (to.split_once('>').map(|(a, _)| a), self.messages.get_mut(qid)) {
                m.recipients.insert(addr.to_ascii_lowercase());
            }
        }
    }

    /// The SMTP AUTH lines (logins that submitted a message, and failed logins), in order.
    pub fn logins(&self) -> &[SmtpLogin] {
        &self.logins
    }

    /// What each login sent (keyed by the login, lower-cased).
    pub fn sent(&self, local_domains: &[String]) -> HashMap<String, SentMail> {
        let mut out: HashMap<String, SentMail> = HashMap::new();
        let mut rcpts: HashMap<String, BTreeSet<String>> = HashMap::new();
        for qid in &self.order {
            let Some(m) = self.messages.get(qid) else { continue };
            let Some(login) = &m.login else { continue };
            let key = login.to_ascii_lowercase();
            let s = out.entry(key.clone()).or_insert_with(|| SentMail {
                login: login.clone(),
                since: self.since,
                ..SentMail::default()
            });
            // recipients are counted once each over all the messages, below
            s.count(qid, m.time, 0, m.ip.as_deref().unwrap_or(""));
            rcpts.entry(key).or_default().extend(m.recipients.iter().cloned());
        }
        for (k, r) in rcpts {
            if let Some(s) = out.get_mut(&k) {
                s.recipients = r.len();
                s.outside_domains = super::queue::outside_domains(r.iter(), local_domains);
            }
        }
        out
    }
}

/// `SASL PLAIN authentication failed: …, sasl_username=x` after `unknown[ip]: `.
fn failed_login(rest: &str, time: Option<Instant>) -> Option<SmtpLogin> {
    if !rest.contains("authentication failed") {
        return None;
    }
    Some(SmtpLogin {
        time,
        user: attr(rest, "sasl_username=").unwrap_or_default(),
        ip: bracketed(rest)?,
        failed: true,
    })
}

/// An SMTP AUTH line of Postfix's log as a login for the watcher's rules, borrowed from the
/// line: a message submitted after a login (`client=…[ip], …, sasl_username=…`: service
/// `smtp`), or a failed login (`…[ip]: SASL … authentication failed…`; the name when Postfix
/// logs it, else empty). `None` for any other line.
pub(crate) fn smtp_login(line: &str, now: Instant) -> Option<crate::investigate::LoginLine<'_>> {
    let bytes = line.as_bytes();
    let failed = if memchr::memmem::find(bytes, b": client=").is_some() {
        false
    } else if memchr::memmem::find(bytes, b"authentication failed").is_some() {
        true
    } else {
        return None;
    };
    let at = line.find("postfix")?;
    let (_, msg) = line[at..].split_once("]: ")?;
    let user = attr_ref(msg, "sasl_username=").unwrap_or("");
    if !failed && user.is_empty() {
        return None; // a message from a client that did not log in
    }
    Some(crate::investigate::LoginLine {
        time: crate::investigate::log_time(&line[..at], now),
        user,
        ip: bracketed_ref(msg)?,
        service: "smtp",
        failed,
    })
}

/// The address between the first `[` and `]`.
fn bracketed(s: &str) -> Option<String> {
    bracketed_ref(s).map(str::to_owned)
}

fn bracketed_ref(s: &str) -> Option<&str> {
    let (_, r) = s.split_once('[')?;
    let (ip, _) = r.split_once(']')?;
    Some(ip)
}

/// The value of `name=` up to the next `, ` or the end.
fn attr(s: &str, name: &str) -> Option<String> {
    attr_ref(s, name).map(str::to_owned)
}

fn attr_ref<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    let i = s.find(name)?;
    let v = &s[i + name.len()..];
    let v = v.split(", ").next().unwrap_or(v).trim();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-12-07 14:58:55 mail postfix/submission/smtpd[7541]: DA28298C773: client=unknown[127.0.0.66], sasl_method=PLAIN, sasl_username=user0001
2026-12-07 14:58:55 mail postfix/qmgr[6341]: DA28298C773: from=<spoof@bank.test>, size=174, nrcpt=2 (queue active)
2026-12-07 14:58:55 mail postfix/smtp[7559]: DA28298C773: to=<victim@outside.test>, relay=none, delay=0.02, status=deferred (x)
2026-12-07 14:58:55 mail postfix/lmtp[7560]: DA28298C773: to=<a@example.test>, relay=127.0.0.1[127.0.0.1]:10024, status=sent (250 ok)
2026-12-07 15:30:00 mail postfix/smtp[7559]: DA28298C773: to=<victim@outside.test>, relay=none, delay=1800, status=deferred (x)
2026-12-07 14:59:10 mail postfix/smtpd[7542]: E1A2B3C4D5: client=unknown[198.51.100.9], sasl_method=LOGIN, sasl_username=User0001
2026-12-07 14:59:10 mail postfix/smtp[7561]: E1A2B3C4D5: to=<x@evil.test>, relay=none, status=deferred (x)
2026-12-07 14:59:11 mail postfix/smtpd[7543]: F00F00F00F: client=unknown[127.0.0.9], sasl_method=PLAIN, sasl_username=other
2026-12-07 15:01:02 mail postfix/smtpd[7600]: warning: unknown[127.0.0.66]: SASL PLAIN authentication failed: UGFzc3dvcmQ6, sasl_username=user0002
2026-12-07 15:01:03 mail postfix/smtpd[7600]: connect from unknown[127.0.0.66]
";

    fn read(since: Option<&str>) -> MailLog {
        let p = std::env::temp_dir().join(format!(
            "cadenas-maillog-{}-{}",
            std::process::id(),
            since.is_some()
        ));
        std::fs::write(&p, LOG).expect("write");
        let since = since.map(|s| Instant::parse(s).expect("t"));
        let log = MailLog::read(&[&p], since, None).expect("read");
        std::fs::remove_file(&p).ok();
        log
    }

    #[test]
    fn messages_are_joined_by_queue_id_and_counted_by_login() {
        let log = read(None);
        let sent = log.sent(&["example.test".to_owned()]);
        let s = &sent["user0001"];
        assert_eq!((s.messages, s.recipients), (2, 3), "{s:?}");
        assert_eq!(s.outside_domains, ["evil.test", "outside.test"]);
        assert_eq!(s.client_addresses, ["127.0.0.66", "198.51.100.9"]);
        assert_eq!(s.queue_ids, ["DA28298C773", "E1A2B3C4D5"]);
        assert!(s.describe().starts_with("sent 2 message(s) to 3 recipient(s) (2 outside domain(s): evil.test, outside.test) from 127.0.0.66, 198.51.100.9"), "{}", s.describe());
        assert_eq!(sent["other"].messages, 1);
        let failed: Vec<_> = log.logins().iter().filter(|l| l.failed).collect();
        assert_eq!(
            (failed.len(), failed[0].user.as_str(), failed[0].ip.as_str()),
            (1, "user0002", "127.0.0.66")
        );
        assert_eq!(log.logins().iter().filter(|l| !l.failed).count(), 3);
    }

    #[test]
    fn smtp_auth_lines_are_logins_for_the_watcher() {
        let now = Instant::parse("2026-12-07T16:00:00Z").expect("now");
        let l = smtp_login(
            "2026-12-07 14:58:55 mail postfix/submission/smtpd[7541]: DA28298C773: client=unknown[127.0.0.66], \
             sasl_method=PLAIN, sasl_username=user0001",
            now,
        )
        .expect("a login");
        assert_eq!(
            (l.user, l.ip, l.service, l.failed),
            ("user0001", "127.0.0.66", "smtp", false)
        );
        assert_eq!(l.time, Some(Instant::parse("2026-12-07T14:58:55Z").expect("t")));
        let f = smtp_login(
            "Dec 07 15:01:02 mail postfix/smtpd[7600]: warning: unknown[198.51.100.9]: SASL PLAIN \
             authentication failed: UGFzc3dvcmQ6",
            now,
        )
        .expect("a failed login");
        assert_eq!((f.user, f.ip, f.failed), ("", "198.51.100.9", true));
        // a message from a client that did not log in, and other lines: nothing
        assert!(smtp_login(
            "Dec 07 15:01:02 mail postfix/smtpd[7600]: ABCDEF1234: client=mx.example[192.0.2.1]",
            now
        )
        .is_none());
        assert!(smtp_login("Dec 07 15:01:02 mail postfix/qmgr[1]: ABCDEF1234: removed", now).is_none());
    }

    #[test]
    fn the_window_leaves_earlier_lines_out() {
        let log = read(Some("2026-12-07T14:59:00Z"));
        let sent = log.sent(&[]);
        assert_eq!(sent["user0001"].messages, 1, "{sent:?}");
    }
}
