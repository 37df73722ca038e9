//! `cadenas` — the operator's tool on incident day.
//!
//! ```text
//! cadenas --config FILE check            preflight: does everything answer, is it allowed
//! cadenas --config FILE drill CANARY     a timed fire drill on a canary account
//! cadenas --config FILE status USER      what the account looks like now
//! cadenas --config FILE contain USER     lock → reset (forced change) → revoke → require MFA
//! cadenas --config FILE mfa enroll|verify|reset|recovery-codes USER
//! cadenas --config FILE outbound serve    the Postfix policy service
//! cadenas --config FILE report INCIDENT  the incident record (HTML, Markdown, JSON)
//! ```
//!
//! Exit codes: 0 done; 2 bad usage; 3 configuration error; 4 the directory could not be
//! reached or refused the service account; 5 the user was refused or not found (nothing
//! changed, or release refused); 6 containment incomplete for some users (the report says
//! which steps); 7 an MFA code was refused; 8 the journal's hash chain is broken; 9 a
//! `check` failed (1: its warnings only); 1 other.

mod args;
mod commands;
mod exit;
mod handover;
mod logline;
mod show;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use cadenas::{Config, Error, ErrorKind};
use clap::{Parser, Subcommand};

use commands::{journal, mfa, outbound};
use exit::Exit;

