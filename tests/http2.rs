//! WebSockets over HTTP/2 (RFC 8441), hybi's client (`hybi::http2`) against hybi's server
//! (`hybi::hyper` under hyper-util's HTTP/1.1 + HTTP/2 server), over loopback TCP:
//!
//! - 16 WebSockets on one HTTP/2 connection at once, both directions busy (1,000 messages
//!   each way per stream, mixed sizes up to 256 KiB, checked in order), without and with
//!   permessage-deflate; the server counts one TCP connection and sees HTTP/2 on each;
//! - subprotocol negotiation, and the typed errors of a bad answer (status not 200, a
//!   subprotocol or an extension that was not offered);
//! - the closing handshake started by either side, the codes seen on both sides, clean;
//! - one WebSocket dropped midway ends abnormally (1006) on the server while the others on
//!   the connection go on;
//! - the fallback to HTTP/1.1 against a server with HTTP/2 but without
//!   `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and against an HTTP/1.1-only server; the typed
//!   errors when fallback is off;
//! - TLS with ALPN `h2` (rcgen's self-signed certificate), and ALPN `http/1.1` only: the
//!   fallback then upgrades on the same connection.

mod interop;
#[path = "support/servers.rs"]
mod servers;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use http_body_util::Full;
use hybi::http2::{Fallback, Http2Connection};
use hybi::{
    ClientRequest, CloseCode, Config, ConnectOptions, DeflateConfig, Error, HandshakeError,
    Http2Error, Initiator, Message, Proxy, Timeouts,
};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use interop::{payload, tokio_echo_loop, ServerEnd, SUBPROTOCOL};

// ------------------------------------------------------------------ the server

/// What the server speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Speaks {
    /// HTTP/1.1 and HTTP/2 with `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
    Rfc8441,
    /// HTTP/1.1 and HTTP/2, without the setting.
    Http2NoConnect,
    /// HTTP/1.1 only.
    Http1Only,
}

/// How one WebSocket ended on the server, and over which HTTP version it arrived.
struct End {
    version: http::Version,
    path: String,
    end: ServerEnd,
}

/// A hybi server behind hyper-util's auto (HTTP/1.1 + HTTP/2) connection builder, on its own
/// thread and runtime until dropped. Paths: `/forbidden` answers 403, `/bogus-protocol` 200
/// with a subprotocol nobody offered, `/bogus-extension` 200 with an extension nobody
/// offered; every other path is the echo server of the interop tests (`close:CODE:REASON`
/// makes it close), choosing the "chat" subprotocol when offered.
struct Server {
    addr: SocketAddr,
    /// TCP connections accepted.
    accepted: Arc<AtomicUsize>,
    ends: mpsc::Receiver<End>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    fn start(speaks: Speaks, config: Config, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (end_tx, ends) = mpsc::channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let tls = tls.map(tokio_rustls::TlsAcceptor::from);
                loop {
                    let tcp = tokio::select! {
                        accepted = listener.accept() => accepted.unwrap().0,
                        _ = &mut stopped => return,
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    tcp.set_nodelay(true).unwrap();
                    let (tls, end_tx, config) = (tls.clone(), end_tx.clone(), config.clone());
                    tokio::spawn(async move {
                        match tls {
                            None => serve(TokioIo::new(tcp), speaks, config, end_tx).await,
                            Some(acceptor) => {
                                let Ok(tls) = acceptor.accept(tcp).await else {
                                    return;
                                };
                                serve(TokioIo::new(tls), speaks, config, end_tx).await;
                            }
                        }
                    });
                }
            });
        });
        Self {
            addr: addr_rx.recv().unwrap(),
            accepted,
            ends,
            stop: Some(stop),
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        match scheme {
            "wss" => format!("wss://localhost:{}{path}", self.addr.port()),
            _ => format!("ws://{}{path}", self.addr),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The next WebSocket that ended on the server.
    fn end(&self) -> End {
        self.ends
            .recv_timeout(Duration::from_secs(20))
            .expect("the server reported no WebSocket end within 20 s")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One connection: hyper-util's auto builder with what the server speaks.
async fn serve<I>(io: I, speaks: Speaks, config: Config, ends: mpsc::Sender<End>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let (config, ends) = (config.clone(), ends.clone());
        async move { Ok::<_, Infallible>(answer(request, config, ends)) }
    });
    if speaks == Speaks::Http1Only {
        // hyper's own HTTP/1.1 server: hyper-util's auto builder reads the HTTP/2 preface
        // even when told `http1_only` (with upgrades).
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
        let _ = connection.with_upgrades().await;
        return;
    }
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if speaks == Speaks::Rfc8441 {
        builder.http2().enable_connect_protocol();
    }
    let _ = builder.serve_connection_with_upgrades(io, service).await;
}

fn answer(
    mut request: http::Request<Incoming>,
    config: Config,
    ends: mpsc::Sender<End>,
) -> http::Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let version = request.version();
    let bogus = |name: &str, value: &str| {
        http::Response::builder()
            .status(if version == http::Version::HTTP_2 {
                200
            } else {
                101
            })
            .header(name, value)
            .body(Full::default())
            .unwrap()
    };
    match path.as_str() {
        "/forbidden" => {
            return http::Response::builder()
                .status(403)
                .body(Full::from("no"))
                .unwrap()
        }
        "/bogus-protocol" => return bogus("sec-websocket-protocol", "bogus"),
        "/bogus-extension" => return bogus("sec-websocket-extensions", "x-bogus"),
        _ => {}
    }
    let config = config.with_protocols([SUBPROTOCOL]);
    match hybi::hyper::upgrade(&mut request, config, Timeouts::default()) {
        Ok((response, upgrading)) => {
            tokio::spawn(async move {
                let end = match upgrading.await {
                    Ok(ws) => tokio_echo_loop(ws, false).await,
                    Err(error) => ServerEnd {
                        protocol: None,
                        extensions: Vec::new(),
                        close_received: None,
                        error,
                    },
                };
                let _ = ends.send(End { version, path, end });
            });
            response
        }
        Err(rejection) => rejection.response(),
    }
}

