//! The tokio adapter: a [`WebSocketStream`] over any `AsyncRead + AsyncWrite` transport.
//!
//! A loop over the shared [`Driver`]: it moves bytes, keeps one timer,
//! and holds no protocol logic. Writes are batched: queued frames go out in one vectored write.
//!
//! The stream is a [`futures_core::Stream`] of messages and a [`futures_sink::Sink`] of
//! messages, so `StreamExt::split` gives read and write halves for two tasks;
//! [`into_split`](WebSocketStream::into_split) gives halves of hybi's own, whose write half can
//! close with any code. Either way no task can lose another's wake-up: the transport and the
//! timer are polled with a waker that wakes every task parked on the connection, and a task
//! whose step ends the connection or drains the output wakes the other.
//!
//! ```no_run
//! # async fn run() -> Result<(), hybi::Error> {
//! let (mut ws, _response) = hybi::tokio::connect("ws://127.0.0.1:8080/chat").await?;
//! ws.send_message("hello").await?;
//! let reply = ws.recv().await?;
//! println!("{:?}", reply.as_text());
//! # Ok(()) }
//! ```

mod drive;
mod split;
mod wake;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

use crate::conn::{Connection, Event, Message};
pub use crate::connect::tokio::MaybeTlsStream;
use crate::connect::ConnectOptions;
use crate::driver::{Driver, Error, Timeouts};
use crate::error::UsageError;
use crate::frame::CloseCode;
use crate::handshake::{Accept, ClientRequest, Reject, Request, Response};
pub use split::{ReadHalf, ReuniteError, WriteHalf};
use wake::{Side, WakeSet};

/// A WebSocket over an async transport.
#[derive(Debug)]
pub struct WebSocketStream<S> {
    io: S,
    driver: Driver,
    /// The tasks parked on this connection, and the waker that wakes them all.
    parked: Arc<WakeSet>,
    waker: Waker,
    /// Armed only while there is a deadline.
    sleep: Option<Pin<Box<Sleep>>>,
    /// `Stream` has yielded its end.
    stream_done: bool,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Connects to a `ws://` or `wss://` URL with the default [`ConnectOptions`].
pub async fn connect(url: &str) -> Result<(WebSocketStream<MaybeTlsStream>, Response), Error> {
    connect_with(ClientRequest::new(url)?, ConnectOptions::default()).await
}

/// Connects with a request (subprotocols, Origin, headers) and options (config, timeouts,
/// proxy, redirects, connect timeout, TLS): TCP to each address in turn or through the proxy,
/// TLS for `wss://`, the opening handshake, and again for each redirect followed, all within
/// the handshake timeout.
pub async fn connect_with(
    request: ClientRequest,
    options: ConnectOptions,
) -> Result<(WebSocketStream<MaybeTlsStream>, Response), Error> {
    request.validate()?;
    let deadline = crate::connect::Deadline::start(&options, now());
    let mut redirects = crate::connect::Redirects::new(&request, options.max_redirects());
    let mut request = request;
    loop {
        let stream = crate::connect::tokio::open(&request, &options, deadline).await?;
        let timeouts = deadline.timeouts(&options, now())?;
        let config = options.config().clone();
        match client_with(stream, request.clone(), config, timeouts).await {
            Err(e) => request = redirects.follow(&request, e)?,
            done => return done,
        }
    }
}

/// Runs the client handshake over an established transport, with the default [`Config`]
/// and [`Timeouts`].
///
/// [`Config`]: crate::Config
pub async fn client<S>(
    stream: S,
    request: ClientRequest,
) -> Result<(WebSocketStream<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    client_with(
        stream,
        request,
        crate::Config::default(),
        Timeouts::default(),
    )
    .await
}

/// Like [`client`], with a config and timeouts.
pub async fn client_with<S>(
    stream: S,
    request: ClientRequest,
    config: crate::Config,
    timeouts: Timeouts,
) -> Result<(WebSocketStream<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    request.validate()?;
    let conn = Connection::client(request, config);
    let mut ws = WebSocketStream::new(stream, conn, timeouts);
    let response = ws
        .handshake(None::<fn(&Request) -> Result<Accept, Reject>>)
        .await?;
    Ok((
        ws,
        response.ok_or(UsageError::WrongState(crate::State::Open))?,
    ))
}

/// Runs the server handshake, accepting any valid request with the default config.
pub async fn accept<S>(stream: S) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(
        stream,
        crate::Config::default(),
        Timeouts::default(),
        |_| Ok(Accept::new()),
    )
    .await
}

