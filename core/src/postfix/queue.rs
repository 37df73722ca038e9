//! The Postfix queue: what an account already queued, found by the **SASL login that
//! submitted it** (the envelope sender is the attacker's choice), put on hold, and later
//! released or deleted after review.
//!
//! Postfix's own tools do the work: `postqueue -j` lists the queue, `postcat -e -q ID` reads a
//! message's envelope (its `sasl_username`, client address and recipients — never its
//! content), `postsuper -h|-H|-d -` holds, releases or deletes by queue ID. They run on this
//! host (as root, or a user allowed to read the queue), or wherever `command_prefix` reaches
//! (`["ssh", "root@mx1"]`: each command is then that program's arguments — not tested here,
//! where Postfix runs on this host).
//!
//! Concurrent searches share snapshots: a caller arriving while the queue is being read
//! waits for the next read, which starts after it arrived (so it sees everything queued
//! before it asked); every caller waiting then shares that one read. A message's envelope is
//! read once per process.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, ErrorKind};

/// The `[postfix]` config section: where Postfix's tools are and how to reach them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PostfixConfig {
    /// Postfix's configuration directory (`-c`); default Postfix's own (`/etc/postfix`).
    #[serde(default)]
    pub config_dir: Option<PathBuf>,
    /// A program and arguments to run each command through (`["ssh", "root@mx1"]`); default
    /// none: the commands run on this host.
    #[serde(default)]
    pub command_prefix: Vec<String>,
    /// Seconds per command. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Postfix's log files (plain or gzip'd, rotated ones too): what an account sent, and SMTP
    /// AUTH logins for `sessions --ip` and `contain --from-ip`. Read on this host.
    #[serde(default)]
    pub log_files: Vec<PathBuf>,
}

fn default_timeout() -> u64 {
    30
}

impl PostfixConfig {
    pub(crate) fn resolve_paths(&mut self, base: &std::path::Path) {
        for d in self.config_dir.iter_mut().chain(self.log_files.iter_mut()) {
            if d.is_relative() {
                *d = base.join(&*d);
            }
        }
    }

    /// Postfix on this host with configuration directory `config_dir` (`None`: the default).
    pub fn local(config_dir: Option<PathBuf>) -> Self {
        Self {
            config_dir,
            command_prefix: Vec::new(),
            timeout_secs: default_timeout(),
            log_files: Vec::new(),
        }
    }
}

/// One message in the queue, as its envelope says (never its content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueuedMail {
    /// The queue ID.
    pub queue_id: String,
    /// The queue it was in (`active`, `deferred`, `incoming`, `hold`).
    pub queue: String,
    /// The envelope sender (chosen by whoever sent it).
    pub sender: String,
    /// Recipients not yet delivered.
    pub recipients: Vec<String>,
    /// The login that submitted it (SMTP AUTH), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_username: Option<String>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// When it was queued (Unix time).
    pub arrival_time: i64,
}

/// What a hold did for one account: the messages held (queue IDs, recipients), the outside
/// domains they were for, and those that had left the queue before they could be held.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HeldMail {
    /// The messages put on hold now.
    pub messages: Vec<QueuedMail>,
    /// Messages of the account on hold already (an earlier run, an administrator).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub already_held: Vec<String>,
    /// Messages found that left the queue (delivered, bounced) before the hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<String>,
    /// The recipients' domains outside the local domains.
    pub outside_domains: Vec<String>,
}

impl HeldMail {
    /// Recipients of the messages held.
    pub fn recipients(&self) -> usize {
        self.messages.iter().map(|m| m.recipients.len()).sum()
    }
}

/// What the reviews of an incident's held mail did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MailReview {
    /// `release` (back to the queue: it will be delivered) or `delete`.
    pub action: String,
    /// The messages asked for.
    pub queue_ids: Vec<String>,
    /// How many Postfix says it released or deleted.
    pub done: usize,
}

/// One line of `postqueue -j`.
#[derive(Deserialize)]
struct JsonEntry {
    queue_name: String,
    queue_id: String,
    #[serde(default)]
    arrival_time: i64,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    recipients: Vec<JsonRecipient>,
}

#[derive(Deserialize)]
struct JsonRecipient {
    address: String,
}

/// What an envelope says of who submitted the message.
#[derive(Clone, Debug, Default)]
struct Origin {
    sasl_username: Option<String>,
    client_address: Option<String>,
}

