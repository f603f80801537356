//! Conformance, Autobahn section 9 shape (limits and performance), RFC 6455 §5.2, §5.4, §10.4:
//! large messages are echoed intact, whole or in fragments of 64 B to 1 MiB, and written in
//! chopped pieces; a configured limit is exact (a message at the limit passes, one byte more
//! fails with 1009, §7.4.1).
//!
//! Each case runs over loopback (tokio and blocking adapters, whole and chopped writes, both
//! roles) and through the core frame by frame and in 997-byte pieces (one byte at a time for
//! small cases). Sizes are fewer than Autobahn's (64 KiB, 1 MiB, 4 MiB; 16 MiB in the server role
//! only) to keep debug builds fast.

use crate::support::wire::{check, Case, F};
use hybi::{Config, Role};

fn pattern(n: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..=250).collect();
    let mut v = Vec::with_capacity(n + 251);
    while v.len() < n {
        v.extend_from_slice(&block);
    }
    v.truncate(n);
    v
}

fn text(n: usize) -> String {
    // Mixed widths, so chunk boundaries fall inside code points.
    let unit = "aκ€𐍈";
    unit.repeat(n / unit.len() + 1)[..n / unit.len() * unit.len()].to_string()
}

/// The message in fragments of `size` (the last may be shorter).
fn fragments(op: u8, payload: &[u8], size: usize) -> Vec<F> {
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| F::frag(i + 1 == chunks.len(), if i == 0 { op } else { 0 }, c))
        .collect()
}

fn echoed(send: Vec<F>, message: F) -> (Vec<F>, Vec<F>) {
    (send, vec![message, F::close(1000)])
}

/// Autobahn 9.1.x (text) and 9.2.x (binary): single-frame messages.
#[test]
fn large_single_frame_messages() {
    for n in [64 << 10, 256 << 10] {
        let t = text(n);
        let (send, expect) = echoed(vec![F::text(&t)], F::text(&t));
        check(&Case::new(format!("text {}", t.len()), send, expect));
    }
    let b = pattern(1 << 20);
    let (send, expect) = echoed(vec![F::binary(b.clone())], F::binary(b));
    check(&Case::new("binary 1 MiB", send, expect));
    // 16 MiB, the default max_frame_size: as a server only, to keep debug runs short.
    let b = pattern(16 << 20);
    let (send, expect) = echoed(vec![F::binary(b.clone())], F::binary(b));
    check(&Case::new("binary 16 MiB", send, expect).roles(&[Role::Server]));
}

/// Autobahn 9.3.x (text) and 9.4.x (binary): a message in fragments of 64 B .. 1 MiB.
#[test]
fn large_fragmented_messages() {
    let b = pattern(1 << 20);
    for size in [64, 4 << 10, 1 << 20] {
        let (send, expect) = echoed(fragments(2, &b, size), F::binary(b.clone()));
        check(&Case::new(
            format!("binary 1 MiB in {size}-byte fragments"),
            send,
            expect,
        ));
    }
    // Text validation is slow in debug builds: 256 KiB of text.
    let t = text(256 << 10);
    for size in [64, 16 << 10] {
        let (send, expect) = echoed(fragments(1, t.as_bytes(), size), F::text(&t));
        check(&Case::new(
            format!("text 256 KiB in {size}-byte fragments"),
            send,
            expect,
        ));
    }
    let big = pattern(4 << 20);
    let (send, expect) = echoed(fragments(2, &big, 1 << 20), F::binary(big.clone()));
    check(&Case::new("binary 4 MiB in 1 MiB fragments", send, expect));
}

/// Autobahn 9.7.x / 9.8.x shape: many small messages in a row.
#[test]
fn many_small_messages() {
    let send: Vec<F> = (0..1000).map(|i| F::text(format!("message {i}"))).collect();
    let mut expect = send.clone();
    expect.push(F::close(1000));
    check(&Case::new("1000 text messages", send, expect));
}

/// Limits are exact: at the limit passes, one more byte (whole or by fragments) fails with 1009.
#[test]
fn configured_limits_are_exact() {
    let cfg = Config::default()
        .with_max_message_size(100 << 10)
        .with_max_frame_size(64 << 10);
    let at = pattern(100 << 10);
    let over = pattern((100 << 10) + 1);
    let cases = [
        Case::new(
            "message at max_message_size in frames at max_frame_size",
            fragments(2, &at, 64 << 10),
            vec![F::binary(at.clone()), F::close(1000)],
        ),
        Case::new(
            "message one byte over max_message_size, in fragments",
            fragments(2, &over, 32 << 10),
            vec![F::close(1009)],
        ),
        Case::new(
            "frame one byte over max_frame_size",
            vec![F::binary(pattern((64 << 10) + 1))],
            vec![F::close(1009)],
        ),
        Case::new(
            "good message, then a frame over max_frame_size",
            vec![F::text("first"), F::text(vec![b'a'; (64 << 10) + 1])],
            vec![F::text("first"), F::close(1009)],
        ),
    ];
    for c in cases {
        check(&c.config(cfg.clone()));
    }
    let few = Config::default().with_max_fragments(4);
    check(
        &Case::new(
            "four fragments at max_fragments, then five",
            [fragments(2, b"abcd", 1), fragments(2, b"abcde", 1)].concat(),
            vec![F::binary(b"abcd".to_vec()), F::close(1009)],
        )
        .config(few),
    );
}
