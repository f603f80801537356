//! The Autobahn|Testsuite testee in the server role: a tokio echo server with limits large
//! enough for section 9, permessage-deflate on (sections 12-13) and keepalive pings off (they
//! would be unexpected frames for the suite).
//!
//! ```text
//! cargo run --release --example autobahn_server -- --port 9002
//! ```
//! See `tests/autobahn/` and `../shared/autobahn/README.md` for running the suite.

use hybi::{Config, DeflateConfig, Error, Timeouts};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut port = 9002u16;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("--port needs a number")
            }
            other => {
                eprintln!("unknown argument {other}; usage: autobahn_server [--port PORT]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("autobahn testee listening on ws://127.0.0.1:{port}/");
    let config = Config::default()
        .with_max_frame_size(64 << 20)
        .with_max_message_size(64 << 20)
        .with_deflate(DeflateConfig::default());
    let options = Timeouts::default()
        .with_ping_interval(None)
        .with_idle_timeout(None);
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (config, options) = (config.clone(), options.clone());
        tokio::spawn(async move {
            let Ok(mut ws) =
                hybi::tokio::accept_with(tcp, config, options, |_| Ok(hybi::Accept::new())).await
            else {
                return;
            };
            let result: Result<(), Error> = async {
                loop {
                    let m = ws.recv().await?;
                    ws.queue(m)?;
                    while let Some(m) = ws.try_recv() {
                        ws.queue(m)?;
                    }
                    ws.flush_queue().await?;
                }
            }
            .await;
            if let Err(e) = result {
                if !e.is_normal_close() {
                    eprintln!("{e}");
                }
            }
        });
    }
}
