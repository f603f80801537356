//! The error of the adapters: everything that can end a connection driven over real I/O.

use std::io;

use super::connect_error::{ConnectError, ProxyError, ProxyErrorKind, RedirectError};
use super::http2_error::Http2Error;
use crate::conn::{CloseOutcome, Failure, ProtocolError, Timeout};
use crate::error::UsageError;
use crate::handshake::HandshakeError;

/// The error of the blocking and tokio adapters.
///
/// A connection that has closed keeps answering with the error that describes how it
/// closed: [`Error::Closed`] after a close handshake (clean or not), [`Error::Protocol`] when
/// the peer broke the protocol, [`Error::Timeout`] when a deadline passed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The opening handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer broke the protocol; the connection was failed with
    /// [`ProtocolError::close_code`].
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The application called something it may not call now.
    #[error("usage error: {0}")]
    Usage(#[from] UsageError),
    /// A deadline (handshake, keepalive, close) passed; the connection was dropped.
    #[error("{0}")]
    Timeout(Timeout),
    /// The connection is closed; the outcome says how (code, reason, clean, who started).
    #[error("connection closed with {} {:?}{}", .0.code, .0.reason, if .0.clean { "" } else { " (not clean)" })]
    Closed(CloseOutcome),
    /// TLS setup failed (invalid server name, no usable configuration).
    #[error("TLS error: {0}")]
    Tls(String),
    /// No TCP connection to the server could be opened: every address it resolved to failed
    /// (each is listed), or its name did not resolve.
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// The proxy could not be reached, refused the tunnel, or broke its protocol.
    #[error("{0}")]
    Proxy(#[from] ProxyError),
    /// A redirect answer to the opening handshake could not be followed.
    #[error("redirect refused: {0}")]
    Redirect(#[from] RedirectError),
    /// WebSockets over HTTP/2 (RFC 8441, `hybi::http2`) could not be used on the connection:
    /// the server does not speak HTTP/2 there, does not allow extended `CONNECT`, or the
    /// HTTP/2 connection or stream failed.
    #[error("{0}")]
    Http2(#[from] Http2Error),
}

impl Error {
    /// The error that describes a close outcome.
    pub fn from_outcome(outcome: &CloseOutcome) -> Self {
        match &outcome.error {
            Some(Failure::Protocol(e)) => Self::Protocol(*e),
            Some(Failure::Handshake(e)) => Self::Handshake(e.clone()),
            Some(Failure::Timeout(t)) => Self::Timeout(*t),
            None => Self::Closed(outcome.clone()),
        }
    }

    /// The close outcome, when this error reports a closed connection.
    pub fn close_outcome(&self) -> Option<&CloseOutcome> {
        match self {
            Self::Closed(o) => Some(o),
            _ => None,
        }
    }

    /// `true` for a connection that closed normally (1000/1001, both close frames exchanged).
    pub fn is_normal_close(&self) -> bool {
        self.close_outcome().is_some_and(CloseOutcome::is_normal)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::Timeout(_) => Self::new(io::ErrorKind::TimedOut, e),
            Error::Closed(_) => Self::new(io::ErrorKind::ConnectionAborted, e),
            Error::Usage(_) => Self::new(io::ErrorKind::InvalidInput, e),
            Error::Connect(ref c) => Self::new(c.kind(), e),
            Error::Proxy(ref p) if matches!(p.kind(), ProxyErrorKind::TimedOut) => {
                Self::new(io::ErrorKind::TimedOut, e)
            }
            other => Self::new(io::ErrorKind::InvalidData, other),
        }
    }
}
