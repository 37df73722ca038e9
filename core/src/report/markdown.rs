//! The report as Markdown (for pasting into a ticket) and the accounts as CSV (beside a page
//! of many accounts).

use std::fmt::Write;

use super::texts::{
    duration, figures, outcome, problem_status, some_users, status, step as step_name, texts, when,
};
use super::types::{AccountOutcome, IncidentReport, ACCOUNTS_INLINE};
use crate::notify::Language;

/// `text` for a Markdown table cell or line: control characters made visible, the characters
/// Markdown reads as syntax escaped.
fn md(text: &str) -> String {
    let visible = crate::text::escape_controls(text);
    let mut out = String::with_capacity(visible.len());
    for c in visible.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '{' | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a leading
/// `= + - @` is prefixed with `'` so that a spreadsheet does not run it as a formula.
fn csv(text: &str) -> String {
    let mut t = crate::text::escape_controls(text).into_owned();
    if t.starts_with(['=', '+', '-', '@']) {
        t.insert(0, '\'');
    }
    if t.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", t.replace('"', "\"\""))
    } else {
        t
    }
}

impl IncidentReport {
    /// The report as Markdown, in `lang`: the summary, what could not be done, the runs, the
    /// attacker's addresses, the accounts (those that need attention beyond
    /// [`ACCOUNTS_INLINE`]) and the proof.
    pub fn to_markdown(&self, lang: Language) -> String {
        let w = texts(lang);
        let s = &self.summary;
        let mut m = String::new();
        let _ = writeln!(m, "# {} — {}\n", w.title, md(&self.incident));
        match &self.proof.broken_at {
            Some(b) => {
                let _ = writeln!(
                    m,
                    "> **{}** — line {}: {}\n> {}\n",
                    w.broken,
                    b.line,
                    md(&b.reason),
                    w.broken_after
                );
            }
            None => {
                let _ = writeln!(
                    m,
                    "{}\n",
                    if self.proof.macs_checked {
                        w.intact_macs
                    } else {
                        w.intact
                    }
                );
            }
        }
        let _ = writeln!(m, "## {}\n", w.summary);
        match (s.all_locked, s.to_last_lock_ms) {
            (true, Some(ms)) => {
                let _ = write!(m, "**{}{}{}", w.out_after, w.colon, duration(ms));
                if let Some(a) = s.alert_to_last_lock_ms {
                    let _ = write!(m, " ({} {})", duration(a), w.out_after_alert);
                }
                m.push_str("**\n\n");
            }
            _ => {
                let _ = writeln!(m, "**{}**\n", w.not_all_locked);
            }
        }
        let colon = w.colon;
        for (label, value) in figures(s, w) {
            let _ = writeln!(m, "- {label}{colon}{value}");
        }
        let _ = writeln!(m, "\n### {}\n", w.problems);
        if s.problems.is_empty() {
            let _ = writeln!(m, "{}", w.no_problems);
        } else {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |\n|---|---|---|---|",
                w.step, w.outcome, w.why, w.accounts
            );
            for p in &s.problems {
                let (shown, more) = some_users(&p.users);
                let names: Vec<String> = shown.iter().map(|u| md(u)).collect();
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {}{}{} |",
                    p.step.map(|st| step_name(lang, st)).unwrap_or(""),
                    problem_status(lang, p),
                    md(&p.why),
                    if p.users.len() > 1 {
                        format!("{}{}", p.users.len(), colon)
                    } else {
                        String::new()
                    },
                    names.join(", "),
                    if more > 0 {
                        format!(" … (+{more})")
                    } else {
                        String::new()
                    }
                );
            }
            if s.problems_total > s.problems.len() {
                let _ = writeln!(
                    m,
                    "\n… {} {}",
                    s.problems_total - s.problems.len(),
                    w.more_problems
                );
            }
        }
        let _ = writeln!(m, "\n## {}\n", w.runs);
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |\n|---|---|---|---|",
            w.run_action, w.started, w.run_end, w.accounts
        );
        for r in &self.runs {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                md(&r.action),
                when(&r.started_at),
                r.ended_at
                    .as_deref()
                    .map_or_else(|| w.run_interrupted.to_owned(), when),
                r.accounts
            );
        }
        let _ = writeln!(m, "\n## {}\n", w.attacker);
        if self.attacker.is_empty() {
            let _ = writeln!(m, "{}", w.no_attacker);
        }
        for a in &self.attacker {
            let shown: Vec<String> = a.accounts.iter().take(ACCOUNTS_INLINE).map(|u| md(u)).collect();
            let _ = writeln!(
                m,
                "- {} — {}: {} — {}: {}",
                md(&a.range),
                w.seen_accounts,
                shown.join(", "),
                w.sessions_closed,
                a.sessions_closed
            );
        }
        let _ = writeln!(m, "\n## {}\n", w.per_account);
        let all = self.accounts.len() <= ACCOUNTS_INLINE;
        if !all {
            let _ = writeln!(m, "{} `{}`\n", w.accounts_csv, self.csv_file_name());
        }
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |\n|---|---|---|---|",
            w.account, w.outcome, w.steps, w.sessions
        );
        for a in self
            .accounts
            .iter()
            .filter(|a| all || !matches!(a.outcome, AccountOutcome::Contained | AccountOutcome::Released))
            .take(ACCOUNTS_INLINE)
        {
            let steps: Vec<String> = a
                .steps
                .iter()
                .map(|s| format!("{}: {}", step_name(lang, s.step), status(lang, s.status)))
                .collect();
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                md(&a.user),
                outcome(lang, a.outcome),
                md(&steps.join(", ")),
                a.sessions_closed
            );
        }
        let p = &self.proof;
        let _ = writeln!(m, "\n## {}\n", w.proof);
        let _ = writeln!(m, "- {}: {}", w.journal, md(&p.journal));
        let _ = writeln!(m, "- {}: {}", w.records, p.journal_records);
        let _ = writeln!(m, "- {}: `{}`", w.head, p.head);
        let _ = writeln!(m, "- {}: {}", w.made_from, p.records);
        if p.unproven_records > 0 {
            let _ = writeln!(m, "  ({} {})", p.unproven_records, w.unproven);
        }
        let _ = writeln!(m, "\n{}", w.secrets);
        m
    }

    /// Every account as CSV (RFC 4180, a header line first): user, dn, outcome, then per
    /// step its status and time, sessions closed, mail rules deactivated, messages held.
    pub fn accounts_csv(&self) -> String {
        use crate::journal::Step;
        const STEPS: [Step; 6] = [
            Step::Lock,
            Step::ResetPassword,
            Step::RevokeSessions,
            Step::HoldMail,
            Step::RequireMfa,
            Step::RestoreFlags,
        ];
        let mut out = String::with_capacity(self.accounts.len() * 256 + 256);
        out.push_str("user,dn,outcome");
        for s in STEPS {
            let _ = write!(out, ",{0},{0}_at", s.name());
        }
        out.push_str(",sessions_closed,mail_rules_deactivated,mail_held,note\r\n");
        for a in &self.accounts {
            let _ = write!(
                out,
                "{},{},{}",
                csv(&a.user),
                csv(a.dn.as_deref().unwrap_or("")),
                a.outcome.name()
            );
            for s in STEPS {
                match a.steps.iter().find(|l| l.step == s) {
                    Some(l) => {
                        let _ = write!(
                            out,
                            ",{},{}",
                            l.status.map_or("started", |st| st.name()),
                            csv(l.done_at.as_deref().unwrap_or(&l.at))
                        );
                    }
                    None => out.push_str(",,"),
                }
            }
            let notes: Vec<&str> = a
                .steps
                .iter()
                .filter_map(|l| l.note.as_deref())
                .chain(a.refused.as_ref().map(|e| e.message()))
                .collect();
            let _ = write!(
                out,
                ",{},{},{},{}\r\n",
                a.sessions_closed,
                csv(&a.mail_rules_deactivated.join(" ")),
                a.mail_held,
                csv(&notes.join("; "))
            );
        }
        out
    }

    /// The name of the CSV file written beside a page of more than [`ACCOUNTS_INLINE`]
    /// accounts: `<incident>.accounts.csv` (see [`page_file_name`](Self::page_file_name)).
    pub fn csv_file_name(&self) -> String {
        format!("{}.accounts.csv", self.safe_name())
    }

    /// The page's default file name: `<incident>.html`, with every character but letters,
    /// digits, `.`, `_` and `-` made `_`.
    pub fn page_file_name(&self) -> String {
        format!("{}.html", self.safe_name())
    }

    fn safe_name(&self) -> String {
        let safe: String = self
            .incident
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        safe.trim_start_matches('.').to_owned()
    }
}
