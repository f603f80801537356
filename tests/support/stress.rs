//! Pieces of the stress suite (`tests/stress.rs`): a hard deadline around every case that fails
//! with the case's progress counters instead of hanging, runtimes of both flavours, payloads a
//! receiver can recompute, loopback sockets with small kernel buffers, and transports that read
//! slowly or in small pieces.
#![allow(dead_code)] // not every case uses every helper

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hybi::tokio::WebSocketStream;
use hybi::{CloseCode, CloseOutcome, Initiator, Message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as TCloseFrame;
use tokio_tungstenite::tungstenite::Message as TMessage;

// ------------------------------------------------------------------ progress

/// What a case has done so far, shared by its tasks and threads: counters (with the total they
/// aim at) and the last thing each party said it was doing. A case that misses its deadline
/// fails with [`Progress::report`], so a deadlock reads like "server writer sent 60/64, client
/// received 60/64, server reader: waiting in next()".
#[derive(Clone, Default)]
pub struct Progress {
    inner: Arc<ProgressInner>,
}

/// A counter's name, value and the total it aims at.
type Entry = (String, Arc<AtomicU64>, Option<u64>);

#[derive(Default)]
struct ProgressInner {
    counters: Mutex<Vec<Entry>>,
    notes: Mutex<BTreeMap<String, String>>,
    /// Run by the watchdog before it fails a case whose thread is stuck (e.g. shutting a socket
    /// down so that a blocked `write` returns and the thread ends).
    on_expiry: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

/// One counter of a [`Progress`].
#[derive(Clone)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Progress {
    /// A counter shown in the report as `name n/total` (or `name n`).
    pub fn counter(&self, name: &str, total: Option<u64>) -> Counter {
        let c = Arc::new(AtomicU64::new(0));
        lock(&self.inner.counters).push((name.to_string(), Arc::clone(&c), total));
        Counter(c)
    }

    /// Records what `who` is doing now (the last note of each party is reported).
    pub fn note(&self, who: &str, what: impl Into<String>) {
        lock(&self.inner.notes).insert(who.to_string(), what.into());
    }

    /// Something the watchdog runs before failing a stuck case.
    pub fn on_expiry(&self, f: impl FnOnce() + Send + 'static) {
        lock(&self.inner.on_expiry).push(Box::new(f));
    }

    fn run_expiry_hooks(&self) {
        let hooks = std::mem::take(&mut *lock(&self.inner.on_expiry));
        for h in hooks {
            h();
        }
    }

    /// The sum of all counters: it moves while the case makes progress.
    fn total(&self) -> u64 {
        lock(&self.inner.counters)
            .iter()
            .map(|(_, c, _)| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn report(&self) -> String {
        let mut parts = Vec::new();
        for (name, c, total) in lock(&self.inner.counters).iter() {
            let n = c.load(Ordering::Relaxed);
            parts.push(match total {
                Some(t) => format!("{name} {n}/{t}"),
                None => format!("{name} {n}"),
            });
        }
        for (who, what) in lock(&self.inner.notes).iter() {
            parts.push(format!("{who}: {what}"));
        }
        parts.join(", ")
    }
}

// ------------------------------------------------------------------ running a case

/// The stress cases run one at a time: they measure time (keepalive) and count the process's
/// descriptors (churn), and the machine has few cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    lock(&SERIAL)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    CurrentThread,
    /// Four worker threads.
    MultiThread,
}

/// A case whose counters have not moved for this long has stalled: it fails then, even when
/// its deadline (long, for a long case) is still far.
pub const STALL: Duration = Duration::from_secs(15);

/// How much longer than its deadline the watchdog thread gives a case whose runtime does not
/// come back (a task that blocks its thread), before failing it anyway.
const WATCHDOG_GRACE: Duration = Duration::from_secs(5);

/// Runs an async case on a fresh runtime of `flavor`, on a thread of its own. Past `deadline`,
/// or once its counters have not moved for [`STALL`], the case fails with its progress report;
/// if its runtime does not even return (a blocked thread), a watchdog fails it
/// `WATCHDOG_GRACE` later. It never hangs.
pub fn run_async<F, Fut>(name: &str, flavor: Flavor, deadline: Duration, case: F)
where
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let _serial = serial();
    let progress = Progress::default();
    let p = progress.clone();
    let label = format!("{name} [{flavor:?}]");
    let (done_tx, done_rx) = mpsc::channel();
    let started = Instant::now();
    let thread_label = label.clone();
    let handle = thread::Builder::new()
        .name(label.clone())
        .spawn(move || {
            let rt = match flavor {
                Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build(),
                Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(4)
                    .enable_all()
                    .build(),
            }
            .expect("runtime");
            let pc = p.clone();
            let result = rt.block_on(async move {
                // The report is taken while the case is still alive: dropping it wakes its
                // tasks, which would update their notes.
                let case = case(pc.clone());
                let mut case = std::pin::pin!(case);
                tokio::select! {
                    () = &mut case => Ok(()),
                    () = tokio::time::sleep(deadline) => Err((
                        format!("deadline of {deadline:?} passed"),
                        pc.report(),
                    )),
                    since = stalled(&pc) => Err((
                        format!(
                            "no progress for {STALL:?} (deadlock or lost wake-up?), {since:.1?} \
                             after the start"
                        ),
                        pc.report(),
                    )),
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
            if let Err((why, report)) = result {
                p.run_expiry_hooks();
                panic!("{thread_label}: {why}: {report}");
            }
            let _ = done_tx.send(());
        })
        .expect("spawn the case thread");
    wait_for_case(&label, handle, done_rx, deadline, started, &progress);
}

/// Returns (how long after the start) once the case's counters have not moved for [`STALL`].
async fn stalled(p: &Progress) -> Duration {
    let start = Instant::now();
    let mut last = (p.total(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = p.total();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= STALL {
            return start.elapsed();
        }
    }
}

/// Runs a blocking case on a thread of its own; past `deadline` the watchdog runs the case's
/// expiry hooks (which should unblock it) and fails it with its progress report.
pub fn run_blocking<F>(name: &str, deadline: Duration, case: F)
where
    F: FnOnce(Progress) + Send + 'static,
{
    let _serial = serial();
    let progress = Progress::default();
    let p = progress.clone();
    let (done_tx, done_rx) = mpsc::channel();
    let started = Instant::now();
    let handle = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            case(p);
            let _ = done_tx.send(());
        })
        .expect("spawn the case thread");
    match done_rx.recv_timeout(deadline) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(payload) = handle.join() {
                std::panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let report = progress.report();
            progress.run_expiry_hooks();
            panic!(
                "{name}: deadline of {deadline:?} passed after {:.1?}, the blocking call did not \
                 return: {report}",
                started.elapsed()
            );
        }
    }
}

fn wait_for_case(
    label: &str,
    handle: thread::JoinHandle<()>,
    done: mpsc::Receiver<()>,
    deadline: Duration,
    started: Instant,
    progress: &Progress,
) {
    match done.recv_timeout(deadline + WATCHDOG_GRACE) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(payload) = handle.join() {
                std::panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let report = progress.report();
            progress.run_expiry_hooks();
            panic!(
                "{label}: watchdog: the runtime did not return {:.1?} after the start (deadline \
                 {deadline:?}); a task blocks its thread: {report}",
                started.elapsed()
            );
        }
    }
}

/// Defines a module `$name` with two tests, `current_thread` and `multi_thread`, that run the
/// same async case (`$case`: `FnOnce(Progress) -> impl Future`) under `$deadline`.
#[macro_export]
macro_rules! on_both_runtimes {
    ($(#[$attr:meta])* $name:ident, $deadline:expr, $case:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(#[$attr])*
            #[test]
            fn current_thread() {
                $crate::stress::run_async(
                    stringify!($name),
                    $crate::stress::Flavor::CurrentThread,
                    $deadline,
                    $case,
                );
            }
            $(#[$attr])*
            #[test]
            fn multi_thread() {
                $crate::stress::run_async(
                    stringify!($name),
                    $crate::stress::Flavor::MultiThread,
                    $deadline,
                    $case,
                );
            }
        }
    };
}

/// Awaits a task; a panic in it is re-raised here with its own message.
pub async fn join<T>(handle: tokio::task::JoinHandle<T>) -> T {
    match handle.await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("task failed: {e}"),
    }
}

/// `fut`, or a panic naming `what` and the progress once `limit` passed.
pub async fn within<T>(
    limit: Duration,
    p: &Progress,
    what: &str,
    fut: impl Future<Output = T>,
) -> T {
    let start = Instant::now();
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!(
            "{what}: still waiting after {:.1?}: {}",
            start.elapsed(),
            p.report()
        ),
    }
}

