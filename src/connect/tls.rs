//! rustls client setup shared by both adapters: the bundled web PKI roots by default.

use std::sync::Arc;

use super::ConnectOptions;
use crate::driver::Error;

/// The crypto provider of every configuration hybi builds, client or server (`hybi::tls`):
/// ring, with its default cipher suites and key exchange groups.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The default client configuration: ring, safe protocol versions, the web PKI roots.
fn default_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The configuration `options` asks for, or the default one.
pub(crate) fn config(options: &ConnectOptions) -> Result<Arc<rustls::ClientConfig>, Error> {
    match options.tls_config() {
        Some(c) => Ok(c.clone()),
        None => default_config(),
    }
}

/// The name the server's certificate is checked against.
pub(crate) fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| Error::Tls(format!("invalid server name {host:?}: {e}")))
}
