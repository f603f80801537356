//! What a [`Connection`](crate::Connection) reports: events, messages and close outcomes.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::ProtocolError;
use crate::frame::{CloseCode, CloseFrame};
use crate::handshake::{HandshakeError, Request, Response};
use crate::utf8::Utf8Bytes;

/// A complete data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, validated as UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// `true` for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            Self::Binary(_) => None,
        }
    }

    /// The kind of message.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<Vec<u8>> for Message {
    fn from(v: Vec<u8>) -> Self {
        Self::Binary(v.into())
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}

/// Text or binary: the two kinds of data message (RFC 6455 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Binary data (opcode 0x2).
    Binary,
}

/// A piece of a message, delivered as it arrives when
/// [`Config::stream_fragments`](crate::Config::stream_fragments) is on.
///
/// The pieces of one message arrive in order; the last has `fin` set. For text, each piece has
/// passed incremental UTF-8 validation, but a code point may be split between two pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The kind of the message this piece belongs to.
    pub kind: MessageKind,
    /// The bytes.
    pub data: Bytes,
    /// `true` on the last piece of the message.
    pub fin: bool,
}

/// Who started the closing handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// This endpoint (the application, or the core failing the connection).
    Local,
    /// The peer (a close frame, or the TCP connection ending).
    Remote,
}

/// Why a connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The peer broke the protocol; the close code sent is [`ProtocolError::close_code`].
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The opening handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A deadline kept by the adapter passed (see [`Connection::timed_out`](crate::Connection::timed_out)).
    #[error("{0}")]
    Timeout(Timeout),
}

/// The deadlines an adapter keeps for a connection (the core has no clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timeout {
    /// The opening handshake did not complete in time.
    Handshake,
    /// A keepalive ping got no answer (no input at all), and the peer took none of our bytes,
    /// in time: the peer is presumed dead.
    Pong,
    /// Output waited with the peer taking none of it for too long: the peer is presumed dead.
    Write,
    /// No message arrived for the idle timeout.
    Idle,
    /// The closing handshake did not complete in time.
    Close,
}

impl core::fmt::Display for Timeout {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Handshake => "opening handshake timed out",
            Self::Pong => "keepalive ping got no answer in time",
            Self::Write => "the peer took no data for too long",
            Self::Idle => "connection idle for too long",
            Self::Close => "closing handshake timed out",
        })
    }
}

/// How a connection ended: the payload of [`Event::Closed`], like the browser's `CloseEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOutcome {
    /// The code of the close frame that ended the connection: the peer's when it sent one
    /// ([`CloseCode::NO_STATUS`] if its frame had no code), ours when this endpoint failed the
    /// connection, and [`CloseCode::ABNORMAL`] when it ended without any close frame.
    pub code: CloseCode,
    /// The reason that came with `code`.
    pub reason: String,
    /// Who started the close.
    pub initiator: Initiator,
    /// `true` when both close frames were exchanged and nothing failed (`wasClean`).
    pub clean: bool,
    /// What failed, when the connection was failed.
    pub error: Option<Failure>,
}

impl CloseOutcome {
    /// `true` for a clean close with 1000 or 1001, or a clean close without a status code.
    pub fn is_normal(&self) -> bool {
        self.clean && (self.code.is_normal() || self.code == CloseCode::NO_STATUS)
    }
}

/// The completed opening handshake: the payload of [`Event::Open`].
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The negotiated subprotocol, if any.
    pub protocol: Option<String>,
    /// The negotiated extensions, as they appear in `Sec-WebSocket-Extensions`.
    pub extensions: Vec<String>,
    /// The server's response (client side only).
    pub response: Option<Response>,
}

/// What a [`Connection`](crate::Connection) reports, from
/// [`next_event`](crate::Connection::next_event).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Server: a valid upgrade request arrived. Inspect it, then call
    /// [`accept`](crate::Connection::accept) or [`reject`](crate::Connection::reject).
    Request(Request),
    /// The handshake completed; the connection is OPEN.
    Open(Box<Handshake>),
    /// A complete message.
    Message(Message),
    /// A piece of a message (only with `stream_fragments`).
    Fragment(Fragment),
    /// A ping arrived; with `auto_pong` the pong is already queued.
    Ping(Bytes),
    /// A pong arrived.
    Pong(Bytes),
    /// The peer's close frame arrived (1005 when it had no code); the reply is already queued.
    CloseReceived(CloseFrame),
    /// The connection is closed. Always the last event.
    Closed(Box<CloseOutcome>),
}
