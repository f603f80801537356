//! Shared code for the fuzz targets: the connection driver behind `conn_server` and
//! `conn_client`, and the checker for everything a connection writes.
//!
//! # Input format of the connection targets
//!
//! ```text
//! byte 0     flags: bits 0-1 mode (0, 3: already OPEN; 1: handshake with a valid head
//!            prepended to the stream; 2: handshake with the head taken from the stream),
//!            bit 2 stream_fragments, bit 3 auto_pong off, bit 4 write_fragment_size 100,
//!            bit 5 EOF at the end, bit 6 server: reject the request / client: the prepended
//!            101 chooses "chat", bit 7 the chunked run uses read_into and release_memory
//! byte 1     bits 0-2: number of chunk sizes n; bits 3-6: number of commands m
//! n bytes    chunk sizes (each byte + 1), used in a cycle for the chunked run
//! m × 4      commands: position in the stream (u16, big endian, modulo its length + 1),
//!            command, argument
//! rest       the bytes the peer sends
//! ```
//!
//! Missing header bytes read as zero, so any input is valid and a seed can be `00 00` followed
//! by raw frames.

use hybi::frame::{FrameHeader, Opcode, Status};
use hybi::handshake::{accept_key, encode_key};
use hybi::CloseFrame;
use hybi::{ClientRequest, Request, Response};
use hybi::{
    CloseCode, Config, Connection, Event, Message, MessageKind, Reject, Role, State, Timeout,
    UsageError,
};

/// The mask key (and nonce pattern) of every connection here: output is deterministic.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The largest message a fuzzed connection accepts.
pub const MAX_MESSAGE: u64 = 1 << 16;

/// Whether `buf` holds the empty line that ends an HTTP head. httparse accepts bare LF line
/// ends and skips empty lines before the start line, so both are accounted for.
pub fn has_empty_line(buf: &[u8]) -> bool {
    let start = buf.iter().position(|b| !matches!(b, b'\r' | b'\n'));
    let buf = &buf[start.unwrap_or(buf.len())..];
    buf.windows(2).any(|w| w == b"\n\n") || buf.windows(3).any(|w| w == b"\n\r\n")
}

/// The §1.2 request of RFC 6455.
pub const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// The URL every fuzzed client connects to.
pub const URL: &str = "ws://server.example.com/chat";

/// The `Sec-WebSocket-Key` a client with the [`KEY`] mask source sends.
pub fn client_key() -> String {
    let mut nonce = [0u8; 16];
    for (i, b) in nonce.iter_mut().enumerate() {
        *b = KEY[i % 4];
    }
    encode_key(&nonce)
}

/// A valid 101 answer to the fuzzed client's request.
pub fn client_101(protocol: bool) -> Vec<u8> {
    let mut v =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: "
            .to_vec();
    v.extend_from_slice(accept_key(client_key().as_bytes()).as_bytes());
    v.extend_from_slice(b"\r\n");
    if protocol {
        v.extend_from_slice(b"Sec-WebSocket-Protocol: chat\r\n");
    }
    v.extend_from_slice(b"\r\n");
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Prepended,
    Raw,
}

#[derive(Debug, Clone, Copy)]
struct Cmd {
    pos: usize,
    op: u8,
    arg: u8,
}

#[derive(Debug)]
struct Plan {
    role: Role,
    mode: Mode,
    flags: u8,
    chunks: Vec<usize>,
    cmds: Vec<Cmd>,
    stream: Vec<u8>,
}

