//! The deadlines of one connection: when to ping, when the peer counts as dead, when to give
//! memory back, when to give up on a close. The clock is read by the driver and passed in;
//! what a passed deadline means for the protocol is the core's decision
//! ([`Connection::timed_out`]).
//!
//! Liveness counts what the peer accepts as well as what it sends: a write that makes progress
//! restarts the pong and write timeouts, so a slow reader working through a backlog is never
//! dropped, while a peer that neither reads nor sends is dropped within `ping_interval` +
//! `pong_timeout` (or `write_timeout`).

use std::time::{Duration, Instant};

use super::timeouts::{Settings, Timeouts};
use crate::conn::{Connection, Timeout};
use crate::role::State;

/// The payload of keepalive pings.
const PING_PAYLOAD: &[u8] = b"hybi-keepalive";

/// A time as milliseconds after the connection was made: 4 bytes instead of an `Instant`'s 16,
/// which keeps an idle connection small. Enough for 49 days; later times saturate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ms(u32);

/// "Not set", for the optional times.
const UNSET: Ms = Ms(u32::MAX);

#[derive(Debug)]
pub(crate) struct Deadlines {
    timeouts: Timeouts,
    base: Instant,
    last_input: Ms,
    last_message: Ms,
    /// The last write that made progress.
    last_progress: Ms,
    /// When the keepalive ping was queued, while it is unanswered.
    ping_sent: Ms,
    /// Since when output has been waiting with the transport taking none of it.
    blocked_since: Ms,
    closing_since: Ms,
    closed_since: Ms,
    /// The idle release happened since the last input.
    released: bool,
}

impl Deadlines {
    pub(crate) fn new(timeouts: Timeouts, now: Instant) -> Self {
        Self {
            timeouts,
            base: now,
            last_input: Ms(0),
            last_message: Ms(0),
            last_progress: Ms(0),
            ping_sent: UNSET,
            blocked_since: UNSET,
            closing_since: UNSET,
            closed_since: UNSET,
            released: false,
        }
    }

    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    fn ms(&self, t: Instant) -> Ms {
        let d = t.saturating_duration_since(self.base).as_millis();
        Ms(u32::try_from(d).unwrap_or(u32::MAX - 1).min(u32::MAX - 1))
    }

    /// `base + t + d` (times are kept to the millisecond, so a deadline may pass up to a
    /// millisecond early).
    fn at(&self, t: Ms, d: Option<Duration>) -> Option<Instant> {
        if t == UNSET {
            return None;
        }
        let d = d?;
        self.base
            .checked_add(Duration::from_millis(u64::from(t.0)))?
            .checked_add(d)
    }

    /// Input arrived: the peer is alive, and any keepalive ping is answered.
    pub(crate) fn on_input(&mut self, now: Instant) {
        self.last_input = self.ms(now);
        self.ping_sent = UNSET;
        self.released = false;
    }

    /// A message was delivered. It came with the last input, so that is its time (no clock
    /// read per message).
    pub(crate) fn on_message(&mut self) {
        self.last_message = self.last_input;
    }

    /// A write made progress: the peer is taking our bytes.
    pub(crate) fn on_progress(&mut self, now: Instant) {
        self.last_progress = self.ms(now);
        self.blocked_since = UNSET;
    }

    /// A write could not complete: the transport is full. The write timeout runs from the
    /// first such write after the last progress.
    pub(crate) fn on_blocked(&mut self, now: Instant) {
        if self.blocked_since == UNSET {
            self.blocked_since = self.ms(now);
        }
    }

    /// Notes state changes (call after every step); reads the clock only when the state
    /// changed.
    pub(crate) fn observe(&mut self, now: impl FnOnce() -> Instant, conn: &Connection) {
        match conn.state() {
            State::Closing if self.closing_since == UNSET => self.closing_since = self.ms(now()),
            State::Closed if self.closed_since == UNSET => self.closed_since = self.ms(now()),
            _ => {}
        }
    }

    fn settings(&self) -> &Settings {
        self.timeouts.settings()
    }

    /// The pong deadline of an unanswered ping: from the ping, or from the last write that
    /// made progress after it.
    fn pong_due(&self) -> Option<Instant> {
        if self.ping_sent == UNSET {
            return None;
        }
        self.at(
            self.ping_sent.max(self.last_progress),
            self.settings().pong_timeout,
        )
    }

    /// When the adapter must wake up next, if ever.
    pub(crate) fn next(&self, conn: &Connection) -> Option<Instant> {
        let o = self.settings();
        match conn.state() {
            State::Connecting => self.at(Ms(0), o.handshake_timeout),
            State::Open => {
                let keepalive = match self.ping_sent {
                    UNSET => self.at(self.last_input, o.ping_interval),
                    _ => self.pong_due(),
                };
                let release = match self.released {
                    false => self.at(self.last_input, o.release_after),
                    true => None,
                };
                [
                    keepalive,
                    release,
                    self.at(self.last_message, o.idle_timeout),
                    self.at(self.blocked_since, o.write_timeout),
                ]
                .into_iter()
                .flatten()
                .min()
            }
            State::Closing => self.at(self.closing_since, o.close_timeout),
            State::Closed => self.at(self.closed_since, o.close_timeout),
        }
    }

