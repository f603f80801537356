//! A multi-user chat room that real browsers use: the main example of `hybi`.
//!
//! ```text
//! cargo run --example chat_server                        # http://127.0.0.1:8080/
//! cargo run --example chat_server -- --addr 0.0.0.0:9000
//! cargo run --example chat_server -- --port 0            # any free port (printed)
//! CHAT_ADDR=127.0.0.1:9000 cargo run --example chat_server   # or PORT=9000
//! ```
//!
//! Open the printed address in a few browser tabs. Once ready the server prints
//! `chat server listening on http://ADDR/` (tests and CI wait for that line). Ctrl-C or SIGTERM
//! closes every client with 1001 "server shutting down", waits up to 3 s for their close
//! handshakes and exits with status 0.
//!
//! One TCP listener serves both HTTP and WebSocket: the request head is peeked (not read), and
//! an `Upgrade: websocket` request is handed untouched to [`hybi::tokio::accept_with`].
//!
//! ```text
//! GET /  (or /index.html)  the page, examples/chat/index.html (HEAD works too)
//! GET /chat + Upgrade      WebSocket, subprotocol "chat" (required: 400 without it)
//! GET /chat, no Upgrade    426 Upgrade Required
//! anything else            404
//! ```
//!
//! # Protocol
//!
//! Client → server: text frames hold JSON objects, binary frames hold raw bytes.
//!
//! ```text
//! {"type":"join","nick":"alice"}   must be the first message; the nick is trimmed and must be
//!                                  1..=32 characters (code points), unique (case-sensitive)
//! {"type":"message","text":"hi"}   text: a string of at most 4000 characters
//! <binary frame>                   at most 65536 bytes, broadcast to everyone
//! ```
//!
//! Server → client:
//!
//! ```text
//! {"type":"welcome","nick":N,"online":[..],"history":[..]}  only to the joiner
//! {"type":"join","nick":N,"online":[..],"ts":T}    to everyone, the joiner too (right after welcome)
//! {"type":"leave","nick":N,"online":[..],"ts":T}   to everyone still joined
//! {"type":"message","from":N,"text":S,"ts":T}      to everyone, the sender too
//! {"type":"binary","from":N,"size":K,"ts":T}       to everyone, the sender too, IMMEDIATELY
//!                                                  followed by one binary frame of those K bytes
//! {"type":"error","text":S}
//! ```
//!
//! `online` lists the joined nicks in join order; `history` holds the last 50 `message` and
//! `binary` objects, oldest first (binary entries are the announcement only, no bytes follow);
//! `ts` is milliseconds since the Unix epoch.
//!
//! Errors: before a successful join, anything but a valid join gets an `error` and close 1008
//! ("invalid nickname (1-32 characters)", "nickname already taken", "join first"). After the join,
//! invalid JSON, a non-object, an unknown type, a second join, a bad or too long text and a too
//! large binary get an `error` and the connection stays open. A frame or message over 128 KiB
//! fails the connection with 1009 (hybi's `max_message_size`).
//!
//! # Memory bounds
//!
//! Every client has a bounded queue of at most 1024 pre-serialized messages. A broadcast is
//! serialized once and shared by every queue (`Bytes` clones are reference counts). The
//! broadcaster never waits: when a queue is full, that client is removed at once (everyone gets
//! its `leave`) and closed with 1008 "too slow". A client's task takes from its queue only while
//! less than 256 KiB of output waits for its socket, so a reader that stops reading costs at most
//! that plus its queue.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hybi::tokio::WebSocketStream;
use hybi::{Accept, CloseCode, Config, Error, Message, Reject, Request, Timeouts, Utf8Bytes};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

