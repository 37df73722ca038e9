//! Test fixtures for the lab servers started by `lab/*.sh` (see README).
//!
//! The lab must be running: a missing lab is a test failure, not a skip.
#![allow(dead_code)]

pub mod smtp;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use cadenas::directory::{Dn, UserName};
use cadenas::Config;
use ldap3::{LdapConnAsync, LdapConnSettings, Mod};

/// Facts about the running OpenLDAP lab, from `$CADENAS_LAB_DIR/openldap/lab.env`.
pub struct OpenLdapLab {
    pub env: HashMap<String, String>,
}

impl OpenLdapLab {
    pub fn load() -> Self {
        Self {
            env: read_env("openldap/lab.env", "lab/openldap.sh start"),
        }
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("lab.env has no {key}"))
    }

    /// The lab's own Cadenas config (service account over LDAPS).
    pub fn config(&self) -> Config {
        Config::from_file(self.get("CADENAS_LAB_CONFIG").as_ref()).expect("lab config")
    }

    /// The lab config with its TOML text edited by `f` (e.g. another URL).
    pub fn config_with(&self, f: impl Fn(String) -> String) -> Config {
        let path = PathBuf::from(self.get("CADENAS_LAB_CONFIG"));
        let text = f(std::fs::read_to_string(&path).expect("read config"));
        Config::from_toml_str(&text, path.parent().expect("dir")).expect("edited config")
    }

    pub fn user_password(&self) -> cadenas::Password {
        cadenas::Password::new(self.get("CADENAS_LAB_USER_PW"))
    }

    /// An ldap3 connection bound as the lab's rootDN: for fixtures and for pinning server
    /// behaviour from outside Cadenas, never for what Cadenas itself does.
    pub async fn admin(&self) -> ldap3::Ldap {
        bound_connection(
            self.get("CADENAS_LAB_LDAPS_URL"),
            self.get("CADENAS_LAB_CA"),
            self.get("CADENAS_LAB_ADMIN_DN"),
            self.get("CADENAS_LAB_ADMIN_PW"),
        )
        .await
    }

    /// Adds a fresh user (unique uid, the lab's initial password) so tests never share state.
    pub async fn fresh_user(&self, tag: &str) -> (UserName, Dn) {
        self.fresh_user_with(tag, &[]).await
    }

    pub async fn fresh_user_with(&self, tag: &str, extra: &[(&str, &str)]) -> (UserName, Dn) {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        let uid = format!(
            "t-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let dn = format!("uid={uid},{}", self.get("CADENAS_LAB_PEOPLE"));
        let mail = format!("{uid}@example.test");
        let pw = self.get("CADENAS_LAB_USER_PW").to_owned();
        let mut attrs: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("uid", HashSet::from([uid.as_str()])),
            ("cn", HashSet::from([uid.as_str()])),
            ("sn", HashSet::from(["Test"])),
            ("userPassword", HashSet::from([pw.as_str()])),
        ];
        if !extra.iter().any(|(k, _)| *k == "mail") {
            attrs.push(("mail", HashSet::from([mail.as_str()])));
        }
        for (k, v) in extra {
            attrs.push((k, HashSet::from([*v])));
        }
        let mut admin = self.admin().await;
        admin
            .add(&dn, attrs)
            .await
            .expect("add")
            .success()
            .expect("add ok");
        let _ = admin.unbind().await;
        (UserName::parse(&uid).expect("uid"), Dn::parse(&dn).expect("dn"))
    }

    /// Replaces attributes as the rootDN (to set up server-side situations).
    pub async fn admin_replace(&self, dn: &Dn, attr: &str, values: &[&[u8]]) {
        replace_as(self.admin().await, dn, attr, values).await
    }
}

/// A tracing subscriber at TRACE level that writes into a shared buffer, for checking that
/// no secret ever reaches a log line. Install with `tracing::subscriber::set_default`.
#[derive(Clone, Default)]
pub struct CapturedLogs(pub Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }

    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Held by the tests that must not share the directory with each other: the 6000-account run
