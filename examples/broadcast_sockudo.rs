//! The sockudo-ws comparison server for `examples/fanout.rs`: every message any client sends
//! goes to ALL connected clients, the sender included, as it came.
//!
//! ```text
//! cargo run --release --example broadcast_sockudo -- --port 9013 [--workers 1]
//! ```
//!
//! Once ready it prints `sockudo broadcast server listening on ws://ADDR/`.
//!
//! One task per connection, as the other broadcast servers, but the list of clients is
//! sockudo-ws's own pub/sub (`sockudo_ws::PubSub`, 3.1): every connection subscribes to one
//! topic and `publish`es what it receives to it, which clones the message into each
//! subscriber's channel. Those channels are sockudo's choice, tokio `mpsc` UNBOUNDED channels,
//! so unlike `broadcast_server` and `broadcast_tungstenite` there is no slow-client limit here.
//! A client's task `feed`s everything waiting in its channel into the stream and flushes once
//! (sockudo corks writes in a 16 KiB buffer). Its HTTP/1.1 tokio handshake
//! (`WebSocketServer::accept_raw`) does not negotiate permessage-deflate (sockudo does that in
//! its axum integration only), so there is no `--deflate`. `--workers N` sets the tokio
//! runtime's worker threads (default 1).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use sockudo_ws::server::WebSocketServer;
use sockudo_ws::{Config, Http1, Message, PubSub, WebSocketStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The one topic every connection subscribes to.
const TOPIC: &str = "all";

struct Args {
    addr: String,
    workers: usize,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:9013".into(),
        workers: 1,
    };
    let mut it = std::env::args().skip(1);
    let usage = |msg: &str| -> ! {
        eprintln!("{msg}\nusage: broadcast_sockudo [--addr HOST:PORT | --port PORT] [--workers N]");
        std::process::exit(2)
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => a.addr = value(),
            "--port" => a.addr = format!("127.0.0.1:{}", value()),
            "--workers" => a.workers = value().parse().unwrap_or_else(|_| usage("N")),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if a.workers == 0 {
        usage("--workers must be at least 1");
    }
    a
}

/// One connection: publishes what it receives, sends what its subscription brings.
async fn session(
    ws: &mut WebSocketStream<TcpStream>,
    pubsub: &PubSub,
    outbox: &mut mpsc::UnboundedReceiver<Message>,
) -> sockudo_ws::Result<()> {
    loop {
        tokio::select! {
            biased;
            out = outbox.recv() => {
                let Some(message) = out else { return Ok(()) };
                ws.feed(message).await?;
                while let Ok(more) = outbox.try_recv() {
                    ws.feed(more).await?;
                }
                ws.flush().await?;
            }
            incoming = ws.next() => match incoming {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    pubsub.publish(TOPIC, message);
                }
                // Pings and the close handshake are answered by sockudo.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}

async fn serve(a: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(&a.addr).await?;
    println!(
        "sockudo broadcast server listening on ws://{}/",
        listener.local_addr()?
    );
    let server = Arc::new(WebSocketServer::<Http1>::new(Config::default()));
    let pubsub = Arc::new(PubSub::new());
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (server, pubsub) = (server.clone(), pubsub.clone());
        tokio::spawn(async move {
            let Ok((mut ws, _)) = server.accept_raw(tcp).await else {
                return;
            };
            let (queue, mut outbox) = mpsc::unbounded_channel();
            let id = pubsub.create_subscriber(queue);
            pubsub.subscribe(id, TOPIC);
            let result = session(&mut ws, &pubsub, &mut outbox).await;
            pubsub.remove_subscriber(id);
            match result {
                Ok(()) | Err(sockudo_ws::Error::ConnectionClosed) => {}
                Err(e) => eprintln!("connection ended: {e}"),
            }
        });
    }
}

fn main() -> std::io::Result<()> {
    let a = args();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.workers)
        .enable_all()
        .build()?
        .block_on(async { tokio::spawn(serve(a)).await.expect("the server task") })
}
