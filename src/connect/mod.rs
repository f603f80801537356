//! Opening a client's transport: what the `connect` functions of both adapters share.
//!
//! [`ConnectOptions`] holds everything a client connection is made with: the protocol
//! [`Config`], the driver's [`Timeouts`], the [`Proxy`], the redirect limit, the connect
//! timeout and, with TLS, the rustls configuration for `wss://`. The adapters' `connect_with`
//! open a TCP connection here (directly, trying every address in turn, or through a tunnel of
//! an HTTP or SOCKS5 proxy), TLS over it, run the opening handshake over it with their own loop,
//! and on a redirect start again with the next URL.
//!
//! The rules are sans-IO and live here once: which proxy (`env`, `proxy`), the proxy
//! protocols (`tunnel`, `http_connect`, `socks`), redirects (`redirect`), the deadline. The
//! `blocking` and `tokio` modules only move bytes through them.

#[cfg(feature = "blocking")]
pub(crate) mod blocking;
mod env;
// The protocols and the policy the adapters' glue runs (sans-IO).
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod http_connect;
mod proxy;
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod redirect;
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod socks;
#[cfg(feature = "tls")]
// `tls` alone (no adapter) builds the client configuration that no connect path uses.
#[cfg_attr(not(any(feature = "blocking", feature = "tokio")), allow(dead_code))]
pub(crate) mod tls;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod tunnel;

#[cfg(any(feature = "blocking", feature = "tokio"))]
use crate::driver::{ConnectError, ProxyErrorKind};
#[cfg(any(feature = "blocking", feature = "tokio"))]
use std::io;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;
#[cfg(any(feature = "blocking", feature = "tokio"))]
use std::time::Instant;

use crate::config::Config;
#[cfg(any(feature = "blocking", feature = "tokio"))]
use crate::conn::Timeout;
#[cfg(any(feature = "blocking", feature = "tokio"))]
use crate::driver::Error;
use crate::driver::Timeouts;
pub use proxy::{Proxy, ProxyScheme, ProxyUrl};
#[cfg(any(feature = "blocking", feature = "tokio"))]
pub(crate) use redirect::Redirects;

/// Redirects followed by default.
const DEFAULT_MAX_REDIRECTS: usize = 10;

/// How a client connects: the protocol [`Config`], the [`Timeouts`], the [`Proxy`], the
/// redirect limit, the connect timeout and (with TLS) the rustls client configuration. Cheap
/// to clone.
///
/// | setting (set with `with_*`) | default |
/// |---|---|
/// | [`config`](Self::config) | [`Config::default`] |
/// | [`timeouts`](Self::timeouts) | [`Timeouts::default`]; the handshake timeout (10 s) bounds the whole of `connect_with` |
/// | [`proxy`](Self::proxy) | [`Proxy::from_env`]: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` |
/// | [`max_redirects`](Self::max_redirects) | 10 |
/// | [`connect_timeout`](Self::connect_timeout) | none: each address may take what is left of the handshake timeout |
/// | `tls_config` | ring, safe protocol versions, the bundled web PKI roots |
///
/// ```
/// use std::time::Duration;
/// use hybi::{Config, ConnectOptions, Proxy, Timeouts};
/// let options = ConnectOptions::default()
///     .with_config(Config::default().with_protocols(["chat"]))
///     .with_timeouts(Timeouts::default().with_handshake_timeout(Some(Duration::from_secs(3))))
///     .with_proxy(Proxy::url("socks5h://user:pw@127.0.0.1:1080")?)
///     .with_max_redirects(3)
///     .with_connect_timeout(Some(Duration::from_secs(1)));
/// assert_eq!(options.config().protocols(), ["chat"]);
/// assert_eq!(options.max_redirects(), 3);
/// # Ok::<(), hybi::ProxyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    config: Config,
    timeouts: Timeouts,
    proxy: Proxy,
    max_redirects: usize,
    connect_timeout: Option<Duration>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            config: Config::default(),
            timeouts: Timeouts::default(),
            proxy: Proxy::default(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            connect_timeout: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ConnectOptions {
    /// Sets the protocol configuration.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The protocol configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets the timeouts. The handshake timeout bounds the whole of `connect_with`: name
    /// resolution (tokio), TCP, the proxy's tunnel, TLS, the opening handshake and every
    /// redirect followed.
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Sets the proxy: [`Proxy::from_env`] (the default), [`Proxy::none`], or
    /// [`Proxy::url`].
    #[must_use]
    pub fn with_proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }

    /// The proxy.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// Sets how many redirects (301, 302, 303, 307, 308 with a `Location`) the opening
    /// handshake follows (default 10). With 0 none is: a redirect ends in
    /// [`HandshakeError::Redirect`](crate::HandshakeError::Redirect).
    ///
    /// A redirect keeps the request's Origin, subprotocols, extensions and extra headers (an
    /// `Authorization` header goes to the new host too); it is refused
    /// ([`RedirectError`](crate::RedirectError)) from `wss://` down to `ws://`, back to a URL already visited, and
    /// past the limit.
    #[must_use]
    pub fn with_max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// How many redirects are followed.
    pub fn max_redirects(&self) -> usize {
        self.max_redirects
    }

    /// Sets the limit of one TCP connection attempt, to one address (the server's or the
    /// proxy's); the next address is tried after it. `None` (the default): each attempt may
    /// take what is left of the handshake timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The limit of one TCP connection attempt.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// Sets the rustls client configuration for `wss://` (default: ring, safe protocol
    /// versions, the bundled web PKI roots).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn with_tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The rustls client configuration set by [`with_tls_config`](Self::with_tls_config).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_config(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls.as_ref()
    }
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
/// The end of one `connect_with`: its start plus the handshake timeout (or none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<Instant>);

