//! Telling the people who must know: the on-call list, the user's manager, an SMS gateway.
//!
//! Each `[[notify]]` entry of the config names the events it wants ([`NotifyEvent`]) and a
//! channel:
//!
//! - `smtp`: mail through an SMTP server, STARTTLS (`smtp://host:587`) or implicit TLS
//!   (`smtps://host:465`) verified with `ca_file` (or the system store), optional login. To
//!   fixed addresses (`to`, one message per run listing the accounts) and/or addresses read
//!   from each user's entry (`to_attributes`: a DN value such as `manager` is followed to that
//!   entry's `mail`; an address value is used as is; one message per account);
//! - `webhook`: the signed POST the revokers use (HMAC-SHA256), with a payload an SMS gateway
//!   can take (`text`);
//! - `command`: a program run without a shell, the text on its standard input.
//!
//! Texts come from templates (`subject`, `body`; defaults in English and French,
//! `language = "fr"`) filled with report data only: **never a password, a code or where a
//! password was handed over**. Delivery is retried with backoff; each message's outcome is in
//! the report and the journal. Notifications are sent after the directory steps, a few at a
//! time, and a failed one never changes the containment's result.

mod config;
mod smtp;
mod template;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use config::{ChannelConfig, CommandChannel, NotifyConfig, SmtpChannel, WebhookChannel};
pub use template::Language;

use crate::directory::{Directory, Dn};
use crate::error::{Error, ErrorKind};
use crate::session::{Command, CommandConfig, Webhook};

/// What happened, for whom a notification is meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotifyEvent {
    /// Accounts fully contained by a run.
    Contained,
    /// Accounts a run refused, or with a failed step (or interrupted).
    NeedsAttention,
    /// An account released.
    Released,
    /// A user's TOTP enrolment was dropped (`mfa reset`).
    MfaReset,
    /// An account exceeded a sending limit of the outbound policy service.
    SendingLimit,
    /// The watcher raised an alert (`cadenas watch`): its text is the alert's SMS line (at
    /// most 160 characters, with the command that contains it).
    Alert,
    /// A test message (`cadenas check --notify-test`): sent to every notifier whatever its
    /// `events`, marked as a test, with the default texts.
    Test,
}

impl NotifyEvent {
    /// Every event.
    pub const ALL: [NotifyEvent; 7] = [
        NotifyEvent::Contained,
        NotifyEvent::NeedsAttention,
        NotifyEvent::Released,
        NotifyEvent::MfaReset,
        NotifyEvent::SendingLimit,
        NotifyEvent::Alert,
        NotifyEvent::Test,
    ];

    /// The snake_case name (`needs_attention`).
    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::Contained => "contained",
            NotifyEvent::NeedsAttention => "needs_attention",
            NotifyEvent::Released => "released",
            NotifyEvent::MfaReset => "mfa_reset",
            NotifyEvent::SendingLimit => "sending_limit",
            NotifyEvent::Alert => "alert",
            NotifyEvent::Test => "test",
        }
    }
}

/// One account in a notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NoticeUser {
    /// The user as given.
    pub user: String,
    /// The entry, when found.
    pub dn: Option<String>,
    /// What happened to it, in one line (steps and their status, or why it was refused).
    pub summary: String,
    /// Lines about this account only (a mail rule switched off...). No secrets.
    pub details: Vec<String>,
}

/// What a notification tells: an event, for which accounts, with what else to know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Notice {
    /// The event.
    pub event: NotifyEvent,
    /// The incident, when there is one.
    pub incident: Option<String>,
    /// When (RFC 3339 UTC).
    pub time: String,
    /// The accounts.
    pub users: Vec<NoticeUser>,
    /// Lines an operator must read (what was not revoked, rules switched off). No secrets.
    pub details: Vec<String>,
    /// The watcher's alert ([`NotifyEvent::Alert`]): the `{alert}` placeholder is its SMS line
    /// in the notifier's language; a webhook's payload carries it whole (`alert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<crate::watch::Alert>,
}

impl NoticeUser {
    /// An account in a notice.
    pub fn new(user: impl Into<String>, dn: Option<String>, summary: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            dn,
            summary: summary.into(),
            details: Vec::new(),
        }
    }
}

