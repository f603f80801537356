//! A load tool for any `ws://` echo server: N connections, each keeping D messages of S bytes
//! in flight for T seconds; or, with `--handshakes`, connect + handshake + close in a loop.
//! `--raw` makes the handshake client minimal (a fixed request written to a plain socket, the
//! 101 checked by its status and `Sec-WebSocket-Accept`, a fixed masked close frame, then read
//! to EOF), so that the server, not this client, is what limits the rate.
//!
//! ```text
//! cargo run --release --example load -- --url ws://127.0.0.1:9001/ \
//!     --connections 64 --depth 8 --size 1024 --seconds 5 [--pid SERVER_PID]
//! cargo run --release --example load -- --url ws://127.0.0.1:9001/ --handshakes \
//!     --connections 16 --seconds 5 [--pid SERVER_PID]
//! ```
//!
//! Prints one summary line: messages/s (echoes completed), MB/s (payload, one way), p50/p99
//! round-trip latency in µs, and with `--pid` the server's CPU time (user + system, from
//! `/proc/PID/stat`) per echo or per handshake. In handshake mode: handshakes/s.
//!
//! `--http2` opens the N WebSockets as streams of ONE HTTP/2 connection (RFC 8441 extended
//! CONNECT, h2c with prior knowledge over plain TCP, hybi's own HTTP/2 client:
//! [`hybi::http2::Http2Connection`], one `connect`, then one `open` per stream) instead of N
//! TCP connections; the server must allow extended CONNECT (`axum_echo`, `hyper_echo
//! --http2`):
//!
//! ```text
//! cargo run --release --example hyper_echo -- --port 9005 --http2 &
//! cargo run --release --example load -- --url ws://127.0.0.1:9005/ --connections 64 \
//!     --size 16 --http2 [--pid SERVER_PID]
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hybi::http2::Http2Connection;
use hybi::{ClientRequest, CloseCode, ConnectOptions, Error, Message, Timeouts};

struct Args {
    url: String,
    connections: usize,
    depth: usize,
    size: usize,
    seconds: f64,
    handshakes: bool,
    raw: bool,
    http2: bool,
    pid: Option<u32>,
}

fn args() -> Args {
    let mut a = Args {
        url: "ws://127.0.0.1:9001/".into(),
        connections: 64,
        depth: 1,
        size: 16,
        seconds: 5.0,
        handshakes: false,
        raw: false,
        http2: false,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--url" => a.url = value(),
            "--connections" => a.connections = value().parse().unwrap_or_else(|_| usage("N")),
            "--depth" => a.depth = value().parse().unwrap_or_else(|_| usage("D")),
            "--size" => a.size = value().parse().unwrap_or_else(|_| usage("S")),
            "--seconds" => a.seconds = value().parse().unwrap_or_else(|_| usage("T")),
            "--pid" => a.pid = Some(value().parse().unwrap_or_else(|_| usage("PID"))),
            "--handshakes" => a.handshakes = true,
            "--raw" => a.raw = true,
            "--http2" => a.http2 = true,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "{msg}\nusage: load [--url ws://HOST:PORT/] [--connections N] [--depth D] [--size S] \
         [--seconds T] [--handshakes [--raw]] [--http2] [--pid SERVER_PID]"
    );
    std::process::exit(2)
}

#[path = "support/procstat.rs"]
mod procstat;
use procstat::{cpu_ticks, TICKS_PER_SEC};

fn options() -> ConnectOptions {
    ConnectOptions::default().with_timeouts(
        Timeouts::default()
            .with_ping_interval(None)
            .with_pong_timeout(None),
    )
}

async fn connect(
    url: &str,
) -> Result<hybi::tokio::WebSocketStream<hybi::tokio::MaybeTlsStream>, Error> {
    let (ws, _) = hybi::tokio::connect_with(ClientRequest::new(url)?, options()).await?;
    Ok(ws)
}