// ------------------------------------------------------------------ payloads

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn seed(dir: u8, index: u64) -> u64 {
    splitmix(((dir as u64) << 56) ^ index)
}

/// The payload of message `index` in direction `dir`: the receiver recomputes it.
pub fn payload(dir: u8, index: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v, dir, index, len);
    v
}

/// Replaces `buf`'s contents with [`payload`]`(dir, index, len)`, 8 bytes per step (fast enough
/// in debug builds for gigabytes).
pub fn fill(buf: &mut Vec<u8>, dir: u8, index: u64, len: usize) {
    buf.clear();
    let mut x = seed(dir, index) | 1;
    while buf.len() + 8 <= len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let rest = len - buf.len();
    buf.extend_from_slice(&x.to_le_bytes()[..rest]);
}

/// A size in `1..=max` for message `index` in direction `dir` (seeded: the receiver knows it).
pub fn size(dir: u8, index: u64, max: usize) -> usize {
    1 + (splitmix(seed(dir, index) ^ 0x5151) % max as u64) as usize
}

/// Checks a received payload against [`payload`]; the error says where it differs.
pub fn verify(
    scratch: &mut Vec<u8>,
    dir: u8,
    index: u64,
    len: usize,
    got: &[u8],
) -> Result<(), String> {
    if got.len() != len {
        return Err(format!(
            "message {index}: {} bytes, expected {len}",
            got.len()
        ));
    }
    fill(scratch, dir, index, len);
    if got != &scratch[..] {
        let at = got.iter().zip(scratch.iter()).position(|(a, b)| a != b);
        return Err(format!(
            "message {index} ({len} bytes): wrong bytes from offset {at:?}"
        ));
    }
    Ok(())
}

