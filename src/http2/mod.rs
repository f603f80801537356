//! WebSockets over HTTP/2 (RFC 8441), client side (feature `http2`): several WebSockets on one
//! HTTP/2 connection, each an extended `CONNECT` stream, with fallback to HTTP/1.1.
//!
//! - [`Http2Connection`] is a handle to one HTTP/2 connection (cheap to clone: clones share
//!   the connection). [`Http2Connection::connect`] opens it (TCP, or a proxy's tunnel, then TLS
//!   with ALPN `h2`, with the same [`ConnectOptions`] as every hybi client), checks that the
//!   server sent `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`, and [`Http2Connection::open`] opens
//!   one WebSocket on it: a [`WebSocketStream`] like any other, on the same driver, with the
//!   same [`Config`] (limits, permessage-deflate, subprotocols) and [`Timeouts`], masking as a
//!   client.
//! - [`connect`] and [`connect_with`] open one WebSocket, over HTTP/2 when the server does RFC
//!   8441 and over HTTP/1.1 when it does not ([`Fallback`]); the WebSocket's [`Transport`]
//!   says which.
//!
//! ```no_run
//! # async fn run() -> Result<(), hybi::Error> {
//! use hybi::http2::Http2Connection;
//! use hybi::{ClientRequest, ConnectOptions};
//!
//! let h2 = Http2Connection::connect("wss://example.com", &ConnectOptions::default()).await?;
//! // Two WebSockets on the one connection, each with its own subprotocol offer.
//! let chat = ClientRequest::new("wss://example.com/chat")?.protocol("chat");
//! let (mut chat, response) = h2.open(chat).await?;
//! assert_eq!(response.status(), 200);
//! let (mut feed, _) = h2.open(ClientRequest::new("wss://example.com/feed")?).await?;
//! chat.send_message("hello").await?;
//! let update = feed.recv().await?;
//! # let _ = update; Ok(()) }
//! ```
//!
//! # Which HTTP/2
//!
//! The [`h2`](https://docs.rs/h2) crate directly (the HTTP/2 implementation under hyper's),
//! rather than hyper's HTTP/2 client: h2's request handle tells whether the server allowed
//! extended `CONNECT`, and h2 gives the connection's PING, with which [`Http2Connection`] waits
//! for the server's first SETTINGS (the server must send them first, RFC 9113 §3.4, so they
//! have arrived when the answer to a PING has) before deciding that the server does not allow
//! WebSockets. hyper keeps both inside its connection task. Owning the stream adapter
//! ([`Http2Stream`]) also decides what a stream's end means: the server's `RST_STREAM` with
//! `NO_ERROR` after its `END_STREAM` ends a closed WebSocket cleanly instead of failing the
//! write of the last close frame.
//!
//! # Plain TCP and TLS
//!
//! Over TLS (`wss://`) the client offers ALPN `h2` and `http/1.1`; a server that picks
//! `http/1.1` (or nothing) gets an HTTP/1.1 upgrade on that same connection from
//! [`connect_with`], and [`Http2Error::NotHttp2`] from [`Http2Connection::connect`].
//! Over plain TCP (`ws://`) there is no negotiation: the client speaks HTTP/2 from the first
//! byte ("prior knowledge", RFC 9113 §3.3, known as h2c). A server that only speaks HTTP/1.1
//! answers that with an error or by closing; [`connect_with`] then opens a fresh connection
//! for HTTP/1.1.
//!
//! The HTTP/2 connection runs in a task spawned on the current tokio runtime; it ends when
//! the last handle and the last WebSocket on it are dropped. Each stream may have 1 MiB in
//! flight from the server, and the connection 8 MiB across its streams: memory bounded by
//! flow control however slowly the application reads.

mod stream;

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::conn::{ClientHandshake, Connection, Timeout};
use crate::connect::tokio::MaybeTlsStream;
use crate::connect::{ConnectOptions, Deadline, Redirects};
use crate::driver::{Error, Http2Error, Timeouts};
use crate::handshake::{ClientRequest, HandshakeError, HttpVersion, Response};
use crate::tokio::WebSocketStream;
pub use stream::Http2Stream;

/// The receive window of each stream: what the server may send before the WebSocket reads.
const STREAM_WINDOW: u32 = 1024 * 1024;
/// The receive window of the connection, across its streams.
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// A WebSocket on an HTTP/2 stream ([`Http2Connection::open`]).
pub type Http2WebSocket = WebSocketStream<Http2Stream>;

