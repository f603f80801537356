//! Vector kernels for [`apply_mask`](super::apply_mask) and the runtime choice between them.
//!
//! This is the only module of the crate allowed to use `unsafe`.
//!
//! # Safety invariant
//!
//! Every `unsafe` block below relies on one or both of these facts, and each says which:
//!
//! 1. **CPU support.** A function compiled with `#[target_feature(enable = ...)]` runs only on a
//!    CPU that has those features. Such functions are reached only through [`Kernel::apply`]
//!    and [`apply_best`]. A [`Kernel`] naming a vector [`Choice`] is created only by
//!    [`Kernel::best`] or [`Kernel::supported`], right after runtime detection
//!    (`is_x86_feature_detected!`, with the `std` feature) or when the features are enabled at
//!    compile time (`cfg(target_feature)`, which the compiler guarantees for the whole
//!    program); `Kernel`'s field is private to this module, so no other code can forge one. The
//!    cache `BEST` that [`apply_best`] calls through holds either null or the entry point
//!    ([`Kernel::entry`]) of the kernel that [`Kernel::best`] returned, stored as a pointer to
//!    a function of type [`KernelFn`].
//! 2. **Bounds.** [`mask_vectors`] and the functions it calls load and store `V::LANES` bytes
//!    at `p + i` only for `i + V::LANES <= len`, where `p` and `len` are the pointer and length
//!    of the caller's `&mut [u8]` or of a sub-slice of it: that memory is valid for reads and
//!    writes, and nothing else accesses it during the call (all accesses go through one pointer
//!    derived from it). Vector loads and stores are the unaligned forms, so alignment is a
//!    matter of speed only, never of soundness.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use super::{portable, rotate};

/// One way of masking a buffer; proof (by the module invariant) that the CPU can run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Kernel(Choice);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Choice {
    /// Safe `u64` loop ([`portable`]).
    Portable = 1,
    /// 16-byte SSE2 vectors.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    Sse2 = 2,
    /// 32-byte AVX2 vectors (16-byte ones below 32 bytes).
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    Avx2 = 3,
    /// 64-byte AVX-512F vectors (32/16-byte ones below 64 bytes).
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    Avx512 = 4,
    /// 16-byte NEON vectors.
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    Neon = 5,
}

/// Which x86 vector extensions the running CPU has: `(sse2, avx2, avx512f)`.
///
/// With `std` this asks the CPU (the standard library caches the answer); without it, or under
/// Miri, it reports what the build enables at compile time.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline]
fn x86_features() -> (bool, bool, bool) {
    #[cfg(all(feature = "std", not(miri)))]
    {
        let sse2 = std::is_x86_feature_detected!("sse2");
        let avx2 = sse2 && std::is_x86_feature_detected!("avx2");
        let avx512 = avx2 && std::is_x86_feature_detected!("avx512f");
        (sse2, avx2, avx512)
    }
    #[cfg(not(all(feature = "std", not(miri))))]
    {
        let sse2 = cfg!(target_feature = "sse2");
        let avx2 = sse2 && cfg!(target_feature = "avx2");
        let avx512 = avx2 && cfg!(target_feature = "avx512f");
        (sse2, avx2, avx512)
    }
}

/// A kernel's entry point: masks `buf` (of any length) with `key`, already rotated to `buf[0]`.
///
/// # Safety
///
/// The CPU supports the kernel's target features (invariant 1).
type KernelFn = unsafe fn(&mut [u8], [u8; 4]);

#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    feature = "std",
    not(miri)
))]
use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};

