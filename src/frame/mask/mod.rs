//! Payload masking (RFC 6455 §5.3).
//!
//! `transformed[i] = original[i] ^ key[(offset + i) % 4]`. Masking and unmasking are the same
//! operation; `offset` is the position of `buf[0]` within the payload, so a payload can be
//! processed in chunks.
//!
//! # Implementation
//!
//! * Buffers shorter than [`SMALL`] bytes are masked inline at the call site, in safe code, as at
//!   most seven disjoint `u64`/`u32`/`u8` pieces ([`short`]); no loop, no call, no dispatch.
//!   Up to [`MEDIUM`] bytes, a safe loop of 32-byte blocks ([`medium`]), also inline, still
//!   beats calling a kernel.
//! * Longer buffers go to the best kernel for the running CPU, chosen once and cached as a
//!   function pointer (see [`simd`]): AVX-512, AVX2 or SSE2 on x86/x86_64 (runtime detection
//!   with `std`, compile-time `target_feature` without), NEON on aarch64, and the safe word loop
//!   [`portable`] elsewhere and under Miri.
//! * The vector kernels avoid the unaligned penalty: from 512 bytes on, the body is masked as
//!   aligned vectors (the key rotated to match), so no vector access in it crosses a cache
//!   line, and each unaligned end as one vector that overlaps the body (loaded before the body
//!   is stored, so every byte is masked once). Shorter buffers take unaligned vectors and
//!   disjoint scalar pieces for the last bytes.
//!
//! All `unsafe` code lives in the [`simd`] submodule.

mod simd;

/// Below this length [`apply_mask`] masks with [`short`].
const SMALL: usize = 32;
/// Below this length (and from [`SMALL`] on) [`apply_mask`] masks with [`medium`]; from here on
/// it calls the vector kernel.
const MEDIUM: usize = 192;

/// XORs `buf` with the mask `key`, starting at byte `offset` of the payload (RFC 6455 §5.3).
///
/// Uses the fastest SIMD instructions the CPU supports (detected at runtime when the `std`
/// feature is on), with the same result as the byte-at-a-time definition for every length,
/// alignment and offset.
///
/// ```
/// use hybi::frame::apply_mask;
/// // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
/// let mut data = *b"Hello";
/// apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// // Chunks give the same result when the offset carries on.
/// let mut a = *b"Hello";
/// apply_mask(&mut a[..3], [0x37, 0xfa, 0x21, 0x3d], 0);
/// apply_mask(&mut a[3..], [0x37, 0xfa, 0x21, 0x3d], 3);
/// assert_eq!(a, data);
/// ```
#[inline(always)]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Up to `MEDIUM` bytes the work is done at the call site; only longer buffers pay for a call
    // (and an indirect one at that).
    let key = rotate(key, offset);
    if buf.len() < SMALL {
        short(buf, key);
    } else if buf.len() < MEDIUM {
        medium(buf, key);
    } else {
        apply_mask_long(buf, key);
    }
}

/// [`apply_mask`] from [`MEDIUM`] bytes on (`key` already rotated to `buf[0]`).
#[inline(never)]
fn apply_mask_long(buf: &mut [u8], key: [u8; 4]) {
    simd::apply_best(buf, key);
}

/// The byte-at-a-time reference implementation of [`apply_mask`], for tests and benchmarks.
#[cfg(any(test, feature = "__testing"))]
pub fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

/// The key as seen from byte `offset` of the payload: `rotate(key, n)[i] == key[(n + i) % 4]`.
#[inline(always)]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Little-endian view: byte `i` is bits `8i..8i + 8`, so moving byte `i + r` to `i` is a
    // rotation right by `8r` bits (one instruction, on either endianness).
    u32::from_le_bytes(key)
        .rotate_right(8 * (offset & 3) as u32)
        .to_le_bytes()
}

/// The key repeated to fill a `u64`, in memory order.
#[inline(always)]
fn key64(k: [u8; 4]) -> u64 {
    let k = u64::from(u32::from_ne_bytes(k));
    k | k << 32
}

