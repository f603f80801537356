//! `wss://`: the blocking and tokio clients connect through rustls to a local TLS server that
//! holds a self-signed certificate for `localhost` (trusted through `ConnectOptions::with_tls_config`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use hybi::blocking::{self, Transport};
use hybi::{ClientRequest, CloseCode, ConnectOptions, Error, Message};
#[path = "support/servers.rs"]
mod servers;
use servers::certs;

/// The server side of the test: a rustls stream the blocking adapter can drive.
struct TlsServerStream(rustls::StreamOwned<rustls::ServerConnection, TcpStream>);

impl Read for TlsServerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
impl Write for TlsServerStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
impl Transport for TlsServerStream {
    fn set_read_timeout(&mut self, t: Option<std::time::Duration>) -> std::io::Result<()> {
        self.0.sock.set_read_timeout(t)
    }
    fn set_write_timeout(&mut self, t: Option<std::time::Duration>) -> std::io::Result<()> {
        self.0.sock.set_write_timeout(t)
    }
    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.0.conn.send_close_notify();
        self.0.flush()?;
        self.0.sock.shutdown(std::net::Shutdown::Write)
    }
}

/// A blocking wss echo server for one connection.
fn blocking_tls_echo(config: Arc<rustls::ServerConfig>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = rustls::ServerConnection::new(config).unwrap();
        let stream = TlsServerStream(rustls::StreamOwned::new(tls, tcp));
        let mut ws = blocking::accept(stream).unwrap();
        while let Ok(m) = ws.recv() {
            ws.send_message(m).unwrap();
        }
    });
    (port, handle)
}

#[test]
fn blocking_client_over_wss() {
    let certs = certs();
    let (port, server) = blocking_tls_echo(certs.server.clone());
    let url = format!("wss://localhost:{port}/secure");
    let options = ConnectOptions::default().with_tls_config(certs.client.clone());
    let (mut ws, response) =
        blocking::connect_with(ClientRequest::new(&url).unwrap(), options).unwrap();
    assert_eq!(response.status(), 101);
    assert!(matches!(ws.get_ref(), blocking::MaybeTlsStream::Tls(_)));
    ws.send_message("over TLS").unwrap();
    assert_eq!(ws.recv().unwrap(), Message::text("over TLS"));
    ws.send_message(vec![9u8; 100_000]).unwrap();
    assert_eq!(ws.recv().unwrap().len(), 100_000);
    ws.close_with(CloseCode::NORMAL, "").unwrap();
    assert!(ws.recv().unwrap_err().is_normal_close());
    server.join().unwrap();
}

#[test]
fn untrusted_certificate_is_refused() {
    let certs = certs();
    let (port, _server) = blocking_tls_echo(certs.server.clone());
    // The default roots (web PKI) do not trust a self-signed certificate.
    let r = blocking::connect(&format!("wss://localhost:{port}/"));
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
}

#[tokio::test]
async fn tokio_client_over_wss() {
    let certs = certs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(certs.server.clone());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut ws = hybi::tokio::accept(tls).await.unwrap();
        while let Ok(m) = ws.recv().await {
            ws.send_message(m).await.unwrap();
        }
    });
    let options = ConnectOptions::default().with_tls_config(certs.client.clone());
    let url = format!("wss://localhost:{port}/");
    let (mut ws, _) = hybi::tokio::connect_with(ClientRequest::new(&url).unwrap(), options)
        .await
        .unwrap();
    assert!(matches!(ws.get_ref(), hybi::tokio::MaybeTlsStream::Tls(_)));
    ws.send_message("async TLS").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("async TLS"));
    ws.close_with(CloseCode::NORMAL, "").await.unwrap();
    assert!(ws.recv().await.unwrap_err().is_normal_close());
    server.await.unwrap();
}
