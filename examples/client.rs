//! A command-line client: connects to a `ws://` or `wss://` URL, sends each line of stdin as a
//! text message and prints what arrives. End stdin (Ctrl-D) to close with 1000.
//!
//! ```text
//! cargo run --example client -- ws://127.0.0.1:9001/
//! cargo run --example client -- --protocol chat ws://127.0.0.1:8080/chat
//! ```

use hybi::{ClientRequest, CloseCode, Config, Error, Message, Timeouts};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut protocols = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--protocol" => protocols.push(args.next().expect("--protocol needs a value")),
            _ if url.is_none() => url = Some(a),
            other => {
                eprintln!("unexpected argument {other}; usage: client [--protocol P]... URL");
                std::process::exit(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("usage: client [--protocol P]... URL");
        std::process::exit(2);
    };
    let request = ClientRequest::new(&url)?.protocols(protocols);
    let (mut ws, response) = hybi::tokio::connect_with(
        request,
        hybi::ConnectOptions::default()
            .with_config(Config::default())
            .with_timeouts(Timeouts::default()),
    )
    .await?;
    eprintln!(
        "connected to {url} (status {}, subprotocol {:?})",
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
