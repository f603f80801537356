//! A command-line client: connects to a `ws://` or `wss://` URL, sends each line of stdin as a
//! text message and prints what arrives. End stdin (Ctrl-D) to close with 1000.
//!
//! Goes through the proxy the environment names, as curl reads it (`HTTPS_PROXY` for
//! `wss://`, `HTTP_PROXY` for `ws://`, `ALL_PROXY`, `NO_PROXY`), unless `--proxy URL`
//! (`http://`, `socks5://`, `socks5h://`, credentials as `user:password@`) or `--no-proxy`
//! says otherwise. Follows up to 10 redirects.
//!
//! ```text
//! cargo run --example client -- ws://127.0.0.1:9001/
//! cargo run --example client -- --protocol chat ws://127.0.0.1:8080/chat
//! cargo run --example client -- --proxy socks5h://127.0.0.1:1080 wss://echo.example/
//! HTTPS_PROXY=http://proxy.corp:3128 cargo run --example client -- wss://echo.example/
//! ```

use hybi::{ClientRequest, CloseCode, Config, Error, Message, Proxy, Timeouts};
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str = "usage: client [--protocol P]... [--proxy URL | --no-proxy] URL";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut protocols = Vec::new();
    let mut proxy = Proxy::from_env();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--protocol" => protocols.push(args.next().expect("--protocol needs a value")),
            "--proxy" => proxy = Proxy::url(&args.next().expect("--proxy needs a URL"))?,
            "--no-proxy" => proxy = Proxy::none(),
            _ if url.is_none() && !a.starts_with("--") => url = Some(a),
            other => {
                eprintln!("unexpected argument {other}; {USAGE}");
                std::process::exit(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let request = ClientRequest::new(&url)?.protocols(protocols);
    match proxy.for_request(&request)? {
        Some(through) => eprintln!("connecting to {url} through {through}"),
        None => eprintln!("connecting to {url} directly"),
    }
    let (mut ws, response) = hybi::tokio::connect_with(
        request,
        hybi::ConnectOptions::default()
            .with_config(Config::default())
            .with_timeouts(Timeouts::default())
            .with_proxy(proxy),
    )
    .await?;
    eprintln!(
        "connected (status {}, subprotocol {:?})",
        response.status(),
        response.protocol()
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line? {
                Some(line) => ws.send_message(line).await?,
                None => {
                    stdin_open = false;
                    ws.close_with(CloseCode::NORMAL, "bye").await?;
                }
            },
            message = ws.recv() => match message {
                Ok(Message::Text(text)) => println!("{text}"),
                Ok(Message::Binary(data)) => println!("<{} bytes of binary data>", data.len()),
                Err(Error::Closed(outcome)) => {
                    eprintln!("closed: {} {:?}", outcome.code, outcome.reason);
                    return Ok(());
                }
                Err(e) => return Err(e),
            },
        }
    }
}
