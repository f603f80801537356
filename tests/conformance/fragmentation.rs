//! Conformance, Autobahn section 5 (fragmentation), RFC 6455 §5.4: a message may be split into
//! a first frame (text/binary, FIN clear), continuations, and a final continuation (FIN set);
//! control frames may be injected between fragments and are answered at once; "Control frames
//! themselves MUST NOT be fragmented"; a continuation with no message to continue, or a new
//! data frame inside an unfinished message, fails the connection with 1002 (§7.4.1).
//!
//! Each case runs over loopback (tokio and blocking adapters, whole and chopped writes, both
//! roles) and through the core frame by frame and byte by byte.

use crate::support::wire::{check, Case, F};

fn close_ok(mut v: Vec<F>) -> Vec<F> {
    v.push(F::close(1000));
    v
}

#[test]
fn fragmentation_cases() {
    let cases = [
        // Autobahn 5.1, 5.2: fragmented control frames.
        Case::new(
            "ping in two fragments",
            vec![
                F::frag(false, 9, "fragment1"),
                F::frag(true, 0, "fragment2"),
            ],
            vec![F::close(1002)],
        ),
        Case::new(
            "pong in two fragments",
            vec![
                F::frag(false, 10, "fragment1"),
                F::frag(true, 0, "fragment2"),
            ],
            vec![F::close(1002)],
        ),
        // §5.5.1: a fragmented close frame.
        Case::new(
            "close in two fragments",
            vec![F::new(false, 8, vec![0x03]), F::frag(true, 0, vec![0xe8])],
            vec![F::close(1002)],
        ),
        // Autobahn 5.3-5.5: text in two fragments (5.4, 5.5: chopped / frame-wise).
        Case::new(
            "text in two fragments",
            vec![
                F::frag(false, 1, "fragment1"),
                F::frag(true, 0, "fragment2"),
            ],
            close_ok(vec![F::text("fragment1fragment2")]),
        ),
        Case::new(
            "binary in three fragments",
            vec![
                F::frag(false, 2, vec![1, 2]),
                F::frag(false, 0, vec![3]),
                F::frag(true, 0, vec![4, 5, 6]),
            ],
            close_ok(vec![F::binary(vec![1, 2, 3, 4, 5, 6])]),
        ),
        // Autobahn 5.6-5.8: a ping between the fragments is answered before the message.
        Case::new(
            "text in two fragments, ping between",
            vec![
                F::frag(false, 1, "fragment1"),
                F::ping("ping payload"),
                F::frag(true, 0, "fragment2"),
            ],
            close_ok(vec![F::pong("ping payload"), F::text("fragment1fragment2")]),
        ),
        // An unsolicited pong between fragments is ignored.
        Case::new(
            "binary in two fragments, pong between",
            vec![
                F::frag(false, 2, vec![9]),
                F::pong("x"),
                F::frag(true, 0, vec![8]),
            ],
            close_ok(vec![F::binary(vec![9, 8])]),
        ),
        // Autobahn 5.9-5.11: a final continuation with nothing to continue.
        Case::new(
            "continuation (FIN) without a start, then text",
            vec![
                F::frag(true, 0, "non-continuation payload"),
                F::text("Hello, world!"),
            ],
            vec![F::close(1002)],
        ),
        // Autobahn 5.12-5.14: a non-final continuation with nothing to continue.
        Case::new(
            "continuation (no FIN) without a start, then text",
            vec![
                F::frag(false, 0, "non-continuation payload"),
                F::text("Hello, world!"),
            ],
            vec![F::close(1002)],
        ),
        // Autobahn 5.15: a complete fragmented message, then a continuation with no start.
        Case::new(
            "message, then continuation (no FIN), then text",
            vec![
                F::frag(false, 1, "fragment1"),
                F::frag(true, 0, "fragment2"),
                F::frag(false, 0, "fragment3"),
                F::text("fragment4"),
            ],
            vec![F::text("fragment1fragment2"), F::close(1002)],
        ),
        // Autobahn 5.16, 5.17: continuations first, twice.
        Case::new(
            "continuation, continuation, text",
            vec![
                F::frag(false, 0, "fragment1"),
                F::frag(true, 0, "fragment2"),
                F::text("fragment3"),
            ],
            vec![F::close(1002)],
        ),
        // Autobahn 5.18: a new text frame inside an unfinished text message.
        Case::new(
            "text (no FIN), then text (FIN)",
            vec![F::frag(false, 1, "fragment1"), F::text("fragment2")],
            vec![F::close(1002)],
        ),
        Case::new(
            "binary (no FIN), then text (no FIN)",
            vec![
                F::frag(false, 2, "fragment1"),
                F::frag(false, 1, "fragment2"),
            ],
            vec![F::close(1002)],
        ),
        // Autobahn 5.19, 5.20: five fragments with a ping after the first and the fourth.
        Case::new(
            "five fragments, pings between",
            vec![
                F::frag(false, 1, "fragment1"),
                F::ping("pongme 1!"),
                F::frag(false, 0, "fragment2"),
                F::frag(false, 0, "fragment3"),
                F::frag(false, 0, "fragment4"),
                F::ping("pongme 2!"),
                F::frag(true, 0, "fragment5"),
            ],
            close_ok(vec![
                F::pong("pongme 1!"),
                F::pong("pongme 2!"),
                F::text("fragment1fragment2fragment3fragment4fragment5"),
            ]),
        ),
        // §5.4: empty fragments are fragments (Autobahn 6.1.2 shape).
        Case::new(
            "empty text in three empty fragments",
            vec![
                F::frag(false, 1, ""),
                F::frag(false, 0, ""),
                F::frag(true, 0, ""),
            ],
            close_ok(vec![F::text("")]),
        ),
        // §5.4: two fragmented messages back to back.
        Case::new(
            "two fragmented messages in a row",
            vec![
                F::frag(false, 1, "a"),
                F::frag(true, 0, "b"),
                F::frag(false, 2, vec![1]),
                F::frag(true, 0, vec![2]),
            ],
            close_ok(vec![F::text("ab"), F::binary(vec![1, 2])]),
        ),
        // A close frame in the middle of a fragmented message ends it: the incomplete message is
        // dropped and the close echoed (§5.4 allows control frames between fragments).
        Case::new(
            "fragment, close, continuation",
            vec![
                F::frag(false, 1, "fragment1"),
                F::close(1000),
                F::frag(true, 0, "fragment2"),
            ],
            vec![F::close(1000)],
        ),
    ];
    for case in &cases {
        check(case);
    }
}

/// §5.4: a 4 KiB message in 1-byte fragments (many small frames through every mode).
#[test]
fn many_one_byte_fragments() {
    let payload: Vec<u8> = (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut send = vec![F::frag(false, 1, &payload[..1])];
    for i in 1..payload.len() {
        send.push(F::frag(i + 1 == payload.len(), 0, &payload[i..i + 1]));
    }
    check(&Case::new(
        "4096 one-byte text fragments",
        send,
        close_ok(vec![F::text(&payload)]),
    ));
}
