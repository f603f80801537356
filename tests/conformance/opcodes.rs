//! Conformance, Autobahn section 4 (opcodes), RFC 6455 §5.2: "%x3-7 are reserved for further
//! non-control frames", "%xB-F are reserved for further control frames"; "If an unknown opcode
//! is received, the receiving endpoint MUST _Fail the WebSocket Connection_" (1002, §7.4.1).
//! A good message before the bad frame is echoed first; the ping after it is not answered.
//!
//! Each case runs over loopback (tokio and blocking adapters, whole and chopped writes, both
//! roles) and through the core frame by frame and byte by byte.

use crate::support::wire::{check, Case, F};

/// Autobahn 4.1.1-4.1.5 (non-control 3-7) and 4.2.1-4.2.5 (control 11-15): the opcode alone,
/// empty and with a payload.
#[test]
fn reserved_opcode_alone_fails_with_1002() {
    for op in (3..=7).chain(11..=15) {
        for payload in [&b""[..], b"reserved opcode payload"] {
            check(&Case::new(
                format!("opcode {op}, {} bytes", payload.len()),
                vec![F::new(true, op, payload)],
                vec![F::close(1002)],
            ));
        }
    }
}

/// Autobahn 4.1.3-4.1.5, 4.2.3-4.2.5: text, reserved opcode, ping: the text is echoed before the
/// close frame, the ping is never answered.
#[test]
fn good_message_then_reserved_opcode_then_ping() {
    for op in [5u8, 6, 7, 13, 14, 15] {
        check(&Case::new(
            format!("text, opcode {op}, ping"),
            vec![F::text("Hello, world!"), F::new(true, op, ""), F::ping("")],
            vec![F::text("Hello, world!"), F::close(1002)],
        ));
    }
}

/// §5.2, §5.4: a reserved opcode between the fragments of a message fails too.
#[test]
fn reserved_opcode_inside_a_fragmented_message() {
    check(&Case::new(
        "fragment, opcode 3, continuation",
        vec![
            F::frag(false, 1, "frag"),
            F::new(true, 3, ""),
            F::frag(true, 0, "ment"),
        ],
        vec![F::close(1002)],
    ));
}
