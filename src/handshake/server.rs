//! The server side of the opening handshake: reading the client's request (RFC 6455 §4.2.1) and
//! answering it (§4.2.2).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::HandshakeError;
use super::{
    accept_key_bytes, collect_headers, extension_name, has_token, head_window, incomplete,
    is_field_value, is_token, is_valid_key, parse_error, put_decimal, put_header, span_in,
    split_list, with_header_slots, Headers, Span,
};
use crate::error::UsageError;
use crate::frame::Status;

/// A parsed and validated client opening handshake (§4.2.1).
///
/// ```
/// use hybi::frame::Status;
/// use hybi::Request;
///
/// // The example request of RFC 6455 §1.2.
/// let head = b"GET /chat HTTP/1.1\r\n\
///     Host: server.example.com\r\n\
///     Upgrade: websocket\r\n\
///     Connection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Origin: http://example.com\r\n\
///     Sec-WebSocket-Protocol: chat, superchat\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n";
/// let Status::Complete((req, used)) = Request::parse(head, 8192, 64)? else { panic!() };
/// assert_eq!(used, head.len());
/// assert_eq!(req.path(), "/chat");
/// assert_eq!(req.protocols(), ["chat", "superchat"]);
/// assert_eq!(req.origin(), Some("http://example.com"));
/// # Ok::<(), hybi::HandshakeError>(())
/// ```
///
/// It holds one copy of the request head and knows where each part is in it, and it is shared,
/// not copied, when cloned (the [`Event::Request`](crate::Event::Request) and the connection
/// hold the same one).
#[derive(Clone, PartialEq, Eq)]
pub struct Request(Arc<Parts>);

#[derive(PartialEq, Eq)]
struct Parts {
    headers: Headers,
    method: Span,
    uri: Span,
    /// Empty for an absolute URI without a path (then the path is `/`).
    path: Span,
    query: Option<Span>,
    host: Span,
    origin: Option<Span>,
    /// `Sec-WebSocket-Key`, over HTTP/1.1 (HTTP/2 has none).
    key: Option<Span>,
    version: HttpVersion,
    protocols: Vec<String>,
    extensions: Vec<String>,
}

/// What the request line and the header fields are, before validation.
struct Head {
    headers: Headers,
    method: Span,
    uri: Span,
    version: HttpVersion,
    /// An HTTP/1.0 request line: fails §4.2.1 item 1 (after the method check).
    http10: bool,
}

/// The HTTP version a request arrived over, which decides how it asks for a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/1.1 (or later 1.x): a `GET` with `Upgrade: websocket` and a `Sec-WebSocket-Key`,
    /// answered with `101 Switching Protocols` (RFC 6455 §4).
    Http11,
    /// HTTP/2: an extended `CONNECT` with `:protocol: websocket` and no key, answered with
    /// `200` (RFC 8441 §4-§5). Many WebSockets then share one HTTP/2 connection.
    Http2,
}

