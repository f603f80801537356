//! A fan-out load tool for any `ws://` broadcast server: a server that sends every message any
//! client sends to ALL of its connected clients, the sender included
//! (`examples/broadcast_server.rs`, `examples/broadcast_tungstenite.rs`,
//! `examples/broadcast_sockudo.rs`, `tests/interop/node/broadcast_server.mjs`).
//!
//! ```text
//! cargo build --release --example fanout --example broadcast_server
//! taskset -c 0 target/release/examples/broadcast_server --port 9010 --workers 1 &
//! taskset -c 1 target/release/examples/fanout --url ws://127.0.0.1:9010/ \
//!     --clients 1000 --size 64 --seconds 5 --pid $(pgrep -n broadcast_serv)
//! taskset -c 1 target/release/examples/fanout --url ws://127.0.0.1:9010/ \
//!     --clients 1000 --mode rate --rate 200 --seconds 5 [--deflate] [--binary] [--json]
//! ```
//!
//! # Flags
//!
//! ```text
//! --url ws://HOST:PORT/   the broadcast server (default ws://127.0.0.1:9010/)
//! --clients N             connections (default 100)
//! --size BYTES            message size, at least 41 (default 64)
//! --seconds T             measured time (default 5; round mode: at least one round)
//! --warmup W              unmeasured traffic first (default 1)
//! --mode round|rate       see below (default round); rate needs --rate R (broadcasts/s)
//! --pid SERVER_PID        report the server's CPU time
//! --deflate               offer permessage-deflate with server_no_context_takeover and
//!                         client_no_context_takeover (a server may compress once for all)
//! --binary                binary messages (default text)
//! --json                  also print one JSON object
//! --connect-rate C        at most C new connections per second (default: no limit)
//! --threads N             tokio worker threads of this tool (default 1)
//! --stall S               give up when nothing arrives for S seconds (default 5)
//! ```
//!
//! # Modes
//!
//! * `--mode round` (default), as uWebSockets' `broadcast_test`: each round every client sends
//!   one message, and the round ends when every client has received all N messages of the round
//!   (N² deliveries); rounds repeat for `--seconds` (at least one measured round). The latency
//!   of a round includes the wait behind the other N - 1 messages of the round. A slow round is
//!   waited for as long as deliveries keep arriving (`--stall`).
//! * `--mode rate --rate R`: one broadcast every 1/R s (open loop: a late tick is caught up, not
//!   skipped), the sender rotating over the clients, for `--seconds`.
//!
//! Every message carries a kind byte, its sender's id, the sender's sequence number and the
//! send time (nanoseconds on one monotonic clock in this process), in 41 bytes of ASCII hex,
//! padded with pseudo-random words to `--size` bytes (so `--deflate` has text to compress; at
//! least 41). Text messages unless `--binary`.
//!
//! # Procedure
//!
//! 1. Connect `--clients` clients (at most 64 handshakes in flight, at most `--connect-rate`
//!    per second if given, so that a listen backlog is not overrun).
//! 2. Membership: client 0 sends a warm-up broadcast every 100 ms until every client has seen
//!    one, so that the server has registered them all. Warm-up broadcasts are not checked.
//! 3. `--warmup` seconds (default 1) of traffic in the chosen mode, not measured (but checked;
//!    in round mode: rounds until that much time has passed, none with `--warmup 0`).
//! 4. `--seconds` of measured traffic, then no more sends; the tool waits until every client has
//!    received every message (or nothing arrives for `--stall` seconds), and closes.
//!
//! # Output
//!
//! One summary line: deliveries/s (messages received by clients per second), broadcasts sent,
//! send-to-receipt latency p50/p99/max in µs (log-linear histogram, 1.6% resolution), with
//! `--pid` the server's CPU time (user + system, from `/proc/PID/stat`, all its threads) per
//! delivery and as a share of one core, this tool's own CPU share, and the CHECK: every client
//! got every message, per sender in order, without duplicates or gaps, of the right type and
//! size. Any violation is printed with its counts and makes the exit status 1. `--json` also
//! prints the same as one JSON object on its own line.
//!
//! # Threads
//!
//! The tool runs one tokio runtime with `--threads` workers (default 1: a current-thread
//! runtime). On a 2-core machine give the server one core and one worker
//! (`taskset -c 0 ... --workers 1`; Node is single-threaded anyway) and the tool the other
//! (`taskset -c 1 fanout --threads 1`), and look at `tool_cpu`: near 100% means the tool, not the
//! server, may be the limit.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use hybi::tokio::{MaybeTlsStream, WebSocketStream};
use hybi::{ClientRequest, CloseCode, Config, DeflateConfig, Error, Message, Timeouts, Utf8Bytes};
use tokio::sync::{Notify, Semaphore};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Round,
    Rate,
}

