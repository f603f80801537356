//! Deadlines and keepalive for the adapters: the clock lives here, never in the core.
//!
//! The adapters ask [`Deadlines::next`] when to wake up and call [`Deadlines::fire`] when that
//! time comes; what a passed deadline means for the protocol is decided by the core
//! ([`Connection::timed_out`]).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::{Connection, State, Timeout};

/// Deadlines and keepalive settings for the blocking and tokio adapters. Every one can be
/// turned off with `None`.
///
/// | setting | default | what happens |
/// |---|---|---|
/// | `handshake_timeout` | 10 s | the opening handshake is abandoned |
/// | `ping_interval` | 20 s | after this long without input, a ping is sent (and idle buffers freed) |
/// | `pong_timeout` | 20 s | no input for this long after that ping: the peer is dropped |
/// | `idle_timeout` | none | no message for this long: close with 1001 |
/// | `close_timeout` | 5 s | the closing handshake (and the wait for EOF after it) is cut short |
/// | `release_after` | 2 s | no input for this long: the connection's buffers are freed ([`Connection::release_idle_memory`]) |
///
/// `write_high_water` (default 1 MiB) is how many queued output bytes make the tokio adapter's
/// `Sink::poll_ready` wait.
///
/// Like [`Config`](crate::Config), options are shared cheaply between connections: cloning is a
/// reference count, and every copy of the defaults shares one allocation, so a connection
/// carries a pointer to its options rather than the options themselves.
///
/// ```
/// use std::time::Duration;
/// use hybi::Options;
/// let opts = Options::default().ping_interval(Some(Duration::from_secs(5))).idle_timeout(None);
/// assert_eq!(opts.get_ping_interval(), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    inner: Arc<Settings>,
}

