//! `cadenas contain | plan | release | journal`: the incident commands, over `Responder`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use cadenas::directory::UserRef;
use cadenas::incident::{
    ContainOptions, ContainReport, FileSink, PasswordSink, Progress, ReleaseOptions, Responder, UserReport,
};
use cadenas::investigate::{AddressRange, Instant, Pivot, PivotReport, SightingKind};
use cadenas::journal::{self, Event, StepStatus};
use cadenas::{Config, Error, ErrorKind, Password};
use clap::{Args, Subcommand};

use crate::Cli;

/// Which users: arguments and/or a file with one per line (`#` comments allowed), or every
/// account seen from the attacker's addresses (`--from-ip`).
#[derive(Args, Clone)]
pub struct UserArgs {
    /// User names (uid, mail...) or `dn:<DN>`.
    pub users: Vec<String>,
    /// Read users from this file, one per line.
    #[arg(long)]
    pub from_file: Option<PathBuf>,
    /// Every account with a live session on a configured Dovecot, or a login in the
    /// --auth-log files, from this address or CIDR range; afterwards every session from the
    /// range is kicked.
    #[arg(long, value_name = "CIDR", value_parser = AddressRange::parse, conflicts_with_all = ["users", "from_file"])]
    pub from_ip: Option<AddressRange>,
    #[command(flatten)]
    pub window: LogArgs,
    /// Act on members of the configured protected groups too.
    #[arg(long)]
    pub allow_protected: bool,
}

/// Where and when to look for past logins.
#[derive(Args, Clone, Default)]
pub struct LogArgs {
    /// Dovecot log files to read for past logins (plain or gzip'd; default: [mail] auth_logs).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub auth_log: Vec<PathBuf>,
    /// Postfix log files to read for SMTP AUTH logins (plain or gzip'd; default: [postfix]
    /// log_files).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub smtp_log: Vec<PathBuf>,
    /// Leave out log lines before this: RFC 3339, a date, or a time ago (90m, 36h, 7d).
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    pub since: Option<Instant>,
    /// Leave out log lines after this (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    pub until: Option<Instant>,
}

impl LogArgs {
    /// The pivot on `range` with these logs and window.
    pub fn pivot(&self, range: AddressRange) -> Pivot {
        let mut p = Pivot::new(range);
        p.auth_logs = self.auth_log.clone();
        p.smtp_logs = self.smtp_log.clone();
        p.since = self.since;
        p.until = self.until;
        p
    }
}

impl UserArgs {
    fn collect(&self) -> Result<Vec<String>, Error> {
        let mut users = self.users.clone();
        if let Some(f) = &self.from_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read {}: {e}", f.display())))?;
            users.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        if users.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "no users given (arguments or --from-file)",
            ));
        }
        Ok(users)
    }
}

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

/// The journal file given on the command line, or the one the config's `[journal]` names (a
/// file, or PostgreSQL).
fn journal_location(cfg: Option<&Config>, given: Option<&Path>) -> Result<journal::Location, Error> {
    journal::Location::resolve(given, cfg.and_then(|c| c.journal.as_ref()))?.ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "no journal: pass --journal FILE or set [journal] path (or database) in the config",
        )
    })
}

