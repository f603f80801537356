//! A blocking connection shared by a reader thread and a writer thread.
//!
//! The driver sits behind a lock that no thread holds while it blocks: the reader reads into
//! a buffer of its own and then hands the bytes over; a writer copies output out, writes it,
//! then reports it. Writes are serialized by a second lock. The reader writes what reading
//! queued (pongs, the close reply) itself unless a writer is writing, in which case the writer
//! writes it: a writer looks at the output again after letting go of the write lock, so
//! nothing queued meanwhile is left behind. Each thread arms its handle's timeout with the
//! next deadline and acts on it when it passes, so both keep the keepalive and timeouts.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::transport::{timed_out, Armed};
use super::SplitTransport;
use crate::conn::{Event, Message};
use crate::driver::{Driver, Error};
use crate::frame::CloseCode;
use crate::role::State;

/// How much one read or one write takes at most.
const CHUNK: usize = 64 << 10;

#[derive(Debug)]
struct Shared {
    driver: Mutex<Driver>,
    /// Held while writing; the writer's handle lives in each half.
    writing: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One handle to the transport and its write state; each half has one.
#[derive(Debug)]
struct Handle<S> {
    stream: S,
    write_timeout: Armed,
    /// Output copied out of the driver for one write.
    out: Vec<u8>,
}

pub(super) fn split<S: SplitTransport>(
    stream: S,
    driver: Driver,
) -> io::Result<(ReadHalf<S>, WriteHalf<S>)> {
    let shared = Arc::new(Shared {
        driver: Mutex::new(driver),
        writing: Mutex::new(()),
    });
    let writer = Handle::new(stream.try_clone()?);
    Ok((
        ReadHalf {
            shared: shared.clone(),
            handle: Handle::new(stream),
            read_timeout: Armed::default(),
            buf: Vec::new(),
        },
        WriteHalf {
            shared,
            handle: writer,
        },
    ))
}

/// The receiving half of [`WebSocket::into_split`](super::WebSocket::into_split), for a
/// reader thread.
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Arc<Shared>,
    handle: Handle<S>,
    read_timeout: Armed,
    buf: Vec<u8>,
}

/// The sending half of [`WebSocket::into_split`](super::WebSocket::into_split), for a writer
/// thread.
#[derive(Debug)]
pub struct WriteHalf<S> {
    shared: Arc<Shared>,
    handle: Handle<S>,
}

impl<S: SplitTransport> Handle<S> {
    fn new(stream: S) -> Self {
        Self {
            stream,
            write_timeout: Armed::default(),
            out: Vec::new(),
        }
    }

    /// Writes the driver's output until none is left, copying it out so that the driver is
    /// never locked while the write blocks. The caller holds the write lock.
    fn write_out(&mut self, shared: &Shared) -> Result<(), Error> {
        loop {
            let deadline = {
                let mut d = lock(&shared.driver);
                if d.wants_shutdown() {
                    let _ = self.stream.shutdown_write();
                    d.shut_down();
                }
                if !d.wants_write() {
                    return Ok(());
                }
                let deadline = d.deadline();
                if deadline.is_some_and(|at| at <= Instant::now()) {
                    d.on_deadline();
                    continue;
                }
                self.out.clear();
                for chunk in d.connection().output_chunks() {
                    let take = chunk.len().min(CHUNK - self.out.len());
                    self.out.extend_from_slice(&chunk[..take]);
                    if self.out.len() == CHUNK {
                        break;
                    }
                }
                d.write_blocked();
                deadline
            };
            let stream = &mut self.stream;
            self.write_timeout
                .arm(Instant::now(), deadline, |t| stream.set_write_timeout(t))?;
            let written = self.stream.write(&self.out);
            let mut d = lock(&shared.driver);
            match written {
                Ok(0) => return failed(d.write_failed(io::ErrorKind::WriteZero.into())),
                Ok(n) => d.wrote(n),
                Err(e) if timed_out(&e) => d.on_deadline(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return failed(d.write_failed(e)),
            }
        }
    }

    /// Writes everything queued, by this thread or by the one holding the write lock: after
    /// letting the lock go, the output is looked at again, so what another thread queued while
    /// this one wrote is not left behind.
    fn flush(&mut self, shared: &Shared, wait: bool) -> Result<(), Error> {
        loop {
            let guard = if wait {
                lock(&shared.writing)
            } else {
                match shared.writing.try_lock() {
                    Ok(g) => g,
                    Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                    // The writer is writing, and will look at the output again after.
                    Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
                }
            };
            self.write_out(shared)?;
            drop(guard);
            if !lock(&shared.driver).wants_write() {
                return Ok(());
            }
        }
    }
}

fn failed(error: Option<Error>) -> Result<(), Error> {
    error.map_or(Ok(()), Err)
}

impl<S: SplitTransport> ReadHalf<S> {
    /// Waits for the next message ([`WebSocket::recv`](super::WebSocket::recv)).
    pub fn recv(&mut self) -> Result<Message, Error> {
        let streaming = lock(&self.shared.driver)
            .connection()
            .config()
            .stream_fragments();
        crate::driver::first_message(streaming, || self.recv_event())
    }