/// Splits off the first `N` bytes of `*rest` if it has that many.
#[inline(always)]
fn chunk<'a, const N: usize>(rest: &mut &'a mut [u8]) -> Option<&'a mut [u8; N]> {
    if rest.len() < N {
        return None;
    }
    let Some((piece, tail)) = core::mem::take(rest).split_first_chunk_mut::<N>() else {
        unreachable!()
    };
    *rest = tail;
    Some(piece)
}

/// Masks `buf` (`key` already rotated to `buf[0]`) for `buf.len() < 32`.
///
/// The buffer is cut into disjoint pieces: up to three `u64`, then a `u32`, then up to three
/// bytes, as the length requires, each XORed as one integer. Disjoint pieces at positions that
/// depend only on the length mean that masking the same buffer again reads back exactly the
/// words just written, so stores forward to loads (overlapping windows would stall there).
///
/// General-purpose registers rather than one 16-byte vector for the first 16 bytes: two
/// independent `u64` read-modify-writes have about half the latency of a vector one when the
/// buffer was just written (measured at 16 bytes, masking the same buffer over and over: 1.7
/// times as fast with a constant key, 1.2 times with a run-time one).
#[inline(always)]
fn short(buf: &mut [u8], key: [u8; 4]) {
    debug_assert!(buf.len() < 32);
    let k = key64(key);
    let mut rest = buf;
    // Nested, so that each `u64` is its own basic block: side by side, LLVM would merge two of
    // them into one vector operation.
    if let Some(w) = chunk::<8>(&mut rest) {
        *w = (u64::from_ne_bytes(*w) ^ k).to_ne_bytes();
        if let Some(w) = chunk::<8>(&mut rest) {
            *w = (u64::from_ne_bytes(*w) ^ k).to_ne_bytes();
            if let Some(w) = chunk::<8>(&mut rest) {
                *w = (u64::from_ne_bytes(*w) ^ k).to_ne_bytes();
            }
        }
    }
    // Multiples of 8 so far: the key phase is still 0.
    if let Some(w) = chunk::<4>(&mut rest) {
        *w = (u32::from_ne_bytes(*w) ^ u32::from_ne_bytes(key)).to_ne_bytes();
    }
    // Fewer than 4 bytes left, still at phase 0: one at a time. (A `u16` piece here is as
    // fast for one length at a time, but half as fast when the lengths vary from call to call.)
    for (b, k) in rest.iter_mut().zip(key) {
        *b ^= k;
    }
}

/// Masks `buf` (`key` already rotated to `buf[0]`), of any length, as 32-byte blocks of four
/// `u64` words, then [`short`] for the rest. Inline up to [`MEDIUM`] bytes: for a few dozen
/// bytes this beats a call to a vector kernel.
#[inline(always)]
fn medium(buf: &mut [u8], key: [u8; 4]) {
    let k = key64(key);
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for word in block.chunks_exact_mut(8) {
            let Ok(w) = <[u8; 8]>::try_from(&*word) else {
                unreachable!()
            };
            word.copy_from_slice(&(u64::from_ne_bytes(w) ^ k).to_ne_bytes());
        }
    }
    // 32 is a multiple of 4: the key phase is unchanged. (Skipping `short` when nothing is left
    // is measurably faster.)
    let rest = blocks.into_remainder();
    if !rest.is_empty() {
        short(rest, key);
    }
}

/// The safe fallback for any length (`key` already rotated to `buf[0]`): [`medium`], out of
/// line. Used where no vector kernel exists and under Miri.
fn portable(buf: &mut [u8], key: [u8; 4]) {
    medium(buf, key);
}

