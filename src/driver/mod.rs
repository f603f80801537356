//! The adapter driver, shared by every adapter: see [`Driver`].

mod connect_error;
mod deadlines;
mod error;
mod http2_error;
mod timeouts;

use std::io::{self, IoSlice};
use std::time::Instant;

use bytes::BytesMut;

use crate::conn::{CloseOutcome, Connection, Event};
use crate::handshake::{Accept, Reject, Request, Response};
use crate::role::State;
pub use connect_error::{ConnectError, ProxyError, ProxyErrorKind, RedirectError};
use deadlines::Deadlines;
pub use error::Error;
pub use http2_error::Http2Error;
pub use timeouts::Timeouts;

/// What `recv` is on every blocking adapter: takes events from `next` until a message. With
/// `stream_fragments` on, messages arrive in pieces: refused with
/// [`UsageError::StreamingFragments`](crate::UsageError::StreamingFragments), taking nothing.
#[cfg(feature = "blocking")]
pub(crate) fn first_message(
    stream_fragments: bool,
    mut next: impl FnMut() -> Result<Event, Error>,
) -> Result<crate::conn::Message, Error> {
    if stream_fragments {
        return Err(crate::error::UsageError::StreamingFragments.into());
    }
    loop {
        if let Event::Message(m) = next()? {
            return Ok(m);
        }
    }
}

/// The clock a driver reads: `std::time::Instant::now`, or a runtime's (tokio's, so that its
/// paused test clock applies).
pub type Clock = fn() -> Instant;

/// The adapter driver: one sans-IO loop body under every adapter.
///
/// A [`Driver`] owns a [`Connection`], its deadlines ([`Timeouts`]) and what the transport has
/// done (write half shut, EOF read, failed). It answers the questions an adapter asks, from
/// the current time: what to write, whether to shut the write half down, whether to read, until
/// when to wait, and which event (or which final error) to hand the application. It decides
/// every protocol and close matter an adapter would otherwise decide: when a close is complete,
/// what a transport failure means, which error a closed connection answers with, when the peer
/// counts as dead.
///
/// The blocking and tokio adapters are loops over it, and anything else that moves bytes (a
/// hyper upgrade, an HTTP/2 stream, another runtime) can be one too:
///
/// ```text
/// loop {
///     write   driver.output(slices) → transport → driver.wrote(n) | driver.write_blocked()
///             driver.wants_shutdown() → shut the write half → driver.shut_down()
///     event   driver.next_event() → Some(Ok(event)) to the application, Some(Err(e)): the end
///             (taking events can queue output, the close frame after the last one: write it
///             before waiting)
///     time    driver.deadline() passed → driver.on_deadline()
///     read    driver.wants_read() → transport → driver.read_into(..) / driver.received(..)
///             → driver.read_done(n) (n = 0: EOF) | driver.read_idle() when nothing is waiting
/// }
/// ```
///
/// No method blocks or does I/O; the clock is read through the function given to
/// [`Driver::new`], and only when something changed (a read, a write that made progress, a
/// state change), never per message.
///
/// # The wake-up rule
///
/// Async adapters drive one connection from several tasks (the two halves of a split): the
/// rule every adapter built on the driver must keep is that **every task parked on the
/// connection is woken when what it waits for can have happened, whichever task drove the
/// I/O**, including on timeout, close and error. The tokio adapter keeps it by registering one
/// waker with the transport and the timer that wakes every parked task (`src/tokio/wake.rs`),
/// and by waking the other tasks when a step it drove ends the connection or drains the output.
#[derive(Debug)]
pub struct Driver {
    conn: Connection,
    deadlines: Deadlines,
    clock: Clock,
    /// The write half was shut down.
    shut: bool,
    /// No more I/O on the transport: it failed, or the wait for EOF after the close is over.
    done: bool,
    /// The outcome of the `Closed` event, held until the close is complete.
    closed: Option<Box<CloseOutcome>>,
}

