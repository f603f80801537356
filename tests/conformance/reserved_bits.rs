//! Conformance, Autobahn section 3 (reserved bits), RFC 6455 §5.2: "RSV1, RSV2, RSV3: MUST be 0
//! unless an extension is negotiated that defines meanings for non-zero values. If a nonzero
//! value is received and none of the negotiated extensions defines the meaning of such a
//! nonzero value, the receiving endpoint MUST _Fail the WebSocket Connection_" (1002, §7.4.1).
//! A good message before the bad frame is still echoed, before the close frame; nothing after
//! the bad frame (here: a ping) is answered.
//!
//! Each case runs over loopback (tokio and blocking adapters, whole and chopped writes, both
//! roles) and through the core frame by frame and byte by byte.

use crate::support::wire::{check, Case, F};

#[test]
fn reserved_bits_fail_with_1002() {
    let cases = [
        // Autobahn 3.1: RSV1 on a small text frame.
        Case::new(
            "text with RSV1",
            vec![F::text("Hello, world!").rsv(4)],
            vec![F::close(1002)],
        ),
        // Autobahn 3.2 (3.3 frame-wise: our chopped and frame-by-frame runs): a good text first.
        Case::new(
            "good text, text with RSV2, ping",
            vec![
                F::text("Hello, world!"),
                F::text("Hello, world!").rsv(2),
                F::ping(""),
            ],
            vec![F::text("Hello, world!"), F::close(1002)],
        ),
        // Autobahn 3.4.
        Case::new(
            "good text, text with RSV3, ping",
            vec![
                F::text("Hello, world!"),
                F::text("Hello, world!").rsv(1),
                F::ping(""),
            ],
            vec![F::text("Hello, world!"), F::close(1002)],
        ),
        // Autobahn 3.5: RSV1+RSV3 on binary.
        Case::new(
            "binary with RSV1+RSV3",
            vec![F::binary(vec![0xff; 8]).rsv(5)],
            vec![F::close(1002)],
        ),
        // Autobahn 3.6: RSV1+RSV2 on a ping (no pong).
        Case::new(
            "ping with RSV1+RSV2",
            vec![F::ping("").rsv(6)],
            vec![F::close(1002)],
        ),
        // Autobahn 3.7: all three on a close frame.
        Case::new(
            "close with RSV1+RSV2+RSV3",
            vec![F::close(1000).rsv(7)],
            vec![F::close(1002)],
        ),
        // RSV bits on a continuation frame of a fragmented message (§5.2 applies to every frame).
        Case::new(
            "continuation with RSV1",
            vec![F::frag(false, 1, "frag"), F::frag(true, 0, "ment").rsv(4)],
            vec![F::close(1002)],
        ),
        // Every RSV value on an empty pong.
        Case::new(
            "pong with each RSV value",
            (1..8).map(|r| F::pong("").rsv(r)).collect(),
            vec![F::close(1002)],
        ),
    ];
    for case in &cases {
        check(case);
    }
}
