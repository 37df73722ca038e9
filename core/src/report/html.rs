//! The page: one self-contained HTML file (inline CSS and SVG, no script, no external
//! resource — its Content-Security-Policy forbids any), readable offline and printable.

use std::fmt::Write;

use super::texts::{
    code, duration, figures, outcome, problem_status, some_users, status, step as step_name, texts, when,
    Texts,
};
use super::types::{AccountOutcome, AccountRecord, IncidentReport, ACCOUNTS_INLINE};
use crate::notify::Language;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.4}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}\
.broken{background:#b71c1c;color:#fff;padding:1rem;font-size:1.1rem;border-radius:4px}\
.ok{color:#1b5e20}.lead{font-size:1.25rem;font-weight:600}.warn{color:#b71c1c;font-weight:600}\
dl.figures{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:left;vertical-align:top}\
th{background:#f2f2f2}tr.attention td:first-child{border-left:4px solid #c62828}\
code,.mono{font-family:ui-monospace,monospace;word-break:break-all}.caption{font-size:.85rem;color:#555}\
footer{margin-top:2rem;font-size:.8rem;color:#666}\
@media print{body{max-width:none;margin:0}h2{break-after:avoid}tr{break-inside:avoid}.broken{border:3px solid #000;color:#000;background:#fff}}";

/// `text` for HTML text and attribute values: control characters made visible
/// ([`escape_controls`](crate::escape_controls)), then `& < > " '` escaped.
pub(super) fn escape(text: &str) -> String {
    let visible = crate::text::escape_controls(text);
    let mut out = String::with_capacity(visible.len());
    for c in visible.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl IncidentReport {
    /// The page: one HTML file with no external resource (inline CSS and SVG, no script),
    /// in `lang`. A journal that did not verify is said on its first screen.
    pub fn to_html(&self, lang: Language) -> String {
        let w = texts(lang);
        let mut h = String::with_capacity(64 * 1024 + self.accounts.len().min(ACCOUNTS_INLINE) * 600);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{} — {}</title><style>{STYLE}</style></head><body>\n",
            code(lang),
            escape(w.title),
            escape(&self.incident)
        );
        let _ = write!(
            h,
            "<header><h1>{} — <span class=\"mono\">{}</span></h1>",
            escape(w.title),
            escape(&self.incident)
        );
        self.proof_banner(&mut h, w);
        h.push_str("</header>\n");
        self.summary_html(&mut h, lang, w);
        let picture = super::svg::timeline(&self.timeline, lang, w);
        if !picture.is_empty() {
            let _ = writeln!(
                h,
                "<section id=\"timeline\"><h2>{}</h2>{picture}<p class=\"caption\">{}</p></section>",
                escape(w.timeline),
                escape(if self.timeline.rows.is_empty() {
                    w.curves_caption
                } else {
                    w.timeline_caption
                })
            );
        }
        self.runs_html(&mut h, w);
        self.attacker_html(&mut h, w);
        self.accounts_html(&mut h, lang, w);
        self.notifications_html(&mut h, w);
        self.proof_html(&mut h, w);
        let _ = write!(
            h,
            "<footer>{} — {} {}</footer>\n</body></html>\n",
            escape(w.generated),
            escape(w.head),
            escape(&self.proof.head)
        );
        h
    }

    fn proof_banner(&self, h: &mut String, w: &Texts) {
        match &self.proof.broken_at {
            Some(bad) => {
                let _ = write!(
                    h,
                    "<div class=\"broken\" role=\"alert\" id=\"broken\"><strong>{}</strong> — line {}: {}<br>{}</div>",
                    escape(w.broken),
                    bad.line,
                    escape(&bad.reason),
                    escape(w.broken_after)
                );
            }
            None => {
                let _ = write!(
                    h,
                    "<p class=\"ok\">✔ {}</p>",
                    escape(if self.proof.macs_checked {
                        w.intact_macs
                    } else {
                        w.intact
                    })
                );
            }
        }
    }

    fn summary_html(&self, h: &mut String, lang: Language, w: &Texts) {
        let s = &self.summary;
        let _ = write!(h, "<section id=\"summary\"><h2>{}</h2>", escape(w.summary));
        match (s.all_locked, s.to_last_lock_ms) {
            (true, Some(ms)) => {
                let after_alert = s
                    .alert_to_last_lock_ms
                    .map(|a| format!(" ({} {})", duration(a), w.out_after_alert))
                    .unwrap_or_default();
                let _ = write!(
                    h,
                    "<p class=\"lead\" id=\"out-after\">{}{}{}{}</p>",
                    escape(w.out_after),
                    w.colon,
                    escape(&duration(ms)),
                    escape(&after_alert)
                );
            }
            _ => {
                let _ = write!(h, "<p class=\"warn\">{}</p>", escape(w.not_all_locked));
            }
        }
        h.push_str("<dl class=\"figures\">");
        for (label, value) in figures(s, w) {
            let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(&value));
        }
        h.push_str("</dl>");
        let _ = write!(h, "<h3 id=\"problems\">{}</h3>", escape(w.problems));
        if s.problems.is_empty() {
            let _ = write!(h, "<p>{}</p>", escape(w.no_problems));
        } else {
            let _ = write!(
                h,
                "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
                escape(w.step),
                escape(w.outcome),
                escape(w.why),
                escape(w.accounts)
            );
            for p in &s.problems {
                let (shown, more) = some_users(&p.users);
                let names: Vec<String> = shown.iter().map(|u| escape(u)).collect();
                let _ = write!(
                    h,
                    "<tr class=\"attention\"><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}{}{}</td></tr>",
                    p.step.map(|st| escape(step_name(lang, st))).unwrap_or_default(),
                    escape(problem_status(lang, p)),
                    escape(&p.why),
                    if p.users.len() > 1 { format!("{}{}", p.users.len(), w.colon) } else { String::new() },
                    names.join(", "),
                    if more > 0 { format!(" … (+{more})") } else { String::new() }
                );
            }
            h.push_str("</table>");
            if s.problems_total > s.problems.len() {
                let _ = write!(
                    h,
                    "<p>… {} {}</p>",
                    s.problems_total - s.problems.len(),
                    escape(w.more_problems)
                );
            }
        }
        h.push_str("</section>\n");
    }

    fn runs_html(&self, h: &mut String, w: &Texts) {
        let _ = write!(
            h,
            "<section id=\"runs\"><h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            escape(w.runs),
            escape(w.run_action),
            escape(w.started),
            escape(w.run_end),
            escape(w.accounts),
            escape(w.why)
        );
        for r in &self.runs {
            let end = match (&r.ended_at, r.done, r.failed) {
                (Some(t), Some(d), Some(f)) => format!("{} ({d} {}, {f} ✗)", when(t), w.contained),
                (Some(t), _, _) => when(t),
                _ => w.run_interrupted.to_owned(),
            };
            let mut why = r.note.clone().unwrap_or_default();
            if let Some(k) = &r.kick_from {
                if !why.is_empty() {
                    why.push_str("; ");
                }
                let _ = write!(why, "{}: {k}", w.range);
            }
            let accounts = if r.accounts == 0 {
                "—".to_owned()
            } else {
                r.accounts.to_string()
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{accounts}</td><td>{}</td></tr>",
                escape(&r.action),
                escape(&when(&r.started_at)),
                escape(&end),
                escape(&why)
            );
        }
        h.push_str("</table></section>\n");
    }

    fn attacker_html(&self, h: &mut String, w: &Texts) {
        let _ = write!(h, "<section id=\"attacker\"><h2>{}</h2>", escape(w.attacker));
        if self.attacker.is_empty() {
            let _ = writeln!(h, "<p>{}</p></section>", escape(w.no_attacker));
            return;
        }
        let _ = write!(
            h,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
            escape(w.range),
            escape(w.seen_accounts),
            escape(w.sessions_closed)
        );
        for a in &self.attacker {
            let shown: Vec<String> = a
                .accounts
                .iter()
                .take(ACCOUNTS_INLINE)
                .map(|u| escape(u))
                .collect();
            let more = a.accounts.len().saturating_sub(shown.len());
            let _ = write!(
                h,
                "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}{}</td><td>{}</td></tr>",
                escape(&a.range),
                shown.join(", "),
                if more > 0 {
                    format!(" … (+{more})")
                } else {
                    String::new()
                },
                a.sessions_closed
            );
        }
        h.push_str("</table></section>\n");
    }

    fn accounts_html(&self, h: &mut String, lang: Language, w: &Texts) {
        let _ = write!(h, "<section id=\"accounts\"><h2>{}</h2>", escape(w.per_account));
        let all = self.accounts.len() <= ACCOUNTS_INLINE;
        if !all {
            let _ = write!(
                h,
                "<p>{} <code>{}</code></p>",
                escape(w.accounts_csv),
                escape(&self.csv_file_name())
            );
        }
        let _ = write!(
            h,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            escape(w.account),
            escape(w.outcome),
            escape(w.steps),
            escape(w.sessions),
            escape(w.mail),
            escape(w.notified)
        );
        let shown = self.accounts.iter().filter(|a| {
            all || matches!(
                a.outcome,
                AccountOutcome::NeedsAttention | AccountOutcome::Interrupted | AccountOutcome::Refused
            )
        });
        for a in shown.take(ACCOUNTS_INLINE) {
            account_row(h, a, lang, w);
        }
        h.push_str("</table></section>\n");
    }

    fn notifications_html(&self, h: &mut String, w: &Texts) {
        if self.notifications.is_empty() {
            return;
        }
        let _ = write!(
            h,
            "<section id=\"notifications\"><h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            escape(w.notifications),
            escape(w.sent),
            escape(w.notified),
            escape(w.to),
            escape(w.about),
            escape(w.delivered)
        );
        for n in &self.notifications {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                escape(&when(&n.at)),
                escape(&n.notifier),
                escape(&n.recipients.join(", ")),
                n.users,
                escape(if n.delivered { w.yes } else { w.no })
            );
        }
        h.push_str("</table></section>\n");
    }

    fn proof_html(&self, h: &mut String, w: &Texts) {
        let p = &self.proof;
        let _ = write!(h, "<section id=\"proof\"><h2>{}</h2>", escape(w.proof));
        self.proof_banner(h, w);
        h.push_str("<dl class=\"figures\">");
        let mut row = |label: &str, value: String, mono: bool| {
            let _ = write!(
                h,
                "<dt>{}</dt><dd{}>{}</dd>",
                escape(label),
                if mono { " class=\"mono\" id=\"head\"" } else { "" },
                escape(&value)
            );
        };
        row(w.journal, p.journal.clone(), false);
        row(w.records, p.journal_records.to_string(), false);
        row(w.head, p.head.clone(), true);
        let ranges: Vec<String> = p
            .seq_ranges
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}–{b}")
                }
            })
            .collect();
        let mut made = format!("{} (seq {})", p.records, ranges.join(", "));
        if p.unproven_records > 0 {
            let _ = write!(made, "; {} {}", p.unproven_records, w.unproven);
        }
        row(w.made_from, made, false);
        h.push_str("</dl>");
        let _ = writeln!(h, "<p>{}</p></section>", escape(w.secrets));
    }
}

fn account_row(h: &mut String, a: &AccountRecord, lang: Language, w: &Texts) {
    let attention = matches!(
        a.outcome,
        AccountOutcome::NeedsAttention | AccountOutcome::Interrupted | AccountOutcome::Refused
    );
    let mut steps = String::new();
    for s in &a.steps {
        let _ = write!(
            steps,
            "{}: {} ({}{}){}<br>",
            escape(step_name(lang, s.step)),
            escape(status(lang, s.status)),
            escape(&when(s.done_at.as_deref().unwrap_or(&s.at))),
            s.took_ms
                .map(|t| format!(", {}", duration(t)))
                .unwrap_or_default(),
            s.note
                .as_ref()
                .map(|n| format!(" — {}", escape(n)))
                .unwrap_or_default()
        );
    }
    if let Some(e) = &a.refused {
        let _ = write!(steps, "{}", escape(e.message()));
    }
    let mut mail = Vec::new();
    if !a.mail_rules_deactivated.is_empty() {
        mail.push(format!(
            "{}: {}",
            w.rules_deactivated,
            a.mail_rules_deactivated.join(", ")
        ));
    }
    if !a.mail_rules_left_active.is_empty() {
        mail.push(format!("⚠ {}", a.mail_rules_left_active.join(", ")));
    }
    if a.mail_held > 0 {
        mail.push(format!("{}: {}", w.mail_held, a.mail_held));
    }
    if let Some(n) = a.sent_messages {
        mail.push(format!("{}: {n}", w.sent));
    }
    if let Some(c) = &a.changes {
        let names: Vec<&str> = c.iter().map(|c| c.attribute.as_str()).collect();
        mail.push(format!("{}: {}", w.changes, names.join(", ")));
    }
    let _ = write!(
        h,
        "<tr{}><td class=\"mono\">{}</td><td>{}</td><td>{steps}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
        if attention { " class=\"attention\"" } else { "" },
        escape(&a.user),
        escape(outcome(lang, a.outcome)),
        a.sessions_closed,
        mail.iter().map(|m| escape(m)).collect::<Vec<_>>().join("<br>"),
        escape(&a.notified.join("; "))
    );
}
