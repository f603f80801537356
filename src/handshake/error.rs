//! Errors of the opening handshake (RFC 6455 §4), with the HTTP status a server answers each with.

use alloc::string::String;

/// The opening handshake (RFC 6455 §4) failed.
///
/// On the server side, [`Self::http_status`] is the status of the error response the core queues.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The HTTP head is larger than `max_header_bytes`.
    #[error("handshake head exceeds {max} bytes")]
    HeadTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// The HTTP head has more header fields than `max_headers`.
    #[error("handshake has more than {max} header fields")]
    TooManyHeaders {
        /// The configured limit.
        max: usize,
    },
    /// The bytes are not a well-formed HTTP/1.1 head.
    #[error("malformed HTTP head: {0}")]
    Malformed(&'static str),
    /// The request method is not GET (§4.2.1 item 1).
    #[error("request method is not GET")]
    MethodNotGet,
    /// An HTTP/2 request that is not a CONNECT (RFC 8441 §4).
    #[error("HTTP/2 request method is not CONNECT")]
    MethodNotConnect,
    /// An HTTP/2 CONNECT without `:protocol: websocket` (RFC 8441 §4): not a WebSocket.
    #[error("CONNECT without :protocol websocket")]
    MissingProtocol,
    /// The HTTP version is not 1.1 or later (§4.2.1 item 1).
    #[error("HTTP version is not 1.1")]
    UnsupportedHttpVersion,
    /// No `Host` header (§4.2.1 item 2).
    #[error("missing Host header")]
    MissingHost,
    /// No `Upgrade: websocket` (§4.2.1 item 3, §4.1 item 2 of the client's checks).
    #[error("missing or invalid Upgrade header")]
    MissingUpgrade,
    /// No `Upgrade` token in `Connection` (§4.2.1 item 4, §4.1 item 3).
    #[error("missing Upgrade token in the Connection header")]
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Key`, or more than one.
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    /// A `Sec-WebSocket-Key` that is not base64 of 16 bytes (§4.2.1 item 5).
    #[error("Sec-WebSocket-Key is not base64 of 16 bytes")]
    InvalidKey,
    /// A `Sec-WebSocket-Version` other than 13; the server answers 426 (§4.2.2, §4.4).
    #[error("unsupported Sec-WebSocket-Version")]
    UnsupportedVersion,
    /// The URL given to the client is not a valid `ws://` or `wss://` URL (§3).
    #[error("invalid WebSocket URL: {0}")]
    InvalidUrl(&'static str),
    /// The server answered with a status other than 101 (§4.1), and not with a redirect.
    #[error("server answered with HTTP status {0}")]
    UnexpectedStatus(u16),
    /// The server answered with a redirect (301, 302, 303, 307 or 308) that has a `Location`
    /// (RFC 9110 §15.4). The `connect` functions of the adapters follow it (see
    /// `ConnectOptions::with_max_redirects`); a client driven by hand sees it as is.
    #[error("server redirects ({status}) to {location:?}")]
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` value as sent (a URI reference, possibly relative), invalid UTF-8
        /// replaced.
        location: String,
    },
    /// No `Sec-WebSocket-Accept` in the response.
    #[error("missing Sec-WebSocket-Accept header")]
    MissingAccept,
    /// A `Sec-WebSocket-Accept` that does not match the key sent (§4.1 item 4).
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// The server chose a subprotocol the client did not offer (§4.1 item 6).
    #[error("server chose subprotocol {0:?}, which was not offered")]
    UnofferedProtocol(String),
    /// The server chose an extension the client did not offer (§4.1 item 5).
    #[error("server chose extension {0:?}, which was not offered")]
    UnofferedExtension(String),
    /// The extension negotiation failed (e.g. invalid permessage-deflate parameters).
    #[error("extension negotiation failed: {0}")]
    Extension(&'static str),
    /// The connection ended before the handshake completed.
    #[error("connection closed during the handshake")]
    Eof,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with (400, 426, 431, ...).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::UnsupportedVersion => 426,
            Self::MethodNotGet | Self::MethodNotConnect => 405,
            Self::UnsupportedHttpVersion => 505,
            Self::Malformed(_)
            | Self::MissingHost
            | Self::MissingUpgrade
            | Self::MissingConnectionUpgrade
            | Self::MissingKey
            | Self::MissingProtocol
            | Self::InvalidKey
            | Self::Extension(_)
            | Self::Eof => 400,
            // Client-side errors never produce a server response; 400 is a safe answer.
            Self::InvalidUrl(_)
            | Self::UnexpectedStatus(_)
            | Self::Redirect { .. }
            | Self::MissingAccept
            | Self::AcceptMismatch
            | Self::UnofferedProtocol(_)
            | Self::UnofferedExtension(_) => 400,
        }
    }
}
