//! Shared pieces of the interop tests (`tests/interop_*.rs`): the checklist hybi's clients run
//! against a foreign echo server, hybi's echo servers for foreign clients, and a guard for
//! child processes.
//!
//! The echo servers on both sides understand two commands sent as text:
//! - `close:CODE:REASON`: the server starts the closing handshake with that code and reason
//!   (the Python echo server does the same);
//! - a text starting with `fragment-me:` is echoed in three frames, cut inside 4-byte code
//!   points (the Python server echoes it as one frame, which is still an echo).
#![allow(dead_code)] // each test file uses a different subset

pub mod tungstenite;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hybi::blocking::{self, Transport};
use hybi::{
    Accept, ClientRequest, CloseCode, CloseFrame, CloseOutcome, Config, Error, Event, Initiator,
    Message, MessageKind, Reject, Request, Timeouts,
};

/// The subprotocol both sides offer and accept.
pub const SUBPROTOCOL: &str = "chat";
/// The close a client starts.
pub const CLIENT_CLOSE: (u16, &str) = (4001, "client done ✓");
/// The close a client asks the echo server to start (`close:CODE:REASON`).
pub const SERVER_CLOSE: (u16, &str) = (4002, "server done");
pub const PING_PAYLOAD: &[u8] = b"interop-ping-\x00\xff";
pub const UTF8_4BYTE: &str = "4-byte code points: 😀 🌍 𐍈 𝄞, and é 中文";
pub const FRAGMENT_ME_PREFIX: &str = "fragment-me:";
pub const FRAGMENT_ME: &str = "fragment-me: 😀 split 🌍 across three frames";
/// Each payload-length encoding on both sides of its boundary, and a large message.
pub const BINARY_SIZES: [usize; 6] = [0, 125, 126, 65535, 65536, 1 << 20];
/// The bound on one whole test (connects, checklist, closes).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A close handshake with a live peer takes milliseconds; hybi's close timeout is 5 s, so a
/// close that took longer than this waited for a timeout instead of the peer.
pub const PROMPT_CLOSE: Duration = Duration::from_secs(4);

/// Deterministic pseudo-random bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Cuts `s` into three pieces inside its first two 4-byte code points (thirds if it has fewer).
pub fn split3(s: &str) -> Vec<Vec<u8>> {
    let wide: Vec<usize> = s
        .char_indices()
        .filter(|(_, c)| c.len_utf8() == 4)
        .map(|(i, _)| i)
        .take(2)
        .collect();
    let (a, b) = match wide[..] {
        [x, y] => (x + 1, y + 3),
        _ => (s.len() / 3, 2 * s.len() / 3),
    };
    let bytes = s.as_bytes();
    vec![
        bytes[..a].to_vec(),
        bytes[a..b].to_vec(),
        bytes[b..].to_vec(),
    ]
}

/// One step of the client checklist.
pub enum Step {
    /// Send the message; the same message must come back.
    Echo(Message),
    /// Send one message as these frames; the whole message must come back.
    Fragments(MessageKind, Vec<Vec<u8>>),
    /// Send a ping; a pong with the same payload must come back.
    Ping(Vec<u8>),
}

pub fn checklist() -> Vec<(String, Step)> {
    let mut steps = vec![
        ("text".to_string(), Step::Echo(Message::text("hello"))),
        ("empty text".into(), Step::Echo(Message::text(""))),
        (
            "UTF-8 text with 4-byte code points".into(),
            Step::Echo(Message::text(UTF8_4BYTE)),
        ),
    ];
    for n in BINARY_SIZES {
        steps.push((
            format!("binary {n} bytes"),
            Step::Echo(Message::binary(payload(n, n as u64))),
        ));
    }
    steps.extend([
        (
            "fragmented text, 3 frames, code points split across frames".into(),
            Step::Fragments(MessageKind::Text, split3("fragmented: 😀 then 🌍 end")),
        ),
        (
            "fragmented binary, 3 frames (1000 + 70000 + 3 bytes)".into(),
            Step::Fragments(
                MessageKind::Binary,
                vec![payload(1000, 1), payload(70000, 2), payload(3, 3)],
            ),
        ),
        (
            "fragmented binary with an empty final frame".into(),
            Step::Fragments(
                MessageKind::Binary,
                vec![payload(10, 4), payload(20, 5), vec![]],
            ),
        ),
        (
            "text the peer sends back fragmented".into(),
            Step::Echo(Message::text(FRAGMENT_ME)),
        ),
        (
            "ping with payload".into(),
            Step::Ping(PING_PAYLOAD.to_vec()),
        ),
        (
            "text after ping".into(),
            Step::Echo(Message::text("after ping")),
        ),
    ]);
    steps
}

