//! A load tool for the chat example (`examples/chat_server.rs`): N clients in one room, on one
//! instance or spread over several (`--url` repeated: client i uses URL i mod n).
//!
//! ```text
//! cargo build --release --example chat_server --example chat_load
//! taskset -c 0 target/release/examples/chat_server --port 9020 --workers 1 --rate 0 --no-deflate &
//! taskset -c 1 target/release/examples/chat_load --url ws://127.0.0.1:9020/chat \
//!     --clients 1000 --mode fanout --seconds 10 --pid $(pgrep -n chat_server)
//! taskset -c 1 target/release/examples/chat_load --url ws://127.0.0.1:9020/chat \
//!     --clients 10000 --mode storm --rate 10 --churn 10 --seconds 600 --pid $(pgrep -n chat_server)
//! ```
//!
//! # Modes
//!
//! * `fanout` (default): every client sends in turn. Each round every client sends one
//!   message and the round ends when every client has received all N of them (N²
//!   deliveries); rounds repeat for `--seconds`. Prints deliveries/s, the send-to-receipt
//!   latency p50/p99/max and the servers' CPU time per delivery.
//! * `storm`: the clients join as fast as the server admits them (`--concurrency`
//!   handshakes in flight, default 256), and the ramp time is printed (with the servers' RSS
//!   growth per joined client). Then, for `--seconds`, one broadcast every 1/`--rate` s from a
//!   random client (open loop), and every second `--churn` clients leave (half with a close
//!   handshake, half by a TCP reset) and as many new ones join. Every 10 s it prints
//!   deliveries/s, latency p50/p99/max, the servers' CPU share and RSS. At the end it checks
//!   that every client that stayed received every message from its welcome on: ids
//!   consecutive (no gap, no duplicate, no reordering) up to the room's last id, and that no
//!   such client was closed; exit status 1 otherwise.
//!
//! # Flags
//!
//! ```text
//! --url URL          a chat instance's WebSocket URL (repeatable; default ws://127.0.0.1:8080/chat)
//! --clients N        clients (default 100)
//! --mode fanout|storm
//! --seconds T        measured time (fanout: at least one round; storm: the hold)
//! --rate R           storm: broadcasts a second (default 10; 0: none, to measure idle memory)
//! --churn C          storm: clients leaving and joining a second (default 0)
//! --concurrency K    handshakes in flight while joining (default 256)
//! --room NAME        the room (default load)
//! --size BYTES       text size of a message (default 64)
//! --pid PID          a server process, for its CPU time and RSS (repeatable)
//! --threads N        tokio worker threads of this tool (default 1)
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hybi::tokio::{MaybeTlsStream, ReadHalf, WebSocketStream, WriteHalf};
use hybi::{ClientRequest, CloseCode, Config, Message, Timeouts};
use serde::Deserialize;
use tokio::net::TcpSocket;
use tokio::sync::{Notify, Semaphore};

type Stream = MaybeTlsStream;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fanout,
    Storm,
}

#[derive(Clone)]
struct Args {
    urls: Vec<String>,
    clients: usize,
    mode: Mode,
    seconds: f64,
    rate: f64,
    churn: usize,
    concurrency: usize,
    room: String,
    size: usize,
    pids: Vec<u32>,
    threads: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\nusage: chat_load --url URL [--url URL] --clients N [--mode fanout|storm] [--seconds T] [--rate R] [--churn C] [--concurrency K] [--room NAME] [--size BYTES] [--pid PID]... [--threads N]");
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        urls: Vec::new(),
        clients: 100,
        mode: Mode::Fanout,
        seconds: 5.0,
        rate: 10.0,
        churn: 0,
        concurrency: 256,
        room: "load".into(),
        size: 64,
        pids: Vec::new(),
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let bad = |_| usage(&format!("invalid {flag} {v:?}"));
        match flag.as_str() {
            "--url" => a.urls.push(v.clone()),
            "--clients" => a.clients = v.parse().unwrap_or_else(bad),
            "--mode" => {
                a.mode = match v.as_str() {
                    "fanout" => Mode::Fanout,
                    "storm" => Mode::Storm,
                    _ => usage("--mode fanout|storm"),
                }
            }
            "--seconds" => a.seconds = v.parse().unwrap_or_else(|_| usage("--seconds T")),
            "--rate" => a.rate = v.parse().unwrap_or_else(|_| usage("--rate R")),
            "--churn" => a.churn = v.parse().unwrap_or_else(bad),
            "--concurrency" => a.concurrency = v.parse().unwrap_or_else(bad),
            "--room" => a.room = v.clone(),
            "--size" => a.size = v.parse().unwrap_or_else(bad),
            "--pid" => a
                .pids
                .push(v.parse().unwrap_or_else(|_| usage("--pid PID"))),
            "--threads" => a.threads = v.parse().unwrap_or_else(bad),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if a.urls.is_empty() {
        a.urls.push("ws://127.0.0.1:8080/chat".into());
    }
    a
}

// ------------------------------------------------------------------------------ the servers

/// CPU time (user + system) of a process, in clock ticks (`/proc/PID/stat`, 100 per second).
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter().map(|&p| cpu_ticks(p)).sum::<u64>() as f64 / 100.0
}