/// A WebSocket from [`connect_with`]: over HTTP/2 or HTTP/1.1.
pub type WebSocket = WebSocketStream<Transport>;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs `future` until `deadline`; the handshake timeout when it passed first.
async fn until<F: Future>(deadline: Deadline, future: F) -> Result<F::Output, Error> {
    match deadline.at() {
        Some(at) => tokio::time::timeout_at(at.into(), future)
            .await
            .map_err(|_| Error::Timeout(Timeout::Handshake)),
        None => Ok(future.await),
    }
}

/// h2's error as hybi's: its I/O error as [`Error::Io`], else [`Http2Error::Failed`].
fn h2_error(e: h2::Error) -> Error {
    if e.is_io() {
        if let Some(io) = e.into_io() {
            return Error::Io(io);
        }
        return Error::Io(std::io::Error::other("HTTP/2 I/O error"));
    }
    Error::Http2(Http2Error::Failed {
        code: e.reason().map(u32::from),
        go_away: e.is_go_away(),
        message: e.to_string(),
    })
}

/// A handle to one HTTP/2 connection whose server allows WebSockets (RFC 8441): opens any
/// number of them on it, concurrently ([`open`](Self::open)). Cheap to clone; the clones share
/// the connection, which ends when the last handle and the last WebSocket on it are gone.
///
/// The server's `SETTINGS_MAX_CONCURRENT_STREAMS` bounds how many are open at once: an
/// [`open`](Self::open) beyond it waits for a stream to end.
#[derive(Debug, Clone)]
pub struct Http2Connection {
    send: SendRequest<Bytes>,
    tls: bool,
    config: Config,
    timeouts: Timeouts,
}