impl Request {
    /// Parses and validates a request head at the start of `buf`.
    ///
    /// Returns `Ok(Status::Partial { needed })` while the head is incomplete, and
    /// `Ok(Status::Complete((request, head_len)))` once it is complete, where `head_len` counts the
    /// bytes of the head including its final empty line. Bytes after the head are not part of the
    /// request (a client may pipeline frames after it); the caller keeps them.
    ///
    /// # Errors
    ///
    /// - [`HandshakeError::HeadTooLarge`] when the head (or, while incomplete, `buf`) is longer
    ///   than `max_header_bytes`;
    /// - [`HandshakeError::TooManyHeaders`] when it has more than `max_headers` fields;
    /// - [`HandshakeError::Malformed`] for bad HTTP syntax, a request target that is neither a path
    ///   nor an absolute `http`/`https` URI, a repeated `Host`, non-UTF-8 `Host` or `Origin`, or a
    ///   `Sec-WebSocket-Protocol` / `Sec-WebSocket-Extensions` value that breaks its grammar
    ///   (§4.1 item 10, §9.1);
    /// - the §4.2.1 checks, in its order: [`HandshakeError::MethodNotGet`],
    ///   [`HandshakeError::UnsupportedHttpVersion`], [`HandshakeError::MissingHost`],
    ///   [`HandshakeError::MissingUpgrade`], [`HandshakeError::MissingConnectionUpgrade`],
    ///   [`HandshakeError::MissingKey`] (absent or repeated), [`HandshakeError::InvalidKey`],
    ///   [`HandshakeError::UnsupportedVersion`] (absent, repeated or not `13`).
    ///
    /// [`HandshakeError::response`] is the answer to send for any of them.
    pub fn parse(
        buf: &[u8],
        max_header_bytes: usize,
        max_headers: usize,
    ) -> Result<Status<(Self, usize)>, HandshakeError> {
        let window = head_window(buf, max_header_bytes);
        let parsed = with_header_slots(window.len(), max_headers, |slots| {
            let mut req = httparse::Request::new(slots);
            let head_len = match req.parse(window)? {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => return Ok(None),
            };
            let (Some(method), Some(uri), Some(minor)) = (req.method, req.path, req.version) else {
                return Ok(Some(Err(HandshakeError::Malformed(
                    "incomplete request line",
                ))));
            };
            let head = &window[..head_len];
            let parts = collect_headers(head, req.headers, max_headers).and_then(|headers| {
                // Offsets in `head` are offsets in the copy `headers` holds.
                let span = |part: &str| {
                    span_in(head, part.as_bytes())
                        .ok_or(HandshakeError::Malformed("incomplete request line"))
                };
                // httparse reads HTTP/1.x only.
                Ok(Head {
                    method: span(method)?,
                    uri: span(uri)?,
                    version: HttpVersion::Http11,
                    http10: minor < 1,
                    headers,
                })
            });
            Ok(Some(parts.map(|h| (h, head_len))))
        });
        let (head, head_len) = match parsed {
            Ok(Some(result)) => result?,
            Ok(None) => return incomplete(buf, max_header_bytes),
            Err(e) => return Err(parse_error(e, max_headers)),
        };
        Self::validate(head).map(|request| Status::Complete((request, head_len)))
    }

