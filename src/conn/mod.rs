//! The sans-IO connection state machine: CONNECTING → OPEN → CLOSING → CLOSED.

mod error;
mod event;
mod output;
mod recv;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::{BufMut, Bytes, BytesMut};

pub(crate) use crate::frame::{CloseCode, CloseFrame};
pub use error::ProtocolError;
pub use event::{
    CloseOutcome, Event, Failure, Fragment, Handshake, Initiator, Message, MessageKind, Timeout,
};

use crate::config::Config;
use crate::error::UsageError;
use crate::extensions::deflate::{self, Deflate};
use crate::frame::{apply_mask, FrameHeader, Opcode, MAX_HEADER_LEN};
use crate::handshake::{Accept, ClientRequest, HandshakeError, Reject, Request, Response};
use crate::role::{Role, State};
use crate::utf8::Utf8Validator;
use output::Output;
use recv::Recv;

/// Payloads at least this long are queued without a copy by [`Connection::send`] on a server.
const ZERO_COPY_MIN: usize = 1024;
/// While more than this many bytes wait to be written, automatic pongs are coalesced: only the
/// most recent ping is answered (RFC 6455 §5.5.3 allows it), so a ping flood from a peer that
/// does not read cannot grow the output without bound.
const PONG_COALESCE_ABOVE: usize = 64 << 10;

/// A WebSocket connection as a deterministic state machine: bytes in, events and bytes out.
///
/// It owns no socket, no clock and no runtime. An adapter (or your own loop) moves bytes between
/// the transport and the connection. Its methods come in five groups:
///
/// - **A. Getters**: [`role`](Self::role), [`state`](Self::state),
///   [`buffered_amount`](Self::buffered_amount), [`close_outcome`](Self::close_outcome),
///   [`protocol`](Self::protocol).
/// - **B. Inputs** from the transport: [`handle_input`](Self::handle_input),
///   [`read_into`](Self::read_into), [`handle_eof`](Self::handle_eof). They never fail: a peer
///   that breaks the protocol fails the connection (RFC 6455 §7.1.7), which queues the right close
///   frame and reports [`Event::Closed`] with the error.
/// - **C. Commands** from the application: [`accept`](Self::accept), [`reject`](Self::reject),
///   [`send_text`](Self::send_text), [`send_binary`](Self::send_binary), [`send`](Self::send),
///   [`send_fragment`](Self::send_fragment), [`send_ping`](Self::send_ping),
///   [`send_pong`](Self::send_pong), [`close`](Self::close). They fail only for local misuse
///   ([`UsageError`]).
/// - **D. Outputs**, to drain after every B or C call, in this order:
///   [`next_event`](Self::next_event) until `None`; then write
///   [`pending_output`](Self::pending_output) (or [`output_chunks`](Self::output_chunks) for a
///   vectored write) and report it with [`advance_output`](Self::advance_output); then, if
///   [`wants_shutdown`](Self::wants_shutdown), half-close the transport once the output is empty.
/// - **E. Memory**: [`release_memory`](Self::release_memory) when the transport has nothing
///   more to read for now, [`release_idle_memory`](Self::release_idle_memory) when it has been
///   quiet for a while; while [`read_buffer_released`](Self::read_buffer_released), wait for
///   input with a buffer of your own and pass it to [`handle_input`](Self::handle_input).
///
/// After [`Event::Closed`] the connection ignores input. The transport should then be drained
/// until EOF (or a timeout) and closed.
///
/// # Example: two connections wired together in memory
///
/// ```
/// use hybi::{ClientRequest, Config, Connection, Event, Message};
///
/// let mut client = Connection::client(ClientRequest::new("ws://example.com/chat").unwrap(), Config::default());
/// let mut server = Connection::server(Config::default());
/// // Move bytes both ways until both sides are idle.
/// fn pump(a: &mut Connection, b: &mut Connection) {
///     loop {
///         let (x, y) = (a.pending_output().to_vec(), b.pending_output().to_vec());
///         if x.is_empty() && y.is_empty() { break; }
///         a.advance_output(x.len()); b.advance_output(y.len());
///         b.handle_input(&x); a.handle_input(&y);
///         while let Some(ev) = b.next_event() {
///             if let Event::Request(_) = ev { b.accept(Default::default()).unwrap(); }
///         }
///     }
/// }
/// pump(&mut client, &mut server);
/// assert!(matches!(client.next_event(), Some(Event::Open(_))));
/// client.send_text("hello").unwrap();
/// pump(&mut client, &mut server);
/// // (the server's events were drained by `pump`; send one back)
/// server.send_text("hi").unwrap();
/// pump(&mut client, &mut server);
/// assert_eq!(client.next_event().map(|e| matches!(e, Event::Message(Message::Text(t)) if t == "hi")), Some(true));
/// ```
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    phase: Phase,
    rx: BytesMut,
    /// The read buffer grew past `read_buffer_size` since the last `release_memory`.
    rx_grown: bool,
    /// The room the next read is offered when no frame needs more (adaptive: see
    /// [`Config::max_read_size`]); 0 until a read fills the buffer.
    read_size: usize,
    /// The connection holds no read buffer and should not get one before bytes arrive (see
    /// [`Connection::read_buffer_released`]).
    rx_released: bool,
    /// Data frames arrived since the connection was made or last went idle
    /// ([`Connection::release_idle_memory`]): while set, `release_memory` keeps the read buffer
    /// and the event queue at their working size; while not, it frees them when empty.
    rx_active: bool,
    /// Data messages were queued since the connection was made or last went idle: the same for
    /// the output buffer.
    tx_active: bool,
    recv: Recv,
    out: Output,
    events: VecDeque<Event>,
    /// A close frame was sent.
    close_sent: bool,
    initiator: Option<Initiator>,
    /// How the connection ended. Boxed, like `pending_pong` and `deferred`: state needed only
    /// around a close or under a ping flood takes no room in an open connection.
    outcome: Option<Box<CloseOutcome>>,
    shutdown: bool,
    eof: bool,
    protocol: Option<String>,
    send_fragment: Option<SendFragment>,
    /// The payload of the latest ping not answered yet, while pongs are coalesced.
    pending_pong: Option<Box<Bytes>>,
    /// A failure or a received close, found while parsing, that takes effect once the events
    /// before it are drained (see [`Deferred`]).
    deferred: Option<Box<Deferred>>,
    /// permessage-deflate, when negotiated.
    deflate: Option<Box<Deflate>>,
    /// Reused output of the compressor.
    scratch: Vec<u8>,
    mask_pool: [u8; 32],
    mask_pos: u8,
}

