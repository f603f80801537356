//! Conversions to and from the [`http`] crate (1.x), for servers and clients built on an
//! HTTP stack (feature `http`; no hyper, no tokio).
//!
//! Server side, the one mapping from a parsed HTTP head to the core's checks lives here, and
//! the hyper and axum layers use it:
//!
//! 1. [`request`] validates a head an HTTP server parsed (`http::request::Parts`, or method,
//!    URI, version and headers with [`request_from_head`]): an HTTP/1.1 `GET` upgrade (RFC 6455
//!    §4.2.1) or an HTTP/2 extended `CONNECT` (RFC 8441). Its errors are the core's
//!    [`HandshakeError`]s; [`error_response`] is the answer to send for one (400, 405 with
//!    `Allow`, 426 with `Sec-WebSocket-Version: 13`, 505).
//! 2. [`accept`] settles the answer ([`Negotiated`]: the subprotocol the [`Accept`] names,
//!    permessage-deflate from [`Config::deflate`]) and returns the response head to send (101
//!    with `Sec-WebSocket-Accept`, or 200 over HTTP/2) and a [`Connection`] already OPEN with
//!    what was negotiated. Drive it over the upgraded transport with any adapter
//!    (`hybi::tokio::WebSocketStream::with_read_buf`, `hybi::blocking::WebSocket::with_read_buf`),
//!    handing it first the bytes the server read past the request head.
//!
//! HTTP/2's `:protocol` pseudo-header is not in the `http` crate (hyper and h2 keep it in a
//! request extension of their own), so [`request`] takes its value as an argument.
//!
//! Client side, [`client_request`] makes a [`ClientRequest`] from an `http::Request<()>` (its
//! URI, subprotocols, extensions, `Origin` and every other header, such as `Authorization` and
//! `Cookie`), and [`client_response`] gives the server's validated 101 as an `http::Response<()>`.
//! For a client whose HTTP stack sends the request (an HTTP/2 extended `CONNECT`, RFC 8441),
//! [`handshake_request`] is the head to send for a [`ClientHandshake`] and [`finish_handshake`]
//! checks the answer's head and opens the connection.
//!
//! ```
//! use hybi::{Accept, Config, DeflateConfig, State};
//! let request = ::http::Request::get("/chat")
//!     .header("host", "example.com")
//!     .header("upgrade", "websocket")
//!     .header("connection", "upgrade")
//!     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .header("sec-websocket-version", "13")
//!     .header("sec-websocket-protocol", "chat, superchat")
//!     .header("sec-websocket-extensions", "permessage-deflate")
//!     .body(())?;
//! let (parts, ()) = request.into_parts();
//! let request = hybi::http::request(&parts, None)?;
//! assert_eq!(request.protocols(), ["chat", "superchat"]);
//!
//! let config = Config::default().with_deflate(DeflateConfig::default());
//! let (response, conn) =
//!     hybi::http::accept::<()>(&request, Accept::new().protocol("chat"), config)?;
//! assert_eq!(response.status(), 101);
//! assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! assert_eq!(response.headers()["sec-websocket-extensions"], "permessage-deflate");
//! assert_eq!((conn.state(), conn.protocol()), (State::Open, Some("chat")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ::http::header::{self, HeaderName, HeaderValue};
use ::http::{HeaderMap, Method, StatusCode, Uri, Version};

use crate::config::Config;
use crate::conn::{ClientHandshake, Connection, Negotiated};
use crate::error::UsageError;
use crate::handshake::{
    is_connection_specific, split_list, Accept, ClientRequest, HandshakeError, HttpVersion, Reject,
    Request, Response,
};

