//! Raw peers over real loopback TCP, for conformance and hostile-input tests.
//!
//! - A *raw client* does the opening handshake by hand (raw HTTP bytes) against a hybi echo
//!   server (the tokio adapter on a current-thread runtime, or the blocking adapter with a thread
//!   per connection, both in-process on 127.0.0.1 port 0), writes raw frame bytes (whole, or
//!   chopped into pieces with small pauses like Autobahn's chop mode) while a second thread reads
//!   the frames that come back until EOF.
//! - A *raw server* answers a hybi echo client's handshake by hand, writes raw frames and reads
//!   the client's frames until its close frame.
//! - A *raw HTTP/2 client* opens an extended CONNECT stream (RFC 8441) to a hybi server behind
//!   hyper-util's auto builder and writes the same frame bytes as DATA (whole or chopped),
//!   reading the answers until the stream ends ([`Mode::Http2`], a hybi server only).
//! - The same case also runs through the core alone ([`Connection`]), one frame at a time and one
//!   byte at a time, with the same echo loop.
//!
//! [`check`] runs a [`Case`] every way and asserts that every run saw the expected
//! [`Outcome`]: the frames the peer received (close frames reduced to their code) and whether
//! the hybi side closed TCP first.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use hybi::{Accept, ClientRequest, Config, Connection, Error, Event, Role, Timeouts};

/// The RFC 6455 §1.3 example key, and its accept value.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// A valid upgrade request, as a raw client sends it.
pub const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
/// How long a raw peer waits for bytes before calling the run hung.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the raw server watches for the hybi client closing TCP on its own after its close
/// frame (it must not: the server closes first, §7.1.1).
const CLIENT_FIN_GRACE: Duration = Duration::from_millis(10);

// ------------------------------------------------------------------ frames

/// A frame as a test writes it (unmasked; the runner masks what a client sends), or as a peer
/// received it (close frames reduced to their status code).
#[derive(Clone, PartialEq, Eq)]
pub struct F {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub payload: Vec<u8>,
    /// Send only the header and this many payload bytes (the rest is never sent).
    pub cut: Option<usize>,
}

impl F {
    pub fn new(fin: bool, opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            fin,
            rsv: 0,
            opcode,
            payload: payload.into(),
            cut: None,
        }
    }
    pub fn text(s: impl AsRef<[u8]>) -> Self {
        Self::new(true, 1, s.as_ref())
    }
    pub fn binary(b: impl Into<Vec<u8>>) -> Self {
        Self::new(true, 2, b)
    }
    pub fn ping(b: impl Into<Vec<u8>>) -> Self {
        Self::new(true, 9, b)
    }
    pub fn pong(b: impl Into<Vec<u8>>) -> Self {
        Self::new(true, 10, b)
    }
    /// A close frame with a code (as received: no reason).
    pub fn close(code: u16) -> Self {
        Self::new(true, 8, code.to_be_bytes().to_vec())
    }
    pub fn close_reason(code: u16, reason: impl AsRef<[u8]>) -> Self {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason.as_ref());
        Self::new(true, 8, p)
    }
    /// A fragment: `op` 0 for a continuation.
    pub fn frag(fin: bool, op: u8, b: impl AsRef<[u8]>) -> Self {
        Self::new(fin, op, b.as_ref())
    }
    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }
    pub fn cut(mut self, n: usize) -> Self {
        self.cut = Some(n);
        self
    }
    /// The wire bytes (RFC 6455 §5.2), masked with `mask` when given (§5.3).
    pub fn encode(&self, mask: Option<[u8; 4]>) -> Vec<u8> {
        let len = self.payload.len();
        let mut w = vec![(self.fin as u8) << 7 | (self.rsv & 7) << 4 | (self.opcode & 0x0f)];
        let m = if mask.is_some() { 0x80 } else { 0 };
        if len <= 125 {
            w.push(m | len as u8);
        } else if len <= 0xffff {
            w.push(m | 126);
            w.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            w.push(m | 127);
            w.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if let Some(k) = mask {
            w.extend_from_slice(&k);
        }
        let start = w.len();
        w.extend_from_slice(&self.payload[..self.cut.unwrap_or(len).min(len)]);
        if let Some(k) = mask {
            xor_mask(&mut w[start..], k);
        }
        w
    }
}

