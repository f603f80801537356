//! The sans-IO core driven by hand over a `std::net::TcpStream`: the loop every adapter runs,
//! with nothing hidden. A client that sends one message, prints the echo and closes.
//!
//! ```text
//! cargo run --example echo_server &            # or any echo server
//! cargo run --example sans_io_loop -- ws://127.0.0.1:9001/
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;

use hybi::{ClientRequest, CloseCode, Config, Connection, Event, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let request = ClientRequest::new(&url)?;
    let mut tcp = TcpStream::connect((request.host(), request.port()))?;
    let mut ws = Connection::client(request, Config::default()); // the upgrade request is queued
    let mut buf = [0u8; 4096];
    loop {
        // 1. Handle every event (answering can queue output; so can taking the last event
        //    before the peer's close frame, which queues our answer to it).
        while let Some(event) = ws.next_event() {
            match event {
                Event::Open(_) => ws.send_text("hello from the sans-IO loop")?,
                Event::Message(Message::Text(text)) => {
                    println!("echo: {text}");
                    ws.close(CloseCode::NORMAL, "done")?;
                }
                Event::Closed(outcome) => {
                    println!("closed: {} (clean: {})", outcome.code, outcome.clean);
                    return Ok(());
                }
                _ => {}
            }
        }
        // 2. Write whatever the connection queued (handshake, frames, pongs, close). Writing
        //    our close frame after the peer's completes the close: `Closed` comes next.
        if !ws.pending_output().is_empty() {
            while !ws.pending_output().is_empty() {
                let n = tcp.write(ws.pending_output())?;
                ws.advance_output(n);
            }
            continue;
        }
        if ws.wants_shutdown() {
            tcp.shutdown(std::net::Shutdown::Write)?;
        }
        // 3. Feed what the peer sent.
        match tcp.read(&mut buf)? {
            0 => ws.handle_eof(),
            n => ws.handle_input(&buf[..n]),
        }
    }
}