#[derive(Debug)]
enum Phase {
    Connecting(Box<Handshaking>),
    Open,
    Closing,
    Closed,
}

#[derive(Debug)]
enum Handshaking {
    /// Client: the request is queued; waiting for the 101.
    Response { request: ClientRequest, key: String },
    /// Server: waiting for the request head.
    Request,
    /// Server: the request was reported; waiting for `accept` or `reject`.
    Decision(Request),
}

/// What parsing stopped at. Parsing stops at once, but the close frame (ours, or the echo of the
/// peer's) is queued only when the application has drained the events before it, so replies to
/// the messages that arrived first still go out first (RFC 6455 §5.5.1 lets an endpoint finish
/// what it is sending before answering a close).
#[derive(Debug)]
enum Deferred {
    Fail(ProtocolError),
    Close(CloseFrame),
}

#[derive(Debug)]
struct SendFragment {
    kind: MessageKind,
    utf8: Utf8Validator,
}

impl Connection {
    /// A client in CONNECTING, with the upgrade request already queued as output.
    ///
    /// The `Sec-WebSocket-Key` nonce comes from the config's mask source. Subprotocols set with
    /// [`Config::protocols`] are offered after any the request names itself.
    pub fn client(request: ClientRequest, config: Config) -> Self {
        let mut conn = Self::new(Role::Client, config, Phase::Open);
        let mut nonce = [0u8; 16];
        conn.config.mask_source().fill(&mut nonce);
        let key = crate::handshake::encode_key(&nonce);
        let mut request = request;
        if let Some(d) = conn.config.deflate().filter(|_| cfg!(feature = "deflate")) {
            if !request
                .offered_extensions()
                .iter()
                .any(|e| deflate::is_deflate(e))
            {
                request = request.extension(d.offer());
            }
        }
        for p in conn.config.protocols() {
            if !request.offered_protocols().contains(p) {
                request = request.protocol(p.clone());
            }
        }
        let mut head = Vec::new();
        request.encode(&key, &mut head);
        conn.queue_raw(&head);
        conn.phase = Phase::Connecting(Box::new(Handshaking::Response { request, key }));
        conn
    }

    /// A server in CONNECTING, waiting for the upgrade request.
    pub fn server(config: Config) -> Self {
        Self::new(
            Role::Server,
            config,
            Phase::Connecting(Box::new(Handshaking::Request)),
        )
    }

    /// A connection that is already OPEN: the handshake was done elsewhere (for example by an
    /// HTTP server framework that hands over the upgraded stream).
    pub fn open(role: Role, config: Config) -> Self {
        Self::new(role, config, Phase::Open)
    }

    fn new(role: Role, config: Config, phase: Phase) -> Self {
        Self {
            role,
            config,
            phase,
            rx: BytesMut::new(),
            rx_grown: false,
            read_size: 0,
            rx_released: true,
            rx_active: false,
            tx_active: false,
            recv: Recv::default(),
            out: Output::default(),
            events: VecDeque::new(),
            close_sent: false,
            initiator: None,
            outcome: None,
            shutdown: false,
            eof: false,
            protocol: None,
            send_fragment: None,
            pending_pong: None,
            deferred: None,
            deflate: None,
            scratch: Vec::new(),
            mask_pool: [0; 32],
            mask_pos: 32,
        }
    }

