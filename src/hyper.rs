//! WebSockets through hyper 1 upgrades (feature `hyper`).
//!
//! [`upgrade`] (or [`Upgrade::new`] then [`Upgrade::accept`], to look at the request first)
//! validates an upgrade request with the core's checks ([`crate::http::request`]), settles the
//! answer ([`crate::http::accept`]), and returns the response to send and an [`Upgrading`]
//! future that resolves, once hyper has sent the response and handed the connection over, to a
//! [`WebSocket`]: the tokio adapter's [`WebSocketStream`] over hyper's upgraded connection,
//! with the negotiated subprotocol and permessage-deflate. Nothing is spawned: the caller
//! spawns the future wherever it likes (a `tokio::spawn`, a `JoinSet`, its own executor).
//!
//! Bytes hyper read past the request head (a client may send its first frames right behind
//! it) are not lost: hyper's `Upgraded` replays them before reading the socket again.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hybi::{Config, Timeouts};
//!
//! async fn serve(mut request: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
//!     match hybi::hyper::upgrade(&mut request, Config::default(), Timeouts::default()) {
//!         Ok((response, upgrading)) => {
//!             tokio::spawn(async move {
//!                 let Ok(mut ws) = upgrading.await else { return };
//!                 while let Ok(message) = ws.recv().await {
//!                     if ws.send_message(message).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             Ok(response)
//!         }
//!         // 400, 405, 426 (with `Sec-WebSocket-Version: 13`), ...: the core's answer.
//!         Err(rejection) => Ok(rejection.response()),
//!     }
//! }
//! ```
//!
//! HTTP/2 (RFC 8441 extended `CONNECT`) needs the `http2` feature, which reads the request's
//! `:protocol` from hyper's `hyper::ext::Protocol` extension (and enables hyper's `http2`);
//! without it an HTTP/2 request is refused as [`HandshakeError::MissingProtocol`]. The server
//! must allow extended `CONNECT` (hyper's `http2::Builder::enable_connect_protocol`).
//!
//! Over HTTP/2, each WebSocket is one stream of the connection:
//!
//! - a `CONNECT` without `:protocol`, or with another protocol, is not a WebSocket
//!   ([`HandshakeError::MissingProtocol`], 400); another method is 405 with `Allow: CONNECT`; a
//!   version other than 13, or none, is 426 with `Sec-WebSocket-Version: 13`; a
//!   `Sec-WebSocket-Key` is ignored (HTTP/2 has none; the 200 carries no
//!   `Sec-WebSocket-Accept`);
//! - set hyper's `http2::Builder::max_concurrent_streams` (hyper's default is 200): it is the
//!   most WebSockets one HTTP/2 connection carries at once;
//! - what a client sent that a WebSocket has not read yet counts against the stream's receive
//!   window and the connection's: with hyper's defaults (1 MiB each) one WebSocket that stops
//!   reading stalls every other one on the connection. Set
//!   `http2::Builder::initial_connection_window_size` well above
//!   `initial_stream_window_size` (e.g. 16 MiB and 256 KiB);
//! - an RST_STREAM from the client ends that WebSocket as abnormal (1006, not clean) and no
//!   other; a client that does not read keeps the stream's window closed, which stops the
//!   WebSocket's sends (hyper holds at most a few of its writes beyond the window), and
//!   [`Timeouts::write_timeout`](crate::Timeouts::write_timeout) then drops it;
//! - after a clean close the server waits for the client's END_STREAM (for at most the close
//!   timeout) before it lets the stream go: dropping a stream the client has not ended would
//!   reset it, which HTTP/2 clients report as an error
//!   ([`Connection::awaiting_eof`](crate::Connection::awaiting_eof)).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::http::Extensions;
use ::hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::config::Config;
use crate::conn::Connection;
use crate::driver::{Error, Timeouts};
use crate::error::UsageError;
use crate::handshake::{Accept, HandshakeError, Request};
use crate::tokio::WebSocketStream;

/// The transport of a WebSocket that hyper upgraded: hyper's `Upgraded` (which holds the
/// connection's I/O, boxed, and replays what hyper read past the request head) as a tokio
/// `AsyncRead + AsyncWrite`.
pub type Upgraded = TokioIo<::hyper::upgrade::Upgraded>;

