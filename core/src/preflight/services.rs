//! What a containment calls besides the directory: each revoker answers with its credentials,
//! each notifier's server or program is there, and the outbound policy service answers.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::{Check, PreflightOptions};
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::notify::{ChannelConfig, Notice, Notifier, NotifyConfig, NotifyEvent};
use crate::outbound::{ask, PolicyRequest};
use crate::session::{Dovecot, Revoker, RevokerConfig};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a TCP connection to the URL's host and port opens (nothing is sent).
async fn reachable(name: String, url: &str, default_port: u16) -> Check {
    let (host, port) = match url::Url::parse(url) {
        Ok(u) => crate::tls::host_port(&u, default_port).unwrap_or_default(),
        Err(e) => return Check::fail(name, format!("{url}: {e}"), "fix the URL"),
    };
    match tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(_)) => Check::ok(name, format!("{host}:{port} answers")),
        Ok(Err(e)) => Check::fail(
            name,
            format!("{host}:{port}: {e}"),
            "start the service, or fix its URL",
        ),
        Err(_) => Check::fail(
            name,
            format!("{host}:{port}: no answer within {} s", TIMEOUT.as_secs()),
            "check the firewall and the URL",
        ),
    }
}

/// The certificate check of an implicit-TLS URL (https, smtps); `None` for others (plain http
/// on loopback, STARTTLS mail servers: their certificate is checked by the test message).
async fn certificate(
    name: String,
    url: &str,
    ca_file: Option<&Path>,
    opts: &PreflightOptions,
) -> Option<Check> {
    let parsed = url::Url::parse(url).ok()?;
    let (host, port) = match parsed.scheme() {
        "https" | "smtps" => crate::tls::host_port(&parsed, 465)?,
        _ => return None,
    };
    let now = opts.now.unwrap_or_else(std::time::SystemTime::now);
    Some(match crate::tls::handshake(&host, port, ca_file, TIMEOUT).await {
        Ok((shown, failed)) => super::certs::judge(name, &host, shown.as_ref(), failed, now),
        Err(e) => Check::fail(name, e.to_string(), "fix the URL or its ca_file"),
    })
}

/// Whether `program` is a file this user may run.
fn runnable(name: String, program: &Path) -> Check {
    match std::fs::metadata(program) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            Check::ok(name, program.display().to_string())
        }
        Ok(_) => Check::fail(
            name,
            format!("{} is not an executable file", program.display()),
            format!("chmod +x {}", program.display()),
        ),
        Err(e) => Check::fail(
            name,
            format!("{}: {e}", program.display()),
            "install the program, or fix its path",
        ),
    }
}

/// What to do when a revoker refused or did not answer.
fn revoker_fix(e: &Error) -> &'static str {
    match e.kind() {
        ErrorKind::RevokerAuth => "the API key does not match Dovecot's doveadm_api_key: fix api_key_file",
        ErrorKind::RevokerUnreachable | ErrorKind::Timeout => {
            "start Dovecot's doveadm HTTP API (service doveadm, inet_listener http), or fix the URL"
        }
        ErrorKind::Tls => "the CA file must sign Dovecot's certificate, for the URL's host",
        _ => "see the detail",
    }
}

/// A test message through the notifier `n`, and whether it was delivered.
async fn test_message(n: &NotifyConfig) -> Check {
    let name = format!("notify {}: a test message delivered", n.name);
    let notifier = match Notifier::from_config(n) {
        Ok(x) => x,
        Err(e) => return Check::fail(name, e.to_string(), "fix the notifier's settings"),
    };
    let incident = format!("TEST-{}", crate::time::rfc3339(crate::time::unix_now()));
    let notice = Notice::new(NotifyEvent::Test, Some(incident), Vec::new());
    let outcomes = notifier.send(&notice, None).await;
    if outcomes.is_empty() {
        return Check::warn(
            name,
            "nothing sent: the notifier writes to each account's own addresses only",
            "add fixed recipients (to) to test it, or test it on a drill",
        );
    }
    match outcomes.iter().find(|o| !o.delivered) {
        None => {
            let to: Vec<&str> = outcomes
                .iter()
                .flat_map(|o| o.recipients.iter().map(String::as_str))
                .collect();
            Check::ok(name, format!("to {}", to.join(", ")))
        }
        Some(o) => Check::fail(
            name,
            o.error
                .as_ref()
                .map_or_else(|| "not delivered".to_owned(), ToString::to_string),
            "check the notifier's server, its credentials and the recipients",
        ),
    }
}

