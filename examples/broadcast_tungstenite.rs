//! The tokio-tungstenite comparison server for `examples/fanout.rs`, built like
//! `examples/broadcast_server.rs`: every message any client sends goes to ALL connected
//! clients, the sender included, as it came.
//!
//! ```text
//! cargo run --release --example broadcast_tungstenite -- --port 9011 [--workers 1]
//! ```
//!
//! Once ready it prints `tungstenite broadcast server listening on ws://ADDR/`.
//!
//! One task per connection and one shared list of clients, each with a bounded queue (a tokio
//! `mpsc` channel of `--queue` messages, default 4096); a message is cloned into every queue
//! (tungstenite 0.30 messages hold `Bytes`: a reference count); a client whose queue is full is
//! removed and closed with 1008. A client's task `feed`s everything waiting in its queue into
//! the sink and flushes once, so that a batch goes out in as few writes as tungstenite makes
//! (its write buffer), like hybi's `queue` + one write. tokio-tungstenite has no
//! permessage-deflate, so there is no `--deflate`. `--workers N` sets the tokio runtime's
//! worker threads (default 1).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

struct Args {
    addr: String,
    workers: usize,
    queue: usize,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:9011".into(),
        workers: 1,
        queue: 4096,
    };
    let mut it = std::env::args().skip(1);
    let usage = |msg: &str| -> ! {
        eprintln!(
            "{msg}\nusage: broadcast_tungstenite [--addr HOST:PORT | --port PORT] [--workers N] \
             [--queue MESSAGES]"
        );
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
            "--queue" => a.queue = value().parse().unwrap_or_else(|_| usage("MESSAGES")),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if a.workers == 0 || a.queue == 0 {
        usage("--workers and --queue must be at least 1");
    }
    a
}

struct Client {
    id: u64,
    queue: mpsc::Sender<Message>,
}

/// Every connected client, in connection order.
#[derive(Default)]
struct Clients {
    list: Mutex<Vec<Client>>,
    next_id: AtomicU64,
    dropped: AtomicU64,
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, Vec<Client>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn join(&self, queue: mpsc::Sender<Message>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Client { id, queue });
        id
    }

    fn leave(&self, id: u64) {
        self.lock().retain(|c| c.id != id);
    }

    /// Queues `message` for every client; a client whose queue is full is removed.
    fn broadcast(&self, message: &Message) {
        let mut dropped = 0;
        self.lock()
            .retain(|c| match c.queue.try_send(message.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    dropped += 1;
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            });
        if dropped > 0 {
            let total = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
            eprintln!("{dropped} client(s) dropped: queue full ({total} so far)");
        }
    }
}

/// One connection: broadcasts what it receives, sends what its queue holds.
async fn session(
    ws: &mut WebSocketStream<TcpStream>,
    clients: &Clients,
    outbox: &mut mpsc::Receiver<Message>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    loop {
        tokio::select! {
            biased;
            out = outbox.recv() => {
                let Some(message) = out else {
                    let close = CloseFrame { code: CloseCode::Policy, reason: "too slow".into() };
                    ws.close(Some(close)).await?;
                    while let Some(Ok(_)) = ws.next().await {}
                    return Ok(());
                };
                ws.feed(message).await?;
                while let Ok(more) = outbox.try_recv() {
                    ws.feed(more).await?;
                }
                ws.flush().await?;
            }
            incoming = ws.next() => match incoming {
                Some(Ok(message)) if message.is_text() || message.is_binary() => {
                    clients.broadcast(&message);
                }
                // Pings are answered by tungstenite, on the next write or flush.
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
        "tungstenite broadcast server listening on ws://{}/",
        listener.local_addr()?
    );
    let clients = Arc::new(Clients::default());
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let clients = clients.clone();
        let depth = a.queue;
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let (queue, mut outbox) = mpsc::channel(depth);
            let id = clients.join(queue);
            let result = session(&mut ws, &clients, &mut outbox).await;
            clients.leave(id);
            use tokio_tungstenite::tungstenite::Error as E;
            match result {
                Ok(()) | Err(E::ConnectionClosed | E::AlreadyClosed) => {}
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
