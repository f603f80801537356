//! hybi's own halves of a [`WebSocketStream`], for a reader task and a writer task.
//!
//! Both halves share the stream behind a lock that is held only for one poll, never across an
//! await; the wake-up rule of the stream itself keeps either half from losing the other's
//! wake-up. Unlike `StreamExt::split`, the write half can close with any code.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};

use super::WebSocketStream;
use crate::conn::{Event, Message};
use crate::driver::Error;
use crate::frame::CloseCode;
use crate::role::State;

type Shared<S> = Arc<Mutex<WebSocketStream<S>>>;

fn lock<S>(shared: &Shared<S>) -> MutexGuard<'_, WebSocketStream<S>> {
    // A panic in another half's poll leaves the stream as consistent as any cancelled poll.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn split<S>(ws: WebSocketStream<S>) -> (ReadHalf<S>, WriteHalf<S>) {
    let shared = Arc::new(Mutex::new(ws));
    (
        ReadHalf {
            shared: shared.clone(),
        },
        WriteHalf { shared },
    )
}

/// The read half of [`WebSocketStream::into_split`]: messages and events.
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Shared<S>,
}

/// The write half of [`WebSocketStream::into_split`]: sending, flushing, closing.
#[derive(Debug)]
pub struct WriteHalf<S> {
    shared: Shared<S>,
}

/// [`ReadHalf::reunite`] was given the write half of another stream; both come back.
#[derive(Debug)]
pub struct ReuniteError<S>(pub ReadHalf<S>, pub WriteHalf<S>);

impl<S> std::fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the halves are not of the same WebSocket stream")
    }
}

impl<S: std::fmt::Debug> std::error::Error for ReuniteError<S> {}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// Waits for the next message ([`WebSocketStream::recv`]). Cancel safe.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        poll_fn(|cx| lock(&self.shared).poll_recv(cx)).await
    }

    /// Waits for the next event ([`WebSocketStream::recv_event`]). Cancel safe.
    pub async fn recv_event(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| lock(&self.shared).poll_recv_event(cx)).await
    }

    /// Puts the halves back together.
    pub fn reunite(self, write: WriteHalf<S>) -> Result<WebSocketStream<S>, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.shared, &write.shared) {
            return Err(ReuniteError(self, write));
        }
        drop(write);
        let mutex = Arc::into_inner(self.shared).expect("the two halves held the only references");
        Ok(mutex.into_inner().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Queues a message and writes everything queued
    /// ([`WebSocketStream::send_message`]).
    pub async fn send_message(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.queue(message)?;
        self.flush_queue().await
    }

    /// Queues a message without writing it ([`WebSocketStream::queue`]).
    pub fn queue(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        lock(&self.shared).queue(message)
    }

    /// Queues a message framed once for many connections without writing it
    /// ([`WebSocketStream::queue_prepared`]).
    pub fn queue_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), Error> {
        lock(&self.shared).queue_prepared(message)
    }

    /// Writes everything queued ([`WebSocketStream::flush_queue`]).
    pub async fn flush_queue(&mut self) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_flush_queue(cx)).await
    }

    /// Sends a ping and writes it.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        lock(&self.shared).connection_mut().send_ping(payload)?;
        self.flush_queue().await
    }

    /// Starts the closing handshake with any code and writes the close frame
    /// ([`WebSocketStream::close_with`]); the read half sees the rest of the handshake.
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        lock(&self.shared).connection_mut().close(code, reason)?;
        self.flush_queue().await
    }

    /// Bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        lock(&self.shared).connection().buffered_amount()
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        lock(&self.shared).connection().state()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *lock(&self.shared)).poll_next(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut *lock(&self.shared)).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Pin::new(&mut *lock(&self.shared)).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut *lock(&self.shared)).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut *lock(&self.shared)).poll_close(cx)
    }
}
