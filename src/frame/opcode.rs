//! Frame opcodes (RFC 6455 §5.2, §11.8).

use super::FrameError;

/// A frame's opcode. The reserved values 0x3-0x7 and 0xB-0xF are rejected when decoding (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// 0x0: continues a fragmented message (§5.4).
    Continuation = 0x0,
    /// 0x1: the first frame of a text message.
    Text = 0x1,
    /// 0x2: the first frame of a binary message.
    Binary = 0x2,
    /// 0x8: close (§5.5.1).
    Close = 0x8,
    /// 0x9: ping (§5.5.2).
    Ping = 0x9,
    /// 0xA: pong (§5.5.3).
    Pong = 0xA,
}

impl Opcode {
    /// `true` for close, ping and pong: opcodes with the most significant bit set (§5.5).
    ///
    /// ```
    /// use hybi::frame::Opcode;
    /// assert!(Opcode::Ping.is_control());
    /// assert!(!Opcode::Text.is_control());
    /// ```
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }

    /// `true` for continuation, text and binary.
    pub const fn is_data(self) -> bool {
        !self.is_control()
    }
}

impl TryFrom<u8> for Opcode {
    type Error = FrameError;

    /// Converts the low four bits of a header's first byte; reserved opcodes are errors.
    fn try_from(value: u8) -> Result<Self, FrameError> {
        Ok(match value {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(FrameError::ReservedOpcode(other)),
        })
    }
}

impl From<Opcode> for u8 {
    fn from(op: Opcode) -> Self {
        op as Self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nibble() {
        for v in 0u8..16 {
            match Opcode::try_from(v) {
                Ok(op) => assert_eq!(u8::from(op), v),
                Err(e) => {
                    assert!((0x3..=0x7).contains(&v) || (0xB..=0xF).contains(&v));
                    assert_eq!(e, FrameError::ReservedOpcode(v));
                }
            }
        }
    }
}
