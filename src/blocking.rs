//! The blocking adapter: a [`WebSocket`] over any `std::io::Read + Write` transport.
//!
//! It holds no protocol logic: it writes what the core queues, reads into the core's buffer,
//! hands out the core's events and keeps the deadlines of [`Options`].
//!
//! ```no_run
//! use hybi::blocking;
//! let (mut ws, _response) = blocking::connect("ws://127.0.0.1:8080/chat")?;
//! ws.send("hello")?;
//! let reply = ws.recv()?;
//! println!("{:?}", reply.as_text());
//! ws.close(hybi::CloseCode::NORMAL, "bye")?;
//! # Ok::<(), hybi::Error>(())
//! ```

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::keepalive::Deadlines;
use crate::{
    Accept, ClientRequest, CloseCode, Config, Connection, Error, Event, Message, Options, Reject,
    Request, Response,
};

/// A byte stream the blocking adapter can drive: `Read + Write`, plus the two optional
/// capabilities deadlines and a clean close need. The defaults do nothing, so any stream can
/// opt in with an empty `impl`, at the cost of no deadlines.
pub trait Transport: Read + Write {
    /// Sets how long a `read` may block (`None`: forever). Default: unsupported, ignored.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Shuts the write half down (TCP FIN). Default: nothing.
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Sets how long a `write` may block (`None`: forever). Default: unsupported, ignored.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_read_timeout(&*self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_write_timeout(&*self, timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_read_timeout(&*self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_write_timeout(&*self, timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

/// A plain TCP stream or a TLS stream over TCP, as [`connect`] returns it.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.flush(),
        }
    }
}

impl Transport for MaybeTlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Self::Tls(s) = self {
            s.conn.send_close_notify();
            s.flush()?;
        }
        self.tcp().shutdown(Shutdown::Write)
    }
}

/// A WebSocket over a blocking transport.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    conn: Connection,
    deadlines: Deadlines,
    /// When the read timeout set on the transport expires: `None` before one is set,
    /// `Some(None)` for no timeout. Reads set it again only when the next deadline comes
    /// before it, so a busy connection makes no `setsockopt` call per read.
    read_timeout_until: Option<Option<Instant>>,
    /// Bytes the last read brought: the next read zero-fills at most twice that (see
    /// [`read_some`]).
    last_read: usize,
    shut: bool,
    finished: bool,
}

/// Connects to a `ws://` or `wss://` URL with the default [`Config`] and [`Options`].
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_with(
        ClientRequest::new(url)?,
        Config::default(),
        Options::default(),
    )
}

/// Connects with a request (subprotocols, Origin, headers), a config and options.
pub fn connect_with(
    request: ClientRequest,
    config: Config,
    options: Options,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let tcp = tcp_connect(
        request.host(),
        request.port(),
        options.get_handshake_timeout(),
    )?;
    tcp.set_nodelay(true)?;
    let stream = if request.is_tls() {
        #[cfg(feature = "tls")]
        {
            let tls = crate::tls::client_connection(request.host(), &options)?;
            MaybeTlsStream::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)))
        }
        #[cfg(not(feature = "tls"))]
        return Err(Error::Tls("wss:// needs the `tls` feature".into()));
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    client_with(stream, request, config, options)
}

fn tcp_connect(host: &str, port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let attempt = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host")))
}

/// Runs the client handshake over an established transport.
pub fn client<S: Transport>(
    stream: S,
    request: ClientRequest,
) -> Result<(WebSocket<S>, Response), Error> {
    client_with(stream, request, Config::default(), Options::default())
}

/// Like [`client`], with a config and options.
pub fn client_with<S: Transport>(
    stream: S,
    request: ClientRequest,
    config: Config,
    options: Options,
) -> Result<(WebSocket<S>, Response), Error> {
    request.validate()?;
    let mut ws = WebSocket::new(stream, Connection::client(request, config), options);
    loop {
        match ws.next_core_event()? {
            Event::Open(handshake) => {
                let response = handshake
                    .response
                    .ok_or(Error::Closed(crate::CloseOutcome {
                        code: CloseCode::ABNORMAL,
                        reason: String::new(),
                        initiator: crate::Initiator::Local,
                        clean: false,
                        error: None,
                    }))?;
                return Ok((ws, response));
            }
            Event::Closed(o) => return Err(Error::from_outcome(&o)),
            _ => {}
        }
    }
}

