//! Conformance, Autobahn section 6 (UTF-8 handling), RFC 6455 §8.1 and §5.6: text payloads
//! must be UTF-8 (RFC 3629); "When an endpoint is to interpret a byte stream as UTF-8 but finds
//! that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the
//! WebSocket Connection_" with 1007 (§7.4.1). Overlong forms, UTF-16 surrogates and code points
//! beyond U+10FFFF are invalid (RFC 3629 §3, §10); U+10FFFF and the noncharacters are valid.
//! A code point may be split between fragments. An endpoint fails at the first invalid byte,
//! before the frame completes (Autobahn 6.4: the rest of the frame is never sent).
//!
//! Each case runs over loopback (tokio and blocking adapters, whole and chopped writes, both
//! roles) and through the core frame by frame and byte by byte (which splits every sequence at
//! every byte between reads).

use crate::support::wire::{check, Case, F};

/// Valid sequences of the kinds the suite uses (Autobahn 6.1-6.2, 6.5-6.7 and the boundary and
/// noncharacter cases of 6.9-6.23): every encoded width at its first and last code point, the
/// edges around the surrogates, U+FFFD, U+10FFFF, noncharacters.
const VALID: &[(&str, &str)] = &[
    ("empty (6.1)", ""),
    ("mixed (6.2)", "Hello-µ@ßöäüàá-UTF-8!!"),
    ("kosme (6.5)", "κόσμε"),
    ("kosme, again (6.6 sends it byte by byte)", "κόσμε"),
    ("first 1-byte code point (NUL)", "\u{0}"),
    ("first 2-byte code point", "\u{80}"),
    ("first 3-byte code point", "\u{800}"),
    ("first 4-byte code point", "\u{10000}"),
    ("last 1-byte code point", "\u{7f}"),
    ("last 2-byte code point", "\u{7ff}"),
    ("last 3-byte code point", "\u{ffff}"),
    ("boundary below the surrogates", "\u{d7ff}"),
    ("boundary above the surrogates", "\u{e000}"),
    ("replacement character", "\u{fffd}"),
    ("max code point U+10FFFF", "\u{10ffff}"),
    (
        "noncharacters (6.22)",
        "\u{fffe}\u{ffff}\u{1fffe}\u{1ffff}\u{10fffe}",
    ),
    (
        "every width in one message",
        "a\u{80}\u{800}\u{10000}\u{10ffff}z",
    ),
];

/// Invalid sequences of the kinds of Autobahn 6.3 and 6.8-6.21: beyond U+10FFFF, 5- and 6-byte
/// forms, lone and unexpected continuation bytes, truncated sequences, impossible bytes, overlong
/// forms (6.17-6.19), single and paired UTF-16 surrogates (6.20, 6.21).
const INVALID: &[(&str, &[u8])] = &[
    (
        "kosme with a surrogate (6.3)",
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
    ),
    ("5-byte form", b"\xf8\x88\x80\x80\x80"),
    ("6-byte form", b"\xfc\x84\x80\x80\x80\x80"),
    ("beyond U+10FFFF: U+110000", b"\xf4\x90\x80\x80"),
    ("beyond U+10FFFF: U+13FFFF", b"\xf4\xbf\xbf\xbf"),
    ("4-byte lead byte F5", b"\xf5\x80\x80\x80"),
    ("lone continuation byte 0x80", b"\x80"),
    ("lone continuation byte 0xbf", b"\xbf"),
    ("continuation bytes in a row", b"\x80\xbf\x80\xbf"),
    ("2-byte lead followed by a space", b"\xc0 "),
    ("3-byte lead followed by a space", b"\xe0 "),
    ("truncated 3-byte sequence", b"\xe0\x80"),
    ("truncated 4-byte sequence", b"\xf0\x80\x80"),
    ("impossible byte 0xfe", b"\xfe"),
    ("impossible byte 0xff", b"\xff"),
    ("overlong '/', 2 bytes", b"\xc0\xaf"),
    ("overlong '/', 3 bytes", b"\xe0\x80\xaf"),
    ("overlong '/', 4 bytes", b"\xf0\x80\x80\xaf"),
    ("largest overlong, 2 bytes", b"\xc1\xbf"),
    ("largest overlong, 3 bytes", b"\xe0\x9f\xbf"),
    ("largest overlong, 4 bytes", b"\xf0\x8f\xbf\xbf"),
    ("overlong NUL, 2 bytes", b"\xc0\x80"),
    ("overlong NUL, 3 bytes", b"\xe0\x80\x80"),
    ("surrogate U+D800", b"\xed\xa0\x80"),
    ("surrogate U+DB80", b"\xed\xae\x80"),
    ("surrogate U+DC00", b"\xed\xb0\x80"),
    ("surrogate U+DFFF", b"\xed\xbf\xbf"),
    ("surrogate pair U+D800 U+DC00", b"\xed\xa0\x80\xed\xb0\x80"),
    ("surrogate pair U+DBFF U+DFFF", b"\xed\xaf\xbf\xed\xbf\xbf"),
    ("truncated at message end", b"\xe2\x82"),
];

