//! The page's words, in English and French, and how durations and counts read.

use super::types::{AccountOutcome, Summary};
use crate::journal::{Step, StepStatus};
use crate::notify::Language;

/// Every fixed text of the page, in one language.
pub(super) struct Texts {
    pub title: &'static str,
    pub summary: &'static str,
    pub broken: &'static str,
    pub broken_after: &'static str,
    pub intact: &'static str,
    pub intact_macs: &'static str,
    pub alert: &'static str,
    pub started: &'static str,
    pub first_lock: &'static str,
    pub last_lock: &'static str,
    pub ended: &'static str,
    pub accounts: &'static str,
    pub contained: &'static str,
    pub needs_attention: &'static str,
    pub refused: &'static str,
    pub released: &'static str,
    pub out_after: &'static str,
    pub out_after_alert: &'static str,
    pub not_all_locked: &'static str,
    pub all_done_after: &'static str,
    pub sessions_closed: &'static str,
    pub rules_deactivated: &'static str,
    pub mail_held: &'static str,
    pub notifications: &'static str,
    pub not_delivered: &'static str,
    pub problems: &'static str,
    pub no_problems: &'static str,
    pub more_problems: &'static str,
    pub timeline: &'static str,
    pub timeline_caption: &'static str,
    pub curves_caption: &'static str,
    pub runs: &'static str,
    pub run_action: &'static str,
    pub run_end: &'static str,
    pub run_interrupted: &'static str,
    pub per_account: &'static str,
    pub account: &'static str,
    pub outcome: &'static str,
    pub steps: &'static str,
    pub sessions: &'static str,
    pub mail: &'static str,
    pub changes: &'static str,
    pub notified: &'static str,
    pub accounts_csv: &'static str,
    pub attacker: &'static str,
    pub range: &'static str,
    pub seen_accounts: &'static str,
    pub no_attacker: &'static str,
    pub sent: &'static str,
    pub to: &'static str,
    pub about: &'static str,
    pub delivered: &'static str,
    pub proof: &'static str,
    pub journal: &'static str,
    pub head: &'static str,
    pub records: &'static str,
    pub made_from: &'static str,
    pub unproven: &'static str,
    pub secrets: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub step: &'static str,
    pub why: &'static str,
    pub generated: &'static str,
    /// `: ` in English, ` : ` in French.
    pub colon: &'static str,
}

const EN: Texts = Texts {
    title: "Incident record",
    summary: "Summary",
    broken: "THE JOURNAL DOES NOT VERIFY",
    broken_after: "Every figure on this page is unproven: the record named below was edited, removed, inserted or forged after it was written.",
    intact: "The journal's hash chain verified: no record of it was edited, removed or inserted.",
    intact_macs: "The journal's hash chain and every record's MAC verified: no record of it was edited, removed, inserted or forged.",
    alert: "Alert received",
    started: "Containment started",
    first_lock: "First account locked",
    last_lock: "Last account locked",
    ended: "Containment ended",
    accounts: "Accounts",
    contained: "contained",
    needs_attention: "need attention",
    refused: "refused",
    released: "released since",
    out_after: "The attacker was out of every account",
    out_after_alert: "after the alert",
    not_all_locked: "Not every account was locked: the attacker may still use the accounts listed under “What could not be done”.",
    all_done_after: "Every step was done",
    sessions_closed: "Sessions closed",
    rules_deactivated: "Mail rules deactivated",
    mail_held: "Messages held in the mail queue",
    notifications: "Notifications",
    not_delivered: "not delivered",
    problems: "What could not be done",
    no_problems: "Nothing: every step of every account was done.",
    more_problems: "more (see the JSON report or the CSV table)",
    timeline: "Timeline",
    timeline_caption: "One row per account; a mark where each step was done. The dashed lines are the first and the last lock.",
    curves_caption: "Accounts that had reached each step over time. The dashed lines are the first and the last lock.",
    runs: "Runs",
    run_action: "Action",
    run_end: "Ended",
    run_interrupted: "interrupted (no end record)",
    per_account: "Per account",
    account: "Account",
    outcome: "Outcome",
    steps: "Steps",
    sessions: "Sessions closed",
    mail: "Mail",
    changes: "Changes found on the entry",
    notified: "Notified",
    accounts_csv: "Only the accounts that need attention are listed here; the table of every account is in the CSV file beside this page:",
    attacker: "The attacker's addresses",
    range: "Address range",
    seen_accounts: "Accounts seen from it",
    no_attacker: "No run of this incident acted on an attacker's address.",
    sent: "Sent",
    to: "To",
    about: "Accounts",
    delivered: "Delivered",
    proof: "Proof",
    journal: "Journal",
    head: "Head hash (the last record that verified)",
    records: "Records in the journal",
    made_from: "This page was made from the incident's records",
    unproven: "of them read after the break, unproven",
    secrets: "No password, second-factor secret or recovery code is in the journal or on this page.",
    yes: "yes",
    no: "no",
    step: "Step",
    why: "Why",
    generated: "Made by Cadenas from the journal",
    colon: ": ",
};

