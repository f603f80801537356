//! A multi-room chat that real browsers use, on one machine or on several sharing one Redis:
//! the main example of `hybi`.
//!
//! ```text
//! cargo run --example chat_server                        # http://127.0.0.1:8080/
//! cargo run --example chat_server -- --addr 0.0.0.0:9000
//! cargo run --example chat_server -- --port 0            # any free port (printed)
//! CHAT_ADDR=127.0.0.1:9000 cargo run --example chat_server   # or PORT=9000
//! cargo run --example chat_server -- --tls-self-signed   # https://127.0.0.1:8080/, HTTP/1.1 + HTTP/2
//! cargo run --example chat_server -- --tls-cert cert.pem --tls-key key.pem --addr 0.0.0.0:8443
//!
//! redis-server --port 6379 --save '' --appendonly no &   # several instances, one chat:
//! cargo run --example chat_server -- --port 8080 --redis redis://127.0.0.1:6379 &
//! cargo run --example chat_server -- --port 8081 --redis redis://127.0.0.1:6379 &
//! ```
//!
//! Open the printed address in a few browser tabs (`/?room=NAME` picks a room). Once ready the
//! server prints `chat server listening on http://ADDR/` (`https://` with TLS; tests and CI
//! wait for that line).
//! Ctrl-C or SIGTERM closes every client with 1001 "server shutting down", waits up to 3 s for
//! their close handshakes and exits with status 0.
//!
//! # Flags
//!
//! ```text
//! --addr HOST:PORT, --port N   where to listen (CHAT_ADDR / PORT; default 127.0.0.1:8080)
//! --redis redis://HOST:PORT    share the rooms with every instance on this Redis (REDIS_URL)
//! --redis-prefix P             prefix of every Redis key and of the channel (default chat:)
//! --presence-ttl SECS          an instance's presence lives this long without a heartbeat
//!                              (default 15; heartbeats every third of it)
//! --allow-origin ORIGIN        another origin allowed to open the chat (repeatable)
//! --rate N --burst B           per-client token bucket (default 20 messages/s, burst 40;
//!                              --rate 0 turns it off, e.g. for load tests)
//! --queue-budget BYTES         per-client outbox budget (default 1 MiB)
//! --max-unjoined N             WebSocket connections that have not joined (default 1024)
//! --join-timeout SECS          to send the join (default 10)
//! --header-timeout SECS        to send the HTTP request head (default 10)
//! --workers N                  tokio worker threads (default: one per core)
//! --no-deflate                 do not negotiate permessage-deflate
//! --tls-cert FILE --tls-key FILE
//!                              serve HTTPS (and wss://) with this PEM certificate chain and
//!                              key: HTTP/1.1 and HTTP/2 (ALPN h2, http/1.1) on the same port
//! --tls-self-signed            the same with a certificate made at start for localhost,
//!                              127.0.0.1, ::1 and the --addr host (browsers warn; headless
//!                              Chromium takes --ignore-certificate-errors)
//! --quiet                      with TLS, do not log each WebSocket (by default one line on
//!                              stderr: "websocket opened over HTTP/1.1 ..." or "... HTTP/2 ...")
//! ```
//!
//! # HTTP (axum on hyper's HTTP/1 server; with TLS, HTTP/1.1 and HTTP/2)
//!
//! With `--tls-*` every connection is TLS (a handshake not done within the header timeout
//! closes it), then HTTP/1.1 or HTTP/2 as ALPN chose. HTTP/2 allows extended CONNECT (RFC
//! 8441), so a browser that loaded the page over HTTP/2 opens `/chat` on the same connection
//! (answered 200, not 101); the connection has no idle timeout, since a browser uses HTTP/2
//! for a WebSocket only on a connection that is still open.
//!
//! ```text
//! GET /  (or /index.html)  the page, examples/chat/index.html; /chat.js and /chat.css beside it
//!                          (HEAD works too; every asset has a Content-Security-Policy that
//!                          allows only itself, and X-Content-Type-Options: nosniff)
//! GET /chat + Upgrade      WebSocket, subprotocol "chat" (400 without it)
//!                          403 when the Origin header is neither the page's own origin (as
//!                          given by Host) nor an --allow-origin; no Origin (a non-browser
//!                          client) is allowed
//!                          503 when --max-unjoined connections are waiting to join
//! CONNECT /chat            the same over HTTP/2 (:protocol websocket), 200 instead of 101
//! GET /chat, no Upgrade    426 Upgrade Required
//! GET /stats               {"websockets":{"http1":N,"http2":M}}: the WebSockets opened so
//!                          far over HTTP/1.1 and over HTTP/2
//! anything else            404 (405 for another method on /)
//! ```
//!
//! Bytes that are not HTTP (a TLS ClientHello on this plain port) get 400 at once and the
//! connection is closed; a request head that has not arrived after 10 s closes the connection
//! (no CPU is spent while it waits).
//!
//! # Protocol
//!
//! Client → server: text frames hold JSON objects, binary frames hold raw bytes.
//!
//! ```text
//! {"type":"join","nick":N,"room":R,"since":ID}
//!     must be the first message, within 10 s (else error + close 1008 "join timeout").
//!     nick: NFKC-normalized and trimmed, 1-32 characters, no control, zero-width, bidi or
//!       other invisible formatting characters; unique per room, case-insensitively, across
//!       all instances.
//!     room: optional, default "lobby"; 1-32 of a-z 0-9 - _ . (case-insensitive: lowercased).
//!     since: optional, the id of the last message the client has: the welcome's history then
//!       holds exactly the room's messages after it (up to the last 50 kept).
//!     One room per connection.
//! {"type":"message","text":S}     S: at most 4000 characters
//! <binary frame>                  at most 65536 bytes, broadcast to the room
//! {"type":"who","after":CURSOR}   the next page of the member list (CURSOR from "next")
//! {"type":"history","since":ID}   the kept messages after ID (to fill a gap)
//! ```
//!
//! Server → client; every object about a room names it in "room":
//!
//! ```text
//! {"type":"welcome","room":R,"nick":N,"online":[..],"count":C,"next":CURSOR|null,
//!  "last_id":L,"truncated":false,"history":[..]}
//!     only to the joiner, first. online: the first 100 members in join order (the joiner
//!     included); count: the room's size; next: when there are more, the cursor to ask for
//!     them with "who". history: message/binary objects, oldest first: the last 50, or with
//!     "since" those after it (truncated: true when some of those are no longer kept).
//!     last_id: the room's newest message id (0: none); a last_id below the client's since
//!     means the server lost the room's history (a restart without Redis).
//! {"type":"join","room":R,"nick":N,"count":C,"ts":T}    a member joined (the joiner gets its own)
//! {"type":"leave","room":R,"nick":N,"count":C,"ts":T}   a member left
//! {"type":"presence","room":R,"changes":[{"type":"join","nick":N},{"type":"leave",..}],
//!  "count":C,"ts":T}
//!     several changes at once, in order (a join or leave storm is coalesced: see below)
//! {"type":"message","room":R,"id":ID,"from":N,"text":S,"ts":T}   to the room, the sender too
//! {"type":"binary","room":R,"id":ID,"from":N,"size":K,"ts":T}
//!     to the room, the sender too, IMMEDIATELY followed by one binary frame of those K bytes
//! {"type":"who","room":R,"online":[..],"count":C,"next":CURSOR|null}   answer to "who"
//! {"type":"history","room":R,"since":ID,"last_id":L,"truncated":B,"history":[..]}
//! {"type":"error","text":S}         ("room":R too when it is about the room)
//! ```
//!
//! `ts` is milliseconds since the Unix epoch. Message ids increase by one per room, across all
//! instances, in the order every member receives them. History entries are the same objects
//! as the broadcasts (binary entries are the announcement only, no bytes follow).
//!
//! **Presence deltas.** `join` and `leave` carry one nickname and the room's count, never the
//! list: a join costs each member O(1). Apply the changes in order to the welcome's list (they
//! are idempotent: a change the welcome already holds may arrive after it). Notices are
//! coalesced per room: the first change after a quiet window goes out at once, further ones
//! are gathered and sent as one `presence` object when the window ends (100 ms, growing with
//! the room to 1 s at 10,000 members), so a storm costs each member at most 10 notice frames a
//! second. Gathered changes go out before a chat message, so a newcomer's join is seen before
//! its first message.
//!
//! **Delivery guarantee.** On one instance, every member gets every message of its room once,
//! in id order, while it is connected and keeps up. Across instances, messages travel through
//! Redis pub/sub, which delivers at most once: an instance cut off from Redis misses what was
//! published meanwhile. Ids are dense per room, so a client that sees an id jump can fetch the
//! gap with `history` (or reconnect with `since`). The page does both, and reconnects by itself
//! (full-jitter backoff from 0.5 s doubling to 20 s) with `since`, so it shows no gap and no
//! duplicate across a reconnect as long as the gap is within the last 50 messages.
//!
//! **Compatibility** with the one-room protocol: `join` without `room` joins "lobby"; every old
//! object keeps its fields except `online` on `join`/`leave` (replaced by `count` and the
//! deltas) and `online` in `welcome`, which is the first page (the whole list up to 100 members).
//! New: `room`, `id`, `count`, `next`, `last_id`, `truncated`, and the `presence`, `who` and
//! `history` objects; clients should ignore unknown types and fields.
//!
//! Errors: before a successful join, anything but a valid join gets an `error` and close 1008
//! ("join first", "invalid nickname (1-32 characters)", "invalid nickname (control, invisible or
//! bidi characters)", "nickname already taken", "invalid room name ..."); when the shared state
//! is unreachable, "room temporarily unavailable, try again" and close 1013. After the join,
//! invalid JSON, a non-object, an unknown type, a second join, a bad or too long text and a too
//! large binary get an `error` and the connection stays open; so does a message sent while Redis
//! is away ("room temporarily unavailable, try again", with "room"). A frame or message over
//! 128 KiB fails the connection with 1009.
//!
//! # Limits
//!
//! Every client has a token bucket (20 messages/s, burst 40): a message over it gets the error
//! "rate limit exceeded, slow down", and a client that keeps sending anyway (40 refused, refilled
//! at 2/s) is closed with 1008 "rate limit exceeded". What a client is sent waits in its outbox,
//! bounded in bytes (1 MiB): a client that falls that far behind is closed with 1008 "too slow"
//! (it may resume with `since`); a broadcast never waits for a slow reader, and the others are
//! not affected. A client's task takes from its outbox only while less than 256 KiB of output
//! waits for its socket. Every broadcast is serialized once and its bytes shared by all
//! outboxes. On one instance at most 10,000 rooms are kept: an empty room keeps its ids and
//! history until a new room needs its place; when every room has members, a join to a new
//! room gets "room temporarily unavailable, try again" (1013). (On Redis, room keys are kept.)
//!
//! # Files
//!
//! `examples/chat/`: `protocol.rs` (validation, JSON), `rooms.rs` (this instance's rooms,
//! fan-out, presence coalescing), `bus.rs` (the `Bus` trait, and `LocalBus` in process),
//! `redis_bus.rs` (`RedisBus`: the Redis schema and its scripts), `limits.rs` (rate limit,
//! outbox), `session.rs` (one client), `http.rs` (axum router, the WebSocket glue, hyper).