#[derive(Debug, Clone)]
struct Settings {
    handshake_timeout: Option<Duration>,
    ping_interval: Option<Duration>,
    pong_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    close_timeout: Option<Duration>,
    release_after: Option<Duration>,
    write_high_water: usize,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Options {
    fn default() -> Self {
        static DEFAULT: OnceLock<Arc<Settings>> = OnceLock::new();
        let inner = DEFAULT.get_or_init(|| Arc::new(Settings::default()));
        Self {
            inner: Arc::clone(inner),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            handshake_timeout: Some(Duration::from_secs(10)),
            ping_interval: Some(Duration::from_secs(20)),
            pong_timeout: Some(Duration::from_secs(20)),
            idle_timeout: None,
            close_timeout: Some(Duration::from_secs(5)),
            release_after: Some(Duration::from_secs(2)),
            write_high_water: 1 << 20,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

macro_rules! setting {
    ($(#[$doc:meta])* $name:ident, $get:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            Arc::make_mut(&mut self.inner).$name = value;
            self
        }
        #[doc = concat!("The value set by [`", stringify!($name), "`](Self::", stringify!($name), ").")]
        pub fn $get(&self) -> $ty {
            self.inner.$name
        }
    };
}

impl Options {
    setting!(
        /// How long the opening handshake may take.
        handshake_timeout, get_handshake_timeout: Option<Duration>
    );
    setting!(
        /// How long without input before a keepalive ping is sent. The connection is then
        /// idle: its buffers are freed until data flows again
        /// ([`Connection::release_idle_memory`]).
        ping_interval, get_ping_interval: Option<Duration>
    );
    setting!(
        /// How long a keepalive ping may go unanswered (no input at all) before the peer is
        /// dropped as dead.
        pong_timeout, get_pong_timeout: Option<Duration>
    );
    setting!(
        /// How long without a message before the connection is closed with 1001.
        idle_timeout, get_idle_timeout: Option<Duration>
    );
    setting!(
        /// How long the closing handshake, and the wait for the peer's EOF after it, may take.
        close_timeout, get_close_timeout: Option<Duration>
    );
    setting!(
        /// How long without input before an open connection frees its buffers, read buffer
        /// included ([`Connection::release_idle_memory`]), so an idle connection holds almost no
        /// heap. A busy connection keeps them and reads without allocating; the next input after
        /// a release allocates the read buffer again.
        release_after, get_release_after: Option<Duration>
    );
    setting!(
        /// Queued output bytes above which the tokio adapter's `Sink::poll_ready` waits.
        write_high_water, get_write_high_water: usize
    );

    /// The rustls client configuration for `wss://` (default: the bundled web PKI roots).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        Arc::make_mut(&mut self.inner).tls = Some(config);
        self
    }

    /// The rustls client configuration set by [`tls_config`](Self::tls_config).
    #[cfg(feature = "tls")]
    pub(crate) fn get_tls_config(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.inner.tls.as_ref()
    }
}

/// The deadlines of one connection.
#[derive(Debug)]
pub(crate) struct Deadlines {
    opts: Options,
    started: Instant,
    last_input: Instant,
    last_message: Instant,
    ping_sent: Option<Instant>,
    /// The idle release happened since the last input.
    released: bool,
    closing_since: Option<Instant>,
    closed_since: Option<Instant>,
}

const PING_PAYLOAD: &[u8] = b"hybi-keepalive";

fn at(base: Instant, d: Option<Duration>) -> Option<Instant> {
    d.and_then(|d| base.checked_add(d))
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Deadlines {
    pub(crate) fn new(opts: Options, now: Instant) -> Self {
        Self {
            opts,
            started: now,
            last_input: now,
            last_message: now,
            ping_sent: None,
            released: false,
            closing_since: None,
            closed_since: None,
        }
    }

    pub(crate) fn options(&self) -> &Options {
        &self.opts
    }

    /// Input arrived: the peer is alive.
    pub(crate) fn on_input(&mut self, now: Instant) {
        self.last_input = now;
        self.ping_sent = None;
        self.released = false;
    }

    /// A message was delivered. It came with the last input, so that is its time (no clock
    /// read per message).
    pub(crate) fn on_message(&mut self) {
        self.last_message = self.last_input;
    }

    /// Notes state changes (call after every step); reads the clock only when the state
    /// changed.
    pub(crate) fn observe(&mut self, now: impl FnOnce() -> Instant, conn: &Connection) {
        match conn.state() {
            State::Closing if self.closing_since.is_none() => self.closing_since = Some(now()),
            State::Closed if self.closed_since.is_none() => self.closed_since = Some(now()),
            _ => {}
        }
    }

    /// When the adapter must wake up next, if ever.
    pub(crate) fn next(&self, conn: &Connection) -> Option<Instant> {
        let o = &*self.opts.inner;
        match conn.state() {
            State::Connecting => at(self.started, o.handshake_timeout),
            State::Open => {
                let keepalive = match self.ping_sent {
                    None => at(self.last_input, o.ping_interval),
                    Some(sent) => at(sent, o.pong_timeout),
                };
                let release = match self.released {
                    false => at(self.last_input, o.release_after),
                    true => None,
                };
                earliest(
                    earliest(keepalive, at(self.last_message, o.idle_timeout)),
                    release,
                )
            }
            State::Closing => at(
                self.closing_since.unwrap_or(self.last_input),
                o.close_timeout,
            ),
            State::Closed => at(
                self.closed_since.unwrap_or(self.last_input),
                o.close_timeout,
            ),
        }
    }

    /// Acts on every deadline that has passed by `now`. Returns `true` when the wait for EOF
    /// after the close is over (the adapter should stop reading and drop the transport).
    pub(crate) fn fire(&mut self, now: Instant, conn: &mut Connection) -> bool {
        let o = Arc::clone(&self.opts.inner);
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        match conn.state() {
            State::Connecting => {
                if due(at(self.started, o.handshake_timeout)) {
                    conn.timed_out(Timeout::Handshake);
                }
            }
            State::Open => {
                if !self.released && due(at(self.last_input, o.release_after)) {
                    conn.release_idle_memory();
                    self.released = true;
                }
                if due(at(self.last_message, o.idle_timeout)) {
                    conn.timed_out(Timeout::Idle);
                } else if let Some(sent) = self.ping_sent {
                    if due(at(sent, o.pong_timeout)) {
                        conn.timed_out(Timeout::Pong);
                    }
                } else if due(at(self.last_input, o.ping_interval)) {
                    // Sending can only fail if the state changed; then there is nothing to do.
                    if conn.send_ping(PING_PAYLOAD).is_ok() {
                        self.ping_sent = Some(now);
                    }
                    // Nothing arrived for a ping interval: the connection has gone idle, and
                    // gives its buffers back until data flows again.
                    conn.release_idle_memory();
                }
            }
            State::Closing => {
                if due(at(self.closing_since.unwrap_or(now), o.close_timeout)) {
                    conn.timed_out(Timeout::Close);
                }
            }
            State::Closed => return due(self.next(conn)),
        }
        self.observe(|| now, conn);
        false
    }
}