    /// Acts on every deadline that has passed by `now`. Returns `true` when the wait for EOF
    /// after the close is over (the adapter should stop reading and drop the transport).
    pub(crate) fn fire(&mut self, now: Instant, conn: &mut Connection) -> bool {
        let o = self.settings().clone();
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        match conn.state() {
            State::Connecting => {
                if due(self.at(Ms(0), o.handshake_timeout)) {
                    conn.timed_out(Timeout::Handshake);
                }
            }
            State::Open => {
                if !self.released && due(self.at(self.last_input, o.release_after)) {
                    conn.release_idle_memory();
                    self.released = true;
                }
                if due(self.at(self.last_message, o.idle_timeout)) {
                    conn.timed_out(Timeout::Idle);
                } else if due(self.at(self.blocked_since, o.write_timeout)) {
                    conn.timed_out(Timeout::Write);
                } else if self.ping_sent != UNSET {
                    if due(self.pong_due()) {
                        conn.timed_out(Timeout::Pong);
                    }
                } else if due(self.at(self.last_input, o.ping_interval)) {
                    // Sending can only fail if the state changed; then there is nothing to do.
                    if conn.send_ping(PING_PAYLOAD).is_ok() {
                        self.ping_sent = self.ms(now);
                    }
                    // Nothing arrived for a ping interval: the connection has gone idle, and
                    // gives its buffers back until data flows again.
                    conn.release_idle_memory();
                }
            }
            State::Closing => {
                if due(self.at(self.closing_since, o.close_timeout)) {
                    conn.timed_out(Timeout::Close);
                }
            }
            State::Closed => return due(self.next(conn)),
        }
        self.observe(|| now, conn);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::role::Role;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn open() -> Connection {
        Connection::open(Role::Server, Config::default())
    }

    fn timeouts() -> Timeouts {
        Timeouts::none()
            .with_ping_interval(Some(ms(100)))
            .with_pong_timeout(Some(ms(300)))
    }

    /// A peer that reads slowly keeps the connection alive: every write that makes progress
    /// moves the pong deadline, however long the backlog takes.
    #[test]
    fn write_progress_keeps_a_draining_peer_alive() {
        let t0 = Instant::now();
        let mut conn = open();
        let mut d = Deadlines::new(timeouts(), t0);
        // No input for the ping interval: a ping goes out (behind whatever is queued).
        let at = d.next(&conn).unwrap();
        assert_eq!(at, t0 + ms(100));
        d.fire(at, &mut conn);
        assert_ne!(d.ping_sent, UNSET);
        // The peer takes bytes every 100 ms for two seconds without answering yet.
        for i in 2..=20 {
            let now = t0 + ms(100 * i);
            d.on_progress(now);
            d.fire(now, &mut conn);
            assert_eq!(conn.state(), State::Open, "dropped at {i}");
            assert!(d.next(&conn).unwrap() > now + ms(299));
        }
        // It stops taking bytes: dropped one pong timeout after the last progress.
        let last = t0 + ms(2000);
        let at = d.next(&conn).unwrap();
        assert!(
            at >= last + ms(300) && at <= last + ms(302),
            "{:?}",
            at - last
        );
        d.fire(at, &mut conn);
        assert_eq!(conn.state(), State::Closed);
        let outcome = conn.close_outcome().unwrap();
        assert_eq!(
            outcome.error,
            Some(crate::conn::Failure::Timeout(Timeout::Pong))
        );
    }

    /// A peer that neither reads nor answers is dropped within interval + timeout.
    #[test]
    fn a_silent_peer_is_dropped_within_interval_plus_timeout() {
        let t0 = Instant::now();
        let mut conn = open();
        let mut d = Deadlines::new(timeouts(), t0);
        let mut now = t0;
        while conn.state() == State::Open {
            now = d.next(&conn).unwrap();
            d.fire(now, &mut conn);
        }
        assert!(now <= t0 + ms(100 + 300), "{:?}", now - t0);
    }

    /// With keepalive off, output that waits without progress for the write timeout drops
    /// the peer; progress restarts the timer.
    #[test]
    fn write_timeout_counts_from_the_blocked_write() {
        let t0 = Instant::now();
        let mut conn = open();
        let mut d = Deadlines::new(Timeouts::none().with_write_timeout(Some(ms(500))), t0);
        assert_eq!(d.next(&conn), None);
        d.on_blocked(t0 + ms(1000));
        d.on_blocked(t0 + ms(1200)); // still the first blocked write that counts
        assert_eq!(d.next(&conn), Some(t0 + ms(1500)));
        d.on_progress(t0 + ms(1400));
        assert_eq!(d.next(&conn), None);
        d.on_blocked(t0 + ms(1450));
        let at = d.next(&conn).unwrap();
        d.fire(at - ms(2), &mut conn);
        assert_eq!(conn.state(), State::Open);
        d.fire(at, &mut conn);
        assert_eq!(
            conn.close_outcome().unwrap().error,
            Some(crate::conn::Failure::Timeout(Timeout::Write))
        );
    }

    #[test]
    fn input_answers_the_ping() {
        let t0 = Instant::now();
        let mut conn = open();
        let mut d = Deadlines::new(timeouts(), t0);
        d.fire(t0 + ms(101), &mut conn);
        assert_ne!(d.ping_sent, UNSET);
        d.on_input(t0 + ms(150));
        assert_eq!(d.ping_sent, UNSET);
        assert_eq!(d.next(&conn), Some(t0 + ms(250)));
    }
}