    // ---------------------------------------------------------------- A. getters

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The state, as the browser's `readyState` names it.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Connecting(_) => State::Connecting,
            Phase::Open => State::Open,
            Phase::Closing => State::Closing,
            Phase::Closed => State::Closed,
        }
    }

    /// The config this connection was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes queued for the transport and not yet reported written, like the browser's
    /// `bufferedAmount` (which counts payload only; this counts whole frames).
    pub fn buffered_amount(&self) -> usize {
        self.out.len()
    }

    /// The negotiated subprotocol, once OPEN.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// How the connection ended, once CLOSED.
    pub fn close_outcome(&self) -> Option<&CloseOutcome> {
        self.outcome.as_deref()
    }

    /// The request being decided (server, after [`Event::Request`] and before accept/reject).
    pub fn request(&self) -> Option<&Request> {
        match &self.phase {
            Phase::Connecting(h) => match &**h {
                Handshaking::Decision(r) => Some(r),
                _ => None,
            },
            _ => None,
        }
    }

    /// `true` while the connection is CLOSED and the peer has not closed the transport yet: the
    /// adapter should read (and discard) until EOF, for at most its close timeout.
    ///
    /// A server that received the client's close frame does not wait: it closes the TCP
    /// connection first (RFC 6455 §7.1.1), and the client sends nothing after its close frame
    /// (§5.5.1), so once its write half is shut down it can drop the transport (its FIN is
    /// already out; no unread input means no reset). That saves a read and a wake-up per
    /// connection. A client waits for the server's EOF (§7.1.1), and so does a server that
    /// failed the connection before any close frame came in, so the client's last bytes are
    /// not answered with a reset.
    pub fn awaiting_eof(&self) -> bool {
        let done_with_input =
            self.role == Role::Server && self.outcome.as_ref().is_some_and(|o| o.clean);
        matches!(self.phase, Phase::Closed) && !self.eof && !done_with_input
    }

    /// `true` when the closing handshake is under way and the peer's close frame (or EOF) is
    /// still awaited: the adapter should arm its close timeout.
    pub fn awaiting_close(&self) -> bool {
        matches!(self.phase, Phase::Closing)
    }

    // ---------------------------------------------------------------- B. inputs

    /// Feeds bytes read from the transport (copied once into the read buffer).
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if self.rx_released {
            // Waking up: the read buffer comes back at its working size.
            self.rx.reserve(self.read_hint().max(bytes.len()));
            self.rx_released = false;
        }
        self.rx.extend_from_slice(bytes);
        self.note_rx_growth();
        self.process();
    }

    /// Lets the adapter read straight into the connection's read buffer: `f` appends to the
    /// buffer (it must not remove or change what is there), then the new bytes are processed.
    ///
    /// Room for at least one read is reserved before `f` runs, sized to what the connection is
    /// waiting for (the rest of a large frame, or [`Config::read_buffer_size`]).
    ///
    /// ```
    /// use bytes::BufMut;
    /// use hybi::{Config, Connection, Role, Event};
    /// let mut conn = Connection::open(Role::Client, Config::default());
    /// conn.read_into(|buf| buf.put_slice(&[0x81, 0x02, b'h', b'i']));
    /// assert!(matches!(conn.next_event(), Some(Event::Message(_))));
    /// ```
    pub fn read_into<R>(&mut self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        self.rx_released = false;
        let want = self.read_hint();
        if self.rx.capacity() - self.rx.len() < want && !self.reclaim_rx(want) {
            self.rx.reserve(want);
            self.note_rx_growth();
        }
        let before = self.rx.len();
        let offered = self.rx.capacity() - before;
        let r = f(&mut self.rx);
        if self.rx.len() > before {
            if self.rx.len() - before >= offered {
                self.grow_read_size();
            }
            if matches!(self.phase, Phase::Closed) {
                self.rx.clear();
            } else {
                self.process();
            }
        }
        r
    }

    /// The room a read is offered when no frame needs more: the adaptive read size (from
    /// [`Config::read_buffer_size`] up to [`Config::max_read_size`]) plus room for one frame
    /// header and a byte, so a message of that size arrives in one read (see [`read_room`]).
    fn base_read(&self) -> usize {
        read_room(self.read_size.max(self.min_read()))
    }

    fn min_read(&self) -> usize {
        self.config.read_buffer_size().max(64)
    }

    /// A read filled all the room it was offered, so more is probably waiting (a batch of
    /// messages, a large frame): offer twice as much next time, up to `max_read_size`.
    fn grow_read_size(&mut self) {
        let min = self.min_read();
        let max = self.config.max_read_size().max(min);
        self.read_size = self.read_size.max(min).saturating_mul(2).min(max);
    }

    /// Makes room in the read buffer's own allocation, without allocating, when what is
    /// awaited fits in it: the tail of a partly received frame moves to the front (when nothing
    /// else points into the buffer and the move does not overlap). A batch of small frames that
    /// straddles reads then never grows the buffer past the read size.
    fn reclaim_rx(&mut self, want: usize) -> bool {
        let len = self.rx.len();
        let fits = self.recv.awaiting_payload().is_none_or(|rest| rest <= want);
        fits && len < want && self.rx.try_reclaim(want - len)
    }

    fn note_rx_growth(&mut self) {
        self.rx_grown |= self.rx.capacity() > self.busy_keep();
    }

    /// How many bytes the next read should make room for.
    fn read_hint(&self) -> usize {
        let base = self.base_read();
        match self.recv.awaiting_payload() {
            Some(rest) if !self.config.stream_fragments() => {
                // Grow with the data, not with what a header claims (a 16 MiB claim with no data
                // behind it costs nothing): room for at most 8 times what the buffer holds, so a
                // large frame takes a few reallocations (64 KiB, 576 KiB, 5 MiB, 16 MiB), not
                // one per doubling.
                let grow = self.rx.capacity().max(base).saturating_mul(8);
                // Room for the rest of the frame and for what follows it: a read that brings
                // exactly the rest does not fill the buffer (see `read_room`).
                rest.saturating_sub(self.rx.len())
                    .min(grow)
                    .saturating_add(base)
            }
            _ => base,
        }
    }

    /// The transport reached EOF. Before a close frame this is an abnormal closure (1006, which
    /// is never sent on the wire).
    pub fn handle_eof(&mut self) {
        self.eof = true;
        match self.phase {
            Phase::Closed => {}
            Phase::Connecting(_) => {
                self.abandon(
                    Initiator::Remote,
                    Some(Failure::Handshake(HandshakeError::Eof)),
                );
            }
            // A failure or close found before the EOF is what ended the connection; it is
            // reported when its turn comes in `next_event`.
            Phase::Open | Phase::Closing if self.deferred.is_some() => {}
            Phase::Open | Phase::Closing => {
                let initiator = self.initiator.unwrap_or(Initiator::Remote);
                self.abandon(initiator, None);
            }
        }
        self.shutdown = true;
    }

    /// Ends the connection without a closing handshake: CLOSED with 1006 (never sent), input
    /// ignored from now on, the transport to be shut down.
    fn abandon(&mut self, initiator: Initiator, error: Option<Failure>) {
        self.rx.clear();
        self.finish(CloseOutcome {
            code: CloseCode::ABNORMAL,
            reason: String::new(),
            initiator,
            clean: false,
            error,
        });
        self.shutdown = true;
    }

    fn process(&mut self) {
        loop {
            match &mut self.phase {
                Phase::Connecting(h) => match &mut **h {
                    Handshaking::Request => {
                        if !self.read_request() {
                            return;
                        }
                    }
                    // Pipelined frames wait in the buffer until the application decides.
                    Handshaking::Decision(_) => return,
                    Handshaking::Response { .. } => {
                        if !self.read_response() {
                            return;
                        }
                    }
                },
                Phase::Open | Phase::Closing if self.deferred.is_some() => {
                    // Nothing after a failure or a close frame is processed (§7.1.7, §5.5.1).
                    self.rx.clear();
                    return;
                }
                Phase::Open | Phase::Closing => {
                    self.read_frames();
                    return;
                }
                Phase::Closed => {
                    self.rx.clear();
                    return;
                }
            }
        }
    }

    /// Server: parses the request head. Returns `true` when the phase changed.
    fn read_request(&mut self) -> bool {
        let cfg = &self.config;
        match Request::parse(&self.rx, cfg.max_header_bytes(), cfg.max_headers()) {
            Ok(crate::frame::Status::Partial { .. }) => false,
            Ok(crate::frame::Status::Complete((request, used))) => {
                let _ = self.rx.split_to(used);
                self.events.push_back(Event::Request(request.clone()));
                match &mut self.phase {
                    // The box the request phase had.
                    Phase::Connecting(h) => **h = Handshaking::Decision(request),
                    phase => *phase = Phase::Connecting(Box::new(Handshaking::Decision(request))),
                }
                true
            }
            Err(e) => {
                let response = e.response();
                self.queue_raw(&response);
                self.fail_handshake(e);
                true
            }
        }
    }

    /// Client: parses the response head. Returns `true` when the phase changed.
    fn read_response(&mut self) -> bool {
        let Phase::Connecting(h) = &self.phase else {
            return false;
        };
        let Handshaking::Response { request, key } = &**h else {
            return false;
        };
        let cfg = &self.config;
        match Response::parse(
            &self.rx,
            request,
            key,
            cfg.max_header_bytes(),
            cfg.max_headers(),
        ) {
            Ok(crate::frame::Status::Partial { .. }) => false,
            Ok(crate::frame::Status::Complete((response, used))) => {
                let _ = self.rx.split_to(used);
                let negotiated = match cfg.deflate() {
                    Some(d) => deflate::accept_client(response.extensions(), d)
                        .map(|p| p.and_then(|p| Deflate::new(Role::Client, p, d))),
                    None if response.extensions().iter().any(|e| deflate::is_deflate(e)) => {
                        Err("permessage-deflate accepted but not enabled")
                    }
                    None => Ok(None),
                };
                match negotiated {
                    Ok(d) => self.deflate = d.map(Box::new),
                    Err(e) => {
                        self.fail_handshake(HandshakeError::Extension(e));
                        return true;
                    }
                }
                self.protocol = response.protocol().map(String::from);
                let handshake = Handshake {
                    protocol: self.protocol.clone(),
                    extensions: response.extensions().to_vec(),
                    response: Some(response),
                };
                self.phase = Phase::Open;
                self.events.push_back(Event::Open(Box::new(handshake)));
                true
            }
            Err(e) => {
                self.fail_handshake(e);
                true
            }
        }
    }

    fn fail_handshake(&mut self, e: HandshakeError) {
        let initiator = match self.role {
            Role::Server => Initiator::Local,
            Role::Client => Initiator::Remote,
        };
        self.abandon(initiator, Some(Failure::Handshake(e)));
    }

    // ---------------------------------------------------------------- C. commands

    /// Server: accepts the request reported by [`Event::Request`] and queues the 101 response.
    /// The connection is OPEN at once, and frames the client pipelined are processed.
    ///
    /// When the [`Accept`] names no subprotocol, the first one the client offered that is in
    /// [`Config::protocols`] is chosen (none when there is no match).
    ///
    /// Fails when no request is waiting, when the chosen subprotocol was not offered, or when an
    /// extra header cannot be sent.
    pub fn accept(&mut self, accept: Accept) -> Result<(), UsageError> {
        let request = match &self.phase {
            Phase::Connecting(h) => match &**h {
                Handshaking::Decision(r) => r,
                _ => return Err(UsageError::WrongState(self.state())),
            },
            _ => return Err(UsageError::WrongState(self.state())),
        };
        accept.validate(request)?;
        let mut accept = accept;
        if accept.selected_protocol().is_none() {
            let offered = request.protocols();
            if let Some(p) = offered.iter().find(|p| self.config.protocols().contains(p)) {
                accept = accept.protocol(p.clone());
            }
        }
        let mut extensions = Vec::new();
        if let Some(d) = self.config.deflate().filter(|_| cfg!(feature = "deflate")) {
            if let Some((answer, params)) = deflate::negotiate_server(request.extensions(), d) {
                self.deflate = Deflate::new(Role::Server, params, d).map(Box::new);
                accept = accept.extension_header(answer.clone());
                extensions.push(answer);
            }
        }
        // Straight into the output buffer.
        let queued = self.out.buf().len();
        accept.encode_to(request, self.out.buf());
        let head = self.out.buf().len() - queued;
        self.out.commit(head);
        self.protocol = accept.selected_protocol().map(String::from);
        self.phase = Phase::Open;
        self.events.push_back(Event::Open(Box::new(Handshake {
            protocol: self.protocol.clone(),
            extensions,
            response: None,
        })));
        self.process();
        Ok(())
    }

    /// Server: refuses the request reported by [`Event::Request`] with the [`Reject`]'s HTTP
    /// status, headers and body; the connection becomes CLOSED and wants the transport shut
    /// down once the response is written.
    pub fn reject(&mut self, reject: Reject) -> Result<(), UsageError> {
        if self.request().is_none() {
            return Err(UsageError::WrongState(self.state()));
        }
        let mut head = Vec::new();
        reject.encode(&mut head)?;
        self.queue_raw(&head);
        self.abandon(Initiator::Local, None);
        Ok(())
    }

    /// Reports that a deadline the adapter keeps has passed; the core decides what follows.
    ///
    /// - [`Timeout::Handshake`], [`Timeout::Pong`], [`Timeout::Close`]: the connection is
    ///   abandoned at once (no close frame: the peer is not answering), with code 1006; output
    ///   still queued is discarded.
    /// - [`Timeout::Idle`]: the closing handshake starts with 1001 (going away); the close
    ///   timeout then bounds it.
    ///
    /// Does nothing once CLOSED.
    pub fn timed_out(&mut self, kind: Timeout) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if kind == Timeout::Idle && matches!(self.phase, Phase::Open) {
            self.initiator.get_or_insert(Initiator::Local);
            self.queue_close(CloseFrame::new(CloseCode::GOING_AWAY, "idle timeout"));
            self.phase = Phase::Closing;
            return;
        }
        let initiator = *self.initiator.get_or_insert(Initiator::Local);
        self.abandon(initiator, Some(Failure::Timeout(kind)));
        // The peer is not answering: waiting for its EOF would only repeat the timeout, and
        // what is still queued for it will never be read.
        self.eof = true;
        self.out = Output::default();
        self.pending_pong = None;
    }

    fn check_can_send(&self) -> Result<(), UsageError> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Closing if !self.close_sent => Ok(()),
            Phase::Closing => Err(UsageError::SendAfterClose),
            Phase::Closed => Err(UsageError::Closed),
            Phase::Connecting(_) => Err(UsageError::WrongState(State::Connecting)),
        }
    }

    /// Queues a text message (split into frames of
    /// [`Config::write_fragment_size`] when set).
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.send_message(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.send_message(MessageKind::Binary, data)
    }

    /// Queues a message. A server queues large payloads without copying them.
    pub fn send(&mut self, message: Message) -> Result<(), UsageError> {
        let (kind, bytes) = match message {
            Message::Text(t) => (MessageKind::Text, t.into_bytes()),
            Message::Binary(b) => (MessageKind::Binary, b),
        };
        let unfragmented = self
            .config
            .write_fragment_size()
            .is_none_or(|n| bytes.len() <= n);
        if self.role == Role::Server
            && bytes.len() >= ZERO_COPY_MIN
            && unfragmented
            && self.deflate.is_none()
        {
            self.check_can_send()?;
            if self.send_fragment.is_some() {
                return Err(UsageError::FragmentOutOfSequence);
            }
            self.tx_active = true;
            let header = FrameHeader::new(data_opcode(kind), bytes.len() as u64);
            self.queue_header(header);
            self.out.push_bytes(bytes);
            return Ok(());
        }
        self.send_message(kind, &bytes)
    }

    fn send_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), UsageError> {
        self.check_can_send()?;
        if self.send_fragment.is_some() {
            return Err(UsageError::FragmentOutOfSequence);
        }
        self.tx_active = true;
        if let Some(d) = self.deflate.as_deref_mut() {
            // RFC 7692 §6: RSV1 on the first frame of a compressed message.
            let mut packed = core::mem::take(&mut self.scratch);
            if d.compress(data, &mut packed) {
                self.queue_message(kind, &packed, true);
                self.scratch = packed;
                return Ok(());
            }
            self.scratch = packed;
        }
        self.queue_message(kind, data, false);
        Ok(())
    }

    /// Queues a message's payload as frames of at most `write_fragment_size` bytes.
    fn queue_message(&mut self, kind: MessageKind, data: &[u8], compressed: bool) {
        let size = match self.config.write_fragment_size() {
            Some(n) if n > 0 => n,
            _ => usize::MAX,
        };
        let mut opcode = data_opcode(kind);
        let mut rsv1 = compressed;
        let mut rest = data;
        loop {
            let n = rest.len().min(size);
            let (chunk, tail) = rest.split_at(n);
            self.queue_frame_rsv(opcode, tail.is_empty(), rsv1, chunk);
            if tail.is_empty() {
                return;
            }
            rest = tail;
            opcode = Opcode::Continuation;
            rsv1 = false;
        }
    }

    /// Queues one fragment of a message (RFC 6455 §5.4): the first fragment names the `kind`,
    /// later ones continue it (their `kind` must match), and `fin` ends the message. Control
    /// frames may be sent between fragments; other messages may not.
    ///
    /// Text fragments are checked as UTF-8 incrementally (a code point may be split between
    /// fragments); invalid text is refused with nothing queued. Messages sent in explicit
    /// fragments are not compressed, even with permessage-deflate (RFC 7692 §6 lets each
    /// message choose).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), UsageError> {
        self.check_can_send()?;
        let opcode = match &self.send_fragment {
            Some(f) if f.kind != kind => return Err(UsageError::FragmentOutOfSequence),
            Some(_) => Opcode::Continuation,
            None => data_opcode(kind),
        };
        if kind == MessageKind::Text {
            let mut utf8 = self
                .send_fragment
                .as_ref()
                .map(|f| f.utf8)
                .unwrap_or_default();
            utf8.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
            if fin {
                utf8.finish().map_err(|_| UsageError::InvalidUtf8)?;
            }
            self.send_fragment = Some(SendFragment { kind, utf8 });
        } else {
            self.send_fragment = Some(SendFragment {
                kind,
                utf8: Utf8Validator::default(),
            });
        }
        self.tx_active = true;
        self.queue_frame(opcode, fin, data);
        if fin {
            self.send_fragment = None;
        }
        Ok(())
    }

    /// Queues a ping (payload at most 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(Opcode::Ping, payload)
    }

    /// Queues an unsolicited pong (payload at most 125 bytes), e.g. as a heartbeat (§5.5.3).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(Opcode::Pong, payload)
    }

    fn send_control(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), UsageError> {
        self.check_can_send()?;
        if payload.len() > 125 {
            return Err(UsageError::ControlTooLong(payload.len()));
        }
        self.queue_frame(opcode, true, payload);
        Ok(())
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2) with `code` and `reason` (at most 123
    /// bytes). No data may be sent afterwards; messages still arrive until the peer's close.
    ///
    /// While CONNECTING, this abandons the handshake (the browser's `close()` does the same).
    /// Calling it again once a close frame was sent does nothing.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        let frame = CloseFrame::new(code, reason);
        frame.validate()?;
        match self.phase {
            Phase::Closed => Ok(()),
            Phase::Closing if self.close_sent => Ok(()),
            Phase::Connecting(_) => {
                self.abandon(Initiator::Local, None);
                Ok(())
            }
            Phase::Open | Phase::Closing => {
                self.initiator.get_or_insert(Initiator::Local);
                self.queue_close(frame);
                self.phase = Phase::Closing;
                Ok(())
            }
        }
    }

    // ---------------------------------------------------------------- D. outputs

    /// The next event, if any. [`Event::Closed`] is always the last.
    ///
    /// When parsing stopped at a protocol error or at the peer's close frame, the close frame
    /// this endpoint sends in return is queued by the call that finds no earlier event left:
    /// commands issued while handling earlier events (say, echoing a message) go out first.
    pub fn next_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            match self.deferred.take().map(|d| *d) {
                Some(Deferred::Fail(e)) => self.fail_now(e),
                Some(Deferred::Close(f)) => self.close_received_now(f),
                None => {}
            }
        }
        self.events.pop_front()
    }

    /// The first contiguous run of bytes waiting to be written (empty when there is none).
    /// Write it, then report how much was written with [`advance_output`](Self::advance_output).
    pub fn pending_output(&self) -> &[u8] {
        self.out.first()
    }

    /// Every run of bytes waiting to be written, in order: for a vectored write.
    pub fn output_chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.out.chunks()
    }

    /// Reports that the first `n` pending bytes were written.
    pub fn advance_output(&mut self, n: usize) {
        self.out.advance(n);
        if self.out.len() <= PONG_COALESCE_ABOVE {
            if let Some(payload) = self.pending_pong.take() {
                self.queue_frame(Opcode::Pong, true, &payload);
            }
        }
    }

    /// `true` once the transport's write half should be shut down (after the pending output is
    /// written): the server closes TCP first (§7.1.1); either side after a failed handshake.
    pub fn wants_shutdown(&self) -> bool {
        self.shutdown
    }

    /// Frees buffers that are empty and larger than their working size: a large frame's, a
    /// large message's, a large batch's (anything over [`Config::max_read_size`]). Adapters
    /// call it when the transport has nothing more to read for now, so a connection holds no
    /// large buffers between bursts.
    ///
    /// Buffers of working size (the read buffer, at its adaptive read size, the event queue,
    /// the output buffer) are kept while data flows, so that a busy connection does not
    /// allocate per message. They are freed too, when empty, on a connection that has not
    /// received (for the read buffer and event queue) or sent (for the output buffer) a data
    /// message since it was made or since [`release_idle_memory`](Self::release_idle_memory):
    /// an opened connection that has not exchanged data yet holds no buffers. Once the read
    /// buffer is freed, [`read_buffer_released`](Self::read_buffer_released) says so.
    pub fn release_memory(&mut self) {
        // Growth is remembered when it happens: after a large message was split off, the
        // small remainder reports a small capacity (even 0) but keeps the whole allocation
        // alive, and an empty view may still pin it.
        if self.rx.is_empty() && (self.rx_grown || !self.rx_active) {
            self.rx = BytesMut::new();
            self.rx_grown = false;
            self.rx_released = !self.rx_active;
        }
        if !self.rx_active {
            self.read_size = 0;
        }
        let keep = self.busy_keep();
        self.out.release(if self.tx_active { keep } else { 0 });
        self.recv.release(if self.rx_active { keep } else { 0 });
        if self.scratch.capacity() > 0 {
            self.scratch = Vec::new();
        }
        if let Some(d) = self
            .deflate
            .as_deref_mut()
            .filter(|_| !self.recv.in_message())
        {
            d.release();
        }
        let keep_events = if self.rx_active { 8 } else { 0 };
        if self.events.is_empty() && self.events.capacity() > keep_events {
            self.events = VecDeque::new();
        }
    }

    /// How large a buffer a busy connection keeps between reads: the largest read.
    fn busy_keep(&self) -> usize {
        read_room(self.config.max_read_size().max(self.min_read()))
    }

    /// Tells the connection that its transport has been quiet for a while, then releases
    /// memory: every empty buffer is freed, the read buffer included, the adaptive read size
    /// goes back to [`Config::read_buffer_size`], and
    /// [`release_memory`](Self::release_memory) keeps freeing them until data flows again.
    /// An idle connection then holds no buffers; waking it up costs a few allocations (the
    /// read buffer, the event queue, the output buffer for an answer).
    ///
    /// The core has no clock, so the adapter decides what "a while" is: the blocking and tokio
    /// adapters call this after [`Options::release_after`](crate::Options::release_after)
    /// without input (2 s by default) and when their keepalive ping is due.
    ///
    /// ```
    /// use bytes::BufMut;
    /// use hybi::{Config, Connection, Event, Role};
    /// let mut conn = Connection::open(Role::Client, Config::default());
    /// conn.read_into(|buf| buf.put_slice(&[0x82, 0x01, 7]));
    /// assert!(matches!(conn.next_event(), Some(Event::Message(_))));
    /// conn.release_idle_memory();
    /// assert!(conn.read_buffer_released());
    /// conn.handle_input(&[0x82, 0x01, 8]);
    /// assert!(matches!(conn.next_event(), Some(Event::Message(_))));
    /// ```
    pub fn release_idle_memory(&mut self) {
        self.rx_active = false;
        self.tx_active = false;
        self.release_memory();
    }

    /// `true` while the connection holds no read buffer: it has not read anything yet, or
    /// [`release_memory`](Self::release_memory) freed the buffer of a connection that went
    /// quiet. An adapter should then wait for input with a buffer of its own and pass what
    /// arrives to [`handle_input`](Self::handle_input) (which takes the read buffer back),
    /// rather than call [`read_into`](Self::read_into), which allocates the read buffer before
    /// anything arrives.
    pub fn read_buffer_released(&self) -> bool {
        self.rx_released
    }

    // ---------------------------------------------------------------- internals

    fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.buf().extend_from_slice(bytes);
        self.out.commit(bytes.len());
    }

    fn next_mask(&mut self) -> [u8; 4] {
        if usize::from(self.mask_pos) + 4 > self.mask_pool.len() {
            self.config.mask_source().fill(&mut self.mask_pool);
            self.mask_pos = 0;
        }
        let p = usize::from(self.mask_pos);
        self.mask_pos += 4;
        [
            self.mask_pool[p],
            self.mask_pool[p + 1],
            self.mask_pool[p + 2],
            self.mask_pool[p + 3],
        ]
    }

    /// Queues a header with a fresh mask key when this is a client; returns the key.
    fn queue_header(&mut self, mut header: FrameHeader) -> Option<[u8; 4]> {
        if self.role == Role::Client {
            header.mask = Some(self.next_mask());
        }
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut h);
        self.queue_raw(&h[..n]);
        header.mask
    }

    /// Queues one frame, copying the payload (and masking the copy when this is a client).
    fn queue_frame(&mut self, opcode: Opcode, fin: bool, payload: &[u8]) {
        self.queue_frame_rsv(opcode, fin, false, payload);
    }

    fn queue_frame_rsv(&mut self, opcode: Opcode, fin: bool, rsv1: bool, payload: &[u8]) {
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        header.rsv1 = rsv1;
        // Room for the whole frame at once: one allocation, not one for the header and a
        // second for the payload, when the output buffer starts empty.
        self.out.buf().reserve(MAX_HEADER_LEN + payload.len());
        let key = self.queue_header(header);
        let buf = self.out.buf();
        let start = buf.len();
        buf.put_slice(payload);
        if let Some(key) = key {
            apply_mask(&mut buf[start..], key, 0);
        }
        self.out.commit(payload.len());
    }

    fn queue_close(&mut self, frame: CloseFrame) {
        // A coalesced pong still waiting answers a ping that arrived before this close: it goes
        // out now, before the close frame, never after it (§5.5.1, §5.5.2).
        if let Some(pong) = self.pending_pong.take() {
            self.queue_frame(Opcode::Pong, true, &pong);
        }
        let mut payload = Vec::with_capacity(2 + frame.reason.len());
        if frame.code != CloseCode::NO_STATUS {
            frame.encode(&mut payload);
        }
        self.queue_frame(Opcode::Close, true, &payload);
        self.close_sent = true;
        self.send_fragment = None;
    }

    /// Answers a ping (§5.5.2), coalescing under a flood (§5.5.3).
    fn queue_pong(&mut self, payload: Bytes) {
        if self.close_sent {
            return;
        }
        if self.out.len() > PONG_COALESCE_ABOVE {
            match &mut self.pending_pong {
                Some(held) => **held = payload,
                None => self.pending_pong = Some(Box::new(payload)),
            }
        } else {
            self.queue_frame(Opcode::Pong, true, &payload);
        }
    }

    /// Fails the connection (§7.1.7): parsing stops now; the close frame and the report follow
    /// the events already queued.
    fn fail(&mut self, err: ProtocolError) {
        self.rx.clear();
        self.deferred
            .get_or_insert_with(|| Box::new(Deferred::Fail(err)));
    }

    /// A valid close frame arrived (§5.5.1): parsing stops now; the reply follows the events
    /// already queued.
    fn on_close(&mut self, frame: CloseFrame) {
        self.rx.clear();
        self.deferred
            .get_or_insert_with(|| Box::new(Deferred::Close(frame)));
    }

    /// Fails the connection: queue the close frame for `err`, stop reading, report.
    fn fail_now(&mut self, err: ProtocolError) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let code = err.close_code();
        let reason = short_reason(&err);
        if !self.close_sent {
            self.queue_close(CloseFrame::new(code, reason.clone()));
        }
        self.rx.clear();
        self.pending_pong = None;
        let initiator = *self.initiator.get_or_insert(Initiator::Local);
        self.finish(CloseOutcome {
            code,
            reason,
            initiator,
            clean: false,
            error: Some(Failure::Protocol(err)),
        });
        // A server closes TCP without waiting for the client's close frame; a client waits
        // for the server to close (§7.1.1), bounded by its adapter's close timeout.
        if self.role == Role::Server {
            self.shutdown = true;
        }
    }

    /// Answers a close frame (§5.5.1, §7.1.5) and reports it.
    fn close_received_now(&mut self, frame: CloseFrame) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.events.push_back(Event::CloseReceived(frame.clone()));
        let initiator = *self.initiator.get_or_insert(Initiator::Remote);
        if !self.close_sent {
            // Echo the status code (§5.5.1); an empty close is answered with an empty close.
            self.queue_close(CloseFrame::new(frame.code, ""));
        }
        self.rx.clear();
        self.finish(CloseOutcome {
            code: frame.code,
            reason: frame.reason,
            initiator,
            clean: true,
            error: None,
        });
        if self.role == Role::Server {
            self.shutdown = true;
        }
    }

    fn finish(&mut self, outcome: CloseOutcome) {
        self.phase = Phase::Closed;
        // Nothing new is queued once CLOSED, not even a pong held back under backpressure.
        self.pending_pong = None;
        self.recv = Recv::default();
        self.outcome = Some(Box::new(outcome.clone()));
        self.events.push_back(Event::Closed(Box::new(outcome)));
    }
}

/// The room to offer a read meant for messages of up to `size` bytes: the message, its header
/// and one byte more. The byte matters: a read that fills all the room offered tells the
/// runtime the socket may hold more (tokio then reads again and gets `WouldBlock`), while a
/// shorter read tells it the socket is drained. Without it, a 64 KiB message in its 14-byte
/// frame would fill a 65,550-byte read exactly and cost an extra system call.
fn read_room(size: usize) -> usize {
    size.saturating_add(MAX_HEADER_LEN + 1)
}

fn data_opcode(kind: MessageKind) -> Opcode {
    match kind {
        MessageKind::Text => Opcode::Text,
        MessageKind::Binary => Opcode::Binary,
    }
}

/// A close reason for a failure: the error's message, cut to fit a close frame.
fn short_reason(err: &ProtocolError) -> String {
    let mut s = err.to_string();
    if s.len() > CloseFrame::MAX_REASON_LEN {
        let mut cut = CloseFrame::MAX_REASON_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
