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

// The same baselines and ceilings as `cargo bench --bench mask`.
#[path = "../benches/support/mask_baselines.rs"]
mod baselines;
use baselines::{read_only, word32_loop, write_only};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

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