/// (whose group updates a syncrepl replica replays entry by entry) and the replica test.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(())).lock().await
}

/// Held while a test runs a policy service where the lab Postfix asks (`CADENAS_LAB_POLICY`):
/// one at a time.
pub async fn policy_address() -> (tokio::sync::MutexGuard<'static, ()>, String) {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    let guard = LOCK.get_or_init(|| tokio::sync::Mutex::new(())).lock().await;
    (guard, smtp_env()["CADENAS_LAB_POLICY"].clone())
}

/// Waits until something listens at `addr` (a TCP address), for at most 10 s.
pub async fn listening(addr: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nothing listens at {addr} after 10 s");
}

/// Runs `lab/NAME ARG` (e.g. `openldap.sh replica-stop`) and fails the test if it fails.
pub fn lab_script(name: &str, arg: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lab")
        .join(name);
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(arg)
        .output()
        .expect("lab script");
    assert!(
        out.status.success(),
        "lab/{name} {arg}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Facts about the running Dovecot lab, from `$CADENAS_LAB_DIR/dovecot/lab.env`.
pub fn dovecot_env() -> HashMap<String, String> {
    read_env("dovecot/lab.env", "lab/dovecot.sh start")
}

/// Facts about the running MTA lab, from `$CADENAS_LAB_DIR/smtp/lab.env`.
pub fn smtp_env() -> HashMap<String, String> {
    read_env("smtp/lab.env", "lab/smtp.sh start")
}

/// A raw IMAP client connection: enough to log in, idle, and see a server-side close.
pub struct Imap {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
}

static NEXT_SOURCE: AtomicU32 = AtomicU32::new(0);

impl Imap {
    /// Connects from a fresh 127.0.0.x source address (Dovecot delays repeated failures per IP)
    /// and logs in. `Err` carries the server's refusal line.
    pub async fn login(addr: &str, user: &str, password: &str) -> Result<Imap, String> {
        let n = 2 + (std::process::id() % 50) * 5 + NEXT_SOURCE.fetch_add(1, Ordering::SeqCst) % 5;
        Self::login_from(
            addr,
            &format!("127.0.{}.{}", n / 250, 1 + n % 250),
            user,
            password,
        )
        .await
    }

    /// Connects from the loopback address `source` (as an attacker's client would from its
    /// own address) and logs in. `Err` carries the server's refusal line.
    pub async fn login_from(addr: &str, source: &str, user: &str, password: &str) -> Result<Imap, String> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(format!("{source}:0").parse().expect("source addr"))
            .map_err(|e| e.to_string())?;
        let tcp = socket
            .connect(addr.parse().expect("imap addr"))
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = tokio::io::BufReader::new(tcp);
        let mut line = String::new();
        stream.read_line(&mut line).await.map_err(|e| e.to_string())?;
        assert!(line.starts_with("* OK"), "greeting: {line}");
        let cmd = format!("a1 LOGIN \"{user}\" \"{password}\"\r\n");
        stream
            .get_mut()
            .write_all(cmd.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        loop {
            line.clear();
            let n = stream.read_line(&mut line).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed during login".into());
            }
            if line.starts_with("a1 OK") {
                return Ok(Imap { stream });
            }
            if line.starts_with("a1 ") {
                return Err(line.trim().to_owned());
            }
        }
    }

    /// Whether a login was refused *by the server* (its tagged `NO` answer), not by a
    /// connection that failed.
    pub fn refused(r: &Result<Imap, String>) -> bool {
        matches!(r, Err(line) if line.starts_with("a1 NO"))
    }

    /// Enters IDLE, like a mail client waiting for new mail.
    pub async fn idle(&mut self) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        self.stream
            .get_mut()
            .write_all(b"a2 IDLE\r\n")
            .await
            .expect("idle");
        let mut line = String::new();
        self.stream.read_line(&mut line).await.expect("idle answer");
        assert!(line.starts_with('+'), "IDLE answer: {line}");
    }

    /// Waits up to `secs` for the server to close the session (BYE and/or EOF). True if closed.
    pub async fn closed_within(&mut self, secs: u64) -> bool {
        use tokio::io::AsyncBufReadExt;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut line = String::new();
        loop {
            line.clear();
            match tokio::time::timeout_at(deadline, self.stream.read_line(&mut line)).await {
                Err(_) => return false,
                Ok(Err(_)) | Ok(Ok(0)) => return true,
                Ok(Ok(_)) if line.starts_with("* BYE") => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }

    /// Every message of INBOX as the server sends it (SELECT, FETCH 1:* BODY.PEEK[]): the raw
    /// response text, headers and bodies; empty when INBOX is empty.
    pub async fn inbox(&mut self) -> String {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut all = String::new();
        for (tag, cmd) in [("s1", "SELECT INBOX"), ("f1", "FETCH 1:* BODY.PEEK[]")] {
            self.stream
                .get_mut()
                .write_all(format!("{tag} {cmd}\r\n").as_bytes())
                .await
                .expect("imap command");
            let mut line = String::new();
            loop {
                line.clear();
                let n = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    self.stream.read_line(&mut line),
                )
                .await
                .expect("imap answer in time")
                .expect("imap read");
                assert!(n > 0, "connection closed during {cmd}");
                if line.starts_with(&format!("{tag} ")) {
                    if tag == "f1" && line.starts_with("f1 BAD") {
                        return String::new(); // 1:* of an empty mailbox
                    }
                    break;
                }
                if tag == "f1" {
                    all.push_str(&line);
                }
            }
        }
        all
    }

    /// Whether the session still answers a NOOP (leaves IDLE first).
    pub async fn alive(&mut self) -> bool {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        if self
            .stream
            .get_mut()
            .write_all(b"DONE\r\na3 NOOP\r\n")
            .await
            .is_err()
        {
            return false;
        }
        let mut line = String::new();
        loop {
            line.clear();
            match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.stream.read_line(&mut line),
            )
            .await
            {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
                Ok(Ok(_)) if line.starts_with("a3 OK") => return true,
                Ok(Ok(_)) if line.starts_with("* BYE") => return false,
                Ok(Ok(_)) => continue,
            }
        }
    }
}