// ------------------------------------------------------------------ helpers

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A tokio runtime for a test body, bounded by [`TEST_TIMEOUT`].
fn block_on<F: std::future::Future>(what: &str, f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, f)
            .await
            .unwrap_or_else(|_| panic!("{what}: did not finish in {TEST_TIMEOUT:?}"))
    })
}

fn options(config: Config) -> ConnectOptions {
    ConnectOptions::default()
        .with_config(config)
        .with_proxy(Proxy::none())
}

fn tls_options(config: Config, certs: &servers::Certs) -> ConnectOptions {
    options(config).with_tls_config(certs.client.clone())
}

/// The server's certificate for `localhost`, offering `alpn`.
fn tls_server(certs: &servers::Certs, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let mut config = (*certs.server).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// The size of message `i`: mostly small, every tenth 16 KiB, every hundredth 256 KiB.
fn size_of(i: usize) -> usize {
    match i {
        i if i % 100 == 99 => 256 * 1024,
        i if i % 10 == 9 => 16 * 1024 + i % 7,
        i => (i * 37) % 2000,
    }
}

/// Message `i` of stream `s`: text or binary, with content that says which it is.
fn message(s: usize, i: usize) -> Message {
    let bytes = payload(size_of(i), (s * 100_000 + i) as u64);
    if i.is_multiple_of(3) {
        let text: String = bytes.iter().map(|b| char::from(b'a' + b % 26)).collect();
        Message::text(text)
    } else {
        Message::binary(bytes)
    }
}

/// Messages sent and echoes received, per stream, for the timeout's report.
#[derive(Default)]
struct Progress {
    sent: Vec<AtomicUsize>,
    received: Vec<AtomicUsize>,
}

impl Progress {
    fn new(streams: usize) -> Arc<Self> {
        Arc::new(Self {
            sent: (0..streams).map(|_| AtomicUsize::new(0)).collect(),
            received: (0..streams).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    fn report(&self) -> String {
        let list = |v: &[AtomicUsize]| {
            v.iter()
                .map(|a| a.load(Ordering::Relaxed).to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "sent [{}], echoes received [{}]",
            list(&self.sent),
            list(&self.received)
        )
    }
}

/// `streams` WebSockets on one HTTP/2 connection, each sending `messages` messages while it
/// reads their echoes, every echo checked in order; then each closes with 4000 + its index.
async fn busy_streams(
    h2: &Http2Connection,
    url: &str,
    streams: usize,
    messages: usize,
    progress: Arc<Progress>,
) -> Vec<hybi::Response> {
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..streams {
        let (ws, response) = h2.open(ClientRequest::new(url).unwrap()).await.unwrap();
        let progress = progress.clone();
        tasks.spawn(async move {
            let (mut rx, mut tx) = ws.into_split();
            let p = progress.clone();
            let writer = tokio::spawn(async move {
                for i in 0..messages {
                    tx.send_message(message(s, i)).await.unwrap();
                    p.sent[s].fetch_add(1, Ordering::Relaxed);
                }
                tx
            });
            for i in 0..messages {
                let echo = rx.recv().await.unwrap();
                assert!(echo == message(s, i), "stream {s}: echo {i} differs");
                progress.received[s].fetch_add(1, Ordering::Relaxed);
            }
            let mut tx = writer.await.unwrap();
            let code = CloseCode::from(4000 + s as u16);
            tx.close_with(code, "done").await.unwrap();
            let outcome = match rx.recv().await {
                Ok(m) => panic!("stream {s}: a message after the close: {m:?}"),
                Err(Error::Closed(o)) => o,
                Err(e) => panic!("stream {s}: the close ended with {e}"),
            };
            assert!(outcome.clean, "stream {s}: {outcome:?}");
            assert_eq!(outcome.code, code);
            (s, response)
        });
    }
    let mut responses = vec![None; streams];
    while let Some(done) = tasks.join_next().await {
        let (s, response) = done.unwrap();
        responses[s] = Some(response);
    }
    responses.into_iter().map(Option::unwrap).collect()
}

fn busy(config: Config, scheme: &str) {
    const STREAMS: usize = 16;
    const MESSAGES: usize = 1000;
    let certs = servers::certs();
    let tls = (scheme == "wss").then(|| tls_server(&certs, &[b"h2", b"http/1.1"]));
    let server = Server::start(Speaks::Rfc8441, config.clone(), tls);
    let url = server.url(scheme, "/busy");
    let progress = Progress::new(STREAMS);
    let p = progress.clone();
    let what = format!("{STREAMS} busy WebSockets on one HTTP/2 connection ({scheme})");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let responses = rt.block_on(async {
        let run = async {
            let options = tls_options(config.clone(), &certs);
            let h2 = Http2Connection::connect(&url, &options).await.unwrap();
            assert!(h2.is_extended_connect_enabled());
            busy_streams(&h2, &url, STREAMS, MESSAGES, p).await
        };
        match tokio::time::timeout(TEST_TIMEOUT, run).await {
            Ok(r) => r,
            Err(_) => panic!(
                "{what}: not done in {TEST_TIMEOUT:?}: {}",
                progress.report()
            ),
        }
    });
    assert_eq!(
        server.accepted(),
        1,
        "every WebSocket on one TCP connection"
    );
    let deflate = config.deflate().is_some();
    for response in &responses {
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("sec-websocket-accept"), None);
        assert_eq!(
            response.extensions().len(),
            usize::from(deflate),
            "{:?}",
            response.extensions()
        );
        if deflate {
            assert!(response.extensions()[0].starts_with("permessage-deflate"));
        }
    }
    let mut codes = Vec::new();
    for _ in 0..STREAMS {
        let End { version, end, .. } = server.end();
        assert_eq!(version, http::Version::HTTP_2);
        let outcome = end.outcome();
        assert!(outcome.clean, "{outcome:?}");
        assert_eq!(outcome.initiator, Initiator::Remote);
        codes.push(
            end.close_received
                .expect("the client's close frame")
                .code
                .as_u16(),
        );
    }
    codes.sort_unstable();
    assert_eq!(codes, (4000..4000 + STREAMS as u16).collect::<Vec<_>>());
}

// ------------------------------------------------------------------ tests

#[test]
fn sixteen_busy_websockets_on_one_connection() {
    busy(Config::default(), "ws");
}

#[test]
fn sixteen_busy_websockets_with_deflate() {
    busy(
        Config::default().with_deflate(DeflateConfig::default()),
        "ws",
    );
}

#[test]
fn sixteen_busy_websockets_over_tls_alpn_h2() {
    busy(Config::default(), "wss");
}

#[test]
fn subprotocols_and_typed_handshake_errors() {
    let server = Server::start(Speaks::Rfc8441, Config::default(), None);
    block_on("subprotocols", async {
        let h2 = Http2Connection::connect(&server.url("ws", "/"), &options(Config::default()))
            .await
            .unwrap();
        // Offered "x" then "chat": the server picks "chat".
        let request = ClientRequest::new(&server.url("ws", "/sub"))
            .unwrap()
            .protocols(["x", SUBPROTOCOL]);
        let (mut ws, response) = h2.open(request).await.unwrap();
        assert_eq!(response.protocol(), Some(SUBPROTOCOL));
        assert_eq!(ws.connection().protocol(), Some(SUBPROTOCOL));
        ws.send_message("hi").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().as_text(), Some("hi"));
        // Offered only "x": none chosen.
        let request = ClientRequest::new(&server.url("ws", "/sub"))
            .unwrap()
            .protocol("x");
        let (mut plain, response) = h2.open(request).await.unwrap();
        assert_eq!(response.protocol(), None);
        plain.send_message("again").await.unwrap();
        assert_eq!(plain.recv().await.unwrap().as_text(), Some("again"));

        // Bad answers: typed errors, and the connection goes on.
        let open = |path: &str| h2.open(ClientRequest::new(&server.url("ws", path)).unwrap());
        match open("/forbidden").await {
            Err(Error::Handshake(HandshakeError::UnexpectedStatus(403))) => {}
            other => panic!("403: {:?}", other.map(|(_, r)| r)),
        }
        match open("/bogus-protocol").await {
            Err(Error::Handshake(HandshakeError::UnofferedProtocol(p))) => assert_eq!(p, "bogus"),
            other => panic!("bogus protocol: {:?}", other.map(|(_, r)| r)),
        }
        match open("/bogus-extension").await {
            Err(Error::Handshake(HandshakeError::UnofferedExtension(e))) => {
                assert_eq!(e, "x-bogus")
            }
            other => panic!("bogus extension: {:?}", other.map(|(_, r)| r)),
        }
        // A wss:// URL on this plain connection.
        let wss = ClientRequest::new(&format!("wss://localhost:{}/", server.addr.port())).unwrap();
        assert!(matches!(
            h2.open(wss).await,
            Err(Error::Handshake(HandshakeError::InvalidUrl(_)))
        ));
        ws.send_message("still here").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().as_text(), Some("still here"));
        for mut ws in [ws, plain] {
            ws.close_with(CloseCode::NORMAL, "").await.unwrap();
            while ws.recv().await.is_ok() {}
        }
    });
    assert_eq!(server.accepted(), 1);
    let mut protocols: Vec<_> = (0..2).map(|_| server.end().end.protocol).collect();
    protocols.sort();
    assert_eq!(protocols, [None, Some(SUBPROTOCOL.to_string())]);
}

#[test]
fn closing_handshake_started_by_either_side() {
    let server = Server::start(Speaks::Rfc8441, Config::default(), None);
    block_on("closes", async {
        let h2 = Http2Connection::connect(&server.url("ws", "/"), &options(Config::default()))
            .await
            .unwrap();
        // The client closes with 4001.
        let (mut ws, _) = h2
            .open(ClientRequest::new(&server.url("ws", "/client-closes")).unwrap())
            .await
            .unwrap();
        ws.send_message("before").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().as_text(), Some("before"));
        ws.close_with(CloseCode::from(4001), "client done")
            .await
            .unwrap();
        let outcome = match ws.recv().await {
            Err(Error::Closed(o)) => o,
            other => panic!("{other:?}"),
        };
        assert!(outcome.clean, "{outcome:?}");
        assert_eq!(
            (outcome.code, outcome.initiator),
            (CloseCode::from(4001), Initiator::Local)
        );
        // The server closes with 4002.
        let (mut ws, _) = h2
            .open(ClientRequest::new(&server.url("ws", "/server-closes")).unwrap())
            .await
            .unwrap();
        ws.send_message("close:4002:server done").await.unwrap();
        let outcome = match ws.recv().await {
            Ok(m) => panic!("{m:?}"),
            Err(Error::Closed(o)) => o,
            Err(e) => panic!("{e}"),
        };
        assert!(outcome.clean, "{outcome:?}");
        assert_eq!(
            (outcome.code, outcome.reason.as_str(), outcome.initiator),
            (CloseCode::from(4002), "server done", Initiator::Remote)
        );
    });
    let mut ends: Vec<End> = (0..2).map(|_| server.end()).collect();
    ends.sort_by(|a, b| a.path.cmp(&b.path));
    let client = &ends[0].end;
    assert_eq!(ends[0].path, "/client-closes");
    assert!(client.outcome().clean);
    assert_eq!(client.outcome().initiator, Initiator::Remote);
    assert_eq!(
        client.close_received.as_ref().unwrap().code,
        CloseCode::from(4001)
    );
    let by_server = &ends[1].end;
    assert!(by_server.outcome().clean, "{:?}", by_server.outcome());
    assert_eq!(
        (by_server.outcome().code, by_server.outcome().initiator),
        (CloseCode::from(4002), Initiator::Local)
    );
    assert_eq!(server.accepted(), 1);
}

#[test]
fn a_dropped_websocket_leaves_the_others_alone() {
    let server = Server::start(Speaks::Rfc8441, Config::default(), None);
    block_on("drop one stream", async {
        let h2 = Http2Connection::connect(&server.url("ws", "/"), &options(Config::default()))
            .await
            .unwrap();
        let open = |path: &str| h2.open(ClientRequest::new(&server.url("ws", path)).unwrap());
        let (mut keep, _) = open("/keep").await.unwrap();
        let (mut dropped, _) = open("/dropped").await.unwrap();
        dropped.send_message("x").await.unwrap();
        assert_eq!(dropped.recv().await.unwrap().as_text(), Some("x"));
        drop(dropped);
        let gone = server.ends.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(gone.path, "/dropped");
        match &gone.end.error {
            Error::Closed(o) => assert!(!o.clean && o.code == CloseCode::ABNORMAL, "{o:?}"),
            Error::Io(_) => {}
            e => panic!("the dropped stream ended with {e}"),
        }
        for i in 0..10 {
            let m = Message::binary(payload(70_000, i));
            keep.send_message(m.clone()).await.unwrap();
            assert_eq!(keep.recv().await.unwrap(), m);
        }
        keep.close_with(CloseCode::NORMAL, "").await.unwrap();
        assert!(matches!(keep.recv().await, Err(Error::Closed(o)) if o.clean));
    });
    assert!(server.end().end.outcome().clean);
}

/// `connect_with` against `server`: over HTTP/1.1 with fallback, a typed error without.
fn check_fallback(server: &Server, scheme: &str, certs: &servers::Certs, expect: Http2Error) {
    let url = server.url(scheme, "/fallback");
    let opts = tls_options(Config::default(), certs);
    block_on("fallback", async {
        let request = ClientRequest::new(&url).unwrap().protocol(SUBPROTOCOL);
        let (mut ws, response) = hybi::http2::connect_with(request, opts.clone(), Fallback::Http1)
            .await
            .unwrap();
        assert!(!ws.get_ref().is_http2());
        assert_eq!(response.status(), 101);
        assert_eq!(response.protocol(), Some(SUBPROTOCOL));
        ws.send_message("over HTTP/1.1").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().as_text(), Some("over HTTP/1.1"));
        ws.close_with(CloseCode::from(4003), "").await.unwrap();
        assert!(matches!(ws.recv().await, Err(Error::Closed(o)) if o.clean));

        let request = ClientRequest::new(&url).unwrap();
        match hybi::http2::connect_with(request, opts.clone(), Fallback::Never).await {
            Err(Error::Http2(e)) => {
                assert!(e.is_unsupported());
                assert_eq!(
                    std::mem::discriminant(&e),
                    std::mem::discriminant(&expect),
                    "{e}"
                );
                if let (
                    Http2Error::NotHttp2 { alpn, .. },
                    Http2Error::NotHttp2 { alpn: want, .. },
                ) = (&e, &expect)
                {
                    assert_eq!(alpn, want);
                }
            }
            other => panic!("no fallback: {:?}", other.map(|(_, r)| r)),
        }
        match Http2Connection::connect(&url, &opts).await {
            Err(Error::Http2(e)) => assert!(e.is_unsupported(), "{e}"),
            Ok(_) => panic!("an HTTP/2 handle to a server without RFC 8441"),
            Err(e) => panic!("{e}"),
        }
    });
    let end = server.end();
    assert_eq!(end.version, http::Version::HTTP_11);
    assert!(end.end.outcome().clean);
    assert_eq!(end.end.close_received.unwrap().code, CloseCode::from(4003));
}

