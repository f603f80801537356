//! The errors of opening a client connection (the `connect` functions, `src/connect/`): reaching the server ([`ConnectError`]), going
//! through a proxy ([`ProxyError`]) and following redirects ([`RedirectError`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// No TCP connection could be opened to a host: its name did not resolve, or every address it
/// resolved to was tried in turn and failed.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(); // now closed
/// let options = hybi::ConnectOptions::default().with_proxy(hybi::Proxy::none());
/// let request = hybi::ClientRequest::new(&format!("ws://127.0.0.1:{port}/"))?;
/// match hybi::blocking::connect_with(request, options) {
///     Err(hybi::Error::Connect(e)) => {
///         assert_eq!((e.host(), e.port()), ("127.0.0.1", port));
///         assert_eq!(e.attempts().len(), 1);
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ConnectError {
    host: String,
    port: u16,
    resolve: Option<io::Error>,
    attempts: Vec<(SocketAddr, io::Error)>,
}

impl ConnectError {
    #[cfg(any(feature = "blocking", feature = "tokio"))]
    /// The host could not be resolved.
    pub(crate) fn resolve(host: &str, port: u16, error: io::Error) -> Self {
        Self {
            host: host.to_owned(),
            port,
            resolve: Some(error),
            attempts: Vec::new(),
        }
    }

    #[cfg(any(feature = "blocking", feature = "tokio"))]
    /// Every address was tried (`attempts` may be empty: the name resolved to none).
    pub(crate) fn attempts_failed(
        host: &str,
        port: u16,
        attempts: Vec<(SocketAddr, io::Error)>,
    ) -> Self {
        Self {
            host: host.to_owned(),
            port,
            resolve: None,
            attempts,
        }
    }

    /// The host, as in the URL (without brackets for an IPv6 address).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The error of the name resolution, when it failed.
    pub fn resolve_error(&self) -> Option<&io::Error> {
        self.resolve.as_ref()
    }

    /// Every address tried, in order, with the error it failed with.
    pub fn attempts(&self) -> &[(SocketAddr, io::Error)] {
        &self.attempts
    }

    /// The kind of I/O error that best sums this up: the last attempt's, `NotFound` when the
    /// name resolved to no address.
    pub fn kind(&self) -> io::ErrorKind {
        match (&self.resolve, self.attempts.last()) {
            (Some(e), _) | (None, Some((_, e))) => e.kind(),
            (None, None) => io::ErrorKind::NotFound,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (host, port) = (&self.host, self.port);
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        if let Some(e) = &self.resolve {
            return write!(f, "could not resolve {host}:{port}: {e}");
        }
        if self.attempts.is_empty() {
            return write!(f, "{host}:{port} resolved to no address");
        }
        write!(f, "could not connect to {host}:{port} (")?;
        for (i, (addr, e)) in self.attempts.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{addr}: {e}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match (&self.resolve, self.attempts.last()) {
            (Some(e), _) | (None, Some((_, e))) => Some(e),
            (None, None) => None,
        }
    }
}

/// Going through a proxy failed. Names the proxy (its URL without credentials) and says what
/// went wrong ([`ProxyErrorKind`]).
///
/// ```
/// use hybi::{Proxy, ProxyErrorKind};
/// let err = Proxy::url("ftp://user:secret@proxy.example:21").unwrap_err();
/// assert_eq!(err.proxy(), "ftp://proxy.example:21");
/// assert!(matches!(err.kind(), ProxyErrorKind::Unsupported(_)));
/// assert!(!err.to_string().contains("secret"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("proxy {proxy}: {kind}")]
pub struct ProxyError {
    proxy: String,
    kind: ProxyErrorKind,
}

impl ProxyError {
    /// An error of the proxy named `proxy` (a URL without credentials).
    pub(crate) fn new(proxy: impl Into<String>, kind: ProxyErrorKind) -> Self {
        Self {
            proxy: proxy.into(),
            kind,
        }
    }

