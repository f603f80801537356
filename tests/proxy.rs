//! Clients through real proxies nobody here wrote: tinyproxy (HTTP CONNECT, with and without
//! Basic auth) and Dante (SOCKS5, with and without username/password), started by each test on
//! a free 127.0.0.1 port (see tests/support/proxies.rs; a test whose proxy is not installed
//! prints `skipped:` and passes, CI installs both). Each connection goes to a local hybi echo
//! server, `ws://` and `wss://` (certificate for `localhost`), with the blocking and the tokio
//! adapter; a connection counts as proxied when its TCP peer is the proxy.

#[path = "support/proxies.rs"]
mod proxies;
#[path = "support/servers.rs"]
mod servers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hybi::{
    blocking, ClientRequest, CloseCode, ConnectOptions, Error, Message, Proxy, ProxyErrorKind,
    Timeouts,
};
use proxies::{danted, socks_user, tinyproxy, Service, SOCKS_PASSWORD, SOCKS_USER};
use servers::{echo_server, ws_echo, wss_echo};

#[derive(Debug, Clone, Copy)]
enum Adapter {
    Blocking,
    Tokio,
}

const ADAPTERS: [Adapter; 2] = [Adapter::Blocking, Adapter::Tokio];

/// The echo servers: `ws://127.0.0.1`, `wss://localhost` (and its client TLS config),
/// `ws://[::1]`.
struct Targets {
    ws: String,
    wss: String,
    ws6: String,
    tls: Arc<rustls::ClientConfig>,
}

fn targets() -> Targets {
    let ws = ws_echo();
    let (wss, tls) = wss_echo();
    let ws6 = echo_server("[::1]:0", None).0;
    Targets {
        ws: format!("ws://127.0.0.1:{}/echo", ws.port()),
        wss: format!("wss://localhost:{}/secure", wss.port()),
        ws6: format!("ws://[::1]:{}/six", ws6.port()),
        tls,
    }
}

fn options(proxy: Proxy, tls: &Arc<rustls::ClientConfig>) -> ConnectOptions {
    ConnectOptions::default()
        .with_proxy(proxy)
        .with_tls_config(tls.clone())
        .with_timeouts(Timeouts::default().with_handshake_timeout(Some(Duration::from_secs(5))))
}

/// Connects to `url`, has one message echoed, closes; returns the client's TCP peer.
fn echo(adapter: Adapter, url: &str, options: ConnectOptions) -> Result<SocketAddr, Error> {
    let text = format!("hello {url} ({adapter:?})");
    match adapter {
        Adapter::Blocking => {
            let (mut ws, response) = blocking::connect_with(ClientRequest::new(url)?, options)?;
            assert_eq!(response.status(), 101);
            let peer = ws.get_ref().tcp().peer_addr()?;
            ws.send_message(text.as_str())?;
            assert_eq!(ws.recv()?, Message::text(text));
            ws.close_with(CloseCode::NORMAL, "")?;
            assert!(ws.recv().unwrap_err().is_normal_close());
            Ok(peer)
        }
        Adapter::Tokio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let request = ClientRequest::new(url)?;
                let (mut ws, response) = hybi::tokio::connect_with(request, options).await?;
                assert_eq!(response.status(), 101);
                let peer = match ws.get_ref() {
                    hybi::tokio::MaybeTlsStream::Plain(tcp) => tcp.peer_addr()?,
                    hybi::tokio::MaybeTlsStream::Tls(tls) => tls.get_ref().0.peer_addr()?,
                    _ => unreachable!(),
                };
                ws.send_message(text.as_str()).await?;
                assert_eq!(ws.recv().await?, Message::text(text));
                ws.close_with(CloseCode::NORMAL, "").await?;
                assert!(ws.recv().await.unwrap_err().is_normal_close());
                Ok(peer)
            }),
    }
}

/// `echo` must succeed through `proxy`.
fn through(service: &Service, adapter: Adapter, url: &str, options: ConnectOptions) {
    match echo(adapter, url, options) {
        Ok(peer) => assert_eq!(
            peer,
            service.addr(),
            "{url} ({adapter:?}) went around {}",
            service.name
        ),
        Err(e) => panic!(
            "{url} ({adapter:?}) through {}: {e}\n{}",
            service.name,
            service.log()
        ),
    }
}

