//! HTTP/2 (RFC 8441) peers for the tests: a raw client on the `h2` crate that opens extended
//! CONNECT streams (and bad ones) on one connection, an `AsyncRead + AsyncWrite` over one such
//! stream (for a hybi client, or raw frame bytes), and a hybi server behind hyper-util's auto
//! builder (HTTP/1.1 and HTTP/2 prior knowledge on one port).
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::client::SendRequest;
use h2::{Reason, RecvStream, SendStream};
use http_body_util::Full;
use hybi::hyper::WebSocket;
use hybi::{Accept, Config, Timeouts};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

// ------------------------------------------------------------------ the raw client

/// A raw HTTP/2 client connection: the request handle and the task that drives the
/// connection (abort it to drop the TCP connection and every stream on it).
pub struct Client {
    pub send: SendRequest<Bytes>,
    pub conn: tokio::task::JoinHandle<()>,
}

/// Windows a client announces: per stream, and for the whole connection.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub stream: u32,
    pub connection: u32,
}

impl Default for Windows {
    /// What browsers do, roughly: a large connection window, so that one stream that does not
    /// read cannot stall the others (Chrome announces 6 MiB per stream and 15 MiB in all).
    fn default() -> Self {
        Self {
            stream: 1 << 20,
            connection: 16 << 20,
        }
    }
}

/// Connects with HTTP/2 prior knowledge (h2c) and spawns the connection's task.
pub async fn client(addr: SocketAddr, windows: Windows) -> Client {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(windows.stream)
        .initial_connection_window_size(windows.connection)
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("HTTP/2 handshake");
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    Client { send, conn }
}

/// A request to `addr` with `method`, `path`, HTTP/2's `:protocol` when given, and `headers`.
/// A `CONNECT` without `:protocol` is the classic one: `:authority` only, no path.
pub fn request(
    method: http::Method,
    addr: SocketAddr,
    path: &str,
    protocol: Option<&str>,
    headers: &[(&str, &str)],
) -> http::Request<()> {
    let uri = if method == http::Method::CONNECT && protocol.is_none() {
        addr.to_string()
    } else {
        format!("http://{addr}{path}")
    };
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(()).unwrap();
    if let Some(p) = protocol {
        request.extensions_mut().insert(h2::ext::Protocol::from(p));
    }
    request
}

