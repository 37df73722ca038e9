//! The HTTP client of the revokers: reqwest (hyper) over the project's own rustls
//! configuration — TLS verified against the configured CA, ring as the only crypto provider —
//! with a hard timeout and a cap on the response size. Malformed answers are typed errors.
//!
//! No `Connection: close` is sent and the body is read to its length: Dovecot 2.3.19's doveadm
//! server never answers a request with a wrong API key *and* `Connection: close` (seen on the
//! lab; the wrong-key test pins it).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// Largest response body accepted.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// A parsed `http://` or `https://` URL (the `url` crate's parser), for revokers.
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
    url: url::Url,
}

impl HttpUrl {
    /// Parses an absolute http(s) URL. No user-info, no fragments.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::new(ErrorKind::Config, format!("URL {text:?}: {why}"));
        if text.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("spaces and control characters are not allowed"));
        }
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(bad("scheme must be http or https")),
        };
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(bad("user-info and fragments are not allowed"));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(bad("no host")),
        };
        let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        Ok(Self {
            tls,
            host,
            port,
            path,
            url,
        })
    }
}

/// A response: status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

/// An HTTP client for one revoker: https only with the given rustls config (the CA of the
/// revoker's config), plain http otherwise.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    tls: bool,
}

impl HttpClient {
    /// A client that verifies https peers with `tls` (none: http only).
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, timeout: Duration) -> Result<Self, Error> {
        let has_tls = tls.is_some();
        // reqwest needs a TLS configuration even for plain http: without a CA, one that trusts
        // nothing, so no https peer can ever be accepted.
        let config = match tls {
            Some(c) => (*c).clone(),
            None => crate::tls::trust_nothing()?,
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Internal, format!("HTTP client set-up: {e}")).with_source(e)
            })?;
        Ok(Self { client, tls: has_tls })
    }

    /// Sends one POST and reads the whole answer, within the client's timeout.
    ///
    /// `headers` must not carry secrets into error messages: they are never formatted.
    pub async fn post(
        &self,
        url: &HttpUrl,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, Error> {
        let target = format!("{}:{}", url.host, url.port);
        if url.tls && !self.tls {
            return Err(Error::new(
                ErrorKind::Config,
                format!("https://{target}: set a ca_file to verify the server"),
            ));
        }
        let mut req = self.client.post(url.url.clone()).body(body.to_vec());
        for (k, v) in headers {
            if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("header {k:?} has a line break"),
                ));
            }
            req = req.header(*k, *v);
        }
        let mut resp = req.send().await.map_err(|e| send_error(&target, e))?;
        let status = resp.status().as_u16();
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| send_error(&target, e))? {
            out.extend_from_slice(&chunk);
            if out.len() > MAX_RESPONSE {
                return Err(Error::new(
                    ErrorKind::RevokerProtocol,
                    format!("answer from {target} is larger than {MAX_RESPONSE} bytes"),
                ));
            }
        }
        Ok(HttpResponse { status, body: out })
    }
}

/// Whether a rustls error is anywhere in the chain (`io::Error` hides its inner error from
/// `source()`, so it is unwrapped too).
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(inner) = c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if is_tls_failure(inner) {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

/// What a failed exchange means to the operator: unreachable, timed out, TLS refused, or an
/// answer that is not HTTP.
fn send_error(target: &str, e: reqwest::Error) -> Error {
    let (kind, what) = if e.is_timeout() {
        (ErrorKind::Timeout, "no answer in time")
    } else if is_tls_failure(&e) {
        (ErrorKind::Tls, "TLS failed")
    } else if e.is_connect() {
        (ErrorKind::RevokerUnreachable, "cannot connect")
    } else {
        (ErrorKind::RevokerProtocol, "no usable HTTP answer")
    };
    Error::new(kind, format!("HTTP POST to {target}: {what}: {e}")).with_source(e)
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
}