/// Chat-like JSON text of exactly `len` bytes (ASCII): an array of messages such as
/// `{"type":"message","from":"alice","text":"...","ts":1732147200000}`, cut at `len`.
pub fn json_text(len: usize, seed: u64) -> String {
    const WORDS: [&str; 18] = [
        "hello", "alice", "bob", "the", "meeting", "is", "at", "noon", "ok", "see", "you", "there",
        "thanks", "lunch", "deploy", "done", "review", "please",
    ];
    let rnd = payload(4 * (len / 16 + 64), seed);
    let mut r = rnd.iter().map(|&b| usize::from(b)).cycle();
    let mut s = String::from("[");
    let mut i = 0u64;
    while s.len() <= len {
        let n = 3 + r.next().unwrap() % 18;
        let text: Vec<&str> = (0..n)
            .map(|_| WORDS[r.next().unwrap() % WORDS.len()])
            .collect();
        let from = ["alice", "bob", "carol"][r.next().unwrap() % 3];
        s.push_str(&format!(
            "{{\"type\":\"message\",\"from\":\"{from}\",\"text\":\"{}\",\"ts\":{}}},",
            text.join(" "),
            1_732_147_200_000u64 + 1000 * i
        ));
        i += 1;
    }
    s.truncate(len);
    s
}

/// Sizes of the JSON-like texts the deflate checklist echoes: around the default compression
/// threshold (32 bytes), and up to 1 MiB.
pub const JSON_SIZES: [usize; 9] = [0, 1, 31, 32, 33, 200, 4096, 65536, 1 << 20];

/// The checklist with JSON-like text messages of every size in [`JSON_SIZES`] first.
pub fn deflate_checklist() -> Vec<(String, Step)> {
    let mut steps: Vec<(String, Step)> = JSON_SIZES
        .iter()
        .map(|&n| {
            (
                format!("JSON text {n} bytes"),
                Step::Echo(Message::text(json_text(n, n as u64))),
            )
        })
        .collect();
    steps.extend(checklist());
    steps
}

fn joined(kind: MessageKind, parts: &[Vec<u8>]) -> Message {
    let all = parts.concat();
    match kind {
        MessageKind::Text => Message::text(String::from_utf8(all).unwrap()),
        MessageKind::Binary => Message::binary(all),
    }
}

fn short(m: &Message) -> String {
    match m {
        Message::Text(t) if t.len() <= 80 => format!("text {:?}", t.as_str()),
        Message::Text(t) => format!("text of {} bytes", t.len()),
        Message::Binary(b) if b.len() <= 16 => format!("binary {:?}", &b[..]),
        Message::Binary(b) => format!("binary of {} bytes", b.len()),
    }
}

fn check_echo(step: &str, got: &Message, want: &Message) {
    if got != want {
        let at = got
            .as_bytes()
            .iter()
            .zip(want.as_bytes())
            .position(|(a, b)| a != b);
        panic!(
            "{step}: sent {}, got back {} (first difference at byte {at:?})",
            short(want),
            short(got)
        );
    }
}

pub fn client_request(port: u16) -> ClientRequest {
    ClientRequest::new(&format!("ws://127.0.0.1:{port}/interop"))
        .unwrap()
        .protocol(SUBPROTOCOL)
}

