//! hybi behind axum, through its extractor (`hybi::axum::WebSocketUpgrade`), over loopback TCP
//! with `axum::serve` (hyper underneath; the WebSocket runs over hyper's upgraded connection):
//!
//! - peers nobody here wrote: tokio-tungstenite's client runs its checklist, Python
//!   `websockets` runs `py_client.py` without and with permessage-deflate (the negotiated
//!   parameters checked on both sides), and hybi's own client with deflate;
//! - the subprotocol the server chooses with `protocols`, and the ones it was offered;
//! - every refusal's status, headers and body, and a connection that stays usable after one;
//!   500 where hyper offers no upgrade; a connection hyper cannot upgrade and a client that
//!   leaves before the upgrade end their task (never a hang);
//! - frames pipelined right behind the request are not lost;
//! - issue 12's split halves, both directions busy and the socket full, on the upgraded
//!   transport;
//! - a client built from an `http::Request` sends its custom headers;
//! - the handshake cases of `tests/hostile.rs` (1 MB header, 10,000 headers, garbage, a TLS
//!   ClientHello) get a clear status and a closed connection;
//! - HTTP/2: an extended CONNECT (RFC 8441) through `any(handler)` is answered with 200 and
//!   echoes; a GET over HTTP/2 is refused with 405.

mod interop;
#[path = "support/stress.rs"]
mod stress;
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::serve::ListenerExt;
use axum::Router;
use hybi::axum::{WebSocket, WebSocketUpgrade, WebSocketUpgradeRejection};
use hybi::{
    ClientRequest, CloseCode, Config, ConnectOptions, DeflateConfig, Error, HandshakeError,
    Initiator, Message, Timeouts,
};
use interop::tungstenite::tung_client_checklist;
use interop::*;
use stress::{
    busy, hybi_halves, listen, smallest, tungstenite_halves, Bufs, Peer, Progress, Scenario,
    TaskGuard, KIB,
};
use support::tokio_server;
use support::wire::{self, End, REQUEST};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ------------------------------------------------------------------ servers

