//! RFC 6455 §5.5.1, §7.1-§7.4: the closing handshake.

use crate::support::*;
use hybi::frame::Opcode;
use hybi::{CloseCode, Role, State, UsageError};

#[test]
fn client_initiated_close_transcript() {
    let mut p = Pair::new();
    p.take_logs();
    p.client.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(p.client.state(), State::Closing);
    assert_eq!(p.client.send_text("late"), Err(UsageError::SendAfterClose));
    p.drive();
    let (c, s) = p.take_logs();
    assert_eq!(
        s,
        [
            "close-received 1000 \"bye\"",
            "closed 1000 \"bye\" Remote clean=true error="
        ]
    );
    // The server echoes the code and closes TCP first (§7.1.1).
    assert!(p.server.wants_shutdown());
    assert_eq!(
        c,
        [
            "close-received 1000 \"\"",
            "closed 1000 \"\" Local clean=true error="
        ]
    );
    assert_eq!(p.client.state(), State::Closed);
    assert!(!p.client.wants_shutdown() || p.client.close_outcome().is_some());
    assert!(p.client.close_outcome().unwrap().is_normal());
}

#[test]
fn server_initiated_close() {
    let mut p = Pair::new();
    p.take_logs();
    p.server.close(CloseCode::GOING_AWAY, "restart").unwrap();
    p.drive();
    let (c, s) = p.take_logs();
    assert_eq!(c[0], "close-received 1001 \"restart\"");
    assert_eq!(c[1], "closed 1001 \"restart\" Remote clean=true error=");
    assert_eq!(s[1], "closed 1001 \"\" Local clean=true error=");
    assert!(p.server.wants_shutdown());
}

#[test]
fn empty_close_is_echoed_empty_and_reported_as_1005() {
    let mut server = open(Role::Server);
    let (ev, out) = feed(&mut server, &cframe(true, 8, b""));
    assert_eq!(ev[0], "close-received 1005 \"\"");
    assert_eq!(out[0].0.opcode, Opcode::Close);
    assert!(out[0].1.is_empty());
}

#[test]
fn messages_still_arrive_after_we_sent_close() {
    // §1.4/§7.1.2: after sending a close, data is received until the peer's close.
    let mut client = open(Role::Client);
    client.close(CloseCode::NORMAL, "").unwrap();
    take_output(&mut client);
    let mut wire = sframe(true, 1, b"in flight");
    wire.extend(sframe(true, 8, &close_payload(1000, "")));
    let (ev, out) = feed(&mut client, &wire);
    assert_eq!(ev[0], "text \"in flight\"");
    assert!(out.is_empty(), "no second close frame");
    assert_eq!(client.state(), State::Closed);
}

#[test]
fn eof_before_close_is_abnormal_1006() {
    let mut client = open(Role::Client);
    client.handle_eof();
    assert_eq!(
        drain_events(&mut client),
        ["closed 1006 \"\" Remote clean=false error="]
    );
    assert!(take_output(&mut client).is_empty(), "1006 is never sent");
}

#[test]
fn input_after_closed_is_ignored() {
    let mut server = open(Role::Server);
    feed(&mut server, &cframe(true, 8, &close_payload(1000, "")));
    assert_eq!(server.state(), State::Closed);
    let (ev, out) = feed(&mut server, &cframe(true, 1, b"late"));
    assert!(ev.is_empty() && out.is_empty());
    server.handle_eof();
    assert!(server.next_event().is_none());
}

#[test]
fn close_codes_that_may_not_be_sent() {
    let mut client = open(Role::Client);
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        assert_eq!(
            client.close(CloseCode::from(code), ""),
            Err(UsageError::InvalidCloseCode(code))
        );
    }
    assert_eq!(
        client.close(CloseCode::NORMAL, &"x".repeat(124)),
        Err(UsageError::ControlTooLong(126))
    );
    assert!(client
        .close(CloseCode::from(4999), &"x".repeat(123))
        .is_ok());
    // A second close is a no-op, like the browser's.
    assert!(client.close(CloseCode::NORMAL, "").is_ok());
    assert_eq!(decode_frames(&take_output(&mut client)).len(), 1);
}

