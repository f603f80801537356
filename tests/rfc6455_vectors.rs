//! The byte examples of RFC 6455 §5.7 and the key of §1.3, checked in both directions:
//! what our side sends is byte-exact, and what the other side receives decodes to the message.

mod support;
use hybi::{handshake, MessageKind, Role};
use support::*;

const HELLO_UNMASKED: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const HELLO_MASKED: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

#[test]
fn accept_key_example_section_1_3() {
    assert_eq!(
        handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn single_frame_unmasked_text() {
    let mut server = open(Role::Server);
    server.send_text("Hello").unwrap();
    assert_eq!(take_output(&mut server), HELLO_UNMASKED);
    let mut client = open(Role::Client);
    let (ev, out) = feed(&mut client, HELLO_UNMASKED);
    assert_eq!(ev, ["text \"Hello\""]);
    assert!(out.is_empty());
}

#[test]
fn single_frame_masked_text() {
    let mut client = open(Role::Client); // masks with 37 fa 21 3d, the RFC's key
    client.send_text("Hello").unwrap();
    assert_eq!(take_output(&mut client), HELLO_MASKED);
    let mut server = open(Role::Server);
    let (ev, _) = feed(&mut server, HELLO_MASKED);
    assert_eq!(ev, ["text \"Hello\""]);
}

#[test]
fn fragmented_unmasked_text() {
    let wire: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let mut server = open(Role::Server);
    server
        .send_fragment(MessageKind::Text, b"Hel", false)
        .unwrap();
    server
        .send_fragment(MessageKind::Text, b"lo", true)
        .unwrap();
    assert_eq!(take_output(&mut server), wire);
    let mut client = open(Role::Client);
    assert_eq!(feed(&mut client, wire).0, ["text \"Hello\""]);
}

#[test]
fn unmasked_ping_and_masked_pong() {
    // The RFC's ping from a server, and the masked pong a client answers it with.
    let ping: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let pong: &[u8] = &[
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut client = open(Role::Client);
    client.handle_input(ping);
    assert_eq!(drain_events(&mut client), ["ping [72, 101, 108, 108, 111]"]);
    assert_eq!(take_output(&mut client), pong);
    let mut server = open(Role::Server);
    server.send_ping(b"Hello").unwrap();
    assert_eq!(take_output(&mut server), ping);
    assert_eq!(feed(&mut server, pong).0, ["pong [72, 101, 108, 108, 111]"]);
}

#[test]
fn binary_256_bytes_16_bit_length() {
    let payload: Vec<u8> = (0..256).map(|i| i as u8).collect();
    let mut wire = vec![0x82, 0x7e, 0x01, 0x00];
    wire.extend_from_slice(&payload);
    let mut server = open(Role::Server);
    server.send_binary(&payload).unwrap();
    assert_eq!(take_output(&mut server), wire);
    let mut client = open(Role::Client);
    assert_eq!(feed(&mut client, &wire).0, ["binary len=256"]);
}

#[test]
fn binary_64k_64_bit_length() {
    let payload = vec![0xabu8; 65536];
    let mut wire = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    wire.extend_from_slice(&payload);
    let mut server = open(Role::Server);
    server.send_binary(&payload).unwrap();
    assert_eq!(take_output(&mut server), wire);
    let mut client = open(Role::Client);
    assert_eq!(feed(&mut client, &wire).0, ["binary len=65536"]);
}
