//! `cadenas report INCIDENT`: the incident record from the journal, as one self-contained
//! HTML page (default), Markdown, or JSON (`--json`). Works with or without a config.

use std::path::{Path, PathBuf};

use cadenas::investigate::Instant;
use cadenas::notify::Language;
use cadenas::report::{IncidentReport, ReportOptions};
use cadenas::{Config, Error, ErrorKind};
use clap::{Args, ValueEnum};

use super::{journal_key, journal_location};
use crate::exit::Exit;
use crate::Cli;

/// What the page is written as.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// One HTML file, no external resource, printable.
    Html,
    /// Markdown (on stdout without --out).
    Md,
}

/// `cadenas report` arguments.
#[derive(Args)]
pub struct ReportArgs {
    /// The incident identifier (as `contain` printed it, or `journal show` lists it).
    incident: String,
    /// html (default: written to INCIDENT.html, or --out) or md (stdout, or --out).
    #[arg(long, value_enum, default_value = "html")]
    format: Format,
    /// The page's language: en or fr.
    #[arg(long, value_parser = parse_language, default_value = "en")]
    lang: Language,
    /// When the alert came (RFC 3339, a date, or a time ago: 3h): the summary counts from it too.
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    alert_at: Option<Instant>,
    /// Where to write the page (an existing file is replaced).
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The journal file (default: [journal] in the config).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// The head hash kept in the incident ticket: a different head is exit 8.
    #[arg(long, value_name = "HASH")]
    expect_head: Option<String>,
}

fn parse_language(s: &str) -> Result<Language, String> {
    match s.to_ascii_lowercase().as_str() {
        "en" => Ok(Language::En),
        "fr" => Ok(Language::Fr),
        _ => Err(format!("{s:?}: the languages are en and fr")),
    }
}

/// `cadenas report …`: exit 0, or 8 when the journal does not verify (the page says so on its
/// first screen) or its head is not the expected one.
pub fn run(cli: &Cli, cfg: Option<&Config>, args: &ReportArgs) -> Result<Exit, Error> {
    let location = journal_location(cfg, args.journal.as_deref())?;
    // the config's key checks the MACs, of the file given too (as `journal verify` does)
    let key = journal_key(cfg)?;
    let mut opts = ReportOptions::default();
    if let Some(at) = args.alert_at {
        opts = opts.with_alert_at(at);
    }
    let report = IncidentReport::from_journal(&location, key.as_ref(), &args.incident, &opts)?;
    let head_ok = args
        .expect_head
        .as_ref()
        .is_none_or(|h| h.eq_ignore_ascii_case(&report.proof.head));
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        match args.format {
            Format::Html => {
                let out = args
                    .out
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(report.page_file_name()));
                write(&out, &report.to_html(args.lang))?;
                let csv = if report.accounts.len() > cadenas::report::ACCOUNTS_INLINE {
                    let csv = out.with_file_name(report.csv_file_name());
                    write(&csv, &report.accounts_csv())?;
                    format!(" (every account in {})", csv.display())
                } else {
                    String::new()
                };
                println!("{}: written{csv}", out.display());
            }
            Format::Md => {
                let md = report.to_markdown(args.lang);
                match &args.out {
                    Some(out) => {
                        write(out, &md)?;
                        println!("{}: written", out.display());
                    }
                    None => print!("{md}"),
                }
            }
        }
        let s = &report.summary;
        let stdout_is_page = matches!(args.format, Format::Md) && args.out.is_none();
        let say = |line: String| {
            if stdout_is_page {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        };
        say(format!(
            "{}: {} account(s), {} contained, {} need attention, {} refused; {}",
            cadenas::escape_controls(&report.incident),
            s.accounts,
            s.contained,
            s.needs_attention,
            s.refused,
            match (s.all_locked, s.to_last_lock_ms) {
                (true, Some(ms)) =>
                    format!("every account locked {:.1} s after the start", ms as f64 / 1000.0),
                _ => "NOT every account was locked".to_owned(),
            }
        ));
        match &report.proof.broken_at {
            Some(b) => say(format!(
                "journal {}: BROKEN at line {}: {} — the page says so on its first screen",
                report.proof.journal, b.line, b.reason
            )),
            None => say(format!(
                "journal {}: chain intact{}, head {}",
                report.proof.journal,
                if report.proof.macs_checked {
                    ", every MAC verified"
                } else {
                    ""
                },
                report.proof.head
            )),
        }
        if !head_ok {
            say(format!(
                "head is {}, not the expected {}: records were added or cut at the end, or the journal was rewritten",
                report.proof.head,
                args.expect_head.as_deref().unwrap_or_default()
            ));
        }
    }
    Ok(if report.proof.intact() && head_ok {
        Exit::Done
    } else {
        Exit::Tampered
    })
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write {}: {e}", path.display())))
}