    /// The checks of §4.2.1 on a complete head.
    fn validate(head: Head) -> Result<Self, HandshakeError> {
        let Head {
            headers,
            method,
            uri,
            version,
            http10,
        } = head;
        let span = |part: &[u8]| {
            headers
                .span(part)
                .ok_or(HandshakeError::Malformed("invalid request"))
        };

        // §4.2.1 item 1: an HTTP/1.1 or higher GET request; RFC 8441 §4: an HTTP/2 CONNECT.
        match (version, headers.bytes(method)) {
            (HttpVersion::Http11, b"GET") | (HttpVersion::Http2, b"CONNECT") => {}
            (HttpVersion::Http11, _) => return Err(HandshakeError::MethodNotGet),
            (HttpVersion::Http2, _) => return Err(HandshakeError::MethodNotConnect),
        }
        if http10 {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        let (path, query) = resource_name(headers.text(uri))?;
        let (path, query) = (
            span(path.as_bytes())?,
            query.map(|q| span(q.as_bytes())).transpose()?,
        );
        let (host, key) = match version {
            HttpVersion::Http11 => Self::validate_upgrade(&headers)?,
            HttpVersion::Http2 => Self::validate_extended_connect(&headers)?,
        };
        let (host, key) = (span(host)?, key.map(span).transpose()?);

        // Item 6 (both versions, RFC 8441 §5): exactly one Sec-WebSocket-Version, 13.
        match headers.first_and_repeated("sec-websocket-version") {
            (Some(v), false) if v.trim_ascii() == b"13" => {}
            _ => return Err(HandshakeError::UnsupportedVersion),
        }

        // Item 7: Origin, optional.
        let origin = match headers.get("origin") {
            Some(v) => {
                utf8(v, "Origin header is not UTF-8")?;
                Some(span(v)?)
            }
            None => None,
        };

        // Item 8: subprotocols, `1#token` (§4.1 item 10), possibly over several fields.
        let mut protocols = Vec::new();
        for value in headers.all("sec-websocket-protocol") {
            let value = utf8(value, "invalid Sec-WebSocket-Protocol")?;
            for p in split_list(value, b',') {
                if !is_token(p) {
                    return Err(HandshakeError::Malformed("invalid Sec-WebSocket-Protocol"));
                }
                protocols.push(String::from(p));
            }
        }

        // Item 9: extensions, the grammar of §9.1, possibly over several fields.
        let mut extensions = Vec::new();
        for value in headers.all("sec-websocket-extensions") {
            let value = utf8(value, "invalid Sec-WebSocket-Extensions")?;
            for e in split_list(value, b',') {
                if extension_name(e).is_none() {
                    return Err(HandshakeError::Malformed(
                        "invalid Sec-WebSocket-Extensions",
                    ));
                }
                extensions.push(String::from(e));
            }
        }

        Ok(Self(Arc::new(Parts {
            headers,
            method,
            uri,
            path,
            query,
            host,
            origin,
            key,
            version,
            protocols,
            extensions,
        })))
    }

    /// The checks of §4.2.1 items 2-5 for an HTTP/1.1 upgrade: `Host`, `Upgrade: websocket`,
    /// `Connection: Upgrade`, one valid `Sec-WebSocket-Key`. Returns the host and the key.
    fn validate_upgrade(headers: &Headers) -> Result<(&[u8], Option<&[u8]>), HandshakeError> {
        let host = Self::validate_host(headers, "host")?;
        // Items 3 and 4: Upgrade: websocket, Connection: Upgrade (comma lists, any case).
        if !has_token(headers, "upgrade", "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !has_token(headers, "connection", "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        // Item 5: exactly one Sec-WebSocket-Key, base64 of 16 bytes (hence ASCII).
        let (Some(key), false) = headers.first_and_repeated("sec-websocket-key") else {
            return Err(HandshakeError::MissingKey);
        };
        let key = key.trim_ascii();
        if !is_valid_key(key) {
            return Err(HandshakeError::InvalidKey);
        }
        Ok((host, Some(key)))
    }

    /// The checks of RFC 8441 §4-§5 for an HTTP/2 extended CONNECT: `:protocol` =
    /// `websocket`, an `:authority` (or `Host`). No key, no `Upgrade`.
    fn validate_extended_connect(
        headers: &Headers,
    ) -> Result<(&[u8], Option<&[u8]>), HandshakeError> {
        match headers.first_and_repeated(":protocol") {
            (Some(p), false) if p.trim_ascii().eq_ignore_ascii_case(b"websocket") => {}
            _ => return Err(HandshakeError::MissingProtocol),
        }
        let authority = match headers.get(":authority") {
            Some(_) => ":authority",
            None => "host",
        };
        Ok((Self::validate_host(headers, authority)?, None))
    }

    /// §4.2.1 item 2: exactly one `Host` (RFC 7230 §5.4: more than one is a 400), UTF-8.
    fn validate_host<'h>(headers: &'h Headers, name: &str) -> Result<&'h [u8], HandshakeError> {
        let (host, repeated) = headers.first_and_repeated(name);
        let host = host.ok_or(HandshakeError::MissingHost)?;
        if repeated {
            return Err(HandshakeError::Malformed("more than one Host header"));
        }
        utf8(host, "Host header is not UTF-8")?;
        Ok(host)
    }

    /// Validates a request whose head an HTTP stack already parsed (hyper, axum, h2): the
    /// method, the request target (path and query, or an absolute URI), the version and the
    /// header fields. The same checks as [`parse`](Self::parse) for an HTTP/1.1 upgrade; for
    /// HTTP/2 those of an extended CONNECT (RFC 8441): pass its `:protocol` and `:authority`
    /// pseudo-header fields as fields named `:protocol` and `:authority`.
    ///
    /// ```
    /// use hybi::handshake::HttpVersion;
    /// use hybi::{HandshakeError, Request};
    /// let fields: [(&str, &[u8]); 4] = [
    ///     (":protocol", b"websocket"),
    ///     (":authority", b"example.com"),
    ///     ("sec-websocket-version", b"13"),
    ///     ("sec-websocket-protocol", b"chat"),
    /// ];
    /// let req = Request::from_head("CONNECT", "/chat", HttpVersion::Http2, fields)?;
    /// assert_eq!((req.host(), req.path(), req.key()), ("example.com", "/chat", None));
    /// assert_eq!(req.protocols(), ["chat"]);
    /// # Ok::<(), HandshakeError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`parse`](Self::parse), and for HTTP/2 [`HandshakeError::MethodNotConnect`]
    /// and [`HandshakeError::MissingProtocol`].
    pub fn from_head<'a>(
        method: &str,
        target: &str,
        version: HttpVersion,
        fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, HandshakeError> {
        let (headers, start) =
            Headers::from_fields(&[method.as_bytes(), target.as_bytes()], fields);
        Self::validate(Head {
            method: start[0],
            uri: start[1],
            version,
            http10: false,
            headers,
        })
    }

