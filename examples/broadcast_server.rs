//! A broadcast server for `examples/fanout.rs`: every message any client sends goes to ALL
//! connected clients, the sender included, as it came (text as text, binary as binary).
//!
//! ```text
//! cargo run --release --example broadcast_server -- --port 9010 [--workers 1] [--deflate]
//! cargo run --release --example broadcast_server -- --addr 127.0.0.1:9010 --queue 4096
//! ```
//!
//! Once ready it prints `hybi broadcast server listening on ws://ADDR/`.
//!
//! Built the way `examples/broadcast_tungstenite.rs` and `tests/interop/node/broadcast_server.mjs`
//! are, for side-by-side runs: one task per connection and one shared list of clients, each
//! with a bounded queue (a tokio `mpsc` channel of `--queue` messages, default 4096). A message
//! that arrives is cloned into every queue (a `Bytes` reference count, not a copy); the
//! broadcaster never waits: a client whose queue is full is removed from the list and closed
//! with 1008 "too slow". A client's task takes everything waiting in its queue, `queue`s it on
//! its `WebSocketStream` and writes it all with one vectored write, taking from the queue only
//! while less than 256 KiB of output waits for its socket.
//!
//! Each message is a [`hybi::PreparedMessage`]: framed once, and with `--deflate` (for the
//! clients that ask for `server_no_context_takeover`, as `fanout --deflate` does) compressed
//! once, then queued on every connection by reference. `--plain` sends it the ordinary way
//! instead (`queue`: each connection frames, and compresses, the message itself), for
//! side-by-side runs.
//!
//! `--deflate` accepts permessage-deflate offers (`DeflateConfig::default()`: level 6, messages
//! of 32 bytes or more compressed); `fanout --deflate` asks for `server_no_context_takeover`, so
//! every message is compressed on its own. `--workers N` sets the tokio runtime's worker threads
//! (default 1: give the server one core, e.g. `taskset -c 0`).

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use hybi::tokio::WebSocketStream;
use hybi::{Accept, CloseCode, Config, DeflateConfig, Error, Message, PreparedMessage, Timeouts};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Output bytes a connection may hold for its socket before its task stops taking from its
/// queue.
const WRITE_HIGH: usize = 256 << 10;

struct Args {
    addr: String,
    workers: usize,
    deflate: bool,
    plain: bool,
    queue: usize,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:9010".into(),
        workers: 1,
        deflate: false,
        plain: false,
        queue: 4096,
    };
    let mut it = std::env::args().skip(1);
    let usage = |msg: &str| -> ! {
        eprintln!(
            "{msg}\nusage: broadcast_server [--addr HOST:PORT | --port PORT] [--workers N] \
             [--deflate] [--plain] [--queue MESSAGES]"
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
            "--deflate" => a.deflate = true,
            "--plain" => a.plain = true,
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
    queue: mpsc::Sender<PreparedMessage>,
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
        // Nothing panics while holding the lock; a poisoned list is still usable.
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn join(&self, queue: mpsc::Sender<PreparedMessage>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Client { id, queue });
        id
    }

    fn leave(&self, id: u64) {
        self.lock().retain(|c| c.id != id);
    }

    /// Queues `message` for every client. A client whose queue is full is removed: its queue
    /// closes, and its task closes the connection with 1008.
    fn broadcast(&self, message: Message) {
        let message = PreparedMessage::new(message);
        let mut dropped = 0;
        self.lock()
            .retain(|c| match c.queue.try_send(message.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    dropped += 1;
                    false
                }
                // Its task is ending and leaves by itself.
                Err(TrySendError::Closed(_)) => false,
            });
        if dropped > 0 {
            let total = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
            eprintln!("{dropped} client(s) dropped: queue full ({total} so far)");
        }
    }
}

enum Step {
    /// A message from the client, or how its connection ended.
    In(Result<Message, Error>),
    /// A message from the client's queue; `None` once the list dropped the client.
    Out(Option<PreparedMessage>),
}

/// One connection: broadcasts what it receives, sends what its queue holds.
///
/// Borrows the stream: the task's future then holds one `WebSocketStream`, not a second copy
/// moved into this function's future.
async fn session(
    ws: &mut WebSocketStream<TcpStream>,
    clients: &Clients,
    outbox: &mut mpsc::Receiver<PreparedMessage>,
    plain: bool,
) -> Result<(), Error> {
    let send = |ws: &mut WebSocketStream<TcpStream>, m: PreparedMessage| -> Result<(), Error> {
        if plain {
            ws.queue(m.message().clone())
        } else {
            ws.queue_prepared(&m)
        }
    };
    loop {
        // The queue first, while the socket keeps up; polling the connection writes what was
        // queued on it and registers for writability, so a full socket wakes us when it drains.
        let step = poll_fn(|cx| {
            if ws.connection().buffered_amount() < WRITE_HIGH {
                if let Poll::Ready(m) = outbox.poll_recv(cx) {
                    return Poll::Ready(Step::Out(m));
                }
            }
            if let Poll::Ready(r) = ws.poll_recv(cx) {
                return Poll::Ready(Step::In(r));
            }
            // The poll wrote output: below the mark again, the queue must be polled now.
            if ws.connection().buffered_amount() < WRITE_HIGH {
                if let Poll::Ready(m) = outbox.poll_recv(cx) {
                    return Poll::Ready(Step::Out(m));
                }
            }
            Poll::Pending
        })
        .await;
        match step {
            Step::In(Ok(message)) => clients.broadcast(message),
            Step::In(Err(e)) => return Err(e),
            Step::Out(Some(message)) => {
                // Everything waiting goes out in one vectored write, on the next poll.
                send(ws, message)?;
                while ws.connection().buffered_amount() < WRITE_HIGH {
                    let Ok(more) = outbox.try_recv() else { break };
                    send(ws, more)?;
                }
            }
            Step::Out(None) => {
                ws.connection_mut()
                    .close(CloseCode::POLICY_VIOLATION, "too slow")?;
                while ws.recv().await.is_ok() {}
                return Ok(());
            }
        }
    }
}

async fn serve(a: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(&a.addr).await?;
    println!(
        "hybi broadcast server listening on ws://{}/",
        listener.local_addr()?
    );
    let mut config = Config::default();
    if a.deflate {
        config = config.with_deflate(DeflateConfig::default());
    }
    let clients = Arc::new(Clients::default());
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (config, clients) = (config.clone(), clients.clone());
        let (depth, plain) = (a.queue, a.plain);
        tokio::spawn(async move {
            let accepting =
                hybi::tokio::accept_with(tcp, config, Timeouts::default(), |_| Ok(Accept::new()));
            let Ok(mut ws) = accepting.await else { return };
            let (queue, mut outbox) = mpsc::channel(depth);
            let id = clients.join(queue);
            let result = session(&mut ws, &clients, &mut outbox, plain).await;
            clients.leave(id);
            match result {
                Err(e) if !e.is_normal_close() => eprintln!("connection ended: {e}"),
                _ => {}
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
