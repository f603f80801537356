//! Typed errors.
//!
//! Errors are split by who is at fault:
//! - [`FrameError`]: one frame broke a rule of RFC 6455 §5 (decoder level);
//! - [`ProtocolError`]: the peer broke the protocol; [`ProtocolError::close_code`] is the one place
//!   that maps a violation to the close code sent (§7.4.1);
//! - [`HandshakeError`]: the opening handshake (§4) failed; [`HandshakeError::http_status`] is the
//!   status a server answers with;
//! - [`UsageError`]: the local application called a command it may not call now.
//!
//! Peer misbehaviour never comes back as an `Err` from the core's input methods: it fails the
//! connection and shows up in [`Event::Closed`](crate::Event::Closed).

use alloc::string::String;

use crate::frame::CloseCode;
use crate::State;

/// A frame that breaks a rule of RFC 6455 §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// An opcode reserved for future use (§5.2: 0x3-0x7, 0xB-0xF).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A 64-bit payload length with its most significant bit set (§5.2).
    #[error("64-bit payload length with the most significant bit set")]
    LengthMsbSet,
    /// A control frame with a payload over 125 bytes (§5.5).
    #[error("control frame payload of {0} bytes (at most 125)")]
    ControlTooLong(u64),
    /// A control frame without FIN (§5.5: control frames must not be fragmented).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// An RSV bit set that no negotiated extension defines (§5.2).
    #[error("reserved bits {0:#05b} set without a negotiated extension")]
    ReservedBits(u8),
    /// A client frame that is not masked, or a server frame that is (§5.1).
    #[error("{}", if *expected { "unmasked frame from a client" } else { "masked frame from a server" })]
    MaskMismatch {
        /// Whether a mask was expected.
        expected: bool,
    },
    /// A frame longer than the configured `max_frame_size`.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The length the header announced.
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// A close payload of exactly one byte (§5.5.1: a code is two bytes).
    #[error("close payload of one byte")]
    CloseTooShort,
    /// A close code that may not be received (§7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A close reason that is not UTF-8 (§5.5.1).
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
}

/// The peer broke the protocol; the connection is failed (§7.1.7) with [`Self::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame broke a framing rule.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A continuation frame with no fragmented message to continue (§5.4).
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was still open (§5.4).
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A text message (or close reason) that is not valid UTF-8 (§8.1).
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A message longer than the configured `max_message_size`.
    #[error("message of at least {len} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// The size the message reached (or would reach).
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// More fragments in one message than `max_fragments` allows.
    #[error("message has more than {max} fragments")]
    TooManyFragments {
        /// The configured limit.
        max: usize,
    },
    /// Data arrived after the peer's close frame (§5.5.1).
    #[error("data after a close frame")]
    DataAfterClose,
    /// An extension failed to process a message (e.g. a corrupt compressed stream).
    #[error("extension error: {0}")]
    Extension(&'static str),
}

impl ProtocolError {
    /// The close code a connection failed by this error sends (RFC 6455 §7.4.1).
    ///
    /// 1007 for invalid UTF-8, 1009 for size limits, 1002 for everything else.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::Frame(FrameError::FrameTooLarge { .. }) => CloseCode::MESSAGE_TOO_BIG,
            Self::Frame(FrameError::InvalidCloseReason) => CloseCode::INVALID_PAYLOAD,
            Self::Frame(
                FrameError::ReservedOpcode(_)
                | FrameError::LengthMsbSet
                | FrameError::ControlTooLong(_)
                | FrameError::FragmentedControl
                | FrameError::ReservedBits(_)
                | FrameError::MaskMismatch { .. }
                | FrameError::CloseTooShort
                | FrameError::InvalidCloseCode(_),
            ) => CloseCode::PROTOCOL_ERROR,
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::MessageTooLarge { .. } | Self::TooManyFragments { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            Self::UnexpectedContinuation | Self::ExpectedContinuation | Self::DataAfterClose => {
                CloseCode::PROTOCOL_ERROR
            }
            Self::Extension(_) => CloseCode::PROTOCOL_ERROR,
        }
    }
}

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
    /// The server answered with a status other than 101 (§4.1).
    #[error("server answered with HTTP status {0}")]
    UnexpectedStatus(u16),
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
            Self::MethodNotGet => 405,
            Self::UnsupportedHttpVersion => 505,
            Self::Malformed(_)
            | Self::MissingHost
            | Self::MissingUpgrade
            | Self::MissingConnectionUpgrade
            | Self::MissingKey
            | Self::InvalidKey
            | Self::Extension(_)
            | Self::Eof => 400,
            // Client-side errors never produce a server response; 400 is a safe answer.
            Self::InvalidUrl(_)
            | Self::UnexpectedStatus(_)
            | Self::MissingAccept
            | Self::AcceptMismatch
            | Self::UnofferedProtocol(_)
            | Self::UnofferedExtension(_) => 400,
        }
    }
}

/// The local application asked for something it may not do now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The command is not allowed in this state (e.g. sending while CONNECTING).
    #[error("not allowed in state {0:?}")]
    WrongState(State),
    /// A data frame or ping after our close frame was sent (§5.5.1).
    #[error("the connection is closing or closed")]
    SendAfterClose,
    /// A close code that may not be sent (1005, 1006, 1015, < 1000, ...; §7.4).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A control payload over 125 bytes, or a close reason over 123 bytes (§5.5).
    #[error("control frame payload of {0} bytes (at most 125)")]
    ControlTooLong(usize),
    /// A fragment that does not fit the fragment sequence (a continuation with none open, or a new
    /// message while one is open).
    #[error("fragment out of sequence")]
    FragmentOutOfSequence,
    /// A text fragment or message that is not valid UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// `accept` chose a subprotocol the client did not offer.
    #[error("subprotocol {0:?} was not offered by the client")]
    ProtocolNotOffered(String),
    /// A header name or value that cannot be sent (CR, LF, or an invalid token).
    #[error("invalid header name or value")]
    InvalidHeader,
    /// A status that is not a valid rejection (must be 400..=599).
    #[error("invalid rejection status {0}")]
    InvalidStatus(u16),
    /// The connection is closed; it accepts no more commands.
    #[error("the connection is closed")]
    Closed,
}

#[cfg(feature = "std")]
pub use self::adapter::Error;

#[cfg(feature = "std")]
mod adapter {
    use super::{HandshakeError, ProtocolError, UsageError};
    use crate::conn::{CloseOutcome, Failure, Timeout};
    use std::io;

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
                other => Self::new(io::ErrorKind::InvalidData, other),
            }
        }
    }
}
