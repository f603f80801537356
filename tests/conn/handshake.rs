//! RFC 6455 §4: the opening handshake as the connection drives it: negotiation, pipelined
//! bytes, HTTP error responses, limits, and the client's checks of the response.

use crate::support::*;
use hybi::{
    Accept, ClientRequest, Config, Connection, Event, Failure, HandshakeError, Reject, Role, State,
    UsageError,
};

const REQUEST: &str = "GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn response_text(conn: &mut Connection) -> String {
    String::from_utf8_lossy(&take_output(conn)).into_owned()
}

fn handshake_error(conn: &mut Connection) -> HandshakeError {
    let mut err = None;
    while let Some(ev) = conn.next_event() {
        if let Event::Closed(o) = ev {
            if let Some(Failure::Handshake(e)) = &o.error {
                err = Some(e.clone());
            }
        }
    }
    err.expect("no handshake failure reported")
}

#[test]
fn pair_negotiates_subprotocol() {
    let p = Pair::with(
        client_config().with_protocols(["superchat", "chat"]),
        Config::default().with_protocols(["chat"]),
        "ws://example.com:8080/chat",
    );
    assert_eq!(p.server_log[0], "request /chat");
    assert_eq!(p.server_log[1], "open protocol=Some(\"chat\")");
    assert_eq!(p.client_log, ["open protocol=Some(\"chat\")"]);
    assert_eq!(p.client.protocol(), Some("chat"));
    assert_eq!(
        (p.client.state(), p.server.state()),
        (State::Open, State::Open)
    );
}

#[test]
fn server_reads_the_rfc_example_request_and_answers_101() {
    let mut server = Connection::server(Config::default());
    server.handle_input(REQUEST.as_bytes());
    let Some(Event::Request(req)) = server.next_event() else {
        panic!("no request")
    };
    assert_eq!(
        (req.path(), req.query(), req.origin()),
        ("/chat", Some("room=1"), Some("http://example.com"))
    );
    assert_eq!(req.protocols(), ["chat", "superchat"]);
    assert_eq!(
        server.accept(Accept::new().protocol("nope")),
        Err(UsageError::ProtocolNotOffered("nope".into()))
    );
    server.accept(Accept::new().protocol("chat")).unwrap();
    let resp = response_text(&mut server);
    assert!(
        resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{resp}"
    );
    assert!(
        resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{resp}"
    );
    assert!(resp.contains("Sec-WebSocket-Protocol: chat\r\n"), "{resp}");
    assert!(resp.ends_with("\r\n\r\n"));
}

#[test]
fn request_fed_byte_by_byte_is_never_an_error() {
    let mut server = Connection::server(Config::default());
    for b in REQUEST.as_bytes() {
        assert_eq!(server.state(), State::Connecting);
        assert!(server.next_event().is_none());
        server.handle_input(&[*b]);
    }
    assert!(matches!(server.next_event(), Some(Event::Request(_))));
}

#[test]
fn frames_pipelined_behind_the_request_are_kept() {
    let mut wire = REQUEST.as_bytes().to_vec();
    wire.extend(cframe(true, 1, b"early"));
    let mut server = Connection::server(Config::default());
    server.handle_input(&wire);
    assert!(matches!(server.next_event(), Some(Event::Request(_))));
    server.accept(hybi::Accept::new()).unwrap();
    assert_eq!(
        drain_events(&mut server),
        ["open protocol=None", "text \"early\""]
    );
}

#[test]
fn frames_pipelined_behind_the_response_are_kept() {
    let mut p = Pair::open();
    drop(p.client);
    let mut client = Connection::client(ClientRequest::new("ws://h/").unwrap(), client_config());
    let mut server = Connection::server(Config::default());
    server.handle_input(&take_output(&mut client));
    assert!(matches!(server.next_event(), Some(Event::Request(_))));
    server.accept(hybi::Accept::new()).unwrap();
    server.send_text("right behind").unwrap();
    // The 101 and the frame arrive in one read.
    client.handle_input(&take_output(&mut server));
    assert_eq!(
        drain_events(&mut client),
        ["open protocol=None", "text \"right behind\""]
    );
    p.client = client;
}

fn bad_request(req: &str) -> (HandshakeError, String, bool) {
    let mut server = Connection::server(Config::default());
    server.handle_input(req.as_bytes());
    let err = handshake_error(&mut server);
    (err, response_text(&mut server), server.wants_shutdown())
}

#[test]
fn bad_requests_get_http_errors() {
    let ok = REQUEST;
    for (broken, status) in [
        (ok.replace("GET", "POST"), "405"),
        (ok.replace("HTTP/1.1", "HTTP/1.0"), "505"),
        (ok.replace("Upgrade: websocket\r\n", ""), "400"),
        (
            ok.replace("Connection: Upgrade", "Connection: keep-alive"),
            "400",
        ),
        (
            ok.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "400",
        ),
        (ok.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), "400"),
        (ok.replace("Host: server.example.com\r\n", ""), "400"),
        (
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n".to_string(),
            "400",
        ),
    ] {
        let (err, resp, shutdown) = bad_request(&broken);
        assert!(
            resp.starts_with(&format!("HTTP/1.1 {status} ")),
            "{err:?}: {resp}"
        );
        assert_eq!(err.http_status().to_string(), status);
        assert!(shutdown);
    }
}

