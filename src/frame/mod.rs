//! The wire format of RFC 6455 §5: frame headers, opcodes, masking and close payloads.
//!
//! Everything here is a pure function over byte slices; nothing keeps state between calls.

pub(crate) mod close;
pub(crate) mod error;
mod header;
pub(crate) mod mask;
mod opcode;

// Close codes and frames are part of the connection API: their one public path is the crate
// root (`hybi::CloseCode`), like the wire format's error (`hybi::FrameError`).
pub(crate) use close::{CloseCode, CloseFrame};
pub(crate) use error::FrameError;
pub use header::{FrameHeader, MAX_HEADER_LEN};
pub use mask::apply_mask;
pub use opcode::Opcode;

/// The result of a parser that may need more input.
///
/// Running out of bytes is never an error: a decoder returns `Partial` and the caller feeds more
/// bytes and calls it again with the grown buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The value was decoded.
    Complete(T),
    /// The input ends too early; at least `needed` more bytes are required.
    Partial {
        /// A lower bound on how many more bytes the decoder needs.
        needed: usize,
    },
}

impl<T> Status<T> {
    /// Returns the decoded value, or `None` when the input was partial.
    pub fn complete(self) -> Option<T> {
        match self {
            Self::Complete(v) => Some(v),
            Self::Partial { .. } => None,
        }
    }

    /// `true` when more input is needed.
    pub fn is_partial(&self) -> bool {
        matches!(self, Self::Partial { .. })
    }
}