const FR: Texts = Texts {
    title: "Rapport d'incident",
    summary: "En bref",
    broken: "LE JOURNAL NE SE VÉRIFIE PAS",
    broken_after: "Aucun chiffre de cette page n'est prouvé : l'enregistrement nommé ci-dessous a été modifié, supprimé, inséré ou falsifié après son écriture.",
    intact: "La chaîne d'empreintes du journal est vérifiée : aucun enregistrement n'a été modifié, supprimé ou inséré.",
    intact_macs: "La chaîne d'empreintes du journal et le MAC de chaque enregistrement sont vérifiés : aucun enregistrement n'a été modifié, supprimé, inséré ou falsifié.",
    alert: "Alerte reçue",
    started: "Début de la mise en sécurité",
    first_lock: "Premier compte verrouillé",
    last_lock: "Dernier compte verrouillé",
    ended: "Fin de la mise en sécurité",
    accounts: "Comptes",
    contained: "sécurisés",
    needs_attention: "à examiner",
    refused: "refusés",
    released: "rétablis depuis",
    out_after: "L'attaquant n'avait plus accès à aucun compte",
    out_after_alert: "après l'alerte",
    not_all_locked: "Tous les comptes n'ont pas été verrouillés : l'attaquant peut encore utiliser les comptes listés sous « Ce qui n'a pas pu être fait ».",
    all_done_after: "Toutes les étapes étaient faites",
    sessions_closed: "Sessions fermées",
    rules_deactivated: "Règles de messagerie désactivées",
    mail_held: "Messages retenus dans la file d'envoi",
    notifications: "Notifications",
    not_delivered: "non remises",
    problems: "Ce qui n'a pas pu être fait",
    no_problems: "Rien : chaque étape de chaque compte a été faite.",
    more_problems: "de plus (voir le rapport JSON ou le tableau CSV)",
    timeline: "Chronologie",
    timeline_caption: "Une ligne par compte ; une marque à chaque étape faite. Les tirets marquent le premier et le dernier verrouillage.",
    curves_caption: "Comptes ayant atteint chaque étape au fil du temps. Les tirets marquent le premier et le dernier verrouillage.",
    runs: "Exécutions",
    run_action: "Action",
    run_end: "Fin",
    run_interrupted: "interrompue (pas d'enregistrement de fin)",
    per_account: "Compte par compte",
    account: "Compte",
    outcome: "Résultat",
    steps: "Étapes",
    sessions: "Sessions fermées",
    mail: "Messagerie",
    changes: "Modifications trouvées sur l'entrée",
    notified: "Prévenus",
    accounts_csv: "Seuls les comptes à examiner sont listés ici ; le tableau de tous les comptes est dans le fichier CSV à côté de cette page :",
    attacker: "Les adresses de l'attaquant",
    range: "Plage d'adresses",
    seen_accounts: "Comptes vus depuis cette plage",
    no_attacker: "Aucune exécution de cet incident n'a visé une adresse de l'attaquant.",
    sent: "Envoyée",
    to: "À",
    about: "Comptes",
    delivered: "Remise",
    proof: "Preuve",
    journal: "Journal",
    head: "Empreinte de tête (le dernier enregistrement vérifié)",
    records: "Enregistrements du journal",
    made_from: "Cette page a été faite à partir des enregistrements de l'incident",
    unproven: "d'entre eux lus après la rupture, non prouvés",
    secrets: "Aucun mot de passe, secret de second facteur ou code de secours ne figure dans le journal ni sur cette page.",
    yes: "oui",
    no: "non",
    step: "Étape",
    why: "Pourquoi",
    generated: "Produit par Cadenas à partir du journal",
    colon: " : ",
};

/// The texts of `lang`.
pub(super) fn texts(lang: Language) -> &'static Texts {
    match lang {
        Language::Fr => &FR,
        _ => &EN,
    }
}

/// The language's code for `<html lang>`.
pub(super) fn code(lang: Language) -> &'static str {
    match lang {
        Language::Fr => "fr",
        _ => "en",
    }
}

/// `en` or `fr`, as `lang` says.
fn pick(lang: Language, en: &'static str, fr: &'static str) -> &'static str {
    if lang == Language::Fr {
        fr
    } else {
        en
    }
}