#[test]
fn wrong_version_gets_426_with_the_supported_version() {
    let (err, resp, _) = bad_request(&REQUEST.replace("Version: 13", "Version: 8"));
    assert_eq!(err, HandshakeError::UnsupportedVersion);
    assert!(resp.starts_with("HTTP/1.1 426 "), "{resp}");
    assert!(resp.contains("Sec-WebSocket-Version: 13\r\n"), "{resp}");
}

#[test]
fn oversized_head_gets_431() {
    let big = REQUEST.replace(
        "\r\n\r\n",
        &format!("\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20)),
    );
    let (err, resp, _) = bad_request(&big);
    assert!(
        matches!(err, HandshakeError::HeadTooLarge { .. }),
        "{err:?}"
    );
    assert!(resp.starts_with("HTTP/1.1 431 "), "{resp}");
    // Without ever ending the head: the limit still applies.
    let mut server = Connection::server(Config::default());
    server.handle_input(b"GET / HTTP/1.1\r\nX: ");
    server.handle_input(&vec![b'a'; 9000]);
    assert!(matches!(
        handshake_error(&mut server),
        HandshakeError::HeadTooLarge { .. }
    ));
}

#[test]
fn ten_thousand_headers_get_431() {
    let many: String = (0..10_000).map(|i| format!("X-{i}: v\r\n")).collect();
    let req = REQUEST.replace("\r\n\r\n", &format!("\r\n{many}\r\n"));
    let cfg = Config::default().with_max_header_bytes(1 << 20);
    let mut server = Connection::server(cfg);
    server.handle_input(req.as_bytes());
    assert!(matches!(
        handshake_error(&mut server),
        HandshakeError::TooManyHeaders { .. }
    ));
    assert!(response_text(&mut server).starts_with("HTTP/1.1 431 "));
}

#[test]
fn reject_with_status_and_body() {
    let mut server = Connection::server(Config::default());
    server.handle_input(REQUEST.as_bytes());
    server.next_event();
    assert_eq!(
        server.reject(Reject::new(200)),
        Err(UsageError::InvalidStatus(200))
    );
    server
        .reject(Reject::new(403).body("forbidden origin"))
        .unwrap();
    let resp = response_text(&mut server);
    assert!(resp.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{resp}");
    assert!(resp.ends_with("\r\n\r\nforbidden origin"), "{resp}");
    assert_eq!(server.state(), State::Closed);
    assert!(server.wants_shutdown());
}

#[test]
fn sending_while_connecting_is_a_usage_error() {
    let mut client = Connection::client(ClientRequest::new("ws://h/").unwrap(), client_config());
    assert_eq!(
        client.send_text("x"),
        Err(UsageError::WrongState(State::Connecting))
    );
}

#[test]
fn eof_during_handshake() {
    let mut client = Connection::client(ClientRequest::new("ws://h/").unwrap(), client_config());
    client.handle_input(b"HTTP/1.1 101 Switching");
    client.handle_eof();
    assert_eq!(handshake_error(&mut client), HandshakeError::Eof);
}

fn client_against(response: impl Fn(&str) -> String) -> Result<(), HandshakeError> {
    let mut client = Connection::client(
        ClientRequest::new("ws://h/").unwrap().protocol("chat"),
        client_config(),
    );
    let req = String::from_utf8(take_output(&mut client)).unwrap();
    let key = req
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_string();
    client.handle_input(response(&hybi::handshake::accept_key(key.as_bytes())).as_bytes());
    match client.state() {
        State::Open => Ok(()),
        _ => Err(handshake_error(&mut client)),
    }
}

#[test]
fn client_checks_the_response() {
    let good = |a: &str| {
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: {a}\r\n\r\n")
    };
    assert_eq!(client_against(good), Ok(()));
    assert_eq!(
        client_against(|a| good(a).replace("101 Switching Protocols", "403 Forbidden")),
        Err(HandshakeError::UnexpectedStatus(403))
    );
    assert_eq!(
        client_against(|a| good(a).replace("Upgrade: WebSocket\r\n", "")),
        Err(HandshakeError::MissingUpgrade)
    );
    assert_eq!(
        client_against(|a| good(a).replace("keep-alive, Upgrade", "keep-alive")),
        Err(HandshakeError::MissingConnectionUpgrade)
    );
    assert_eq!(
        client_against(|_| good("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")),
        Err(HandshakeError::AcceptMismatch)
    );
    assert_eq!(
        client_against(|a| good(a).replace(&format!("Sec-WebSocket-Accept: {a}\r\n"), "")),
        Err(HandshakeError::MissingAccept)
    );
    assert_eq!(
        client_against(|a| good(a).replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: other\r\n\r\n")),
        Err(HandshakeError::UnofferedProtocol("other".into()))
    );
    assert_eq!(
        client_against(|a| good(a).replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        )),
        Err(HandshakeError::UnofferedExtension(
            "permessage-deflate".into()
        ))
    );
}

#[test]
fn client_request_is_well_formed() {
    let mut client = Connection::client(
        ClientRequest::new("wss://example.com:8443/a/b?c=d")
            .unwrap()
            .origin("https://example.com")
            .header("Authorization", "Bearer t"),
        client_config().with_protocols(["chat"]),
    );
    let req = response_text(&mut client);
    assert!(req.starts_with("GET /a/b?c=d HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("Host: example.com:8443\r\n"), "{req}");
    assert!(req.contains("Sec-WebSocket-Version: 13\r\n"));
    assert!(req.contains("Sec-WebSocket-Protocol: chat\r\n"));
    assert!(req.contains("Origin: https://example.com\r\n"));
    assert!(req.contains("Authorization: Bearer t\r\n"));
    let _ = Role::Client;
}