#[test]
fn fallback_to_http1_without_the_setting() {
    let certs = servers::certs();
    let server = Server::start(Speaks::Http2NoConnect, Config::default(), None);
    check_fallback(&server, "ws", &certs, Http2Error::ExtendedConnectDisabled);
    // HTTP/2 first, then a fresh connection for HTTP/1.1; then one each for the checks
    // without fallback.
    assert_eq!(server.accepted(), 4);
}

#[test]
fn fallback_to_http1_against_an_http1_only_server() {
    let certs = servers::certs();
    let server = Server::start(Speaks::Http1Only, Config::default(), None);
    let not_h2 = Http2Error::NotHttp2 {
        alpn: None,
        detail: String::new(),
    };
    check_fallback(&server, "ws", &certs, not_h2);
    assert_eq!(server.accepted(), 4);
}

#[test]
fn tls_alpn_http11_falls_back_on_the_same_connection() {
    let certs = servers::certs();
    let tls = tls_server(&certs, &[b"http/1.1"]);
    let server = Server::start(Speaks::Rfc8441, Config::default(), Some(tls));
    let not_h2 = Http2Error::NotHttp2 {
        alpn: Some("http/1.1".into()),
        detail: String::new(),
    };
    check_fallback(&server, "wss", &certs, not_h2);
    // One connection for the fallback (the same TLS connection), one per check without.
    assert_eq!(server.accepted(), 3);
}

