//! Test support: an in-memory pair of connections, raw frame builders and event transcripts.
#![allow(dead_code)] // each test file uses a different subset

pub mod http2;
pub mod tokio_server;
pub mod wire;

use hybi::frame::{FrameHeader, Opcode, Status};
use hybi::testing::FixedMask;
use hybi::{ClientRequest, CloseCode, Config, Connection, Event, Message, Role, State};

/// The mask key tests use, so client output is byte-exact.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub fn client_config() -> Config {
    Config::default().with_mask_source(FixedMask(KEY))
}

/// Raw frame bytes: `mask` masks the payload as a client would.
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    frame_rsv(fin, 0, opcode, payload, mask)
}

pub fn frame_rsv(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(fin as u8) << 7 | (rsv & 7) << 4 | (opcode & 0x0f)];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len <= 125 {
        out.push(m | len as u8);
    } else if len <= 0xffff {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mut p = payload.to_vec();
    if let Some(k) = mask {
        out.extend_from_slice(&k);
        hybi::testing::apply_mask_naive(&mut p, k, 0);
    }
    out.extend_from_slice(&p);
    out
}

/// A frame as a client sends it (masked with `KEY`).
pub fn cframe(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, Some(KEY))
}

/// A frame as a server sends it (unmasked).
pub fn sframe(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, None)
}

pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(reason.as_bytes());
    v
}

/// Takes all pending output of `conn`.
pub fn take_output(conn: &mut Connection) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let chunk = conn.pending_output().to_vec();
        if chunk.is_empty() {
            return all;
        }
        conn.advance_output(chunk.len());
        all.extend_from_slice(&chunk);
    }
}

/// Decodes a byte stream into frames (header, unmasked payload). Panics on bad or partial input:
/// only for output that must be valid.
pub fn decode_frames(mut bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let Ok(Status::Complete((h, n))) = FrameHeader::decode(bytes) else {
            panic!("undecodable output: {bytes:x?}");
        };
        let len = h.payload_len as usize;
        let mut p = bytes[n..n + len].to_vec();
        if let Some(k) = h.mask {
            hybi::testing::apply_mask_naive(&mut p, k, 0);
        }
        frames.push((h, p));
        bytes = &bytes[n + len..];
    }
    frames
}

/// One line describing an event, for transcripts.
pub fn describe(ev: &Event) -> String {
    match ev {
        Event::Request(r) => format!("request {}", r.uri()),
        Event::Open(h) => format!("open protocol={:?}", h.protocol),
        Event::Message(Message::Text(t)) => {
            if t.len() <= 64 {
                format!("text {:?}", t.as_str())
            } else {
                format!("text len={}", t.len())
            }
        }
        Event::Message(Message::Binary(b)) => {
            if b.len() <= 32 {
                format!("binary {:?}", &b[..])
            } else {
                format!("binary len={}", b.len())
            }
        }
        Event::Fragment(f) => format!("fragment {:?} len={} fin={}", f.kind, f.data.len(), f.fin),
        Event::Ping(p) => format!("ping {:?}", &p[..]),
        Event::Pong(p) => format!("pong {:?}", &p[..]),
        Event::CloseReceived(c) => format!("close-received {} {:?}", c.code, c.reason),
        Event::Closed(o) => format!(
            "closed {} {:?} {:?} clean={} error={}",
            o.code,
            o.reason,
            o.initiator,
            o.clean,
            o.error.as_ref().map(|e| e.to_string()).unwrap_or_default()
        ),
        other => format!("{other:?}"),
    }
}

pub fn drain_events(conn: &mut Connection) -> Vec<String> {
    let mut v = Vec::new();
    while let Some(ev) = conn.next_event() {
        v.push(describe(&ev));
    }
    v
}

/// An OPEN connection (no handshake), with deterministic masks.
pub fn open(role: Role) -> Connection {
    Connection::open(role, client_config())
}

pub fn open_with(role: Role, cfg: Config) -> Connection {
    Connection::open(role, cfg.with_mask_source(FixedMask(KEY)))
}

/// Feeds `bytes` and returns the event transcript and the frames sent in response.
pub fn feed(conn: &mut Connection, bytes: &[u8]) -> (Vec<String>, Vec<(FrameHeader, Vec<u8>)>) {
    conn.handle_input(bytes);
    let mut ev = drain_events(conn);
    let out = take_output(conn);
    // Writing the output can complete a close (our answer to the peer's close frame).
    ev.extend(drain_events(conn));
    (ev, decode_frames(&out))
}

/// Asserts that `conn` failed the connection with `code`: a close frame with that code was
/// sent, the state is CLOSED and the last event reports the failure.
pub fn assert_failing(conn: &mut Connection, bytes: &[u8], code: CloseCode) {
    let (ev, frames) = feed(conn, bytes);
    let last = frames
        .last()
        .unwrap_or_else(|| panic!("no close frame sent; events {ev:?}"));
    assert_eq!(last.0.opcode, Opcode::Close, "events {ev:?}");
    assert_eq!(
        u16::from_be_bytes([last.1[0], last.1[1]]),
        code.as_u16(),
        "events {ev:?}"
    );
    assert_eq!(conn.state(), State::Closed);
    let closed = ev.last().expect("no events");
    assert!(closed.starts_with(&format!("closed {code} ")), "{ev:?}");
    assert!(closed.contains("clean=false"), "{ev:?}");
    // §7.1.7: after failing, input is ignored.
    conn.handle_input(&sframe(true, 1, b"ignored"));
    assert!(conn.next_event().is_none());
}

/// Two connections joined by an in-memory wire, with a full opening handshake.
pub struct Pair {
    pub client: Connection,
    pub server: Connection,
    pub client_log: Vec<String>,
    pub server_log: Vec<String>,
}

impl Pair {
    pub fn new() -> Self {
        Self::with(client_config(), Config::default(), "ws://example.com/chat")
    }

    /// A handshake where the server accepts with `accept_default`.
    pub fn with(client: Config, server: Config, url: &str) -> Self {
        let mut p = Self {
            client: Connection::client(ClientRequest::new(url).unwrap(), client),
            server: Connection::server(server),
            client_log: Vec::new(),
            server_log: Vec::new(),
        };
        p.drive();
        p
    }

    /// Both sides already OPEN (no handshake).
    pub fn open() -> Self {
        Self {
            client: open(Role::Client),
            server: open(Role::Server),
            client_log: Vec::new(),
            server_log: Vec::new(),
        }
    }

    /// Moves bytes both ways until neither side has output; logs events; the server accepts
    /// requests with `accept_default`.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            let c = take_output(&mut self.client);
            let s = take_output(&mut self.server);
            if !c.is_empty() {
                self.server.handle_input(&c);
            }
            if !s.is_empty() {
                self.client.handle_input(&s);
            }
            while let Some(ev) = self.server.next_event() {
                if let Event::Request(_) = ev {
                    self.server.accept(hybi::Accept::new()).unwrap();
                }
                self.server_log.push(describe(&ev));
            }
            while let Some(ev) = self.client.next_event() {
                self.client_log.push(describe(&ev));
            }
            if c.is_empty() && s.is_empty() {
                if self.server.wants_shutdown() && self.server.state() == State::Closed {
                    self.client.handle_eof();
                    self.client_log.extend(drain_events(&mut self.client));
                }
                return;
            }
        }
        panic!("pair did not settle");
    }

    pub fn take_logs(&mut self) -> (Vec<String>, Vec<String>) {
        (
            std::mem::take(&mut self.client_log),
            std::mem::take(&mut self.server_log),
        )
    }
}
