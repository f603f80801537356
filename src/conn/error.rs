//! The peer broke the protocol: the errors that fail a connection, each with its close code.

use crate::frame::{CloseCode, FrameError};

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
