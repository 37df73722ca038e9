//! TLS client configuration for LDAPS and StartTLS (and the https, smtps peers), and the
//! recording verifier the preflight reads certificates with.
//!
//! The rustls `ClientConfig` is built here, with an explicit crypto provider, rather than left
//! to ldap3: ldap3 silently falls back to an *empty* trust store when loading the system store
//! reports any error, and panics if two rustls providers are enabled without a default
//! (DEPENDENCIES.md).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ErrorKind};

/// Builds a client config that trusts exactly the CA certificates in `ca_file` (PEM).
pub(crate) fn client_config_with_ca(ca_file: &Path) -> Result<Arc<ClientConfig>, Error> {
    trusting(roots_from_ca(ca_file)?).map(Arc::new)
}

/// The CA certificates in `ca_file` (PEM), at least one.
fn roots_from_ca(ca_file: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read CA file {}: {e}", ca_file.display()),
        )
        .with_source(e)
    })?;
    for cert in certs {
        let cert = cert.map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("CA file {} is not valid PEM: {e}", ca_file.display()),
            )
            .with_source(e)
        })?;
        roots.add(cert).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("CA file {} holds an unusable certificate: {e}", ca_file.display()),
            )
            .with_source(e)
        })?;
    }
    if roots.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("CA file {} holds no certificate", ca_file.display()),
        ));
    }
    Ok(roots)
}

/// A client config that trusts the system's CA certificates — only if they all loaded:
/// ldap3's own fallback silently uses an *empty* store when any system certificate fails to
/// load, which turns every connection into a confusing TLS failure. An error here says so.
pub(crate) fn client_config_with_system_roots() -> Result<Arc<ClientConfig>, Error> {
    trusting(system_roots()?).map(Arc::new)
}

/// The system's CA certificates, all of them loaded.
fn system_roots() -> Result<RootCertStore, Error> {
    let loaded = rustls_native_certs::load_native_certs();
    if let Some(e) = loaded.errors.first() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "the system trust store did not load cleanly ({e}{}); set directory.ca_file",
                if loaded.errors.len() > 1 { ", and more" } else { "" }
            ),
        ));
    }
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(Error::new(
            ErrorKind::Config,
            "the system trust store holds no usable CA certificate; set directory.ca_file",
        ));
    }
    Ok(roots)
}

/// What a server showed in a handshake made with a [`recording`] config: its end-entity
/// certificate, and the verifier's verdict on it (`None`: accepted).
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    /// The end-entity certificate (DER).
    pub(crate) certificate: CertificateDer<'static>,
    /// Why the verifier refused it, if it did.
    pub(crate) refused: Option<rustls::Error>,
}

/// Where a [`recording`] config keeps what the last handshake was shown.
pub(crate) type ShownSlot = Arc<std::sync::Mutex<Option<Shown>>>;

/// A client config that verifies exactly like [`client_config_with_ca`] (or the system
/// roots, without a CA file) and also keeps the end-entity certificate it was shown and the
/// verdict — an expired or wrong-host certificate too: the preflight reads its expiry and
/// names.
pub(crate) fn recording(ca_file: Option<&Path>) -> Result<(Arc<ClientConfig>, ShownSlot), Error> {
    let roots = match ca_file {
        Some(f) => roots_from_ca(f)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS set-up: {e}")).with_source(e))?;
    let shown = ShownSlot::default();
    let verifier = Recording {
        inner,
        shown: shown.clone(),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS set-up: {e}")).with_source(e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((Arc::new(config), shown))
}

/// rustls's WebPKI verifier, and a copy of what it was shown.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    shown: ShownSlot,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if let Ok(mut slot) = self.shown.lock() {
            *slot = Some(Shown {
                certificate: end_entity.clone().into_owned(),
                refused: verdict.as_ref().err().cloned(),
            });
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The host (IPv6 without its brackets) and port of `url` — its own, the scheme's known one,
/// or `default_port` — as a connection to it is made. `None` without a host.
pub(crate) fn host_port(url: &url::Url, default_port: u16) -> Option<(String, u16)> {
    let host = url.host_str().filter(|h| !h.is_empty())?;
    let port = url.port_or_known_default().unwrap_or(default_port);
    Some((host.trim_matches(['[', ']']).to_owned(), port))
}

/// A TLS handshake with `host:port` (implicit TLS: https, ldaps, smtps) through a
/// [`recording`] config: what the server showed (`None` when it showed nothing, e.g. no
/// answer), and the handshake's error if it failed.
pub(crate) async fn handshake(
    host: &str,
    port: u16,
    ca_file: Option<&Path>,
    timeout: std::time::Duration,
) -> Result<(Option<Shown>, Option<String>), Error> {
    let (config, shown) = recording(ca_file)?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| Error::new(ErrorKind::Config, format!("{host}: not a host name: {e}")))?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await?;
        tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
    };
    let failed = match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(_stream)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} s", timeout.as_secs())),
    };
    let seen = shown.lock().ok().and_then(|s| s.clone());
    Ok((seen, failed))
}

/// A client config that trusts no certificate at all: for HTTP clients that must have one but
/// only ever speak plain http (no https peer can be accepted).
pub(crate) fn trust_nothing() -> Result<ClientConfig, Error> {
    trusting(RootCertStore::empty())
}

/// A client config trusting exactly `roots`, with ring as the one crypto provider (two
/// enabled providers without a default make rustls panic).
fn trusting(roots: RootCertStore) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS set-up: {e}")).with_source(e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_trust_store_that_does_not_load_cleanly_is_a_config_error() {
        let dir = std::env::temp_dir().join(format!("cadenas-tls-sys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let garbage = dir.join("bundle.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        // rustls-native-certs reads SSL_CERT_FILE when it is set (only this test loads them)
        std::env::set_var("SSL_CERT_FILE", &garbage);
        let r = client_config_with_system_roots();
        std::env::remove_var("SSL_CERT_FILE");
        let e = r.map(|_| ()).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("ca_file"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_empty_or_garbage_ca_files_are_config_errors() {
        let dir = std::env::temp_dir().join(format!("cadenas-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let garbage = dir.join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        for f in [dir.join("missing.pem"), empty, garbage] {
            let e = client_config_with_ca(&f).expect_err("refused");
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
