//! The webhook revoker against a real HTTPS server started here on loopback (certificate
//! from the lab CA), and the command revoker with real programs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cadenas::session::{RevocationStatus, RevocationTarget, Revoker, RevokerConfig};
use cadenas::ErrorKind;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::OpenLdapLab;
use crate::support::{webhook_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// One received request: lower-cased headers and body.
pub(crate) type Received = Arc<Mutex<Vec<(HashMap<String, String>, Vec<u8>)>>>;

/// An HTTPS receiver answering the scripted statuses in order (the last one repeats).
pub(crate) async fn receiver(statuses: Vec<u16>, delay_ms: u64) -> (u16, Received) {
    let lab_dir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let tls_dir = PathBuf::from(lab_dir).join("openldap/tls");
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(tls_dir.join("cert.pem"))
        .expect("cert")
        .map(|c| c.expect("pem"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(tls_dir.join("key.pem")).expect("key");
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received: Received = Arc::default();
    let rec = received.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            let status = statuses[n.min(statuses.len() - 1)];
            n += 1;
            let Ok(mut s) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // read headers, then Content-Length bytes of body
            let (headers, body) = loop {
                let k = s.read(&mut buf).await.unwrap_or(0);
                if k == 0 {
                    break (HashMap::new(), Vec::new());
                }
                raw.extend_from_slice(&buf[..k]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                    let headers: HashMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while raw.len() < end + 4 + len {
                        let k = s.read(&mut buf).await.unwrap_or(0);
                        if k == 0 {
                            break;
                        }
                        raw.extend_from_slice(&buf[..k]);
                    }
                    break (headers, raw[end + 4..].to_vec());
                }
            };
            rec.lock().expect("lock").push((headers, body));
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            let body = if status == 200 {
                "{\"sessions_revoked\": 2}"
            } else {
                ""
            };
            let resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    (port, received)
}

fn webhook(port: u16, extra: &str) -> Arc<dyn Revoker> {
    let lab = OpenLdapLab::load();
    std::env::set_var("CADENAS_TEST_WEBHOOK_KEY", "webhook-signing-key-1");
    let toml = format!(
        "type = \"webhook\"\nname = \"app\"\nurl = \"https://localhost:{port}/revoke\"\nsecret_env = \"CADENAS_TEST_WEBHOOK_KEY\"\n\
         ca_file = \"{}\"\nbackoff_ms = 10\n{extra}",
        lab.get("CADENAS_LAB_CA")
    );
    let c: RevokerConfig = toml::from_str(&toml).expect("config");
    cadenas::session::build_revokers(&[c]).expect("build").remove(0)
}

fn target() -> RevocationTarget {
    let mut t = RevocationTarget::new("jdupont", "uid=jdupont,ou=people,dc=example,dc=test");
    t.incident = Some("INC-42".into());
    t
}

#[tokio::test]
async fn webhook_posts_a_signed_event_over_verified_tls() {
    let (port, received) = receiver(vec![200], 0).await;
    let out = webhook(port, "timeout_secs = 2").revoke(&target()).await;
    assert_eq!(out.status, RevocationStatus::Revoked, "{out:?}");
    assert_eq!(out.sessions_closed, 2);
    let got = received.lock().expect("lock");
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let ts: u64 = headers[TIMESTAMP_HEADER].parse().expect("timestamp");
    assert_eq!(
        headers[SIGNATURE_HEADER],
        webhook_signature("webhook-signing-key-1", ts, body),
        "receiver can verify the HMAC"
    );
    let event: serde_json::Value = serde_json::from_slice(body).expect("json");
    assert_eq!(event["event"], "cadenas.revoke");
    assert_eq!(event["user"], "jdupont");
    assert_eq!(event["incident"], "INC-42");
    assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(!String::from_utf8_lossy(body).contains("webhook-signing-key-1"));
}

#[tokio::test]
async fn webhook_retries_5xx_with_backoff_but_not_4xx() {
    let (port, received) = receiver(vec![503, 502, 200], 0).await;
    let out = webhook(port, "retries = 3").revoke(&target()).await;
    assert_eq!(out.status, RevocationStatus::Revoked, "{out:?}");
    assert_eq!(received.lock().expect("lock").len(), 3);

    let (port, received) = receiver(vec![503], 0).await;
    let out = webhook(port, "retries = 2").revoke(&target()).await;
    assert_eq!(
        out.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::RevokerFailed)
    );
    assert_eq!(received.lock().expect("lock").len(), 3, "1 + 2 retries, bounded");

    let (port, received) = receiver(vec![403], 0).await;
    let out = webhook(port, "retries = 3").revoke(&target()).await;
    assert_eq!(out.error.as_ref().map(|e| e.kind()), Some(ErrorKind::RevokerAuth));
    assert_eq!(received.lock().expect("lock").len(), 1, "no retry on 4xx");
}

#[tokio::test]
async fn webhook_timeouts_and_untrusted_certificates_are_typed_failures() {
    let (port, _) = receiver(vec![200], 3000).await;
    let out = webhook(port, "retries = 0\ntimeout_secs = 1")
        .revoke(&target())
        .await;
    assert_eq!(
        out.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::Timeout),
        "{out:?}"
    );

    // The lab CA is replaced by the system store's idea of trust: the receiver is refused.
    let (port, received) = receiver(vec![200], 0).await;
    let other_ca = crate::support::untrusted_ca("webhook");
    std::env::set_var("CADENAS_TEST_WEBHOOK_KEY2", "k");
    let c: RevokerConfig = toml::from_str(&format!(
        "type = \"webhook\"\nname = \"app\"\nurl = \"https://localhost:{port}/\"\nsecret_env = \"CADENAS_TEST_WEBHOOK_KEY2\"\nca_file = \"{}\"\nretries = 0",
        other_ca.display()
    ))
    .expect("config");
    let out = cadenas::session::build_revokers(&[c]).expect("build")[0]
        .revoke(&target())
        .await;
    assert_eq!(
        out.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::Tls),
        "{out:?}"
    );
    assert!(
        received.lock().expect("lock").is_empty(),
        "nothing was sent to an unverified server"
    );
    let _ = std::fs::remove_file(other_ca);
}