/// Runs the server handshake, accepting any valid request with the default config (no
/// subprotocol).
pub fn accept<S: Transport>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, Config::default(), Options::default(), |_| {
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
    options: Options,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut ws = WebSocket::new(stream, Connection::server(config), options);
    let mut decide = Some(decide);
    loop {
        match ws.next_core_event()? {
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

impl<S: Transport> WebSocket<S> {
    /// Wraps a transport and a connection in any state (e.g. [`Connection::open`] for a
    /// handshake done elsewhere).
    pub fn new(stream: S, conn: Connection, options: Options) -> Self {
        Self {
            stream,
            conn,
            deadlines: Deadlines::new(options, Instant::now()),
            read_timeout_until: None,
            last_read: 0,
            shut: false,
            finished: false,
        }
    }

    /// Waits for the next message. Pings are answered and close frames echoed on the way.
    /// Once the connection has closed, every call returns the error that says how.
    pub fn recv(&mut self) -> Result<Message, Error> {
        loop {
            if let Event::Message(m) = self.recv_event()? {
                return Ok(m);
            }
        }
    }

    /// Waits for the next event the application may care about: messages, fragments (with
    /// `stream_fragments`), pings, pongs and the peer's close frame.
    pub fn recv_event(&mut self) -> Result<Event, Error> {
        loop {
            match self.next_core_event()? {
                Event::Closed(o) => return Err(Error::from_outcome(&o)),
                Event::Request(_) | Event::Open(_) => {}
                ev => return Ok(ev),
            }
        }
    }

    /// Sends a message (text for `&str`/`String`, binary for `Vec<u8>`/`Bytes`) and writes it.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.conn.send(message.into())?;
        self.flush()
    }

    /// Sends a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn.send_ping(payload)?;
        self.flush()
    }

    /// Starts the closing handshake. Keep calling [`recv`](Self::recv) until it returns
    /// [`Error::Closed`] to complete it (messages in flight still arrive).
    ///
    /// Writing the close frame is bounded by [`Options::close_timeout`] (on transports with
    /// [`Transport::set_write_timeout`]): against a peer that stopped reading, the connection
    /// is dropped with [`Error::Timeout`].
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.conn.close(code, reason)?;
        let limit = self.deadlines.options().get_close_timeout();
        self.stream.set_write_timeout(limit)?;
        let result = self.flush();
        self.stream.set_write_timeout(None)?;
        match result {
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.conn.timed_out(crate::Timeout::Close);
                self.finished = true;
                Err(Error::Timeout(crate::Timeout::Close))
            }
            other => other,
        }
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        while self.conn.buffered_amount() > 0 {
            let mut slices = [IoSlice::new(&[]); 32];
            let mut n = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.conn.output_chunks()) {
                *slot = IoSlice::new(chunk);
                n += 1;
            }
            match self.stream.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(written) => self.conn.advance_output(written),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.stream.flush()?;
        if self.conn.wants_shutdown() && !self.shut {
            self.shut = true;
            // The peer may already be gone; the close is complete either way.
            let _ = self.stream.shutdown_write();
        }
        Ok(())
    }

    /// The core connection (state, buffered amount, protocol, close outcome...).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The core connection, mutably: commands queued here are written by the next call that
    /// writes ([`flush`](Self::flush), [`send`](Self::send), [`recv`](Self::recv)).
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The transport, mutably. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The transport, dropping the connection state.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Drives I/O until the core has an event. After `Closed`, finishes the close (flush,
    /// shutdown, drain to EOF within the close timeout) before returning it.
    fn next_core_event(&mut self) -> Result<Event, Error> {
        loop {
            self.flush()?;
            self.deadlines.observe(Instant::now, &self.conn);
            if let Some(ev) = self.conn.next_event() {
                match &ev {
                    Event::Message(_) | Event::Fragment(_) => self.deadlines.on_message(),
                    Event::Closed(_) => self.finish_close()?,
                    _ => {}
                }
                return Ok(ev);
            }
            if self.finished {
                let outcome = self.conn.close_outcome().cloned();
                return Err(outcome.map_or_else(
                    || io::Error::from(io::ErrorKind::NotConnected).into(),
                    |o| Error::from_outcome(&o),
                ));
            }
            self.read_once()?;
        }
    }

    /// One read (or one passed deadline).
    fn read_once(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        let deadline = self.deadlines.next(&self.conn);
        if deadline.is_some_and(|at| at <= now) {
            self.deadlines.fire(now, &mut self.conn);
            return Ok(());
        }
        self.arm_read_timeout(now, deadline)?;
        match self.read_input() {
            Ok(0) => self.conn.handle_eof(),
            Ok(_) => self.deadlines.on_input(Instant::now()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.conn.release_memory();
                self.deadlines.fire(Instant::now(), &mut self.conn);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.conn.handle_eof();
                self.finished = true;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Makes the next read return by `deadline`. A timeout already set that expires before
    /// the deadline (but after `now`) is kept: the read then returns early and the deadlines
    /// are checked again, which is cheaper than a `setsockopt` per read.
    fn arm_read_timeout(&mut self, now: Instant, deadline: Option<Instant>) -> io::Result<()> {
        let keep = match (self.read_timeout_until, deadline) {
            (Some(None), None) => true,
            (Some(Some(until)), Some(at)) => until > now && until <= at,
            _ => false,
        };
        if !keep {
            let timeout = deadline.map(|at| {
                at.saturating_duration_since(now)
                    .max(Duration::from_millis(1))
            });
            self.stream.set_read_timeout(timeout)?;
            self.read_timeout_until = Some(timeout.map(|t| now + t));
        }
        Ok(())
    }

    /// After `Closed`: write what is queued, shut down, then read until EOF or the close
    /// timeout, so the peer's last bytes are not answered with a reset.
    fn finish_close(&mut self) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        // Write errors here mean the peer is gone, which is where we are heading anyway.
        let _ = self.flush();
        while self.conn.awaiting_eof() {
            let now = Instant::now();
            if self.deadlines.fire(now, &mut self.conn) {
                break;
            }
            let deadline = self.deadlines.next(&self.conn);
            if self.arm_read_timeout(now, deadline).is_err() {
                break;
            }
            match self.read_input() {
                Ok(0) => self.conn.handle_eof(),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = self.flush();
        Ok(())
    }
}

/// The stack buffer a connection without a read buffer waits for input with.
const IDLE_READ_SIZE: usize = 1024;

impl<S: Transport> WebSocket<S> {
    /// Reads once from the transport into the connection. A connection that holds no read
    /// buffer ([`Connection::read_buffer_released`]: an idle one, or a new one) waits with a
    /// buffer on the stack; the read buffer is allocated when bytes arrive.
    fn read_input(&mut self) -> io::Result<usize> {
        let stream = &mut self.stream;
        if !self.conn.read_buffer_released() {
            let limit = self.last_read.saturating_mul(2);
            let n = self.conn.read_into(|buf| read_some(stream, buf, limit))?;
            self.last_read = n;
            return Ok(n);
        }
        let mut stack = [0u8; IDLE_READ_SIZE];
        let n = stream.read(&mut stack)?;
        if n > 0 {
            self.conn.handle_input(&stack[..n]);
        }
        Ok(n)
    }
}

/// Reads once into the spare capacity of `buf`, but into at most `limit` bytes of it (and at
/// least 1 KiB). `std::io::Read` needs initialized memory, so the room is zero-filled first:
/// with the core's read size grown to 64 KiB for a burst, zero-filling all of it before every
/// small read would cost more than the read. Twice the last read keeps up with a growing burst.
fn read_some<S: Read>(stream: &mut S, buf: &mut BytesMut, limit: usize) -> io::Result<usize> {
    let start = buf.len();
    let room = (buf.capacity() - start).min(limit).max(1024);
    buf.resize(start + room, 0);
    let result = stream.read(&mut buf[start..]);
    buf.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}