#[path = "chat/bus.rs"]
pub mod bus;
#[path = "chat/http.rs"]
pub mod http;
#[path = "chat/limits.rs"]
pub mod limits;
#[path = "chat/protocol.rs"]
pub mod protocol;
#[path = "chat/redis_bus.rs"]
pub mod redis_bus;
#[path = "chat/rooms.rs"]
pub mod rooms;
#[path = "chat/session.rs"]
pub mod session;

use std::future::Future;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hybi::handshake::HttpVersion;
use hybi::tls::ServerTls;
use hybi::{Config, Timeouts};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use bus::{Bus, LocalBus};
use redis_bus::{RedisBus, RedisOptions};
use rooms::Rooms;

#[allow(unused_imports)]
pub use http::PAGE;

/// How long shutdown waits for the clients' close handshakes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The server's settings (the flags).
#[derive(Debug, Clone)]
pub struct Options {
    pub redis: Option<RedisOptions>,
    pub allow_origins: Vec<String>,
    /// Messages a second per client (0: no limit), and the burst.
    pub rate: f64,
    pub burst: f64,
    /// Bytes a client's outbox may hold before it is closed as too slow.
    pub queue_budget: usize,
    pub max_unjoined: usize,
    pub join_timeout: Duration,
    pub header_timeout: Duration,
    pub deflate: bool,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) instead of plain HTTP/1.1.
    pub tls: Option<Tls>,
    /// Print a line for each WebSocket: which HTTP version it arrived over (the command line
    /// turns it on with TLS, unless `--quiet`).
    pub log_websockets: bool,
}

