//! Frame header encoding and decoding (RFC 6455 §5.2).
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! ```

use super::FrameError;
use super::{Opcode, Status};

/// The longest possible header: 2 bytes, an 8-byte extended length and a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// A decoded frame header.
///
/// ```
/// use hybi::frame::{FrameHeader, Opcode, Status};
/// // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
/// let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// let Status::Complete((h, used)) = FrameHeader::decode(&bytes).unwrap() else { panic!() };
/// assert_eq!((h.fin, h.opcode, h.payload_len, h.mask, used), (true, Opcode::Text, 5, None, 2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1 (used by permessage-deflate, RFC 7692).
    pub rsv1: bool,
    /// RSV2.
    pub rsv2: bool,
    /// RSV3.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, present when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// A final, unmasked header with no RSV bits.
    pub const fn new(opcode: Opcode, payload_len: u64) -> Self {
        Self {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// The RSV bits as a 3-bit number (RSV1 is the high bit).
    pub const fn rsv_bits(&self) -> u8 {
        (self.rsv1 as u8) << 2 | (self.rsv2 as u8) << 1 | self.rsv3 as u8
    }

    /// Decodes a header at the start of `src`.
    ///
    /// Returns the header and the number of bytes it used, `Partial` when `src` is too short
    /// (never an error), or an error for a reserved opcode, a 64-bit length with its top bit set,
    /// or a control frame that is fragmented or longer than 125 bytes (§5.2, §5.5).
    /// Non-minimal length encodings are accepted. RSV bits and the mask bit are reported, not
    /// judged: whether they are allowed depends on the connection.
    pub fn decode(src: &[u8]) -> Result<Status<(Self, usize)>, FrameError> {
        let (b0, b1) = match src {
            [b0, b1, ..] => (*b0, *b1),
            _ => {
                return Ok(Status::Partial {
                    needed: 2 - src.len(),
                })
            }
        };
        let fin = b0 & 0x80 != 0;
        let opcode = Opcode::try_from(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        // Control frames are checked from the first two bytes, before waiting for more input.
        if opcode.is_control() {
            if !fin {
                return Err(FrameError::FragmentedControl);
            }
            if len7 > 125 {
                // The exact length is unknown yet; report the smallest it can be.
                return Err(FrameError::ControlTooLong(126));
            }
        }
        let total = 2 + ext + if masked { 4 } else { 0 };
        if src.len() < total {
            return Ok(Status::Partial {
                needed: total - src.len(),
            });
        }
        let payload_len = match ext {
            0 => u64::from(len7),
            2 => u64::from(u16::from_be_bytes([src[2], src[3]])),
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&src[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(FrameError::LengthMsbSet);
                }
                len
            }
        };
        let mask = if masked {
            let at = 2 + ext;
            Some([src[at], src[at + 1], src[at + 2], src[at + 3]])
        } else {
            None
        };
        Ok(Status::Complete((
            Self {
                fin,
                rsv1: b0 & 0x40 != 0,
                rsv2: b0 & 0x20 != 0,
                rsv3: b0 & 0x10 != 0,
                opcode,
                mask,
                payload_len,
            },
            total,
        )))
    }

    /// The number of bytes [`encode`](Self::encode) writes: 2 to 14.
    pub const fn encoded_len(&self) -> usize {
        let ext = if self.payload_len <= 125 {
            0
        } else if self.payload_len <= 0xFFFF {
            2
        } else {
            8
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes the header in the minimal length form (7-bit up to 125, 16-bit up to 65535,
    /// 64-bit above) into `dst` and returns the number of bytes written.
    ///
    /// The top bit of a 64-bit length is cleared: lengths of 2^63 and more cannot be sent.
    ///
    /// ```
    /// use hybi::frame::{FrameHeader, Opcode, MAX_HEADER_LEN};
    /// let mut buf = [0u8; MAX_HEADER_LEN];
    /// let n = FrameHeader::new(Opcode::Binary, 256).encode(&mut buf);
    /// assert_eq!(&buf[..n], &[0x82, 0x7e, 0x01, 0x00]); // RFC 6455 §5.7
    /// ```
    pub fn encode(&self, dst: &mut [u8; MAX_HEADER_LEN]) -> usize {
        dst[0] = (self.fin as u8) << 7 | self.rsv_bits() << 4 | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.payload_len & (u64::MAX >> 1);
        let mut at = if len <= 125 {
            dst[1] = mask_bit | len as u8;
            2
        } else if len <= 0xFFFF {
            dst[1] = mask_bit | 126;
            dst[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        } else {
            dst[1] = mask_bit | 127;
            dst[2..10].copy_from_slice(&len.to_be_bytes());
            10
        };
        if let Some(key) = self.mask {
            dst[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(h: FrameHeader) -> Vec<u8> {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut buf);
        assert_eq!(n, h.encoded_len());
        buf[..n].to_vec()
    }

    #[test]
    fn length_forms_at_boundaries() {
        for (len, hdr_len) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (u64::MAX >> 1, 10),
        ] {
            let h = FrameHeader::new(Opcode::Binary, len);
            let bytes = enc(h);
            assert_eq!(bytes.len(), hdr_len, "len {len}");
            assert_eq!(
                FrameHeader::decode(&bytes).unwrap(),
                Status::Complete((h, hdr_len))
            );
        }
    }

    #[test]
    fn partial_at_every_split() {
        let mut h = FrameHeader::new(Opcode::Binary, 70000);
        h.mask = Some([1, 2, 3, 4]);
        h.fin = false;
        h.rsv1 = true;
        let bytes = enc(h);
        assert_eq!(bytes.len(), 14);
        for cut in 0..bytes.len() {
            match FrameHeader::decode(&bytes[..cut]).unwrap() {
                Status::Partial { needed } => {
                    assert!(needed >= 1 && cut + needed <= bytes.len(), "cut {cut}")
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        assert_eq!(
            FrameHeader::decode(&bytes).unwrap(),
            Status::Complete((h, 14))
        );
    }

    #[test]
    fn non_minimal_lengths_accepted() {
        // §5.2 says the minimal form MUST be used; like most peers we accept others on receipt.
        let bytes = [0x82, 126, 0x00, 0x05];
        let Status::Complete((h, n)) = FrameHeader::decode(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!((h.payload_len, n), (5, 4));
    }

    #[test]
    fn msb_of_64_bit_length() {
        let bytes = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::decode(&bytes), Err(FrameError::LengthMsbSet));
    }

    #[test]
    fn control_frame_rules() {
        // §5.5: control frames MUST have a payload of 125 bytes or less and MUST NOT be fragmented.
        assert_eq!(
            FrameHeader::decode(&[0x09, 0x00]),
            Err(FrameError::FragmentedControl)
        );
        assert_eq!(
            FrameHeader::decode(&[0x89, 126]),
            Err(FrameError::ControlTooLong(126))
        );
        assert!(!FrameHeader::decode(&[0x89, 125]).unwrap().is_partial());
    }

    #[test]
    fn reserved_opcode() {
        assert_eq!(
            FrameHeader::decode(&[0x83, 0]),
            Err(FrameError::ReservedOpcode(3))
        );
        assert_eq!(
            FrameHeader::decode(&[0x8B, 0]),
            Err(FrameError::ReservedOpcode(0xB))
        );
    }
}
