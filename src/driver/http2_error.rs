//! Why WebSockets over HTTP/2 (RFC 8441, `hybi::http2`) could not be used on a connection.

use std::fmt;

/// WebSockets over HTTP/2 (RFC 8441) could not be used: the server does not speak HTTP/2 on
/// the connection, does not allow extended `CONNECT`, or the HTTP/2 connection or stream
/// failed. Reported as [`Error::Http2`](crate::Error::Http2).
///
/// `hybi::http2::connect_with` falls back to HTTP/1.1 for the first two unless told not to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Http2Error {
    /// The server does not speak HTTP/2 on this connection: over TLS, ALPN did not pick `h2`
    /// (`alpn` is what it picked, if anything); over plain TCP, the server did not answer the
    /// HTTP/2 connection preface (prior knowledge, RFC 9113 §3.3) with HTTP/2 frames.
    NotHttp2 {
        /// The protocol ALPN picked (`http/1.1`), when the connection is TLS.
        alpn: Option<String>,
        /// What happened instead (TLS) or how the preface failed (plain TCP).
        detail: String,
    },
    /// The server speaks HTTP/2 but did not send `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` in
    /// its SETTINGS (RFC 8441 §3): it does not take WebSockets over HTTP/2.
    ExtendedConnectDisabled,
    /// The HTTP/2 connection or the WebSocket's stream failed: a `GOAWAY`, a `RST_STREAM`
    /// before the answer, a protocol error of the server's (or of the HTTP/2 library).
    Failed {
        /// The HTTP/2 error code (RFC 9113 §7: `0x1` PROTOCOL_ERROR, `0x7` REFUSED_STREAM,
        /// ...), when the failure had one.
        code: Option<u32>,
        /// Whether the connection as a whole ended (`GOAWAY`) rather than one stream.
        go_away: bool,
        /// The HTTP/2 library's description.
        message: String,
    },
}

impl Http2Error {
    /// Whether the server does not take WebSockets over HTTP/2 at all ([`NotHttp2`] or
    /// [`ExtendedConnectDisabled`]): the cases where HTTP/1.1 is the way to reach it.
    ///
    /// [`NotHttp2`]: Self::NotHttp2
    /// [`ExtendedConnectDisabled`]: Self::ExtendedConnectDisabled
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::NotHttp2 { .. } | Self::ExtendedConnectDisabled)
    }
}

impl fmt::Display for Http2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHttp2 {
                alpn: Some(alpn),
                detail,
            } => write!(f, "the server does not speak HTTP/2 here: ALPN picked {alpn:?} ({detail})"),
            Self::NotHttp2 { alpn: None, detail } => {
                write!(f, "the server does not speak HTTP/2 here: {detail}")
            }
            Self::ExtendedConnectDisabled => f.write_str(
                "the HTTP/2 server does not allow WebSockets: no SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)",
            ),
            Self::Failed {
                code,
                go_away,
                message,
            } => {
                let what = if *go_away { "connection" } else { "stream" };
                match code {
                    Some(code) => write!(f, "HTTP/2 {what} failed with error code {code:#x}: {message}"),
                    None => write!(f, "HTTP/2 {what} failed: {message}"),
                }
            }
        }
    }
}

impl std::error::Error for Http2Error {}