    /// The request method: `"GET"` over HTTP/1.1, `"CONNECT"` over HTTP/2.
    pub fn method(&self) -> &str {
        self.0.headers.text(self.0.method)
    }

    /// The request target as sent, e.g. `"/chat?room=1"`.
    pub fn uri(&self) -> &str {
        self.0.headers.text(self.0.uri)
    }

    /// The path of the resource name (§3), e.g. `"/chat"`. For an absolute-form target
    /// (`http://host/chat`) this is the path part only; never empty.
    pub fn path(&self) -> &str {
        match self.0.headers.text(self.0.path) {
            "" => "/",
            path => path,
        }
    }

    /// The query of the resource name, without the `?`, e.g. `Some("room=1")`.
    pub fn query(&self) -> Option<&str> {
        self.0.query.map(|q| self.0.headers.text(q))
    }

    /// The `Host` header value (§4.2.1 item 2), e.g. `"server.example.com:8080"`.
    pub fn host(&self) -> &str {
        self.0.headers.text(self.0.host)
    }

    /// The `Origin` header value, if sent (§4.2.1 item 7, §10.2).
    pub fn origin(&self) -> Option<&str> {
        self.0.origin.map(|o| self.0.headers.text(o))
    }

    /// The `Sec-WebSocket-Key` value as sent, trimmed (§4.2.1 item 5); `None` over HTTP/2,
    /// which has no key (RFC 8441 §5).
    pub fn key(&self) -> Option<&str> {
        self.0.key.map(|k| self.0.headers.text(k))
    }

    /// The HTTP version the request arrived over.
    pub fn version(&self) -> HttpVersion {
        self.0.version
    }

    /// The offered subprotocols, in the client's order of preference (§4.2.1 item 8).
    pub fn protocols(&self) -> &[String] {
        &self.0.protocols
    }

    /// The offered extension elements, in order, each as sent (trimmed), e.g.
    /// `"permessage-deflate; client_max_window_bits"` (§4.2.1 item 9, §9.1).
    pub fn extensions(&self) -> &[String] {
        &self.0.extensions
    }

    /// The first value of the header field `name` (ASCII case-insensitive), as sent.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.headers.get(name)
    }

    /// All header fields, in the order sent, with names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.headers.iter()
    }
}

impl core::fmt::Debug for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("uri", &self.uri())
            .field("host", &self.host())
            .field("origin", &self.origin())
            .field("key", &self.key())
            .field("version", &self.version())
            .field("protocols", &self.protocols())
            .field("extensions", &self.extensions())
            .field("headers", &self.0.headers)
            .finish()
    }
}

/// Splits a request target into the path and query of the resource name (§3, §4.2.1 item 1): the
/// origin form `/path?query`, or an absolute `http`/`https` URI containing it.
fn resource_name(uri: &str) -> Result<(&str, Option<&str>), HandshakeError> {
    let resource = if uri.starts_with('/') {
        uri
    } else {
        let rest = strip_prefix_ignore_case(uri, "http://")
            .or_else(|| strip_prefix_ignore_case(uri, "https://"))
            .ok_or(HandshakeError::Malformed("invalid request target"))?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        rest.get(end..).unwrap_or("")
    };
    let (path, query) = match resource.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (resource, None),
    };
    Ok((path, query))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, HandshakeError> {
    core::str::from_utf8(bytes).map_err(|_| HandshakeError::Malformed(what))
}