/// Null until the first dispatch, then [`Kernel::best`]'s entry point, a [`KernelFn`]. Only ever
/// written with that (invariant 1).
#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    feature = "std",
    not(miri)
))]
static BEST: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Masks `buf` (`key` already rotated to `buf[0]`) with the fastest kernel for this CPU.
///
/// With runtime detection the hot path is one relaxed load, a null check and an indirect call
/// (measured: about 1.5 cycles cheaper per call than comparing a cached kernel number against
/// each tier, which shows from 128 to 256 bytes).
#[inline]
pub(super) fn apply_best(buf: &mut [u8], key: [u8; 4]) {
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        feature = "std",
        not(miri)
    ))]
    {
        let entry = BEST.load(Relaxed);
        if !entry.is_null() {
            // SAFETY: a non-null `BEST` was stored by `apply_best_cold` from a `KernelFn`
            // (invariant 1); this turns it back into that same function pointer.
            let entry = unsafe { core::mem::transmute::<*mut (), KernelFn>(entry) };
            // SAFETY: `entry` belongs to the kernel `Kernel::best` chose for this CPU
            // (invariant 1); kernels accept buffers of any length.
            return unsafe { entry(buf, key) };
        }
        apply_best_cold(buf, key);
    }
    #[cfg(not(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        feature = "std",
        not(miri)
    )))]
    Kernel::best().apply(buf, key);
}

/// The first call of [`apply_best`]: detection, then the cache.
#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    feature = "std",
    not(miri)
))]
#[cold]
#[inline(never)]
fn apply_best_cold(buf: &mut [u8], key: [u8; 4]) {
    let kernel = Kernel::best();
    BEST.store(kernel.entry() as *mut (), Relaxed);
    kernel.apply(buf, key);
}

impl Kernel {
    /// The fastest kernel for this CPU (the standard library caches what runtime detection
    /// finds). Miri always gets the portable loop.
    #[inline]
    pub(super) fn best() -> Self {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            // Without runtime detection, a constant after inlining.
            if cfg!(miri) {
                Self(Choice::Portable)
            } else {
                Self(Self::detect_x86())
            }
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon", not(miri)))]
        {
            Self(Choice::Neon)
        }
        #[cfg(not(any(
            target_arch = "x86",
            target_arch = "x86_64",
            all(target_arch = "aarch64", target_feature = "neon", not(miri))
        )))]
        {
            Self(Choice::Portable)
        }
    }

    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn detect_x86() -> Choice {
        match x86_features() {
            (_, _, true) => Choice::Avx512,
            (_, true, false) => Choice::Avx2,
            (true, false, false) => Choice::Sse2,
            (false, false, false) => Choice::Portable,
        }
    }

    /// Every kernel this CPU can run, for tests and benchmarks.
    #[allow(dead_code)]
    pub(super) fn supported() -> impl Iterator<Item = Self> {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        let (sse2, avx2, avx512) = x86_features();
        [
            Some(Choice::Portable),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            sse2.then_some(Choice::Sse2),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            avx2.then_some(Choice::Avx2),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            avx512.then_some(Choice::Avx512),
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Some(Choice::Neon),
        ]
        .into_iter()
        .flatten()
        .map(Kernel)
    }

    /// A short name for test messages and benchmark ids.
    #[allow(dead_code)]
    pub(super) fn name(self) -> &'static str {
        match self.0 {
            Choice::Portable => "portable",
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Sse2 => "sse2",
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Avx2 => "avx2",
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Avx512 => "avx512",
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Choice::Neon => "neon",
        }
    }

    /// This kernel's entry point. Calling it is sound because `self` exists (invariant 1).
    #[allow(dead_code)]
    fn entry(self) -> KernelFn {
        match self.0 {
            Choice::Portable => portable,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Sse2 => x86::sse2,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Avx2 => x86::avx2,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Avx512 => x86::avx512,
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Choice::Neon => neon::neon,
        }
    }

    /// Masks `buf` (of any length) with `key`, already rotated to `buf[0]`.
    #[inline]
    pub(super) fn apply(self, buf: &mut [u8], key: [u8; 4]) {
        match self.0 {
            Choice::Portable => portable(buf, key),
            // SAFETY: a `Kernel` holding `Sse2` exists only if the CPU has SSE2 (invariant 1).
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Sse2 => unsafe { x86::sse2(buf, key) },
            // SAFETY: a `Kernel` holding `Avx2` exists only if the CPU has SSE2 and AVX2
            // (invariant 1).
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Avx2 => unsafe { x86::avx2(buf, key) },
            // SAFETY: a `Kernel` holding `Avx512` exists only if the CPU has SSE2, AVX2 and
            // AVX-512F (invariant 1).
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Choice::Avx512 => unsafe { x86::avx512(buf, key) },
            // SAFETY: `Neon` exists only when NEON is enabled at compile time (invariant 1).
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Choice::Neon => unsafe { neon::neon(buf, key) },
        }
    }
}