impl fmt::Debug for F {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.opcode {
            0 => "cont".to_string(),
            1 => "text".to_string(),
            2 => "binary".to_string(),
            8 => "close".to_string(),
            9 => "ping".to_string(),
            10 => "pong".to_string(),
            n => format!("op{n}"),
        };
        write!(f, "{op}")?;
        if !self.fin {
            write!(f, "(fin=0)")?;
        }
        if self.rsv != 0 {
            write!(f, "(rsv={})", self.rsv)?;
        }
        if self.opcode == 8 && self.payload.len() >= 2 {
            write!(
                f,
                " {}",
                u16::from_be_bytes([self.payload[0], self.payload[1]])
            )?;
        } else if self.payload.len() <= 40 {
            match std::str::from_utf8(&self.payload) {
                Ok(s) => write!(f, " {s:?}")?,
                Err(_) => write!(f, " {:x?}", self.payload)?,
            }
        } else {
            write!(
                f,
                " len={} fnv={:016x}",
                self.payload.len(),
                fnv(&self.payload)
            )?;
        }
        if let Some(n) = self.cut {
            write!(f, " (cut at {n})")?;
        }
        Ok(())
    }
}

/// XORs `data` with the repeating 4-byte `key` from offset 0 (RFC 6455 §5.3), 8 bytes at a time
/// so large payloads stay fast in debug builds.
pub fn xor_mask(data: &mut [u8], key: [u8; 4]) {
    let k8 = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes((&*c).try_into().unwrap()) ^ k8;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    for (i, x) in rest.iter_mut().enumerate() {
        *x ^= key[i % 4];
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100000001b3)
    })
}

/// Decodes the complete frames at the start of `buf` (independently of hybi's decoder). Panics
/// when a frame's mask bit is not `masked`. Returns the frames and the bytes they used.
pub fn parse_frames(buf: &[u8], masked: bool) -> (Vec<F>, usize) {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let b = &buf[pos..];
        if b.len() < 2 {
            break;
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, (b[0] >> 4) & 7, b[0] & 0x0f);
        let has_mask = b[1] & 0x80 != 0;
        assert_eq!(
            has_mask,
            masked,
            "mask bit wrong in received frame {:x?}",
            &b[..2]
        );
        let (len, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            n => (n as usize, 2),
        };
        let key = if has_mask {
            if b.len() < at + 4 {
                break;
            }
            at += 4;
            Some([b[at - 4], b[at - 3], b[at - 2], b[at - 1]])
        } else {
            None
        };
        if b.len() < at + len {
            break;
        }
        let mut payload = b[at..at + len].to_vec();
        if let Some(k) = key {
            xor_mask(&mut payload, k);
        }
        if opcode == 8 {
            payload.truncate(2);
        }
        frames.push(F {
            fin,
            rsv,
            opcode,
            payload,
            cut: None,
        });
        pos += at + len;
    }
    (frames, pos)
}

// ------------------------------------------------------------------ cases and outcomes

/// How the hybi side's TCP connection stood when the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The hybi side closed first (FIN): a server after the closing handshake or a failure.
    Fin,
    /// The hybi side kept TCP open, waiting for the peer to close first (a client, §7.1.1).
    Open,
    /// The connection was reset (never expected).
    Reset,
}

/// What the raw peer observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub frames: Vec<F>,
    pub end: End,
}

/// One conformance case: frames the raw peer sends (a close 1000 is appended), the frames it
/// must get back.
#[derive(Clone)]
pub struct Case {
    pub name: String,
    pub send: Vec<F>,
    pub expect: Vec<F>,
    pub config: Config,
    /// Also run over loopback (off for cases only the core runs, e.g. large tables).
    pub loopback: bool,
    pub roles: &'static [Role],
}

pub const BOTH: &[Role] = &[Role::Server, Role::Client];

