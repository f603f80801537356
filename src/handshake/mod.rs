//! The opening handshake of RFC 6455 §4.
//!
//! Both sides are pure functions over byte buffers, in the same style as the frame codec: nothing
//! here reads from or writes to a socket.
//!
//! - Server side: [`Request::parse`] reads and validates the client's request (§4.2.1); the
//!   application answers with an [`Accept`] (§4.2.2) or with [`reject_response`].
//! - Client side: [`ClientRequest`] is built from a `ws://` or `wss://` URL (§3) and encodes the
//!   request (§4.1); [`Response::parse`] validates the server's answer (§4.1, second list).
//!
//! Parsers return [`Status::Partial`] while the head is incomplete
//! and report how many bytes the head took, so that bytes pipelined after it (the first frames) stay
//! with the caller.
//!
//! ```
//! use hybi::frame::Status;
//! use hybi::handshake::{Accept, ClientRequest, Request, Response};
//!
//! // Client: build the request. The key comes from 16 random bytes (§4.1 item 7).
//! let client = ClientRequest::new("ws://example.com/chat")?.protocol("chat");
//! let key = hybi::handshake::encode_key(&[7; 16]);
//! let mut wire = Vec::new();
//! client.encode(&key, &mut wire);
//!
//! // Server: parse it and accept with the offered subprotocol.
//! let Status::Complete((request, used)) = Request::parse(&wire, 8192, 64)? else { panic!() };
//! assert_eq!(used, wire.len());
//! let accept = Accept::new().protocol("chat");
//! accept.validate(&request)?;
//! let mut answer = Vec::new();
//! accept.encode(&request, &mut answer);
//!
//! // Client: check the answer.
//! let Status::Complete((response, _)) = Response::parse(&answer, &client, &key, 8192, 64)? else {
//!     panic!()
//! };
//! assert_eq!(response.protocol(), Some("chat"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::error::HandshakeError;
use crate::frame::Status;

mod client;
mod server;

pub use client::{ClientRequest, Response};
pub use server::{reject_response, Accept, Request};

/// The GUID appended to `Sec-WebSocket-Key` to compute `Sec-WebSocket-Accept` (RFC 6455 §1.3,
/// §4.2.2 step 5.4).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64(SHA-1(key ++ [`GUID`])),
/// always 28 characters (§1.3, §4.2.2).
///
/// The key is used as sent (base64 text), not decoded.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(
///     hybi::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(sec_websocket_key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(sec_websocket_key);
    sha1.update(GUID.as_bytes());
    STANDARD.encode(sha1.finalize())
}

/// The `Sec-WebSocket-Key` value for a 16-byte nonce: its base64 encoding, 24 characters (§4.1
/// item 7). The nonce must be freshly random for each connection.
///
/// ```
/// // The example of RFC 6455 §4.1 item 7 (the RFC prints the non-canonical
/// // "...EC==", which decodes to the same bytes; servers here accept both).
/// let nonce = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
/// assert_eq!(hybi::handshake::encode_key(&nonce), "AQIDBAUGBwgJCgsMDQ4PEA==");
/// ```
pub fn encode_key(nonce: &[u8; 16]) -> String {
    STANDARD.encode(nonce)
}

/// The standard alphabet, padded, but accepting non-zero trailing bits (RFC 4648 §3.5 lets a
/// decoder do either): §4.1 item 7's own example key, `AQIDBAUGBwgJCgsMDQ4PEC==`, has them.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Whether `key` is base64 (RFC 4648 §4, padded) of exactly 16 bytes (§4.2.1 item 5).
pub(crate) fn is_valid_key(key: &[u8]) -> bool {
    // 16 bytes encode to 22 characters plus "==" padding.
    let mut out = [0u8; 18];
    key.len() == 24 && matches!(LENIENT.decode_slice(key, &mut out), Ok(16))
}

// ------------------------------------------------------------------------------------------------
// Header fields received: owned copies, looked up case-insensitively.

/// The header fields of a parsed head, in order, with names as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    fn from_httparse(fields: &[httparse::Header<'_>]) -> Self {
        Self(
            fields
                .iter()
                .map(|h| (String::from(h.name), h.value.to_vec()))
                .collect(),
        )
    }

    /// The first value of `name` (case-insensitive).
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.first_and_repeated(name).0
    }

    /// The first value of `name` (case-insensitive), and whether the field occurs more than once.
    pub(crate) fn first_and_repeated(&self, name: &str) -> (Option<&[u8]>, bool) {
        let mut values = self
            .0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice());
        (values.next(), values.next().is_some())
    }

    /// Every value of `name` (case-insensitive), in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// All fields, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

