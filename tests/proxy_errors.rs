//! What goes wrong on the way to a server, as typed errors, never a hang: proxies that refuse,
//! close, speak garbage, never answer or never stop answering, a SOCKS failure code, a proxy
//! nobody listens on, and servers none of whose addresses answer. The misbehaving proxies are
//! scripted (tests/support/proxies.rs `FakeProxy`); each case runs with both adapters.

#[path = "support/proxies.rs"]
mod proxies;
#[path = "support/servers.rs"]
mod servers;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use hybi::{
    blocking, ClientRequest, Config, ConnectOptions, Error, Proxy, ProxyError, ProxyErrorKind,
    Timeouts,
};
use proxies::{FakeProxy, Script};

#[derive(Debug, Clone, Copy)]
enum Adapter {
    Blocking,
    Tokio,
}

const ADAPTERS: [Adapter; 2] = [Adapter::Blocking, Adapter::Tokio];

fn options(proxy: Proxy) -> ConnectOptions {
    ConnectOptions::default()
        .with_proxy(proxy)
        .with_timeouts(Timeouts::default().with_handshake_timeout(Some(Duration::from_secs(5))))
}

/// Connects, and has one message echoed; returns the client's TCP peer.
fn connect(adapter: Adapter, url: &str, options: ConnectOptions) -> Result<SocketAddr, Error> {
    let request = ClientRequest::new(url)?;
    match adapter {
        Adapter::Blocking => {
            let (mut ws, _) = blocking::connect_with(request, options)?;
            ws.send_message("ping?")?;
            assert_eq!(ws.recv()?.as_text(), Some("ping?"));
            Ok(ws.get_ref().tcp().peer_addr()?)
        }
        Adapter::Tokio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let (mut ws, _) = hybi::tokio::connect_with(request, options).await?;
                ws.send_message("ping?").await?;
                assert_eq!(ws.recv().await?.as_text(), Some("ping?"));
                match ws.get_ref() {
                    hybi::tokio::MaybeTlsStream::Plain(tcp) => Ok(tcp.peer_addr()?),
                    _ => unreachable!("ws:// only here"),
                }
            }),
    }
}