impl Notice {
    /// A notice of `event` now.
    pub fn new(event: NotifyEvent, incident: Option<String>, users: Vec<NoticeUser>) -> Self {
        Self {
            event,
            incident,
            time: crate::time::rfc3339(crate::time::unix_now()),
            users,
            details: Vec::new(),
            alert: None,
        }
    }

    /// The notice of a watcher's alert: about its account (or its address), the alert's
    /// detail as the summary, the command to run as a detail.
    pub fn of_alert(alert: &crate::watch::Alert) -> Self {
        let who = alert.account.clone().unwrap_or_else(|| alert.ip.clone());
        let mut n = Self::new(
            NotifyEvent::Alert,
            None,
            vec![NoticeUser::new(who, None, alert.detail.clone())],
        );
        n.details.push(format!("run: {}", alert.command));
        n.alert = Some(alert.clone());
        n
    }

    /// The placeholder values for a message about `users`; `everyone` adds the run's own
    /// details (for the fixed recipients, not for one account's manager).
    fn values(&self, users: &[NoticeUser], everyone: bool, lang: Language) -> BTreeMap<&'static str, String> {
        // Every value from outside (names, a server's message, an attribute's new value) is
        // escaped: it cannot add a line of its own to the message.
        let one_line = |s: &str| crate::escape_controls(s).into_owned();
        let mut v = BTreeMap::new();
        v.insert("event", self.event.name().to_owned());
        v.insert(
            "alert",
            self.alert.as_ref().map(|a| a.sms_text(lang)).unwrap_or_default(),
        );
        v.insert(
            "incident",
            self.incident.as_deref().map_or_else(|| "-".into(), one_line),
        );
        v.insert("time", self.time.clone());
        v.insert("count", users.len().to_string());
        let names: Vec<String> = users.iter().map(|u| one_line(&u.user)).collect();
        let mut short = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if names.len() > 5 {
            short.push_str(&format!(" (+{})", names.len() - 5));
        }
        v.insert("user", short);
        v.insert(
            "users",
            users
                .iter()
                .zip(&names)
                .map(|(u, name)| match &u.dn {
                    Some(dn) => format!("- {name} ({}): {}", one_line(dn), one_line(&u.summary)),
                    None => format!("- {name}: {}", one_line(&u.summary)),
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let own = users.iter().flat_map(|u| u.details.iter());
        let details: String = own
            .chain(self.details.iter().filter(|_| everyone))
            .map(|d| format!("- {}\n", one_line(d)))
            .collect();
        v.insert(
            "details",
            if details.is_empty() {
                String::new()
            } else {
                format!("{details}\n")
            },
        );
        v
    }
}

/// What became of one message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NotificationOutcome {
    /// The notifier's configured name.
    pub notifier: String,
    /// The event.
    pub event: NotifyEvent,
    /// Mail addresses (smtp), the URL (webhook) or the program (command).
    pub recipients: Vec<String>,
    /// The accounts the message was about.
    pub users: Vec<String>,
    /// Whether it was delivered (accepted by the server, 2xx, exit status 0).
    pub delivered: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Why not, when not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

/// A configured notifier, ready to send.
#[derive(Debug)]
pub struct Notifier {
    cfg: NotifyConfig,
    channel: Channel,
}

#[derive(Debug)]
enum Channel {
    Smtp(smtp::Smtp),
    Webhook(Webhook),
    Command(Command),
}

/// What a channel was configured with (recipients, arguments), for its messages.
impl Notifier {
    fn smtp(&self) -> Option<&SmtpChannel> {
        match &self.cfg.channel {
            ChannelConfig::Smtp(s) => Some(s),
            _ => None,
        }
    }
}

impl Notifier {
    /// Builds the notifier (reading its keys and passwords now: a missing one fails early).
    pub fn from_config(cfg: &NotifyConfig) -> Result<Self, Error> {
        cfg.check()?;
        let channel = match &cfg.channel {
            ChannelConfig::Smtp(s) => Channel::Smtp(smtp::Smtp::from_config(cfg, s)?),
            ChannelConfig::Webhook(w) => Channel::Webhook(Webhook::from_config(&cfg.webhook_config(w))?),
            ChannelConfig::Command(c) => {
                let mut c = CommandConfig::new(&cfg.name, c.program.clone(), c.args.clone());
                c.timeout_secs = cfg.timeout_secs;
                Channel::Command(Command::from_config(&c))
            }
        };
        Ok(Self {
            cfg: cfg.clone(),
            channel,
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Whether it is sent for `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        event == NotifyEvent::Test || self.cfg.events.contains(&event)
    }

    fn texts(&self, notice: &Notice, users: &[NoticeUser], everyone: bool) -> (String, String) {
        let lang = self.cfg.language;
        let values = notice.values(users, everyone, lang);
        // a test always says it is one: the default texts, whatever the notifier's own
        let own = |t: &Option<String>| t.clone().filter(|_| notice.event != NotifyEvent::Test);
        let subject = own(&self.cfg.subject);
        let subject = subject
            .as_deref()
            .unwrap_or_else(|| template::default_subject(lang, notice.event));
        let body = own(&self.cfg.body);
        let body = body
            .as_deref()
            .unwrap_or_else(|| template::default_body(lang, notice.event));
        (
            template::render(subject, &values).replace(['\r', '\n'], " "),
            template::render(body, &values),
        )
    }

    /// Sends `notice`: one message to the fixed recipients, and one per account to the
    /// addresses its entry names (read through `dir`). One outcome per message.
    pub async fn send(&self, notice: &Notice, dir: Option<&Directory>) -> Vec<NotificationOutcome> {
        let mut out = Vec::new();
        let all: Vec<String> = notice.users.iter().map(|u| u.user.clone()).collect();
        match &self.channel {
            Channel::Smtp(s) => {
                let (to, to_attributes) = match self.smtp() {
                    Some(c) => (c.to.as_slice(), c.to_attributes.as_slice()),
                    None => (&[][..], &[][..]),
                };
                if !to.is_empty() {
                    let (subject, body) = self.texts(notice, &notice.users, true);
                    out.push(
                        self.outcome(notice, to.to_vec(), all.clone(), || s.send(to, &subject, &body))
                            .await,
                    );
                }
                if !to_attributes.is_empty() {
                    for u in &notice.users {
                        let to = match personal_recipients(dir, u, to_attributes).await {
                            Ok(to) if to.is_empty() => continue,
                            Ok(to) => to,
                            Err(e) => {
                                out.push(self.failed(notice, vec![u.user.clone()], e));
                                continue;
                            }
                        };
                        let (subject, body) = self.texts(notice, std::slice::from_ref(u), false);
                        out.push(
                            self.outcome(notice, to.clone(), vec![u.user.clone()], || {
                                s.send(&to, &subject, &body)
                            })
                            .await,
                        );
                    }
                }
            }
            Channel::Webhook(w) => {
                let (subject, text) = self.texts(notice, &notice.users, true);
                let body = serde_json::json!({
                    "event": "cadenas.notify",
                    "kind": notice.event,
                    "incident": notice.incident,
                    "time": notice.time,
                    "users": notice.users,
                    "alert": notice.alert,
                    "subject": subject,
                    "text": text,
                })
                .to_string();
                // the webhook client retries by itself (its retries and backoff are ours)
                let (r, attempts) = w.deliver(body.as_bytes()).await;
                out.push(NotificationOutcome {
                    notifier: self.cfg.name.clone(),
                    event: notice.event,
                    recipients: match &self.cfg.channel {
                        ChannelConfig::Webhook(c) => vec![c.url.clone()],
                        _ => Vec::new(),
                    },
                    users: all,
                    delivered: r.is_ok(),
                    attempts,
                    error: r.err(),
                });
            }
            Channel::Command(c) => {
                let (subject, text) = self.texts(notice, &notice.users, true);
                let count = notice.users.len().to_string();
                let incident = notice.incident.clone().unwrap_or_default();
                let (program, configured) = match &self.cfg.channel {
                    ChannelConfig::Command(c) => (c.program.display().to_string(), c.args.as_slice()),
                    _ => (String::new(), &[][..]),
                };
                let args: Vec<String> = configured
                    .iter()
                    .map(|a| match a.as_str() {
                        "{event}" => notice.event.name().to_owned(),
                        "{incident}" => incident.clone(),
                        "{count}" => count.clone(),
                        _ => a.clone(),
                    })
                    .collect();
                let input = format!("{subject}\n\n{text}");
                let env = [
                    ("CADENAS_EVENT", notice.event.name().to_owned()),
                    ("CADENAS_INCIDENT", incident.clone()),
                    ("CADENAS_USERS", all.join(" ")),
                ];
                out.push(
                    self.outcome(notice, vec![program], all, || async {
                        c.run_with(&args, &env, input.as_bytes()).await.map_err(|e| {
                            let kind = match e.kind() {
                                ErrorKind::Timeout => ErrorKind::Timeout,
                                _ => ErrorKind::NotifyFailed,
                            };
                            Error::new(kind, e.message().to_owned())
                        })
                    })
                    .await,
                );
            }
        }
        out
    }

    /// Runs `attempt` with retries and backoff, as one outcome.
    async fn outcome<F, Fut>(
        &self,
        notice: &Notice,
        recipients: Vec<String>,
        users: Vec<String>,
        attempt: F,
    ) -> NotificationOutcome
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        let backoff = crate::retry::Backoff {
            first: Duration::from_millis(self.cfg.backoff_ms),
            retries: self.cfg.retries,
        };
        let (result, attempts) = crate::retry::retry(&self.cfg.name, backoff, attempt, Result::is_err).await;
        if let Err(e) = &result {
            tracing::warn!(notifier = %self.cfg.name, event = notice.event.name(), error = %e, "notification not delivered");
        }
        NotificationOutcome {
            notifier: self.cfg.name.clone(),
            event: notice.event,
            recipients,
            users,
            delivered: result.is_ok(),
            attempts,
            error: result.err(),
        }
    }

    fn failed(&self, notice: &Notice, users: Vec<String>, e: Error) -> NotificationOutcome {
        NotificationOutcome {
            notifier: self.cfg.name.clone(),
            event: notice.event,
            recipients: Vec::new(),
            users,
            delivered: false,
            attempts: 0,
            error: Some(e),
        }
    }
}

/// The addresses the user's entry names in `attributes`: a DN value is followed to that
/// entry's `mail`, an address value is taken as is.
async fn personal_recipients(
    dir: Option<&Directory>,
    u: &NoticeUser,
    attributes: &[String],
) -> Result<Vec<String>, Error> {
    let (Some(dir), Some(dn)) = (dir, u.dn.as_deref()) else {
        return Ok(Vec::new());
    };
    let attrs: Vec<&str> = attributes.iter().map(String::as_str).collect();
    let values = dir.read_entry(&Dn::parse(dn)?, &attrs).await?;
    let mut out = Vec::new();
    for v in values.values().flatten() {
        if v.contains('@') && !v.contains('=') {
            out.push(v.clone());
        } else if let Ok(other) = Dn::parse(v) {
            let mail = dir.read_entry(&other, &["mail"]).await?;
            out.extend(mail.get("mail").into_iter().flatten().cloned());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Builds every configured notifier.
pub fn build_notifiers(configs: &[NotifyConfig]) -> Result<Vec<Arc<Notifier>>, Error> {
    configs
        .iter()
        .map(|c| Notifier::from_config(c).map(Arc::new))
        .collect()
}

/// Sends `notice` through every notifier that wants its event, at most four messages at a
/// time, and returns every outcome (in notifier order).
pub async fn notify_all(
    notifiers: &[Arc<Notifier>],
    notice: &Notice,
    dir: Option<&Directory>,
) -> Vec<NotificationOutcome> {
    if notice.users.is_empty() {
        return Vec::new();
    }
    let sem = tokio::sync::Semaphore::new(4);
    let sends = notifiers.iter().filter(|n| n.wants(notice.event)).map(|n| {
        let sem = &sem;
        async move {
            let _permit = sem.acquire().await.ok();
            n.send(notice, dir).await
        }
    });
    let mut out = Vec::new();
    for batch in futures_util::future::join_all(sends).await {
        out.extend(batch);
    }
    out
}