fn close_command((code, reason): (u16, &str)) -> Message {
    Message::text(format!("close:{code}:{reason}"))
}

/// What a hybi client saw of a closing handshake.
#[derive(Debug)]
pub struct ClientClose {
    pub received: Option<CloseFrame>,
    pub outcome: CloseOutcome,
    pub took: Duration,
}

/// Checks a clean close with `code`/`reason` that `initiator` started; the peers here echo the
/// reason too (RFC 6455 only asks for the code).
pub fn check_close(what: &str, c: &ClientClose, (code, reason): (u16, &str), initiator: Initiator) {
    let f = c
        .received
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no close frame received; outcome {:?}", c.outcome));
    assert_eq!(
        (f.code.as_u16(), f.reason.as_str()),
        (code, reason),
        "{what}: close frame received"
    );
    let o = &c.outcome;
    assert!(o.clean, "{what}: close not clean: {o:?}");
    assert_eq!(
        (o.code.as_u16(), o.reason.as_str()),
        (code, reason),
        "{what}: outcome {o:?}"
    );
    assert_eq!(o.initiator, initiator, "{what}: outcome {o:?}");
    assert_eq!(o.error, None, "{what}: outcome {o:?}");
    assert!(
        c.took < PROMPT_CLOSE,
        "{what}: the close took {:?}: the peer did not close TCP, hybi waited for its timeout",
        c.took
    );
}

fn closed(what: &str, e: Error) -> CloseOutcome {
    match e {
        Error::Closed(o) => o,
        other => panic!("{what}: expected Error::Closed, got {other:?}"),
    }
}

// ------------------------------------------------------------------ hybi tokio client

pub async fn tokio_connect(port: u16) -> hybi::tokio::WebSocketStream<hybi::tokio::MaybeTlsStream> {
    tokio_connect_with(port, Config::default()).await.0
}

/// Connects with `config`; also returns the extensions the server's 101 named.
pub async fn tokio_connect_with(
    port: u16,
    config: Config,
) -> (
    hybi::tokio::WebSocketStream<hybi::tokio::MaybeTlsStream>,
    Vec<String>,
) {
    let (ws, response) = hybi::tokio::connect_with(
        client_request(port),
        hybi::ConnectOptions::default()
            .with_config(config)
            .with_timeouts(Timeouts::default()),
    )
    .await
    .expect("hybi tokio client: connect");
    assert_eq!(response.status(), 101);
    assert_eq!(response.protocol(), Some(SUBPROTOCOL), "subprotocol");
    assert_eq!(ws.connection().protocol(), Some(SUBPROTOCOL), "subprotocol");
    (ws, response.extensions().to_vec())
}

/// Runs the checklist, then closes with [`CLIENT_CLOSE`].
pub async fn tokio_client_checklist(port: u16) -> ClientClose {
    let mut ws = tokio_connect(port).await;
    tokio_run_steps(&mut ws, checklist()).await;
    let start = Instant::now();
    ws.close_with(CLIENT_CLOSE.0.into(), CLIENT_CLOSE.1)
        .await
        .unwrap();
    tokio_finish_close(&mut ws, start).await
}

/// Connects with `config`, runs `steps`, then closes with [`CLIENT_CLOSE`]; also returns the
/// extensions the server's 101 named.
pub async fn tokio_client_run(
    port: u16,
    config: Config,
    steps: Vec<(String, Step)>,
) -> (ClientClose, Vec<String>) {
    let (mut ws, extensions) = tokio_connect_with(port, config).await;
    tokio_run_steps(&mut ws, steps).await;
    let start = Instant::now();
    ws.close_with(CLIENT_CLOSE.0.into(), CLIENT_CLOSE.1)
        .await
        .unwrap();
    (tokio_finish_close(&mut ws, start).await, extensions)
}

