//! Masking speed at every placement of the buffer relative to a cache line, best of many runs.
//!
//! ```text
//! cargo run --release --example mask_placement [-- SIZE...]
//! ```
//!
//! For each size (default 256 B, 512 B, 1 KiB, 4 KiB, 16 KiB) it masks one buffer in place over
//! and over, `skew` bytes past a 64-byte boundary for every skew from 0 to 63, and keeps the best
//! time of 40 rounds per skew. It prints GB/s at skew 0, the worst and the median skew, next to
//! the same figures for the 4-byte word loop other Rust WebSocket crates use, and the ceilings of
//! a pass that only reads or only writes the buffer (32-byte AVX2 vectors where the CPU has
//! them). The best of many rounds is steady on a busy machine where criterion's means
//! (`cargo bench --bench mask`) move by a quarter from run to run; the worst skew is what "no
//! unaligned penalty" is about.

use std::hint::black_box;
use std::time::Instant;

use hybi::frame::apply_mask;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The word loop as tungstenite and fastwebsockets write it.
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

/// Reads every byte once (four independent AVX2 accumulators where the CPU has AVX2).
fn read_only(buf: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { x86::fold_avx2(buf) };
    }
    buf.chunks(8).fold(0u64, |acc, w| {
        let mut b = [0u8; 8];
        b[..w.len()].copy_from_slice(w);
        acc ^ u64::from_ne_bytes(b)
    })
}

/// Writes every byte once (32-byte AVX2 stores where the CPU has AVX2).
fn write_only(buf: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { x86::fill_avx2(buf) };
    }
    buf.fill(black_box(0x5a));
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    #[target_feature(enable = "avx2")]
    pub(super) fn fold_avx2(buf: &[u8]) -> u64 {
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
        let rest = blocks
            .remainder()
            .iter()
            .fold(0u64, |a, &b| a.rotate_left(8) ^ u64::from(b));
        (_mm_cvtsi128_si64(v) ^ _mm_extract_epi64::<1>(v)) as u64 ^ rest
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn fill_avx2(buf: &mut [u8]) {
        let v = black_box(_mm256_set1_epi8(0x5a));
        let mut blocks = buf.chunks_exact_mut(32);
        for block in &mut blocks {
            // SAFETY: `block` is 32 writable bytes; the store has no alignment requirement.
            unsafe { _mm256_storeu_si256(block.as_mut_ptr().cast(), v) };
        }
        blocks.into_remainder().fill(0x5a);
    }
}

/// GB/s at skew 0, at the worst skew (and which), and the median over all 64 skews. Rounds go
/// over all skews in turn and each skew keeps its best round, so a burst of load from elsewhere
/// spoils one round of a few skews rather than all rounds of one.
fn row(name: &str, len: usize, f: impl Fn(&mut [u8])) {
    let mut data: Vec<u8> = (0..len + 256).map(|i| i as u8).collect();
    let base = data.as_ptr().align_offset(64);
    let reps = ((1usize << 22) / len.max(16)).max(16);
    let mut best = [f64::MAX; 64];
    for _ in 0..40 {
        for (skew, best) in best.iter_mut().enumerate() {
            let buf = &mut data[base + skew..base + skew + len];
            let t = Instant::now();
            for _ in 0..reps {
                f(black_box(&mut *buf));
            }
            *best = best.min(t.elapsed().as_nanos() as f64 / reps as f64);
        }
    }
    let mut gbs: Vec<(f64, usize)> = best
        .iter()
        .enumerate()
        .map(|(skew, ns)| (len as f64 / ns, skew))
        .collect();
    let at0 = gbs[0].0;
    gbs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (worst, worst_skew) = gbs[0];
    let median = gbs[32].0;
    println!(
        "{len:>7} B  {name:<11} skew 0 {at0:>6.1}   worst {worst:>6.1} (skew {worst_skew:>2})   median {median:>6.1}   GB/s"
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes in bytes"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![256, 512, 1024, 4096, 16384]
    } else {
        sizes
    };
    // Half a second of work first, so that the first row does not pay for the CPU's clock
    // ramping up.
    let mut warm = vec![0u8; 16 << 10];
    let t = Instant::now();
    while t.elapsed().as_millis() < 500 {
        apply_mask(black_box(&mut warm), black_box(KEY), 0);
    }
    for len in sizes {
        // The offset goes through `black_box`, as for a payload masked in chunks.
        row("apply_mask", len, |b| {
            apply_mask(b, black_box(KEY), black_box(0))
        });
        row("word32", len, |b| word32_loop(b, black_box(KEY)));
        row("read-only", len, |b| {
            black_box(read_only(b));
        });
        row("write-only", len, write_only);
    }
}
