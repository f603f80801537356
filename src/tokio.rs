//! The tokio adapter: a [`WebSocketStream`] over any `AsyncRead + AsyncWrite` transport.
//!
//! It implements [`futures_core::Stream`] of messages and [`futures_sink::Sink`] of messages,
//! so `StreamExt::split` gives independent read and write halves. Writes are batched: queued
//! frames go out in one vectored write per flush. Like the blocking adapter it holds no
//! protocol logic.
//!
//! ```no_run
//! # async fn run() -> Result<(), hybi::Error> {
//! let (mut ws, _response) = hybi::tokio::connect("ws://127.0.0.1:8080/chat").await?;
//! ws.send("hello").await?;
//! let reply = ws.recv().await?;
//! println!("{:?}", reply.as_text());
//! # Ok(()) }
//! ```

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant as StdInstant;

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::keepalive::Deadlines;
use crate::{
    Accept, ClientRequest, CloseCode, Config, Connection, Error, Event, Message, Options, Reject,
    Request, Response,
};

fn now() -> StdInstant {
    Instant::now().into_std()
}

/// A WebSocket over an async transport.
#[derive(Debug)]
pub struct WebSocketStream<S> {
    io: S,
    conn: Connection,
    deadlines: Deadlines,
    /// Armed only while there is a deadline.
    sleep: Option<Pin<Box<Sleep>>>,
    shut: bool,
    /// The close is complete: the transport is done.
    finished: bool,
    /// The `Closed` event, held back until the close is complete.
    closed: Option<Event>,
    /// `Stream` has yielded its end.
    stream_done: bool,
}

/// A plain TCP stream or a TLS stream over TCP, as [`connect`] returns it.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            MaybeTlsStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// Connects to a `ws://` or `wss://` URL with the default [`Config`] and [`Options`].
pub async fn connect(url: &str) -> Result<(WebSocketStream<MaybeTlsStream>, Response), Error> {
    connect_with(
        ClientRequest::new(url)?,
        Config::default(),
        Options::default(),
    )
    .await
}