async fn tokio_run_steps<S>(ws: &mut hybi::tokio::WebSocketStream<S>, steps: Vec<(String, Step)>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for (name, step) in steps {
        let name = format!("hybi tokio client: {name}");
        match step {
            Step::Echo(m) => {
                ws.send_message(m.clone()).await.expect(&name);
                check_echo(&name, &ws.recv().await.expect(&name), &m);
            }
            Step::Fragments(kind, parts) => {
                for (i, p) in parts.iter().enumerate() {
                    let fin = i + 1 == parts.len();
                    ws.connection_mut()
                        .send_fragment(kind, p, fin)
                        .expect(&name);
                }
                ws.flush_queue().await.expect(&name);
                check_echo(&name, &ws.recv().await.expect(&name), &joined(kind, &parts));
            }
            Step::Ping(p) => {
                ws.ping(&p).await.expect(&name);
                // The peer's own keepalive pings may come first.
                loop {
                    match ws.recv_event().await.expect(&name) {
                        Event::Pong(got) => break assert_eq!(&got[..], &p[..], "{name}"),
                        Event::Ping(_) => {}
                        other => panic!("{name}: expected a pong, got {other:?}"),
                    }
                }
            }
        }
    }
}

/// Asks the server to close with [`SERVER_CLOSE`] and follows the handshake.
pub async fn tokio_client_server_close(port: u16) -> ClientClose {
    let mut ws = tokio_connect(port).await;
    let start = Instant::now();
    ws.send_message(close_command(SERVER_CLOSE)).await.unwrap();
    tokio_finish_close(&mut ws, start).await
}

async fn tokio_finish_close<S>(
    ws: &mut hybi::tokio::WebSocketStream<S>,
    start: Instant,
) -> ClientClose
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut received = None;
    loop {
        match ws.recv_event().await {
            Ok(Event::CloseReceived(f)) => received = Some(f),
            Ok(Event::Ping(_) | Event::Pong(_)) => {}
            Ok(other) => panic!("hybi tokio client: unexpected event while closing: {other:?}"),
            Err(e) => {
                return ClientClose {
                    received,
                    outcome: closed("hybi tokio client", e),
                    took: start.elapsed(),
                }
            }
        }
    }
}

// ------------------------------------------------------------------ hybi blocking client

pub fn blocking_connect(port: u16) -> blocking::WebSocket<blocking::MaybeTlsStream> {
    let (ws, response) = blocking::connect_with(
        client_request(port),
        hybi::ConnectOptions::default()
            .with_config(Config::default())
            .with_timeouts(Timeouts::default()),
    )
    .expect("hybi blocking client: connect");
    assert_eq!(response.status(), 101);
    assert_eq!(response.protocol(), Some(SUBPROTOCOL), "subprotocol");
    assert_eq!(ws.connection().protocol(), Some(SUBPROTOCOL), "subprotocol");
    ws
}

/// Runs the checklist, then closes with [`CLIENT_CLOSE`].
pub fn blocking_client_checklist(port: u16) -> ClientClose {
    let mut ws = blocking_connect(port);
    for (name, step) in checklist() {
        let name = format!("hybi blocking client: {name}");
        match step {
            Step::Echo(m) => {
                ws.send_message(m.clone()).expect(&name);
                check_echo(&name, &ws.recv().expect(&name), &m);
            }
            Step::Fragments(kind, parts) => {
                for (i, p) in parts.iter().enumerate() {
                    let fin = i + 1 == parts.len();
                    ws.connection_mut()
                        .send_fragment(kind, p, fin)
                        .expect(&name);
                }
                ws.flush_queue().expect(&name);
                check_echo(&name, &ws.recv().expect(&name), &joined(kind, &parts));
            }
            Step::Ping(p) => {
                ws.ping(&p).expect(&name);
                // The peer's own keepalive pings may come first.
                loop {
                    match ws.recv_event().expect(&name) {
                        Event::Pong(got) => break assert_eq!(&got[..], &p[..], "{name}"),
                        Event::Ping(_) => {}
                        other => panic!("{name}: expected a pong, got {other:?}"),
                    }
                }
            }
        }
    }
    let start = Instant::now();
    ws.close_with(CLIENT_CLOSE.0.into(), CLIENT_CLOSE.1)
        .unwrap();
    blocking_finish_close(&mut ws, start)
}

