//! `Proxy::from_env` (the default) reads the process environment when connecting. The only
//! test in its binary, so that setting variables races with nothing; every other proxy test
//! uses `Proxy::from_vars` snapshots. The proxy is the scripted CONNECT relay of
//! tests/support/proxies.rs, so this runs without tinyproxy.

#[path = "support/proxies.rs"]
mod proxies;
#[path = "support/servers.rs"]
mod servers;

use std::net::SocketAddr;

use hybi::{blocking, ClientRequest, ConnectOptions, Error, Proxy, ProxyErrorKind};
use proxies::{FakeProxy, Script};

const VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

fn peer_blocking(url: &str, options: ConnectOptions) -> Result<SocketAddr, Error> {
    let (mut ws, _) = blocking::connect_with(ClientRequest::new(url)?, options)?;
    ws.send_message("x")?;
    assert_eq!(ws.recv()?.as_text(), Some("x"));
    Ok(ws.get_ref().tcp().peer_addr()?)
}

fn peer_tokio(url: &str) -> Result<SocketAddr, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (mut ws, _) = hybi::tokio::connect(url).await?;
            ws.send_message("x").await?;
            assert_eq!(ws.recv().await?.as_text(), Some("x"));
            match ws.get_ref() {
                hybi::tokio::MaybeTlsStream::Plain(tcp) => Ok(tcp.peer_addr()?),
                _ => unreachable!(),
            }
        })
}

#[test]
fn the_default_reads_the_process_environment() {
    for name in VARS {
        std::env::remove_var(name);
    }
    let echo = servers::ws_echo();
    let url = format!("ws://127.0.0.1:{}/", echo.port());
    let fake = FakeProxy::start(Script::Tunnel);
    let default = ConnectOptions::default;

    // Nothing set: direct.
    assert_eq!(peer_blocking(&url, default()).unwrap(), echo);

    // HTTP_PROXY: through the proxy, loopback included, with either adapter's `connect`.
    std::env::set_var("HTTP_PROXY", fake.url());
    assert_eq!(peer_blocking(&url, default()).unwrap(), fake.addr);
    assert_eq!(peer_tokio(&url).unwrap(), fake.addr);
    let (mut ws, _) = blocking::connect(&url).unwrap();
    assert_eq!(ws.get_ref().tcp().peer_addr().unwrap(), fake.addr);
    ws.close_with(hybi::CloseCode::NORMAL, "").unwrap();
    assert_eq!(fake.heads().len(), 3);

    // Proxy::none() overrides it.
    assert_eq!(
        peer_blocking(&url, default().with_proxy(Proxy::none())).unwrap(),
        echo
    );

    // NO_PROXY exempts the host.
    std::env::set_var("NO_PROXY", "127.0.0.1");
    assert_eq!(peer_blocking(&url, default()).unwrap(), echo);
    assert_eq!(peer_tokio(&url).unwrap(), echo);
    std::env::remove_var("NO_PROXY");

    // Read at each connection: a value that is not a proxy URL is an error from then on.
    std::env::set_var("http_proxy", "socks4://127.0.0.1:1080");
    let r = peer_blocking(&url, default());
    assert!(
        matches!(&r, Err(Error::Proxy(e)) if matches!(e.kind(), ProxyErrorKind::Unsupported(_))),
        "{r:?}"
    );
    assert_eq!(fake.heads().len(), 3);
    for name in VARS {
        std::env::remove_var(name);
    }
}
