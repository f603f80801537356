//! The HTTP/2 WebSocket server (RFC 8441 extended CONNECT through `hybi::hyper` and
//! `hybi::axum`) under abuse and load, with a raw HTTP/2 client (the `h2` crate) over loopback:
//!
//! - bad CONNECTs, through hyper-util's auto builder and through `axum::serve`: a CONNECT without
//!   `:protocol` or with another protocol (400, never a hang), version missing or not 13 (426
//!   with `Sec-WebSocket-Version: 13`), a `Sec-WebSocket-Key` (ignored: 200 without
//!   `Sec-WebSocket-Accept`), bad extension offers (declined, or 400 when malformed), a GET or
//!   POST over HTTP/2 (405 with `Allow: CONNECT`); the connection serves WebSockets after each;
//! - SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised only when the server asks for it, and an
//!   extended CONNECT to a server that did not is reset (PROTOCOL_ERROR), not hung;
//! - isolation: several WebSockets on one HTTP/2 connection; a client RST_STREAM ends that one
//!   as abnormal (1006, not clean) while the others keep echoing; the client dropping the TCP
//!   connection ends every one of them as 1006;
//! - flow control: a stream whose reader never reads (its window stays closed) stops the
//!   server's sends at a bounded amount (measured and printed), the write timeout ends it, and
//!   the other streams on the connection stay live throughout;
//! - the other direction: a server WebSocket that does not read holds back the client's data
//!   in hyper's windows; with hyper's defaults (1 MiB per stream and per connection) one such
//!   stream stalls every other stream on the connection, with a connection window larger than
//!   the stream window the others stay live;

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::any;
use axum::Router;
use h2::Reason;
use hybi::axum::WebSocketUpgrade;
use hybi::hyper::WebSocket;
use hybi::{CloseCode, Config, DeflateConfig, Error, Message, Timeouts};
use support::http2::{self as h2t, Handler, Server, ServerOptions, Windows};
use support::tokio_server;

/// Runs `f` on a fresh runtime, failing with `what` and the progress it reports when it takes
/// longer than `limit`.
fn block_on<F: std::future::Future>(
    what: &str,
    limit: Duration,
    progress: &Progress,
    f: F,
) -> F::Output {
    tokio_server::runtime().block_on(async {
        match tokio::time::timeout(limit, f).await {
            Ok(v) => v,
            Err(_) => panic!("{what}: timed out after {limit:?}; {}", progress.report()),
        }
    })
}

/// Named counters a hung test prints.
#[derive(Default, Clone)]
struct Progress(Arc<Mutex<Vec<Counter>>>);

/// A named counter of a [`Progress`].
type Counter = (String, Arc<AtomicUsize>);

impl Progress {
    fn counter(&self, name: &str) -> Arc<AtomicUsize> {
        let c = Arc::new(AtomicUsize::new(0));
        self.0.lock().unwrap().push((name.to_string(), c.clone()));
        c
    }
    fn report(&self) -> String {
        let all = self.0.lock().unwrap();
        let parts: Vec<String> = all
            .iter()
            .map(|(n, c)| format!("{n}={}", c.load(Ordering::SeqCst)))
            .collect();
        format!("progress: {}", parts.join(", "))
    }
}

/// How a server WebSocket ended.
#[derive(Debug)]
struct End {
    path: String,
    error: Error,
    code: Option<CloseCode>,
    clean: Option<bool>,
    messages: usize,
}

/// An echo handler reporting each WebSocket's end.
fn echo_handler(ends: mpsc::Sender<End>) -> Handler {
    let ends = Arc::new(Mutex::new(ends));
    Arc::new(move |ws: WebSocket, path: String| {
        let ends = ends.clone();
        Box::pin(async move {
            let end = echo(ws, path).await;
            let _ = ends.lock().unwrap().send(end);
        })
    })
}

/// The message after which the echo server closes the WebSocket itself.
const SERVER_CLOSES: &str = "please close";

