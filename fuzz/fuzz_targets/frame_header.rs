//! `FrameHeader::decode` on arbitrary bytes.
//!
//! Properties: `Partial { needed }` asks for at least one byte and never more than the longest
//! header needs, and is a true lower bound (fewer bytes stay partial); `Complete` uses at most
//! the input and at most 14 bytes, does not depend on bytes after the header, and does not
//! complete early; re-encoding the header gives `encoded_len()` bytes that decode to the same
//! header (the minimal length form may be shorter than the input's, never longer, and is
//! byte-identical when it has the same size); control frames that decode are final and at most
//! 125 bytes; errors are only the documented ones, and each matches the bytes that caused it.
#![no_main]

use hybi::frame::{FrameHeader, Opcode, Status, MAX_HEADER_LEN};
use hybi::FrameError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match FrameHeader::decode(data) {
        Ok(Status::Partial { needed }) => {
            assert!(needed >= 1, "Partial with needed = 0");
            assert!(data.len() < MAX_HEADER_LEN);
            assert!(
                data.len() + needed <= MAX_HEADER_LEN,
                "needed {needed} after {} bytes",
                data.len()
            );
            // `needed` is a lower bound: one byte fewer is still partial, whatever the bytes.
            for fill in [0x00, 0xff] {
                let mut more = data.to_vec();
                more.resize(data.len() + needed - 1, fill);
                assert!(
                    matches!(FrameHeader::decode(&more), Ok(Status::Partial { .. })),
                    "{data:x?} + {} bytes",
                    needed - 1
                );
            }
            // Once the first two bytes are known, exactly `needed` more complete the header
            // (unless a 64-bit length with its top bit set is already in `data`).
            if data.len() >= 2 {
                let mut more = data.to_vec();
                more.resize(data.len() + needed, 0);
                match FrameHeader::decode(&more) {
                    Ok(Status::Complete((_, used))) => assert_eq!(used, more.len()),
                    Err(FrameError::LengthMsbSet) => {
                        assert!(data[1] & 0x7f == 127 && data.len() > 2 && data[2] & 0x80 != 0)
                    }
                    other => panic!("{data:x?} + {needed} bytes: {other:?}"),
                }
            }
        }
        Ok(Status::Complete((h, used))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&used));
            assert!(used <= data.len());
            assert_eq!(h.mask.is_some(), data[1] & 0x80 != 0);
            assert!(h.payload_len < 1 << 63);
            if h.opcode.is_control() {
                assert!(h.fin && h.payload_len <= 125, "{h:?}");
            }
            // Only the header's own bytes matter.
            assert_eq!(
                FrameHeader::decode(&data[..used]),
                Ok(Status::Complete((h, used)))
            );
            assert!(FrameHeader::decode(&data[..used - 1]).unwrap().is_partial());
            // Re-encoding: minimal form, same decoded values.
            let mut buf = [0u8; MAX_HEADER_LEN];
            let n = h.encode(&mut buf);
            assert_eq!(n, h.encoded_len());
            assert!(n <= used);
            assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Status::Complete((h, n))));
            if n == used {
                assert_eq!(&buf[..n], &data[..used]);
            }
        }
        Err(e) => {
            let (b0, b1) = (data[0], data[1]);
            match e {
                FrameError::ReservedOpcode(op) => {
                    assert_eq!(op, b0 & 0x0f);
                    assert!(Opcode::try_from(op).is_err());
                }
                FrameError::FragmentedControl => {
                    assert!(b0 & 0x08 != 0 && b0 & 0x80 == 0);
                }
                FrameError::ControlTooLong(len) => {
                    assert!(b0 & 0x08 != 0 && b0 & 0x80 != 0);
                    assert!(len > 125 && b1 & 0x7f > 125);
                }
                FrameError::LengthMsbSet => {
                    assert!(data.len() >= 10 && b1 & 0x7f == 127 && data[2] & 0x80 != 0);
                }
                other => panic!("undocumented decode error {other:?} for {data:x?}"),
            }
            // Errors are decided by the bytes seen, not by what follows.
            let mut more = data.to_vec();
            more.extend_from_slice(&[0; MAX_HEADER_LEN]);
            assert_eq!(FrameHeader::decode(&more), Err(e));
        }
    }
});
