//! Payload masking (RFC 6455 §5.3).
//!
//! `transformed[i] = original[i] ^ key[(offset + i) % 4]`. Masking and unmasking are the same
//! operation; `offset` is the position of `buf[0]` within the payload, so a payload can be
//! processed in chunks.

/// XORs `buf` with the mask `key`, starting at byte `offset` of the payload (RFC 6455 §5.3).
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
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    let key64 = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ key64).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// The key as seen from byte `offset` of the payload.
#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let r = offset & 3;
    [key[r], key[(r + 1) & 3], key[(r + 2) & 3], key[(r + 3) & 3]]
}

/// The byte-at-a-time reference implementation of [`apply_mask`], for tests and benchmarks.
#[doc(hidden)]
pub fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn matches_naive_at_every_offset_and_length() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for offset in 0..=3 {
            for len in 0..=256 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                apply_mask_naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "offset {offset} len {len}");
            }
        }
    }
}
