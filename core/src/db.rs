//! Where shared state lives: a file on this host, or a PostgreSQL database that several hosts
//! share (the MFA store's `[mfa] database`, the journal's `[journal] database`).
//!
//! A PostgreSQL location is a `postgresql://user@host:port/dbname` URL *without* a password:
//! the password comes from a file (`database_password_file`), like every other secret of the
//! config. Over TCP the connection is always TLS, verified against `database_ca_file` (or the
//! system's CA certificates) with the URL's host name — `sslmode=disable` is refused; a Unix
//! socket (`?host=/run/postgresql`) is local and used without TLS.
//!
//! ```
//! use cadenas::{Database, PgTarget};
//!
//! let db: Database = "postgresql://cadenas@db.example.test:5432/cadenas".parse().unwrap();
//! assert!(matches!(db, Database::Postgres(_)));
//! let file: Database = "/var/lib/cadenas/mfa.db".parse().unwrap();
//! assert!(matches!(file, Database::File(_)));
//! assert!(PgTarget::parse("postgresql://u:inline-secret@h/db", None, None).is_err());
//! ```

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postgres::config::{Host, SslMode};

use crate::error::{Error, ErrorKind};
use crate::secret::Password;

/// A store's location: a file, or a PostgreSQL URL (`postgresql://` or `postgres://`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// A file on this host (SQLite for the MFA store, JSON lines for the journal).
    File(PathBuf),
    /// A PostgreSQL database: the URL, without password.
    Postgres(String),
}

impl Database {
    /// The file, if this is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Database::File(p) => Some(p),
            Database::Postgres(_) => None,
        }
    }

    pub(crate) fn resolve_path(&mut self, base: &Path) {
        if let Database::File(p) = self {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::File(p) => write!(f, "{}", p.display()),
            Database::Postgres(u) => f.write_str(u),
        }
    }
}

impl FromStr for Database {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.starts_with("postgresql://") || s.starts_with("postgres://") {
            Ok(Database::Postgres(s.to_owned()))
        } else if s.contains("://") {
            Err(Error::new(
                ErrorKind::Config,
                "a database is a file path or a postgresql:// URL",
            ))
        } else if s.is_empty() {
            Err(Error::new(ErrorKind::Config, "empty database path"))
        } else {
            Ok(Database::File(PathBuf::from(s)))
        }
    }
}

impl From<PathBuf> for Database {
    fn from(p: PathBuf) -> Self {
        Database::File(p)
    }
}

impl From<&Path> for Database {
    fn from(p: &Path) -> Self {
        Database::File(p.to_owned())
    }
}

impl From<&str> for Database {
    /// A file path (use [`str::parse`] to accept URLs too).
    fn from(p: &str) -> Self {
        Database::File(PathBuf::from(p))
    }
}

impl<'de> serde::Deserialize<'de> for Database {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.message()))
    }
}

/// A checked PostgreSQL connection target: URL (no password in it), password file, CA file.
#[derive(Clone)]
pub struct PgTarget {
    url: String,
    config: postgres::Config,
    password_file: Option<PathBuf>,
    tls: Option<PathBuf>,
    over_tcp: bool,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.url)
            .field("password_file", &self.password_file)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Checks a `postgresql://` URL: parseable, no password in it, no `sslmode=disable` over
    /// TCP. Errors are [`ErrorKind::Config`] and never repeat the URL (it may hold a pasted
    /// secret).
    pub fn parse(url: &str, password_file: Option<PathBuf>, ca_file: Option<PathBuf>) -> Result<Self, Error> {
        let bad = |why: &str| Error::new(ErrorKind::Config, format!("database URL: {why}"));
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| bad(&format!("not a PostgreSQL URL ({e})")))?;
        if config.get_password().is_some() {
            return Err(bad(
                "holds a password: put it in database_password_file, never in the config",
            ));
        }
        if config.get_user().is_none() {
            return Err(bad("names no user (postgresql://USER@host/db)"));
        }
        if config.get_dbname().is_none() {
            return Err(bad("names no database (postgresql://user@host/DB)"));
        }
        let hosts = config.get_hosts();
        let tcp = hosts.iter().filter(|h| matches!(h, Host::Tcp(_))).count();
        if hosts.is_empty() {
            return Err(bad("names no host"));
        }
        if tcp > 0 && tcp < hosts.len() {
            return Err(bad("mixes TCP hosts and Unix sockets"));
        }
        let over_tcp = tcp > 0;
        if over_tcp {
            if config.get_ssl_mode() == SslMode::Disable {
                return Err(bad(
                    "sslmode=disable: the connection to PostgreSQL is always TLS over TCP",
                ));
            }
            config.ssl_mode(SslMode::Require);
        } else {
            config.ssl_mode(SslMode::Disable);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("cadenas");
        Ok(Self {
            url: url.to_owned(),
            config,
            password_file,
            tls: ca_file,
            over_tcp,
        })
    }

    /// The URL, as configured (it holds no password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a connection; errors are of `kind` and name the URL, never the password.
    pub(crate) fn connect(&self, kind: ErrorKind) -> Result<PgClient, Error> {
        off_runtime(|| self.connect_here(kind)).map(|c| PgClient(Some(c)))
    }

    fn connect_here(&self, kind: ErrorKind) -> Result<postgres::Client, Error> {
        let mut config = self.config.clone();
        if let Some(f) = &self.password_file {
            let pw = Password::from_file(f)
                .map_err(|e| Error::new(kind, format!("{}: {}", self.url, e.message())))?;
            config.password(pw.expose_secret());
        }
        let fail = |e: postgres::Error| {
            Error::new(
                kind,
                format!("PostgreSQL {}: cannot connect: {}", self.url, pg_reason(&e)),
            )
            .with_source(e)
        };
        if self.over_tcp {
            let rustls = match &self.tls {
                Some(ca) => crate::tls::client_config_with_ca(ca)?,
                None => crate::tls::client_config_with_system_roots()?,
            };
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*rustls).clone());
            config.connect(tls).map_err(fail)
        } else {
            config.connect(postgres::NoTls).map_err(fail)
        }
    }
}

