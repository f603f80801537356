//! Opening an async client transport: TCP to the first address that answers (directly, or to
//! the proxy and through its tunnel), then TLS for `wss://`, all before the deadline. Only
//! moves bytes: the rules are in the sans-IO modules next to this one.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tunnel::{Step, Target, Tunnel};
use super::{
    proxy_io_error, Attempts, ConnectOptions, Deadline, ProxyScheme, ProxyUrl, SocksAddresses,
    TcpFailure,
};
use crate::conn::Timeout;
use crate::driver::Error;
use crate::driver::{ConnectError, ProxyErrorKind};
use crate::handshake::ClientRequest;

/// A plain TCP stream or a TLS stream over TCP, as `tokio::connect` returns it.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`
    #[cfg(feature = "tokio-tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            MaybeTlsStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            #[cfg(feature = "tokio-tls")]
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
            #[cfg(feature = "tokio-tls")]
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

/// The adapter's clock (tokio's, so that paused time in tests applies).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs `future` until `deadline`; `None` when it passed first.
async fn until<F: Future>(deadline: Deadline, future: F) -> Option<F::Output> {
    match deadline.at() {
        Some(at) => tokio::time::timeout_at(at.into(), future).await.ok(),
        None => Some(future.await),
    }
}

/// Opens the transport for `request`: TCP (directly or through the proxy's tunnel), then TLS
/// for `wss://`, before `deadline`.
pub(crate) async fn open(
    request: &ClientRequest,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<MaybeTlsStream, Error> {
    let tcp = match options.proxy().for_request(request)? {
        None => tcp_connect(request.host(), request.port(), options, deadline)
            .await
            .map_err(TcpFailure::direct)?,
        Some(proxy) => through(&proxy, request, options, deadline).await?,
    };
    tcp.set_nodelay(true)?;
    if !request.is_tls() {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    #[cfg(feature = "tokio-tls")]
    {
        let connector = tokio_rustls::TlsConnector::from(super::tls::config(options)?);
        let name = super::tls::server_name(request.host())?;
        let tls = until(deadline, connector.connect(name, tcp))
            .await
            .ok_or(Error::Timeout(Timeout::Handshake))??;
        Ok(MaybeTlsStream::Tls(Box::new(tls)))
    }
    #[cfg(not(feature = "tokio-tls"))]
    Err(Error::Tls(
        "wss:// with the tokio adapter needs the `tokio-tls` feature".into(),
    ))
}

/// A TCP connection to the target through `proxy`. For `socks5://` the target's name is
/// resolved here and its addresses tried in turn while the proxy answers that one cannot be
/// reached.
async fn through(
    proxy: &ProxyUrl,
    request: &ClientRequest,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<TcpStream, Error> {
    let (host, port) = (request.host(), request.port());
    if proxy.scheme() != ProxyScheme::Socks5 {
        return tunnel(proxy, Target::Name(host, port), options, deadline)
            .await
            .map_err(|kind| proxy.error(kind).into());
    }
    let addrs = until(deadline, tokio::net::lookup_host((host, port)))
        .await
        .ok_or(Error::Timeout(Timeout::Handshake))?
        .map_err(|e| ConnectError::resolve(host, port, e))?;
    let mut tries = SocksAddresses::new(proxy, request);
    for addr in addrs {
        match tunnel(proxy, Target::Addr(addr), options, deadline).await {
            Ok(tcp) => return Ok(tcp),
            Err(kind) => tries.failed(kind)?,
        }
    }
    Err(tries.exhausted())
}

/// Connects to `proxy` and opens a tunnel to `target` through it, within `deadline`.
async fn tunnel(
    proxy: &ProxyUrl,
    target: Target<'_>,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<TcpStream, ProxyErrorKind> {
    let mut tcp = tcp_connect(proxy.host(), proxy.port(), options, deadline)
        .await
        .map_err(TcpFailure::via_proxy)?;
    let mut tunnel = Tunnel::new(proxy, target, options.config().max_header_bytes())?;
    let exchange = async {
        let mut buf = [0u8; 512];
        loop {
            match tunnel.step() {
                Step::Done => return Ok(()),
                Step::Send(bytes) => tcp.write_all(&bytes).await.map_err(proxy_io_error)?,
                Step::Receive(max) => {
                    let n = tcp
                        .read(&mut buf[..max.min(512)])
                        .await
                        .map_err(proxy_io_error)?;
                    if n == 0 {
                        return Err(ProxyErrorKind::Closed);
                    }
                    tunnel.receive(&buf[..n])?;
                }
            }
        }
    };
    until(deadline, exchange)
        .await
        .ok_or(ProxyErrorKind::TimedOut)??;
    Ok(tcp)
}

/// Connects to the addresses of `host` in turn until one answers, each within the connect
/// timeout and all before `deadline`.
async fn tcp_connect(
    host: &str,
    port: u16,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<TcpStream, TcpFailure> {
    let addrs = until(deadline, tokio::net::lookup_host((host, port)))
        .await
        .ok_or(TcpFailure::Deadline)?
        .map_err(|e| TcpFailure::Connect(ConnectError::resolve(host, port, e)))?;
    connect_any(host, port, addrs, options, deadline).await
}

/// Connects to `addrs` in turn until one answers, keeping every error.
async fn connect_any(
    host: &str,
    port: u16,
    addrs: impl Iterator<Item = SocketAddr>,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<TcpStream, TcpFailure> {
    let mut tries = Attempts::new(host, port, deadline);
    for addr in addrs {
        let connecting = TcpStream::connect(addr);
        let attempt = match tries.limit(options, now())? {
            Some(t) => tokio::time::timeout(t, connecting)
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
                }),
            None => connecting.await,
        };
        match attempt {
            Ok(s) => return Ok(s),
            Err(e) => tries.failed(addr, e),
        }
    }
    Err(tries.exhausted(now()))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn every_address_is_tried_in_turn() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let v4 = SocketAddr::from(([127, 0, 0, 1], port));
        // ::1 first, where nothing listens on that port (or IPv6 is off): then 127.0.0.1.
        let addrs = [SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)), v4];
        let options = ConnectOptions::default();
        let deadline = Deadline::start(&options, now());
        let tcp = connect_any("localhost", port, addrs.into_iter(), &options, deadline)
            .await
            .unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), v4);
        drop(listener);
        let Err(TcpFailure::Connect(e)) =
            connect_any("localhost", port, addrs.into_iter(), &options, deadline).await
        else {
            panic!("connected to a closed port");
        };
        let tried: Vec<SocketAddr> = e.attempts().iter().map(|(a, _)| *a).collect();
        assert_eq!(tried, addrs);
    }

    #[tokio::test]
    async fn a_passed_deadline_stops_the_attempts() {
        let zero = crate::Timeouts::default().with_handshake_timeout(Some(Default::default()));
        let options = ConnectOptions::default().with_timeouts(zero);
        let deadline = Deadline::start(&options, now());
        let addrs = [SocketAddr::from(([127, 0, 0, 1], 9))];
        let r = connect_any("h", 9, addrs.into_iter(), &options, deadline).await;
        assert!(matches!(r, Err(TcpFailure::Deadline)), "{r:?}");
    }
}