/// Compromised-credential response for LDAP and Active Directory.
#[derive(Parser)]
#[command(name = "cadenas", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 done, 2 usage, 3 config, 4 directory unreachable or service \
account refused, 5 user refused or not found (nothing changed), 6 partly applied, 7 MFA code \
refused, 8 journal broken, 9 a check failed (1: warnings only), 1 other.\n\
Logs go to stderr; set CADENAS_LOG=debug for more. Secrets never appear in them."
)]
pub struct Cli {
    /// Config file (TOML).
    #[arg(long, short, env = "CADENAS_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Preflight: whether everything a containment needs answers and is allowed (TLS, the
    /// service account's rights on the [canary] account, revokers, notifiers, the journal);
    /// one line per check with the fix. Exit 0 all ok, 1 warnings only, 9 a check failed.
    Check {
        /// Also send every notifier a test message (marked TEST).
        #[arg(long)]
        notify_test: bool,
    },
    /// Fire drill: contain a [canary] account for real through every configured step, verify
    /// each on the servers, time it, and put the account back. Exit 0 passed, 9 failed.
    Drill(commands::drill::DrillArgs),
    /// Show an account's state: lock, must-change, MFA requirement, protected groups.
    Status {
        /// User name (uid, mail...) or `dn:<DN>`.
        user: String,
        /// Also list what changed on the entry since this time (RFC 3339, a date, or a time ago:
        /// 36h); OpenLDAP needs [directory] accesslog_base.
        #[arg(long, value_name = "TIME", value_parser = cadenas::investigate::Instant::parse)]
        changes_since: Option<cadenas::investigate::Instant>,
    },
    /// Contain accounts: lock → reset (forced change) → revoke sessions → require MFA,
    /// journaled. `--resume JOURNAL` finishes an interrupted run.
    Contain(commands::contain::ContainArgs),
    /// Dry run: show what `contain` would change and what it would refuse; changes nothing.
    Plan {
        #[command(flatten)]
        who: args::UserArgs,
    },
    /// Release a contained account: restore its original lock flags (needs an active MFA
    /// enrolment, or --override-reason).
    Release {
        /// User name (uid, mail...) or `dn:<DN>`.
        user: String,
        /// Release without an active MFA enrolment; the reason is journaled.
        #[arg(long)]
        override_reason: Option<String>,
        /// The journal (default: [journal] path in the config).
        #[arg(long)]
        journal: Option<PathBuf>,
    },
    /// Who was seen from the attacker's addresses: live sessions on every configured Dovecot
    /// and logins in Dovecot's log files. Changes nothing.
    Sessions {
        /// The attacker's address or CIDR range.
        #[arg(long, value_name = "CIDR", value_parser = cadenas::investigate::AddressRange::parse)]
        ip: cadenas::investigate::AddressRange,
        #[command(flatten)]
        logs: args::LogArgs,
    },
    /// Verify or show the audit journal.
    #[command(subcommand)]
    Journal(journal::JournalCommand),
    /// The incident record from the journal: one self-contained HTML page (or Markdown, or
    /// --json) with the summary, the timeline, every account and the proof. Exit 8 when the
    /// journal does not verify (the page says so on its first screen).
    Report(commands::report::ReportArgs),
    /// TOTP enrolment, verification, reset and recovery codes.
    #[command(subcommand)]
    Mfa(mfa::MfaCommand),
    /// The attacker's outbound mail: the Postfix policy service.
    #[command(subcommand)]
    Outbound(outbound::OutboundCommand),
    /// Watch Dovecot's and Postfix's logs and the policy service's limits ([watch]): when a
    /// rule fires (a new network for an account, one address on many accounts, failure
    /// bursts, a sending limit, a mail rule sending outside) the alert, with the command that
    /// contains it, goes to the notifiers and the journal — and contains the account where
    /// [watch.auto_contain] lets its rule; --replay FILE… runs the rules over old logs.
    Watch(commands::watch::WatchArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (cadenas.1, cadenas-COMMAND.1) into a directory.
    Man {
        /// The directory (created if needed).
        #[arg(long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    // one thread, the policy service's too: on 2 cores shared with Postfix it answered 64
    // connections faster than a multi-threaded runtime did (benches/policy.rs)
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cadenas: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(exit) => exit.into(),
        Err(e) => {
            if cli.json {
                let j = serde_json::json!({ "error": e });
                println!("{j}");
            } else {
                eprintln!("cadenas: {e}");
            }
            Exit::of(e.kind()).into()
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CADENAS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::io::stderr().is_terminal() {
        // a person reads it: colours
        builder.with_writer(std::io::stderr).with_ansi(true).init();
    } else {
        // a file or a log collector: one line per event, whatever a value holds
        builder
            .with_writer(|| logline::EscapedStderr)
            .with_ansi(false)
            .init();
    }
}

async fn run(cli: &Cli) -> Result<Exit, Error> {
    let load = || -> Result<Config, Error> {
        let path = cli.config.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "no config file: pass --config FILE or set CADENAS_CONFIG",
            )
        })?;
        Config::from_file(path)
    };
    // what a package builds needs no config
    match &cli.command {
        Command::Completions { shell } => return Ok(commands::docs::completions(*shell)),
        Command::Man { output } => return commands::docs::man(output),
        _ => {}
    }
    // `journal verify FILE` and `report INCIDENT --journal FILE` work without a config.
    if let Command::Journal(j) = &cli.command {
        let cfg = if cli.config.is_some() { Some(load()?) } else { None };
        return journal::run(cli, cfg.as_ref(), j);
    }
    if let Command::Report(args) = &cli.command {
        let cfg = if cli.config.is_some() { Some(load()?) } else { None };
        return commands::report::run(cli, cfg.as_ref(), args);
    }
    let cfg = load()?;
    if cfg.directory.allow_plaintext_passwords && !cfg.directory.is_encrypted() {
        eprintln!(
            "cadenas: WARNING: allow_plaintext_passwords = true and {} is neither ldaps:// nor StartTLS: \
             the service account's password and every new password cross the network in clear",
            cfg.directory.url
        );
    }
    match &cli.command {
        Command::Check { notify_test } => commands::check::run(cli, &cfg, *notify_test).await,
        Command::Drill(args) => commands::drill::run(cli, &cfg, args).await,
        Command::Status { user, changes_since } => {
            commands::status::run(cli, &cfg, user, changes_since.as_ref()).await
        }
        Command::Sessions { ip, logs } => commands::sessions::run(cli, &cfg, *ip, logs).await,
        Command::Contain(args) => commands::contain::run(cli, &cfg, args).await,
        Command::Plan { who } => commands::plan::run(cli, &cfg, who).await,
        Command::Release {
            user,
            override_reason,
            journal,
        } => commands::release::run(cli, &cfg, user, override_reason.as_deref(), journal.as_deref()).await,
        Command::Mfa(m) => mfa::run(cli, &cfg, m).await,
        Command::Outbound(o) => outbound::run(cli, &cfg, o).await,
        Command::Watch(args) => commands::watch::run(cli, &cfg, args).await,
        Command::Journal(_) | Command::Report(_) | Command::Completions { .. } | Command::Man { .. } => {
            Ok(Exit::Other)
        }
    }
}
