//! TLS client configuration for LDAPS and StartTLS.
//!
//! The rustls `ClientConfig` is built here, with an explicit crypto provider, rather than left
//! to ldap3: ldap3 silently falls back to an *empty* trust store when loading the system store
//! reports any error, and panics if two rustls providers are enabled without a default
//! (DEPENDENCIES.md).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Error, ErrorKind};

/// Builds a client config that trusts exactly the CA certificates in `ca_file` (PEM).
pub(crate) fn client_config_with_ca(ca_file: &Path) -> Result<Arc<ClientConfig>, Error> {
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
    trusting(roots).map(Arc::new)
}

/// A client config that trusts the system's CA certificates — only if they all loaded:
/// ldap3's own fallback silently uses an *empty* store when any system certificate fails to
/// load, which turns every connection into a confusing TLS failure. An error here says so.
pub(crate) fn client_config_with_system_roots() -> Result<Arc<ClientConfig>, Error> {
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
    trusting(roots).map(Arc::new)
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