impl Plan {
    fn parse(role: Role, data: &[u8]) -> Self {
        let mut it = data.iter().copied();
        let mut next = || it.next().unwrap_or(0);
        let flags = next();
        let counts = next();
        let chunks: Vec<usize> = (0..counts & 7).map(|_| usize::from(next()) + 1).collect();
        let raw_cmds: Vec<(u16, u8, u8)> = (0..counts >> 3 & 15)
            .map(|_| (u16::from_be_bytes([next(), next()]), next(), next()))
            .collect();
        let header = 2 + chunks.len() + 4 * raw_cmds.len();
        let body = data.get(header..).unwrap_or(&[]);
        let mode = match flags & 3 {
            1 => Mode::Prepended,
            2 => Mode::Raw,
            _ => Mode::Open,
        };
        let mut stream = match (mode, role) {
            (Mode::Prepended, Role::Server) => RFC_REQUEST.to_vec(),
            (Mode::Prepended, Role::Client) => client_101(flags & 0x40 != 0),
            _ => Vec::new(),
        };
        stream.extend_from_slice(body);
        let mut cmds: Vec<Cmd> = raw_cmds
            .into_iter()
            .map(|(pos, op, arg)| Cmd {
                pos: usize::from(pos) % (stream.len() + 1),
                op,
                arg,
            })
            .collect();
        cmds.sort_by_key(|c| c.pos);
        Self {
            role,
            mode,
            flags,
            chunks,
            cmds,
            stream,
        }
    }

    fn config(&self) -> Config {
        Config::default()
            .with_max_message_size(MAX_MESSAGE)
            .with_max_frame_size(MAX_MESSAGE / 2)
            .with_max_fragments(64)
            .with_max_header_bytes(2048)
            .with_max_headers(16)
            .with_read_buffer_size(64)
            .with_mask_source(hybi::testing::FixedMask(KEY))
            .with_protocols(["chat"])
            .with_stream_fragments(self.flags & 0x04 != 0)
            .with_auto_pong(self.flags & 0x08 == 0)
            .with_write_fragment_size((self.flags & 0x10 != 0).then_some(100))
    }

    fn connection(&self) -> Connection {
        match self.mode {
            Mode::Open => Connection::open(self.role, self.config()),
            _ => match self.role {
                Role::Server => Connection::server(self.config()),
                Role::Client => Connection::client(ClientRequest::new(URL).unwrap(), self.config()),
            },
        }
    }
}

/// Everything observable about one run, compared between the whole and the chunked feed.
#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    events: Vec<Rec>,
    results: Vec<String>,
    output: Vec<u8>,
    state: State,
    outcome: Option<String>,
    shutdown: bool,
}

/// One event in a transcript.
#[derive(Debug, PartialEq, Eq)]
enum Rec {
    /// A streamed piece of a message (with `stream_fragments`).
    Fragment {
        kind: MessageKind,
        data: Vec<u8>,
        fin: bool,
    },
    /// Any other event, described.
    Other(String),
}

/// Makes a transcript comparable across chunkings when fragments are streamed: pieces are
/// delivered as they arrive, so adjacent pieces are merged; and a text frame whose UTF-8 turns
/// out invalid may have had its valid start delivered in the chunked feed but not in the whole
/// one (the whole chunk is validated before delivery), so a piece right before a UTF-8 failure
/// is dropped.
fn normalize(events: &mut Vec<Rec>) {
    let mut out: Vec<Rec> = Vec::with_capacity(events.len());
    for ev in events.drain(..) {
        match (out.last_mut(), ev) {
            (
                Some(Rec::Fragment {
                    kind, data, fin, ..
                }),
                Rec::Fragment {
                    kind: k2,
                    data: d2,
                    fin: f2,
                },
            ) if !*fin => {
                assert_eq!(*kind, k2, "fragment kind changed within a message");
                data.extend_from_slice(&d2);
                *fin = f2;
            }
            (_, ev) => out.push(ev),
        }
    }
    if let [.., Rec::Fragment { fin: false, .. }, Rec::Other(closed)] = &out[..] {
        if closed.contains("error: Some(Protocol(InvalidUtf8))") {
            out.remove(out.len() - 2);
        }
    }
    *events = out;
}