/// Connects with a request (subprotocols, Origin, headers), a config and options.
pub async fn connect_with(
    request: ClientRequest,
    config: Config,
    options: Options,
) -> Result<(WebSocketStream<MaybeTlsStream>, Response), Error> {
    let connecting = TcpStream::connect((request.host(), request.port()));
    let tcp = match options.get_handshake_timeout() {
        Some(t) => tokio::time::timeout(t, connecting)
            .await
            .map_err(|_| Error::Timeout(crate::Timeout::Handshake))??,
        None => connecting.await?,
    };
    tcp.set_nodelay(true)?;
    let stream = if request.is_tls() {
        #[cfg(feature = "tls")]
        {
            let connector = tokio_rustls::TlsConnector::from(crate::tls::config(&options)?);
            let name = crate::tls::server_name(request.host())?;
            MaybeTlsStream::Tls(Box::new(connector.connect(name, tcp).await?))
        }
        #[cfg(not(feature = "tls"))]
        return Err(Error::Tls("wss:// needs the `tls` feature".into()));
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    client_with(stream, request, config, options).await
}

/// Runs the client handshake over an established transport.
pub async fn client<S>(
    stream: S,
    request: ClientRequest,
) -> Result<(WebSocketStream<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    client_with(stream, request, Config::default(), Options::default()).await
}

/// Like [`client`], with a config and options.
pub async fn client_with<S>(
    stream: S,
    request: ClientRequest,
    config: Config,
    options: Options,
) -> Result<(WebSocketStream<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    request.validate()?;
    let mut ws = WebSocketStream::new(stream, Connection::client(request, config), options);
    loop {
        match ws.next_core_event().await? {
            Event::Open(handshake) => {
                if let Some(response) = handshake.response {
                    return Ok((ws, response));
                }
            }
            Event::Closed(o) => return Err(Error::from_outcome(&o)),
            _ => {}
        }
    }
}

/// Runs the server handshake, accepting any valid request with the default config.
pub async fn accept<S>(stream: S) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, Config::default(), Options::default(), |_| {
        Ok(Accept::new())
    })
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
    config: Config,
    options: Options,
    decide: F,
) -> impl Future<Output = Result<WebSocketStream<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut ws = WebSocketStream::new(stream, Connection::server(config), options);
    let mut decide = Some(decide);
    async move {
        loop {
            match ws.next_core_event().await? {
                Event::Request(request) => {
                    let decision = match decide.take() {
                        Some(f) => f(&request),
                        None => Err(Reject::new(500)),
                    };
                    ws.conn.decide(decision)?;
                }
                Event::Open(_) => return Ok(ws),
                Event::Closed(o) => return Err(Error::from_outcome(&o)),
                _ => {}
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Wraps a transport and a connection in any state (e.g. [`Connection::open`] for a
    /// handshake done elsewhere).
    pub fn new(io: S, conn: Connection, options: Options) -> Self {
        Self {
            io,
            conn,
            deadlines: Deadlines::new(options, now()),
            sleep: None,
            shut: false,
            finished: false,
            closed: None,
            stream_done: false,
        }
    }

    /// Waits for the next message. Once the connection has closed, every call returns the
    /// error that says how.
    ///
    /// Cancel safe: a message is taken out of the connection only when it is returned, so a
    /// `recv` dropped inside `tokio::select!` loses nothing.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message (see [`recv`](Self::recv)).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
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
        loop {
            match ready!(self.poll_core_event(cx))? {
                Event::Closed(o) => return Poll::Ready(Err(Error::from_outcome(&o))),
                Event::Request(_) | Event::Open(_) => {}
                ev => return Poll::Ready(Ok(ev)),
            }
        }
    }

    /// A message that has already arrived, without waiting or doing I/O. Use it after
    /// [`recv`](Self::recv) to answer every message of one read before one [`flush`](Self::flush).
    pub fn try_recv(&mut self) -> Option<Message> {
        while let Some(ev) = self.conn.next_event() {
            match ev {
                Event::Message(m) => {
                    self.deadlines.on_message();
                    return Some(m);
                }
                Event::Closed(_) => {
                    self.closed = Some(ev);
                    return None;
                }
                _ => {}
            }
        }
        None
    }

    /// Sends a message and flushes it.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.queue(message)?;
        self.flush().await
    }

    /// Queues a message without writing it (no backpressure: see `Sink::poll_ready` for that).
    /// Queued messages go out together, in one vectored write, on the next flush.
    pub fn queue(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.conn.send(message.into())?;
        Ok(())
    }

    /// Sends a ping and flushes it.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn.send_ping(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake and flushes the close frame. Keep calling
    /// [`recv`](Self::recv) until it returns [`Error::Closed`] to complete it.
    ///
    /// The flush is bounded by [`Options::close_timeout`]: against a peer that stopped reading,
    /// the connection is dropped with [`Error::Timeout`] instead of waiting forever.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.conn.close(code, reason)?;
        let Some(limit) = self.deadlines.options().get_close_timeout() else {
            return self.flush().await;
        };
        match tokio::time::timeout(limit, self.flush()).await {
            Ok(result) => result,
            Err(_) => {
                self.conn.timed_out(crate::Timeout::Close);
                self.finished = true;
                Err(Error::Timeout(crate::Timeout::Close))
            }
        }
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_all(cx))
            .await
            .map_err(Error::Io)
    }

    /// The core connection (state, buffered amount, protocol, close outcome...).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The core connection, mutably: commands queued here are written by the next flush.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The transport, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The transport, dropping the connection state.
    pub fn into_inner(self) -> S {
        self.io
    }

    async fn next_core_event(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| self.poll_core_event(cx)).await
    }

    /// Writes queued output until it is all written (`Ready`) or the transport is full
    /// (`Pending`), then shuts the write half down if the core wants it.
    fn poll_write_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.buffered_amount() > 0 {
            let mut slices = [IoSlice::new(&[]); 32];
            let mut n = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.conn.output_chunks()) {
                *slot = IoSlice::new(chunk);
                n += 1;
            }
            let io = Pin::new(&mut self.io);
            let written = if n > 1 && io.is_write_vectored() {
                ready!(io.poll_write_vectored(cx, &slices[..n]))?
            } else {
                ready!(io.poll_write(cx, self.conn.pending_output()))?
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.conn.advance_output(written);
        }
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        if self.conn.wants_shutdown() && !self.shut {
            // The peer may be gone already; the close completes either way.
            let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
            self.shut = true;
        }
        Poll::Ready(Ok(()))
    }

    /// Keeps the timer armed for the next deadline. Returns `true` when a deadline passed and
    /// was acted on (the caller loops to see what changed).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.deadlines.next(&self.conn) else {
            self.sleep = None;
            return false;
        };
        let at = Instant::from_std(at);
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
        let t = Instant::now();
        if at <= t {
            if self.deadlines.fire(t.into_std(), &mut self.conn) {
                self.finished = true;
            }
        } else {
            sleep.as_mut().reset(at);
        }
        true
    }

    /// Drives I/O until the core has an event. `Closed` is returned once the close is complete
    /// (output written, write half shut, peer's EOF read or the close timeout passed).
    fn poll_core_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        loop {
            // Write what we can; a full transport must not stop us from reading.
            if let Poll::Ready(Err(e)) = self.poll_write_all(cx) {
                self.conn.handle_eof();
                self.finished = true;
                return Poll::Ready(Err(Error::Io(e)));
            }
            self.deadlines.observe(now, &self.conn);
            if self.closed.is_none() {
                if let Some(ev) = self.conn.next_event() {
                    match ev {
                        Event::Closed(_) => {
                            // Taking the event may have queued our close frame: write it first.
                            self.closed = Some(ev);
                            continue;
                        }
                        Event::Message(_) | Event::Fragment(_) => {
                            self.deadlines.on_message();
                            return Poll::Ready(Ok(ev));
                        }
                        ev => return Poll::Ready(Ok(ev)),
                    }
                }
            }
            if self.closed.is_some() {
                // The close is complete once the peer's EOF was read (or the close timeout
                // passed) and our output is written (or cannot be, by that timeout).
                let eof_done = self.finished || !self.conn.awaiting_eof();
                let out_done = self.conn.buffered_amount() == 0;
                if eof_done && (out_done || self.finished) {
                    self.finished = true;
                    if let Some(ev) = self.closed.take() {
                        return Poll::Ready(Ok(ev));
                    }
                }
            } else if self.finished {
                let outcome = self.conn.close_outcome().cloned();
                return Poll::Ready(Err(outcome.map_or_else(
                    || io::Error::from(io::ErrorKind::NotConnected).into(),
                    |o| Error::from_outcome(&o),
                )));
            }
            // Deadlines. The timer is re-armed only when the next deadline comes before it; a
            // deadline that moved later (input arrived) is noticed when the timer fires, so a
            // busy connection neither reads the clock nor touches the timer per message.
            if self.poll_deadline(cx) {
                continue;
            }
            // Read, unless the peer's EOF is already in (then only the writer or the timer
            // can make progress, and both are registered with `cx`).
            if self.closed.is_some() && !self.conn.awaiting_eof() {
                return Poll::Pending;
            }
            match self.poll_read_input(cx) {
                Poll::Ready(Ok(0)) => self.conn.handle_eof(),
                Poll::Ready(Ok(_)) => self.deadlines.on_input(now()),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.conn.handle_eof();
                    self.finished = true;
                    if self.closed.is_some() {
                        continue;
                    }
                    return Poll::Ready(Err(Error::Io(e)));
                }
                Poll::Pending => {
                    self.conn.release_memory();
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The stack buffer a connection without a read buffer waits for input with.
const IDLE_READ_SIZE: usize = 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Reads once from the transport into the connection. A connection that holds no read
    /// buffer ([`Connection::read_buffer_released`]: an idle one, or a new one) waits with a
    /// buffer on the stack, so that waiting costs no heap; the read buffer is allocated when
    /// bytes arrive.
    fn poll_read_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let io = Pin::new(&mut self.io);
        if !self.conn.read_buffer_released() {
            return self
                .conn
                .read_into(|buf| tokio_util::io::poll_read_buf(io, cx, buf));
        }
        let mut stack = [MaybeUninit::<u8>::uninit(); IDLE_READ_SIZE];
        let mut buf = tokio::io::ReadBuf::uninit(&mut stack);
        ready!(io.poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        if n > 0 {
            self.conn.handle_input(buf.filled());
        }
        Poll::Ready(Ok(n))
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

    /// Waits while more than [`Options::write_high_water`] bytes are queued.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        let high = this.deadlines.options().get_write_high_water();
        while this.conn.buffered_amount() > high {
            ready!(this.poll_write_all(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().queue(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_all(cx).map_err(Error::Io)
    }

    /// Starts the closing handshake (1000) if it has not started, and flushes.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.conn.state() == crate::State::Open {
            this.conn.close(CloseCode::NORMAL, "")?;
        }
        this.poll_write_all(cx).map_err(Error::Io)
    }
}