/// Asks the server to close with [`SERVER_CLOSE`] and follows the handshake.
pub fn blocking_client_server_close(port: u16) -> ClientClose {
    let mut ws = blocking_connect(port);
    let start = Instant::now();
    ws.send_message(close_command(SERVER_CLOSE)).unwrap();
    blocking_finish_close(&mut ws, start)
}

fn blocking_finish_close<S: Transport>(
    ws: &mut blocking::WebSocket<S>,
    start: Instant,
) -> ClientClose {
    let mut received = None;
    loop {
        match ws.recv_event() {
            Ok(Event::CloseReceived(f)) => received = Some(f),
            Ok(Event::Ping(_) | Event::Pong(_)) => {}
            Ok(other) => panic!("hybi blocking client: unexpected event while closing: {other:?}"),
            Err(e) => {
                return ClientClose {
                    received,
                    outcome: closed("hybi blocking client", e),
                    took: start.elapsed(),
                }
            }
        }
    }
}

// ------------------------------------------------------------------ permessage-deflate parameters

/// The negotiated parameters as one `Sec-WebSocket-Extensions` element states them:
/// (server_no_context_takeover, client_no_context_takeover, server bits, client bits), with
/// the RFC's defaults for what it leaves out.
pub type Params = (bool, bool, u8, u8);

pub fn params_of(element: &str) -> Params {
    let mut it = element.split(';').map(str::trim);
    assert_eq!(it.next(), Some("permessage-deflate"), "{element:?}");
    let mut p = (false, false, 15, 15);
    for param in it {
        match param.split_once('=') {
            None if param == "server_no_context_takeover" => p.0 = true,
            None if param == "client_no_context_takeover" => p.1 = true,
            Some(("server_max_window_bits", v)) => p.2 = v.trim_matches('"').parse().unwrap(),
            Some(("client_max_window_bits", v)) => p.3 = v.trim_matches('"').parse().unwrap(),
            _ => panic!("unexpected parameter {param:?} in {element:?}"),
        }
    }
    p
}

/// The single permessage-deflate element among `extensions`.
pub fn negotiated(what: &str, extensions: &[String]) -> Params {
    match extensions {
        [one] => params_of(one),
        other => panic!("{what}: expected permessage-deflate to be negotiated, got {other:?}"),
    }
}

/// `websockets`' `PerMessageDeflate(...)` repr, as the peer in `role` ("server"/"client") sees
/// its parameters (local = its own direction), turned into [`Params`].
pub fn python_params(role: &str, repr: &str) -> Params {
    let field = |name: &str| {
        let start = repr
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name} in {repr:?}"))
            + name.len()
            + 1;
        let rest = &repr[start..];
        rest[..rest.find([',', ')']).unwrap()].to_string()
    };
    let (rnct, lnct) = (
        field("remote_no_context_takeover") == "True",
        field("local_no_context_takeover") == "True",
    );
    let (rbits, lbits): (u8, u8) = (
        field("remote_max_window_bits").parse().unwrap(),
        field("local_max_window_bits").parse().unwrap(),
    );
    match role {
        "server" => (lnct, rnct, lbits, rbits),
        _ => (rnct, lnct, rbits, lbits),
    }
}

// ------------------------------------------------------------------ hybi echo servers

/// How a connection to one of hybi's echo servers ended.
#[derive(Debug)]
pub struct ServerEnd {
    pub protocol: Option<String>,
    /// The extensions the server's 101 named (only from [`hybi_tokio_server_reporting`]).
    pub extensions: Vec<String>,
    pub close_received: Option<CloseFrame>,
    pub error: Error,
}

impl ServerEnd {
    /// The close outcome, for a connection that ended with `Error::Closed`.
    pub fn outcome(&self) -> &CloseOutcome {
        self.error
            .close_outcome()
            .unwrap_or_else(|| panic!("hybi server: expected Error::Closed, got {:?}", self.error))
    }
}

