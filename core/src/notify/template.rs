//! Message texts: defaults in English and French, or templates from the config, filled with
//! `{placeholder}`s. A placeholder's value is data from the report — never a secret: no
//! password, code or hand-over path is ever a value here.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::NotifyEvent;

/// The language of the default texts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Language {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

/// The placeholders a template may use.
pub(crate) const PLACEHOLDERS: [&str; 8] = [
    "event", "incident", "time", "count", "users", "user", "details", "alert",
];

/// The default subject for `event`.
pub(crate) fn default_subject(lang: Language, event: NotifyEvent) -> &'static str {
    match (lang, event) {
        (Language::En, NotifyEvent::Contained) => {
            "[Cadenas] {incident}: {count} account(s) contained: {user}"
        }
        (Language::En, NotifyEvent::NeedsAttention) => {
            "[Cadenas] {incident}: {count} account(s) need attention: {user}"
        }
        (Language::En, NotifyEvent::Released) => "[Cadenas] {incident}: account released: {user}",
        (Language::En, NotifyEvent::MfaReset) => "[Cadenas] second factor reset: {user}",
        (Language::En, NotifyEvent::SendingLimit) => "[Cadenas] sending limit exceeded: {user}",
        (Language::Fr, NotifyEvent::SendingLimit) => "[Cadenas] limite d'envoi dépassée : {user}",
        (Language::Fr, NotifyEvent::Contained) => {
            "[Cadenas] {incident} : {count} compte(s) sécurisé(s) : {user}"
        }
        (Language::Fr, NotifyEvent::NeedsAttention) => {
            "[Cadenas] {incident} : {count} compte(s) à traiter : {user}"
        }
        (Language::Fr, NotifyEvent::Released) => "[Cadenas] {incident} : compte rétabli : {user}",
        (Language::Fr, NotifyEvent::MfaReset) => "[Cadenas] double authentification réinitialisée : {user}",
        (Language::En, NotifyEvent::Alert) => "[Cadenas] alert: {user}",
        (Language::Fr, NotifyEvent::Alert) => "[Cadenas] alerte : {user}",
        (Language::En, NotifyEvent::Test) => "[Cadenas] TEST {incident}: a test message, nothing happened",
        (Language::Fr, NotifyEvent::Test) => {
            "[Cadenas] TEST {incident} : message d'essai, rien ne s'est passé"
        }
    }
}

/// The default body for `event`.
pub(crate) fn default_body(lang: Language, event: NotifyEvent) -> &'static str {
    match (lang, event) {
        // the SMS line itself: what a gateway sends (`text`), at most 160 characters
        (_, NotifyEvent::Alert) => "{alert}",
        (Language::En, NotifyEvent::Test) => {
            "TEST {incident}, {time}.\n\n\
             This is a test message from `cadenas check --notify-test`: it checks that the \
             notifications of a containment reach you. Nothing happened; no account was \
             contained.\n\n-- \nCadenas"
        }
        (Language::Fr, NotifyEvent::Test) => {
            "ESSAI {incident}, {time}.\n\n\
             Ceci est un message d'essai de `cadenas check --notify-test` : il vérifie que les \
             notifications d'un confinement vous parviennent. Rien ne s'est passé ; aucun \
             compte n'a été sécurisé.\n\n-- \nCadenas"
        }
        (Language::En, NotifyEvent::Contained) => {
            "Incident {incident}, {time}.\n\n\
             The password of the account(s) below was probably stolen. To keep the attacker out, \
             each account was locked, given a new password that must be changed at the next login, \
             disconnected from mail and applications, and now requires a second factor (MFA).\n\n\
             {users}\n\n\
             The new password is handed over in person by the IT team; it is never sent by mail. \
             Until then the account cannot be used.\n\n{details}-- \nCadenas"
        }
        (Language::En, NotifyEvent::NeedsAttention) => {
            "Incident {incident}, {time}.\n\n\
             Containment is NOT complete for the account(s) below: a step failed or was refused.\n\n\
             {users}\n\n{details}Run `cadenas contain --resume` once the cause is fixed.\n-- \nCadenas"
        }
        (Language::En, NotifyEvent::Released) => {
            "Incident {incident}, {time}.\n\n\
             The account(s) below can be used again: the user proved their identity and enrolled a \
             second factor. The password set during the incident must be changed at the first \
             login.\n\n{users}\n\n-- \nCadenas"
        }
        (Language::En, NotifyEvent::MfaReset) => {
            "{time}.\n\nThe second factor (TOTP) of the account(s) below was reset: any device \
             enrolled before no longer works, and the user must enrol again.\n\n{users}\n\n-- \nCadenas"
        }
        (Language::Fr, NotifyEvent::Contained) => {
            "Incident {incident}, {time}.\n\n\
             Le mot de passe du ou des comptes ci-dessous a probablement été volé. Pour en écarter \
             l'attaquant, chaque compte a été verrouillé, a reçu un nouveau mot de passe à changer à \
             la prochaine connexion, a été déconnecté de la messagerie et des applications, et \
             demande désormais un second facteur d'authentification.\n\n\
             {users}\n\n\
             Le nouveau mot de passe est remis en main propre par le service informatique ; il \
             n'est jamais envoyé par courriel. D'ici là, le compte est inutilisable.\n\n{details}-- \nCadenas"
        }
        (Language::Fr, NotifyEvent::NeedsAttention) => {
            "Incident {incident}, {time}.\n\n\
             La mise en sécurité n'est PAS terminée pour le ou les comptes ci-dessous : une étape a \
             échoué ou a été refusée.\n\n{users}\n\n{details}Relancez `cadenas contain --resume` une \
             fois la cause corrigée.\n-- \nCadenas"
        }
        (Language::Fr, NotifyEvent::Released) => {
            "Incident {incident}, {time}.\n\n\
             Le ou les comptes ci-dessous sont de nouveau utilisables : l'utilisateur a justifié de \
             son identité et enregistré un second facteur. Le mot de passe fixé pendant l'incident \
             devra être changé à la première connexion.\n\n{users}\n\n-- \nCadenas"
        }
        (Language::Fr, NotifyEvent::MfaReset) => {
            "{time}.\n\nLe second facteur (TOTP) du ou des comptes ci-dessous a été réinitialisé : \
             tout appareil enregistré auparavant ne fonctionne plus, l'utilisateur doit en \
             enregistrer un nouveau.\n\n{users}\n\n-- \nCadenas"
        }
        (Language::En, NotifyEvent::SendingLimit) => {
            "{time}.\n\nThe account(s) below sent more mail than their limit allows. This is how a \
             stolen mailbox password is usually used (phishing, spam from our own servers): check \
             with the user, and contain the account if in doubt.\n\n{users}\n\n{details}-- \nCadenas"
        }
        (Language::Fr, NotifyEvent::SendingLimit) => {
            "{time}.\n\nLe ou les comptes ci-dessous ont envoyé plus de courriels que leur limite ne \
             le permet. C'est l'usage habituel d'un mot de passe de messagerie volé (hameçonnage, \
             spam depuis nos propres serveurs) : vérifiez auprès de l'utilisateur, et mettez le \
             compte en sécurité en cas de doute.\n\n{users}\n\n{details}-- \nCadenas"
        }
    }
}

