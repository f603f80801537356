//! Limits: frame size, message size, fragment count; all fail with 1009 before buffering.

use crate::support::*;
use hybi::{CloseCode, Config, Role};

#[test]
fn frame_over_max_frame_size_fails_from_the_header() {
    let mut server = open_with(Role::Server, Config::default().with_max_frame_size(1000));
    let wire = cframe(true, 2, &vec![0; 1001]);
    // Only the header: the limit is enforced before any payload arrives.
    assert_failing(&mut server, &wire[..8], CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn frame_claiming_2_pow_63_minus_1_bytes() {
    let mut server = open(Role::Server);
    let mut wire = vec![0x82, 0xff];
    wire.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    wire.extend_from_slice(&KEY);
    assert_failing(&mut server, &wire, CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn message_over_max_message_size_from_small_fragments() {
    let mut server = open_with(Role::Server, Config::default().with_max_message_size(100));
    let mut wire = Vec::new();
    wire.extend(cframe(false, 2, &[0; 40]));
    wire.extend(cframe(false, 0, &[0; 40]));
    wire.extend(cframe(false, 0, &[0; 40]));
    assert_failing(&mut server, &wire, CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn message_at_exactly_the_limit_is_fine() {
    let mut server = open_with(Role::Server, Config::default().with_max_message_size(100));
    let mut wire = cframe(false, 2, &[0; 60]);
    wire.extend(cframe(true, 0, &[0; 40]));
    assert_eq!(feed(&mut server, &wire).0, ["binary len=100"]);
}

#[test]
fn too_many_fragments() {
    let mut server = open_with(Role::Server, Config::default().with_max_fragments(10));
    let mut wire = cframe(false, 2, b"");
    for _ in 0..10 {
        wire.extend(cframe(false, 0, b""));
    }
    assert_failing(&mut server, &wire, CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn a_million_empty_fragments_end_with_1009_under_the_default_limit() {
    let mut server = open(Role::Server);
    let empty = cframe(false, 0, b"");
    server.handle_input(&cframe(false, 2, b""));
    let mut chunk = Vec::new();
    for _ in 0..10_000 {
        chunk.extend_from_slice(&empty);
    }
    let mut closed = None;
    for _ in 0..100 {
        server.handle_input(&chunk);
        while let Some(ev) = server.next_event() {
            if let hybi::Event::Closed(o) = ev {
                closed = Some(o);
            }
        }
        if closed.is_some() {
            break;
        }
    }
    assert_eq!(closed.expect("no close").code, CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn header_claim_does_not_allocate_the_claimed_size() {
    // A 16 MiB claim with 10 bytes behind it: the read buffer grows with the data only.
    let mut server = open(Role::Server);
    let mut wire = vec![0x82, 0xff];
    wire.extend_from_slice(&(16u64 << 20).to_be_bytes());
    wire.extend_from_slice(&KEY);
    wire.extend_from_slice(&[0; 10]);
    server.handle_input(&wire);
    let mut reserved = 0;
    server.read_into(|buf| reserved = buf.capacity());
    assert!(reserved < 64 << 10, "reserved {reserved}");
}
