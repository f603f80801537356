//! The output queue: frames waiting to be written, as a few contiguous chunks.

use alloc::collections::VecDeque;
use bytes::{Buf, Bytes, BytesMut};

/// Bytes queued for the transport, in order: frozen chunks (zero-copy payloads and the headers
/// before them) followed by the accumulator for everything small.
#[derive(Debug, Default)]
pub(crate) struct Output {
    chunks: VecDeque<Bytes>,
    buf: BytesMut,
    len: usize,
    /// Every byte ever queued.
    total: u64,
    /// The largest capacity the accumulator reached since the last release.
    peak: usize,
}

impl Output {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The accumulator, for appending; call [`Self::commit`] with the number of bytes appended.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// How many bytes were ever queued: a position in the output stream.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// How many bytes were ever written (reported with [`Self::advance`]).
    pub(crate) fn written(&self) -> u64 {
        self.total - self.len as u64
    }

    pub(crate) fn commit(&mut self, n: usize) {
        self.len += n;
        self.total += n as u64;
        self.peak = self.peak.max(self.buf.capacity());
    }

    /// Queues `payload` without copying it (after what the accumulator holds).
    pub(crate) fn push_bytes(&mut self, payload: Bytes) {
        if payload.is_empty() {
            return;
        }
        if !self.buf.is_empty() {
            self.chunks.push_back(self.buf.split().freeze());
        }
        self.len += payload.len();
        self.total += payload.len() as u64;
        self.chunks.push_back(payload);
    }

    /// The first contiguous chunk of pending bytes.
    pub(crate) fn first(&self) -> &[u8] {
        match self.chunks.front() {
            Some(c) => c,
            None => &self.buf,
        }
    }

    /// Every pending chunk, in order.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks
            .iter()
            .map(|c| &c[..])
            .chain(core::iter::once(&self.buf[..]))
            .filter(|c| !c.is_empty())
    }

    /// Drops `n` written bytes from the front.
    pub(crate) fn advance(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(c) if c.len() <= n => {
                    n -= c.len();
                    self.chunks.pop_front();
                }
                Some(c) => {
                    c.advance(n);
                    n = 0;
                }
                None => {
                    self.buf.advance(n);
                    n = 0;
                }
            }
        }
        if self.len == 0 {
            self.buf.clear();
        }
    }

    /// Frees the accumulator when nothing is pending and it grew past `keep` bytes (a smaller
    /// one is kept, so a busy connection does not reallocate after every flush). Its reported
    /// capacity says little of the allocation behind it: after `advance`, a small remainder can
    /// pin a large buffer, so growth is remembered when it happens. With `keep == 0` everything
    /// is freed, the chunk queue included.
    pub(crate) fn release(&mut self, keep: usize) {
        let keep_chunks = if keep == 0 { 0 } else { 4 };
        if self.len == 0
            && (self.peak > keep || !self.chunks.is_empty() || self.chunks.capacity() > keep_chunks)
        {
            self.peak = 0;
            self.buf = BytesMut::new();
            self.chunks = VecDeque::new();
        }
    }
}
