//! The output queue: frames waiting to be written, as a few contiguous chunks.

use alloc::collections::VecDeque;
use bytes::{Buf, Bytes, BytesMut};

/// Bytes queued for the transport, in order: runs of the accumulator (everything encoded
/// here: headers, small payloads, control frames) and shared payloads queued without a copy
/// (a large message's payload, a prepared message's frame). The accumulator is only ever
/// appended to and consumed from the front, so a shared payload between two runs needs no
/// split of it: queueing by reference allocates nothing once the queue has room. The run at
/// the end of the accumulator is implicit, so output with no shared payload needs no queue.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// What comes before the accumulator's last run, in order.
    queue: VecDeque<Chunk>,
    /// The bytes of every run, in order.
    buf: BytesMut,
    /// The bytes of `buf` that the runs in `queue` cover (the rest is the last run).
    in_queue: usize,
    len: usize,
    /// Every byte ever queued.
    total: u64,
    /// The largest capacity the accumulator reached since the last release.
    peak: usize,
    /// Bytes were dropped unwritten ([`Self::discard`]).
    discarded: bool,
}

#[derive(Debug)]
enum Chunk {
    /// The next this-many bytes of the accumulator.
    Run(usize),
    /// Bytes queued by reference.
    Shared(Bytes),
}

impl Output {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How many bytes were ever queued: a position in the output stream.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// How many bytes were ever written (reported with [`Self::advance`]).
    pub(crate) fn written(&self) -> u64 {
        self.total - self.len as u64
    }

    /// The accumulator, for appending; call [`Self::commit`] with the number of bytes appended.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Queues the `n` bytes just appended to the accumulator.
    pub(crate) fn commit(&mut self, n: usize) {
        self.len += n;
        self.total += n as u64;
        self.peak = self.peak.max(self.buf.capacity());
    }

    /// Queues `payload` without copying it (after everything queued so far).
    pub(crate) fn push_bytes(&mut self, payload: Bytes) {
        if payload.is_empty() {
            return;
        }
        let tail = self.buf.len() - self.in_queue;
        if tail > 0 {
            self.queue.push_back(Chunk::Run(tail));
            self.in_queue += tail;
        }
        self.len += payload.len();
        self.total += payload.len() as u64;
        self.queue.push_back(Chunk::Shared(payload));
    }

    /// The first contiguous chunk of pending bytes.
    pub(crate) fn first(&self) -> &[u8] {
        match self.queue.front() {
            Some(Chunk::Run(n)) => &self.buf[..*n],
            Some(Chunk::Shared(b)) => b,
            None => &self.buf,
        }
    }

    /// Every pending chunk, in order.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = 0;
        let queued = self.queue.iter().map(move |c| match c {
            Chunk::Run(n) => {
                let run = &self.buf[at..at + n];
                at += n;
                run
            }
            Chunk::Shared(b) => &b[..],
        });
        let tail = &self.buf[self.in_queue..];
        queued.chain((!tail.is_empty()).then_some(tail))
    }

    /// Drops `n` written bytes from the front.
    pub(crate) fn advance(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let taken = match self.queue.front_mut() {
                Some(Chunk::Run(run)) => {
                    let take = n.min(*run);
                    self.buf.advance(take);
                    self.in_queue -= take;
                    *run -= take;
                    if *run == 0 {
                        self.queue.pop_front();
                    }
                    take
                }
                Some(Chunk::Shared(b)) => {
                    let take = n.min(b.len());
                    b.advance(take);
                    if b.is_empty() {
                        self.queue.pop_front();
                    }
                    take
                }
                None => {
                    self.buf.advance(n);
                    n
                }
            };
            n -= taken;
        }
        if self.len == 0 {
            self.buf.clear();
        }
    }

    /// Drops everything pending, unwritten (the peer will never read it), and frees the
    /// buffers.
    pub(crate) fn discard(&mut self) {
        self.discarded |= self.len > 0;
        self.total -= self.len as u64;
        self.len = 0;
        self.in_queue = 0;
        self.peak = 0;
        self.buf = BytesMut::new();
        self.queue = VecDeque::new();
    }

    /// `true` once pending bytes were dropped unwritten.
    pub(crate) fn discarded(&self) -> bool {
        self.discarded
    }

    /// Frees the accumulator when nothing is pending and it grew past `keep` bytes (a smaller
    /// one is kept, so a busy connection does not reallocate after every flush). Its reported
    /// capacity says little of the allocation behind it: after `advance`, a small remainder can
    /// pin a large buffer, so growth is remembered when it happens. With `keep == 0` everything
    /// is freed, the chunk queue included.
    pub(crate) fn release(&mut self, keep: usize) {
        let keep_chunks = if keep == 0 { 0 } else { 64 };
        if self.len == 0 && (self.peak > keep || self.queue.capacity() > keep_chunks) {
            self.peak = 0;
            self.buf = BytesMut::new();
            self.queue = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn all(out: &Output) -> Vec<u8> {
        out.chunks().flatten().copied().collect()
    }

    #[test]
    fn runs_and_shared_chunks_keep_their_order_through_partial_writes() {
        let mut out = Output::default();
        out.buf().extend_from_slice(b"ab");
        out.commit(2);
        out.push_bytes(Bytes::from_static(b"CDE"));
        out.buf().extend_from_slice(b"fg");
        out.commit(2);
        out.buf().extend_from_slice(b"h");
        out.commit(1);
        out.push_bytes(Bytes::from_static(b"IJ"));
        assert_eq!(all(&out), b"abCDEfghIJ");
        assert_eq!(out.chunks().count(), 4);
        assert_eq!((out.len(), out.total(), out.written()), (10, 10, 0));
        for (step, rest) in [(1, &b"bCDEfghIJ"[..]), (3, b"EfghIJ"), (4, b"IJ"), (2, b"")] {
            out.advance(step);
            assert_eq!(all(&out), rest);
            assert_eq!(
                out.first(),
                rest.get(..out.first().len()).unwrap_or_default()
            );
        }
        assert_eq!((out.len(), out.written()), (0, 10));
        out.release(0);
        assert_eq!(out.total(), 10);
    }
}
