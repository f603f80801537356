//! Inflating hostile input: a client or server `Connection` with permessage-deflate negotiated
//! (by a real opening handshake with a peer `Connection`, done here) is fed arbitrary frames,
//! most of them with RSV1 set, once all at once and once in small chunks.
//!
//! Input:
//!
//! ```text
//! byte 0   bit 0: the server is under test (frames are masked), else the client;
//!          bit 1: server_no_context_takeover; bit 2: client_no_context_takeover;
//!          bits 3-4: both window bits (15, 9, 10, 12); bit 5: stream_fragments;
//!          bit 6: release_memory after every chunk; bit 7: max_message_size 1024 (else 4096)
//! byte 1   chunk size - 1 for the chunked run
//! frames   each: the first header byte as is (FIN, RSV1-3, opcode), a length byte (bit 7 set:
//!          a second byte follows, giving a 15-bit length), then that many payload bytes
//!          (fewer at the end of the input)
//! ```
//!
//! The RFC 7692 §7.2.3 examples are seeds (e.g. `00 00 c1 07 f2 48 cd c9 c9 07 00`).
//!
//! Properties:
//! - no panic; every event is a message (each within `max_message_size`, inflated), a
//!   fragment (with stream_fragments; each message's fragments together within the limit and,
//!   for text, valid UTF-8), a ping or a pong, then at most one `Closed`, last;
//! - the connection closes only by failing with 1002 (protocol error, including corrupt
//!   compressed data), 1007 (invalid UTF-8) or 1009 (too big, for compressed messages found
//!   while inflating), with a `Failure::Protocol` error, or cleanly when the input held a close
//!   frame;
//! - chunking invariance: both runs give the same messages and the same close code;
//! - memory: while the chunked run is fed, the heap grows by no more than a bound linear in
//!   the input and the chunk size (a zip bomb stops at the limit).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use hybi::{
    ClientRequest, CloseCode, Config, Connection, DeflateConfig, Event, Failure, Message,
    MessageKind, State,
};
use libfuzzer_sys::fuzz_target;

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let now = if new_size >= layout.size() {
                LIVE.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size()
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed) - (layout.size() - new_size)
            };
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const URL: &str = "ws://server.example.com/chat";

/// The connection under test, OPEN with permessage-deflate negotiated.
fn connection(flags: u8, max: u64) -> Connection {
    let bits = [15, 9, 10, 12][usize::from(flags >> 3 & 3)];
    let d = DeflateConfig::default()
        .with_server_no_context_takeover(flags & 2 != 0)
        .with_client_no_context_takeover(flags & 4 != 0)
        .with_server_max_window_bits(bits)
        .with_client_max_window_bits(bits);
    let base = Config::default()
        .with_max_message_size(max)
        .with_max_frame_size(1 << 16)
        .with_max_fragments(64)
        .with_stream_fragments(flags & 0x20 != 0)
        .with_deflate(d);
    let mut client = Connection::client(
        ClientRequest::new(URL).unwrap(),
        base.clone().with_mask_source(hybi::testing::FixedMask(KEY)),
    );
    let mut server = Connection::server(base);
    let mut extensions = None;
    for _ in 0..8 {
        let c = client.pending_output().to_vec();
        client.advance_output(c.len());
        server.handle_input(&c);
        while let Some(ev) = server.next_event() {
            if let Event::Request(_) = ev {
                server.accept(hybi::Accept::new()).unwrap();
            }
        }
        let s = server.pending_output().to_vec();
        server.advance_output(s.len());
        client.handle_input(&s);
        while let Some(ev) = client.next_event() {
            if let Event::Open(h) = ev {
                extensions = Some(h.extensions);
            }
        }
    }
    let extensions = extensions.expect("handshake did not complete");
    assert!(
        matches!(&extensions[..], [e] if e.starts_with("permessage-deflate")),
        "{extensions:?}"
    );
    assert_eq!((client.state(), server.state()), (State::Open, State::Open));
    if flags & 1 != 0 {
        server
    } else {
        client
    }
}

