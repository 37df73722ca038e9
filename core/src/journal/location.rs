//! Where a journal is: the `[journal]` section, and a [`Location`] (a file, or PostgreSQL)
//! to verify, read and export.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::chain::VerifyReport;
use super::file::verify_with_key;
use super::record::Record;
use crate::db::{Database, PgTarget};
use crate::error::{Error, ErrorKind};

/// The `[journal]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JournalConfig {
    /// The JSON-lines journal file (created 0600; appended to by every run). Give this or
    /// `database`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The journal's database: a `postgresql://user@host/db` URL shared by every responder
    /// host (or a file path, the same as `path`).
    #[serde(default)]
    pub database: Option<Database>,
    /// PostgreSQL only: the file holding the database user's password.
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// PostgreSQL only: CA certificates (PEM) to verify the server with; default the system's.
    #[serde(default)]
    pub database_ca_file: Option<PathBuf>,
    /// A file (0600, at least 16 bytes) whose content keys an HMAC-SHA256 of every record:
    /// a forger who rewrites the whole journal cannot recompute them. Keep it off the
    /// journal's host if you can.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl JournalConfig {
    /// A journal in the file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            database: None,
            database_password_file: None,
            database_ca_file: None,
            key_file: None,
        }
    }

    /// Where the journal is (checked: exactly one of `path` and `database`; for PostgreSQL,
    /// no password in the URL and TLS).
    pub fn location(&self) -> Result<Location, Error> {
        let bad = |why: &str| Error::new(ErrorKind::Config, format!("journal: {why}"));
        match (&self.path, &self.database) {
            (Some(p), None) | (None, Some(Database::File(p))) => {
                if self.database_password_file.is_some() || self.database_ca_file.is_some() {
                    return Err(bad(
                        "database_password_file and database_ca_file are for a postgresql:// database",
                    ));
                }
                Ok(Location::File(p.clone()))
            }
            (None, Some(Database::Postgres(url))) => PgTarget::parse(
                url,
                self.database_password_file.clone(),
                self.database_ca_file.clone(),
            )
            .map(|t| Location::Postgres(Box::new(t)))
            .map_err(|e| bad(e.message())),
            (Some(_), Some(_)) => Err(bad("give path or database, not both")),
            (None, None) => Err(bad("give path (a file) or database (postgresql://…)")),
        }
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(d) = &mut self.database {
            d.resolve_path(base);
        }
        let files = self
            .path
            .iter_mut()
            .chain(self.key_file.as_mut())
            .chain(self.database_password_file.as_mut())
            .chain(self.database_ca_file.as_mut());
        for p in files {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The record-authentication key, when `key_file` is set. Refused if the file can be
    /// read by anyone but its owner, or is shorter than 16 bytes.
    pub fn key(&self) -> Result<Option<crate::secret::Secret>, Error> {
        let Some(path) = &self.key_file else {
            return Ok(None);
        };
        use std::os::unix::fs::PermissionsExt;
        let bad = |why: String| {
            Error::new(
                crate::error::ErrorKind::Config,
                format!("journal.key_file {}: {why}", path.display()),
            )
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad("readable by others than its owner: chmod 600".into()));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        if bytes.len() < 16 {
            return Err(bad("holds fewer than 16 bytes".into()));
        }
        Ok(Some(crate::secret::Secret::new(bytes)))
    }
}

/// Where a journal is: a file on this host, or a PostgreSQL database several hosts share.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Location {
    /// A JSON-lines file.
    File(PathBuf),
    /// A PostgreSQL database (table `journal_records`).
    Postgres(Box<PgTarget>),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => f.write_str(t.url()),
        }
    }
}

impl Location {
    /// The journal a command works on: the file `given` (a command-line override), else the
    /// one `cfg` names; `None` when there is neither (each caller says so in its own terms).
    pub fn resolve(given: Option<&Path>, cfg: Option<&JournalConfig>) -> Result<Option<Self>, Error> {
        match (given, cfg) {
            (Some(p), _) => Ok(Some(Location::File(p.to_owned()))),
            (None, Some(j)) => j.location().map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Recomputes the chain (and the MACs, with `key`): the same check for both backends.
    pub fn verify(&self, key: Option<&crate::secret::Secret>) -> Result<VerifyReport, Error> {
        match self {
            Location::File(p) => verify_with_key(p, key),
            Location::Postgres(t) => super::postgres::scan(t, key, false).map(|(r, _)| r),
        }
    }

    /// Every record, verifying the chain (and MACs, with `key`) as it goes; a broken chain is
    /// an [`ErrorKind::JournalTampered`] error.
    pub fn records(&self, key: Option<&crate::secret::Secret>) -> Result<Vec<Record>, Error> {
        let (report, records) = match self {
            Location::File(p) => return super::file::read_with_key(p, key),
            Location::Postgres(t) => super::postgres::scan(t, key, true)?,
        };
        match &report.first_bad {
            Some(bad) => Err(super::chain::tampered(&self.to_string(), bad)),
            None => Ok(records),
        }
    }

    /// Every record in order to `visit`, with whether the chain (and the MACs, with `key`)
    /// verified up to it; after a break, the records that still parse go on unproven
    /// (`false`). Returns the chain's report. A file is read line by line, memory flat however
    /// long the journal; a database's lines are fetched at once.
    pub(crate) fn visit(
        &self,
        key: Option<&crate::secret::Secret>,
        visit: &mut dyn FnMut(Record, bool),
    ) -> Result<VerifyReport, Error> {
        match self {
            Location::File(p) => super::file::visit_file(p, key, visit),
            Location::Postgres(t) => super::chain::visit_lines(
                super::postgres::lines(t)?.into_iter().map(|l| Ok(l.into_bytes())),
                key,
                &|_| Ok(false),
                0,
                super::chain::GENESIS,
                true,
                visit,
            ),
        }
    }

    /// Writes the journal's lines to a new file `to` (0600; an existing file is refused):
    /// the file form of a database journal, for the incident ticket or an offline `verify`.
    /// Only the lines up to a bad one are written; the report says whether there was one.
    pub fn export(&self, to: &Path) -> Result<VerifyReport, Error> {
        match self {
            Location::File(p) => super::file::export_lines(to, super::file::lines_of(p)?),
            Location::Postgres(t) => super::file::export_lines(to, super::postgres::lines(t)?),
        }
    }
}
