//! Payload masking throughput: `hybi::frame::apply_mask` next to the baselines it must beat
//! (a naive byte loop and the 4-byte-word loop common in other Rust WebSocket crates) and the
//! memory ceilings (`copy_from_slice`, a read-only pass and a write-only pass over the same
//! buffer, both with AVX2 where the CPU has it).
//!
//! `cargo bench --bench mask`; every group is one buffer size. Throughput is reported per byte
//! masked (criterion prints GiB/s).
//!
//! Every routine gets its buffer and key through `black_box`: a real caller's key is only known
//! at run time, so none may be folded into constants. The `odd` cases pass their offset through
//! `black_box` too (a payload masked in chunks); the others pass a literal 0, as a caller masking
//! a whole payload does.

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

/// [`fold`] with AVX2, written out: four independent 32-byte accumulators, so that the loop is
/// bound by the CPU's two loads per cycle. (The compiler's vectorization of [`fold`] mixes
/// 16- and 32-byte loads with three accumulators and stays well below that.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fold_avx2(buf: &[u8]) -> u64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_si256(); 4];
    let mut blocks = buf.chunks_exact(128);
    for block in &mut blocks {
        for (a, v) in acc.iter_mut().zip(block.chunks_exact(32)) {
            // SAFETY: `v` is 32 readable bytes; the load has no alignment requirement.
            *a = _mm256_xor_si256(*a, unsafe { _mm256_loadu_si256(v.as_ptr().cast()) });
        }
    }
    let v = _mm256_xor_si256(
        _mm256_xor_si256(acc[0], acc[1]),
        _mm256_xor_si256(acc[2], acc[3]),
    );
    let v = _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let lanes = (_mm_cvtsi128_si64(v) ^ _mm_extract_epi64::<1>(v)) as u64;
    lanes ^ fold(blocks.remainder())
}

/// The read-only ceiling: [`fold_avx2`] when the CPU has AVX2, else [`fold`].
fn read_only(buf: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { fold_avx2(buf) };
    }
    fold(buf)
}

/// Fills `buf` with 32-byte AVX2 stores (the fill value goes through `black_box`, so that the
/// compiler cannot turn the loop into a `memset` call).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_avx2(buf: &mut [u8]) {
    use std::arch::x86_64::*;
    let v = black_box(_mm256_set1_epi8(0x5a));
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        // SAFETY: `block` is 32 writable bytes; the store has no alignment requirement.
        unsafe { _mm256_storeu_si256(block.as_mut_ptr().cast(), v) };
    }
    blocks.into_remainder().fill(0x5a);
}

/// The write-only ceiling (an in-place pass cannot store faster than this): [`fill_avx2`] when
/// the CPU has AVX2, else `fill`.
fn write_only(buf: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { fill_avx2(buf) };
    }
    buf.fill(0x5a);
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
        b.iter(|| apply_mask(black_box(buf.slice(0, len)), black_box(KEY), 0))
    });
    group.bench_function("hybi/odd", |b| {
        b.iter(|| apply_mask(black_box(buf.slice(1, len)), black_box(KEY), black_box(1)))
    });
    group.bench_function("naive", |b| {
        b.iter(|| apply_mask_naive(black_box(buf.slice(0, len)), black_box(KEY), 0))
    });
    group.bench_function("word32", |b| {
        b.iter(|| word32_loop(black_box(buf.slice(0, len)), black_box(KEY)))
    });
    group.bench_function("word32/odd", |b| {
        b.iter(|| word32_loop(black_box(buf.slice(1, len)), black_box(KEY)))
    });
    group.bench_function("copy_from_slice", |b| {
        b.iter(|| buf.slice(0, len).copy_from_slice(black_box(&src)))
    });
    group.bench_function("read_only", |b| {
        b.iter(|| read_only(black_box(buf.slice(0, len))))
    });
    group.bench_function("write_only", |b| {
        b.iter(|| write_only(black_box(buf.slice(0, len))))
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
            b.iter(|| apply_mask(black_box(buf.slice(0, len)), black_box(KEY), 0))
        });
        group.bench_function("hybi/odd", |b| {
            b.iter(|| apply_mask(black_box(buf.slice(1, len)), black_box(KEY), black_box(1)))
        });
        group.bench_function("naive", |b| {
            b.iter(|| apply_mask_naive(black_box(buf.slice(0, len)), black_box(KEY), 0))
        });
        group.bench_function("word32", |b| {
            b.iter(|| word32_loop(black_box(buf.slice(0, len)), black_box(KEY)))
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
                    apply_mask(black_box(buf.slice(0, len)), black_box(KEY), 0);
                }
            })
        });
        group.bench_function("hybi/odd", |b| {
            b.iter(|| {
                for len in 0..16 {
                    apply_mask(black_box(buf.slice(1, len)), black_box(KEY), black_box(1));
                }
            })
        });
        group.bench_function("naive", |b| {
            b.iter(|| {
                for len in 0..16 {
                    apply_mask_naive(black_box(buf.slice(0, len)), black_box(KEY), 0);
                }
            })
        });
        group.bench_function("word32", |b| {
            b.iter(|| {
                for len in 0..16 {
                    word32_loop(black_box(buf.slice(0, len)), black_box(KEY));
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
