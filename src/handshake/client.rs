//! The client side of the opening handshake: the URL (RFC 6455 §3), the request (§4.1), and the
//! checks on the server's response (§4.1, second list).

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use super::server::{check_headers, HttpVersion};
use super::HandshakeError;
use super::{
    accept_key_bytes, collect_headers, extension_name, has_token, head_window, incomplete,
    is_field_value, is_token, offer_name, parse_error, put_header, put_list_header, split_list,
    with_header_slots, Headers,
};
use crate::error::UsageError;
use crate::frame::Status;

/// The client's opening handshake request, built from a `ws://` or `wss://` URL (§3, §4.1).
///
/// ```
/// use hybi::ClientRequest;
///
/// let req = ClientRequest::new("wss://[::1]:8443/chat?room=1")?
///     .origin("http://example.com")
///     .protocols(["chat", "superchat"]);
/// assert!(req.is_tls());
/// assert_eq!((req.host(), req.port(), req.uri()), ("::1", 8443, "/chat?room=1"));
/// req.validate()?;
///
/// let mut out = Vec::new();
/// req.encode("dGhlIHNhbXBsZSBub25jZQ==", &mut out);
/// assert!(out.starts_with(b"GET /chat?room=1 HTTP/1.1\r\nHost: [::1]:8443\r\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    tls: bool,
    host: String,
    ipv6: bool,
    port: u16,
    uri: String,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// Parses a WebSocket URL (§3): scheme `ws` or `wss` (any case), a host (registered name,
    /// IPv4 address, or IPv6 address in brackets), an optional port (default 80 for `ws`, 443 for
    /// `wss`), a path (default `/`) and an optional query.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidUrl`] for another scheme, a fragment (`#`, §3), userinfo
    /// (`user@`), an empty host, an invalid IPv6 address or port (0 included), or a character that
    /// RFC 3986 does not allow in the host, path or query (percent-encode it instead).
    pub fn new(url: &str) -> Result<Self, HandshakeError> {
        use HandshakeError::InvalidUrl;

        let (scheme, rest) = url
            .split_once("://")
            .ok_or(InvalidUrl("missing ws:// or wss://"))?;
        let tls = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(InvalidUrl("scheme is not ws or wss"));
        };
        // §3: "Fragment identifiers ... MUST NOT be used on these URIs".
        if rest.contains('#') {
            return Err(InvalidUrl("fragment in a WebSocket URL"));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(InvalidUrl("userinfo in a WebSocket URL"));
        }

        // RFC 3986 §3.2.2: IP-literal / IPv4address / reg-name, then §3.2.3 [ ":" port ].
        let (host, ipv6, port) = if let Some(literal) = authority.strip_prefix('[') {
            let (address, after) = literal
                .split_once(']')
                .ok_or(InvalidUrl("unclosed IPv6 address"))?;
            if address.parse::<core::net::Ipv6Addr>().is_err() {
                return Err(InvalidUrl("invalid IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(InvalidUrl("invalid port"))?),
            };
            (address, true, port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if !is_reg_name(host) {
                return Err(InvalidUrl("invalid host"));
            }
            (host, false, port)
        };
        if host.is_empty() {
            return Err(InvalidUrl("empty host"));
        }
        let default_port = if tls { 443 } else { 80 };
        let port = match port {
            // RFC 3986 §3.2.3: an empty port is the default.
            None | Some("") => default_port,
            Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => return Err(InvalidUrl("invalid port")),
                    Ok(port) => port,
                }
            }
            Some(_) => return Err(InvalidUrl("invalid port")),
        };

        // §3: path-abempty [ "?" query ]; the resource name is "/" for an empty path, and has
        // "?" only for a non-empty query.
        let (path, query) = match resource.split_once('?') {
            Some((path, query)) => (path, query),
            None => (resource, ""),
        };
        if !is_uri_part(path, b":@/") {
            return Err(InvalidUrl("invalid character in the path"));
        }
        if !is_uri_part(query, b":@/?") {
            return Err(InvalidUrl("invalid character in the query"));
        }
        let mut uri = String::with_capacity(1 + path.len() + 1 + query.len());
        uri.push_str(if path.is_empty() { "/" } else { path });
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }

        Ok(Self {
            tls,
            host: host.to_owned(),
            ipv6,
            port,
            uri,
            origin: None,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
        })
    }

    /// Sets the `Origin` header (§4.1 item 8), e.g. `"http://example.com"`.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers one more subprotocol (§4.1 item 10); offers are sent in call order, most preferred
    /// first.
    #[must_use]
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Offers several more subprotocols, in order (§4.1 item 10).
    #[must_use]
    pub fn protocols<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.protocols.extend(names.into_iter().map(Into::into));
        self
    }

    /// Offers one more extension, as a raw element of `Sec-WebSocket-Extensions` (§9.1), e.g.
    /// `"permessage-deflate; client_max_window_bits"`.
    #[must_use]
    pub fn extension(mut self, offer: impl Into<String>) -> Self {
        self.extensions.push(offer.into());
        self
    }

    /// Adds an extra request header, e.g. `Authorization` (§4.1 item 12).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether the URL was `wss://` (the /secure/ flag of §3).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host, without brackets for an IPv6 address: the name to resolve and the TLS server
    /// name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port: the URL's, or 80 for `ws` and 443 for `wss`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The resource name (§3): path and query, e.g. `"/chat?x=1"`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The URL this request is for, normalized: lowercase scheme and host, brackets around an
    /// IPv6 address, the port only when it is not the scheme's default, `/` for an empty path.
    ///
    /// ```
    /// use hybi::ClientRequest;
    /// let req = ClientRequest::new("WS://[::1]:80?x=1")?;
    /// assert_eq!(req.url(), "ws://[::1]/?x=1");
    /// let req = ClientRequest::new("wss://Example.COM:8443/Chat")?;
    /// assert_eq!(req.url(), "wss://example.com:8443/Chat");
    /// # Ok::<(), hybi::HandshakeError>(())
    /// ```
    pub fn url(&self) -> String {
        let mut url = String::with_capacity(self.host.len() + self.uri.len() + 16);
        url.push_str(if self.tls { "wss://" } else { "ws://" });
        if self.ipv6 {
            url.push('[');
        }
        url.extend(self.host.chars().map(|c| c.to_ascii_lowercase()));
        if self.ipv6 {
            url.push(']');
        }
        if self.port != if self.tls { 443 } else { 80 } {
            // Writing to a String cannot fail.
            let _ = write!(url, ":{}", self.port);
        }
        url.push_str(&self.uri);
        url
    }

    /// The same request (Origin, subprotocols, extensions, extra headers) for another URL: the
    /// next hop of a redirect.
    #[cfg(any(feature = "blocking", feature = "tokio"))]
    pub(crate) fn redirected(&self, url: &str) -> Result<Self, HandshakeError> {
        let target = Self::new(url)?;
        Ok(Self {
            tls: target.tls,
            host: target.host,
            ipv6: target.ipv6,
            port: target.port,
            uri: target.uri,
            ..self.clone()
        })
    }

    /// The offered subprotocols, in order.
    pub fn offered_protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The offered extensions, in order, as given.
    pub fn offered_extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Checks what the application added.
    ///
    /// # Errors
    ///
    /// [`UsageError::InvalidHeader`] if an extra header name is not an HTTP token, a header,
    /// `Origin` or extension value contains a control character (CR, LF, NUL, ...), or a
    /// subprotocol is not a token (§4.1 item 10).
    pub fn validate(&self) -> Result<(), UsageError> {
        let origin_ok = self.origin.as_deref().is_none_or(is_field_value);
        let protocols_ok = self.protocols.iter().all(|p| is_token(p));
        let extensions_ok = self.extensions.iter().all(|e| is_field_value(e));
        if !(origin_ok && protocols_ok && extensions_ok) {
            return Err(UsageError::InvalidHeader);
        }
        check_headers(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    /// Appends the request head (§4.1 items 1-12) with `key` as `Sec-WebSocket-Key` (see
    /// [`encode_key`](super::encode_key)).
    ///
    /// `Host` carries `:port` only when it is not the scheme's default (§4.1 item 4). Does not
    /// validate: call [`validate`](Self::validate) first.
    pub fn encode(&self, key: &str, dst: &mut Vec<u8>) {
        dst.extend_from_slice(b"GET ");
        dst.extend_from_slice(self.uri.as_bytes());
        dst.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        dst.extend_from_slice(self.authority().as_bytes());
        dst.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
        put_header(dst, "Sec-WebSocket-Key", key.as_bytes());
        dst.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
        if let Some(origin) = &self.origin {
            put_header(dst, "Origin", origin.as_bytes());
        }
        put_list_header(dst, "Sec-WebSocket-Protocol", &self.protocols);
        put_list_header(dst, "Sec-WebSocket-Extensions", &self.extensions);
        for (name, value) in &self.headers {
            put_header(dst, name, value.as_bytes());
        }
        dst.extend_from_slice(b"\r\n");
    }
}

impl ClientRequest {
    /// The header fields an HTTP stack sends for this request (besides the request line or
    /// pseudo-header fields and `Host`): over HTTP/1.1 `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Key` (`key`) and `Sec-WebSocket-Version`; over HTTP/2 (lowercase names,
    /// RFC 8441 §5) `sec-websocket-version` only; then `Origin`, the offered subprotocols and
    /// extensions, and the extra headers.
    pub(crate) fn fields(&self, version: HttpVersion, key: Option<&str>) -> Vec<(String, String)> {
        let h2 = version == HttpVersion::Http2;
        let name = |n: &str| {
            if h2 {
                n.to_ascii_lowercase()
            } else {
                n.to_owned()
            }
        };
        let mut out = Vec::new();
        if let (false, Some(key)) = (h2, key) {
            out.push(("Upgrade".to_owned(), "websocket".to_owned()));
            out.push(("Connection".to_owned(), "Upgrade".to_owned()));
            out.push(("Sec-WebSocket-Key".to_owned(), key.to_owned()));
        }
        out.push((name("Sec-WebSocket-Version"), "13".to_owned()));
        if let Some(origin) = &self.origin {
            out.push((name("Origin"), origin.clone()));
        }
        if !self.protocols.is_empty() {
            out.push((name("Sec-WebSocket-Protocol"), self.protocols.join(", ")));
        }
        if !self.extensions.is_empty() {
            out.push((name("Sec-WebSocket-Extensions"), self.extensions.join(", ")));
        }
        for (n, v) in &self.headers {
            out.push((name(n), v.clone()));
        }
        out
    }

    /// The `Host` / `:authority` value: the host (bracketed when IPv6), with `:port` unless it
    /// is the scheme's default (§4.1 item 4).
    pub fn authority(&self) -> String {
        let mut s = String::new();
        if self.ipv6 {
            s.push('[');
        }
        s.push_str(&self.host);
        if self.ipv6 {
            s.push(']');
        }
        if self.port != if self.tls { 443 } else { 80 } {
            let _ = write!(s, ":{}", self.port);
        }
        s
    }
}

/// `unreserved` / `sub-delims` of RFC 3986 §2.
/// Whether `name` is a connection-specific field, which an HTTP/2 request must not carry
/// (RFC 9113 §8.2.2: `Connection` and the fields it names, `Keep-Alive`, `Proxy-Connection`,
/// `Transfer-Encoding`, `Upgrade`; `TE` other than `trailers`, which a handshake never needs;
/// `Host` gives way to `:authority`). An HTTP stack sending [`ClientRequest`]'s fields over
/// HTTP/2 refuses these.
#[cfg(feature = "http")]
pub(crate) fn is_connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "host",
    ]
    .iter()
    .any(|f| name.eq_ignore_ascii_case(f))
}