/// The page, served at `/`.
pub const PAGE: &str = include_str!("chat/index.html");
/// Longest nickname, in characters.
pub const MAX_NICK: usize = 32;
/// Longest chat text, in characters.
pub const MAX_TEXT: usize = 4000;
/// Largest binary message that is broadcast.
pub const MAX_BINARY: usize = 64 * 1024;
/// Largest message the WebSocket accepts at all (larger: close 1009).
pub const MAX_MESSAGE: u64 = 128 << 10;
/// Messages kept for newcomers.
pub const HISTORY: usize = 50;
/// Messages a client's queue holds before the client is dropped as too slow.
pub const QUEUE_LIMIT: usize = 1024;
/// Output bytes a connection may hold for its socket before its task stops taking from its queue.
pub const WRITE_HIGH: usize = 256 << 10;
/// Largest HTTP request head.
const HEAD_LIMIT: usize = 8 << 10;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the clients' close handshakes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

// ------------------------------------------------------------------------------ the room

/// A joined client, as the room sees it.
struct Member {
    id: u64,
    nick: String,
    queue: mpsc::Sender<Message>,
    /// Fired when the client is dropped for being too slow.
    kick: Option<oneshot::Sender<()>>,
}

/// Everything the clients share: who is online (in join order) and the recent history.
#[derive(Default)]
struct Room {
    members: Vec<Member>,
    history: VecDeque<Value>,
    next_id: u64,
}

type SharedRoom = Arc<Mutex<Room>>;

fn lock(room: &SharedRoom) -> MutexGuard<'_, Room> {
    // No code path panics while holding the lock, but a poisoned room is still usable.
    room.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A JSON value as a text message, serialized once (cloning it later is a reference count).
fn text(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn error_json(text: &str) -> Message {
    self::text(&json!({"type": "error", "text": text}))
}

/// Queues all of `items` or none of them, without waiting: `false` when the queue is full. A
/// closed queue counts as delivered: its task is ending and leaves the room by itself.
fn push(queue: &mpsc::Sender<Message>, items: &[Message]) -> bool {
    match queue.try_reserve_many(items.len()) {
        Ok(permits) => {
            for (permit, item) in permits.zip(items) {
                permit.send(item.clone());
            }
            true
        }
        Err(TrySendError::Full(())) => false,
        Err(TrySendError::Closed(())) => true,
    }
}

impl Room {
    fn online(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.nick.as_str()).collect()
    }

    fn remember(&mut self, entry: Value) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(entry);
    }

    /// Queues `items` (kept adjacent) for every member. A member whose queue is full is
    /// removed and kicked, and the others are told it left.
    fn broadcast(&mut self, items: Vec<Message>) {
        let mut work = VecDeque::from([items]);
        while let Some(items) = work.pop_front() {
            let mut dropped = Vec::new();
            self.members.retain_mut(|m| {
                if push(&m.queue, &items) {
                    return true;
                }
                if let Some(kick) = m.kick.take() {
                    let _ = kick.send(());
                }
                dropped.push(std::mem::take(&mut m.nick));
                false
            });
            for nick in dropped {
                eprintln!("{nick} dropped: too slow");
                let leave =
                    json!({"type": "leave", "nick": nick, "online": self.online(), "ts": now_ms()});
                work.push_back(vec![text(&leave)]);
            }
        }
    }

    /// Removes member `id` if it is still in the room, and tells the others.
    fn leave(&mut self, id: u64) {
        if let Some(pos) = self.members.iter().position(|m| m.id == id) {
            let member = self.members.remove(pos);
            eprintln!("{} left", member.nick);
            let leave = json!({"type": "leave", "nick": member.nick, "online": self.online(), "ts": now_ms()});
            self.broadcast(vec![text(&leave)]);
        }
    }
}

// ------------------------------------------------------------------------------ one client

/// Why a client's loop ended, when the server is the one closing.
type Closing = Option<(CloseCode, String)>;

enum Step {
    /// A message from the client, or how its connection ended.
    In(Result<Message, Error>),
    /// A message from the client's queue, to send.
    Out(Message),
}