/// A WebSocket over a connection hyper upgraded.
pub type WebSocket = WebSocketStream<Upgraded>;

/// An upgrade request that passed the handshake checks, waiting for the application's answer.
#[derive(Debug)]
pub struct Upgrade {
    request: Request,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// Validates `request` ([`crate::http::request`], with HTTP/2's `:protocol` from hyper's
    /// extension under the `http2` feature) and takes hyper's pending upgrade out of its
    /// extensions.
    ///
    /// # Errors
    ///
    /// [`Rejection::Handshake`] for a request that is not a valid WebSocket upgrade;
    /// [`Rejection::NotUpgradable`] when hyper offers no upgrade for it (a server run without
    /// `with_upgrades`, a request not from hyper).
    pub fn new<B>(request: &mut ::http::Request<B>) -> Result<Self, Rejection> {
        let checked = crate::http::request_from_head(
            request.method(),
            request.uri(),
            request.version(),
            request.headers(),
            protocol_of(request.extensions()),
        )?;
        Self::take(checked, request.extensions_mut())
    }

    /// [`new`](Self::new) for a request taken apart (what axum's extractors get).
    ///
    /// # Errors
    ///
    /// Those of [`new`](Self::new).
    pub fn from_parts(parts: &mut ::http::request::Parts) -> Result<Self, Rejection> {
        let checked = crate::http::request(parts, protocol_of(&parts.extensions))?;
        Self::take(checked, &mut parts.extensions)
    }

    fn take(request: Request, extensions: &mut Extensions) -> Result<Self, Rejection> {
        let on_upgrade = extensions
            .remove::<OnUpgrade>()
            .ok_or(Rejection::NotUpgradable)?;
        Ok(Self {
            request,
            on_upgrade,
        })
    }

    /// The validated request: path, query, `Origin`, offered subprotocols and extensions, every
    /// header.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Answers with `accept` ([`crate::http::accept`]): returns the response to send (101, or
    /// 200 over HTTP/2, with an empty body of any type that has a default) and the future that
    /// resolves to the WebSocket once hyper has upgraded the connection.
    ///
    /// # Errors
    ///
    /// Those of [`Negotiated::new`](crate::Negotiated::new): a subprotocol the client did not
    /// offer, an extra header that cannot be sent.
    pub fn accept<B: Default>(
        self,
        accept: Accept,
        config: Config,
        timeouts: Timeouts,
    ) -> Result<(::http::Response<B>, Upgrading), UsageError> {
        let (response, conn) = crate::http::accept(&self.request, accept, config)?;
        Ok((response, Upgrading::new(self.on_upgrade, conn, timeouts)))
    }

    /// [`accept`](Self::accept), with a refusal for an answer that cannot be sent: then the
    /// response is [`Rejection::Accept`]'s (500) and the future fails with the same error.
    pub fn answer<B: Default + From<String>>(
        self,
        accept: Accept,
        config: Config,
        timeouts: Timeouts,
    ) -> (::http::Response<B>, Upgrading) {
        match crate::http::accept(&self.request, accept, config) {
            Ok((response, conn)) => (response, Upgrading::new(self.on_upgrade, conn, timeouts)),
            Err(e) => (
                Rejection::Accept(e.clone()).response(),
                Upgrading {
                    on_upgrade: self.on_upgrade,
                    state: State::Failed(e),
                },
            ),
        }
    }
}

/// HTTP/2's `:protocol` (RFC 8441), which hyper keeps in a request extension.
fn protocol_of(extensions: &Extensions) -> Option<&str> {
    #[cfg(feature = "http2")]
    {
        extensions
            .get::<::hyper::ext::Protocol>()
            .map(::hyper::ext::Protocol::as_str)
    }
    #[cfg(not(feature = "http2"))]
    {
        let _ = extensions;
        None
    }
}