fn proxy_error(adapter: Adapter, url: &str, options: ConnectOptions) -> ProxyError {
    match connect(adapter, url, options) {
        Err(Error::Proxy(e)) => e,
        other => panic!("{url} ({adapter:?}): expected a proxy error, got {other:?}"),
    }
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP proxy's answer to CONNECT, and what it means.
#[test]
fn http_proxy_answers_are_typed() {
    type Check = fn(&ProxyErrorKind) -> bool;
    let cases: [(Script, Check); 6] = [
        (
            Script::Answer(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n"),
            |k| matches!(k, ProxyErrorKind::AuthRequired { status: 407 }),
        ),
        (
            Script::Answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno!"),
            |k| matches!(k, ProxyErrorKind::Forbidden),
        ),
        (
            Script::Answer(b"HTTP/1.1 502 Bad Gateway\r\n\r\n"),
            |k| matches!(k, ProxyErrorKind::Status(502)),
        ),
        (Script::Close, |k| matches!(k, ProxyErrorKind::Closed)),
        (
            Script::Answer(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n"),
            |k| matches!(k, ProxyErrorKind::Malformed(_)),
        ),
        (
            Script::Endless,
            |k| matches!(k, ProxyErrorKind::TooLarge { max: 1024 }),
        ),
    ];
    let target = format!("ws://127.0.0.1:{}/", servers::ws_echo().port());
    for (script, check) in cases {
        let fake = FakeProxy::start(script);
        for adapter in ADAPTERS {
            let options = options(Proxy::url(&fake.url()).unwrap())
                .with_config(Config::default().with_max_header_bytes(1024));
            let e = proxy_error(adapter, &target, options);
            assert!(check(e.kind()), "{adapter:?}: {e}");
            assert_eq!(e.proxy(), fake.url(), "the error names the proxy");
        }
    }
}

/// A proxy that never answers is cut off by the handshake timeout, with an error that names
/// it.
#[test]
fn silent_proxy_times_out() {
    let fake = FakeProxy::start(Script::Silent);
    let target = format!("ws://127.0.0.1:{}/", servers::ws_echo().port());
    for adapter in ADAPTERS {
        let timeouts = Timeouts::default().with_handshake_timeout(Some(Duration::from_millis(300)));
        let options = options(Proxy::url(&fake.url()).unwrap()).with_timeouts(timeouts);
        let started = Instant::now();
        let e = proxy_error(adapter, &target, options);
        assert!(
            matches!(e.kind(), ProxyErrorKind::TimedOut),
            "{adapter:?}: {e}"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }
}

/// SOCKS5 answers: a failure code, no acceptable method, and a proxy that speaks HTTP.
#[test]
fn socks_answers_are_typed() {
    type Check = fn(&ProxyErrorKind) -> bool;
    let cases: [(Script, Check); 4] = [
        // Method accepted, then X'01' general failure (with an IPv4 BND.ADDR).
        (Script::Socks(&[5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0]), |k| {
            matches!(k, ProxyErrorKind::Socks(1))
        }),
        (Script::Socks(&[5, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0]), |k| {
            matches!(k, ProxyErrorKind::Socks(2))
        }),
        (Script::Socks(&[5, 0xff]), |k| {
            matches!(k, ProxyErrorKind::SocksNoAcceptableMethod)
        }),
        (Script::Socks(b"HTTP/1.1 400 Bad Request\r\n\r\n"), |k| {
            matches!(k, ProxyErrorKind::Malformed(_))
        }),
    ];
    for (script, check) in cases {
        let fake = FakeProxy::start(script);
        let url = format!("socks5h://{}", fake.addr);
        for adapter in ADAPTERS {
            let e = proxy_error(
                adapter,
                "ws://example.invalid/",
                options(Proxy::url(&url).unwrap()),
            );
            assert!(check(e.kind()), "{adapter:?}: {e}");
            assert_eq!(e.proxy(), url);
        }
        // The greeting offered no authentication only (no credentials in the URL).
        assert!(fake
            .received
            .lock()
            .unwrap()
            .iter()
            .all(|g| g == &[5, 1, 0]));
    }
}

#[test]
fn unreachable_proxy_is_a_proxy_error() {
    let port = closed_port();
    for scheme in ["http", "socks5h"] {
        let url = format!("{scheme}://127.0.0.1:{port}");
        for adapter in ADAPTERS {
            let e = proxy_error(
                adapter,
                "ws://example.invalid/",
                options(Proxy::url(&url).unwrap()),
            );
            let ProxyErrorKind::Connect(c) = e.kind() else {
                panic!("{adapter:?}: {e}");
            };
            assert_eq!((c.host(), c.port()), ("127.0.0.1", port));
            assert_eq!(c.attempts().len(), 1);
            assert_eq!(
                c.attempts()[0].1.kind(),
                std::io::ErrorKind::ConnectionRefused
            );
        }
    }
}

/// The CONNECT request puts an IPv6 target in brackets (authority and Host), and the
/// connection through works; a direct IPv6 literal URL works too.
#[test]
fn ipv6_literal_targets() {
    let (echo6, _) = servers::echo_server("[::1]:0", None);
    let fake = FakeProxy::start(Script::Tunnel);
    let url = format!("ws://[::1]:{}/six", echo6.port());
    for adapter in ADAPTERS {
        let peer = connect(adapter, &url, options(Proxy::url(&fake.url()).unwrap())).unwrap();
        assert_eq!(peer, fake.addr);
        let peer = connect(adapter, &url, options(Proxy::none())).unwrap();
        assert_eq!(peer, echo6);
    }
    let authority = format!("[::1]:{}", echo6.port());
    for head in fake.heads() {
        let expected = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        assert_eq!(head, expected);
    }
    assert_eq!(fake.heads().len(), 2);
}

/// Every address a name resolves to is tried; when none answers, the error lists each.
#[test]
fn every_address_is_tried_and_listed() {
    let port = closed_port();
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port))
        .unwrap()
        .collect();
    for adapter in ADAPTERS {
        for (url, expected) in [
            (format!("ws://localhost:{port}/"), resolved.clone()),
            (
                format!("ws://127.0.0.1:{port}/"),
                vec![SocketAddr::from(([127, 0, 0, 1], port))],
            ),
            (
                format!("ws://[::1]:{port}/"),
                vec![SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port))],
            ),
        ] {
            let Err(Error::Connect(e)) = connect(adapter, &url, options(Proxy::none())) else {
                panic!("{url}: connected to a closed port");
            };
            let mut tried: Vec<SocketAddr> = e.attempts().iter().map(|(a, _)| *a).collect();
            let mut expected = expected;
            tried.sort();
            expected.sort();
            assert_eq!(tried, expected, "{adapter:?} {url}: {e}");
            for (addr, _) in e.attempts() {
                assert!(e.to_string().contains(&addr.to_string()), "{e}");
            }
        }
        // `localhost` with only 127.0.0.1 listening connects, whatever order it resolves in.
        let echo = servers::ws_echo();
        let peer = connect(
            adapter,
            &format!("ws://localhost:{}/", echo.port()),
            options(Proxy::none()),
        );
        assert_eq!(peer.unwrap(), echo);
    }
}

