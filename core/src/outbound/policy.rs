//! Postfix's SMTP access policy delegation protocol: a request is `name=value` lines ended by
//! an empty line; the answer is `action=…` and an empty line. Several requests may follow
//! each other on one connection.
//!
//! Input is bounded: a request larger than [`MAX_REQUEST_BYTES`], with more than
//! [`MAX_ATTRIBUTES`] lines, a line without `=`, or bytes that are not UTF-8 is a protocol
//! error (the service closes that connection; Postfix never sends such a thing).

/// The largest request accepted, in bytes (Postfix's requests are well under 2 KiB).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// The most attribute lines in one request (Postfix sends about 40).
pub const MAX_ATTRIBUTES: usize = 128;

/// What the policy service reads of a request; other attributes are accepted and ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyRequest {
    /// `request` (`smtpd_access_policy`).
    pub request: String,
    /// `protocol_state`: `RCPT`, `END-OF-MESSAGE`, …
    pub protocol_state: String,
    /// `sasl_username`: the login that authenticated the session (empty when none did).
    pub sasl_username: String,
    /// `client_address`.
    pub client_address: String,
    /// `recipient` (at `RCPT`).
    pub recipient: String,
    /// `recipient_count` (at `END-OF-MESSAGE`: the message's accepted recipients).
    pub recipient_count: u32,
    /// `queue_id`, when Postfix has one yet.
    pub queue_id: String,
    /// `instance`: the same for every request about one message.
    pub instance: String,
}

impl PolicyRequest {
    /// A request as Postfix makes it at `RCPT TO`, of a session that `sasl_username` logged
    /// in to from `client_address`.
    pub fn rcpt(sasl_username: &str, client_address: &str) -> Self {
        Self {
            request: "smtpd_access_policy".into(),
            protocol_state: "RCPT".into(),
            sasl_username: sasl_username.into(),
            client_address: client_address.into(),
            ..Self::default()
        }
    }

    /// Whether this request is made at end of message (`smtpd_end_of_data_restrictions`).
    pub fn at_end_of_message(&self) -> bool {
        self.protocol_state.eq_ignore_ascii_case("END-OF-MESSAGE")
    }

    /// The request's text as Postfix would send it (for clients and tests).
    pub fn to_wire(&self) -> String {
        let mut s = String::with_capacity(256);
        for (k, v) in [
            ("request", self.request.as_str()),
            ("protocol_state", &self.protocol_state),
            ("sasl_username", &self.sasl_username),
            ("client_address", &self.client_address),
            ("recipient", &self.recipient),
            ("queue_id", &self.queue_id),
            ("instance", &self.instance),
        ] {
            s.push_str(k);
            s.push('=');
            s.push_str(v);
            s.push('\n');
        }
        s.push_str(&format!("recipient_count={}\n\n", self.recipient_count));
        s
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The request (without its end) grew past [`MAX_REQUEST_BYTES`].
    TooLarge,
    /// More than [`MAX_ATTRIBUTES`] lines.
    TooManyAttributes,
    /// A line with no `=`.
    NotAnAttribute,
    /// Bytes that are not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProtocolError::TooLarge => "request larger than the limit",
            ProtocolError::TooManyAttributes => "too many attributes",
            ProtocolError::NotAnAttribute => "a line that is not name=value",
            ProtocolError::NotUtf8 => "bytes that are not UTF-8",
        })
    }
}

/// Splits the bytes of one connection into requests: feed what was read with
/// [`buffer`](Self::buffer), take complete requests with [`next_request`](Self::next_request).
/// The buffer never holds more than one request's limit plus one read.
#[derive(Debug, Default)]
pub struct RequestReader {
    buf: Vec<u8>,
    /// Where the search for the end of the request resumes.
    scanned: usize,
}

impl RequestReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// The buffer to append read bytes to.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Whether bytes of a request not yet complete are waiting.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next complete request, `Ok(None)` when more bytes are needed.
    pub fn next_request(&mut self) -> Result<Option<PolicyRequest>, ProtocolError> {
        // the end of a request: an empty line ("\n\n", or "\n" at the very start)
        let from = self.scanned.saturating_sub(1);
        let end = if self.buf.first() == Some(&b'\n') {
            Some(0)
        } else {
            self.buf[from..]
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| from + p + 1)
        };
        let Some(end) = end else {
            if self.buf.len() > MAX_REQUEST_BYTES {
                return Err(ProtocolError::TooLarge);
            }
            self.scanned = self.buf.len();
            return Ok(None);
        };
        if end > MAX_REQUEST_BYTES {
            return Err(ProtocolError::TooLarge);
        }
        let parsed = parse(&self.buf[..end]);
        self.buf.drain(..=end);
        self.scanned = 0;
        parsed.map(Some)
    }
}

/// Parses the lines of one request (without its empty line).
fn parse(bytes: &[u8]) -> Result<PolicyRequest, ProtocolError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ProtocolError::NotUtf8)?;
    let mut r = PolicyRequest::default();
    for (n, line) in text.lines().enumerate() {
        if n >= MAX_ATTRIBUTES {
            return Err(ProtocolError::TooManyAttributes);
        }
        let (k, v) = line.split_once('=').ok_or(ProtocolError::NotAnAttribute)?;
        let field = match k {
            "request" => &mut r.request,
            "protocol_state" => &mut r.protocol_state,
            "sasl_username" => &mut r.sasl_username,
            "client_address" => &mut r.client_address,
            "recipient" => &mut r.recipient,
            "queue_id" => &mut r.queue_id,
            "instance" => &mut r.instance,
            "recipient_count" => {
                r.recipient_count = v.parse().unwrap_or(0);
                continue;
            }
            _ => continue,
        };
        v.clone_into(field);
    }
    Ok(r)
}

