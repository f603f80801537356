//! A hyper echo server through `hybi::hyper::upgrade`: the WebSocket on every path, every
//! message echoed as it came, permessage-deflate on, limits large enough for Autobahn's
//! section 9, keepalive pings off. hyper's HTTP/1.1 server, one task per connection.
//!
//! ```text
//! cargo run --release --example hyper_echo --features hyper -- --port 9005 [--downcast]
//! ```
//!
//! With `--downcast`, each upgraded connection is taken back from hyper's boxed `Upgraded` to
//! the `TcpStream` underneath (`Upgraded::downcast`), and the bytes hyper read past the request
//! head are handed to the connection first (`WebSocketStream::with_read_buf`): the same
//! WebSocket over the raw socket, to measure what hyper's box costs.

use std::convert::Infallible;

use http_body_util::Full;
use hybi::tokio::WebSocketStream;
use hybi::{Config, DeflateConfig, Error, Timeouts};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Result<(), Error> {
    loop {
        let first = ws.recv().await?;
        ws.queue(first)?;
        while let Some(more) = ws.try_recv() {
            ws.queue(more)?;
        }
        ws.flush_queue().await?;
    }
}

fn report(result: Result<(), Error>) {
    if let Err(e) = result {
        if !e.is_normal_close() {
            eprintln!("connection ended: {e}");
        }
    }
}

async fn serve(
    mut request: hyper::Request<Incoming>,
    config: Config,
    timeouts: Timeouts,
    downcast: bool,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (response, upgrading) = match hybi::hyper::upgrade(&mut request, config, timeouts.clone()) {
        Ok(answer) => answer,
        Err(rejection) => return Ok(rejection.response()),
    };
    tokio::spawn(async move {
        let Ok(mut ws) = upgrading.await else { return };
        if !downcast {
            return report(echo(&mut ws).await);
        }
        // Nothing was read through `ws` yet: its connection is as the handshake left it.
        let (upgraded, driver) = ws.into_parts();
        let conn = driver.into_connection();
        match upgraded.into_inner().downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let tcp = parts.io.into_inner();
                let mut ws = WebSocketStream::with_read_buf(tcp, conn, &parts.read_buf, timeouts);
                report(echo(&mut ws).await);
            }
            Err(upgraded) => {
                let mut ws = WebSocketStream::new(TokioIo::new(upgraded), conn, timeouts);
                report(echo(&mut ws).await);
            }
        }
    });
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut port, mut downcast) = (9005u16, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("--port needs a number")
            }
            "--downcast" => downcast = true,
            other => {
                eprintln!("unknown argument {other}; usage: hyper_echo [--port PORT] [--downcast]");
                std::process::exit(2);
            }
        }
    }
    let config = Config::default()
        .with_max_frame_size(64 << 20)
        .with_max_message_size(64 << 20)
        .with_deflate(DeflateConfig::default());
    let timeouts = Timeouts::default()
        .with_ping_interval(None)
        .with_idle_timeout(None);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "hyper echo server listening on ws://{}/",
        listener.local_addr()?
    );
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (config, timeouts) = (config.clone(), timeouts.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                serve(request, config.clone(), timeouts.clone(), downcast)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
        });
    }
}
