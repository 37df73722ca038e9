//! The journal in PostgreSQL: one row per record (`journal_records (seq, line)`), `line` being
//! exactly the file form's line. A batch is appended in one transaction that first takes the
//! table's `EXCLUSIVE` lock (readers go on; other writers — on any host — wait), reads the last
//! line to chain from it, and inserts the batch: the chain never forks, and `seq` (the primary
//! key) could not repeat even if it did.

use super::chain::{line_hash, scan_lines, VerifyReport, GENESIS};
use super::record::Record;
use super::sink::{seal_batch, Job, Sink};
use crate::db::{migrate, PgClient, PgFailure, PgTarget};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

const MIGRATIONS: &[&str] = &[include_str!("../../migrations/journal/0001_init.sql")];

/// Advisory lock id serialising migrations of the journal schema ("CADJRN01").
const MIGRATION_LOCK: i64 = 0x4341_444a_524e_3031;

fn pg_err(target: &PgTarget, what: &str, e: PgFailure) -> Error {
    let err = Error::new(
        ErrorKind::Journal,
        format!("journal {}: {what}: {}", target.url(), e.reason()),
    );
    match e.into_source() {
        Some(src) => err.with_source(src),
        None => err,
    }
}

fn connect(target: &PgTarget) -> Result<PgClient, Error> {
    let mut client = target.connect(ErrorKind::Journal)?;
    client
        .run(|c| migrate(c, "cadenas_journal_migrations", MIGRATION_LOCK, MIGRATIONS))
        .map_err(|e| pg_err(target, "schema migration", e))?;
    Ok(client)
}

fn read_lines(client: &mut PgClient, target: &PgTarget) -> Result<Vec<String>, Error> {
    client
        .run(|c| {
            c.query("SELECT line FROM journal_records ORDER BY seq", &[])
                .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        })
        .map_err(|e| pg_err(target, "read", e))
}

/// The lines from `seq` on, in order (what a [`Tail`](super::Tail) has not read yet), over
/// `client` — connected here when `None` or lost, kept for the next read.
pub(super) fn lines_from(
    target: &PgTarget,
    client: &mut Option<PgClient>,
    seq: u64,
) -> Result<Vec<String>, Error> {
    if client.as_ref().is_none_or(PgClient::is_closed) {
        *client = Some(connect(target)?);
    }
    let Some(c) = client.as_mut() else {
        return Err(Error::new(ErrorKind::Internal, "journal tail: no connection"));
    };
    let from = i64::try_from(seq).unwrap_or(i64::MAX);
    let read = c.run(|c| {
        c.query(
            "SELECT line FROM journal_records WHERE seq >= $1 ORDER BY seq",
            &[&from],
        )
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
    });
    read.map_err(|e| {
        if e.lost_connection() {
            *client = None;
        }
        pg_err(target, "read", e)
    })
}

/// Every line, in order.
pub(super) fn lines(target: &PgTarget) -> Result<Vec<String>, Error> {
    read_lines(&mut connect(target)?, target)
}

/// Verifies the chain (and MACs with `key`); the records too when `keep`.
pub(super) fn scan(
    target: &PgTarget,
    key: Option<&Secret>,
    keep: bool,
) -> Result<(VerifyReport, Vec<Record>), Error> {
    let lines = lines(target)?;
    scan_lines(lines.into_iter().map(|l| Ok(l.into_bytes())), key, keep, |_| {
        Ok(false)
    })
}

/// The writer thread's sink: one connection, reconnected after a loss.
pub(super) struct PgSink {
    target: PgTarget,
    client: Option<PgClient>,
    key: Option<Secret>,
    pid: u32,
}

impl PgSink {
    /// Connects, applies the schema, and verifies the whole chain (with the key): a broken
    /// chain refuses to open, as for a file. Returns the sink and the head.
    pub(super) fn open(target: &PgTarget, key: Option<Secret>) -> Result<(Self, String), Error> {
        let mut client = connect(target)?;
        let lines = read_lines(&mut client, target)?;
        let (report, _) = scan_lines(
            lines.into_iter().map(|l| Ok(l.into_bytes())),
            key.as_ref(),
            false,
            |_| Ok(false),
        )?;
        if let Some(bad) = &report.first_bad {
            return Err(super::chain::tampered(&target.url(), bad));
        }
        Ok((
            Self {
                target: target.clone(),
                client: Some(client),
                key,
                pid: std::process::id(),
            },
            report.head,
        ))
    }

    fn append(&mut self, jobs: &[Job]) -> Result<String, Error> {
        if self.client.as_ref().is_none_or(PgClient::is_closed) {
            self.client = None;
            self.client = Some(connect(&self.target)?);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(Error::new(ErrorKind::Internal, "no journal connection"));
        };
        let key = self.key.as_ref();
        let res = client.run(|c| {
            let mut tx = c.transaction()?;
            tx.batch_execute("LOCK TABLE journal_records IN EXCLUSIVE MODE")?;
            let last = tx.query_opt(
                "SELECT seq, line FROM journal_records ORDER BY seq DESC LIMIT 1",
                &[],
            )?;
            let (seq, prev) = match last {
                Some(r) => (r.get::<_, i64>(0) as u64 + 1, line_hash(r.get::<_, &str>(1))),
                None => (0, GENESIS.to_owned()),
            };
            let Ok((lines, head)) = seal_batch(jobs, seq, &prev, key) else {
                return Ok(None);
            };
            let seqs: Vec<i64> = (0..lines.len() as i64).map(|i| seq as i64 + i).collect();
            tx.execute(
                "INSERT INTO journal_records (seq, line) SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[])",
                &[&seqs, &lines],
            )?;
            tx.commit()?;
            Ok(Some(head))
        });
        match res {
            Ok(Some(head)) => Ok(head),
            Ok(None) => Err(Error::new(
                ErrorKind::Journal,
                format!("journal {}: a record could not be serialised", self.target.url()),
            )),
            Err(e) => {
                if e.lost_connection() {
                    self.client = None;
                }
                Err(pg_err(&self.target, "append", e))
            }
        }
    }
}

impl Sink for PgSink {
    fn write(&mut self, jobs: &[Job]) -> Result<String, Error> {
        if std::process::id() != self.pid {
            return Err(Error::new(
                ErrorKind::InvalidContext,
                format!(
                    "journal {}: connected before a fork(): open it again in this process",
                    self.target.url()
                ),
            ));
        }
        self.append(jobs)
    }
}
