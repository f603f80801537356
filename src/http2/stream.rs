//! One HTTP/2 stream as a tokio `AsyncRead + AsyncWrite`: the transport of one WebSocket.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most one write hands to h2 at a time (h2 cuts it into frames of the server's
/// `SETTINGS_MAX_FRAME_SIZE`).
const MAX_WRITE: usize = 256 * 1024;

/// The transport of a WebSocket over HTTP/2: the request and response streams of its extended
/// `CONNECT` (RFC 8441 §5), as one tokio `AsyncRead + AsyncWrite`.
///
/// - **Reads** take the server's DATA frames in order and give their window back to the
///   server (`WINDOW_UPDATE`) as the WebSocket takes the bytes: what the server may have in
///   flight is bounded by the stream's receive window, however slowly the application reads.
///   The server's `END_STREAM` is the end of the stream (a read of 0 bytes); so is a
///   `RST_STREAM(NO_ERROR)` (RFC 9113 §8.1: the server has said all it will say and needs
///   nothing more). Any other `RST_STREAM` is an error.
/// - **Writes** wait for send window (the server's flow control) and hand h2 at most what the
///   window allows: nothing piles up in h2 beyond the window. Once the server reset the
///   stream with `NO_ERROR` it has said it needs nothing more (RFC 9113 §8.1, typically right
///   after its END_STREAM when the WebSocket has closed): writes then succeed and are
///   dropped, so the close frame that answers the server's close completes the closing
///   handshake instead of failing the connection. Any other reset fails writes.
/// - **Shutdown** sends `END_STREAM`: the WebSocket's half close after its closing handshake.
///   A stream the server already reset with `NO_ERROR` counts as shut.
///
/// Dropping it before the end resets the stream (`RST_STREAM(CANCEL)`): the server sees the
/// WebSocket end abnormally (1006), and the other streams of the connection go on.
#[derive(Debug)]
pub struct Http2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// Received and not yet read.
    buf: Bytes,
    /// The server's END_STREAM (or NO_ERROR reset) was read.
    eof: bool,
    /// END_STREAM was sent.
    shut: bool,
}

impl Http2Stream {
    pub(crate) fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Self {
            send,
            recv,
            buf: Bytes::new(),
            eof: false,
            shut: false,
        }
    }

    /// The HTTP/2 stream identifier.
    pub fn stream_id(&self) -> u32 {
        self.send.stream_id().as_u32()
    }

    /// The send window h2 holds for this stream now (bytes that may be written without
    /// waiting for the server).
    pub fn send_capacity(&self) -> usize {
        self.send.capacity()
    }

    /// Waits for send window; the capacity assigned.
    fn poll_capacity(&mut self, cx: &mut Context<'_>, wanted: usize) -> Poll<io::Result<usize>> {
        loop {
            let capacity = self.send.capacity();
            if capacity > 0 {
                return Poll::Ready(Ok(capacity));
            }
            // Asking only with something to send: a reservation held while idle would pin
            // connection window that other streams need.
            self.send.reserve_capacity(wanted);
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                // The stream can no longer send: reset by the server, or the connection gone.
                None => return Poll::Ready(Err(self.closed_error(cx))),
            }
        }
    }

    /// Whether the server reset the stream with `NO_ERROR`.
    fn reset_without_error(&mut self, cx: &mut Context<'_>) -> bool {
        matches!(self.send.poll_reset(cx), Poll::Ready(Ok(Reason::NO_ERROR)))
    }

    /// Why the send side can no longer be used.
    fn closed_error(&mut self, cx: &mut Context<'_>) -> io::Error {
        match self.send.poll_reset(cx) {
            Poll::Ready(Ok(reason)) => reset_error(reason),
            Poll::Ready(Err(e)) => to_io(e),
            Poll::Pending => io::Error::new(io::ErrorKind::BrokenPipe, "HTTP/2 stream closed"),
        }
    }
}

/// A `RST_STREAM` from the server, as an I/O error.
fn reset_error(reason: Reason) -> io::Error {
    let kind = if reason == Reason::NO_ERROR {
        io::ErrorKind::BrokenPipe
    } else {
        io::ErrorKind::ConnectionReset
    };
    io::Error::new(
        kind,
        format!("the server reset the HTTP/2 stream ({reason})"),
    )
}

/// h2's error as an I/O error: its own I/O error, or the HTTP/2 failure.
fn to_io(e: h2::Error) -> io::Error {
    if e.is_io() {
        return e
            .into_io()
            .unwrap_or_else(|| io::Error::other("HTTP/2 I/O error"));
    }
    let kind = if e.is_reset() || e.is_go_away() {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e)
}

impl AsyncRead for Http2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.buf.is_empty() {
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => this.buf = data,
                None => this.eof = true,
                Some(Err(e)) if e.reason() == Some(Reason::NO_ERROR) && !e.is_go_away() => {
                    this.eof = true;
                }
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
        let n = this.buf.len().min(out.remaining());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        // The window goes back as the bytes are taken, not when they arrive: the server can
        // have no more than the window in flight and buffered here.
        let _ = this.recv.flow_control().release_capacity(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Http2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        if this.shut {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the HTTP/2 stream was shut",
            )));
        }
        let capacity = match ready!(this.poll_capacity(cx, total.min(MAX_WRITE))) {
            Ok(capacity) => capacity,
            // The server asked for nothing more, without error (RFC 9113 §8.1): what it does
            // not need is dropped, as it asked.
            Err(_) if this.reset_without_error(cx) => return Poll::Ready(Ok(total)),
            Err(e) => return Poll::Ready(Err(e)),
        };
        // One copy, of what the window allows, gathered from every slice: h2 takes owned
        // buffers, and each `send_data` is at least one DATA frame.
        let n = capacity.min(total).min(MAX_WRITE);
        let mut data = BytesMut::with_capacity(n);
        for slice in bufs {
            let take = slice.len().min(n - data.len());
            data.extend_from_slice(&slice[..take]);
            if data.len() == n {
                break;
            }
        }
        match this.send.send_data(data.freeze(), false) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) if this.reset_without_error(cx) => Poll::Ready(Ok(total)),
            Err(_) => Poll::Ready(Err(this.closed_error(cx))),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // What `send_data` took is within the window, and the connection's task writes it.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shut {
            return Poll::Ready(Ok(()));
        }
        this.shut = true;
        if this.send.send_data(Bytes::new(), true).is_ok() {
            return Poll::Ready(Ok(()));
        }
        // Already reset: with NO_ERROR the server ended the exchange on purpose, which is the
        // end a shutdown asks for.
        match this.send.poll_reset(cx) {
            Poll::Ready(Ok(Reason::NO_ERROR)) => Poll::Ready(Ok(())),
            Poll::Ready(Ok(reason)) => Poll::Ready(Err(reset_error(reason))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(e))),
            Poll::Pending => Poll::Ready(Ok(())),
        }
    }
}
