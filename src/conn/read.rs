//! Input and memory: the read buffer, how much room each read is offered, where input goes
//! (the handshake or the frame decoder), and giving memory back between bursts and when idle.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::BytesMut;

use super::{Connection, Handshaking, Phase};
use crate::frame::MAX_HEADER_LEN;

/// The read buffer and its sizing policy.
#[derive(Debug)]
pub(super) struct ReadBuf {
    pub(super) buf: BytesMut,
    /// The buffer grew past its working size since the last `release_memory`.
    grown: bool,
    /// The room the next read is offered when no frame needs more (adaptive: see
    /// [`Config::max_read_size`](crate::Config::max_read_size)); 0 until a read fills the
    /// buffer.
    size: usize,
    /// The connection holds no read buffer and should not get one before bytes arrive (see
    /// [`Connection::read_buffer_released`]).
    released: bool,
    /// Data frames arrived since the connection was made or last went idle
    /// ([`Connection::release_idle_memory`]): while set, `release_memory` keeps the read buffer
    /// and the event queue at their working size; while not, it frees them when empty.
    pub(super) active: bool,
}

impl Default for ReadBuf {
    fn default() -> Self {
        Self {
            buf: BytesMut::new(),
            grown: false,
            size: 0,
            released: true,
            active: false,
        }
    }
}

/// The room to offer a read meant for messages of up to `size` bytes: the message, its header
/// and one byte more. The byte matters: a read that fills all the room offered tells the
/// runtime the socket may hold more (tokio then reads again and gets `WouldBlock`), while a
/// shorter read tells it the socket is drained. Without it, a 64 KiB message in its 14-byte
/// frame would fill a 65,550-byte read exactly and cost an extra system call.
fn read_room(size: usize) -> usize {
    size.saturating_add(MAX_HEADER_LEN + 1)
}

impl Connection {
    // ---------------------------------------------------------------- B. inputs

