//! hybi behind bare hyper (`hybi::hyper`), over loopback TCP with hyper's HTTP/1.1 server:
//!
//! - `upgrade` and the WebSocket over hyper's `Upgraded`, and the fast path that takes the
//!   `TcpStream` back with `Upgraded::downcast` and hands hyper's `read_buf` to
//!   `WebSocketStream::with_read_buf`: tokio-tungstenite's checklist on both;
//! - frames pipelined behind the request reach the WebSocket on both paths (on the fast path
//!   they are in `read_buf`, and the test checks that they were);
//! - `Upgrade::new` + `accept` with the application's answer (a subprotocol, an extra header),
//!   and a refusal through `Rejection::response`;
//! - the `Upgrading` future resolves to an error, not a hang, when the client leaves.

mod interop;
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use http_body_util::Full;
use hybi::hyper::{Rejection, Upgrade};
use hybi::tokio::WebSocketStream;
use hybi::{Accept, Config, Error, HandshakeError, Initiator, Timeouts, UsageError};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use interop::tungstenite::tung_client_checklist;
use interop::*;
use support::tokio_server;
use support::wire::REQUEST;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Body = Full<Bytes>;

/// How the server gets its WebSocket once hyper upgraded the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Over hyper's `Upgraded` (`TokioIo<Upgraded>`).
    Upgraded,
    /// Over the `TcpStream` taken back with `Upgraded::downcast`, `read_buf` fed first.
    Downcast,
}

/// What the server saw of one connection: how it ended, and (fast path) how many bytes hyper
/// had read past the head.
struct End {
    end: ServerEnd,
    read_buf: Option<usize>,
}

/// A hyper server on 127.0.0.1 (own thread and runtime): `hybi::hyper::upgrade` with the
/// "chat" subprotocol in `Config::protocols`, then the interop echo loop.
fn server(path: Path) -> (SocketAddr, mpsc::Receiver<End>) {
    let (tx, rx) = mpsc::channel();
    // No stop: the server lives for TEST_TIMEOUT (dropping the stop sender is harmless).
    let (addr, _) = tokio_server::spawn(move |listener, _| async move {
        let serve = async {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| serve(request, path, tx.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        };
        let _ = tokio::time::timeout(TEST_TIMEOUT, serve).await;
    });
    (addr, rx)
}

async fn serve(
    mut request: hyper::Request<Incoming>,
    path: Path,
    tx: mpsc::Sender<End>,
) -> Result<hyper::Response<Body>, Infallible> {
    let config = Config::default().with_protocols([SUBPROTOCOL]);
    let (response, upgrading) =
        match hybi::hyper::upgrade(&mut request, config, Timeouts::default()) {
            Ok(answer) => answer,
            Err(rejection) => return Ok(rejection.response()),
        };
    tokio::spawn(async move {
        let ws = match upgrading.await {
            Ok(ws) => ws,
            Err(error) => {
                let end = ServerEnd {
                    protocol: None,
                    extensions: Vec::new(),
                    close_received: None,
                    error,
                };
                let _ = tx.send(End {
                    end,
                    read_buf: None,
                });
                return;
            }
        };
        let end = match path {
            Path::Upgraded => End {
                end: tokio_echo_loop(ws, false).await,
                read_buf: None,
            },
            Path::Downcast => {
                let (upgraded, driver) = ws.into_parts();
                let parts = upgraded
                    .into_inner()
                    .downcast::<TokioIo<TcpStream>>()
                    .expect("hyper's http1 server over TokioIo<TcpStream>");
                let ws = WebSocketStream::with_read_buf(
                    parts.io.into_inner(),
                    driver.into_connection(),
                    &parts.read_buf,
                    Timeouts::default(),
                );
                End {
                    end: tokio_echo_loop(ws, false).await,
                    read_buf: Some(parts.read_buf.len()),
                }
            }
        };
        let _ = tx.send(end);
    });
    Ok(response)
}

fn end(rx: &mpsc::Receiver<End>) -> End {
    rx.recv_timeout(TEST_TIMEOUT).expect("no connection end")
}

fn checklist_on(path: Path) {
    let (addr, rx) = server(path);
    block_on(
        &format!("tungstenite client ↔ hyper, {path:?}"),
        tung_client_checklist(addr.port()),
    );
    let mut ends = [end(&rx).end, end(&rx).end];
    ends.sort_by_key(|e| e.close_received.as_ref().map(|f| f.code.as_u16()));
    check_server_end("client close", &ends[0], CLIENT_CLOSE, Initiator::Remote);
    check_server_end("server close", &ends[1], SERVER_CLOSE, Initiator::Local);
}

#[test]
fn tungstenite_client_through_hyper_upgraded() {
    checklist_on(Path::Upgraded);
}

#[test]
fn tungstenite_client_through_hyper_downcast() {
    checklist_on(Path::Downcast);
}

/// The request and three frames in one write, on both paths: every frame is answered; on the
/// fast path the frames were in hyper's `read_buf`, so feeding it first is what kept them.
#[test]
fn frames_pipelined_behind_the_request_are_not_lost() {
    for path in [Path::Upgraded, Path::Downcast] {
        let (addr, rx) = server(path);
        block_on(&format!("pipelined, {path:?}"), async move {
            let mut bytes = REQUEST.to_vec();
            bytes.extend(support::cframe(true, 1, b"first"));
            bytes.extend(support::cframe(true, 2, &[9; 300]));
            bytes.extend(support::cframe(true, 8, &support::close_payload(1000, "")));
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&bytes).await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(all.starts_with(b"HTTP/1.1 101 "), "{path:?}");
            let frames = support::decode_frames(&all[head_end..]);
            let got: Vec<(u8, Vec<u8>)> = frames
                .into_iter()
                .map(|(h, p)| (h.opcode as u8, p))
                .collect();
            assert_eq!(
                got,
                [
                    (1, b"first".to_vec()),
                    (2, vec![9; 300]),
                    (8, 1000u16.to_be_bytes().to_vec())
                ],
                "{path:?}"
            );
        });
        let end = end(&rx);
        assert!(end.end.outcome().clean, "{path:?}: {:?}", end.end.error);
        if path == Path::Downcast {
            // 11 + 308 + 8 bytes of frames came with the head.
            assert_eq!(end.read_buf, Some(327), "{path:?}");
        }
    }
}