impl Case {
    pub fn new(name: impl Into<String>, send: Vec<F>, expect: Vec<F>) -> Self {
        Self {
            name: name.into(),
            send,
            expect,
            config: Config::default(),
            loopback: true,
            roles: BOTH,
        }
    }
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    pub fn core_only(mut self) -> Self {
        self.loopback = false;
        self
    }
    pub fn roles(mut self, roles: &'static [Role]) -> Self {
        self.roles = roles;
        self
    }

    /// The frames on the wire, as the raw peer of a hybi `role` sends them (a raw client masks).
    pub fn wire_frames(&self, role: Role) -> Vec<Vec<u8>> {
        let mask = (role == Role::Server).then_some(super::KEY);
        self.send
            .iter()
            .chain(std::iter::once(&F::close(1000)))
            .map(|f| f.encode(mask))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    Tokio,
    Blocking,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Over loopback; `chop` writes in pieces of that many bytes with a short pause between.
    Loopback(Adapter, Option<usize>),
    /// Through the core, one frame per `handle_input`.
    CoreFrames,
    /// Through the core, one byte per `handle_input` (or 997-byte pieces for large cases).
    CoreBytes,
    /// Over one HTTP/2 extended CONNECT stream (RFC 8441) to a hybi server behind hyper-util's
    /// auto builder (`hybi::hyper`, the tokio adapter); `chop` as for `Loopback`. The raw
    /// client writes the same frames as DATA and reads the answers until the stream ends. A
    /// hybi server only: the hybi side closing first is its END_STREAM.
    Http2(Option<usize>),
}

/// Runs `case` in every role and mode; every run must see `case.expect`, and the hybi side
/// must close TCP first exactly when it is the server.
pub fn check(case: &Case) {
    for &role in case.roles {
        let wire = case.wire_frames(role);
        let total: usize = wire.iter().map(Vec::len).sum();
        let chop = if total > 4096 {
            (total / 64).max(997)
        } else {
            3
        };
        let mut modes = vec![Mode::CoreFrames, Mode::CoreBytes];
        if case.loopback {
            for a in [Adapter::Tokio, Adapter::Blocking] {
                modes.push(Mode::Loopback(a, None));
                modes.push(Mode::Loopback(a, Some(chop)));
            }
            if role == Role::Server {
                modes.push(Mode::Http2(None));
                modes.push(Mode::Http2(Some(chop)));
            }
        }
        let expected = Outcome {
            frames: case.expect.clone(),
            end: if role == Role::Server {
                End::Fin
            } else {
                End::Open
            },
        };
        for mode in modes {
            let t = Instant::now();
            let got = run_wire(case, role, mode, &wire);
            if std::env::var_os("WIRE_TIMING").is_some() {
                eprintln!("{:?} {role:?} {mode:?}: {:?}", case.name, t.elapsed());
            }
            assert_eq!(
                got, expected,
                "case {:?}, hybi {role:?}, {mode:?}: sent {:?}",
                case.name, case.send
            );
        }
    }
}

pub fn check_all(cases: &[Case]) {
    for c in cases {
        check(c);
    }
}

pub fn run(case: &Case, role: Role, mode: Mode) -> Outcome {
    run_wire(case, role, mode, &case.wire_frames(role))
}

fn run_wire(case: &Case, role: Role, mode: Mode, wire: &[Vec<u8>]) -> Outcome {
    match mode {
        Mode::CoreFrames => core_run(case, role, wire.iter().map(Vec::as_slice)),
        Mode::CoreBytes => {
            let all = wire.concat();
            let n = if all.len() > 65536 { 997 } else { 1 };
            core_run(case, role, all.chunks(n))
        }
        Mode::Loopback(adapter, chop) => {
            let all = wire.concat();
            match role {
                Role::Server => {
                    let addr = shared_server(adapter, &case.config);
                    raw_client(addr, &all, chop)
                }
                Role::Client => raw_server_against(adapter, &case.config, &all, chop),
            }
        }
        Mode::Http2(chop) => {
            assert_eq!(role, Role::Server, "HTTP/2 runs a hybi server only");
            raw_h2_client(shared_h2_server(&case.config), &wire.concat(), chop)
        }
    }
}

// ------------------------------------------------------------------ the core, by hand

/// The echo loop every hybi side in these tests runs: echo each message, ignore other events.
pub fn core_echo(conn: &mut Connection) {
    while let Some(ev) = conn.next_event() {
        if let Event::Message(m) = ev {
            conn.send(m).expect("echo");
        }
    }
}

fn split_head(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn core_run<'a>(case: &Case, role: Role, units: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut conn;
    match role {
        Role::Server => {
            conn = Connection::server(case.config.clone());
            conn.handle_input(REQUEST);
            match conn.next_event() {
                Some(Event::Request(_)) => conn.accept(Accept::new()).unwrap(),
                other => panic!("expected a request, got {other:?}"),
            }
            core_echo(&mut conn);
            let out = super::take_output(&mut conn);
            assert!(
                out.starts_with(b"HTTP/1.1 101"),
                "{}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(split_head(&out), Some(out.len()));
        }
        Role::Client => {
            let request = ClientRequest::new("ws://127.0.0.1/chat").unwrap();
            conn = Connection::client(request, case.config.clone());
            let req = super::take_output(&mut conn);
            conn.handle_input(&response_for(&req));
            assert!(matches!(conn.next_event(), Some(Event::Open(_))));
        }
    }
    let mut out = Vec::new();
    for unit in units {
        conn.handle_input(unit);
        core_echo(&mut conn);
        out.extend(super::take_output(&mut conn));
    }
    let (frames, used) = parse_frames(&out, role == Role::Client);
    assert_eq!(used, out.len(), "trailing partial frame");
    Outcome {
        frames,
        end: if conn.wants_shutdown() {
            End::Fin
        } else {
            End::Open
        },
    }
}

/// The 101 answer to a raw request head (the key taken from it).
pub fn response_for(request: &[u8]) -> Vec<u8> {
    let head = String::from_utf8_lossy(request);
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .expect("no Sec-WebSocket-Key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        hybi::handshake::accept_key(key.as_bytes())
    )
    .into_bytes()
}

// ------------------------------------------------------------------ raw I/O

/// Writes `bytes` whole, or in pieces of `chop` bytes with a short pause between. Errors (the
/// other side may be gone) end the write; the number of bytes written is returned.
pub fn write_chopped(s: &mut TcpStream, bytes: &[u8], chop: Option<usize>) -> usize {
    let size = chop.unwrap_or(bytes.len()).max(1);
    let mut done = 0;
    for piece in bytes.chunks(size) {
        if s.write_all(piece).is_err() {
            return done;
        }
        done += piece.len();
        if chop.is_some() {
            thread::sleep(Duration::from_micros(200));
        }
    }
    done
}

/// Reads until the head's blank line; returns the head and the bytes after it.
pub fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = split_head(&buf) {
            let rest = buf.split_off(end);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        match s.read(&mut chunk) {
            Ok(0) => panic!(
                "EOF before the end of the head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading the head: {e}"),
        }
    }
}

/// Reads until EOF (or reset, or `timeout` without data). Returns the bytes and how it ended.
pub fn read_to_end(s: &mut TcpStream, mut buf: Vec<u8>, timeout: Duration) -> (Vec<u8>, End) {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (buf, End::Fin),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (buf, End::Open)
            }
            Err(_) => return (buf, End::Reset),
        }
    }
}