struct Args {
    url: String,
    clients: usize,
    size: usize,
    seconds: f64,
    warmup: f64,
    mode: Mode,
    rate: f64,
    pid: Option<u32>,
    deflate: bool,
    binary: bool,
    json: bool,
    connect_rate: Option<f64>,
    threads: usize,
    stall: f64,
}

fn args() -> Args {
    let mut a = Args {
        url: "ws://127.0.0.1:9010/".into(),
        clients: 100,
        size: 64,
        seconds: 5.0,
        warmup: 1.0,
        mode: Mode::Round,
        rate: 0.0,
        pid: None,
        deflate: false,
        binary: false,
        json: false,
        connect_rate: None,
        threads: 1,
        stall: 5.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--url" => a.url = value(),
            "--clients" => a.clients = value().parse().unwrap_or_else(|_| usage("N")),
            "--size" => a.size = value().parse().unwrap_or_else(|_| usage("BYTES")),
            "--seconds" => a.seconds = value().parse().unwrap_or_else(|_| usage("T")),
            "--warmup" => a.warmup = value().parse().unwrap_or_else(|_| usage("W")),
            "--mode" => {
                a.mode = match value().as_str() {
                    "round" => Mode::Round,
                    "rate" => Mode::Rate,
                    _ => usage("--mode is round or rate"),
                }
            }
            "--rate" => a.rate = value().parse().unwrap_or_else(|_| usage("R")),
            "--pid" => a.pid = Some(value().parse().unwrap_or_else(|_| usage("PID"))),
            "--deflate" => a.deflate = true,
            "--binary" => a.binary = true,
            "--json" => a.json = true,
            "--connect-rate" => {
                a.connect_rate = Some(value().parse().unwrap_or_else(|_| usage("C")))
            }
            "--threads" => a.threads = value().parse().unwrap_or_else(|_| usage("THREADS")),
            "--stall" => a.stall = value().parse().unwrap_or_else(|_| usage("S")),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if a.clients == 0 || a.clients > u32::MAX as usize {
        usage("--clients must be at least 1");
    }
    if a.size < HEADER {
        usage(&format!("--size must be at least {HEADER} (the header)"));
    }
    if a.mode == Mode::Rate && a.rate <= 0.0 {
        usage("--mode rate needs --rate R (broadcasts per second, > 0)");
    }
    if a.threads == 0 {
        usage("--threads must be at least 1");
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "{msg}\nusage: fanout [--url ws://HOST:PORT/] [--clients N] [--size BYTES] [--seconds T] \
         [--warmup W] [--mode round | --mode rate --rate R] [--pid SERVER_PID] [--deflate] \
         [--binary] [--json] [--connect-rate C] [--threads THREADS] [--stall S]"
    );
    std::process::exit(2)
}

#[path = "support/procstat.rs"]
mod procstat;
use procstat::{cpu_ticks, TICKS_PER_SEC};

// ------------------------------------------------------------------------------ messages

/// Kind byte + 8 hex digits of sender id + 16 of sequence number + 16 of send time (ns).
const HEADER: usize = 41;
/// A measured message.
const KIND_MEASURED: u8 = b'M';
/// A warm-up broadcast (membership), not checked.
const KIND_WARMUP: u8 = b'W';

fn put_hex(dst: &mut [u8], value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let n = dst.len();
    for (i, d) in dst.iter_mut().enumerate() {
        *d = DIGITS[((value >> (4 * (n - 1 - i))) & 0xf) as usize];
    }
}

fn get_hex(src: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &c in src {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

struct Header {
    kind: u8,
    sender: u32,
    seq: u64,
    sent_ns: u64,
}

fn parse_header(b: &[u8]) -> Option<Header> {
    if b.len() < HEADER {
        return None;
    }
    Some(Header {
        kind: b[0],
        sender: get_hex(&b[1..9])? as u32,
        seq: get_hex(&b[9..25])?,
        sent_ns: get_hex(&b[25..41])?,
    })
}

/// Padding of pseudo-random words (ASCII, so valid as text), different for every sender.
fn padding(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "the", "price", "of", "quote", "room", "update", "user", "joined", "message", "value",
        "delta", "ticker", "channel", "online", "status", "level", "alpha", "beta", "count",
        "time", "event", "stream", "data", "ok",
    ];
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(WORDS[(state % WORDS.len() as u64) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

/// A sender's message template: the header is written over its first bytes per message.
struct Template {
    bytes: Vec<u8>,
    binary: bool,
}

impl Template {
    fn message(&self, kind: u8, sender: u32, seq: u64, sent_ns: u64) -> Message {
        let mut b = self.bytes.clone();
        b[0] = kind;
        put_hex(&mut b[1..9], sender as u64);
        put_hex(&mut b[9..25], seq);
        put_hex(&mut b[25..41], sent_ns);
        if self.binary {
            Message::Binary(Bytes::from(b))
        } else {
            let text = String::from_utf8(b).expect("ASCII");
            Message::Text(Utf8Bytes::from(text))
        }
    }
}

// ------------------------------------------------------------------------------ latency

/// A log-linear histogram of microseconds: exact below 64, then 64 buckets per power of two.
struct Histogram {
    counts: Vec<u32>,
    max: u64,
}

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const TOP_BIT: u32 = 36;
const BUCKETS: usize = SUB + (TOP_BIT - SUB_BITS + 1) as usize * SUB;

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        let v = v.min((1 << (TOP_BIT + 1)) - 1);
        if v < SUB as u64 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let sub = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
        SUB + (e - SUB_BITS) as usize * SUB + sub
    }

    /// The smallest value of bucket `i`.
    fn value(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let j = i - SUB;
        let e = (j / SUB) as u32 + SUB_BITS;
        ((SUB + j % SUB) as u64) << (e - SUB_BITS)
    }

    fn record(&mut self, us: u64) {
        self.counts[Self::index(us)] += 1;
        self.max = self.max.max(us);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.max = self.max.max(other.max);
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|&c| c as u64).sum()
    }

    fn percentile(&self, p: f64) -> u64 {
        let total = self.total();
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= rank {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }
}

// ------------------------------------------------------------------------------ clients

/// What the coordinator and one client share.
struct Ctl {
    /// Measured messages this client is asked to send.
    pending: AtomicU32,
    /// A warm-up broadcast is asked for.
    warmup: AtomicBool,
    waker: AtomicWaker,
    /// Measured messages received (each new one once; duplicates not counted).
    delivered: AtomicU64,
}

impl Ctl {
    fn poke(&self) {
        self.waker.wake();
    }
}

/// What all clients share.
struct Shared {
    t0: Instant,
    clients: usize,
    size: usize,
    binary: bool,
    mode: Mode,
    ctl: Vec<Ctl>,
    /// Latencies are recorded while this is set.
    measuring: AtomicBool,
    /// Set when the clients should close.
    finish: AtomicBool,
    /// Clients that have seen a warm-up broadcast.
    warm_seen: AtomicUsize,
    /// Clients that have received every message of the current round.
    round_done: AtomicUsize,
    round_notify: Notify,
    /// Clients connected (or failed to).
    connected: AtomicUsize,
    connect_notify: Notify,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
}

/// What one client found.
struct Report {
    /// Per sender: the next sequence number expected (= messages received in order).
    next: Vec<u32>,
    /// Messages skipped over (a higher sequence number arrived first).
    gaps: u64,
    /// Messages with a sequence number lower than expected: duplicates or reordered.
    dup_or_reordered: u64,
    /// Messages of the wrong type or size, or an unreadable header.
    malformed: u64,
    hist: Histogram,
    deflate: bool,
    error: Option<String>,
}

impl Report {
    fn failed(clients: usize, error: String) -> Self {
        Self {
            next: vec![0; clients],
            gaps: 0,
            dup_or_reordered: 0,
            malformed: 0,
            hist: Histogram::new(),
            deflate: false,
            error: Some(error),
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream>;

/// The closing handshake: our close frame, then everything up to the server's close and EOF.
async fn close(ws: &mut Ws) -> Result<(), Error> {
    ws.close_with(CloseCode::NORMAL, "").await?;
    loop {
        if let Err(e) = ws.recv().await {
            return if e.is_normal_close() { Ok(()) } else { Err(e) };
        }
    }
}

async fn connect(url: &str, deflate: bool) -> Result<(Ws, bool), Error> {
    let mut config = Config::default();
    if deflate {
        config = config.with_deflate(
            DeflateConfig::default()
                .with_server_no_context_takeover(true)
                .with_client_no_context_takeover(true),
        );
    }
    // No keepalive: a loaded server's late pong must not end a measurement.
    let options = Timeouts::default()
        .with_ping_interval(None)
        .with_pong_timeout(None);
    let (ws, response) = hybi::tokio::connect_with(
        ClientRequest::new(url)?,
        hybi::ConnectOptions::default()
            .with_config(config)
            .with_timeouts(options),
    )
    .await?;
    let negotiated = response
        .extensions()
        .iter()
        .any(|e| e.trim_start().starts_with("permessage-deflate"));
    Ok((ws, negotiated))
}

enum Step {
    Send(u32),
    Warmup,
    Finish,
    In(Result<Message, Error>),
}

/// One client: sends what the coordinator asks for, checks every message it receives.
async fn client(
    me: usize,
    sh: Arc<Shared>,
    url: String,
    deflate: bool,
    gate: Arc<Semaphore>,
) -> Report {
    let n = sh.clients;
    let connecting = {
        let _permit = gate.acquire().await;
        connect(&url, deflate).await
    };
    sh.connected.fetch_add(1, Ordering::AcqRel);
    sh.connect_notify.notify_one();
    let (mut ws, negotiated) = match connecting {
        Ok(c) => c,
        Err(e) => return Report::failed(n, format!("connect: {e}")),
    };
    let template = Template {
        bytes: padding(sh.size, me as u64 + 1),
        binary: sh.binary,
    };
    let ctl = &sh.ctl[me];
    let mut report = Report {
        next: vec![0; n],
        gaps: 0,
        dup_or_reordered: 0,
        malformed: 0,
        hist: Histogram::new(),
        deflate: negotiated,
        error: None,
    };
    let mut seq = 0u64;
    let mut warm_seq = 0u64;
    let mut seen_warmup = false;
    let mut delivered = 0u64;
    let mut this_round = 0usize;
    loop {
        let step = poll_fn(|cx| {
            ctl.waker.register(cx.waker());
            if sh.finish.load(Ordering::Acquire) {
                return Poll::Ready(Step::Finish);
            }
            let k = ctl.pending.swap(0, Ordering::AcqRel);
            if k > 0 {
                return Poll::Ready(Step::Send(k));
            }
            if ctl.warmup.swap(false, Ordering::AcqRel) {
                return Poll::Ready(Step::Warmup);
            }
            ws.poll_recv(cx).map(Step::In)
        })
        .await;
        let msg = match step {
            Step::Finish => break,
            Step::Send(k) => {
                for _ in 0..k {
                    let m = template.message(KIND_MEASURED, me as u32, seq, sh.now_ns());
                    seq += 1;
                    if let Err(e) = ws.queue(m) {
                        report.error = Some(format!("send: {e}"));
                        return report;
                    }
                }
                // The next poll of the connection writes it.
                continue;
            }
            Step::Warmup => {
                let m = template.message(KIND_WARMUP, me as u32, warm_seq, sh.now_ns());
                warm_seq += 1;
                if let Err(e) = ws.queue(m) {
                    report.error = Some(format!("send: {e}"));
                    return report;
                }
                continue;
            }
            Step::In(Ok(m)) => m,
            Step::In(Err(e)) => {
                report.error = Some(format!("connection: {e}"));
                return report;
            }
        };
        let now_ns = sh.now_ns();
        let bytes = msg.as_bytes();
        let right_type = matches!(msg, Message::Binary(_)) == sh.binary;
        let Some(h) = parse_header(bytes).filter(|_| right_type && bytes.len() == sh.size) else {
            report.malformed += 1;
            continue;
        };
        if h.kind == KIND_WARMUP {
            if !seen_warmup {
                seen_warmup = true;
                sh.warm_seen.fetch_add(1, Ordering::AcqRel);
            }
            continue;
        }
        if h.kind != KIND_MEASURED || h.sender as usize >= n {
            report.malformed += 1;
            continue;
        }
        let expected = &mut report.next[h.sender as usize];
        if h.seq < *expected as u64 {
            report.dup_or_reordered += 1;
            continue;
        }
        report.gaps += h.seq - *expected as u64;
        *expected = (h.seq + 1) as u32;
        delivered += 1;
        ctl.delivered.store(delivered, Ordering::Release);
        if sh.measuring.load(Ordering::Relaxed) {
            report.hist.record(now_ns.saturating_sub(h.sent_ns) / 1000);
        }
        if sh.mode == Mode::Round {
            this_round += 1;
            if this_round == n {
                this_round = 0;
                if sh.round_done.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    sh.round_notify.notify_one();
                }
            }
        }
    }
    // Close; the server closes TCP first. Bounded, so that one stuck peer cannot hang the tool.
    match tokio::time::timeout(Duration::from_secs(5), close(&mut ws)).await {
        Ok(Err(e)) => report.error = Some(format!("close: {e}")),
        Ok(Ok(())) => {}
        Err(_) => report.error = Some("close: no close handshake within 5 s".into()),
    }
    report
}

// ------------------------------------------------------------------------------ coordinator

fn delivered(sh: &Shared) -> u64 {
    sh.ctl
        .iter()
        .map(|c| c.delivered.load(Ordering::Acquire))
        .sum()
}

/// Asks client `i` for one measured message.
fn issue(sh: &Shared, issued: &mut [u64], i: usize) {
    issued[i] += 1;
    sh.ctl[i].pending.fetch_add(1, Ordering::AcqRel);
    sh.ctl[i].poke();
}

/// A snapshot at the start or the end of the measured window.
struct Mark {
    at: Instant,
    delivered: u64,
    sent: u64,
    server: Option<u64>,
    tool: Option<u64>,
}

fn mark(sh: &Shared, issued: &[u64], pid: Option<u32>) -> Mark {
    Mark {
        at: Instant::now(),
        delivered: delivered(sh),
        sent: issued.iter().sum(),
        server: pid.and_then(cpu_ticks),
        tool: cpu_ticks(std::process::id()),
    }
}

/// Runs one round; `false` when deliveries stopped for `stall` before it was complete (a slow
/// round that keeps making progress is waited for).
async fn round(sh: &Shared, issued: &mut [u64], stall: Duration) -> bool {
    sh.round_done.store(0, Ordering::Release);
    for i in 0..sh.clients {
        issue(sh, issued, i);
    }
    let mut last = delivered(sh);
    let mut last_change = Instant::now();
    loop {
        let tick = Duration::from_millis(100);
        if tokio::time::timeout(tick, sh.round_notify.notified())
            .await
            .is_ok()
        {
            return true;
        }
        let now = delivered(sh);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > stall {
            return false;
        }
    }
}

struct Outcome {
    start: Mark,
    end: Mark,
    rounds: u64,
    stalled: Option<String>,
    issued: Vec<u64>,
    reports: Vec<Report>,
}

async fn run(a: &Args) -> Result<Outcome, String> {
    let n = a.clients;
    let sh = Arc::new(Shared {
        t0: Instant::now(),
        clients: n,
        size: a.size,
        binary: a.binary,
        mode: a.mode,
        ctl: (0..n)
            .map(|_| Ctl {
                pending: AtomicU32::new(0),
                warmup: AtomicBool::new(false),
                waker: AtomicWaker::new(),
                delivered: AtomicU64::new(0),
            })
            .collect(),
        measuring: AtomicBool::new(false),
        finish: AtomicBool::new(false),
        warm_seen: AtomicUsize::new(0),
        round_done: AtomicUsize::new(0),
        round_notify: Notify::new(),
        connected: AtomicUsize::new(0),
        connect_notify: Notify::new(),
    });
    let stall = Duration::from_secs_f64(a.stall);

    // 1. Connect.
    let gate = Arc::new(Semaphore::new(64));
    let t_connect = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        if let Some(rate) = a.connect_rate.filter(|r| *r > 0.0) {
            tokio::time::sleep_until((t_connect + Duration::from_secs_f64(i as f64 / rate)).into())
                .await;
        }
        tasks.push(tokio::spawn(client(
            i,
            sh.clone(),
            a.url.clone(),
            a.deflate,
            gate.clone(),
        )));
    }
    while sh.connected.load(Ordering::Acquire) < n {
        sh.connect_notify.notified().await;
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();

    let finish = |sh: &Arc<Shared>| {
        sh.finish.store(true, Ordering::Release);
        for c in &sh.ctl {
            c.poke();
        }
    };
    let collect = |tasks: Vec<tokio::task::JoinHandle<Report>>| async move {
        let mut reports = Vec::with_capacity(tasks.len());
        for t in tasks {
            reports.push(
                t.await
                    .unwrap_or_else(|e| Report::failed(n, format!("task: {e}"))),
            );
        }
        reports
    };
    let failed = tasks.iter().filter(|t| t.is_finished()).count();
    if failed > 0 {
        finish(&sh);
        let reports = collect(tasks).await;
        let first = reports
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_default();
        return Err(format!(
            "{failed} of {n} clients failed to connect (first: {first})"
        ));
    }

    // 2. Membership: warm-up broadcasts from client 0 until everybody has seen one.
    let t_warm = Instant::now();
    let limit = Duration::from_secs(30);
    while sh.warm_seen.load(Ordering::Acquire) < n {
        if t_warm.elapsed() > limit {
            finish(&sh);
            let seen = sh.warm_seen.load(Ordering::Acquire);
            collect(tasks).await;
            return Err(format!(
                "only {seen} of {n} clients saw a warm-up broadcast within {limit:?}"
            ));
        }
        sh.ctl[0].warmup.store(true, Ordering::Release);
        sh.ctl[0].poke();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{n} clients connected in {connect_secs:.2} s, all registered after {:.2} s",
        t_warm.elapsed().as_secs_f64()
    );

    // 3. Warm-up traffic, then 4. the measured window.
    let mut issued = vec![0u64; n];
    let mut stalled = None;
    let mut rounds = 0u64;
    let (start, end) = match a.mode {
        Mode::Round => {
            let t = Instant::now();
            let mut warm_rounds = 0;
            while t.elapsed().as_secs_f64() < a.warmup {
                if !round(&sh, &mut issued, stall).await {
                    stalled = Some(format!("warm-up round {warm_rounds} stalled"));
                    break;
                }
                warm_rounds += 1;
            }
            sh.measuring.store(true, Ordering::Release);
            let start = mark(&sh, &issued, a.pid);
            while stalled.is_none() && (rounds == 0 || start.at.elapsed().as_secs_f64() < a.seconds)
            {
                if !round(&sh, &mut issued, stall).await {
                    stalled = Some(format!(
                        "round {rounds} stalled: {} of {n} clients got all {n} messages, then \
                         nothing arrived for {stall:?}",
                        sh.round_done.load(Ordering::Acquire)
                    ));
                    break;
                }
                rounds += 1;
            }
            let end = mark(&sh, &issued, a.pid);
            sh.measuring.store(false, Ordering::Release);
            (start, end)
        }
        Mode::Rate => {
            let period = Duration::from_secs_f64(1.0 / a.rate);
            let t = tokio::time::Instant::now();
            let measure_at = t + Duration::from_secs_f64(a.warmup);
            let end_at = measure_at + Duration::from_secs_f64(a.seconds);
            let mut k: u64 = 0;
            let mut start = None;
            loop {
                let due = t + period.mul_f64(k as f64);
                if due >= end_at {
                    break;
                }
                if start.is_none() && due >= measure_at {
                    tokio::time::sleep_until(measure_at).await;
                    sh.measuring.store(true, Ordering::Release);
                    start = Some(mark(&sh, &issued, a.pid));
                }
                tokio::time::sleep_until(due).await;
                // Every broadcast due by now (a late tick is caught up, not skipped).
                let now = tokio::time::Instant::now();
                loop {
                    let due = t + period.mul_f64(k as f64);
                    if due > now || due >= end_at || (start.is_none() && due >= measure_at) {
                        break;
                    }
                    issue(&sh, &mut issued, (k % n as u64) as usize);
                    k += 1;
                }
            }
            if start.is_none() {
                tokio::time::sleep_until(measure_at).await;
                sh.measuring.store(true, Ordering::Release);
                start = Some(mark(&sh, &issued, a.pid));
            }
            tokio::time::sleep_until(end_at).await;
            let end = mark(&sh, &issued, a.pid);
            sh.measuring.store(false, Ordering::Release);
            (start.expect("the window started"), end)
        }
    };

    // Drain: until everybody has everything, or nothing arrives for `stall`.
    let total: u64 = issued.iter().sum();
    let want = total * n as u64;
    let mut last = delivered(&sh);
    let mut last_change = Instant::now();
    while last < want {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = delivered(&sh);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > stall {
            break;
        }
    }
    finish(&sh);
    let reports = collect(tasks).await;
    Ok(Outcome {
        start,
        end,
        rounds,
        stalled,
        issued,
        reports,
    })
}

fn main() -> std::process::ExitCode {
    let a = args();
    let rt = if a.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads)
            .enable_all()
            .build()
    }
    .expect("runtime");
    let outcome = match rt.block_on(run(&a)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fanout: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    summarize(&a, outcome)
}

fn summarize(a: &Args, o: Outcome) -> std::process::ExitCode {
    let n = a.clients;
    let secs = o.end.at.duration_since(o.start.at).as_secs_f64();
    let deliveries = o.end.delivered - o.start.delivered;
    let sent = o.end.sent - o.start.sent;

    // The check: every client, every sender, every sequence number.
    let mut hist = Histogram::new();
    let (mut missing, mut gaps, mut dups, mut malformed, mut excess) = (0u64, 0, 0, 0, 0u64);
    let mut errors = Vec::new();
    let mut deflated = 0;
    for r in &o.reports {
        hist.merge(&r.hist);
        gaps += r.gaps;
        dups += r.dup_or_reordered;
        malformed += r.malformed;
        deflated += r.deflate as usize;
        if let Some(e) = &r.error {
            errors.push(e.clone());
        }
        for (&got, &want) in r.next.iter().zip(&o.issued) {
            let got = got as u64;
            if got < want {
                missing += want - got;
            } else {
                excess += got - want;
            }
        }
    }
    // Gaps are counted when a later message arrives; what never arrived at all is `missing`
    // (a gap that was later filled by a reordered message shows as both, and as a dup).
    let ok = missing == 0
        && gaps == 0
        && dups == 0
        && malformed == 0
        && excess == 0
        && errors.is_empty()
        && o.stalled.is_none();

    let server = match (o.start.server, o.end.server) {
        (Some(c0), Some(c1)) if deliveries > 0 => Some((
            (c1 - c0) as f64 / TICKS_PER_SEC * 1e6 / deliveries as f64,
            (c1 - c0) as f64 / TICKS_PER_SEC / secs * 100.0,
        )),
        _ => None,
    };
    let tool = match (o.start.tool, o.end.tool) {
        (Some(c0), Some(c1)) => Some((c1 - c0) as f64 / TICKS_PER_SEC / secs * 100.0),
        _ => None,
    };
    let (p50, p99, max) = (hist.percentile(0.50), hist.percentile(0.99), hist.max);
    let mode = match a.mode {
        Mode::Round => format!("round rounds={}", o.rounds),
        Mode::Rate => format!(
            "rate offered={}/s achieved={:.0}/s",
            a.rate,
            sent as f64 / secs
        ),
    };
    let mut line = format!(
        "fanout {mode} clients={n} size={} {} deflate={} secs={secs:.2}: deliveries/s={:.0} \
         sent={sent} p50_us={p50} p99_us={p99} max_us={max}",
        a.size,
        if a.binary { "binary" } else { "text" },
        if a.deflate {
            format!("{deflated}/{n}")
        } else {
            "off".into()
        },
        deliveries as f64 / secs,
    );
    if let Some((per, share)) = server {
        line.push_str(&format!(
            " server_cpu_us/delivery={per:.3} server_cpu={share:.0}%"
        ));
    }
    if let Some(share) = tool {
        line.push_str(&format!(" tool_cpu={share:.0}%"));
    }
    if ok {
        line.push_str(" CHECK ok");
    } else {
        line.push_str(&format!(
            " CHECK FAILED: missing={missing} gaps={gaps} dup_or_reordered={dups} \
             malformed={malformed} excess={excess} errors={}",
            errors.len()
        ));
    }
    println!("{line}");
    if let Some(s) = &o.stalled {
        println!("stalled: {s}");
    }
    for e in errors.iter().take(5) {
        println!("client error: {e}");
    }
    if errors.len() > 5 {
        println!("... and {} more client errors", errors.len() - 5);
    }
    if a.json {
        let json = serde_json::json!({
            "mode": if a.mode == Mode::Round { "round" } else { "rate" },
            "clients": n,
            "size": a.size,
            "binary": a.binary,
            "deflate": a.deflate,
            "deflate_negotiated": deflated,
            "rate_offered": (a.mode == Mode::Rate).then_some(a.rate),
            "rounds": (a.mode == Mode::Round).then_some(o.rounds),
            "seconds": secs,
            "deliveries": deliveries,
            "deliveries_per_s": deliveries as f64 / secs,
            "sent": sent,
            "latency_us": { "p50": p50, "p99": p99, "max": max },
            "server_cpu_us_per_delivery": server.map(|s| s.0),
            "server_cpu_pct": server.map(|s| s.1),
            "tool_cpu_pct": tool,
            "check": {
                "ok": ok,
                "missing": missing,
                "gaps": gaps,
                "dup_or_reordered": dups,
                "malformed": malformed,
                "excess": excess,
                "errors": errors.len(),
                "stalled": o.stalled,
            },
        });
        println!("{json}");
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
