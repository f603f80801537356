//! Conformance, Autobahn section 1 (framing): text and binary messages at every payload-length
//! boundary of RFC 6455 §5.2 (7-bit, 16-bit and 64-bit lengths), echoed intact.
//!
//! Each case runs over loopback against the tokio and the blocking adapter (whole writes and
//! chopped writes), in both roles, and through the core frame by frame and byte by byte
//! (`crate::support::wire::check`).

use crate::support::wire::{check, Case, F};

/// Payload lengths, with the length form RFC 6455 §5.2 prescribes for each.
const LENGTHS: &[(usize, &str)] = &[
    (0, "7-bit"),
    (125, "7-bit, largest"),
    (126, "16-bit, smallest"),
    (127, "16-bit"),
    (128, "16-bit"),
    (65535, "16-bit, largest"),
    (65536, "64-bit, smallest"),
];

fn echo(name: String, frame: F) -> Case {
    Case::new(name, vec![frame.clone()], vec![frame, F::close(1000)])
}

/// §5.2, §5.6; Autobahn 1.1.1-1.1.7 (text) and 1.1.8 (65536 chopped: our chopped runs).
#[test]
fn text_at_every_length_boundary() {
    for &(len, form) in LENGTHS {
        check(&echo(
            format!("text {len} ({form})"),
            F::text("*".repeat(len)),
        ));
    }
}

/// §5.2, §5.6; Autobahn 1.2.1-1.2.8.
#[test]
fn binary_at_every_length_boundary() {
    for &(len, form) in LENGTHS {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 0xfe) as u8).collect();
        check(&echo(format!("binary {len} ({form})"), F::binary(payload)));
    }
}

/// §5.2: the 64-bit length form beyond 16 bits, with a payload large enough for several reads.
#[test]
fn sixty_four_bit_length() {
    check(&echo(
        "binary 1 MiB (64-bit)".into(),
        F::binary(vec![0xab; 1 << 20]),
    ));
    check(&echo(
        "text 300000 (64-bit)".into(),
        F::text("ab".repeat(150_000)),
    ));
}

/// §5.4 (no fragments) and §5.2: several messages of every form back to back, one write.
#[test]
fn length_forms_back_to_back() {
    let frames: Vec<F> = LENGTHS
        .iter()
        .map(|&(len, _)| F::binary(vec![len as u8; len]))
        .collect();
    let mut expect = frames.clone();
    expect.push(F::close(1000));
    check(&Case::new("every length form in a row", frames, expect));
}