async fn echo(mut ws: WebSocket, path: String) -> End {
    let mut messages = 0;
    let error = loop {
        match ws.recv().await {
            // The server starts the closing handshake.
            Ok(Message::Text(t)) if t == SERVER_CLOSES => {
                messages += 1;
                if let Err(e) = ws.close_with(CloseCode::NORMAL, "server closes").await {
                    break e;
                }
            }
            Ok(m) => {
                messages += 1;
                if let Err(e) = ws.send_message(m).await {
                    break e;
                }
            }
            Err(e) => break e,
        }
    };
    let outcome = ws.connection().close_outcome().cloned();
    End {
        path,
        code: outcome.as_ref().map(|o| o.code),
        clean: outcome.as_ref().map(|o| o.clean),
        error,
        messages,
    }
}

fn echo_server(options: ServerOptions) -> (Server, mpsc::Receiver<End>) {
    let (tx, rx) = mpsc::channel();
    (Server::start(options, echo_handler(tx)), rx)
}

/// The same echo behind `axum::serve` (which enables extended CONNECT itself) through the
/// extractor, with `any`.
struct AxumServer {
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn axum_echo_server(config: Config) -> AxumServer {
    let app = Router::new().fallback(any(move |ws: WebSocketUpgrade| {
        let config = config.clone();
        async move {
            ws.with_config(config)
                .with_timeouts(Timeouts::default().with_ping_interval(None))
                .on_upgrade(|ws| async move {
                    let _ = echo(ws, String::new()).await;
                })
        }
    }));
    let (addr, stop) = tokio_server::spawn(|listener, stopped| async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    AxumServer { addr, _stop: stop }
}

fn server_config() -> Config {
    Config::default()
        .with_protocols(["chat"])
        .with_deflate(DeflateConfig::default())
}

/// One echo over a WebSocket on `client`'s connection: proves the connection still serves.
async fn echo_once(client: &h2t::Client, addr: std::net::SocketAddr, text: &str) {
    let io = h2t::open_websocket(&client.send, addr, "/after").await;
    let mut ws = h2t::client_websocket(io, Timeouts::default().with_ping_interval(None));
    ws.send_message(Message::text(text)).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text(text));
}

// ------------------------------------------------------------------ bad CONNECTs

/// One bad (or odd) request and what must come back.
struct Bad {
    what: &'static str,
    method: http::Method,
    protocol: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    /// Response headers that must be there, with their values.
    has: &'static [(&'static str, &'static str)],
    /// Response headers that must not be there.
    lacks: &'static [&'static str],
}

const V13: (&str, &str) = ("sec-websocket-version", "13");