fn rank(s: State) -> u8 {
    match s {
        State::Connecting => 0,
        State::Open => 1,
        State::Closing => 2,
        State::Closed => 3,
    }
}

/// Drives one connection through the plan and checks every step.
struct Driver<'p> {
    plan: &'p Plan,
    conn: Connection,
    chunked: bool,
    t: Transcript,
    /// The request the server saw (server, handshake modes).
    request: Option<Request>,
    accepted: bool,
    rejected: bool,
    /// A timeout abandoned the connection: its unsent output was discarded, so what was written
    /// may end in the middle of the head or of a frame (the transport is shut down right after).
    abandoned: bool,
    opened: bool,
    closed: bool,
    close_received: Option<CloseFrame>,
    /// The kind of the message we are sending in fragments, if one is open.
    sending: Option<MessageKind>,
    /// Payload bytes given to successful send commands since the output was last empty.
    queued: usize,
    /// Input bytes fed since the output was last empty.
    fed: usize,
    protocol_at_open: Option<Option<String>>,
    /// Bytes written plus bytes buffered when `Event::Closed` was drained: fixed from then on.
    total_at_close: Option<usize>,
}

impl<'p> Driver<'p> {
    fn new(plan: &'p Plan, chunked: bool) -> Self {
        let conn = plan.connection();
        let state = conn.state();
        let expected = match plan.mode {
            Mode::Open => State::Open,
            _ => State::Connecting,
        };
        assert_eq!(state, expected);
        Self {
            plan,
            conn,
            chunked,
            t: Transcript {
                events: Vec::new(),
                results: Vec::new(),
                output: Vec::new(),
                state,
                outcome: None,
                shutdown: false,
            },
            request: None,
            accepted: false,
            rejected: false,
            abandoned: false,
            opened: plan.mode == Mode::Open,
            closed: false,
            close_received: None,
            sending: None,
            queued: 0,
            fed: 0,
            protocol_at_open: None,
            total_at_close: None,
        }
    }

    fn run(mut self) -> Transcript {
        let plan = self.plan;
        let mut at = 0;
        let mut sizes = plan.chunks.iter().copied().cycle();
        for cmd in plan.cmds.iter().copied().map(Some).chain([None]) {
            let end = cmd.map_or(plan.stream.len(), |c| c.pos);
            let segment = &plan.stream[at..end];
            at = end;
            if !segment.is_empty() {
                if self.chunked {
                    let mut i = 0;
                    let mut n = 0;
                    while i < segment.len() {
                        let size = sizes.next().unwrap_or(segment.len());
                        let chunk = &segment[i..(i + size).min(segment.len())];
                        i += chunk.len();
                        self.feed(chunk, n);
                        n += 1;
                    }
                } else {
                    self.feed(segment, 0);
                }
            }
            if let Some(cmd) = cmd {
                self.command(cmd);
            }
        }
        if plan.flags & 0x20 != 0 {
            self.conn.handle_eof();
            self.after_step();
        }
        self.drain_output(usize::MAX);
        self.finish()
    }

    fn feed(&mut self, chunk: &[u8], n: usize) {
        let closed = self.conn.state() == State::Closed;
        let before = self.conn.buffered_amount();
        if self.chunked && self.plan.flags & 0x80 != 0 && n % 2 == 1 {
            self.conn.read_into(|buf| buf.extend_from_slice(chunk));
            self.conn.release_memory();
        } else {
            self.conn.handle_input(chunk);
        }
        self.fed += chunk.len();
        if closed {
            // §7.1.7, and after a clean close: input is ignored.
            assert!(self.conn.next_event().is_none(), "event after Closed");
            assert_eq!(self.conn.buffered_amount(), before, "output after Closed");
        }
        self.after_step();
    }