/// Whether any value of the comma-list header `name` has an element equal to `token`, ignoring
/// ASCII case (§4.2.1 items 3 and 4, §4.1 response checks 2 and 3).
pub(crate) fn has_token(headers: &Headers, name: &str, token: &str) -> bool {
    headers.all(name).any(|value| {
        value
            .split(|&b| b == b',')
            .any(|element| element.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

// ------------------------------------------------------------------------------------------------
// Lexical helpers (RFC 7230 §3.2.6).

/// `tchar` of RFC 7230 §3.2.6.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A non-empty `token` (RFC 7230 §3.2.6).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// A header value this crate may send: no control characters other than HTAB (so no CR, LF or
/// NUL, which would split or truncate the head) and no DEL.
pub(crate) fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// A `quoted-string` (RFC 7230 §3.2.6), including its quotes.
fn is_quoted_string(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) else {
        return false;
    };
    let mut escaped = false;
    for b in inner.bytes() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return false;
        }
    }
    !escaped
}

/// Splits `s` on `sep` where it is not inside a `quoted-string`; yields each element trimmed, and
/// skips empty elements (the `#rule` of RFC 7230 §7).
pub(crate) fn split_list(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    SplitOutsideQuotes { rest: Some(s), sep }
        .map(str::trim_ascii)
        .filter(|e| !e.is_empty())
}

struct SplitOutsideQuotes<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitOutsideQuotes<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, b) in rest.bytes().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if !quoted && b == self.sep {
                // `sep` is ASCII, so `i` and `i + 1` are char boundaries.
                self.rest = rest.get(i + 1..);
                return rest.get(..i);
            }
        }
        self.rest = None;
        Some(rest)
    }
}

/// The extension-token of one `extension` element (§9.1), if the element follows the grammar:
/// `extension-token *( ";" extension-param )` with `extension-param = token [ "=" (token |
/// quoted-string) ]`.
pub(crate) fn extension_name(element: &str) -> Option<&str> {
    let mut parts = SplitOutsideQuotes {
        rest: Some(element),
        sep: b';',
    }
    .map(str::trim_ascii);
    let name = parts.next().filter(|n| is_token(n))?;
    for param in parts {
        let ok = match param.split_once('=') {
            None => is_token(param),
            Some((key, value)) => {
                let value = value.trim_ascii();
                is_token(key.trim_ascii()) && (is_token(value) || is_quoted_string(value))
            }
        };
        if !ok {
            return None;
        }
    }
    Some(name)
}

/// The extension-token of an offer, read leniently (everything before the first `;`).
pub(crate) fn offer_name(element: &str) -> &str {
    element.split(';').next().unwrap_or(element).trim_ascii()
}

// ------------------------------------------------------------------------------------------------
// Head parsing shared by `Request::parse` and `Response::parse`.

/// The part of `buf` the head parser looks at: a complete head longer than `max_header_bytes` is
/// rejected anyway, so bytes past the limit are never scanned.
pub(crate) fn head_window(buf: &[u8], max_header_bytes: usize) -> &[u8] {
    buf.get(..max_header_bytes).unwrap_or(buf)
}

/// Header slots for httparse: one more than `max_headers` so that a head with too many fields is
/// detected by count rather than by httparse's array running out, but never more than the window
/// can hold (each field line takes at least 3 bytes, `a:\n`), so a huge limit allocates nothing.
pub(crate) fn header_slots<'a>(window_len: usize, max_headers: usize) -> Vec<httparse::Header<'a>> {
    let slots = max_headers.saturating_add(1).min(window_len / 3 + 1);
    alloc::vec![httparse::EMPTY_HEADER; slots]
}

/// The result for a head that is not complete yet.
pub(crate) fn incomplete<T>(
    buf: &[u8],
    max_header_bytes: usize,
) -> Result<Status<T>, HandshakeError> {
    if buf.len() > max_header_bytes {
        return Err(HandshakeError::HeadTooLarge {
            max: max_header_bytes,
        });
    }
    // A head ends with an empty line; httparse also accepts bare LF line endings, so a buffer
    // ending in LF (or LF CR) may need only one more byte, and any other at least two.
    let needed = if buf.ends_with(b"\n") || buf.ends_with(b"\n\r") {
        1
    } else {
        2
    };
    Ok(Status::Partial { needed })
}

/// Maps a httparse error to the handshake error.
pub(crate) fn parse_error(err: httparse::Error, max_headers: usize) -> HandshakeError {
    HandshakeError::Malformed(match err {
        httparse::Error::TooManyHeaders => {
            return HandshakeError::TooManyHeaders { max: max_headers }
        }
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status code",
        httparse::Error::Token => "invalid request line",
        httparse::Error::Version => "invalid HTTP version",
    })
}

