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
//! use hybi::{Accept, ClientRequest, Request, Response};
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

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine as _;
use bytes::BufMut;
use sha1::{Digest, Sha1};

use crate::frame::Status;

pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod server;

// The request and response types are the handshake API: their one public path is the crate
// root (`hybi::Request`), like the handshake's error (`hybi::HandshakeError`).
#[cfg(feature = "http")]
pub(crate) use client::is_connection_specific;
pub(crate) use client::{ClientRequest, Response};
pub(crate) use error::HandshakeError;
pub use server::{reject_response, HttpVersion};
pub(crate) use server::{Accept, Reject, Request};

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
    String::from_utf8_lossy(&accept_key_bytes(sec_websocket_key)).into_owned()
}

/// [`accept_key`] without an allocation: the 28 characters as ASCII bytes.
pub(crate) fn accept_key_bytes(sec_websocket_key: &[u8]) -> [u8; 28] {
    let mut sha1 = Sha1::new();
    sha1.update(sec_websocket_key);
    sha1.update(GUID.as_bytes());
    let mut out = [0u8; 28];
    // A 20-byte digest encodes to exactly 28 characters with padding.
    let written = STANDARD.encode_slice(sha1.finalize(), &mut out);
    debug_assert_eq!(written, Ok(28));
    out
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
// Header fields received: one owned copy of the head, looked up case-insensitively.

/// Where a part of a head is, as a byte range of [`Headers`]' copy of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

/// Where `part` (a subslice of `base`) is in `base`, if it is in it.
pub(crate) fn span_in(base: &[u8], part: &[u8]) -> Option<Span> {
    if part.is_empty() {
        return Some(Span::default());
    }
    let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= base.len()).then_some(Span { start, end })
}

/// The header fields of a parsed head, in order, with names as sent: one copy of the head's
/// bytes and where each name and value is in it. Two allocations, however many fields (a
/// browser sends a dozen).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Headers {
    head: Box<[u8]>,
    fields: Vec<(Span, Span)>,
}

impl Headers {
    /// Copies `head` (the complete head, start line included) and indexes `fields`, which
    /// httparse parsed out of it.
    fn new(head: &[u8], fields: &[httparse::Header<'_>]) -> Result<Self, HandshakeError> {
        let mut index = Vec::with_capacity(fields.len());
        for h in fields {
            // httparse's names and values borrow from the buffer it parsed, so both are found.
            let (Some(name), Some(value)) =
                (span_in(head, h.name.as_bytes()), span_in(head, h.value))
            else {
                return Err(HandshakeError::Malformed("invalid header field"));
            };
            index.push((name, value));
        }
        Ok(Self {
            head: head.into(),
            fields: index,
        })
    }

    /// Builds the copy from parts an HTTP stack already parsed: `start` (the request line's
    /// pieces, e.g. method and target) and the header fields, one after another. Returns where
    /// each piece of `start` is.
    pub(crate) fn from_fields<'a, const N: usize>(
        start: &[&[u8]; N],
        fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> (Self, [Span; N]) {
        let mut head = Vec::new();
        let mut put = |part: &[u8]| {
            let start = head.len();
            head.extend_from_slice(part);
            Span {
                start,
                end: head.len(),
            }
        };
        let spans = start.map(&mut put);
        let index = fields
            .into_iter()
            .map(|(name, value)| (put(name.as_bytes()), put(value)))
            .collect();
        (
            Self {
                head: head.into(),
                fields: index,
            },
            spans,
        )
    }

    /// Where `part`, a slice of this copy of the head (a value this type returned), is in it.
    pub(crate) fn span(&self, part: &[u8]) -> Option<Span> {
        span_in(&self.head, part)
    }

    /// The bytes at `span`.
    pub(crate) fn bytes(&self, span: Span) -> &[u8] {
        self.head.get(span.start..span.end).unwrap_or_default()
    }

    /// The text at `span`, which the parser checked to be UTF-8 (empty if it is not).
    pub(crate) fn text(&self, span: Span) -> &str {
        core::str::from_utf8(self.bytes(span)).unwrap_or_default()
    }

    /// The first value of `name` (case-insensitive).
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.first_and_repeated(name).0
    }

    /// The first value of `name` (case-insensitive), and whether the field occurs more than once.
    pub(crate) fn first_and_repeated(&self, name: &str) -> (Option<&[u8]>, bool) {
        let mut values = self.all(name);
        (values.next(), values.next().is_some())
    }

    /// Every value of `name` (case-insensitive), in order.
    pub(crate) fn all<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.fields
            .iter()
            .filter(move |(n, _)| self.bytes(*n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| self.bytes(*v))
    }

    /// All fields, in order. Names are tokens (httparse checks), hence ASCII.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields
            .iter()
            .map(|(n, v)| (self.text(*n), self.bytes(*v)))
    }
}

impl core::fmt::Debug for Headers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
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