/// Connects and does the opening handshake by hand; returns the stream and any bytes that
/// arrived after the 101 head.
pub fn raw_connect(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(REQUEST).unwrap();
    let (head, rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains(WS_ACCEPT), "{head}");
    (s, rest)
}

/// A raw client against a hybi server: handshake, write `bytes` (from a second thread), read
/// until EOF.
pub fn raw_client(addr: SocketAddr, bytes: &[u8], chop: Option<usize>) -> Outcome {
    let (mut s, rest) = raw_connect(addr);
    let mut w = s.try_clone().unwrap();
    let bytes = bytes.to_vec();
    let writer = thread::spawn(move || write_chopped(&mut w, &bytes, chop));
    let (buf, end) = read_to_end(&mut s, rest, IO_TIMEOUT);
    writer.join().unwrap();
    let (frames, used) = parse_frames(&buf, false);
    assert_eq!(used, buf.len(), "trailing partial frame from the server");
    Outcome { frames, end }
}

/// A raw server for one hybi client: answers the handshake, writes `bytes`, reads the client's
/// frames until its close frame, notes whether the client closes TCP on its own, then closes
/// and waits for the client's EOF.
pub fn raw_server(listener: &TcpListener, bytes: &[u8], chop: Option<usize>) -> Outcome {
    let (mut s, _) = listener.accept().unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let (head, mut buf) = read_head(&mut s);
    s.write_all(&response_for(head.as_bytes())).unwrap();
    let mut w = s.try_clone().unwrap();
    let bytes = bytes.to_vec();
    let writer = thread::spawn(move || write_chopped(&mut w, &bytes, chop));
    let mut chunk = vec![0u8; 64 << 10];
    let mut end = End::Open;
    let frames = loop {
        let (frames, _) = parse_frames(&buf, true);
        if frames.iter().any(|f| f.opcode == 8) {
            break frames;
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                end = End::Fin;
                break frames;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("raw server: no close frame from the client ({e}); got {frames:?}"),
        }
    };
    if end == End::Open {
        // The client must wait for the server to close TCP.
        let (_, e) = read_to_end(&mut s, Vec::new(), CLIENT_FIN_GRACE);
        end = e;
    }
    writer.join().unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let (_, after) = read_to_end(&mut s, Vec::new(), IO_TIMEOUT);
    assert_ne!(
        after,
        End::Open,
        "the client did not close after the server's FIN"
    );
    Outcome { frames, end }
}