    /// Drains events (answering a server's request), then checks the invariants.
    fn after_step(&mut self) {
        while let Some(ev) = self.conn.next_event() {
            self.on_event(&ev);
            self.t.events.push(match ev {
                Event::Fragment(f) => Rec::Fragment {
                    kind: f.kind,
                    data: f.data.to_vec(),
                    fin: f.fin,
                },
                ev => Rec::Other(describe(&ev)),
            });
        }
        let state = self.conn.state();
        assert!(
            rank(state) >= rank(self.t.state),
            "state went back from {:?} to {state:?}",
            self.t.state
        );
        self.t.state = state;
        assert_eq!(
            state == State::Closed,
            self.closed,
            "Closed event iff CLOSED"
        );
        assert_eq!(self.conn.close_outcome().is_some(), self.closed);
        if state == State::Open || state == State::Closing {
            assert!(self.opened);
        }
        let buffered = self.conn.buffered_amount();
        if self.closed {
            // Once CLOSED nothing more is queued, not even by `advance_output`.
            let total = self.t.output.len() + buffered;
            assert_eq!(
                *self.total_at_close.get_or_insert(total),
                total,
                "output after Closed"
            );
        }
        let chunks: usize = self.conn.output_chunks().map(<[u8]>::len).sum();
        assert_eq!(buffered, chunks);
        assert_eq!(self.conn.pending_output().is_empty(), buffered == 0);
        // Pongs coalesce above 64 KiB; everything else is bounded by what the commands sent and
        // the peer's input since the output was last empty: a peer alone cannot grow it past
        // about 64 KiB plus three times its input.
        let bound = 2 * self.queued + 3 * self.fed.min(1 << 16) + 66_000 + 4096;
        assert!(
            buffered <= bound,
            "{buffered} bytes buffered (bound {bound})"
        );
    }