/// The secret inside an otpauth:// URI.
pub fn secret_from_uri(uri: &str) -> cadenas::Secret {
    let q = uri.split_once("secret=").expect("secret=").1;
    cadenas::Secret::new(
        cadenas::mfa::totp::base32_decode(q.split('&').next().expect("value")).expect("base32"),
    )
}

pub fn read_env(rel: &str, hint: &str) -> HashMap<String, String> {
    let dir = std::env::var("CADENAS_LAB_DIR").unwrap_or_else(|_| "/tmp/cadenas-lab".into());
    let path = PathBuf::from(dir).join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("lab not running ({}: {e}); run `{hint}`", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), shell_unquote(v)))
        .collect()
}

/// `'value'` (with `'\''` for a quote inside) as `lab/lib.sh` `quote_env` writes it.
fn shell_unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("'\\''", "'"),
        None => v.to_owned(),
    }
}

/// The Samba AD lab (`lab/samba.sh start`): fixtures act as Administrator; Cadenas acts as
/// the delegated helpdesk account from the lab's config.
pub struct AdLab {
    pub env: HashMap<String, String>,
}

impl AdLab {
    pub fn load() -> Self {
        Self {
            env: read_env("samba/lab.env", "lab/samba.sh start"),
        }
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("samba lab.env has no {key}"))
    }

    pub fn config_path(&self) -> PathBuf {
        PathBuf::from(self.get("CADENAS_LAB_AD_CONFIG"))
    }

    pub async fn admin(&self) -> ldap3::Ldap {
        bound_connection(
            self.get("CADENAS_LAB_AD_LDAPS_URL"),
            self.get("CADENAS_LAB_CA"),
            self.get("CADENAS_LAB_AD_ADMIN"),
            self.get("CADENAS_LAB_AD_ADMIN_PW"),
        )
        .await
    }

    /// Adds an enabled user (sAMAccountName ≤ 20 characters) with the lab password and `uac`.
    pub async fn fresh_user_uac(&self, tag: &str, uac: u32) -> (UserName, Dn) {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(6)
            .collect();
        let sam = format!(
            "t{tag}{:05}{n:02}{:03}",
            std::process::id() % 100_000,
            nanos % 1000
        );
        let sam: String = sam.chars().take(20).collect();
        let dn = format!("CN={sam},{}", self.get("CADENAS_LAB_AD_PEOPLE"));
        let upn = format!("{sam}@example.test");
        let pwd = unicode_pwd(self.get("CADENAS_LAB_AD_USER_PW"));
        let uac = uac.to_string();
        let mut admin = self.admin().await;
        let attrs: Vec<(&[u8], HashSet<&[u8]>)> = vec![
            (b"objectClass", HashSet::from([&b"user"[..]])),
            (b"sAMAccountName", HashSet::from([sam.as_bytes()])),
            (b"userPrincipalName", HashSet::from([upn.as_bytes()])),
            (b"mail", HashSet::from([upn.as_bytes()])),
            (b"unicodePwd", HashSet::from([&pwd[..]])),
            (b"userAccountControl", HashSet::from([uac.as_bytes()])),
        ];
        admin
            .add(&dn, attrs)
            .await
            .expect("add")
            .success()
            .expect("add ok");
        let _ = admin.unbind().await;
        (UserName::parse(&sam).expect("sam"), Dn::parse(&dn).expect("dn"))
    }

    pub async fn admin_replace(&self, dn: &Dn, attr: &str, values: &[&[u8]]) {
        replace_as(self.admin().await, dn, attr, values).await
    }
}