fn decide(req: &Request) -> Result<Accept, Reject> {
    Ok(if req.protocols().iter().any(|p| p == SUBPROTOCOL) {
        Accept::new().protocol(SUBPROTOCOL)
    } else {
        Accept::new()
    })
}

/// What an echo server does with a message.
enum Reply {
    Echo(Message),
    Close(CloseCode, String),
    Fragments(Vec<Vec<u8>>),
}

fn reply_to(m: Message) -> Reply {
    if let Some(t) = m.as_text() {
        if let Some(cmd) = t.strip_prefix("close:") {
            let (code, reason) = cmd.split_once(':').unwrap_or((cmd, ""));
            return Reply::Close(code.parse::<u16>().unwrap().into(), reason.to_string());
        }
        if t.starts_with(FRAGMENT_ME_PREFIX) {
            return Reply::Fragments(split3(t));
        }
    }
    Reply::Echo(m)
}

pub async fn tokio_echo<S>(stream: S, config: Config) -> ServerEnd
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let ws = match hybi::tokio::accept_with(stream, config, Timeouts::default(), decide).await {
        Ok(ws) => ws,
        Err(error) => {
            return ServerEnd {
                protocol: None,
                extensions: Vec::new(),
                close_received: None,
                error,
            }
        }
    };
    tokio_echo_loop(ws, false).await
}

/// Like [`tokio_echo`], with the server handshake run on the core directly, so that the
/// `Event::Open` (which names the negotiated extensions) is seen.
pub async fn tokio_echo_reporting<S>(mut stream: S, config: Config, prepared: bool) -> ServerEnd
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = hybi::Connection::server(config);
    let mut buf = vec![0u8; 16 << 10];
    let handshake = 'handshake: loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => {
                conn.handle_eof();
                0
            }
            Ok(n) => n,
            Err(e) => {
                return ServerEnd {
                    protocol: None,
                    extensions: Vec::new(),
                    close_received: None,
                    error: e.into(),
                }
            }
        };
        conn.handle_input(&buf[..n]);
        while let Some(ev) = conn.next_event() {
            match ev {
                Event::Request(req) => match decide(&req) {
                    Ok(accept) => conn.accept(accept).unwrap(),
                    Err(reject) => conn.reject(reject).unwrap(),
                },
                Event::Open(h) => break 'handshake h,
                Event::Closed(o) => {
                    return ServerEnd {
                        protocol: None,
                        extensions: Vec::new(),
                        close_received: None,
                        error: Error::Closed(*o),
                    }
                }
                _ => {}
            }
        }
        let out = conn.pending_output().to_vec();
        if !out.is_empty() {
            stream.write_all(&out).await.unwrap();
            conn.advance_output(out.len());
        }
    };
    // The 101 (and anything after it) is written by the stream.
    let ws = hybi::tokio::WebSocketStream::new(stream, conn, Timeouts::default());
    let mut end = tokio_echo_loop(ws, prepared).await;
    end.extensions = handshake.extensions;
    end
}

/// Echoes every message (as a [`hybi::PreparedMessage`] when `prepared`: framed and, with
/// deflate and no server context takeover, compressed once for every recipient).
pub async fn tokio_echo_loop<S>(
    mut ws: hybi::tokio::WebSocketStream<S>,
    prepared: bool,
) -> ServerEnd
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let protocol = ws.connection().protocol().map(String::from);
    let mut close_received = None;
    let error = loop {
        let sent = match ws.recv_event().await {
            Ok(Event::Message(m)) => match reply_to(m) {
                Reply::Echo(m) if prepared => {
                    let m = hybi::PreparedMessage::new(m);
                    ws.connection_mut().send_prepared(&m).unwrap();
                    ws.flush_queue().await
                }
                Reply::Echo(m) => ws.send_message(m).await,
                Reply::Close(code, reason) => ws.close_with(code, &reason).await,
                Reply::Fragments(parts) => {
                    for (i, p) in parts.iter().enumerate() {
                        let fin = i + 1 == parts.len();
                        ws.connection_mut()
                            .send_fragment(MessageKind::Text, p, fin)
                            .unwrap();
                    }
                    ws.flush_queue().await
                }
            },
            Ok(Event::CloseReceived(f)) => {
                close_received = Some(f);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => break e,
        };
        if let Err(e) = sent {
            break e;
        }
    };
    ServerEnd {
        protocol,
        extensions: Vec::new(),
        close_received,
        error,
    }
}

