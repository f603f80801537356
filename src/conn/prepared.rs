//! Fan-out: a server message framed once (and, for peers without server context takeover,
//! compressed once) and queued on any number of connections by reference.

use alloc::sync::Arc;
#[cfg(feature = "deflate")]
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

use super::{Connection, Message, MessageKind};
use crate::error::UsageError;
use crate::frame::{FrameHeader, Opcode, MAX_HEADER_LEN};
use crate::role::Role;

/// A message encoded once, to be sent to many connections: a chat room's broadcast, a
/// ticker's price, a dashboard's update.
///
/// The frame (header and payload) is built once, as shared [`Bytes`]; sending it on a server
/// connection ([`Connection::send_prepared`]) queues a reference to it (a reference count and
/// an entry in that connection's output queue, written with the rest in one vectored write):
/// no copy, no re-encoding, no allocation per recipient. A frame under 1 KiB is copied into
/// the connection's output buffer instead (still no encoding and no allocation in steady
/// state): for small frames a copy is cheaper than a reference and its own slice in the write. Text was validated when it became a
/// [`Utf8Bytes`](crate::Utf8Bytes).
///
/// With permessage-deflate, recipients that negotiated no server context takeover share a
/// compressed form: one per distinct window size and compression level, made the first time a
/// recipient needs it ([`compressions`](Self::compressions) counts them). Recipients with
/// context takeover compress on their own (their histories differ), and recipients without
/// deflate get the plain frame. Cloning is a reference count.
///
/// ```
/// use hybi::{Config, Connection, Message, PreparedMessage, Role};
/// let update = PreparedMessage::new(Message::text("price: 42"));
/// let mut room: Vec<Connection> =
///     (0..3).map(|_| Connection::open(Role::Server, Config::default())).collect();
/// for conn in &mut room {
///     conn.send_prepared(&update).unwrap();
///     assert_eq!(conn.pending_output(), b"\x81\x09price: 42");
/// }
/// ```
#[derive(Debug, Clone)]
pub struct PreparedMessage(Arc<Prepared>);

#[derive(Debug)]
struct Prepared {
    message: Message,
    /// The frame as a server sends it uncompressed.
    frame: Bytes,
    /// Compressed frames by (window bits, level); `None` when compressing does not shrink the
    /// message with those parameters.
    #[cfg(feature = "deflate")]
    compressed: std::sync::Mutex<Vec<(u8, u32, Option<Bytes>)>>,
}

