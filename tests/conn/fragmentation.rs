//! RFC 6455 §5.4: fragmentation, on receive and on send, and streaming delivery.

use crate::support::*;
use hybi::frame::Opcode;
use hybi::{CloseCode, Config, MessageKind, Role, UsageError};

#[test]
fn reassembles_text_and_binary() {
    let mut server = open(Role::Server);
    let mut wire = cframe(false, 1, b"Hel");
    wire.extend(cframe(false, 0, b""));
    wire.extend(cframe(true, 0, b"lo"));
    wire.extend(cframe(false, 2, &[1, 2]));
    wire.extend(cframe(true, 0, &[3]));
    assert_eq!(
        feed(&mut server, &wire).0,
        ["text \"Hello\"", "binary [1, 2, 3]"]
    );
}

#[test]
fn control_frames_between_fragments() {
    // §5.4: "Control frames MAY be injected in the middle of a fragmented message."
    let mut server = open(Role::Server);
    let mut wire = cframe(false, 1, b"a");
    wire.extend(cframe(true, 9, b"p"));
    wire.extend(cframe(false, 0, b"b"));
    wire.extend(cframe(true, 10, b"q"));
    wire.extend(cframe(true, 0, b"c"));
    let (ev, out) = feed(&mut server, &wire);
    assert_eq!(ev, ["ping [112]", "pong [113]", "text \"abc\""]);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0.opcode, &out[0].1[..]), (Opcode::Pong, &b"p"[..]));
}

#[test]
fn continuation_without_start_fails() {
    let mut server = open(Role::Server);
    assert_failing(
        &mut server,
        &cframe(true, 0, b"x"),
        CloseCode::PROTOCOL_ERROR,
    );
}

#[test]
fn new_message_inside_fragmented_message_fails() {
    let mut server = open(Role::Server);
    let mut wire = cframe(false, 1, b"x");
    wire.extend(cframe(true, 2, b"y"));
    assert_failing(&mut server, &wire, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn send_side_fragment_api() {
    let mut client = open(Role::Client);
    client
        .send_fragment(MessageKind::Binary, b"ab", false)
        .unwrap();
    client.send_ping(b"between").unwrap();
    assert_eq!(
        client.send_binary(b"other"),
        Err(UsageError::FragmentOutOfSequence)
    );
    assert_eq!(
        client.send_fragment(MessageKind::Text, b"x", true),
        Err(UsageError::FragmentOutOfSequence)
    );
    client
        .send_fragment(MessageKind::Binary, b"cd", true)
        .unwrap();
    let frames = decode_frames(&take_output(&mut client));
    let shape: Vec<_> = frames
        .iter()
        .map(|(h, p)| (h.opcode, h.fin, p.clone()))
        .collect();
    assert_eq!(
        shape,
        [
            (Opcode::Binary, false, b"ab".to_vec()),
            (Opcode::Ping, true, b"between".to_vec()),
            (Opcode::Continuation, true, b"cd".to_vec()),
        ]
    );
    let mut server = open(Role::Server);
    let wire: Vec<u8> = frames
        .iter()
        .flat_map(|(h, p)| {
            let op = u8::from(h.opcode);
            cframe(h.fin, op, p)
        })
        .collect();
    assert_eq!(
        feed(&mut server, &wire).0,
        [
            "ping [98, 101, 116, 119, 101, 101, 110]",
            "binary [97, 98, 99, 100]"
        ]
    );
}

#[test]
fn text_fragments_may_split_a_code_point_but_not_be_invalid() {
    let mut client = open(Role::Client);
    let euro = "€".as_bytes(); // e2 82 ac
    client
        .send_fragment(MessageKind::Text, &euro[..1], false)
        .unwrap();
    assert_eq!(
        client.send_fragment(MessageKind::Text, b"\xff", false),
        Err(UsageError::InvalidUtf8)
    );
    client
        .send_fragment(MessageKind::Text, &euro[1..], true)
        .unwrap();
    let mut server = open(Role::Server);
    let wire = take_output(&mut client);
    assert_eq!(feed(&mut server, &wire).0, ["text \"€\""]);
}

#[test]
fn write_fragment_size_splits_messages() {
    let cfg = Config::default().with_write_fragment_size(Some(4));
    let mut server = open_with(Role::Server, cfg);
    server.send_text("hello world").unwrap();
    let frames = decode_frames(&take_output(&mut server));
    let shape: Vec<_> = frames
        .iter()
        .map(|(h, p)| (h.opcode, h.fin, p.len()))
        .collect();
    assert_eq!(
        shape,
        [
            (Opcode::Text, false, 4),
            (Opcode::Continuation, false, 4),
            (Opcode::Continuation, true, 3)
        ]
    );
}

#[test]
fn stream_fragments_delivers_pieces_as_they_arrive() {
    let cfg = Config::default().with_stream_fragments(true);
    let mut server = open_with(Role::Server, cfg);
    let payload = vec![9u8; 1000];
    let mut wire = cframe(false, 2, &payload);
    wire.extend(cframe(true, 0, b"end"));
    // Feed the first frame in two halves: the first half is delivered before the frame ends.
    server.handle_input(&wire[..500]);
    let first = drain_events(&mut server);
    assert_eq!(first, ["fragment Binary len=492 fin=false"]);
    server.handle_input(&wire[500..]);
    assert_eq!(
        drain_events(&mut server),
        [
            "fragment Binary len=508 fin=false",
            "fragment Binary len=3 fin=true"
        ]
    );
}

#[test]
fn stream_fragments_checks_utf8_and_size() {
    let cfg = Config::default().with_stream_fragments(true);
    let mut server = open_with(Role::Server, cfg.clone());
    let mut wire = cframe(false, 1, "κό".as_bytes());
    wire.extend(cframe(true, 0, b"\xff"));
    assert_failing(&mut server, &wire, CloseCode::INVALID_PAYLOAD);
    let mut server = open_with(Role::Server, cfg.with_max_message_size(10));
    let mut wire = cframe(false, 2, &[0; 8]);
    wire.extend(cframe(true, 0, &[0; 8]));
    assert_failing(&mut server, &wire, CloseCode::MESSAGE_TOO_BIG);
}