/// The TLS side: the rustls configuration (ALPN h2, http/1.1) and the certificate it
/// presents (what a client must trust).
#[derive(Debug, Clone)]
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub certificate: CertificateDer<'static>,
    /// Where the certificate comes from, for the log.
    pub source: String,
}

impl Tls {
    /// From a PEM certificate chain and key (`--tls-cert`, `--tls-key`).
    pub fn from_pem_files(cert: &str, key: &str) -> Result<Self, String> {
        let tls = ServerTls::from_pem_files(cert, key).map_err(|e| format!("TLS: {e}"))?;
        Self::new(&tls, format!("the certificate of {cert}"))
    }

    /// A self-signed certificate made now (`--tls-self-signed`), for `localhost`, 127.0.0.1,
    /// ::1 and `host` (the address listened on, when it is another name or address).
    pub fn self_signed(host: &str) -> Result<Self, String> {
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        if !host.is_empty() && !names.iter().any(|n| n == host) && host != "0.0.0.0" && host != "::"
        {
            names.push(host.to_owned());
        }
        let source = format!(
            "a self-signed certificate for {} (development only: browsers warn)",
            names.join(", ")
        );
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("cannot generate a certificate: {e}"))?;
        let tls = ServerTls::from_pem(generated.cert.pem(), generated.key_pair.serialize_pem())
            .map_err(|e| format!("TLS: {e}"))?;
        Self::new(&tls, source)
    }

    fn new(tls: &ServerTls, source: String) -> Result<Self, String> {
        Ok(Self {
            config: tls.build().map_err(|e| format!("TLS: {e}"))?,
            certificate: tls.cert_chain()[0].clone(),
            source,
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            redis: None,
            allow_origins: Vec::new(),
            rate: 20.0,
            burst: 40.0,
            queue_budget: 1 << 20,
            max_unjoined: 1024,
            join_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            deflate: true,
            tls: None,
            log_websockets: false,
        }
    }
}

