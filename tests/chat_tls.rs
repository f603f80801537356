//! The chat example over TLS (`--tls-self-signed`, `--tls-cert`/`--tls-key`): its flags, and
//! one server that serves the page and the WebSocket over HTTPS to
//!
//! - hybi's tokio client over `wss://` (HTTP/1.1, 101),
//! - hyper's HTTP/2 client (ALPN `h2`): the page, `/stats` and an RFC 8441 extended CONNECT
//!   to `/chat` (200) on one connection,
//!
//! the two chatting in one room; `/stats` counts one WebSocket per HTTP version; plain HTTP on
//! the TLS port is closed; shutdown closes both clients with 1001, the HTTP/2 one on its
//! shared connection. A TLS handshake that stalls (silent, or a partial ClientHello) is closed
//! after the header timeout. Every step has a deadline that reports how far the test got.

#[allow(dead_code)]
#[path = "../examples/chat_server.rs"]
mod chat_server;
#[path = "support/servers.rs"]
mod servers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hybi::handshake::HttpVersion;
use hybi::tokio::WebSocketStream;
use hybi::{ClientHandshake, ClientRequest, CloseCode, Config, ConnectOptions, Error, Message};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use servers::client_config;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A file under the temporary directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("hybi-chat-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn tls_flags() {
    let plain = chat_server::parse_args(args(&["--port", "0"]))
        .ok()
        .unwrap();
    assert!(plain.options.tls.is_none(), "plain HTTP stays the default");

    let cli = chat_server::parse_args(args(&["--port", "0", "--tls-self-signed"]))
        .ok()
        .unwrap();
    let tls = cli.options.tls.expect("--tls-self-signed serves TLS");
    assert_eq!(
        tls.config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );

    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = TempFile::new("cert.pem", &generated.cert.pem());
    let key = TempFile::new("key.pem", &generated.key_pair.serialize_pem());
    let cli = chat_server::parse_args(args(&["--tls-cert", cert.path(), "--tls-key", key.path()]))
        .ok()
        .unwrap();
    let tls = cli.options.tls.expect("--tls-cert and --tls-key serve TLS");
    assert_eq!(&tls.certificate[..], generated.cert.der().as_ref());

    let refused = |list: &[&str], want: &str| {
        let e = chat_server::parse_args(args(list)).err().unwrap();
        assert!(e.contains(want), "{list:?}: {e}");
    };
    refused(&["--tls-cert", cert.path()], "go together");
    refused(&["--tls-key", key.path()], "go together");
    refused(
        &[
            "--tls-cert",
            cert.path(),
            "--tls-key",
            key.path(),
            "--tls-self-signed",
        ],
        "exclude each other",
    );
    refused(
        &[
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            key.path(),
        ],
        "cannot read /nonexistent/cert.pem",
    );
    // The key given as the certificate: the library's typed error, in words.
    refused(
        &["--tls-cert", key.path(), "--tls-key", key.path()],
        "no certificate",
    );
}

/// What the test did so far: a timeout reports it.
#[derive(Clone, Default)]
struct Steps(Arc<Mutex<Vec<String>>>);

impl Steps {
    fn done(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }
}

async fn within<F: Future>(secs: u64, steps: &Steps, what: &str, f: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(out) => out,
        Err(_) => panic!(
            "{what}: timed out after {secs} s; steps done: {:?}",
            steps.0.lock().unwrap()
        ),
    }
}

async fn send_json<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, v: Value) {
    ws.send_message(v.to_string()).await.unwrap();
}

/// Skips other objects until one of `kind` arrives.
async fn recv_type<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    kind: &str,
) -> Value {
    loop {
        match ws.recv().await.expect("recv") {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
            Message::Binary(b) => panic!("unexpected {} binary bytes", b.len()),
        }
    }
}

/// Reads until the server's close: its code and reason. hyper's HTTP/2 client (not hybi's)
/// may report the stream's end after the close frames as an I/O error (RST_STREAM NO_ERROR,
/// see tests/axum.rs): then the close frame received is what counts.
async fn server_close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> (CloseCode, String) {
    loop {
        match ws.recv().await {
            Ok(_) => {}
            Err(Error::Closed(o)) => {
                assert!(o.clean, "{o:?}");
                return (o.code, o.reason.to_string());
            }
            Err(Error::Io(e)) if format!("{e:?}").contains("NO_ERROR") => {
                let o = ws.connection().close_outcome().cloned();
                let o = o.expect("the close frame arrived before the stream ended");
                return (o.code, o.reason.to_string());
            }
            Err(e) => panic!("expected the server's close, got {e}"),
        }
    }
}

