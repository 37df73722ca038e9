//! What the commands print for people: reports, account states, changes, sightings.

use cadenas::directory::{AccountState, LockState};
use cadenas::incident::{ContainReport, UserReport};
use cadenas::investigate::{PivotReport, SightingKind};
use cadenas::journal::StepStatus;

use crate::Cli;

pub fn print_report(cli: &Cli, r: &ContainReport) {
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

pub fn print_state(user: &str, s: &AccountState) {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("{user}  {}", s.dn);
    let lock = match &s.lock {
        LockState::Unlocked => "unlocked".to_owned(),
        LockState::Locked => "LOCKED (until unlocked by an administrator)".to_owned(),
        LockState::LockedOut { since } => format!("locked out since {since}"),
        other => format!("{other:?}"),
    };
    println!("  lock:             {lock}");
    println!("  must change:      {}", yes_no(s.must_change));
    match s.mfa_required {
        Some(m) => println!("  MFA required:     {}", yes_no(m)),
        None => println!("  MFA required:     (no MFA group configured)"),
    }
    println!(
        "  password changed: {}",
        s.password_changed_at.as_deref().unwrap_or("-")
    );
    let protected = if s.protected_groups.is_empty() {
        "-".to_owned()
    } else {
        s.protected_groups.join(", ")
    };
    println!("  protected groups: {protected}");
}

/// Checks (of `check` and `drill`), one line each: `ok`, `WARN` or `FAIL`, then the fix.
pub fn print_checks(checks: &[cadenas::preflight::Check]) {
    use cadenas::preflight::Verdict;
    for c in checks {
        let mark = match c.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "WARN",
            _ => "FAIL",
        };
        println!("{mark} {}: {}", c.name, cadenas::escape_controls(&c.detail));
        if let Some(fix) = &c.fix {
            println!("     fix: {fix}");
        }
    }
}
