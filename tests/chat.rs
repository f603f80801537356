//! Integration tests of the chat example (`examples/chat_server.rs`) on one instance (the
//! in-process bus), driven through its `run(listener, options, shutdown)` with hybi's own tokio
//! client over loopback. Every test listens on 127.0.0.1 port 0 and has a hard deadline.
//! The tests of several instances on Redis are in `tests/chat_redis.rs`.

#[allow(dead_code)]
#[path = "../examples/chat_server.rs"]
mod chat_server;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hybi::tokio::{MaybeTlsStream, WebSocketStream};
use hybi::{ClientRequest, CloseCode, CloseOutcome, Config, Error, Message, Timeouts};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use chat_server::Options;

type Ws = WebSocketStream<MaybeTlsStream>;

/// Runs a test body, failing it if it takes longer than `secs`.
async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    timeout(Duration::from_secs(secs), f)
        .await
        .expect("test timed out")
}

/// Options for tests: no rate limit unless a test sets one.
fn options() -> Options {
    Options {
        rate: 0.0,
        ..Options::default()
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), String>>,
}

impl Server {
    fn start() -> Self {
        Self::start_with(options())
    }

    /// A server on 127.0.0.1 port 0. Accepted sockets inherit the listener's small send buffer,
    /// so a client that stops reading backs up into the server quickly.
    fn start_with(options: Options) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(64 << 10).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener: TcpListener = socket.listen(1024).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chat_server::run(listener, options, async {
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
        connect(&self.url()).await
    }

    /// A client that has joined `room` as `nick`, past its welcome and its own join notice.
    async fn join_room(&self, nick: &str, room: &str) -> (Ws, Value) {
        let mut ws = self.connect().await;
        send_json(&mut ws, json!({"type": "join", "nick": nick, "room": room})).await;
        let welcome = recv_json(&mut ws).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let joined = recv_type(&mut ws, "join").await;
        assert_eq!(joined["nick"], nick);
        (ws, welcome)
    }

    async fn join(&self, nick: &str) -> (Ws, Value) {
        self.join_room(nick, "lobby").await
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
            .unwrap()
            .unwrap();
    }
}

async fn connect(url: &str) -> Ws {
    let request = ClientRequest::new(url).unwrap().protocol("chat");
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

async fn send_json(ws: &mut Ws, value: Value) {
    ws.send_message(value.to_string()).await.unwrap();
}

async fn recv_json(ws: &mut Ws) -> Value {
    match ws.recv().await.expect("recv") {
        Message::Text(t) => serde_json::from_str(t.as_str()).expect("JSON"),
        Message::Binary(b) => panic!("expected JSON text, got {} binary bytes", b.len()),
    }
}

/// Skips other objects until one of `kind` arrives.
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
    String::from_utf8_lossy(&out).into_owned()
}

const UPGRADE: &str = "Host: HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// The status line of an upgrade request to `/chat` with extra header lines, read until the
/// end of the response head (a 101 keeps the connection open).
async fn upgrade_status(addr: SocketAddr, extra: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /chat HTTP/1.1\r\n{}{extra}\r\n",
        UPGRADE.replace("HOST", &addr.to_string())
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0; 1024];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    text.lines().next().unwrap_or("").to_owned()
}

fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

