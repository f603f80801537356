//! Test aids: deterministic mask keys and the reference masking loop. Not part of the API: they
//! exist for hybi's own tests, benches and fuzz targets, behind the `__testing` feature.

use crate::config::MaskSource;
pub use crate::frame::mask::apply_mask_naive;

/// A mask source that repeats one 4-byte key (and a fixed nonce): for tests and the RFC's
/// examples only. Never use it on a real connection: predictable masks defeat §10.3.
#[derive(Debug, Clone, Copy)]
pub struct FixedMask(pub [u8; 4]);

impl MaskSource for FixedMask {
    fn fill(&self, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.0[i % 4];
        }
    }
}