/// A Postfix queue, reached through its tools.
#[derive(Debug)]
pub struct Queue {
    cfg: PostfixConfig,
    /// (queue ID, arrival time) → who submitted it.
    origins: Mutex<HashMap<(String, i64), Origin>>,
    /// The last snapshot and when its read started.
    last: tokio::sync::Mutex<Option<(Instant, Arc<Vec<QueuedMail>>)>>,
}

/// What `postsuper` is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueAction {
    /// `-h`: put on hold.
    Hold,
    /// `-H`: release from hold (delivery resumes).
    Release,
    /// `-d`: delete.
    Delete,
}

impl QueueAction {
    fn flag(self) -> &'static str {
        match self {
            QueueAction::Hold => "-h",
            QueueAction::Release => "-H",
            QueueAction::Delete => "-d",
        }
    }
}

impl Queue {
    /// The queue of the Postfix `cfg` describes.
    pub fn new(cfg: &PostfixConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            origins: Mutex::new(HashMap::new()),
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Every message in the queue now (read after this call started), with who submitted it.
    pub async fn messages(&self) -> Result<Arc<Vec<QueuedMail>>, Error> {
        let arrived = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((started, snap)) = &*last {
            if *started >= arrived {
                return Ok(snap.clone());
            }
        }
        let started = Instant::now();
        let snap = Arc::new(self.read().await?);
        *last = Some((started, snap.clone()));
        Ok(snap)
    }

    async fn read(&self) -> Result<Vec<QueuedMail>, Error> {
        let out = self.run("postqueue", &["-j"], None).await?;
        let mut mails = Vec::new();
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            let e: JsonEntry = serde_json::from_str(line).map_err(|e| {
                Error::new(
                    ErrorKind::UnexpectedResponse,
                    format!("postqueue -j: a line that is not a queue entry: {e}"),
                )
            })?;
            let key = (e.queue_id.clone(), e.arrival_time);
            let known = self
                .origins
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned();
            let origin = match known {
                Some(o) => o,
                None => match self.origin(&e.queue_id).await {
                    Some(o) => {
                        self.origins
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(key, o.clone());
                        o
                    }
                    // left the queue between the listing and the read
                    None => continue,
                },
            };
            mails.push(QueuedMail {
                queue_id: e.queue_id,
                queue: e.queue_name,
                sender: e.sender,
                recipients: e.recipients.into_iter().map(|r| r.address).collect(),
                sasl_username: origin.sasl_username,
                client_address: origin.client_address,
                arrival_time: e.arrival_time,
            });
        }
        Ok(mails)
    }

    /// Who submitted message `id` (`postcat -e`: the envelope only); `None` when it is gone.
    async fn origin(&self, id: &str) -> Option<Origin> {
        let out = self.run("postcat", &["-e", "-q", id], None).await.ok()?;
        let mut o = Origin::default();
        for line in out.lines() {
            let Some(attr) = line.strip_prefix("named_attribute: ") else {
                continue;
            };
            if let Some(v) = attr.strip_prefix("sasl_username=") {
                o.sasl_username = Some(v.to_owned());
            } else if let Some(v) = attr.strip_prefix("client_address=") {
                o.client_address = Some(v.to_owned());
            }
        }
        Some(o)
    }

