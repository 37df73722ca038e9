//! Values from outside (user names, server messages, addresses, attribute values) written on
//! one line: what every human-readable sink (logs, `journal show`, notifications) uses.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `value` with every control character written as an escape — `\n`, `\r`, `\x1b`,
/// `\u{85}`, and the Unicode line and paragraph separators as `\u{2028}`, `\u{2029}` — so
/// that it can never start a line of its own in a log file, a terminal or a message (a forged
/// line for fail2ban, a SIEM, or a reader). Tabs and everything else stay as they are,
/// backslashes included; borrowed when there is nothing to escape.
///
/// ```
/// assert_eq!(cadenas::escape_controls("chép\nevil user=root"), "chép\\nevil user=root");
/// assert_eq!(cadenas::escape_controls("plain\ttext"), "plain\ttext");
/// ```
pub fn escape_controls(value: &str) -> Cow<'_, str> {
    let needs = |c: char| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}';
    if !value.contains(needs) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_character_is_escaped_and_nothing_else() {
        assert!(matches!(escape_controls("jdupont"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("a\r\nb\x1b[31m\x7f\u{85}\u{2028}c\\n\t"),
            "a\\r\\nb\\x1b[31m\\x7f\\u{85}\\u{2028}c\\n\t"
        );
        for c in (0u32..0x100).filter_map(char::from_u32) {
            let s = c.to_string();
            let e = escape_controls(&s);
            assert!(!e.contains(['\n', '\r', '\x1b']), "{c:?} -> {e:?}");
        }
    }
}