/// Runs the server handshake; `decide` sees the request (path, Origin, offered subprotocols,
/// headers) and accepts with an [`Accept`] or refuses with a [`Reject`].
///
/// The stream is set up when this is called; the returned future holds it and `decide`, not the
/// arguments it was made from as well. This matters for memory per connection: a task's future
/// keeps room for each future it awaits next to what it keeps afterwards (here the returned
/// `WebSocketStream`) for as long as it lives. To keep a single `WebSocketStream` in such a
/// task, bind the result with `let Ok(mut ws) = accepting.await else { ... }` (as
/// `examples/echo_server.rs` does) rather than keeping the `Result` in a local and matching it.
pub fn accept_with<S, F>(
    stream: S,
    config: crate::Config,
    timeouts: Timeouts,
    decide: F,
) -> impl Future<Output = Result<WebSocketStream<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut ws = WebSocketStream::new(stream, Connection::server(config), timeouts);
    async move {
        ws.handshake(Some(decide)).await?;
        Ok(ws)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Wraps a transport and a connection in any state (e.g. [`Connection::open`] for a
    /// handshake done elsewhere).
    pub fn new(io: S, conn: Connection, timeouts: Timeouts) -> Self {
        let parked = Arc::new(WakeSet::default());
        Self {
            io,
            driver: Driver::new(conn, timeouts, now),
            waker: Waker::from(parked.clone()),
            parked,
            sleep: None,
            stream_done: false,
        }
    }

    /// Wraps a transport and a connection, with `read_buf`: bytes already read from the
    /// transport that belong to the connection, which it takes before anything else. For a
    /// handshake done elsewhere: what an HTTP server read past the request head (hyper's
    /// `upgrade::Parts::read_buf`) may hold the client's first frames. Typically `conn` is
    /// [`Connection::accepted`] with what the handshake negotiated.
    ///
    /// ```
    /// # async fn run(tcp: tokio::net::TcpStream, conn: hybi::Connection) -> Result<(), hybi::Error> {
    /// // `tcp` is past a request head that some HTTP code read and answered, and it read
    /// // these bytes as well.
    /// let leftover = b"\x81\x82\x00\x00\x00\x00hi";
    /// let mut ws = hybi::tokio::WebSocketStream::with_read_buf(
    ///     tcp,
    ///     conn,
    ///     leftover,
    ///     hybi::Timeouts::default(),
    /// );
    /// assert_eq!(ws.recv().await?.as_text(), Some("hi"));
    /// # Ok(()) }
    /// ```
    pub fn with_read_buf(io: S, conn: Connection, read_buf: &[u8], timeouts: Timeouts) -> Self {
        let mut conn = conn;
        conn.handle_input(read_buf);
        Self::new(io, conn, timeouts)
    }

    /// The transport and the bytes read from it that the connection did not use
    /// ([`Connection::unread`]: `None` when a frame was half taken), dropping the connection.
    /// The reverse of [`with_read_buf`](Self::with_read_buf).
    pub fn into_inner_with_unread(self) -> (S, Option<bytes::Bytes>) {
        let unread = self
            .driver
            .connection()
            .unread()
            .map(bytes::Bytes::copy_from_slice);
        (self.io, unread)
    }

    async fn handshake<F>(&mut self, decide: Option<F>) -> Result<Option<Response>, Error>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        let mut decide = decide;
        loop {
            let event = poll_fn(|cx| self.poll_recv_event(cx)).await?;
            if let Some(done) = self.driver.handshake_step(event, &mut decide) {
                return done;
            }
        }
    }

    /// Waits for the next message. Once the connection has closed, every call returns the
    /// error that says how ([`Error::Closed`] after a close handshake).
    ///
    /// Cancel safe: a message is taken out of the connection only when it is returned, so a
    /// `recv` dropped inside `tokio::select!` loses nothing. With
    /// [`Config::stream_fragments`](crate::Config::stream_fragments) on, messages arrive in
    /// pieces: use [`recv_event`](Self::recv_event) (this returns
    /// [`UsageError::StreamingFragments`] and takes nothing).
    pub async fn recv(&mut self) -> Result<Message, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message (see [`recv`](Self::recv)).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        if self.driver.connection().config().stream_fragments() {
            return Poll::Ready(Err(UsageError::StreamingFragments.into()));
        }
        loop {
            if let Event::Message(m) = ready!(self.poll_recv_event(cx))? {
                return Poll::Ready(Ok(m));
            }
        }
    }

    /// Waits for the next event the application may care about: messages, fragments (with
    /// `stream_fragments`), pings, pongs and the peer's close frame. Cancel safe.
    pub async fn recv_event(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| self.poll_recv_event(cx)).await
    }

    /// Polls for the next event (see [`recv_event`](Self::recv_event)).
    pub fn poll_recv_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        self.poll_side(cx, Side::Read, Self::poll_event)
    }

    /// A message that has already arrived, without waiting or doing I/O. Use it after
    /// [`recv`](Self::recv) to answer every message of one read before one
    /// [`flush_queue`](Self::flush_queue).
    pub fn try_recv(&mut self) -> Option<Message> {
        while let Some(Ok(ev)) = self.driver.next_event() {
            if let Event::Message(m) = ev {
                return Some(m);
            }
        }
        None
    }

    /// Queues a message and writes everything queued.
    pub async fn send_message(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.queue(message)?;
        self.flush_queue().await
    }

    /// Queues a message without writing it (no backpressure: `Sink::poll_ready` waits above
    /// [`Config::write_high_water`](crate::Config::write_high_water)). Queued messages go out
    /// together, in one vectored write, on the next flush.
    pub fn queue(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        Ok(self.driver.connection_mut().send(message.into())?)
    }

    /// Queues a message framed once for many connections (a server's broadcast; see
    /// [`PreparedMessage`](crate::PreparedMessage)) without writing it: a reference, no copy.
    pub fn queue_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), Error> {
        Ok(self.driver.connection_mut().send_prepared(message)?)
    }

    /// Sends a ping and writes it.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.driver.connection_mut().send_ping(payload)?;
        self.flush_queue().await
    }

    /// Starts the closing handshake with `code` and `reason` and writes the close frame. Keep
    /// calling [`recv`](Self::recv) until it returns [`Error::Closed`] to complete it.
    ///
    /// Bounded by [`Timeouts::close_timeout`]: against a peer that stopped reading, the
    /// connection is dropped with [`Error::Timeout`] instead of waiting forever.
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.driver.connection_mut().close(code, reason)?;
        self.flush_queue().await
    }

    /// Writes everything queued. Fails once the connection has ended without writing it.
    pub async fn flush_queue(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush_queue(cx)).await
    }

    /// Polls [`flush_queue`](Self::flush_queue).
    pub fn poll_flush_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_side(cx, Side::Write, Self::poll_flushed)
    }

    /// The driver: the connection (state, buffered amount, protocol, close outcome...) and
    /// its deadlines.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// The driver, mutably: commands queued on its connection are written by the next flush.
    pub fn driver_mut(&mut self) -> &mut Driver {
        &mut self.driver
    }

    /// The connection (state, buffered amount, protocol, close outcome...).
    pub fn connection(&self) -> &Connection {
        self.driver.connection()
    }

    /// The connection, mutably: commands queued here are written by the next flush.
    pub fn connection_mut(&mut self) -> &mut Connection {
        self.driver.connection_mut()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The transport, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The transport and the driver, taken apart.
    pub fn into_parts(self) -> (S, Driver) {
        (self.io, self.driver)
    }

    /// The transport, dropping the connection.
    pub fn into_inner(self) -> S {
        self.io
    }

    /// Splits the stream into a read half and a write half for two tasks. Unlike
    /// `StreamExt::split`, the write half can close with any code
    /// ([`WriteHalf::close_with`]); [`ReadHalf::reunite`] puts them back together.
    pub fn into_split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        split::split(self)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message, Error>;

    /// Yields messages; ends (`None`) after a close without error, or after yielding the
    /// error that ended the connection.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.stream_done {
            return Poll::Ready(None);
        }
        match ready!(this.poll_recv(cx)) {
            Ok(m) => Poll::Ready(Some(Ok(m))),
            Err(e) => {
                this.stream_done = true;
                match e {
                    Error::Closed(_) => Poll::Ready(None),
                    e => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = Error;

    /// Waits while more than [`Config::write_high_water`](crate::Config::write_high_water)
    /// bytes are queued.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.driver.above_high_water() {
            ready!(this.poll_flush_queue(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().queue(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_queue(cx)
    }

    /// Starts the closing handshake with 1000 if it has not started, and writes the close
    /// frame ([`close_with`](WebSocketStream::close_with) picks the code).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.driver.close_normally()?;
        this.poll_flush_queue(cx)
    }
}