/// A SIMD register of `LANES` bytes, as far as masking needs it.
///
/// # Safety
///
/// Every method requires that the CPU supports the implementing type's target features.
/// `load` and `store` additionally require `p` to be valid for `LANES` bytes of reads or
/// writes; they have no alignment requirement.
trait Vector: Copy {
    const LANES: usize;
    /// The 4-byte key repeated across the register, in memory order.
    unsafe fn splat(key: [u8; 4]) -> Self;
    unsafe fn xor(self, other: Self) -> Self;
    unsafe fn load(p: *const u8) -> Self;
    unsafe fn store(self, p: *mut u8);
    /// Masks a buffer shorter than `LANES` (the edges left over by [`mask_vectors`]), `key`
    /// rotated to its first byte.
    unsafe fn edge(buf: &mut [u8], key: [u8; 4]);
}

/// From this length on, [`mask_vectors`] aligns its vector accesses, and masks the unaligned
/// ends as vectors that overlap the aligned body (at least three vectors of every kind, which
/// [`mask_aligned`] needs).
///
/// Measured with AVX2 on Zen 3 (`examples/mask_placement.rs`: one buffer masked over and over,
/// at each of the 64 placements past a cache line, best of 40 rounds), median over placements:
/// below 512 bytes, unaligned vectors beat both alternatives (320 B: 45 GB/s; 36 with the ends
/// as up to 31 bytes of scalar pieces each); from 512 bytes, some placements make the
/// unaligned loop lose half its speed or more, while the aligned body with overlapping ends
/// gives 1 KiB at 81 GB/s at every placement but 87 when already aligned (scalar ends: 72).
/// Below 512 bytes the overlapping ends lose: the next pass loads bytes that two recent stores
/// wrote, which the CPU cannot forward, and waits for both to reach the cache.
const ALIGN_FROM: usize = 512;

const _: () = assert!(ALIGN_FROM >= 3 * 64);

/// Masks `buf` (`key` already rotated to `buf[0]`) with vectors of type `V`.
///
/// Below [`ALIGN_FROM`] bytes: unaligned vectors, four at a time, then [`Vector::edge`] for
/// whatever is left (fewer than `LANES` bytes). The pieces are disjoint and their positions
/// depend only on the length, so masking the same buffer twice reads back exactly the vectors
/// just stored, which the CPU forwards without a stall.
///
/// From [`ALIGN_FROM`] bytes on, the body is masked as aligned vectors, so that no vector access
/// in it crosses a cache line (`LANES` divides the 64-byte line), and each end as one unaligned
/// vector that overlaps the body: the first `LANES` bytes, and the last. Both ends are loaded
/// before the body vectors they overlap are stored, so every byte is computed from its original
/// value and the bytes stored twice get the same value twice. (Up to `LANES - 1` bytes at each
/// end as scalar pieces cost a fifth of the speed at 1 KiB.)
///
/// # Safety
///
/// The CPU supports `V`'s target features.
#[inline(always)]
unsafe fn mask_vectors<V: Vector>(buf: &mut [u8], key: [u8; 4]) {
    let l = V::LANES;
    let n = buf.len();
    if n >= ALIGN_FROM {
        // SAFETY: features by the caller's contract; `ALIGN_FROM >= 3 * LANES`.
        return unsafe { mask_aligned::<V>(buf, key) };
    }
    let (body, tail) = buf.split_at_mut(n & !(l - 1));
    // SAFETY: features by the caller's contract.
    let k = unsafe { V::splat(key) };
    let p = body.as_mut_ptr();
    let n = body.len();
    let mut i = 0;
    while i + 4 * l <= n {
        // SAFETY: features by the caller's contract; `[i, i + 4l) ⊆ [0, n)` (invariant 2).
        unsafe { mask4(p.add(i), k) };
        i += 4 * l;
    }
    while i < n {
        // SAFETY: features by the caller's contract; `n - i` is a positive multiple of `l`, so
        // `[i, i + l) ⊆ [0, n)` (invariant 2).
        unsafe { V::load(p.add(i)).xor(k).store(p.add(i)) };
        i += l;
    }
    // `n` is a multiple of `l`, hence of 4: the key phase is unchanged. (Skipping the call
    // for an empty tail is measurably faster for short buffers.)
    if !tail.is_empty() {
        // SAFETY: features by the caller's contract.
        unsafe { V::edge(tail, key) }
    }
}