/// An axum app served on 127.0.0.1 by its own thread and runtime until the guard is dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    fn start(app: Router) -> Self {
        let (addr, stop) = tokio_server::spawn(|listener, stopped| async move {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            stop: Some(stop),
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The echo server of the interop tests (`tokio_echo_loop`: echoes, `close:CODE:REASON`,
/// `fragment-me:`) behind the extractor, on every path, choosing the "chat" subprotocol;
/// each connection's end is reported, with the extensions its 101 named.
fn echo_server(config: Config) -> (Server, mpsc::Receiver<ServerEnd>) {
    let (tx, rx) = mpsc::channel();
    let app = Router::new().fallback(move |ws: WebSocketUpgrade| {
        let (tx, config) = (tx.clone(), config.clone());
        async move {
            let (response, upgrading) =
                ws.protocols([SUBPROTOCOL]).with_config(config).into_parts();
            let extensions = response
                .headers()
                .get_all("sec-websocket-extensions")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            tokio::spawn(async move {
                let end = match upgrading.await {
                    Ok(ws) => ServerEnd {
                        extensions,
                        ..tokio_echo_loop(ws, false).await
                    },
                    Err(error) => ServerEnd {
                        protocol: None,
                        extensions,
                        close_received: None,
                        error,
                    },
                };
                let _ = tx.send(end);
            });
            response
        }
    });
    (Server::start(app), rx)
}

/// The two connections of a checklist run (the client's close, then the server's): both
/// clean, with the subprotocol, and no extension (the clients offered none).
fn check_ends_after_checklist(rx: &mpsc::Receiver<ServerEnd>) {
    // The connections may end in either order.
    let mut ends = [server_end(rx), server_end(rx)];
    ends.sort_by_key(|e| e.close_received.as_ref().map(|f| f.code.as_u16()));
    check_server_end("client close", &ends[0], CLIENT_CLOSE, Initiator::Remote);
    check_server_end("server close", &ends[1], SERVER_CLOSE, Initiator::Local);
    for end in &ends {
        assert_eq!(end.extensions, Vec::<String>::new());
    }
}

// ------------------------------------------------------------------ foreign clients

#[test]
fn tungstenite_client_through_axum() {
    let (server, rx) = echo_server(Config::default().with_deflate(DeflateConfig::default()));
    block_on(
        "tungstenite client ↔ axum",
        tung_client_checklist(server.port()),
    );
    check_ends_after_checklist(&rx);
}

#[test]
fn hybi_clients_through_axum() {
    let (server, rx) = echo_server(Config::default());
    let port = server.port();
    block_on("hybi tokio client ↔ axum", async move {
        let c = tokio_client_checklist(port).await;
        check_hybi_close("client close", &c, CLIENT_CLOSE.0, Initiator::Local);
        let c = tokio_client_server_close(port).await;
        check_close("server close", &c, SERVER_CLOSE, Initiator::Remote);
    });
    check_ends_after_checklist(&rx);
    with_timeout("hybi blocking client ↔ axum", move || {
        let c = blocking_client_checklist(port);
        check_hybi_close("client close", &c, CLIENT_CLOSE.0, Initiator::Local);
    });
    let end = server_end(&rx);
    check_server_end("blocking client", &end, CLIENT_CLOSE, Initiator::Remote);
}

/// [`check_close`] for a close the client started against hybi's server, which echoes the
/// code without the reason (RFC 6455 §5.5.1 asks for the code only).
fn check_hybi_close(what: &str, c: &ClientClose, code: u16, initiator: Initiator) {
    let f = c.received.as_ref().expect("no close frame received");
    assert_eq!((f.code.as_u16(), f.reason.as_str()), (code, ""), "{what}");
    let o = &c.outcome;
    assert!(o.clean && o.error.is_none(), "{what}: {o:?}");
    // The outcome names what the server's close frame said.
    assert_eq!(
        (o.code.as_u16(), o.reason.as_str()),
        (code, ""),
        "{what}: {o:?}"
    );
    assert_eq!(o.initiator, initiator, "{what}: {o:?}");
    assert!(c.took < PROMPT_CLOSE, "{what}: the close took {:?}", c.took);
}

/// hybi's client with permessage-deflate: JSON-like texts of 0 B to 1 MiB and the checklist,
/// compressed both ways; both sides name the same parameters.
#[test]
fn hybi_client_with_deflate_through_axum() {
    let server_deflate = DeflateConfig::default().with_client_no_context_takeover(true);
    let (server, rx) = echo_server(Config::default().with_deflate(server_deflate));
    let port = server.port();
    let client =
        Config::default().with_deflate(DeflateConfig::default().with_server_max_window_bits(10));
    let (close, extensions) = block_on("hybi deflate client ↔ axum", async move {
        tokio_client_run(port, client, deflate_checklist()).await
    });
    check_hybi_close("client close", &close, CLIENT_CLOSE.0, Initiator::Local);
    let end = server_end(&rx);
    check_server_end("deflate", &end, CLIENT_CLOSE, Initiator::Remote);
    let want = (false, true, 10, 15);
    assert_eq!(negotiated("hybi client", &extensions), want);
    assert_eq!(negotiated("axum server", &end.extensions), want);
}

/// `py_client.py` against `port`: it must pass every check; returns its output lines.
fn run_py_client(port: u16, extra: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/py_client.py"
    ))
    .arg(format!("ws://127.0.0.1:{port}/any/path"))
    .args(["--subprotocol", SUBPROTOCOL])
    .args(extra)
    .args(["--timeout", &TEST_TIMEOUT.as_secs().to_string()]);
    let client = ChildGuard::spawn("py_client.py", &mut cmd);
    let (status, lines, stderr) = client.wait(TEST_TIMEOUT + Duration::from_secs(15));
    let out = lines.join("\n");
    let passed = lines
        .iter()
        .any(|l| l.starts_with("py_client: ") && l.ends_with(" passed, 0 failed"));
    assert!(
        status.success() && passed,
        "py_client.py {extra:?}: {status}\n{out}\nstderr:\n{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "ok - subprotocol (negotiated 'chat')"),
        "{out}"
    );
    lines
}

/// `true` when `websockets` is installed; without it the Python tests print a note and pass,
/// unless `CI` is set (as in `tests/interop_python.rs`).
fn have_websockets() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(ok || !ci, "CI must install python3 with websockets >= 13");
    if !ok {
        eprintln!("skipped: pip install websockets (the Python tests through axum did not run)");
    }
    ok
}