/// A small xorshift generator for choices a case makes (chunk sizes).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(splitmix(seed) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// In `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

// ------------------------------------------------------------------ sockets

/// Kernel buffer sizes for a loopback socket (`None`: the kernel's, autotuned). Small buffers
/// keep a backlog in hybi's queue rather than in the kernel, as with a slow peer over a real
/// network.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bufs {
    pub send: Option<u32>,
    pub recv: Option<u32>,
}

impl Bufs {
    pub const DEFAULT: Self = Self {
        send: None,
        recv: None,
    };
    /// 64 KiB each way (Linux doubles it).
    pub const SMALL: Self = Self {
        send: Some(64 << 10),
        recv: Some(64 << 10),
    };

    fn apply(&self, s: &TcpSocket) {
        if let Some(n) = self.send {
            s.set_send_buffer_size(n).unwrap();
        }
        if let Some(n) = self.recv {
            s.set_recv_buffer_size(n).unwrap();
        }
    }
}

/// A listener on 127.0.0.1, port 0; accepted sockets inherit `bufs`.
pub fn listen(bufs: Bufs) -> TcpListener {
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    bufs.apply(&s);
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    s.listen(1024).unwrap()
}

pub async fn connect(addr: SocketAddr, bufs: Bufs) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    bufs.apply(&s);
    let tcp = s.connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Resident memory of this process, in bytes.
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

// ------------------------------------------------------------------ raw peers

/// A valid upgrade request, as a raw client sends it (the RFC 6455 §1.3 key).
pub const REQUEST: &[u8] = b"GET /stress HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Reads until the end of an HTTP head; returns the head and the bytes after it.
pub async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> (String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        let n = s.read(&mut chunk).await.expect("reading an HTTP head");
        assert!(
            n > 0,
            "EOF inside an HTTP head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A raw client: connects, does the opening handshake by hand, returns the stream and what
/// came after the 101 in the same reads.
pub async fn raw_client(addr: SocketAddr, bufs: Bufs) -> (TcpStream, Vec<u8>) {
    use tokio::io::AsyncWriteExt;
    let mut s = connect(addr, bufs).await;
    s.write_all(REQUEST).await.unwrap();
    let (head, rest) = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    (s, rest)
}

/// A frame as a client sends it (masked), or as a server sends it (`mask: None`).
pub fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
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
        for (i, b) in p.iter_mut().enumerate() {
            *b ^= k[i % 4];
        }
    }
    out.extend_from_slice(&p);
    out
}

pub const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// A masked close frame with `code`, as a client sends it.
pub fn client_close(code: u16) -> Vec<u8> {
    frame(8, &code.to_be_bytes(), Some(MASK))
}