/// Waits for a message from the client or, while the socket keeps up, one from its queue (once
/// it has one). Polling the connection also writes its queued output, so output drains while
/// this waits.
///
/// The queue goes first: a client that sends faster than it reads is slowed down (its input
/// waits in TCP) rather than dropped because its own echoes filled its queue.
async fn next_step(
    ws: &mut WebSocketStream<TcpStream>,
    mut queue: Option<&mut mpsc::Receiver<Message>>,
) -> Step {
    poll_fn(|cx| {
        // Above the mark the socket is behind: leave messages in the bounded queue. The
        // connection registers for writability when polled, so we are woken once it drains.
        if ws.connection().buffered_amount() < WRITE_HIGH {
            if let Some(Poll::Ready(Some(m))) = queue.as_mut().map(|q| q.poll_recv(cx)) {
                return Poll::Ready(Step::Out(m));
            }
        }
        if let Poll::Ready(r) = ws.poll_recv(cx) {
            return Poll::Ready(Step::In(r));
        }
        // Polling the connection wrote what the socket took: below the mark again, the queue
        // must be polled now (registering its waker), or its messages would wait for input.
        if ws.connection().buffered_amount() < WRITE_HIGH {
            if let Some(Poll::Ready(Some(m))) = queue.as_mut().map(|q| q.poll_recv(cx)) {
                return Poll::Ready(Step::Out(m));
            }
        }
        Poll::Pending
    })
    .await
}

/// What a client gets when it joins, made then: a client that has not joined holds no queue.
struct Mailbox {
    /// The client's queue, as the room fills it.
    queue: mpsc::Sender<Message>,
    /// The same queue, as the client's task empties it.
    outbox: mpsc::Receiver<Message>,
    /// Fires when the room drops the client for being too slow.
    kicked: oneshot::Receiver<()>,
}

/// Completes when the client is dropped for being too slow (never before it joins).
async fn kicked(kicked: Option<&mut oneshot::Receiver<()>>) {
    match kicked {
        Some(k) => {
            let _ = k.await;
        }
        None => std::future::pending().await,
    }
}

/// A joined client's identity.
struct Joined {
    id: u64,
    nick: String,
}

/// Handles the first message: a valid join adds the client to the room (welcome to it, join
/// notice to everyone). `Err` is the error text; the caller closes with 1008.
fn join(room: &SharedRoom, first: &Message) -> Result<(Joined, Mailbox), &'static str> {
    let msg: Option<Value> = first.as_text().and_then(|t| serde_json::from_str(t).ok());
    let Some(msg) = msg.filter(|m| m.get("type").and_then(Value::as_str) == Some("join")) else {
        return Err("join first");
    };
    let nick = msg.get("nick").and_then(Value::as_str).map(str::trim);
    let Some(nick) = nick.filter(|n| (1..=MAX_NICK).contains(&n.chars().count())) else {
        return Err("invalid nickname (1-32 characters)");
    };
    let mut room = lock(room);
    if room.members.iter().any(|m| m.nick == nick) {
        return Err("nickname already taken");
    }
    let id = room.next_id;
    room.next_id += 1;
    let (queue, outbox) = mpsc::channel::<Message>(QUEUE_LIMIT);
    let (kick, kicked) = oneshot::channel::<()>();
    room.members.push(Member {
        id,
        nick: nick.to_owned(),
        queue: queue.clone(),
        kick: Some(kick),
    });
    let online = room.online();
    let history: Vec<&Value> = room.history.iter().collect();
    let welcome = json!({"type": "welcome", "nick": nick, "online": online, "history": history});
    let notice = json!({"type": "join", "nick": nick, "online": online, "ts": now_ms()});
    // A fresh queue has room for the welcome.
    push(&queue, &[text(&welcome)]);
    room.broadcast(vec![text(&notice)]);
    eprintln!("{nick} joined");
    let joined = Joined {
        id,
        nick: nick.to_owned(),
    };
    Ok((
        joined,
        Mailbox {
            queue,
            outbox,
            kicked,
        },
    ))
}