fn is_unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// Whether every `%` starts a `pct-encoded` triplet and every other byte is unreserved, a
/// sub-delim, or in `extra` (RFC 3986 §2.1, §2.2, §2.3).
fn is_pct_text(s: &str, extra: &[u8]) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if is_unreserved_or_sub_delim(b) || extra.contains(&b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// `reg-name` of RFC 3986 §3.2.2 (an IPv4 address is one too).
fn is_reg_name(s: &str) -> bool {
    is_pct_text(s, b"")
}

/// `*( pchar / extra )` of RFC 3986 §3.3 and §3.4 (`pchar` adds `:` and `@` to unreserved,
/// sub-delims and pct-encoded).
fn is_uri_part(s: &str, extra: &[u8]) -> bool {
    is_pct_text(s, extra)
}

/// The server's validated `101 Switching Protocols` response (§4.1, §4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    protocol: Option<String>,
    extensions: Vec<String>,
    headers: Headers,
}

impl Response {
    /// Parses and validates the response head at the start of `buf`, for the request `req` sent
    /// with `key`.
    ///
    /// Partial input and the limits behave as in [`Request::parse`](super::Request::parse):
    /// `Ok(Status::Complete((response, head_len)))` leaves the bytes after the head (the server's
    /// first frames) to the caller.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::HeadTooLarge`], [`HandshakeError::TooManyHeaders`] and
    /// [`HandshakeError::Malformed`] as for requests; then the checks of §4.1, in its order:
    /// [`HandshakeError::Redirect`] (301, 302, 303, 307 or 308 with a `Location`),
    /// [`HandshakeError::UnexpectedStatus`] (any other status but 101),
    /// [`HandshakeError::MissingUpgrade`] (no
    /// `websocket` token in `Upgrade`), [`HandshakeError::MissingConnectionUpgrade`],
    /// [`HandshakeError::MissingAccept`], [`HandshakeError::AcceptMismatch`] (also for a repeated
    /// `Sec-WebSocket-Accept`), [`HandshakeError::UnofferedProtocol`] (a subprotocol that was not
    /// offered, or anything but one token), [`HandshakeError::UnofferedExtension`] (an extension
    /// whose name no offer has). An extension answer that breaks the §9.1 grammar is
    /// [`HandshakeError::Malformed`].
    pub fn parse(
        buf: &[u8],
        req: &ClientRequest,
        key: &str,
        max_header_bytes: usize,
        max_headers: usize,
    ) -> Result<Status<(Self, usize)>, HandshakeError> {
        let window = head_window(buf, max_header_bytes);
        let parsed = with_header_slots(window.len(), max_headers, |slots| {
            let mut res = httparse::Response::new(slots);
            let head_len = match res.parse(window)? {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => return Ok(None),
            };
            let Some(status) = res.code else {
                return Ok(Some(Err(HandshakeError::Malformed(
                    "incomplete status line",
                ))));
            };
            let headers = collect_headers(&window[..head_len], res.headers, max_headers);
            Ok(Some(headers.map(|h| (status, h, head_len))))
        });
        let (status, headers, head_len) = match parsed {
            Ok(Some(result)) => result?,
            Ok(None) => return incomplete(buf, max_header_bytes),
            Err(e) => return Err(parse_error(e, max_headers)),
        };

        let response = Self::validate(status, HttpVersion::Http11, headers, req, Some(key))?;
        Ok(Status::Complete((response, head_len)))
    }