/// Validates the head of an upgrade request that an HTTP server parsed, with the core's checks
/// ([`Request::from_head`]): over HTTP/1.1 a `GET` with `Host`, `Upgrade: websocket`,
/// `Connection: upgrade`, a valid `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`; over
/// HTTP/2 (and HTTP/3, RFC 9220) an extended `CONNECT` whose `:protocol` is `websocket`, with
/// `Sec-WebSocket-Version: 13`.
///
/// `protocol` is the value of HTTP/2's `:protocol` pseudo-header (hyper's
/// `hyper::ext::Protocol` extension, h2's `h2::ext::Protocol`); it is not looked at over
/// HTTP/1.1. The request target is the URI's path and query; over HTTP/2 its authority is the
/// `:authority`.
///
/// Over HTTP/2 a `CONNECT` without `:protocol` (`protocol` is `None`), or with another
/// protocol, is not a WebSocket ([`HandshakeError::MissingProtocol`], answered with 400), and a
/// `Sec-WebSocket-Key` is ignored: RFC 8441 §5 drops the key and `Sec-WebSocket-Accept`, so
/// there is nothing to check it against.
///
/// # Errors
///
/// The core's [`HandshakeError`]s ([`Request::from_head`]), and
/// [`HandshakeError::UnsupportedHttpVersion`] for an HTTP/1.0 (or 0.9) `GET`.
/// [`error_response`] is the answer for each.
pub fn request(
    parts: &::http::request::Parts,
    protocol: Option<&str>,
) -> Result<Request, HandshakeError> {
    request_from_head(
        &parts.method,
        &parts.uri,
        parts.version,
        &parts.headers,
        protocol,
    )
}

