//! RFC 6455 §7.1.7: failing the connection, and how the failure is reported.

use crate::support::*;
use hybi::{CloseCode, Failure, ProtocolError, Role, State};

#[test]
fn failure_is_reported_with_the_error() {
    let mut server = open(Role::Server);
    server.handle_input(&cframe(true, 0, b"x"));
    let mut last = None;
    while let Some(ev) = server.next_event() {
        last = Some(ev);
    }
    let Some(hybi::Event::Closed(outcome)) = last else {
        panic!("no Closed event")
    };
    assert_eq!(outcome.code, CloseCode::PROTOCOL_ERROR);
    assert!(!outcome.clean);
    assert_eq!(outcome.initiator, hybi::Initiator::Local);
    assert_eq!(
        outcome.error,
        Some(Failure::Protocol(ProtocolError::UnexpectedContinuation))
    );
    assert_eq!(server.close_outcome(), Some(&*outcome));
}

#[test]
fn server_shuts_down_at_once_client_waits_for_server() {
    let mut server = open(Role::Server);
    assert_failing(
        &mut server,
        &sframe(true, 1, b""),
        CloseCode::PROTOCOL_ERROR,
    );
    assert!(server.wants_shutdown());
    let mut client = open(Role::Client);
    assert_failing(
        &mut client,
        &cframe(true, 1, b""),
        CloseCode::PROTOCOL_ERROR,
    );
    assert!(
        !client.wants_shutdown(),
        "§7.1.1: the client waits for the server's TCP close"
    );
    assert!(client.awaiting_eof());
    client.handle_eof();
    assert!(!client.awaiting_eof());
}

#[test]
fn failure_after_we_sent_close_sends_no_second_close() {
    let mut client = open(Role::Client);
    client.close(CloseCode::NORMAL, "").unwrap();
    take_output(&mut client);
    let (ev, out) = feed(&mut client, &sframe(true, 3, b""));
    assert!(out.is_empty());
    assert_eq!(client.state(), State::Closed);
    assert!(ev.last().unwrap().contains("clean=false"));
}

#[test]
fn events_before_the_failure_are_kept() {
    let mut server = open(Role::Server);
    let mut wire = cframe(true, 1, b"good");
    wire.extend(cframe(true, 1, b"\xff"));
    wire.extend(cframe(true, 1, b"never"));
    let (ev, _) = feed(&mut server, &wire);
    assert_eq!(ev[0], "text \"good\"");
    assert!(ev[1].starts_with("closed 1007"));
    assert_eq!(ev.len(), 2);
}

#[test]
fn data_after_close_frame_is_ignored() {
    let mut server = open(Role::Server);
    let mut wire = cframe(true, 8, &close_payload(1000, ""));
    wire.extend(cframe(true, 1, b"after"));
    let (ev, _) = feed(&mut server, &wire);
    assert_eq!(ev.len(), 2);
    assert!(ev[1].starts_with("closed 1000"));
}

/// Autobahn 3.2/4.1.3/5.15 shape: a good message and a bad frame in one read. The reply to the
/// good message goes out before the close frame.
#[test]
fn replies_to_earlier_messages_precede_the_close_frame() {
    let mut server = open(Role::Server);
    let mut wire = cframe(true, 1, b"good");
    wire.extend(frame_rsv(true, 2, 1, b"bad rsv", Some(KEY)));
    server.handle_input(&wire);
    let mut log = Vec::new();
    while let Some(ev) = server.next_event() {
        log.push(describe(&ev));
        if let hybi::Event::Message(m) = ev {
            server.send(m).unwrap();
        }
    }
    assert_eq!(log[0], "text \"good\"");
    assert!(log[1].starts_with("closed 1002"), "{log:?}");
    let frames = decode_frames(&take_output(&mut server));
    assert_eq!(frames[0].1, b"good");
    assert_eq!(frames[1].0.opcode, hybi::frame::Opcode::Close);
    assert_eq!(&frames[1].1[..2], &1002u16.to_be_bytes());
}