/// What the server application answers an acceptable request with (§4.2.2).
///
/// Build it, [`validate`](Self::validate) it against the request, then [`encode`](Self::encode)
/// the `101 Switching Protocols` response.
///
/// ```
/// # use hybi::frame::Status;
/// # use hybi::{Accept, Request};
/// # let head = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
/// #     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
/// #     Sec-WebSocket-Version: 13\r\n\r\n";
/// # let Status::Complete((request, _)) = Request::parse(head, 8192, 64)? else { panic!() };
/// let accept = Accept::new().protocol("chat").header("Set-Cookie", "id=1");
/// accept.validate(&request)?;
/// let mut out = Vec::new();
/// accept.encode(&request, &mut out);
/// // The example response of RFC 6455 §1.2, plus the extra header.
/// assert_eq!(
///     out,
///     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///       Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\
///       Set-Cookie: id=1\r\n\r\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    protocol: Option<String>,
    headers: Vec<(String, String)>,
}

impl Accept {
    /// An answer with no subprotocol, no extensions and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses the subprotocol `name`, which must be one the request offered (§4.2.2 step 4,
    /// /subprotocol/). Replaces an earlier choice.
    #[must_use]
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocol = Some(name.into());
        self
    }

    /// Adds an extra response header, e.g. `Set-Cookie` (§4.2.2, §4.1 cookies).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The chosen subprotocol, if any.
    pub fn selected_protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The extra response headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Checks this answer against the request.
    ///
    /// # Errors
    ///
    /// - [`UsageError::ProtocolNotOffered`] if the chosen subprotocol is not one the request
    ///   offered (compared exactly; §4.2.2 step 4);
    /// - [`UsageError::InvalidHeader`] if an extra header name is not an HTTP token, or a header or
    ///   extension value contains a control character (CR, LF, NUL, ...).
    pub fn validate(&self, req: &Request) -> Result<(), UsageError> {
        if let Some(p) = &self.protocol {
            if !req.protocols().iter().any(|offered| offered == p) {
                return Err(UsageError::ProtocolNotOffered(p.clone()));
            }
        }
        check_headers(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    /// Appends the `101 Switching Protocols` response for `req` (§4.2.2 step 5): `Upgrade`,
    /// `Connection`, `Sec-WebSocket-Accept`, then `Sec-WebSocket-Protocol` and
    /// `Sec-WebSocket-Extensions` when set, the extra headers, and the empty line.
    ///
    /// Does not validate: call [`validate`](Self::validate) first.
    pub fn encode(&self, req: &Request, dst: &mut Vec<u8>) {
        self.encode_to(req, dst);
    }

    /// [`encode`](Self::encode) into any buffer (the connection's output buffer).
    pub(crate) fn encode_to(&self, req: &Request, dst: &mut impl bytes::BufMut) {
        dst.put_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        );
        if let Some(key) = req.key() {
            put_header(
                dst,
                "Sec-WebSocket-Accept",
                &accept_key_bytes(key.as_bytes()),
            );
        }
        if let Some(p) = &self.protocol {
            put_header(dst, "Sec-WebSocket-Protocol", p.as_bytes());
        }
        for (name, value) in &self.headers {
            put_header(dst, name, value.as_bytes());
        }
        dst.put_slice(b"\r\n");
    }
}

/// Checks header fields supplied by the application: names are tokens, values have no control
/// characters.
pub(crate) fn check_headers<'a>(
    mut headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), UsageError> {
    if headers.all(|(name, value)| is_token(name) && is_field_value(value)) {
        Ok(())
    } else {
        Err(UsageError::InvalidHeader)
    }
}