/// A responder journaling to the file given, or to the config's journal.
async fn responder_for(cfg: &Config, given: Option<&Path>) -> Result<Responder, Error> {
    match given {
        Some(p) => Responder::new(cfg, p).await,
        None => {
            journal_location(Some(cfg), None)?;
            Responder::from_config(cfg).await
        }
    }
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
pub async fn contain(cli: &Cli, cfg: &Config, args: &ContainArgs) -> Result<ExitCode, Error> {
    if let Some(p) = &args.password_file {
        // a usage error, found before anything is contacted
        if p.symlink_metadata().is_ok() {
            eprintln!(
                "cadenas: --password-file {} exists: a hand-over file is never overwritten; give a new path",
                p.display()
            );
            return Ok(ExitCode::from(2));
        }
    }
    let resuming = args.resume.is_some();
    let pivot = args.who.from_ip.map(|r| args.who.window.pivot(r));
    let users = if resuming || pivot.is_some() {
        Vec::new()
    } else {
        args.who.collect()?
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
        responder.contain(&UserRef::parse_all(&users)?, opts).await?
    };
    print_report(cli, &report);
    Ok(contain_exit_code(&report))
}

/// 0 all contained; 5 nothing changed and someone refused or failed (e.g. every user unknown);
/// 6 something changed and something else did not.
fn contain_exit_code(r: &ContainReport) -> ExitCode {
    if r.failed() == 0 {
        ExitCode::SUCCESS
    } else if r.users.iter().any(UserReport::changed_something) {
        ExitCode::from(6)
    } else {
        ExitCode::from(5)
    }
}

fn print_report(cli: &Cli, r: &ContainReport) {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    println!("incident {}", r.incident);
    if let Some(p) = &r.pivot {
        print_pivot(p);
    }
    let verbose = r.users.len() <= 20;
    for u in &r.users {
        if verbose || !u.complete() {
            print_user(u);
        }
    }
    println!("{} contained, {} need attention", r.done(), r.failed());
    if let Some(p) = r.password_handover.strip_prefix("file:") {
        println!("new passwords: {p}");
    }
    for k in &r.address_kicks {
        println!(
            "kick by address on {}: {}, {} session(s) closed{}{}",
            k.revoker,
            serde_json::to_value(k.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            k.sessions_closed,
            if k.collateral.is_empty() {
                String::new()
            } else {
                format!(", ALSO DISCONNECTED: {}", k.collateral.join(", "))
            },
            k.error
                .as_ref()
                .map(|e| format!(": {}", e.message()))
                .unwrap_or_default()
        );
    }
    for c in &r.replicas {
        println!(
            "replica {}: {} showed the lock{}",
            c.url,
            c.seen.len(),
            if c.pending.is_empty() {
                String::new()
            } else {
                format!(", {} PENDING", c.pending.len())
            }
        );
    }
    for n in &r.notifications {
        println!("{}", describe_notification(n));
    }
    for n in &r.not_revoked {
        println!("not revoked: {n}");
    }
    for n in &r.notes {
        println!("note: {}", cadenas::escape_controls(n));
    }
    println!("journal: {} (head {})", r.journal, r.journal_head);
}

fn print_user(u: &UserReport) {
    let dn = u.dn.as_deref().unwrap_or("-");
    if let Some(e) = &u.refused {
        println!("  {}  REFUSED: {e}", u.user);
        return;
    }
    println!("  {}  ({dn})", u.user);
    for s in &u.steps {
        let what = match s.status {
            StepStatus::Changed => "done",
            StepStatus::AlreadySo => "already so",
            StepStatus::Partial => "partly",
            StepStatus::Failed => "FAILED",
            _ => s.status.name(),
        };
        let mut extra = String::new();
        for o in &s.detail.revocations {
            if o.revoker == "outbound-policy" && o.status == cadenas::session::RevocationStatus::Revoked {
                extra.push_str(" [SMTP: every new message refused by the outbound policy service]");
                continue;
            }
            let collateral = if o.collateral.is_empty() {
                String::new()
            } else {
                format!(", ALSO DISCONNECTED: {}", o.collateral.join(", "))
            };
            extra.push_str(&format!(
                " [{}: {}, {} session(s) closed{collateral}]",
                o.revoker,
                serde_json::to_value(o.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                o.sessions_closed,
            ));
        }
        if let Some(e) = &s.detail.error {
            extra.push_str(&format!(": {}", e.message()));
        }
        if let Some(n) = &s.detail.note {
            extra.push_str(&format!(" ({n})"));
        }
        for m in &s.detail.mail_rules {
            extra.push_str(&format!(" [{}]", describe_rule(m)));
        }
        if let Some(h) = s
            .detail
            .held_mail
            .as_ref()
            .filter(|h| !h.messages.is_empty() || !h.already_held.is_empty() || !h.gone.is_empty())
        {
            extra.push_str(&format!(" [{}]", describe_held(h)));
        }
        let earlier = if s.from_earlier_run { " (earlier run)" } else { "" };
        println!("      {:<16} {what}{earlier}{extra}", s.step.name());
    }
    if u.interrupted {
        println!("      (interrupted: `contain --resume` finishes it)");
    }
    if let Some(changes) = &u.changes {
        println!("      changed since the time asked for ({}):", changes.len());
        for c in changes {
            println!("        {}", describe_change(c));
        }
    }
    if let Some(s) = &u.sent_mail {
        println!("      {}", s.describe());
    }
    if let Some(e) = &u.changes_error {
        println!("      changes could not be read: {e}");
    }
}

/// One attribute change, in words: when, what, old → new, by whom, where; `!` for a way back in.
pub fn describe_change(c: &cadenas::directory::AttributeChange) -> String {
    let mark = if c.flagged { "!" } else { " " };
    let what = match &c.group {
        Some(g) => format!("{} of {g}", c.attribute),
        None => c.attribute.clone(),
    };
    let values = if c.redacted {
        " (values withheld)".to_owned()
    } else if c.old.is_empty() && c.new.is_empty() {
        String::new()
    } else if c.old.is_empty() {
        format!(" = {}", c.new.join(" | "))
    } else {
        format!(" {} -> {}", c.old.join(" | "), c.new.join(" | "))
    };
    let op = c
        .operation
        .as_deref()
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let by = c.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
    let on = c
        .server
        .as_deref()
        .map(|s| format!(" on {s}"))
        .unwrap_or_default();
    format!("{mark} {} {what}{op}{values}{by}{on}", c.time)
}

/// One notification's outcome, in words.
pub fn describe_notification(n: &cadenas::notify::NotificationOutcome) -> String {
    let to = if n.recipients.is_empty() {
        String::new()
    } else {
        format!(" to {}", n.recipients.join(", "))
    };
    match &n.error {
        None if n.delivered => format!("told {} ({}){to}", n.notifier, n.event.name()),
        Some(e) => format!(
            "NOT told {} ({}){to} after {} attempt(s): {}",
            n.notifier,
            n.event.name(),
            n.attempts,
            e.message()
        ),
        None => format!("NOT told {} ({}){to}", n.notifier, n.event.name()),
    }
}

/// One Sieve script that sends mail out, in words.
/// One line for the mail a containment held in the queue: counts, IDs and outside domains.
pub fn describe_held(h: &cadenas::postfix::HeldMail) -> String {
    let mut s = format!(
        "{} queued message(s) held, {} recipient(s)",
        h.messages.len(),
        h.recipients()
    );
    if !h.outside_domains.is_empty() {
        s.push_str(&format!(", outside domains: {}", h.outside_domains.join(", ")));
    }
    if !h.messages.is_empty() {
        let ids: Vec<&str> = h.messages.iter().map(|m| m.queue_id.as_str()).collect();
        s.push_str(&format!(" (queue IDs {})", ids.join(" ")));
    }
    if !h.already_held.is_empty() {
        s.push_str(&format!(", {} on hold already", h.already_held.len()));
    }
    s
}

pub fn describe_rule(m: &cadenas::investigate::MailRule) -> String {
    let targets: Vec<String> = m
        .redirects
        .iter()
        .map(|r| format!("{} {} (line {})", r.command, r.target, r.line))
        .collect();
    let state = match (m.active, m.deactivated) {
        (_, true) => "was ACTIVE, now DEACTIVATED",
        (true, false) => "ACTIVE",
        (false, false) => "inactive",
    };
    format!(
        "sieve script {:?} on {} ({state}): {}",
        m.script,
        m.server,
        targets.join(", ")
    )
}

/// Who was seen from the range, one line per sighting.
pub fn print_pivot(p: &PivotReport) {
    println!("seen from {}:", p.range);
    for s in &p.sightings {
        let what = match s.kind {
            SightingKind::LiveSession => "live",
            SightingKind::LoggedIn => "login",
            SightingKind::FailedLogin => "FAILED login",
            _ => "seen",
        };
        let when = match (s.first_seen, s.last_seen) {
            (Some(a), Some(b)) if a != b => format!(" {} .. {}", a.rfc3339(), b.rfc3339()),
            (Some(a), _) => format!(" {}", a.rfc3339()),
            _ => String::new(),
        };
        println!(
            "  {:<20} {what:<12} x{:<4} {:<12} {:<16} {}{when}",
            s.user, s.count, s.service, s.ip, s.source
        );
    }
    if p.sightings.is_empty() {
        println!("  nobody");
    }
    if !p.tried_only.is_empty() {
        println!("  only tried (not contained): {}", p.tried_only.join(", "));
    }
    for s in &p.sources {
        println!("  read: {s}");
    }
}

/// `cadenas sessions --ip CIDR`: who was seen from the attacker's addresses; changes nothing.
/// Needs Dovecot and the logs only, not the directory (it may be down).
pub async fn sessions(
    cli: &Cli,
    cfg: &Config,
    range: AddressRange,
    logs: &LogArgs,
) -> Result<ExitCode, Error> {
    let (_, dovecots) = cadenas::session::build_revokers_and_dovecots(&cfg.revokers)?;
    let default_logs = cfg.mail.as_ref().map(|m| m.auth_logs.clone()).unwrap_or_default();
    let smtp_logs = cfg
        .postfix
        .as_ref()
        .map(|p| p.log_files.clone())
        .unwrap_or_default();
    let report =
        cadenas::incident::sightings(&dovecots, &default_logs, &smtp_logs, &logs.pivot(range)).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_pivot(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// `cadenas plan`.
pub async fn plan(cli: &Cli, cfg: &Config, who: &UserArgs) -> Result<ExitCode, Error> {
    // A dry run journals nothing and needs no journal.
    let responder = Responder::without_journal(cfg).await?;
    let report = match who.from_ip {
        Some(range) => {
            responder
                .plan_from(&who.window.pivot(range), who.allow_protected)
                .await?
        }
        None => {
            responder
                .plan(&UserRef::parse_all(&who.collect()?)?, who.allow_protected)
                .await?
        }
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        if let Some(p) = &report.pivot {
            print_pivot(p);
        }
        for u in &report.users {
            match &u.refused {
                Some(e) => println!("{}  WOULD REFUSE: {e}", u.user),
                None => {
                    println!("{}  ({})", u.user, u.dn.as_deref().unwrap_or("-"));
                    for s in &u.steps {
                        let p = match s.predicted {
                            StepStatus::AlreadySo => "already so",
                            StepStatus::Partial => "partly",
                            _ => "would change",
                        };
                        println!("    {:<16} {p}", s.step.name());
                        for a in &s.actions {
                            println!("        - {a}");
                        }
                    }
                }
            }
        }
        for a in &report.address_actions {
            println!("then: {a}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cadenas release`.
pub async fn release(
    cli: &Cli,
    cfg: &Config,
    user: &str,
    reason: Option<&str>,
    journal: Option<&Path>,
) -> Result<ExitCode, Error> {
    let responder = responder_for(cfg, journal).await?;
    let mut opts = ReleaseOptions::default();
    if let Some(reason) = reason {
        opts = opts.with_override_reason(reason);
    }
    let r = responder.release(&UserRef::parse(user)?, opts).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        println!("released {user} ({})", r.dn);
        let shown = |v: Option<&Vec<String>>| match v {
            Some(v) if !v.is_empty() => v.join(", "),
            _ => "(none)".to_owned(),
        };
        for (k, after) in &r.change.after {
            println!(
                "  {k}: {} -> {} (as it was before containment)",
                shown(r.change.before.get(k)),
                shown(Some(after))
            );
        }
        for k in &r.kept {
            println!("  kept: {k}");
        }
        for n in &r.notifications {
            println!("{}", describe_notification(n));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `[journal] key_file` key, if the config has one.
fn journal_key(cfg: Option<&Config>) -> Result<Option<cadenas::Secret>, Error> {
    Ok(cfg
        .and_then(|c| c.journal.as_ref())
        .map(|j| j.key())
        .transpose()?
        .flatten())
}

/// `cadenas journal …`.
pub fn journal_command(cli: &Cli, cfg: Option<&Config>, cmd: &JournalCommand) -> Result<ExitCode, Error> {
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
                ExitCode::SUCCESS
            } else {
                ExitCode::from(8)
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
                ExitCode::SUCCESS
            } else {
                ExitCode::from(8)
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
            Ok(ExitCode::SUCCESS)
        }
    }
}
