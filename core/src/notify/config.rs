//! One `[[notify]]` entry: what every channel has (name, events, texts, timing), and the
//! channel with exactly its own settings — parsed once, here: a setting of another channel, a
//! missing one, or an unknown key is a configuration error, not a surprise on incident day.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::template::{self, Language};
use super::NotifyEvent;
use crate::error::{Error, ErrorKind};
use crate::session::{self, WebhookConfig};

/// One `[[notify]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawNotify")]
#[non_exhaustive]
pub struct NotifyConfig {
    /// Name in reports and the journal.
    pub name: String,
    /// The events it is sent for.
    pub events: Vec<NotifyEvent>,
    /// The default texts' language: `en` (default) or `fr`.
    pub language: Language,
    /// Subject template (mail) — placeholders: `{event}`, `{incident}`, `{time}`, `{count}`,
    /// `{users}`, `{user}`, `{details}`, `{alert}` (a watcher's alert: its SMS line).
    pub subject: Option<String>,
    /// Body template.
    pub body: Option<String>,
    /// Seconds per attempt. Default 10.
    pub timeout_secs: u64,
    /// Attempts after the first. Default 3.
    pub retries: u32,
    /// First back-off in milliseconds, doubled per retry. Default 500.
    pub backoff_ms: u64,
    /// The channel (`type = "smtp" | "webhook" | "command"`) and its settings.
    pub channel: ChannelConfig,
}

/// A notification channel and its own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelConfig {
    /// `type = "smtp"`: mail through an SMTP server.
    Smtp(SmtpChannel),
    /// `type = "webhook"`: a signed JSON POST.
    Webhook(WebhookChannel),
    /// `type = "command"`: a program, the text on its standard input.
    Command(CommandChannel),
}

/// An `smtp` channel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpChannel {
    /// `smtp://host:port` (STARTTLS required) or `smtps://host:port` (implicit TLS).
    pub url: String,
    /// CA that signs the server's certificate (default: the system store).
    pub ca_file: Option<PathBuf>,
    /// Login, and the file holding its password (both or neither).
    pub login: Option<(String, PathBuf)>,
    /// The sender (`Cadenas <cadenas@example.test>`).
    pub from: String,
    /// Fixed recipients (the on-call list): one message per run.
    pub to: Vec<String>,
    /// Attributes of the user's entry holding recipients (a DN is followed to its `mail`):
    /// one message per account.
    pub to_attributes: Vec<String>,
}

/// A `webhook` channel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookChannel {
    /// `https://…` (or `http://` on loopback).
    pub url: String,
    /// CA that signs the server's certificate (required for https).
    pub ca_file: Option<PathBuf>,
    /// File holding the HMAC-SHA256 key.
    pub secret_file: Option<PathBuf>,
    /// Environment variable holding the key.
    pub secret_env: Option<String>,
}

/// A `command` channel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandChannel {
    /// Absolute path of the program (no shell).
    pub program: PathBuf,
    /// Its arguments; `{event}`, `{incident}`, `{count}` are replaced as whole arguments.
    pub args: Vec<String>,
}

/// The channel names of `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Smtp,
    Webhook,
    Command,
}

/// The entry as written: every key of every channel, checked into a [`NotifyConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    name: String,
    #[serde(rename = "type")]
    kind: Kind,
    events: Vec<NotifyEvent>,
    #[serde(default)]
    language: Language,
    subject: Option<String>,
    body: Option<String>,
    url: Option<String>,
    ca_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    to_attributes: Vec<String>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    program: Option<PathBuf>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_retries")]
    retries: u32,
    #[serde(default = "default_backoff")]
    backoff_ms: u64,
}

