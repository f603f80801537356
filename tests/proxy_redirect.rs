//! Redirect answers to the opening handshake, from a tiny local HTTP server
//! (tests/support/servers.rs `http_server`): 301/302/303/307/308 followed to a hybi echo
//! server with the request's Origin, subprotocols and headers kept, relative and
//! scheme-relative `Location`s resolved, `http://` mapped to `ws://`; a loop, too many hops,
//! a `wss://` to `ws://` downgrade and a limit of 0 end in typed errors. Both adapters.

#[path = "support/proxies.rs"]
mod proxies;
#[path = "support/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::Duration;

use hybi::{
    blocking, ClientRequest, ConnectOptions, Error, HandshakeError, Proxy, RedirectError, Response,
    Timeouts,
};
use proxies::{FakeProxy, Script};
use servers::{echo_server, http_server};

#[derive(Debug, Clone, Copy)]
enum Adapter {
    Blocking,
    Tokio,
}

const ADAPTERS: [Adapter; 2] = [Adapter::Blocking, Adapter::Tokio];

fn options() -> ConnectOptions {
    ConnectOptions::default()
        .with_proxy(Proxy::none())
        .with_timeouts(Timeouts::default().with_handshake_timeout(Some(Duration::from_secs(5))))
}

fn redirect(status: u16, location: &str) -> String {
    format!("HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
}

/// Connects (the request with an Origin, a subprotocol and a header) and has a message
/// echoed.
fn connect(adapter: Adapter, url: &str, options: ConnectOptions) -> Result<Response, Error> {
    let request = ClientRequest::new(url)?
        .origin("http://app.example")
        .protocol("chat")
        .header("X-Token", "t0ken");
    match adapter {
        Adapter::Blocking => {
            let (mut ws, response) = blocking::connect_with(request, options)?;
            ws.send_message("hi")?;
            assert_eq!(ws.recv()?.as_text(), Some("hi"));
            Ok(response)
        }
        Adapter::Tokio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let (mut ws, response) = hybi::tokio::connect_with(request, options).await?;
                ws.send_message("hi").await?;
                assert_eq!(ws.recv().await?.as_text(), Some("hi"));
                Ok(response)
            }),
    }
}

fn redirect_error(adapter: Adapter, url: &str, options: ConnectOptions) -> RedirectError {
    match connect(adapter, url, options) {
        Err(Error::Redirect(e)) => e,
        other => panic!("{url} ({adapter:?}): expected a redirect error, got {other:?}"),
    }
}

#[test]
fn each_redirect_status_is_followed_with_the_request_kept() {
    let (echo, seen) = echo_server("127.0.0.1:0", None);
    let target = format!("ws://127.0.0.1:{}/final", echo.port());
    let (server, paths) = http_server(None, move |path| {
        let status = path.trim_start_matches('/').parse().unwrap_or(400);
        redirect(status, &target)
    });
    for adapter in ADAPTERS {
        for status in [301, 302, 303, 307, 308] {
            let url = format!("ws://127.0.0.1:{}/{status}", server.port());
            let response = connect(adapter, &url, options()).unwrap();
            assert_eq!(response.protocol(), Some("chat"));
        }
    }
    assert_eq!(paths.lock().unwrap().len(), 10);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10);
    for (path, headers) in seen.iter() {
        assert_eq!(path, "/final");
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("origin"), Some("http://app.example"));
        assert_eq!(get("sec-websocket-protocol"), Some("chat"));
        assert_eq!(get("x-token"), Some("t0ken"));
        assert_eq!(
            get("host"),
            Some(format!("127.0.0.1:{}", echo.port()).as_str())
        );
    }
}

#[test]
fn locations_are_resolved_against_the_request_url() {
    let (echo, seen) = echo_server("127.0.0.1:0", None);
    let echo_port = echo.port();
    // /a/b -> relative "c?x=1" -> /a/c?x=1 -> absolute path with dot segments and a fragment
    // -> /e -> query only -> /e?q -> scheme-relative -> the echo server's /f. And an http://
    // Location, taken as ws://, to its /g.
    let (server, paths) = http_server(None, move |path| match path {
        "/a/b" => redirect(301, "c?x=1"),
        "/a/c?x=1" => redirect(307, "/d/../e#frag"),
        "/e" => redirect(308, "?q"),
        "/e?q" => redirect(302, &format!("//127.0.0.1:{echo_port}/f")),
        _ => redirect(404, "/"),
    });
    let (http_redirect, _) = http_server(None, move |_| {
        redirect(301, &format!("http://127.0.0.1:{echo_port}/g"))
    });
    for adapter in ADAPTERS {
        connect(
            adapter,
            &format!("ws://127.0.0.1:{}/a/b", server.port()),
            options(),
        )
        .unwrap();
        connect(
            adapter,
            &format!("ws://127.0.0.1:{}/", http_redirect.port()),
            options(),
        )
        .unwrap();
    }
    let paths = paths.lock().unwrap().clone();
    assert_eq!(paths, ["/a/b", "/a/c?x=1", "/e", "/e?q"].repeat(2));
    let seen: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(seen, ["/f", "/g", "/f", "/g"]);
}