/// [`request`] from the pieces of a head: method, URI, version and header fields.
///
/// # Errors
///
/// Those of [`request`].
pub fn request_from_head(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
    protocol: Option<&str>,
) -> Result<Request, HandshakeError> {
    let version = match version {
        Version::HTTP_11 => HttpVersion::Http11,
        // RFC 9220 bootstraps WebSockets over HTTP/3 exactly as RFC 8441 does over HTTP/2.
        Version::HTTP_2 | Version::HTTP_3 => HttpVersion::Http2,
        // §4.2.1 item 1, in its order: the method, then the version.
        _ if method != Method::GET => return Err(HandshakeError::MethodNotGet),
        _ => return Err(HandshakeError::UnsupportedHttpVersion),
    };
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let pseudo = match version {
        HttpVersion::Http2 => [
            protocol.map(|p| (":protocol", p.as_bytes())),
            uri.authority()
                .map(|a| (":authority", a.as_str().as_bytes())),
        ],
        _ => [None, None],
    };
    let fields = pseudo
        .into_iter()
        .flatten()
        .chain(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    Request::from_head(method.as_str(), target, version, fields)
}

/// Accepts a validated request: settles the answer with [`Negotiated::new`] (the subprotocol
/// the [`Accept`] names, or the first offered one in [`Config::protocols`]; permessage-deflate
/// when [`Config::deflate`] is set and the client offered it), and returns the response head to
/// send ([`response`]) and a server [`Connection`] that is OPEN with what was negotiated
/// ([`Connection::accepted`]).
///
/// The response's body type `B` is any that has an empty default (`()`, `String`, hyper's
/// `Empty`/`Full`, axum's `Body`).
///
/// # Errors
///
/// Those of [`Negotiated::new`]: a subprotocol the client did not offer, an extra header that
/// cannot be sent.
pub fn accept<B: Default>(
    request: &Request,
    accept: Accept,
    config: Config,
) -> Result<(::http::Response<B>, Connection), UsageError> {
    let negotiated = Negotiated::new(request, accept, &config)?;
    let response = response(&negotiated);
    Ok((response, Connection::accepted(config, &negotiated)))
}

/// The response head for a settled answer: status 101 (Switching Protocols) over HTTP/1.1, 200
/// over HTTP/2, with [`Negotiated::headers`] and an empty body.
pub fn response<B: Default>(negotiated: &Negotiated) -> ::http::Response<B> {
    let mut response = ::http::Response::new(B::default());
    *response.status_mut() = match negotiated.status() {
        101 => StatusCode::SWITCHING_PROTOCOLS,
        _ => StatusCode::OK,
    };
    // `Negotiated::new` checked the application's headers (tokens, no control characters),
    // and the rest are the handshake's own, so every field converts.
    let headers = response.headers_mut();
    for (name, value) in negotiated.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// The error response for a request that failed validation: the status, headers and body of
/// [`HandshakeError::response`] (the core's answer: 400, 405 with `Allow`, 426 with
/// `Sec-WebSocket-Version: 13`, 431, 505, with the error's message as a plain-text body),
/// without the fields an HTTP server sets itself (`Content-Length`, `Connection`).
pub fn error_response<B: From<String>>(error: &HandshakeError) -> ::http::Response<B> {
    let bytes = error.response();
    let (head, body) = from_core_response(&bytes);
    ::http::Response::from_parts(head, B::from(String::from_utf8_lossy(body).into_owned()))
}

/// The application's refusal as a response: the [`Reject`]'s status, headers and body (with
/// `Content-Type: text/plain; charset=utf-8` for a body when it names no type), as
/// [`Connection::reject`] sends it.
///
/// # Errors
///
/// [`UsageError::InvalidStatus`] unless the status is in `400..=599`;
/// [`UsageError::InvalidHeader`] for a header that cannot be sent (see
/// [`reject_response`](crate::handshake::reject_response)).
pub fn reject_response<B: From<Vec<u8>>>(
    reject: &Reject,
) -> Result<::http::Response<B>, UsageError> {
    let mut bytes = Vec::new();
    reject.encode(&mut bytes)?;
    let (head, body) = from_core_response(&bytes);
    Ok(::http::Response::from_parts(head, B::from(body.to_vec())))
}

/// A response with `status` (in `400..=599`) and `body` as plain text, framed as the core
/// frames its rejections.
#[cfg(feature = "hyper")]
pub(crate) fn plain_response<B: From<String>>(status: u16, body: String) -> ::http::Response<B> {
    let mut bytes = Vec::new();
    // Without headers, only the status can be refused; `from_core_response` answers 500 then.
    let _ = crate::handshake::reject_response(status, &[], body.as_bytes(), &mut bytes);
    let (head, _) = from_core_response(&bytes);
    ::http::Response::from_parts(head, B::from(body))
}

/// Splits a complete HTTP/1.1 response the core wrote into an `http` head and its body.
fn from_core_response(bytes: &[u8]) -> (::http::response::Parts, &[u8]) {
    let (mut head, ()) = ::http::Response::new(()).into_parts();
    // One slot per line is enough (a `Reject` may carry any number of headers).
    let lines = bytes.windows(2).filter(|w| w == b"\r\n").count();
    let mut fields = vec![httparse::EMPTY_HEADER; lines];
    let mut parsed = httparse::Response::new(&mut fields);
    let Ok(httparse::Status::Complete(len)) = parsed.parse(bytes) else {
        // The core writes whole, valid heads; nothing to convert otherwise.
        head.status = StatusCode::INTERNAL_SERVER_ERROR;
        return (head, &[]);
    };
    head.status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for field in parsed.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(field.name.as_bytes()) else {
            continue;
        };
        // The HTTP server frames the body and manages the connection.
        if name == header::CONTENT_LENGTH || name == header::CONNECTION {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(field.value) {
            head.headers.append(name, value);
        }
    }
    (head, bytes.get(len..).unwrap_or_default())
}

/// A client's opening handshake from an `http::Request<()>`: its URI (an absolute `ws://` or
/// `wss://` URL), and its header fields: `Sec-WebSocket-Protocol` as offered subprotocols,
/// `Sec-WebSocket-Extensions` as offered extensions, `Origin`, and every other field (such as
/// `Authorization` and `Cookie`) as an extra header, in order.
///
/// The fields the handshake writes itself are left out: `Upgrade`, `Connection`, and
/// `Sec-WebSocket-Key` (every connection sends a fresh key, §4.1 item 7); `Host` and
/// `Sec-WebSocket-Version` are checked against what it writes.
///
/// ```
/// let request = ::http::Request::get("ws://example.com/chat")
///     .header("authorization", "Bearer abc")
///     .header("cookie", "session=1")
///     .header("sec-websocket-protocol", "chat")
///     .body(())?;
/// let client = hybi::http::client_request(&request)?;
/// assert_eq!((client.host(), client.uri()), ("example.com", "/chat"));
/// assert_eq!(client.offered_protocols(), ["chat"]);
/// let mut head = Vec::new();
/// client.encode("dGhlIHNhbXBsZSBub25jZQ==", &mut head);
/// let head = String::from_utf8(head)?;
/// assert!(head.contains("\r\nauthorization: Bearer abc\r\ncookie: session=1\r\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// - [`HandshakeError::InvalidUrl`] for a URI that is not a WebSocket URL
///   ([`ClientRequest::new`]), or a `Host` field other than the URI's authority;
/// - [`HandshakeError::MethodNotGet`] for another method, and
///   [`HandshakeError::UnsupportedHttpVersion`] for a version other than HTTP/1.1 (the
///   client handshake is HTTP/1.1's);
/// - [`HandshakeError::UnsupportedVersion`] for a `Sec-WebSocket-Version` other than 13;
/// - [`HandshakeError::Malformed`] for a field value that is not UTF-8.
pub fn client_request(request: &::http::Request<()>) -> Result<ClientRequest, HandshakeError> {
    if request.method() != Method::GET {
        return Err(HandshakeError::MethodNotGet);
    }
    if request.version() != Version::HTTP_11 {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    let uri = request.uri();
    let mut client = ClientRequest::new(&uri.to_string())?;
    for (name, value) in request.headers() {
        let value = core::str::from_utf8(value.as_bytes())
            .map_err(|_| HandshakeError::Malformed("header value is not UTF-8"))?;
        client = match *name {
            header::UPGRADE | header::CONNECTION | header::SEC_WEBSOCKET_KEY => client,
            header::HOST => {
                let authority = uri.authority().map_or("", |a| a.as_str());
                if !value.trim_ascii().eq_ignore_ascii_case(authority) {
                    return Err(HandshakeError::InvalidUrl(
                        "Host header differs from the URL's authority",
                    ));
                }
                client
            }
            header::SEC_WEBSOCKET_VERSION if value.trim_ascii() == "13" => client,
            header::SEC_WEBSOCKET_VERSION => return Err(HandshakeError::UnsupportedVersion),
            header::SEC_WEBSOCKET_PROTOCOL => client.protocols(split_list(value, b',')),
            header::SEC_WEBSOCKET_EXTENSIONS => {
                split_list(value, b',').fold(client, |c, e| c.extension(e))
            }
            header::ORIGIN => client.origin(value),
            _ => client.header(name.as_str(), value),
        };
    }
    Ok(client)
}

impl TryFrom<::http::Request<()>> for ClientRequest {
    type Error = HandshakeError;

    /// [`client_request`].
    fn try_from(request: ::http::Request<()>) -> Result<Self, HandshakeError> {
        client_request(&request)
    }
}

/// The server's validated response to a client handshake ([`Response`], in
/// [`Event::Open`](crate::Event::Open) and from the adapters' `connect`) as an
/// `http::Response<()>`: its status (101) and header fields, in order.
pub fn client_response(response: &Response) -> ::http::Response<()> {
    let mut out = ::http::Response::new(());
    *out.status_mut() =
        StatusCode::from_u16(response.status()).unwrap_or(StatusCode::SWITCHING_PROTOCOLS);
    let headers = out.headers_mut();
    // The parser checked names (tokens) and values; a field `http` still refused would be left
    // out.
    for (name, value) in response.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    out
}

impl From<&Response> for ::http::Response<()> {
    /// [`client_response`].
    fn from(response: &Response) -> Self {
        client_response(response)
    }
}

/// The request head an HTTP stack sends for a client handshake: over HTTP/2 an extended
/// `CONNECT` (RFC 8441 §4) to the absolute URI (`https://` for `wss://`, `http://` for
/// `ws://`: the stack takes `:scheme`, `:authority` and `:path` from it) with version
/// `HTTP/2.0`; over HTTP/1.1 a `GET` of the path with `Host` and the upgrade fields. Then the
/// fields of [`ClientHandshake::headers`] (`sec-websocket-version`, `origin`, the offered
/// subprotocols and extensions, the extra headers).
///
/// HTTP/2's `:protocol: websocket` is not in the `http` crate: the stack adds it (h2's
/// `h2::ext::Protocol`, hyper's `hyper::ext::Protocol` request extension).
///
/// ```
/// use hybi::handshake::HttpVersion;
/// use hybi::{ClientHandshake, ClientRequest, Config};
/// let request = ClientRequest::new("wss://example.com:8443/chat?room=1")?.protocol("chat");
/// let handshake = ClientHandshake::new(request, Config::default(), HttpVersion::Http2);
/// let head = hybi::http::handshake_request(&handshake)?;
/// assert_eq!(head.method(), "CONNECT");
/// assert_eq!(head.uri(), "https://example.com:8443/chat?room=1");
/// assert_eq!(head.headers()["sec-websocket-protocol"], "chat");
/// assert!(head.headers().get("sec-websocket-key").is_none());
///
/// // The server's answer: 200 with the subprotocol it chose.
/// let answer = ::http::Response::builder()
///     .status(200)
///     .header("sec-websocket-protocol", "chat")
///     .body(())?;
/// let (conn, response) = hybi::http::finish_handshake(handshake, &answer.into_parts().0)?;
/// assert_eq!((conn.protocol(), response.status()), (Some("chat"), 200));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`UsageError::InvalidHeader`] for a field that cannot be sent: not a valid `http` name or
/// value, or (over HTTP/2) a connection-specific field that RFC 9113 §8.2.2 forbids
/// (`connection`, `upgrade`, `keep-alive`, `proxy-connection`, `transfer-encoding`, `te`,
/// `host`).
pub fn handshake_request(handshake: &ClientHandshake) -> Result<::http::Request<()>, UsageError> {
    let request = handshake.request();
    let h2 = handshake.method() == "CONNECT";
    let mut head = ::http::Request::new(());
    if h2 {
        let scheme = if request.is_tls() { "https" } else { "http" };
        let uri = format!("{scheme}://{}{}", request.authority(), request.uri());
        *head.uri_mut() = uri.parse().map_err(|_| UsageError::InvalidHeader)?;
        *head.method_mut() = Method::CONNECT;
        *head.version_mut() = Version::HTTP_2;
    } else {
        *head.uri_mut() = request
            .uri()
            .parse()
            .map_err(|_| UsageError::InvalidHeader)?;
        let host =
            HeaderValue::from_str(&request.authority()).map_err(|_| UsageError::InvalidHeader)?;
        head.headers_mut().insert(header::HOST, host);
    }
    let headers = head.headers_mut();
    for (name, value) in handshake.headers() {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| UsageError::InvalidHeader)?;
        if h2 && is_connection_specific(name.as_str()) {
            return Err(UsageError::InvalidHeader);
        }
        let value = HeaderValue::from_str(&value).map_err(|_| UsageError::InvalidHeader)?;
        headers.append(name, value);
    }
    Ok(head)
}

/// Checks the server's answer to [`handshake_request`] ([`ClientHandshake::finish`]: 101
/// with the upgrade fields over HTTP/1.1, a 2xx over HTTP/2; a subprotocol and extensions that
/// were offered) and returns the client [`Connection`], OPEN with what was negotiated, and the
/// validated [`Response`].
///
/// # Errors
///
/// Those of [`ClientHandshake::finish`]: [`HandshakeError::UnexpectedStatus`] (or
/// [`HandshakeError::Redirect`]) for another status, [`HandshakeError::UnofferedProtocol`],
/// [`HandshakeError::UnofferedExtension`], [`HandshakeError::Extension`], ...
pub fn finish_handshake(
    handshake: ClientHandshake,
    answer: &::http::response::Parts,
) -> Result<(Connection, Response), HandshakeError> {
    let fields = answer
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    handshake.finish(answer.status.as_u16(), fields)
}