/// The message as two fragments, split at `cut`.
fn split(payload: &[u8], cut: usize) -> [F; 2] {
    [
        F::frag(false, 1, &payload[..cut]),
        F::frag(true, 0, &payload[cut..]),
    ]
}

fn with_close(mut v: Vec<F>) -> Vec<F> {
    v.push(F::close(1000));
    v
}

/// Valid text as one frame, and in one frame per byte (Autobahn 6.2.3-6.2.4, 6.6.x).
#[test]
fn valid_sequences_are_echoed() {
    for (name, s) in VALID {
        let b = s.as_bytes();
        let mut send = vec![F::text(b)];
        if !b.is_empty() {
            send.push(F::frag(b.len() == 1, 1, &b[..1]));
            for i in 1..b.len() {
                send.push(F::frag(i + 1 == b.len(), 0, &b[i..i + 1]));
            }
        }
        let echoes = vec![F::text(b); send.len().min(2)];
        check(&Case::new(*name, send, with_close(echoes)));
    }
}

/// A valid sequence split into two fragments at every place (Autobahn 6.2.2, 6.5.x): every
/// split is its own message on one connection.
#[test]
fn valid_sequences_split_in_every_place() {
    for (name, s) in VALID {
        let b = s.as_bytes();
        let send: Vec<F> = (0..=b.len()).flat_map(|cut| split(b, cut)).collect();
        let echoes = vec![F::text(b); b.len() + 1];
        check(&Case::new(
            format!("{name}, split everywhere"),
            send,
            with_close(echoes),
        ));
    }
}

/// Invalid sequences as one frame (with valid text around them) fail with 1007.
#[test]
fn invalid_sequences_fail_with_1007() {
    for (name, bad) in INVALID {
        let mut payload = b"ok ".to_vec();
        payload.extend_from_slice(bad);
        check(&Case::new(*name, vec![F::text(bad)], vec![F::close(1007)]));
        // Through the core only: the loopback runs above already cover every sequence.
        check(
            &Case::new(
                format!("{name}, after valid text"),
                vec![F::text("before"), F::text(&payload)],
                vec![F::text("before"), F::close(1007)],
            )
            .core_only(),
        );
    }
}

/// Invalid sequences split into two fragments at every place fail with 1007, whether the bad
/// byte is in the first fragment (at once) or the second. Through the core for every split;
/// over loopback for the middle split.
#[test]
fn invalid_sequences_split_in_every_place_fail_with_1007() {
    for (name, bad) in INVALID {
        for cut in 0..=bad.len() {
            let case = Case::new(
                format!("{name}, split at {cut}"),
                split(bad, cut).to_vec(),
                vec![F::close(1007)],
            );
            check(&if cut == bad.len() / 2 {
                case
            } else {
                case.core_only()
            });
        }
    }
}

/// Autobahn 6.4.1-6.4.4: fail fast. The frame claims a longer payload, but only the valid
/// prefix and the first invalid bytes are ever sent; the endpoint fails with 1007 at once
/// (and, as a server, closes TCP) without waiting for the rest of the frame.
#[test]
fn fails_before_the_frame_completes() {
    let kosme = "κόσμε".as_bytes();
    let mut whole = kosme.to_vec();
    whole.extend_from_slice(b"\xf4\x90\x80\x80");
    whole.extend_from_slice(kosme);
    whole.extend_from_slice(b"edited");
    let prefix = kosme.len() + 1;
    check(&Case::new(
        "6.4.1 invalid in an unfinished frame",
        vec![F::text(&whole).cut(prefix + 1)],
        vec![F::close(1007)],
    ));
    check(&Case::new(
        "6.4.2 invalid at the start of an unfinished continuation",
        vec![
            F::frag(false, 1, &whole[..prefix]),
            F::frag(true, 0, &whole[prefix..]).cut(1),
        ],
        vec![F::close(1007)],
    ));
    // A 64 KiB claim with only the bad prefix sent: not even a large buffer is waited for.
    let mut big = whole.clone();
    big.resize(64 << 10, b'a');
    check(&Case::new(
        "6.4.3 invalid in an unfinished 64 KiB frame",
        vec![F::text(&big).cut(prefix + 3)],
        vec![F::close(1007)],
    ));
    // A non-final fragment with a truncated code point is fine until the next fragment proves
    // it wrong; a final fragment ending inside a code point fails.
    check(&Case::new(
        "6.4.4 unfinished code point at a non-final fragment",
        vec![
            F::frag(false, 1, b"\xf0\x90"),
            F::frag(true, 0, b"\x80\x80"),
        ],
        with_close(vec![F::text("\u{10000}")]),
    ));
}

/// §5.6: binary payloads are never validated.
#[test]
fn binary_is_not_utf8_checked() {
    let send: Vec<F> = INVALID.iter().map(|(_, b)| F::binary(b.to_vec())).collect();
    let expect = with_close(send.clone());
    check(&Case::new("invalid UTF-8 as binary", send, expect));
}
