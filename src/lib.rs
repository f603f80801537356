//! hybi: a sans-IO WebSocket (RFC 6455) library, with blocking and tokio adapters.
//!
//! # Design
//!
//! ```text
//!  your app ──── blocking::WebSocket / tokio::WebSocketStream   (adapters: sockets, timers)
//!                         │ bytes in            ▲ bytes out
//!                         ▼                     │
//!                  Connection (sans-IO core: handshake, frames, UTF-8, limits, close)
//!                         │ events: Request, Open, Message, Ping, Pong, CloseReceived, Closed
//!                         ▼
//!                      your app
//! ```
//!
//! The core, [`Connection`], is a deterministic state machine (CONNECTING → OPEN → CLOSING →
//! CLOSED) with no sockets, no clock and no runtime: bytes go in with
//! [`handle_input`](Connection::handle_input), events come out of
//! [`next_event`](Connection::next_event), and bytes to send come out of
//! [`pending_output`](Connection::pending_output). It builds as `no_std` + `alloc` with
//! `--no-default-features`. Peer misbehaviour never surfaces as a panic or an `Err` from an
//! input method: the connection is failed with the close code RFC 6455 §7.4.1 prescribes and
//! [`Event::Closed`] says what happened.
//!
//! The adapters, [`blocking`] (feature `blocking`, default) and [`tokio`] (feature `tokio`),
//! are thin loops over one [`Driver`], which keeps the deadlines
//! ([`Timeouts`]) and decides what an adapter would otherwise decide (when a close is complete,
//! what a transport failure means, when the peer counts as dead); every protocol decision is
//! the core's. See `ARCHITECTURE.md` for the layers and the data flow.
//!
//! # Example: a blocking echo server
//!
//! ```no_run
//! use std::net::TcpListener;
//! # fn main() -> Result<(), hybi::Error> {
//! let listener = TcpListener::bind("127.0.0.1:9001")?;
//! for tcp in listener.incoming() {
//!     let mut ws = hybi::blocking::accept(tcp?)?;
//!     while let Ok(message) = ws.recv() {
//!         ws.send_message(message)?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `std` | yes | std support (the driver, OS randomness, `std::error::Error`) |
//! | `blocking` | yes | [`blocking`]: the adapter for `std::io::Read + Write` |
//! | `tls` | yes | `wss://` for the blocking client, with rustls (ring) and the web PKI roots |
//! | `tokio` | no | [`tokio`]: the async adapter, `Stream` + `Sink` |
//! | `tokio-tls` | no | `wss://` for the tokio client (`tls` plus tokio-rustls) |
//! | `tls-server` | no | `hybi::tls`: the rustls server configuration for `https://` + `wss://` (PEM cert chain and key, ALPN `h2` and `http/1.1`) and its acceptor (`tokio-tls`) |
//! | `deflate` | yes | permessage-deflate (RFC 7692), enabled per connection with [`Config::with_deflate`] |
//! | `http` | no | `hybi::http`: server handshakes from `http::request::Parts`, heads as `http` types, a [`ClientRequest`] from an `http::Request` (adds `http`) |
//! | `hyper` | no | `hybi::hyper`: hyper 1 upgrades to a `WebSocketStream` (`http` and `tokio`, adds `hyper` and `hyper-util`) |
//! | `http2` | no | HTTP/2 WebSockets (RFC 8441): servers through `hyper` and `axum` (the extended CONNECT's `:protocol`), and the client `hybi::http2` (adds hyper's `http2` and `h2`) |
//! | `axum` | no | `hybi::axum`: the `WebSocketUpgrade` extractor (`hyper`, adds `axum-core`) |
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![warn(
    missing_docs,
    unreachable_pub,
    elided_lifetimes_in_paths,
    unused_qualifications,
    clippy::use_self,
    clippy::manual_let_else
)]

extern crate alloc;

// The layers, bottom up; each imports only from the ones above it in this list (see
// ARCHITECTURE.md, and tests/architecture.rs, which checks it).
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod config;
mod conn;
#[cfg(feature = "std")]
mod connect;
#[cfg(feature = "std")]
mod driver;
mod error;
mod extensions;
pub mod frame;
pub mod handshake;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "http2")]
#[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
pub mod http2;
#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub mod hyper;
mod role;
#[cfg(feature = "__testing")]
#[doc(hidden)]
pub mod testing;
#[cfg(feature = "tls-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls-server")))]
pub mod tls;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod utf8;

pub use config::{Config, MaskSource, OsRandom};
pub use conn::{
    ClientHandshake, CloseOutcome, Connection, Event, Failure, Fragment, Handshake, Initiator,
    Message, MessageKind, Negotiated, PreparedMessage, ProtocolError, Timeout,
};
#[cfg(feature = "std")]
pub use connect::{ConnectOptions, Proxy, ProxyScheme, ProxyUrl};
#[cfg(feature = "std")]
pub use driver::{
    Clock, ConnectError, Driver, Error, Http2Error, ProxyError, ProxyErrorKind, RedirectError,
    Timeouts,
};
pub use error::UsageError;
pub use extensions::deflate::DeflateConfig;
pub use frame::close::{CloseCode, CloseFrame};
pub use frame::error::FrameError;
pub use handshake::client::{ClientRequest, Response};
pub use handshake::error::HandshakeError;
pub use handshake::server::{Accept, Reject, Request};
pub use role::{Role, State};
pub use utf8::Utf8Bytes;

/// Crate internals for the fuzz targets in `fuzz/` (built with `--cfg fuzzing`); not part of
/// the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use alloc::string::String;
    use alloc::vec::Vec;

    use crate::extensions::deflate::{self, Params};
    use crate::DeflateConfig;

    /// Negotiated permessage-deflate parameters: (server_no_context_takeover,
    /// client_no_context_takeover, server_max_window_bits, client_max_window_bits).
    pub type DeflateParams = (bool, bool, u8, u8);

    fn tuple(p: Params) -> DeflateParams {
        (
            p.server_no_context_takeover,
            p.client_no_context_takeover,
            p.server_max_window_bits,
            p.client_max_window_bits,
        )
    }

    /// The elements of a `Sec-WebSocket-Extensions` value, split as the handshake parsers do.
    pub fn extension_elements(value: &str) -> Vec<String> {
        crate::handshake::split_list(value, b',')
            .map(String::from)
            .collect()
    }

    /// The client's offer for `cfg`, one `Sec-WebSocket-Extensions` element.
    pub fn deflate_offer(cfg: &DeflateConfig) -> String {
        cfg.offer()
    }

    /// The server's choice among the offered elements: its answer and the parameters.
    pub fn deflate_negotiate_server(
        offers: &[String],
        cfg: &DeflateConfig,
    ) -> Option<(String, DeflateParams)> {
        deflate::negotiate_server(offers, cfg).map(|(r, p)| (r, tuple(p)))
    }

    /// The client's check of the server's answer (the 101's extension elements).
    pub fn deflate_accept_client(
        response: &[String],
        cfg: &DeflateConfig,
    ) -> Result<Option<DeflateParams>, &'static str> {
        deflate::accept_client(response, cfg).map(|p| p.map(tuple))
    }
}

/// The README's code blocks, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
