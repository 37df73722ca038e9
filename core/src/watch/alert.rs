//! An alert: what rule saw what, the command that contains it, and its SMS line.

use serde::{Deserialize, Serialize};

use crate::investigate::Instant;
use crate::notify::Language;

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertRule {
    /// A login from a network the account has not used in its baseline window.
    NewNetwork,
    /// One address logged into, or failed on, many accounts.
    ManyAccounts,
    /// A burst of failed logins on one account.
    FailuresOnAccount,
    /// A burst of failed logins from one address.
    FailuresFromAddress,
    /// An active Sieve script that sends mail outside the local domains, found after a
    /// ManageSieve login (a script not seen on the account before).
    OutsideMailRule,
    /// A sending limit of the outbound policy service exceeded (its records).
    SendingLimit,
}

impl AlertRule {
    /// The stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            AlertRule::NewNetwork => "new_network",
            AlertRule::ManyAccounts => "many_accounts",
            AlertRule::FailuresOnAccount => "failures_on_account",
            AlertRule::FailuresFromAddress => "failures_from_address",
            AlertRule::OutsideMailRule => "outside_mail_rule",
            AlertRule::SendingLimit => "sending_limit",
        }
    }

    fn words(self, lang: Language) -> &'static str {
        let fr = lang == Language::Fr;
        match self {
            AlertRule::NewNetwork if fr => "nouveau réseau",
            AlertRule::NewNetwork => "new network",
            AlertRule::ManyAccounts if fr => "nombreux comptes",
            AlertRule::ManyAccounts => "many accounts",
            AlertRule::FailuresOnAccount if fr => "échecs répétés",
            AlertRule::FailuresOnAccount => "failure burst",
            AlertRule::FailuresFromAddress if fr => "échecs depuis une adresse",
            AlertRule::FailuresFromAddress => "failures from one address",
            AlertRule::OutsideMailRule if fr => "transfert vers l'extérieur",
            AlertRule::OutsideMailRule => "mail sent outside",
            AlertRule::SendingLimit if fr => "limite d'envoi",
            AlertRule::SendingLimit => "sending limit",
        }
    }
}

/// An alert: the rule, the account (for the per-account rules), the address, when (the log
/// line's time), what was seen, and the command that contains it. Never a password or a
/// message's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Alert {
    /// Its identifier (`ALR-…`): the journal's record of it is filed under it.
    #[serde(default)]
    pub id: String,
    /// The rule.
    pub rule: AlertRule,
    /// The account, for the per-account rules.
    pub account: Option<String>,
    /// The client address.
    pub ip: String,
    /// When (RFC 3339 UTC, the log line's time).
    pub at: String,
    /// What was seen, in words.
    pub detail: String,
    /// The containment to run.
    pub command: String,
}

impl Alert {
    pub(super) fn new(rule: AlertRule, account: Option<&str>, ip: &str, at: i64, detail: String) -> Self {
        let range = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(_)) => format!("{ip}/128"),
            _ => format!("{ip}/32"),
        };
        let command = match (rule, account) {
            (AlertRule::FailuresOnAccount, Some(a)) => format!("cadenas plan {}", shell_word(a)),
            (AlertRule::OutsideMailRule | AlertRule::SendingLimit, Some(a)) => {
                format!("cadenas contain {}", shell_word(a))
            }
            _ => format!("cadenas contain --from-ip {range}"),
        };
        Self {
            id: new_alert_id(at),
            rule,
            account: account.map(str::to_owned),
            ip: ip.to_owned(),
            at: Instant::from_unix(at).rfc3339(),
            detail,
            command,
        }
    }

    /// What deduplicates it: the account for per-account rules, else the address.
    pub(super) fn subject(&self) -> String {
        self.account.clone().unwrap_or_else(|| self.ip.clone())
    }

    /// The alert as an SMS: at most 160 characters, in `lang`, with the command (names and
    /// addresses made printable, a long account name shortened).
    pub fn sms_text(&self, lang: Language) -> String {
        let who: String = crate::text::escape_controls(self.account.as_deref().unwrap_or(""))
            .chars()
            .take(24)
            .collect();
        let from = if lang == Language::Fr { "depuis" } else { "from" };
        let text = format!(
            "Cadenas: {}{}{from} {} ({}) - {}",
            who,
            if who.is_empty() { "" } else { " " },
            crate::text::escape_controls(&self.ip),
            self.rule.words(lang),
            crate::text::escape_controls(&self.command)
        );
        text.chars().take(160).collect()
    }
}

/// `ALR-<the line's time>-<6 random hex digits>` (the incident identifiers' shape).
fn new_alert_id(at: i64) -> String {
    let mut r = [0u8; 3];
    // no randomness: the time alone (an identifier, not a secret)
    let _ = crate::secret::fill_random(&mut r);
    let t = Instant::from_unix(at).rfc3339().replace(['-', ':'], "");
    format!("ALR-{}-{}", t.trim_end_matches('Z'), hex::encode(r))
}

/// `word` as one shell word: as is when it holds only letters, digits and `._@+-`, else in
/// single quotes (a name from a log line is data, even pasted into a shell).
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_in_a_command_is_one_shell_word() {
        assert_eq!(shell_word("jdupont"), "jdupont");
        assert_eq!(shell_word("j.dupont@example.test"), "j.dupont@example.test");
        assert_eq!(shell_word("x; rm -rf /"), "'x; rm -rf /'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        let a = Alert::new(
            AlertRule::OutsideMailRule,
            Some("a b"),
            "192.0.2.1",
            0,
            String::new(),
        );
        assert_eq!(a.command, "cadenas contain 'a b'");
    }
}