#[test]
fn python_client_through_axum_without_deflate() {
    if !have_websockets() {
        return;
    }
    // The server has deflate on; the client does not offer it.
    let (server, rx) = echo_server(Config::default().with_deflate(DeflateConfig::default()));
    let lines = run_py_client(server.port(), &[]);
    assert!(!lines.iter().any(|l| l.starts_with("ok - extensions")));
    let end = server_end(&rx);
    check_server_end("python", &end, (4001, "bye"), Initiator::Remote);
    assert_eq!(end.extensions, Vec::<String>::new());
}

#[test]
fn python_client_through_axum_with_deflate() {
    if !have_websockets() {
        return;
    }
    // (the client's extra options, the server's deflate config, the parameters both must see)
    let cases = [
        (&[][..], DeflateConfig::default(), (false, false, 15, 15)),
        (
            &["--server-no-context-takeover"][..],
            DeflateConfig::default().with_client_no_context_takeover(true),
            (true, true, 15, 15),
        ),
        (
            &["--server-max-window-bits", "10"][..],
            DeflateConfig::default().with_client_max_window_bits(9),
            (false, false, 10, 9),
        ),
    ];
    for (extra, deflate, want) in cases {
        let (server, rx) = echo_server(Config::default().with_deflate(deflate));
        let args = [&["--compression", "deflate", "--json"][..], extra].concat();
        let lines = run_py_client(server.port(), &args);
        let ext = lines
            .iter()
            .find_map(|l| l.strip_prefix("ok - extensions ("))
            .and_then(|l| l.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no extensions line:\n{}", lines.join("\n")));
        assert_eq!(
            python_params("client", ext),
            want,
            "{extra:?}: Python's view"
        );
        let end = server_end(&rx);
        check_server_end("python deflate", &end, (4001, "bye"), Initiator::Remote);
        assert_eq!(
            negotiated("axum", &end.extensions),
            want,
            "{extra:?}: hybi's view"
        );
    }
}

// ------------------------------------------------------------------ subprotocols

/// The server's choice with `protocols` (its order of preference among the offered), what
/// it was offered, and `Config::protocols` when `protocols` was not called.
#[test]
fn subprotocol_selection() {
    let app = Router::new().fallback(|ws: WebSocketUpgrade| async move {
        let offered: Vec<String> = ws.requested_protocols().map(String::from).collect();
        let ws = match ws.request().path() {
            "/prefer" => ws.protocols(["graphql-ws", "chat", "superchat"]),
            "/none" => ws.protocols(["mqtt"]),
            _ => ws.with_config(Config::default().with_protocols(["superchat", "chat"])),
        };
        let selected = ws.selected_protocol().map(String::from);
        ws.on_upgrade(move |mut ws| async move {
            let report = format!("{offered:?} {selected:?} {:?}", ws.connection().protocol());
            let _ = ws.send_message(report).await;
            let _ = ws.close_with(CloseCode::NORMAL, "").await;
            while ws.recv().await.is_ok() {}
        })
    });
    let server = Server::start(app);
    let port = server.port();
    block_on("subprotocols", async move {
        for (path, protocol, report) in [
            (
                "/prefer",
                Some("chat"),
                r#"["superchat", "chat"] Some("chat") Some("chat")"#,
            ),
            ("/none", None, r#"["superchat", "chat"] None None"#),
            // The client's order of preference among Config::protocols.
            (
                "/config",
                Some("superchat"),
                r#"["superchat", "chat"] None Some("superchat")"#,
            ),
        ] {
            let request = ClientRequest::new(&format!("ws://127.0.0.1:{port}{path}"))
                .unwrap()
                .protocols(["superchat", "chat"]);
            let (mut ws, response) = hybi::tokio::connect_with(request, ConnectOptions::default())
                .await
                .unwrap();
            assert_eq!(response.protocol(), protocol, "{path}");
            assert_eq!(ws.recv().await.unwrap(), Message::text(report), "{path}");
            assert!(matches!(ws.recv().await, Err(Error::Closed(_))), "{path}");
        }
    });
}

// ------------------------------------------------------------------ refusals

/// Sends `request` on a fresh connection; returns the response head and body (read to the
/// end of the body, by its Content-Length).
async fn exchange(s: &mut tokio::net::TcpStream, request: &[u8]) -> (String, String) {
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(String::from)
                })
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                return (head, body);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("no response in 5 s")
            .unwrap();
        assert!(
            n > 0,
            "EOF before a complete response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn upgrade_request(method: &str, version: &str, fields: &[&str]) -> Vec<u8> {
    let mut r = format!("{method} /ws {version}\r\nHost: 127.0.0.1\r\n");
    for f in fields {
        r.push_str(f);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Each refusal through the extractor: the core's status, extra header and message, the body
/// framed by the HTTP server (Content-Length, no `Connection: close`), and the connection
/// still usable for the next request (here a valid upgrade).
#[test]
fn every_refusal_through_axum() {
    let app = Router::new().route(
        "/ws",
        any(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(|mut ws| async move {
                let _ = ws.send_message("upgraded").await;
            })
        }),
    );
    let server = Server::start(app);
    let addr = server.addr;
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    let (upgrade, connection, version) = (
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
    );
    let cases: Vec<(&str, Vec<u8>, HandshakeError, Option<&str>)> = vec![
        (
            "a plain GET",
            upgrade_request("GET", "HTTP/1.1", &[]),
            HandshakeError::MissingUpgrade,
            None,
        ),
        (
            "no Connection: upgrade",
            upgrade_request("GET", "HTTP/1.1", &[upgrade, key, version]),
            HandshakeError::MissingConnectionUpgrade,
            None,
        ),
        (
            "no key",
            upgrade_request("GET", "HTTP/1.1", &[upgrade, connection, version]),
            HandshakeError::MissingKey,
            None,
        ),
        (
            "a bad key",
            upgrade_request(
                "GET",
                "HTTP/1.1",
                &[upgrade, connection, "Sec-WebSocket-Key: AAAA", version],
            ),
            HandshakeError::InvalidKey,
            None,
        ),
        (
            "a wrong version",
            upgrade_request(
                "GET",
                "HTTP/1.1",
                &[upgrade, connection, key, "Sec-WebSocket-Version: 8"],
            ),
            HandshakeError::UnsupportedVersion,
            Some("sec-websocket-version: 13"),
        ),
        (
            "a POST",
            upgrade_request(
                "POST",
                "HTTP/1.1",
                &[upgrade, connection, key, version, "Content-Length: 0"],
            ),
            HandshakeError::MethodNotGet,
            Some("allow: GET"),
        ),
    ];
    block_on("refusals through axum", async move {
        for (what, request, error, header) in cases {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (head, body) = exchange(&mut s, &request).await;
            let status = error.http_status();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status} ")),
                "{what}: {head}"
            );
            let lower = head.to_ascii_lowercase();
            if let Some(h) = header {
                assert!(
                    lower.contains(&format!("\r\n{}\r\n", h.to_ascii_lowercase())),
                    "{what}: {head}"
                );
            }
            assert!(
                lower.contains("content-type: text/plain; charset=utf-8"),
                "{what}: {head}"
            );
            assert!(!lower.contains("connection: close"), "{what}: {head}");
            assert_eq!(body, format!("{error}\n"), "{what}");
            // The same connection, a valid upgrade: the refusal did not end it.
            let valid = upgrade_request("GET", "HTTP/1.1", &[upgrade, connection, key, version]);
            s.write_all(&valid).await.unwrap();
            let (head, rest) = stress::read_head(&mut s).await;
            assert!(head.starts_with("HTTP/1.1 101 "), "{what}, then: {head}");
            let mut frame = rest;
            while frame.len() < 10 {
                let mut b = [0u8; 64];
                let n = s.read(&mut b).await.unwrap();
                assert!(n > 0, "{what}: EOF before the message");
                frame.extend_from_slice(&b[..n]);
            }
            assert_eq!(&frame[..10], b"\x81\x08upgraded", "{what}");
        }
        // HTTP/1.0: hyper answers it in HTTP/1.0 and closes; the status is the core's 505.
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = upgrade_request("GET", "HTTP/1.0", &[upgrade, connection, key, version]);
        let (head, body) = exchange(&mut s, &request).await;
        assert!(head.contains(" 505 "), "HTTP/1.0: {head}");
        assert_eq!(
            body,
            format!("{}\n", HandshakeError::UnsupportedHttpVersion)
        );
    });
}

