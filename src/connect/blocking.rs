//! Opening a blocking client transport: TCP to the first address that answers (directly, or
//! to the proxy and through its tunnel), then TLS for `wss://`. Only moves bytes: the rules are
//! in the sans-IO modules next to this one.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

use super::tunnel::{Step, Target, Tunnel};
use super::{
    proxy_io_error, Attempts, ConnectOptions, Deadline, ProxyScheme, ProxyUrl, SocksAddresses,
    TcpFailure,
};
use crate::driver::Error;
use crate::driver::{ConnectError, ProxyErrorKind};
use crate::handshake::ClientRequest;

/// A plain TCP stream or a TLS stream over TCP, as `blocking::connect` returns it.
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

    /// Ends the stream's write side: TLS close_notify first, then the TCP FIN.
    pub(crate) fn close_write(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Self::Tls(s) = self {
            s.conn.send_close_notify();
            s.flush()?;
        }
        self.tcp().shutdown(Shutdown::Write)
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

/// Opens the transport for `request`: TCP (directly or through the proxy's tunnel), then TLS
/// for `wss://`, before `deadline`.
pub(crate) fn open(
    request: &ClientRequest,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<MaybeTlsStream, Error> {
    let tcp = match options.proxy().for_request(request)? {
        None => tcp_connect(request.host(), request.port(), options, deadline)
            .map_err(TcpFailure::direct)?,
        Some(proxy) => through(&proxy, request, options, deadline)?,
    };
    tcp.set_nodelay(true)?;
    if !request.is_tls() {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    #[cfg(feature = "tls")]
    {
        let tls = rustls::ClientConnection::new(
            super::tls::config(options)?,
            super::tls::server_name(request.host())?,
        )
        .map_err(|e| Error::Tls(e.to_string()))?;
        Ok(MaybeTlsStream::Tls(Box::new(rustls::StreamOwned::new(
            tls, tcp,
        ))))
    }
    #[cfg(not(feature = "tls"))]
    Err(Error::Tls("wss:// needs the `tls` feature".into()))
}

/// A TCP connection to the target through `proxy`. For `socks5://` the target's name is
/// resolved here and its addresses tried in turn while the proxy answers that one cannot be
/// reached.
fn through(
    proxy: &ProxyUrl,
    request: &ClientRequest,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<TcpStream, Error> {
    let (host, port) = (request.host(), request.port());
    if proxy.scheme() != ProxyScheme::Socks5 {
        return tunnel(proxy, Target::Name(host, port), options, deadline)
            .map_err(|kind| proxy.error(kind).into());
    }
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::resolve(host, port, e))?;
    let mut tries = SocksAddresses::new(proxy, request);
    for addr in addrs {
        match tunnel(proxy, Target::Addr(addr), options, deadline) {
            Ok(tcp) => return Ok(tcp),
            Err(kind) => tries.failed(kind)?,
        }
    }
    Err(tries.exhausted())
}

/// Connects to `proxy` and opens a tunnel to `target` through it, within `deadline`.
fn tunnel(
    proxy: &ProxyUrl,
    target: Target<'_>,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<TcpStream, ProxyErrorKind> {
    let mut tcp = tcp_connect(proxy.host(), proxy.port(), options, deadline)
        .map_err(TcpFailure::via_proxy)?;
    let mut tunnel = Tunnel::new(proxy, target, options.config().max_header_bytes())?;
    let mut buf = [0u8; 512];
    loop {
        let step = tunnel.step();
        if step == Step::Done {
            break;
        }
        let left = deadline
            .remaining(Instant::now())
            .map_err(|_| ProxyErrorKind::TimedOut)?;
        match step {
            Step::Send(bytes) => {
                tcp.set_write_timeout(left).map_err(proxy_io_error)?;
                tcp.write_all(&bytes).map_err(proxy_io_error)?;
            }
            Step::Receive(max) => {
                tcp.set_read_timeout(left).map_err(proxy_io_error)?;
                let n = match tcp.read(&mut buf[..max.min(512)]) {
                    Ok(0) => return Err(ProxyErrorKind::Closed),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(proxy_io_error(e)),
                };
                tunnel.receive(&buf[..n])?;
            }
            Step::Done => {}
        }
    }
    tcp.set_read_timeout(None).map_err(proxy_io_error)?;
    tcp.set_write_timeout(None).map_err(proxy_io_error)?;
    Ok(tcp)
}

/// Connects to the addresses of `host` in turn until one answers, each within the connect
/// timeout and all before `deadline`.
fn tcp_connect(
    host: &str,
    port: u16,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<TcpStream, TcpFailure> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| TcpFailure::Connect(ConnectError::resolve(host, port, e)))?;
    connect_any(host, port, addrs, options, deadline)
}

/// Connects to `addrs` in turn until one answers, keeping every error.
fn connect_any(
    host: &str,
    port: u16,
    addrs: impl Iterator<Item = SocketAddr>,
    options: &ConnectOptions,
    deadline: Deadline,
) -> Result<TcpStream, TcpFailure> {
    let mut tries = Attempts::new(host, port, deadline);
    for addr in addrs {
        let attempt = match tries.limit(options, Instant::now())? {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(s) => return Ok(s),
            Err(e) => tries.failed(addr, e),
        }
    }
    Err(tries.exhausted(Instant::now()))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A port nothing listens on (on either loopback address, as far as a test can tell).
    fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn every_address_is_tried_in_turn() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // ::1 first, where nothing listens on that port (or IPv6 is off): then 127.0.0.1.
        let addrs = vec![
            SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ];
        let options = ConnectOptions::default();
        let deadline = Deadline::start(&options, Instant::now());
        let tcp = connect_any("localhost", port, addrs.into_iter(), &options, deadline).unwrap();
        assert_eq!(
            tcp.peer_addr().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], port))
        );
    }

    #[test]
    fn all_refused_lists_each() {
        let port = closed_port();
        let addrs = vec![
            SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ];
        let options = ConnectOptions::default();
        let deadline = Deadline::start(&options, Instant::now());
        let Err(TcpFailure::Connect(e)) = connect_any(
            "localhost",
            port,
            addrs.clone().into_iter(),
            &options,
            deadline,
        ) else {
            panic!("connected to a closed port");
        };
        let tried: Vec<SocketAddr> = e.attempts().iter().map(|(a, _)| *a).collect();
        assert_eq!(tried, addrs);
        let text = e.to_string();
        assert!(
            text.contains(&format!("[::1]:{port}")) && text.contains(&format!("127.0.0.1:{port}")),
            "{text}"
        );
        let Err(TcpFailure::Connect(e)) =
            connect_any("nowhere", port, std::iter::empty(), &options, deadline)
        else {
            panic!("connected to nothing");
        };
        assert!(e.attempts().is_empty());
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_passed_deadline_stops_the_attempts() {
        let zero = crate::Timeouts::default().with_handshake_timeout(Some(Duration::ZERO));
        let options = ConnectOptions::default().with_timeouts(zero);
        let deadline = Deadline::start(&options, Instant::now());
        let addrs = [SocketAddr::from(([127, 0, 0, 1], closed_port()))];
        let r = connect_any("h", 1, addrs.into_iter(), &options, deadline);
        assert!(matches!(r, Err(TcpFailure::Deadline)), "{r:?}");
    }
}
