//! `hybi::tls` (feature `tls-server`): the rustls server configuration from PEM, each bad input
//! with its own error, and an `https://` + `wss://` server built the way the module documents
//! (TLS acceptor → hyper-util's auto builder with extended CONNECT → axum with hybi's
//! extractor), reached over loopback by
//!
//! - hybi's tokio client over `wss://` (HTTP/1.1: with no ALPN, and with ALPN `http/1.1`),
//! - hyper's HTTP/2 client over TLS (ALPN `h2`): a page and two WebSockets (RFC 8441 extended
//!   CONNECT, answered 200) on one connection, with and without permessage-deflate;
//!
//! and the server reports which HTTP version each WebSocket arrived over. An HTTP/1.1-only
//! configuration refuses a client that offers only `h2`.

#[path = "support/servers.rs"]
mod servers;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hybi::axum::WebSocketUpgrade;
use hybi::handshake::HttpVersion;
use hybi::tls::{PemInput, ServerTls, TlsError, ALPN_H2, ALPN_HTTP11};
use hybi::{ClientRequest, CloseCode, Config, ConnectOptions, DeflateConfig, Error, Message};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use servers::client_config;
use tokio::task::JoinSet;

// ------------------------------------------------------------------ certificates

/// A self-signed certificate for `localhost` and 127.0.0.1: (certificate PEM, key PEM, DER).
struct Generated {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
}

fn generate() -> Generated {
    let g =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Generated {
        cert_pem: g.cert.pem(),
        key_pem: g.key_pair.serialize_pem(),
        cert_der: g.cert.der().clone(),
    }
}

/// A file under the system's temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("hybi-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// PEM of one section of `label` around `der`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

// ------------------------------------------------------------------ the configuration

#[test]
fn good_pem_builds_a_config_with_h2_and_http11() {
    let g = generate();
    let tls = ServerTls::from_pem(&g.cert_pem, &g.key_pem).unwrap();
    assert_eq!(tls.cert_chain(), std::slice::from_ref(&g.cert_der));
    assert_eq!(tls.alpn(), [ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]);
    let config = tls.build().unwrap();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    // The key does not show in Debug.
    let debug = format!("{tls:?}");
    assert!(
        debug.contains("certificates: 1") && debug.contains("\"h2\""),
        "{debug}"
    );
    assert!(!debug.contains(&g.key_pem[40..60]), "{debug}");

    // ALPN is configurable, and can be turned off.
    let http1 = tls.clone().with_alpn([ALPN_HTTP11]).build().unwrap();
    assert_eq!(http1.alpn_protocols, [b"http/1.1".to_vec()]);
    let none = tls.with_alpn(Vec::<&[u8]>::new()).build().unwrap();
    assert!(none.alpn_protocols.is_empty());
}