    /// Applies `action` to the messages `ids`; returns how many Postfix says it changed.
    pub async fn apply(&self, action: QueueAction, ids: &[String]) -> Result<usize, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        if let Some(bad) = ids.iter().find(|i| !is_queue_id(i)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{bad:?} is not a Postfix queue ID"),
            ));
        }
        let input = ids.join("\n") + "\n";
        let out = self
            .run("postsuper", &[action.flag(), "-"], Some(input.as_bytes()))
            .await?;
        // "postsuper: Placed on hold: 3 messages" / "Released from hold" / "Deleted"
        Ok(out
            .lines()
            .filter_map(|l| {
                l.rsplit_once(": ")
                    .and_then(|(_, n)| n.split(' ').next()?.parse::<usize>().ok())
            })
            .sum())
    }

    /// Runs a Postfix tool; returns what it printed (stdout and stderr).
    async fn run(&self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String, Error> {
        let mut argv: Vec<String> = self.cfg.command_prefix.clone();
        argv.push(tool.to_owned());
        if let Some(d) = &self.cfg.config_dir {
            argv.push("-c".into());
            argv.push(d.display().to_string());
        }
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let fail = |what: String| Error::new(ErrorKind::RevokerFailed, format!("{tool}: {what}"));
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", argv[0])))?;
        if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
            w.write_all(input).await.map_err(|e| fail(e.to_string()))?;
        }
        let out = tokio::time::timeout(
            Duration::from_secs(self.cfg.timeout_secs.max(1)),
            child.wait_with_output(),
        )
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("{tool}: no answer in {} s", self.cfg.timeout_secs),
            )
        })?
        .map_err(|e| fail(e.to_string()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_owned();
            return Err(fail(format!("exited with {}: {first}", out.status)));
        }
        Ok(text)
    }

    /// Holds every message in the queue that `logins` submitted (SASL login, compared
    /// without ASCII case; `name@local_domain` counts as `name`): the queue is read after
    /// this call started.
    pub async fn hold_from(&self, logins: &[String], local_domains: &[String]) -> Result<HeldMail, Error> {
        let snap = self.messages().await?;
        let mine: Vec<&QueuedMail> = submitted_by(&snap, logins, local_domains).collect();
        let mut held = HeldMail::default();
        let (on_hold, to_hold): (Vec<&QueuedMail>, Vec<&QueuedMail>) =
            mine.into_iter().partition(|m| m.queue == "hold");
        held.already_held = on_hold.iter().map(|m| m.queue_id.clone()).collect();
        let ids: Vec<String> = to_hold.iter().map(|m| m.queue_id.clone()).collect();
        self.apply(QueueAction::Hold, &ids).await?;
        // which are on hold now: what Postfix did, not what was asked (a snapshot read after
        // the hold, shared with the other accounts' checks of the moment)
        let now_held: BTreeSet<String> = if ids.is_empty() {
            BTreeSet::new()
        } else {
            self.messages()
                .await?
                .iter()
                .filter(|m| m.queue == "hold")
                .map(|m| m.queue_id.clone())
                .collect()
        };
        for m in to_hold {
            if now_held.contains(&m.queue_id) {
                held.messages.push(m.clone());
            } else {
                held.gone.push(m.queue_id.clone());
            }
        }
        held.outside_domains =
            outside_domains(held.messages.iter().flat_map(|m| &m.recipients), local_domains);
        Ok(held)
    }
}

/// The messages of `mails` that one of `logins` submitted (their SASL login, as
/// [`login_matches`] compares it).
pub fn submitted_by<'a>(
    mails: &'a [QueuedMail],
    logins: &'a [String],
    local_domains: &'a [String],
) -> impl Iterator<Item = &'a QueuedMail> + 'a {
    mails.iter().filter(move |m| {
        m.sasl_username
            .as_deref()
            .is_some_and(|s| login_matches(s, logins, local_domains))
    })
}

/// Whether a SASL login is one of `logins` (ASCII case ignored; `name@local_domain` counts as
/// `name`).
pub fn login_matches(sasl: &str, logins: &[String], local_domains: &[String]) -> bool {
    let bare = sasl
        .rsplit_once('@')
        .filter(|(_, d)| local_domains.iter().any(|l| l.eq_ignore_ascii_case(d)))
        .map(|(n, _)| n);
    logins
        .iter()
        .any(|l| l.eq_ignore_ascii_case(sasl) || bare.is_some_and(|b| l.eq_ignore_ascii_case(b)))
}

/// The distinct domains of `addresses` outside `local_domains`, sorted, lower-cased.
pub fn outside_domains<'a>(
    addresses: impl Iterator<Item = &'a String>,
    local_domains: &[String],
) -> Vec<String> {
    addresses
        .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
        .filter(|d| !local_domains.iter().any(|l| l.eq_ignore_ascii_case(d)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A Postfix queue ID: short (hex) or long (base 52 + digits) form, letters and digits only.
fn is_queue_id(s: &str) -> bool {
    (6..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_match_without_case_and_with_a_local_domain_only() {
        let logins = vec!["jdupont".to_owned()];
        let local = vec!["example.test".to_owned()];
        assert!(login_matches("JDupont", &logins, &local));
        assert!(login_matches("jdupont@Example.Test", &logins, &local));
        assert!(!login_matches("jdupont@elsewhere.test", &logins, &local));
        assert!(!login_matches("jdupont2", &logins, &local));
        assert_eq!(
            outside_domains(
                ["a@Example.test", "b@Outside.test", "c@outside.test", "d@x.test"]
                    .map(String::from)
                    .iter(),
                &local
            ),
            ["outside.test", "x.test"]
        );
        assert!(is_queue_id("DA28298C773") && is_queue_id("4Xq1Zl2Jd7zBdQ1"));
        assert!(!is_queue_id("-d ALL") && !is_queue_id("ALL") && !is_queue_id("../x"));
    }
}