/// Counts the tasks of the server, to wait for them at shutdown.
#[derive(Default)]
struct Tasks {
    running: AtomicUsize,
    idle: Notify,
}

struct TaskGuard(Arc<Tasks>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A WebSocket connection that has not joined yet, counted until it does or ends.
pub struct Unjoined(Arc<AtomicUsize>);

impl Drop for Unjoined {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What every connection of the server shares.
pub struct App {
    pub rooms: Arc<Rooms>,
    pub bus: Arc<dyn Bus>,
    pub options: Options,
    pub stop: watch::Receiver<bool>,
    unjoined: Arc<AtomicUsize>,
    tasks: Arc<Tasks>,
    config: Config,
    /// WebSockets opened so far over HTTP/1.1 and over HTTP/2 (`GET /stats`).
    websockets: [AtomicU64; 2],
}

/// The WebSocket configuration. permessage-deflate: browsers offer it and chat JSON compresses
/// well; without server context takeover the compressor is dropped between messages, so an
/// idle client holds no zlib state.
fn ws_config(options: &Options) -> Config {
    let config = Config::default()
        .with_max_message_size(protocol::MAX_MESSAGE)
        .with_protocols(["chat"]);
    if options.deflate {
        config.with_deflate(hybi::DeflateConfig::default().with_server_no_context_takeover(true))
    } else {
        config
    }
}

impl App {
    /// Counts a connection that has not joined; `None` when there are too many.
    pub fn unjoined(&self) -> Option<Unjoined> {
        let max = self.options.max_unjoined;
        self.unjoined
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Unjoined(self.unjoined.clone()))
    }

    /// The WebSocket configuration, shared by every connection (a clone is a reference count).
    pub fn ws_config(&self) -> Config {
        self.config.clone()
    }

    pub fn ws_timeouts(&self) -> Timeouts {
        Timeouts::default()
    }

    /// Counts (and, unless `--quiet`, prints) a WebSocket that opened over `version`.
    pub fn opened(&self, version: HttpVersion) {
        let (i, name) = match version {
            HttpVersion::Http2 => (1, "HTTP/2 (extended CONNECT, 200)"),
            _ => (0, "HTTP/1.1 (upgrade, 101)"),
        };
        let n = self.websockets[i].fetch_add(1, Ordering::Relaxed) + 1;
        if self.options.log_websockets {
            eprintln!("websocket opened over {name} ({n} so far over this version)");
        }
    }

    /// WebSockets opened so far: (over HTTP/1.1, over HTTP/2).
    pub fn websockets(&self) -> (u64, u64) {
        (
            self.websockets[0].load(Ordering::Relaxed),
            self.websockets[1].load(Ordering::Relaxed),
        )
    }

    /// Spawns a task that shutdown waits for.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.running.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard(self.tasks.clone());
        // `map`, not an async block that awaits `task`: such a block keeps the future twice
        // (the captured one and the one being awaited), twice the memory per client.
        tokio::spawn(futures_util::FutureExt::map(task, move |()| drop(guard)));
    }
}