impl Http2Connection {
    /// Opens an HTTP/2 connection to the server of `url` (a `ws://` or `wss://` URL; its path
    /// is not used) with `options`: TCP to each address in turn or through the proxy, TLS
    /// with ALPN `h2` for `wss://`, prior knowledge for `ws://`, then HTTP/2's preface and
    /// SETTINGS, all within the handshake timeout. The options' [`Config`] and [`Timeouts`]
    /// are those of the WebSockets [`open`](Self::open) opens.
    ///
    /// # Errors
    ///
    /// Those of connecting ([`Error::Connect`], [`Error::Proxy`], [`Error::Tls`],
    /// [`Error::Timeout`], ...), [`Http2Error::NotHttp2`] when the server does not speak
    /// HTTP/2 on the connection (ALPN picked another protocol, or the preface failed), and
    /// [`Http2Error::ExtendedConnectDisabled`] when it does not allow extended `CONNECT`.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, Error> {
        let request = ClientRequest::new(url)?;
        let deadline = Deadline::start(options, now());
        match open_transport(&request, options, deadline).await? {
            Opened::Http2(stream) => Self::start(stream, request.is_tls(), options, deadline).await,
            Opened::Http1(_, alpn) => Err(not_negotiated(alpn).into()),
        }
    }

    /// Runs HTTP/2 over a transport already open to the server (h2c with prior knowledge
    /// over TCP, or TLS whose ALPN picked `h2`): the preface and SETTINGS, within the
    /// handshake timeout of `options`. `tls` is whether the WebSockets' URLs are `wss://`
    /// (their `:scheme` is then `https`). The transport is driven by a task spawned on the
    /// current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Http2Error::NotHttp2`] when the server does not answer with HTTP/2,
    /// [`Http2Error::ExtendedConnectDisabled`] when it does not allow extended `CONNECT`,
    /// [`Error::Timeout`] when its SETTINGS do not come within the handshake timeout.
    pub async fn handshake<S>(io: S, tls: bool, options: &ConnectOptions) -> Result<Self, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let deadline = Deadline::start(options, now());
        Self::start(io, tls, options, deadline).await
    }

    async fn start<S>(
        io: S,
        tls: bool,
        options: &ConnectOptions,
        deadline: Deadline,
    ) -> Result<Self, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let preface_failed = |e: h2::Error| -> Error {
            if e.is_io()
                && e.get_io()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                return h2_error(e);
            }
            Http2Error::NotHttp2 {
                alpn: None,
                detail: format!("the HTTP/2 preface failed: {e}"),
            }
            .into()
        };
        // The answers' heads get the limit of the HTTP/1.1 client's (RFC 9113 §6.5.2).
        let max_head = u32::try_from(options.config().max_header_bytes()).unwrap_or(u32::MAX);
        let handshake = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_header_list_size(max_head)
            .enable_push(false)
            .handshake::<_, Bytes>(io);
        let (send, mut connection) = until(deadline, handshake).await?.map_err(preface_failed)?;
        let mut ping = connection.ping_pong();
        let task = tokio::spawn(connection);
        // The server's SETTINGS come first on its side of the connection (RFC 9113 §3.4) and
        // h2 applies them before it reads the next frame: once our PING is answered, they
        // have been read, and with them SETTINGS_ENABLE_CONNECT_PROTOCOL.
        if let Some(ping) = ping.as_mut() {
            let answered = until(deadline, ping.ping(h2::Ping::opaque())).await;
            match answered {
                Ok(Ok(_pong)) => {}
                Ok(Err(e)) => {
                    // The connection ended: its task has the reason.
                    let reason = match until(deadline, task).await {
                        Ok(Ok(Err(e))) => e,
                        _ => e,
                    };
                    return Err(preface_failed(reason));
                }
                Err(timeout) => {
                    task.abort();
                    return Err(timeout);
                }
            }
        }
        if !send.is_extended_connect_protocol_enabled() {
            return Err(Http2Error::ExtendedConnectDisabled.into());
        }
        Ok(Self {
            send,
            tls,
            config: options.config().clone(),
            timeouts: options.timeouts().clone(),
        })
    }

    /// Whether the server allows extended `CONNECT` (RFC 8441 §3): it did when the handle was
    /// made, and may not withdraw it (§3).
    pub fn is_extended_connect_enabled(&self) -> bool {
        self.send.is_extended_connect_protocol_enabled()
    }

    /// Whether the connection is TLS (its WebSockets' URLs are `wss://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Opens a WebSocket on this connection with the connection's [`Config`] and
    /// [`Timeouts`]: see [`open_with`](Self::open_with).
    ///
    /// # Errors
    ///
    /// Those of [`open_with`](Self::open_with).
    pub async fn open(&self, request: ClientRequest) -> Result<(Http2WebSocket, Response), Error> {
        self.open_with(request, self.config.clone(), self.timeouts.clone())
            .await
    }

    /// Opens a WebSocket on this connection: an extended `CONNECT` (`:protocol: websocket`,
    /// `sec-websocket-version: 13`, no key) for the request's path and authority, offering the
    /// request's subprotocols and extensions and those `config` turns on (subprotocols,
    /// permessage-deflate), then checks the answer as the HTTP/1.1 client does (a 2xx instead
    /// of a 101; a subprotocol and extensions that were offered). Waits first while the
    /// server's limit of concurrent streams is reached. Bounded by the handshake timeout.
    ///
    /// # Errors
    ///
    /// - [`Error::Handshake`]: [`HandshakeError::UnexpectedStatus`] for an answer other than
    ///   2xx (or [`HandshakeError::Redirect`]), [`HandshakeError::UnofferedProtocol`],
    ///   [`HandshakeError::UnofferedExtension`], [`HandshakeError::Extension`];
    ///   [`HandshakeError::InvalidUrl`] for a `ws://` request on a TLS connection or a
    ///   `wss://` one on plain TCP;
    /// - [`Error::Usage`] for a field HTTP/2 cannot carry (see
    ///   [`handshake_request`](crate::http::handshake_request));
    /// - [`Http2Error::ExtendedConnectDisabled`], [`Http2Error::Failed`] (the stream was
    ///   refused or reset, the connection ended), [`Error::Timeout`].
    pub async fn open_with(
        &self,
        request: ClientRequest,
        config: Config,
        timeouts: Timeouts,
    ) -> Result<(Http2WebSocket, Response), Error> {
        let (io, conn, response) = self.exchange(request, config, &timeouts).await?;
        Ok((WebSocketStream::new(io, conn, timeouts), response))
    }

    /// The extended CONNECT of [`open_with`](Self::open_with): the stream, the connection
    /// (OPEN) and the answer.
    async fn exchange(
        &self,
        request: ClientRequest,
        config: Config,
        timeouts: &Timeouts,
    ) -> Result<(Http2Stream, Connection, Response), Error> {
        request.validate()?;
        if request.is_tls() != self.tls {
            return Err(HandshakeError::InvalidUrl(if self.tls {
                "a ws:// URL on a TLS connection"
            } else {
                "a wss:// URL on a plain TCP connection"
            })
            .into());
        }
        if !self.is_extended_connect_enabled() {
            return Err(Http2Error::ExtendedConnectDisabled.into());
        }
        let handshake = ClientHandshake::new(request, config, HttpVersion::Http2);
        let mut head = crate::http::handshake_request(&handshake)?;
        head.extensions_mut()
            .insert(h2::ext::Protocol::from_static("websocket"));

        let exchange = async {
            let mut send = self.send.clone().ready().await.map_err(h2_error)?;
            let (response, send_stream) = send.send_request(head, false).map_err(h2_error)?;
            let response = response.await.map_err(h2_error)?;
            Ok::<_, Error>((response, send_stream))
        };
        let deadline = match timeouts.handshake_timeout() {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .map_err(|_| Error::Timeout(Timeout::Handshake))?,
            None => exchange.await,
        };
        let (response, send_stream) = deadline?;
        let (parts, recv_stream) = response.into_parts();
        // A refusal drops the stream here, which resets it (CANCEL) if the server left it
        // open.
        let (conn, response) = crate::http::finish_handshake(handshake, &parts)?;
        Ok((Http2Stream::new(send_stream, recv_stream), conn, response))
    }
}