#[test]
fn loops_and_too_many_hops_are_errors() {
    let (server, _) = http_server(None, |path| match path {
        "/loop1" => redirect(301, "/loop2"),
        "/loop2" => redirect(301, "/loop1"),
        "/self" => redirect(307, "/self"),
        _ => {
            // /n/<i> -> /n/<i + 1>, forever.
            let i: u32 = path
                .rsplit('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            redirect(302, &format!("/n/{}", i + 1))
        }
    });
    let base = format!("ws://127.0.0.1:{}", server.port());
    for adapter in ADAPTERS {
        let e = redirect_error(adapter, &format!("{base}/loop1"), options());
        assert_eq!(
            e,
            RedirectError::Loop {
                url: format!("{base}/loop1")
            }
        );
        let e = redirect_error(adapter, &format!("{base}/self"), options());
        assert_eq!(
            e,
            RedirectError::Loop {
                url: format!("{base}/self")
            }
        );
        // The default limit is 10: the 11th redirect is refused.
        let e = redirect_error(adapter, &format!("{base}/n/0"), options());
        assert_eq!(
            e,
            RedirectError::TooMany {
                max: 10,
                location: format!("{base}/n/11")
            }
        );
        let e = redirect_error(
            adapter,
            &format!("{base}/n/0"),
            options().with_max_redirects(2),
        );
        assert_eq!(
            e,
            RedirectError::TooMany {
                max: 2,
                location: format!("{base}/n/3")
            }
        );
    }
}

#[test]
fn no_redirects_when_the_limit_is_zero() {
    let (server, paths) = http_server(None, |_| redirect(308, "/elsewhere"));
    let url = format!("ws://127.0.0.1:{}/here", server.port());
    for adapter in ADAPTERS {
        let r = connect(adapter, &url, options().with_max_redirects(0));
        let Err(Error::Handshake(HandshakeError::Redirect { status, location })) = r else {
            panic!("{r:?}");
        };
        assert_eq!((status, location.as_str()), (308, "/elsewhere"));
    }
    assert_eq!(paths.lock().unwrap().len(), 2);
}

#[test]
fn a_redirect_without_location_is_an_unexpected_status() {
    let (server, _) = http_server(None, |_| {
        "HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n".into()
    });
    let url = format!("ws://127.0.0.1:{}/", server.port());
    for adapter in ADAPTERS {
        let r = connect(adapter, &url, options());
        assert!(
            matches!(
                r,
                Err(Error::Handshake(HandshakeError::UnexpectedStatus(301)))
            ),
            "{r:?}"
        );
    }
}

#[test]
fn invalid_locations_are_errors() {
    let (server, _) = http_server(None, |path| match path {
        "/ftp" => redirect(301, "ftp://127.0.0.1/"),
        _ => redirect(301, "/with space"),
    });
    for adapter in ADAPTERS {
        for path in ["/ftp", "/space"] {
            let url = format!("ws://127.0.0.1:{}{path}", server.port());
            let e = redirect_error(adapter, &url, options());
            assert!(matches!(e, RedirectError::InvalidLocation { .. }), "{e}");
        }
    }
}

/// From `wss://` to `ws://` (or `http://`) is refused; within `wss://` is followed, the
/// certificate checked against each host.
#[test]
fn wss_never_goes_down_to_ws() {
    let certs = servers::certs();
    let (echo, _) = echo_server("127.0.0.1:0", None);
    let (echo_tls, _) = echo_server("127.0.0.1:0", Some(certs.server.clone()));
    let (ws_port, wss_port) = (echo.port(), echo_tls.port());
    let (server, paths) = http_server(Some(certs.server.clone()), move |path| match path {
        "/down" => redirect(301, &format!("ws://127.0.0.1:{ws_port}/")),
        "/down-http" => redirect(302, &format!("http://localhost:{ws_port}/")),
        _ => redirect(307, &format!("wss://localhost:{wss_port}/secure")),
    });
    let tls = |o: ConnectOptions| o.with_tls_config(Arc::clone(&certs.client));
    for adapter in ADAPTERS {
        for path in ["/down", "/down-http"] {
            let url = format!("wss://localhost:{}{path}", server.port());
            let e = redirect_error(adapter, &url, tls(options()));
            let RedirectError::Downgrade { from, to } = &e else {
                panic!("{e}")
            };
            assert_eq!(from, &url);
            assert!(to.starts_with("ws://"), "{e}");
        }
        let url = format!("wss://localhost:{}/up", server.port());
        connect(adapter, &url, tls(options())).unwrap();
        // And up from ws:// to wss:// is fine.
        let (plain, _) = http_server(None, move |_| {
            redirect(301, &format!("wss://localhost:{wss_port}/from-plain"))
        });
        connect(
            adapter,
            &format!("ws://127.0.0.1:{}/", plain.port()),
            tls(options()),
        )
        .unwrap();
    }
    assert_eq!(paths.lock().unwrap().len(), 6);
}

/// Each hop is routed on its own: through the proxy, both the redirect and its target.
#[test]
fn redirects_go_through_the_proxy() {
    let (echo, _) = echo_server("127.0.0.1:0", None);
    let echo_port = echo.port();
    let (server, _) = http_server(None, move |_| {
        redirect(301, &format!("ws://127.0.0.1:{echo_port}/"))
    });
    let fake = FakeProxy::start(Script::Tunnel);
    for adapter in ADAPTERS {
        let options = options().with_proxy(Proxy::url(&fake.url()).unwrap());
        connect(
            adapter,
            &format!("ws://127.0.0.1:{}/", server.port()),
            options,
        )
        .unwrap();
    }
    let connects: Vec<String> = fake
        .heads()
        .iter()
        .map(|h| h.lines().next().unwrap_or("").to_owned())
        .collect();
    let first = format!("CONNECT 127.0.0.1:{} HTTP/1.1", server.port());
    let second = format!("CONNECT 127.0.0.1:{echo_port} HTTP/1.1");
    assert_eq!(connects, [first.clone(), second.clone(), first, second]);
}