/// `Upgrade::new` then `accept`: the application sees the request before answering, chooses
/// the subprotocol and adds a header; an answer naming a subprotocol that was not offered is
/// refused before anything is sent; a bad request gets the core's refusal.
#[test]
fn the_application_answers_after_looking_at_the_request() {
    let (tx, rx) = mpsc::channel::<String>();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            let service = service_fn(move |mut request: hyper::Request<Incoming>| {
                let tx = tx.clone();
                async move {
                    let upgrade = match Upgrade::new(&mut request) {
                        Ok(upgrade) => upgrade,
                        Err(rejection) => {
                            let _ = tx.send(format!("refused {}", rejection.status()));
                            return Ok::<_, Infallible>(rejection.response::<Body>());
                        }
                    };
                    let offered = upgrade.request().protocols().to_vec();
                    // Not offered: refused by `accept`, nothing sent yet.
                    let wrong = Upgrade::new(&mut request);
                    assert!(matches!(wrong, Err(Rejection::NotUpgradable)), "taken once");
                    let accept = Accept::new()
                        .protocol(offered.last().cloned().unwrap_or_default())
                        .header("Set-Cookie", "id=7");
                    let (response, upgrading) = upgrade
                        .accept::<Body>(accept, Config::default(), Timeouts::default())
                        .unwrap();
                    let _ = tx.send(format!("offered {offered:?}"));
                    tokio::spawn(async move {
                        if let Ok(mut ws) = upgrading.await {
                            let _ = ws.send_message("hello").await;
                            let _ = ws.close_with(hybi::CloseCode::NORMAL, "").await;
                            while ws.recv().await.is_ok() {}
                        }
                    });
                    Ok(response)
                }
            });
            tokio::spawn(
                http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    rt.block_on(async move {
        let request = hybi::ClientRequest::new(&format!("ws://{addr}/"))
            .unwrap()
            .protocols(["a", "b"]);
        let (mut ws, response) =
            hybi::tokio::connect_with(request, hybi::ConnectOptions::default())
                .await
                .unwrap();
        assert_eq!(response.protocol(), Some("b"));
        assert_eq!(response.header("set-cookie"), Some(&b"id=7"[..]));
        assert_eq!(ws.recv().await.unwrap(), hybi::Message::text("hello"));
        assert!(matches!(ws.recv().await, Err(Error::Closed(_))));

        let mut s = TcpStream::connect(addr).await.unwrap();
        let bad = String::from_utf8_lossy(REQUEST).replace("Version: 13", "Version: 7");
        s.write_all(bad.as_bytes()).await.unwrap();
        let mut head = vec![0u8; 1024];
        let n = s.read(&mut head).await.unwrap();
        let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 426 "), "{head}");
        assert!(head.contains("\r\nsec-websocket-version: 13\r\n"), "{head}");
    });
    assert_eq!(rx.recv().unwrap(), r#"offered ["a", "b"]"#);
    assert_eq!(rx.recv().unwrap(), "refused 426");

    // An answer that cannot be sent: a subprotocol nobody offered.
    let request = http::Request::get("/")
        .header("host", "h")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", support::wire::WS_KEY)
        .header("sec-websocket-version", "13")
        .extension(hyper_on_upgrade_for_tests())
        .body(())
        .unwrap();
    let mut request = request;
    let upgrade = Upgrade::new(&mut request).unwrap();
    let err = upgrade
        .accept::<Body>(
            Accept::new().protocol("x"),
            Config::default(),
            Timeouts::default(),
        )
        .unwrap_err();
    assert_eq!(err, UsageError::ProtocolNotOffered("x".into()));
    // The same through `answer`: a 500, and the future fails with the same error.
    let upgrade = Upgrade::new(&mut with_on_upgrade(request)).unwrap();
    let (response, upgrading) = upgrade.answer::<String>(
        Accept::new().protocol("x"),
        Config::default(),
        Timeouts::default(),
    );
    assert_eq!(response.status(), 500);
    assert!(upgrading.connection().is_none());
    let failed = rt.block_on(upgrading);
    assert!(matches!(
        failed,
        Err(Error::Usage(UsageError::ProtocolNotOffered(_)))
    ));
    // A request that is not an upgrade at all.
    let mut plain = http::Request::get("/")
        .header("host", "h")
        .body(())
        .unwrap();
    assert_eq!(
        Upgrade::new(&mut plain).unwrap_err(),
        Rejection::Handshake(HandshakeError::MissingUpgrade)
    );
}

/// An `OnUpgrade` as hyper's server puts in a request; this one never resolves to a
/// connection (its sender is gone), which is all `accept`/`answer` need.
fn hyper_on_upgrade_for_tests() -> hyper::upgrade::OnUpgrade {
    let mut request = hyper::Request::new(());
    hyper::upgrade::on(&mut request)
}

fn with_on_upgrade(mut request: http::Request<()>) -> http::Request<()> {
    request
        .extensions_mut()
        .insert(hyper_on_upgrade_for_tests());
    request
}

/// The client leaves right after the 101: the WebSocket the `Upgrading` future gave sees the
/// end of the connection and its task ends, within a bound. (A client that leaves before
/// hyper dispatched its request never reaches the application: hyper drops it.)
#[test]
fn the_websocket_ends_when_the_client_leaves_after_the_upgrade() {
    let (addr, rx) = server(Path::Upgraded);
    for _ in 0..10 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut s, REQUEST).unwrap();
        let (head, _) = support::wire::read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        drop(s);
        let end = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the WebSocket did not end");
        // The end of the connection without a close frame: 1006, not clean.
        let outcome = end.end.error.close_outcome().expect("a close outcome");
        assert!(!outcome.clean, "{outcome:?}");
        assert_eq!(outcome.code, hybi::CloseCode::ABNORMAL, "{outcome:?}");
    }
}