/// A step's name for readers.
pub(super) fn step(lang: Language, s: Step) -> &'static str {
    match s {
        Step::Lock => pick(lang, "lock", "verrouillage"),
        Step::ResetPassword => pick(lang, "password reset", "nouveau mot de passe"),
        Step::RevokeSessions => pick(lang, "sessions revoked", "sessions révoquées"),
        Step::HoldMail => pick(lang, "mail held", "courrier retenu"),
        Step::RequireMfa => pick(lang, "MFA required", "second facteur exigé"),
        Step::RestoreFlags => pick(lang, "release", "rétablissement"),
    }
}

/// A step status for readers.
pub(super) fn status(lang: Language, s: Option<StepStatus>) -> &'static str {
    match s {
        Some(StepStatus::Changed) => pick(lang, "done", "fait"),
        Some(StepStatus::AlreadySo) => pick(lang, "already so", "déjà fait"),
        Some(StepStatus::Partial) => pick(lang, "partly", "en partie"),
        Some(StepStatus::Failed) => pick(lang, "FAILED", "ÉCHEC"),
        None => pick(lang, "started, no outcome", "commencé, sans résultat"),
    }
}

/// An account outcome for readers.
pub(super) fn outcome(lang: Language, o: AccountOutcome) -> &'static str {
    match o {
        AccountOutcome::Contained => pick(lang, "contained", "sécurisé"),
        AccountOutcome::NeedsAttention => pick(lang, "needs attention", "à examiner"),
        AccountOutcome::Interrupted => pick(lang, "interrupted", "interrompu"),
        AccountOutcome::Refused => pick(lang, "refused", "refusé"),
        AccountOutcome::Released => pick(lang, "released", "rétabli"),
    }
}

/// How a problem reads: the step's status when it has one, else the account's outcome.
pub(super) fn problem_status(lang: Language, p: &super::types::Problem) -> &'static str {
    match (p.step, p.status) {
        (Some(_), Some(s)) => status(lang, Some(s)),
        (Some(_), None) if p.outcome == AccountOutcome::Interrupted => pick(lang, "not done", "non fait"),
        _ => outcome(lang, p.outcome),
    }
}

/// The first [`PROBLEM_USERS_SHOWN`](super::types::PROBLEM_USERS_SHOWN) names, and how many more.
pub(super) fn some_users(users: &[String]) -> (Vec<&str>, usize) {
    let shown: Vec<&str> = users
        .iter()
        .take(super::types::PROBLEM_USERS_SHOWN)
        .map(String::as_str)
        .collect();
    let more = users.len() - shown.len();
    (shown, more)
}

/// The summary's figures as (label, value), in the page's order: the times, the durations,
/// the accounts, what was closed, held and sent (mail rules and held messages only when
/// there were some).
pub(super) fn figures(s: &Summary, w: &Texts) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(a) = &s.alert_at {
        out.push((w.alert, when(a)));
    }
    for (label, t) in [
        (w.started, &s.started_at),
        (w.first_lock, &s.first_lock_at),
        (w.last_lock, &s.last_lock_at),
        (w.ended, &s.ended_at),
    ] {
        if let Some(t) = t {
            out.push((label, when(t)));
        }
    }
    if let Some(ms) = s.to_end_ms {
        out.push((w.all_done_after, duration(ms)));
    }
    let mut accounts = format!(
        "{} — {} {}, {} {}, {} {}",
        s.accounts, s.contained, w.contained, s.needs_attention, w.needs_attention, s.refused, w.refused
    );
    if s.released > 0 {
        accounts.push_str(&format!(", {} {}", s.released, w.released));
    }
    out.push((w.accounts, accounts));
    out.push((w.sessions_closed, s.sessions_closed.to_string()));
    if s.mail_rules_deactivated > 0 {
        out.push((w.rules_deactivated, s.mail_rules_deactivated.to_string()));
    }
    if s.mail_held > 0 {
        out.push((w.mail_held, s.mail_held.to_string()));
    }
    let mut n = s.notifications_delivered.to_string();
    if s.notifications_failed > 0 {
        n.push_str(&format!(" (+{} {})", s.notifications_failed, w.not_delivered));
    }
    out.push((w.notifications, n));
    out
}

/// A duration for readers: `850 ms`, `4.2 s`, `3 min 05 s`, `2 h 10 min`.
pub(super) fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{} h {:02} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// An RFC 3339 UTC time for readers: `2026-12-07 09:14:03.250 UTC`.
pub(super) fn when(t: &str) -> String {
    let t = t.trim_end_matches('Z').replacen('T', " ", 1);
    format!("{t} UTC")
}
