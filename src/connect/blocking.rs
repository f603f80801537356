//! Opening a blocking client transport: TCP to the first address that answers, then TLS for
//! `wss://`.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::ConnectOptions;
use crate::driver::Error;
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

/// Opens the transport for `request`: TCP (bounded by the handshake timeout), then TLS for
/// `wss://`.
pub(crate) fn open(
    request: &ClientRequest,
    options: &ConnectOptions,
) -> Result<MaybeTlsStream, Error> {
    let tcp = tcp_connect(
        request.host(),
        request.port(),
        options.timeouts().handshake_timeout(),
    )?;
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

/// Connects to the first address of `host` that answers, within `timeout` each.
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