pub fn blocking_echo<S: Transport>(stream: S, config: Config) -> ServerEnd {
    let mut ws = match blocking::accept_with(stream, config, Timeouts::default(), decide) {
        Ok(ws) => ws,
        Err(error) => {
            return ServerEnd {
                protocol: None,
                extensions: Vec::new(),
                close_received: None,
                error,
            }
        }
    };
    let protocol = ws.connection().protocol().map(String::from);
    let mut close_received = None;
    let error = loop {
        let sent = match ws.recv_event() {
            Ok(Event::Message(m)) => match reply_to(m) {
                Reply::Echo(m) => ws.send_message(m),
                Reply::Close(code, reason) => ws.close_with(code, &reason),
                Reply::Fragments(parts) => {
                    for (i, p) in parts.iter().enumerate() {
                        let fin = i + 1 == parts.len();
                        ws.connection_mut()
                            .send_fragment(MessageKind::Text, p, fin)
                            .unwrap();
                    }
                    ws.flush_queue()
                }
            },
            Ok(Event::CloseReceived(f)) => {
                close_received = Some(f);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => break e,
        };
        if let Err(e) = sent {
            break e;
        }
    };
    ServerEnd {
        protocol,
        extensions: Vec::new(),
        close_received,
        error,
    }
}

/// A hybi tokio echo server on 127.0.0.1, on its own thread and runtime, for `conns`
/// connections; each connection's end is reported on the channel.
pub fn hybi_tokio_server(config: Config, conns: usize) -> (u16, mpsc::Receiver<ServerEnd>) {
    spawn_tokio_server(config, conns, Echo::Plain)
}

/// [`hybi_tokio_server`] with [`tokio_echo_reporting`]: each [`ServerEnd`] names the
/// negotiated extensions.
pub fn hybi_tokio_server_reporting(
    config: Config,
    conns: usize,
) -> (u16, mpsc::Receiver<ServerEnd>) {
    spawn_tokio_server(config, conns, Echo::Reporting)
}

/// [`hybi_tokio_server_reporting`] that echoes with prepared messages.
pub fn hybi_tokio_server_prepared(
    config: Config,
    conns: usize,
) -> (u16, mpsc::Receiver<ServerEnd>) {
    spawn_tokio_server(config, conns, Echo::Prepared)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Echo {
    Plain,
    Reporting,
    Prepared,
}

fn spawn_tokio_server(
    config: Config,
    conns: usize,
    echo: Echo,
) -> (u16, mpsc::Receiver<ServerEnd>) {
    let (port_tx, port_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let serve = async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..conns {
                    let (tcp, _) = listener.accept().await.unwrap();
                    tcp.set_nodelay(true).unwrap();
                    let (tx, config) = (tx.clone(), config.clone());
                    tasks.spawn(async move {
                        let end = match echo {
                            Echo::Plain => tokio_echo(tcp, config).await,
                            Echo::Reporting => tokio_echo_reporting(tcp, config, false).await,
                            Echo::Prepared => tokio_echo_reporting(tcp, config, true).await,
                        };
                        let _ = tx.send(end);
                    });
                }
                while tasks.join_next().await.is_some() {}
            };
            let _ = tokio::time::timeout(TEST_TIMEOUT, serve).await;
        });
    });
    (port_rx.recv().unwrap(), rx)
}