/// A name that does not resolve is a ConnectError with the resolver's error.
#[test]
fn unresolvable_host() {
    for adapter in ADAPTERS {
        let r = connect(
            adapter,
            "ws://no-such-host.invalid/",
            options(Proxy::none()),
        );
        let Err(Error::Connect(e)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(e.host(), "no-such-host.invalid");
        assert!(
            e.resolve_error().is_some() || e.attempts().is_empty(),
            "{e}"
        );
    }
}

/// A proxy URL from the environment that hybi cannot use is an error, not a silent direct
/// connection.
#[test]
fn unusable_proxy_url_is_an_error() {
    let echo = servers::ws_echo();
    let url = format!("ws://127.0.0.1:{}/", echo.port());
    for (value, expected) in [
        (
            "https://user:pw@proxy.example:443",
            "https://proxy.example:443",
        ),
        ("http://[::1", "http://[::1"),
    ] {
        for adapter in ADAPTERS {
            let env = Proxy::from_vars([("http_proxy", value)]);
            let e = proxy_error(adapter, &url, options(env));
            assert!(
                matches!(
                    e.kind(),
                    ProxyErrorKind::Unsupported(_) | ProxyErrorKind::InvalidUrl(_)
                ),
                "{e}"
            );
            assert_eq!(e.proxy(), expected);
        }
    }
}

/// A listener that takes no more connections: its backlog is cut to 0 and filled (connections
/// that are never accepted, until one times out), so the next SYNs are dropped and a connect
/// hangs, as towards a blackhole.
fn full_listener() -> (TcpListener, Vec<std::net::TcpStream>) {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) on a socket this test owns; it only changes the backlog.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
    assert_eq!(rc, 0);
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    while let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        fillers.push(s);
        assert!(fillers.len() < 64, "the backlog does not fill");
    }
    (listener, fillers)
}

/// The connect timeout bounds each attempt: the address is listed as timed out.
#[test]
fn connect_timeout_bounds_each_attempt() {
    let (listener, _filler) = full_listener();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    for adapter in ADAPTERS {
        let options = options(Proxy::none()).with_connect_timeout(Some(Duration::from_millis(200)));
        let started = Instant::now();
        let r = connect(adapter, &url, options);
        let took = started.elapsed();
        let Err(Error::Connect(e)) = r else {
            panic!("{adapter:?}: {r:?}")
        };
        assert_eq!(e.attempts().len(), 1, "{e}");
        assert_eq!(
            e.attempts()[0].1.kind(),
            std::io::ErrorKind::TimedOut,
            "{e}"
        );
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }
}

/// Without a connect timeout the handshake timeout still bounds the connect: directly, and to
/// a proxy (then the error names the proxy).
#[test]
fn handshake_timeout_bounds_the_connect() {
    let (listener, _filler) = full_listener();
    let addr = listener.local_addr().unwrap();
    let short = Timeouts::default().with_handshake_timeout(Some(Duration::from_millis(300)));
    for adapter in ADAPTERS {
        let started = Instant::now();
        let r = connect(
            adapter,
            &format!("ws://{addr}/"),
            options(Proxy::none()).with_timeouts(short.clone()),
        );
        assert!(
            matches!(r, Err(Error::Timeout(hybi::Timeout::Handshake))),
            "{adapter:?}: {r:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));

        let proxy = Proxy::url(&format!("http://{addr}")).unwrap();
        let started = Instant::now();
        let e = proxy_error(
            adapter,
            "ws://127.0.0.1:9/",
            options(proxy).with_timeouts(short.clone()),
        );
        assert!(
            matches!(e.kind(), ProxyErrorKind::TimedOut),
            "{adapter:?}: {e}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