/// Masks the `4 * V::LANES` bytes at `p` with the splatted key `k`.
///
/// # Safety
///
/// The CPU supports `V`'s target features; `p` is valid for `4 * V::LANES` bytes of reads and
/// writes.
#[inline(always)]
unsafe fn mask4<V: Vector>(p: *mut u8, k: V) {
    let l = V::LANES;
    // SAFETY: features and bounds by the caller's contract.
    unsafe {
        let a = V::load(p).xor(k);
        let b = V::load(p.add(l)).xor(k);
        let c = V::load(p.add(2 * l)).xor(k);
        let d = V::load(p.add(3 * l)).xor(k);
        a.store(p);
        b.store(p.add(l));
        c.store(p.add(2 * l));
        d.store(p.add(3 * l));
    }
}

/// The aligned body of [`mask_aligned`]: the `l`-byte vectors from `i` to `end`, with the
/// splatted key `k`.
///
/// # Safety
///
/// The CPU supports `V`'s target features; `end - i` is a multiple of `V::LANES` and `p` is
/// valid for reads and writes of `[i, end)`.
#[inline(always)]
unsafe fn mask_body<V: Vector>(p: *mut u8, mut i: usize, end: usize, k: V) {
    let l = V::LANES;
    while i + 4 * l <= end {
        // SAFETY: features by the caller's contract; `[i, i + 4l) ⊆ [i0, end)` (invariant 2).
        unsafe { mask4(p.add(i), k) };
        i += 4 * l;
    }
    while i < end {
        // SAFETY: features by the caller's contract; `end - i` is a positive multiple of `l`,
        // so `[i, i + l) ⊆ [i0, end)` (invariant 2).
        unsafe { V::load(p.add(i)).xor(k).store(p.add(i)) };
        i += l;
    }
}

