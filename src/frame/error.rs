//! Errors of the wire format: a frame that breaks a rule of RFC 6455 §5.

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