/// One suite, two flavours: the same test body against OpenLDAP and against Samba AD.
pub enum AnyLab {
    OpenLdap(OpenLdapLab),
    Ad(AdLab),
}

impl AnyLab {
    pub fn config(&self) -> Config {
        match self {
            AnyLab::OpenLdap(l) => l.config(),
            AnyLab::Ad(l) => Config::from_file(&l.config_path()).expect("ad config"),
        }
    }

    pub fn config_with(&self, f: impl Fn(String) -> String) -> Config {
        let path = match self {
            AnyLab::OpenLdap(l) => PathBuf::from(l.get("CADENAS_LAB_CONFIG")),
            AnyLab::Ad(l) => l.config_path(),
        };
        let text = f(std::fs::read_to_string(&path).expect("read config"));
        Config::from_toml_str(&text, path.parent().expect("dir")).expect("edited config")
    }

    pub fn user_password(&self) -> cadenas::Password {
        match self {
            AnyLab::OpenLdap(l) => l.user_password(),
            AnyLab::Ad(l) => cadenas::Password::new(l.get("CADENAS_LAB_AD_USER_PW")),
        }
    }

    pub async fn fresh_user(&self, tag: &str) -> (UserName, Dn) {
        match self {
            AnyLab::OpenLdap(l) => l.fresh_user(tag).await,
            AnyLab::Ad(l) => l.fresh_user_uac(tag, 512).await,
        }
    }

    /// The LDAPS URL and the plain/StartTLS URL of the server.
    pub fn urls(&self) -> (String, String) {
        match self {
            AnyLab::OpenLdap(l) => (
                l.get("CADENAS_LAB_LDAPS_URL").into(),
                l.get("CADENAS_LAB_LDAP_URL").into(),
            ),
            AnyLab::Ad(l) => (
                l.get("CADENAS_LAB_AD_LDAPS_URL").into(),
                l.get("CADENAS_LAB_AD_LDAP_URL").into(),
            ),
        }
    }

    pub fn ca(&self) -> String {
        match self {
            AnyLab::OpenLdap(l) => l.get("CADENAS_LAB_CA").into(),
            AnyLab::Ad(l) => l.get("CADENAS_LAB_CA").into(),
        }
    }

