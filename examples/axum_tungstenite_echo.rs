//! The comparison server for `examples/load.rs` and `examples/idle_clients.rs` against
//! `axum_echo`: the same axum app with axum's own `ws` extractor (tokio-tungstenite
//! underneath), in the usual axum style: read one message, send it back.
//!
//! ```text
//! cargo run --release --example axum_tungstenite_echo -- --port 9004
//! ```

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::serve::ListenerExt;
use axum::Router;

fn port_from_args() -> u16 {
    let mut args = std::env::args().skip(1);
    let mut port = 9004;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("--port needs a number")
            }
            other => {
                eprintln!("unknown argument {other}; usage: axum_tungstenite_echo [--port PORT]");
                std::process::exit(2);
            }
        }
    }
    port
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = port_from_args();
    let app = Router::new().fallback(|ws: WebSocketUpgrade| async move {
        ws.on_upgrade(|mut socket| async move {
            while let Some(Ok(msg)) = socket.recv().await {
                let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
                if echo && socket.send(msg).await.is_err() {
                    return;
                }
            }
        })
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "axum (tokio-tungstenite) echo server listening on ws://{}/",
        listener.local_addr()?
    );
    // TCP_NODELAY, as the other echo servers set it.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
