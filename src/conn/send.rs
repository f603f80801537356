//! The send path (RFC 6455 §5.3-§5.6, RFC 7692 §6): messages, fragments and control frames into
//! the output queue, masked by a client, compressed when permessage-deflate is on; the pong
//! rule (§5.5.2-§5.5.3); and the output getters.

use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::{BufMut, Bytes};

use super::{Connection, Message, MessageKind, Phase};
use crate::error::UsageError;
use crate::frame::{apply_mask, FrameHeader, Opcode, MAX_HEADER_LEN};
use crate::role::{Role, State};
use crate::utf8::Utf8Validator;

/// Payloads at least this long are queued without a copy by [`Connection::send`] on a server,
/// and prepared frames at least this long by [`Connection::send_prepared`]: below it a copy
/// into the output buffer costs less than a reference and a slice of its own in the vectored
/// write, and lets a batch of small frames leave in one contiguous write.
pub(super) const ZERO_COPY_MIN: usize = 1024;
/// While more than this many bytes wait to be written, automatic pongs are coalesced: only the
/// most recent ping is answered (RFC 6455 §5.5.3 allows it), so a ping flood from a peer that
/// does not read cannot grow the output without bound.
const PONG_COALESCE_ABOVE: usize = 64 << 10;

/// What sending keeps between calls.
#[derive(Debug)]
pub(super) struct SendState {
    /// Data messages were queued since the connection was made or last went idle: while set,
    /// `release_memory` keeps the output buffer at its working size.
    pub(super) active: bool,
    /// The message being sent in explicit fragments.
    fragment: Option<SendFragment>,
    /// The payload of the latest ping not answered yet, while pongs are coalesced. Boxed:
    /// state needed only under a ping flood takes no room in an open connection.
    pub(super) pending_pong: Option<Box<Bytes>>,
    /// Reused output of the compressor.
    pub(super) scratch: Vec<u8>,
    mask_pool: [u8; 32],
    mask_pos: u8,
}

impl Default for SendState {
    fn default() -> Self {
        Self {
            active: false,
            fragment: None,
            pending_pong: None,
            scratch: Vec::new(),
            mask_pool: [0; 32],
            mask_pos: 32,
        }
    }
}

#[derive(Debug)]
struct SendFragment {
    kind: MessageKind,
    utf8: Utf8Validator,
}

fn data_opcode(kind: MessageKind) -> Opcode {
    match kind {
        MessageKind::Text => Opcode::Text,
        MessageKind::Binary => Opcode::Binary,
    }
}

impl Connection {
    // ---------------------------------------------------------------- C. commands: sending

