//! The `http` feature (`hybi::http`) without any network: server handshakes validated from
//! `http::request::Parts` over HTTP/1.1 and HTTP/2 (RFC 8441), the negotiated response heads
//! and connections, every refusal's status, headers and body, and client requests and
//! responses as `http` types. Each check compares against what the core does for the same
//! handshake as bytes.

mod support;

use bytes::Bytes;
use http::{HeaderMap, Method, Request as HttpRequest, StatusCode, Version};
use hybi::frame::Status;
use hybi::handshake::HttpVersion;
use hybi::{
    Accept, ClientRequest, Config, Connection, DeflateConfig, Event, HandshakeError, Message,
    Reject, Request, Response, Role, State, UsageError,
};
use support::{decode_frames, take_output};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid HTTP/1.1 upgrade request with `extra` header fields.
fn h1(extra: &[(&str, &str)]) -> http::request::Parts {
    let mut b = HttpRequest::get("/chat?room=1")
        .header("host", "example.com")
        .header("upgrade", "websocket")
        .header("connection", "keep-alive, Upgrade")
        .header("sec-websocket-key", KEY)
        .header("sec-websocket-version", "13");
    for (n, v) in extra {
        b = b.header(*n, *v);
    }
    b.body(()).unwrap().into_parts().0
}

