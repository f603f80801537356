//! hybi: a sans-IO WebSocket (RFC 6455) library.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod error;
pub mod frame;
pub mod handshake;

pub use error::{FrameError, HandshakeError, ProtocolError, UsageError};

/// The state of a connection, named as in RFC 6455 and the browser's `readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The opening handshake is in progress.
    Connecting,
    /// The handshake completed; messages flow both ways.
    Open,
    /// A close frame was sent or received; the closing handshake is in progress.
    Closing,
    /// The connection is closed.
    Closed,
}

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod config;
mod conn;
#[cfg(feature = "std")]
mod keepalive;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod utf8;

#[cfg(feature = "std")]
pub use error::Error;
#[cfg(feature = "std")]
pub use keepalive::Options;

pub use config::{Config, FixedMask, MaskSource, OsRandom, Role};
pub use conn::{
    CloseOutcome, Connection, Event, Failure, Fragment, Handshake, Initiator, Message, MessageKind,
    Reject, Timeout,
};
pub use frame::{CloseCode, CloseFrame};
pub use handshake::{Accept, ClientRequest, Request, Response};
pub use utf8::Utf8Bytes;