/// The proxy error of `echo`, which must fail.
fn proxy_error(adapter: Adapter, url: &str, options: ConnectOptions) -> hybi::ProxyError {
    match echo(adapter, url, options) {
        Err(Error::Proxy(e)) => e,
        other => panic!("{url} ({adapter:?}): expected a proxy error, got {other:?}"),
    }
}

#[test]
fn tinyproxy_tunnels_ws_wss_and_ipv6_literals() {
    let Some(proxy) = tinyproxy(None) else { return };
    let t = targets();
    let url = format!("http://127.0.0.1:{}", proxy.port);
    for adapter in ADAPTERS {
        for target in [&t.ws, &t.wss, &t.ws6] {
            through(
                &proxy,
                adapter,
                target,
                options(Proxy::url(&url).unwrap(), &t.tls),
            );
        }
    }
}

#[test]
fn tinyproxy_basic_auth() {
    let Some(proxy) = tinyproxy(Some(("alice", "s3cret-pw"))) else {
        return;
    };
    let t = targets();
    let port = proxy.port;
    let good = format!("http://alice:s3cret%2Dpw@127.0.0.1:{port}");
    for adapter in ADAPTERS {
        for target in [&t.ws, &t.wss] {
            through(
                &proxy,
                adapter,
                target,
                options(Proxy::url(&good).unwrap(), &t.tls),
            );
        }
        // No credentials: 407. Wrong ones: tinyproxy 1.11 answers 401 (407 elsewhere).
        let none = format!("http://127.0.0.1:{port}");
        let e = proxy_error(adapter, &t.ws, options(Proxy::url(&none).unwrap(), &t.tls));
        assert!(
            matches!(e.kind(), ProxyErrorKind::AuthRequired { status: 407 }),
            "{e}"
        );
        assert_eq!(e.proxy(), none);
        let wrong = format!("http://alice:wrong@127.0.0.1:{port}");
        let e = proxy_error(
            adapter,
            &t.wss,
            options(Proxy::url(&wrong).unwrap(), &t.tls),
        );
        assert!(
            matches!(e.kind(), ProxyErrorKind::AuthRequired { status: 401 | 407 }),
            "{e}"
        );
        assert_eq!(e.proxy(), none, "the error must not show the credentials");
        assert!(!e.to_string().contains("wrong"), "{e}");
    }
}

#[test]
fn tinyproxy_cannot_reach_the_target() {
    let Some(proxy) = tinyproxy(None) else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let target = format!("ws://127.0.0.1:{closed}/");
    let tls = servers::certs().client;
    for adapter in ADAPTERS {
        let e = proxy_error(adapter, &target, options(Proxy::url(&url).unwrap(), &tls));
        assert!(matches!(e.kind(), ProxyErrorKind::Status(500..=599)), "{e}");
    }
}

#[test]
fn dante_socks5_and_socks5h() {
    let Some(proxy) = danted(false) else { return };
    let t = targets();
    for scheme in ["socks5", "socks5h"] {
        let url = format!("{scheme}://127.0.0.1:{}", proxy.port);
        for adapter in ADAPTERS {
            for target in [&t.ws, &t.wss, &t.ws6] {
                through(
                    &proxy,
                    adapter,
                    target,
                    options(Proxy::url(&url).unwrap(), &t.tls),
                );
            }
        }
    }
}

