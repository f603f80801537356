//! An axum extractor (feature `axum`, on axum-core 0.5; no `axum` dependency).
//!
//! [`WebSocketUpgrade`] is axum's `ws::WebSocketUpgrade` with hybi underneath: the same method
//! names where they apply ([`protocols`](WebSocketUpgrade::protocols),
//! [`requested_protocols`](WebSocketUpgrade::requested_protocols),
//! [`selected_protocol`](WebSocketUpgrade::selected_protocol),
//! [`on_failed_upgrade`](WebSocketUpgrade::on_failed_upgrade),
//! [`on_upgrade`](WebSocketUpgrade::on_upgrade)), plus hybi's [`Config`] (limits,
//! permessage-deflate) and [`Timeouts`] (keepalive, idle and close deadlines), and
//! [`into_parts`](WebSocketUpgrade::into_parts), which returns the response and the future
//! that resolves to the WebSocket instead of spawning it. The WebSocket is the tokio adapter's
//! [`WebSocketStream`](crate::tokio::WebSocketStream) over hyper's upgraded connection
//! ([`WebSocket`]): `recv`, `queue`, `flush_queue`, `Stream` + `Sink`, `into_split`.
//!
//! The request is checked by the core ([`crate::http::request`]); a request that fails is
//! refused with [`WebSocketUpgradeRejection`], whose response is the core's (400, 405 with
//! `Allow`, 426 with `Sec-WebSocket-Version: 13`, 505).
//!
//! ```no_run
//! use axum::{response::Response, routing::any, Router};
//! use hybi::axum::{WebSocket, WebSocketUpgrade};
//! use hybi::{Config, DeflateConfig};
//!
//! async fn handler(ws: WebSocketUpgrade) -> Response {
//!     ws.protocols(["chat"])
//!         .with_config(Config::default().with_deflate(DeflateConfig::default()))
//!         .on_upgrade(echo)
//! }
//!
//! async fn echo(mut ws: WebSocket) {
//!     while let Ok(message) = ws.recv().await {
//!         if ws.send_message(message).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route("/ws", any(handler));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! `any(handler)` serves HTTP/1.1 upgrades (`GET`) and, with the `http2` feature and a server
//! that allows extended `CONNECT`, HTTP/2 WebSockets (RFC 8441); `get(handler)` serves
//! HTTP/1.1 only.

use std::borrow::Cow;
use std::future::Future;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};

use crate::config::Config;
use crate::driver::{Error, Timeouts};
use crate::handshake::{Accept, Request};
use crate::hyper::Upgrade;
pub use crate::hyper::{Rejection as WebSocketUpgradeRejection, Upgraded, Upgrading, WebSocket};

/// An extractor that validates a WebSocket upgrade request, and answers it with
/// [`on_upgrade`](Self::on_upgrade) or [`into_parts`](Self::into_parts). See the
/// [module docs](self).
///
/// `F` is what happens when the upgrade fails after the response was sent
/// ([`on_failed_upgrade`](Self::on_failed_upgrade)).
#[derive(Debug)]
#[must_use = "a WebSocket upgrade is answered by returning the response of `on_upgrade` or `into_parts`"]
pub struct WebSocketUpgrade<F = DefaultOnFailedUpgrade> {
    upgrade: Upgrade,
    protocol: Option<Cow<'static, str>>,
    config: Config,
    timeouts: Timeouts,
    on_failed_upgrade: F,
}