    /// Waits for the next event ([`WebSocket::recv_event`](super::WebSocket::recv_event)).
    pub fn recv_event(&mut self) -> Result<Event, Error> {
        loop {
            self.handle.flush(&self.shared, false)?;
            let deadline = {
                let mut d = lock(&self.shared.driver);
                if let Some(result) = d.next_event() {
                    return result;
                }
                let deadline = d.deadline();
                if deadline.is_some_and(|at| at <= Instant::now()) {
                    d.on_deadline();
                    continue;
                }
                if !d.wants_read() {
                    // Waiting on the writer (the close reply) or the clock.
                    drop(d);
                    self.handle.flush(&self.shared, true)?;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                deadline
            };
            let stream = &mut self.handle.stream;
            self.read_timeout
                .arm(Instant::now(), deadline, |t| stream.set_read_timeout(t))?;
            self.buf.resize(CHUNK, 0);
            let read = self.handle.stream.read(&mut self.buf);
            let mut d = lock(&self.shared.driver);
            match read {
                Ok(n) => {
                    if n > 0 {
                        d.received(&self.buf[..n]);
                    }
                    d.read_done(n);
                }
                Err(e) if timed_out(&e) => {
                    d.read_idle();
                    d.on_deadline();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => failed(d.read_failed(e))?,
            }
        }
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        lock(&self.shared.driver).connection().state()
    }
}

impl<S: SplitTransport> WriteHalf<S> {
    /// Queues a message and writes everything queued.
    pub fn send_message(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.queue(message)?;
        self.flush_queue()
    }

    /// Queues a message without writing it.
    pub fn queue(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        Ok(lock(&self.shared.driver)
            .connection_mut()
            .send(message.into())?)
    }

    /// Queues a message framed once for many connections without writing it
    /// ([`WebSocket::queue_prepared`](super::WebSocket::queue_prepared)).
    pub fn queue_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), Error> {
        Ok(lock(&self.shared.driver)
            .connection_mut()
            .send_prepared(message)?)
    }

    /// Sends a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        lock(&self.shared.driver)
            .connection_mut()
            .send_ping(payload)?;
        self.flush_queue()
    }

    /// Starts the closing handshake with any code and writes the close frame; the read half
    /// sees the rest of the handshake.
    pub fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        lock(&self.shared.driver)
            .connection_mut()
            .close(code, reason)?;
        self.flush_queue()
    }

    /// Writes everything queued, keeping the deadlines. Fails once the connection has ended
    /// without writing it.
    pub fn flush_queue(&mut self) -> Result<(), Error> {
        self.handle.flush(&self.shared, true)?;
        failed(lock(&self.shared.driver).unwritten_error())
    }

    /// Bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        lock(&self.shared.driver).connection().buffered_amount()
    }
}