/// Completes once `stop` is set (owning nothing of the channel after it completes).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// How often the allocator is asked to give free memory back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Gives free heap memory back to the system. A join storm or a burst of messages grows and
/// then frees many per-connection buffers between the long-lived allocations of the clients;
/// glibc keeps those free pages in the process until asked (`malloc_trim` returns every free
/// page, not only the top of the heap). Takes a few ms for a heap of 50 MB.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long an instance waits for Redis before it says it is ready anyway.
const REDIS_READY_WAIT: Duration = Duration::from_secs(5);

/// Serves the chat on `listener` until `shutdown` completes; then stops accepting, closes every
/// client with 1001 "server shutting down" and waits (at most 3 s) for their close handshakes.
pub async fn run(
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    run_with_ready(listener, options, shutdown, || {}).await
}

/// [`run`], calling `ready` once the server is ready: at once on one instance, once connected
/// to Redis with `--redis` (or after 5 s without it: the server serves and keeps retrying).
pub async fn run_with_ready(
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> Result<(), String> {
    let rooms = Arc::new(Rooms::default());
    let (stop_tx, stop) = watch::channel(false);
    // The bus stops after the sessions, which leave through it.
    let (bus_stop_tx, bus_stop) = watch::channel(false);
    let bus: Arc<dyn Bus> = match &options.redis {
        Some(redis) => {
            let bus = RedisBus::start(redis.clone(), rooms.clone(), bus_stop)?;
            if tokio::time::timeout(REDIS_READY_WAIT, bus.ready())
                .await
                .is_err()
            {
                eprintln!("redis: not reachable yet; serving anyway and retrying");
            }
            bus
        }
        None => Arc::new(LocalBus::new(rooms.clone(), bus::MAX_ROOMS)),
    };
    ready();
    let header_timeout = options.header_timeout;
    let tasks = Arc::new(Tasks::default());
    let app = Arc::new(App {
        rooms: rooms.clone(),
        bus,
        config: ws_config(&options),
        options,
        stop: stop.clone(),
        unjoined: Arc::default(),
        tasks: tasks.clone(),
        websockets: Default::default(),
    });
    let router = http::router(app.clone());
    let tls = app
        .options
        .tls
        .as_ref()
        .map(|tls| hybi::tls::TlsAcceptor::from(tls.config.clone()));
    app.spawn({
        let mut stop = stop.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(25));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut trim = tokio::time::interval(TRIM_EVERY);
            trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => rooms.flush_presence(),
                    _ = trim.tick() => release_free_memory(),
                    _ = stopped(&mut stop) => return,
                }
            }
        }
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    app.spawn(http::serve_connection(stream, tls.clone(), router.clone(), stop.clone(), header_timeout));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off and keep serving.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    drop(router);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        loop {
            let idle = tasks.idle.notified();
            if tasks.running.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
    })
    .await;
    let _ = bus_stop_tx.send(true);
    Ok(())
}

fn usage() -> String {
    "usage: chat_server [--addr HOST:PORT] [--port PORT] [--redis redis://HOST:PORT]\n\
     \x20      [--redis-prefix P] [--presence-ttl SECS] [--allow-origin ORIGIN]...\n\
     \x20      [--rate N] [--burst N] [--queue-budget BYTES] [--max-unjoined N]\n\
     \x20      [--join-timeout SECS] [--header-timeout SECS] [--workers N] [--no-deflate]\n\
     \x20      [--tls-cert FILE --tls-key FILE | --tls-self-signed] [--quiet]\n\
     (or CHAT_ADDR / PORT / REDIS_URL in the environment; default 127.0.0.1:8080)"
        .into()
}

/// The command line: where to listen, worker threads, and the options.
pub struct Cli {
    pub host: String,
    pub port: u16,
    pub workers: Option<usize>,
    pub options: Options,
}