/// Checks the field count of a complete head and copies its fields.
pub(crate) fn collect_headers(
    fields: &[httparse::Header<'_>],
    max_headers: usize,
) -> Result<Headers, HandshakeError> {
    if fields.len() > max_headers {
        return Err(HandshakeError::TooManyHeaders { max: max_headers });
    }
    Ok(Headers::from_httparse(fields))
}

// ------------------------------------------------------------------------------------------------
// Output helpers.

/// Appends `name: value\r\n`.
pub(crate) fn put_header(dst: &mut Vec<u8>, name: &str, value: &[u8]) {
    dst.extend_from_slice(name.as_bytes());
    dst.extend_from_slice(b": ");
    dst.extend_from_slice(value);
    dst.extend_from_slice(b"\r\n");
}

/// Appends `name: e1, e2, ...\r\n` unless `elements` is empty.
pub(crate) fn put_list_header(dst: &mut Vec<u8>, name: &str, elements: &[String]) {
    if elements.is_empty() {
        return;
    }
    dst.extend_from_slice(name.as_bytes());
    dst.extend_from_slice(b": ");
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            dst.extend_from_slice(b", ");
        }
        dst.extend_from_slice(e.as_bytes());
    }
    dst.extend_from_slice(b"\r\n");
}

/// Appends the decimal form of `n`.
pub(crate) fn put_decimal(dst: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        // `n % 10 < 10`, so the cast cannot truncate.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn accept_key_rfc_1_3_vector() {
        // §1.3 and §4.2.2: the key, the SHA-1, and its base64.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(accept_key(b"").len(), 28);
    }

    #[test]
    fn encode_key_is_valid_key() {
        for nonce in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
            let key = encode_key(&nonce);
            assert_eq!(key.len(), 24);
            assert!(is_valid_key(key.as_bytes()));
        }
    }

    #[test]
    fn key_validation_4_2_1_item_5() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        // §4.1 item 7's example, with non-zero trailing bits.
        assert!(is_valid_key(b"AQIDBAUGBwgJCgsMDQ4PEC=="));
        assert!(is_valid_key(b"AQIDBAUGBwgJCgsMDQ4PEA=="));
        // 15 and 17 bytes, no padding, bad characters.
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAAA="));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ!="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=A"));
        assert!(!is_valid_key(b""));
    }

    #[test]
    fn split_list_respects_quotes() {
        let v: Vec<&str> = split_list(r#" a, b; x="1,2" ,, c;y="q\"," "#, b',').collect();
        assert_eq!(v, vec!["a", r#"b; x="1,2""#, r#"c;y="q\",""#]);
        assert_eq!(split_list("", b',').count(), 0);
        assert_eq!(split_list(" , ,", b',').count(), 0);
        // An unterminated quote swallows the rest, without panicking.
        let v: Vec<&str> = split_list(r#"a, "b, c"#, b',').collect();
        assert_eq!(v, vec!["a", r#""b, c"#]);
        // Multi-byte characters next to separators.
        let v: Vec<&str> = split_list("é,ü", b',').collect();
        assert_eq!(v, vec!["é", "ü"]);
    }

    #[test]
    fn extension_grammar_9_1() {
        assert_eq!(extension_name("deflate-stream"), Some("deflate-stream"));
        assert_eq!(
            extension_name("mux; max-channels=4; flow-control"),
            Some("mux")
        );
        assert_eq!(
            extension_name(r#"permessage-deflate; client_max_window_bits="10""#),
            Some("permessage-deflate")
        );
        assert_eq!(extension_name("a b"), None);
        assert_eq!(extension_name("a; b=\"x"), None);
        assert_eq!(extension_name("a; =1"), None);
        assert_eq!(extension_name("a;"), None);
        assert_eq!(extension_name(""), None);
        assert_eq!(offer_name(" foo ; bar"), "foo");
    }

    #[test]
    fn tokens_and_values() {
        assert!(is_token("chat.example-v2"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a,b"));
        assert!(!is_token("é"));
        assert!(is_field_value("text/plain; charset=utf-8\tx"));
        assert!(!is_field_value("a\r\nb: c"));
        assert!(!is_field_value("a\0"));
        assert!(!is_field_value("\x7f"));
    }

    #[test]
    fn has_token_is_case_insensitive_list() {
        let h = Headers(vec![
            ("connection".into(), b"keep-alive".to_vec()),
            ("Connection".into(), b" foo ,UPGRADE".to_vec()),
        ]);
        assert!(has_token(&h, "CONNECTION", "upgrade"));
        assert!(!has_token(&h, "connection", "close"));
        assert!(!has_token(&h, "upgrade", "websocket"));
    }

    #[test]
    fn decimal() {
        for n in [0usize, 7, 10, 65535, usize::MAX] {
            let mut v = Vec::new();
            put_decimal(&mut v, n);
            assert_eq!(v, alloc::format!("{n}").into_bytes());
        }
    }

    #[test]
    fn slots_are_bounded() {
        assert_eq!(header_slots(0, usize::MAX).len(), 1);
        assert_eq!(header_slots(3000, 10).len(), 11);
        assert_eq!(header_slots(30, 1000).len(), 11);
    }
}