/// Runs a hybi echo client (`adapter`) against a raw server that sends `bytes`.
pub fn raw_server_against(
    adapter: Adapter,
    config: &Config,
    bytes: &[u8],
    chop: Option<usize>,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/chat", listener.local_addr().unwrap());
    let client = spawn_echo_client(adapter, url, config.clone());
    let outcome = raw_server(&listener, bytes, chop);
    let report = client.join().unwrap();
    report.handshake.expect("client handshake");
    outcome
}

// ------------------------------------------------------------------ hybi echo endpoints

/// What a hybi echo endpoint saw on one connection.
#[derive(Debug)]
pub struct Report {
    pub handshake: Result<(), Error>,
    /// The error that ended the echo loop.
    pub end: Option<Error>,
    /// The largest `buffered_amount()` seen after any event.
    pub max_buffered: usize,
    pub pings: usize,
    pub messages: usize,
    /// Events seen so far, live, shared with whoever made the report (see [`Server::events`]).
    events: Arc<AtomicUsize>,
}

impl Report {
    fn new() -> Self {
        Self::counting(Arc::default())
    }

    fn counting(events: Arc<AtomicUsize>) -> Self {
        Self {
            handshake: Ok(()),
            end: None,
            max_buffered: 0,
            pings: 0,
            messages: 0,
            events,
        }
    }

    fn saw_event(&mut self) {
        self.events.fetch_add(1, Ordering::SeqCst);
    }
}

/// The options every echo endpoint uses: no keepalive pings (they would be extra frames).
pub fn quiet_options() -> Timeouts {
    Timeouts::default().with_ping_interval(None)
}

async fn tokio_echo<S>(mut ws: hybi::tokio::WebSocketStream<S>, report: &mut Report)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let ev = ws.recv_event().await;
        report.saw_event();
        report.max_buffered = report.max_buffered.max(ws.connection().buffered_amount());
        match ev {
            Ok(Event::Message(m)) => {
                report.messages += 1;
                if let Err(e) = ws.send_message(m).await {
                    report.end = Some(e);
                    return;
                }
            }
            Ok(Event::Ping(_)) => report.pings += 1,
            Ok(_) => {}
            Err(e) => {
                report.end = Some(e);
                return;
            }
        }
    }
}