impl PreparedMessage {
    /// Frames `message` once.
    pub fn new(message: impl Into<Message>) -> Self {
        let message = message.into();
        let header = FrameHeader::new(opcode(message.kind()), message.len() as u64);
        let frame = encode(header, message.as_bytes());
        Self(Arc::new(Prepared {
            message,
            frame,
            #[cfg(feature = "deflate")]
            compressed: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.0.message
    }

    /// The frame as a server sends it uncompressed: header and payload.
    pub fn frame(&self) -> &Bytes {
        &self.0.frame
    }

    /// How many compressed forms were made (one per distinct window size and compression
    /// level among the recipients without server context takeover; none without deflate).
    pub fn compressions(&self) -> usize {
        #[cfg(feature = "deflate")]
        return lock(&self.0.compressed).len();
        #[cfg(not(feature = "deflate"))]
        0
    }

    /// The compressed frame for a window of `bits` at `level`, made on first use; `None` when
    /// compressing does not shrink the message.
    #[cfg(feature = "deflate")]
    fn compressed(&self, bits: u8, level: u32) -> Option<Bytes> {
        let mut forms = lock(&self.0.compressed);
        if let Some((_, _, frame)) = forms.iter().find(|(b, l, _)| (*b, *l) == (bits, level)) {
            return frame.clone();
        }
        let payload = self.0.message.as_bytes();
        let frame = crate::extensions::deflate::compress_message(payload, level, bits).map(|c| {
            let mut header = FrameHeader::new(opcode(self.0.message.kind()), c.len() as u64);
            // RFC 7692 §6: RSV1 on the first (here the only) frame of a compressed message.
            header.rsv1 = true;
            encode(header, &c)
        });
        forms.push((bits, level, frame.clone()));
        frame
    }
}

#[cfg(feature = "deflate")]
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A compression that panicked leaves at most a missing form, made again next time.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn opcode(kind: MessageKind) -> Opcode {
    match kind {
        MessageKind::Text => Opcode::Text,
        MessageKind::Binary => Opcode::Binary,
    }
}

/// One unmasked frame: `header` then `payload`, in one buffer.
fn encode(header: FrameHeader, payload: &[u8]) -> Bytes {
    let mut h = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut h);
    let mut frame = BytesMut::with_capacity(n + payload.len());
    frame.extend_from_slice(&h[..n]);
    frame.extend_from_slice(payload);
    frame.freeze()
}

impl From<Message> for PreparedMessage {
    fn from(message: Message) -> Self {
        Self::new(message)
    }
}

impl Connection {
    /// Queues a [`PreparedMessage`]: on a server, a reference to its frame (or to its
    /// compressed frame for this connection's deflate parameters) with no encoding, and no
    /// copy from 1 KiB up (a smaller frame is copied into the output buffer). It counts in [`buffered_amount`](Self::buffered_amount) like any message.
    ///
    /// What cannot be shared is done as [`send`](Self::send) does it: a client masks every
    /// frame with a key of its own, a connection that splits messages
    /// ([`Config::write_fragment_size`](crate::Config::write_fragment_size)) frames them
    /// itself, and one with server context takeover compresses with its own history.
    ///
    /// Fails like [`send`](Self::send): not while CONNECTING, not after a close frame, not in
    /// the middle of a fragmented message.
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), UsageError> {
        let len = prepared.0.message.len();
        let splits = self.config.write_fragment_size().is_some_and(|n| len > n);
        if self.role == Role::Client || splits {
            return self.send(prepared.0.message.clone());
        }
        self.check_can_send_data()?;
        let frame = match self.deflate.as_deref() {
            None => prepared.0.frame.clone(),
            #[cfg(feature = "deflate")]
            Some(d) => match d.shared_compression() {
                Some((bits, level, threshold)) => match len >= threshold {
                    true => prepared
                        .compressed(bits, level)
                        .unwrap_or_else(|| prepared.0.frame.clone()),
                    false => prepared.0.frame.clone(),
                },
                None => return self.send(prepared.0.message.clone()),
            },
            #[cfg(not(feature = "deflate"))]
            Some(d) => match *d {},
        };
        self.send.active = true;
        if frame.len() < super::send::ZERO_COPY_MIN {
            // A copy into the output buffer (which keeps its capacity: no allocation in
            // steady state) is cheaper than a reference and a slice of its own, and a batch
            // of small frames then leaves in one contiguous write.
            self.out.buf().extend_from_slice(&frame);
            self.out.commit(frame.len());
        } else {
            self.out.push_bytes(frame);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use alloc::vec::Vec;

    fn open_server() -> Connection {
        let mut conn = Connection::open(Role::Server, Config::default());
        // Something already queued, so that a copy lands in the same run as it.
        conn.send(Message::text("first")).unwrap();
        conn
    }

    /// A frame under 1 KiB is copied into the output buffer (one contiguous chunk with what
    /// was queued before it); from 1 KiB up the prepared frame itself is queued, by reference.
    #[test]
    fn small_frames_are_copied_large_ones_shared() {
        let small = PreparedMessage::new(Message::text("x".repeat(100)));
        let mut conn = open_server();
        conn.send_prepared(&small).unwrap();
        let chunks: Vec<&[u8]> = conn.output_chunks().collect();
        assert_eq!(chunks.len(), 1, "one contiguous run");
        assert_eq!(&chunks[0][7..], &small.0.frame[..]);

        let large = PreparedMessage::new(Message::binary(vec![7u8; 4096]));
        let mut conn = open_server();
        conn.send_prepared(&large).unwrap();
        let chunks: Vec<&[u8]> = conn.output_chunks().collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            chunks[1].as_ptr(),
            large.0.frame.as_ptr(),
            "queued by reference"
        );
        assert_eq!(conn.buffered_amount(), 7 + large.0.frame.len());
    }
}