/// Handles a message from a joined client. `false` when the client's own queue is full.
fn chat(room: &SharedRoom, me: &Joined, msg: Message, queue: &mpsc::Sender<Message>) -> bool {
    let error = match msg {
        Message::Binary(data) if data.len() > MAX_BINARY => {
            "binary message too large (max 65536 bytes)"
        }
        Message::Binary(data) => {
            let ann =
                json!({"type": "binary", "from": me.nick, "size": data.len(), "ts": now_ms()});
            let mut room = lock(room);
            let items = vec![text(&ann), Message::Binary(data)];
            room.remember(ann);
            room.broadcast(items);
            return true;
        }
        Message::Text(t) => match serde_json::from_str::<Value>(t.as_str()) {
            Err(_) => "invalid JSON",
            Ok(Value::Object(m)) => match m.get("type").and_then(Value::as_str) {
                Some("message") => match m.get("text").and_then(Value::as_str) {
                    None => "invalid message",
                    Some(s) if s.chars().count() > MAX_TEXT => {
                        "message too long (max 4000 characters)"
                    }
                    Some(s) => {
                        let m =
                            json!({"type": "message", "from": me.nick, "text": s, "ts": now_ms()});
                        let mut room = lock(room);
                        let item = text(&m);
                        room.remember(m);
                        room.broadcast(vec![item]);
                        return true;
                    }
                },
                Some("join") => "already joined",
                _ => "unknown message type",
            },
            Ok(_) => "invalid message",
        },
    };
    // Through the client's own queue, so it stays in order with the broadcasts.
    push(queue, &[error_json(error)])
}

/// One WebSocket client, from the opened connection to the end of its close handshake.
///
/// Borrows the stream: the connection's future then holds one `WebSocketStream`, not a second
/// copy moved into this function's future.
async fn session(
    ws: &mut WebSocketStream<TcpStream>,
    room: SharedRoom,
    mut stop: watch::Receiver<bool>,
) {
    let mut me: Option<(Joined, Mailbox)> = None;

    let closing: Closing = loop {
        let (outbox, kick) = match &mut me {
            Some((_, mailbox)) => (Some(&mut mailbox.outbox), Some(&mut mailbox.kicked)),
            None => (None, None),
        };
        let step = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => {
                break Some((CloseCode::GOING_AWAY, "server shutting down".into()));
            }
            _ = kicked(kick) => break Some((CloseCode::POLICY_VIOLATION, "too slow".into())),
            step = next_step(ws, outbox) => step,
        };
        match step {
            Step::Out(m) => {
                // Take whatever else is waiting, so it all goes out in one vectored write
                // (the next poll of the connection writes it).
                let mut next = Some(m);
                while let Some(m) = next.take() {
                    if ws.queue(m).is_err() {
                        break;
                    }
                    if ws.connection().buffered_amount() < WRITE_HIGH {
                        next = me.as_mut().and_then(|(_, mb)| mb.outbox.try_recv().ok());
                    }
                }
            }
            Step::In(Err(_)) => break None,
            Step::In(Ok(msg)) => match &me {
                None => match join(&room, &msg) {
                    Ok(joined) => me = Some(joined),
                    Err(error) => {
                        // Sent directly, so it precedes the close frame.
                        let _ = ws.queue(error_json(error));
                        break Some((CloseCode::POLICY_VIOLATION, error.into()));
                    }
                },
                Some((joined, mailbox)) => {
                    if !chat(&room, joined, msg, &mailbox.queue) {
                        break Some((CloseCode::POLICY_VIOLATION, "too slow".into()));
                    }
                }
            },
        }
    };

    if let Some((joined, _)) = &me {
        lock(&room).leave(joined.id);
    }
    if let Some((code, reason)) = closing {
        // Queue the close frame (after any output still waiting) and complete the closing
        // handshake: `recv` writes, reads until the client's close and EOF, and gives up after
        // the close timeout of `Timeouts`.
        if ws.connection_mut().close(code, &reason).is_ok() {
            while ws.recv().await.is_ok() {}
        }
    }
}

