//! Conformance, Autobahn section 2 (ping/pong), RFC 6455 §5.5.2-§5.5.3: every ping is answered
//! with a pong carrying the same payload; unsolicited pongs are ignored; a control frame over 125
//! bytes fails the connection with 1002 (§5.5).
//!
//! Each case runs over loopback (tokio and blocking adapters, whole and chopped writes, both
//! roles) and through the core frame by frame and byte by byte.

use crate::support::wire::{check, Case, F};

fn binary_payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (255 - i) as u8).collect()
}

#[test]
fn pingpong_cases() {
    let ten_pings: Vec<F> = (0..10).map(|i| F::ping(format!("ping {i}"))).collect();
    let ten_pongs: Vec<F> = (0..10).map(|i| F::pong(format!("ping {i}"))).collect();
    let cases = [
        // §5.5.2; Autobahn 2.1.
        Case::new(
            "ping, empty payload",
            vec![F::ping("")],
            vec![F::pong(""), F::close(1000)],
        ),
        // §5.5.2; Autobahn 2.2.
        Case::new(
            "ping, text payload",
            vec![F::ping("Hello, world!")],
            vec![F::pong("Hello, world!"), F::close(1000)],
        ),
        // §5.5.2; Autobahn 2.3.
        Case::new(
            "ping, binary payload",
            vec![F::ping(vec![
                0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff,
            ])],
            vec![
                F::pong(vec![0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]),
                F::close(1000),
            ],
        ),
        // §5.5: 125 bytes is the largest control payload; Autobahn 2.4 (and 2.6 chopped).
        Case::new(
            "ping, 125-byte binary payload",
            vec![F::ping(binary_payload(125))],
            vec![F::pong(binary_payload(125)), F::close(1000)],
        ),
        // §5.5: a 126-byte control payload fails with 1002 and is not answered; Autobahn 2.5.
        Case::new(
            "ping, 126-byte payload",
            vec![F::ping(binary_payload(126))],
            vec![F::close(1002)],
        ),
        // §5.5.3: an unsolicited pong is not answered; Autobahn 2.7.
        Case::new(
            "unsolicited pong, empty",
            vec![F::pong("")],
            vec![F::close(1000)],
        ),
        // Autobahn 2.8.
        Case::new(
            "unsolicited pong, payload",
            vec![F::pong("unsolicited pong payload")],
            vec![F::close(1000)],
        ),
        // Autobahn 2.9.
        Case::new(
            "unsolicited pong, then ping",
            vec![F::pong("unsolicited pong payload"), F::ping("ping payload")],
            vec![F::pong("ping payload"), F::close(1000)],
        ),
        // §5.5.2: every ping answered, in order; Autobahn 2.10 (and 2.11 chopped).
        Case::new("10 pings in a row", ten_pings.clone(), {
            let mut v = ten_pongs.clone();
            v.push(F::close(1000));
            v
        }),
        // §5.5: control frames may be interleaved with a fragmented message (§5.4).
        Case::new(
            "ping between two fragments",
            vec![
                F::frag(false, 1, "frag"),
                F::ping("p"),
                F::frag(true, 0, "ment"),
            ],
            vec![F::pong("p"), F::text("fragment"), F::close(1000)],
        ),
        // §5.5: a fragmented ping fails with 1002.
        Case::new(
            "ping without FIN",
            vec![F::frag(false, 9, "p"), F::ping("after")],
            vec![F::close(1002)],
        ),
    ];
    for case in &cases {
        check(case);
    }
}
