//! A blocking echo server on `std::net`, one thread per connection; no async runtime.
//!
//! ```text
//! cargo run --example echo_blocking -- --addr 127.0.0.1:9003
//! ```

use std::net::TcpListener;

use hybi::blocking;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9003".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            "--port" => addr = format!("127.0.0.1:{}", args.next().expect("--port needs a value")),
            other => {
                eprintln!("unknown argument {other}; usage: echo_blocking [--addr HOST:PORT | --port PORT]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(&addr)?;
    println!(
        "blocking echo server listening on ws://{}/",
        listener.local_addr()?
    );
    for tcp in listener.incoming() {
        let tcp = tcp?;
        std::thread::spawn(move || {
            let mut ws = match blocking::accept(tcp) {
                Ok(ws) => ws,
                Err(e) => return eprintln!("handshake failed: {e}"),
            };
            loop {
                match ws.recv() {
                    Ok(message) => {
                        if let Err(e) = ws.send_message(message) {
                            return eprintln!("send failed: {e}");
                        }
                    }
                    Err(e) if e.is_normal_close() => return,
                    Err(e) => return eprintln!("connection ended: {e}"),
                }
            }
        });
    }
    Ok(())
}