fn blocking_echo<S: hybi::blocking::Transport>(
    mut ws: hybi::blocking::WebSocket<S>,
    report: &mut Report,
) {
    loop {
        let ev = ws.recv_event();
        report.saw_event();
        report.max_buffered = report.max_buffered.max(ws.connection().buffered_amount());
        match ev {
            Ok(Event::Message(m)) => {
                report.messages += 1;
                if let Err(e) = ws.send_message(m) {
                    report.end = Some(e);
                    return;
                }
            }
            Ok(Event::Ping(_)) => report.pings += 1,
            Ok(_) => {}
            Err(e) => {
                report.end = Some(e);
                return;
            }
        }
    }
}

/// A hybi echo server in this process; every connection's [`Report`] arrives on `reports`.
pub struct Server {
    pub addr: SocketAddr,
    pub reports: mpsc::Receiver<Report>,
    /// Events the server's connections have taken so far (messages, pings, close frames...),
    /// live: a test waits on it instead of sleeping.
    pub events: Arc<AtomicUsize>,
}

impl Server {
    /// The report of the next connection to end (panics after `IO_TIMEOUT * 2`).
    pub fn report(&self) -> Report {
        self.reports
            .recv_timeout(IO_TIMEOUT * 2)
            .expect("the server did not finish the connection")
    }
}

pub fn spawn_server(adapter: Adapter, config: Config, options: Timeouts) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, reports) = mpsc::channel();
    let events = Arc::new(AtomicUsize::new(0));
    let counter = events.clone();
    match adapter {
        Adapter::Tokio => {
            listener.set_nonblocking(true).unwrap();
            thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        tcp.set_nodelay(true).unwrap();
                        let (config, options, tx) = (config.clone(), options.clone(), tx.clone());
                        let counter = counter.clone();
                        tokio::spawn(async move {
                            let mut report = Report::counting(counter);
                            match hybi::tokio::accept_with(tcp, config, options, |_| {
                                Ok(Accept::new())
                            })
                            .await
                            {
                                Ok(ws) => tokio_echo(ws, &mut report).await,
                                Err(e) => report.handshake = Err(e),
                            }
                            let _ = tx.send(report);
                        });
                    }
                })
            });
        }
        Adapter::Blocking => {
            thread::spawn(move || {
                for tcp in listener.incoming() {
                    let Ok(tcp) = tcp else { continue };
                    tcp.set_nodelay(true).unwrap();
                    let (config, options, tx) = (config.clone(), options.clone(), tx.clone());
                    let counter = counter.clone();
                    thread::spawn(move || {
                        let mut report = Report::counting(counter);
                        match hybi::blocking::accept_with(tcp, config, options, |_| {
                            Ok(Accept::new())
                        }) {
                            Ok(ws) => blocking_echo(ws, &mut report),
                            Err(e) => report.handshake = Err(e),
                        }
                        let _ = tx.send(report);
                    });
                }
            });
        }
    }
    Server {
        addr,
        reports,
        events,
    }
}

/// An echo server shared by every case with the same adapter and config (reports dropped).
pub fn shared_server(adapter: Adapter, config: &Config) -> SocketAddr {
    static SERVERS: OnceLock<Mutex<HashMap<String, SocketAddr>>> = OnceLock::new();
    let key = format!("{adapter:?} {config:?}");
    let mut map = SERVERS.get_or_init(Default::default).lock().unwrap();
    *map.entry(key)
        .or_insert_with(|| spawn_server(adapter, config.clone(), quiet_options()).addr)
}

/// A hybi echo client on its own thread (a current-thread runtime for tokio).
pub fn spawn_echo_client(
    adapter: Adapter,
    url: String,
    config: Config,
) -> thread::JoinHandle<Report> {
    let request = ClientRequest::new(&url).unwrap();
    thread::spawn(move || {
        let mut report = Report::new();
        match adapter {
            Adapter::Tokio => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    match hybi::tokio::connect_with(
                        request,
                        hybi::ConnectOptions::default()
                            .with_config(config)
                            .with_timeouts(quiet_options()),
                    )
                    .await
                    {
                        Ok((ws, _)) => tokio_echo(ws, &mut report).await,
                        Err(e) => report.handshake = Err(e),
                    }
                });
            }
            Adapter::Blocking => {
                match hybi::blocking::connect_with(
                    request,
                    hybi::ConnectOptions::default()
                        .with_config(config)
                        .with_timeouts(quiet_options()),
                ) {
                    Ok((ws, _)) => blocking_echo(ws, &mut report),
                    Err(e) => report.handshake = Err(e),
                }
            }
        }
        report
    })
}

