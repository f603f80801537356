//! The receive path: frame decoding, unmasking in place, reassembly, incremental UTF-8 and
//! limits (RFC 6455 §5.2-§5.6, §8.1).

use alloc::vec::Vec;
use bytes::{Buf, Bytes, BytesMut};

use super::ProtocolError;
use super::{Connection, Event, Fragment, Message, MessageKind, Phase};
use crate::extensions::deflate::InflateError;
use crate::frame::FrameError;
use crate::frame::{apply_mask, CloseCode, CloseFrame, FrameHeader, Opcode, Status};
use crate::role::Role;
use crate::utf8::{Utf8Bytes, Utf8Validator};

/// Receive-side progress through the current frame and message.
#[derive(Debug, Default)]
pub(super) struct Recv {
    frame: Option<InFrame>,
    msg: Option<InMessage>,
    /// The fragments of a message being assembled (only for fragmented messages).
    assembly: BytesMut,
    /// The largest capacity `assembly` reached since the last release. (Once a message is split
    /// off, `assembly` reports no capacity but may still share its allocation.)
    assembly_peak: usize,
    /// The inflated bytes of a compressed message not yet delivered.
    inflated: Vec<u8>,
    /// Inflated bytes of the current message already delivered (streaming).
    inflated_delivered: u64,
    utf8: Utf8Validator,
}

/// The frame whose payload is arriving. Its unconsumed payload starts at `rx[0]`.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    header: FrameHeader,
    /// Payload bytes not yet taken out of the read buffer.
    remaining: u64,
    /// `rx[..done]` is already unmasked and validated.
    done: usize,
    /// Payload bytes of this frame already taken out (streaming), for the mask offset.
    taken: usize,
}

#[derive(Debug, Clone, Copy)]
struct InMessage {
    kind: MessageKind,
    len: u64,
    frames: usize,
    /// RSV1 was set on the first frame: the payload is DEFLATE data (RFC 7692 §6).
    compressed: bool,
}

impl Recv {
    /// Payload bytes of the current data frame still to come, if one is in progress.
    pub(super) fn awaiting_payload(&self) -> Option<usize> {
        self.frame
            .filter(|f| f.header.opcode.is_data())
            .map(|f| usize::try_from(f.remaining).unwrap_or(usize::MAX))
    }

    /// Frees what is empty; a small assembly buffer (at most `keep` bytes) is kept, so
    /// fragmented messages that fit in it do not allocate once it is there (`keep == 0` frees
    /// it whatever its size).
    pub(super) fn release(&mut self, keep: usize) {
        if self.assembly.is_empty() && self.assembly_peak > keep {
            self.assembly = BytesMut::new();
            self.assembly_peak = 0;
        }
        if self.inflated.is_empty() && self.inflated.capacity() > 0 {
            self.inflated = Vec::new();
        }
    }

    /// `true` while a frame's header has been taken out of the read buffer and its payload is
    /// still arriving.
    pub(super) fn in_frame(&self) -> bool {
        self.frame.is_some()
    }

    /// `true` while a message is partly received.
    pub(super) fn in_message(&self) -> bool {
        self.msg.is_some()
    }
}

impl Connection {
    /// Checks a header against the connection's rules before any of its payload is buffered,
    /// and starts or continues the message it belongs to.
    fn check_header(&mut self, h: &FrameHeader) -> Result<(), ProtocolError> {
        // §5.2: RSV bits MUST be 0 unless an extension defines them. permessage-deflate
        // defines RSV1 on the first frame of a data message (RFC 7692 §6.1).
        let rsv = h.rsv_bits();
        let rsv1_allowed =
            self.deflate.is_some() && matches!(h.opcode, Opcode::Text | Opcode::Binary);
        if rsv & 0b011 != 0 || (rsv & 0b100 != 0 && !rsv1_allowed) {
            return Err(FrameError::ReservedBits(rsv).into());
        }
        // §5.1: a server MUST fail on an unmasked frame, a client on a masked one.
        let expected = self.role == Role::Server;
        if h.mask.is_some() != expected {
            return Err(FrameError::MaskMismatch { expected }.into());
        }
        if h.opcode.is_control() {
            return Ok(());
        }
        let max_frame = self.config.max_frame_size();
        if h.payload_len > max_frame || usize::try_from(h.payload_len).is_err() {
            return Err(FrameError::FrameTooLarge {
                len: h.payload_len,
                max: max_frame,
            }
            .into());
        }
        let max_msg = self.config.max_message_size();
        let max_frames = self.config.max_fragments();
        // §5.4: a continuation needs an open message; a new message needs none open.
        let msg = match (h.opcode, self.recv.msg) {
            (Opcode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (Opcode::Continuation, Some(m)) => InMessage {
                kind: m.kind,
                len: m.len.saturating_add(h.payload_len),
                frames: m.frames.saturating_add(1),
                compressed: m.compressed,
            },
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (op, None) => InMessage {
                kind: if op == Opcode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                },
                len: h.payload_len,
                frames: 1,
                compressed: h.rsv1,
            },
        };
        if msg.len > max_msg {
            return Err(ProtocolError::MessageTooLarge {
                len: msg.len,
                max: max_msg,
            });
        }
        if msg.frames > max_frames {
            return Err(ProtocolError::TooManyFragments { max: max_frames });
        }
        self.recv.msg = Some(msg);
        self.read.active = true;
        Ok(())
    }