// ------------------------------------------------------------------------------ HTTP

/// The request head, peeked from the socket but not consumed.
struct Head {
    len: usize,
    method: String,
    path: String,
    upgrade: bool,
}

enum Peeked {
    Head(Head),
    /// Not HTTP, or too large: answer with this status.
    Bad(u16),
    /// The client went away.
    Gone,
}

/// Peeks at the socket until a complete request head is there (at most 8 KiB).
async fn peek_head(stream: &TcpStream) -> std::io::Result<Peeked> {
    let mut buf = vec![0; HEAD_LIMIT];
    let mut seen = 0;
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(Peeked::Gone);
        }
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(parse_head(&buf[..end + 4]));
        }
        if n == buf.len() {
            return Ok(Peeked::Bad(431));
        }
        if n == seen {
            // `peek` returns at once while old data is waiting: give the rest time to arrive.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen = n;
    }
}

fn parse_head(head: &[u8]) -> Peeked {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(len)) => {
            let upgrade = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("upgrade")
                    && String::from_utf8_lossy(h.value)
                        .to_ascii_lowercase()
                        .contains("websocket")
            });
            let target = req.path.unwrap_or("/");
            Peeked::Head(Head {
                len,
                method: req.method.unwrap_or("").to_owned(),
                path: target.split('?').next().unwrap_or("/").to_owned(),
                upgrade,
            })
        }
        Err(httparse::Error::TooManyHeaders) => Peeked::Bad(431),
        _ => Peeked::Bad(400),
    }
}

/// Decides an upgrade request: `/chat` with the `chat` subprotocol only.
fn decide(req: &Request) -> Result<Accept, Reject> {
    if req.path() != "/chat" {
        return Err(Reject::new(404).body("not found\n"));
    }
    if !req.protocols().iter().any(|p| p == "chat") {
        return Err(Reject::new(400).body("the WebSocket subprotocol \"chat\" is required\n"));
    }
    Ok(Accept::new().protocol("chat"))
}

