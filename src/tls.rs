//! Serving `https://` and `wss://` with rustls (feature `tls-server`).
//!
//! [`ServerTls`] holds a certificate chain and its private key, read from PEM (files or bytes)
//! or given as DER, and the ALPN protocols to offer (`h2` then `http/1.1` unless told
//! otherwise, [`with_alpn`](ServerTls::with_alpn)). [`build`](ServerTls::build) checks them
//! (a key the crypto provider can use, a certificate it can parse, a key that belongs to the
//! certificate) and returns the `Arc<rustls::ServerConfig>` to accept TLS connections with;
//! [`acceptor`](ServerTls::acceptor) wraps it in tokio-rustls' [`TlsAcceptor`]. Each bad input
//! is its own [`TlsError`]. The crypto provider is ring, as for hybi's `wss://` client.
//!
//! This module does TLS only. Over the TLS stream, HTTP is hyper's (hyper-util's `auto`
//! builder picks HTTP/1.1 or HTTP/2 by the connection preface, which follows what ALPN
//! chose), and the WebSocket handshake is [`hybi::hyper`](crate::hyper) or
//! [`hybi::axum`](crate::axum), the same as over plain TCP: an HTTP/1.1 upgrade (`101`) or,
//! over HTTP/2, an RFC 8441 extended `CONNECT` (`200`; the server must allow it with
//! `enable_connect_protocol`, and the crate needs the `http2` feature).
//! [`Request::version`](crate::Request::version) tells the two apart.
//!
//! Browsers open a WebSocket over HTTP/2 only on an HTTP/2 connection to the same origin that
//! is already open and has announced extended `CONNECT` in its SETTINGS; otherwise they open a
//! new connection offering `http/1.1` only. So serve both on the same port, and do not close
//! idle HTTP/2 connections sooner than a page takes to open its socket.
//!
//! # The serve loop
//!
//! TCP listener → TLS handshake (with a deadline: a client that never sends its ClientHello
//! must not hold a task forever) → hyper-util's `auto` builder serving HTTP/1.1 with upgrades
//! and HTTP/2 with extended `CONNECT` → an axum router whose handler takes hybi's
//! [`WebSocketUpgrade`](crate::axum::WebSocketUpgrade):
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use axum::{response::Response, routing::any, Router};
//! use hybi::axum::{WebSocket, WebSocketUpgrade};
//! use hybi::handshake::HttpVersion;
//! use hybi::tls::ServerTls;
//! use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
//! use hyper_util::server::conn::auto;
//! use hyper_util::service::TowerToHyperService;
//!
//! async fn handler(ws: WebSocketUpgrade) -> Response {
//!     let over = match ws.request().version() {
//!         HttpVersion::Http2 => "HTTP/2 (extended CONNECT, 200)",
//!         _ => "HTTP/1.1 (upgrade, 101)",
//!     };
//!     println!("a WebSocket over {over}");
//!     ws.on_upgrade(echo)
//! }
//!
//! async fn echo(mut ws: WebSocket) {
//!     while let Ok(message) = ws.recv().await {
//!         if ws.send_message(message).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let acceptor = ServerTls::from_pem_files("cert.pem", "key.pem")?.acceptor()?;
//! let app = Router::new().route("/ws", any(handler)); // `any`: GET (HTTP/1.1) and CONNECT (HTTP/2)
//! let mut http = auto::Builder::new(TokioExecutor::new());
//! http.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
//! http.http2().enable_connect_protocol();
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let (acceptor, app, http) = (acceptor.clone(), app.clone(), http.clone());
//!     tokio::spawn(async move {
//!         let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
//!         else {
//!             return; // no handshake in time, or a failed one
//!         };
//!         let service = TowerToHyperService::new(app);
//!         // Over HTTP/2 this future also carries the connection's WebSockets: keep polling it
//!         // until it ends (an HTTP/1.1 upgrade hands its socket over and ends it).
//!         let _ = http.serve_connection_with_upgrades(TokioIo::new(tls), service).await;
//!     });
//! }
//! # }
//! ```
//!
//! Every `https://` page and `wss://` socket of that server share one port; browsers get
//! HTTP/2 for both, other clients HTTP/1.1 (hybi's own `wss://` client, for one). The chat
//! example (`examples/chat_server.rs`, `--tls-cert`/`--tls-key` or `--tls-self-signed`) is this
//! loop with graceful shutdown.
//!
//! Why no `serve_tls` here: the loop above is the whole of it, and what it would have to fix
//! (the HTTP server and its limits, the executor, timeouts, shutdown, connection limits) is
//! the application's choice, not the protocol's.
//!
//! # A development certificate
//!
//! For `localhost`, generated at start with [rcgen](https://docs.rs/rcgen) (what the chat's
//! `--tls-self-signed` does; browsers warn about it, headless ones take
//! `--ignore-certificate-errors`):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
//! let generated = rcgen::generate_simple_self_signed(names)?;
//! let config = hybi::tls::ServerTls::from_pem(
//!     generated.cert.pem(),
//!     generated.key_pair.serialize_pem(),
//! )?
//! .build()?;
//! assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
//! # Ok(()) }
//! ```
//!
//! or once, with OpenSSL, into the two files of `from_pem_files`:
//!
//! ```text
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
//!   -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!   -keyout key.pem -out cert.pem
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A server-side TLS stream of tokio-rustls, re-exported: what [`TlsAcceptor::accept`]
/// resolves to. `get_ref().1.alpn_protocol()` is the protocol ALPN chose.
pub use tokio_rustls::server::TlsStream;
/// The accepting side of tokio-rustls, re-exported: what [`ServerTls::acceptor`] returns.
pub use tokio_rustls::TlsAcceptor;

