//! RFC 6455 §5.1-§5.3 and §5.6: masking rules, RSV bits, opcodes, lengths, pipelining.

use crate::support::*;
use hybi::frame::Opcode;
use hybi::{CloseCode, Config, Message, Role};

#[test]
fn server_fails_on_unmasked_client_frame() {
    // §5.1: "The server MUST close the connection upon receiving a frame that is not masked."
    let mut server = open(Role::Server);
    assert_failing(
        &mut server,
        &sframe(true, 1, b"hi"),
        CloseCode::PROTOCOL_ERROR,
    );
    assert!(server.wants_shutdown());
}

#[test]
fn client_fails_on_masked_server_frame() {
    // §5.1: "A client MUST close a connection if it detects a masked frame."
    let mut client = open(Role::Client);
    assert_failing(
        &mut client,
        &cframe(true, 1, b"hi"),
        CloseCode::PROTOCOL_ERROR,
    );
}

#[test]
fn rsv_bits_without_extension_fail() {
    // §5.2: "MUST be 0 unless an extension is negotiated that defines meanings"
    for rsv in 1..8 {
        let mut client = open(Role::Client);
        assert_failing(
            &mut client,
            &frame_rsv(true, rsv, 1, b"x", None),
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

#[test]
fn reserved_opcodes_fail() {
    // §5.2: reserved non-control 0x3-0x7 and control 0xB-0xF.
    for op in (3..=7).chain(0xb..=0xf) {
        let mut client = open(Role::Client);
        assert_failing(
            &mut client,
            &sframe(true, op, b""),
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

#[test]
fn every_length_form_received() {
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 200_000] {
        let payload = vec![7u8; len];
        let mut server = open(Role::Server);
        let (ev, out) = feed(&mut server, &cframe(true, 2, &payload));
        assert!(out.is_empty());
        let expected = if len <= 32 {
            format!("binary {:?}", &payload[..])
        } else {
            format!("binary len={len}")
        };
        assert_eq!(ev, [expected]);
    }
}

#[test]
fn sent_headers_use_the_minimal_length_form() {
    for (len, hdr) in [(125usize, 2usize), (126, 4), (65535, 4), (65536, 10)] {
        let mut server = open(Role::Server);
        server.send_binary(&vec![0; len]).unwrap();
        assert_eq!(take_output(&mut server).len(), hdr + len);
        let mut client = open(Role::Client);
        client.send_binary(&vec![0; len]).unwrap();
        assert_eq!(take_output(&mut client).len(), hdr + 4 + len);
    }
}

#[test]
fn client_masks_every_frame_with_a_fresh_key() {
    // §5.3: a new, unpredictable key for each frame. The default source is the OS CSPRNG.
    let mut client = hybi::Connection::open(Role::Client, Config::default());
    for _ in 0..20 {
        client.send_binary(b"payload").unwrap();
    }
    let frames = decode_frames(&take_output(&mut client));
    let keys: std::collections::HashSet<_> = frames.iter().map(|f| f.0.mask.unwrap()).collect();
    assert!(keys.len() >= 19, "keys repeat: {keys:?}");
    assert!(frames.iter().all(|f| f.1 == b"payload"));
}

#[test]
fn server_never_masks() {
    let mut server = open(Role::Server);
    server.send_text("a").unwrap();
    server.send_ping(b"p").unwrap();
    server.close(CloseCode::NORMAL, "").unwrap();
    for (h, _) in decode_frames(&take_output(&mut server)) {
        assert!(h.mask.is_none());
    }
}

#[test]
fn many_frames_in_one_read_all_delivered() {
    let mut wire = Vec::new();
    for i in 0..100u8 {
        wire.extend(cframe(true, 2, &[i]));
    }
    let mut server = open(Role::Server);
    let (ev, _) = feed(&mut server, &wire);
    assert_eq!(ev.len(), 100);
    assert_eq!(ev[99], "binary [99]");
}

#[test]
fn zero_copy_send_of_large_server_payload() {
    let mut server = open(Role::Server);
    let payload = bytes::Bytes::from(vec![5u8; 4096]);
    server.send(Message::Binary(payload.clone())).unwrap();
    let chunks: Vec<&[u8]> = server.output_chunks().collect();
    assert_eq!(chunks.len(), 2, "header and payload as separate chunks");
    assert_eq!(chunks[1].as_ptr(), payload.as_ptr(), "payload not copied");
    let frames = decode_frames(&take_output(&mut server));
    assert_eq!(frames[0].0.opcode, Opcode::Binary);
    assert_eq!(frames[0].1, &payload[..]);
}

#[test]
fn partial_writes_are_fine() {
    let mut server = open(Role::Server);
    server.send_text("hello world").unwrap();
    let mut written = Vec::new();
    while !server.pending_output().is_empty() {
        written.push(server.pending_output()[0]);
        server.advance_output(1);
    }
    assert_eq!(decode_frames(&written)[0].1, b"hello world");
    assert_eq!(server.buffered_amount(), 0);
}