// ------------------------------------------------------------------ over HTTP/2

/// A hybi echo server behind hyper-util's auto builder (HTTP/2 prior knowledge, extended
/// CONNECT enabled), shared by every case with the same config (reports dropped).
pub fn shared_h2_server(config: &Config) -> SocketAddr {
    static SERVERS: OnceLock<Mutex<HashMap<String, SocketAddr>>> = OnceLock::new();
    let key = format!("{config:?}");
    let mut map = SERVERS.get_or_init(Default::default).lock().unwrap();
    *map.entry(key).or_insert_with(|| {
        let options = super::http2::ServerOptions {
            config: config.clone(),
            timeouts: quiet_options(),
            ..Default::default()
        };
        let handler: super::http2::Handler =
            Arc::new(|ws, _path| Box::pin(async move { tokio_echo(ws, &mut Report::new()).await }));
        let server = super::http2::Server::start(options, handler);
        let addr = server.addr;
        // Serves until the test binary exits.
        std::mem::forget(server);
        addr
    })
}

/// A raw client on an HTTP/2 stream: an extended CONNECT to `addr` (200 expected), `bytes`
/// written as DATA (whole or chopped) while the answers are read until the stream ends
/// (END_STREAM: [`End::Fin`]; RST_STREAM: [`End::Reset`]; nothing for [`IO_TIMEOUT`]:
/// [`End::Open`]).
pub fn raw_h2_client(addr: SocketAddr, bytes: &[u8], chop: Option<usize>) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = bytes.to_vec();
    let total = bytes.len();
    let received = Arc::new(AtomicUsize::new(0));
    let got = received.clone();
    let run = async move {
        use super::http2 as h2t;
        let client = h2t::client(addr, h2t::Windows::default()).await;
        let request = h2t::websocket_request(addr, "/chat", &[]);
        let (response, mut stream) = h2t::open(&client.send, request).await.unwrap();
        assert_eq!(response.status(), 200, "{response:?}");
        let mut body = response.into_body();
        let writer = tokio::spawn(async move {
            h2t::send_chopped(&mut stream, &bytes, chop).await;
            stream
        });
        let mut buf = Vec::new();
        let end = loop {
            match tokio::time::timeout(IO_TIMEOUT, body.data()).await {
                Err(_) => break End::Open,
                Ok(None) => break End::Fin,
                Ok(Some(Ok(data))) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    buf.extend_from_slice(&data);
                    got.store(buf.len(), Ordering::SeqCst);
                }
                Ok(Some(Err(e))) => {
                    eprintln!("HTTP/2 stream reset: {e}");
                    break End::Reset;
                }
            }
        };
        // Our side of the stream ends too, so the server's wait for it is short.
        if let Ok(mut stream) = writer.await {
            let _ = stream.send_data(bytes::Bytes::new(), true);
        }
        (buf, end)
    };
    let limit = IO_TIMEOUT * 3;
    let (buf, end) = rt.block_on(async {
        tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
            panic!(
                "HTTP/2 run hung for {limit:?}: {total} bytes to send, {} received",
                received.load(Ordering::SeqCst)
            )
        })
    });
    let (frames, used) = parse_frames(&buf, false);
    assert_eq!(used, buf.len(), "trailing partial frame from the server");
    Outcome { frames, end }
}

/// Reads whatever a server answers to raw bytes that are not a valid handshake: the head as
/// text (lossy) and how the connection ended.
pub fn raw_http_exchange(addr: SocketAddr, bytes: &[u8]) -> (String, End) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut w = s.try_clone().unwrap();
    let bytes = bytes.to_vec();
    let writer = thread::spawn(move || write_chopped(&mut w, &bytes, None));
    let (buf, end) = read_to_end(&mut s, Vec::new(), IO_TIMEOUT);
    writer.join().unwrap();
    (String::from_utf8_lossy(&buf).into_owned(), end)
}