/// The ALPN name of HTTP/2 over TLS (RFC 9113 §3.2).
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN name of HTTP/1.1 (RFC 7301 §6).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Which PEM input an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemInput {
    /// The certificate chain.
    Certificate,
    /// The private key.
    Key,
}

impl fmt::Display for PemInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Certificate => "certificate chain",
            Self::Key => "private key",
        })
    }
}

/// Why a server TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A PEM section is malformed (bad base64, no end line, ...).
    #[error("malformed PEM in the {input}: {source}")]
    Pem {
        /// Which input.
        input: PemInput,
        /// What the PEM parser said.
        #[source]
        source: pem::Error,
    },
    /// The certificate input holds no `CERTIFICATE` section (or the DER chain is empty).
    #[error("no certificate (a BEGIN CERTIFICATE section) in the certificate chain")]
    NoCertificate,
    /// The key input holds no private key: no `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY`
    /// (PKCS#1) or `EC PRIVATE KEY` (SEC1) section. An encrypted key (`ENCRYPTED PRIVATE
    /// KEY`) is not read: decrypt it first.
    #[error(
        "no private key (a BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section) in the \
         key; an encrypted key must be decrypted first"
    )]
    NoPrivateKey,
    /// The key input holds several private keys: which one belongs to the certificate is not
    /// guessed.
    #[error("{0} private keys in the key input; exactly one is expected")]
    SeveralPrivateKeys(usize),
    /// The private key cannot be used by the crypto provider (not RSA, ECDSA or Ed25519, or
    /// not valid DER).
    #[error("unusable private key: {0}")]
    InvalidKey(#[source] rustls::Error),
    /// The server's (first) certificate cannot be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(#[source] rustls::Error),
    /// The private key is not the one of the server's certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// Another refusal of rustls.
    #[error("TLS configuration: {0}")]
    Rustls(#[source] rustls::Error),
}

/// A server's certificate chain, its private key and the ALPN protocols it offers; builds the
/// rustls configuration. See the [module docs](self).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let g = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// # let (cert_pem, key_pem) = (g.cert.pem(), g.key_pair.serialize_pem());
/// use hybi::tls::{ServerTls, ALPN_HTTP11};
///
/// // HTTP/1.1 only: ALPN then refuses a client that offers only h2.
/// let config = ServerTls::from_pem(&cert_pem, &key_pem)?
///     .with_alpn([ALPN_HTTP11])
///     .build()?;
/// assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
/// # Ok(()) }
/// ```
pub struct ServerTls {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: Vec<Vec<u8>>,
}

impl ServerTls {
    /// From PEM: `cert_chain` holds the server's certificate first, then the intermediates
    /// (every `CERTIFICATE` section, in order); `key` holds its private key (PKCS#8, PKCS#1 or
    /// SEC1). Sections of other kinds are skipped, so both may be the same bytes (a file
    /// with the chain and the key).
    ///
    /// # Errors
    ///
    /// [`TlsError::Pem`], [`TlsError::NoCertificate`], [`TlsError::NoPrivateKey`],
    /// [`TlsError::SeveralPrivateKeys`]. The key itself is checked by
    /// [`build`](Self::build).
    pub fn from_pem(cert_chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain.as_ref())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                input: PemInput::Certificate,
                source,
            })?;
        let mut keys = PrivateKeyDer::pem_slice_iter(key.as_ref())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                input: PemInput::Key,
                source,
            })?;
        if keys.len() > 1 {
            return Err(TlsError::SeveralPrivateKeys(keys.len()));
        }
        let key = keys.pop().ok_or(TlsError::NoPrivateKey)?;
        Self::from_der(chain, key)
    }

    /// [`from_pem`](Self::from_pem) with the contents of two files (which may be the same
    /// file).
    ///
    /// # Errors
    ///
    /// [`TlsError::Read`] when a file cannot be read, then those of
    /// [`from_pem`](Self::from_pem).
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        Self::from_pem(read(cert_chain.as_ref())?, read(key.as_ref())?)
    }

    /// From DER: the chain (the server's certificate first) and the private key.
    ///
    /// # Errors
    ///
    /// [`TlsError::NoCertificate`] for an empty chain.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        Ok(Self {
            chain,
            key,
            alpn: vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()],
        })
    }

    /// The ALPN protocols to offer, in the server's order of preference (rustls picks the
    /// first of them the client offers; a client that offers ALPN but none of them is
    /// refused with `no_application_protocol`, one that offers none gets no ALPN). Default:
    /// [`ALPN_H2`], [`ALPN_HTTP11`]. An empty list turns ALPN off.
    pub fn with_alpn<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// The ALPN protocols offered, in order.
    pub fn alpn(&self) -> &[Vec<u8>] {
        &self.alpn
    }

    /// The certificate chain, the server's certificate first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The rustls configuration: ring, TLS 1.2 and 1.3, no client authentication, this
    /// certificate for every server name, the ALPN protocols.
    ///
    /// # Errors
    ///
    /// [`TlsError::InvalidKey`], [`TlsError::InvalidCertificate`], [`TlsError::KeyMismatch`];
    /// [`TlsError::Rustls`] for anything else rustls refuses.
    pub fn build(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = crate::connect::tls::provider();
        // The checks of `with_single_cert`, made one at a time so each failure has its
        // own error.
        let signing_key = provider
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(TlsError::InvalidKey)?;
        match CertifiedKey::new(self.chain.clone(), signing_key).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch)
            }
            Err(e @ rustls::Error::InvalidCertificate(_)) => {
                return Err(TlsError::InvalidCertificate(e))
            }
            Err(e) => return Err(TlsError::Rustls(e)),
        }
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(TlsError::Rustls)?;
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }

    /// [`build`](Self::build), as the tokio-rustls acceptor of the serve loop.
    ///
    /// # Errors
    ///
    /// Those of [`build`](Self::build).
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor::from(self.build()?))
    }
}

impl Clone for ServerTls {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            alpn: self.alpn.clone(),
        }
    }
}

impl fmt::Debug for ServerTls {
    /// The key is not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alpn: Vec<_> = self
            .alpn
            .iter()
            .map(|p| String::from_utf8_lossy(p))
            .collect();
        f.debug_struct("ServerTls")
            .field("certificates", &self.chain.len())
            .field("alpn", &alpn)
            .finish_non_exhaustive()
    }
}
