//! Log events as one line each, whatever they carry: a value from outside (a server's message,
//! an address, a name) can never start a line of its own in a log file — a forged line for
//! fail2ban, a SIEM, or Cadenas' own log readers.

use std::io::Write;

/// `event` (one formatted event, its own newline last) with every control character but that
/// newline and tabs escaped by [`cadenas::escape_controls`].
pub fn escape_event(event: &[u8]) -> Vec<u8> {
    let body = event.strip_suffix(b"\n").unwrap_or(event);
    let text = String::from_utf8_lossy(body);
    let mut out = cadenas::escape_controls(&text).into_owned().into_bytes();
    if body.len() != event.len() {
        out.push(b'\n');
    }
    out
}

/// Standard error, each event escaped (the formatter writes an event in one call).
pub struct EscapedStderr;

impl Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().write_all(&escape_event(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_with_a_newline_stays_on_its_event_line() {
        let event = b"2026-12-07 WARN outbound: refused account=ch\xc3\xa9p\nevil user=root\x1b[31m\r\n";
        let out = escape_event(event);
        assert_eq!(
            out,
            b"2026-12-07 WARN outbound: refused account=ch\xc3\xa9p\\nevil user=root\\x1b[31m\\r\n".to_vec()
        );
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(escape_event(b"plain\tline\n"), b"plain\tline\n".to_vec());
    }
}
