//! The loop of the blocking adapter over the driver: writes with the transport's write
//! timeout set to the next deadline, reads with the read timeout set to it, and acts on the
//! deadline when a call returns with nothing done. While receiving with output waiting it
//! takes turns (`TURN`) between writing and reading, so it never stops reading because the
//! peer stopped reading.

use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

use super::transport::timed_out;
use super::{Transport, WebSocket};
use crate::driver::Error;

/// Most slices one vectored write takes.
const MAX_SLICES: usize = 64;

/// While receiving with output waiting, how long a write may block before the adapter reads
/// instead (and the other way round): a receiver never stops reading because the peer stopped
/// reading, so the peer's close frame, pongs and data still arrive.
pub(super) const TURN: Duration = Duration::from_millis(10);

impl<S: Transport> WebSocket<S> {
    /// Writes queued output until none is left (or the connection ends), with the transport's
    /// write timeout set to the next deadline, which is acted on when it passes: a peer that
    /// takes nothing is dropped by the pong or write timeout instead of blocking forever.
    /// With `turn`, gives up (returning `false`) once a write has blocked that long.
    pub(super) fn write_out(&mut self, turn: Option<Duration>) -> Result<bool, Error> {
        loop {
            if self.driver.wants_shutdown() {
                // The peer may be gone already; the close completes either way.
                let _ = self.stream.shutdown_write();
                self.driver.shut_down();
            }
            if !self.driver.wants_write() {
                return Ok(true);
            }
            let now = Instant::now();
            let deadline = self.driver.deadline();
            if deadline.is_some_and(|at| at <= now) {
                self.driver.on_deadline();
                continue;
            }
            let until = earliest(deadline, turn.map(|t| now + t));
            let stream = &mut self.stream;
            self.write_timeout
                .arm(now, until, |t| stream.set_write_timeout(t))?;
            // Waiting starts now, unless this write makes progress.
            self.driver.write_blocked();
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = self.driver.output(&mut slices);
            let written = self.stream.write_vectored(&slices[..n]);
            match written {
                Ok(0) => return self.failed_write(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.driver.wrote(n);
                    if !self.driver.wants_write() {
                        if let Err(e) = self.stream.flush() {
                            return self.failed_write(e);
                        }
                    }
                }
                Err(e) if timed_out(&e) => {
                    self.driver.on_deadline();
                    if turn.is_some() {
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.failed_write(e),
            }
        }
    }

    fn failed_write(&mut self, e: io::Error) -> Result<bool, Error> {
        self.driver.write_failed(e).map_or(Ok(true), Err)
    }

    /// One read (or one passed deadline), with the transport's read timeout set to the next
    /// deadline, or to `turn` when output is waiting.
    pub(super) fn read_once(&mut self, turn: Option<Duration>) -> Result<(), Error> {
        let now = Instant::now();
        let deadline = self.driver.deadline();
        if deadline.is_some_and(|at| at <= now) {
            self.driver.on_deadline();
            return Ok(());
        }
        let until = earliest(deadline, turn.map(|t| now + t));
        if !self.driver.wants_read() {
            // Only the clock or the writer can move the connection on.
            std::thread::sleep(until.map_or(TURN, |at| at - now));
            return Ok(());
        }
        let stream = &mut self.stream;
        self.read_timeout
            .arm(now, until, |t| stream.set_read_timeout(t))?;
        match self.read_input() {
            Ok(n) => self.driver.read_done(n),
            Err(e) if timed_out(&e) => {
                self.driver.read_idle();
                self.driver.on_deadline();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if let Some(err) = self.driver.read_failed(e) {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Reads once from the transport into the connection. A connection that holds no read
    /// buffer (an idle one, or a new one) waits with a buffer on the stack; the read buffer is
    /// allocated when bytes arrive.
    fn read_input(&mut self) -> io::Result<usize> {
        let stream = &mut self.stream;
        if !self.driver.read_buffer_released() {
            let limit = self.last_read.saturating_mul(2);
            let n = self.driver.read_into(|buf| read_some(stream, buf, limit))?;
            self.last_read = n;
            return Ok(n);
        }
        let mut stack = [0u8; 1024];
        let n = stream.read(&mut stack)?;
        if n > 0 {
            self.driver.received(&stack[..n]);
        }
        Ok(n)
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads once into the spare capacity of `buf`, but into at most `limit` bytes of it (and at
/// least 1 KiB). `std::io::Read` needs initialized memory, so the room is zero-filled first:
/// with the core's read size grown to 64 KiB for a burst, zero-filling all of it before every
/// small read would cost more than the read. Twice the last read keeps up with a growing burst.
fn read_some<S: io::Read>(
    stream: &mut S,
    buf: &mut bytes::BytesMut,
    limit: usize,
) -> io::Result<usize> {
    let start = buf.len();
    let room = (buf.capacity() - start).min(limit).max(1024);
    buf.resize(start + room, 0);
    let result = stream.read(&mut buf[start..]);
    buf.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}