    /// Decodes and handles every complete frame (and every available payload byte) in `rx`.
    pub(super) fn read_frames(&mut self) {
        while matches!(self.phase, Phase::Open | Phase::Closing(_)) {
            let mut f = match self.recv.frame.take() {
                Some(f) => f,
                None => match FrameHeader::decode(&self.read.buf) {
                    Ok(Status::Partial { .. }) => return,
                    Err(e) => return self.fail(e.into()),
                    Ok(Status::Complete((header, used))) => {
                        if let Err(e) = self.check_header(&header) {
                            return self.fail(e);
                        }
                        self.read.buf.advance(used);
                        InFrame {
                            header,
                            remaining: header.payload_len,
                            done: 0,
                            taken: 0,
                        }
                    }
                },
            };
            if f.header.opcode.is_control() {
                // At most 125 bytes (checked by the decoder): wait for all of it.
                let len = f.remaining as usize;
                if self.read.buf.len() < len {
                    self.recv.frame = Some(f);
                    return;
                }
                let mut payload = self.read.buf.split_to(len);
                if let Some(key) = f.header.mask {
                    apply_mask(&mut payload, key, 0);
                }
                self.on_control(f.header.opcode, payload);
                continue;
            }
            if !self.read_data(&mut f) {
                self.recv.frame =
                    Some(f).filter(|_| matches!(self.phase, Phase::Open | Phase::Closing(_)));
                return;
            }
        }
    }

    /// Unmasks and validates the newly arrived payload bytes of a data frame, and delivers what
    /// is complete. Returns `false` when more input is needed (or the connection failed).
    fn read_data(&mut self, f: &mut InFrame) -> bool {
        let Some(msg) = self.recv.msg else {
            return false;
        };
        if msg.compressed {
            return self.read_compressed(f, msg);
        }
        let avail = usize::try_from(f.remaining)
            .map_or(self.read.buf.len(), |r| r.min(self.read.buf.len()));
        if avail > f.done {
            let fresh = &mut self.read.buf[f.done..avail];
            if let Some(key) = f.header.mask {
                apply_mask(fresh, key, f.taken + f.done);
            }
            // §8.1: fail at the first invalid byte, before the frame or message completes.
            if msg.kind == MessageKind::Text && self.recv.utf8.feed(fresh).is_err() {
                self.fail(ProtocolError::InvalidUtf8);
                return false;
            }
            f.done = avail;
        }
        if self.config.stream_fragments() {
            return self.stream_data(f, msg, avail);
        }
        if (avail as u64) < f.remaining {
            return false;
        }
        let payload = self.read.buf.split_to(avail);
        let fin = f.header.fin;
        if fin && msg.kind == MessageKind::Text && self.recv.utf8.finish().is_err() {
            self.fail(ProtocolError::InvalidUtf8);
            return false;
        }
        if msg.frames == 1 && fin {
            // An unfragmented message: the payload leaves the read buffer without a copy.
            self.recv.msg = None;
            self.deliver(msg.kind, payload.freeze());
        } else {
            self.recv.assembly.extend_from_slice(&payload);
            self.recv.assembly_peak = self.recv.assembly_peak.max(self.recv.assembly.capacity());
            if fin {
                self.recv.msg = None;
                let whole = self.recv.assembly.split().freeze();
                self.deliver(msg.kind, whole);
            }
        }
        true
    }

    fn stream_data(&mut self, f: &mut InFrame, msg: InMessage, avail: usize) -> bool {
        if avail == 0 && f.remaining > 0 {
            return false;
        }
        let data = self.read.buf.split_to(avail).freeze();
        f.remaining -= avail as u64;
        f.taken += avail;
        f.done = 0;
        let frame_done = f.remaining == 0;
        let fin = frame_done && f.header.fin;
        if fin {
            self.recv.msg = None;
            if msg.kind == MessageKind::Text && self.recv.utf8.finish().is_err() {
                self.fail(ProtocolError::InvalidUtf8);
                return false;
            }
        }
        if !data.is_empty() || fin {
            self.events.push_back(Event::Fragment(Fragment {
                kind: msg.kind,
                data,
                fin,
            }));
        }
        frame_done
    }

