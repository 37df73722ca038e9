//! `cadenas contain`: lock → reset (forced change) → revoke → require MFA, journaled; or
//! `--resume` an interrupted run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use cadenas::directory::UserRef;
use cadenas::incident::{ContainOptions, ContainReport, FileSink, PasswordSink, Progress, UserReport};
use cadenas::investigate::Instant;
use cadenas::{Config, Error, ErrorKind, Password};
use clap::Args;

use super::{journal_location, responder_for};
use crate::args::UserArgs;
use crate::exit::Exit;
use crate::show::print_report;
use crate::Cli;

/// `contain` arguments.
#[derive(Args)]
pub struct ContainArgs {
    #[command(flatten)]
    pub who: UserArgs,
    /// Write new passwords (`user<TAB>password` lines) to this new 0600 file. Without it a
    /// single user's password is shown once on an interactive terminal.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// The journal (default: [journal] path in the config).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Incident identifier (default: generated).
    #[arg(long)]
    pub incident: Option<String>,
    /// Accounts worked on at once (one waiting only for the shared MFA-group modify gives its
    /// place to the next).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Finish an interrupted containment recorded in this journal file (without a value: the
    /// config's [journal], file or PostgreSQL) — the latest one, or --incident; no users are
    /// given then.
    #[arg(long, value_name = "JOURNAL", conflicts_with = "journal", num_args = 0..=1)]
    pub resume: Option<Option<PathBuf>>,
    /// Reset the password of users already contained (by an earlier incident, or as the
    /// directory shows) for this reason, journaled. Without it their reset is "already so".
    #[arg(long, value_name = "REASON")]
    pub reset_again: Option<String>,
    /// Also report what changed on each entry since this time (with --from-ip: default
    /// --since).
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    pub changes_since: Option<Instant>,
}

/// Shows one password on the terminal, once.
struct TerminalSink;

impl PasswordSink for TerminalSink {
    fn deliver(&self, user: &str, _dn: &str, password: &Password) -> Result<(), Error> {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "\nNew password for {user} (shown once; hand it over out of band):\n\n    {}\n",
            password.expose_secret()
        );
        Ok(())
    }

    fn describe(&self) -> String {
        "terminal".into()
    }
}

fn progress_bar() -> Option<cadenas::incident::ProgressFn> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(Arc::new(|p: &Progress| {
        let width = 30;
        let filled = (p.finished * width)
            .checked_div(p.total)
            .unwrap_or(width)
            .min(width);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {}/{} ({} failed) {:<24}",
            "#".repeat(filled),
            " ".repeat(width - filled),
            p.finished,
            p.total,
            p.failed,
            p.user.chars().take(24).collect::<String>()
        );
        if p.finished == p.total {
            let _ = writeln!(err);
        }
    }))
}

/// `cadenas contain`.
pub async fn run(cli: &Cli, cfg: &Config, args: &ContainArgs) -> Result<Exit, Error> {
    if let Some(p) = &args.password_file {
        // a usage error, found before anything is contacted
        if p.symlink_metadata().is_ok() {
            eprintln!(
                "cadenas: --password-file {} exists: a hand-over file is never overwritten; give a new path",
                p.display()
            );
            return Ok(Exit::Usage);
        }
    }
    let resuming = args.resume.is_some();
    let pivot = args.who.from_ip.map(|r| args.who.window.pivot(r));
    // every name checked before anything is created or contacted
    let users = if resuming || pivot.is_some() {
        Vec::new()
    } else {
        UserRef::parse_all(&args.who.collect()?)?
    };
    let journal_file = args
        .resume
        .as_ref()
        .and_then(|r| r.as_deref())
        .or(args.journal.as_deref());
    journal_location(Some(cfg), journal_file)?;
    // The hand-over is decided before anything changes: never set a password nobody can read.
    let sink: Arc<dyn PasswordSink> = match &args.password_file {
        Some(p) => Arc::new(FileSink::create(p)?),
        None if users.len() == 1 && pivot.is_none() && std::io::stdout().is_terminal() && !cli.json => {
            Arc::new(TerminalSink)
        }
        None => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "pass --password-file FILE: new passwords go to a terminal only for one user, never into a pipe or a log",
            ))
        }
    };
    let responder = responder_for(cfg, journal_file).await?;
    let mut opts = ContainOptions::new(sink);
    opts.incident = args.incident.clone();
    opts.allow_protected = args.who.allow_protected;
    opts.concurrency = args.concurrency;
    opts.progress = progress_bar();
    opts.reset_again = args.reset_again.clone();
    opts.changes_since = args.changes_since;
    let report = if resuming {
        responder.resume(args.incident.as_deref(), opts).await?
    } else if let Some(pivot) = &pivot {
        responder.contain_from(pivot, opts).await?
    } else {
        responder.contain(&users, opts).await?
    };
    print_report(cli, &report);
    Ok(contain_exit_code(&report))
}

/// 0 all contained; 5 nothing changed and someone refused or failed (e.g. every user unknown);
/// 6 something changed and something else did not.
fn contain_exit_code(r: &ContainReport) -> Exit {
    if r.failed() == 0 {
        Exit::Done
    } else if r.users.iter().any(UserReport::changed_something) {
        Exit::Incomplete
    } else {
        Exit::Refused
    }
}