fn rss_total(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| rss_kb(p)).sum()
}

fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

// ------------------------------------------------------------------------------ measuring

/// Latencies of a window, in µs.
#[derive(Default)]
struct Latencies(Mutex<Vec<u32>>);

impl Latencies {
    fn record(&self, us: u64) {
        self.0.lock().unwrap().push(us.min(u32::MAX as u64) as u32);
    }

    /// (count, p50, p99, max) in µs, emptying the window.
    fn take(&self) -> (usize, u32, u32, u32) {
        let mut v = std::mem::take(&mut *self.0.lock().unwrap());
        if v.is_empty() {
            return (0, 0, 0, 0);
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (v.len(), at(0.5), at(0.99), *v.last().unwrap())
    }
}

fn ms(us: u32) -> f64 {
    us as f64 / 1000.0
}

/// What every client shares.
struct Shared {
    epoch: Instant,
    lat: Latencies,
    deliveries: AtomicU64,
    /// Clients whose check failed, with what they saw.
    failures: Mutex<Vec<String>>,
    /// The newest id any client received.
    max_id: AtomicU64,
    /// Round mode: deliveries still expected this round.
    round_left: AtomicUsize,
    round_done: Notify,
    joined: AtomicUsize,
    stopping: AtomicBool,
}

#[derive(Deserialize)]
struct In<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    id: u64,
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
}

/// A joined client's read side, until its connection ends. Checks that the ids it receives
/// after its welcome are consecutive. Returns (first id expected, last id seen, messages).
async fn read_loop(
    mut rx: ReadHalf<Stream>,
    shared: Arc<Shared>,
    welcome_last: u64,
    name: String,
    leaving: Arc<AtomicBool>,
) -> u64 {
    let mut expect = welcome_last + 1;
    loop {
        let msg = match rx.recv().await {
            Ok(m) => m,
            Err(e) => {
                let quiet =
                    leaving.load(Ordering::Relaxed) || shared.stopping.load(Ordering::Relaxed);
                if !quiet {
                    shared
                        .failures
                        .lock()
                        .unwrap()
                        .push(format!("{name}: connection ended: {e}"));
                }
                return expect - 1;
            }
        };
        let Message::Text(t) = msg else { continue };
        // Only messages and errors are parsed: a join storm sends every member every name,
        // and parsing those would make this tool the bottleneck. (Keys are serialized in
        // alphabetical order: messages start with "room", presence notices with "changes" or
        // "count".)
        if t.starts_with("{\"c") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<In<'_>>(t.as_str()) else {
            continue;
        };
        if v.kind != "message" {
            if v.kind == "error" {
                shared
                    .failures
                    .lock()
                    .unwrap()
                    .push(format!("{name}: error {}", t.as_str()));
            }
            continue;
        }
        if v.id != expect {
            shared.failures.lock().unwrap().push(format!(
                "{name}: expected id {expect}, got {} ({})",
                v.id,
                if v.id < expect {
                    "duplicate or reordered"
                } else {
                    "gap"
                }
            ));
        }
        expect = v.id + 1;
        shared.max_id.fetch_max(v.id, Ordering::Relaxed);
        shared.deliveries.fetch_add(1, Ordering::Relaxed);
        if let Some(sent) = v
            .text
            .as_deref()
            .and_then(|t| t.split(':').next()?.parse::<u64>().ok())
        {
            let now = shared.epoch.elapsed().as_micros() as u64;
            shared.lat.record(now.saturating_sub(sent));
        }
        if shared.round_left.load(Ordering::Relaxed) > 0
            && shared.round_left.fetch_sub(1, Ordering::AcqRel) == 1
        {
            shared.round_done.notify_one();
        }
    }
}

