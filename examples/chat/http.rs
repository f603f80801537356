//! The HTTP side, on axum and hyper: the page, its script and style, the WebSocket at `/chat`
//! and the counters at `/stats`; per TCP connection hyper's HTTP/1 server with a header read
//! timeout or, with TLS, hyper-util's auto builder (HTTP/1.1 and HTTP/2 with extended
//! CONNECT, as ALPN chose) over rustls.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use hybi::axum::{WebSocketUpgrade, WebSocketUpgradeRejection};
use hybi::tls::TlsAcceptor;
use hybi::HandshakeError;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;

use futures_util::future::Either;

use super::session;
use super::stopped;
use super::App;

/// The page, served at `/`.
pub const PAGE: &str = include_str!("index.html");
pub const SCRIPT: &str = include_str!("chat.js");
pub const STYLE: &str = include_str!("chat.css");

/// The page loads nothing but its own script, style and images (`blob:` for received images,
/// `data:` for the icon) and connects only to its own origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/chat.js", get(script))
        .route("/chat.css", get(style))
        .route("/chat", any(upgrade))
        .route("/stats", get(stats))
        .fallback(not_found)
        .with_state(app)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /stats`: `{"websockets":{"http1":N,"http2":M}}`, the WebSockets opened so far over
/// HTTP/1.1 (an upgrade, 101) and over HTTP/2 (an extended CONNECT, 200).
async fn stats(State(app): State<Arc<App>>) -> Response {
    let (http1, http2) = app.websockets();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        serde_json::json!({"websockets": {"http1": http1, "http2": http2}}).to_string(),
    )
        .into_response()
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Whether a browser's `Origin` may open the chat: the page's own origin (the scheme and the
/// `Host` the request was sent to) or one of `--allow-origin`.
fn origin_allowed(app: &App, origin: &str, host: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    let own = ["http://", "https://"].iter().any(|scheme| {
        origin.len() == scheme.len() + host.len()
            && origin[..scheme.len()].eq_ignore_ascii_case(scheme)
            && origin[scheme.len()..].eq_ignore_ascii_case(host)
    });
    own || app
        .options
        .allow_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// The WebSocket at `/chat`, through hybi's axum extractor: the core checks the request
/// (400, 405, 426, ... with its own answer), the chat checks the `Origin` (403), the
/// subprotocol (400) and how many connections wait to join (503), and the session runs on the
/// upgraded connection.
async fn upgrade(
    State(app): State<Arc<App>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        // A plain GET (no Upgrade, or HTTP/1.0): this is a WebSocket endpoint.
        Err(WebSocketUpgradeRejection::Handshake(
            HandshakeError::MissingUpgrade
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::UnsupportedHttpVersion,
        )) => {
            let mut r = plain(
                StatusCode::UPGRADE_REQUIRED,
                "this is a WebSocket endpoint (subprotocol \"chat\")\n",
            );
            r.headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            r.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return r;
        }
        Err(rejection) => return rejection.into_response(),
    };
    let request = ws.request();
    if let Some(origin) = request.origin() {
        if !origin_allowed(&app, origin, request.host()) {
            return plain(StatusCode::FORBIDDEN, "origin not allowed\n");
        }
    }
    if !ws.requested_protocols().any(|p| p == "chat") {
        return plain(
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol \"chat\" is required\n",
        );
    }
    let Some(unjoined) = app.unjoined() else {
        let mut r = plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections waiting to join\n",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let version = request.version();
    let (response, upgrading) = ws
        .protocols(["chat"])
        .with_config(app.ws_config())
        .with_timeouts(app.ws_timeouts())
        .into_parts();
    // Once upgraded, the session runs on the WebSocket. `then` keeps either the wait for the
    // upgrade or the session, never both; the session borrows the stream captured by its async
    // block (an `async fn` taking the stream would keep it twice: the argument, and the local
    // it is moved into). So a client's task holds one WebSocket and nothing of its handshake.
    let task_app = app.clone();
    let task = futures_util::FutureExt::then(upgrading, move |upgraded| match upgraded {
        Ok(mut ws) => {
            task_app.opened(version);
            Either::Left(async move { session::session(&mut ws, task_app, unjoined).await })
        }
        Err(_) => Either::Right(std::future::ready(())),
    });
    app.spawn(task);
    response
}

/// Serves one TCP connection until it ends or the server stops: hyper's HTTP/1 server (an
/// upgraded connection goes on in its own task), or with `tls` the TLS handshake (within
/// `header_timeout`) and then HTTP/1.1 or HTTP/2 by what the client speaks.
pub async fn serve_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    router: Router,
    stop: tokio::sync::watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_http1(stream, router, stop, header_timeout).await,
        Some(acceptor) => {
            let Ok(Ok(stream)) =
                tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
            else {
                return; // no handshake in time, or a failed one (plain HTTP on this port)
            };
            serve_auto(stream, router, stop, header_timeout).await
        }
    }
}

async fn serve_http1(
    stream: TcpStream,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let service = hyper_util::service::TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(16 << 10)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

/// HTTP/1.1 or HTTP/2 over TLS. HTTP/2 allows extended CONNECT (RFC 8441), so a browser opens
/// its WebSocket on the connection that brought the page. The connection has no idle timeout:
/// a browser uses HTTP/2 for a WebSocket only while the page's connection is open (else it
/// opens a new one, HTTP/1.1 only); it closes idle connections itself.
async fn serve_auto(
    stream: hybi::tls::TlsStream<TcpStream>,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(16 << 10);
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(256)
        // What a client sent that a WebSocket has not read yet counts against its stream's
        // window and the connection's. With hyper's defaults (1 MiB each) one session that
        // falls behind would stall every other WebSocket of that browser. A stream window
        // 64 times smaller than the connection's keeps the others moving, and bounds what a
        // connection can make this server hold to 4 MiB (chat messages are small: a larger
        // one just takes more round trips of window updates).
        .initial_stream_window_size(64 << 10)
        .initial_connection_window_size(4 << 20);
    let service = hyper_util::service::TowerToHyperService::new(router);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut stop) => {
            // Over HTTP/2 this connection carries its WebSockets: after GOAWAY it runs until
            // their sessions have closed (each with 1001), within the shutdown grace.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(super::SHUTDOWN_GRACE, conn).await;
        }
    }
}