impl<F> WebSocketUpgrade<F> {
    /// Chooses the subprotocol: the first of `protocols` (the server's order of preference)
    /// that the client offered; none if it offered none of them. Replaces an earlier choice.
    ///
    /// Without a choice, the connection uses the first subprotocol the client offered that is
    /// in [`Config::protocols`], if any.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        let offered = self.upgrade.request().protocols();
        self.protocol = protocols
            .into_iter()
            .map(Into::into)
            .find(|p| offered.iter().any(|o| o == p));
        self
    }

    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order.
    pub fn requested_protocols(&self) -> impl Iterator<Item = &str> {
        self.upgrade
            .request()
            .protocols()
            .iter()
            .map(String::as_str)
    }

    /// The subprotocol [`protocols`](Self::protocols) chose, if any.
    pub fn selected_protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The validated request: path, query, `Origin`, offered subprotocols and extensions,
    /// every header.
    pub fn request(&self) -> &Request {
        self.upgrade.request()
    }

    /// Sets the connection's [`Config`] (limits, permessage-deflate, subprotocols to pick from
    /// when [`protocols`](Self::protocols) chose none). Default: [`Config::default`].
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The connection's [`Config`].
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets the adapter's deadlines (keepalive, idle, close). Default: [`Timeouts::default`].
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The adapter's deadlines.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Sets what [`on_upgrade`](Self::on_upgrade)'s task does when the upgrade fails after the
    /// response was sent (the client went away first); by default nothing.
    pub fn on_failed_upgrade<C: OnFailedUpgrade>(self, callback: C) -> WebSocketUpgrade<C> {
        WebSocketUpgrade {
            upgrade: self.upgrade,
            protocol: self.protocol,
            config: self.config,
            timeouts: self.timeouts,
            on_failed_upgrade: callback,
        }
    }

    /// Answers the request: returns the response to send (101, or 200 over HTTP/2) and the
    /// future that resolves to the [`WebSocket`] once hyper has upgraded the connection.
    /// Nothing is spawned: run the future on any executor (the failure callback is not
    /// called; the future returns the error).
    pub fn into_parts(self) -> (Response, Upgrading) {
        let accept = match &self.protocol {
            Some(p) => Accept::new().protocol(p.as_ref()),
            None => Accept::new(),
        };
        self.upgrade.answer(accept, self.config, self.timeouts)
    }

    /// Answers the request and spawns a tokio task that waits for the upgrade and runs
    /// `callback` with the [`WebSocket`] (or the failure callback with the error). Returns the
    /// response to send.
    ///
    /// The task holds the [`WebSocket`] and the callback's future, no buffers of its own. To
    /// spawn it elsewhere, use [`into_parts`](Self::into_parts).
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        F: OnFailedUpgrade,
    {
        let on_failed_upgrade = self.on_failed_upgrade;
        let accept = match &self.protocol {
            Some(p) => Accept::new().protocol(p.as_ref()),
            None => Accept::new(),
        };
        let (response, upgrading) = self.upgrade.answer(accept, self.config, self.timeouts);
        tokio::spawn(async move {
            // Moved out of the result, so the task holds one WebSocket (see
            // `hybi::tokio::accept_with`).
            let ws = match upgrading.await {
                Ok(ws) => ws,
                Err(e) => return on_failed_upgrade.call(e),
            };
            callback(ws).await;
        });
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade<DefaultOnFailedUpgrade> {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(
        parts: &mut ::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            upgrade: Upgrade::from_parts(parts)?,
            protocol: None,
            config: Config::default(),
            timeouts: Timeouts::default(),
            on_failed_upgrade: DefaultOnFailedUpgrade,
        })
    }
}

impl IntoResponse for WebSocketUpgradeRejection {
    /// [`WebSocketUpgradeRejection::response`]: the core's answer for a handshake error (its
    /// status, `Allow` or `Sec-WebSocket-Version: 13` where they apply, the message as a
    /// plain-text body), 500 for a connection that cannot be upgraded.
    fn into_response(self) -> Response {
        self.response()
    }
}

/// What [`WebSocketUpgrade::on_upgrade`]'s task does when the upgrade fails after the response
/// was sent. Any `FnOnce(Error) + Send + 'static` is one.
pub trait OnFailedUpgrade: Send + 'static {
    /// Handles the failure.
    fn call(self, error: Error);
}

impl<F> OnFailedUpgrade for F
where
    F: FnOnce(Error) + Send + 'static,
{
    fn call(self, error: Error) {
        self(error);
    }
}

/// The default [`OnFailedUpgrade`]: ignores the error.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DefaultOnFailedUpgrade;

impl OnFailedUpgrade for DefaultOnFailedUpgrade {
    fn call(self, _error: Error) {}
}
