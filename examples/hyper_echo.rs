//! A hyper echo server through `hybi::hyper::upgrade`: the WebSocket on every path, every
//! message echoed as it came, permessage-deflate on, limits large enough for Autobahn's
//! section 9, keepalive pings off. hyper's HTTP/1.1 server, one task per connection.
//!
//! ```text
//! cargo run --release --example hyper_echo --features http2 -- --port 9005 [--downcast]
//!     [--http2 [--max-streams N]]
//! ```
//!
//! With `--downcast`, each upgraded connection is taken back from hyper's boxed `Upgraded` to
//! the `TcpStream` underneath (`Upgraded::downcast`), and the bytes hyper read past the request
//! head are handed to the connection first (`WebSocketStream::with_read_buf`): the same
//! WebSocket over the raw socket, to measure what hyper's box costs.
//!
//! With `--http2`, connections are served by hyper-util's auto builder instead: HTTP/1.1, and
//! HTTP/2 with prior knowledge (h2c, over plain TCP) with extended CONNECT enabled (RFC 8441,
//! `http2().enable_connect_protocol()`), so WebSockets arrive either way on the same port.
//! `--max-streams N` (default 1000) sets the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS, which is
//! also the most WebSockets one HTTP/2 connection carries at once (hyper's default is 200). The
//! flow-control windows are 256 KiB per stream and 16 MiB per connection (see the comment in
//! `main`).

use std::convert::Infallible;

use http_body_util::Full;
use hybi::tokio::WebSocketStream;
use hybi::{Config, DeflateConfig, Error, Timeouts};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
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
    let (mut port, mut downcast, mut http2, mut max_streams) = (9005u16, false, false, 1000u32);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("--port needs a number")
            }
            "--downcast" => downcast = true,
            "--http2" => http2 = true,
            "--max-streams" => {
                max_streams = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("--max-streams needs a number")
            }
            other => {
                eprintln!(
                    "unknown argument {other}; usage: hyper_echo [--port PORT] [--downcast] \
                     [--http2 [--max-streams N]]"
                );
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
            if http2 {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                // A connection window well above the stream window: a WebSocket that stops
                // reading holds back at most 256 KiB of its client's data, and the other
                // WebSockets on the connection keep flowing (with hyper's defaults, 1 MiB
                // each, one such stream stalls them all; tests/http2_server.rs).
                builder
                    .http2()
                    .enable_connect_protocol()
                    .max_concurrent_streams(max_streams)
                    .initial_stream_window_size(256 << 10)
                    .initial_connection_window_size(16 << 20);
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .await;
                return;
            }
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
        });
    }
}