fn bad_cases() -> Vec<Bad> {
    use http::Method;
    let b = |what, method, protocol, headers, status, has, lacks| Bad {
        what,
        method,
        protocol,
        headers,
        status,
        has,
        lacks,
    };
    vec![
        b("CONNECT without :protocol", Method::CONNECT, None, &[V13], 400, &[], &[]),
        b("CONNECT with :protocol h2c", Method::CONNECT, Some("h2c"), &[V13], 400, &[], &[]),
        b("CONNECT with :protocol connect-udp", Method::CONNECT, Some("connect-udp"), &[V13], 400, &[], &[]),
        b("no Sec-WebSocket-Version", Method::CONNECT, Some("websocket"), &[], 426,
          &[("sec-websocket-version", "13")], &[]),
        b("Sec-WebSocket-Version: 8", Method::CONNECT, Some("websocket"),
          &[("sec-websocket-version", "8")], 426, &[("sec-websocket-version", "13")], &[]),
        b("two Sec-WebSocket-Version fields", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-version", "13")], 426, &[("sec-websocket-version", "13")], &[]),
        // RFC 8441 §5: no key over HTTP/2; one sent anyway is ignored (nothing to prove).
        b("a Sec-WebSocket-Key (ignored)", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")], 200, &[],
          &["sec-websocket-accept"]),
        b("a malformed Sec-WebSocket-Key (ignored)", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-key", "not base64!")], 200, &[], &["sec-websocket-accept"]),
        // RFC 7692 §5: an offer with invalid parameters is declined, the next one taken.
        b("deflate with server_max_window_bits=7", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-extensions", "permessage-deflate; server_max_window_bits=7")],
          200, &[], &["sec-websocket-extensions"]),
        b("deflate with a repeated parameter, then a good offer", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-extensions",
                  "permessage-deflate; client_max_window_bits; client_max_window_bits, permessage-deflate")],
          200, &[("sec-websocket-extensions", "permessage-deflate")], &[]),
        b("deflate with an unknown parameter", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-extensions", "permessage-deflate; x=1")],
          200, &[], &["sec-websocket-extensions"]),
        b("an unknown extension", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-extensions", "x-webkit-deflate-frame")],
          200, &[], &["sec-websocket-extensions"]),
        b("a malformed extension list", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-extensions", "permessage-deflate; =1")], 400, &[], &[]),
        b("a malformed subprotocol list", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-protocol", "chat, a b")], 400, &[], &[]),
        b("subprotocol chosen", Method::CONNECT, Some("websocket"),
          &[V13, ("sec-websocket-protocol", "superchat, chat")], 200,
          &[("sec-websocket-protocol", "chat")], &["sec-websocket-accept"]),
        b("GET over HTTP/2", Method::GET, None, &[V13], 405, &[("allow", "CONNECT")], &[]),
        b("POST over HTTP/2", Method::POST, None, &[V13], 405, &[("allow", "CONNECT")], &[]),
    ]
}

/// Every bad case on one HTTP/2 connection to `addr`: the status and headers, the response
/// within a second, its stream ended, and a WebSocket still served on the same connection.
fn check_bad_connects(stack: &str, addr: std::net::SocketAddr) {
    let progress = Progress::default();
    let done = progress.counter("cases done");
    block_on(stack, Duration::from_secs(30), &progress, async move {
        let client = h2t::client(addr, Windows::default()).await;
        for case in bad_cases() {
            let t = Instant::now();
            let request = h2t::request(
                case.method.clone(),
                addr,
                "/bad",
                case.protocol,
                case.headers,
            );
            let (response, _stream) =
                tokio::time::timeout(Duration::from_secs(2), h2t::open(&client.send, request))
                    .await
                    .unwrap_or_else(|_| panic!("{stack}, {}: no answer in 2 s", case.what))
                    .unwrap_or_else(|e| panic!("{stack}, {}: {e}", case.what));
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            assert_eq!(status, case.status, "{stack}, {}: {headers:?}", case.what);
            for (name, value) in case.has {
                assert_eq!(
                    headers.get(*name).map(|v| v.to_str().unwrap()),
                    Some(*value),
                    "{stack}, {}: {headers:?}",
                    case.what
                );
            }
            for name in case.lacks {
                assert!(
                    headers.get(*name).is_none(),
                    "{stack}, {}: {headers:?}",
                    case.what
                );
            }
            if status != 200 {
                // A refusal is a complete response: its body ends, the stream with it.
                let body = tokio::time::timeout(
                    Duration::from_secs(2),
                    h2t::body_text(response.into_body()),
                )
                .await
                .unwrap_or_else(|_| {
                    panic!("{stack}, {}: the refusal's body never ended", case.what)
                });
                assert!(
                    !body.is_empty(),
                    "{stack}, {}: a refusal without a reason",
                    case.what
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "{stack}, {}: slow answer {:?}",
                case.what,
                t.elapsed()
            );
            done.fetch_add(1, Ordering::SeqCst);
        }
        echo_once(&client, addr, &format!("{stack} still serves")).await;
    });
}

#[test]
fn bad_connects_through_hyper_auto() {
    let (server, _ends) = echo_server(ServerOptions {
        config: server_config(),
        ..ServerOptions::default()
    });
    check_bad_connects("hyper-util auto", server.addr);
}

#[test]
fn bad_connects_through_axum() {
    let server = axum_echo_server(server_config());
    check_bad_connects("axum::serve", server.addr);
}

/// hyper-util's auto builder advertises SETTINGS_ENABLE_CONNECT_PROTOCOL only with
/// `http2().enable_connect_protocol()`; without it an extended CONNECT is reset by h2
/// (PROTOCOL_ERROR) before hybi sees it, promptly, and the connection serves on.
#[test]
fn connect_protocol_setting_only_when_asked() {
    let progress = Progress::default();
    for enabled in [true, false] {
        let (server, _ends) = echo_server(ServerOptions {
            connect_protocol: enabled,
            ..ServerOptions::default()
        });
        let addr = server.addr;
        block_on(
            "SETTINGS_ENABLE_CONNECT_PROTOCOL",
            Duration::from_secs(10),
            &progress,
            async move {
                let client = h2t::client(addr, Windows::default()).await;
                // The server's SETTINGS come before any response: one request settles them.
                let get = h2t::request(http::Method::GET, addr, "/", None, &[V13]);
                let (response, _) = h2t::open(&client.send, get).await.unwrap();
                assert_eq!(response.status(), 405);
                assert_eq!(client.send.is_extended_connect_protocol_enabled(), enabled);
                let connect = h2t::websocket_request(addr, "/ws", &[]);
                match tokio::time::timeout(Duration::from_secs(2), h2t::open(&client.send, connect))
                    .await
                {
                    Ok(Ok((response, _))) if enabled => assert_eq!(response.status(), 200),
                    Ok(Err(e)) if !enabled => {
                        assert_eq!(e.reason(), Some(Reason::PROTOCOL_ERROR), "{e}")
                    }
                    Ok(other) => panic!("enabled={enabled}: {:?}", other.map(|(r, _)| r.status())),
                    Err(_) => panic!("enabled={enabled}: the extended CONNECT hung"),
                }
                let get = h2t::request(http::Method::GET, addr, "/", None, &[V13]);
                let (response, _) = h2t::open(&client.send, get).await.unwrap();
                assert_eq!(response.status(), 405, "the connection serves on");
            },
        );
    }
}

// ------------------------------------------------------------------ isolation

fn wait_end(ends: &mpsc::Receiver<End>, what: &str) -> End {
    ends.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{what}: the server's WebSocket did not end"))
}

fn assert_abnormal(end: &End, what: &str) {
    assert_eq!(end.code, Some(CloseCode::ABNORMAL), "{what}: {end:?}");
    assert_eq!(end.clean, Some(false), "{what}: {end:?}");
    assert!(!end.error.is_normal_close(), "{what}: {end:?}");
}

/// Five WebSockets on one HTTP/2 connection; RST_STREAM on one ends it as 1006 (unclean) on
/// the server (twice, with two reasons) while the other three keep echoing; then the client drops the TCP connection and
/// the three end as 1006 too.
#[test]
fn reset_stream_ends_one_websocket_only() {
    const N: usize = 5;
    const ROUNDS: usize = 200;
    let (server, ends) = echo_server(ServerOptions::default());
    let addr = server.addr;
    let progress = Progress::default();
    let echoed = progress.counter("echoes after the reset");
    let rt = Runtime::new(&progress);

    let (client, mut sockets) = rt.run("open", async move {
        let client = h2t::client(addr, Windows::default()).await;
        let mut sockets = Vec::new();
        for i in 0..N {
            let io = h2t::open_websocket(&client.send, addr, &format!("/ws/{i}")).await;
            let mut ws = h2t::client_websocket(io, Timeouts::default().with_ping_interval(None));
            ws.send_message(Message::text(format!("hello {i}")))
                .await
                .unwrap();
            assert_eq!(
                ws.recv().await.unwrap(),
                Message::text(format!("hello {i}"))
            );
            sockets.push(ws);
        }
        (client, sockets)
    });

    // RST_STREAM on stream 0 with CANCEL (what a browser sends for a WebSocket it abandons;
    // hyper reads it as the end of the stream) and on stream 1 with INTERNAL_ERROR (hyper
    // reads it as an I/O error).
    let mut resets = Vec::new();
    for (i, reason) in [(0, Reason::CANCEL), (1, Reason::INTERNAL_ERROR)] {
        let mut ws = sockets.remove(0);
        ws.get_mut().reset(reason);
        let end = wait_end(&ends, "the reset stream");
        assert_eq!(end.path, format!("/ws/{i}"));
        assert_eq!(end.messages, 1, "{end:?}");
        assert_abnormal(&end, &format!("RST_STREAM {reason:?}"));
        eprintln!("after RST_STREAM {reason:?} the server saw {:?}", end.error);
        resets.push(ws);
    }

    // The others echo on, concurrently, on the same connection.
    let sockets = rt.run("echo after the reset", async move {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, mut ws) in sockets.into_iter().enumerate() {
            let echoed = echoed.clone();
            tasks.spawn(async move {
                for round in 0..ROUNDS {
                    let m = Message::binary(vec![i as u8; 1 + round * 37 % 5000]);
                    ws.send_message(m.clone()).await.unwrap();
                    assert_eq!(ws.recv().await.unwrap(), m);
                    echoed.fetch_add(1, Ordering::SeqCst);
                }
                ws
            });
        }
        let mut sockets = Vec::new();
        while let Some(ws) = tasks.join_next().await {
            sockets.push(ws.unwrap());
        }
        sockets
    });
    assert!(
        ends.try_recv().is_err(),
        "another WebSocket ended with the reset one"
    );

    // The client drops the TCP connection: every WebSocket on it ends as 1006.
    client.conn.abort();
    drop((client.send, sockets, resets));
    let mut paths = Vec::new();
    for _ in 2..N {
        let end = wait_end(&ends, "a WebSocket of the dropped connection");
        assert_eq!(end.messages, 1 + ROUNDS, "{end:?}");
        assert_abnormal(&end, "TCP connection dropped");
        eprintln!("after the TCP drop the server saw {:?}", end.error);
        paths.push(end.path);
    }
    paths.sort();
    assert_eq!(paths, ["/ws/2", "/ws/3", "/ws/4"]);
    drop(rt);
}

/// A runtime for a test in phases (the client's connection task runs between them), each
/// phase bounded by a timeout that fails with the test's progress counters.
struct Runtime {
    rt: tokio::runtime::Runtime,
    progress: Progress,
}

impl Runtime {
    fn new(progress: &Progress) -> Self {
        Self {
            rt: tokio_server::runtime(),
            progress: progress.clone(),
        }
    }

    fn run<F: std::future::Future>(&self, what: &str, f: F) -> F::Output {
        let limit = Duration::from_secs(20);
        self.rt.block_on(async {
            match tokio::time::timeout(limit, f).await {
                Ok(v) => v,
                Err(_) => panic!(
                    "{what}: timed out after {limit:?}; {}",
                    self.progress.report()
                ),
            }
        })
    }
}

// ------------------------------------------------------------------ flow control

/// What the flooding handler saw.
#[derive(Debug)]
struct Flood {
    /// Bytes of messages whose `send_message` completed (handed to hyper).
    accepted: usize,
    /// The largest `buffered_amount` (hybi's own queue) seen while a write waited.
    max_buffered: usize,
    error: Error,
    /// From the first send to the end.
    lasted: Duration,
}

/// A server whose `/flood` WebSockets send `size`-byte messages until the connection ends
/// (counting the bytes accepted live in `accepted`), and whose other WebSockets echo.
fn flood_server(
    size: usize,
    accepted: Arc<AtomicUsize>,
    write_timeout: Duration,
) -> (Server, mpsc::Receiver<Flood>) {
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let handler: Handler = Arc::new(move |mut ws: WebSocket, path: String| {
        let (tx, accepted) = (tx.clone(), accepted.clone());
        Box::pin(async move {
            if path != "/flood" {
                let _ = echo(ws, path).await;
                return;
            }
            let message = Message::binary(vec![0x5a; size]);
            let (start, mut max_buffered) = (Instant::now(), 0);
            let error = loop {
                if let Err(e) = ws.queue(message.clone()) {
                    break e;
                }
                // Flush, looking at hybi's queue while the write waits.
                let sent = loop {
                    let tick = Duration::from_millis(20);
                    match tokio::time::timeout(tick, ws.flush_queue()).await {
                        Ok(sent) => break sent,
                        Err(_) => {
                            max_buffered = max_buffered.max(ws.connection().buffered_amount())
                        }
                    }
                };
                if let Err(e) = sent {
                    break e;
                }
                accepted.fetch_add(size, Ordering::SeqCst);
            };
            let _ = tx.lock().unwrap().send(Flood {
                accepted: accepted.load(Ordering::SeqCst),
                max_buffered,
                error,
                lasted: start.elapsed(),
            });
        })
    });
    let options = ServerOptions {
        timeouts: Timeouts::default()
            .with_ping_interval(None)
            .with_write_timeout(Some(write_timeout)),
        ..ServerOptions::default()
    };
    (Server::start(options, handler), rx)
}

/// A client that opens a stream and never reads it (its 64 KiB stream window stays closed;
/// the connection window is large, as browsers set it) while the server keeps sending: the
/// server's sends stop at a bounded amount, the write timeout ends the WebSocket, and two other
/// WebSockets on the same connection echo throughout. The figures are printed.
#[test]
fn closed_window_bounds_the_server() {
    for size in [16 << 10, 1 << 20] {
        closed_window(size);
    }
}

fn closed_window(size: usize) {
    const STREAM_WINDOW: u32 = 65_535;
    let write_timeout = Duration::from_secs(2);
    let progress = Progress::default();
    let accepted = progress.counter("flood bytes accepted");
    let echoed = progress.counter("echoes on the other streams");
    let (server, floods) = flood_server(size, accepted.clone(), write_timeout);
    let addr = server.addr;
    let rt = Runtime::new(&progress);
    let windows = Windows {
        stream: STREAM_WINDOW,
        connection: 16 << 20,
    };

    let (client, flood, echo_task) = rt.run("open", {
        let echoed = echoed.clone();
        async move {
            let client = h2t::client(addr, windows).await;
            // Never read: no window given back.
            let flood = h2t::open_websocket(&client.send, addr, "/flood").await;
            let mut sockets = Vec::new();
            for i in 0..2 {
                let io = h2t::open_websocket(&client.send, addr, &format!("/ws/{i}")).await;
                sockets.push(h2t::client_websocket(
                    io,
                    Timeouts::default().with_ping_interval(None),
                ));
            }
            // The other streams echo until told to stop.
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(async move {
                let mut round = 0usize;
                while !*stop_rx.borrow() {
                    for ws in &mut sockets {
                        let m = Message::binary(vec![round as u8; 1 + round % 3000]);
                        ws.send_message(m.clone()).await.unwrap();
                        assert_eq!(ws.recv().await.unwrap(), m);
                        echoed.fetch_add(1, Ordering::SeqCst);
                    }
                    round += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                sockets
            });
            (client, flood, (task, stop_tx))
        }
    });

    // The server's sends stop: the amount accepted stays put for half a second.
    let start = Instant::now();
    let plateau = loop {
        let before = accepted.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(500));
        let after = accepted.load(Ordering::SeqCst);
        if after == before && after > 0 {
            break after;
        }
        assert!(
            start.elapsed() < write_timeout,
            "the server kept sending: {}",
            progress.report()
        );
    };
    let echoes_during = echoed.load(Ordering::SeqCst);
    assert!(
        echoes_during > 10,
        "the other streams stalled: {}",
        progress.report()
    );

    // The write timeout ends the flooding WebSocket as a dead peer.
    let end = floods
        .recv_timeout(write_timeout * 3)
        .unwrap_or_else(|_| panic!("the flood did not end: {}", progress.report()));
    assert!(
        matches!(end.error, Error::Timeout(hybi::Timeout::Write)),
        "{end:?}"
    );
    assert_eq!(end.accepted, plateau);
    eprintln!(
        "closed window, {size} B messages: the server's sends stopped after {plateau} B accepted \
         ({} messages; client window {STREAM_WINDOW} B), hybi's queue at most {} B, \
         ended by {:?} after {:?}; {echoes_during} echoes on the other streams meanwhile",
        plateau / size,
        end.max_buffered,
        end.error,
        end.lasted,
    );
    // Bounded: the client's window plus hyper's hand-off (a write in its channel, one waiting
    // for window, one in h2's send buffer: each at most one of hybi's writes), and in hybi at
    // most the message being sent.
    let bound = STREAM_WINDOW as usize + 4 * (size + 14);
    assert!(plateau <= bound, "{plateau} B accepted, bound {bound}");
    assert!(end.max_buffered <= size + 14, "{end:?}");

    // The other streams are still live after the flood ended.
    let (task, stop) = echo_task;
    let after = echoed.load(Ordering::SeqCst);
    rt.run("echo after the flood", async move {
        while echoed.load(Ordering::SeqCst) < after + 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop.send(true);
        let sockets = task.await.unwrap();
        drop((sockets, flood, client));
    });
}

// ------------------------------------------------------------------ closing

/// The closing handshake over HTTP/2, started by the client, 64 WebSockets on one connection:
/// both sides see a clean close (1000), on the server and on the raw client, whose stream ends
/// with END_STREAM both ways (no RST_STREAM).
#[test]
fn clean_close_over_http2() {
    const N: usize = 64;
    let (server, ends) = echo_server(ServerOptions::default());
    let addr = server.addr;
    let progress = Progress::default();
    let closed = progress.counter("client closes complete");
    let rt = Runtime::new(&progress);
    let client = rt.run("close", async move {
        let client = h2t::client(addr, Windows::default()).await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..N {
            let io = h2t::open_websocket(&client.send, addr, &format!("/ws/{i}")).await;
            let closed = closed.clone();
            tasks.spawn(async move {
                let mut ws =
                    h2t::client_websocket(io, Timeouts::default().with_ping_interval(None));
                ws.send_message(Message::text("bye")).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), Message::text("bye"));
                ws.close_with(CloseCode::NORMAL, "done").await.unwrap();
                let outcome = match ws.recv().await {
                    Ok(m) => panic!("{m:?} after the close"),
                    Err(Error::Closed(o)) => o,
                    Err(e) => panic!("client {i}: {e:?}"),
                };
                assert!(outcome.clean, "{outcome:?}");
                closed.fetch_add(1, Ordering::SeqCst);
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        client
    });
    for _ in 0..N {
        let end = wait_end(&ends, "a closed WebSocket");
        assert_eq!(
            (end.code, end.clean),
            (Some(CloseCode::NORMAL), Some(true)),
            "{end:?}"
        );
    }
    drop((client, rt));
}

/// The same through hyper's HTTP/2 client, half of the closes started by the client, half by
/// the server: hyper reports an RST_STREAM that arrives before its own END_STREAM is out as a
/// write error, so the server must not drop a stream the client has not ended (it waits for
/// END_STREAM, bounded by the close timeout): every close is clean on both sides.
#[test]
fn clean_close_over_hyper_client() {
    use http_body_util::Empty;
    const N: usize = 64;
    let (server, ends) = echo_server(ServerOptions::default());
    let addr = server.addr;
    let progress = Progress::default();
    let rt = Runtime::new(&progress);
    let errors = rt.run("close", async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake::<_, Empty<hyper::body::Bytes>>(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..N {
            let mut sender = sender.clone();
            tasks.spawn(async move {
                let mut connect = http::Request::builder()
                    .method(http::Method::CONNECT)
                    .uri(format!("http://{addr}/ws/{i}"))
                    .header("sec-websocket-version", "13")
                    .body(Empty::new())
                    .unwrap();
                connect
                    .extensions_mut()
                    .insert(hyper::ext::Protocol::from_static("websocket"));
                sender.ready().await.unwrap();
                let response = sender.send_request(connect).await.unwrap();
                let upgraded = hyper::upgrade::on(response).await.unwrap();
                let conn = hybi::Connection::open(hybi::Role::Client, Config::default());
                let mut ws = hybi::tokio::WebSocketStream::new(
                    hyper_util::rt::TokioIo::new(upgraded),
                    conn,
                    Timeouts::default().with_ping_interval(None),
                );
                ws.send_message(Message::text("bye")).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), Message::text("bye"));
                if i % 2 == 0 {
                    ws.close_with(CloseCode::NORMAL, "done").await.unwrap();
                } else {
                    // The server closes first; the client answers.
                    ws.send_message(Message::text(SERVER_CLOSES)).await.unwrap();
                }
                match ws.recv().await {
                    Ok(m) => panic!("{m:?} after the close"),
                    Err(Error::Closed(o)) if o.clean => None,
                    Err(Error::Closed(o)) => Some(format!("{o:?}")),
                    Err(e) => Some(format!("{e:?}")),
                }
            });
        }
        let mut errors = Vec::new();
        while let Some(r) = tasks.join_next().await {
            errors.extend(r.unwrap());
        }
        errors
    });
    assert!(
        errors.is_empty(),
        "{} of {N}: {:?}",
        errors.len(),
        errors.first()
    );
    for _ in 0..N {
        let end = wait_end(&ends, "a closed WebSocket");
        assert_eq!(
            (end.code, end.clean),
            (Some(CloseCode::NORMAL), Some(true)),
            "{end:?}"
        );
    }
    drop(rt);
}

// ------------------------------------------------------------------ a server that does not read

/// A client sends 2 MiB on a stream whose server WebSocket does not read for a while, then
/// echoes on a second stream of the same connection. What the first stream holds back counts
/// against the connection's window too: with hyper's default windows (1 MiB per stream, 1 MiB
/// per connection) it takes the whole connection window and the echo stalls until the first
/// WebSocket reads again; with a 256 KiB stream window in a 16 MiB connection window the echo
/// goes through at once.
#[test]
fn unread_stream_and_the_connection_window() {
    for (windows, echo_passes) in [
        (None, false),
        (
            Some(Windows {
                stream: 256 << 10,
                connection: 16 << 20,
            }),
            true,
        ),
    ] {
        unread_stream(windows, echo_passes);
    }
}

fn unread_stream(windows: Option<Windows>, echo_passes: bool) {
    let progress = Progress::default();
    let sent = progress.counter("bytes written on the stalled stream");
    let (tx, _rx) = mpsc::channel();
    let echo = echo_handler(tx);
    // The stalled WebSocket reads (echoes) once the test says so.
    let resume = Arc::new(tokio::sync::Notify::new());
    let handler: Handler = Arc::new({
        let resume = resume.clone();
        move |ws: WebSocket, path: String| {
            let (echo, resume) = (echo.clone(), resume.clone());
            Box::pin(async move {
                if path == "/stall" {
                    resume.notified().await;
                }
                echo(ws, path).await
            })
        }
    });
    let server = Server::start(
        ServerOptions {
            windows,
            ..ServerOptions::default()
        },
        handler,
    );
    let addr = server.addr;
    let rt = Runtime::new(&progress);
    let what = format!("server windows {windows:?}");
    rt.run(&what.clone(), async move {
        let client = h2t::client(addr, Windows::default()).await;
        let stalled = h2t::open_websocket(&client.send, addr, "/stall").await;
        let (mut stalled, echoes) = stalled.into_parts();
        // The echoes of the stalled stream are read (and dropped) as they come.
        let reader = tokio::spawn(h2t::body_text(echoes));
        // 2 MiB of masked binary frames, written as far as the windows let them.
        let frames: Vec<u8> = (0..32)
            .flat_map(|_| support::wire::F::binary(vec![1u8; 64 << 10]).encode(Some(support::KEY)))
            .collect();
        let total = frames.len();
        let writer = tokio::spawn({
            let sent = sent.clone();
            async move {
                h2t::send_counting(&mut stalled, &frames, Some(64 << 10), &sent).await;
                stalled
            }
        });
        // Until the windows are full: nothing more goes out for 200 ms.
        let mut last = usize::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = sent.load(Ordering::SeqCst);
            if now == last && now > 0 {
                break;
            }
            last = now;
        }
        assert!(last < total, "{what}: the unread stream took all 2 MiB");
        let io = h2t::open_websocket(&client.send, addr, "/ws/0").await;
        let mut ws = h2t::client_websocket(io, Timeouts::default().with_ping_interval(None));
        let m = Message::binary(vec![2u8; 10_000]);
        let t = Instant::now();
        let echoed = tokio::time::timeout(Duration::from_secs(2), async {
            ws.send_message(m.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), m);
        })
        .await
        .is_ok();
        eprintln!(
            "{what}: {last} B held back unread; an echo on another stream {} ({:?})",
            if echoed { "went through" } else { "stalled" },
            t.elapsed()
        );
        assert_eq!(echoed, echo_passes, "{what}");
        // Once the stalled WebSocket reads again, everything flows.
        resume.notify_one();
        let _stalled = writer.await.unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), total);
        drop(reader);
        if !echoed {
            // The echo that was cut short: its answer comes now.
            assert_eq!(ws.recv().await.unwrap(), m);
        }
        ws.send_message(m.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), m);
    });
}
