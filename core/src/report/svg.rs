//! The timeline picture: inline SVG, one row per account for a few accounts, the curves of
//! how many had reached each step for many. Text in it is escaped like the page's.

use std::fmt::Write;

use super::html::escape;
use super::texts::{duration, step as step_name, Texts};
use super::types::Timeline;
use crate::journal::Step;
use crate::notify::Language;

const WIDTH: u64 = 900;
const LEFT: u64 = 170;
const RIGHT: u64 = 20;
const TOP: u64 = 44;
const BOTTOM: u64 = 36;
const ROW: u64 = 18;
const CURVES_HEIGHT: u64 = 260;

/// The steps drawn, in order, with their colour.
const STEPS: [(Step, &str); 5] = [
    (Step::Lock, "#c62828"),
    (Step::ResetPassword, "#ef6c00"),
    (Step::RevokeSessions, "#1565c0"),
    (Step::HoldMail, "#6a1b9a"),
    (Step::RequireMfa, "#2e7d32"),
];

fn colour(s: Step) -> &'static str {
    STEPS.iter().find(|(x, _)| *x == s).map_or("#555", |(_, c)| c)
}

/// The picture, or an empty string when nothing was timed.
pub(super) fn timeline(t: &Timeline, lang: Language, words: &Texts) -> String {
    if t.origin.is_none() || (t.rows.is_empty() && t.curves.is_empty()) {
        return String::new();
    }
    let rows = !t.rows.is_empty();
    let plot_h = if rows {
        ROW * t.rows.len() as u64
    } else {
        CURVES_HEIGHT
    };
    let height = TOP + plot_h + BOTTOM;
    let span = t.span_ms.max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |ms: u64| LEFT as f64 + (ms.min(span) as f64 / span as f64) * plot_w as f64;
    let mut s = String::new();
    let caption = if rows {
        words.timeline_caption
    } else {
        words.curves_caption
    };
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{}" font-family="sans-serif" font-size="11">"#,
        escape(caption)
    );
    let _ = write!(s, "<title>{}</title>", escape(caption));
    // legend
    let mut lx = LEFT;
    for (step, c) in STEPS {
        if !t.rows.iter().any(|r| r.steps.iter().any(|(st, _)| *st == step))
            && !t.curves.iter().any(|cv| cv.step == step)
        {
            continue;
        }
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="8" width="10" height="10" fill="{c}"/><text x="{}" y="17">{}</text>"#,
            lx + 14,
            escape(step_name(lang, step))
        );
        lx += 30 + 7 * step_name(lang, step).chars().count() as u64;
    }
    // axis and ticks
    let base = TOP + plot_h;
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#333"/>"##,
        WIDTH - RIGHT
    );
    for i in 0..=5u64 {
        let ms = span * i / 5;
        let px = x(ms);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{base}" stroke="#e0e0e0"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            base + 16,
            escape(&duration(ms))
        );
    }
    // first and last lock, the alert
    let marks = [
        (t.first_lock_ms, words.first_lock, "#c62828"),
        (t.last_lock_ms, words.last_lock, "#c62828"),
        (t.alert_ms, words.alert, "#000"),
    ];
    for (ms, label, c) in marks {
        if let Some(ms) = ms {
            let px = x(ms);
            let _ = write!(
                s,
                r#"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{base}" stroke="{c}" stroke-dasharray="4 3"><title>{}: {}</title></line>"#,
                TOP - 8,
                escape(label),
                escape(&duration(ms))
            );
        }
    }
    if rows {
        for (i, r) in t.rows.iter().enumerate() {
            let y = TOP + ROW * i as u64 + ROW / 2;
            let name: String = r.user.chars().take(24).collect();
            let (fill, flag) = if r.attention {
                ("#c62828", " !")
            } else {
                ("#222", "")
            };
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end" fill="{fill}">{}{flag}</text>"#,
                LEFT - 6,
                y + 4,
                escape(&name)
            );
            if let (Some(first), Some(last)) = (
                r.steps.iter().map(|(_, m)| *m).min(),
                r.steps.iter().map(|(_, m)| *m).max(),
            ) {
                let _ = write!(
                    s,
                    r##"<line x1="{:.1}" y1="{y}" x2="{:.1}" y2="{y}" stroke="#9e9e9e"/>"##,
                    x(first),
                    x(last)
                );
            }
            for (step, ms) in &r.steps {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{y}" r="4" fill="{}"><title>{}: {} — {}</title></circle>"#,
                    x(*ms),
                    colour(*step),
                    escape(&r.user),
                    escape(step_name(lang, *step)),
                    escape(&duration(*ms))
                );
            }
        }
    } else {
        let max = t.curves.iter().map(|c| c.total).max().unwrap_or(1).max(1);
        let y = |n: usize| (TOP + plot_h) as f64 - (n as f64 / max as f64) * plot_h as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{max}</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
            LEFT - 6,
            TOP + 4,
            LEFT - 6,
            base
        );
        for c in &t.curves {
            let mut path = format!("M{:.1},{:.1}", x(0), y(0));
            let mut prev = 0usize;
            for &(ms, n) in &c.points {
                let _ = write!(path, " L{:.1},{:.1} L{:.1},{:.1}", x(ms), y(prev), x(ms), y(n));
                prev = n;
            }
            let _ = write!(path, " L{:.1},{:.1}", x(span), y(prev));
            let _ = write!(
                s,
                r#"<path d="{path}" fill="none" stroke="{}" stroke-width="2"><title>{}: {}</title></path>"#,
                colour(c.step),
                escape(step_name(lang, c.step)),
                c.total
            );
        }
    }
    s.push_str("</svg>");
    s
}
