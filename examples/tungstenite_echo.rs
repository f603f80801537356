//! The comparison server for `examples/load.rs`: a tokio-tungstenite echo server built like
//! `echo_server` (one task per connection, TCP_NODELAY), in the usual tungstenite style: read
//! one message, send it back (one write per message).
//!
//! ```text
//! cargo run --release --example tungstenite_echo -- --addr 127.0.0.1:9002
//! ```

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

fn addr_from_args() -> String {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9002".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            other => {
                eprintln!("unknown argument {other}; usage: tungstenite_echo [--addr HOST:PORT]");
                std::process::exit(2);
            }
        }
    }
    addr
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind(addr_from_args()).await?;
    println!(
        "tungstenite echo server listening on ws://{}/",
        listener.local_addr()?
    );
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_binary() || msg.is_text()) && ws.send(msg).await.is_err() {
                    return;
                }
            }
        });
    }
}
