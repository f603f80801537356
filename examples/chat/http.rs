//! The HTTP side, on axum and hyper: the page, its script and style, and the WebSocket at
//! `/chat`; hyper's HTTP/1 server per TCP connection, with a header read timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use hybi::handshake::HttpVersion;
use hybi::tokio::WebSocketStream;
use hybi::{Accept, Connection, Negotiated};
use hyper_util::rt::{TokioIo, TokioTimer};
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

/// The WebSocket glue, on what hybi has today: validates the upgrade with
/// `hybi::Request::from_head`, applies the chat's checks, answers with the `Negotiated`
/// response, and runs the session on the upgraded connection. (hybi's axum extractor will
/// replace this function.)
async fn upgrade(State(app): State<Arc<App>>, mut req: Request) -> Response {
    let wants_websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_websocket || req.version() != Version::HTTP_11 {
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
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let fields = req
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let request = match hybi::Request::from_head(
        req.method().as_str(),
        target,
        HttpVersion::Http11,
        fields,
    ) {
        Ok(r) => r,
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            let mut r = (status, format!("{e}\n")).into_response();
            if status == StatusCode::UPGRADE_REQUIRED {
                r.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            return r;
        }
    };
    if let Some(origin) = request.origin() {
        if !origin_allowed(&app, origin, request.host()) {
            return plain(StatusCode::FORBIDDEN, "origin not allowed\n");
        }
    }
    if !request.protocols().iter().any(|p| p == "chat") {
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
    let config = app.ws_config();
    let negotiated = match Negotiated::new(&request, Accept::new().protocol("chat"), &config) {
        Ok(n) => n,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad WebSocket request\n"),
    };
    drop(request);
    let upgrading = hyper::upgrade::on(&mut req);
    let timeouts = app.ws_timeouts();
    let task_app = app.clone();
    let answer = Response::builder().status(negotiated.status());
    let answer = negotiated
        .headers()
        .fold(answer, |r, (name, value)| r.header(name, value));
    // Once upgraded, the connection is made from what was negotiated and the session runs on
    // it. `then` keeps either the wait for the upgrade or the session, never both; the session
    // borrows the stream captured by its async block (an `async fn` taking the stream would
    // keep it twice: the argument, and the local it is moved into). So a client's task holds
    // one `WebSocketStream` and nothing of its handshake.
    let task = futures_util::FutureExt::then(upgrading, move |upgraded| match upgraded {
        Ok(io) => {
            let opened = Connection::accepted(config, &negotiated);
            let mut ws = WebSocketStream::new(TokioIo::new(io), opened, timeouts);
            Either::Left(async move { session::session(&mut ws, task_app, unjoined).await })
        }
        Err(_) => Either::Right(std::future::ready(())),
    });
    app.spawn(task);
    answer
        .body(Body::empty())
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"))
}

/// Serves one TCP connection with hyper's HTTP/1 server until it ends (an upgraded connection
/// goes on in its own task) or the server stops.
pub async fn serve_connection(
    stream: TcpStream,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
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