/// [`mask_vectors`] from [`ALIGN_FROM`] bytes: aligned vectors, and one unaligned vector at
/// each end overlapping them.
///
/// # Safety
///
/// The CPU supports `V`'s target features, and `buf.len() >= 3 * V::LANES`.
#[inline(always)]
unsafe fn mask_aligned<V: Vector>(buf: &mut [u8], key: [u8; 4]) {
    let l = V::LANES;
    let n = buf.len();
    debug_assert!(n >= 3 * l);
    // `l` is a power of two: the distance to the next multiple of `l`, less than `l`.
    let h = (buf.as_ptr() as usize).wrapping_neg() & (l - 1);
    // The body: from `h` to the last multiple of `l` past it; one key phase for all of it.
    let end = h + ((n - h) & !(l - 1));
    let p = buf.as_mut_ptr();
    if h == 0 && end == n {
        // SAFETY: features by the caller's contract; the body is the whole buffer, a multiple
        // of `l` bytes.
        return unsafe { mask_body(p, 0, n, V::splat(key)) };
    }
    // Below, every access is `l` bytes inside `[0, n)` as its comment says (invariant 2).
    // SAFETY: features by the caller's contract.
    let k = unsafe { V::splat(rotate(key, h)) };
    // SAFETY: features by the caller's contract; `[n - l, n)`, loaded before the body stores
    // over part of it.
    let last = unsafe { V::load(p.add(n - l)).xor(V::splat(rotate(key, n - l))) };
    let mut i = h;
    if h != 0 {
        // SAFETY: features by the caller's contract; `[0, l)` and `[h, h + l)`, where
        // `h + l < 2l <= n`. Both are loaded before either is stored.
        unsafe {
            let first = V::load(p).xor(V::splat(key));
            let second = V::load(p.add(h)).xor(k);
            first.store(p);
            second.store(p.add(h));
        }
        i = h + l;
    }
    // SAFETY: features by the caller's contract; `[i, end)`, a multiple of `l`.
    unsafe { mask_body(p, i, end, k) };
    // SAFETY: features by the caller's contract; `[n - l, n)`: the bytes from `end` on (if
    // any), and some that the body stored with the same values.
    unsafe { last.store(p.add(n - l)) };
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod x86 {
    #[cfg(target_arch = "x86")]
    use core::arch::x86::*;
    #[cfg(target_arch = "x86_64")]
    use core::arch::x86_64::*;

    use super::super::short;
    use super::{mask_vectors, Vector};

    /// Implements [`Vector`] for one x86 register type; the `Safety` section of [`Vector`]
    /// applies to every method.
    macro_rules! x86_vector {
        ($ty:ty, $lanes:literal, $feature:literal,
         $set1:ident, $xor:ident, $loadu:ident, $storeu:ident,
         edge($buf:ident, $key:ident) $edge:block) => {
            impl Vector for $ty {
                const LANES: usize = $lanes;

                #[inline]
                #[target_feature(enable = $feature)]
                unsafe fn splat(key: [u8; 4]) -> Self {
                    // x86 is little-endian: the i32 lane's bytes in memory are `key`.
                    $set1(i32::from_ne_bytes(key))
                }

                #[inline]
                #[target_feature(enable = $feature)]
                unsafe fn xor(self, other: Self) -> Self {
                    $xor(self, other)
                }

                #[inline]
                #[target_feature(enable = $feature)]
                unsafe fn load(p: *const u8) -> Self {
                    // SAFETY: `p` is valid for `LANES` bytes of reads (caller's contract); this
                    // load has no alignment requirement.
                    unsafe { $loadu(p.cast()) }
                }

                #[inline]
                #[target_feature(enable = $feature)]
                unsafe fn store(self, p: *mut u8) {
                    // SAFETY: `p` is valid for `LANES` bytes of writes (caller's contract); this
                    // store has no alignment requirement.
                    unsafe { $storeu(p.cast(), self) }
                }

                #[inline]
                #[target_feature(enable = $feature)]
                unsafe fn edge($buf: &mut [u8], $key: [u8; 4]) $edge
            }
        };
    }

    x86_vector!(
        __m128i,
        16,
        "sse2",
        _mm_set1_epi32,
        _mm_xor_si128,
        _mm_loadu_si128,
        _mm_storeu_si128,
        edge(buf, key) {
            short(buf, key)
        }
    );
    x86_vector!(
        __m256i,
        32,
        "sse2,avx2",
        _mm256_set1_epi32,
        _mm256_xor_si256,
        _mm256_loadu_si256,
        _mm256_storeu_si256,
        edge(buf, key) {
            // A 128-bit piece (inside `short`) is as good as an SSE2 vector here.
            short(buf, key)
        }
    );
    // The AVX-512 intrinsics are stable since Rust 1.89: this tier needs `rust-version` >= 1.89.
    #[allow(clippy::incompatible_msrv)]
    mod avx512 {
        use super::*;
        x86_vector!(
        __m512i,
        64,
        "sse2,avx2,avx512f",
        _mm512_set1_epi32,
        _mm512_xor_si512,
        _mm512_loadu_si512,
        _mm512_storeu_si512,
        edge(buf, key) {
            // SAFETY: AVX2 is enabled here, and the caller's contract says the CPU has it.
            unsafe { mask_vectors::<__m256i>(buf, key) }
        }
        );
    }

    /// # Safety
    ///
    /// The CPU supports SSE2.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn sse2(buf: &mut [u8], key: [u8; 4]) {
        // SAFETY: the CPU supports SSE2 (our contract).
        unsafe { mask_vectors::<__m128i>(buf, key) }
    }

    /// # Safety
    ///
    /// The CPU supports SSE2 and AVX2.
    #[target_feature(enable = "sse2,avx2")]
    pub(super) unsafe fn avx2(buf: &mut [u8], key: [u8; 4]) {
        // SAFETY: the CPU supports SSE2 and AVX2 (our contract).
        unsafe { mask_vectors::<__m256i>(buf, key) }
    }

    /// # Safety
    ///
    /// The CPU supports SSE2, AVX2 and AVX-512F.
    #[target_feature(enable = "sse2,avx2,avx512f")]
    pub(super) unsafe fn avx512(buf: &mut [u8], key: [u8; 4]) {
        if buf.len() < 64 {
            // SAFETY: the CPU supports SSE2 and AVX2 (our contract).
            unsafe { mask_vectors::<__m256i>(buf, key) }
        } else {
            // SAFETY: the CPU supports SSE2, AVX2 and AVX-512F (our contract).
            unsafe { mask_vectors::<__m512i>(buf, key) }
        }
    }
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon {
    use core::arch::aarch64::*;

    use super::super::short;
    use super::{mask_vectors, Vector};

    /// Only byte-lane loads, stores and XOR, so the layout is right on either endianness. The
    /// `Safety` section of [`Vector`] applies to every method.
    impl Vector for uint8x16_t {
        const LANES: usize = 16;

        #[inline]
        #[target_feature(enable = "neon")]
        unsafe fn splat(key: [u8; 4]) -> Self {
            let [a, b, c, d] = key;
            let bytes = [a, b, c, d, a, b, c, d, a, b, c, d, a, b, c, d];
            // SAFETY: `bytes` is a live local array of 16 bytes.
            unsafe { vld1q_u8(bytes.as_ptr()) }
        }

        #[inline]
        #[target_feature(enable = "neon")]
        unsafe fn xor(self, other: Self) -> Self {
            veorq_u8(self, other)
        }

        #[inline]
        #[target_feature(enable = "neon")]
        unsafe fn load(p: *const u8) -> Self {
            // SAFETY: `p` is valid for 16 bytes of reads (caller's contract); `vld1q_u8` needs
            // only byte alignment.
            unsafe { vld1q_u8(p) }
        }

        #[inline]
        #[target_feature(enable = "neon")]
        unsafe fn store(self, p: *mut u8) {
            // SAFETY: `p` is valid for 16 bytes of writes (caller's contract); `vst1q_u8` needs
            // only byte alignment.
            unsafe { vst1q_u8(p, self) }
        }

        #[inline]
        #[target_feature(enable = "neon")]
        unsafe fn edge(buf: &mut [u8], key: [u8; 4]) {
            short(buf, key);
        }
    }

    /// # Safety
    ///
    /// The CPU supports NEON (enabled at compile time wherever this module exists).
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn neon(buf: &mut [u8], key: [u8; 4]) {
        // SAFETY: the CPU supports NEON (our contract).
        unsafe { mask_vectors::<uint8x16_t>(buf, key) }
    }
}