/// A hybi blocking echo server on 127.0.0.1, one thread per connection, for `conns`
/// connections (accepted within [`TEST_TIMEOUT`]); each connection's end is reported on the
/// channel.
pub fn hybi_blocking_server(config: Config, conns: usize) -> (u16, mpsc::Receiver<ServerEnd>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + TEST_TIMEOUT;
        let mut accepted = 0;
        while accepted < conns && Instant::now() < deadline {
            match listener.accept() {
                Ok((tcp, _)) => {
                    accepted += 1;
                    tcp.set_nonblocking(false).unwrap();
                    tcp.set_nodelay(true).unwrap();
                    let (tx, config) = (tx.clone(), config.clone());
                    std::thread::spawn(move || {
                        let _ = tx.send(blocking_echo(tcp, config));
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });
    (port, rx)
}

/// The next connection end a hybi server reports, waiting at most `TEST_TIMEOUT`.
pub fn server_end(rx: &mpsc::Receiver<ServerEnd>) -> ServerEnd {
    rx.recv_timeout(TEST_TIMEOUT)
        .expect("the hybi server reported no connection end in time")
}

/// Checks a hybi server's view of a clean close with `code`/`reason` that `initiator` started.
pub fn check_server_end(
    what: &str,
    end: &ServerEnd,
    (code, reason): (u16, &str),
    initiator: Initiator,
) {
    assert_eq!(
        end.protocol.as_deref(),
        Some(SUBPROTOCOL),
        "{what}: subprotocol"
    );
    let o = end.outcome();
    assert!(o.clean, "{what}: close not clean: {o:?}");
    assert_eq!(o.code.as_u16(), code, "{what}: outcome {o:?}");
    assert_eq!(o.initiator, initiator, "{what}: outcome {o:?}");
    let f = end
        .close_received
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no close frame received: {o:?}"));
    assert_eq!(f.code.as_u16(), code, "{what}: close frame received");
    if initiator == Initiator::Remote {
        // The peer's own close frame: its reason must arrive intact.
        assert_eq!(
            (f.reason.as_str(), o.reason.as_str()),
            (reason, reason),
            "{what}"
        );
    }
}

/// Runs `f` on a thread and waits at most [`TEST_TIMEOUT`] for it; panics from `f` are passed on.
pub fn with_timeout<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(TEST_TIMEOUT) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!(),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish in {TEST_TIMEOUT:?}")
        }
    }
}

/// A tokio runtime for a test body bounded by [`TEST_TIMEOUT`].
pub fn block_on<F: std::future::Future>(what: &str, f: F) -> F::Output {
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

// ------------------------------------------------------------------ child processes

/// A child process that is killed when dropped. Its stdout and stderr are read by threads:
/// lines of stdout arrive on [`lines`](Self::lines); stderr is kept for error messages.
pub struct ChildGuard {
    what: String,
    child: Child,
    /// Kept open: the Python echo server exits when its stdin closes.
    stdin: Option<ChildStdin>,
    pub lines: mpsc::Receiver<String>,
    stdout_seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl ChildGuard {
    pub fn spawn(what: &str, cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Self {
            what: what.into(),
            child,
            stdin,
            lines,
            stdout_seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// The next line of stdout, waiting at most `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.stdout_seen.push(line.clone());
        Some(line)
    }

    /// Waits at most `timeout` for the child to exit; then returns its status, all of its
    /// stdout lines and its stderr. Panics (after killing it) if it did not exit in time.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let (out, err) = (self.drain_stdout().join("\n"), self.take_stderr());
                panic!(
                    "{}: did not exit within {timeout:?}\nstdout:\n{out}\nstderr:\n{err}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines = self.drain_stdout();
        (status, lines, self.take_stderr())
    }

    /// What the child wrote to stderr; only once it has exited (or been killed).
    fn take_stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    fn drain_stdout(&mut self) -> Vec<String> {
        // The reader thread ends at EOF, which follows the exit (or kill) closely.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.stdout_seen.push(line);
        }
        std::mem::take(&mut self.stdout_seen)
    }

    /// Kills the child (if still running) and returns what it wrote to stderr.
    pub fn kill_and_stderr(mut self) -> String {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.take_stderr()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
