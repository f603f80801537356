//! Integration tests of the chat example (`examples/chat_server.rs`), driven through its
//! `run(listener, shutdown)` with hybi's own tokio client. Every test listens on 127.0.0.1 port
//! 0 and stops by itself (a timeout around everything).

#[allow(dead_code)]
#[path = "../examples/chat_server.rs"]
mod chat_server;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hybi::tokio::{MaybeTlsStream, WebSocketStream};
use hybi::{ClientRequest, CloseCode, CloseOutcome, Config, Error, Message, Timeouts};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

type Ws = WebSocketStream<MaybeTlsStream>;

/// Runs a test body, failing it if it takes longer than `secs`.
async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    timeout(Duration::from_secs(secs), f)
        .await
        .expect("test timed out")
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// A server on 127.0.0.1 port 0. Accepted sockets inherit the listener's small send buffer,
    /// so a client that stops reading backs up into the server quickly.
    fn start() -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(64 << 10).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener: TcpListener = socket.listen(128).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chat_server::run(listener, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/chat", self.addr)
    }

    /// A WebSocket client offering the `chat` subprotocol.
    async fn connect(&self) -> Ws {
        let request = ClientRequest::new(&self.url()).unwrap().protocol("chat");
        let (ws, response) = hybi::tokio::connect_with(
            request,
            hybi::ConnectOptions::default()
                .with_config(Config::default())
                .with_timeouts(Timeouts::default()),
        )
        .await
        .expect("connect");
        assert_eq!(response.protocol(), Some("chat"));
        ws
    }

    /// A client that has joined as `nick`, past its welcome and its own join notice.
    async fn join(&self, nick: &str) -> (Ws, Value) {
        let mut ws = self.connect().await;
        send_json(&mut ws, json!({"type": "join", "nick": nick})).await;
        let welcome = recv_json(&mut ws).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let joined = recv_json(&mut ws).await;
        assert_eq!(joined["type"], "join", "{joined}");
        assert_eq!(joined["nick"], nick);
        (ws, welcome)
    }

    /// Shuts down while `clients` read: each must be closed with 1001, and `run` must return
    /// without waiting out its grace period.
    async fn shutdown_with(self, clients: Vec<Ws>) {
        let readers: Vec<_> = clients
            .into_iter()
            .map(|mut ws| tokio::spawn(async move { closed(&mut ws).await }))
            .collect();
        self.shutdown().await;
        for reader in readers {
            let outcome = reader.await.unwrap();
            assert_eq!(outcome.code, CloseCode::GOING_AWAY);
            assert_eq!(outcome.reason, "server shutting down");
            assert!(outcome.clean, "{outcome:?}");
        }
    }

    /// Triggers the shutdown and waits for `run` to return.
    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("run() did not return after shutdown")
            .unwrap();
    }
}

async fn send_json(ws: &mut Ws, value: Value) {
    ws.send_message(value.to_string()).await.unwrap();
}

async fn recv_json(ws: &mut Ws) -> Value {
    match ws.recv().await.expect("recv") {
        Message::Text(t) => serde_json::from_str(t.as_str()).expect("JSON"),
        Message::Binary(b) => panic!("expected JSON text, got {} binary bytes", b.len()),
    }
}