    fn check_can_send(&self) -> Result<(), UsageError> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Closing(_) => Err(UsageError::SendAfterClose),
            Phase::Closed(_) => Err(UsageError::Closed),
            Phase::Connecting(_) => Err(UsageError::WrongState(State::Connecting)),
        }
    }

    /// Data may be sent: not while CONNECTING, not after our close frame, not in the middle
    /// of a message sent in fragments.
    pub(super) fn check_can_send_data(&self) -> Result<(), UsageError> {
        self.check_can_send()?;
        match self.send.fragment {
            Some(_) => Err(UsageError::FragmentOutOfSequence),
            None => Ok(()),
        }
    }

    /// Queues a text message (split into frames of
    /// [`Config::write_fragment_size`](crate::Config::write_fragment_size) when set).
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.send_data(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.send_data(MessageKind::Binary, data)
    }

    /// Queues a message. A server queues large payloads without copying them.
    pub fn send(&mut self, message: Message) -> Result<(), UsageError> {
        let (kind, bytes) = match message {
            Message::Text(t) => (MessageKind::Text, t.into_bytes()),
            Message::Binary(b) => (MessageKind::Binary, b),
        };
        let unfragmented = self
            .config
            .write_fragment_size()
            .is_none_or(|n| bytes.len() <= n);
        if self.role == Role::Server
            && bytes.len() >= ZERO_COPY_MIN
            && unfragmented
            && self.deflate.is_none()
        {
            self.check_can_send_data()?;
            self.send.active = true;
            let header = FrameHeader::new(data_opcode(kind), bytes.len() as u64);
            self.queue_header(header);
            self.out.push_bytes(bytes);
            return Ok(());
        }
        self.send_data(kind, &bytes)
    }

    fn send_data(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), UsageError> {
        self.check_can_send_data()?;
        self.send.active = true;
        if let Some(d) = self.deflate.as_deref_mut() {
            // RFC 7692 §6: RSV1 on the first frame of a compressed message.
            let mut packed = core::mem::take(&mut self.send.scratch);
            if d.compress(data, &mut packed) {
                self.queue_message(kind, &packed, true);
                self.send.scratch = packed;
                return Ok(());
            }
            self.send.scratch = packed;
        }
        self.queue_message(kind, data, false);
        Ok(())
    }

    /// Queues a message's payload as frames of at most `write_fragment_size` bytes.
    fn queue_message(&mut self, kind: MessageKind, data: &[u8], compressed: bool) {
        let size = match self.config.write_fragment_size() {
            Some(n) if n > 0 => n,
            _ => usize::MAX,
        };
        let mut opcode = data_opcode(kind);
        let mut rsv1 = compressed;
        let mut rest = data;
        loop {
            let n = rest.len().min(size);
            let (chunk, tail) = rest.split_at(n);
            self.queue_frame_rsv(opcode, tail.is_empty(), rsv1, chunk);
            if tail.is_empty() {
                return;
            }
            rest = tail;
            opcode = Opcode::Continuation;
            rsv1 = false;
        }
    }

    /// Queues one fragment of a message (RFC 6455 §5.4): the first fragment names the `kind`,
    /// later ones continue it (their `kind` must match), and `fin` ends the message. Control
    /// frames may be sent between fragments; other messages may not.
    ///
    /// Text fragments are checked as UTF-8 incrementally (a code point may be split between
    /// fragments); invalid text is refused with nothing queued. Messages sent in explicit
    /// fragments are not compressed, even with permessage-deflate (RFC 7692 §6 lets each
    /// message choose).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), UsageError> {
        self.check_can_send()?;
        let opcode = match &self.send.fragment {
            Some(f) if f.kind != kind => return Err(UsageError::FragmentOutOfSequence),
            Some(_) => Opcode::Continuation,
            None => data_opcode(kind),
        };
        let mut utf8 = self
            .send
            .fragment
            .as_ref()
            .map(|f| f.utf8)
            .unwrap_or_default();
        if kind == MessageKind::Text {
            utf8.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
            if fin {
                utf8.finish().map_err(|_| UsageError::InvalidUtf8)?;
            }
        }
        self.send.fragment = (!fin).then_some(SendFragment { kind, utf8 });
        self.send.active = true;
        self.queue_frame(opcode, fin, data);
        Ok(())
    }

    /// Queues a ping (payload at most 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(Opcode::Ping, payload)
    }

    /// Queues an unsolicited pong (payload at most 125 bytes), e.g. as a heartbeat (§5.5.3).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(Opcode::Pong, payload)
    }

    fn send_control(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), UsageError> {
        self.check_can_send()?;
        if payload.len() > 125 {
            return Err(UsageError::ControlTooLong(payload.len()));
        }
        self.queue_frame(opcode, true, payload);
        Ok(())
    }

    // ---------------------------------------------------------------- D. outputs

    /// The first contiguous run of bytes waiting to be written (empty when there is none).
    /// Write it, then report how much was written with [`advance_output`](Self::advance_output).
    pub fn pending_output(&self) -> &[u8] {
        self.out.first()
    }

    /// Every run of bytes waiting to be written, in order: for a vectored write.
    pub fn output_chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.out.chunks()
    }

    /// Reports that the first `n` pending bytes were written. Once our close frame is written
    /// after the peer's arrived, the close is complete (clean) and [`Event::Closed`] follows.
    ///
    /// [`Event::Closed`]: super::Event::Closed
    pub fn advance_output(&mut self, n: usize) {
        self.out.advance(n);
        if self.out.len() <= PONG_COALESCE_ABOVE {
            if let Some(payload) = self.send.pending_pong.take() {
                self.queue_frame(Opcode::Pong, true, &payload);
            }
        }
        self.close_written();
    }

    // ---------------------------------------------------------------- queueing frames

    pub(super) fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.buf().extend_from_slice(bytes);
        self.out.commit(bytes.len());
    }

    fn next_mask(&mut self) -> [u8; 4] {
        let s = &mut self.send;
        if usize::from(s.mask_pos) + 4 > s.mask_pool.len() {
            self.config.mask_source().fill(&mut s.mask_pool);
            s.mask_pos = 0;
        }
        let p = usize::from(s.mask_pos);
        s.mask_pos += 4;
        [
            s.mask_pool[p],
            s.mask_pool[p + 1],
            s.mask_pool[p + 2],
            s.mask_pool[p + 3],
        ]
    }

    /// Queues a header with a fresh mask key when this is a client; returns the key.
    fn queue_header(&mut self, mut header: FrameHeader) -> Option<[u8; 4]> {
        if self.role == Role::Client {
            header.mask = Some(self.next_mask());
        }
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut h);
        self.queue_raw(&h[..n]);
        header.mask
    }

    /// Queues one frame, copying the payload (and masking the copy when this is a client).
    pub(super) fn queue_frame(&mut self, opcode: Opcode, fin: bool, payload: &[u8]) {
        self.queue_frame_rsv(opcode, fin, false, payload);
    }

    fn queue_frame_rsv(&mut self, opcode: Opcode, fin: bool, rsv1: bool, payload: &[u8]) {
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        header.rsv1 = rsv1;
        // Room for the whole frame at once: one allocation, not one for the header and a
        // second for the payload, when the output buffer starts empty.
        self.out.buf().reserve(MAX_HEADER_LEN + payload.len());
        let key = self.queue_header(header);
        let buf = self.out.buf();
        let start = buf.len();
        buf.put_slice(payload);
        if let Some(key) = key {
            apply_mask(&mut buf[start..], key, 0);
        }
        self.out.commit(payload.len());
    }

    /// Answers a ping (§5.5.2), coalescing under a flood (§5.5.3). Nothing is answered once
    /// our close frame is queued.
    pub(super) fn queue_pong(&mut self, payload: Bytes) {
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        if self.out.len() > PONG_COALESCE_ABOVE {
            match &mut self.send.pending_pong {
                Some(held) => **held = payload,
                None => self.send.pending_pong = Some(Box::new(payload)),
            }
        } else {
            self.queue_frame(Opcode::Pong, true, &payload);
        }
    }

    /// The message being sent in fragments is abandoned (a close frame went out).
    pub(super) fn end_fragments(&mut self) {
        self.send.fragment = None;
    }
}