/// One connection: keep `depth` messages in flight until `stop`; returns the round-trip
/// times (µs) of the echoes that came back while the measurement ran.
async fn echo_client<S>(
    mut ws: hybi::tokio::WebSocketStream<S>,
    depth: usize,
    payload: Bytes,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<Vec<u32>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut sent = VecDeque::with_capacity(depth);
    let mut rtts = Vec::new();
    for _ in 0..depth {
        ws.queue(Message::Binary(payload.clone()))?;
        sent.push_back(Instant::now());
    }
    ws.flush_queue().await?;
    while !sent.is_empty() {
        let mut next = Some(ws.recv().await?);
        let now = Instant::now();
        let keep = measuring.load(Ordering::Relaxed);
        let stopping = stop.load(Ordering::Relaxed);
        while let Some(m) = next {
            if m.len() != payload.len() {
                return Err(Error::Io(std::io::Error::other("echo of the wrong size")));
            }
            let t0 = sent.pop_front().expect("an echo nobody sent");
            if keep {
                rtts.push(now.duration_since(t0).as_micros().min(u32::MAX as u128) as u32);
            }
            if !stopping {
                ws.queue(Message::Binary(payload.clone()))?;
                sent.push_back(Instant::now());
            }
            next = ws.try_recv();
        }
        ws.flush_queue().await?;
    }
    ws.close_with(CloseCode::NORMAL, "").await?;
    loop {
        match ws.recv().await {
            Ok(_) => {}
            Err(Error::Closed(_)) => return Ok(rtts),
            Err(e) => return Err(e),
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn echo_load(a: &Args) {
    let payload = Bytes::from(vec![0x5a; a.size]);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(a.connections);
    if a.http2 {
        // N streams on one HTTP/2 connection.
        let h2 = Http2Connection::connect(&a.url, &options())
            .await
            .expect("HTTP/2 connection");
        for _ in 0..a.connections {
            let request = ClientRequest::new(&a.url).expect("a ws:// URL");
            let (ws, _) = h2.open(request).await.expect("extended CONNECT");
            let (payload, measuring, stop) = (payload.clone(), measuring.clone(), stop.clone());
            tasks.push(tokio::spawn(echo_client(
                ws, a.depth, payload, measuring, stop,
            )));
        }
    } else {
        for _ in 0..a.connections {
            let ws = connect(&a.url).await.expect("connect");
            let (payload, measuring, stop) = (payload.clone(), measuring.clone(), stop.clone());
            tasks.push(tokio::spawn(echo_client(
                ws, a.depth, payload, measuring, stop,
            )));
        }
    }
    // Half a second of warm-up, then the measured window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu0 = a.pid.and_then(cpu_ticks);
    let t0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = a.pid.and_then(cpu_ticks);
    stop.store(true, Ordering::Relaxed);
    let mut rtts = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(10), t).await {
            Ok(Ok(Ok(r))) => rtts.extend(r),
            Ok(Ok(Err(e))) => {
                errors += 1;
                eprintln!("connection: {e}");
            }
            _ => errors += 1,
        }
    }
    rtts.sort_unstable();
    let n = rtts.len() as f64;
    let cpu = match (cpu0, cpu1) {
        (Some(c0), Some(c1)) if n > 0.0 => format!(
            " server_cpu_us/msg={:.2} server_cpu={:.0}%",
            (c1 - c0) as f64 / TICKS_PER_SEC * 1e6 / n,
            (c1 - c0) as f64 / TICKS_PER_SEC / elapsed * 100.0
        ),
        _ => String::new(),
    };
    println!(
        "echo{} conns={} depth={} size={} secs={:.1}: msgs/s={:.0} MB/s={:.2} p50_us={} p99_us={}{} errors={}",
        if a.http2 { " http2 (streams of one connection)" } else { "" },
        a.connections,
        a.depth,
        a.size,
        elapsed,
        n / elapsed,
        n * a.size as f64 / elapsed / 1e6,
        percentile(&rtts, 0.50),
        percentile(&rtts, 0.99),
        cpu,
        errors
    );
}

/// A minimal client handshake, for `--raw`: what it sends is fixed, so it costs the client
/// little more than the system calls.
struct RawHandshake {
    host: String,
    port: u16,
    request: Vec<u8>,
    accept: String,
}

impl RawHandshake {
    fn new(url: &str) -> Self {
        let request = ClientRequest::new(url).expect("a ws:// URL");
        let key = hybi::handshake::encode_key(&[7; 16]);
        let mut head = Vec::new();
        request.encode(&key, &mut head);
        Self {
            host: request.host().to_string(),
            port: request.port(),
            request: head,
            accept: hybi::handshake::accept_key(key.as_bytes()),
        }
    }

    /// Connect, upgrade, close (code 1000), read until the server closes.
    async fn run(&self) -> std::io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let bad = |what: &str| std::io::Error::other(what.to_string());
        let mut tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        tcp.write_all(&self.request).await?;
        let mut buf = [0u8; 2048];
        let mut n = 0;
        let end = loop {
            let m = tcp.read(&mut buf[n..]).await?;
            if m == 0 || n + m == buf.len() {
                return Err(bad("no complete response head"));
            }
            n += m;
            if let Some(p) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("response head"))?;
        if !head.starts_with("HTTP/1.1 101") || !head.contains(&self.accept) {
            return Err(bad("not a valid 101"));
        }
        // Close 1000, masked with the key 1 2 3 4.
        tcp.write_all(&[0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2])
            .await?;
        while tcp.read(&mut buf).await? > 0 {}
        Ok(())
    }
}

async fn handshake_load(a: &Args) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let cpu0 = a.pid.and_then(cpu_ticks);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..a.connections)
        .map(|_| {
            let (url, done, failed) = (a.url.clone(), done.clone(), failed.clone());
            let raw = a.raw.then(|| Arc::new(RawHandshake::new(&a.url)));
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if let Some(raw) = &raw {
                        match raw.run().await {
                            Ok(()) => {
                                lat.push(t.elapsed().as_micros() as u32);
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        continue;
                    }
                    match connect(&url).await {
                        Ok(mut ws) => {
                            lat.push(t.elapsed().as_micros() as u32);
                            done.fetch_add(1, Ordering::Relaxed);
                            // Close; the server closes TCP first (§7.1.1).
                            let _ = ws.close_with(CloseCode::NORMAL, "").await;
                            while ws.recv().await.is_ok() {}
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            lat.extend(l);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = a.pid.and_then(cpu_ticks);
    lat.sort_unstable();
    let n = done.load(Ordering::Relaxed) as f64;
    let cpu = match (cpu0, cpu1) {
        (Some(c0), Some(c1)) if n > 0.0 => format!(
            " server_cpu_us/handshake={:.2}",
            (c1 - c0) as f64 / TICKS_PER_SEC * 1e6 / n
        ),
        _ => String::new(),
    };
    println!(
        "handshakes{} tasks={} secs={:.1}: handshakes/s={:.0} p50_us={} p99_us={}{} failed={}",
        if a.raw { " (raw client)" } else { "" },
        a.connections,
        elapsed,
        n / elapsed,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        cpu,
        failed.load(Ordering::Relaxed)
    );
}

fn main() {
    let a = args();
    if a.http2 && a.handshakes {
        usage("--http2 measures echoes, not handshakes");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if a.handshakes {
            handshake_load(&a).await
        } else {
            echo_load(&a).await
        }
    });
}