/// The revokers', notifiers' and policy service's checks.
pub(super) async fn checks(cfg: &Config, opts: &PreflightOptions) -> Vec<Check> {
    let mut out = Vec::new();
    for r in &cfg.revokers {
        let (url, ca_file, name) = match r {
            RevokerConfig::Dovecot(c) => (c.url.as_str(), c.ca_file.as_deref(), &c.name),
            RevokerConfig::Webhook(c) => (c.url.as_str(), c.ca_file.as_deref(), &c.name),
            _ => ("", None, &String::new()),
        };
        let cert = format!("revoker {name}: TLS certificate");
        out.extend(certificate(cert, url, ca_file, opts).await);
        out.push(match r {
            RevokerConfig::Dovecot(c) => {
                let name = format!("revoker {}: doveadm answers with its key", c.name);
                let listed = match Dovecot::from_config(c) {
                    Ok(d) => d.live_logins().await,
                    Err(e) => Err(e),
                };
                match listed {
                    Ok(l) => Check::ok(
                        name,
                        format!("{}: {} live session(s)", c.url, l.map_or(0, |l| l.len())),
                    ),
                    Err(e) => Check::fail(name, e.to_string(), revoker_fix(&e)),
                }
            }
            RevokerConfig::Webhook(c) => {
                reachable(format!("revoker {}: webhook reachable", c.name), &c.url, 443).await
            }
            RevokerConfig::Command(c) => {
                runnable(format!("revoker {}: program runnable", c.name), &c.program)
            }
        });
    }
    for n in &cfg.notify {
        let (url, ca_file) = match &n.channel {
            ChannelConfig::Smtp(s) => (s.url.as_str(), s.ca_file.as_deref()),
            ChannelConfig::Webhook(w) => (w.url.as_str(), w.ca_file.as_deref()),
            ChannelConfig::Command(_) => ("", None),
        };
        let cert = format!("notify {}: TLS certificate", n.name);
        out.extend(certificate(cert, url, ca_file, opts).await);
        out.push(match &n.channel {
            ChannelConfig::Smtp(s) => {
                reachable(format!("notify {}: mail server reachable", n.name), &s.url, 587).await
            }
            ChannelConfig::Webhook(w) => {
                reachable(format!("notify {}: webhook reachable", n.name), &w.url, 443).await
            }
            ChannelConfig::Command(c) => runnable(format!("notify {}: program runnable", n.name), &c.program),
        });
        if opts.notify_test {
            out.push(test_message(n).await);
        }
    }
    if let Some(o) = &cfg.outbound {
        let name = "outbound: the policy service answers";
        let addresses = o.addresses().unwrap_or_default();
        out.push(match addresses.first() {
            Some(addr) => {
                match ask(addr, &PolicyRequest::rcpt("cadenas-check", "127.0.0.1"), TIMEOUT).await {
                    Ok(v) => Check::ok(name, format!("{addr}: {v:?}")),
                    Err(e) => Check::fail(
                        name,
                        e.to_string(),
                        "start it (cadenas outbound serve, or its systemd unit): until then a contained \
                     account's open SMTP session keeps sending",
                    ),
                }
            }
            None => Check::fail(name, "no listen address", "set [outbound] listen"),
        });
    }
    out
}