    /// Validates a response whose head an HTTP stack already parsed (hyper, h2): the status and
    /// the header fields, for the request `req` (sent with `key` over HTTP/1.1; HTTP/2 has no
    /// key). Over HTTP/1.1 the checks of [`parse`](Self::parse); over HTTP/2 (RFC 8441 §5) a
    /// 2xx status accepts the extended CONNECT, and there is no `Upgrade`, `Connection` or
    /// `Sec-WebSocket-Accept` to check; the subprotocol and extension checks are the same.
    ///
    /// ```
    /// use hybi::handshake::HttpVersion;
    /// use hybi::{ClientRequest, Response};
    /// let req = ClientRequest::new("wss://example.com/chat")?.protocol("chat");
    /// let fields: [(&str, &[u8]); 1] = [("sec-websocket-protocol", b"chat")];
    /// let response = Response::from_head(200, HttpVersion::Http2, fields, &req, None)?;
    /// assert_eq!(response.protocol(), Some("chat"));
    /// # Ok::<(), hybi::HandshakeError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`parse`](Self::parse) but the limits.
    pub fn from_head<'a>(
        status: u16,
        version: HttpVersion,
        fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        req: &ClientRequest,
        key: Option<&str>,
    ) -> Result<Self, HandshakeError> {
        let (headers, _) = Headers::from_fields(&[], fields);
        Self::validate(status, version, headers, req, key)
    }

    /// The checks of §4.1 (and RFC 8441 §5 over HTTP/2) on a complete head.
    fn validate(
        status: u16,
        version: HttpVersion,
        headers: Headers,
        req: &ClientRequest,
        key: Option<&str>,
    ) -> Result<Self, HandshakeError> {
        // §4.1 response checks 1-3. "If the status code received from the server is not 101,
        // the client handles the response per HTTP procedures": a redirect with a Location is
        // reported as such, for the caller to follow.
        let accepted = match version {
            HttpVersion::Http11 => status == 101,
            HttpVersion::Http2 => (200..300).contains(&status),
        };
        if !accepted {
            if let (301 | 302 | 303 | 307 | 308, Some(location)) = (status, headers.get("location"))
            {
                return Err(HandshakeError::Redirect {
                    status,
                    location: String::from_utf8_lossy(location).into_owned(),
                });
            }
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        if version == HttpVersion::Http11 {
            if !has_token(&headers, "upgrade", "websocket") {
                return Err(HandshakeError::MissingUpgrade);
            }
            if !has_token(&headers, "connection", "upgrade") {
                return Err(HandshakeError::MissingConnectionUpgrade);
            }

            // Check 4: exactly one Sec-WebSocket-Accept, equal to the expected value "ignoring
            // any leading and trailing whitespace".
            let (accept, repeated) = headers.first_and_repeated("sec-websocket-accept");
            let accept = accept.ok_or(HandshakeError::MissingAccept)?;
            let expected = accept_key_bytes(key.unwrap_or_default().trim_ascii().as_bytes());
            if repeated || accept.trim_ascii() != expected {
                return Err(HandshakeError::AcceptMismatch);
            }
        }

        // Check 6: at most one subprotocol, one that was offered (§4.2.2 /subprotocol/: a single
        // token; the empty string is not a legal value).
        let mut protocol = None;
        let values: Vec<&[u8]> = headers.all("sec-websocket-protocol").collect();
        if !values.is_empty() {
            let joined = values.join(&b", "[..]);
            let text = core::str::from_utf8(&joined).unwrap_or("");
            let mut elements = split_list(text, b',');
            let chosen = match (elements.next(), elements.next()) {
                (Some(p), None) => req.offered_protocols().iter().find(|offered| *offered == p),
                _ => None,
            };
            match chosen {
                Some(p) => protocol = Some(p.clone()),
                None => {
                    return Err(HandshakeError::UnofferedProtocol(
                        String::from_utf8_lossy(&joined).into_owned(),
                    ))
                }
            }
        }

        // Check 5: every extension in use was offered (§9.1 grammar).
        let mut extensions = Vec::new();
        for value in headers.all("sec-websocket-extensions") {
            let value = core::str::from_utf8(value)
                .map_err(|_| HandshakeError::Malformed("invalid Sec-WebSocket-Extensions"))?;
            for element in split_list(value, b',') {
                let name = extension_name(element).ok_or(HandshakeError::Malformed(
                    "invalid Sec-WebSocket-Extensions",
                ))?;
                let offered = req
                    .offered_extensions()
                    .iter()
                    .flat_map(|offer| split_list(offer, b','))
                    .any(|offer| offer_name(offer).eq_ignore_ascii_case(name));
                if !offered {
                    return Err(HandshakeError::UnofferedExtension(String::from(name)));
                }
                extensions.push(String::from(element));
            }
        }

        Ok(Self {
            status,
            protocol,
            extensions,
            headers,
        })
    }

    /// The status code: 101 over HTTP/1.1, a 2xx (200) over HTTP/2.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The subprotocol in use (§4.1 "Subprotocol In Use"), if the server chose one.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The extension elements in use, in the server's order (§4.1 "Extensions In Use", §9.1).
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The first value of the header field `name` (ASCII case-insensitive), as sent.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    /// All header fields, in the order sent, with names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter()
    }
}
