//! The end of a connection (RFC 6455 §5.5.1, §7): the closing handshake, failing the
//! connection, deadlines passed, EOF, and the outcome.
//!
//! A close is clean only when both close frames were exchanged: the peer's received and ours
//! *written* (`advance_output` past it). So a connection that received the peer's close frame
//! stays CLOSING until its echo is written, and one whose echo never leaves (the peer stopped
//! reading, the close timeout passed) ends unclean.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{CloseOutcome, Connection, Event, Failure, Initiator, Phase, ProtocolError, Timeout};
use crate::error::UsageError;
use crate::frame::{CloseCode, CloseFrame, Opcode};
use crate::handshake::HandshakeError;
use crate::role::Role;

/// A closing handshake under way: who started it, where our close frame ends in the output
/// stream, and the peer's close frame once it arrived.
#[derive(Debug)]
pub(super) struct Closing {
    initiator: Initiator,
    /// How many bytes will have been written once our close frame is.
    sent_end: u64,
    received: Option<CloseFrame>,
}

impl Closing {
    /// The peer's close frame arrived (and our answer is being written): input is over.
    pub(super) fn peer_closed(&self) -> bool {
        self.received.is_some()
    }
}

/// What parsing stopped at. Parsing stops at once, but the close frame (ours, or the echo of the
/// peer's) is queued only when the application has drained the events before it, so replies to
/// the messages that arrived first still go out first (RFC 6455 §5.5.1 lets an endpoint finish
/// what it is sending before answering a close).
#[derive(Debug)]
pub(super) enum Deferred {
    Fail(ProtocolError),
    Close(CloseFrame),
}

impl Connection {
    // ---------------------------------------------------------------- A. getters: the end

    /// `true` while the connection is CLOSED and the peer has not closed the transport yet: the
    /// adapter should read (and discard) until EOF, for at most its close timeout.
    ///
    /// A server that completed the closing handshake does not wait: it closes the TCP
    /// connection first (RFC 6455 §7.1.1), and the client sends nothing after its close frame
    /// (§5.5.1), so once its write half is shut down it can drop the transport (its FIN is
    /// already out; no unread input means no reset). That saves a read and a wake-up per
    /// connection. A client waits for the server's EOF (§7.1.1), and so does a server that
    /// failed the connection before any close frame came in, so the client's last bytes are
    /// not answered with a reset.
    ///
    /// Over HTTP/2 (a server connection made by [`Connection::accepted`] for an extended
    /// CONNECT, RFC 8441) the server waits as well: the transport is a stream, and dropping a
    /// stream the client has not ended resets it (RST_STREAM, RFC 9113 §8.1), which HTTP/2
    /// clients report as an error after a clean close. Its END_STREAM is the EOF waited for.
    pub fn awaiting_eof(&self) -> bool {
        match &self.phase {
            Phase::Closed(outcome) => {
                let done_with_input =
                    self.role == Role::Server && outcome.clean && !self.wait_for_peer_end;
                !self.eof && !done_with_input
            }
            _ => false,
        }
    }

    /// `true` once output was dropped unwritten: the connection ended (a deadline passed, the
    /// transport failed) with bytes still queued, which the peer will never read. What was
    /// sent before the end was written; what is lost is the rest.
    pub fn output_discarded(&self) -> bool {
        self.out.discarded()
    }

    /// `true` when the closing handshake is under way (our close frame is queued, or the
    /// peer's arrived and our answer is not written yet): the adapter should arm its close
    /// timeout.
    pub fn awaiting_close(&self) -> bool {
        matches!(self.phase, Phase::Closing(_))
    }

    // ---------------------------------------------------------------- B. inputs: the end

