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
use hybi::frame::apply_mask;
use hybi::testing::apply_mask_naive;

#[path = "support/mask_baselines.rs"]
mod baselines;
use baselines::{read_only, word32_loop, write_only};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

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