#[cfg(any(feature = "blocking", feature = "tokio"))]
/// The deadline has passed.
#[derive(Debug)]
pub(crate) struct Expired;

#[cfg(any(feature = "blocking", feature = "tokio"))]
impl Deadline {
    /// The deadline of a `connect_with` that starts at `now`.
    pub(crate) fn start(options: &ConnectOptions, now: Instant) -> Self {
        Self(
            options
                .timeouts()
                .handshake_timeout()
                .and_then(|t| now.checked_add(t)),
        )
    }

    /// The instant, if any.
    #[cfg(feature = "tokio")]
    pub(crate) fn at(self) -> Option<Instant> {
        self.0
    }

    /// The time left (`None`: no limit).
    pub(crate) fn remaining(self, now: Instant) -> Result<Option<Duration>, Expired> {
        match self.0 {
            None => Ok(None),
            Some(at) => match at.checked_duration_since(now) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(Expired),
            },
        }
    }

    /// The limit of one TCP connection attempt started at `now`.
    pub(crate) fn attempt_limit(
        self,
        options: &ConnectOptions,
        now: Instant,
    ) -> Result<Option<Duration>, Expired> {
        let left = self.remaining(now)?;
        Ok(match (left, options.connect_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The timeouts of the opening handshake started at `now`: the handshake timeout cut to
    /// what is left.
    pub(crate) fn timeouts(
        self,
        options: &ConnectOptions,
        now: Instant,
    ) -> Result<Timeouts, Error> {
        match self.remaining(now) {
            Ok(None) => Ok(options.timeouts().clone()),
            Ok(left) => Ok(options.timeouts().clone().with_handshake_timeout(left)),
            Err(Expired) => Err(Error::Timeout(Timeout::Handshake)),
        }
    }
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
/// Why no TCP connection was opened.
#[derive(Debug)]
pub(crate) enum TcpFailure {
    /// Every address failed (or none resolved).
    Connect(ConnectError),
    /// The deadline passed.
    Deadline,
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
impl TcpFailure {
    /// The error of a direct connection.
    pub(crate) fn direct(self) -> Error {
        match self {
            Self::Connect(e) => Error::Connect(e),
            Self::Deadline => Error::Timeout(Timeout::Handshake),
        }
    }

    /// The error of a connection to a proxy.
    pub(crate) fn via_proxy(self) -> ProxyErrorKind {
        match self {
            Self::Connect(e) => ProxyErrorKind::Connect(e),
            Self::Deadline => ProxyErrorKind::TimedOut,
        }
    }
}

/// Trying the addresses a host resolved to, in turn: how long each attempt may take, and the
/// error of each kept for the report. The rule both adapters' connect code follows.
#[cfg(any(feature = "blocking", feature = "tokio"))]
pub(crate) struct Attempts<'a> {
    host: &'a str,
    port: u16,
    deadline: Deadline,
    failed: Vec<(std::net::SocketAddr, io::Error)>,
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
impl<'a> Attempts<'a> {
    pub(crate) fn new(host: &'a str, port: u16, deadline: Deadline) -> Self {
        Self {
            host,
            port,
            deadline,
            failed: Vec::new(),
        }
    }

    /// How long the next attempt may take (`None`: no limit), or the end once the deadline
    /// passed.
    pub(crate) fn limit(
        &self,
        options: &ConnectOptions,
        now: Instant,
    ) -> Result<Option<Duration>, TcpFailure> {
        self.deadline
            .attempt_limit(options, now)
            .map_err(|_| TcpFailure::Deadline)
    }

    /// An attempt to `addr` failed with `error`.
    pub(crate) fn failed(&mut self, addr: std::net::SocketAddr, error: io::Error) {
        self.failed.push((addr, error));
    }

    /// Every address was tried: the deadline, or the list of what each attempt got.
    pub(crate) fn exhausted(self, now: Instant) -> TcpFailure {
        if self.deadline.remaining(now).is_err() {
            return TcpFailure::Deadline;
        }
        TcpFailure::Connect(ConnectError::attempts_failed(
            self.host,
            self.port,
            self.failed,
        ))
    }
}

/// Tunnels through a `socks5://` proxy to each address of the target in turn (the name is
/// resolved locally), while the proxy answers that the address cannot be reached.
#[cfg(any(feature = "blocking", feature = "tokio"))]
pub(crate) struct SocksAddresses<'a> {
    proxy: &'a ProxyUrl,
    host: &'a str,
    port: u16,
    last: Option<ProxyErrorKind>,
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
impl<'a> SocksAddresses<'a> {
    pub(crate) fn new(proxy: &'a ProxyUrl, request: &'a crate::handshake::ClientRequest) -> Self {
        Self {
            proxy,
            host: request.host(),
            port: request.port(),
            last: None,
        }
    }

    /// A tunnel to one address failed: `Ok` to try the next one, or the error to give up
    /// with.
    pub(crate) fn failed(&mut self, kind: ProxyErrorKind) -> Result<(), Error> {
        if !socks::try_next_address(&kind) {
            return Err(self.proxy.error(kind).into());
        }
        self.last = Some(kind);
        Ok(())
    }

    /// Every address failed.
    pub(crate) fn exhausted(self) -> Error {
        match self.last {
            Some(kind) => self.proxy.error(kind).into(),
            None => ConnectError::attempts_failed(self.host, self.port, Vec::new()).into(),
        }
    }
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
/// What an I/O error while talking to a proxy means.
pub(crate) fn proxy_io_error(e: io::Error) -> ProxyErrorKind {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ProxyErrorKind::TimedOut,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => ProxyErrorKind::Closed,
        _ => ProxyErrorKind::Io(e),
    }
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let o = ConnectOptions::default();
        assert_eq!(o.max_redirects(), 10);
        assert_eq!(o.connect_timeout(), None);
    }

    #[test]
    fn deadline_bounds_attempts_and_the_handshake() {
        let t0 = Instant::now();
        let options = ConnectOptions::default()
            .with_timeouts(
                Timeouts::default().with_handshake_timeout(Some(Duration::from_secs(10))),
            )
            .with_connect_timeout(Some(Duration::from_secs(3)));
        let d = Deadline::start(&options, t0);
        assert_eq!(
            d.attempt_limit(&options, t0).unwrap(),
            Some(Duration::from_secs(3))
        );
        let late = t0 + Duration::from_secs(9);
        assert_eq!(
            d.attempt_limit(&options, late).unwrap(),
            Some(Duration::from_secs(1))
        );
        let left = d.timeouts(&options, late).unwrap();
        assert_eq!(left.handshake_timeout(), Some(Duration::from_secs(1)));
        let over = t0 + Duration::from_secs(10);
        assert!(d.attempt_limit(&options, over).is_err());
        assert!(matches!(
            d.timeouts(&options, over),
            Err(Error::Timeout(Timeout::Handshake))
        ));

        let unbounded = options
            .clone()
            .with_timeouts(Timeouts::default().with_handshake_timeout(None));
        let d = Deadline::start(&unbounded, t0);
        assert_eq!(d.at(), None);
        assert_eq!(
            d.attempt_limit(&unbounded, over).unwrap(),
            Some(Duration::from_secs(3))
        );
        let no_limit = unbounded.with_connect_timeout(None);
        assert_eq!(d.attempt_limit(&no_limit, over).unwrap(), None);
    }
}