#[test]
fn tls_h2_without_the_setting_falls_back_on_a_fresh_connection() {
    let certs = servers::certs();
    let tls = tls_server(&certs, &[b"h2", b"http/1.1"]);
    let server = Server::start(Speaks::Http2NoConnect, Config::default(), Some(tls));
    check_fallback(&server, "wss", &certs, Http2Error::ExtendedConnectDisabled);
    assert_eq!(server.accepted(), 4);
}

#[test]
fn connect_over_http2_when_the_server_does_rfc8441() {
    let certs = servers::certs();
    let tls = tls_server(&certs, &[b"h2", b"http/1.1"]);
    let config = Config::default().with_deflate(DeflateConfig::default());
    let server = Server::start(Speaks::Rfc8441, config.clone(), Some(tls));
    block_on("connect over HTTP/2", async {
        let request = ClientRequest::new(&server.url("wss", "/direct")).unwrap();
        let (mut ws, response) =
            hybi::http2::connect_with(request, tls_options(config, &certs), Fallback::Never)
                .await
                .unwrap();
        assert!(ws.get_ref().is_http2());
        assert_eq!(response.status(), 200);
        assert_eq!(response.extensions(), ["permessage-deflate"]);
        let m = Message::text("compressible ".repeat(1000));
        ws.send_message(m.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), m);
        ws.close_with(CloseCode::NORMAL, "").await.unwrap();
        assert!(matches!(ws.recv().await, Err(Error::Closed(o)) if o.clean));
    });
    let end = server.end();
    assert_eq!(end.version, http::Version::HTTP_2);
    assert!(end.end.outcome().clean);
    assert_eq!(server.accepted(), 1);
}
