//! The loop of the tokio adapter over the driver: each step parks the task that asked, drives
//! the connection with the shared waker (the wake-up rule, `wake.rs`), moves bytes between the
//! transport and the driver (one vectored write of the queued output; one read into the
//! connection's buffer, or a stack buffer while it holds none) and keeps the one timer.

use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::wake::Side;
use super::WebSocketStream;
use crate::conn::Event;
use crate::driver::Error;
use crate::role::State;

/// Most slices one vectored write takes (a batch of zero-copy payloads and their headers).
const MAX_SLICES: usize = 64;

/// The stack buffer a connection without a read buffer waits for input with.
const IDLE_READ_SIZE: usize = 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// One step for a task on `side`: parks it, drives the connection with the shared waker,
    /// wakes the other side's task if this step changed what it waits for, and unparks this
    /// task when it is done waiting.
    pub(super) fn poll_side<T>(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
        step: fn(&mut Self, &mut Context<'_>) -> Poll<Result<T, Error>>,
    ) -> Poll<Result<T, Error>> {
        self.parked.park(side, cx.waker());
        let before = self.progress();
        let waker = self.waker.clone();
        let result = step(self, &mut Context::from_waker(&waker));
        if self.progress() != before {
            self.parked.wake_other(side, cx.waker());
        }
        if result.is_ready() {
            self.parked.unpark(side);
        }
        result
    }

    /// What another task may be waiting for: the output to shrink, the state to change.
    fn progress(&self) -> (usize, State, bool) {
        let conn = self.driver.connection();
        (conn.buffered_amount(), conn.state(), self.driver.is_done())
    }

    /// Drives I/O until the driver has an event (or the end) for the application.
    pub(super) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        loop {
            // Write what we can; a full transport must not stop us from reading.
            let written = match self.poll_write(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => true,
                Poll::Pending => false,
            };
            if let Some(result) = self.driver.next_event() {
                return Poll::Ready(result);
            }
            // Taking events can queue output (the close frame after the last event).
            if written && self.driver.wants_write() {
                continue;
            }
            if self.poll_deadline(cx) {
                continue;
            }
            // Without reading, only the writer or the timer can make progress, and both are
            // registered with `cx`.
            if !self.driver.wants_read() {
                return Poll::Pending;
            }
            ready!(self.poll_read(cx))?;
        }
    }

    /// Writes until everything queued is written; fails once the connection has ended with
    /// output unwritten.
    pub(super) fn poll_flushed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if let Some(end) = self.driver.unwritten_error() {
                return Poll::Ready(Err(end));
            }
            match self.poll_write(cx)? {
                Poll::Ready(()) => return Poll::Ready(Ok(())),
                Poll::Pending if self.poll_deadline(cx) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Keeps the timer armed for the next deadline. Returns `true` when a deadline passed and
    /// was acted on (the caller loops to see what changed).
    ///
    /// The timer is re-armed only when the next deadline comes before it; a deadline that
    /// moved later (input arrived) is noticed when the timer fires, so a busy connection
    /// neither reads the clock nor touches the timer per message.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.driver.deadline() else {
            self.sleep = None;
            return false;
        };
        let at = tokio::time::Instant::from_std(at);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if at < sleep.deadline() {
            sleep.as_mut().reset(at);
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        // The timer fired: either the deadline passed, or it moved later since the timer was
        // set (re-arm for it and poll again, to register the new wake-up).
        if at <= tokio::time::Instant::now() {
            self.driver.on_deadline();
        } else {
            sleep.as_mut().reset(at);
        }
        true
    }

    /// Writes queued output until it is all written (`Ready(Ok)`) or the transport is full
    /// (`Pending`), then shuts the write half down if the driver wants it. A failed transport
    /// ends the connection (`Ready(Err)`, once; the driver answers for it afterwards).
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
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
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
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
