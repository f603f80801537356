//! Memory per idle connection: opens N WebSocket connections to a URL and leaves them idle,
//! reading the server's resident memory (`VmRSS` of `/proc/PID/status`) before and after.
//!
//! ```text
//! ulimit -n 20000   # in both shells: the server and this tool each hold N sockets
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9001 &
//! cargo run --release --example idle_clients -- --url ws://127.0.0.1:9001/ \
//!     --clients 10000 --pid $!
//! ```
//!
//! `--protocol NAME` offers a subprotocol (the chat server wants `--url ws://HOST/chat
//! --protocol chat`); `--hold SECONDS` (default 3) is the pause before the second reading;
//! `--echo BYTES` makes every client send one binary message of that size and read its echo
//! before going idle (with `--hold 25`, past the server's 20 s keepalive interval, the reading
//! shows what an idle connection keeps once the server has noticed it is idle).
//!
//! `--http2 K` opens the clients as WebSocket streams on HTTP/2 connections, K streams on each
//! (RFC 8441 extended CONNECT, h2c with prior knowledge, hybi's own HTTP/2 client:
//! [`hybi::http2::Http2Connection`], one `connect` per K clients, then one `open` per stream):
//! the reading is then the memory per WebSocket on a shared HTTP/2 connection. The server must
//! allow extended CONNECT and at least K concurrent streams per connection (`hyper_echo --http2
//! --max-streams K`; beyond the server's limit, `open` waits for a stream to end and fails at
//! the handshake timeout):
//!
//! ```text
//! cargo run --release --example hyper_echo -- --port 9005 --http2 --max-streams 1000 &
//! cargo run --release --example idle_clients -- --url ws://127.0.0.1:9005/ \
//!     --clients 10000 --http2 1000 --pid $!
//! ```
//!
//! The soft `nofile` limit is raised to the hard limit at start. Prints the server's RSS growth
//! per idle client (KB), after every client finished its handshake and a settling pause.

use std::time::{Duration, Instant};

use hybi::http2::{Http2Connection, Http2WebSocket};
use hybi::{ClientRequest, Config, ConnectOptions, Timeouts};

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server pid");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_cur
    }
}

type Ws = hybi::tokio::WebSocketStream<hybi::tokio::MaybeTlsStream>;
type Joined = Result<Result<(Ws, hybi::Response), hybi::Error>, tokio::task::JoinError>;

fn collect(r: Option<Joined>, open: &mut Vec<Ws>) {
    match r {
        Some(Ok(Ok((ws, _)))) => open.push(ws),
        Some(Ok(Err(e))) => eprintln!("connect: {e}"),
        Some(Err(e)) => eprintln!("task: {e}"),
        None => {}
    }
}

type H2Joined = Result<Result<Http2WebSocket, hybi::Error>, tokio::task::JoinError>;

fn collect_h2(r: Option<H2Joined>, open: &mut Vec<Http2WebSocket>) {
    match r {
        Some(Ok(Ok(ws))) => open.push(ws),
        Some(Ok(Err(e))) => eprintln!("extended CONNECT: {e}"),
        Some(Err(e)) => eprintln!("task: {e}"),
        None => {}
    }
}

fn main() {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut clients = 10_000usize;
    let mut pid = None;
    let mut hold = 3.0f64;
    let mut protocol = None;
    let mut echo = None;
    let mut http2: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("flag needs a value");
        match a.as_str() {
            "--url" => url = v,
            "--clients" => clients = v.parse().expect("--clients N"),
            "--pid" => pid = Some(v.parse::<u32>().expect("--pid PID")),
            "--hold" => hold = v.parse().expect("--hold SECONDS"),
            "--protocol" => protocol = Some(v),
            "--echo" => echo = Some(v.parse::<usize>().expect("--echo BYTES")),
            "--http2" => http2 = Some(v.parse::<usize>().expect("--http2 STREAMS_PER_CONNECTION")),
            other => panic!(
                "unknown argument {other}; usage: idle_clients --url URL --clients N --pid PID \
                 [--hold SECONDS] [--protocol NAME] [--echo BYTES] [--http2 STREAMS_PER_CONNECTION]"
            ),
        }
    }
    let limit = raise_nofile();
    if (clients as u64) + 64 > limit {
        eprintln!("nofile limit {limit} is too low for {clients} clients");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let before = pid.map(vm_rss_kb);
        let t0 = Instant::now();
        let mut open = Vec::with_capacity(clients);
        let mut open_h2 = Vec::new();
        let mut h2_connections = 0;
        // A few connects in flight at a time: the listen backlog is finite.
        let mut pending = tokio::task::JoinSet::new();
        let options = Timeouts::default()
            .with_ping_interval(None)
            .with_pong_timeout(None);
        if let Some(per_connection) = http2 {
            let mut streams = tokio::task::JoinSet::new();
            let mut h2 = None;
            for i in 0..clients {
                if i % per_connection.max(1) == 0 {
                    let connect = ConnectOptions::default().with_timeouts(options.clone());
                    h2 = Some(
                        Http2Connection::connect(&url, &connect)
                            .await
                            .expect("HTTP/2 connection"),
                    );
                    h2_connections += 1;
                }
                if streams.len() >= 64 {
                    collect_h2(streams.join_next().await, &mut open_h2);
                }
                let (h2, url, protocol) = (h2.clone().unwrap(), url.clone(), protocol.clone());
                streams.spawn(async move {
                    let mut req = ClientRequest::new(&url)?;
                    if let Some(p) = protocol {
                        req = req.protocol(p);
                    }
                    let (mut ws, _) = h2.open(req).await?;
                    if let Some(n) = echo {
                        ws.send_message(vec![7u8; n]).await?;
                        ws.recv().await?;
                    }
                    Ok(ws)
                });
            }
            while let Some(r) = streams.join_next().await {
                collect_h2(Some(r), &mut open_h2);
            }
        }
        for _ in 0..clients * usize::from(http2.is_none()) {
            if pending.len() >= 64 {
                collect(pending.join_next().await, &mut open);
            }
            let (url, options, protocol) = (url.clone(), options.clone(), protocol.clone());
            pending.spawn(async move {
                let mut req = ClientRequest::new(&url).unwrap();
                if let Some(p) = protocol {
                    req = req.protocol(p);
                }
                let (mut ws, response) = hybi::tokio::connect_with(
                    req,
                    ConnectOptions::default()
                        .with_config(Config::default())
                        .with_timeouts(options),
                )
                .await?;
                if let Some(n) = echo {
                    ws.send_message(vec![7u8; n]).await?;
                    ws.recv().await?;
                }
                Ok((ws, response))
            });
        }
        while let Some(r) = pending.join_next().await {
            collect(Some(r), &mut open);
        }
        let opened = t0.elapsed();
        tokio::time::sleep(Duration::from_secs_f64(hold)).await;
        let after = pid.map(vm_rss_kb);
        let count = open.len() + open_h2.len();
        let over = match http2 {
            Some(_) => format!(" (streams on {h2_connections} HTTP/2 connections)"),
            None => String::new(),
        };
        print!(
            "idle clients={count}{over} opened in {:.2}s ({:.0}/s)",
            opened.as_secs_f64(),
            count as f64 / opened.as_secs_f64()
        );
        if let (Some(b), Some(a)) = (before, after) {
            print!(
                ": server RSS {b} kB -> {a} kB, {:.2} KB per idle {}",
                (a as f64 - b as f64) / count as f64,
                if http2.is_some() {
                    "stream"
                } else {
                    "connection"
                }
            );
        }
        println!();
        drop((open, open_h2));
    });
}
