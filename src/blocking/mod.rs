//! The blocking adapter: a [`WebSocket`] over any `std::io::Read + Write` transport.
//!
//! A loop over the shared [`Driver`]: it writes what the core queues,
//! reads into the core's buffer, hands out the core's events and keeps the deadlines of
//! [`Timeouts`] with the transport's read and write timeouts, while it receives and while it
//! sends. It holds no protocol logic.
//!
//! One thread can read while another writes: [`WebSocket::into_split`] (for sockets).
//!
//! ```no_run
//! use hybi::blocking;
//! let (mut ws, _response) = blocking::connect("ws://127.0.0.1:8080/chat")?;
//! ws.send_message("hello")?;
//! let reply = ws.recv()?;
//! println!("{:?}", reply.as_text());
//! ws.close_with(hybi::CloseCode::NORMAL, "bye")?;
//! # Ok::<(), hybi::Error>(())
//! ```

mod drive;
mod split;
mod transport;

use std::io;
use std::time::Instant;

use crate::config::Config;
use crate::conn::{Connection, Event, Message};
pub use crate::connect::blocking::MaybeTlsStream;
use crate::connect::ConnectOptions;
use crate::driver::{Driver, Error, Timeouts};
use crate::error::UsageError;
use crate::frame::CloseCode;
use crate::handshake::{Accept, ClientRequest, Reject, Request, Response};
use drive::TURN;
pub use split::{ReadHalf, WriteHalf};
use transport::Armed;
pub use transport::{SplitTransport, Transport};

/// A WebSocket over a blocking transport.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    driver: Driver,
    read_timeout: Armed,
    write_timeout: Armed,
    /// Bytes the last read brought: the next read zero-fills at most twice that (see
    /// [`read_some`]).
    last_read: usize,
}

/// Connects to a `ws://` or `wss://` URL with the default [`ConnectOptions`].
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_with(ClientRequest::new(url)?, ConnectOptions::default())
}

/// Connects with a request (subprotocols, Origin, headers) and options (config, timeouts,
/// proxy, redirects, connect timeout, TLS): TCP to each address in turn or through the proxy,
/// TLS for `wss://`, the opening handshake, and again for each redirect followed, all within
/// the handshake timeout.
pub fn connect_with(
    request: ClientRequest,
    options: ConnectOptions,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    request.validate()?;
    let deadline = crate::connect::Deadline::start(&options, Instant::now());
    let mut redirects = crate::connect::Redirects::new(&request, options.max_redirects());
    let mut request = request;
    loop {
        let stream = crate::connect::blocking::open(&request, &options, deadline)?;
        let timeouts = deadline.timeouts(&options, Instant::now())?;
        let config = options.config().clone();
        match client_with(stream, request.clone(), config, timeouts) {
            Err(e) => request = redirects.follow(&request, e)?,
            done => return done,
        }
    }
}

/// Runs the client handshake over an established transport.
pub fn client<S: Transport>(
    stream: S,
    request: ClientRequest,
) -> Result<(WebSocket<S>, Response), Error> {
    client_with(stream, request, Config::default(), Timeouts::default())
}

/// Like [`client`], with a config and timeouts.
pub fn client_with<S: Transport>(
    stream: S,
    request: ClientRequest,
    config: Config,
    timeouts: Timeouts,
) -> Result<(WebSocket<S>, Response), Error> {
    request.validate()?;
    let mut ws = WebSocket::new(stream, Connection::client(request, config), timeouts);
    let response = ws.handshake(None::<fn(&Request) -> Result<Accept, Reject>>)?;
    Ok((
        ws,
        response.ok_or(UsageError::WrongState(crate::State::Open))?,
    ))
}

/// Runs the server handshake, accepting any valid request with the default config.
pub fn accept<S: Transport>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, Config::default(), Timeouts::default(), |_| {
        Ok(Accept::new())
    })
}

/// Runs the server handshake; `decide` sees the request (path, Origin, offered subprotocols,
/// headers) and accepts with an [`Accept`] or refuses with a [`Reject`].
///
/// A rejected or invalid request ends in `Err` after the HTTP error response is sent.
pub fn accept_with<S, F>(
    stream: S,
    config: Config,
    timeouts: Timeouts,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut ws = WebSocket::new(stream, Connection::server(config), timeouts);
    ws.handshake(Some(decide))?;
    Ok(ws)
}

impl<S: Transport> WebSocket<S> {
    /// Wraps a transport and a connection in any state (e.g. [`Connection::open`] for a
    /// handshake done elsewhere).
    pub fn new(stream: S, conn: Connection, timeouts: Timeouts) -> Self {
        Self {
            stream,
            driver: Driver::new(conn, timeouts, Instant::now),
            read_timeout: Armed::default(),
            write_timeout: Armed::default(),
            last_read: 0,
        }
    }

