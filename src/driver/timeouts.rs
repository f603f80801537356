//! The time-based settings of the driver: timeouts, keepalive pings and idle memory release.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The deadlines the driver keeps for a connection: timeouts, keepalive pings and when an
/// idle connection gives its buffers back. Every one can be turned off with `None`.
///
/// | setting (set with `with_*`) | default | what happens when it passes |
/// |---|---|---|
/// | [`handshake_timeout`](Self::handshake_timeout) | 10 s | the opening handshake is abandoned |
/// | [`ping_interval`](Self::ping_interval) | 20 s | no input for this long: a ping is sent (and idle buffers freed) |
/// | [`pong_timeout`](Self::pong_timeout) | 20 s | no input since that ping, and the peer took none of our bytes, for this long: the peer is dropped (1006) |
/// | [`write_timeout`](Self::write_timeout) | 30 s | output is waiting and the peer has taken none of it for this long: the peer is dropped (1006) |
/// | [`idle_timeout`](Self::idle_timeout) | none | no message for this long: close with 1001 |
/// | [`close_timeout`](Self::close_timeout) | 5 s | the closing handshake (and the wait for EOF after it) is cut short |
/// | [`release_after`](Self::release_after) | 2 s | no input for this long: the connection's buffers are freed ([`Connection::release_idle_memory`](crate::Connection::release_idle_memory)) |
///
/// Liveness counts what the peer *accepts* as well as what it sends: while the peer keeps
/// taking our bytes (a slow reader working through a backlog), the pong and write timeouts
/// start again from the last write that made progress, so a connection that is draining is
/// never dropped as dead. A peer that neither reads nor answers is dropped within
/// `ping_interval` + `pong_timeout` (or `write_timeout`, with keepalive off).
///
/// Timeouts are shared cheaply between connections: cloning is a reference count, and every
/// copy of the defaults shares one allocation.
///
/// ```
/// use std::time::Duration;
/// use hybi::Timeouts;
/// let timeouts = Timeouts::default()
///     .with_ping_interval(Some(Duration::from_secs(5)))
///     .with_idle_timeout(None);
/// assert_eq!(timeouts.ping_interval(), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone)]
pub struct Timeouts {
    inner: Arc<Settings>,
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Option<Duration>,
    pub(crate) release_after: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        static DEFAULT: OnceLock<Arc<Settings>> = OnceLock::new();
        let inner = DEFAULT.get_or_init(|| {
            Arc::new(Settings {
                handshake_timeout: Some(Duration::from_secs(10)),
                ping_interval: Some(Duration::from_secs(20)),
                pong_timeout: Some(Duration::from_secs(20)),
                write_timeout: Some(Duration::from_secs(30)),
                idle_timeout: None,
                close_timeout: Some(Duration::from_secs(5)),
                release_after: Some(Duration::from_secs(2)),
            })
        });
        Self {
            inner: Arc::clone(inner),
        }
    }
}

macro_rules! setting {
    ($(#[$doc:meta])* $name:ident, $set:ident) => {
        $(#[$doc])*
        #[must_use]
        pub fn $set(mut self, value: Option<Duration>) -> Self {
            Arc::make_mut(&mut self.inner).$name = value;
            self
        }
        #[doc = concat!("The value set by [`", stringify!($set), "`](Self::", stringify!($set), ").")]
        pub fn $name(&self) -> Option<Duration> {
            self.inner.$name
        }
    };
}

impl Timeouts {
    /// Every deadline off: no timeouts, no keepalive, no idle release. For tests and for
    /// transports whose owner keeps time itself.
    pub fn none() -> Self {
        Self {
            inner: Arc::new(Settings {
                handshake_timeout: None,
                ping_interval: None,
                pong_timeout: None,
                write_timeout: None,
                idle_timeout: None,
                close_timeout: None,
                release_after: None,
            }),
        }
    }

    setting!(
        /// How long the opening handshake may take.
        handshake_timeout, with_handshake_timeout
    );
    setting!(
        /// How long without input before a keepalive ping is sent. The connection is then
        /// idle: its buffers are freed until data flows again
        /// ([`Connection::release_idle_memory`](crate::Connection::release_idle_memory)).
        ping_interval, with_ping_interval
    );
    setting!(
        /// How long a keepalive ping may go unanswered (no input at all) while the peer also
        /// takes none of our bytes, before the peer is dropped as dead. The time runs from the
        /// ping, or from the last write that made progress if that is later.
        pong_timeout, with_pong_timeout
    );
    setting!(
        /// How long output may wait with the peer taking none of it before the peer is dropped
        /// as dead (1006, [`Timeout::Write`](crate::Timeout::Write)). The time runs from the
        /// first write that could not complete, and starts again with every write that makes
        /// progress.
        write_timeout, with_write_timeout
    );
    setting!(
        /// How long without a message before the connection is closed with 1001.
        idle_timeout, with_idle_timeout
    );
    setting!(
        /// How long the closing handshake, and the wait for the peer's EOF after it, may take.
        close_timeout, with_close_timeout
    );
    setting!(
        /// How long without input before an open connection frees its buffers, read buffer
        /// included ([`Connection::release_idle_memory`](crate::Connection::release_idle_memory)),
        /// so an idle connection holds almost no heap. A busy connection keeps them and reads
        /// without allocating; the next input after a release allocates the read buffer again.
        release_after, with_release_after
    );

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner
    }
}
