//! permessage-deflate (RFC 7692) through the connection: negotiation, RSV1 on the wire, the
//! RFC's example frames, fragmentation, context takeover, limits on the inflated size.

mod support;
use hybi::frame::Opcode;
use hybi::{
    ClientRequest, CloseCode, Config, Connection, DeflateConfig, Event, Failure, HandshakeError,
    Message, State,
};
use support::*;

fn pair(client: DeflateConfig, server: DeflateConfig) -> Pair {
    Pair::with(
        client_config().with_deflate(client),
        Config::default().with_deflate(server),
        "ws://example.com/",
    )
}

#[test]
fn negotiated_and_round_trips() {
    let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
    assert_eq!(p.client.state(), State::Open);
    let text = "{\"type\":\"message\",\"text\":\"hello hello hello hello hello\"}".repeat(4);
    p.client.send_text(&text).unwrap();
    let wire = take_output(&mut p.client);
    let frames = decode_frames(&wire);
    assert!(frames[0].0.rsv1, "compressed message has RSV1");
    assert!(frames[0].1.len() < text.len() / 2);
    p.server.handle_input(&wire);
    assert_eq!(
        drain_events(&mut p.server),
        [format!("text len={}", text.len())]
    );
    // Below the threshold: sent as is, RSV1 clear.
    p.server.send_text("hi").unwrap();
    let frames = decode_frames(&take_output(&mut p.server));
    assert!(!frames[0].0.rsv1);
    assert_eq!(frames[0].1, b"hi");
}