#[cfg(test)]
mod tests {
    use super::simd::Kernel;
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Lengths, buffer starts and offsets covered by the exhaustive differential test. Miri is
    /// orders of magnitude slower, so it gets a smaller (still head/body/tail-covering) grid.
    const MAX_LEN: usize = if cfg!(miri) { 200 } else { 512 };
    const STARTS: usize = if cfg!(miri) { 3 } else { 64 };
    const OFFSETS: &[usize] = if cfg!(miri) {
        &[0, 1, 2, 3]
    } else {
        &[0, 1, 2, 3, 5, 6, 7, 1001, usize::MAX / 2]
    };

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(151) ^ (i >> 8)) as u8)
            .collect()
    }

    /// Checks `f` against the naive loop for every offset, length and buffer start in the grid.
    fn differential(name: &str, f: impl Fn(&mut [u8], [u8; 4], usize)) {
        let mut lens: Vec<usize> = (0..=MAX_LEN).collect();
        if cfg!(miri) {
            // Keep Miri fast: every small length, then a stride through the rest.
            lens.retain(|&l| l <= 72 || l % 17 == 0 || l == MAX_LEN);
        }
        differential_grid(name, &f, &lens, OFFSETS);
        // From 512 bytes on, the vector kernels mask the ends as vectors overlapping the body:
        // every length up to 1100 bytes (every head and tail size of each vector width) at
        // every start, then a stride, with fewer offsets.
        if !cfg!(miri) {
            let long: Vec<usize> = (MAX_LEN + 1..=1100)
                .chain((1101..=2100).step_by(37))
                .chain([4096 + 13])
                .collect();
            differential_grid(name, &f, &long, &[0, 3]);
        }
    }

    fn differential_grid(
        name: &str,
        f: &impl Fn(&mut [u8], [u8; 4], usize),
        lens: &[usize],
        offsets: &[usize],
    ) {
        let key = [0x9d, 0x12, 0xe4, 0x37];
        let max = lens.iter().copied().max().unwrap_or(0);
        let backing = pattern(max + STARTS + 8);
        let mut fast = backing.clone();
        let mut slow = backing.clone();
        for &offset in offsets {
            for start in 0..STARTS {
                for &len in lens {
                    f(&mut fast[start..start + len], key, offset);
                    apply_mask_naive(&mut slow[start..start + len], key, offset);
                    // The whole backing buffer: nothing outside the slice may change.
                    assert!(
                        fast == slow,
                        "{name}: offset {offset} start {start} len {len}"
                    );
                    // Back to the original (masking twice is the identity), for the next case.
                    f(&mut fast[start..start + len], key, offset);
                    apply_mask_naive(&mut slow[start..start + len], key, offset);
                }
            }
        }
    }

    #[test]
    fn dispatch_matches_naive() {
        differential("apply_mask", apply_mask);
    }

    #[test]
    fn every_supported_kernel_matches_naive() {
        let kernels: Vec<Kernel> = Kernel::supported().collect();
        assert!(kernels.contains(&Kernel::best()));
        for kernel in kernels {
            differential(kernel.name(), |buf, key, offset| {
                kernel.apply(buf, rotate(key, offset));
            });
        }
    }

    #[test]
    fn small_and_portable_match_naive() {
        differential("short", |buf, key, offset| {
            if buf.len() < 32 {
                short(buf, rotate(key, offset));
            } else {
                apply_mask_naive(buf, key, offset);
            }
        });
        differential("portable", |buf, key, offset| {
            portable(buf, rotate(key, offset));
        });
    }

    #[test]
    fn rfc_example_and_involution() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut data = *b"Hello";
        apply_mask(&mut data, key, 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        let original = pattern(300);
        let mut buf = original.clone();
        apply_mask(&mut buf, key, 3);
        assert_ne!(buf, original);
        apply_mask(&mut buf, key, 3);
        assert_eq!(buf, original);
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: if cfg!(miri) { 8 } else { 256 },
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn random_buffers_match_naive(
            data in proptest::collection::vec(any::<u8>(), 0..if cfg!(miri) { 100 } else { 3000 }),
            key in any::<[u8; 4]>(),
            offset in any::<usize>().prop_map(|o| o >> 2),
            start in 0usize..64,
        ) {
            let start = start.min(data.len());
            let mut fast = data.clone();
            let mut slow = data;
            apply_mask(&mut fast[start..], key, offset);
            apply_mask_naive(&mut slow[start..], key, offset);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn chunked_equals_whole(
            data in proptest::collection::vec(any::<u8>(), 0..if cfg!(miri) { 100 } else { 3000 }),
            key in any::<[u8; 4]>(),
            offset in 0usize..1 << 20,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut whole = data.clone();
            apply_mask(&mut whole, key, offset);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort_unstable();
            let mut chunked = data;
            for w in cuts.windows(2) {
                apply_mask(&mut chunked[w[0]..w[1]], key, offset + w[0]);
            }
            prop_assert_eq!(chunked, whole);
        }
    }
}