    /// The transport reached EOF. Before a close frame this is an abnormal closure (1006, which
    /// is never sent on the wire). After the peer's close frame it is expected: our answer is
    /// still written (the peer closed only its sending side).
    pub fn handle_eof(&mut self) {
        self.eof = true;
        match &self.phase {
            Phase::Closed(_) => {}
            Phase::Connecting(_) => {
                self.abandon(
                    Initiator::Remote,
                    Some(Failure::Handshake(HandshakeError::Eof)),
                );
            }
            // A failure or close found before the EOF is what ended the connection; it is
            // reported when its turn comes in `next_event`.
            _ if self.deferred.is_some() => {}
            Phase::Closing(c) if c.received.is_some() => {}
            Phase::Open | Phase::Closing(_) => {
                let initiator = self.initiator().unwrap_or(Initiator::Remote);
                self.abandon(initiator, None);
            }
        }
        self.shutdown = true;
    }

    /// The transport failed: nothing more can be read or written. Unless it had already
    /// closed, the connection ends without a complete closing handshake (unclean, 1006 unless
    /// the peer's close frame arrived); output still queued is discarded.
    pub fn abort(&mut self) {
        self.eof = true;
        if !matches!(self.phase, Phase::Closed(_)) {
            let initiator = self.initiator().unwrap_or(Initiator::Remote);
            self.abandon(initiator, None);
        }
        self.discard_output();
    }

    // ---------------------------------------------------------------- C. commands: the end