/// The [`Http2Error::NotHttp2`] of a TLS connection whose ALPN did not pick `h2`.
fn not_negotiated(alpn: Option<String>) -> Http2Error {
    let detail = match &alpn {
        Some(_) => "the server does not take HTTP/2 on this port".to_owned(),
        None => "the server picked no application protocol".to_owned(),
    };
    Http2Error::NotHttp2 { alpn, detail }
}

/// What a client may do with a server that does not take WebSockets over HTTP/2
/// ([`connect_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fallback {
    /// Use HTTP/1.1 (the default): the same connection when TLS's ALPN picked `http/1.1`, a
    /// fresh one when the server speaks HTTP/2 without extended `CONNECT` or does not answer
    /// the h2c preface.
    #[default]
    Http1,
    /// Fail with [`Error::Http2`] ([`Http2Error::is_unsupported`]).
    Never,
}

/// The transport of a WebSocket from [`connect_with`]: an HTTP/2 stream, or an HTTP/1.1
/// connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Transport {
    /// An extended `CONNECT` stream of an HTTP/2 connection (RFC 8441).
    Http2(Http2Stream),
    /// A connection upgraded with HTTP/1.1 (TCP, or TLS whose ALPN picked `http/1.1`).
    Http1(MaybeTlsStream),
}

impl Transport {
    /// Whether the WebSocket runs over HTTP/2.
    pub fn is_http2(&self) -> bool {
        matches!(self, Self::Http2(_))
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Transport::Http2($s) => {
                let $s = std::pin::Pin::new($s);
                $e
            }
            Transport::Http1($s) => {
                let $s = std::pin::Pin::new($s);
                $e
            }
        }
    };
}

