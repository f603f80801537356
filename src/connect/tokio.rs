//! Opening an async client transport: TCP (bounded by the handshake timeout), then TLS for
//! `wss://`.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::ConnectOptions;
use crate::conn::Timeout;
use crate::driver::Error;
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

/// Opens the transport for `request`: TCP, then TLS for `wss://`, within the handshake
/// timeout.
pub(crate) async fn open(
    request: &ClientRequest,
    options: &ConnectOptions,
) -> Result<MaybeTlsStream, Error> {
    let connecting = TcpStream::connect((request.host(), request.port()));
    let tcp = match options.timeouts().handshake_timeout() {
        Some(t) => tokio::time::timeout(t, connecting)
            .await
            .map_err(|_| Error::Timeout(Timeout::Handshake))??,
        None => connecting.await?,
    };
    tcp.set_nodelay(true)?;
    if !request.is_tls() {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    #[cfg(feature = "tokio-tls")]
    {
        let connector = tokio_rustls::TlsConnector::from(super::tls::config(options)?);
        let name = super::tls::server_name(request.host())?;
        Ok(MaybeTlsStream::Tls(Box::new(
            connector.connect(name, tcp).await?,
        )))
    }
    #[cfg(not(feature = "tokio-tls"))]
    Err(Error::Tls(
        "wss:// with the tokio adapter needs the `tokio-tls` feature".into(),
    ))
}