fn response(status: u16, extra: &[(&str, &str)], body: &[u8], head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !extra.iter().any(|(n, _)| *n == "Content-Type") {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// Answers a plain HTTP request (the head is still in the socket) and closes.
async fn serve_http(mut stream: TcpStream, peeked: Peeked) -> std::io::Result<()> {
    let reply = match peeked {
        Peeked::Gone => return Ok(()),
        Peeked::Bad(status) => response(status, &[], b"bad request\n", false),
        Peeked::Head(head) => {
            let mut consumed = vec![0; head.len];
            stream.read_exact(&mut consumed).await?;
            let head_only = head.method == "HEAD";
            let readable = head.method == "GET" || head_only;
            match head.path.as_str() {
                "/" | "/index.html" if readable => response(
                    200,
                    &[
                        ("Content-Type", "text/html; charset=utf-8"),
                        ("Cache-Control", "no-store"),
                    ],
                    PAGE.as_bytes(),
                    head_only,
                ),
                "/" | "/index.html" => response(
                    405,
                    &[("Allow", "GET, HEAD")],
                    b"method not allowed\n",
                    false,
                ),
                "/chat" => response(
                    426,
                    &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
                    b"this is a WebSocket endpoint (subprotocol \"chat\")\n",
                    head_only,
                ),
                _ => response(404, &[], b"not found\n", head_only),
            }
        }
    };
    stream.write_all(&reply).await?;
    stream.shutdown().await?;
    // Wait (briefly) for the client to close, so unread input does not turn our close into a
    // reset that could destroy the response.
    let mut sink = [0; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    })
    .await;
    Ok(())
}

/// One accepted TCP connection: HTTP, or a WebSocket client.
async fn connection(stream: TcpStream, room: SharedRoom, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let peeked = tokio::select! {
        peeked = tokio::time::timeout(HEAD_TIMEOUT, peek_head(&stream)) => peeked,
        _ = stop.wait_for(|stop| *stop) => return,
    };
    let peeked = match peeked {
        Ok(Ok(peeked)) => peeked,
        _ => return, // too slow to send a head, or the socket failed
    };
    if let Peeked::Head(Head { upgrade: true, .. }) = peeked {
        // Not needed any more: freed now, not kept for the life of the connection.
        drop(peeked);
        // permessage-deflate: browsers offer it, and chat JSON compresses well. Without server
        // context takeover our compressor is dropped between messages, so an idle client does
        // not hold ~300 KB of zlib state.
        let config = Config::default()
            .with_max_message_size(MAX_MESSAGE)
            .with_protocols(["chat"])
            .with_deflate(hybi::DeflateConfig::default().with_server_no_context_takeover(true));
        let accepting = hybi::tokio::accept_with(stream, config, Timeouts::default(), decide);
        // `let else`: the stream is moved straight into `ws`, and this future holds one
        // `WebSocketStream` (a `Result` kept in a local and then matched would be a second).
        let Ok(mut ws) = (tokio::select! {
            ws = accepting => ws,
            _ = stop.wait_for(|stop| *stop) => return,
        }) else {
            return;
        };
        session(&mut ws, room, stop).await;
        return;
    }
    tokio::select! {
        _ = serve_http(stream, peeked) => {}
        _ = stop.wait_for(|stop| *stop) => {}
    }
}

// ------------------------------------------------------------------------------ the server

/// Serves the chat on `listener` until `shutdown` completes; then stops accepting, closes every
/// client with 1001 "server shutting down" and waits (at most 3 s) for their close handshakes.
pub async fn run(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let room = SharedRoom::default();
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tasks.spawn(connection(stream, room.clone(), stop.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off and keep serving.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.shutdown().await;
    }
}

/// The address to listen on: `--addr HOST:PORT` and `--port N`, else `CHAT_ADDR` and `PORT`
/// from the environment, else 127.0.0.1:8080. A port given on its own replaces the address's.
fn listen_addr() -> Result<(String, u16), String> {
    let (mut addr, mut port) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        match name.as_str() {
            "--addr" | "--port" => {
                let value = inline
                    .or_else(|| args.next())
                    .ok_or(format!("{name} needs a value"))?;
                if name == "--addr" {
                    addr = Some(value);
                } else {
                    port = Some(value);
                }
            }
            "-h" | "--help" => {
                return Err("usage: chat_server [--addr HOST:PORT] [--port PORT]\n\
                            (or CHAT_ADDR / PORT in the environment; default 127.0.0.1:8080)"
                    .into())
            }
            _ => return Err(format!("unknown argument {name:?} (try --help)")),
        }
    }
    // The environment fills in only what the command line left out.
    if addr.is_none() && port.is_none() {
        addr = std::env::var("CHAT_ADDR").ok();
        port = std::env::var("PORT").ok();
    }
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8080".into());
    let (host, addr_port) = addr
        .rsplit_once(':')
        .ok_or(format!("address {addr:?} is not HOST:PORT"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = port.as_deref().unwrap_or(addr_port);
    let port = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    Ok((host, port))
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed before it returns, so a
/// signal that comes right after the "listening" line is not lost.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (host, port) = match listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {host}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signal = match shutdown_signal() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    println!("chat server listening on http://{addr}/");
    let _ = std::io::stdout().flush();
    run(listener, async {
        signal.await;
        eprintln!("shutting down: closing every client with 1001");
    })
    .await;
    ExitCode::SUCCESS
}