// ------------------------------------------------------------------ transports

/// A transport that reads at most `rate` bytes per second, in reads of at most `chunk` bytes:
/// a peer that reads slowly but steadily (and so answers a ping when it reaches it).
pub struct Throttled<S> {
    inner: S,
    rate: u64,
    chunk: usize,
    scratch: Vec<u8>,
    pause: Pin<Box<Sleep>>,
    /// Bytes read so far.
    pub read: Counter,
}

impl<S> Throttled<S> {
    pub fn new(inner: S, rate: u64, chunk: usize, read: Counter) -> Self {
        Self {
            inner,
            rate,
            chunk,
            scratch: vec![0; chunk],
            pause: Box::pin(tokio::time::sleep(Duration::ZERO)),
            read,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Throttled<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pause.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let room = buf.remaining().min(this.chunk);
        let mut limited = ReadBuf::new(&mut this.scratch[..room]);
        let result = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
        if let Poll::Ready(Ok(())) = result {
            let n = limited.filled().len();
            buf.put_slice(limited.filled());
            this.read.add(n as u64);
            if n > 0 {
                let pause = Duration::from_nanos(n as u64 * 1_000_000_000 / this.rate);
                let at = tokio::time::Instant::now() + pause;
                this.pause.as_mut().reset(at);
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Throttled<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A transport whose reads return a few bytes at a time (1..=`max` bytes) and, every other
/// call, `Pending` (after waking the task): whatever reads through it is interrupted in the
/// middle of frames and messages over and over.
pub struct Chopped<S> {
    inner: S,
    rng: Rng,
    max: usize,
    scratch: Vec<u8>,
    flip: bool,
}

impl<S> Chopped<S> {
    pub fn new(inner: S, max: usize, seed: u64) -> Self {
        Self {
            inner,
            rng: Rng::new(seed),
            max,
            scratch: vec![0; max],
            flip: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Chopped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.flip = !this.flip;
        if this.flip {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let room = buf.remaining().min(this.rng.range(1, this.max));
        let mut limited = ReadBuf::new(&mut this.scratch[..room]);
        let result = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
        if let Poll::Ready(Ok(())) = result {
            buf.put_slice(limited.filled());
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Chopped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts live tasks: one guard per task, decremented when the task ends or is dropped.
pub struct TaskGuard(Arc<AtomicUsize>);

impl TaskGuard {
    pub fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(live))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// ------------------------------------------------------------------ split halves
//
// Issue 12's split-halves cases, shared by `tests/stress.rs` (hybi's own server) and
// `tests/axum.rs` (the server through the axum extractor, on hyper's upgraded transport).

/// Payload directions, so that a message sent one way can never pass for one sent the other.
pub const S2C: u8 = 1;
pub const C2S: u8 = 2;

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;

pub fn assert_normal(who: &str, o: &CloseOutcome, initiator: Initiator) {
    assert!(
        o.clean && o.code == CloseCode::NORMAL && o.initiator == initiator,
        "{who}: expected a clean close with 1000 started by {initiator:?}, got {o:?}"
    );
}

pub fn short<T>(r: &Option<Result<Message, T>>) -> String
where
    T: std::fmt::Display,
{
    match r {
        None => "the end of the stream".into(),
        Some(Ok(m)) => format!("a message of {} bytes", m.len()),
        Some(Err(e)) => format!("error: {e}"),
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Peer {
    Hybi,
    Tungstenite,
}

#[derive(Debug, Clone, Copy)]
pub enum Sizes {
    Fixed(usize),
    /// Seeded random sizes in `1..=max`.
    UpTo(usize),
}

impl Sizes {
    pub fn of(self, dir: u8, index: u64) -> usize {
        match self {
            Self::Fixed(n) => n,
            Self::UpTo(max) => size(dir, index, max),
        }
    }
}

/// What one endpoint's split halves do: the writer sends `send` messages in direction `out`,
/// the reader (from `read_start`) receives `recv` messages in direction `inp` and checks every
/// byte, then waits for the end of the stream.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub out: u8,
    pub send: u64,
    pub inp: u8,
    pub recv: u64,
    pub sizes: Sizes,
    pub read_start: ReadStart,
}

/// When a reader half starts reading.
#[derive(Debug, Clone, Copy)]
pub enum ReadStart {
    Now,
    After(Duration),
    /// Once its writer half is blocked (its count of messages sent stayed the same for 50 ms)
    /// or done: the reader's first poll then finds output queued and the socket full.
    WhenWriterBlocked,
}

impl ReadStart {
    pub async fn wait(self, who: &str, sent: &Counter, total: u64, p: &Progress) {
        match self {
            Self::Now => {}
            Self::After(d) => {
                p.note(who, format!("waiting {d:?} before reading"));
                tokio::time::sleep(d).await;
            }
            Self::WhenWriterBlocked => {
                p.note(who, "waiting for the writer half to block");
                let mut last = u64::MAX;
                while sent.get() != last && sent.get() < total {
                    last = sent.get();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub peer: Peer,
    /// Messages each way.
    pub server_sends: u64,
    pub client_sends: u64,
    pub sizes: Sizes,
    pub server_read: ReadStart,
    pub client_read: ReadStart,
    /// Kernel buffers of both sockets.
    pub bufs: Bufs,
}

impl Scenario {
    pub fn server(&self) -> Plan {
        Plan {
            out: S2C,
            send: self.server_sends,
            inp: C2S,
            recv: self.client_sends,
            sizes: self.sizes,
            read_start: self.server_read,
        }
    }
    pub fn client(&self) -> Plan {
        Plan {
            out: C2S,
            send: self.client_sends,
            inp: S2C,
            recv: self.server_sends,
            sizes: self.sizes,
            read_start: self.client_read,
        }
    }
}

/// One hybi endpoint as `StreamExt::split` halves in two tasks. The writer sends with
/// `SinkExt::send`; with `closes`, once the reader has everything, it closes with 1000 through
/// the sink. Returns the close outcome of the reunited stream.
pub async fn hybi_halves<S>(
    ws: WebSocketStream<S>,
    who: &'static str,
    plan: Plan,
    closes: bool,
    p: Progress,
) -> CloseOutcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sent = p.counter(&format!("{who} writer sent"), Some(plan.send));
    let got = p.counter(&format!("{who} reader received"), Some(plan.recv));
    let (mut sink, mut stream) = ws.split();
    let (all_in_tx, all_in_rx) = tokio::sync::oneshot::channel::<()>();
    let pw = p.clone();
    let sent_r = sent.clone();
    let writer = tokio::spawn(async move {
        let name = format!("{who} writer");
        for i in 0..plan.send {
            let len = plan.sizes.of(plan.out, i);
            pw.note(&name, format!("in send() of message {i} ({len} bytes)"));
            let m = Message::binary(payload(plan.out, i, len));
            if let Err(e) = sink.send(m).await {
                panic!("{name}: send() of message {i}: {e} ({})", pw.report());
            }
            sent.inc();
        }
        if closes {
            pw.note(
                &name,
                "sent all; waiting for the reader to have all before closing",
            );
            if all_in_rx.await.is_ok() {
                pw.note(&name, "in close()");
                if let Err(e) = SinkExt::close(&mut sink).await {
                    panic!("{name}: close(): {e} ({})", pw.report());
                }
            }
        }
        pw.note(&name, "done");
        sink
    });
    let name = format!("{who} reader");
    plan.read_start.wait(&name, &sent_r, plan.send, &p).await;
    let mut scratch = Vec::new();
    for i in 0..plan.recv {
        p.note(&name, format!("waiting in next() for message {i}"));
        let m = match stream.next().await {
            Some(Ok(m)) => m,
            other => panic!(
                "{name}: expected message {i}, got {} ({})",
                short(&other),
                p.report()
            ),
        };
        let len = plan.sizes.of(plan.inp, i);
        if let Err(e) = verify(&mut scratch, plan.inp, i, len, m.as_bytes()) {
            panic!("{name}: {e}");
        }
        got.inc();
    }
    let _ = all_in_tx.send(());
    p.note(&name, "received all; waiting in next() for the end");
    let end = stream.next().await;
    assert!(
        end.is_none(),
        "{name}: expected the end of the stream after the close, got {} ({})",
        short(&end),
        p.report()
    );
    p.note(&name, "stream ended");
    let sink = join(writer).await;
    let ws = sink.reunite(stream).expect("halves of one stream");
    ws.connection()
        .close_outcome()
        .cloned()
        .unwrap_or_else(|| panic!("{who}: the stream ended but the connection is not closed"))
}

/// A tokio-tungstenite client as split halves, doing what [`hybi_halves`] does as the closer
/// (close 1000 once everything arrived; the server's close frame must echo 1000).
pub async fn tungstenite_halves(
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    plan: Plan,
    p: Progress,
) {
    let who = "tungstenite client";
    let sent = p.counter(&format!("{who} writer sent"), Some(plan.send));
    let got = p.counter(&format!("{who} reader received"), Some(plan.recv));
    let (mut sink, mut stream) = ws.split();
    let (all_in_tx, all_in_rx) = tokio::sync::oneshot::channel::<()>();
    let pw = p.clone();
    let sent_r = sent.clone();
    let writer = tokio::spawn(async move {
        let name = format!("{who} writer");
        for i in 0..plan.send {
            let len = plan.sizes.of(plan.out, i);
            pw.note(&name, format!("in send() of message {i} ({len} bytes)"));
            let m = TMessage::Binary(payload(plan.out, i, len).into());
            if let Err(e) = sink.send(m).await {
                panic!("{name}: send() of message {i}: {e} ({})", pw.report());
            }
            sent.inc();
        }
        pw.note(
            &name,
            "sent all; waiting for the reader to have all before closing",
        );
        if all_in_rx.await.is_ok() {
            pw.note(&name, "sending close 1000");
            let close = TMessage::Close(Some(TCloseFrame {
                code: TCloseCode::Normal,
                reason: "".into(),
            }));
            if let Err(e) = sink.send(close).await {
                panic!("{name}: close: {e} ({})", pw.report());
            }
        }
        pw.note(&name, "done");
    });
    let name = format!("{who} reader");
    plan.read_start.wait(&name, &sent_r, plan.send, &p).await;
    let mut scratch = Vec::new();
    let mut i = 0;
    while i < plan.recv {
        p.note(&name, format!("waiting in next() for message {i}"));
        let data = match stream.next().await {
            Some(Ok(TMessage::Binary(b))) => b,
            Some(Ok(TMessage::Ping(_) | TMessage::Pong(_))) => continue,
            other => panic!(
                "{name}: expected message {i}, got {other:?} ({})",
                p.report()
            ),
        };
        let len = plan.sizes.of(plan.inp, i);
        if let Err(e) = verify(&mut scratch, plan.inp, i, len, &data) {
            panic!("{name}: {e}");
        }
        got.inc();
        i += 1;
    }
    let _ = all_in_tx.send(());
    p.note(&name, "received all; waiting for the server's close frame");
    loop {
        match stream.next().await {
            Some(Ok(TMessage::Ping(_) | TMessage::Pong(_))) => {}
            Some(Ok(TMessage::Close(Some(f)))) => {
                assert_eq!(
                    f.code,
                    TCloseCode::Normal,
                    "{name}: the server's close: {f:?}"
                );
                break;
            }
            other => panic!("{name}: expected the server's close frame, got {other:?}"),
        }
    }
    loop {
        match stream.next().await {
            None => break,
            Some(Ok(TMessage::Ping(_) | TMessage::Pong(_))) => {}
            other => panic!("{name}: expected the end after the close, got {other:?}"),
        }
    }
    p.note(&name, "stream ended");
    join(writer).await;
}

/// The smallest case of the issue: the server's writer half sends 64 × 64 KiB while its reader
/// half waits in `next()` for a message that never comes; the client reads only after 200 ms.
/// The reader half's first poll comes once the writer half is blocked on the full socket (as
/// when a reader task is spawned after the writer task); 64 KiB kernel buffers make sure the
/// socket fills.
pub fn smallest(peer: Peer) -> Scenario {
    Scenario {
        peer,
        server_sends: 64,
        client_sends: 0,
        sizes: Sizes::Fixed(64 * KIB),
        server_read: ReadStart::WhenWriterBlocked,
        client_read: ReadStart::After(Duration::from_millis(200)),
        bufs: Bufs::SMALL,
    }
}

/// Both directions busy: `n` messages each way of random sizes up to `max`.
pub fn busy(peer: Peer, n: u64, max: usize) -> Scenario {
    Scenario {
        peer,
        server_sends: n,
        client_sends: n,
        sizes: Sizes::UpTo(max),
        server_read: ReadStart::Now,
        client_read: ReadStart::Now,
        bufs: Bufs::DEFAULT,
    }
}