/// Connects and joins; the halves and the welcome's last id.
async fn join(
    url: &str,
    room: &str,
    nick: &str,
) -> Result<(ReadHalf<Stream>, WriteHalf<Stream>, u64), String> {
    let request = ClientRequest::new(url)
        .map_err(|e| e.to_string())?
        .protocol("chat");
    let addr = format!("{}:{}", request.host(), request.port());
    let addr: std::net::SocketAddr = tokio::net::lookup_host(&addr)
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    // Closing the socket resets the connection (the RST half of the churn; linger 0 does not
    // block); a clean leave finishes its close handshake first.
    #[allow(deprecated)] // tokio warns that a linger blocks on drop: a zero linger does not
    let _ = socket.set_linger(Some(Duration::ZERO));
    let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let timeouts = Timeouts::default()
        .with_ping_interval(None)
        .with_pong_timeout(None);
    let (mut ws, _): (WebSocketStream<Stream>, _) = hybi::tokio::client_with(
        MaybeTlsStream::Plain(tcp),
        request,
        Config::default(),
        timeouts,
    )
    .await
    .map_err(|e| e.to_string())?;
    let join = serde_json::json!({"type": "join", "nick": nick, "room": room}).to_string();
    ws.send_message(join).await.map_err(|e| e.to_string())?;
    let welcome = loop {
        let m = ws.recv().await.map_err(|e| format!("{nick}: {e}"))?;
        let Message::Text(t) = m else { continue };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
        match v["type"].as_str() {
            Some("welcome") => break v,
            Some("error") => return Err(format!("{nick}: {}", v["text"])),
            _ => {}
        }
    };
    let (rx, tx) = ws.into_split();
    Ok((rx, tx, welcome["last_id"].as_u64().unwrap_or(0)))
}

fn text(shared: &Shared, size: usize, seq: u64) -> Message {
    let sent = shared.epoch.elapsed().as_micros() as u64;
    let mut t = format!("{sent}:{seq}:");
    while t.len() < size {
        t.push('x');
    }
    Message::text(serde_json::json!({"type": "message", "text": t}).to_string())
}

/// A member: its write half, and a flag set when it leaves on purpose.
struct Member {
    tx: WriteHalf<Stream>,
    leaving: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<u64>,
    name: String,
}

/// Joins clients `from..to` (at most `concurrency` at a time); returns the members.
async fn join_many(args: &Args, shared: &Arc<Shared>, from: usize, to: usize) -> Vec<Member> {
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in from..to {
        let url = args.urls[i % args.urls.len()].clone();
        let (room, gate, shared) = (args.room.clone(), gate.clone(), shared.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let name = format!("c{i}");
            let (rx, tx, last) = join(&url, &room, &name).await?;
            shared.joined.fetch_add(1, Ordering::Relaxed);
            let leaving = Arc::new(AtomicBool::new(false));
            let reader = tokio::spawn(read_loop(
                rx,
                shared.clone(),
                last,
                name.clone(),
                leaving.clone(),
            ));
            Ok::<_, String>(Member {
                tx,
                leaving,
                reader,
                name,
            })
        });
    }
    let mut members = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(m)) => members.push(m),
            Ok(Err(e)) => shared
                .failures
                .lock()
                .unwrap()
                .push(format!("join failed: {e}")),
            Err(e) => shared
                .failures
                .lock()
                .unwrap()
                .push(format!("join task: {e}")),
        }
    }
    members
}

fn report_failures(shared: &Shared) -> bool {
    let failures = shared.failures.lock().unwrap();
    if failures.is_empty() {
        println!("CHECK ok: every client that stayed got every message from its welcome on, in order, once; no unexpected close");
        true
    } else {
        println!("CHECK FAILED: {} problems; first ones:", failures.len());
        for f in failures.iter().take(10) {
            println!("  {f}");
        }
        false
    }
}