/// The frames of the input, encoded as the peer sends them; and whether a close frame is
/// among them.
fn frames(mut data: &[u8], masked: bool) -> (Vec<u8>, bool) {
    let mut wire = Vec::new();
    let mut close = false;
    while data.len() >= 2 {
        let b0 = data[0];
        let (len, used) = if data[1] & 0x80 != 0 {
            let hi = usize::from(data[1] & 0x7f);
            (hi << 8 | usize::from(data.get(2).copied().unwrap_or(0)), 3)
        } else {
            (usize::from(data[1]), 2)
        };
        data = data.get(used..).unwrap_or(&[]);
        let payload = &data[..len.min(data.len())];
        data = &data[payload.len()..];
        close |= b0 & 0x0f == 8;
        wire.push(b0);
        let m = if masked { 0x80 } else { 0 };
        if payload.len() <= 125 {
            wire.push(m | payload.len() as u8);
        } else {
            wire.push(m | 126);
            wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        let start = wire.len() + if masked { 4 } else { 0 };
        if masked {
            wire.extend_from_slice(&KEY);
        }
        wire.extend_from_slice(payload);
        if masked {
            hybi::frame::apply_mask(&mut wire[start..], KEY, 0);
        }
    }
    (wire, close)
}

/// What a run produced, normalized: whole messages (fragments joined; the unfinished message
/// at a failure left out, as how much of it was delivered depends on chunking), pings and
/// pongs, and the close.
#[derive(Debug, PartialEq, Eq, Default)]
struct Transcript {
    records: Vec<(u8, Vec<u8>)>,
    closed: Option<(u16, bool)>,
}

struct Run {
    conn: Connection,
    t: Transcript,
    partial: Option<(MessageKind, Vec<u8>)>,
    max: usize,
    close_in_input: bool,
}

impl Run {
    /// Takes every event and writes (drops) every output, until neither is left: writing our
    /// answer to the peer's close completes the close, and `Closed` comes after it.
    fn drain(&mut self) {
        loop {
            self.take_events();
            if self.conn.buffered_amount() == 0 {
                return;
            }
            // Drop what the connection writes (pongs, its close frame).
            while self.conn.buffered_amount() > 0 {
                let k = self.conn.pending_output().len();
                self.conn.advance_output(k);
            }
        }
    }

    fn take_events(&mut self) {
        while let Some(ev) = self.conn.next_event() {
            assert!(self.t.closed.is_none(), "event after Closed: {ev:?}");
            match ev {
                Event::Message(m) => {
                    assert!(self.partial.is_none(), "message inside a streamed one");
                    assert!(m.as_bytes().len() <= self.max, "message over the limit");
                    let kind = match m {
                        Message::Text(_) => 0,
                        Message::Binary(_) => 1,
                    };
                    self.t.records.push((kind, m.as_bytes().to_vec()));
                }
                Event::Fragment(f) => {
                    let (kind, buf) = self.partial.get_or_insert((f.kind, Vec::new()));
                    assert_eq!(*kind, f.kind);
                    buf.extend_from_slice(&f.data);
                    assert!(buf.len() <= self.max, "streamed message over the limit");
                    if f.fin {
                        let (kind, buf) = self.partial.take().unwrap();
                        if kind == MessageKind::Text {
                            assert!(std::str::from_utf8(&buf).is_ok(), "invalid UTF-8 delivered");
                        }
                        self.t
                            .records
                            .push((u8::from(kind == MessageKind::Binary), buf));
                    }
                }
                Event::Ping(p) => self.t.records.push((2, p.to_vec())),
                Event::Pong(p) => self.t.records.push((3, p.to_vec())),
                Event::CloseReceived(_) => {}
                Event::Closed(o) => {
                    let code = o.code.as_u16();
                    if o.clean {
                        assert!(
                            self.close_in_input,
                            "clean close without a close frame: {o:?}"
                        );
                    } else {
                        assert!(
                            [
                                CloseCode::PROTOCOL_ERROR,
                                CloseCode::INVALID_PAYLOAD,
                                CloseCode::MESSAGE_TOO_BIG
                            ]
                            .contains(&o.code),
                            "closed with {o:?}"
                        );
                        assert!(matches!(o.error, Some(Failure::Protocol(_))), "{o:?}");
                    }
                    self.partial = None;
                    self.t.closed = Some((code, o.clean));
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (flags, chunk) = (data[0], usize::from(data[1]) + 1);
    let max: u64 = if flags & 0x80 != 0 { 1024 } else { 4096 };
    let (wire, close_in_input) = frames(&data[2..], flags & 1 != 0);

    // All at once.
    let mut whole = Run {
        conn: connection(flags, max),
        t: Transcript::default(),
        partial: None,
        max: max as usize,
        close_in_input,
    };
    whole.conn.handle_input(&wire);
    whole.drain();

    // In chunks, with the heap watched.
    let mut chunked = Run {
        conn: connection(flags, max),
        t: Transcript::default(),
        partial: None,
        max: max as usize,
        close_in_input,
    };
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    for part in wire.chunks(chunk) {
        chunked.conn.handle_input(part);
        chunked.drain();
        if flags & 0x40 != 0 {
            chunked.conn.release_memory();
        }
    }
    let grown = PEAK.load(Relaxed).saturating_sub(base);
    // The input may sit in the read buffer (doubling as it grows), the transcript keeps every
    // message, each chunk may complete up to chunk/2 messages of at most `max` bytes each, and
    // the inflater's state and window are at most a few hundred KiB.
    let kept: usize = chunked
        .t
        .records
        .iter()
        .map(|r| r.1.capacity() + 64)
        .sum::<usize>()
        * 2;
    let bound = 4 * wire.len() + kept + (chunk / 2 + 2) * 2 * (max as usize + 1024) + (512 << 10);
    assert!(grown <= bound, "heap grew by {grown} bytes (bound {bound})");

    // Same messages, same close.
    let strip = |t: &Transcript| t.closed.map(|c| c.0);
    assert_eq!(
        whole.t.records, chunked.t.records,
        "whole and chunked runs differ"
    );
    assert_eq!(strip(&whole.t), strip(&chunked.t));
});