    /// The proxy's URL, without credentials.
    pub fn proxy(&self) -> &str {
        &self.proxy
    }

    /// What went wrong.
    pub fn kind(&self) -> &ProxyErrorKind {
        &self.kind
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> ProxyErrorKind {
        self.kind
    }
}

/// What went wrong with a proxy (see [`ProxyError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyErrorKind {
    /// The proxy URL (given, or from an environment variable) is not one hybi can read.
    #[error("invalid proxy URL: {0}")]
    InvalidUrl(&'static str),
    /// The proxy URL or the target asks for something hybi does not do (an `https://` or
    /// SOCKS4 proxy, a host name or credential longer than SOCKS5 allows, ...).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// No TCP connection to the proxy could be opened.
    #[error("{0}")]
    Connect(ConnectError),
    /// The HTTP proxy wants (other) credentials: it answered `407 Proxy Authentication
    /// Required`, or `401 Unauthorized` (tinyproxy 1.11 answers wrong credentials so).
    #[error("authentication required (HTTP {status})")]
    AuthRequired {
        /// 407 or 401.
        status: u16,
    },
    /// The HTTP proxy refused the tunnel: `403 Forbidden`.
    #[error("tunnel refused (HTTP 403 Forbidden)")]
    Forbidden,
    /// The HTTP proxy answered `CONNECT` with another status that is not 2xx.
    #[error("CONNECT answered with HTTP status {0}")]
    Status(u16),
    /// The proxy closed (or reset) the connection before the tunnel was up.
    #[error("connection closed before the tunnel was up")]
    Closed,
    /// The proxy's answer breaks its protocol (not HTTP, not SOCKS5, a method or address type
    /// that was not offered, ...).
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    /// The HTTP proxy's answer head is larger than the handshake's `max_header_bytes`.
    #[error("answer head exceeds {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The SOCKS5 proxy accepts none of the offered authentication methods (RFC 1928 §3:
    /// `X'FF'`): it wants a username and password and the URL has none, or it wants a method
    /// hybi does not speak.
    #[error("SOCKS5: no acceptable authentication method")]
    SocksNoAcceptableMethod,
    /// The SOCKS5 proxy refused the username and password (RFC 1929: a status other than 0).
    #[error("SOCKS5: username/password refused (status {0})")]
    SocksAuth(u8),
    /// The SOCKS5 proxy could not open the connection: the reply code of RFC 1928 §6.
    #[error("SOCKS5: {text} (reply {0})", text = socks_reply_text(*.0))]
    Socks(u8),
    /// The handshake timeout passed before the tunnel was up.
    #[error("no tunnel within the handshake timeout")]
    TimedOut,
    /// Another I/O error while talking to the proxy.
    #[error("I/O error: {0}")]
    Io(io::Error),
}

/// RFC 1928 §6's meaning of a reply code.
fn socks_reply_text(code: u8) -> &'static str {
    match code {
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unassigned failure code",
    }
}

/// Following a redirect answer to the opening handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// More redirects than `ConnectOptions::max_redirects`.
    #[error("more than {max} redirects (the next to {location})")]
    TooMany {
        /// The limit.
        max: usize,
        /// Where the redirect past the limit pointed.
        location: String,
    },
    /// A redirect back to a URL already visited.
    #[error("redirect loop back to {url}")]
    Loop {
        /// The URL visited twice.
        url: String,
    },
    /// A redirect from `wss://` to `ws://`, which would send the request in clear.
    #[error("redirect from {from} down to {to} refused")]
    Downgrade {
        /// The `wss://` URL that answered.
        from: String,
        /// The `ws://` URL it pointed to.
        to: String,
    },
    /// A `Location` that is not a URI reference to a `ws`, `wss`, `http` or `https` URL.
    #[error("invalid redirect Location {location:?}: {reason}")]
    InvalidLocation {
        /// The `Location` value as sent.
        location: String,
        /// Why it was refused.
        reason: &'static str,
    },
}