    fn on_event(&mut self, ev: &Event) {
        assert!(!self.closed, "event after Closed: {ev:?}");
        match ev {
            Event::Request(req) => {
                assert_eq!(self.plan.role, Role::Server);
                assert!(self.plan.mode != Mode::Open && self.request.is_none());
                assert_eq!(self.conn.request(), Some(req));
                self.request = Some(req.clone());
                if self.plan.flags & 0x40 != 0 {
                    assert_eq!(self.conn.reject(Reject::new(403).body("no")), Ok(()));
                    self.rejected = true;
                } else {
                    assert_eq!(self.conn.accept(hybi::Accept::new()), Ok(()));
                    self.accepted = true;
                }
                // Accepting processes pipelined frames: the new events are drained next.
            }
            Event::Open(h) => {
                assert!(!self.opened, "second Open");
                assert!(self.plan.role == Role::Client || self.accepted);
                if self.plan.role == Role::Client {
                    let resp = h.response.as_ref().expect("client Open without response");
                    assert_eq!(resp.status(), 101);
                }
                if let Some(p) = &h.protocol {
                    assert_eq!(p, "chat");
                }
                self.protocol_at_open = Some(h.protocol.clone());
                self.opened = true;
            }
            Event::Message(m) => {
                assert!(self.opened);
                assert!(m.len() as u64 <= MAX_MESSAGE);
                assert!(self.plan.flags & 0x04 == 0, "whole message while streaming");
            }
            Event::Fragment(f) => {
                assert!(self.opened);
                assert!(self.plan.flags & 0x04 != 0, "fragment while assembling");
                assert!(f.data.len() as u64 <= MAX_MESSAGE);
            }
            Event::Ping(p) | Event::Pong(p) => {
                assert!(self.opened);
                assert!(p.len() <= 125);
            }
            Event::CloseReceived(frame) => {
                assert!(self.opened && self.close_received.is_none());
                assert!(
                    frame.code.is_receivable() || frame.code == CloseCode::NO_STATUS,
                    "{frame:?}"
                );
                assert!(frame.reason.len() <= CloseFrame::MAX_REASON_LEN);
                self.close_received = Some(frame.clone());
            }
            Event::Closed(outcome) => {
                assert_eq!(self.conn.close_outcome(), Some(&**outcome));
                assert_eq!(self.conn.state(), State::Closed);
                if let Some(frame) = &self.close_received {
                    // Both close frames exchanged is clean; the peer's received but ours never
                    // written (a deadline passed first) is not, with the peer's code.
                    assert_eq!(outcome.code, frame.code);
                    if !outcome.clean {
                        assert!(
                            matches!(outcome.error, Some(hybi::Failure::Timeout(_))),
                            "{outcome:?}"
                        );
                    }
                } else {
                    assert!(!outcome.clean);
                }
                self.closed = true;
                self.t.outcome = Some(format!("{outcome:?}"));
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    /// The result a send command must have in the current state (before fragment and payload
    /// checks).
    fn send_gate(&self) -> Result<(), UsageError> {
        match self.conn.state() {
            State::Open => Ok(()),
            // CLOSING is only reached by our own close frame (a received one closes at once).
            State::Closing => Err(UsageError::SendAfterClose),
            State::Closed => Err(UsageError::Closed),
            State::Connecting => Err(UsageError::WrongState(State::Connecting)),
        }
    }

    fn command(&mut self, cmd: Cmd) {
        let arg = usize::from(cmd.arg);
        let gate = self.send_gate();
        let state = self.conn.state();
        let before = self.conn.buffered_amount();
        let data_gate = gate.clone().and_then(|()| match self.sending {
            Some(_) => Err(UsageError::FragmentOutOfSequence),
            None => Ok(()),
        });
        let (name, result, expected): (&str, _, Option<Result<(), UsageError>>) = match cmd.op % 12
        {
            0 => {
                let text = text_of_len(arg);
                let r = self.conn.send_text(&text);
                (
                    "send_text",
                    r,
                    Some(data_gate.clone().map(|()| self.queued += text.len())),
                )
            }
            1 => {
                let data = bytes_of_len(arg);
                let r = self.conn.send_binary(&data);
                (
                    "send_binary",
                    r,
                    Some(data_gate.clone().map(|()| self.queued += arg)),
                )
            }
            2 => {
                // `send` queues payloads of 1 KiB and more without a copy on a server.
                let n = arg * 64;
                let msg = if cmd.arg & 1 == 0 {
                    Message::binary(bytes_of_len(n))
                } else {
                    Message::text(text_of_len(n))
                };
                let len = msg.len();
                let r = self.conn.send(msg);
                (
                    "send",
                    r,
                    Some(data_gate.clone().map(|()| self.queued += len)),
                )
            }
            3 => {
                // Large enough to push the output past the pong coalescing threshold.
                let n = arg * 300;
                let r = self.conn.send_binary(&bytes_of_len(n));
                (
                    "send_binary_large",
                    r,
                    Some(data_gate.clone().map(|()| self.queued += n)),
                )
            }
            op @ (4 | 5) => {
                let n = arg % 130;
                let data = bytes_of_len(n);
                let (name, r) = if op == 4 {
                    ("send_ping", self.conn.send_ping(&data))
                } else {
                    ("send_pong", self.conn.send_pong(&data))
                };
                let expected = gate.clone().and_then(|()| {
                    if n > 125 {
                        Err(UsageError::ControlTooLong(n))
                    } else {
                        self.queued += n;
                        Ok(())
                    }
                });
                (name, r, Some(expected))
            }
            6 => {
                let codes = [1000u16, 1001, 1011, 3000, 4999, 1005, 1006, 999];
                let code = CloseCode::from(codes[arg % 8]);
                let reason = text_of_len(arg / 8 * 9);
                let r = self.conn.close(code, &reason);
                let expected = if !code.is_sendable() {
                    Err(UsageError::InvalidCloseCode(code.as_u16()))
                } else if reason.len() > CloseFrame::MAX_REASON_LEN {
                    Err(UsageError::ControlTooLong(reason.len() + 2))
                } else {
                    self.queued += 2 + reason.len();
                    Ok(())
                };
                if r.is_ok() && state == State::Open {
                    self.sending = None;
                }
                ("close", r, Some(expected))
            }
            7 => {
                let kind = if cmd.arg & 1 == 0 {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                let fin = cmd.arg & 2 != 0;
                let n = arg >> 2;
                let data = match kind {
                    // Text fragments may end inside a code point (valid when continued).
                    MessageKind::Text => text_of_len(n + 3).into_bytes()[..n].to_vec(),
                    MessageKind::Binary => bytes_of_len(n),
                };
                let r = self.conn.send_fragment(kind, &data, fin);
                match &r {
                    Ok(()) => {
                        assert_eq!(gate, Ok(()));
                        assert!(self.sending.is_none_or(|k| k == kind));
                        self.sending = (!fin).then_some(kind);
                        self.queued += n;
                    }
                    Err(UsageError::FragmentOutOfSequence) => {
                        assert_eq!(gate, Ok(()));
                        assert!(self.sending.is_some_and(|k| k != kind));
                    }
                    Err(UsageError::InvalidUtf8) => {
                        assert_eq!(gate, Ok(()));
                        assert_eq!(kind, MessageKind::Text);
                    }
                    Err(e) => assert_eq!(Err(e.clone()), gate),
                }
                ("send_fragment", r, None)
            }
            8 => {
                self.conn.handle_eof();
                // The peer's EOF ends the connection, unless its close frame came first: then
                // our answer is still written (the peer closed only its sending side), and the
                // close completes when it is.
                let waits_for_answer = state == State::Closing && self.close_received.is_some();
                if !waits_for_answer {
                    assert_eq!(self.conn.state(), State::Closed);
                }
                assert!(self.conn.wants_shutdown());
                ("eof", Ok(()), None)
            }
            9 => {
                // A partial write of the output; 0 writes everything.
                let n = if arg == 0 { usize::MAX } else { arg * 97 };
                self.drain_output(n);
                ("drain", Ok(()), None)
            }
            10 => {
                let kind = [
                    Timeout::Handshake,
                    Timeout::Pong,
                    Timeout::Idle,
                    Timeout::Close,
                ][arg % 4];
                self.conn.timed_out(kind);
                let after = self.conn.state();
                if state != State::Closed && after == State::Closed {
                    self.abandoned = true;
                }
                let want = match (state, kind) {
                    (State::Closed, _) => State::Closed,
                    (State::Open, Timeout::Idle) => State::Closing,
                    _ => State::Closed,
                };
                assert_eq!(after, want, "timed_out({kind:?}) in {state:?}");
                if after == State::Closing {
                    self.sending = None;
                }
                ("timed_out", Ok(()), None)
            }
            _ => {
                self.conn.release_memory();
                assert_eq!(self.conn.buffered_amount(), before);
                ("release_memory", Ok(()), None)
            }
        };
        if result.is_ok() && name.starts_with("send") {
            // Header and mask key of each frame (at most 14 bytes for a small payload).
            self.queued += 14;
        }
        if let Some(expected) = expected {
            assert_eq!(result, expected, "{name} in {state:?}");
        }
        if result.is_err() {
            assert_eq!(self.conn.state(), state, "failed {name} changed the state");
            assert_eq!(
                self.conn.buffered_amount(),
                before,
                "failed {name} queued output"
            );
        }
        if state == State::Closed && name != "drain" {
            assert!(
                self.conn.buffered_amount() <= before,
                "{name} queued output after Closed"
            );
        }
        self.t
            .results
            .push(format!("{name}({}) = {result:?}", cmd.arg));
        self.after_step();
    }

    /// Writes up to `max` bytes of output into the transcript.
    fn drain_output(&mut self, max: usize) {
        let mut left = max;
        while left > 0 {
            let chunk = self.conn.pending_output();
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len().min(left);
            self.t.output.extend_from_slice(&chunk[..n]);
            self.conn.advance_output(n);
            left -= n;
        }
        if self.conn.buffered_amount() == 0 {
            self.queued = 0;
            self.fed = 0;
        }
        self.after_step();
    }

    fn finish(mut self) -> Transcript {
        assert_eq!(self.conn.buffered_amount(), 0);
        self.t.shutdown = self.conn.wants_shutdown();
        normalize(&mut self.t.events);
        check_output(&self);
        self.t
    }
}

/// Checks all that the connection wrote: the HTTP head of the handshake (if any), then a valid
/// frame sequence.
fn check_output(d: &Driver<'_>) {
    let out = &d.t.output[..];
    let role = d.plan.role;
    let mut frames_allowed = d.opened;
    let rest = match (d.plan.mode, role) {
        (Mode::Open, _) => out,
        (_, Role::Client) => {
            // The client's own request must pass the server's checks.
            if d.abandoned
                && matches!(
                    Request::parse(out, 1 << 20, 1000),
                    Ok(Status::Partial { .. })
                )
            {
                return; // cut short by the abandon
            }
            let Ok(Status::Complete((req, used))) = Request::parse(out, 1 << 20, 1000) else {
                panic!(
                    "client request refused: {:?}",
                    Request::parse(out, 1 << 20, 1000)
                );
            };
            assert_eq!(req.key(), Some(client_key().as_str()));
            assert_eq!(req.protocols(), ["chat"]);
            &out[used..]
        }
        (_, Role::Server) => {
            if out.is_empty() {
                if d.abandoned {
                    return; // the answer was discarded with the rest by the abandon
                }
                // No complete request arrived (or the connection ended first).
                assert!(d.request.is_none(), "request answered with nothing");
                assert!(!d.opened);
                return;
            }
            if d.accepted {
                // The 101 must satisfy a client that offered what the request offered.
                let req = d.request.as_ref().unwrap();
                let client = ClientRequest::new(URL)
                    .unwrap()
                    .protocols(req.protocols().iter().cloned());
                match Response::parse(out, &client, req.key().unwrap_or_default(), 1 << 20, 1000) {
                    Ok(Status::Partial { .. }) if d.abandoned => return,
                    Ok(Status::Complete((resp, used))) => {
                        let at_open = d.protocol_at_open.clone().expect("accepted without Open");
                        assert_eq!(resp.protocol().map(String::from), at_open);
                        &out[used..]
                    }
                    other => panic!("server 101 refused: {other:?}"),
                }
            } else {
                // A rejection or a failed handshake: one complete HTTP error response, nothing
                // after it.
                assert!(d.rejected || d.closed);
                let mut fields = [httparse::EMPTY_HEADER; 16];
                let mut resp = httparse::Response::new(&mut fields);
                let Ok(httparse::Status::Complete(n)) = resp.parse(out) else {
                    panic!("bad error response {:?}", String::from_utf8_lossy(out));
                };
                let code = resp.code.unwrap();
                assert!((400..=599).contains(&code), "status {code}");
                let len = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                    .expect("no Content-Length");
                assert_eq!(n + len, out.len(), "bytes after the error response");
                frames_allowed = false;
                &out[out.len()..]
            }
        }
    };
    if !frames_allowed {
        assert!(rest.is_empty(), "frames without an open connection");
    }
    check_frames_prefix(rest, role, d.abandoned);
}

/// Every byte written after the handshake is a sequence of valid frames: masked iff client, no
/// RSV bits, control frames final and at most 125 bytes, a valid fragment sequence, UTF-8 text,
/// and at most one close frame, which is the last frame and carries a sendable code.
pub fn check_frames(bytes: &[u8], role: Role) {
    check_frames_prefix(bytes, role, false);
}

/// Like [`check_frames`]; with `truncated_ok`, the last frame may be cut short (output discarded
/// when a timeout abandoned the connection), and only the complete frames before it are checked.
pub fn check_frames_prefix(mut bytes: &[u8], role: Role, truncated_ok: bool) {
    let mut message: Option<(Opcode, Vec<u8>)> = None;
    let mut closed = false;
    while !bytes.is_empty() {
        let (h, used) = match FrameHeader::decode(bytes) {
            Ok(Status::Complete(x)) => x,
            Ok(Status::Partial { .. }) if truncated_ok => return,
            other => panic!(
                "output does not decode: {other:?} at {:x?}",
                &bytes[..bytes.len().min(16)]
            ),
        };
        assert!(!closed, "frame after the close frame: {h:?}");
        assert_eq!(h.mask.is_some(), role == Role::Client, "{h:?}");
        assert_eq!(h.rsv_bits(), 0);
        if truncated_ok && h.payload_len > (bytes.len() - used) as u64 {
            return;
        }
        assert!(
            h.payload_len <= (bytes.len() - used) as u64,
            "truncated frame {h:?}"
        );
        let len = h.payload_len as usize;
        let mut payload = bytes[used..used + len].to_vec();
        if let Some(k) = h.mask {
            hybi::testing::apply_mask_naive(&mut payload, k, 0);
        }
        bytes = &bytes[used + len..];
        match h.opcode {
            Opcode::Close | Opcode::Ping | Opcode::Pong => {
                assert!(h.fin && len <= 125);
                if h.opcode == Opcode::Close {
                    closed = true;
                    match CloseFrame::parse(&payload) {
                        Ok(Some(f)) => assert!(f.code.is_sendable()),
                        Ok(None) => {}
                        Err(e) => panic!("invalid close frame sent: {e:?} {payload:x?}"),
                    }
                }
            }
            Opcode::Text | Opcode::Binary => {
                assert!(message.is_none(), "new message inside a fragmented one");
                message = Some((h.opcode, payload));
            }
            Opcode::Continuation => {
                let Some((_, data)) = &mut message else {
                    panic!("continuation without a message");
                };
                data.extend_from_slice(&payload);
            }
        }
        if h.fin && h.opcode.is_data() {
            let (op, data) = message.take().unwrap();
            if op == Opcode::Text {
                assert!(std::str::from_utf8(&data).is_ok(), "invalid UTF-8 sent");
            }
        }
    }
}

/// One line per event for the transcript; payloads are summarised by length and a hash, so
/// large messages stay cheap to compare.
fn describe(ev: &Event) -> String {
    fn digest(b: &[u8]) -> u64 {
        // FNV-1a.
        b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
            (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
        })
    }
    match ev {
        Event::Message(m) => format!(
            "message {:?} {} {:x}",
            m.kind(),
            m.len(),
            digest(m.as_bytes())
        ),
        other => format!("{other:?}"),
    }
}

/// Text of one- to four-byte characters, long enough for every command.
fn text_pool() -> &'static str {
    static POOL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POOL.get_or_init(|| "aé€😀 z".repeat(256 * 512 / 10 + 64))
}

/// At most `len` bytes of mixed one- to four-byte UTF-8, cut at a char boundary.
fn text_of_len(len: usize) -> String {
    let pool = text_pool();
    let mut end = len.min(pool.len());
    while !pool.is_char_boundary(end) {
        end -= 1;
    }
    pool[..end].to_owned()
}

fn bytes_of_len(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// The body of `conn_server` and `conn_client`: runs the plan fed whole and, when the input
/// chooses chunk sizes, fed in those chunks; checks each run, then that both runs agree.
pub fn fuzz_connection(role: Role, data: &[u8]) {
    if data.len() > 1 << 16 {
        return;
    }
    let plan = Plan::parse(role, data);
    let whole = Driver::new(&plan, false).run();
    if !plan.chunks.is_empty() {
        let chunked = Driver::new(&plan, true).run();
        assert_eq!(whole, chunked, "chunking changed the transcript");
    }
}
