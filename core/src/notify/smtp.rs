//! Mail through an SMTP server, over lettre: STARTTLS required (`smtp://`) or implicit TLS
//! (`smtps://`), the server's certificate verified with the configured CA (or the system
//! store), an optional login. Never in clear text: the login's password, and the message.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{NotifyConfig, SmtpChannel};
use crate::error::{Error, ErrorKind};
use crate::secret::Password;

/// Where the server is and how TLS starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Server {
    host: String,
    port: u16,
    implicit_tls: bool,
}

impl Server {
    /// `smtp://host[:587]` (STARTTLS required) or `smtps://host[:465]` (implicit TLS).
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::Config,
                format!("notify url {url:?}: {why} (smtp://host:587 for STARTTLS, smtps://host:465)"),
            )
        };
        let u = url::Url::parse(url).map_err(|_| bad("not a URL"))?;
        let implicit_tls = match u.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => return Err(bad("the scheme must be smtp or smtps")),
        };
        let host = u.host_str().ok_or_else(|| bad("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        if !u.username().is_empty() || u.password().is_some() || u.path().len() > 1 {
            return Err(bad(
                "no credentials or path in the URL: use username and password_file",
            ));
        }
        Ok(Self {
            host,
            port: u.port().unwrap_or(if implicit_tls { 465 } else { 587 }),
            implicit_tls,
        })
    }
}

/// A configured SMTP channel.
pub(crate) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: Server,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

fn config_err(cfg: &NotifyConfig, m: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Config, format!("notify {:?}: {m}", cfg.name))
}

impl Smtp {
    pub(crate) fn from_config(cfg: &NotifyConfig, channel: &SmtpChannel) -> Result<Self, Error> {
        let server = Server::parse(&channel.url)?;
        let mut tls = TlsParameters::builder(server.host.clone());
        if let Some(ca) = &channel.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| config_err(cfg, format!("cannot read ca_file {}: {e}", ca.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| config_err(cfg, format!("ca_file {}: {e}", ca.display())))?;
            tls = tls
                .certificate_store(CertificateStore::None)
                .add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| config_err(cfg, format!("TLS parameters: {e}")))?;
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.as_str())
            .port(server.port)
            .tls(if server.implicit_tls {
                Tls::Wrapper(tls)
            } else {
                Tls::Required(tls)
            })
            .timeout(Some(Duration::from_secs(cfg.timeout_secs.max(1))));
        if let Some((user, file)) = &channel.login {
            let pw = Password::from_file(file)?;
            b = b.credentials(Credentials::new(user.clone(), pw.expose_secret().to_owned()));
        }
        let from: Mailbox = channel
            .from
            .parse()
            .map_err(|e| config_err(cfg, format!("from: {e}")))?;
        Ok(Self {
            transport: b.build(),
            from,
            server,
        })
    }

    /// Sends one message to `to`; the server's refusal or a network failure is the error.
    pub(crate) async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), Error> {
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .header(AutoSubmitted);
        for t in to {
            let mb: Mailbox = t.parse().map_err(|e| {
                Error::new(
                    ErrorKind::NotifyFailed,
                    format!("{t:?} is not a mail address: {e}"),
                )
            })?;
            m = m.to(mb);
        }
        let message = m
            .body(body.to_owned())
            .map_err(|e| Error::new(ErrorKind::NotifyFailed, format!("cannot build the message: {e}")))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| {
            let kind = if e.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::NotifyFailed
            };
            Error::new(
                kind,
                format!("SMTP {}:{}: {e}", self.server.host, self.server.port),
            )
        })
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies to a notification.
#[derive(Clone, Copy, Debug)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_say_how_tls_starts_and_carry_no_credentials() {
        assert_eq!(
            Server::parse("smtp://127.0.0.1:10587").expect("ok"),
            Server {
                host: "127.0.0.1".into(),
                port: 10587,
                implicit_tls: false
            }
        );
        assert_eq!(Server::parse("smtps://mail.example.test").expect("ok").port, 465);
        for bad in [
            "http://x",
            "smtp://user:pw@host",
            "smtp:///nohost",
            "smtp://host/path",
            "",
        ] {
            assert_eq!(
                Server::parse(bad).expect_err(bad).kind(),
                ErrorKind::Config,
                "{bad}"
            );
        }
    }
}
