//! The baselines and ceilings masking is measured against, shared by `benches/mask.rs` and
//! `examples/mask_placement.rs`: the 4-byte word loop other Rust WebSocket crates use, and passes
//! that only read or only write a buffer (with AVX2 where the CPU has it).

use std::hint::black_box;

/// The word loop as tungstenite and fastwebsockets write it: the key as a native-endian `u32`,
/// the buffer in chunks of 4, the remainder byte by byte.
pub fn word32_loop(buf: &mut [u8], key: [u8; 4]) {
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
pub fn read_only(buf: &[u8]) -> u64 {
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
pub fn write_only(buf: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { fill_avx2(buf) };
    }
    buf.fill(0x5a);
}