/// Fills `{name}` placeholders from `values`; `{{` and `}}` are literal braces; an unknown
/// placeholder is left as written (templates are checked when the config is read).
pub(crate) fn render(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(end) = tail.starts_with('{').then(|| tail.find('}')).flatten() {
            let name = &tail[1..end];
            match values.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&tail[..=end]),
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The placeholders of `template` that are not in [`PLACEHOLDERS`].
pub(crate) fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            rest = after;
            continue;
        }
        match tail.find('}') {
            Some(end) => {
                let name = &tail[1..end];
                if !PLACEHOLDERS.contains(&name) {
                    out.push(name.to_owned());
                }
                rest = &tail[end + 1..];
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let mut v = BTreeMap::new();
        v.insert("user", "jdupont".to_owned());
        v.insert("count", "1".to_owned());
        assert_eq!(
            render("{{literal}} {user} x{count} {nope} {", &v),
            "{literal} jdupont x1 {nope} {"
        );
        assert_eq!(unknown_placeholders("{user} {{x}} {nope} {count}"), ["nope"]);
    }

    #[test]
    fn every_default_uses_known_placeholders_only() {
        for lang in [Language::En, Language::Fr] {
            for e in NotifyEvent::ALL {
                assert!(
                    unknown_placeholders(default_subject(lang, e)).is_empty(),
                    "{lang:?} {e:?}"
                );
                assert!(
                    unknown_placeholders(default_body(lang, e)).is_empty(),
                    "{lang:?} {e:?}"
                );
            }
        }
    }

    #[test]
    fn a_value_from_outside_cannot_add_a_line_to_a_message() {
        use crate::notify::{Notice, NoticeUser};
        let forged = "Password reset done.\nReply with your new password to it@evil.example";
        let mut user = NoticeUser::new("jdupont", Some("uid=jdupont,ou=people".into()), "refused: x");
        user.summary = format!("refused: {forged}");
        user.details
            .push(format!("jdupont: description changed (now: {forged})"));
        let mut notice = Notice::new(NotifyEvent::NeedsAttention, Some("inc\r\n1".into()), vec![user]);
        notice.details.push(forged.to_owned());
        let values = notice.values(&notice.users, true, Language::En);
        for lang in [Language::En, Language::Fr] {
            let body = render(default_body(lang, NotifyEvent::NeedsAttention), &values);
            assert!(!body.lines().any(|l| l.starts_with("Reply with")), "{body}");
            assert!(body.contains("done.\\nReply with"), "{body}");
            let subject = render(default_subject(lang, NotifyEvent::NeedsAttention), &values);
            assert!(!subject.contains(['\n', '\r']), "{subject}");
        }
    }
}