/// A request that did not come through hyper's upgrade machinery (no `OnUpgrade`): 500.
#[tokio::test]
async fn no_upgrade_offered_is_a_500() {
    let request = http::Request::get("/ws")
        .header("host", "h")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", wire::WS_KEY)
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let (mut parts, ()) = request.into_parts();
    let rejection = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .unwrap_err();
    assert_eq!(rejection, WebSocketUpgradeRejection::NotUpgradable);
    let response = rejection.into_response();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
}

/// hyper's HTTP/1.1 server without `with_upgrades` sends the 101 but cannot hand the
/// connection over: the upgrade fails, the failure callback runs, and the client sees the end
/// of the connection. Nothing hangs.
#[test]
fn a_connection_hyper_cannot_upgrade_fails_the_upgrade() {
    let (failed_tx, failed_rx) = mpsc::channel::<Error>();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let failed_tx = failed_tx.clone();
            async move {
                let (mut parts, _body) = request.into_parts();
                let response = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                    Ok(ws) => ws
                        .on_failed_upgrade(move |e| {
                            let _ = failed_tx.send(e);
                        })
                        .on_upgrade(|_ws: WebSocket| async { panic!("upgraded") }),
                    Err(rejection) => rejection.into_response(),
                };
                Ok::<Response, std::convert::Infallible>(response)
            }
        });
        // No `with_upgrades()`.
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
            .await;
    });
    let (head, end) = wire::raw_http_exchange(addr, REQUEST);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_ne!(end, End::Open, "the connection was left open");
    let error = failed_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the failure callback did not run");
    assert!(matches!(error, Error::Io(_)), "{error:?}");
}