/// Waits until every remaining member has received up to the newest id (or nothing moves for
/// 5 s), then closes them; returns whether all caught up.
async fn drain(shared: &Arc<Shared>, members: Vec<Member>) -> bool {
    let mut last_total = shared.deliveries.load(Ordering::Relaxed);
    let mut still = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    loop {
        let total = shared.deliveries.load(Ordering::Relaxed);
        if total != last_total {
            last_total = total;
            still = Instant::now();
        } else if still.elapsed() > Duration::from_millis(1500) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shared.stopping.store(true, Ordering::Relaxed);
    let newest = shared.max_id.load(Ordering::Relaxed);
    let mut behind = 0;
    let mut closing = tokio::task::JoinSet::new();
    for mut m in members {
        closing.spawn(async move {
            let _ = m.tx.close_with(CloseCode::NORMAL, "").await;
            let last = match tokio::time::timeout(Duration::from_secs(5), &mut m.reader).await {
                Ok(Ok(last)) => last,
                _ => {
                    m.reader.abort();
                    0
                }
            };
            (m.name, last)
        });
    }
    while let Some(Ok((name, last))) = closing.join_next().await {
        if last < newest {
            behind += 1;
            if behind <= 5 {
                shared.failures.lock().unwrap().push(format!(
                    "{name}: last id {last}, the room's newest {newest}"
                ));
            }
        }
    }
    behind == 0
}

// ------------------------------------------------------------------------------ modes

/// One round: every member sends one message; true once every member has all of them, false
/// when deliveries stop for 5 s.
async fn round(members: &mut [Member], shared: &Shared, size: usize, seq: u64) -> bool {
    let n = members.len();
    shared.round_left.store(n * n, Ordering::Release);
    let done = shared.round_done.notified();
    tokio::pin!(done);
    for m in members.iter_mut() {
        let _ = m.tx.send_message(text(shared, size, seq)).await;
    }
    let progress = || shared.deliveries.load(Ordering::Relaxed);
    let mut last = progress();
    loop {
        tokio::select! {
            _ = &mut done => return true,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {
                if progress() == last {
                    return false;
                }
                last = progress();
            }
        }
    }
}

async fn fanout(args: Args, shared: Arc<Shared>) -> bool {
    let t0 = Instant::now();
    let mut members = join_many(&args, &shared, 0, args.clients).await;
    println!(
        "joined {} clients in {:.2}s",
        members.len(),
        t0.elapsed().as_secs_f64()
    );
    let n = members.len();
    // Warm-up round, not measured.
    let mut seq = 0;
    seq += 1;
    if !round(&mut members, &shared, args.size, seq).await {
        println!("warm-up round stalled");
        return false;
    }
    shared.lat.take();
    let d0 = shared.deliveries.load(Ordering::Relaxed);
    let c0 = cpu_seconds(&args.pids);
    let start = Instant::now();
    let mut rounds = 0;
    while rounds == 0 || start.elapsed().as_secs_f64() < args.seconds {
        seq += 1;
        if !round(&mut members, &shared, args.size, seq).await {
            println!("round {rounds} stalled");
            break;
        }
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let deliveries = shared.deliveries.load(Ordering::Relaxed) - d0;
    let cpu = cpu_seconds(&args.pids) - c0;
    let (_, p50, p99, max) = shared.lat.take();
    print!(
        "fanout clients={n} instances={} rounds={rounds}: {:.0} deliveries/s, latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
        args.urls.len(),
        deliveries as f64 / secs,
        ms(p50),
        ms(p99),
        ms(max)
    );
    if !args.pids.is_empty() {
        print!(
            ", server CPU {:.2} µs/delivery ({:.0}% of a core)",
            cpu * 1e6 / deliveries.max(1) as f64,
            cpu * 100.0 / secs
        );
    }
    println!();
    let caught_up = drain(&shared, members).await;
    report_failures(&shared) && caught_up
}

async fn storm(args: Args, shared: Arc<Shared>) -> bool {
    let rss0 = rss_total(&args.pids);
    let cpu0 = cpu_seconds(&args.pids);
    let t0 = Instant::now();
    let progress = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprintln!(
                    "  ramp: {} joined after {:.0?}",
                    shared.joined.load(Ordering::Relaxed),
                    t0.elapsed()
                );
            }
        })
    };
    let members = join_many(&args, &shared, 0, args.clients).await;
    progress.abort();
    let ramp = t0.elapsed();
    let ramp_cpu = cpu_seconds(&args.pids) - cpu0;
    // Idle memory: after the server released the buffers of the ramp (hybi frees an idle
    // connection's buffers after 2 s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss1 = rss_total(&args.pids);
    println!(
        "ramp: {} of {} clients joined in {:.2}s ({:.0}/s); server CPU {:.2}s; RSS {} kB -> {} kB, {:.2} KB per joined client",
        members.len(),
        args.clients,
        ramp.as_secs_f64(),
        members.len() as f64 / ramp.as_secs_f64(),
        ramp_cpu,
        rss0,
        rss1,
        (rss1 as f64 - rss0 as f64) / members.len().max(1) as f64
    );
    let mut members: HashMap<usize, Member> = members
        .into_iter()
        .map(|m| (m.name[1..].parse().unwrap(), m))
        .collect();
    let mut next_client = args.clients;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n.max(1) as u64) as usize
    };
    shared.lat.take();
    let start = Instant::now();
    let hold_cpu0 = cpu_seconds(&args.pids);
    let tick = if args.rate > 0.0 {
        Duration::from_secs_f64(1.0 / args.rate)
    } else {
        Duration::from_secs(1)
    };
    let mut next_send = start;
    let mut next_churn = start + Duration::from_secs(1);
    let mut next_report = start + Duration::from_secs(10);
    let (mut d_last, mut c_last, mut t_last) = (
        shared.deliveries.load(Ordering::Relaxed),
        cpu_seconds(&args.pids),
        start,
    );
    let mut seq = 0u64;
    let (mut sent, mut left_clean, mut left_rst, mut joined_new) = (0u64, 0, 0, 0);
    while start.elapsed().as_secs_f64() < args.seconds {
        let now = Instant::now();
        if args.rate > 0.0 && now >= next_send {
            next_send += tick;
            let keys: Vec<usize> = members.keys().copied().collect();
            if let Some(&k) = keys.get(random(keys.len())) {
                seq += 1;
                let m = members.get_mut(&k).unwrap();
                if m.tx
                    .send_message(text(&shared, args.size, seq))
                    .await
                    .is_ok()
                {
                    sent += 1;
                }
            }
        }
        if args.churn > 0 && now >= next_churn {
            next_churn += Duration::from_secs(1);
            for i in 0..args.churn {
                let keys: Vec<usize> = members.keys().copied().collect();
                let Some(&k) = keys.get(random(keys.len())) else {
                    break;
                };
                let mut m = members.remove(&k).unwrap();
                m.leaving.store(true, Ordering::Relaxed);
                if i % 2 == 0 {
                    // A clean leave, with the close handshake, in the background.
                    tokio::spawn(async move {
                        let _ = m.tx.close_with(CloseCode::NORMAL, "bye").await;
                        let _ = tokio::time::timeout(Duration::from_secs(5), m.reader).await;
                    });
                    left_clean += 1;
                } else {
                    // A reset: the socket is closed with SO_LINGER 0.
                    m.reader.abort();
                    drop(m.tx);
                    left_rst += 1;
                }
            }
            let (from, to) = (next_client, next_client + args.churn);
            next_client = to;
            let args2 = args.clone();
            let shared2 = shared.clone();
            // Joins run concurrently with the sending; they are added when ready.
            let fresh = join_many(&args2, &shared2, from, to).await;
            joined_new += fresh.len();
            for m in fresh {
                members.insert(m.name[1..].parse().unwrap(), m);
            }
        }
        if now >= next_report {
            next_report += Duration::from_secs(10);
            let d = shared.deliveries.load(Ordering::Relaxed);
            let c = cpu_seconds(&args.pids);
            let secs = now.duration_since(t_last).as_secs_f64();
            let (_, p50, p99, max) = shared.lat.take();
            println!(
                "t={:>4.0}s members={} deliveries/s {:.0} latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms server CPU {:.0}% RSS {} kB",
                now.duration_since(start).as_secs_f64(),
                members.len(),
                (d - d_last) as f64 / secs,
                ms(p50),
                ms(p99),
                ms(max),
                (c - c_last) * 100.0 / secs,
                rss_total(&args.pids)
            );
            (d_last, c_last, t_last) = (d, c, now);
        }
        let mut wake = next_report.min(start + Duration::from_secs_f64(args.seconds));
        if args.rate > 0.0 {
            wake = wake.min(next_send);
        }
        if args.churn > 0 {
            wake = wake.min(next_churn);
        }
        tokio::time::sleep_until(wake.into()).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(&args.pids) - hold_cpu0;
    println!(
        "hold: {secs:.0}s, {sent} broadcasts, {left_clean} clean leaves, {left_rst} resets, {joined_new} joins, {} members at the end; server CPU {:.1}% of a core over the hold; final RSS {} kB",
        members.len(),
        cpu * 100.0 / secs,
        rss_total(&args.pids),
    );
    let members: Vec<Member> = members.into_values().collect();
    let caught_up = drain(&shared, members).await;
    report_failures(&shared) && caught_up
}

fn main() {
    let args = args();
    raise_nofile();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .expect("runtime");
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        lat: Latencies::default(),
        deliveries: AtomicU64::new(0),
        failures: Mutex::default(),
        max_id: AtomicU64::new(0),
        round_left: AtomicUsize::new(0),
        round_done: Notify::new(),
        joined: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
    });
    let ok = runtime.block_on(async move {
        match args.mode {
            Mode::Fanout => fanout(args, shared).await,
            Mode::Storm => storm(args, shared).await,
        }
    });
    std::process::exit(if ok { 0 } else { 1 });
}
