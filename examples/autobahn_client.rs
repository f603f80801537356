//! The Autobahn|Testsuite testee in the client role: asks the fuzzing server for the number of
//! cases, runs each one (echoing every message), then asks it to write the reports.
//!
//! ```text
//! cargo run --release --example autobahn_client -- --url ws://127.0.0.1:9001 --agent hybi
//! ```

use hybi::{ClientRequest, Config, ConnectOptions, DeflateConfig, Error, Timeouts};

async fn connect(
    url: &str,
) -> Result<hybi::tokio::WebSocketStream<hybi::tokio::MaybeTlsStream>, Error> {
    let config = Config::default()
        .with_max_frame_size(64 << 20)
        .with_max_message_size(64 << 20)
        .with_deflate(DeflateConfig::default());
    let options = Timeouts::default().with_ping_interval(None);
    let (ws, _) = hybi::tokio::connect_with(
        ClientRequest::new(url)?,
        ConnectOptions::default()
            .with_config(config)
            .with_timeouts(options),
    )
    .await?;
    Ok(ws)
}

async fn run_case(url: &str) -> Result<(), Error> {
    let mut ws = connect(url).await?;
    loop {
        let m = ws.recv().await?;
        ws.queue(m)?;
        while let Some(m) = ws.try_recv() {
            ws.queue(m)?;
        }
        ws.flush_queue().await?;
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut base = "ws://127.0.0.1:9001".to_string();
    let mut agent = "hybi".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => base = args.next().expect("--url needs a value"),
            "--agent" => agent = args.next().expect("--agent needs a value"),
            other => {
                eprintln!(
                    "unknown argument {other}; usage: autobahn_client [--url URL] [--agent NAME]"
                );
                std::process::exit(2);
            }
        }
    }
    let base = base.trim_end_matches('/');
    let mut ws = connect(&format!("{base}/getCaseCount")).await?;
    let count: u32 = ws
        .recv()
        .await?
        .as_text()
        .and_then(|t| t.trim().parse().ok())
        .expect("case count");
    drop(ws);
    println!("running {count} cases as {agent}");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        match run_case(&url).await {
            Err(Error::Closed(_)) | Err(Error::Protocol(_)) => {}
            Err(e) => eprintln!("case {case}: {e}"),
            Ok(()) => {}
        }
    }
    let mut ws = connect(&format!("{base}/updateReports?agent={agent}")).await?;
    while ws.recv().await.is_ok() {}
    println!("reports updated");
    Ok(())
}