fn default_timeout() -> u64 {
    10
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> u64 {
    500
}

impl TryFrom<RawNotify> for NotifyConfig {
    type Error = String;

    fn try_from(r: RawNotify) -> Result<Self, String> {
        let name = r.name.clone();
        let err = |m: String| format!("notify {name:?}: {m}");
        // the keys each channel takes; any other one set is a mistake worth saying
        let set: [(&str, bool); 11] = [
            ("url", r.url.is_some()),
            ("ca_file", r.ca_file.is_some()),
            ("username", r.username.is_some()),
            ("password_file", r.password_file.is_some()),
            ("from", r.from.is_some()),
            ("to", !r.to.is_empty()),
            ("to_attributes", !r.to_attributes.is_empty()),
            ("secret_file", r.secret_file.is_some()),
            ("secret_env", r.secret_env.is_some()),
            ("program", r.program.is_some()),
            ("args", !r.args.is_empty()),
        ];
        let (kind, takes): (&str, &[&str]) = match r.kind {
            Kind::Smtp => (
                "smtp",
                &[
                    "url",
                    "ca_file",
                    "username",
                    "password_file",
                    "from",
                    "to",
                    "to_attributes",
                ],
            ),
            Kind::Webhook => ("webhook", &["url", "ca_file", "secret_file", "secret_env"]),
            Kind::Command => ("command", &["program", "args"]),
        };
        let foreign: Vec<&str> = set
            .iter()
            .filter(|(k, on)| *on && !takes.contains(k))
            .map(|(k, _)| *k)
            .collect();
        if !foreign.is_empty() {
            return Err(err(format!(
                "{} not for a {kind} notifier (it takes {})",
                foreign.join(", "),
                takes.join(", ")
            )));
        }
        let channel = match r.kind {
            Kind::Smtp => {
                let login = match (r.username, r.password_file) {
                    (Some(u), Some(p)) => Some((u, p)),
                    (None, None) => None,
                    _ => return Err(err("set both username and password_file, or neither".into())),
                };
                if r.to.is_empty() && r.to_attributes.is_empty() {
                    return Err(err("an smtp notifier needs to and/or to_attributes".into()));
                }
                ChannelConfig::Smtp(SmtpChannel {
                    url: r.url.ok_or_else(|| err("an smtp notifier needs url".into()))?,
                    ca_file: r.ca_file,
                    login,
                    from: r.from.ok_or_else(|| err("an smtp notifier needs from".into()))?,
                    to: r.to,
                    to_attributes: r.to_attributes,
                })
            }
            Kind::Webhook => ChannelConfig::Webhook(WebhookChannel {
                url: r.url.ok_or_else(|| err("a webhook notifier needs url".into()))?,
                ca_file: r.ca_file,
                secret_file: r.secret_file,
                secret_env: r.secret_env,
            }),
            Kind::Command => match r.program {
                Some(program) if program.is_absolute() => ChannelConfig::Command(CommandChannel {
                    program,
                    args: r.args,
                }),
                _ => return Err(err("a command notifier needs program, an absolute path".into())),
            },
        };
        Ok(Self {
            name: r.name,
            events: r.events,
            language: r.language,
            subject: r.subject,
            body: r.body,
            timeout_secs: r.timeout_secs,
            retries: r.retries,
            backoff_ms: r.backoff_ms,
            channel,
        })
    }
}

impl NotifyConfig {
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        let paths: Vec<&mut PathBuf> = match &mut self.channel {
            ChannelConfig::Smtp(s) => s
                .ca_file
                .iter_mut()
                .chain(s.login.iter_mut().map(|(_, p)| p))
                .collect(),
            ChannelConfig::Webhook(w) => w.ca_file.iter_mut().chain(w.secret_file.iter_mut()).collect(),
            ChannelConfig::Command(_) => Vec::new(),
        };
        for p in paths {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let err = |m: &str| {
            Err(Error::new(
                ErrorKind::Config,
                format!("notify {:?}: {m}", self.name),
            ))
        };
        if self.events.is_empty() {
            return err("events is empty");
        }
        for t in self.subject.iter().chain(&self.body) {
            let unknown = template::unknown_placeholders(t);
            if !unknown.is_empty() {
                return err(&format!(
                    "unknown placeholder(s) {unknown:?}; known: {:?}",
                    template::PLACEHOLDERS
                ));
            }
        }
        match &self.channel {
            ChannelConfig::Smtp(s) => {
                super::smtp::Server::parse(&s.url)?;
            }
            ChannelConfig::Webhook(w) => {
                session::RevokerConfig::Webhook(self.webhook_config(w)).check()?;
            }
            ChannelConfig::Command(_) => {}
        }
        Ok(())
    }

    /// The webhook client's settings for this entry (the revokers' signed POST).
    pub(crate) fn webhook_config(&self, w: &WebhookChannel) -> WebhookConfig {
        let mut c = WebhookConfig::new(&self.name, w.url.clone());
        c.secret_file = w.secret_file.clone();
        c.secret_env = w.secret_env.clone();
        c.ca_file = w.ca_file.clone();
        c.timeout_secs = self.timeout_secs;
        c.retries = self.retries;
        c.backoff_ms = self.backoff_ms;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<NotifyConfig, String> {
        toml::from_str::<NotifyConfig>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn each_channel_takes_exactly_its_own_settings() {
        let sms = parse(
            "name = \"sms\"\ntype = \"webhook\"\nevents = [\"contained\"]\nurl = \"https://gw.example.test/\"\nsecret_file = \"k\"\n",
        )
        .expect("webhook");
        assert!(matches!(&sms.channel, ChannelConfig::Webhook(w) if w.url == "https://gw.example.test/"));
        assert_eq!((sms.retries, sms.timeout_secs), (3, 10));
        let cmd = parse("name = \"c\"\ntype = \"command\"\nevents = [\"released\"]\nprogram = \"/usr/bin/logger\"\nargs = [\"{event}\"]\n")
            .expect("command");
        assert!(matches!(&cmd.channel, ChannelConfig::Command(c) if c.args == ["{event}"]));

        let e = parse("name = \"c\"\ntype = \"command\"\nevents = [\"released\"]\nprogram = \"/bin/true\"\nto = [\"a@b\"]\n")
            .expect_err("to on a command");
        assert!(e.contains("to not for a command notifier"), "{e}");
        let e = parse("name = \"m\"\ntype = \"smtp\"\nevents = [\"contained\"]\nurl = \"smtp://h:587\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nusername = \"u\"\n")
            .expect_err("username alone");
        assert!(e.contains("both username and password_file"), "{e}");
        let e = parse("name = \"m\"\ntype = \"smtp\"\nevents = [\"contained\"]\nurl = \"smtp://h:587\"\nto = [\"c@d\"]\n")
            .expect_err("no from");
        assert!(e.contains("needs from"), "{e}");
        let e = parse("name = \"c\"\ntype = \"command\"\nevents = [\"released\"]\nprogram = \"/bin/true\"\nprogramme = \"x\"\n")
            .expect_err("a typo");
        assert!(e.contains("programme"), "{e}");
    }
}
