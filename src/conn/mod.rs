//! The sans-IO connection state machine: CONNECTING → OPEN → CLOSING → CLOSED.
//!
//! This file holds the type, its phases and getters; each concern has its own file:
//!
//! | file | what | RFC |
//! |---|---|---|
//! | `handshake.rs` | constructors, the opening handshake, server negotiation ([`Negotiated`]) | 6455 §4, 7692 §5-§7 |
//! | `recv.rs` | frame decoding, unmasking, reassembly, UTF-8, receive limits | 6455 §5, §8.1 |
//! | `send.rs` | messages, fragments, control frames, masking on send, the pong rule | 6455 §5.3-§5.6, 7692 §6 |
//! | `prepared.rs` | fan-out: a message framed (and compressed) once for many connections | 7692 §6-§7 |
//! | `close.rs` | the closing handshake, failing the connection, timeouts, EOF | 6455 §5.5.1, §7 |
//! | `read.rs` | the read buffer: read sizes, growth, memory release | — |
//! | `output.rs` | the output queue | — |
//! | `event.rs` | events, messages, close outcomes | 6455 §7.4 |

mod close;
mod error;
mod event;
mod handshake;
mod output;
mod prepared;
mod read;
mod recv;
mod send;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;

pub use error::ProtocolError;
pub use event::{
    CloseOutcome, Event, Failure, Fragment, Handshake, Initiator, Message, MessageKind, Timeout,
};
pub use handshake::{ClientHandshake, Negotiated};
pub use prepared::PreparedMessage;

use crate::config::Config;
use crate::extensions::deflate::Deflate;
use crate::handshake::{ClientRequest, Request};
use crate::role::{Role, State};
use close::{Closing, Deferred};
use output::Output;
use read::ReadBuf;
use recv::Recv;
use send::SendState;

/// A WebSocket connection as a deterministic state machine: bytes in, events and bytes out.
///
/// It owns no socket, no clock and no runtime. An adapter (or your own loop) moves bytes between
/// the transport and the connection. Its methods come in five groups:
///
/// - **A. Getters**: [`role`](Self::role), [`state`](Self::state),
///   [`buffered_amount`](Self::buffered_amount), [`close_outcome`](Self::close_outcome),
///   [`protocol`](Self::protocol), [`request`](Self::request).
/// - **B. Inputs** from the transport: [`handle_input`](Self::handle_input),
///   [`read_into`](Self::read_into), [`handle_eof`](Self::handle_eof),
///   [`abort`](Self::abort). They never fail: a peer that breaks the protocol fails the
///   connection (RFC 6455 §7.1.7), which queues the right close frame and reports
///   [`Event::Closed`] with the error.
/// - **C. Commands** from the application: [`accept`](Self::accept), [`reject`](Self::reject),
///   [`send_text`](Self::send_text), [`send_binary`](Self::send_binary), [`send`](Self::send),
///   [`send_fragment`](Self::send_fragment), [`send_ping`](Self::send_ping),
///   [`send_pong`](Self::send_pong), [`close`](Self::close), [`timed_out`](Self::timed_out).
///   They fail only for local misuse ([`UsageError`](crate::UsageError)).
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
/// A close is clean only when both close frames were exchanged: ours written
/// ([`advance_output`](Self::advance_output) past it) and the peer's received. So after the
/// peer's close frame ([`Event::CloseReceived`]) the connection stays CLOSING until the echo is
/// written, and [`Event::Closed`] comes then. After [`Event::Closed`] the connection ignores
/// input; the transport should be drained until EOF (or a timeout) and closed
/// ([`awaiting_eof`](Self::awaiting_eof)).
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
    /// The read buffer and its sizing policy.
    read: ReadBuf,
    /// Progress through the frame and message being received.
    recv: Recv,
    /// Bytes queued for the transport.
    out: Output,
    /// What sending needs between calls (fragments, held pong, masks, scratch).
    send: SendState,
    events: VecDeque<Event>,
    /// A failure or a received close, found while parsing, that takes effect once the events
    /// before it are drained (see [`Deferred`]).
    deferred: Option<Box<Deferred>>,
    /// The transport should be shut down once the output is written.
    shutdown: bool,
    /// The peer's EOF was read.
    eof: bool,
    /// Wait for the peer's EOF even after a clean close as a server: the transport answers
    /// input left unread with a reset (an HTTP/2 stream, RFC 8441; see
    /// [`awaiting_eof`](Self::awaiting_eof)).
    wait_for_peer_end: bool,
    /// The negotiated subprotocol.
    protocol: Option<String>,
    /// permessage-deflate, when negotiated.
    deflate: Option<Box<Deflate>>,
}

/// Where the connection is. Each phase carries what only it needs: the handshake state while
/// CONNECTING, who started the close and how far it got while CLOSING, the outcome once CLOSED.
/// State needed only around a handshake or a close is boxed, so it takes no room in an open
/// connection.
#[derive(Debug)]
enum Phase {
    Connecting(Box<Handshaking>),
    Open,
    Closing(Box<Closing>),
    Closed(Box<CloseOutcome>),
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

impl Connection {
    fn new(role: Role, config: Config, phase: Phase) -> Self {
        Self {
            role,
            config,
            phase,
            read: ReadBuf::default(),
            recv: Recv::default(),
            out: Output::default(),
            send: SendState::default(),
            events: VecDeque::new(),
            deferred: None,
            shutdown: false,
            eof: false,
            wait_for_peer_end: false,
            protocol: None,
            deflate: None,
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
            Phase::Closing(_) => State::Closing,
            Phase::Closed(_) => State::Closed,
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
        match &self.phase {
            Phase::Closed(outcome) => Some(outcome),
            _ => None,
        }
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

    /// `true` once the transport's write half should be shut down (after the pending output is
    /// written): the server closes TCP first (§7.1.1); either side after a failed handshake.
    pub fn wants_shutdown(&self) -> bool {
        self.shutdown
    }
}