impl AsyncRead for Transport {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Http2(s) => s.is_write_vectored(),
            Self::Http1(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// Opens a WebSocket to `url` over HTTP/2 when the server does RFC 8441, else over HTTP/1.1,
/// with the default [`ConnectOptions`]: see [`connect_with`].
///
/// # Errors
///
/// Those of [`connect_with`].
pub async fn connect(url: &str) -> Result<(WebSocket, Response), Error> {
    connect_with(
        ClientRequest::new(url)?,
        ConnectOptions::default(),
        Fallback::Http1,
    )
    .await
}

/// Opens one WebSocket over HTTP/2 when the server does RFC 8441, on a connection of its own
/// ([`Http2Connection`] shares one between several): TCP (or a proxy's tunnel), TLS with ALPN
/// `h2` and `http/1.1` for `wss://`, h2c with prior knowledge for `ws://`, the extended
/// `CONNECT`. When the server does not take WebSockets over HTTP/2 and `fallback` is
/// [`Fallback::Http1`]: HTTP/1.1 on the same TLS connection when ALPN picked `http/1.1`, else
/// a fresh connection with the HTTP/1.1 client (`hybi::tokio::connect_with`'s path). Redirects
/// are followed as the HTTP/1.1 client follows them; the handshake timeout bounds it all.
///
/// [`Transport::is_http2`] on the WebSocket's transport says which it got.
///
/// ```no_run
/// # async fn run() -> Result<(), hybi::Error> {
/// use hybi::http2::{connect_with, Fallback};
/// use hybi::{ClientRequest, ConnectOptions};
/// let request = ClientRequest::new("wss://example.com/chat")?;
/// let (mut ws, _) = connect_with(request, ConnectOptions::default(), Fallback::Http1).await?;
/// println!("over HTTP/2: {}", ws.get_ref().is_http2());
/// ws.send_message("hello").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// Those of [`Http2Connection::connect`] and [`Http2Connection::open`], and those of
/// `hybi::tokio::connect_with` after a fallback. With [`Fallback::Never`], a server that does
/// not take WebSockets over HTTP/2 is [`Error::Http2`] with [`Http2Error::NotHttp2`] or
/// [`Http2Error::ExtendedConnectDisabled`].
pub async fn connect_with(
    request: ClientRequest,
    options: ConnectOptions,
    fallback: Fallback,
) -> Result<(WebSocket, Response), Error> {
    request.validate()?;
    let deadline = Deadline::start(&options, now());
    let mut redirects = Redirects::new(&request, options.max_redirects());
    let mut request = request;
    loop {
        match attempt(&request, &options, fallback, deadline).await {
            Err(e) => request = redirects.follow(&request, e)?,
            done => return done,
        }
    }
}

/// One URL of [`connect_with`].
async fn attempt(
    request: &ClientRequest,
    options: &ConnectOptions,
    fallback: Fallback,
    deadline: Deadline,
) -> Result<(WebSocket, Response), Error> {
    let unsupported = match open_transport(request, options, deadline).await? {
        Opened::Http1(stream, alpn) => match fallback {
            Fallback::Http1 => {
                return http1(Transport::Http1(stream), request, options, deadline).await
            }
            Fallback::Never => not_negotiated(alpn),
        },
        Opened::Http2(stream) => {
            match Http2Connection::start(stream, request.is_tls(), options, deadline).await {
                Ok(h2) => {
                    let timeouts = deadline.timeouts(options, now())?;
                    let config = options.config().clone();
                    let (io, conn, response) =
                        h2.exchange(request.clone(), config, &timeouts).await?;
                    let io = Transport::Http2(io);
                    let ws = WebSocketStream::new(io, conn, options.timeouts().clone());
                    return Ok((ws, response));
                }
                Err(Error::Http2(e)) if e.is_unsupported() => e,
                Err(e) => return Err(e),
            }
        }
    };
    if fallback == Fallback::Never {
        return Err(unsupported.into());
    }
    // A fresh connection for HTTP/1.1: TLS offering only `http/1.1`.
    let options = http1_options(options)?;
    let stream = crate::connect::tokio::open(request, &options, deadline).await?;
    http1(Transport::Http1(stream), request, &options, deadline).await
}

/// The HTTP/1.1 handshake over an open transport.
async fn http1(
    stream: Transport,
    request: &ClientRequest,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<(WebSocket, Response), Error> {
    let timeouts = deadline.timeouts(options, now())?;
    let config = options.config().clone();
    let (ws, response) =
        crate::tokio::client_with(stream, request.clone(), config, timeouts).await?;
    // The handshake ran with what was left of the deadline; the WebSocket keeps the full
    // timeouts (as `hybi::tokio::connect_with` does).
    let (io, driver) = ws.into_parts();
    let ws = WebSocketStream::new(io, driver.into_connection(), options.timeouts().clone());
    Ok((ws, response))
}

/// A transport for HTTP/2, or for HTTP/1.1 because TLS's ALPN picked it (or nothing).
enum Opened {
    Http2(MaybeTlsStream),
    Http1(MaybeTlsStream, Option<String>),
}

/// TCP (or the proxy's tunnel) and TLS with ALPN `h2` + `http/1.1`: the connect path of the
/// HTTP/1.1 client, with another ALPN offer.
async fn open_transport(
    request: &ClientRequest,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<Opened, Error> {
    if !request.is_tls() {
        let stream = crate::connect::tokio::open(request, options, deadline).await?;
        return Ok(Opened::Http2(stream));
    }
    let options = with_alpn(options, &[b"h2", b"http/1.1"])?;
    let stream = crate::connect::tokio::open(request, &options, deadline).await?;
    let alpn = alpn_of(&stream);
    Ok(match alpn.as_deref() {
        Some(b"h2") => Opened::Http2(stream),
        other => Opened::Http1(
            stream,
            other.map(|p| String::from_utf8_lossy(p).into_owned()),
        ),
    })
}

/// The protocol ALPN picked on a TLS stream.
fn alpn_of(stream: &MaybeTlsStream) -> Option<Vec<u8>> {
    match stream {
        #[cfg(feature = "tokio-tls")]
        MaybeTlsStream::Tls(tls) => tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec),
        _ => None,
    }
}

/// `options` with a TLS client configuration that offers `protocols` with ALPN.
fn with_alpn(options: &ConnectOptions, protocols: &[&[u8]]) -> Result<ConnectOptions, Error> {
    #[cfg(feature = "tokio-tls")]
    {
        let mut tls = (*crate::connect::tls::config(options)?).clone();
        tls.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Ok(options.clone().with_tls_config(std::sync::Arc::new(tls)))
    }
    #[cfg(not(feature = "tokio-tls"))]
    {
        let _ = protocols;
        Ok(options.clone())
    }
}

/// The options of an HTTP/1.1 fallback connection: TLS offering `http/1.1` only.
fn http1_options(options: &ConnectOptions) -> Result<ConnectOptions, Error> {
    with_alpn(options, &[b"http/1.1"])
}