#[tokio::test]
async fn join_welcome_and_presence_deltas() {
    within(20, async {
        let server = Server::start();
        let (mut alice, welcome) = server.join("alice").await;
        assert_eq!(
            welcome,
            json!({"type": "welcome", "room": "lobby", "nick": "alice", "online": ["alice"],
                   "count": 1, "next": null, "last_id": 0, "truncated": false, "history": []})
        );

        // The nick is trimmed; the joiner's welcome lists everyone in join order; the others
        // get a delta with the one nick and the count, never the list.
        let mut bob = server.connect().await;
        send_json(&mut bob, json!({"type": "join", "nick": "  bob "})).await;
        let welcome = recv_json(&mut bob).await;
        assert_eq!(welcome["nick"], "bob");
        assert_eq!(welcome["online"], json!(["alice", "bob"]));
        assert_eq!(welcome["count"], 2);
        let own = recv_json(&mut bob).await;
        assert_eq!(own["type"], "join");
        let notice = recv_json(&mut alice).await;
        assert_eq!(notice["type"], "join");
        assert_eq!(notice["room"], "lobby");
        assert_eq!(notice["nick"], "bob");
        assert_eq!(notice["count"], 2);
        assert!(notice.get("online").is_none(), "{notice}");
        assert!(notice["ts"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(notice, own);

        bob.close_with(CloseCode::NORMAL, "bye").await.unwrap();
        assert!(closed(&mut bob).await.is_normal());
        let leave = recv_json(&mut alice).await;
        assert_eq!(leave["type"], "leave");
        assert_eq!(leave["nick"], "bob");
        assert_eq!(leave["count"], 1);
        assert!(leave.get("online").is_none());
        // The nick is free again.
        let (bob, _) = server.join("bob").await;
        server.shutdown_with(vec![alice, bob]).await;
    })
    .await
}

#[tokio::test]
async fn messages_stay_in_their_room() {
    within(20, async {
        let server = Server::start();
        let (mut a, _) = server.join_room("a", "lobby").await;
        let (mut b, _) = server.join_room("b", "lobby").await;
        let (mut c, welcome) = server.join_room("c", "Dev").await;
        assert_eq!(welcome["room"], "dev", "room names are lowercased");
        assert_eq!(welcome["online"], json!(["c"]));
        recv_type(&mut a, "join").await; // b's
        send_json(&mut c, json!({"type": "message", "text": "in dev"})).await;
        let m = recv_type(&mut c, "message").await;
        assert_eq!(
            (m["room"].as_str(), m["id"].as_u64()),
            (Some("dev"), Some(1))
        );
        send_json(&mut b, json!({"type": "message", "text": "in lobby"})).await;
        for ws in [&mut a, &mut b] {
            // The first message a lobby member sees is the lobby's: dev's never came.
            let m = recv_type(ws, "message").await;
            assert_eq!(m["text"], "in lobby");
            assert_eq!(m["room"], "lobby");
            assert_eq!(m["id"], 1, "ids are per room");
            assert_eq!(m["from"], "b");
        }
        // The same nick may be used in another room.
        let (c2, _) = server.join_room("a", "dev").await;
        server.shutdown_with(vec![a, b, c, c2]).await;
    })
    .await
}

#[tokio::test]
async fn binary_is_announced_with_an_id_then_sent() {
    within(20, async {
        let server = Server::start();
        let (mut a, _) = server.join("a").await;
        let (mut b, _) = server.join("b").await;
        recv_type(&mut a, "join").await; // b's
        send_json(&mut a, json!({"type": "message", "text": "first"})).await;
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        a.send_message(data.clone()).await.unwrap();
        for ws in [&mut a, &mut b] {
            assert_eq!(recv_type(ws, "message").await["id"], 1);
            let ann = recv_json(ws).await;
            assert_eq!(ann["type"], "binary", "{ann}");
            assert_eq!(ann["id"], 2);
            assert_eq!(ann["from"], "a");
            assert_eq!(ann["size"], 5000);
            // Immediately followed by the bytes.
            assert_eq!(
                ws.recv().await.unwrap(),
                Message::Binary(data.clone().into())
            );
        }
        a.send_message(vec![0u8; 65537]).await.unwrap();
        assert_eq!(
            recv_json(&mut a).await,
            json!({"type": "error", "text": "binary message too large (max 65536 bytes)"})
        );
        server.shutdown_with(vec![a, b]).await;
    })
    .await
}

#[tokio::test]
async fn history_and_resume_with_since() {
    within(30, async {
        let server = Server::start();
        let (mut alice, _) = server.join("alice").await;
        for i in 1..=60 {
            send_json(
                &mut alice,
                json!({"type": "message", "text": format!("m{i}")}),
            )
            .await;
        }
        for i in 1..=60u64 {
            let m = recv_type(&mut alice, "message").await;
            assert_eq!(
                (m["id"].as_u64(), m["text"].as_str()),
                (Some(i), Some(&*format!("m{i}")))
            );
        }
        // A newcomer gets the last 50, oldest first.
        let (carol, welcome) = server.join("carol").await;
        let history = welcome["history"].as_array().unwrap();
        assert_eq!(history.len(), 50);
        for (i, h) in history.iter().enumerate() {
            assert_eq!(h["type"], "message");
            assert_eq!(h["room"], "lobby");
            assert_eq!(h["id"], i as u64 + 11);
            assert_eq!(h["text"], format!("m{}", i + 11));
        }
        assert_eq!(welcome["last_id"], 60);
        // Resuming after 55: exactly 56..=60.
        let mut dave = server.connect().await;
        send_json(
            &mut dave,
            json!({"type": "join", "nick": "dave", "since": 55}),
        )
        .await;
        let w = recv_json(&mut dave).await;
        let ids: Vec<u64> = w["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [56, 57, 58, 59, 60]);
        assert_eq!(w["truncated"], false);
        // Up to date: nothing.
        let mut erin = server.connect().await;
        send_json(
            &mut erin,
            json!({"type": "join", "nick": "erin", "since": 60}),
        )
        .await;
        let w = recv_json(&mut erin).await;
        assert_eq!(w["history"], json!([]));
        // Too far behind: the last 50, and "truncated".
        let mut fay = server.connect().await;
        send_json(&mut fay, json!({"type": "join", "nick": "fay", "since": 3})).await;
        let w = recv_json(&mut fay).await;
        assert_eq!(w["history"].as_array().unwrap().len(), 50);
        assert_eq!(w["truncated"], true);
        // `history` asks for a gap after the join.
        send_json(&mut fay, json!({"type": "history", "since": 58})).await;
        let h = recv_type(&mut fay, "history").await;
        let ids: Vec<u64> = h["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [59, 60]);
        assert_eq!(h["last_id"], 60);
        server
            .shutdown_with(vec![alice, carol, dave, erin, fay])
            .await;
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
                json!({"type": "join", "nick": "alice"}),
                "nickname already taken",
            ),
            (
                json!({"type": "join", "nick": "ALICE"}),
                "nickname already taken",
            ),
            // Fullwidth letters are the same nickname after NFKC.
            (
                json!({"type": "join", "nick": "ａｌｉｃｅ"}),
                "nickname already taken",
            ),
            (
                json!({"type": "join", "nick": "alice\u{200b}"}),
                "invalid nickname (control, invisible or bidi characters)",
            ),
            (
                json!({"type": "join", "nick": "\u{202e}ecila"}),
                "invalid nickname (control, invisible or bidi characters)",
            ),
            (
                json!({"type": "join", "nick": "a\u{7}b"}),
                "invalid nickname (control, invisible or bidi characters)",
            ),
            (
                json!({"type": "join", "nick": "   "}),
                "invalid nickname (1-32 characters)",
            ),
            (
                json!({"type": "join", "nick": long}),
                "invalid nickname (1-32 characters)",
            ),
            (
                json!({"type": "join", "nick": 7}),
                "invalid nickname (1-32 characters)",
            ),
            (
                json!({"type": "join", "nick": "x", "room": "no spaces"}),
                "invalid room name (1-32 of a-z, 0-9, '-', '_', '.')",
            ),
            (
                json!({"type": "join", "nick": "x", "room": "r".repeat(33)}),
                "invalid room name (1-32 of a-z, 0-9, '-', '_', '.')",
            ),
            (
                json!({"type": "join", "nick": "x", "since": "yesterday"}),
                "invalid since (a message id)",
            ),
            (json!({"type": "message", "text": "hi"}), "join first"),
            (json!("not an object"), "join first"),
        ];
        for (first, error) in cases {
            let mut ws = server.connect().await;
            ws.send_message(first.to_string()).await.unwrap();
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
                json!({"type": "who", "after": "x"}).to_string(),
                "invalid who (after: a cursor)",
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
        assert_eq!(closed(&mut a).await.code, CloseCode::MESSAGE_TOO_BIG);
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn welcome_pages_and_who() {
    const N: usize = 250;
    within(60, async {
        let server = Server::start();
        let mut clients = Vec::new();
        for i in 0..N {
            let mut ws = server.connect().await;
            send_json(&mut ws, json!({"type": "join", "nick": format!("n{i:03}")})).await;
            recv_type(&mut ws, "welcome").await;
            clients.push(ws);
        }
        let mut me = server.connect().await;
        send_json(&mut me, json!({"type": "join", "nick": "me"})).await;
        let w = recv_json(&mut me).await;
        let mut all: Vec<String> = w["online"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(all.len(), 100, "the welcome holds one page");
        assert_eq!(w["count"], N as u64 + 1);
        let mut next = w["next"].clone();
        let mut pages = 1;
        while !next.is_null() {
            send_json(&mut me, json!({"type": "who", "after": next})).await;
            let page = recv_type(&mut me, "who").await;
            assert_eq!(page["room"], "lobby");
            all.extend(
                page["online"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned()),
            );
            next = page["next"].clone();
            pages += 1;
            assert!(pages < 10, "paging does not end");
        }
        let want: Vec<String> = (0..N)
            .map(|i| format!("n{i:03}"))
            .chain(["me".to_owned()])
            .collect();
        assert_eq!(all, want, "every member once, in join order");
        clients.push(me);
        server.shutdown_with(clients).await;
    })
    .await
}

/// A join storm is coalesced: an observer gets the joins in order, in far fewer frames than
/// joins, and its list built from the deltas is the room.
#[tokio::test]
async fn join_storm_is_coalesced() {
    const N: usize = 60;
    within(60, async {
        let server = Server::start();
        let (mut observer, _) = server.join("observer").await;
        let mut clients = Vec::new();
        for i in 0..N {
            let mut ws = server.connect().await;
            send_json(&mut ws, json!({"type": "join", "nick": format!("s{i}")})).await;
            recv_type(&mut ws, "welcome").await;
            clients.push(ws);
        }
        // A leave at the end, after the joins.
        let mut last = clients.pop().unwrap();
        last.close_with(CloseCode::NORMAL, "").await.unwrap();
        closed(&mut last).await;
        let (mut frames, mut joined, mut left, mut count) = (0, Vec::new(), Vec::new(), 0);
        while left.is_empty() {
            let v = recv_json(&mut observer).await;
            frames += 1;
            count = v["count"].as_u64().unwrap();
            match v["type"].as_str().unwrap() {
                "join" => joined.push(v["nick"].as_str().unwrap().to_owned()),
                "leave" => left.push(v["nick"].as_str().unwrap().to_owned()),
                "presence" => {
                    for c in v["changes"].as_array().unwrap() {
                        let nick = c["nick"].as_str().unwrap().to_owned();
                        match c["type"].as_str().unwrap() {
                            "join" => joined.push(nick),
                            "leave" => left.push(nick),
                            t => panic!("change {t}"),
                        }
                    }
                }
                t => panic!("unexpected {t}: {v}"),
            }
        }
        let want: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
        assert_eq!(joined, want, "joins in order, each once");
        assert_eq!(left, [format!("s{}", N - 1)]);
        assert_eq!(count, N as u64, "observer + N joined - 1 left");
        assert!(
            frames < N / 2,
            "{frames} frames for {} changes: not coalesced",
            N + 1
        );
        clients.push(observer);
        server.shutdown_with(clients).await;
    })
    .await
}

/// 1,000 clients join one room as fast as the server admits them; every one of them must end
/// with the full member list (its welcome plus the deltas). Fails with its progress counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_storm_of_1000_clients() {
    const N: usize = 1000;
    const DEADLINE: Duration = Duration::from_secs(90);
    raise_nofile();
    let server = Server::start();
    let url = server.url();
    let connected = Arc::new(AtomicUsize::new(0));
    let welcomed = Arc::new(AtomicUsize::new(0));
    let complete = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..N {
        let (url, gate, connected, welcomed, complete, done_tx) = (
            url.clone(),
            gate.clone(),
            connected.clone(),
            welcomed.clone(),
            complete.clone(),
            done_tx.clone(),
        );
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let mut ws = connect(&url).await;
            connected.fetch_add(1, Ordering::Relaxed);
            send_json(&mut ws, json!({"type": "join", "nick": format!("c{i}")})).await;
            let w = recv_json(&mut ws).await;
            drop(permit);
            welcomed.fetch_add(1, Ordering::Relaxed);
            let mut members: std::collections::HashSet<String> = w["online"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            let mut next = w["next"].clone();
            let mut count = w["count"].as_u64().unwrap();
            if !next.is_null() {
                send_json(&mut ws, json!({"type": "who", "after": next})).await;
            }
            while members.len() < N || count < N as u64 {
                let v = recv_json(&mut ws).await;
                match v["type"].as_str().unwrap() {
                    "join" => {
                        members.insert(v["nick"].as_str().unwrap().to_owned());
                    }
                    "presence" => {
                        for c in v["changes"].as_array().unwrap() {
                            assert_eq!(c["type"], "join");
                            members.insert(c["nick"].as_str().unwrap().to_owned());
                        }
                    }
                    "who" => {
                        members.extend(
                            v["online"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|v| v.as_str().unwrap().to_owned()),
                        );
                        next = v["next"].clone();
                        if !next.is_null() {
                            send_json(&mut ws, json!({"type": "who", "after": next})).await;
                        }
                    }
                    t => panic!("unexpected {t}"),
                }
                if let Some(c) = v["count"].as_u64() {
                    count = c;
                }
            }
            complete.fetch_add(1, Ordering::Relaxed);
            let _ = done_tx.send(ws);
        });
    }
    drop(done_tx);
    let mut clients = Vec::new();
    let finished = timeout(DEADLINE, async {
        while let Some(ws) = done_rx.recv().await {
            clients.push(ws);
            if clients.len() == N {
                break;
            }
        }
    })
    .await;
    let elapsed = start.elapsed();
    assert!(
        finished.is_ok() && clients.len() == N,
        "join storm: after {elapsed:?}: {} connected, {} welcomed, {} saw all {N} members",
        connected.load(Ordering::Relaxed),
        welcomed.load(Ordering::Relaxed),
        complete.load(Ordering::Relaxed)
    );
    eprintln!("join storm: {N} clients joined and saw every member in {elapsed:.2?}");
    within(30, server.shutdown_with(clients)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_dropped_without_stalling_the_others() {
    const N: usize = 2000;
    within(120, async {
        let server = Server::start_with(Options {
            queue_budget: 256 << 10,
            ..options()
        });
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
        recv_type(&mut slow, "welcome").await;
        recv_type(&mut slow, "join").await;

        let (mut a, _) = server.join("a").await;
        let (b, _) = server.join("b").await;
        recv_type(&mut a, "join").await; // b's

        // Both fast clients must get all N messages, in order, and see "slow" leave. The
        // sender keeps at most WINDOW messages (128 KB) ahead of what both fast readers
        // received, less than their budget.
        const WINDOW: usize = 32;
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
                            assert_eq!(v["id"], next as u64 + 1);
                            next += 1;
                            credit.add_permits(1);
                        }
                        "leave" => {
                            assert_eq!(v["nick"], "slow");
                            assert_eq!(v["count"], 2);
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

        // Once its leave is announced, the slow client reads: what was queued for it, then
        // the server's close 1008 "too slow".
        let slow_reader = tokio::spawn(async move {
            left.await.unwrap();
            closed(&mut slow).await
        });

        let filler = "x".repeat(3990);
        for i in 0..N {
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
        server.shutdown_with(vec![a, b]).await;
    })
    .await
}

#[tokio::test]
async fn rate_limit_refuses_then_closes_1008() {
    within(20, async {
        let server = Server::start_with(Options {
            rate: 20.0,
            burst: 40.0,
            ..options()
        });
        let (mut a, _) = server.join("a").await;
        // Far over 20/s: the first 40 pass, then errors, then the close.
        let mut sent = 0;
        for i in 0..200 {
            if a.send_message(json!({"type": "message", "text": format!("{i}")}).to_string())
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        let (mut messages, mut refused) = (0, 0);
        let outcome = loop {
            match a.recv().await {
                Ok(m) => {
                    let v: Value = serde_json::from_str(m.as_text().unwrap()).unwrap();
                    match v["type"].as_str().unwrap() {
                        "message" => messages += 1,
                        "error" => {
                            assert_eq!(v["text"], "rate limit exceeded, slow down");
                            refused += 1;
                        }
                        _ => {}
                    }
                }
                Err(Error::Closed(outcome)) => break outcome,
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(outcome.code, CloseCode::POLICY_VIOLATION);
        assert_eq!(outcome.reason, "rate limit exceeded");
        assert!((40..=45).contains(&messages), "{messages} passed of {sent}");
        assert!(refused >= 30, "{refused} refused");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn unjoined_connections_are_limited_and_timed_out() {
    within(20, async {
        let server = Server::start_with(Options {
            max_unjoined: 2,
            join_timeout: Duration::from_millis(500),
            ..options()
        });
        let addr = server.addr;
        let mut one = server.connect().await;
        let mut two = server.connect().await;
        let p = "Sec-WebSocket-Protocol: chat\r\n";
        assert_eq!(
            upgrade_status(addr, p).await,
            "HTTP/1.1 503 Service Unavailable"
        );
        // Both are closed after the join timeout.
        for ws in [&mut one, &mut two] {
            assert_eq!(
                recv_json(ws).await,
                json!({"type": "error", "text": "join timeout"})
            );
            let outcome = closed(ws).await;
            assert_eq!(
                (outcome.code, outcome.reason.as_str()),
                (CloseCode::POLICY_VIOLATION, "join timeout")
            );
        }
        // Room again; and joined connections do not count.
        let (joined, _) = server.join("j").await;
        let _three = server.connect().await;
        let _four = server.connect().await;
        assert_eq!(
            upgrade_status(addr, p).await,
            "HTTP/1.1 503 Service Unavailable"
        );
        drop(joined);
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn origin_allow_list() {
    within(20, async {
        let server = Server::start_with(Options {
            allow_origins: vec!["https://chat.example".into()],
            ..options()
        });
        let addr = server.addr;
        let p = "Sec-WebSocket-Protocol: chat\r\n";
        let cases = [
            (String::new(), "HTTP/1.1 101 Switching Protocols"),
            (
                format!("Origin: http://{addr}\r\n"),
                "HTTP/1.1 101 Switching Protocols",
            ),
            (
                "Origin: https://chat.example\r\n".into(),
                "HTTP/1.1 101 Switching Protocols",
            ),
            (
                "Origin: https://evil.example\r\n".into(),
                "HTTP/1.1 403 Forbidden",
            ),
            (
                format!("Origin: http://{addr}.evil.example\r\n"),
                "HTTP/1.1 403 Forbidden",
            ),
            ("Origin: null\r\n".into(), "HTTP/1.1 403 Forbidden"),
        ];
        for (origin, want) in cases {
            assert_eq!(
                upgrade_status(addr, &format!("{p}{origin}")).await,
                want,
                "{origin}"
            );
        }
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn http_page_and_errors() {
    within(20, async {
        let server = Server::start_with(Options {
            header_timeout: Duration::from_millis(700),
            ..options()
        });
        let addr = server.addr;
        let page = http(
            addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page:.200}");
        let lower = page.to_ascii_lowercase();
        assert!(lower.contains("\r\ncontent-type: text/html; charset=utf-8\r\n"));
        assert!(lower.contains("\r\nx-content-type-options: nosniff\r\n"));
        assert!(
            lower.contains("\r\ncontent-security-policy: default-src 'none'; script-src 'self';")
        );
        assert!(page.ends_with(chat_server::PAGE));
        assert!(page.contains("<title>hybi chat</title>"));
        let js = http(
            addr,
            "GET /chat.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            js.starts_with("HTTP/1.1 200 OK\r\n")
                && js
                    .to_ascii_lowercase()
                    .contains("content-type: text/javascript"),
            "{js:.200}"
        );

        let head = http(
            addr,
            "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let post = http(
            addr,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let nope = http(
            addr,
            "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(nope.starts_with("HTTP/1.1 404 "), "{nope}");
        let plain = http(
            addr,
            "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(plain.starts_with("HTTP/1.1 426 "), "{plain}");
        let upgrade = UPGRADE.replace("HOST", "x");
        let no_protocol = http(addr, &format!("GET /chat HTTP/1.1\r\n{upgrade}\r\n")).await;
        assert!(no_protocol.starts_with("HTTP/1.1 400 "), "{no_protocol}");
        let wrong_path = http(
            addr,
            &format!("GET /other HTTP/1.1\r\n{upgrade}Sec-WebSocket-Protocol: chat\r\n\r\n"),
        )
        .await;
        assert!(wrong_path.starts_with("HTTP/1.1 404 "), "{wrong_path}");
        let old = http(
            addr,
            &format!(
                "GET /chat HTTP/1.1\r\n{}Sec-WebSocket-Protocol: chat\r\n\r\n",
                upgrade.replace("Version: 13", "Version: 8")
            ),
        )
        .await;
        assert!(old.starts_with("HTTP/1.1 426 "), "{old}");

        // A TLS ClientHello on this plain port: 400 at once, and the connection closed.
        let t = Instant::now();
        let hello = http(
            addr,
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03 not HTTP\r\n\r\n",
        )
        .await;
        assert!(hello.starts_with("HTTP/1.1 400 "), "{hello}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

        // A head that stalls is cut off after the header timeout.
        let t = Instant::now();
        let stalled = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n").await;
        let waited = t.elapsed();
        assert!(!stalled.starts_with("HTTP/1.1 200"), "{stalled}");
        assert!(
            waited >= Duration::from_millis(600) && waited < Duration::from_secs(5),
            "{waited:?}"
        );

        // hybi's client sees a refusal as a failed handshake.
        let request = ClientRequest::new(&server.url()).unwrap();
        let refused = hybi::tokio::connect_with(
            request,
            hybi::ConnectOptions::default()
                .with_config(Config::default())
                .with_timeouts(Timeouts::default()),
        )
        .await;
        assert!(matches!(refused, Err(Error::Handshake(_))), "{refused:?}");
        server.shutdown().await;
    })
    .await
}

/// CPU time of this thread: the test's current-thread runtime, which runs the server too
/// (other tests run on other threads).
fn cpu_time() -> Duration {
    // SAFETY: getrusage with a valid pointer.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut u);
        let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
        t(u.ru_utime) + t(u.ru_stime)
    }
}

/// 1,000 connections that each sent half a request head cost no CPU while they wait (the
/// hand-written server of before spent 54% of a core on them, peeking again every 5 ms).
#[tokio::test]
async fn stalled_heads_cost_no_cpu() {
    within(30, async {
        raise_nofile();
        let server = Server::start();
        let mut conns = Vec::new();
        for _ in 0..1000 {
            let mut tcp = TcpStream::connect(server.addr).await.unwrap();
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Ag")
                .await
                .unwrap();
            conns.push(tcp);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = cpu_time();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let used = cpu_time() - before;
        // This thread runs the server and the (idle) clients: 2 s of waiting.
        assert!(
            used < Duration::from_millis(100),
            "{used:?} of CPU in 2 s for 1,000 stalled heads"
        );
        drop(conns);
        server.shutdown().await;
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
