//! A real SMTP submission client for the lab Postfix: bound to its own loopback address (as an
//! attacker's client would be), STARTTLS verified with the lab CA, SMTP AUTH PLAIN, and one
//! session for many messages — what a spam run on a stolen password looks like.

use std::collections::HashMap;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// An authenticated SMTP session.
pub struct Smtp {
    stream: BufReader<Tls>,
}

/// A reply: code and text (every line).
pub type Reply = (u16, String);

async fn read_reply<S: tokio::io::AsyncBufRead + Unpin>(s: &mut S) -> Result<Reply, String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), s.read_line(&mut line))
            .await
            .map_err(|_| "no reply in 30 s".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed (after {text:?})"));
        }
        text.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            return Ok((code, text));
        }
    }
}

impl Smtp {
    /// Connects to `smtp_env()["CADENAS_LAB_SMTP_STARTTLS"]` from `source`, upgrades to TLS
    /// and logs in as `user`. `Err` carries the server's refusal.
    pub async fn login_from(source: &str, user: &str, password: &str) -> Result<Smtp, String> {
        let env = super::smtp_env();
        let addr = &env["CADENAS_LAB_SMTP_STARTTLS"];
        let ca = super::read_env("openldap/lab.env", "lab/openldap.sh start")["CADENAS_LAB_CA"].clone();
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(format!("{source}:0").parse().expect("source addr"))
            .map_err(|e| e.to_string())?;
        let tcp = socket
            .connect(addr.parse().expect("smtp addr"))
            .await
            .map_err(|e| e.to_string())?;
        let mut plain = BufReader::new(tcp);
        let expect = |r: Reply, code: u16| if r.0 == code { Ok(()) } else { Err(r.1) };
        expect(read_reply(&mut plain).await?, 220)?;
        plain
            .get_mut()
            .write_all(b"EHLO attacker.test\r\n")
            .await
            .map_err(|e| e.to_string())?;
        expect(read_reply(&mut plain).await?, 250)?;
        plain
            .get_mut()
            .write_all(b"STARTTLS\r\n")
            .await
            .map_err(|e| e.to_string())?;
        expect(read_reply(&mut plain).await?, 220)?;
        let connector = tokio_rustls::TlsConnector::from(super::tls_config(&ca));
        let host = addr.split(':').next().expect("host").to_owned();
        let name = rustls::pki_types::ServerName::try_from(host).expect("server name");
        let tls = connector
            .connect(name, plain.into_inner())
            .await
            .map_err(|e| e.to_string())?;
        let mut s = Smtp {
            stream: BufReader::new(tls),
        };
        expect(s.command("EHLO attacker.test").await?, 250)?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        expect(s.command(&format!("AUTH PLAIN {token}")).await?, 235)?;
        Ok(s)
    }

    /// Sends one command line and reads the reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, String> {
        self.stream
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        read_reply(&mut self.stream).await
    }

    /// Sends a message on this session: `Ok(queue ID)` when Postfix queued it, else
    /// `Err(the first refusal)` (the session stays usable: a refused message is reset).
    pub async fn send(&mut self, from: &str, to: &[&str], body: &str) -> Result<String, Reply> {
        let io = |e: String| (0, e);
        let r = self.command(&format!("MAIL FROM:<{from}>")).await.map_err(io)?;
        if r.0 != 250 {
            return Err(r);
        }
        let mut refused = None;
        let mut accepted = 0;
        for rcpt in to {
            let r = self.command(&format!("RCPT TO:<{rcpt}>")).await.map_err(io)?;
            if r.0 == 250 {
                accepted += 1;
            } else if refused.is_none() {
                refused = Some(r);
            }
        }
        if accepted == 0 {
            let _ = self.command("RSET").await;
            return Err(refused.unwrap_or((0, "no recipient".into())));
        }
        let r = self.command("DATA").await.map_err(io)?;
        if r.0 != 354 {
            let _ = self.command("RSET").await;
            return Err(r);
        }
        let data = format!("From: <{from}>\r\nSubject: lab\r\n\r\n{body}\r\n.");
        let r = self.command(&data).await.map_err(io)?;
        if r.0 != 250 {
            return Err(r);
        }
        Ok(r.1
            .rsplit("queued as ")
            .next()
            .map(|s| s.trim().to_owned())
            .unwrap_or_default())
    }
}

/// The lab Postfix's queue as `postqueue -j` lists it: queue ID → queue name.
pub fn queue() -> HashMap<String, String> {
    let dir = &super::smtp_env()["CADENAS_LAB_SMTP_CONFIG_DIR"];
    let out = std::process::Command::new("postqueue")
        .args(["-c", dir, "-j"])
        .output()
        .expect("postqueue");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["queue_id"].as_str().unwrap_or("").to_owned(),
                v["queue_name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Deletes messages from the lab queue (a test cleans up what it queued).
pub fn delete_queued(ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let dir = &super::smtp_env()["CADENAS_LAB_SMTP_CONFIG_DIR"];
    let mut child = std::process::Command::new("postsuper")
        .args(["-c", dir, "-d", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("postsuper");
    use std::io::Write;
    if let Some(mut w) = child.stdin.take() {
        let _ = w.write_all((ids.join("\n") + "\n").as_bytes());
    }
    let _ = child.wait();
}
