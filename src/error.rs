//! Local misuse: the error of every command the application may not issue now.
//!
//! Errors are split by who is at fault, and each lives with the layer that detects it:
//! - [`FrameError`](crate::FrameError) (`frame/`): one frame broke a rule of RFC 6455 §5;
//! - [`ProtocolError`](crate::ProtocolError) (`conn/`): the peer broke the protocol;
//!   [`ProtocolError::close_code`](crate::ProtocolError::close_code) is the one place that maps a
//!   violation to the close code sent (§7.4.1);
//! - [`HandshakeError`](crate::HandshakeError) (`handshake/`): the opening handshake (§4) failed;
//!   [`HandshakeError::http_status`](crate::HandshakeError::http_status) is the status a server
//!   answers with;
//! - [`UsageError`] (here): the local application called a command it may not call now.
//!
//! Peer misbehaviour never comes back as an `Err` from the core's input methods: it fails the
//! connection and shows up in [`Event::Closed`](crate::Event::Closed). The adapters' error,
//! [`Error`](crate::Error), wraps all of these with I/O errors and timeouts.

use alloc::string::String;

use crate::role::State;

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
    /// A whole message was asked for while messages arrive in pieces
    /// ([`Config::stream_fragments`](crate::Config::stream_fragments)): take events instead.
    #[error("messages arrive as fragments (stream_fragments): receive events, not messages")]
    StreamingFragments,
}