/// Header slots kept on the stack: enough for any browser's request or server's response.
const STACK_SLOTS: usize = 32;

/// Runs `parse` (httparse over the head window) with header slots: one more than `max_headers`,
/// so that a head with too many fields is detected by count rather than by httparse's array
/// running out, but never more than the window can hold (each field line takes at least 3
/// bytes, `a:\n`). Up to [`STACK_SLOTS`] are on the stack; a head with more fields is parsed
/// again with slots on the heap, when the limit allows that many.
pub(crate) fn with_header_slots<'w, T>(
    window_len: usize,
    max_headers: usize,
    mut parse: impl FnMut(&mut [httparse::Header<'w>]) -> Result<T, httparse::Error>,
) -> Result<T, httparse::Error> {
    let wanted = max_headers.saturating_add(1).min(window_len / 3 + 1);
    let mut stack: [httparse::Header<'w>; STACK_SLOTS] = [httparse::EMPTY_HEADER; STACK_SLOTS];
    if wanted <= STACK_SLOTS {
        return parse(&mut stack[..wanted]);
    }
    match parse(&mut stack) {
        Err(httparse::Error::TooManyHeaders) => {}
        done => return done,
    }
    let mut heap = alloc::vec![httparse::EMPTY_HEADER; wanted];
    parse(&mut heap)
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

/// Checks the field count of a complete head and copies it with its fields.
pub(crate) fn collect_headers(
    head: &[u8],
    fields: &[httparse::Header<'_>],
    max_headers: usize,
) -> Result<Headers, HandshakeError> {
    if fields.len() > max_headers {
        return Err(HandshakeError::TooManyHeaders { max: max_headers });
    }
    Headers::new(head, fields)
}

// ------------------------------------------------------------------------------------------------
// Output helpers.

/// Appends `name: value\r\n`.
pub(crate) fn put_header(dst: &mut impl BufMut, name: &str, value: &[u8]) {
    dst.put_slice(name.as_bytes());
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}

/// Appends `name: e1, e2, ...\r\n` unless `elements` is empty.
pub(crate) fn put_list_header(dst: &mut impl BufMut, name: &str, elements: &[String]) {
    if elements.is_empty() {
        return;
    }
    dst.put_slice(name.as_bytes());
    dst.put_slice(b": ");
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            dst.put_slice(b", ");
        }
        dst.put_slice(e.as_bytes());
    }
    dst.put_slice(b"\r\n");
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
        let h = parsed_headers(
            b"HTTP/1.1 101 x\r\nconnection: keep-alive\r\nConnection:  foo ,UPGRADE\r\n\r\n",
        );
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

    /// The fields of a response head, as `Response::parse` indexes them.
    fn parsed_headers(head: &[u8]) -> Headers {
        with_header_slots(head.len(), 64, |slots| {
            let mut res = httparse::Response::new(slots);
            assert!(res.parse(head)?.is_complete());
            Ok(collect_headers(head, res.headers, 64).unwrap())
        })
        .unwrap()
    }

    #[test]
    fn headers_index_one_copy_of_the_head() {
        let h = parsed_headers(b"HTTP/1.1 101 x\r\nA: 1\r\nb:\r\nA:  2 \r\n\r\n");
        assert_eq!(h.first_and_repeated("a"), (Some(&b"1"[..]), true));
        assert_eq!(h.get("B"), Some(&b""[..]));
        assert_eq!(h.get("c"), None);
        let all: Vec<_> = h.iter().collect();
        assert_eq!(all, [("A", &b"1"[..]), ("b", b""), ("A", b"2")]);
        assert_eq!(
            alloc::format!("{h:?}"),
            r#"[("A", "1"), ("b", ""), ("A", "2")]"#
        );
    }

    /// How many slots each attempt gets: bounded by the limit and by the window, on the stack
    /// up to `STACK_SLOTS`, and on the heap only past it when the head has that many fields.
    #[test]
    fn slots_are_bounded() {
        let attempts = |window_len, max| {
            let mut sizes = Vec::new();
            let _ = with_header_slots(window_len, max, |slots| {
                sizes.push(slots.len());
                Err::<(), _>(httparse::Error::TooManyHeaders)
            });
            sizes
        };
        assert_eq!(attempts(0, usize::MAX), [1]);
        assert_eq!(attempts(3000, 10), [11]);
        assert_eq!(attempts(30, 1000), [11]);
        assert_eq!(attempts(3000, 31), [32]);
        assert_eq!(attempts(3000, 100), [32, 101]);
        // A head with 40 fields under a limit of 100 parses, from the heap.
        let mut head = b"HTTP/1.1 101 x\r\n".to_vec();
        for i in 0..40 {
            head.extend_from_slice(alloc::format!("f{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let fields = with_header_slots(head.len(), 100, |slots| {
            let mut res = httparse::Response::new(slots);
            res.parse(&head)?;
            Ok(res.headers.len())
        });
        assert_eq!(fields, Ok(40));
    }
}
