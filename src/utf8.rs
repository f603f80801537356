//! Incremental UTF-8 validation across fragments, and the [`Utf8Bytes`] text payload type.
//!
//! RFC 6455 §8.1: an endpoint that receives invalid UTF-8 in a text message MUST fail the
//! connection. The validator here fails at the first byte that can never start or continue a
//! valid sequence, even when that byte sits in the middle of a frame that has not fully arrived,
//! while a code point split across chunks or fragments is accepted.

use alloc::string::String;
use bytes::Bytes;
use core::fmt;
use core::ops::Deref;

/// Input that is not, and cannot become, valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

/// Validates UTF-8 fed in arbitrary chunks.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Utf8Validator {
    /// The bytes of a code point that started in an earlier chunk (a valid prefix).
    partial: [u8; 4],
    partial_len: u8,
}

/// The length of the sequence a valid lead byte starts.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// Feeds the next chunk. Fails as soon as the input cannot be completed to valid UTF-8.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let need = sequence_len(self.partial[0]) - have;
            let take = need.min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            let len = have + take;
            data = &data[take..];
            match core::str::from_utf8(&self.partial[..len]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix; `take < need` means the chunk is used up.
                    self.partial_len = len as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
        }
        if simdutf8::basic::from_utf8(data).is_ok() {
            return Ok(());
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the message: a code point left incomplete is an error. Resets the validator.
    pub(crate) fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        self.partial_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// An immutable, cheaply cloneable UTF-8 string backed by [`Bytes`]: the payload of a text
/// message, validated once and never copied.
///
/// ```
/// use hybi::Utf8Bytes;
/// let t = Utf8Bytes::from("hello");
/// assert_eq!(t.as_str(), "hello");
/// assert_eq!(&*t, "hello");
/// assert!(Utf8Bytes::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps bytes already known to be valid UTF-8: the one caller is the receive path
    /// (`conn/recv.rs`, `deliver`), which calls it for a text message only after a
    /// [`Utf8Validator`] accepted every byte of the message in order (`feed`) and found no code
    /// point left incomplete at its end (`finish`). `tests/conn/utf8.rs` checks that property
    /// for any text, fragmentation and read chunking, and the fuzz targets for any input.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// Wraps a static string.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        #[allow(unsafe_code)]
        // SAFETY: `from_utf8_unchecked` needs valid UTF-8. Every constructor wraps only that:
        // `From<&str>`, `From<String>` and `from_static` take a `str`, `TryFrom<Bytes>`
        // validates, and `from_validated` is called only on bytes the incremental validator
        // accepted whole (see its docs). `Bytes` is immutable and this type gives no mutable
        // access, so the contents stay valid. Why not validate here: `as_str` is called per
        // access (`Deref`, `Display`, comparisons), and re-validating a 16 MiB message costs
        // about a millisecond each time (simdutf8 at ~15 GB/s), 40 ns for a 1 KiB one.
        unsafe {
            core::str::from_utf8_unchecked(&self.0)
        }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Unwraps the underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s.into_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Bytes;
    /// Validates `bytes`; gives them back when they are not UTF-8.
    fn try_from(bytes: Bytes) -> Result<Self, Bytes> {
        if simdutf8::basic::from_utf8(&bytes).is_ok() {
            Ok(Self(bytes))
        } else {
            Err(bytes)
        }
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn check_all_splits(input: &[u8]) {
        let expected = core::str::from_utf8(input).is_ok();
        for a in 0..=input.len() {
            for b in a..=input.len() {
                let mut v = Utf8Validator::default();
                let ok = v.feed(&input[..a]).is_ok()
                    && v.feed(&input[a..b]).is_ok()
                    && v.feed(&input[b..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, expected, "{input:x?} split at {a},{b}");
            }
        }
    }

    #[test]
    fn valid_split_everywhere() {
        check_all_splits("κόσμε".as_bytes());
        check_all_splits("a\u{10FFFF}b\u{FFFF}\u{7FF}\u{80}".as_bytes());
        check_all_splits(b"");
    }

    #[test]
    fn invalid_split_everywhere() {
        for bad in [
            &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"[..], // surrogate
            b"\xc0\xaf",                                                            // overlong
            b"\xf4\x90\x80\x80",                                                    // > U+10FFFF
            b"\xff",
            b"abc\xe2\x82",      // truncated at the end
            b"\xe2\x82\x28abcd", // bad continuation
        ] {
            check_all_splits(bad);
        }
    }

    #[test]
    fn fails_fast_before_the_message_ends() {
        // Autobahn 6.4.x: the first impossible byte fails, whatever follows.
        let mut v = Utf8Validator::default();
        assert!(v.feed("κόσμε".as_bytes()).is_ok());
        assert_eq!(v.feed(b"\xf4\x90"), Err(InvalidUtf8));
        let mut v = Utf8Validator::default();
        assert!(v.feed(b"\xed").is_ok());
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8)); // surrogate lead
    }

    #[test]
    fn every_byte_pair() {
        let mut buf = Vec::new();
        // Under Miri (which runs the SIMD paths too) a sample of the leads keeps it quick.
        for a in (0..=255u8).step_by(if cfg!(miri) { 7 } else { 1 }) {
            for b in 0..=255u8 {
                buf.clear();
                buf.extend_from_slice(&[a, b]);
                let expected = core::str::from_utf8(&buf).is_ok();
                let mut v = Utf8Validator::default();
                let ok =
                    v.feed(&buf[..1]).is_ok() && v.feed(&buf[1..]).is_ok() && v.finish().is_ok();
                assert_eq!(ok, expected, "{a:x} {b:x}");
            }
        }
    }
}
