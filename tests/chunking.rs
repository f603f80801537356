//! Property tests of the sans-IO core:
//! - chunking invariance: any split of the input gives the same events and the same output;
//! - encode∘decode is the identity for frame headers;
//! - every frame one role sends decodes (and is accepted) in the other role.

mod support;
use hybi::frame::{FrameHeader, Opcode, Status, MAX_HEADER_LEN};
use hybi::{CloseCode, Config, MessageKind, Role};
use proptest::prelude::*;
use support::*;

/// A random but valid client→server byte stream: messages, fragments, pings, a close.
fn client_stream() -> impl Strategy<Value = Vec<u8>> {
    let item = prop_oneof![
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(text, p)| {
                if text {
                    let s = String::from_utf8_lossy(&p).into_owned();
                    cframe(true, 1, s.as_bytes())
                } else {
                    cframe(true, 2, &p)
                }
            }),
        (proptest::collection::vec(any::<u8>(), 0..125)).prop_map(|p| cframe(true, 9, &p)),
        (proptest::collection::vec(any::<u8>(), 0..125)).prop_map(|p| cframe(true, 10, &p)),
        (proptest::collection::vec("[a-zé€😀]{0,20}", 1..5)).prop_map(|parts| {
            let joined: String = parts.concat();
            let b = joined.as_bytes();
            let mut wire = Vec::new();
            let n = parts.len();
            // Cut the text at byte positions that may split code points.
            let step = b.len() / n + 1;
            let chunks: Vec<&[u8]> = b.chunks(step).collect();
            if chunks.is_empty() {
                return cframe(true, 1, b"");
            }
            for (i, c) in chunks.iter().enumerate() {
                wire.extend(cframe(i + 1 == chunks.len(), if i == 0 { 1 } else { 0 }, c));
            }
            wire
        }),
    ];
    (
        proptest::collection::vec(item, 0..12),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(items, close, garbage)| {
            let mut wire: Vec<u8> = items.concat();
            if close {
                wire.extend(cframe(true, 8, &close_payload(1000, "done")));
            } else if garbage % 3 == 0 {
                // An invalid frame: the connection fails at the same point whatever the split.
                wire.extend(cframe(true, 3, b""));
            }
            wire
        })
}

fn run(chunks: &[&[u8]], stream: bool) -> (Vec<String>, Vec<u8>) {
    let cfg = Config::default().with_stream_fragments(stream);
    let mut server = open_with(Role::Server, cfg);
    let mut events = Vec::new();
    for c in chunks {
        server.handle_input(c);
        events.extend(drain_events(&mut server));
    }
    (events, take_output(&mut server))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_split_gives_the_same_events_and_output(
        wire in client_stream(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = run(&[&wire], false);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for p in points {
            chunks.push(&wire[start..p]);
            start = p;
        }
        chunks.push(&wire[start..]);
        prop_assert_eq!(run(&chunks, false), whole.clone());
        // Byte at a time, too.
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        prop_assert_eq!(run(&bytes, false), whole);
    }

    #[test]
    fn header_encode_decode_identity(
        fin: bool, rsv in 0u8..8, op in prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
        mask: Option<[u8; 4]>, len in prop_oneof![0u64..=125, 126u64..=65535, 65536u64..(1 << 63)],
    ) {
        let opcode = Opcode::try_from(op).unwrap();
        let len = if opcode.is_control() { len % 126 } else { len };
        let fin = fin || opcode.is_control();
        let h = FrameHeader {
            fin, rsv1: rsv & 4 != 0, rsv2: rsv & 2 != 0, rsv3: rsv & 1 != 0,
            opcode, mask, payload_len: len,
        };
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut buf);
        prop_assert_eq!(n, h.encoded_len());
        prop_assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Status::Complete((h, n))));
        // Any strict prefix is partial, never an error.
        for cut in 0..n {
            prop_assert!(FrameHeader::decode(&buf[..cut]).unwrap().is_partial());
        }
    }

    #[test]
    fn decoder_never_panics_and_uses_at_most_its_input(data in proptest::collection::vec(any::<u8>(), 0..20)) {
        if let Ok(Status::Complete((h, n))) = FrameHeader::decode(&data) {
            prop_assert!(n <= data.len());
            prop_assert_eq!(n, h.encoded_len().max(n));
        }
    }

    #[test]
    fn frames_sent_by_one_role_decode_in_the_other(
        msgs in proptest::collection::vec((any::<bool>(), "[ -~é€😀]{0,200}", proptest::collection::vec(any::<u8>(), 0..2000)), 1..8),
        frag in prop::option::of(1usize..300),
        close_code in prop::sample::select(vec![1000u16, 1001, 3000, 4999]),
    ) {
        for role in [Role::Client, Role::Server] {
            let cfg = Config::default().with_write_fragment_size(frag);
            let mut sender = open_with(role, cfg);
            let other = if role == Role::Client { Role::Server } else { Role::Client };
            let mut receiver = open(other);
            let mut expected = Vec::new();
            for (text, s, b) in &msgs {
                if *text {
                    sender.send_text(s).unwrap();
                    expected.push(support::describe(&hybi::Event::Message(hybi::Message::text(s.as_str()))));
                } else {
                    sender.send_binary(b).unwrap();
                    expected.push(support::describe(&hybi::Event::Message(hybi::Message::binary(b.clone()))));
                }
            }
            sender.send_fragment(MessageKind::Binary, b"x", false).unwrap();
            sender.send_ping(b"between").unwrap();
            sender.send_fragment(MessageKind::Binary, b"y", true).unwrap();
            sender.close(CloseCode::from(close_code), "bye").unwrap();
            let out = take_output(&mut sender);
            for (h, _) in decode_frames(&out) {
                prop_assert_eq!(h.mask.is_some(), role == Role::Client);
            }
            receiver.handle_input(&out);
            let mut ev = drain_events(&mut receiver);
            // The close is complete (clean) once the receiver's answer is written.
            let _ = take_output(&mut receiver);
            ev.extend(drain_events(&mut receiver));
            prop_assert_eq!(&ev[..expected.len()], &expected[..]);
            prop_assert_eq!(&ev[expected.len()..expected.len() + 2], &["ping [98, 101, 116, 119, 101, 101, 110]".to_string(), "binary [120, 121]".to_string()]);
            prop_assert_eq!(ev.last().unwrap(), &format!("closed {close_code} \"bye\" Remote clean=true error="));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_in_either_role(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        cut in any::<prop::sample::Index>(),
    ) {
        for role in [Role::Client, Role::Server] {
            let mut conn = open(role);
            let c = cut.index(data.len() + 1);
            conn.handle_input(&data[..c]);
            conn.handle_input(&data[c..]);
            let _ = drain_events(&mut conn);
            let out = take_output(&mut conn);
            // Whatever happened, our output is well-formed frames.
            decode_frames(&out);
            conn.handle_eof();
            let ev = drain_events(&mut conn);
            prop_assert!(ev.len() <= 1);
        }
    }
}