/// Appends a complete HTTP error response that refuses the handshake (§4.2.1 "return an HTTP
/// response with an appropriate error code", §4.2.2 steps 2-4).
///
/// Writes the status line with the standard reason phrase, the `headers`, then
/// `Content-Type: text/plain; charset=utf-8` (when `body` is non-empty and `headers` has no
/// `Content-Type`), `Content-Length`, `Connection: close`, the empty line and `body`. For a 426
/// the caller passes `("Sec-WebSocket-Version", "13")` itself (§4.4).
///
/// Nothing is appended when an error is returned.
///
/// # Errors
///
/// - [`UsageError::InvalidStatus`] unless `status` is in `400..=599`;
/// - [`UsageError::InvalidHeader`] if a name is not a token, a value has a control character, or
///   a header is `Content-Length` or `Transfer-Encoding` (this function frames the body itself).
///
/// ```
/// let mut out = Vec::new();
/// hybi::handshake::reject_response(403, &[], b"origin not allowed", &mut out)?;
/// assert_eq!(
///     out,
///     b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
///       Content-Length: 18\r\nConnection: close\r\n\r\norigin not allowed"
/// );
/// # Ok::<(), hybi::UsageError>(())
/// ```
pub fn reject_response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    dst: &mut Vec<u8>,
) -> Result<(), UsageError> {
    if !(400..=599).contains(&status) {
        return Err(UsageError::InvalidStatus(status));
    }
    check_headers(headers.iter().copied())?;
    let framing = |name: &str| {
        name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
    };
    if headers.iter().any(|(name, _)| framing(name)) {
        return Err(UsageError::InvalidHeader);
    }
    write_reject(status, headers, body, dst);
    Ok(())
}

/// [`reject_response`] without the checks.
fn write_reject(status: u16, headers: &[(&str, &str)], body: &[u8], dst: &mut Vec<u8>) {
    dst.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(dst, usize::from(status));
    dst.push(b' ');
    dst.extend_from_slice(reason_phrase(status).as_bytes());
    dst.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        put_header(dst, name, value.as_bytes());
    }
    let has_type = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !body.is_empty() && !has_type {
        put_header(dst, "Content-Type", b"text/plain; charset=utf-8");
    }
    dst.extend_from_slice(b"Content-Length: ");
    put_decimal(dst, body.len());
    dst.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    dst.extend_from_slice(body);
}

/// The reason phrase registered for an error status (RFC 9110 §15); empty for others, which
/// RFC 9112 §4 allows.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        511 => "Network Authentication Required",
        _ => "",
    }
}

impl HandshakeError {
    /// The complete HTTP error response a server sends for this error: the status of
    /// [`http_status`](Self::http_status), a short plain-text body with the error message, and
    /// `Sec-WebSocket-Version: 13` for a 426 (§4.2.2 /version/, §4.4) or `Allow: GET` for a 405.
    ///
    /// ```
    /// let response = hybi::HandshakeError::UnsupportedVersion.response();
    /// assert!(response.starts_with(b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"));
    /// ```
    pub fn response(&self) -> Vec<u8> {
        let status = self.http_status();
        let headers: &[(&str, &str)] = match self {
            Self::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            Self::MethodNotGet => &[("Allow", "GET")],
            Self::MethodNotConnect => &[("Allow", "CONNECT")],
            _ => &[],
        };
        let body = format!("{self}\n");
        let mut out = Vec::with_capacity(160 + body.len());
        write_reject(status, headers, body.as_bytes(), &mut out);
        out
    }
}