/// Validates an upgrade request and accepts it: the subprotocol is the first one the client
/// offered that is in [`Config::protocols`], permessage-deflate is negotiated when
/// [`Config::deflate`] is set. Returns the response to send (with an empty body of any type
/// that has a default and can hold a refusal's text) and the future that resolves to the
/// WebSocket; see the [module docs](self).
///
/// [`Upgrade::new`] and [`Upgrade::accept`] do the same in two steps, for an application that
/// looks at the request (path, `Origin`, subprotocols) before answering.
///
/// # Errors
///
/// Those of [`Upgrade::new`]; [`Rejection::response`] is the answer to send.
pub fn upgrade<B, R: Default + From<String>>(
    request: &mut ::http::Request<B>,
    config: Config,
    timeouts: Timeouts,
) -> Result<(::http::Response<R>, Upgrading), Rejection> {
    Ok(Upgrade::new(request)?.answer(Accept::new(), config, timeouts))
}

/// Why an upgrade request was refused, with the response that says so
/// ([`response`](Self::response)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The request is not a valid WebSocket upgrade: the core's error, answered with its
    /// status ([`HandshakeError::http_status`]: 400, 405, 426, 505, ...).
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The HTTP server offers no upgrade for this connection (hyper's `OnUpgrade` extension is
    /// missing: a server run without `with_upgrades`, a request that did not come from hyper).
    /// Answered with 500: the request was valid, the server cannot serve it.
    #[error("this connection cannot be upgraded: the HTTP server offers no upgrade for it")]
    NotUpgradable,
    /// The application's answer cannot be sent (see [`Upgrade::accept`]). Answered with 500.
    #[error("invalid answer to the upgrade request: {0}")]
    Accept(UsageError),
}

impl Rejection {
    /// The HTTP status this rejection is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Handshake(e) => e.http_status(),
            Self::NotUpgradable | Self::Accept(_) => 500,
        }
    }

    /// The response to send: for [`Rejection::Handshake`], the core's
    /// ([`crate::http::error_response`]); otherwise the status with the message as a
    /// plain-text body.
    pub fn response<B: From<String>>(&self) -> ::http::Response<B> {
        match self {
            Self::Handshake(e) => crate::http::error_response(e),
            other => crate::http::plain_response(other.status(), other.to_string()),
        }
    }
}

/// The future that resolves to the WebSocket once hyper has sent the response and handed the
/// connection over ([`Upgrade::accept`], [`upgrade`]).
///
/// It fails with [`Error::Io`] when the upgrade does not happen (the client went away before
/// it, the response was not the one [`Upgrade::accept`] returned). It holds the OPEN
/// [`Connection`] and hyper's pending upgrade, no buffers.
#[derive(Debug)]
#[must_use = "the WebSocket is only made when this future is awaited"]
pub struct Upgrading {
    on_upgrade: OnUpgrade,
    state: State,
}

// The connection moves into the WebSocket; boxing it would cost an allocation per upgrade, and
// the future is smaller than the WebSocket it becomes anyway.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum State {
    Waiting(Connection, Timeouts),
    /// The answer could not be sent; there is nothing to wait for.
    Failed(UsageError),
    Done,
}

impl Upgrading {
    fn new(on_upgrade: OnUpgrade, conn: Connection, timeouts: Timeouts) -> Self {
        Self {
            on_upgrade,
            state: State::Waiting(conn, timeouts),
        }
    }

    /// The connection the WebSocket will drive (OPEN, with the negotiated subprotocol), until
    /// the future completes.
    pub fn connection(&self) -> Option<&Connection> {
        match &self.state {
            State::Waiting(conn, _) => Some(conn),
            _ => None,
        }
    }
}

impl Future for Upgrading {
    type Output = Result<WebSocket, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Poll::Ready(match std::mem::replace(&mut this.state, State::Done) {
            State::Waiting(conn, timeouts) => match Pin::new(&mut this.on_upgrade).poll(cx) {
                Poll::Pending => {
                    this.state = State::Waiting(conn, timeouts);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(upgraded)) => {
                    Ok(WebSocketStream::new(TokioIo::new(upgraded), conn, timeouts))
                }
                Poll::Ready(Err(e)) => Err(Error::Io(io::Error::other(e))),
            },
            State::Failed(e) => Err(e.into()),
            // Polled after it completed.
            State::Done => Err(UsageError::Closed.into()),
        })
    }
}
