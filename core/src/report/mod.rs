//! The incident record: one page the people who must account for an incident can read,
//! built from the journal alone and proven against it.
//!
//! [`IncidentReport::from_journal`] reads the journal (file or PostgreSQL) once, verifying
//! the hash chain (and the MACs, with the journal key) as it goes, and keeps only what the
//! page needs: per account, the last outcome of each step; per step, the times accounts
//! reached it (for the timeline); the runs, notifications and the attacker's addresses. Every
//! figure is computed from the records — nothing is typed by hand — and the page names the
//! records it was made from. A broken chain does not stop the report: the records that still
//! parse are shown, and the page says on its first screen where the chain broke and that the
//! figures are unproven ([`Proof::intact`]).
//!
//! Renderings: [`IncidentReport::to_html`] (one self-contained file: inline CSS and SVG, no
//! script, no external resource, printable), [`IncidentReport::to_markdown`], and the report
//! itself as JSON (serde: the same shape for Rust, `--json`, Python and C), in English or
//! French ([`Language`](crate::notify::Language)). Beyond [`ACCOUNTS_INLINE`] accounts, the page lists those that need
//! attention and [`IncidentReport::accounts_csv`] writes the full table beside it.
//!
//! No secret is ever in a report: the journal holds none (no password, code, hash or
//! hand-over content), and the report adds none.
//!
//! ```no_run
//! # fn demo() -> Result<(), cadenas::Error> {
//! use cadenas::journal::Location;
//! use cadenas::notify::Language;
//! use cadenas::report::{IncidentReport, ReportOptions};
//!
//! let journal = Location::File("/var/lib/cadenas/journal.jsonl".into());
//! let report = IncidentReport::from_journal(&journal, None, "inc-2026-12-07", &ReportOptions::default())?;
//! std::fs::write("incident.html", report.to_html(Language::Fr)).expect("written");
//! if !report.proof.intact() {
//!     eprintln!("the journal does not verify: {:?}", report.proof.broken_at);
//! }
//! # Ok(()) }
//! ```

mod build;
mod html;
mod markdown;
mod svg;
mod texts;
mod types;

pub use types::{
    AccountOutcome, AccountRecord, AttackerAddress, Curve, IncidentReport, NotificationLine, Problem, Proof,
    ReportOptions, RunSummary, StepLine, Summary, Timeline, TimelineRow, ACCOUNTS_INLINE,
    PROBLEM_USERS_SHOWN, TIMELINE_ROWS_MAX,
};