#[test]
fn received_close_codes() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
    ] {
        let mut server = open(Role::Server);
        let (ev, out) = feed(&mut server, &cframe(true, 8, &close_payload(code, "r")));
        assert_eq!(ev[0], format!("close-received {code} \"r\""));
        assert_eq!(
            u16::from_be_bytes([out[0].1[0], out[0].1[1]]),
            code,
            "echoed"
        );
    }
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let mut server = open(Role::Server);
        assert_failing(
            &mut server,
            &cframe(true, 8, &close_payload(code, "")),
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

#[test]
fn close_with_one_byte_payload_fails() {
    let mut server = open(Role::Server);
    assert_failing(
        &mut server,
        &cframe(true, 8, &[3]),
        CloseCode::PROTOCOL_ERROR,
    );
}

#[test]
fn close_reason_with_invalid_utf8_fails_1007() {
    let mut server = open(Role::Server);
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(b"\xce\xba\xff");
    assert_failing(
        &mut server,
        &cframe(true, 8, &payload),
        CloseCode::INVALID_PAYLOAD,
    );
}

#[test]
fn close_while_connecting_abandons() {
    let mut client = hybi::Connection::client(
        hybi::ClientRequest::new("ws://h/").unwrap(),
        client_config(),
    );
    client.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(client.state(), State::Closed);
    assert!(client.wants_shutdown());
}

#[test]
fn reply_to_a_message_precedes_the_close_echo() {
    let mut server = open(Role::Server);
    let mut wire = cframe(true, 1, b"last words");
    wire.extend(cframe(true, 8, &close_payload(1000, "")));
    server.handle_input(&wire);
    while let Some(ev) = server.next_event() {
        if let hybi::Event::Message(m) = ev {
            server.send(m).unwrap();
        }
    }
    let frames = decode_frames(&take_output(&mut server));
    assert_eq!(frames[0].1, b"last words");
    assert_eq!(frames[1].0.opcode, Opcode::Close);
}

#[test]
fn eof_right_after_a_close_frame_reports_the_close() {
    let mut server = open(Role::Server);
    server.handle_input(&cframe(true, 8, &close_payload(4000, "x")));
    server.handle_eof();
    assert_eq!(drain_events(&mut server), ["close-received 4000 \"x\""]);
    // The peer closed only its sending side: our answer still goes out, and completes the
    // closing handshake.
    assert_eq!(server.state(), State::Closing);
    let frames = decode_frames(&take_output(&mut server));
    assert_eq!(frames[0].1, close_payload(4000, ""));
    assert_eq!(
        drain_events(&mut server),
        ["closed 4000 \"x\" Remote clean=true error="]
    );
}

/// Clean means both close frames exchanged (RFC 6455 §7.1.4): the peer's close frame
/// arrived, but ours was never written before the close timeout, so the close is not clean;
/// it keeps the peer's code and says why.
#[test]
fn a_close_whose_answer_was_never_written_is_not_clean() {
    let mut server = open(Role::Server);
    server.send_binary(&[7; 100]).unwrap();
    server.handle_input(&cframe(true, 8, &close_payload(1000, "")));
    assert_eq!(drain_events(&mut server), ["close-received 1000 \"\""]);
    assert!(server.awaiting_close());
    // Part of the output is written, not the close frame.
    server.advance_output(10);
    assert_eq!(server.state(), State::Closing);
    assert!(drain_events(&mut server).is_empty());
    server.timed_out(hybi::Timeout::Close);
    assert_eq!(
        drain_events(&mut server),
        ["closed 1000 \"\" Remote clean=false error=closing handshake timed out"]
    );
    // The same with the output written: clean.
    let mut server = open(Role::Server);
    server.send_binary(&[7; 100]).unwrap();
    let (ev, frames) = feed(&mut server, &cframe(true, 8, &close_payload(1000, "")));
    assert_eq!(frames.last().unwrap().0.opcode, Opcode::Close);
    assert_eq!(
        ev.last().unwrap(),
        "closed 1000 \"\" Remote clean=true error="
    );
}

#[test]
fn timed_out_abandons_and_discards_output() {
    let mut server = open(Role::Server);
    server.send_binary(&[0; 1000]).unwrap();
    server.timed_out(hybi::Timeout::Close);
    assert_eq!(server.buffered_amount(), 0);
    assert!(server.wants_shutdown());
    assert!(!server.awaiting_eof());
    let ev = drain_events(&mut server);
    assert_eq!(
        ev,
        ["closed 1006 \"\" Local clean=false error=closing handshake timed out"]
    );
    // Idle is different: a polite 1001 close.
    let mut server = open(Role::Server);
    server.timed_out(hybi::Timeout::Idle);
    assert_eq!(server.state(), State::Closing);
    let frames = decode_frames(&take_output(&mut server));
    assert_eq!(&frames[0].1[..2], &1001u16.to_be_bytes());
}

/// After the peer's close frame nothing is processed (§5.5.1), also while our answer to it is
/// still being written and more bytes arrive (the close stays clean once the answer is out).
#[test]
fn input_after_the_peers_close_is_ignored_while_the_answer_is_written() {
    let mut server = open(Role::Server);
    server.handle_input(&cframe(true, 8, &close_payload(1000, "")));
    assert_eq!(drain_events(&mut server), ["close-received 1000 \"\""]);
    assert_eq!(server.state(), State::Closing);
    // Garbage, then a frame with a reserved opcode: neither is read.
    server.handle_input(b"ooooooo");
    server.handle_input(&cframe(true, 3, b"x"));
    assert!(drain_events(&mut server).is_empty());
    let (ev, frames) = feed(&mut server, b"");
    assert_eq!(frames.len(), 1);
    assert_eq!(ev, ["closed 1000 \"\" Remote clean=true error="]);
}

/// After a clean close a server over HTTP/1.1 drops the transport at once (its FIN is out, the
/// client sends nothing more), but one accepted over HTTP/2 (RFC 8441) waits for the client's
/// END_STREAM: dropping a stream the client has not ended resets it.
#[test]
fn a_server_over_http2_waits_for_the_clients_end() {
    use hybi::handshake::HttpVersion;
    use hybi::{Accept, Config, Connection, Negotiated, Request};
    let h2: [(&str, &[u8]); 3] = [
        (":protocol", b"websocket"),
        (":authority", b"example.com"),
        ("sec-websocket-version", b"13"),
    ];
    let h1: [(&str, &[u8]); 5] = [
        ("host", b"example.com"),
        ("upgrade", b"websocket"),
        ("connection", b"upgrade"),
        ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", b"13"),
    ];
    for (method, version, fields, waits) in [
        ("CONNECT", HttpVersion::Http2, &h2[..], true),
        ("GET", HttpVersion::Http11, &h1[..], false),
    ] {
        let request = Request::from_head(method, "/", version, fields.iter().copied()).unwrap();
        let negotiated = Negotiated::new(&request, Accept::new(), &Config::default()).unwrap();
        let mut server = Connection::accepted(Config::default(), &negotiated);
        let (ev, _) = feed(&mut server, &cframe(true, 8, &close_payload(1000, "")));
        assert_eq!(
            ev.last().unwrap(),
            "closed 1000 \"\" Remote clean=true error="
        );
        assert!(server.wants_shutdown(), "{version:?}");
        assert_eq!(server.awaiting_eof(), waits, "{version:?}");
        server.handle_eof();
        assert!(!server.awaiting_eof(), "{version:?}");
    }
}