#[test]
fn open_events_name_the_extension() {
    let mut client = Connection::client(
        ClientRequest::new("ws://h/").unwrap(),
        client_config().with_deflate(DeflateConfig::default()),
    );
    let req = String::from_utf8(take_output(&mut client)).unwrap();
    assert!(
        req.contains("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
        "{req}"
    );
    let mut server = Connection::server(
        Config::default().with_deflate(DeflateConfig::default().with_client_max_window_bits(12)),
    );
    server.handle_input(req.as_bytes());
    assert!(matches!(server.next_event(), Some(Event::Request(_))));
    server.accept(hybi::Accept::new()).unwrap();
    let Some(Event::Open(h)) = server.next_event() else {
        panic!()
    };
    assert_eq!(
        h.extensions,
        ["permessage-deflate; client_max_window_bits=12"]
    );
    client.handle_input(&take_output(&mut server));
    let Some(Event::Open(h)) = client.next_event() else {
        panic!()
    };
    assert_eq!(
        h.extensions,
        ["permessage-deflate; client_max_window_bits=12"]
    );
}

#[test]
fn server_without_deflate_declines() {
    let mut p = Pair::with(
        client_config().with_deflate(DeflateConfig::default()),
        Config::default(),
        "ws://example.com/",
    );
    p.client.send_text(&"a".repeat(1000)).unwrap();
    let wire = take_output(&mut p.client);
    assert!(!decode_frames(&wire)[0].0.rsv1);
    p.server.handle_input(&wire);
    assert_eq!(drain_events(&mut p.server), ["text len=1000"]);
}

/// RFC 7692 §7.2.3.1 and §7.2.3.2, as frames a server sends (unmasked).
#[test]
fn rfc7692_example_frames() {
    let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
    // A message compressed into one frame: "Hello".
    let one = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    // The same, fragmented: RSV1 only on the first frame.
    let frag = [
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ];
    // With context takeover, the second "Hello" is a back-reference.
    let again = [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00];
    p.client.handle_input(&one);
    p.client.handle_input(&again);
    assert_eq!(
        drain_events(&mut p.client),
        ["text \"Hello\"", "text \"Hello\""]
    );
    let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
    p.client.handle_input(&frag);
    assert_eq!(drain_events(&mut p.client), ["text \"Hello\""]);
}

#[test]
fn fragmented_compressed_messages_and_streaming() {
    let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let mut p = Pair::with(
        client_config()
            .with_deflate(DeflateConfig::default())
            .with_write_fragment_size(Some(100)),
        Config::default()
            .with_deflate(DeflateConfig::default())
            .with_stream_fragments(true),
        "ws://example.com/",
    );
    p.client.send_text(&text).unwrap();
    let wire = take_output(&mut p.client);
    let frames = decode_frames(&wire);
    assert!(frames.len() > 5 && frames[0].0.rsv1 && frames[1..].iter().all(|f| !f.0.rsv1));
    p.server.handle_input(&wire);
    let mut got = Vec::new();
    let mut fins = 0;
    while let Some(ev) = p.server.next_event() {
        if let Event::Fragment(f) = ev {
            got.extend_from_slice(&f.data);
            fins += f.fin as usize;
        }
    }
    assert_eq!((got, fins), (text.into_bytes(), 1));
}

#[test]
fn context_takeover_and_no_context_takeover() {
    let msg = "{\"type\":\"message\",\"from\":\"alice\",\"text\":\"the quick brown fox\"}";
    let sizes = |cfg: DeflateConfig| {
        let mut p = pair(cfg, DeflateConfig::default());
        let mut sizes = Vec::new();
        for _ in 0..3 {
            p.client.send_text(msg).unwrap();
            let wire = take_output(&mut p.client);
            sizes.push(wire.len());
            p.server.handle_input(&wire);
            assert_eq!(drain_events(&mut p.server), [format!("text {msg:?}")]);
        }
        sizes
    };
    let takeover = sizes(DeflateConfig::default());
    assert!(takeover[1] < takeover[0], "{takeover:?}");
    let fresh = sizes(DeflateConfig::default().with_client_no_context_takeover(true));
    assert_eq!(fresh[0], fresh[1], "{fresh:?}");
}

#[test]
fn zip_bomb_fails_with_1009_at_the_limit() {
    let mut p = Pair::with(
        client_config().with_deflate(DeflateConfig::default()),
        Config::default()
            .with_deflate(DeflateConfig::default())
            .with_max_message_size(1 << 20),
        "ws://example.com/",
    );
    p.client.send_binary(&vec![0u8; 64 << 20]).unwrap();
    let wire = take_output(&mut p.client);
    assert!(
        wire.len() < 256 << 10,
        "64 MiB of zeros compresses to {} bytes",
        wire.len()
    );
    assert_failing(&mut p.server, &wire, CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn rsv1_rules() {
    // RSV1 on a continuation frame, or on a control frame: 1002 (RFC 7692 §6.1).
    let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
    let mut wire = frame_rsv(false, 4, 1, &[0xf2, 0x48], None);
    wire.extend(frame_rsv(true, 4, 0, &[0xcd], None));
    assert_failing(&mut p.client, &wire, CloseCode::PROTOCOL_ERROR);
    let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
    assert_failing(
        &mut p.client,
        &frame_rsv(true, 4, 9, b"", None),
        CloseCode::PROTOCOL_ERROR,
    );
    // RSV2/RSV3 are never defined.
    let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
    assert_failing(
        &mut p.client,
        &frame_rsv(true, 6, 1, b"x", None),
        CloseCode::PROTOCOL_ERROR,
    );
    // Corrupt DEFLATE data.
    let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
    assert_failing(
        &mut p.client,
        &frame_rsv(true, 4, 2, &[0xff; 16], None),
        CloseCode::PROTOCOL_ERROR,
    );
    // Invalid UTF-8 inside a compressed text message: 1007.
    let mut p = pair(
        DeflateConfig::default(),
        DeflateConfig::default().with_threshold(0),
    );
    p.server
        .send_binary(b"\xff\xfe\xfd\xff\xfe\xfd\xff\xfe\xfd\xff\xfe\xfd")
        .unwrap();
    let mut frames = decode_frames(&take_output(&mut p.server));
    let (h, payload) = frames.remove(0);
    assert!(h.rsv1);
    assert_failing(
        &mut p.client,
        &frame_rsv(true, 4, 1, &payload, None),
        CloseCode::INVALID_PAYLOAD,
    );
}

#[test]
fn client_fails_on_an_invalid_answer() {
    let mut client = Connection::client(
        ClientRequest::new("ws://h/").unwrap(),
        client_config().with_deflate(DeflateConfig::default()),
    );
    let req = String::from_utf8(take_output(&mut client)).unwrap();
    let key = req
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let accept = hybi::handshake::accept_key(key.as_bytes());
    client.handle_input(format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99\r\n\r\n").as_bytes());
    let mut err = None;
    while let Some(ev) = client.next_event() {
        if let Event::Closed(o) = ev {
            err = o.error.clone();
        }
    }
    assert!(
        matches!(err, Some(Failure::Handshake(HandshakeError::Extension(_)))),
        "{err:?}"
    );
}

#[test]
fn server_sends_compressed_binary_zero_copy_path_disabled() {
    let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
    let payload = bytes::Bytes::from(vec![7u8; 4096]);
    p.server.send(Message::Binary(payload.clone())).unwrap();
    let wire = take_output(&mut p.server);
    let frames = decode_frames(&wire);
    assert_eq!(frames[0].0.opcode, Opcode::Binary);
    assert!(frames[0].0.rsv1 && frames[0].1.len() < 100);
    p.client.handle_input(&wire);
    assert_eq!(drain_events(&mut p.client), ["binary len=4096"]);
}

/// Found by the `inflate` fuzz target: a compressed text message whose DEFLATE data inflates to
/// invalid UTF-8 and then turns corrupt. Fed byte by byte, the invalid byte was found first
/// (1007); fed at once, the corruption (1002). The first invalid byte now decides either way.
#[test]
fn invalid_utf8_before_corrupt_data_is_1007_however_the_input_is_cut() {
    // "Hello" as in RFC 7692 §7.2.3.1, then garbage instead of the block's end.
    let payload = [
        0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0xc1, 0x29, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
    ];
    let wire = frame_rsv(true, 4, 1, &payload, None);
    for chunk in [wire.len(), 1, 2, 3, 7] {
        let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
        let mut code = None;
        for part in wire.chunks(chunk) {
            p.client.handle_input(part);
            while let Some(ev) = p.client.next_event() {
                if let Event::Closed(o) = ev {
                    code = Some(o.code);
                }
            }
        }
        assert_eq!(code, Some(CloseCode::INVALID_PAYLOAD), "chunks of {chunk}");
    }
}

/// Found by the `inflate` fuzz target: data after a final DEFLATE block (BFINAL, RFC 7692
/// §7.2.3.5) in the same message was ignored when it arrived with the block, but inflated as a
/// new stream (and failed as corrupt) when it arrived in a later read. It is now ignored either
/// way, and the next message starts afresh.
#[test]
fn data_after_a_final_block_is_ignored_however_the_input_is_cut() {
    // A final block holding "P", then bytes that are no DEFLATE stream.
    let payload = [
        0x0b, 0x00, 0x00, 0x81, 0x05, 0x70, 0x6c, 0x61, 0x86, 0x91, 0x96, 0x6f, 0x03, 0xe8,
    ];
    let hello = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut wire = frame_rsv(true, 4, 1, &payload, None);
    wire.extend_from_slice(&hello);
    for chunk in [wire.len(), 1, 3, 5] {
        let mut p = pair(DeflateConfig::default(), DeflateConfig::default());
        let mut events = Vec::new();
        for part in wire.chunks(chunk) {
            p.client.handle_input(part);
            events.extend(drain_events(&mut p.client));
        }
        assert_eq!(
            events,
            ["text \"P\"", "text \"Hello\""],
            "chunks of {chunk}"
        );
    }
}