    /// Feeds bytes read from the transport (copied once into the read buffer).
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if matches!(self.phase, Phase::Closed(_)) || bytes.is_empty() {
            return;
        }
        if self.read.released {
            // Waking up: the read buffer comes back at its working size.
            self.read.buf.reserve(self.read_hint().max(bytes.len()));
            self.read.released = false;
        }
        self.read.buf.extend_from_slice(bytes);
        self.note_rx_growth();
        self.process_input();
    }

    /// Lets the adapter read straight into the connection's read buffer: `f` appends to the
    /// buffer (it must not remove or change what is there), then the new bytes are processed.
    ///
    /// Room for at least one read is reserved before `f` runs, sized to what the connection is
    /// waiting for (the rest of a large frame, or [`Config::read_buffer_size`](crate::Config::read_buffer_size)).
    ///
    /// ```
    /// use bytes::BufMut;
    /// use hybi::{Config, Connection, Role, Event};
    /// let mut conn = Connection::open(Role::Client, Config::default());
    /// conn.read_into(|buf| buf.put_slice(&[0x81, 0x02, b'h', b'i']));
    /// assert!(matches!(conn.next_event(), Some(Event::Message(_))));
    /// ```
    pub fn read_into<R>(&mut self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        self.read.released = false;
        let want = self.read_hint();
        let rx = &self.read.buf;
        if rx.capacity() - rx.len() < want && !self.reclaim_rx(want) {
            self.read.buf.reserve(want);
            self.note_rx_growth();
        }
        let before = self.read.buf.len();
        let offered = self.read.buf.capacity() - before;
        let r = f(&mut self.read.buf);
        let got = self.read.buf.len() - before;
        if got > 0 {
            if got >= offered {
                self.grow_read_size();
            }
            if matches!(self.phase, Phase::Closed(_)) {
                self.read.buf.clear();
            } else {
                self.process_input();
            }
        }
        r
    }

    /// Where input goes: the handshake while CONNECTING, the frame decoder while OPEN or
    /// CLOSING, nowhere once a failure or a close frame was found or the connection CLOSED.
    pub(super) fn process_input(&mut self) {
        loop {
            match &mut self.phase {
                Phase::Connecting(h) => match &mut **h {
                    Handshaking::Request => {
                        if !self.read_request() {
                            return;
                        }
                    }
                    // Pipelined frames wait in the buffer until the application decides.
                    Handshaking::Decision(_) => return,
                    Handshaking::Response { .. } => {
                        if !self.read_response() {
                            return;
                        }
                    }
                },
                Phase::Open | Phase::Closing(_) => {
                    // Nothing after a failure or the peer's close frame is processed
                    // (§7.1.7, §5.5.1), also while our answer to it is still being written.
                    let over = matches!(&self.phase, Phase::Closing(c) if c.peer_closed());
                    if self.deferred.is_none() && !over {
                        self.read_frames();
                    } else {
                        self.read.buf.clear();
                    }
                    return;
                }
                Phase::Closed(_) => {
                    self.read.buf.clear();
                    return;
                }
            }
        }
    }

    /// The room a read is offered when no frame needs more: the adaptive read size (from
    /// `read_buffer_size` up to `max_read_size`) plus room for one frame header and a byte, so
    /// a message of that size arrives in one read (see [`read_room`]).
    fn base_read(&self) -> usize {
        read_room(self.read.size.max(self.min_read()))
    }

    fn min_read(&self) -> usize {
        self.config.read_buffer_size().max(64)
    }

    /// A read filled all the room it was offered, so more is probably waiting (a batch of
    /// messages, a large frame): offer twice as much next time, up to `max_read_size`.
    fn grow_read_size(&mut self) {
        let min = self.min_read();
        let max = self.config.max_read_size().max(min);
        self.read.size = self.read.size.max(min).saturating_mul(2).min(max);
    }

    /// Makes room in the read buffer's own allocation, without allocating, when what is
    /// awaited fits in it: the tail of a partly received frame moves to the front (when nothing
    /// else points into the buffer and the move does not overlap). A batch of small frames that
    /// straddles reads then never grows the buffer past the read size.
    fn reclaim_rx(&mut self, want: usize) -> bool {
        let len = self.read.buf.len();
        let fits = self.recv.awaiting_payload().is_none_or(|rest| rest <= want);
        fits && len < want && self.read.buf.try_reclaim(want - len)
    }

    fn note_rx_growth(&mut self) {
        self.read.grown |= self.read.buf.capacity() > self.busy_keep();
    }

    /// How many bytes the next read should make room for.
    fn read_hint(&self) -> usize {
        let base = self.base_read();
        match self.recv.awaiting_payload() {
            Some(rest) if !self.config.stream_fragments() => {
                // Grow with the data, not with what a header claims (a 16 MiB claim with no data
                // behind it costs nothing): room for at most 8 times what the buffer holds, so a
                // large frame takes a few reallocations (64 KiB, 576 KiB, 5 MiB, 16 MiB), not
                // one per doubling.
                let grow = self.read.buf.capacity().max(base).saturating_mul(8);
                // Room for the rest of the frame and for what follows it: a read that brings
                // exactly the rest does not fill the buffer (see `read_room`).
                rest.saturating_sub(self.read.buf.len())
                    .min(grow)
                    .saturating_add(base)
            }
            _ => base,
        }
    }

    // ---------------------------------------------------------------- E. memory

    /// Frees buffers that are empty and larger than their working size: a large frame's, a
    /// large message's, a large batch's (anything over
    /// [`Config::max_read_size`](crate::Config::max_read_size)). Adapters call it when the
    /// transport has nothing more to read for now, so a connection holds no large buffers
    /// between bursts.
    ///
    /// Buffers of working size (the read buffer, at its adaptive read size, the event queue,
    /// the output buffer) are kept while data flows, so that a busy connection does not
    /// allocate per message. They are freed too, when empty, on a connection that has not
    /// received (for the read buffer and event queue) or sent (for the output buffer) a data
    /// message since it was made or since [`release_idle_memory`](Self::release_idle_memory):
    /// an opened connection that has not exchanged data yet holds no buffers. Once the read
    /// buffer is freed, [`read_buffer_released`](Self::read_buffer_released) says so.
    pub fn release_memory(&mut self) {
        let active = self.read.active;
        // Growth is remembered when it happens: after a large message was split off, the
        // small remainder reports a small capacity (even 0) but keeps the whole allocation
        // alive, and an empty view may still pin it.
        if self.read.buf.is_empty() && (self.read.grown || !active) {
            self.read.buf = BytesMut::new();
            self.read.grown = false;
            self.read.released = !active;
        }
        if !active {
            self.read.size = 0;
        }
        let keep = self.busy_keep();
        self.out.release(if self.send.active { keep } else { 0 });
        self.recv.release(if active { keep } else { 0 });
        if self.send.scratch.capacity() > 0 {
            self.send.scratch = Vec::new();
        }
        if let Some(d) = self
            .deflate
            .as_deref_mut()
            .filter(|_| !self.recv.in_message())
        {
            d.release();
        }
        let keep_events = if active { 8 } else { 0 };
        if self.events.is_empty() && self.events.capacity() > keep_events {
            self.events = VecDeque::new();
        }
    }

    /// How large a buffer a busy connection keeps between reads: the largest read.
    fn busy_keep(&self) -> usize {
        read_room(self.config.max_read_size().max(self.min_read()))
    }

    /// Tells the connection that its transport has been quiet for a while, then releases
    /// memory: every empty buffer is freed, the read buffer included, the adaptive read size
    /// goes back to [`Config::read_buffer_size`](crate::Config::read_buffer_size), and
    /// [`release_memory`](Self::release_memory) keeps freeing them until data flows again.
    /// An idle connection then holds no buffers; waking it up costs a few allocations (the
    /// read buffer, the event queue, the output buffer for an answer).
    ///
    /// The core has no clock, so the adapter decides what "a while" is: the driver calls this
    /// after [`Timeouts::release_after`](crate::Timeouts::release_after) without input (2 s by
    /// default) and when its keepalive ping is due.
    ///
    /// ```
    /// use bytes::BufMut;
    /// use hybi::{Config, Connection, Event, Role};
    /// let mut conn = Connection::open(Role::Client, Config::default());
    /// conn.read_into(|buf| buf.put_slice(&[0x82, 0x01, 7]));
    /// assert!(matches!(conn.next_event(), Some(Event::Message(_))));
    /// conn.release_idle_memory();
    /// assert!(conn.read_buffer_released());
    /// conn.handle_input(&[0x82, 0x01, 8]);
    /// assert!(matches!(conn.next_event(), Some(Event::Message(_))));
    /// ```
    pub fn release_idle_memory(&mut self) {
        self.read.active = false;
        self.send.active = false;
        self.release_memory();
    }

    /// The bytes received and not used yet, for handing the transport to someone else: while
    /// CONNECTING, what came after the request (or response) head, or the incomplete head;
    /// while OPEN or CLOSING, the start of a frame not complete enough to decode. `None`
    /// while a frame is half taken (its header was decoded and its payload is still arriving):
    /// those bytes belong to the WebSocket. Once a close frame or a failure was found, what
    /// followed it is discarded, never kept (RFC 6455 §5.5.1, §7.1.7).
    ///
    /// ```
    /// use hybi::{Config, Connection, Event};
    /// let mut conn = Connection::server(Config::default());
    /// conn.handle_input(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\n\r\nnot a frame");
    /// assert!(matches!(conn.next_event(), Some(Event::Request(_))));
    /// // The application decides to hand the connection to something else.
    /// assert_eq!(conn.unread(), Some(&b"not a frame"[..]));
    /// ```
    pub fn unread(&self) -> Option<&[u8]> {
        (!self.recv.in_frame()).then_some(&self.read.buf[..])
    }

    /// `true` while the connection holds no read buffer: it has not read anything yet, or
    /// [`release_memory`](Self::release_memory) freed the buffer of a connection that went
    /// quiet. An adapter should then wait for input with a buffer of its own and pass what
    /// arrives to [`handle_input`](Self::handle_input) (which takes the read buffer back),
    /// rather than call [`read_into`](Self::read_into), which allocates the read buffer before
    /// anything arrives.
    pub fn read_buffer_released(&self) -> bool {
        self.read.released
    }
}