/// Parses the command line (without the program's name); reads the TLS files or makes the
/// self-signed certificate.
pub fn parse_args(args: Vec<String>) -> Result<Cli, String> {
    let (mut addr, mut port, mut workers) = (None, None, None);
    let mut options = Options::default();
    let mut redis_url = None;
    let mut prefix = "chat:".to_owned();
    let mut ttl = Duration::from_secs(15);
    let (mut tls_cert, mut tls_key, mut self_signed, mut quiet) = (None, None, false, false);
    let mut args = args.into_iter();
    fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
        v.parse().map_err(|_| format!("invalid {name} {v:?}"))
    }
    fn secs(name: &str, v: &str) -> Result<Duration, String> {
        let s: f64 = num(name, v)?;
        Duration::try_from_secs_f64(s).map_err(|_| format!("invalid {name} {v:?}"))
    }
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        if name == "-h" || name == "--help" {
            return Err(usage());
        }
        if name == "--no-deflate" {
            options.deflate = false;
            continue;
        }
        if name == "--tls-self-signed" {
            self_signed = true;
            continue;
        }
        if name == "--quiet" {
            quiet = true;
            continue;
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or(format!("{name} needs a value"))?;
        match name.as_str() {
            "--addr" => addr = Some(value),
            "--port" => port = Some(value),
            "--redis" => redis_url = Some(value),
            "--redis-prefix" => prefix = value,
            "--presence-ttl" => ttl = secs(&name, &value)?,
            "--allow-origin" => options.allow_origins.push(value),
            "--rate" => options.rate = num(&name, &value)?,
            "--burst" => options.burst = num(&name, &value)?,
            "--queue-budget" => options.queue_budget = num(&name, &value)?,
            "--max-unjoined" => options.max_unjoined = num(&name, &value)?,
            "--join-timeout" => options.join_timeout = secs(&name, &value)?,
            "--header-timeout" => options.header_timeout = secs(&name, &value)?,
            "--workers" => workers = Some(num(&name, &value)?),
            "--tls-cert" => tls_cert = Some(value),
            "--tls-key" => tls_key = Some(value),
            _ => return Err(format!("unknown argument {name:?} (try --help)")),
        }
    }
    // The environment fills in only what the command line left out.
    if addr.is_none() && port.is_none() {
        addr = std::env::var("CHAT_ADDR").ok();
        port = std::env::var("PORT").ok();
    }
    let redis_url = redis_url.or_else(|| std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()));
    options.redis = redis_url.map(|url| RedisOptions { url, prefix, ttl });
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8080".into());
    let (host, addr_port) = addr
        .rsplit_once(':')
        .ok_or(format!("address {addr:?} is not HOST:PORT"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = port.as_deref().unwrap_or(addr_port);
    let port = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    options.tls = match (tls_cert, tls_key, self_signed) {
        (None, None, false) => None,
        (None, None, true) => Some(Tls::self_signed(&host)?),
        (Some(cert), Some(key), false) => Some(Tls::from_pem_files(&cert, &key)?),
        (Some(_), Some(_), true) => {
            return Err("--tls-self-signed and --tls-cert/--tls-key exclude each other".into())
        }
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    // Without TLS every WebSocket is HTTP/1.1: nothing to tell.
    options.log_websockets = options.tls.is_some() && !quiet;
    Ok(Cli {
        host,
        port,
        workers,
        options,
    })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed before it returns, so a
/// signal that comes right after the "listening" line is not lost.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Raises the soft limit of open files to the hard limit (10,000 clients need 10,000 sockets).
fn raise_nofile() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The server as a command: parses the arguments (without the program's name), serves until
/// a signal.
pub fn main_with_args(args: Vec<String>) -> ExitCode {
    let cli = match parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    raise_nofile();
    let mut builder = match cli.workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind((cli.host.as_str(), cli.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {}:{}: {e}", cli.host, cli.port);
                return ExitCode::FAILURE;
            }
        };
        let signal = match shutdown_signal() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot install signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let scheme = match &cli.options.tls {
            Some(tls) => {
                eprintln!("TLS with {}; HTTP/1.1 and HTTP/2", tls.source);
                "https"
            }
            None => "http",
        };
        let ready = move || {
            println!("chat server listening on {scheme}://{addr}/");
            let _ = std::io::stdout().flush();
        };
        let shutdown = async {
            signal.await;
            eprintln!("shutting down: closing every client with 1001");
        };
        let served = run_with_ready(listener, cli.options, shutdown, ready).await;
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

#[allow(dead_code)]
fn main() -> ExitCode {
    main_with_args(std::env::args().skip(1).collect())
}