#[test]
fn dante_username_password() {
    if !socks_user() {
        return;
    }
    let Some(proxy) = danted(true) else { return };
    let t = targets();
    let port = proxy.port;
    for adapter in ADAPTERS {
        for scheme in ["socks5", "socks5h"] {
            let good = format!("{scheme}://{SOCKS_USER}:{SOCKS_PASSWORD}@127.0.0.1:{port}");
            for target in [&t.ws, &t.wss] {
                through(
                    &proxy,
                    adapter,
                    target,
                    options(Proxy::url(&good).unwrap(), &t.tls),
                );
            }
        }
        let wrong = format!("socks5h://{SOCKS_USER}:nope@127.0.0.1:{port}");
        let e = proxy_error(adapter, &t.ws, options(Proxy::url(&wrong).unwrap(), &t.tls));
        assert!(
            matches!(e.kind(), ProxyErrorKind::SocksAuth(s) if *s != 0),
            "{e}"
        );
        assert_eq!(e.proxy(), format!("socks5h://127.0.0.1:{port}"));
        let none = format!("socks5h://127.0.0.1:{port}");
        let e = proxy_error(adapter, &t.wss, options(Proxy::url(&none).unwrap(), &t.tls));
        assert!(
            matches!(e.kind(), ProxyErrorKind::SocksNoAcceptableMethod),
            "{e}"
        );
    }
}

#[test]
fn dante_reports_a_refused_target() {
    let Some(proxy) = danted(false) else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls = servers::certs().client;
    for scheme in ["socks5", "socks5h"] {
        let url = format!("{scheme}://127.0.0.1:{}", proxy.port);
        for adapter in ADAPTERS {
            let target = format!("ws://127.0.0.1:{closed}/");
            let e = proxy_error(adapter, &target, options(Proxy::url(&url).unwrap(), &tls));
            // RFC 1928 §6: X'05' connection refused.
            assert!(matches!(e.kind(), ProxyErrorKind::Socks(5)), "{e}");
            assert!(e.to_string().contains("connection refused"), "{e}");
        }
    }
}

/// The proxy variables, from a snapshot (no test touches the process environment): the
/// scheme's variable, then `ALL_PROXY`, and `NO_PROXY`'s exemptions, through real proxies.
#[test]
fn environment_snapshot_chooses_the_proxy() {
    let Some(http) = tinyproxy(None) else { return };
    let Some(socks) = danted(false) else { return };
    let t = targets();
    let http_url = format!("http://127.0.0.1:{}", http.port);
    let socks_url = format!("socks5h://127.0.0.1:{}", socks.port);
    let ws_port =
        t.ws.split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
    let wss_port = t
        .wss
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let env = |vars: &[(&str, &str)]| options(Proxy::from_vars(vars.iter().copied()), &t.tls);

    for adapter in ADAPTERS {
        // ws:// takes HTTP_PROXY, wss:// HTTPS_PROXY.
        let both = [
            ("HTTP_PROXY", http_url.as_str()),
            ("https_proxy", socks_url.as_str()),
        ];
        through(&http, adapter, &t.ws, env(&both));
        through(&socks, adapter, &t.wss, env(&both));
        // ALL_PROXY for either.
        let all = [("ALL_PROXY", socks_url.as_str())];
        through(&socks, adapter, &t.ws, env(&all));
        through(&socks, adapter, &t.wss, env(&all));
        // NO_PROXY: loopback is proxied unless listed; a listed host:port goes direct.
        let no = [
            ("ALL_PROXY", http_url.as_str()),
            ("NO_PROXY", &format!("example.com, localhost:{wss_port}")),
        ];
        let peer = echo(adapter, &t.wss, env(&no)).unwrap();
        assert_eq!(
            peer.port().to_string(),
            wss_port,
            "localhost:{wss_port} is exempt"
        );
        through(&http, adapter, &t.ws, env(&no));
        let no = [
            ("ALL_PROXY", http_url.as_str()),
            ("no_proxy", "127.0.0.0/8"),
        ];
        let peer = echo(adapter, &t.ws, env(&no)).unwrap();
        assert_eq!(peer.port().to_string(), ws_port, "127.0.0.0/8 is exempt");
        let no = [("ALL_PROXY", http_url.as_str()), ("NO_PROXY", "*")];
        assert_eq!(
            echo(adapter, &t.ws, env(&no)).unwrap().port().to_string(),
            ws_port
        );
        // An explicit choice wins over the variables.
        let explicit = options(Proxy::url(&socks_url).unwrap(), &t.tls);
        through(&socks, adapter, &t.ws, explicit);
        let direct = options(Proxy::none(), &t.tls);
        assert_eq!(
            echo(adapter, &t.ws, direct).unwrap().port().to_string(),
            ws_port
        );
    }
}
