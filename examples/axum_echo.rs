//! An axum echo server through hybi's extractor (`hybi::axum::WebSocketUpgrade`): the
//! WebSocket on every path, every message echoed as it came, permessage-deflate on, limits
//! large enough for Autobahn's section 9, keepalive pings off (the suite would see them as
//! unexpected frames). The Autobahn|Testsuite testee and a load-test target.
//!
//! ```text
//! cargo run --release --example axum_echo --features axum -- --port 9003
//! ```
//!
//! Each connection answers every message one read brought in, then writes all the answers
//! with one vectored write (`recv` + `try_recv` + `queue` + one `flush_queue`).

use axum::serve::ListenerExt;
use axum::Router;
use hybi::axum::{WebSocket, WebSocketUpgrade};
use hybi::{Config, DeflateConfig, Error, Timeouts};

fn port_from_args() -> u16 {
    let mut args = std::env::args().skip(1);
    let mut port = 9003;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("--port needs a number")
            }
            other => {
                eprintln!("unknown argument {other}; usage: axum_echo [--port PORT]");
                std::process::exit(2);
            }
        }
    }
    port
}

/// Borrows the stream, so the task's future holds one `WebSocket`.
async fn echo(ws: &mut WebSocket) -> Result<(), Error> {
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
    let port = port_from_args();
    let config = Config::default()
        .with_max_frame_size(64 << 20)
        .with_max_message_size(64 << 20)
        .with_deflate(DeflateConfig::default());
    let timeouts = Timeouts::default()
        .with_ping_interval(None)
        .with_idle_timeout(None);
    // Every path, every method: `any` serves HTTP/1.1 upgrades and HTTP/2 extended CONNECT.
    let app = Router::new().fallback(move |ws: WebSocketUpgrade| {
        let (config, timeouts) = (config.clone(), timeouts.clone());
        async move {
            ws.with_config(config)
                .with_timeouts(timeouts)
                .on_upgrade(|mut ws| async move {
                    if let Err(e) = echo(&mut ws).await {
                        if !e.is_normal_close() {
                            eprintln!("connection ended: {e}");
                        }
                    }
                })
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "axum echo server listening on ws://{}/",
        listener.local_addr()?
    );
    // TCP_NODELAY, as the other echo servers set it.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
