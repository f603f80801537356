//! Local servers for the client tests: hybi echo servers over `ws://` and `wss://` (a
//! self-signed certificate for `localhost`, trusted through `ConnectOptions::with_tls_config`),
//! a tiny HTTP server that answers every request with what a closure says (redirects), and
//! [`client_config`], a rustls client configuration that trusts one certificate.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hybi::blocking::{self, Transport};
use hybi::{Accept, Config, Timeouts};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server certificate for `localhost` and a client configuration that trusts it.
pub struct Certs {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
}

pub fn certs() -> Certs {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = CertificateDer::from(key.cert.der().to_vec());
    let private = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], private)
        .unwrap();
    Certs {
        server: Arc::new(server),
        client: client_config(&cert, &[]),
    }
}

/// A client configuration (ring) that trusts only `cert` and offers `alpn`.
pub fn client_config(cert: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A server-side stream: plain TCP or rustls over TCP.
pub enum ServerStream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl ServerStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }
}

impl Read for ServerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ServerStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

impl Transport for ServerStream {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()> {
        self.tcp().set_read_timeout(t)
    }
    fn set_write_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()> {
        self.tcp().set_write_timeout(t)
    }
    fn shutdown_write(&mut self) -> std::io::Result<()> {
        if let Self::Tls(s) = self {
            s.conn.send_close_notify();
            s.flush()?;
        }
        self.tcp().shutdown(std::net::Shutdown::Write)
    }
}

/// What an echo server saw of each opening handshake: the path and the request's header
/// fields (lowercase names).
pub type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A hybi echo server on `bind` (e.g. `127.0.0.1:0` or `[::1]:0`), TLS when `tls` is given;
/// one thread per connection, for the life of the test process. Accepts the subprotocol
/// `chat` when offered.
pub fn echo_server(bind: &str, tls: Option<Arc<rustls::ServerConfig>>) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let tls = tls.clone();
            let record = record.clone();
            thread::spawn(move || {
                let stream = match tls {
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        ServerStream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
                    }
                    None => ServerStream::Plain(tcp),
                };
                let config = Config::default().with_protocols(["chat"]);
                let timeouts =
                    Timeouts::default().with_handshake_timeout(Some(Duration::from_secs(5)));
                let ws = blocking::accept_with(stream, config, timeouts, |request| {
                    let headers = request
                        .headers()
                        .map(|(n, v)| {
                            (
                                n.to_ascii_lowercase(),
                                String::from_utf8_lossy(v).into_owned(),
                            )
                        })
                        .collect();
                    record
                        .lock()
                        .unwrap()
                        .push((request.uri().to_owned(), headers));
                    Ok(Accept::new())
                });
                let Ok(mut ws) = ws else { return };
                while let Ok(message) = ws.recv() {
                    if ws.send_message(message).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A `ws://` echo server on 127.0.0.1.
pub fn ws_echo() -> SocketAddr {
    echo_server("127.0.0.1:0", None).0
}

/// A `wss://` echo server on 127.0.0.1 (reach it as `localhost`), and the client TLS
/// configuration that trusts it.
pub fn wss_echo() -> (SocketAddr, Arc<rustls::ClientConfig>) {
    let certs = certs();
    (
        echo_server("127.0.0.1:0", Some(certs.server)).0,
        certs.client,
    )
}

/// Reads an HTTP request head (up to 16 KiB); `None` when the peer closed first.
pub fn read_head(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// An HTTP server on 127.0.0.1 (TLS when `tls` is given) that answers each request with the
/// raw response `answer(path)` and closes. Counts the requests.
pub fn http_server<F>(
    tls: Option<Arc<rustls::ServerConfig>>,
    answer: F,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>)
where
    F: Fn(&str) -> String + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let paths: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = paths.clone();
    let answer = Arc::new(answer);
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let (tls, record, answer) = (tls.clone(), record.clone(), answer.clone());
            thread::spawn(move || {
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut stream = match tls {
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        ServerStream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
                    }
                    None => ServerStream::Plain(tcp),
                };
                let Some(head) = read_head(&mut stream) else {
                    return;
                };
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                record.lock().unwrap().push(path.clone());
                let _ = stream.write_all(answer(&path).as_bytes());
                let _ = stream.flush();
                let _ = Transport::shutdown_write(&mut stream);
            });
        }
    });
    (addr, paths)
}