    pub fn mfa_group(&self) -> String {
        match self {
            AnyLab::OpenLdap(l) => l.get("CADENAS_LAB_MFA_GROUP").into(),
            AnyLab::Ad(l) => l.get("CADENAS_LAB_AD_MFA_GROUP").into(),
        }
    }
}

/// An ldap3 connection over LDAPS (verified with `ca`), bound as `dn`: for fixtures and for
/// pinning server behaviour from outside Cadenas, never for what Cadenas itself does.
pub async fn bound_connection(url: &str, ca: &str, dn: &str, password: &str) -> ldap3::Ldap {
    let tls = tls_config(ca);
    let (conn, mut ldap) = LdapConnAsync::with_settings(LdapConnSettings::new().set_config(tls), url)
        .await
        .expect("connect");
    ldap3::drive!(conn);
    ldap.simple_bind(dn, password)
        .await
        .expect("bind")
        .success()
        .expect("bind ok");
    ldap
}

async fn replace_as(mut admin: ldap3::Ldap, dn: &Dn, attr: &str, values: &[&[u8]]) {
    let vals: HashSet<Vec<u8>> = values.iter().map(|v| v.to_vec()).collect();
    admin
        .modify(dn.as_str(), vec![Mod::Replace(attr.as_bytes().to_vec(), vals)])
        .await
        .expect("modify")
        .success()
        .expect("modify ok");
    let _ = admin.unbind().await;
}

/// A self-signed CA that signed none of the lab's certificates (for "untrusted" tests).
pub fn untrusted_ca(tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("cadenas-untrusted-ca-{tag}-{}.pem", std::process::id()));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Untrusted CA",
        ])
        .args(["-keyout", "/dev/null", "-out"])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl req");
    path
}

/// How many times each (user, step) has a finished outcome in the journal: a resumed run
/// must leave exactly one per step.
pub fn done_steps(journal: &std::path::Path) -> HashMap<(String, cadenas::journal::Step), usize> {
    let mut done = HashMap::new();
    for rec in cadenas::journal::read(journal).expect("read journal") {
        if let cadenas::journal::Event::Outcome {
            user, step, status, ..
        } = rec.event
        {
            if status.is_done() {
                *done.entry((user, step)).or_default() += 1;
            }
        }
    }
    done
}

/// A rustls client config trusting exactly the lab CA (PEM file `ca`), built here rather than
/// with Cadenas' own (crate-private) TLS code: fixtures stay independent of what they test.
pub fn tls_config(ca: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("PEM")).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// AD's `unicodePwd` value: the password in double quotes, UTF-16LE (written independently of
/// the library's encoder, for fixtures).
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// Facts about the running PostgreSQL lab, from `$CADENAS_LAB_DIR/postgres/lab.env`.
pub fn pg_env() -> HashMap<String, String> {
    read_env("postgres/lab.env", "lab/postgres.sh start")
}

/// Runs `f` on a helper thread: the synchronous PostgreSQL client must not be used from a
/// thread that drives a Tokio runtime (async tests).
pub fn pg_off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("PostgreSQL helper thread"))
}

/// Runs one SQL statement on `dbname` as the `cadenas` role (from any thread); rows changed.
pub fn pg_execute(dbname: &str, sql: &str) -> u64 {
    pg_off_runtime(|| pg_connect(dbname).execute(sql, &[]).expect(sql))
}

/// A connection to the lab PostgreSQL as the `cadenas` role (TLS, the lab CA), to `dbname`.
/// Not from an async test's thread: use [`pg_execute`] or [`pg_off_runtime`] there.
pub fn pg_connect(dbname: &str) -> postgres::Client {
    use rustls::pki_types::pem::PemObject;
    let env = pg_env();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&env["CADENAS_LAB_PG_CA"]).expect("CA") {
        roots.add(c.expect("pem")).expect("CA cert");
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("tls")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let pw = std::fs::read_to_string(&env["CADENAS_LAB_PG_PASSWORD_FILE"]).expect("pg password");
    let mut cfg: postgres::Config = env["CADENAS_LAB_PG_URL"].parse().expect("url");
    cfg.dbname(dbname)
        .password(pw.trim_end())
        .ssl_mode(postgres::config::SslMode::Require);
    cfg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        .expect("connect to the lab PostgreSQL")
}