fn command(program: &str, args: &[&str], timeout: u64) -> Arc<dyn Revoker> {
    let mut cmd =
        cadenas::session::CommandConfig::new("cmd", program, args.iter().map(|s| s.to_string()).collect());
    cmd.timeout_secs = timeout;
    let c = RevokerConfig::Command(cmd);
    cadenas::session::build_revokers(&[c]).expect("build").remove(0)
}

#[tokio::test]
async fn command_gets_the_user_as_one_argument_without_a_shell() {
    let dir = std::env::temp_dir().join(format!("cadenas-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let record = dir.join("argv");
    let script = dir.join("record.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}\n",
            record.display()
        ),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    // what a shell would run: two commands and a command substitution
    let pwned = dir.join("pwned");
    let payload = format!(
        "jdupont; touch {p}1 $(touch {p}2) `touch {p}3`",
        p = pwned.display()
    );
    let mut t = target();
    t.login = payload.clone();
    let out = command(
        script.to_str().expect("utf8"),
        &["--kill", "{user}", "--dn", "{dn}"],
        5,
    )
    .revoke(&t)
    .await;
    assert_eq!(out.status, RevocationStatus::Revoked, "{out:?}");
    let argv = std::fs::read_to_string(&record).expect("record");
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "--kill",
            payload.as_str(),
            "--dn",
            "uid=jdupont,ou=people,dc=example,dc=test"
        ]
    );
    for i in 1..=3 {
        assert!(
            !dir.join(format!("pwned{i}")).exists(),
            "no shell ran the user name"
        );
    }
    // the same line through a shell does run them: the payload can fail the test
    let through_shell = std::process::Command::new("sh")
        .args(["-c", &format!("echo {payload}")])
        .output()
        .expect("sh");
    assert!(through_shell.status.success());
    assert!(dir.join("pwned1").exists() && dir.join("pwned2").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn command_failures_and_timeouts_are_reported() {
    let out = command("/bin/false", &[], 5).revoke(&target()).await;
    assert_eq!(
        out.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::RevokerFailed)
    );
    let pid_file = std::env::temp_dir().join(format!("cadenas-cmd-pid-{}", std::process::id()));
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let out = command("/bin/sh", &["-c", &script, "sh", "{user}"], 1)
        .revoke(&target())
        .await;
    assert_eq!(out.error.as_ref().map(|e| e.kind()), Some(ErrorKind::Timeout));
    let pid = std::fs::read_to_string(&pid_file).expect("pid").trim().to_owned();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} was killed and reaped, not left running"
    );
    let _ = std::fs::remove_file(&pid_file);
    // a child that writes more to stderr than a pipe holds, then fails: read while it runs,
    // so it is not blocked until the timeout, and its failure is what is reported
    let noisy = "head -c 262144 /dev/zero | tr '\\0' x >&2; echo; echo the real reason >&2; exit 3";
    let out = command("/bin/sh", &["-c", noisy, "sh", "{user}"], 20)
        .revoke(&target())
        .await;
    let e = out.error.as_ref().expect("failed");
    assert_eq!(e.kind(), ErrorKind::RevokerFailed, "{e}");
    assert!(e.message().contains("exit status: 3"), "{e}");
    let out = command("/nonexistent/program", &[], 1).revoke(&target()).await;
    assert_eq!(
        out.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::RevokerFailed)
    );
}
