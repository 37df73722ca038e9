//! One file per command; what several of them need to open a journal is here.

pub mod check;
pub mod contain;
pub mod docs;
pub mod drill;
pub mod journal;
pub mod mfa;
pub mod outbound;
pub mod plan;
pub mod release;
pub mod report;
pub mod sessions;
pub mod status;
pub mod watch;

use std::path::Path;

use cadenas::incident::Responder;
use cadenas::{Config, Error, ErrorKind};

/// The journal file given on the command line, or the one the config's `[journal]` names (a
/// file, or PostgreSQL).
pub fn journal_location(
    cfg: Option<&Config>,
    given: Option<&Path>,
) -> Result<cadenas::journal::Location, Error> {
    cadenas::journal::Location::resolve(given, cfg.and_then(|c| c.journal.as_ref()))?.ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "no journal: pass --journal FILE or set [journal] path (or database) in the config",
        )
    })
}

/// The config's journal key (`[journal] key_file`), when it has one: what checks the MACs of
/// the journal a command reads, the config's or a file given.
pub fn journal_key(cfg: Option<&Config>) -> Result<Option<cadenas::Secret>, Error> {
    Ok(cfg
        .and_then(|c| c.journal.as_ref())
        .map(|j| j.key())
        .transpose()?
        .flatten())
}

/// A responder journaling to the file given, or to the config's journal.
pub async fn responder_for(cfg: &Config, given: Option<&Path>) -> Result<Responder, Error> {
    match given {
        Some(p) => Responder::new(cfg, p).await,
        None => {
            journal_location(Some(cfg), None)?;
            Responder::from_config(cfg).await
        }
    }
}
