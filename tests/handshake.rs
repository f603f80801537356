//! The opening handshake (RFC 6455 §1.3, §3, §4, §9.1) through the public API.

use hybi::frame::Status;
use hybi::handshake::{accept_key, encode_key, reject_response, GUID};
use hybi::{Accept, ClientRequest, HandshakeError, Request, Response, UsageError};
use proptest::prelude::*;

const MAX_BYTES: usize = 8192;
const MAX_HEADERS: usize = 64;

/// The client handshake of RFC 6455 §1.2 (and §1.3's key).
const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// The server handshake of RFC 6455 §1.2.
const RFC_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n";

const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A §5.7 frame ("Hello", unmasked) pipelined after a head.
const FRAME: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];

fn parse_req(buf: &[u8]) -> Result<Status<(Request, usize)>, HandshakeError> {
    Request::parse(buf, MAX_BYTES, MAX_HEADERS)
}

fn complete_req(buf: &[u8]) -> (Request, usize) {
    match parse_req(buf) {
        Ok(Status::Complete(done)) => done,
        other => panic!("expected a complete request, got {other:?}"),
    }
}

fn req_err(buf: &[u8]) -> HandshakeError {
    match parse_req(buf) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A valid request with `replace` swapped for `with` (to break one thing at a time).
fn rfc_request_with(replace: &str, with: &str) -> Vec<u8> {
    let text = std::str::from_utf8(RFC_REQUEST).unwrap();
    assert!(text.contains(replace), "{replace:?}");
    text.replacen(replace, with, 1).into_bytes()
}

fn rfc_client() -> ClientRequest {
    ClientRequest::new("ws://server.example.com/chat")
        .unwrap()
        .origin("http://example.com")
        .protocols(["chat", "superchat"])
}

fn parse_resp(
    buf: &[u8],
    client: &ClientRequest,
) -> Result<Status<(Response, usize)>, HandshakeError> {
    Response::parse(buf, client, RFC_KEY, MAX_BYTES, MAX_HEADERS)
}

fn resp_err(buf: &[u8], client: &ClientRequest) -> HandshakeError {
    match parse_resp(buf, client) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn rfc_response_with(replace: &str, with: &str) -> Vec<u8> {
    let text = std::str::from_utf8(RFC_RESPONSE).unwrap();
    assert!(text.contains(replace), "{replace:?}");
    text.replacen(replace, with, 1).into_bytes()
}

fn encoded(client: &ClientRequest, key: &str) -> String {
    let mut out = Vec::new();
    client.encode(key, &mut out);
    String::from_utf8(out).unwrap()
}

// ---------------------------------------------------------------------------------------------
// §1.3 / §4.2.2 vector and keys

#[test]
fn accept_key_vector_1_3() {
    assert_eq!(GUID, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    assert_eq!(
        accept_key(RFC_KEY.as_bytes()),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn encode_key_4_1_item_7() {
    let nonce: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
    assert_eq!(encode_key(&nonce), "AQIDBAUGBwgJCgsMDQ4PEA==");
    assert_eq!(encode_key(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA==");
}

// ---------------------------------------------------------------------------------------------
// Server: §4.2.1

#[test]
fn rfc_example_request_1_2() {
    let (req, used) = complete_req(RFC_REQUEST);
    assert_eq!(used, RFC_REQUEST.len());
    assert_eq!(req.method(), "GET");
    assert_eq!(req.uri(), "/chat");
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), None);
    assert_eq!(req.host(), "server.example.com");
    assert_eq!(req.origin(), Some("http://example.com"));
    assert_eq!(req.key(), Some(RFC_KEY));
    assert_eq!(req.protocols(), ["chat", "superchat"]);
    assert!(req.extensions().is_empty());
    assert_eq!(req.header("SEC-websocket-version"), Some(&b"13"[..]));
    assert_eq!(req.header("cookie"), None);
    let names: Vec<&str> = req.headers().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "Host",
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "Origin",
            "Sec-WebSocket-Protocol",
            "Sec-WebSocket-Version"
        ]
    );
}

#[test]
fn rfc_example_response_1_2_encoded() {
    let (req, _) = complete_req(RFC_REQUEST);
    let accept = Accept::new().protocol("chat");
    assert_eq!(accept.selected_protocol(), Some("chat"));
    accept.validate(&req).unwrap();
    let mut out = b"prefix".to_vec();
    accept.encode(&req, &mut out);
    assert_eq!(&out[..6], b"prefix", "encode appends");
    assert_eq!(&out[6..], RFC_RESPONSE);
}

#[test]
fn accept_without_protocol_and_with_headers() {
    let (req, _) = complete_req(RFC_REQUEST);
    let accept = Accept::new().header("Set-Cookie", "a=b").header("X-Y", "z");
    accept.validate(&req).unwrap();
    let mut out = Vec::new();
    accept.encode(&req, &mut out);
    assert_eq!(
        out,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSet-Cookie: a=b\r\nX-Y: z\r\n\r\n"
    );
}

#[test]
fn accept_validate_errors() {
    let (req, _) = complete_req(RFC_REQUEST);
    assert_eq!(
        Accept::new().protocol("other").validate(&req),
        Err(UsageError::ProtocolNotOffered("other".into()))
    );
    // Subprotocols compare exactly (§4.2.2 /subprotocol/ is a value taken from the request).
    assert_eq!(
        Accept::new().protocol("Chat").validate(&req),
        Err(UsageError::ProtocolNotOffered("Chat".into()))
    );
    assert_eq!(
        Accept::new().header("Bad Name", "v").validate(&req),
        Err(UsageError::InvalidHeader)
    );
    assert_eq!(
        Accept::new().header("X", "v\r\nInjected: 1").validate(&req),
        Err(UsageError::InvalidHeader)
    );
    assert_eq!(
        Accept::new().header("X", "v\0").validate(&req),
        Err(UsageError::InvalidHeader)
    );
}

#[test]
fn head_len_excludes_pipelined_frames() {
    let mut buf = RFC_REQUEST.to_vec();
    buf.extend_from_slice(FRAME);
    let (req, used) = complete_req(&buf);
    assert_eq!(used, RFC_REQUEST.len());
    assert_eq!(&buf[used..], FRAME);
    assert_eq!(req, complete_req(RFC_REQUEST).0);
}

#[test]
fn request_partial_at_every_prefix() {
    for len in 0..RFC_REQUEST.len() {
        match parse_req(&RFC_REQUEST[..len]) {
            Ok(Status::Partial { needed }) => {
                assert!(
                    needed >= 1 && len + needed <= RFC_REQUEST.len(),
                    "len {len}"
                )
            }
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn request_path_and_query() {
    let (req, _) = complete_req(&rfc_request_with("GET /chat ", "GET /chat?room=1&x=%20 "));
    assert_eq!(req.uri(), "/chat?room=1&x=%20");
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), Some("room=1&x=%20"));

    // §4.2.1 item 1: "or an absolute HTTP/HTTPS URI containing the /resource name/".
    let (req, _) = complete_req(&rfc_request_with(
        "GET /chat ",
        "GET http://server.example.com/chat?a ",
    ));
    assert_eq!(req.uri(), "http://server.example.com/chat?a");
    assert_eq!((req.path(), req.query()), ("/chat", Some("a")));
}

#[test]
fn request_tokens_are_case_insensitive() {
    let head = b"GET / HTTP/1.1\r\n\
        host: h\r\n\
        UPGRADE: WebSocket\r\n\
        connection: keep-alive, UPGRADE\r\n\
        sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        SEC-WEBSOCKET-VERSION: 13\r\n\r\n";
    let (req, used) = complete_req(head);
    assert_eq!(used, head.len());
    assert_eq!(req.host(), "h");
    assert_eq!(req.key(), Some(RFC_KEY));
}

#[test]
fn request_repeated_headers_are_lists() {
    // §9.1: "this header field MAY be split or combined across multiple lines".
    let head = b"GET / HTTP/1.1\r\n\
        Host: h\r\n\
        Upgrade: h2c\r\n\
        Upgrade: websocket\r\n\
        Connection: keep-alive\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Protocol: a,  b\r\n\
        Sec-WebSocket-Protocol: c\r\n\
        Sec-WebSocket-Extensions: foo\r\n\
        Sec-WebSocket-Extensions: bar; baz=2, \r\n\
        Sec-WebSocket-Extensions: permessage-deflate; x=\"1,2\"; client_max_window_bits\r\n\r\n";
    let (req, _) = complete_req(head);
    assert_eq!(req.protocols(), ["a", "b", "c"]);
    assert_eq!(
        req.extensions(),
        [
            "foo",
            "bar; baz=2",
            "permessage-deflate; x=\"1,2\"; client_max_window_bits"
        ]
    );
    assert_eq!(req.header("upgrade"), Some(&b"h2c"[..]));
    assert_eq!(req.headers().filter(|(n, _)| *n == "Upgrade").count(), 2);
}

#[test]
fn request_errors_4_2_1() {
    use HandshakeError::*;
    let cases: &[(&str, &str, HandshakeError)] = &[
        ("GET /chat", "POST /chat", MethodNotGet),
        ("GET /chat", "get /chat", MethodNotGet),
        ("HTTP/1.1", "HTTP/1.0", UnsupportedHttpVersion),
        ("HTTP/1.1", "HTTP/2.0", Malformed("invalid HTTP version")),
        ("Host: server.example.com\r\n", "", MissingHost),
        (
            "Host: server.example.com\r\n",
            "Host: a\r\nHost: b\r\n",
            Malformed("more than one Host header"),
        ),
        ("Upgrade: websocket\r\n", "", MissingUpgrade),
        ("Upgrade: websocket", "Upgrade: websockets", MissingUpgrade),
        ("Connection: Upgrade\r\n", "", MissingConnectionUpgrade),
        ("Connection: Upgrade", "Connection: keep-alive", MissingConnectionUpgrade),
        ("Connection: Upgrade", "Connection: Upgraded", MissingConnectionUpgrade),
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", MissingKey),
        (
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n",
            MissingKey,
        ),
        ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ", InvalidKey),
        ("dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAAAA", InvalidKey),
        ("dGhlIHNhbXBsZSBub25jZQ==", "not base64 at all!!!!!!!", InvalidKey),
        ("Sec-WebSocket-Version: 13\r\n", "", UnsupportedVersion),
        ("Version: 13", "Version: 8", UnsupportedVersion),
        ("Version: 13", "Version: 13, 8", UnsupportedVersion),
        ("GET /chat", "GET *", Malformed("invalid request target")),
        (
            "chat, superchat",
            "chat, super chat",
            Malformed("invalid Sec-WebSocket-Protocol"),
        ),
        (
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: foo; a=\"b\r\n",
            Malformed("invalid Sec-WebSocket-Extensions"),
        ),
        ("Host: server", "Host server", Malformed("invalid header name")),
        ("Upgrade: websocket\r\n", "Upgrade: web\x01socket\r\n", Malformed("invalid header value")),
    ];
    for (replace, with, expected) in cases {
        let head = rfc_request_with(replace, with);
        assert_eq!(&req_err(&head), expected, "{replace:?} -> {with:?}");
    }
    assert_eq!(
        req_err(b"\x16\x03\x01\x02\x00"),
        Malformed("invalid request line")
    );
    // Non-UTF-8 Origin.
    let mut head = RFC_REQUEST.to_vec();
    let at = head
        .windows(14)
        .position(|w| w == b"http://example")
        .unwrap();
    head[at + 7] = 0xff;
    assert_eq!(req_err(&head), Malformed("Origin header is not UTF-8"));
}

#[test]
fn request_accepts_the_4_1_example_key() {
    // §4.1 item 7 prints "AQIDBAUGBwgJCgsMDQ4PEC==" (non-zero trailing bits): still 16 bytes.
    let (req, _) = complete_req(&rfc_request_with(RFC_KEY, "AQIDBAUGBwgJCgsMDQ4PEC=="));
    assert_eq!(req.key(), Some("AQIDBAUGBwgJCgsMDQ4PEC=="));
}

#[test]
fn request_head_size_limit() {
    let len = RFC_REQUEST.len();
    // Exactly at the limit: fine. One byte over: too large.
    assert!(matches!(
        Request::parse(RFC_REQUEST, len, MAX_HEADERS),
        Ok(Status::Complete((_, n))) if n == len
    ));
    assert_eq!(
        Request::parse(RFC_REQUEST, len - 1, MAX_HEADERS).unwrap_err(),
        HandshakeError::HeadTooLarge { max: len - 1 }
    );
    // Incomplete and already over the limit.
    let endless = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 200]].concat();
    assert_eq!(
        Request::parse(&endless, 100, MAX_HEADERS).unwrap_err(),
        HandshakeError::HeadTooLarge { max: 100 }
    );
    assert!(Request::parse(&endless[..100], 100, MAX_HEADERS)
        .unwrap()
        .is_partial());
    // A complete head within the limit followed by many pipelined bytes is fine.
    let mut buf = RFC_REQUEST.to_vec();
    buf.extend_from_slice(&[0x82; 10_000]);
    assert!(matches!(
        Request::parse(&buf, len, MAX_HEADERS),
        Ok(Status::Complete((_, n))) if n == len
    ));
}

fn request_with_extra_headers(n: usize) -> Vec<u8> {
    let mut head = RFC_REQUEST[..RFC_REQUEST.len() - 2].to_vec();
    for i in 0..n {
        head.extend_from_slice(format!("X-Extra-{i}: {i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

#[test]
fn request_header_count_limit() {
    // The §1.2 request has 7 fields.
    assert!(Request::parse(RFC_REQUEST, MAX_BYTES, 7).is_ok());
    assert_eq!(
        Request::parse(RFC_REQUEST, MAX_BYTES, 6).unwrap_err(),
        HandshakeError::TooManyHeaders { max: 6 }
    );
    // Large limits are honoured, not capped by a fixed array.
    let head = request_with_extra_headers(1000);
    assert!(matches!(
        Request::parse(&head, 1 << 20, 1024),
        Ok(Status::Complete((_, n))) if n == head.len()
    ));
    assert_eq!(
        Request::parse(&head, 1 << 20, 1006).unwrap_err(),
        HandshakeError::TooManyHeaders { max: 1006 }
    );
    assert!(Request::parse(&head, 1 << 20, 1007).is_ok());
    // Too many fields is reported even before the head is complete.
    assert_eq!(
        Request::parse(&head[..head.len() / 2], 1 << 20, 10).unwrap_err(),
        HandshakeError::TooManyHeaders { max: 10 }
    );
    // A huge limit does not allocate per the limit.
    assert!(Request::parse(RFC_REQUEST, usize::MAX, usize::MAX).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Server: rejections

#[test]
fn reject_response_format() {
    let mut out = Vec::new();
    reject_response(404, &[("X-Reason", "gone")], b"no such chat", &mut out).unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 404 Not Found\r\nX-Reason: gone\r\nContent-Type: text/plain; charset=utf-8\r\n\
          Content-Length: 12\r\nConnection: close\r\n\r\nno such chat"
    );

    out.clear();
    reject_response(426, &[("Sec-WebSocket-Version", "13")], b"", &mut out).unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\
          Content-Length: 0\r\nConnection: close\r\n\r\n"
    );

    // The caller's Content-Type wins.
    out.clear();
    reject_response(
        401,
        &[("Content-Type", "application/json")],
        b"{}",
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
          Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    );

    // Unregistered status: empty reason phrase.
    out.clear();
    reject_response(499, &[], b"", &mut out).unwrap();
    assert!(out.starts_with(b"HTTP/1.1 499 \r\n"));
}

#[test]
fn reject_response_errors() {
    let mut out = Vec::new();
    for status in [0, 101, 200, 302, 399, 600, 999] {
        assert_eq!(
            reject_response(status, &[], b"", &mut out),
            Err(UsageError::InvalidStatus(status))
        );
    }
    for headers in [
        [("X", "a\r\nb")],
        [("X\r\nY", "v")],
        [("", "v")],
        [("Content-Length", "5")],
        [("transfer-encoding", "chunked")],
    ] {
        assert_eq!(
            reject_response(400, &headers, b"", &mut out),
            Err(UsageError::InvalidHeader)
        );
    }
    assert!(out.is_empty(), "nothing written on error");
}

#[test]
fn handshake_error_responses() {
    use HandshakeError::*;
    let all = [
        HeadTooLarge { max: 1 },
        TooManyHeaders { max: 1 },
        Malformed("x"),
        MethodNotGet,
        UnsupportedHttpVersion,
        MissingHost,
        MissingUpgrade,
        MissingConnectionUpgrade,
        MissingKey,
        InvalidKey,
        UnsupportedVersion,
        InvalidUrl("x"),
        UnexpectedStatus(200),
        MissingAccept,
        AcceptMismatch,
        UnofferedProtocol("p".into()),
        UnofferedExtension("e".into()),
        HandshakeError::Extension("x"),
        Eof,
    ];
    for err in all {
        let out = err.response();
        let mut fields = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut fields);
        let Ok(httparse::Status::Complete(head_len)) = resp.parse(&out) else {
            panic!("{err:?}: {}", String::from_utf8_lossy(&out));
        };
        assert_eq!(resp.code, Some(err.http_status()));
        let body = format!("{err}\n");
        assert_eq!(&out[head_len..], body.as_bytes());
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        assert_eq!(
            header("content-length"),
            Some(body.len().to_string().as_bytes())
        );
        assert_eq!(header("connection"), Some(&b"close"[..]));
        // §4.2.2 /version/: a 426 names the supported version.
        let version = header("sec-websocket-version");
        assert_eq!(version.is_some(), err.http_status() == 426, "{err:?}");
        if let Some(v) = version {
            assert_eq!(v, b"13");
        }
    }
    assert!(MethodNotGet
        .response()
        .starts_with(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n"));
    assert!(TooManyHeaders { max: 1 }
        .response()
        .starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
}

// ---------------------------------------------------------------------------------------------
// Client: §3 URLs

#[test]
fn url_defaults_and_ports() {
    let ws = ClientRequest::new("ws://example.com").unwrap();
    assert!(!ws.is_tls());
    assert_eq!((ws.host(), ws.port(), ws.uri()), ("example.com", 80, "/"));

    let wss = ClientRequest::new("WSS://Example.COM/chat").unwrap();
    assert!(wss.is_tls());
    assert_eq!(
        (wss.host(), wss.port(), wss.uri()),
        ("Example.COM", 443, "/chat")
    );

    let c = ClientRequest::new("ws://example.com:9001/a/b?x=1&y=%2F").unwrap();
    assert_eq!((c.port(), c.uri()), (9001, "/a/b?x=1&y=%2F"));

    // §3: "?" only when the query is non-empty; "/" for an empty path.
    assert_eq!(ClientRequest::new("ws://h?x").unwrap().uri(), "/?x");
    assert_eq!(ClientRequest::new("ws://h/p?").unwrap().uri(), "/p");
    assert_eq!(ClientRequest::new("ws://h:/").unwrap().port(), 80);
    assert_eq!(
        ClientRequest::new("ws://192.0.2.1:65535").unwrap().port(),
        65535
    );
}

#[test]
fn url_ipv6() {
    let c = ClientRequest::new("ws://[2001:db8::1]:8080/chat").unwrap();
    assert_eq!(
        (c.host(), c.port(), c.uri()),
        ("2001:db8::1", 8080, "/chat")
    );
    assert!(encoded(&c, RFC_KEY).contains("\r\nHost: [2001:db8::1]:8080\r\n"));

    let c = ClientRequest::new("wss://[::1]").unwrap();
    assert_eq!((c.host(), c.port()), ("::1", 443));
    assert!(encoded(&c, RFC_KEY).contains("\r\nHost: [::1]\r\n"));

    let c = ClientRequest::new("ws://[::ffff:192.0.2.1]/").unwrap();
    assert_eq!(c.host(), "::ffff:192.0.2.1");
}

#[test]
fn host_header_port_only_when_not_default_4_1_item_4() {
    for (url, host) in [
        ("ws://h", "h"),
        ("ws://h:80", "h"),
        ("ws://h:443", "h:443"),
        ("ws://h:8080", "h:8080"),
        ("wss://h", "h"),
        ("wss://h:443", "h"),
        ("wss://h:80", "h:80"),
    ] {
        let text = encoded(&ClientRequest::new(url).unwrap(), RFC_KEY);
        assert!(
            text.contains(&format!("\r\nHost: {host}\r\n")),
            "{url}: {text}"
        );
    }
}

#[test]
fn url_errors() {
    for (url, why) in [
        ("http://h/", "scheme is not ws or wss"),
        ("wsx://h/", "scheme is not ws or wss"),
        ("h/chat", "missing ws:// or wss://"),
        ("ws:/h", "missing ws:// or wss://"),
        ("ws://h/chat#frag", "fragment in a WebSocket URL"),
        ("ws://h#", "fragment in a WebSocket URL"),
        ("ws://user:pw@h/", "userinfo in a WebSocket URL"),
        ("ws:///chat", "empty host"),
        ("ws://", "empty host"),
        ("ws://:80", "empty host"),
        ("ws://[]", "invalid IPv6 address"),
        ("ws://[::1", "unclosed IPv6 address"),
        ("ws://[::g]", "invalid IPv6 address"),
        ("ws://[fe80::1%25eth0]", "invalid IPv6 address"),
        ("ws://[::1]x", "invalid port"),
        ("ws://::1/", "empty host"),
        ("ws://h:1:2", "invalid port"),
        ("ws://h:0", "invalid port"),
        ("ws://h:65536", "invalid port"),
        ("ws://h:123456", "invalid port"),
        ("ws://h:8a", "invalid port"),
        ("ws://h:-1", "invalid port"),
        ("ws://h h/", "invalid host"),
        ("ws://h\r\nX: y/", "invalid host"),
        ("ws://h/a b", "invalid character in the path"),
        ("ws://h/a\r\nX: y", "invalid character in the path"),
        ("ws://h/%zz", "invalid character in the path"),
        ("ws://h/é", "invalid character in the path"),
        ("ws://h/?a b", "invalid character in the query"),
    ] {
        assert_eq!(
            ClientRequest::new(url).unwrap_err(),
            HandshakeError::InvalidUrl(why),
            "{url:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Client: §4.1 request

#[test]
fn client_request_encoding_4_1() {
    let client = rfc_client()
        .extension("permessage-deflate; client_max_window_bits")
        .extension("x-foo")
        .header("Authorization", "Basic Zm9vOmJhcg==");
    client.validate().unwrap();
    assert_eq!(client.offered_protocols(), ["chat", "superchat"]);
    assert_eq!(
        client.offered_extensions(),
        ["permessage-deflate; client_max_window_bits", "x-foo"]
    );
    assert_eq!(
        encoded(&client, RFC_KEY),
        "GET /chat HTTP/1.1\r\n\
         Host: server.example.com\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Origin: http://example.com\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
         Authorization: Basic Zm9vOmJhcg==\r\n\r\n"
    );
    // Minimal request: no optional fields.
    assert_eq!(
        encoded(&ClientRequest::new("ws://h").unwrap(), RFC_KEY),
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
}

#[test]
fn client_request_validate_errors() {
    let base = || ClientRequest::new("ws://h").unwrap();
    assert_eq!(base().validate(), Ok(()));
    for bad in [
        base().header("Bad Name", "v"),
        base().header("X", "a\r\nInjected: 1"),
        base().header("X", "a\nb"),
        base().origin("http://a\r\n"),
        base().protocol("two words"),
        base().protocol(""),
        base().protocol("a,b"),
        base().extension("x\r\n"),
    ] {
        assert_eq!(bad.validate(), Err(UsageError::InvalidHeader), "{bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Client: §4.1 response checks

#[test]
fn rfc_example_response_parsed() {
    let client = rfc_client();
    let mut buf = RFC_RESPONSE.to_vec();
    buf.extend_from_slice(FRAME);
    let Ok(Status::Complete((resp, used))) = parse_resp(&buf, &client) else {
        panic!()
    };
    assert_eq!(used, RFC_RESPONSE.len());
    assert_eq!(&buf[used..], FRAME);
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.protocol(), Some("chat"));
    assert!(resp.extensions().is_empty());
    assert_eq!(
        resp.header("sec-websocket-accept"),
        Some(&b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="[..])
    );
    assert_eq!(resp.headers().count(), 4);
}

#[test]
fn response_partial_at_every_prefix() {
    let client = rfc_client();
    for len in 0..RFC_RESPONSE.len() {
        match parse_resp(&RFC_RESPONSE[..len], &client) {
            Ok(Status::Partial { needed }) => {
                assert!(
                    needed >= 1 && len + needed <= RFC_RESPONSE.len(),
                    "len {len}"
                )
            }
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn response_tokens_case_insensitive_and_whitespace() {
    let client = rfc_client();
    let head = b"HTTP/1.1 101 Switching Protocols\r\n\
        upgrade: WEBSOCKET\r\n\
        connection: keep-alive, upgrade\r\n\
        sec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \r\n\r\n";
    let Ok(Status::Complete((resp, _))) = parse_resp(head, &client) else {
        panic!()
    };
    assert_eq!(resp.protocol(), None);
}

#[test]
fn response_extensions_9_1() {
    let client = ClientRequest::new("ws://h")
        .unwrap()
        .extension("permessage-deflate; client_max_window_bits, x-webkit-deflate-frame")
        .extension("foo");
    let head = rfc_response_with(
        "Sec-WebSocket-Protocol: chat\r\n",
        "Sec-WebSocket-Extensions: Permessage-Deflate; server_no_context_takeover\r\n\
         Sec-WebSocket-Extensions: foo, x-webkit-deflate-frame\r\n",
    );
    let Ok(Status::Complete((resp, _))) = parse_resp(&head, &client) else {
        panic!()
    };
    assert_eq!(
        resp.extensions(),
        [
            "Permessage-Deflate; server_no_context_takeover",
            "foo",
            "x-webkit-deflate-frame"
        ]
    );
    assert_eq!(resp.protocol(), None);
}

#[test]
fn response_errors_4_1() {
    use HandshakeError::*;
    let client = rfc_client().extension("foo; a=1");
    let cases: &[(&str, &str, HandshakeError)] = &[
        ("101 Switching Protocols", "200 OK", UnexpectedStatus(200)),
        (
            "101 Switching Protocols",
            "403 Forbidden",
            UnexpectedStatus(403),
        ),
        ("Upgrade: websocket\r\n", "", MissingUpgrade),
        ("Upgrade: websocket", "Upgrade: h2c", MissingUpgrade),
        ("Connection: Upgrade\r\n", "", MissingConnectionUpgrade),
        (
            "Connection: Upgrade",
            "Connection: close",
            MissingConnectionUpgrade,
        ),
        (
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
            "",
            MissingAccept,
        ),
        (
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOa=",
            AcceptMismatch,
        ),
        // The key itself instead of the accept value.
        ("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", RFC_KEY, AcceptMismatch),
        (
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Accept: x\r\n",
            AcceptMismatch,
        ),
        (
            "Protocol: chat",
            "Protocol: other",
            UnofferedProtocol("other".into()),
        ),
        (
            "Protocol: chat",
            "Protocol: CHAT",
            UnofferedProtocol("CHAT".into()),
        ),
        (
            "Protocol: chat",
            "Protocol: chat, superchat",
            UnofferedProtocol("chat, superchat".into()),
        ),
        (
            "Protocol: chat",
            "Protocol: ",
            UnofferedProtocol(String::new()),
        ),
        (
            "Protocol: chat\r\n",
            "Protocol: chat\r\nSec-WebSocket-Extensions: foo, bar; x=1\r\n",
            UnofferedExtension("bar".into()),
        ),
        (
            "Protocol: chat\r\n",
            "Protocol: chat\r\nSec-WebSocket-Extensions: foo; =\r\n",
            Malformed("invalid Sec-WebSocket-Extensions"),
        ),
        (
            "HTTP/1.1 101",
            "HTTP/1.1 1O1",
            Malformed("invalid status code"),
        ),
    ];
    for (replace, with, expected) in cases {
        let head = rfc_response_with(replace, with);
        assert_eq!(
            &resp_err(&head, &client),
            expected,
            "{replace:?} -> {with:?}"
        );
    }

    // §4.1 check 6: a subprotocol when none was offered.
    let plain = ClientRequest::new("ws://server.example.com/chat").unwrap();
    assert_eq!(
        resp_err(RFC_RESPONSE, &plain),
        UnofferedProtocol("chat".into())
    );
    // §4.1 check 5: an extension when none was offered.
    let head = rfc_response_with(
        "Protocol: chat\r\n",
        "Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert_eq!(
        resp_err(&head, &rfc_client()),
        UnofferedExtension("permessage-deflate".into())
    );
    // A different key than the one the response answers.
    assert_eq!(
        Response::parse(
            RFC_RESPONSE,
            &client,
            "AAAAAAAAAAAAAAAAAAAAAA==",
            MAX_BYTES,
            MAX_HEADERS
        )
        .unwrap_err(),
        AcceptMismatch
    );
}

#[test]
fn response_limits() {
    let client = rfc_client();
    let len = RFC_RESPONSE.len();
    assert!(Response::parse(RFC_RESPONSE, &client, RFC_KEY, len, 4).is_ok());
    assert_eq!(
        Response::parse(RFC_RESPONSE, &client, RFC_KEY, len - 1, 4).unwrap_err(),
        HandshakeError::HeadTooLarge { max: len - 1 }
    );
    assert_eq!(
        Response::parse(RFC_RESPONSE, &client, RFC_KEY, len, 3).unwrap_err(),
        HandshakeError::TooManyHeaders { max: 3 }
    );
}

// ---------------------------------------------------------------------------------------------
// Both sides

#[test]
fn round_trip() {
    let client = ClientRequest::new("wss://[::1]:9443/rooms/1?token=abc")
        .unwrap()
        .origin("https://app.example")
        .protocol("v2.chat")
        .protocol("v1.chat")
        .extension("permessage-deflate; client_max_window_bits")
        .header("Cookie", "sid=42");
    client.validate().unwrap();
    let key = encode_key(&[0x5a; 16]);
    let mut wire = Vec::new();
    client.encode(&key, &mut wire);

    let (req, used) = complete_req(&wire);
    assert_eq!(used, wire.len());
    assert_eq!(req.host(), "[::1]:9443");
    assert_eq!((req.path(), req.query()), ("/rooms/1", Some("token=abc")));
    assert_eq!(req.origin(), Some("https://app.example"));
    assert_eq!(req.protocols(), ["v2.chat", "v1.chat"]);
    assert_eq!(
        req.extensions(),
        ["permessage-deflate; client_max_window_bits"]
    );
    assert_eq!(req.header("cookie"), Some(&b"sid=42"[..]));
    assert_eq!(req.key(), Some(key.as_str()));

    let config = hybi::Config::default().with_deflate(hybi::DeflateConfig::default());
    let negotiated =
        hybi::Negotiated::new(&req, Accept::new().protocol("v1.chat"), &config).unwrap();
    let mut answer = Vec::new();
    negotiated.encode(&mut answer);
    let Ok(Status::Complete((resp, used))) =
        Response::parse(&answer, &client, &key, MAX_BYTES, MAX_HEADERS)
    else {
        panic!()
    };
    assert_eq!(used, answer.len());
    assert_eq!(resp.protocol(), Some("v1.chat"));
    assert_eq!(resp.extensions(), negotiated.extensions());
    assert!(resp.extensions()[0].starts_with("permessage-deflate"));
}

// ---------------------------------------------------------------------------------------------
// Properties

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9!#$&'*+.^_`|~-]{1,12}"
}

prop_compose! {
    fn client_request()(
        path in "(/([a-zA-Z0-9._~!$&'()*+,;=:@-]|%[0-9a-fA-F]{2}){0,10}){0,4}",
        query in proptest::option::of("[a-zA-Z0-9=&/?:@-]{1,20}"),
        port in proptest::option::of(1u16..),
        tls: bool,
        protocols in proptest::collection::vec(token(), 0..4),
        extensions in proptest::collection::vec(token(), 0..3),
        headers in proptest::collection::vec((token(), "[ -~]{0,20}"), 0..6),
    ) -> ClientRequest {
        let scheme = if tls { "wss" } else { "ws" };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        let mut c = ClientRequest::new(&format!("{scheme}://example.com{port}{path}{query}"))
            .unwrap()
            .protocols(protocols);
        for e in extensions {
            c = c.extension(e);
        }
        for (n, v) in headers {
            c = c.header(n, v);
        }
        c
    }
}

proptest! {
    /// Sans-IO chunking invariance: every strict prefix of a valid head is Partial, and the whole
    /// head (with or without trailing bytes) gives the same Request.
    #[test]
    fn request_split_invariance(client in client_request(), nonce: [u8; 16], tail in proptest::collection::vec(any::<u8>(), 0..16)) {
        prop_assume!(client.validate().is_ok());
        let key = encode_key(&nonce);
        let mut wire = Vec::new();
        client.encode(&key, &mut wire);
        for len in 0..wire.len() {
            let partial = Request::parse(&wire[..len], MAX_BYTES, MAX_HEADERS);
            prop_assert!(matches!(partial, Ok(Status::Partial { .. })), "{len}: {partial:?}");
        }
        let (req, used) = complete_req(&wire);
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(req.key(), Some(key.as_str()));
        prop_assert_eq!(req.protocols(), client.offered_protocols());
        prop_assert_eq!(req.uri(), client.uri());
        let mut longer = wire.clone();
        longer.extend_from_slice(&tail);
        prop_assert_eq!(complete_req(&longer), (req.clone(), used));

        // And the server's answer is accepted by the client, at every split too.
        let accept = match client.offered_protocols().first() {
            Some(p) => Accept::new().protocol(p.clone()),
            None => Accept::new(),
        };
        let mut answer = Vec::new();
        accept.encode(&req, &mut answer);
        for len in 0..answer.len() {
            let partial = Response::parse(&answer[..len], &client, &key, MAX_BYTES, MAX_HEADERS);
            prop_assert!(matches!(partial, Ok(Status::Partial { .. })), "{len}: {partial:?}");
        }
        let done = Response::parse(&answer, &client, &key, MAX_BYTES, MAX_HEADERS);
        prop_assert!(matches!(done, Ok(Status::Complete((_, n))) if n == answer.len()), "{done:?}");
    }

    /// Arbitrary bytes never panic, and a complete head never claims more bytes than given.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        max_bytes in 0usize..600,
        max_headers in 0usize..40,
    ) {
        if let Ok(Status::Complete((_, n))) = Request::parse(&bytes, max_bytes, max_headers) {
            prop_assert!(n <= bytes.len() && n <= max_bytes);
        }
        let client = rfc_client();
        if let Ok(Status::Complete((_, n))) = Response::parse(&bytes, &client, RFC_KEY, max_bytes, max_headers) {
            prop_assert!(n <= bytes.len() && n <= max_bytes);
        }
        let _ = ClientRequest::new(&String::from_utf8_lossy(&bytes));
    }

    /// Valid heads with a few bytes overwritten never panic, and stay within the buffer.
    #[test]
    fn mutated_heads_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        for original in [RFC_REQUEST, RFC_RESPONSE] {
            let mut head = original.to_vec();
            for (at, byte) in &edits {
                let i = at.index(head.len());
                head[i] = *byte;
            }
            let head = &head[..cut.index(head.len() + 1)];
            if let Ok(Status::Complete((_, n))) = parse_req(head) {
                prop_assert!(n <= head.len());
            }
            if let Ok(Status::Complete((_, n))) = parse_resp(head, &rfc_client()) {
                prop_assert!(n <= head.len());
            }
        }
    }

    /// Arbitrary header lines after a valid request line never panic.
    #[test]
    fn arbitrary_fields_never_panic(fields in "([!-~]{0,8}:[ -~\\x80-\\u{10FFFF}]{0,16}\r\n){0,8}") {
        let head = format!("GET /x HTTP/1.1\r\n{fields}\r\n");
        let _ = Request::parse(head.as_bytes(), MAX_BYTES, MAX_HEADERS);
        let head = format!("HTTP/1.1 101 OK\r\n{fields}\r\n");
        let _ = Response::parse(head.as_bytes(), &rfc_client(), RFC_KEY, MAX_BYTES, MAX_HEADERS);
    }

    /// Arbitrary URLs in the ws scheme never panic; accepted ones re-encode into parseable requests.
    #[test]
    fn arbitrary_urls(rest in "[ -~]{0,40}") {
        if let Ok(client) = ClientRequest::new(&format!("ws://{rest}")) {
            let mut wire = Vec::new();
            client.encode(RFC_KEY, &mut wire);
            prop_assert!(matches!(parse_req(&wire), Ok(Status::Complete((_, n))) if n == wire.len()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Handshakes carried by an HTTP stack: the client's ClientHandshake against the server's
// Request::from_head + Negotiated, over HTTP/2 (RFC 8441) and HTTP/1.1, then data both ways.

fn stack_handshake(version: hybi::handshake::HttpVersion) {
    use hybi::{ClientHandshake, Config, Connection, DeflateConfig, Event, Message, Negotiated};
    let config = || {
        Config::default()
            .with_protocols(["chat"])
            .with_deflate(DeflateConfig::default().with_server_no_context_takeover(true))
    };
    let request = ClientRequest::new("wss://example.com:8443/room?x=1")
        .unwrap()
        .origin("https://example.com")
        .header("Authorization", "Bearer t");
    let client = ClientHandshake::new(request, config(), version);
    let headers = client.headers();
    let mut fields: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let authority = client.request().authority();
    assert_eq!(authority, "example.com:8443");
    match version {
        hybi::handshake::HttpVersion::Http2 => {
            fields.push((":protocol", b"websocket"));
            fields.push((":authority", authority.as_bytes()));
        }
        _ => fields.push(("host", authority.as_bytes())),
    }
    let req = Request::from_head(client.method(), client.request().uri(), version, fields).unwrap();
    assert_eq!(req.header("authorization"), Some(&b"Bearer t"[..]));
    assert_eq!(req.origin(), Some("https://example.com"));
    let negotiated = Negotiated::new(&req, Accept::new(), &config()).unwrap();
    let answer: Vec<(String, String)> = negotiated
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let (mut c, response) = client
        .finish(
            negotiated.status(),
            answer.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        )
        .unwrap();
    assert_eq!(response.protocol(), Some("chat"));
    assert_eq!(response.extensions(), negotiated.extensions());
    let mut s = Connection::accepted(config(), &negotiated);
    assert_eq!((c.protocol(), s.protocol()), (Some("chat"), Some("chat")));
    // Data both ways, compressed (RSV1) by both.
    let text = "compress me ".repeat(50);
    c.send_text(&text).unwrap();
    s.send_text(&text).unwrap();
    let mut ends = [c, s];
    for i in [0, 1] {
        let [a, b] = &mut ends;
        let (from, to) = if i == 0 { (a, b) } else { (b, a) };
        let wire: Vec<u8> = from.output_chunks().flatten().copied().collect();
        from.advance_output(wire.len());
        assert!(wire[0] & 0x40 != 0, "RSV1: compressed");
        assert!(wire.len() < text.len());
        to.handle_input(&wire);
        let Some(Event::Message(Message::Text(t))) = to.next_event() else {
            panic!("no message")
        };
        assert_eq!(t, text.as_str());
    }
}

#[test]
fn client_handshake_over_http2_extended_connect() {
    stack_handshake(hybi::handshake::HttpVersion::Http2);
}

#[test]
fn client_handshake_over_http11_through_a_stack() {
    stack_handshake(hybi::handshake::HttpVersion::Http11);
}

/// A response the client did not ask for is refused, whatever carried it.
#[test]
fn client_handshake_refuses_what_it_did_not_offer() {
    use hybi::handshake::HttpVersion;
    use hybi::{ClientHandshake, Config};
    let h = || {
        ClientHandshake::new(
            ClientRequest::new("wss://h/").unwrap(),
            Config::default(),
            HttpVersion::Http2,
        )
    };
    let err =
        |status, fields: &[(&str, &[u8])]| h().finish(status, fields.iter().copied()).unwrap_err();
    assert_eq!(err(404, &[]), HandshakeError::UnexpectedStatus(404));
    assert_eq!(
        err(200, &[("sec-websocket-protocol", b"chat")]),
        HandshakeError::UnofferedProtocol("chat".into())
    );
    assert_eq!(
        err(200, &[("sec-websocket-extensions", b"permessage-deflate")]),
        HandshakeError::UnofferedExtension("permessage-deflate".into())
    );
    // Over HTTP/1.1 the accept key is checked.
    let h1 = ClientHandshake::new(
        ClientRequest::new("ws://h/").unwrap(),
        Config::default(),
        HttpVersion::Http11,
    );
    let fields: [(&str, &[u8]); 3] = [
        ("upgrade", b"websocket"),
        ("connection", b"upgrade"),
        ("sec-websocket-accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ];
    assert_eq!(
        h1.finish(101, fields).unwrap_err(),
        HandshakeError::AcceptMismatch
    );
}