/// An HTTP/2 extended CONNECT as hyper presents it: an absolute URI, no key, no Upgrade.
fn h2(extra: &[(&str, &str)]) -> http::request::Parts {
    let mut b = HttpRequest::builder()
        .method(Method::CONNECT)
        .uri("https://example.com/chat?room=1")
        .version(Version::HTTP_2)
        .header("sec-websocket-version", "13");
    for (n, v) in extra {
        b = b.header(*n, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn without(mut parts: http::request::Parts, name: &str) -> http::request::Parts {
    parts.headers.remove(name);
    parts
}

fn with(mut parts: http::request::Parts, name: &'static str, value: &str) -> http::request::Parts {
    parts.headers.insert(name, value.parse().unwrap());
    parts
}

/// The header fields of a response, lowercase names, in order.
fn fields(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect()
}

#[test]
fn http11_upgrade_is_validated_and_accepted_with_the_negotiated_state() {
    let parts = h1(&[
        ("origin", "http://example.com"),
        ("sec-websocket-protocol", "superchat, chat"),
        (
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        ),
        ("authorization", "Bearer x"),
    ]);
    let request = hybi::http::request(&parts, None).unwrap();
    assert_eq!(request.version(), HttpVersion::Http11);
    assert_eq!((request.method(), request.path()), ("GET", "/chat"));
    assert_eq!(request.query(), Some("room=1"));
    assert_eq!(request.host(), "example.com");
    assert_eq!(request.origin(), Some("http://example.com"));
    assert_eq!(request.key(), Some(KEY));
    assert_eq!(request.protocols(), ["superchat", "chat"]);
    assert_eq!(request.header("Authorization"), Some(&b"Bearer x"[..]));

    let config = Config::default().with_deflate(DeflateConfig::default());
    let (response, mut conn) =
        hybi::http::accept::<String>(&request, Accept::new().protocol("chat"), config).unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        fields(response.headers()),
        [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", ACCEPT),
            ("sec-websocket-protocol", "chat"),
            ("sec-websocket-extensions", "permessage-deflate"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
    );
    assert_eq!(response.body(), "");
    assert_eq!(conn.state(), State::Open);
    assert_eq!(conn.role(), Role::Server);
    assert_eq!(conn.protocol(), Some("chat"));
    // permessage-deflate is on: a compressible message goes out with RSV1 set, smaller.
    let text = "hello hello hello hello hello hello hello hello hello";
    conn.send_text(text).unwrap();
    let frames = decode_frames(&take_output(&mut conn));
    assert_eq!(frames.len(), 1);
    assert!(frames[0].0.rsv1, "not compressed: {:?}", frames[0].0);
    assert!(frames[0].1.len() < text.len());
}

/// The same request as bytes through the core gives the same answer: `hybi::http` adds no
/// decision of its own.
#[test]
fn the_response_head_is_the_one_the_core_writes() {
    let extra = [
        ("sec-websocket-protocol", "chat"),
        ("sec-websocket-extensions", "permessage-deflate"),
    ];
    let config = Config::default().with_deflate(DeflateConfig::default());
    let request = hybi::http::request(&h1(&extra), None).unwrap();
    let (response, _) =
        hybi::http::accept::<()>(&request, Accept::new().protocol("chat"), config.clone()).unwrap();

    let mut raw = b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n"
        .to_vec();
    for (n, v) in extra {
        raw.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let mut core = Connection::server(config);
    core.handle_input(&raw);
    assert!(matches!(core.next_event(), Some(Event::Request(_))));
    core.accept(Accept::new().protocol("chat")).unwrap();
    let head = String::from_utf8(take_output(&mut core)).unwrap();
    let mut expected: Vec<String> = head
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.to_ascii_lowercase())
        .collect();
    let mut got: Vec<String> = fields(response.headers())
        .into_iter()
        .map(|(n, v)| format!("{n}: {v}").to_ascii_lowercase())
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert!(head.starts_with("HTTP/1.1 101 "));
}

#[test]
fn http2_extended_connect_is_answered_with_200_and_no_key() {
    let parts = h2(&[("sec-websocket-protocol", "chat")]);
    let request = hybi::http::request(&parts, Some("websocket")).unwrap();
    assert_eq!(request.version(), HttpVersion::Http2);
    assert_eq!(
        (request.method(), request.host()),
        ("CONNECT", "example.com")
    );
    assert_eq!((request.path(), request.query()), ("/chat", Some("room=1")));
    assert_eq!(request.key(), None);
    let (response, conn) =
        hybi::http::accept::<()>(&request, Accept::new().protocol("chat"), Config::default())
            .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // No Upgrade, Connection or Sec-WebSocket-Accept over HTTP/2 (RFC 8441 §5).
    assert_eq!(
        fields(response.headers()),
        [("sec-websocket-protocol".to_string(), "chat".to_string())]
    );
    assert_eq!((conn.state(), conn.protocol()), (State::Open, Some("chat")));

    // RFC 9220: HTTP/3 the same way.
    let mut h3 = h2(&[]);
    h3.version = Version::HTTP_3;
    assert!(hybi::http::request(&h3, Some("websocket")).is_ok());
}

/// Each refusal: the core's error, and the response `error_response` makes of it (the core's
/// status and extra headers, its message as the body, no Content-Length or Connection).
#[test]
fn every_refusal_has_the_cores_status_headers_and_body() {
    let post = {
        let mut p = h1(&[]);
        p.method = Method::POST;
        p
    };
    let http10 = |method: Method| {
        let mut p = h1(&[]);
        p.version = Version::HTTP_10;
        p.method = method;
        p
    };
    let h2_get = {
        let mut p = h2(&[]);
        p.method = Method::GET;
        p
    };
    // (what, the request, its `:protocol`, the error, its status, the extra headers)
    type Case = (
        &'static str,
        http::request::Parts,
        Option<&'static str>,
        HandshakeError,
        u16,
        Vec<(&'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "not an upgrade",
            without(h1(&[]), "upgrade"),
            None,
            HandshakeError::MissingUpgrade,
            400,
            vec![],
        ),
        (
            "no Connection: upgrade",
            with(h1(&[]), "connection", "keep-alive"),
            None,
            HandshakeError::MissingConnectionUpgrade,
            400,
            vec![],
        ),
        (
            "no key",
            without(h1(&[]), "sec-websocket-key"),
            None,
            HandshakeError::MissingKey,
            400,
            vec![],
        ),
        (
            "bad key",
            with(h1(&[]), "sec-websocket-key", "not base64 of 16 bytes"),
            None,
            HandshakeError::InvalidKey,
            400,
            vec![],
        ),
        (
            "wrong version",
            with(h1(&[]), "sec-websocket-version", "8"),
            None,
            HandshakeError::UnsupportedVersion,
            426,
            vec![("sec-websocket-version", "13")],
        ),
        (
            "no version",
            without(h1(&[]), "sec-websocket-version"),
            None,
            HandshakeError::UnsupportedVersion,
            426,
            vec![("sec-websocket-version", "13")],
        ),
        (
            "no Host",
            without(h1(&[]), "host"),
            None,
            HandshakeError::MissingHost,
            400,
            vec![],
        ),
        (
            "POST",
            post,
            None,
            HandshakeError::MethodNotGet,
            405,
            vec![("allow", "GET")],
        ),
        (
            "HTTP/1.0 GET",
            http10(Method::GET),
            None,
            HandshakeError::UnsupportedHttpVersion,
            505,
            vec![],
        ),
        (
            "HTTP/1.0 POST",
            http10(Method::POST),
            None,
            HandshakeError::MethodNotGet,
            405,
            vec![("allow", "GET")],
        ),
        (
            "HTTP/2 without :protocol",
            h2(&[]),
            None,
            HandshakeError::MissingProtocol,
            400,
            vec![],
        ),
        (
            "HTTP/2 :protocol other",
            h2(&[]),
            Some("h2c"),
            HandshakeError::MissingProtocol,
            400,
            vec![],
        ),
        (
            "HTTP/2 GET",
            h2_get,
            Some("websocket"),
            HandshakeError::MethodNotConnect,
            405,
            vec![("allow", "CONNECT")],
        ),
        (
            "bad subprotocol list",
            h1(&[("sec-websocket-protocol", "a b")]),
            None,
            HandshakeError::Malformed("invalid Sec-WebSocket-Protocol"),
            400,
            vec![],
        ),
    ];
    for (what, parts, protocol, error, status, extra) in cases {
        let got = hybi::http::request(&parts, protocol).unwrap_err();
        assert_eq!(got, error, "{what}");
        assert_eq!(got.http_status(), status, "{what}");
        let response: http::Response<String> = hybi::http::error_response(&got);
        assert_eq!(response.status().as_u16(), status, "{what}");
        let mut want: Vec<(String, String)> = extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        want.push(("content-type".into(), "text/plain; charset=utf-8".into()));
        assert_eq!(fields(response.headers()), want, "{what}");
        assert_eq!(response.body(), &format!("{error}\n"), "{what}");
        // The core's own bytes for the same error carry the same status line.
        let core = String::from_utf8(error.response()).unwrap();
        assert!(
            core.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {core}"
        );
    }
}

#[test]
fn the_application_chooses_the_subprotocol_and_may_refuse() {
    let request = hybi::http::request(&h1(&[("sec-websocket-protocol", "a, b")]), None).unwrap();
    // Not offered: refused, nothing built.
    let err = hybi::http::accept::<()>(&request, Accept::new().protocol("c"), Config::default());
    assert_eq!(err.unwrap_err(), UsageError::ProtocolNotOffered("c".into()));
    // No choice: the first offered one in Config::protocols.
    let config = Config::default().with_protocols(["b", "a"]);
    let (response, conn) = hybi::http::accept::<()>(&request, Accept::new(), config).unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "a");
    assert_eq!(conn.protocol(), Some("a"));
    // An extra header on the answer.
    let (response, _) = hybi::http::accept::<()>(
        &request,
        Accept::new().header("Set-Cookie", "id=1"),
        Config::default(),
    )
    .unwrap();
    assert_eq!(response.headers()["set-cookie"], "id=1");
    assert!(response.headers().get("sec-websocket-protocol").is_none());

    let reject = Reject::new(403)
        .header("X-Reason", "origin")
        .body("go away");
    let response: http::Response<Vec<u8>> = hybi::http::reject_response(&reject).unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        fields(response.headers()),
        [
            ("x-reason", "origin"),
            ("content-type", "text/plain; charset=utf-8")
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
    );
    assert_eq!(response.body(), b"go away");
    // Any number of headers.
    let many = (0..20).fold(Reject::new(429), |r, i| r.header(format!("x-{i}"), "v"));
    let response: http::Response<Vec<u8>> = hybi::http::reject_response(&many).unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers().len(), 20);
    assert!(response.body().is_empty());
    let err = hybi::http::reject_response::<Vec<u8>>(&Reject::new(200));
    assert_eq!(err.unwrap_err(), UsageError::InvalidStatus(200));
}

/// A client request from an `http::Request<()>`: custom headers (Authorization, cookies) are
/// sent, the handshake's own fields are written by the handshake, and the server's answer
/// comes back as an `http::Response<()>`.
#[test]
fn client_request_and_response_as_http_types() {
    let request = HttpRequest::get("ws://127.0.0.1:9001/chat?x=1")
        .header("host", "127.0.0.1:9001")
        .header("authorization", "Bearer token")
        .header("cookie", "a=1; b=2")
        .header("x-custom", "é")
        .header("origin", "http://example.com")
        .header("sec-websocket-protocol", "chat, superchat")
        .header("sec-websocket-extensions", "x-foo; a=\"1,2\", x-bar")
        // The handshake's own: written by it, a fresh key every time.
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA==")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let client = ClientRequest::try_from(request).unwrap();
    assert_eq!((client.host(), client.port()), ("127.0.0.1", 9001));
    assert_eq!(client.uri(), "/chat?x=1");
    assert_eq!(client.offered_protocols(), ["chat", "superchat"]);
    assert_eq!(client.offered_extensions(), ["x-foo; a=\"1,2\"", "x-bar"]);
    client.validate().unwrap();
    let mut head = Vec::new();
    client.encode(KEY, &mut head);
    let head = String::from_utf8(head).unwrap();
    for line in [
        "authorization: Bearer token\r\n",
        "cookie: a=1; b=2\r\n",
        "x-custom: é\r\n",
        "Origin: http://example.com\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    ] {
        assert!(head.contains(line), "{line:?} missing from\n{head}");
    }
    assert_eq!(head.matches("Sec-WebSocket-Key").count(), 1, "{head}");
    assert_eq!(
        head.to_ascii_lowercase().matches("host:").count(),
        1,
        "{head}"
    );
    assert_eq!(
        head.to_ascii_lowercase()
            .matches("upgrade: websocket")
            .count(),
        1
    );

    // The server's 101 as an http::Response.
    let mut conn = Connection::client(client, Config::default());
    let sent = take_output(&mut conn);
    let Status::Complete((req, _)) = Request::parse(&sent, 8192, 64).unwrap() else {
        panic!("incomplete request")
    };
    assert_eq!(req.header("authorization"), Some(&b"Bearer token"[..]));
    let mut server = Connection::server(Config::default());
    server.handle_input(&sent);
    assert!(matches!(server.next_event(), Some(Event::Request(_))));
    server.accept(Accept::new().protocol("chat")).unwrap();
    conn.handle_input(&take_output(&mut server));
    let Some(Event::Open(open)) = conn.next_event() else {
        panic!("not open")
    };
    let response: &Response = open.response.as_ref().unwrap();
    let http_response = hybi::http::client_response(response);
    assert_eq!(http_response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(http_response.headers()["sec-websocket-protocol"], "chat");
    assert_eq!(http_response.headers()["upgrade"], "websocket");
    let converted: http::Response<()> = response.into();
    assert_eq!(converted.headers(), http_response.headers());
}

#[test]
fn client_request_refusals() {
    let get = |uri: &str| HttpRequest::get(uri);
    let err = |r: HttpRequest<()>| hybi::http::client_request(&r).unwrap_err();
    assert!(matches!(
        err(get("/chat").body(()).unwrap()),
        HandshakeError::InvalidUrl(_)
    ));
    assert!(matches!(
        err(get("http://h/chat").body(()).unwrap()),
        HandshakeError::InvalidUrl(_)
    ));
    assert!(matches!(
        err(get("ws://h/").header("host", "other").body(()).unwrap()),
        HandshakeError::InvalidUrl(_)
    ));
    assert_eq!(
        err(get("ws://h/")
            .header("sec-websocket-version", "8")
            .body(())
            .unwrap()),
        HandshakeError::UnsupportedVersion
    );
    assert_eq!(
        err(HttpRequest::post("ws://h/").body(()).unwrap()),
        HandshakeError::MethodNotGet
    );
    assert_eq!(
        err(get("ws://h/").version(Version::HTTP_2).body(()).unwrap()),
        HandshakeError::UnsupportedHttpVersion
    );
    let not_utf8 = http::HeaderValue::from_bytes(b"\xff").unwrap();
    assert!(matches!(
        err(get("ws://h/").header("x", not_utf8).body(()).unwrap()),
        HandshakeError::Malformed(_)
    ));
    // The Host the URL gives, in any case, is fine.
    assert!(hybi::http::client_request(
        &get("ws://Example.com:8080/")
            .header("host", "example.COM:8080")
            .body(())
            .unwrap()
    )
    .is_ok());
}

/// Frames the client sent right behind its request, which the HTTP server read with the head:
/// given to the connection first (`WebSocketStream::with_read_buf`), they are not lost, and
/// what the connection did not use comes back with the transport.
#[tokio::test]
async fn bytes_read_past_the_head_go_to_the_connection_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = hybi::http::request(&h1(&[]), None).unwrap();
    let (_, conn) = hybi::http::accept::<()>(&request, Accept::new(), Config::default()).unwrap();
    let mut pipelined = support::cframe(true, 1, b"first");
    pipelined.extend(support::cframe(true, 2, b"second"));
    // Half a frame header: not usable yet.
    pipelined.push(0x81);
    let (server_io, mut client_io) = tokio::io::duplex(1 << 16);
    let mut ws = hybi::tokio::WebSocketStream::with_read_buf(
        server_io,
        conn,
        &pipelined,
        hybi::Timeouts::default(),
    );
    assert_eq!(ws.recv().await.unwrap(), Message::text("first"));
    assert_eq!(ws.recv().await.unwrap(), Message::binary(&b"second"[..]));
    ws.send_message("answer").await.unwrap();
    let mut answer = [0u8; 8];
    client_io.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"\x81\x06answer");
    let (_io, unread) = ws.into_inner_with_unread();
    assert_eq!(unread, Some(Bytes::from_static(&[0x81])));
    client_io.shutdown().await.unwrap();

    // The blocking adapter, the same way.
    let (_, conn) = hybi::http::accept::<()>(&request, Accept::new(), Config::default()).unwrap();
    let transport = std::io::Cursor::new(Vec::new());
    let mut ws = hybi::blocking::WebSocket::with_read_buf(
        Rw(transport),
        conn,
        &support::cframe(true, 1, b"hi"),
        hybi::Timeouts::default(),
    );
    assert_eq!(ws.recv().unwrap(), Message::text("hi"));
    // A frame half taken: its bytes belong to the WebSocket, none come back.
    let mut conn = hybi::Connection::accepted(
        Config::default(),
        &hybi::Negotiated::new(&request, Accept::new(), &Config::default()).unwrap(),
    );
    let big = support::cframe(true, 2, &[7; 300]);
    conn.handle_input(&big[..100]);
    assert_eq!(conn.unread(), None);
    let ws = hybi::blocking::WebSocket::new(
        Rw(std::io::Cursor::new(Vec::new())),
        conn,
        hybi::Timeouts::default(),
    );
    assert_eq!(ws.into_inner_with_unread().1, None);
}

/// A transport over a cursor: reads what it holds (nothing: EOF), writes into it.
struct Rw(std::io::Cursor<Vec<u8>>);

impl std::io::Read for Rw {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl std::io::Write for Rw {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Timeouts and shutdown do nothing (the defaults).
impl hybi::blocking::Transport for Rw {}

/// RFC 9113 §8.2.2: an HTTP/2 handshake request carries no connection-specific field, whatever
/// case the application wrote it in; other extra fields go out, lowercase.
#[test]
fn an_http2_handshake_request_refuses_connection_specific_fields() {
    let handshake = |name: &str, value: &str| {
        let request = ClientRequest::new("wss://example.com/chat")
            .unwrap()
            .header(name, value);
        hybi::ClientHandshake::new(request, Config::default(), HttpVersion::Http2)
    };
    for name in [
        "Connection",
        "keep-alive",
        "Proxy-Connection",
        "TRANSFER-ENCODING",
        "Upgrade",
        "te",
        "Host",
    ] {
        assert_eq!(
            hybi::http::handshake_request(&handshake(name, "x")).unwrap_err(),
            UsageError::InvalidHeader,
            "{name}"
        );
    }
    let head = hybi::http::handshake_request(&handshake("Authorization", "Bearer t")).unwrap();
    assert_eq!(head.method(), Method::CONNECT);
    assert_eq!(head.uri(), "https://example.com/chat");
    assert_eq!(head.headers()["authorization"], "Bearer t");
}
