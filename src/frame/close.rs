//! Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::FrameError;
use crate::error::UsageError;

/// A close status code (RFC 6455 §7.4): an open newtype over `u16` with the RFC's named codes.
///
/// ```
/// use hybi::CloseCode;
/// assert_eq!(u16::from(CloseCode::NORMAL), 1000);
/// assert!(CloseCode::from(4000).is_receivable());
/// assert!(!CloseCode::NO_STATUS.is_sendable()); // 1005 never appears on the wire
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: normal closure; the purpose of the connection was fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: an endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the endpoint is terminating the connection due to a protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: received a type of data it cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1004: reserved; never sent.
    pub const RESERVED: Self = Self(1004);
    /// 1005: no status code was present. Reported locally, never sent (§7.4.1).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection closed without a close frame. Reported locally, never sent.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a message had data inconsistent with its type (e.g. invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message is too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: bad gateway (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed. Reported locally, never sent.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// `true` for codes that may appear in a received close frame (§7.4.1, §7.4.2):
    /// 1000-1003, 1007-1014 and 3000-4999.
    pub const fn is_receivable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// `true` for codes an endpoint may put in a close frame. The same set as
    /// [`is_receivable`](Self::is_receivable): 1004-1006, 1015, codes below 1000, 1015-2999
    /// and 5000 and above are never sent.
    pub const fn is_sendable(self) -> bool {
        self.is_receivable()
    }

    /// `true` for 1000 (normal) and 1001 (going away), the codes of an orderly close.
    pub const fn is_normal(self) -> bool {
        matches!(self.0, 1000 | 1001)
    }

    /// The code as a number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The body of a close frame: a status code and a UTF-8 reason (§5.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8.
    pub reason: String,
}

impl CloseFrame {
    /// The longest reason that fits a close frame: 125 bytes minus the 2-byte code.
    pub const MAX_REASON_LEN: usize = 123;

    /// A close frame with the given code and reason.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// Parses a received close payload (§5.5.1).
    ///
    /// An empty payload is `Ok(None)` (no status code, reported as 1005). A one-byte payload,
    /// a code that may not be received, or a reason that is not UTF-8 is an error. The payload
    /// length (≤ 125) is checked by the frame decoder.
    ///
    /// ```
    /// use hybi::{CloseCode, CloseFrame};
    /// let f = CloseFrame::parse(&[0x03, 0xe8, b'b', b'y', b'e']).unwrap().unwrap();
    /// assert_eq!((f.code, f.reason.as_str()), (CloseCode::NORMAL, "bye"));
    /// assert!(CloseFrame::parse(&[]).unwrap().is_none());
    /// assert!(CloseFrame::parse(&[0x03]).is_err());
    /// ```
    pub fn parse(payload: &[u8]) -> Result<Option<Self>, FrameError> {
        match payload {
            [] => Ok(None),
            [_] => Err(FrameError::CloseTooShort),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_receivable() {
                    return Err(FrameError::InvalidCloseCode(code.0));
                }
                let reason = simdutf8::basic::from_utf8(reason)
                    .map_err(|_| FrameError::InvalidCloseReason)?;
                Ok(Some(Self {
                    code,
                    reason: String::from(reason),
                }))
            }
        }
    }

    /// Checks that this frame may be sent: a sendable code and a reason of at most 123 bytes.
    pub fn validate(&self) -> Result<(), UsageError> {
        if !self.code.is_sendable() {
            return Err(UsageError::InvalidCloseCode(self.code.0));
        }
        if self.reason.len() > Self::MAX_REASON_LEN {
            return Err(UsageError::ControlTooLong(self.reason.len() + 2));
        }
        Ok(())
    }

    /// Appends the close payload (code, then reason) to `dst`. Does not validate.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&self.code.0.to_be_bytes());
        dst.extend_from_slice(self.reason.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sets() {
        // §7.4.1 / §7.4.2: which codes may appear on the wire.
        for c in 0u16..=u16::MAX {
            let ok = matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(c).is_receivable(), ok, "{c}");
            assert_eq!(CloseCode(c).is_sendable(), ok, "{c}");
        }
        for c in [
            CloseCode::NO_STATUS,
            CloseCode::ABNORMAL,
            CloseCode::TLS_HANDSHAKE,
        ] {
            assert!(!c.is_sendable());
        }
    }

    #[test]
    fn parse_cases() {
        assert_eq!(CloseFrame::parse(&[]), Ok(None));
        assert_eq!(CloseFrame::parse(&[3]), Err(FrameError::CloseTooShort));
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xed]),
            Err(FrameError::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xff]),
            Err(FrameError::InvalidCloseReason)
        );
        assert_eq!(
            CloseFrame::parse(&[0x0b, 0xb8]),
            Ok(Some(CloseFrame::new(CloseCode(3000), "")))
        );
    }

    #[test]
    fn encode_roundtrip_and_validate() {
        let f = CloseFrame::new(CloseCode::GOING_AWAY, "héllo");
        let mut v = Vec::new();
        f.encode(&mut v);
        assert_eq!(CloseFrame::parse(&v), Ok(Some(f.clone())));
        assert!(f.validate().is_ok());
        let long = CloseFrame::new(CloseCode::NORMAL, "x".repeat(124));
        assert_eq!(long.validate(), Err(UsageError::ControlTooLong(126)));
        assert_eq!(
            CloseFrame::new(CloseCode::ABNORMAL, "").validate(),
            Err(UsageError::InvalidCloseCode(1006))
        );
    }
}
