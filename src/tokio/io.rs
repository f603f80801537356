//! Moving bytes between a tokio transport and the driver: one vectored write of the queued
//! output, one read into the connection's buffer (or a stack buffer while it holds none).

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::WebSocketStream;
use crate::driver::Error;

/// Most slices one vectored write takes (a batch of zero-copy payloads and their headers).
const MAX_SLICES: usize = 64;

/// The stack buffer a connection without a read buffer waits for input with.
const IDLE_READ_SIZE: usize = 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Writes queued output until it is all written (`Ready(Ok)`) or the transport is full
    /// (`Pending`), then shuts the write half down if the driver wants it. A failed transport
    /// ends the connection (`Ready(Err)`, once; the driver answers for it afterwards).
    pub(super) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.driver.wants_write() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = self.driver.output(&mut slices);
            let io = Pin::new(&mut self.io);
            let written = if n > 1 && io.is_write_vectored() {
                io.poll_write_vectored(cx, &slices[..n])
            } else {
                io.poll_write(cx, &slices[0])
            };
            match written {
                Poll::Pending => {
                    self.driver.write_blocked();
                    return Poll::Pending;
                }
                Poll::Ready(Ok(0)) => return self.write_failed(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => self.driver.wrote(n),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return self.write_failed(e),
            }
        }
        if self.driver.is_done() {
            return Poll::Ready(Ok(()));
        }
        if let Err(e) = ready!(Pin::new(&mut self.io).poll_flush(cx)) {
            return self.write_failed(e);
        }
        if self.driver.wants_shutdown() {
            // The peer may be gone already; the close completes either way.
            let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
            self.driver.shut_down();
        }
        Poll::Ready(Ok(()))
    }

    fn write_failed(&mut self, e: io::Error) -> Poll<Result<(), Error>> {
        Poll::Ready(self.driver.write_failed(e).map_or(Ok(()), Err))
    }

    /// Reads once from the transport into the connection (`Ready(Ok)` for data or EOF). A
    /// connection that holds no read buffer (an idle one, or a new one) waits with a buffer on
    /// the stack, so that waiting costs no heap; the read buffer is allocated when bytes
    /// arrive. When nothing is waiting, the connection gives back burst memory.
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let io = Pin::new(&mut self.io);
        let read = if self.driver.read_buffer_released() {
            let mut stack = [MaybeUninit::<u8>::uninit(); IDLE_READ_SIZE];
            let mut buf = ReadBuf::uninit(&mut stack);
            io.poll_read(cx, &mut buf).map_ok(|()| {
                if !buf.filled().is_empty() {
                    self.driver.received(buf.filled());
                }
                buf.filled().len()
            })
        } else {
            self.driver
                .read_into(|buf| tokio_util::io::poll_read_buf(io, cx, buf))
        };
        match read {
            Poll::Pending => {
                self.driver.read_idle();
                Poll::Pending
            }
            Poll::Ready(Ok(n)) => {
                self.driver.read_done(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(self.driver.read_failed(e).map_or(Ok(()), Err)),
        }
    }
}