    /// Starts the closing handshake (RFC 6455 §7.1.2) with `code` and `reason` (at most 123
    /// bytes). No data may be sent afterwards; messages still arrive until the peer's close.
    ///
    /// While CONNECTING, this abandons the handshake (the browser's `close()` does the same).
    /// Calling it again once a close frame was sent does nothing.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        let frame = CloseFrame::new(code, reason);
        frame.validate()?;
        match self.phase {
            Phase::Closed(_) | Phase::Closing(_) => Ok(()),
            Phase::Connecting(_) => {
                self.abandon(Initiator::Local, None);
                Ok(())
            }
            Phase::Open => {
                let sent_end = self.queue_close(&frame);
                self.phase = Phase::Closing(Box::new(Closing {
                    initiator: Initiator::Local,
                    sent_end,
                    received: None,
                }));
                Ok(())
            }
        }
    }

    /// Reports that a deadline the adapter keeps has passed; the core decides what follows.
    ///
    /// - [`Timeout::Idle`]: the closing handshake starts with 1001 (going away); the close
    ///   timeout then bounds it.
    /// - Any other ([`Timeout::Handshake`], [`Timeout::Pong`], [`Timeout::Write`],
    ///   [`Timeout::Close`]): the connection is abandoned at once (no close frame: the peer is
    ///   not answering), unclean, with code 1006 (or the peer's code if its close frame
    ///   arrived); output still queued is discarded.
    ///
    /// Does nothing once CLOSED.
    pub fn timed_out(&mut self, kind: Timeout) {
        match self.phase {
            Phase::Closed(_) => return,
            Phase::Open if kind == Timeout::Idle => {
                let frame = CloseFrame::new(CloseCode::GOING_AWAY, "idle timeout");
                let sent_end = self.queue_close(&frame);
                self.phase = Phase::Closing(Box::new(Closing {
                    initiator: Initiator::Local,
                    sent_end,
                    received: None,
                }));
                return;
            }
            _ => {}
        }
        let initiator = self.initiator().unwrap_or(Initiator::Local);
        self.abandon(initiator, Some(Failure::Timeout(kind)));
        // The peer is not answering: waiting for its EOF would only repeat the timeout, and
        // what is still queued for it will never be read.
        self.eof = true;
        self.discard_output();
    }

    // ---------------------------------------------------------------- D. outputs: events

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

    // ---------------------------------------------------------------- internals

    /// Who started the close, once one started.
    fn initiator(&self) -> Option<Initiator> {
        match &self.phase {
            Phase::Closing(c) => Some(c.initiator),
            Phase::Closed(o) => Some(o.initiator),
            _ => None,
        }
    }

    /// Queues our close frame (after a pong still held back, which answers a ping that came
    /// before the close: never after it, §5.5.1, §5.5.2). Returns where it ends in the output
    /// stream.
    fn queue_close(&mut self, frame: &CloseFrame) -> u64 {
        if let Some(pong) = self.send.pending_pong.take() {
            self.queue_frame(Opcode::Pong, true, &pong);
        }
        let mut payload = Vec::with_capacity(2 + frame.reason.len());
        if frame.code != CloseCode::NO_STATUS {
            frame.encode(&mut payload);
        }
        self.queue_frame(Opcode::Close, true, &payload);
        self.end_fragments();
        self.out.total()
    }

    /// The output moved on: once our close frame is written after the peer's arrived, the
    /// closing handshake is complete.
    pub(super) fn close_written(&mut self) {
        let Phase::Closing(c) = &mut self.phase else {
            return;
        };
        if c.received.is_none() || self.out.written() < c.sent_end {
            return;
        }
        let initiator = c.initiator;
        let Some(frame) = c.received.take() else {
            return;
        };
        self.finish(CloseOutcome {
            code: frame.code,
            reason: frame.reason,
            initiator,
            clean: true,
            error: None,
        });
    }

    /// Fails the connection (§7.1.7): parsing stops now; the close frame and the report follow
    /// the events already queued.
    pub(super) fn fail(&mut self, err: ProtocolError) {
        self.read.buf.clear();
        self.deferred
            .get_or_insert_with(|| Box::new(Deferred::Fail(err)));
    }

    /// A valid close frame arrived (§5.5.1): parsing stops now; the reply follows the events
    /// already queued.
    pub(super) fn on_close(&mut self, frame: CloseFrame) {
        self.read.buf.clear();
        self.deferred
            .get_or_insert_with(|| Box::new(Deferred::Close(frame)));
    }

    /// Fails the connection: queue the close frame for `err`, stop reading, report.
    fn fail_now(&mut self, err: ProtocolError) {
        let code = err.close_code();
        let reason = short_reason(&err);
        let initiator = match &self.phase {
            Phase::Closed(_) => return,
            Phase::Closing(c) => c.initiator,
            _ => {
                self.queue_close(&CloseFrame::new(code, reason.clone()));
                Initiator::Local
            }
        };
        self.read.buf.clear();
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

    /// Answers a close frame (§5.5.1, §7.1.5) and reports it. The close completes (cleanly)
    /// when our close frame is written: at once if it already was.
    fn close_received_now(&mut self, frame: CloseFrame) {
        let (initiator, sent_end) = match &self.phase {
            Phase::Closed(_) => return,
            Phase::Closing(c) => (c.initiator, c.sent_end),
            _ => {
                // Echo the status code (§5.5.1); an empty close is answered with an empty close.
                let sent_end = self.queue_close(&CloseFrame::new(frame.code, ""));
                (Initiator::Remote, sent_end)
            }
        };
        self.events.push_back(Event::CloseReceived(frame.clone()));
        self.read.buf.clear();
        self.recv = super::Recv::default();
        self.phase = Phase::Closing(Box::new(Closing {
            initiator,
            sent_end,
            received: Some(frame),
        }));
        if self.role == Role::Server {
            self.shutdown = true;
        }
        self.close_written();
    }

    /// Ends the connection without a complete closing handshake: CLOSED and unclean, with 1006
    /// (never sent) unless the peer's close frame arrived; input ignored from now on, the
    /// transport to be shut down.
    pub(super) fn abandon(&mut self, initiator: Initiator, error: Option<Failure>) {
        self.read.buf.clear();
        let (code, reason) = match &mut self.phase {
            Phase::Closing(c) => match c.received.take() {
                Some(f) => (f.code, f.reason),
                None => (CloseCode::ABNORMAL, String::new()),
            },
            _ => (CloseCode::ABNORMAL, String::new()),
        };
        self.finish(CloseOutcome {
            code,
            reason,
            initiator,
            clean: false,
            error,
        });
        self.shutdown = true;
    }

    fn discard_output(&mut self) {
        self.out.discard();
        self.send.pending_pong = None;
    }

    fn finish(&mut self, outcome: CloseOutcome) {
        // Nothing new is queued once CLOSED, not even a pong held back under backpressure.
        self.send.pending_pong = None;
        self.recv = super::Recv::default();
        self.events
            .push_back(Event::Closed(Box::new(outcome.clone())));
        self.phase = Phase::Closed(Box::new(outcome));
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