/// A server's refusal of an upgrade request: an HTTP status (400..=599), headers and a body.
///
/// ```
/// use hybi::Reject;
/// let r = Reject::new(403).body("origin not allowed").header("X-Reason", "origin");
/// assert_eq!(r.status(), 403);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reject {
    /// A rejection with `status` and no body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Sets the body (sent as `text/plain; charset=utf-8`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The extra response headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The body.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Appends the complete HTTP response ([`reject_response`]).
    pub(crate) fn encode(&self, dst: &mut Vec<u8>) -> Result<(), UsageError> {
        let headers: Vec<(&str, &str)> = self.headers().collect();
        reject_response(self.status, &headers, &self.body, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &[u8]) -> Result<Status<(Request, usize)>, HandshakeError> {
        Request::parse(head, 8192, 64)
    }

    const BASE: &str = "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

    fn request(extra: &str) -> Request {
        let head = format!("GET /p HTTP/1.1\r\n{BASE}{extra}\r\n");
        match parse(head.as_bytes()) {
            Ok(Status::Complete((r, n))) if n == head.len() => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resource_names_3_and_4_2_1_item_1() {
        let ok = |uri| resource_name(uri).unwrap();
        assert_eq!(ok("/chat?room=1"), ("/chat", Some("room=1")));
        assert_eq!(ok("/"), ("/", None));
        assert_eq!(ok("/a?"), ("/a", Some("")));
        assert_eq!(ok("http://h:80/chat?x"), ("/chat", Some("x")));
        // An empty path (`Request::path` reads it as "/").
        assert_eq!(ok("HTTPS://h"), ("", None));
        assert_eq!(ok("http://h?q"), ("", Some("q")));
        assert!(resource_name("*").is_err());
        assert!(resource_name("h:443").is_err());
        assert!(resource_name("ws://h/").is_err());
    }

    #[test]
    fn repeated_key_or_version() {
        let head =
            format!("GET / HTTP/1.1\r\n{BASE}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        assert_eq!(
            parse(head.as_bytes()).unwrap_err(),
            HandshakeError::MissingKey
        );
        let head = format!("GET / HTTP/1.1\r\n{BASE}Sec-WebSocket-Version: 13\r\n\r\n");
        assert_eq!(
            parse(head.as_bytes()).unwrap_err(),
            HandshakeError::UnsupportedVersion
        );
    }

    #[test]
    fn accept_validation() {
        let req = request("Sec-WebSocket-Protocol: a, b\r\n");
        assert_eq!(Accept::new().protocol("b").validate(&req), Ok(()));
        assert_eq!(
            Accept::new().protocol("B").validate(&req),
            Err(UsageError::ProtocolNotOffered("B".into()))
        );
        for (n, v) in [("X", "a\r\nb: c"), ("X Y", "v"), ("", "v"), ("X", "\0")] {
            assert_eq!(
                Accept::new().header(n, v).validate(&req),
                Err(UsageError::InvalidHeader)
            );
        }
    }

    /// RFC 8441: an HTTP/2 extended CONNECT is a WebSocket request without key or Upgrade;
    /// another method, or a CONNECT for another protocol, is not.
    #[test]
    fn extended_connect_8441() {
        let fields = |protocol: &'static [u8]| -> [(&'static str, &'static [u8]); 3] {
            [
                (":protocol", protocol),
                (":authority", b"h:443"),
                ("sec-websocket-version", b"13"),
            ]
        };
        let req = Request::from_head("CONNECT", "/p?q", HttpVersion::Http2, fields(b"websocket"))
            .unwrap();
        assert_eq!(
            (req.host(), req.path(), req.query()),
            ("h:443", "/p", Some("q"))
        );
        assert_eq!((req.key(), req.version()), (None, HttpVersion::Http2));
        let err = |method, protocol| {
            Request::from_head(method, "/", HttpVersion::Http2, fields(protocol)).unwrap_err()
        };
        assert_eq!(err("GET", b"websocket"), HandshakeError::MethodNotConnect);
        assert_eq!(err("CONNECT", b"h2c"), HandshakeError::MissingProtocol);
        assert_eq!(HandshakeError::MethodNotConnect.http_status(), 405);
        let no_version = [(":protocol", &b"websocket"[..]), (":authority", b"h")];
        assert_eq!(
            Request::from_head("CONNECT", "/", HttpVersion::Http2, no_version).unwrap_err(),
            HandshakeError::UnsupportedVersion
        );
        // HTTP/1.1 through the same constructor: the §4.2.1 checks, key included.
        let upgrade = [
            ("Host", &b"h"[..]),
            ("Upgrade", b"websocket"),
            ("Connection", b"upgrade"),
            ("Sec-WebSocket-Version", b"13"),
        ];
        assert_eq!(
            Request::from_head("GET", "/", HttpVersion::Http11, upgrade).unwrap_err(),
            HandshakeError::MissingKey
        );
    }

    #[test]
    fn every_error_status_has_a_well_formed_response() {
        for status in 400..=599 {
            let mut out = Vec::new();
            reject_response(status, &[], b"", &mut out).unwrap();
            let mut fields = [httparse::EMPTY_HEADER; 4];
            let mut resp = httparse::Response::new(&mut fields);
            assert!(resp.parse(&out).unwrap().is_complete());
            assert_eq!(resp.code, Some(status));
        }
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(426), "Upgrade Required");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(499), "");
    }
}
