//! `cadenas journal verify | export | show`: the audit journal, with or without a config.

use std::path::PathBuf;

use cadenas::journal::Event;
use cadenas::{Config, Error};
use clap::Subcommand;

use super::{journal_key, journal_location};
use crate::exit::Exit;
use crate::Cli;

/// `journal` subcommands.
#[derive(Subcommand)]
pub enum JournalCommand {
    /// Check the hash chain (and, with [journal] key_file, every record's MAC); prints the
    /// head hash to keep with the incident record.
    Verify {
        /// The journal (default: [journal] path in the config).
        file: Option<PathBuf>,
        /// The head hash kept elsewhere: a different head (records added or cut at the end,
        /// or a rewritten file) is exit 8.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
    /// Write the journal (default: the config's, e.g. in PostgreSQL) to a new file, verified
    /// on the way: the file form, for the incident ticket or an offline `journal verify`.
    Export {
        /// The new file (0600; an existing file is refused).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// The journal file to read (default: [journal] in the config).
        file: Option<PathBuf>,
    },
    /// Print the records (verifying the chain first).
    Show {
        /// The journal (default: [journal] path in the config).
        file: Option<PathBuf>,
        /// Only this incident.
        #[arg(long)]
        incident: Option<String>,
    },
}

/// `cadenas journal …`.
pub fn run(cli: &Cli, cfg: Option<&Config>, cmd: &JournalCommand) -> Result<Exit, Error> {
    match cmd {
        JournalCommand::Verify { file, expect_head } => {
            let path = journal_location(cfg, file.as_deref())?;
            let r = path.verify(journal_key(cfg)?.as_ref())?;
            let head_ok = expect_head
                .as_ref()
                .is_none_or(|h| h.eq_ignore_ascii_case(&r.head));
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else if let Some(b) = &r.first_bad {
                println!("{path}: BROKEN at line {}: {}", b.line, b.reason);
            } else {
                println!(
                    "{path}: {} records, chain intact{}, head {}",
                    r.records,
                    if r.macs_checked {
                        ", every MAC verified"
                    } else {
                        ""
                    },
                    r.head
                );
            }
            if let Some(t) = r.torn_tail {
                println!(
                    "{path}: line {} is a record cut by a crash mid-write (not counted); the next run removes it",
                    t.line
                );
            }
            if !head_ok {
                println!(
                    "{path}: head is {}, not the expected {}: records were added or cut at the end, or the file was rewritten",
                    r.head,
                    expect_head.as_deref().unwrap_or_default()
                );
            }
            Ok(if r.first_bad.is_none() && head_ok {
                Exit::Done
            } else {
                Exit::Tampered
            })
        }
        JournalCommand::Export { to, file } => {
            let from = journal_location(cfg, file.as_deref())?;
            let r = from.export(to)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else if let Some(b) = &r.first_bad {
                println!(
                    "{from}: BROKEN at line {}: {}; the {} records before it were written to {}",
                    b.line,
                    b.reason,
                    r.records,
                    to.display()
                );
            } else {
                println!(
                    "{from}: {} records written to {}, chain intact, head {}",
                    r.records,
                    to.display(),
                    r.head
                );
            }
            Ok(if r.first_bad.is_none() {
                Exit::Done
            } else {
                Exit::Tampered
            })
        }
        JournalCommand::Show { file, incident } => {
            let path = journal_location(cfg, file.as_deref())?;
            for rec in path
                .records(journal_key(cfg)?.as_ref())?
                .into_iter()
                .filter(|r| incident.as_ref().is_none_or(|i| *i == r.incident))
            {
                if cli.json {
                    println!("{}", serde_json::to_string(&rec).unwrap_or_default());
                    continue;
                }
                let what = match &rec.event {
                    Event::IncidentStart {
                        action, users, note, ..
                    } => {
                        format!(
                            "start {action} ({} users){}",
                            users.len(),
                            note.as_ref().map(|n| format!(" note: {n}")).unwrap_or_default()
                        )
                    }
                    Event::Intent { user, step, .. } => format!("intent  {user} {step:?}"),
                    Event::Outcome {
                        user, step, status, ..
                    } => format!("outcome {user} {step:?} {status:?}"),
                    Event::Refused { user, error } => {
                        format!("refused {user}: {}", error.message())
                    }
                    Event::IncidentEnd { done, failed } => format!("end: {done} done, {failed} failed"),
                    Event::ReplicaChecks { checks } => checks
                        .iter()
                        .map(|c| {
                            format!(
                                "replica {}: {} seen, {} pending",
                                c.url,
                                c.seen.len(),
                                c.pending.len()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                    Event::Notified { outcomes } => format!(
                        "notified: {} delivered, {} NOT delivered",
                        outcomes.iter().filter(|o| o.delivered).count(),
                        outcomes.iter().filter(|o| !o.delivered).count()
                    ),
                    Event::AddressKick { range, outcomes } => format!(
                        "kick by address {range}: {} session(s) closed",
                        outcomes.iter().map(|o| o.sessions_closed).sum::<usize>()
                    ),
                    other => format!("{other:?}"),
                };
                // one line per record, whatever a name, a note or a server's message holds
                println!(
                    "{:>6} {} {} {}",
                    rec.seq,
                    rec.time,
                    cadenas::escape_controls(&rec.incident),
                    cadenas::escape_controls(&what)
                );
            }
            Ok(Exit::Done)
        }
    }
}