/// An answer to Postfix: what it does with the request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// `DUNNO`: no opinion; Postfix goes on with its other restrictions.
    Dunno,
    /// `REJECT text`: refused for good (5xx).
    Reject(String),
    /// `DEFER_IF_PERMIT text`: try again later (4xx), unless another restriction rejects.
    DeferIfPermit(String),
    /// `HOLD text`: accepted, and put on hold in the queue for an administrator.
    Hold(String),
}

impl Verdict {
    /// The answer's bytes: `action=…` and the empty line.
    pub fn to_wire(&self) -> String {
        match self {
            Verdict::Dunno => "action=DUNNO\n\n".to_owned(),
            Verdict::Reject(t) => format!("action=REJECT {}\n\n", one_line(t)),
            Verdict::DeferIfPermit(t) => format!("action=DEFER_IF_PERMIT {}\n\n", one_line(t)),
            Verdict::Hold(t) => format!("action=HOLD {}\n\n", one_line(t)),
        }
    }

    /// Parses an `action=…` line as a service answers it (for clients and tests).
    pub fn from_wire(line: &str) -> Option<Self> {
        let a = line.trim_end().strip_prefix("action=")?;
        let (word, text) = a.split_once(' ').unwrap_or((a, ""));
        Some(match word.to_ascii_uppercase().as_str() {
            "DUNNO" | "OK" => Verdict::Dunno,
            "REJECT" => Verdict::Reject(text.to_owned()),
            "DEFER_IF_PERMIT" => Verdict::DeferIfPermit(text.to_owned()),
            "HOLD" => Verdict::Hold(text.to_owned()),
            _ => return None,
        })
    }

    /// Whether Postfix will not accept the message (as sent now).
    pub fn refuses(&self) -> bool {
        matches!(self, Verdict::Reject(_) | Verdict::DeferIfPermit(_))
    }
}

/// A text on one line, printable ASCII only (a configured text never breaks the protocol).
fn one_line(t: &str) -> String {
    t.chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user: &str) -> String {
        format!("request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username={user}\nclient_address=127.0.0.66\nrecipient=a@b.test\nunknown_attr=x\n\n")
    }

    #[test]
    fn requests_are_split_at_their_empty_line_whatever_the_reads() {
        let stream = format!("{}{}", req("alice"), req("bob"));
        for chunk in [1, 2, 7, stream.len()] {
            let mut r = RequestReader::new();
            let mut got = Vec::new();
            for piece in stream.as_bytes().chunks(chunk) {
                r.buffer().extend_from_slice(piece);
                while let Some(q) = r.next_request().expect("valid") {
                    got.push(q.sasl_username);
                }
            }
            assert_eq!(got, ["alice", "bob"], "chunk {chunk}");
            assert!(!r.has_partial());
        }
    }

    #[test]
    fn bad_input_is_a_protocol_error_never_a_panic() {
        let mut r = RequestReader::new();
        r.buffer()
            .extend(std::iter::repeat_n(b'a', MAX_REQUEST_BYTES + 1));
        assert_eq!(r.next_request(), Err(ProtocolError::TooLarge));

        let mut r = RequestReader::new();
        r.buffer().extend_from_slice(b"no equals sign\n\n");
        assert_eq!(r.next_request(), Err(ProtocolError::NotAnAttribute));

        let mut r = RequestReader::new();
        r.buffer().extend_from_slice(b"sasl_username=\xff\xfe\n\n");
        assert_eq!(r.next_request(), Err(ProtocolError::NotUtf8));

        let mut r = RequestReader::new();
        let many: String = (0..=MAX_ATTRIBUTES).map(|i| format!("a{i}=1\n")).collect();
        r.buffer().extend_from_slice(format!("{many}\n").as_bytes());
        assert_eq!(r.next_request(), Err(ProtocolError::TooManyAttributes));

        // an empty request is one with no attributes, answered like any other
        let mut r = RequestReader::new();
        r.buffer().extend_from_slice(b"\n");
        assert_eq!(r.next_request().expect("ok"), Some(PolicyRequest::default()));
    }

    #[test]
    fn answers_are_one_line_whatever_the_configured_text() {
        let v = Verdict::Reject("5.7.1 no\r\naction=DUNNO".into());
        assert_eq!(v.to_wire(), "action=REJECT 5.7.1 no??action=DUNNO\n\n");
        assert_eq!(
            Verdict::from_wire("action=HOLD 4.7.1 wait"),
            Some(Verdict::Hold("4.7.1 wait".into()))
        );
        let r = PolicyRequest {
            sasl_username: "u".into(),
            recipient_count: 3,
            ..PolicyRequest::default()
        };
        let mut reader = RequestReader::new();
        reader.buffer().extend_from_slice(r.to_wire().as_bytes());
        assert_eq!(reader.next_request().expect("ok"), Some(r));
    }
}
