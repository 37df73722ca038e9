//! A deliberately small HTTP/1.1 client for revokers: one `POST` per connection, optional
//! TLS verified against a CA file, a hard timeout and a cap on the response size. Malformed
//! answers are typed errors, never panics.
//!
//! The response ends at `Content-Length` (or the last chunk), not at the peer's close, and no
//! `Connection: close` is sent: Dovecot 2.3.19's doveadm server never answers a request with
//! a wrong API key *and* `Connection: close` (seen on the lab; the wrong-key test pins it).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, ErrorKind};

/// Largest response body accepted.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// A parsed `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `true` for https.
    pub tls: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses an absolute http(s) URL. No user-info, no fragments.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::new(ErrorKind::Config, format!("URL {url:?}: {why}"));
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("scheme must be http or https"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || path.contains('#') || path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad(
                "user-info, fragments, spaces and control characters are not allowed",
            ));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| bad("unterminated IPv6 literal"))?;
            (h, p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// A response: status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

/// Sends one POST and reads the whole answer, within `timeout` overall.
///
/// `headers` must not carry secrets into error messages: they are never formatted.
pub async fn post(
    url: &HttpUrl,
    tls: Option<&Arc<rustls::ClientConfig>>,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, Error> {
    let target = format!("{}:{}", url.host, url.port);
    tokio::time::timeout(timeout, post_inner(url, tls, headers, body))
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("HTTP POST to {target}: no answer within {timeout:?}"),
            )
        })?
}

async fn post_inner(
    url: &HttpUrl,
    tls: Option<&Arc<rustls::ClientConfig>>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, Error> {
    let target = format!("{}:{}", url.host, url.port);
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::RevokerUnreachable,
                format!("cannot connect to {target}: {e}"),
            )
        })?;
    let host_header = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nContent-Length: {}\r\n",
        url.path,
        body.len()
    );
    for (k, v) in headers {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("header {k:?} has a line break"),
            ));
        }
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let raw = if url.tls {
        let config = match tls {
            Some(c) => c.clone(),
            None => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("https://{target}: set a ca_file to verify the server"),
                ))
            }
        };
        let name = ServerName::try_from(url.host.clone()).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("{target}: invalid TLS server name: {e}"),
            )
        })?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS with {target}: {e}")))?;
        exchange(stream, &head, body, &target).await?
    } else {
        exchange(tcp, &head, body, &target).await?
    };
    parse_response(&raw).map_err(|why| {
        Error::new(
            ErrorKind::RevokerProtocol,
            format!("malformed HTTP answer from {target}: {why}"),
        )
    })
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    head: &str,
    body: &[u8],
    target: &str,
) -> Result<Vec<u8>, Error> {
    let io =
        |e: std::io::Error| Error::new(ErrorKind::RevokerUnreachable, format!("talking to {target}: {e}"));
    s.write_all(head.as_bytes()).await.map_err(io)?;
    s.write_all(body).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: the data read so far stands.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        // Some servers (doveadm's 401) answer and then wait for us to hang up.
        if is_complete(&out) {
            break;
        }
        if out.len() > MAX_RESPONSE + 64 * 1024 {
            return Err(Error::new(
                ErrorKind::RevokerProtocol,
                format!("answer from {target} is larger than {MAX_RESPONSE} bytes"),
            ));
        }
    }
    Ok(out)
}

/// Whether `raw` holds a whole response: headers plus `Content-Length` bytes, or a chunked
/// body with its last chunk. Without either, only the peer closing ends the response.
fn is_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    for line in head.split("\r\n").skip(1) {
        if let Some(v) = line.strip_prefix("content-length:") {
            return v.trim().parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return body.ends_with(b"0\r\n\r\n");
        }
    }
    false
}

/// Parses a complete HTTP/1.x response (read until the peer closed).
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    if raw.is_empty() {
        return Err("empty answer (connection closed without a response)".into());
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("bad status code in {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            content_length = Some(v.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = content_length {
        if rest.len() < n {
            return Err(format!("body cut short: {} of {n} bytes", rest.len()));
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_RESPONSE {
        return Err("body too large".into());
    }
    Ok(HttpResponse { status, body })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line not terminated")?;
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| "chunk size is not text")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 || out.len() + size > MAX_RESPONSE {
            return Err("chunk cut short or too large".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_refuse_the_odd_ones() {
        let u = HttpUrl::parse("http://127.0.0.1:18080/doveadm/v1").expect("url");
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 18080, "/doveadm/v1")
        );
        let u = HttpUrl::parse("https://hooks.example.test").expect("url");
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/"));
        let u = HttpUrl::parse("https://[::1]:8443/x?y=1").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8443, "/x?y=1")
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://a:b/",
            "http://u:p@host/",
            "http://h/a b",
            "http://h:99999/",
        ] {
            assert_eq!(
                HttpUrl::parse(bad).expect_err(bad).kind(),
                ErrorKind::Config,
                "{bad}"
            );
        }
    }

    #[test]
    fn responses_parse_with_length_chunked_or_eof_bodies() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]")
            .expect("ok");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
        let r = parse_response(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .expect("chunked");
        assert_eq!(r.body, b"abcde");
        let r = parse_response(b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: X-Dovecot-API\r\n\r\n")
            .expect("ok");
        assert_eq!((r.status, r.body.len()), (401, 0));
    }

    #[test]
    fn completeness_is_detected_without_waiting_for_eof() {
        assert!(is_complete(b"HTTP/1.1 401 X\r\nContent-Length: 0\r\n\r\n"));
        assert!(!is_complete(b"HTTP/1.1 200 X\r\nContent-Length: 3\r\n\r\nab"));
        assert!(is_complete(
            b"HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"
        ));
        assert!(!is_complete(b"HTTP/1.1 200 X\r\n\r\nbody until close"));
        assert!(!is_complete(b"HTTP/1.1 200 X\r\nContent-Length: 3"));
    }

    #[test]
    fn malformed_responses_are_errors_not_panics() {
        for raw in [
            &b""[..],
            b"garbage",
            b"HTTP/1.1 200 OK\r\n",
            b"SMTP 220 hi\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 999 Nope\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\nab",
            b"HTTP/1.1 200 OK\r\n\xff\xfe: x\r\n\r\n",
        ] {
            assert!(parse_response(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