/// Skips notices until a message of `kind` arrives.
async fn recv_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = recv_json(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Reads until the connection ends; the close outcome (panics on any other error).
async fn closed(ws: &mut Ws) -> CloseOutcome {
    loop {
        match ws.recv().await {
            Ok(_) => {}
            Err(Error::Closed(outcome)) => return outcome,
            Err(e) => panic!("expected a close, got {e}"),
        }
    }
}

/// Sends a raw HTTP request; the whole response (the server closes after it).
async fn http(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn join_welcome_and_online_list() {
    within(20, async {
        let server = Server::start();
        let (mut alice, welcome) = server.join("alice").await;
        assert_eq!(
            welcome,
            json!({"type": "welcome", "nick": "alice", "online": ["alice"], "history": []})
        );

        // The nick is trimmed; everyone gets the join with the online list in join order.
        let mut bob = server.connect().await;
        send_json(&mut bob, json!({"type": "join", "nick": "  bob "})).await;
        let welcome = recv_json(&mut bob).await;
        assert_eq!(welcome["nick"], "bob");
        assert_eq!(welcome["online"], json!(["alice", "bob"]));
        let own = recv_json(&mut bob).await;
        assert_eq!(own["type"], "join");
        let notice = recv_json(&mut alice).await;
        assert_eq!(notice["type"], "join");
        assert_eq!(notice["nick"], "bob");
        assert_eq!(notice["online"], json!(["alice", "bob"]));
        assert!(notice["ts"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(notice, own);
        server.shutdown_with(vec![alice, bob]).await;
    })
    .await
}

#[tokio::test]
async fn text_message_is_broadcast_to_everyone() {
    within(20, async {
        let server = Server::start();
        let (mut a, _) = server.join("a").await;
        let (mut b, _) = server.join("b").await;
        let (mut c, _) = server.join("c").await;
        send_json(
            &mut b,
            json!({"type": "message", "text": "hello, <world> ✓"}),
        )
        .await;
        for ws in [&mut a, &mut b, &mut c] {
            let m = recv_type(ws, "message").await;
            assert_eq!(m["from"], "b");
            assert_eq!(m["text"], "hello, <world> ✓");
            assert!(m["ts"].is_u64());
        }
        server.shutdown_with(vec![a, b, c]).await;
    })
    .await
}

#[tokio::test]
async fn binary_is_announced_then_sent_to_everyone() {
    within(20, async {
        let server = Server::start();
        let (mut a, _) = server.join("a").await;
        let (mut b, _) = server.join("b").await;
        recv_type(&mut a, "join").await; // b's
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        a.send_message(data.clone()).await.unwrap();
        for ws in [&mut a, &mut b] {
            let ann = recv_json(ws).await;
            assert_eq!(ann["type"], "binary", "{ann}");
            assert_eq!(ann["from"], "a");
            assert_eq!(ann["size"], 5000);
            // Immediately followed by the bytes.
            assert_eq!(
                ws.recv().await.unwrap(),
                Message::Binary(data.clone().into())
            );
        }
        // Over 64 KiB: an error, and the connection stays open.
        a.send_message(vec![0u8; 65537]).await.unwrap();
        let e = recv_json(&mut a).await;
        assert_eq!(
            e,
            json!({"type": "error", "text": "binary message too large (max 65536 bytes)"})
        );
        a.send_message(vec![1u8; 65536]).await.unwrap();
        assert_eq!(recv_json(&mut a).await["size"], 65536);
        assert_eq!(a.recv().await.unwrap().len(), 65536);
        server.shutdown_with(vec![a, b]).await;
    })
    .await
}

#[tokio::test]
async fn newcomer_gets_the_last_50_messages_oldest_first() {
    within(30, async {
        let server = Server::start();
        let (mut alice, _) = server.join("alice").await;
        for i in 0..60 {
            send_json(
                &mut alice,
                json!({"type": "message", "text": format!("m{i}")}),
            )
            .await;
        }
        // Once alice has all 60 back, all are in the history.
        for i in 0..60 {
            assert_eq!(
                recv_type(&mut alice, "message").await["text"],
                format!("m{i}")
            );
        }
        let (carol, welcome) = server.join("carol").await;
        let history = welcome["history"].as_array().unwrap();
        assert_eq!(history.len(), 50);
        for (i, h) in history.iter().enumerate() {
            assert_eq!(h["type"], "message");
            assert_eq!(h["from"], "alice");
            assert_eq!(h["text"], format!("m{}", i + 10));
        }
        assert_eq!(welcome["online"], json!(["alice", "carol"]));
        server.shutdown_with(vec![alice, carol]).await;
    })
    .await
}

#[tokio::test]
async fn bad_joins_get_an_error_and_close_1008() {
    within(20, async {
        let server = Server::start();
        let (alice, _) = server.join("alice").await;
        let long = "x".repeat(33);
        let cases = [
            (
                json!({"type": "join", "nick": "alice"}).to_string(),
                "nickname already taken",
            ),
            (
                json!({"type": "join", "nick": "   "}).to_string(),
                "invalid nickname (1-32 characters)",
            ),
            (
                json!({"type": "join", "nick": long}).to_string(),
                "invalid nickname (1-32 characters)",
            ),
            (
                json!({"type": "join", "nick": 7}).to_string(),
                "invalid nickname (1-32 characters)",
            ),
            (
                json!({"type": "message", "text": "hi"}).to_string(),
                "join first",
            ),
            ("not json".to_string(), "join first"),
        ];
        for (first, error) in cases {
            let mut ws = server.connect().await;
            ws.send_message(first.as_str()).await.unwrap();
            assert_eq!(
                recv_json(&mut ws).await,
                json!({"type": "error", "text": error}),
                "{first}"
            );
            let outcome = closed(&mut ws).await;
            assert_eq!(outcome.code, CloseCode::POLICY_VIOLATION, "{first}");
            assert_eq!(outcome.reason, error);
        }
        // A 32-character nick (counted in characters, not bytes) is fine.
        let (e, _) = server.join(&"é".repeat(32)).await;
        server.shutdown_with(vec![alice, e]).await;
    })
    .await
}

#[tokio::test]
async fn errors_after_join_keep_the_connection_open() {
    within(20, async {
        let server = Server::start();
        let (mut a, _) = server.join("a").await;
        let cases = [
            ("{oops".to_string(), "invalid JSON"),
            ("[1,2]".to_string(), "invalid message"),
            (json!({"type": "dance"}).to_string(), "unknown message type"),
            (
                json!({"type": "join", "nick": "b"}).to_string(),
                "already joined",
            ),
            (
                json!({"type": "message", "text": 5}).to_string(),
                "invalid message",
            ),
            (
                json!({"type": "message", "text": "y".repeat(4001)}).to_string(),
                "message too long (max 4000 characters)",
            ),
        ];
        for (msg, error) in cases {
            a.send_message(msg.as_str()).await.unwrap();
            assert_eq!(
                recv_json(&mut a).await,
                json!({"type": "error", "text": error}),
                "{msg}"
            );
        }
        send_json(&mut a, json!({"type": "message", "text": "ü".repeat(4000)})).await;
        assert_eq!(
            recv_json(&mut a).await["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            4000
        );
        // A message over 128 KiB fails the connection with 1009.
        a.send_message("z".repeat(129 << 10)).await.unwrap();
        let outcome = closed(&mut a).await;
        assert_eq!(outcome.code, CloseCode::MESSAGE_TOO_BIG);
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn leaving_is_announced() {
    within(20, async {
        let server = Server::start();
        let (mut alice, _) = server.join("alice").await;
        let (mut bob, _) = server.join("bob").await;
        recv_type(&mut alice, "join").await;
        bob.close_with(CloseCode::NORMAL, "bye").await.unwrap();
        assert!(closed(&mut bob).await.is_normal());
        let leave = recv_json(&mut alice).await;
        assert_eq!(leave["type"], "leave");
        assert_eq!(leave["nick"], "bob");
        assert_eq!(leave["online"], json!(["alice"]));
        // The nick is free again.
        let (bob, _) = server.join("bob").await;
        server.shutdown_with(vec![alice, bob]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_is_dropped_without_stalling_the_others() {
    const N: usize = 2000;
    within(120, async {
        let server = Server::start();
        // The slow client: a small receive buffer, and it never reads until it is dropped.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(server.addr).await.unwrap();
        let request = ClientRequest::new(&server.url()).unwrap().protocol("chat");
        let (mut slow, _) = hybi::tokio::client_with(
            MaybeTlsStream::Plain(tcp),
            request,
            Config::default(),
            Timeouts::default(),
        )
        .await
        .unwrap();
        send_json(&mut slow, json!({"type": "join", "nick": "slow"})).await;
        // Its join is done before the others join (it reads this much, then never again).
        recv_type(&mut slow, "welcome").await;
        recv_type(&mut slow, "join").await;

        let (mut a, _) = server.join("a").await;
        let (b, _) = server.join("b").await;
        recv_type(&mut a, "join").await; // b's

        // Both fast clients must get all N messages, in order, and see "slow" leave.
        // The sender keeps at most WINDOW messages ahead of what both fast readers received,
        // so the fast readers never fall a queue behind, however fast the server takes input
        // in (a sender that outruns every reader would get the readers dropped, as it should).
        const WINDOW: usize = 256;
        let credit = Arc::new(tokio::sync::Semaphore::new(WINDOW));
        let reader = |mut ws: futures_util::stream::SplitStream<Ws>,
                      signal: Option<oneshot::Sender<()>>,
                      credit: Arc<tokio::sync::Semaphore>| {
            tokio::spawn(async move {
                let mut signal = signal;
                let (mut next, mut left) = (0, false);
                while next < N || !left {
                    let m = ws.next().await.expect("open").expect("recv");
                    let v: Value = serde_json::from_str(m.as_text().unwrap()).unwrap();
                    match v["type"].as_str().unwrap() {
                        "message" => {
                            let text = v["text"].as_str().unwrap();
                            assert!(
                                text.starts_with(&format!("{next}:")),
                                "message {next} out of order"
                            );
                            next += 1;
                            credit.add_permits(1);
                        }
                        "leave" => {
                            assert_eq!(v["nick"], "slow");
                            assert_eq!(v["online"], json!(["a", "b"]));
                            left = true;
                            if let Some(s) = signal.take() {
                                let _ = s.send(());
                            }
                        }
                        other => panic!("unexpected {other}: {v}"),
                    }
                }
                ws
            })
        };
        let (mut a_tx, a_rx) = a.split();
        let (b_tx, b_rx) = b.split();
        let (left_tx, left) = oneshot::channel();
        let a_credit = Arc::new(tokio::sync::Semaphore::new(0));
        let a_reader = reader(a_rx, None, a_credit.clone());
        let b_reader = reader(b_rx, Some(left_tx), credit.clone());

        // Once its leave is announced, the slow client reads: what was queued for it, then the
        // server's close 1008 "too slow".
        let slow_reader = tokio::spawn(async move {
            left.await.unwrap();
            closed(&mut slow).await
        });

        let filler = "x".repeat(3990);
        for i in 0..N {
            // One credit from each fast reader per message.
            credit.acquire().await.unwrap().forget();
            if i >= WINDOW {
                a_credit.acquire().await.unwrap().forget();
            }
            let text = format!("{i}:{filler}");
            a_tx.send(Message::text(
                json!({"type": "message", "text": text}).to_string(),
            ))
            .await
            .unwrap();
        }
        let a = a_reader.await.unwrap().reunite(a_tx).unwrap();
        let b = b_reader.await.unwrap().reunite(b_tx).unwrap();
        let outcome = slow_reader.await.unwrap();
        assert_eq!(outcome.code, CloseCode::POLICY_VIOLATION);
        assert_eq!(outcome.reason, "too slow");
        // The fast clients are still connected.
        server.shutdown_with(vec![a, b]).await;
    })
    .await
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001() {
    within(20, async {
        let server = Server::start();
        let addr = server.addr;
        let (mut alice, _) = server.join("alice").await;
        let (mut bob, _) = server.join("bob").await;
        let mut lurker = server.connect().await; // open, never joined
        let mut idle = TcpStream::connect(addr).await.unwrap(); // never sends a request
        let stopping = tokio::spawn(server.shutdown());
        for ws in [&mut alice, &mut bob, &mut lurker] {
            let outcome = closed(ws).await;
            assert_eq!(outcome.code, CloseCode::GOING_AWAY);
            assert_eq!(outcome.reason, "server shutting down");
            assert!(outcome.clean);
        }
        stopping.await.unwrap();
        let mut buf = [0; 16];
        assert_eq!(idle.read(&mut buf).await.unwrap_or(0), 0);
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    })
    .await
}

#[tokio::test]
async fn http_page_and_errors() {
    within(20, async {
        let server = Server::start();
        let addr = server.addr;
        let page = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page:.200}");
        assert!(page.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"));
        assert!(page.contains(&format!("\r\nContent-Length: {}\r\n", chat_server::PAGE.len())));
        assert!(page.ends_with(chat_server::PAGE));
        assert!(page.contains("<title>hybi chat</title>"));

        let head = http(addr, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"), "{head}");

        let nope = http(addr, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(nope.starts_with("HTTP/1.1 404 "), "{nope}");

        let plain = http(addr, "GET /chat HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(plain.starts_with("HTTP/1.1 426 "), "{plain}");

        let upgrade = "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        let no_protocol = http(addr, &format!("GET /chat HTTP/1.1\r\n{upgrade}\r\n")).await;
        assert!(no_protocol.starts_with("HTTP/1.1 400 "), "{no_protocol}");
        let wrong_path =
            http(addr, &format!("GET /other HTTP/1.1\r\n{upgrade}Sec-WebSocket-Protocol: chat\r\n\r\n")).await;
        assert!(wrong_path.starts_with("HTTP/1.1 404 "), "{wrong_path}");
        let garbage = http(addr, "\x16\x03\x01 definitely not HTTP\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");

        // hybi's client sees the refusal as a failed handshake.
        let request = ClientRequest::new(&server.url()).unwrap();
        let refused = hybi::tokio::connect_with(request, hybi::ConnectOptions::default().with_config(Config::default()).with_timeouts(Timeouts::default())).await;
        assert!(matches!(refused, Err(Error::Handshake(_))), "{refused:?}");
        server.shutdown().await;
    })
    .await
}