    /// A compressed message: inflate the payload as it arrives, with the size limit applied to
    /// the inflated bytes (a zip bomb stops at the limit) and UTF-8 checked on them.
    fn read_compressed(&mut self, f: &mut InFrame, msg: InMessage) -> bool {
        let avail = usize::try_from(f.remaining)
            .map_or(self.read.buf.len(), |r| r.min(self.read.buf.len()));
        if avail == 0 && f.remaining > 0 {
            return false;
        }
        if let Some(key) = f.header.mask {
            apply_mask(&mut self.read.buf[..avail], key, f.taken);
        }
        f.remaining -= avail as u64;
        f.taken += avail;
        f.done = 0;
        let frame_done = f.remaining == 0;
        let fin = frame_done && f.header.fin;
        let max = self.config.max_message_size();
        let limit =
            usize::try_from(max.saturating_sub(self.recv.inflated_delivered)).unwrap_or(usize::MAX);
        let before = self.recv.inflated.len();
        let result = match self.deflate.as_deref_mut() {
            Some(d) => d.inflate(&self.read.buf[..avail], fin, &mut self.recv.inflated, limit),
            None => Err(InflateError::Corrupt),
        };
        self.read.buf.advance(avail);
        let text = msg.kind == MessageKind::Text;
        // §8.1: the first invalid byte decides, wherever the input was cut. What was inflated
        // before corrupt data, or up to the limit, is checked first: invalid UTF-8 there fails
        // with 1007 whether the inflater saw the rest in the same call or not.
        let checked = match result {
            Err(InflateError::TooLarge) => self.recv.inflated.len().min(limit).max(before),
            _ => self.recv.inflated.len(),
        };
        if text
            && self
                .recv
                .utf8
                .feed(&self.recv.inflated[before..checked])
                .is_err()
        {
            self.fail(ProtocolError::InvalidUtf8);
            return false;
        }
        match result {
            Ok(()) => {}
            Err(InflateError::TooLarge) => {
                let len = self.recv.inflated_delivered + self.recv.inflated.len() as u64;
                self.fail(ProtocolError::MessageTooLarge { len, max });
                return false;
            }
            Err(InflateError::Corrupt) => {
                self.fail(ProtocolError::Extension("invalid compressed data"));
                return false;
            }
        }
        if fin {
            if text && self.recv.utf8.finish().is_err() {
                self.fail(ProtocolError::InvalidUtf8);
                return false;
            }
            self.recv.msg = None;
            self.recv.inflated_delivered = 0;
            let data = Bytes::from(core::mem::take(&mut self.recv.inflated));
            if self.config.stream_fragments() {
                self.events.push_back(Event::Fragment(Fragment {
                    kind: msg.kind,
                    data,
                    fin: true,
                }));
            } else {
                self.deliver(msg.kind, data);
            }
        } else if self.config.stream_fragments() && !self.recv.inflated.is_empty() {
            let data = Bytes::from(core::mem::take(&mut self.recv.inflated));
            self.recv.inflated_delivered += data.len() as u64;
            self.events.push_back(Event::Fragment(Fragment {
                kind: msg.kind,
                data,
                fin: false,
            }));
        }
        frame_done
    }

    fn deliver(&mut self, kind: MessageKind, payload: Bytes) {
        let message = match kind {
            MessageKind::Text => Message::Text(Utf8Bytes::from_validated(payload)),
            MessageKind::Binary => Message::Binary(payload),
        };
        self.events.push_back(Event::Message(message));
    }

    fn on_control(&mut self, opcode: Opcode, payload: BytesMut) {
        match opcode {
            Opcode::Ping => {
                let payload = payload.freeze();
                if self.config.auto_pong() {
                    self.queue_pong(payload.clone());
                }
                self.events.push_back(Event::Ping(payload));
            }
            Opcode::Pong => self.events.push_back(Event::Pong(payload.freeze())),
            Opcode::Close => match CloseFrame::parse(&payload) {
                Ok(Some(frame)) => self.on_close(frame),
                Ok(None) => self.on_close(CloseFrame::new(CloseCode::NO_STATUS, "")),
                Err(e) => self.fail(e.into()),
            },
            Opcode::Continuation | Opcode::Text | Opcode::Binary => {}
        }
    }
}