    /// Wraps a transport and a connection, with `read_buf`: bytes already read from the
    /// transport that belong to the connection, which it takes before anything else (what an
    /// HTTP server read past the request head may hold the client's first frames). Typically
    /// `conn` is [`Connection::accepted`] with what the handshake negotiated.
    pub fn with_read_buf(stream: S, conn: Connection, read_buf: &[u8], timeouts: Timeouts) -> Self {
        let mut conn = conn;
        conn.handle_input(read_buf);
        Self::new(stream, conn, timeouts)
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
        (self.stream, unread)
    }

    fn handshake<F>(&mut self, decide: Option<F>) -> Result<Option<Response>, Error>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        let mut decide = decide;
        loop {
            let event = self.recv_event()?;
            if let Some(done) = self.driver.handshake_step(event, &mut decide) {
                return done;
            }
        }
    }

    /// Waits for the next message. Pings are answered and close frames echoed on the way.
    /// Once the connection has closed, every call returns the error that says how
    /// ([`Error::Closed`] after a close handshake). With
    /// [`Config::stream_fragments`](crate::Config::stream_fragments) on, use
    /// [`recv_event`](Self::recv_event) (this returns [`UsageError::StreamingFragments`]).
    pub fn recv(&mut self) -> Result<Message, Error> {
        let streaming = self.driver.connection().config().stream_fragments();
        crate::driver::first_message(streaming, || self.recv_event())
    }

    /// Waits for the next event the application may care about: messages, fragments (with
    /// `stream_fragments`), pings, pongs and the peer's close frame.
    pub fn recv_event(&mut self) -> Result<Event, Error> {
        loop {
            // A full transport must not stop us from reading: write for a turn at most.
            let written = self.write_out(Some(TURN))?;
            if let Some(result) = self.driver.next_event() {
                return result;
            }
            // Taking events can queue output (the close frame after the last event).
            if written && self.driver.wants_write() {
                continue;
            }
            let turn = self.driver.wants_write().then_some(TURN);
            self.read_once(turn)?;
        }
    }

    /// Queues a message (text for `&str`/`String`, binary for `Vec<u8>`/`Bytes`) and writes
    /// everything queued.
    pub fn send_message(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.queue(message)?;
        self.flush_queue()
    }

    /// Queues a message without writing it: queued messages go out together on the next
    /// [`flush_queue`](Self::flush_queue).
    pub fn queue(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        Ok(self.driver.connection_mut().send(message.into())?)
    }

    /// Queues a message framed once for many connections (a server's broadcast; see
    /// [`PreparedMessage`](crate::PreparedMessage)) without writing it: a reference, no copy.
    pub fn queue_prepared(&mut self, message: &crate::PreparedMessage) -> Result<(), Error> {
        Ok(self.driver.connection_mut().send_prepared(message)?)
    }

    /// Sends a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.driver.connection_mut().send_ping(payload)?;
        self.flush_queue()
    }

    /// Starts the closing handshake and writes the close frame. Keep calling
    /// [`recv`](Self::recv) until it returns [`Error::Closed`] to complete it (messages in
    /// flight still arrive).
    ///
    /// Bounded by [`Timeouts::close_timeout`] (on transports with
    /// [`Transport::set_write_timeout`]): against a peer that stopped reading, the connection
    /// is dropped with [`Error::Timeout`].
    pub fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.driver.connection_mut().close(code, reason)?;
        self.flush_queue()
    }

    /// Writes everything queued, keeping the deadlines while it waits for the transport.
    /// Fails once the connection has ended without writing it.
    pub fn flush_queue(&mut self) -> Result<(), Error> {
        self.write_out(None)?;
        self.driver.unwritten_error().map_or(Ok(()), Err)
    }

    /// The driver: the connection and its deadlines.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// The connection (state, buffered amount, protocol, close outcome...).
    pub fn connection(&self) -> &Connection {
        self.driver.connection()
    }

    /// The connection, mutably: commands queued here are written by the next call that
    /// writes ([`flush_queue`](Self::flush_queue), [`recv`](Self::recv), ...).
    pub fn connection_mut(&mut self) -> &mut Connection {
        self.driver.connection_mut()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The transport, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The transport and the driver, taken apart.
    pub fn into_parts(self) -> (S, Driver) {
        (self.stream, self.driver)
    }

    /// The transport, dropping the connection.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: SplitTransport> WebSocket<S> {
    /// Splits the connection into a half that receives and a half that sends, for two
    /// threads: a reader thread answers pings and close frames, a writer thread sends, and
    /// two peers that each send a lot before reading no longer wait on each other. Both halves
    /// keep the deadlines. Needs a second handle to the transport ([`SplitTransport`]: TCP and
    /// Unix sockets; a TLS stream has one state for both directions and cannot be split this
    /// way).
    pub fn into_split(self) -> io::Result<(ReadHalf<S>, WriteHalf<S>)> {
        split::split(self.stream, self.driver)
    }
}