/// GET `path` on an HTTP/2 connection: the status and the body.
async fn h2_get(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    base: &str,
    path: &str,
) -> (u16, String) {
    let response = sender
        .send_request(
            http::Request::get(format!("{base}{path}"))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_over_https_http1_and_http2() {
    let cli = chat_server::parse_args(args(&["--tls-self-signed"]))
        .ok()
        .unwrap();
    let mut options = cli.options;
    options.rate = 0.0;
    options.log_websockets = false;
    let cert = options.tls.as_ref().unwrap().certificate.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(chat_server::run(listener, options, async {
        let _ = stopped.await;
    }));
    let steps = Steps::default();
    let base = format!("https://localhost:{}", addr.port());

    let (mut alice, mut bob, h2_conn) = within(20, &steps, "chat", async {
        // alice: hybi's client, wss:// over HTTP/1.1.
        let options = ConnectOptions::default().with_tls_config(client_config(&cert, &[]));
        let request = ClientRequest::new(&format!("wss://localhost:{}/chat", addr.port()))
            .unwrap()
            .protocol("chat");
        let (mut alice, response) = hybi::tokio::connect_with(request, options).await.unwrap();
        assert_eq!(response.status(), 101);
        send_json(&mut alice, json!({"type": "join", "nick": "alice"})).await;
        recv_type(&mut alice, "welcome").await;
        steps.done("alice joined over HTTP/1.1");

        // bob: hyper's HTTP/2 client over TLS (ALPN h2), the page then the WebSocket.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(client_config(&cert, &[b"h2", b"http/1.1"]))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
            .await
            .unwrap();
        let h2_conn = tokio::spawn(conn);
        let (status, page) = h2_get(&mut sender, &base, "/").await;
        assert_eq!(status, 200);
        assert_eq!(page, chat_server::PAGE);
        steps.done("page over HTTP/2");

        let handshake = ClientHandshake::new(
            ClientRequest::new(&format!("wss://localhost:{}/chat", addr.port()))
                .unwrap()
                .protocol("chat"),
            Config::default(),
            HttpVersion::Http2,
        );
        let mut connect = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(format!("{base}/chat"))
            // What a browser sends: the page's origin.
            .header("origin", &base);
        for (name, value) in handshake.headers() {
            connect = connect.header(name, value);
        }
        let mut connect = connect.body(Empty::new()).unwrap();
        connect
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let response = sender.send_request(connect).await.unwrap();
        assert_eq!(response.status(), 200);
        let fields: Vec<(&str, &[u8])> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let (conn, answer) = handshake.finish(200, fields).unwrap();
        assert_eq!(answer.protocol(), Some("chat"));
        let upgraded = hyper::upgrade::on(response).await.unwrap();
        let mut bob = WebSocketStream::new(TokioIo::new(upgraded), conn, Default::default());
        send_json(&mut bob, json!({"type": "join", "nick": "bob"})).await;
        let welcome = recv_type(&mut bob, "welcome").await;
        assert_eq!(welcome["count"], 2, "{welcome}");
        steps.done("bob joined over HTTP/2");

        // They chat, both ways.
        // (alice's own join notice comes first)
        while recv_type(&mut alice, "join").await["nick"] != "bob" {}
        send_json(&mut bob, json!({"type": "message", "text": "hi from h2"})).await;
        let m = recv_type(&mut alice, "message").await;
        assert_eq!(
            (m["from"].as_str(), m["text"].as_str()),
            (Some("bob"), Some("hi from h2"))
        );
        send_json(&mut alice, json!({"type": "message", "text": "hi from h1"})).await;
        let m = loop {
            let m = recv_type(&mut bob, "message").await;
            if m["from"] == "alice" {
                break m;
            }
        };
        assert_eq!(m["text"], "hi from h1");
        steps.done("chatted both ways");

        // One WebSocket per HTTP version, counted on the same HTTP/2 connection.
        let (status, stats) = h2_get(&mut sender, &base, "/stats").await;
        assert_eq!(status, 200);
        let stats: Value = serde_json::from_str(&stats).unwrap();
        assert_eq!(stats, json!({"websockets": {"http1": 1, "http2": 1}}));
        steps.done("stats");

        // Plain HTTP on the TLS port: no HTTP answer, the connection closes.
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tcp.read_to_end(&mut out).await;
        assert!(
            !out.starts_with(b"HTTP/"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        steps.done("plain HTTP refused");
        (alice, bob, h2_conn)
    })
    .await;

    // Shutdown: both closed with 1001; bob's close travels on the shared HTTP/2 connection,
    // which the server keeps open (after its GOAWAY) until the session is done.
    let _ = stop.send(());
    within(10, &steps, "shutdown", async {
        let (alice_close, bob_close) =
            tokio::join!(server_close(&mut alice), server_close(&mut bob));
        let want = (CloseCode::GOING_AWAY, "server shutting down".to_string());
        assert_eq!(alice_close, want);
        assert_eq!(bob_close, want);
        steps.done("both closed with 1001");
        (&mut server).await.unwrap().unwrap();
        let _ = h2_conn.await;
    })
    .await;
}

/// A client that opens TCP and never sends its ClientHello is closed after the header timeout,
/// and one that sends a partial ClientHello too: a TLS handshake cannot hold a task forever.
#[tokio::test]
async fn stalled_tls_handshakes_are_closed() {
    let cli = chat_server::parse_args(args(&["--tls-self-signed", "--quiet"]))
        .ok()
        .unwrap();
    let mut options = cli.options;
    options.header_timeout = Duration::from_millis(500);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(chat_server::run(listener, options, async {
        let _ = stopped.await;
    }));
    let steps = Steps::default();
    within(10, &steps, "stalled handshakes", async {
        // Silent, and the first 5 bytes of a TLS record header (a handshake record of 512
        // bytes) with nothing after them.
        for (name, sent) in [
            ("silent", &[][..]),
            ("partial", &[0x16, 0x03, 0x01, 0x02, 0x00][..]),
        ] {
            let started = std::time::Instant::now();
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(sent).await.unwrap();
            let mut out = Vec::new();
            let _ = tcp.read_to_end(&mut out).await;
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
                "{name}: closed after {waited:?}"
            );
            steps.done(format!("{name}: closed after {waited:?}"));
        }
    })
    .await;
    let _ = stop.send(());
    within(10, &steps, "shutdown", server)
        .await
        .unwrap()
        .unwrap();
}