#[test]
fn good_pem_files_separate_or_combined() {
    let g = generate();
    let cert = TempFile::new("cert.pem", &g.cert_pem);
    let key = TempFile::new("key.pem", &g.key_pem);
    ServerTls::from_pem_files(&cert.0, &key.0)
        .unwrap()
        .build()
        .unwrap();
    // One file holding the chain and the key, given as both.
    let both = TempFile::new("both.pem", &format!("{}{}", g.key_pem, g.cert_pem));
    let tls = ServerTls::from_pem_files(&both.0, &both.0).unwrap();
    assert_eq!(tls.cert_chain().len(), 1);
    tls.acceptor().unwrap();
    // A chain: every CERTIFICATE section, in order (the server's certificate first).
    let other = generate();
    let chain = format!("{}{}", g.cert_pem, other.cert_pem);
    let tls = ServerTls::from_pem(&chain, &g.key_pem).unwrap();
    assert_eq!(tls.cert_chain(), [g.cert_der.clone(), other.cert_der]);
    tls.build().unwrap();
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let g = generate();
    let key = TempFile::new("key-only.pem", &g.key_pem);
    let missing = std::env::temp_dir().join("hybi-tls-no-such-file.pem");
    match ServerTls::from_pem_files(&missing, &key.0) {
        Err(TlsError::Read { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    let e = ServerTls::from_pem_files(&key.0, &missing).unwrap_err();
    assert!(e.to_string().contains("hybi-tls-no-such-file.pem"), "{e}");
}

#[test]
fn no_certificate_in_the_certificate_input() {
    let g = generate();
    // The key where the certificate should be (swapped arguments), an empty file, junk text.
    for cert in [g.key_pem.as_str(), "", "not PEM at all\n"] {
        match ServerTls::from_pem(cert, &g.key_pem) {
            Err(TlsError::NoCertificate) => {}
            other => panic!("{cert:?}: {other:?}"),
        }
    }
    assert!(matches!(
        ServerTls::from_der(Vec::new(), PrivateKeyDer::from_pem_slice_key(&g.key_pem)),
        Err(TlsError::NoCertificate)
    ));
}

/// `PrivateKeyDer` from PEM, for the DER constructor.
trait FromPemKey {
    fn from_pem_slice_key(pem: &str) -> PrivateKeyDer<'static>;
}

impl FromPemKey for PrivateKeyDer<'static> {
    fn from_pem_slice_key(pem: &str) -> PrivateKeyDer<'static> {
        use rustls::pki_types::pem::PemObject;
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
    }
}

#[test]
fn no_private_key_in_the_key_input() {
    let g = generate();
    let encrypted = pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
    for key in [g.cert_pem.as_str(), "", encrypted.as_str()] {
        match ServerTls::from_pem(&g.cert_pem, key) {
            Err(e @ TlsError::NoPrivateKey) => {
                assert!(e.to_string().contains("no private key"), "{e}")
            }
            other => panic!("{key:?}: {other:?}"),
        }
    }
}

#[test]
fn several_private_keys_are_refused() {
    let g = generate();
    let other = generate();
    let keys = format!("{}{}", g.key_pem, other.key_pem);
    assert!(matches!(
        ServerTls::from_pem(&g.cert_pem, &keys),
        Err(TlsError::SeveralPrivateKeys(2))
    ));
}

#[test]
fn malformed_pem_says_which_input() {
    let g = generate();
    let bad_base64 =
        "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n";
    let no_end = g.cert_pem.replace("-----END CERTIFICATE-----", "");
    for cert in [bad_base64, no_end.as_str()] {
        match ServerTls::from_pem(cert, &g.key_pem) {
            Err(TlsError::Pem { input, .. }) => assert_eq!(input, PemInput::Certificate),
            other => panic!("{cert:?}: {other:?}"),
        }
    }
    let bad_key = g.key_pem.replace("-----END PRIVATE KEY-----", "");
    match ServerTls::from_pem(&g.cert_pem, &bad_key) {
        Err(
            e @ TlsError::Pem {
                input: PemInput::Key,
                ..
            },
        ) => {
            assert!(e.to_string().contains("private key"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unusable_key_is_invalid_key() {
    let g = generate();
    // A well-formed PEM section whose DER is no key the provider knows.
    let junk = pem("PRIVATE KEY", b"\x30\x05\x02\x01\x00\x05\x00 not a key");
    let tls = ServerTls::from_pem(&g.cert_pem, &junk).unwrap();
    assert!(
        matches!(tls.build(), Err(TlsError::InvalidKey(_))),
        "{:?}",
        tls.build()
    );
    let tls = ServerTls::from_der(
        vec![g.cert_der],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(vec![1u8, 2, 3])),
    )
    .unwrap();
    assert!(matches!(tls.acceptor(), Err(TlsError::InvalidKey(_))));
}

#[test]
fn key_of_another_certificate_is_a_mismatch() {
    let g = generate();
    let other = generate();
    let tls = ServerTls::from_pem(&g.cert_pem, &other.key_pem).unwrap();
    match tls.build() {
        Err(e @ TlsError::KeyMismatch) => assert!(e.to_string().contains("does not match"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unparsable_certificate_is_invalid_certificate() {
    let g = generate();
    let junk = pem("CERTIFICATE", b"\x30\x03\x02\x01\x05 not a certificate");
    let tls = ServerTls::from_pem(&junk, &g.key_pem).unwrap();
    assert!(
        matches!(tls.build(), Err(TlsError::InvalidCertificate(_))),
        "{:?}",
        tls.build()
    );
}

// ------------------------------------------------------------------ the server

/// What each test did so far: a timeout reports it.
#[derive(Clone, Default)]
struct Steps(Arc<Mutex<Vec<String>>>);

impl Steps {
    fn done(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }
}

/// Runs `f`, failing after `secs` with the steps it got through.
async fn within<F: Future>(secs: u64, steps: &Steps, f: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(out) => out,
        Err(_) => panic!(
            "timed out after {secs} s; steps done: {:?}",
            steps.0.lock().unwrap()
        ),
    }
}

/// The HTTP version a WebSocket arrived over, as the server saw it.
fn version_name(v: HttpVersion) -> &'static str {
    match v {
        HttpVersion::Http2 => "HTTP/2",
        _ => "HTTP/1.1",
    }
}

/// The WebSocket at `/ws`: first says which HTTP version it arrived over, then echoes.
async fn ws_handler(ws: WebSocketUpgrade) -> Response {
    let over = version_name(ws.request().version());
    ws.with_config(Config::default().with_deflate(DeflateConfig::default()))
        .on_upgrade(move |mut ws| async move {
            if ws.send_message(over).await.is_err() {
                return;
            }
            while let Ok(m) = ws.recv().await {
                if ws.send_message(m).await.is_err() {
                    break;
                }
            }
        })
}

/// The HTTPS server of the module docs, on 127.0.0.1 port 0; its tasks end when it drops.
struct Https {
    addr: SocketAddr,
    _tasks: JoinSet<()>,
}

impl Https {
    async fn start(tls: &ServerTls) -> Self {
        let acceptor = tls.acceptor().unwrap();
        let app = Router::new()
            .route("/", get(|| async { "hello over TLS\n".into_response() }))
            .route("/ws", any(ws_handler));
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        http.http2().enable_connect_protocol();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app, http) = (acceptor.clone(), app.clone(), http.clone());
                connections.spawn(async move {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let service = TowerToHyperService::new(app);
                    let _ = http
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            _tasks: tasks,
        }
    }
}

/// A round trip of text and a 100 KB binary message, then a close the server answers.
async fn echo_and_close<S>(ws: &mut hybi::tokio::WebSocketStream<S>, steps: &Steps, who: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for m in [
        Message::text(format!("hello from {who}")),
        Message::binary(
            (0..100_000u32)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>(),
        ),
    ] {
        ws.send_message(m.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), m);
    }
    steps.done(format!("{who}: echoed"));
    ws.connection_mut().close(CloseCode::NORMAL, "bye").unwrap();
    match ws.recv().await {
        Ok(m) => panic!("{who}: unexpected {m:?} after the close"),
        Err(Error::Closed(o)) => assert!(o.clean, "{who}: {o:?}"),
        // hyper's HTTP/2 client (not hybi's) may report the stream's end (RST_STREAM
        // NO_ERROR after the server's close frame) as an I/O error: see tests/axum.rs.
        Err(Error::Io(e)) if format!("{e:?}").contains("NO_ERROR") => {}
        Err(e) => panic!("{who}: {e}"),
    }
    steps.done(format!("{who}: closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybi_client_over_wss_is_http11() {
    let g = generate();
    let server = Https::start(&ServerTls::from_pem(&g.cert_pem, &g.key_pem).unwrap()).await;
    let steps = Steps::default();
    within(20, &steps, async {
        // hybi's client offers no ALPN by default; one configured with `http/1.1` gets it.
        for (name, alpn) in [("no ALPN", &[][..]), ("ALPN http/1.1", &[ALPN_HTTP11][..])] {
            let options = ConnectOptions::default()
                .with_tls_config(client_config(&g.cert_der, alpn))
                .with_config(Config::default().with_deflate(DeflateConfig::default()));
            let url = format!("wss://localhost:{}/ws", server.addr.port());
            let (mut ws, response) =
                hybi::tokio::connect_with(ClientRequest::new(&url).unwrap(), options)
                    .await
                    .unwrap();
            assert_eq!(response.status(), 101, "{name}");
            assert!(
                response.header("sec-websocket-extensions").is_some(),
                "{name}: deflate negotiated"
            );
            let hybi::tokio::MaybeTlsStream::Tls(tls) = ws.get_ref() else {
                panic!("{name}: not TLS")
            };
            let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            assert_eq!(negotiated, alpn.first().map(|p| p.to_vec()), "{name}");
            steps.done(format!("{name}: connected"));
            assert_eq!(
                ws.recv().await.unwrap(),
                Message::text("HTTP/1.1"),
                "{name}"
            );
            echo_and_close(&mut ws, &steps, name).await;
        }
    })
    .await;
}

/// An HTTP/2 connection over TLS with ALPN `h2` (hyper's client).
async fn h2_connect(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(cert, &[ALPN_H2, ALPN_HTTP11]));
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_H2));
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_h2_client_extended_connect_over_tls() {
    let g = generate();
    let server = Https::start(&ServerTls::from_pem(&g.cert_pem, &g.key_pem).unwrap()).await;
    let steps = Steps::default();
    within(20, &steps, async {
        let mut sender = h2_connect(server.addr, &g.cert_der).await;
        let base = format!("https://localhost:{}", server.addr.port());
        // The page, over HTTP/2 on the same port.
        let page = sender
            .send_request(
                http::Request::get(format!("{base}/"))
                    .body(Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(page.version(), http::Version::HTTP_2);
        assert_eq!(page.status(), 200);
        let body = page.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello over TLS\n");
        steps.done("page over h2");

        // Two WebSockets on this one connection, without and with permessage-deflate: the
        // requests and the checks of the answers are hybi's sans-IO client handshake.
        let mut sockets = Vec::new();
        for deflate in [false, true] {
            let config = if deflate {
                Config::default().with_deflate(DeflateConfig::default())
            } else {
                Config::default()
            };
            let handshake = hybi::ClientHandshake::new(
                ClientRequest::new(&format!("wss://localhost:{}/ws", server.addr.port())).unwrap(),
                config,
                HttpVersion::Http2,
            );
            assert_eq!(handshake.method(), "CONNECT");
            let mut connect = http::Request::builder()
                .method(http::Method::CONNECT)
                .uri(format!("{base}/ws"));
            for (name, value) in handshake.headers() {
                assert_ne!(name, "sec-websocket-key");
                connect = connect.header(name, value);
            }
            let mut connect = connect.body(Empty::new()).unwrap();
            connect
                .extensions_mut()
                .insert(hyper::ext::Protocol::from_static("websocket"));
            let response = sender.send_request(connect).await.unwrap();
            assert_eq!(response.status(), 200, "deflate {deflate}");
            assert!(response.headers().get("sec-websocket-accept").is_none());
            let fields: Vec<(&str, &[u8])> = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect();
            let (conn, answer) = handshake
                .finish(response.status().as_u16(), fields)
                .unwrap();
            assert_eq!(
                answer.extensions().len(),
                usize::from(deflate),
                "deflate {deflate}: {:?}",
                answer.extensions()
            );
            let upgraded = hyper::upgrade::on(response).await.unwrap();
            let ws = hybi::tokio::WebSocketStream::new(
                TokioIo::new(upgraded),
                conn,
                hybi::Timeouts::default(),
            );
            sockets.push((deflate, ws));
            steps.done(format!("CONNECT deflate={deflate}: 200"));
        }
        for (deflate, ws) in &mut sockets {
            assert_eq!(ws.recv().await.unwrap(), Message::text("HTTP/2"));
            let who = format!("h2 stream deflate={deflate}");
            echo_and_close(ws, &steps, &who).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_only_alpn_refuses_an_h2_only_client() {
    let g = generate();
    let tls = ServerTls::from_pem(&g.cert_pem, &g.key_pem)
        .unwrap()
        .with_alpn([ALPN_HTTP11]);
    let server = Https::start(&tls).await;
    let steps = Steps::default();
    within(20, &steps, async {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(client_config(&g.cert_der, &[ALPN_H2]));
        let refused = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await;
        let Err(e) = refused else {
            panic!("an h2-only client must be refused")
        };
        assert!(format!("{e:?}").contains("NoApplicationProtocol"), "{e:?}");
        steps.done("h2-only refused");
        // A client that offers both gets HTTP/1.1.
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let connector =
            tokio_rustls::TlsConnector::from(client_config(&g.cert_der, &[ALPN_H2, ALPN_HTTP11]));
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_HTTP11));
    })
    .await;
}