impl Driver {
    /// Drives `conn` (in any state) with `timeouts`, reading time from `clock`.
    pub fn new(conn: Connection, timeouts: Timeouts, clock: Clock) -> Self {
        Self {
            conn,
            deadlines: Deadlines::new(timeouts, clock()),
            clock,
            shut: false,
            done: false,
            closed: None,
        }
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably: commands queued on it are written by the next write.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection, dropping the deadlines.
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// The timeouts this driver keeps.
    pub fn timeouts(&self) -> &Timeouts {
        self.deadlines.timeouts()
    }

    /// `true` once the transport is finished with: failed, or closed and drained. The adapter
    /// may drop it.
    pub fn is_done(&self) -> bool {
        self.done
    }

    // ------------------------------------------------------------------------------ writing

    /// `true` while output waits to be written.
    pub fn wants_write(&self) -> bool {
        !self.done && self.conn.buffered_amount() > 0
    }

    /// `true` while more than [`Config::write_high_water`](crate::Config::write_high_water)
    /// bytes wait to be written: a sender should wait for the transport before queueing more.
    pub fn above_high_water(&self) -> bool {
        !self.done && self.conn.buffered_amount() > self.conn.config().write_high_water()
    }

    /// Fills `slices` with the output to write, in order, and returns how many it filled: for
    /// a vectored write (one slice is enough for a plain one).
    pub fn output<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in slices.iter_mut().zip(self.conn.output_chunks()) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    /// Reports that the transport took `n` bytes of the output (a write that made progress).
    pub fn wrote(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.conn.advance_output(n);
        self.deadlines.on_progress((self.clock)());
    }

    /// Reports that a write could not complete now (the transport is full). The write
    /// timeout runs from the first such write since the last progress.
    pub fn write_blocked(&mut self) {
        self.deadlines.on_blocked((self.clock)());
    }

    /// `true` when the write half should be shut down now: the core wants it (the server
    /// closes TCP first, RFC 6455 §7.1.1) and the output is written.
    pub fn wants_shutdown(&self) -> bool {
        !self.shut && !self.done && self.conn.wants_shutdown() && self.conn.buffered_amount() == 0
    }

    /// Reports that the write half was shut down (or that trying failed: the peer may be gone
    /// already, and the close completes either way).
    pub fn shut_down(&mut self) {
        self.shut = true;
    }

    /// The error a flush ends with when what was queued will never be written: the
    /// connection ended (a deadline passed, the transport failed) with output still queued.
    /// The error says how it ended. `None` while writing can go on, or once everything queued
    /// was written (a connection the peer failed or closed still writes what came before its
    /// close frame).
    pub fn unwritten_error(&self) -> Option<Error> {
        let lost = self.conn.output_discarded() || (self.done && self.conn.buffered_amount() > 0);
        lost.then(|| self.final_error())
    }

    /// Starts the closing handshake with 1000 (normal closure) unless it has started: what a
    /// `Sink`'s close means.
    pub fn close_normally(&mut self) -> Result<(), Error> {
        Ok(self.conn.close(crate::frame::CloseCode::NORMAL, "")?)
    }

    /// Reports that the transport failed while writing (a write of zero bytes counts as a
    /// failure): the connection ends without a closing handshake (1006). Returns the error to
    /// report, unless the connection had already closed (then its outcome is the answer).
    pub fn write_failed(&mut self, error: io::Error) -> Option<Error> {
        self.transport_failed(error)
    }

    // ------------------------------------------------------------------------------ reading

    /// `true` while reading is useful: the connection takes input, or waits for the peer's
    /// EOF after the close.
    pub fn wants_read(&self) -> bool {
        !self.done && (self.conn.state() != State::Closed || self.conn.awaiting_eof())
    }

    /// `true` while the connection holds no read buffer (idle, or not read from yet): read
    /// into a buffer of your own and hand it to [`received`](Self::received), so that waiting
    /// costs no heap. Otherwise read with [`read_into`](Self::read_into).
    pub fn read_buffer_released(&self) -> bool {
        self.conn.read_buffer_released()
    }

    /// Reads straight into the connection's read buffer ([`Connection::read_into`]). Report
    /// the result with [`read_done`](Self::read_done).
    pub fn read_into<R>(&mut self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        self.conn.read_into(f)
    }

    /// Hands over bytes read into a buffer of the adapter's ([`Connection::handle_input`]).
    /// Report the count with [`read_done`](Self::read_done).
    pub fn received(&mut self, bytes: &[u8]) {
        self.conn.handle_input(bytes);
    }

    /// Reports a read of `n` bytes; 0 is the peer's EOF.
    pub fn read_done(&mut self, n: usize) {
        if n == 0 {
            self.conn.handle_eof();
        } else {
            self.deadlines.on_input((self.clock)());
        }
    }

    /// Reports that the transport has nothing more to read for now: the connection gives
    /// back the memory a burst needed ([`Connection::release_memory`]).
    pub fn read_idle(&mut self) {
        self.conn.release_memory();
    }

    /// Reports that the transport failed while reading: the connection ends without a closing
    /// handshake (1006). Returns the error to report, unless the connection had already closed
    /// (a reset while waiting for the peer's EOF ends that wait; the outcome is the answer).
    pub fn read_failed(&mut self, error: io::Error) -> Option<Error> {
        self.transport_failed(error)
    }

    fn transport_failed(&mut self, error: io::Error) -> Option<Error> {
        let ended_it = self.conn.state() != State::Closed;
        self.conn.abort();
        self.done = true;
        ended_it.then_some(Error::Io(error))
    }

    // ------------------------------------------------------------------------------ time

    /// When [`on_deadline`](Self::on_deadline) must be called next, if ever: wait (read or
    /// write) no longer than this.
    pub fn deadline(&mut self) -> Option<Instant> {
        if self.done {
            return None;
        }
        // A command (a close) may have changed the state since the last step.
        self.deadlines.observe(self.clock, &self.conn);
        self.deadlines.next(&self.conn)
    }

    /// Acts on every deadline that has passed: a keepalive ping, a dead peer, an idle
    /// connection, a close that takes too long, the end of the wait for EOF.
    pub fn on_deadline(&mut self) {
        if self.done {
            return;
        }
        let now = (self.clock)();
        if self.deadlines.fire(now, &mut self.conn) {
            self.done = true;
        }
    }

    // ------------------------------------------------------------------------------ events

    /// What to hand the application next:
    ///
    /// - `Some(Ok(event))`: an event; during the opening handshake [`Event::Request`] and
    ///   [`Event::Open`] too ([`handshake_step`](Self::handshake_step) answers them);
    /// - `Some(Err(error))`: the connection is over and the transport finished with (output
    ///   written, write half shut, the peer's EOF read or the close timeout passed); `error`
    ///   says how ([`Error::from_outcome`]). Every later call answers the same.
    /// - `None`: nothing yet; write, read or wait for the deadline.
    pub fn next_event(&mut self) -> Option<Result<Event, Error>> {
        let clock = self.clock;
        self.deadlines.observe(clock, &self.conn);
        if self.closed.is_none() {
            match self.conn.next_event() {
                Some(Event::Closed(outcome)) => {
                    // Taking the event may have queued our close frame: it is written before
                    // the close counts as complete.
                    self.deadlines.observe(clock, &self.conn);
                    self.closed = Some(outcome);
                }
                Some(ev @ (Event::Message(_) | Event::Fragment(_))) => {
                    self.deadlines.on_message();
                    return Some(Ok(ev));
                }
                Some(ev) => return Some(Ok(ev)),
                None if self.done => {
                    // The transport ended before the core reported a close (it always does
                    // once told of the failure, so this is a connection given to the driver
                    // already closed).
                    return Some(Err(self.final_error()));
                }
                None => return None,
            }
        }
        self.close_complete().then(|| Err(self.final_error()))
    }

    /// The close is complete once the output is written (or cannot be), the write half shut
    /// when the core wants it, and the peer's EOF read (or the wait for it over).
    fn close_complete(&mut self) -> bool {
        let complete = self.done
            || (!self.conn.awaiting_eof()
                && self.conn.buffered_amount() == 0
                && (self.shut || !self.conn.wants_shutdown()));
        self.done |= complete;
        complete
    }

    /// The error a finished connection answers with.
    fn final_error(&self) -> Error {
        match self.closed.as_deref().or(self.conn.close_outcome()) {
            Some(outcome) => Error::from_outcome(outcome),
            None => io::Error::from(io::ErrorKind::NotConnected).into(),
        }
    }

    /// Answers an event of the opening handshake, for adapters that run it to completion:
    /// a server's [`Event::Request`] goes to `decide` (at most once), whose verdict is applied
    /// ([`Connection::accept`] or [`Connection::reject`]); [`Event::Open`] ends the handshake.
    ///
    /// Returns `Some(Ok(response))` once OPEN (the server's response, client side), and `None`
    /// while the handshake goes on.
    pub fn handshake_step<F>(
        &mut self,
        event: Event,
        decide: &mut Option<F>,
    ) -> Option<Result<Option<Response>, Error>>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        match event {
            Event::Request(request) => {
                // The core reports one request per connection, so `decide` runs once.
                let decide = decide.take()?;
                let applied = match decide(&request) {
                    Ok(accept) => self.conn.accept(accept),
                    Err(reject) => self.conn.reject(reject),
                };
                applied.err().map(|e| Err(e.into()))
            }
            Event::Open(handshake) => Some(Ok(handshake.response)),
            _ => None,
        }
    }
}
