//! RFC 6455 §8.1: text messages must be valid UTF-8; invalid text fails with 1007 at the first
//! bad byte, even mid-frame; a code point split across fragments or reads is fine.

use crate::support::*;
use hybi::{CloseCode, Role};

/// Valid sequences of the kinds the Autobahn suite uses (section 6).
const VALID: &[&str] = &[
    "",
    "Hello-µ@ßöäüàá-UTF-8!!",
    "κόσμε",
    "\u{0}",
    "\u{80}",
    "\u{800}",
    "\u{10000}",
    "\u{7f}",
    "\u{7ff}",
    "\u{ffff}",
    "\u{10ffff}",
    "\u{d7ff}\u{e000}\u{fffd}",
];

/// Invalid sequences: overlong, surrogates, beyond U+10FFFF, lone continuations, truncations.
const INVALID: &[&[u8]] = &[
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xc1\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
    b"\xbf",
    b"\xfe",
    b"\xff",
    b"\xc0",
    b"\xe0\x80",
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
];

fn text_in_fragments(payload: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c <= payload.len())
        .collect();
    bounds.push(payload.len());
    for (i, &end) in bounds.iter().enumerate() {
        let end = end.max(start);
        let op = if i == 0 { 1 } else { 0 };
        wire.extend(cframe(i + 1 == bounds.len(), op, &payload[start..end]));
        start = end;
    }
    wire
}

#[test]
fn valid_text_split_in_every_place() {
    for s in VALID {
        let b = s.as_bytes();
        for cut in 0..=b.len() {
            // As two fragments, and as one frame fed in two reads.
            let mut server = open(Role::Server);
            let (ev, _) = feed(&mut server, &text_in_fragments(b, &[cut]));
            assert_eq!(ev, [format!("text {s:?}")], "fragments cut {cut}");
            let wire = cframe(true, 1, b);
            let mut server = open(Role::Server);
            server.handle_input(&wire[..wire.len() - b.len() + cut]);
            server.handle_input(&wire[wire.len() - b.len() + cut..]);
            assert_eq!(drain_events(&mut server), [format!("text {s:?}")]);
        }
    }
}

#[test]
fn invalid_text_fails_1007_in_every_split() {
    for bad in INVALID {
        for cut in 0..=bad.len() {
            let mut server = open(Role::Server);
            assert_failing(
                &mut server,
                &text_in_fragments(bad, &[cut]),
                CloseCode::INVALID_PAYLOAD,
            );
        }
    }
}

#[test]
fn fails_before_the_frame_completes() {
    // Autobahn 6.4.x: a frame whose payload turns invalid must fail before the rest arrives.
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(b"\xf4\x90\x80\x80");
    payload.extend_from_slice(&[b'a'; 1000]);
    let wire = cframe(true, 1, &payload);
    let mut server = open(Role::Server);
    // Header plus the valid text and the first bad bytes only.
    let first = wire.len() - payload.len() + 12;
    assert_failing(&mut server, &wire[..first], CloseCode::INVALID_PAYLOAD);
}

#[test]
fn fails_in_a_non_final_fragment_at_once() {
    let mut server = open(Role::Server);
    assert_failing(
        &mut server,
        &cframe(false, 1, b"ok\xff"),
        CloseCode::INVALID_PAYLOAD,
    );
}

#[test]
fn truncated_code_point_at_message_end_fails() {
    let mut server = open(Role::Server);
    assert_failing(
        &mut server,
        &cframe(true, 1, b"\xe2\x82"),
        CloseCode::INVALID_PAYLOAD,
    );
}

#[test]
fn binary_is_not_validated() {
    let mut server = open(Role::Server);
    assert_eq!(
        feed(&mut server, &cframe(true, 2, b"\xff")).0,
        ["binary [255]"]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

    /// The invariant `Utf8Bytes::as_str` relies on (its `unsafe` reads the bytes as `str`
    /// unchecked): a text message is delivered only if every byte of it passed validation,
    /// however the text was cut into fragments and the bytes into reads; and input that is
    /// not UTF-8 is never delivered as text, but fails the connection with 1007.
    #[test]
    fn text_is_delivered_only_when_it_is_utf8(
        text in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::any::<u8>(),
                proptest::sample::select(vec![0xc3u8, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, b'a']),
            ],
            0..64,
        ),
        cuts in proptest::collection::vec(0usize..64, 0..4),
        chunk in 1usize..17,
    ) {
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces = Vec::new();
        let mut start = 0;
        for p in points.into_iter().chain([text.len()]) {
            pieces.push(&text[start..p.max(start)]);
            start = p.max(start);
        }
        let mut wire = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let opcode = if i == 0 { 1 } else { 0 };
            wire.extend(cframe(i + 1 == pieces.len(), opcode, piece));
        }
        let mut server = open(Role::Server);
        let mut delivered = Vec::new();
        let mut failed_1007 = false;
        for c in wire.chunks(chunk) {
            server.handle_input(c);
            while let Some(ev) = server.next_event() {
                match ev {
                    hybi::Event::Message(hybi::Message::Text(t)) => {
                        proptest::prop_assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                        proptest::prop_assert_eq!(t.as_str().as_bytes(), t.as_bytes().as_ref());
                        delivered.push(t);
                    }
                    hybi::Event::Closed(o) => failed_1007 = o.code.as_u16() == 1007,
                    _ => {}
                }
            }
        }
        let valid = std::str::from_utf8(&text).is_ok();
        proptest::prop_assert_eq!(delivered.len(), usize::from(valid));
        proptest::prop_assert_eq!(failed_1007, !valid);
        if valid {
            proptest::prop_assert_eq!(delivered[0].as_bytes().as_ref(), &text[..]);
        }
    }
}