/// Clients that leave at every point of the upgrade (before the request is complete, right
/// after it, right after the 101): every task the server started ends.
#[test]
fn clients_leaving_during_the_upgrade_leave_no_task() {
    let live = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (live2, started2) = (live.clone(), started.clone());
    let app = Router::new().fallback(move |ws: WebSocketUpgrade| {
        let (live, started) = (live2.clone(), started2.clone());
        async move {
            started.fetch_add(1, Ordering::SeqCst);
            let guard = TaskGuard::new(&live);
            ws.on_failed_upgrade(|_| {})
                .on_upgrade(move |mut ws| async move {
                    let _guard = guard;
                    while ws.recv().await.is_ok() {}
                })
        }
    });
    let server = Server::start(app);
    let addr = server.addr;
    block_on("clients leaving", async move {
        for cut in [REQUEST.len() / 2, REQUEST.len(), usize::MAX] {
            for _ in 0..20 {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(&REQUEST[..cut.min(REQUEST.len())])
                    .await
                    .unwrap();
                if cut == usize::MAX {
                    let _ = stress::read_head(&mut s).await;
                }
                drop(s);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(live.load(Ordering::SeqCst), 0, "tasks left running");
        assert!(started.load(Ordering::SeqCst) >= 20);
    });
}

// ------------------------------------------------------------------ pipelining

/// The request and three frames in one write: hyper reads them with the head; its upgraded
/// connection replays them, and the WebSocket answers all three.
#[test]
fn frames_pipelined_behind_the_request_are_not_lost() {
    let (server, rx) = echo_server(Config::default());
    let addr = server.addr;
    block_on("pipelined frames", async move {
        let mut bytes = REQUEST.to_vec();
        bytes.extend(support::cframe(true, 1, b"first"));
        bytes.extend(support::cframe(true, 2, &[9; 300]));
        bytes.extend(support::cframe(true, 9, b"ping!"));
        bytes.extend(support::cframe(true, 8, &support::close_payload(1000, "")));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        let (head, rest) = stress::read_head(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        let mut all = rest;
        s.read_to_end(&mut all).await.unwrap();
        let frames = support::decode_frames(&all);
        let got: Vec<(u8, Vec<u8>)> = frames
            .iter()
            .map(|(h, p)| (h.opcode as u8, p.clone()))
            .collect();
        // The pong goes out as soon as the ping is read, the echoes when the application
        // sends them: the data frames in order, the pong among them, the close last.
        let data: Vec<&(u8, Vec<u8>)> = got.iter().filter(|(op, _)| *op < 8).collect();
        assert_eq!(data, [&(1, b"first".to_vec()), &(2, vec![9; 300])]);
        assert!(got.contains(&(10, b"ping!".to_vec())), "no pong: {got:?}");
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[3], (8, 1000u16.to_be_bytes().to_vec()));
    });
    let end = server_end(&rx);
    assert!(end.outcome().clean, "{:?}", end.error);
}

// ------------------------------------------------------------------ split halves under load

/// Issue 12's split-halves case with the server through the extractor: axum serves on the
/// case's runtime, the server's halves run over hyper's upgraded transport.
async fn axum_split_case(p: Progress, sc: Scenario) {
    let listener = listen(sc.bufs);
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    let ps = p.clone();
    let app = Router::new().fallback(move |ws: WebSocketUpgrade| {
        let (ps, done_tx) = (ps.clone(), done_tx.clone());
        async move {
            let (response, upgrading) = ws.into_parts();
            tokio::spawn(async move {
                let ws = upgrading.await.expect("upgrade");
                let outcome = hybi_halves(ws, "server", sc.server(), false, ps).await;
                if let Some(tx) = done_tx.lock().unwrap().take() {
                    let _ = tx.send(outcome);
                }
            });
            response
        }
    });
    let serve = tokio::spawn(async move {
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });
    let tcp = stress::connect(addr, sc.bufs).await;
    match sc.peer {
        Peer::Hybi => {
            let request = ClientRequest::new(&format!("ws://{addr}/stress")).unwrap();
            let (ws, _) =
                hybi::tokio::client_with(tcp, request, Config::default(), Timeouts::default())
                    .await
                    .expect("client handshake");
            let o = hybi_halves(ws, "client", sc.client(), true, p.clone()).await;
            stress::assert_normal("client", &o, Initiator::Local);
        }
        Peer::Tungstenite => {
            let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/stress"), tcp)
                .await
                .expect("tungstenite client handshake");
            tungstenite_halves(ws, sc.client(), p.clone()).await;
        }
    }
    let o = done_rx.await.expect("the server's halves reported nothing");
    stress::assert_normal("server", &o, Initiator::Remote);
    serve.abort();
    let _ = serve.await;
}

on_both_runtimes!(
    axum_split_halves_smallest_tungstenite_client,
    Duration::from_secs(10),
    |p| axum_split_case(p, smallest(Peer::Tungstenite))
);
on_both_runtimes!(
    axum_split_halves_smallest_hybi_client,
    Duration::from_secs(10),
    |p| axum_split_case(p, smallest(Peer::Hybi))
);
on_both_runtimes!(
    axum_split_halves_busy_500_hybi_client,
    Duration::from_secs(20),
    |p| axum_split_case(p, busy(Peer::Hybi, 500, 64 * KIB))
);
on_both_runtimes!(
    axum_split_halves_busy_500_tungstenite_client,
    Duration::from_secs(20),
    |p| axum_split_case(p, busy(Peer::Tungstenite, 500, 64 * KIB))
);
// Both sides write 64 × 1 MiB before reading: both sockets full both ways.
on_both_runtimes!(
    axum_split_halves_both_write_64_mib_before_reading,
    Duration::from_secs(30),
    |p| axum_split_case(
        p,
        Scenario {
            peer: Peer::Hybi,
            server_sends: 64,
            client_sends: 64,
            sizes: stress::Sizes::Fixed(stress::MIB),
            server_read: stress::ReadStart::After(Duration::from_millis(100)),
            client_read: stress::ReadStart::After(Duration::from_millis(100)),
            bufs: Bufs::DEFAULT,
        }
    )
);

// ------------------------------------------------------------------ http::Request clients

/// A client built from an `http::Request` (as a tungstenite or reqwest user has one): its
/// Authorization, cookies and custom fields reach the handler.
#[test]
fn a_client_from_an_http_request_sends_its_custom_headers() {
    let app = Router::new().fallback(|ws: WebSocketUpgrade| async move {
        let field = |name: &str| {
            ws.request()
                .header(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let report = format!(
            "{:?} {:?} {:?} {:?}",
            field("authorization"),
            field("cookie"),
            field("x-request-id"),
            ws.request().origin()
        );
        ws.on_upgrade(move |mut ws| async move {
            let _ = ws.send_message(report).await;
            let _ = ws.close_with(CloseCode::NORMAL, "").await;
            while ws.recv().await.is_ok() {}
        })
    });
    let server = Server::start(app);
    let port = server.port();
    block_on("client from http::Request", async move {
        let request = http::Request::get(format!("ws://127.0.0.1:{port}/chat"))
            .header("authorization", "Bearer secret")
            .header("cookie", "session=42; theme=dark")
            .header("x-request-id", "abc-123")
            .header("origin", "https://example.com")
            .body(())
            .unwrap();
        let request = ClientRequest::try_from(request).unwrap();
        let (mut ws, response) = hybi::tokio::connect_with(request, ConnectOptions::default())
            .await
            .unwrap();
        let response = hybi::http::client_response(&response);
        assert_eq!(response.status(), 101);
        assert_eq!(
            ws.recv().await.unwrap(),
            Message::text(
                r#"Some("Bearer secret") Some("session=42; theme=dark") Some("abc-123") Some("https://example.com")"#
            )
        );
    });
}

// ------------------------------------------------------------------ hostile handshakes

/// The handshake cases of `tests/hostile.rs` through axum: hyper parses the head there, so the
/// statuses are hyper's (431 for heads over its limits, 400 for what is not HTTP); each gets
/// a clear status, the connection closed, in bounded time.
#[test]
fn hostile_handshakes_through_axum() {
    let (server, _rx) = echo_server(Config::default());
    let mut big = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    big.resize(big.len() + (1 << 20), b'a');
    big.extend_from_slice(b"\r\n\r\n");
    let mut many = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    for i in 0..10_000 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let tls_hello = {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut hello = Vec::new();
        tls.write_tls(&mut hello).unwrap();
        hello
    };
    let cases: [(&str, &[u8], &[u16]); 6] = [
        ("a 1 MB header", &big, &[431]),
        ("10,000 headers", &many, &[431]),
        ("garbage", &garbage, &[400]),
        (
            "a few bytes of nothing",
            b"\x00\x01\x02\x03\r\n\r\n",
            &[400],
        ),
        ("not HTTP", b"HELLO THERE\r\n\r\n", &[400]),
        ("a TLS ClientHello", &tls_hello, &[400]),
    ];
    for (what, bytes, statuses) in cases {
        let t = Instant::now();
        let (response, end) = wire::raw_http_exchange(server.addr, bytes);
        let status: u16 = response
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what}: no status line: {response:?}"));
        assert!(statuses.contains(&status), "{what}: {response:?}");
        assert_ne!(end, End::Open, "{what}: the connection was left open");
        assert!(t.elapsed() < Duration::from_secs(4), "{what}: slow answer");
    }
}

// ------------------------------------------------------------------ HTTP/2

/// An HTTP/2 extended CONNECT (RFC 8441) through `any(handler)`: 200 with the subprotocol, no
/// key; then hybi over the HTTP/2 stream, echoing, with a clean close. A GET over HTTP/2 is
/// refused with 405 and `Allow: CONNECT`.
#[test]
fn http2_extended_connect_through_axum() {
    use http_body_util::Empty;
    use hyper::body::Bytes;
    let (server, rx) = echo_server(Config::default());
    let addr = server.addr;
    block_on("HTTP/2 through axum", async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake::<_, Empty<Bytes>>(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);

        let get = http::Request::get(format!("http://{addr}/h2"))
            .header("sec-websocket-version", "13")
            .body(Empty::new())
            .unwrap();
        let refused = sender.send_request(get).await.unwrap();
        assert_eq!(refused.status(), 405);
        assert_eq!(refused.headers()["allow"], "CONNECT");

        let mut connect = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(format!("http://{addr}/h2"))
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", SUBPROTOCOL)
            .body(Empty::new())
            .unwrap();
        connect
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let response = sender.send_request(connect).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["sec-websocket-protocol"], SUBPROTOCOL);
        assert!(response.headers().get("sec-websocket-accept").is_none());
        let upgraded = hyper::upgrade::on(response).await.unwrap();
        let conn = hybi::Connection::open(hybi::Role::Client, Config::default());
        let mut ws = hybi::tokio::WebSocketStream::new(
            hyper_util::rt::TokioIo::new(upgraded),
            conn,
            Timeouts::default(),
        );
        for m in [
            Message::text("over HTTP/2"),
            Message::binary(payload(100_000, 7)),
        ] {
            ws.send_message(m.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), m);
        }
        // The close: queued, then written while reading; clean on this side too (the server
        // waits for our END_STREAM instead of resetting the stream). The server's side is
        // checked below.
        ws.connection_mut()
            .close(CLIENT_CLOSE.0.into(), CLIENT_CLOSE.1)
            .unwrap();
        loop {
            match ws.recv().await {
                Ok(_) => {}
                Err(Error::Closed(o)) => break assert!(o.clean, "{o:?}"),
                Err(e) => panic!("{e:?}"),
            }
        }
    });
    let end = server_end(&rx);
    check_server_end("HTTP/2", &end, CLIENT_CLOSE, Initiator::Remote);
}
