//! Payload masking throughput: `hybi::frame::apply_mask` next to the baselines it must beat
//! (a naive byte loop and the 4-byte-word loop common in other Rust WebSocket crates) and the
//! memory ceilings (`copy_from_slice`, and a read-only pass over the same buffer).
//!
//! `cargo bench --bench mask`; every group is one buffer size. Throughput is reported per byte
//! masked (criterion prints GiB/s).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use hybi::frame::{apply_mask, apply_mask_naive};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The word loop as tungstenite and fastwebsockets write it: the key as a native-endian `u32`,
/// the buffer in chunks of 4, the remainder byte by byte.
fn word32_loop(buf: &mut [u8], key: [u8; 4]) {
    let k = u32::from_ne_bytes(key);
    let mut words = buf.chunks_exact_mut(4);
    for w in &mut words {
        let x = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) ^ k;
        w.copy_from_slice(&x.to_ne_bytes());
    }
    for (b, k) in words.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// XOR-folds the buffer in 64-byte blocks into eight `u64` lanes (vectorized by the compiler):
/// reads every byte once, writes nothing.
#[inline(always)]
fn fold(buf: &[u8]) -> u64 {
    let mut acc = [0u64; 8];
    let mut blocks = buf.chunks_exact(64);
    for block in &mut blocks {
        for (a, w) in acc.iter_mut().zip(block.chunks_exact(8)) {
            *a ^= u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        }
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        acc[0] ^= u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
    }
    for &b in words.remainder() {
        acc[1] = acc[1].rotate_left(8) ^ u64::from(b);
    }
    acc.iter().fold(0, |x, &a| x ^ a)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fold_avx2(buf: &[u8]) -> u64 {
    fold(buf)
}

/// The read-only ceiling: [`fold`], compiled for AVX2 when the CPU has it so that the ceiling is
/// not limited by the baseline's 16-byte loads.
fn read_only(buf: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { fold_avx2(buf) };
    }
    fold(buf)
}

/// A buffer whose `start`-th byte is 64-byte aligned.
struct Buf {
    data: Vec<u8>,
    start: usize,
}

impl Buf {
    fn new(len: usize) -> Self {
        let data: Vec<u8> = (0..len + 128).map(|i| i as u8).collect();
        let start = data.as_ptr().align_offset(64);
        Buf { data, start }
    }

    /// `len` bytes starting `skew` bytes after a 64-byte boundary.
    fn slice(&mut self, skew: usize, len: usize) -> &mut [u8] {
        &mut self.data[self.start + skew..self.start + skew + len]
    }
}

fn bench_size(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, len: usize) {
    let mut buf = Buf::new(len);
    let src = vec![0x5au8; len];
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("hybi/off0", |b| {
        b.iter(|| apply_mask(black_box(buf.slice(0, len)), KEY, 0))
    });
    group.bench_function("hybi/odd", |b| {
        b.iter(|| apply_mask(black_box(buf.slice(1, len)), KEY, 1))
    });
    group.bench_function("naive", |b| {
        b.iter(|| apply_mask_naive(black_box(buf.slice(0, len)), KEY, 0))
    });
    group.bench_function("word32", |b| {
        b.iter(|| word32_loop(black_box(buf.slice(0, len)), KEY))
    });
    group.bench_function("word32/odd", |b| {
        b.iter(|| word32_loop(black_box(buf.slice(1, len)), KEY))
    });
    group.bench_function("copy_from_slice", |b| {
        b.iter(|| buf.slice(0, len).copy_from_slice(black_box(&src)))
    });
    group.bench_function("read_only", |b| {
        b.iter(|| read_only(black_box(buf.slice(0, len))))
    });
}

fn mask(c: &mut Criterion) {
    // Each length below 16 on its own (against the two loops only: the ceilings mean little
    // here), then all of them in turn (120 bytes per iteration) so that the branches see mixed
    // lengths.
    for len in 0..16 {
        let mut group = c.benchmark_group(format!("mask/{len}B"));
        group
            .warm_up_time(Duration::from_millis(150))
            .measurement_time(Duration::from_millis(350));
        let mut buf = Buf::new(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function("hybi/off0", |b| {
            b.iter(|| apply_mask(black_box(buf.slice(0, len)), KEY, 0))
        });
        group.bench_function("hybi/odd", |b| {
            b.iter(|| apply_mask(black_box(buf.slice(1, len)), KEY, 1))
        });
        group.bench_function("naive", |b| {
            b.iter(|| apply_mask_naive(black_box(buf.slice(0, len)), KEY, 0))
        });
        group.bench_function("word32", |b| {
            b.iter(|| word32_loop(black_box(buf.slice(0, len)), KEY))
        });
        group.finish();
    }
    {
        let mut group = c.benchmark_group("mask/0-15");
        let mut buf = Buf::new(16);
        group.throughput(Throughput::Bytes((0..16).sum()));
        group.bench_function("hybi/off0", |b| {
            b.iter(|| {
                for len in 0..16 {
                    apply_mask(black_box(buf.slice(0, len)), KEY, 0);
                }
            })
        });
        group.bench_function("hybi/odd", |b| {
            b.iter(|| {
                for len in 0..16 {
                    apply_mask(black_box(buf.slice(1, len)), KEY, 1);
                }
            })
        });
        group.bench_function("naive", |b| {
            b.iter(|| {
                for len in 0..16 {
                    apply_mask_naive(black_box(buf.slice(0, len)), KEY, 0);
                }
            })
        });
        group.bench_function("word32", |b| {
            b.iter(|| {
                for len in 0..16 {
                    word32_loop(black_box(buf.slice(0, len)), KEY);
                }
            })
        });
        group.finish();
    }
    for (name, len) in [
        ("16B", 16),
        ("125B", 125),
        ("1KiB", 1 << 10),
        ("16KiB", 16 << 10),
        ("1MiB", 1 << 20),
        ("16MiB", 16 << 20),
    ] {
        let mut group = c.benchmark_group(format!("mask/{name}"));
        bench_size(&mut group, len);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .sample_size(20);
    targets = mask
}
criterion_main!(benches);
