//! A tokio echo server: every message comes back as it came (text as text, binary as binary).
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9001
//! ```
//!
//! It answers every message that one read brought in, then writes all the answers with one
//! vectored write (`recv` + `try_recv` + `queue` + one `flush`): the pattern for low system-call
//! counts under load.

use hybi::tokio::WebSocketStream;
use hybi::{Config, Error, Timeouts};
use tokio::net::{TcpListener, TcpStream};

fn addr_from_args() -> String {
    let mut args = std::env::args().skip(1);
    let mut addr = std::env::var("ECHO_ADDR").unwrap_or_else(|_| "127.0.0.1:9001".into());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            "--port" => addr = format!("127.0.0.1:{}", args.next().expect("--port needs a value")),
            other => {
                eprintln!(
                    "unknown argument {other}; usage: echo_server [--addr HOST:PORT | --port PORT]"
                );
                std::process::exit(2);
            }
        }
    }
    addr
}

/// Borrows the stream: the task's future then holds one `WebSocketStream`, not a second copy
/// moved into this function's future.
async fn echo(ws: &mut WebSocketStream<TcpStream>) -> Result<(), Error> {
    loop {
        let first = ws.recv().await?;
        ws.queue(first)?;
        while let Some(more) = ws.try_recv() {
            ws.queue(more)?;
        }
        ws.flush_queue().await?;
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind(addr_from_args()).await?;
    println!("echo server listening on ws://{}/", listener.local_addr()?);
    let config = Config::default();
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let config = config.clone();
        tokio::spawn(async move {
            // `let else`: the stream is moved straight into `ws`, and the task's future holds one
            // `WebSocketStream` (a `Result` kept in a local and then matched would be a second).
            let accepting = hybi::tokio::accept_with(tcp, config, Timeouts::default(), |_| {
                Ok(hybi::Accept::new())
            });
            let Ok(mut ws) = accepting.await else { return };
            match echo(&mut ws).await {
                Err(e) if e.is_normal_close() => {}
                Err(e) => eprintln!("connection ended: {e}"),
                Ok(()) => {}
            }
        });
    }
}