/// A new, empty database on the lab PostgreSQL for one test, dropped (with its connections)
/// when this goes out of scope.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "cadenas_t_{}_{}_{}",
            tag.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        pg_execute("cadenas", &format!("CREATE DATABASE \"{name}\""));
        Self { name }
    }

    /// Its URL (no password), for a config.
    pub fn url(&self) -> String {
        let base = &pg_env()["CADENAS_LAB_PG_URL"];
        let (server, _) = base.rsplit_once('/').expect("url");
        format!("{server}/{}", self.name)
    }

    /// `[mfa]`/`[journal]` keys naming the lab's password file and CA.
    pub fn toml_keys(&self) -> String {
        let env = pg_env();
        format!(
            "database = \"{}\"\ndatabase_password_file = \"{}\"\ndatabase_ca_file = \"{}\"\n",
            self.url(),
            env["CADENAS_LAB_PG_PASSWORD_FILE"],
            env["CADENAS_LAB_PG_CA"]
        )
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            std::panic::catch_unwind(|| pg_connect("cadenas").batch_execute(&sql).is_ok())
        })
        .join();
    }
}

/// A TOML config's text without the named `[sections]` (to append other ones).
pub fn without_sections(text: &str, names: &[&str]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = names.iter().any(|n| line == format!("[{n}]"));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every test using the lab PostgreSQL holds this shared; the restart test holds it alone.
/// (From a synchronous test; async tests use [`pg_shared_async`].)
pub fn pg_shared() -> tokio::sync::RwLockReadGuard<'static, ()> {
    pg_lock().blocking_read()
}

/// [`pg_shared`] for async tests.
pub async fn pg_shared_async() -> tokio::sync::RwLockReadGuard<'static, ()> {
    pg_lock().read().await
}

/// Held alone, by the test that restarts the lab PostgreSQL (synchronous).
pub fn pg_exclusive() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    pg_lock().blocking_write()
}

fn pg_lock() -> &'static tokio::sync::RwLock<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::RwLock<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::RwLock::new(()))
}

/// The clock, in Unix seconds (the tests judge TOTP codes at explicit times).
#[allow(dead_code)]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Operator input as the library takes it (every name must be valid).
#[allow(dead_code)]
pub fn refs<S: AsRef<str>>(names: &[S]) -> Vec<cadenas::directory::UserRef> {
    cadenas::directory::UserRef::parse_all(names).expect("valid user names")
}

/// One user name as the library takes it.
#[allow(dead_code)]
pub fn one(name: &str) -> cadenas::directory::UserRef {
    cadenas::directory::UserRef::parse(name).expect("a valid user name")
}

/// The headers a Cadenas webhook signs with (its documented protocol).
#[allow(dead_code)]
pub const SIGNATURE_HEADER: &str = "x-cadenas-signature";
/// See [`SIGNATURE_HEADER`].
#[allow(dead_code)]
pub const TIMESTAMP_HEADER: &str = "x-cadenas-timestamp";

/// The signature a receiver expects, computed independently of the code under test:
/// `sha256=` + the hex HMAC-SHA256 of `"<timestamp>.<body>"` under `key`, by openssl.
#[allow(dead_code)]
pub fn webhook_signature(key: &str, ts: u64, body: &[u8]) -> String {
    use std::io::Write;
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(body);
    let mut openssl = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    openssl
        .stdin
        .take()
        .expect("stdin")
        .write_all(&signed)
        .expect("write");
    let digest = String::from_utf8(openssl.wait_with_output().expect("openssl").stdout).expect("utf8");
    format!("sha256={}", digest.trim().rsplit(' ').next().expect("hex"))
}