/// Runs `f` where the synchronous PostgreSQL client may block: directly on a plain thread, or on
/// a scoped helper thread when called from inside a Tokio runtime — the client drives its own
/// small runtime, which must not be started from a thread already driving one (the async
/// `Responder` opens stores and reads the journal from its tasks).
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A synchronous PostgreSQL connection usable from any thread: every use, and its closing
/// (which talks to the server), goes through [`off_runtime`].
pub(crate) struct PgClient(Option<postgres::Client>);

impl PgClient {
    /// Runs `f` on the connection.
    pub(crate) fn run<T: Send>(
        &mut self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, PgFailure> {
        let Some(client) = self.0.as_mut() else {
            return Err(PgFailure::Closed);
        };
        off_runtime(move || f(client)).map_err(PgFailure::Error)
    }

    /// Whether the connection is known to be lost (the next use must reconnect).
    pub(crate) fn is_closed(&self) -> bool {
        self.0.as_ref().is_none_or(postgres::Client::is_closed)
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            off_runtime(move || drop(c));
        }
    }
}

/// Why a [`PgClient::run`] failed.
#[derive(Debug)]
pub(crate) enum PgFailure {
    /// The connection was dropped after an earlier failure.
    Closed,
    /// The server or the connection failed.
    Error(postgres::Error),
}

impl PgFailure {
    /// Whether the connection should be dropped and made again (not a plain SQL error).
    pub(crate) fn lost_connection(&self) -> bool {
        match self {
            PgFailure::Closed => true,
            PgFailure::Error(e) => e.is_closed() || e.as_db_error().is_none(),
        }
    }

    /// One line for an error message.
    pub(crate) fn reason(&self) -> String {
        match self {
            PgFailure::Closed => "the connection was lost".into(),
            PgFailure::Error(e) => pg_reason(e),
        }
    }

    /// The error to chain as a source.
    pub(crate) fn into_source(self) -> Option<postgres::Error> {
        match self {
            PgFailure::Closed => None,
            PgFailure::Error(e) => Some(e),
        }
    }
}

/// What went wrong, in one line: the server's own message when it sent one.
pub(crate) fn pg_reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// Applies the numbered migrations in `steps` (version = index + 1) that `table` does not
/// list yet, each in its own transaction, serialised across hosts by an advisory lock on
/// `lock_id`: several hosts opening a new store at once apply each migration once.
pub(crate) fn migrate(
    client: &mut postgres::Client,
    table: &str,
    lock_id: i64,
    steps: &[&str],
) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_id])?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ))?;
    let done: i32 = tx
        .query_one(&format!("SELECT COALESCE(MAX(version), 0) FROM {table}"), &[])?
        .get(0);
    for (i, sql) in steps.iter().enumerate() {
        let version = i as i32 + 1;
        if version > done {
            tx.batch_execute(sql)?;
            tx.execute(&format!("INSERT INTO {table} (version) VALUES ($1)"), &[&version])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_secrets_or_without_tls_are_config_errors_that_do_not_repeat_them() {
        for url in [
            "postgresql://u:pasted-secret@h/db",
            "postgresql://u@h/db?sslmode=disable",
            "postgresql://h/db",
            "postgresql://u@h",
            "postgresql://u@h/db?password=pasted-secret",
            "postgresql://u@h/db?nonsense=1",
        ] {
            let e = PgTarget::parse(url, None, None).expect_err(url);
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(!e.to_string().contains("pasted-secret"), "{e}");
        }
        let t = PgTarget::parse("postgresql://u@127.0.0.1:5432/db", None, None).expect("tcp");
        assert!(t.over_tcp);
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        let s = PgTarget::parse("postgresql://u@%2Frun%2Fpostgresql/db", None, None).expect("socket");
        assert!(!s.over_tcp);
    }

    #[test]
    fn a_database_is_a_path_or_a_postgres_url() {
        assert_eq!(
            "mfa.db".parse::<Database>().expect("file"),
            Database::File("mfa.db".into())
        );
        assert!(matches!(
            "postgres://u@h/db".parse::<Database>().expect("pg"),
            Database::Postgres(_)
        ));
        assert!("mysql://u@h/db".parse::<Database>().is_err());
        let mut d = Database::File("x.db".into());
        d.resolve_path(Path::new("/etc/cadenas"));
        assert_eq!(d.file(), Some(Path::new("/etc/cadenas/x.db")));
    }
}