/// An extended CONNECT for a WebSocket on `path` (`:protocol websocket`, version 13) with
/// `headers` added.
pub fn websocket_request(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Request<()> {
    let mut all = vec![("sec-websocket-version", "13")];
    all.extend_from_slice(headers);
    request(http::Method::CONNECT, addr, path, Some("websocket"), &all)
}

/// Sends `request` on a new stream (its body left open) and waits for the response head.
pub async fn open(
    send: &SendRequest<Bytes>,
    request: http::Request<()>,
) -> Result<(http::Response<RecvStream>, SendStream<Bytes>), h2::Error> {
    let mut send = send.clone().ready().await?;
    let (response, stream) = send.send_request(request, false)?;
    Ok((response.await?, stream))
}

/// Opens a WebSocket stream on `path` and checks the 200; returns the stream as I/O.
pub async fn open_websocket(send: &SendRequest<Bytes>, addr: SocketAddr, path: &str) -> H2Io {
    let (response, stream) = open(send, websocket_request(addr, path, &[]))
        .await
        .expect("extended CONNECT");
    assert_eq!(response.status(), 200, "{response:?}");
    H2Io::new(stream, response.into_body())
}

/// A hybi client WebSocket over an HTTP/2 stream (the handshake was the CONNECT's 200).
pub fn client_websocket(io: H2Io, timeouts: Timeouts) -> hybi::tokio::WebSocketStream<H2Io> {
    let conn = hybi::Connection::open(hybi::Role::Client, Config::default());
    hybi::tokio::WebSocketStream::new(io, conn, timeouts)
}

/// Reads a response body to its end (an error ends it too); returns the bytes.
pub async fn body_text(mut body: RecvStream) -> String {
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ------------------------------------------------------------------ one stream as I/O

/// One HTTP/2 stream as a byte stream: DATA frames in, DATA frames out (within the peer's
/// flow-control window), END_STREAM on shutdown. Received bytes give window back as they are
/// read, so a reader that stops reading keeps the window closed.
pub struct H2Io {
    pub send: SendStream<Bytes>,
    pub recv: RecvStream,
    buf: Bytes,
    shut: bool,
}

impl H2Io {
    pub fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Self {
            send,
            recv,
            buf: Bytes::new(),
            shut: false,
        }
    }

    /// The stream's two halves (nothing was read through `self` yet).
    pub fn into_parts(self) -> (SendStream<Bytes>, RecvStream) {
        (self.send, self.recv)
    }

    /// Resets the stream (RST_STREAM with `reason`): the abrupt end of this one WebSocket.
    pub fn reset(&mut self, reason: Reason) {
        self.send.send_reset(reason);
    }
}

fn h2_io_error(e: h2::Error) -> io::Error {
    let kind = if e.is_reset() || e.is_go_away() {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e)
}

impl AsyncRead for H2Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.buf.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(data)) => self.buf = data,
                Some(Err(e)) => return Poll::Ready(Err(h2_io_error(e))),
            }
        }
        let n = self.buf.len().min(out.remaining());
        out.put_slice(&self.buf[..n]);
        self.buf.advance(n);
        let _ = self.recv.flow_control().release_capacity(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.send.reserve_capacity(buf.len());
        loop {
            let n = self.send.capacity().min(buf.len());
            if n > 0 {
                self.send
                    .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                    .map_err(h2_io_error)?;
                return Poll::Ready(Ok(n));
            }
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(h2_io_error(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut {
            self.shut = true;
            self.send
                .send_data(Bytes::new(), true)
                .map_err(h2_io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

// ------------------------------------------------------------------ a hybi server

/// What a server's WebSocket does: gets the WebSocket and the request's path.
pub type Handler =
    Arc<dyn Fn(WebSocket, String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// How the server is built.
#[derive(Clone)]
pub struct ServerOptions {
    /// `http2().enable_connect_protocol()`: advertise SETTINGS_ENABLE_CONNECT_PROTOCOL.
    pub connect_protocol: bool,
    /// `http2().max_concurrent_streams(..)`.
    pub max_streams: u32,
    /// `http2().initial_stream_window_size(..)` and `initial_connection_window_size(..)`:
    /// what the server lets each stream, and the whole connection, send it unread (`None`:
    /// hyper's defaults, 1 MiB each).
    pub windows: Option<Windows>,
    pub config: Config,
    pub timeouts: Timeouts,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            connect_protocol: true,
            max_streams: 1000,
            windows: None,
            config: Config::default(),
            timeouts: Timeouts::default().with_ping_interval(None),
        }
    }
}

/// A hyper-util auto server (HTTP/1.1 and h2c) on 127.0.0.1 that answers every upgrade with
/// `hybi::hyper::upgrade` and runs `handler` on its WebSocket, on its own thread and runtime
/// until dropped. Refusals are the core's (`Rejection::response`).
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    pub fn start(options: ServerOptions, handler: Handler) -> Self {
        let (addr, stop) = super::tokio_server::spawn(|listener, mut stopped| async move {
            loop {
                let tcp = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => return,
                };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve_connection(tcp, options.clone(), handler.clone()));
            }
        });
        Self {
            addr,
            stop: Some(stop),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves one TCP connection with hyper-util's auto builder.
pub async fn serve_connection(
    tcp: tokio::net::TcpStream,
    options: ServerOptions,
    handler: Handler,
) {
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder.http2().max_concurrent_streams(options.max_streams);
    if options.connect_protocol {
        builder.http2().enable_connect_protocol();
    }
    if let Some(w) = options.windows {
        builder
            .http2()
            .initial_stream_window_size(w.stream)
            .initial_connection_window_size(w.connection);
    }
    let (config, timeouts) = (options.config, options.timeouts);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        let (config, timeouts, handler) = (config.clone(), timeouts.clone(), handler.clone());
        async move {
            let path = request.uri().path().to_string();
            let response: hyper::Response<Full<Bytes>> =
                match hybi::hyper::Upgrade::new(&mut request) {
                    Ok(upgrade) => {
                        let (response, upgrading) = upgrade.answer(Accept::new(), config, timeouts);
                        tokio::spawn(async move {
                            if let Ok(ws) = upgrading.await {
                                handler(ws, path).await;
                            }
                        });
                        response
                    }
                    Err(rejection) => rejection.response(),
                };
            Ok::<_, Infallible>(response)
        }
    });
    let _ = builder
        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tcp), service)
        .await;
}

/// The reset reason of an h2 error, if it is a reset.
pub fn reset_reason(e: &h2::Error) -> Option<Reason> {
    e.reason()
}

/// Writes `bytes` on `stream` whole, or in pieces of `chop` bytes with a short pause between,
/// each within the peer's window. Stops at the first error (the peer may have reset the
/// stream); returns the number of bytes written.
pub async fn send_chopped(
    stream: &mut SendStream<Bytes>,
    bytes: &[u8],
    chop: Option<usize>,
) -> usize {
    send_counting(stream, bytes, chop, &std::sync::atomic::AtomicUsize::new(0)).await
}

/// [`send_chopped`], counting the bytes handed to h2 so far in `progress`.
pub async fn send_counting(
    stream: &mut SendStream<Bytes>,
    bytes: &[u8],
    chop: Option<usize>,
    progress: &std::sync::atomic::AtomicUsize,
) -> usize {
    let size = chop.unwrap_or(bytes.len()).max(1);
    let mut done = 0;
    for piece in bytes.chunks(size) {
        let mut rest = piece;
        while !rest.is_empty() {
            stream.reserve_capacity(rest.len());
            let mut n = stream.capacity();
            while n == 0 {
                match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                    Some(Ok(_)) => n = stream.capacity(),
                    _ => return done,
                }
            }
            let n = n.min(rest.len());
            if stream
                .send_data(Bytes::copy_from_slice(&rest[..n]), false)
                .is_err()
            {
                return done;
            }
            rest = &rest[n..];
            done += n;
            progress.store(done, std::sync::atomic::Ordering::SeqCst);
        }
        if chop.is_some() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    done
}
